//! `phpunit`: `--filter` and `/^(?:Class::test|…)$/`, one a line, for `phpunit`.
//!
//! ```text
//! --filter
//! /^(?:SampleTest::testParam with data set "one"|App\\Sub\\OtherTest::testPasses)$/
//! ```
//!
//! PHPUnit 9 writes the class (namespace separators as `.`) as the classname and the method,
//! with ` with data set "name"` or ` with data set #0` for a data provider row, as the name;
//! its filter matches a regex against `Class::name` with the real namespace separators, so the
//! mapping turns `.` back into `\` and anchors an escaped alternation. Exact.
//!
//! **Only selection applies**: PHPUnit runs in suite order (or `--order-by`).

use super::{Selector, regex};

pub struct Phpunit;

impl Selector for Phpunit {
    fn args(&self, ids: &[&str]) -> Vec<String> {
        if ids.is_empty() {
            return Vec::new();
        }
        let mut names = Vec::new();
        for id in ids {
            // A data set name may contain `::`; a class name cannot.
            let name = match super::split_first(id) {
                ("", name) => name.to_owned(),
                (class, name) => format!("{}::{name}", class.replace('.', "\\")),
            };
            super::push_unique(&mut names, name);
        }
        vec![
            "--filter".to_owned(),
            format!(
                "/{}/",
                regex::anchored_union(names.iter().map(String::as_str))
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_class_and_data_set() {
        assert_eq!(
            Phpunit.args(&[
                "App.Sub.OtherTest::testPasses",
                "SampleTest::testParam with data set \"a/b (c)\"",
            ]),
            [
                "--filter",
                "/^(?:App\\\\Sub\\\\OtherTest::testPasses|SampleTest::testParam with data set \"a\\/b \\(c\\)\")$/"
            ]
        );
    }
}
