//! `jest`: one line, `--testNamePattern=^(?:…)$`, matching each selected test's full name.
//!
//! ```text
//! --testNamePattern=^(?:math passes|math name with spaces \[brackets\] 'single' "double"|top level)$
//! ```
//!
//! jest-junit's default templates write the full name (`describe` titles and the test title,
//! joined by spaces) as both classname and name, so ids read `math passes::math passes`; that
//! full name is what `--testNamePattern` matches. With a custom `classNameTemplate` (one without
//! `::`) the part after the first `::` is taken as the full name.
//!
//! Jest compiles the pattern case-insensitively, so a test whose full name differs from a
//! selected one only in letter case runs too. Every test file is still loaded; files with no
//! selected test report their tests as skipped.
//!
//! **Only selection applies**: Jest orders files itself and runs a file's tests in order.

use super::{Selector, regex};

pub struct Jest;

impl Selector for Jest {
    fn args(&self, ids: &[&str]) -> Vec<String> {
        if ids.is_empty() {
            return Vec::new();
        }
        let mut names = Vec::new();
        for id in ids {
            super::push_unique(&mut names, full_name(id).to_owned());
        }
        vec![format!(
            "--testNamePattern={}",
            regex::anchored_union(names.iter().map(String::as_str))
        )]
    }
}

/// The test's full name: the repeated half of `name::name`, else what follows the first `::`.
fn full_name(id: &str) -> &str {
    let half = id.len().saturating_sub(2) / 2;
    if id.len() >= 2
        && id.is_char_boundary(half)
        && id[half..].starts_with("::")
        && id[..half] == id[half + 2..]
    {
        return &id[..half];
    }
    super::split_first(id).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_full_name() {
        assert_eq!(full_name("math passes::math passes"), "math passes");
        assert_eq!(full_name("a::b::a::b"), "a::b");
        assert_eq!(full_name("sample.test.js::math passes"), "math passes");
        assert_eq!(full_name("top"), "top");
        assert_eq!(
            Jest.args(&["math (x)::math (x)", "top level::top level"]),
            ["--testNamePattern=^(?:math \\(x\\)|top level)$"]
        );
    }
}
