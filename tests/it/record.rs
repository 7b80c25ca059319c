//! `fedtest record`: what goes into the history, what is refused, and that a refused input
//! leaves the history exactly as it was.

use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::util::{Junit, Outcome, Sandbox, stderr};

/// A first build, so the "store unchanged" checks compare a real store.
fn sandbox_with_one_build() -> Sandbox {
    let sb = Sandbox::new();
    sb.record(
        "b1",
        &Junit::new()
            .pass("suite.A::one", 0.5)
            .fail("suite.A::two", 1.0)
            .pass("suite.B::three", 0.2),
    );
    sb
}

#[test]
fn recording_the_same_build_twice_changes_nothing() {
    let sb = sandbox_with_one_build();
    let before = sb.data_dir_state();
    before.assert_quiescent();

    // The same id with the same reports, then with different ones: both are no-ops.
    let again = sb
        .fedtest()
        .args(["record", "--build", "b1", "--junit", "reports/b1.xml"])
        .assert()
        .success()
        .stderr(predicate::str::contains("already recorded"))
        .get_output()
        .clone();
    assert!(stderr(&again).contains("b1"), "{}", stderr(&again));
    assert_eq!(sb.data_dir_state(), before);

    let other = sb.write(
        "reports/other.xml",
        Junit::new().fail("suite.A::one", 9.0).to_xml(),
    );
    sb.fedtest()
        .args(["record", "--build", "b1", "--junit"])
        .arg(other)
        .assert()
        .success()
        .stderr(predicate::str::contains("already recorded"));
    assert_eq!(sb.data_dir_state(), before);

    assert_eq!(sb.eval_json()["builds"], 1);
}

/// Issue 16: act gives every run `GITHUB_RUN_ID=1`. A build is (build id, commit): the same id
/// for another commit is a new build, with a warning, not a silent no-op.
#[test]
fn issue16_a_reused_build_id_for_another_commit_is_a_new_build() {
    let sb = Sandbox::new();
    let report = sb.write("r.xml", Junit::new().pass("a::x", 0.1).to_xml());
    let record = |commit: &str| {
        sb.fedtest()
            .args([
                "record",
                "--build",
                "gh-1-1-test",
                "--commit",
                commit,
                "--junit",
            ])
            .arg(&report)
            .assert()
            .success()
            .get_output()
            .clone()
    };
    let a = "a".repeat(40);
    let a = a.as_str();
    let b = "b".repeat(40);
    let b = b.as_str();
    assert!(stderr(&record(a)).contains("recorded build gh-1-1-test (#1)"));
    let second = stderr(&record(b));
    assert!(
        second.contains("build id gh-1-1-test is already recorded for another commit")
            && second.contains("recorded build gh-1-1-test@bbbbbbbbbbbb (#2)"),
        "{second}"
    );
    // Each (id, commit) is recorded once.
    assert!(stderr(&record(b)).contains("already recorded (build #2)"));
    assert!(stderr(&record(a)).contains("already recorded (build #1)"));
    assert_eq!(sb.eval_json()["builds"], 2);
}

#[test]
fn recording_without_build_id_is_idempotent_by_content() {
    let sb = Sandbox::new();
    let report = sb.write(
        "report.xml",
        Junit::new().pass("a::x", 0.1).fail("a::y", 0.1).to_xml(),
    );
    sb.fedtest()
        .args(["record", "--junit"])
        .arg(&report)
        .assert()
        .success();
    let before = sb.data_dir_state();
    before.assert_quiescent();
    sb.fedtest()
        .args(["record", "--junit"])
        .arg(&report)
        .assert()
        .success()
        .stderr(predicate::str::contains("already recorded"));
    assert_eq!(sb.data_dir_state(), before);
}

#[test]
fn record_accepts_directories_and_globs() {
    let sb = Sandbox::new();
    sb.write("out/a/one.xml", Junit::new().pass("a::one", 0.1).to_xml());
    sb.write("out/b/two.xml", Junit::new().fail("b::two", 0.1).to_xml());
    sb.write(
        "glob/three.xml",
        Junit::new().pass("c::three", 0.1).to_xml(),
    );
    sb.write("out/notes.txt", "not a report");
    sb.fedtest()
        .args(["record", "--build", "b1", "--junit", "out", "glob/*.xml"])
        .assert()
        .success()
        .stderr(predicate::str::contains("3 tests, 1 failed"));
    let plan = sb.plan_json(&["a::one", "b::two", "c::three"], &[]);
    assert_eq!(plan["tests"][0]["id"], "b::two", "{plan:#}");
}

/// Run `record --build bad` with `args`; it must exit 3 and leave the data dir as it was.
/// Returns standard error.
fn assert_rejected(sb: &Sandbox, args: &[&str]) -> String {
    let before = sb.data_dir_state();
    let out = sb
        .fedtest()
        .args(["record", "--build", "bad"])
        .args(args)
        .timeout(Duration::from_secs(60))
        .assert()
        .code(3)
        .get_output()
        .clone();
    assert_eq!(sb.data_dir_state(), before, "the store changed");
    let err = stderr(&out);
    assert!(err.starts_with("fedtest: error: "), "{err}");
    err
}

#[test]
fn malformed_xml_is_rejected_with_line_and_column() {
    let sb = sandbox_with_one_build();
    sb.write(
        "bad.xml",
        "<?xml version=\"1.0\"?>\n<testsuites>\n  <testsuite name=\"s\">\n    <testcase name=\"a\"></testsuite>\n  </testsuite>\n</testsuites>\n",
    );
    let err = assert_rejected(&sb, &["--junit", "bad.xml"]);
    assert!(
        predicate::str::is_match(r"bad\.xml:4:\d+: malformed XML")
            .unwrap()
            .eval(&err),
        "{err}"
    );
}

#[test]
fn truncated_xml_is_rejected_with_line_and_column() {
    let sb = sandbox_with_one_build();
    let full = Junit::generated("t", 20, |_| (Outcome::Pass, 0.1)).to_xml();
    sb.write("cut.xml", &full[..full.len() / 2]);
    let err = assert_rejected(&sb, &["--junit", "cut.xml"]);
    assert!(
        predicate::str::is_match(r"cut\.xml:\d+:\d+: malformed XML")
            .unwrap()
            .eval(&err),
        "{err}"
    );

    // Cut at a line boundary: every tag is complete, the root is never closed.
    let lines: Vec<&str> = full.lines().collect();
    sb.write("open.xml", lines[..lines.len() / 2].join("\n"));
    let err = assert_rejected(&sb, &["--junit", "open.xml"]);
    assert!(
        predicate::str::is_match(r"open\.xml:\d+:\d+: malformed XML: unexpected end of file")
            .unwrap()
            .eval(&err),
        "{err}"
    );
}

#[test]
fn missing_report_is_rejected() {
    let sb = sandbox_with_one_build();
    let err = assert_rejected(&sb, &["--junit", "nowhere/report.xml"]);
    assert!(err.contains("nowhere/report.xml"), "{err}");
}

#[test]
fn empty_report_is_rejected() {
    let sb = sandbox_with_one_build();
    sb.write("empty.xml", "");
    let err = assert_rejected(&sb, &["--junit", "empty.xml"]);
    assert!(err.contains("empty.xml"), "{err}");
    assert!(err.contains("no test cases"), "{err}");
}

#[test]
fn report_without_testcases_is_rejected() {
    let sb = sandbox_with_one_build();
    sb.write(
        "zero.xml",
        "<?xml version=\"1.0\"?>\n<testsuites>\n  <testsuite name=\"s\" tests=\"0\"/>\n</testsuites>\n",
    );
    let err = assert_rejected(&sb, &["--junit", "zero.xml"]);
    assert!(err.contains("zero.xml"), "{err}");
    assert!(err.contains("no test cases"), "{err}");
}

#[test]
fn huge_report_is_rejected_by_size_without_reading_it() {
    let sb = sandbox_with_one_build();
    let path = sb.path().join("huge.xml");
    // Sparse: 2 GiB of length, no blocks. Reading it would take seconds and a parser would
    // call its first NUL byte malformed; the size check must come first and say so.
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(2 << 30))
        .expect("create sparse file");
    let started = Instant::now();
    let err = assert_rejected(&sb, &["--junit", "huge.xml"]);
    assert!(err.contains("huge.xml"), "{err}");
    assert!(err.contains("limit"), "{err}");
    assert!(!err.contains("malformed"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn xml_bomb_is_rejected_quickly() {
    let sb = sandbox_with_one_build();
    let mut bomb =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n  <!ENTITY lol \"lol\">\n");
    bomb.push_str("  <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n");
    for i in 2..=9 {
        let prev = format!("&lol{};", i - 1);
        bomb.push_str(&format!("  <!ENTITY lol{i} \"{}\">\n", prev.repeat(10)));
    }
    bomb.push_str("]>\n<testsuites>\n  <testsuite name=\"&lol9;\">\n    <testcase classname=\"&lol9;\" name=\"&lol9;\"/>\n  </testsuite>\n</testsuites>\n");
    sb.write("bomb.xml", bomb);
    let err = assert_rejected(&sb, &["--junit", "bomb.xml"]);
    assert!(
        predicate::str::is_match(r"bomb\.xml:\d+:\d+: ")
            .unwrap()
            .eval(&err),
        "{err}"
    );
}

#[test]
fn binary_file_is_rejected() {
    let sb = sandbox_with_one_build();
    // Deterministic noise with NULs and invalid UTF-8 (an xorshift stream).
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    sb.write("junk.xml", bytes);
    let err = assert_rejected(&sb, &["--junit", "junk.xml"]);
    assert!(err.contains("junk.xml"), "{err}");
}

#[test]
fn glob_matching_nothing_is_rejected() {
    let sb = sandbox_with_one_build();
    let err = assert_rejected(&sb, &["--junit", "target-nowhere/*.xml"]);
    assert!(err.contains("target-nowhere/*.xml"), "{err}");
}

#[test]
fn one_bad_report_rejects_the_whole_build() {
    let sb = sandbox_with_one_build();
    sb.write("mixed/good.xml", Junit::new().pass("m::good", 0.1).to_xml());
    sb.write("mixed/bad.xml", "<testsuites><testsuite>");
    let err = assert_rejected(&sb, &["--junit", "mixed"]);
    assert!(err.contains("bad.xml"), "{err}");
}

#[test]
fn rejected_first_record_creates_no_store() {
    let sb = Sandbox::new();
    sb.write("bad.xml", "<testsuites>");
    sb.fedtest()
        .args(["record", "--build", "b1", "--junit", "bad.xml"])
        .assert()
        .code(3);
    assert!(!sb.data_dir().exists(), "{:?}", sb.data_dir_state());
}

#[test]
fn missing_changed_files_list_is_rejected() {
    let sb = sandbox_with_one_build();
    sb.write("ok.xml", Junit::new().pass("suite.A::one", 0.1).to_xml());
    let err = assert_rejected(
        &sb,
        &["--junit", "ok.xml", "--changed-files", "no-such-list.txt"],
    );
    assert!(err.contains("no-such-list.txt"), "{err}");
}

#[test]
fn unknown_key_in_config_is_a_usage_error() {
    let sb = sandbox_with_one_build();
    sb.write("ok.xml", Junit::new().pass("suite.A::one", 0.1).to_xml());
    sb.write("fedtest.toml", "[plan]\nbudgett = \"50%\"\n");
    let before = sb.data_dir_state();
    sb.fedtest()
        .args(["record", "--build", "b2", "--junit", "ok.xml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("budgett"));
    assert_eq!(sb.data_dir_state(), before);
    sb.fedtest()
        .args(["plan", "--tests", "-"])
        .write_stdin("suite.A::one\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("budgett").and(predicate::str::contains("fedtest.toml")));
}
