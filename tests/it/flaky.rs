//! Flaky tests: detection from history, `fedtest flaky` in every format, the quarantine file,
//! `gate`, and CODEOWNERS. Issue 5.

use serde_json::Value;

use crate::util::{Junit, Outcome, Sandbox, stderr, stdout, tmp_redacted_settings, transcript};

const QUARANTINE: &str = "fedtest-quarantine.toml";
/// The fixtures' entries expire in 2099: allow that (by default an entry may last 180 days).
const LONG_QUARANTINES: &str = "[flaky]\nmax_quarantine_days = 36500\n";

/// Temp paths and dates (entries default to today + 30 days) redacted.
fn settings(sb: &Sandbox) -> insta::Settings {
    let mut s = tmp_redacted_settings(sb);
    s.add_filter(r"20[2-9]\d-\d\d-\d\d", "[DATE]");
    s
}

fn snapshot(sb: &Sandbox, name: &str, cmd: &mut assert_cmd::Command) {
    let text = transcript(cmd);
    settings(sb).bind(|| insta::assert_snapshot!(name, text));
}

/// A retry: the test failed, then passed, in one build (two rows, as pytest-rerunfailures
/// and gotestsum write them).
fn retried(j: Junit, id: &str) -> Junit {
    j.fail(id, 1.0).pass(id, 1.0)
}

/// Twelve builds of a small suite:
/// - `app.Core::test_00x` always pass;
/// - `app.Retry::flaky` is retried in builds 3, 6 and 9 (fails, then passes);
/// - `app.Flip::often` fails every other build (no retry, changed files unknown);
/// - `app.Once::broke` failed in build 5 only (one break and its fix: not flaky);
/// - `app.Old::healed` was retried in build 1, then passed 11 times (not trusted again yet).
fn history(sb: &Sandbox) {
    for b in 1..=12usize {
        let mut j = Junit::generated("app.Core", 3, |_| (Outcome::Pass, 0.5));
        j = if b.is_multiple_of(3) {
            retried(j, "app.Retry::flaky")
        } else {
            j.pass("app.Retry::flaky", 1.0)
        };
        j = if b.is_multiple_of(2) {
            j.fail("app.Flip::often", 1.0)
        } else {
            j.pass("app.Flip::often", 1.0)
        };
        j = if b == 5 {
            j.fail("app.Once::broke", 1.0)
        } else {
            j.pass("app.Once::broke", 1.0)
        };
        j = if b == 1 {
            retried(j, "app.Old::healed")
        } else {
            j.pass("app.Old::healed", 1.0)
        };
        sb.record(&format!("b{b:02}"), &j);
    }
}

fn flaky_json(sb: &Sandbox, extra: &[&str]) -> Value {
    let out = sb
        .fedtest()
        .args(["flaky", "--format", "json"])
        .args(extra)
        .assert()
        .success()
        .get_output()
        .clone();
    serde_json::from_slice(&out.stdout).expect("flaky --format json prints JSON")
}

fn listed(v: &Value) -> Vec<(String, f64)> {
    v["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .map(|t| {
            (
                t["id"].as_str().expect("id").to_owned(),
                t["score"].as_f64().expect("score"),
            )
        })
        .collect()
}

#[test]
fn retries_and_repeated_flips_are_flaky_one_break_is_not() {
    let sb = Sandbox::new();
    history(&sb);
    let v = flaky_json(&sb, &[]);
    let ids: Vec<String> = listed(&v).into_iter().map(|(id, _)| id).collect();
    // Retry flakes are proof (same code, two outcomes): four of them outweigh eleven flips
    // without a retry, and even one, eleven clean runs ago, still does (a test is trusted
    // again after 20) — flips alone could be a test broken and fixed again and again.
    assert_eq!(
        ids,
        ["app.Retry::flaky", "app.Old::healed", "app.Flip::often"],
        "{v:#}"
    );
    let retry = &v["tests"][0];
    assert_eq!(retry["retry_flakes"], 4);
    assert_eq!(retry["first_flake"], "b03");
    assert_eq!(retry["last_flake"], "b12");
    // Everything with a history, scored.
    let all = listed(&flaky_json(&sb, &["--min-score", "0"]));
    assert_eq!(all.len(), 7, "{all:?}");
    let score = |id: &str| all.iter().find(|(i, _)| i == id).expect(id).1;
    assert!(score("app.Once::broke") < 0.5);
    assert!(score("app.Old::healed") < score("app.Retry::flaky"));
    assert!(score("app.Core::test_000") < 0.03);
}

#[test]
fn a_test_that_stays_green_is_trusted_again_within_20_builds() {
    let sb = Sandbox::new();
    for b in 1..=6usize {
        let j = Junit::new().pass("app.Core::a", 1.0);
        let j = if b.is_multiple_of(2) {
            retried(j, "app.R::r")
        } else {
            j.pass("app.R::r", 1.0)
        };
        sb.record(&format!("b{b:02}"), &j);
    }
    assert_eq!(listed(&flaky_json(&sb, &[])).len(), 1);
    let mut clean = 0;
    while !listed(&flaky_json(&sb, &[])).is_empty() {
        clean += 1;
        assert!(clean <= 20, "still flaky after 20 clean builds");
        sb.record(
            &format!("c{clean:02}"),
            &Junit::new().pass("app.Core::a", 1.0).pass("app.R::r", 1.0),
        );
    }
}

#[test]
fn flips_on_the_same_commit_are_flaky_and_own_changes_explain_flips() {
    let sb = Sandbox::new();
    let changed = sb.write("changed.txt", "tests/test_x.py\n");
    let record = |build: &str, commit: &str, with_changes: bool, j: &Junit| {
        let path = sb.write(&format!("reports/{build}.xml"), j.to_xml());
        let mut cmd = sb.fedtest();
        cmd.args(["record", "--build", build, "--commit", commit, "--junit"])
            .arg(path);
        if with_changes {
            cmd.arg("--changed-files").arg(&changed);
        }
        cmd.assert().success();
    };
    let pass = Junit::new()
        .pass("tests.test_x::t", 1.0)
        .pass("tests.test_y::t", 1.0);
    let fail = Junit::new()
        .fail("tests.test_x::t", 1.0)
        .fail("tests.test_y::t", 1.0);
    record("b1", "c1", true, &pass);
    record("b2", "c2", true, &fail);
    record("b3", "c2", false, &pass); // re-run of the same commit: passes now
    let v = flaky_json(&sb, &["--min-score", "0"]);
    let t = |id: &str| {
        v["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("{id}: {v:#}"))
            .clone()
    };
    let x = t("tests.test_x::t");
    assert_eq!(
        (x["related_flips"].as_u64(), x["same_commit_flips"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(x["flaky"], true);
    let y = t("tests.test_y::t");
    assert_eq!(
        (
            y["unrelated_flips"].as_u64(),
            y["same_commit_flips"].as_u64()
        ),
        (Some(1), Some(1))
    );
}

#[test]
fn flaky_formats() {
    let sb = Sandbox::new();
    history(&sb);
    sb.write(
        ".github/CODEOWNERS",
        "* @everyone\napp/Retry* @retry-team\n",
    );
    snapshot(&sb, "flaky_table", sb.fedtest().args(["flaky"]));
    snapshot(
        &sb,
        "flaky_json",
        sb.fedtest().args(["flaky", "--format", "json"]),
    );
    snapshot(
        &sb,
        "flaky_markdown",
        sb.fedtest().args(["flaky", "--format", "markdown"]),
    );
}

#[test]
fn flaky_without_history_is_an_empty_list() {
    let sb = Sandbox::new();
    let out = sb
        .fedtest()
        .arg("flaky")
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        stdout(&out).contains("no test scores 0.50 or more"),
        "{}",
        stdout(&out)
    );
    sb.fedtest()
        .args(["flaky", "--min-score", "1.5"])
        .assert()
        .code(2);
}

#[test]
fn owners_come_from_codeowners_by_file_or_class_name() {
    let sb = Sandbox::new();
    sb.write(
        "docs/CODEOWNERS",
        "# docs/ is one of the places hosts look\n* @fallback\n/tests/ @qa\n/tests/api/ @api-team\n\
         /tests/test_db.py @db-team\n",
    );
    // One test names its file; the other only a dotted class name.
    let report = |b: usize| {
        let fail = b.is_multiple_of(2);
        let case = |classname: &str, name: &str, file: Option<&str>| {
            let file = file.map_or(String::new(), |f| format!(" file=\"{f}\""));
            let body = if fail { "<failure message=\"x\"/>" } else { "" };
            format!(
                "<testcase classname=\"{classname}\" name=\"{name}\"{file} time=\"1\">{body}</testcase>"
            )
        };
        format!(
            "<testsuite name=\"s\" tests=\"3\">{}{}{}</testsuite>",
            case("api.TestUsers", "test_get", Some("tests/api/test_users.py")),
            case("tests.test_db.TestDb", "test_conn", None),
            case("other.Thing", "test_x", None)
        )
    };
    for b in 1..=10 {
        let path = sb.write(&format!("r/{b}.xml"), report(b));
        sb.fedtest()
            .args(["record", "--build", &format!("b{b}"), "--junit"])
            .arg(path)
            .assert()
            .success();
    }
    let v = flaky_json(&sb, &["--min-score", "0"]);
    let owners = |id: &str| -> Vec<String> {
        let t = v["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("{id}: {v:#}"));
        serde_json::from_value(t["owners"].clone()).unwrap()
    };
    assert_eq!(owners("api.TestUsers::test_get"), ["@api-team"]);
    assert_eq!(owners("tests.test_db.TestDb::test_conn"), ["@db-team"]);
    assert_eq!(owners("other.Thing::test_x"), ["@fallback"]);
    assert_eq!(v["codeowners"], "./docs/CODEOWNERS");
}

const REVIEWED: &str = "\
# Quarantine — reviewed by the QA guild. Keep entries sorted by team.

# Team A
[[test]]
id = \"app.A::slow\"
reason = \"times out on shared runners\"  # see issue 12
owner = \"@team-a\"
expires = 2099-06-30

# Team B: this one is known to race
[[test]]
id = \"app.B::race\"
reason = \"data race in the fixture\"
owner = \"@team-b\"
expires = 2099-12-31
";

#[test]
fn quarantine_round_trip_keeps_comments_and_order() {
    let sb = Sandbox::new();
    sb.write(QUARANTINE, REVIEWED);
    sb.write("fedtest.toml", LONG_QUARANTINES);
    sb.fedtest()
        .args([
            "quarantine",
            "add",
            "app.C::new",
            "--reason",
            "flaky: retried twice this week",
            "--owner",
            "@team-c",
            "--expires",
            "2099-01-15",
        ])
        .assert()
        .success();
    sb.fedtest()
        .args(["quarantine", "remove", "app.A::slow"])
        .assert()
        .success();
    let text = std::fs::read_to_string(sb.path().join(QUARANTINE)).unwrap();
    assert_eq!(
        text,
        "\
# Quarantine — reviewed by the QA guild. Keep entries sorted by team.

# Team B: this one is known to race
[[test]]
id = \"app.B::race\"
reason = \"data race in the fixture\"
owner = \"@team-b\"
expires = 2099-12-31

[[test]]
id = \"app.C::new\"
reason = \"flaky: retried twice this week\"
owner = \"@team-c\"
expires = 2099-01-15
"
    );
    // Adding what is there, removing what is not: errors, and the file is untouched.
    sb.fedtest()
        .args(["quarantine", "add", "app.B::race", "--reason", "again"])
        .assert()
        .code(2);
    sb.fedtest()
        .args(["quarantine", "remove", "app.Z::absent"])
        .assert()
        .code(2);
    assert_eq!(
        std::fs::read_to_string(sb.path().join(QUARANTINE)).unwrap(),
        text
    );
    snapshot(
        &sb,
        "quarantine_list",
        sb.fedtest().args(["quarantine", "list"]),
    );
}

#[test]
fn a_new_quarantine_file_takes_owners_from_codeowners() {
    let sb = Sandbox::new();
    sb.write("CODEOWNERS", "/app/ @app-team\n");
    sb.fedtest()
        .args(["quarantine", "add", "app.Db::t", "--reason", "flaky"])
        .assert()
        .success();
    let text = std::fs::read_to_string(sb.path().join(QUARANTINE)).unwrap();
    assert!(text.starts_with("# Quarantined tests"), "{text}");
    assert!(text.contains("owner = \"@app-team\""), "{text}");
    let out = sb
        .fedtest()
        .args(["quarantine", "list", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["entries"][0]["id"], "app.Db::t");
    assert_eq!(v["entries"][0]["expired"], false);
}

#[test]
fn expired_entries_are_reported_and_no_longer_in_effect() {
    let sb = Sandbox::new();
    sb.write(
        QUARANTINE,
        "[[test]]\nid = \"app.Old::t\"\nreason = \"was flaky\"\nexpires = 2020-01-31\n",
    );
    let list = sb
        .fedtest()
        .args(["quarantine", "list"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(stdout(&list).contains("EXPIRED"), "{}", stdout(&list));
    assert!(
        stderr(&list).contains("quarantine of app.Old::t expired on 2020-01-31"),
        "{}",
        stderr(&list)
    );
    // Its failure fails the gate.
    let report = sb.write("r.xml", Junit::new().fail("app.Old::t", 1.0).to_xml());
    let out = sb
        .fedtest()
        .args(["gate", "--junit"])
        .arg(report)
        .assert()
        .code(10)
        .get_output()
        .clone();
    assert!(
        stderr(&out).contains("expired on 2020-01-31"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("1 test failed that is not quarantined: app.Old::t"));
}

#[test]
fn gate_fails_on_a_failure_that_is_not_quarantined() {
    let sb = Sandbox::new();
    sb.write(QUARANTINE, REVIEWED);
    sb.write("fedtest.toml", LONG_QUARANTINES);
    let report = sb.write(
        "r.xml",
        Junit::new()
            .pass("app.A::ok", 1.0)
            .fail("app.B::race", 1.0)
            .fail("app.C::real", 1.0)
            .to_xml(),
    );
    snapshot(
        &sb,
        "gate_failed",
        sb.fedtest().args(["gate", "--junit"]).arg(report),
    );
}

#[test]
fn gate_passes_when_only_quarantined_tests_failed_and_lists_them() {
    let sb = Sandbox::new();
    sb.write(QUARANTINE, REVIEWED);
    sb.write("fedtest.toml", LONG_QUARANTINES);
    let report = sb.write(
        "r.xml",
        Junit::new()
            .pass("app.A::ok", 1.0)
            .fail("app.B::race", 1.0)
            .fail("app.A::slow", 1.0)
            .to_xml(),
    );
    snapshot(
        &sb,
        "gate_quarantined",
        sb.fedtest().args(["gate", "--junit"]).arg(&report),
    );
    // On GitHub the quarantined failures become annotations.
    let out = sb
        .fedtest()
        .env("GITHUB_ACTIONS", "true")
        .args(["gate", "--junit"])
        .arg(&report)
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        stderr(&out).contains("::warning title=fedtest::quarantined test app.B::race failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn gate_passes_a_test_that_passed_on_retry() {
    let sb = Sandbox::new();
    let report = sb.write(
        "r.xml",
        retried(Junit::new().pass("app.A::ok", 1.0), "app.F::flaky").to_xml(),
    );
    let out = sb
        .fedtest()
        .args(["gate", "--junit"])
        .arg(report)
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        stdout(&out).contains("2 tests executed: 1 passed, 1 flaky (passed on retry), 0 failed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn gate_refuses_reports_without_an_executed_test() {
    let sb = Sandbox::new();
    let skipped = sb.write(
        "skipped.xml",
        Junit::new().case("app.A::s", Outcome::Skip, 0.0).to_xml(),
    );
    let empty = sb.write(
        "empty.xml",
        "<testsuites><testsuite name=\"s\" tests=\"0\"/></testsuites>",
    );
    for report in [skipped, empty] {
        let out = sb
            .fedtest()
            .args(["gate", "--junit"])
            .arg(&report)
            .assert()
            .code(10)
            .get_output()
            .clone();
        assert!(
            stderr(&out).contains("the reports hold no executed test"),
            "{}",
            stderr(&out)
        );
    }
    // A report that cannot be read is a bad input, not a verdict.
    let broken = sb.write("broken.xml", "<testsuite><testcase name=");
    sb.fedtest()
        .args(["gate", "--junit"])
        .arg(broken)
        .assert()
        .code(3);
}

#[test]
fn a_malformed_quarantine_file_is_a_bad_input() {
    let sb = Sandbox::new();
    sb.write(
        QUARANTINE,
        "[[test]]\nid = \"a::b\"\nexpires = 2099-01-01\n",
    );
    let report = sb.write("r.xml", Junit::new().pass("a::b", 1.0).to_xml());
    let out = sb
        .fedtest()
        .args(["gate", "--junit"])
        .arg(report)
        .assert()
        .code(3)
        .get_output()
        .clone();
    assert!(
        stderr(&out).contains("missing `reason`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn auto_quarantine_proposes_then_writes() {
    let sb = Sandbox::new();
    history(&sb);
    snapshot(
        &sb,
        "quarantine_auto_preview",
        sb.fedtest().args(["quarantine", "add", "--auto"]),
    );
    assert!(
        !sb.path().join(QUARANTINE).exists(),
        "a preview writes nothing"
    );
    sb.fedtest()
        .args(["quarantine", "add", "--auto", "--write"])
        .assert()
        .success();
    let text = std::fs::read_to_string(sb.path().join(QUARANTINE)).unwrap();
    assert_eq!(text.matches("[[test]]").count(), 3, "{text}");
    // Nothing left to propose; the listing marks them.
    let out = sb
        .fedtest()
        .args(["quarantine", "add", "--auto"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let v = flaky_json(&sb, &[]);
    assert!(
        v["tests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["quarantined"] == true)
    );
}

#[test]
fn stores_from_before_the_flaky_table_get_it_on_the_next_record() {
    let sb = Sandbox::new();
    sb.record("b1", &retried(Junit::new(), "app.R::r"));
    {
        let conn = rusqlite::Connection::open(sb.store_path()).unwrap();
        conn.execute_batch("DROP TABLE flaky").unwrap();
    }
    // Reading an old store works, and shows nothing yet.
    assert!(listed(&flaky_json(&sb, &["--min-score", "0"])).is_empty());
    sb.record("b2", &retried(Junit::new(), "app.R::r"));
    let v = flaky_json(&sb, &[]);
    assert_eq!(listed(&v).len(), 1, "{v:#}");
    assert_eq!(v["tests"][0]["retry_flakes"], 1);
}

#[test]
fn plans_run_quarantined_tests_last_or_skip_them_visibly() {
    let sb = Sandbox::new();
    sb.write(QUARANTINE, REVIEWED);
    sb.write("fedtest.toml", LONG_QUARANTINES);
    sb.record(
        "b1",
        &Junit::new()
            .pass("app.B::race", 1.0)
            .pass("app.C::ok", 1.0)
            .pass("app.A::slow", 1.0),
    );
    let ids = ["app.B::race", "app.C::ok", "app.D::new", "app.A::slow"];
    let order = |plan: &Value| -> Vec<(String, bool, String)> { crate::util::planned(plan) };
    // Default: quarantined tests are planned like any other.
    let plan = sb.plan_json(&ids, &[]);
    assert!(order(&plan).iter().all(|(_, selected, _)| *selected));
    sb.write(
        "fedtest.toml",
        format!("{LONG_QUARANTINES}quarantined = \"last\"\n"),
    );
    let plan = sb.plan_json(&ids, &[]);
    let got: Vec<String> = order(&plan).into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(&got[2..], ["app.B::race", "app.A::slow"], "{plan:#}");
    sb.write(
        "fedtest.toml",
        format!("{LONG_QUARANTINES}quarantined = \"skip\"\n"),
    );
    let plan = sb.plan_json(&ids, &[]);
    let skipped: Vec<(String, bool, String)> = order(&plan)
        .into_iter()
        .filter(|(_, selected, _)| !selected)
        .collect();
    assert_eq!(
        skipped,
        [
            ("app.B::race".to_owned(), false, "quarantined".to_owned()),
            ("app.A::slow".to_owned(), false, "quarantined".to_owned())
        ],
        "{plan:#}"
    );
    let tests = sb.write_tests("c.txt", &ids);
    let out = sb
        .fedtest()
        .args(["plan", "--tests"])
        .arg(tests)
        .assert()
        .success()
        .get_output()
        .clone();
    let text = stdout(&out);
    let mut listed: Vec<&str> = text.lines().collect();
    listed.sort_unstable();
    assert_eq!(listed, ["app.C::ok", "app.D::new"]);
}

#[test]
fn gate_honours_a_wildcard_entry_for_a_whole_module() {
    let sb = Sandbox::new();
    sb.write("fedtest.toml", LONG_QUARANTINES);
    sb.write(
        QUARANTINE,
        "[[test]]\nid = \"app.net.*::*\"\nreason = \"network tests race\"\nexpires = 2099-01-01\n",
    );
    let net_only = sb.write(
        "net.xml",
        Junit::new()
            .pass("app.A::ok", 1.0)
            .fail("app.net.http::test_get[1]", 1.0)
            .fail("app.net.dns::test_resolve", 1.0)
            .to_xml(),
    );
    sb.fedtest()
        .args(["gate", "--junit"])
        .arg(&net_only)
        .assert()
        .success();
    // `app.network` is not under `app.net.`: the pattern is not a prefix match on words.
    let other = sb.write(
        "other.xml",
        Junit::new()
            .fail("app.net.http::test_get[1]", 1.0)
            .fail("app.network::test_up", 1.0)
            .to_xml(),
    );
    let out = sb
        .fedtest()
        .args(["gate", "--junit"])
        .arg(&other)
        .assert()
        .code(10)
        .get_output()
        .clone();
    assert!(
        stderr(&out).contains("app.network::test_up"),
        "{}",
        stderr(&out)
    );
}
