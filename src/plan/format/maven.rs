//! `maven`: `-Dtest=Class#method+method,Class#method` and
//! `-Dsurefire.failIfNoSpecifiedTests=false`, one a line, for `mvn test`.
//!
//! ```text
//! -Dtest=com.example.SampleTest#passes+ünïcode名前,com.example.ParamTest#lessThanThree[2: n=3 [x] q "dq" ü]
//! -Dsurefire.failIfNoSpecifiedTests=false
//! ```
//!
//! Surefire writes the fully qualified class as the classname and the method (with the
//! parameter suffix of a JUnit 4 `Parameterized` test) as the name. In `-Dtest`, `,` `+` `#`
//! separate, `*` `?` are wildcards and `!` `%` start exclusions and regexes; each of those
//! characters in a method name (and `/`, `\`, control characters, and white space at either end)
//! is written as the one-character wildcard `?`, which matches it — and, in theory, any other
//! character in that place. The second argument keeps modules of a multi-module build in
//! which no selected class lives from failing; `fedtest run` checks that tests did run.
//!
//! **Only selection applies**: Surefire orders classes by its `runOrder`.

use super::Selector;

pub struct Maven;

impl Selector for Maven {
    fn args(&self, ids: &[&str]) -> Vec<String> {
        if ids.is_empty() {
            return Vec::new();
        }
        // Class → methods, classes in first-appearance order.
        let mut classes: Vec<(String, Vec<String>)> = Vec::new();
        for id in ids {
            let (class, method) = id.split_once("::").unwrap_or((id, ""));
            let class = pattern(class);
            let idx = match classes.iter().position(|(c, _)| *c == class) {
                Some(i) => i,
                None => {
                    classes.push((class, Vec::new()));
                    classes.len() - 1
                }
            };
            if !method.is_empty() {
                super::push_unique(&mut classes[idx].1, pattern(method));
            }
        }
        let spec: Vec<String> = classes
            .into_iter()
            .map(|(class, methods)| {
                if methods.is_empty() {
                    class
                } else {
                    format!("{class}#{}", methods.join("+"))
                }
            })
            .collect();
        vec![
            format!("-Dtest={}", spec.join(",")),
            "-Dsurefire.failIfNoSpecifiedTests=false".to_owned(),
        ]
    }
}

/// `text` with every character that means something in `-Dtest` replaced by `?`.
fn pattern(text: &str) -> String {
    let last = text.chars().count().saturating_sub(1);
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            let special = matches!(c, ',' | '+' | '#' | '*' | '?' | '!' | '%' | '/' | '\\')
                || c.is_control()
                || ((i == 0 || i == last) && c.is_whitespace());
            if special { '?' } else { c }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_methods_by_class() {
        assert_eq!(
            Maven.args(&[
                "com.example.SampleTest::passes",
                "com.example.ParamTest::less[0: n=1, a+b#c]",
                "com.example.SampleTest::ünïcode名前",
            ]),
            [
                "-Dtest=com.example.SampleTest#passes+ünïcode名前,com.example.ParamTest#less[0: n=1? a?b?c]",
                "-Dsurefire.failIfNoSpecifiedTests=false"
            ]
        );
    }
}
