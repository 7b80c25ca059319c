//! Whole CLI runs — exit code, standard output, standard error — as insta snapshots, one per
//! output format. Temp paths are redacted; long floats are rounded to six decimals so a
//! last-digit difference in `exp` between platforms does not fail them.

use crate::util::{self, History, Sandbox, tmp_redacted_settings};

/// A few tests of the history, one of them new: small enough to read in a snapshot, varied
/// enough that every reason shows.
const CANDIDATES: &[&str] = &[
    "app.Core::test_000",
    "app.Core::test_001",
    "app.Core::test_002",
    "app.Core::test_003",
    History::OFTEN,
    History::SOMETIMES,
    History::LATE,
    History::MUST,
    "app.New::brand_new",
];

fn trained() -> Sandbox {
    let sb = Sandbox::new();
    sb.write("fedtest.toml", "[plan]\nmust_run = [\"app.Critical::*\"]\n");
    History::record(&sb, History::BUILDS);
    sb.write_tests("tests.txt", CANDIDATES);
    sb
}

/// Run `cmd` and render its exit code and both streams, floats rounded.
fn transcript(cmd: &mut assert_cmd::Command) -> String {
    round_floats(&util::transcript(cmd))
}

/// Round every decimal number with more than six decimals to six, dropping trailing zeros
/// (`1.4999999999999998` → `1.5`). A regex filter could only cut digits, which turns such
/// values into `1.499999`.
fn round_floats(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let starts_number = b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric());
        if !starts_number {
            let c = text[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let mut end = i;
        if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
            end = i + 1;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
        }
        let number = &text[start..end];
        match number.split_once('.') {
            Some((_, decimals)) if decimals.len() > 6 => {
                let v: f64 = number.parse().expect("a decimal number");
                let rounded = format!("{v:.6}");
                let trimmed = rounded.trim_end_matches('0');
                out.push_str(trimmed);
                if trimmed.ends_with('.') {
                    out.push('0');
                }
            }
            _ => out.push_str(number),
        }
        i = end;
    }
    out
}

fn snapshot(sb: &Sandbox, name: &str, cmd: &mut assert_cmd::Command) {
    let text = transcript(cmd);
    tmp_redacted_settings(sb).bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn plan_list() {
    let sb = trained();
    snapshot(
        &sb,
        "plan_list",
        sb.fedtest().args([
            "plan",
            "--tests",
            "tests.txt",
            "--budget",
            "10%",
            "--build",
            "next",
        ]),
    );
}

#[test]
fn plan_json() {
    let sb = trained();
    snapshot(
        &sb,
        "plan_json",
        sb.fedtest().args([
            "plan",
            "--tests",
            "tests.txt",
            "--budget",
            "10%",
            "--build",
            "next",
            "--format",
            "json",
        ]),
    );
}

#[test]
fn plan_explain() {
    let sb = trained();
    snapshot(
        &sb,
        "plan_explain",
        sb.fedtest().args([
            "plan",
            "--tests",
            "tests.txt",
            "--budget",
            "10%",
            "--build",
            "next",
            "--explain",
        ]),
    );
}

#[test]
fn plan_json_explain() {
    let sb = trained();
    snapshot(
        &sb,
        "plan_json_explain",
        sb.fedtest().args([
            "plan",
            "--tests",
            "tests.txt",
            "--budget",
            "recall:0.9",
            "--build",
            "next",
            "--format",
            "json",
            "--explain",
        ]),
    );
}

#[test]
fn plan_cold_start() {
    let sb = Sandbox::new();
    History::record(&sb, 2);
    sb.write_tests("tests.txt", CANDIDATES);
    snapshot(
        &sb,
        "plan_cold_start",
        sb.fedtest()
            .args(["plan", "--tests", "tests.txt", "--budget", "10%"]),
    );
}

#[test]
fn plan_corrupt_store() {
    let sb = Sandbox::new();
    sb.write(
        "data/history.sqlite",
        "garbage, not a database\n".repeat(100),
    );
    sb.write_tests("tests.txt", CANDIDATES);
    snapshot(
        &sb,
        "plan_corrupt_store",
        sb.fedtest()
            .args(["plan", "--tests", "tests.txt", "--budget", "10%"]),
    );
}

#[test]
fn model_text() {
    let sb = trained();
    snapshot(&sb, "model", sb.fedtest().arg("model"));
}

#[test]
fn model_prior_text() {
    let sb = Sandbox::new();
    snapshot(&sb, "model_prior", sb.fedtest().arg("model"));
}

#[test]
fn eval_text() {
    let sb = trained();
    snapshot(&sb, "eval", sb.fedtest().arg("eval"));
}

#[test]
fn record_messages() {
    let sb = Sandbox::new();
    sb.write(
        "first.xml",
        crate::util::Junit::new()
            .pass("a::one", 0.1)
            .fail("a::two", 0.2)
            .case("a::three", crate::util::Outcome::Skip, 0.0)
            .case("a::four", crate::util::Outcome::Error, 0.3)
            .to_xml(),
    );
    sb.write(
        "bad.xml",
        "<?xml version=\"1.0\"?>\n<testsuites>\n  <testsuite name=\"s\">\n    <testcase name=\"a\"></testsuite>\n</testsuites>\n",
    );
    let mut text = String::new();
    for args in [
        &["record", "--build", "b1", "--junit", "first.xml"][..],
        &["record", "--build", "b1", "--junit", "first.xml"],
        &["record", "--build", "b2", "--junit", "bad.xml"],
        &["record", "--build", "b2", "--junit", "reports/*.xml"],
    ] {
        text.push_str(&format!("$ fedtest {}\n", args.join(" ")));
        text.push_str(&transcript(sb.fedtest().args(args)));
        text.push('\n');
    }
    tmp_redacted_settings(&sb).bind(|| insta::assert_snapshot!("record_messages", text));
}

#[test]
fn round_floats_rounds_only_long_decimals() {
    assert_eq!(
        round_floats(
            "p=0.49254712345, d=1.4999999999999998, e=2.0000000001, v0.1.0, 66.5 s, x1.23456789"
        ),
        "p=0.492547, d=1.5, e=2.0, v0.1.0, 66.5 s, x1.23456789"
    );
}

#[test]
fn eval_json() {
    let sb = trained();
    snapshot(
        &sb,
        "eval_json",
        sb.fedtest().args(["eval", "--format", "json"]),
    );
}
