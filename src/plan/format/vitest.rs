//! `vitest`: `--testNamePattern=^(?:…)$`, then the test files, one a line, for `vitest run`.
//!
//! ```text
//! --testNamePattern=^(?:math(?: | > )passes|top level)$
//! src/sample.test.js
//! ```
//!
//! Vitest's JUnit reporter writes the test file (relative to the root) as the classname and
//! the `describe` titles and the test title joined by ` > ` as the name. Its name filter
//! matches them joined by spaces, so each ` > ` becomes `(?: | > )` (which also keeps a title
//! that itself contains ` > ` matching). File arguments are substring filters on the path, so
//! `a.test.js` also loads `data.test.js`; the name pattern is shared by all files, so a
//! selected full name also runs in another listed file that has a test of the same full name.
//!
//! **Only selection applies**: Vitest orders files itself (`sequence` options).

use super::{Selector, regex};

pub struct Vitest;

impl Selector for Vitest {
    fn args(&self, ids: &[&str]) -> Vec<String> {
        if ids.is_empty() {
            return Vec::new();
        }
        let mut patterns = Vec::new();
        let mut files = Vec::new();
        let mut every_file_known = true;
        for id in ids {
            let (file, name) = super::split_first(id);
            let pattern = name
                .split(" > ")
                .map(regex::escape)
                .collect::<Vec<_>>()
                .join("(?: | > )");
            super::push_unique(&mut patterns, pattern);
            if file.is_empty() {
                every_file_known = false;
            } else {
                super::push_unique(&mut files, file.to_owned());
            }
        }
        let mut out = vec![format!("--testNamePattern=^(?:{})$", patterns.join("|"))];
        if every_file_known {
            out.extend(files);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_describe_titles_either_way() {
        assert_eq!(
            Vitest.args(&[
                "sample.test.js::math > nested > inner (x)",
                "sample.test.js::top level"
            ]),
            [
                "--testNamePattern=^(?:math(?: | > )nested(?: | > )inner \\(x\\)|top level)$",
                "sample.test.js"
            ]
        );
    }
}
