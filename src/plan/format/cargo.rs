//! `cargo`: libtest arguments for after `cargo test --`: `--exact`, then one test path a line.
//!
//! ```text
//! --exact
//! tests::nested::in_module
//! top_level_test
//! ```
//!
//! Canonical ids are as libtest's own JUnit writes them (`cargo test -- -Z unstable-options
//! --format junit`, the only JUnit stable `cargo test` can write, with `RUSTC_BOOTSTRAP=1`):
//! classname = the module path, `crate` for a test at the crate root, `integration` for every
//! test of an integration test binary; name = the function (the whole path for integration
//! tests). The mapping drops `crate::` and `integration::` and keeps the rest as the path.
//! Reports written by cargo-nextest use the `nextest` format instead.
//!
//! `--exact` makes each path match one test, but libtest filters every test binary the same
//! way, so a path that exists in two binaries (library and an integration test) runs in both.
//! `fedtest run --runner cargo` adds the `--` itself when the command is `cargo …` without one.
//!
//! **Only selection applies**: libtest runs the tests of a binary in its own order.

use super::Selector;

pub struct Cargo;

impl Selector for Cargo {
    fn args(&self, ids: &[&str]) -> Vec<String> {
        if ids.is_empty() {
            return Vec::new();
        }
        let mut out = vec!["--exact".to_owned()];
        for id in ids {
            let path = id
                .strip_prefix("crate::")
                .or_else(|| id.strip_prefix("integration::"))
                .unwrap_or(id);
            super::push_unique(&mut out, path.to_owned());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_libtest_pseudo_classnames() {
        assert_eq!(
            Cargo.args(&[
                "tests::nested::in_module",
                "crate::top",
                "integration::tests::passes"
            ]),
            [
                "--exact",
                "tests::nested::in_module",
                "top",
                "tests::passes"
            ]
        );
    }
}
