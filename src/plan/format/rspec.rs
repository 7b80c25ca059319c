//! `rspec`: the spec files, then `-e` and the full description for each selected example, one
//! a line, for `rspec`.
//!
//! ```text
//! spec/models/user_spec.rb
//! -e
//! User validates the name
//! ```
//!
//! rspec_junit_formatter writes the spec file's path without its extension, `/` turned into
//! `.`, as the classname (`spec.models.user_spec`) and the example's full description as the
//! name. The mapping turns the classname back into `spec/models/user_spec.rb` (a directory
//! with a dot in its name is not mapped back correctly). `-e` matches every example whose full
//! description *contains* the string (rspec-core 3.12, the version Debian ships, has no exact
//! match), so an example whose description extends a selected one's also runs. A newline in a
//! description is cut there, which widens the match the same way.
//!
//! **Only selection applies**: RSpec runs in defined order (or `--order rand`).

use super::Selector;

pub struct Rspec;

impl Selector for Rspec {
    fn args(&self, ids: &[&str]) -> Vec<String> {
        let mut files = Vec::new();
        let mut examples = Vec::new();
        for id in ids {
            let (classname, description) = super::split_first(id);
            if !classname.is_empty() {
                super::push_unique(&mut files, format!("{}.rb", classname.replace('.', "/")));
            }
            let description = description
                .split(['\n', '\r'])
                .max_by_key(|part| part.len())
                .unwrap_or(description);
            super::push_unique(&mut examples, description.to_owned());
        }
        let mut out = files;
        for example in examples {
            out.push("-e".to_owned());
            out.push(example);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_then_examples() {
        assert_eq!(
            Rspec.args(&[
                "spec.models.user_spec::User validates [x] 'q' \"dq\"",
                "spec.models.user_spec::User saves",
            ]),
            [
                "spec/models/user_spec.rb",
                "-e",
                "User validates [x] 'q' \"dq\"",
                "-e",
                "User saves"
            ]
        );
    }
}
