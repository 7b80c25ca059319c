//! `go`: `-run=^(?:TestA|TestB)$`, then the packages, one a line, for `go test` (or after
//! `gotestsum … --`).
//!
//! ```text
//! -run=^(?:TestFails|TestParam)$
//! example.com/sample
//! example.com/sample/crash
//! ```
//!
//! gotestsum and go-junit-report write the package import path as the classname and the test
//! as the name, subtests as `Parent/child` (spaces turned into `_`). Selection is by top-level
//! test: a selected subtest runs its whole parent, with every sibling subtest — `-run` cannot
//! pick a subtest of one parent without filtering the subtests of all the others.
//! `go test` has one `-run` for all packages, so a top-level name selected in one package also
//! runs in another listed package that has a test of the same name. Put no package pattern
//! (`./...`) in the command: the plan lists the packages. When an id has no package, no
//! packages are printed and the command's own apply.
//!
//! **Only selection applies**: go runs tests in source order.

use super::{Selector, regex};

pub struct Go;

impl Selector for Go {
    fn args(&self, ids: &[&str]) -> Vec<String> {
        if ids.is_empty() {
            return Vec::new();
        }
        let mut names = Vec::new();
        let mut packages = Vec::new();
        let mut every_package_known = true;
        for id in ids {
            // Package paths contain no `::`; test names are Go identifiers plus subtest paths.
            let (package, name) = super::split_first(id);
            let top = name.split('/').next().unwrap_or(name);
            super::push_unique(&mut names, top.to_owned());
            if package.is_empty() {
                every_package_known = false;
            } else {
                super::push_unique(&mut packages, package.to_owned());
            }
        }
        let mut out = vec![format!(
            "-run={}",
            regex::anchored_union(names.iter().map(String::as_str))
        )];
        if every_package_known {
            out.extend(packages);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_top_level_tests_per_package() {
        assert_eq!(
            Go.args(&[
                "example.com/sample::TestParam/with_space_[x]",
                "example.com/sample::TestÜnïcode名前",
                "example.com/sample/crash::TestPanics",
                "example.com/sample::TestParam",
            ]),
            [
                "-run=^(?:TestParam|TestÜnïcode名前|TestPanics)$",
                "example.com/sample",
                "example.com/sample/crash"
            ]
        );
        assert_eq!(Go.args(&["TestA"]), ["-run=^(?:TestA)$"]);
    }
}
