//! `gradle`: `--tests` and `Class.method` for each selected test, one a line, for
//! `gradle test`.
//!
//! ```text
//! --tests
//! com.example.SampleTest.passes
//! --tests
//! com.example.ParamTest.lessThanThree[0: n=1 [x] q "dq" ü]
//! ```
//!
//! Gradle writes the fully qualified class as the classname and the method (with the parameter
//! suffix of a JUnit 4 `Parameterized` test) as the name. In a `--tests` pattern only `*` is a
//! wildcard, so names pass through as they are; a control character is written as `*`.
//!
//! **Only selection applies**: Gradle orders test classes itself.

use super::Selector;

pub struct Gradle;

impl Selector for Gradle {
    fn args(&self, ids: &[&str]) -> Vec<String> {
        let mut patterns = Vec::new();
        for id in ids {
            let pattern = match id.split_once("::") {
                Some((class, method)) => format!("{class}.{method}"),
                None => (*id).to_owned(),
            };
            let pattern: String = pattern
                .chars()
                .map(|c| if c.is_control() { '*' } else { c })
                .collect();
            super::push_unique(&mut patterns, pattern);
        }
        patterns
            .into_iter()
            .flat_map(|p| ["--tests".to_owned(), p])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pattern_per_test() {
        assert_eq!(
            Gradle.args(&["com.example.A::b", "com.example.P::m[0: a, b]\n"]),
            [
                "--tests",
                "com.example.A.b",
                "--tests",
                "com.example.P.m[0: a, b]*"
            ]
        );
    }
}
