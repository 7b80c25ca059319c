//! The command line itself: version, usage errors, pipes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use predicates::prelude::*;

use crate::util::{Sandbox, stderr};

#[test]
fn version_is_printed() {
    Sandbox::new()
        .fedtest()
        .arg("--version")
        .assert()
        .success()
        .stdout(format!("fedtest {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn plan_without_candidates_is_a_usage_error() {
    let sb = Sandbox::new();
    sb.fedtest()
        .arg("plan")
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("--tests"));
    assert!(!sb.data_dir().exists());
}

#[test]
fn unknown_subcommand_and_missing_junit_are_usage_errors() {
    let sb = Sandbox::new();
    sb.fedtest().arg("frobnicate").assert().code(2);
    sb.fedtest()
        .arg("record")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--junit"));
}

#[test]
fn config_named_explicitly_must_exist() {
    let sb = Sandbox::new();
    sb.fedtest()
        .args(["--config", "missing.toml", "plan", "--tests", "-"])
        .write_stdin("a::b\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.toml"));
}

#[test]
fn closed_stdout_is_not_an_error() {
    // `fedtest plan | head -1`: more output than a pipe buffer holds, so fedtest is still
    // writing when the reader goes away.
    let sb = Sandbox::new();
    let ids: Vec<String> = (0..40_000)
        .map(|i| {
            format!(
                "some.rather.long.module.path.Class{:05}::test_case_number_{i}",
                i % 977
            )
        })
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let list = sb.write_tests("tests.txt", &refs);
    let mut child = sb
        .std_fedtest()
        .args(["plan", "--tests"])
        .arg(list)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fedtest");
    let mut first = String::new();
    {
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        out.read_line(&mut first).expect("read one line");
        // Dropping the reader closes our end of the pipe.
    }
    assert!(first.contains("::test_case_number_"), "{first:?}");
    let out = child.wait_with_output().expect("wait for fedtest");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("error"), "{err}");
    assert!(!err.to_lowercase().contains("broken pipe"), "{err}");
}
