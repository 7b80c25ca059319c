//! `nextest`: two lines, `-E` and a filterset, for `cargo nextest run`.
//!
//! ```text
//! -E
//! test(=tests::passes) | (kind(=test) & test(=passes)) | test(=ünïcode_名前)
//! ```
//!
//! nextest's JUnit writes the binary id as the classname (`my-crate` for the library's unit
//! tests, `my-crate::it` for `tests/it.rs`, `my-crate::bin/tool`) and the test's path in the
//! binary as the name, so a canonical id `my-crate::a::b` is either test `a::b` of the library
//! or test `b` of the integration test binary `a`. The filterset names each test by its path
//! with `test(=…)`, and for that second reading adds `kind(=test) & test(=…)`.
//!
//! Why no `binary_id(…)`: nextest rejects a filterset that names a binary it cannot find
//! (nextest-rs/nextest#2153), so one renamed crate in a history-based plan would fail the whole
//! build. The price: a selected test path also runs in *other* binaries that have a test with
//! the same path (two crates each with a `tests::roundtrip`) — more tests, never fewer.
//!
//! **Only selection applies**: nextest runs tests in its own order, in parallel.

use super::Selector;

pub struct Nextest;

impl Selector for Nextest {
    fn args(&self, ids: &[&str]) -> Vec<String> {
        if ids.is_empty() {
            return Vec::new();
        }
        let mut terms = Vec::new();
        for id in ids {
            for term in terms_of(id) {
                super::push_unique(&mut terms, term);
            }
        }
        vec!["-E".to_owned(), terms.join(" | ")]
    }
}

/// Filterset terms that together match the test `id` names.
fn terms_of(id: &str) -> Vec<String> {
    let segments: Vec<&str> = id.split("::").collect();
    match segments.as_slice() {
        [] | [_] => vec![test(id)],
        // `crate::bin/tool::path`: the second segment belongs to the binary id.
        [_, kind, rest @ ..] if kind.contains('/') && !rest.is_empty() => {
            vec![test(&rest.join("::"))]
        }
        [_, path] => vec![test(path)],
        [_, rest @ ..] => vec![
            test(&rest.join("::")),
            format!("(kind(=test) & {})", test(&rest[1..].join("::"))),
        ],
    }
}

/// `test(=path)`, with the characters that end a name matcher escaped.
fn test(path: &str) -> String {
    let mut s = String::with_capacity(path.len() + 8);
    s.push_str("test(=");
    for c in path.chars() {
        if matches!(c, '\\' | ')' | ',') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push(')');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_binary_id_shape() {
        assert_eq!(
            Nextest.args(&[
                "sample::tests::passes",
                "sample::top",
                "sample::bin/tool::cli::parses",
                "sample::tests::passes",
                "odd::a,b)c",
            ]),
            [
                "-E",
                "test(=tests::passes) | (kind(=test) & test(=passes)) | test(=top) | test(=cli::parses) | test(=a\\,b\\)c)"
            ]
        );
        assert!(Nextest.args(&[]).is_empty());
    }
}
