//! Issue 11, the client-side classes: untrusted text in CI logs and files (1), store integrity
//! (3), numbers that poison estimates (4), and the smaller ones (6). Every payload here is our
//! own; each test asserts the safe behaviour and, for bad input, a store unchanged byte for byte.

use std::path::Path;

use predicates::prelude::*;

use crate::util::{History, Junit, Sandbox, planned, stderr, stdout};

// ------------------------------------------------------------------ class 1: untrusted text

/// Characters that must never reach a log or a CI file as they are.
fn hidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}')
}

/// Every line of `text` is safe: no control character or line separator, no `##[`, and no line
/// that starts (after white space) with `::` unless it is fedtest's own annotation. Lines are
/// split as GitHub's runner splits them: at LF and at CR.
fn assert_log_safe(text: &str, what: &str) {
    for line in text.split(['\n', '\r']) {
        if let Some(c) = line.chars().find(|&c| hidden(c)) {
            panic!("{what}: U+{:04X} in {line:?}", u32::from(c));
        }
        assert!(!line.contains("##["), "{what}: legacy command in {line:?}");
        let trimmed = line.trim_start();
        if trimmed.starts_with("::") {
            let own = ["::error ", "::warning ", "::notice "]
                .iter()
                .any(|p| trimmed.starts_with(p))
                && trimmed
                    .split_once("::")
                    .and_then(|(_, rest)| rest.split_once("::"))
                    .is_some_and(|(props, _)| {
                        props.contains("title=fedtest") && !props.contains(':')
                    });
            assert!(own, "{what}: a report starts a workflow command: {line:?}");
        }
    }
}

/// Names a hostile report uses (XML attribute text): line breaks of every kind, commands after
/// white space, the legacy syntax, an 8-bit CSI, a bidi override, percent-encoded breaks and a
/// very long name.
fn hostile_names() -> Vec<String> {
    vec![
        "ok&#10;::error title=pwned::from a name".into(),
        "cr&#13;::add-mask::hunter2".into(),
        "crlf&#13;&#10;   ::stop-commands::tok3n".into(),
        "nel&#x85;::warning::via NEL".into(),
        "ls&#x2028;::error::via LS".into(),
        "ps&#x2029;::error::via PS".into(),
        "legacy ##[error]old syntax".into(),
        "csi&#x9b;31mred".into(),
        "del&#127;::x".into(),
        "bidi&#x202e;gnp.exe".into(),
        "pct%0A::error::encoded".into(),
        "tab&#9;::error::after a tab".into(),
        format!("long{}", "y".repeat(100_000)),
    ]
}

/// A report whose every test failed, with `names` and hostile file attributes.
fn hostile_report(names: &[String], classname: &str) -> String {
    let mut s = String::from("<?xml version=\"1.0\"?>\n<testsuites><testsuite name=\"s\">\n");
    for (i, n) in names.iter().enumerate() {
        s.push_str(&format!(
            "<testcase classname=\"{classname}\" name=\"{n}\" file=\"f{i}&#10;::error::file.py\" \
             line=\"3\" time=\"0.1\"><failure message=\"m&#10;::error::msg\">body\n::error::body\
             </failure></testcase>\n"
        ));
    }
    s.push_str("</testsuite></testsuites>\n");
    s
}

fn github(cmd: &mut assert_cmd::Command, sb: &Sandbox) {
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", sb.path().join("github_output"))
        .env("GITHUB_STEP_SUMMARY", sb.path().join("step_summary.md"));
}

fn read(sb: &Sandbox, name: &str) -> String {
    std::fs::read_to_string(sb.path().join(name)).unwrap_or_default()
}

#[test]
fn issue_11_gate_lists_hostile_names_safely() {
    let sb = Sandbox::new();
    let names = hostile_names();
    sb.write("r.xml", hostile_report(&names, "k&#10;::error::cls"));
    let mut cmd = sb.fedtest();
    github(&mut cmd, &sb);
    let out = cmd
        .args(["gate", "--junit", "r.xml"])
        .assert()
        .code(10)
        .get_output()
        .clone();
    assert_log_safe(&stdout(&out), "gate stdout");
    assert_log_safe(&stderr(&out), "gate stderr");
    assert_log_safe(&read(&sb, "github_output"), "gate outputs");
    assert_log_safe(&read(&sb, "step_summary.md"), "gate summary");
    // Every failed test is listed, each on one line of its own.
    let listed = stdout(&out)
        .lines()
        .filter(|l| l.starts_with("  k"))
        .count();
    assert_eq!(listed, names.len(), "{}", stdout(&out));
    // The final error line names the tests, escaped.
    let err = stderr(&out);
    let last = err.lines().last().unwrap();
    assert!(last.starts_with("fedtest: error: gate:"), "{last}");
    assert!(last.contains("ok\\n::error title=pwned"), "{last}");

    // The same outside GitHub and on GitLab (a log section, a dotenv report).
    let out = sb
        .fedtest()
        .env("GITLAB_CI", "true")
        .env("CI_JOB_ID", "1")
        .args(["gate", "--junit", "r.xml"])
        .assert()
        .code(10)
        .get_output()
        .clone();
    assert_log_safe(&stdout(&out), "gitlab gate stdout");
    let err = stderr(&out)
        .replace("\r\u{1b}[0K", " ")
        .replace("\u{1b}[0Ksection_", "section_");
    assert_log_safe(&err, "gitlab gate stderr");
    assert_log_safe(&read(&sb, "fedtest.env"), "dotenv");
}

#[test]
fn issue_11_record_refuses_unprintable_ids_and_leaves_the_store() {
    let sb = Sandbox::new();
    sb.record("b1", &Junit::new().pass("a::one", 1.0));
    for (i, name) in hostile_names().iter().enumerate() {
        let unprintable = name.contains("&#") || name.contains("##[");
        for (classname, name) in [("k", name.as_str()), (name.as_str(), "n")] {
            let before = sb.data_dir_state();
            before.assert_quiescent();
            let report = hostile_report(&[name.to_owned()], classname);
            let path = sb.write(&format!("bad{i}.xml"), report);
            let out = sb
                .fedtest()
                .args([
                    "record",
                    "--build",
                    &format!("x{i}-{}", classname.len()),
                    "--junit",
                ])
                .arg(&path)
                .output()
                .unwrap();
            assert_log_safe(&stdout(&out), "record stdout");
            assert_log_safe(&stderr(&out), "record stderr");
            if unprintable {
                assert_eq!(out.status.code(), Some(3), "{name}: {}", stderr(&out));
                assert!(
                    stderr(&out).contains(&format!("bad{i}.xml:3:1: unprintable test id")),
                    "{}",
                    stderr(&out)
                );
                assert_eq!(sb.data_dir_state(), before, "{name}: the store changed");
            } else {
                assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
            }
        }
    }
}

#[test]
fn issue_11_record_refuses_ids_a_log_would_read_as_a_command() {
    let sb = Sandbox::new();
    sb.record("b1", &Junit::new().pass("a::one", 1.0));
    let before = sb.data_dir_state();
    for (classname, name) in [
        ("", "::add-mask::x"),
        ("::error::cls", "n"),
        ("k", "legacy ##[warning]x"),
    ] {
        let path = sb.write("bad.xml", hostile_report(&[name.to_owned()], classname));
        let out = sb
            .fedtest()
            .args(["record", "--build", "x", "--junit"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("workflow command"),
            "{}",
            stderr(&out)
        );
        assert_log_safe(&stderr(&out), "record error");
        assert_eq!(sb.data_dir_state(), before);
    }
}

#[test]
fn issue_11_record_errors_do_not_replay_a_report_file_name() {
    let sb = Sandbox::new();
    sb.record("b1", &Junit::new().pass("a::one", 1.0));
    let before = sb.data_dir_state();
    // File names come from the code under review too.
    for name in [
        "r\n::error::from a file name.xml",
        "r\r::add-mask::x.xml",
        "r\u{1b}]0;title\u{7}.xml",
        "r\u{85}::warning::x.xml",
    ] {
        sb.write(
            name,
            "<testsuites><testsuite><testcase name=\"a\"></testsuites>",
        );
        let out = sb
            .fedtest()
            .args(["record", "--build", "x", "--junit"])
            .arg(sb.path().join(name))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert_log_safe(&stderr(&out), "record error");
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }
    assert_eq!(sb.data_dir_state(), before);
}

/// Candidate lines the runner's collection could hand fedtest.
const HOSTILE_CANDIDATES: &[&str] = &[
    "a::esc\u{1b}[2Jclear",
    "a::cr\r::error::x",
    "::add-mask::secret",
    "   ::warning::indented",
    "a::nel\u{85}::error::y",
    "a::ls\u{2028}::error::z",
    "a::##[error]legacy",
    "a::csi\u{9b}1m",
    "a::plain",
];

#[test]
fn issue_11_plan_prints_one_safe_line_per_candidate() {
    let sb = Sandbox::new();
    History::record(&sb, 2);
    let mut text = HOSTILE_CANDIDATES.join("\n");
    text.push('\n');
    sb.write("tests.txt", text);
    for format in ["list", "pytest", "go", "nextest", "json", "maven", "jest"] {
        let mut cmd = sb.fedtest();
        github(&mut cmd, &sb);
        let out = cmd
            .args([
                "plan",
                "--tests",
                "tests.txt",
                "--explain",
                "--format",
                format,
            ])
            .assert()
            .success()
            .get_output()
            .clone();
        assert_log_safe(&stdout(&out), format);
        assert_log_safe(&stderr(&out), format);
        if format == "list" {
            // Cold start: every candidate, each exactly one line.
            assert_eq!(
                stdout(&out).lines().count(),
                HOSTILE_CANDIDATES.len(),
                "{}",
                stdout(&out)
            );
            assert!(stdout(&out).contains("a::plain\n"));
        }
        if format == "json" {
            let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let ids: Vec<String> = planned(&plan).into_iter().map(|t| t.0).collect();
            let mut want: Vec<String> = HOSTILE_CANDIDATES
                .iter()
                .map(|c| c.trim().to_owned())
                .collect();
            want.sort();
            let mut got = ids.clone();
            got.sort();
            assert_eq!(got, want, "JSON keeps the ids exactly");
        }
    }
    let outputs = read(&sb, "github_output");
    assert_log_safe(&outputs, "outputs");
    assert_log_safe(&read(&sb, "step_summary.md"), "summary");
    // The `selected` output holds one line per selected id.
    let selected = outputs
        .split("selected<<")
        .nth(1)
        .map(|rest| {
            let (delimiter, body) = rest.split_once('\n').unwrap();
            body.split(&format!("\n{delimiter}\n"))
                .next()
                .unwrap()
                .to_owned()
        })
        .unwrap();
    assert_eq!(
        selected.lines().count(),
        HOSTILE_CANDIDATES.len(),
        "{selected}"
    );
}

/// What XML 1.0 forbids, at a known line and column of the report.
#[test]
fn issue_11_characters_xml_forbids_are_refused_with_their_position() {
    let sb = Sandbox::new();
    sb.record("b1", &Junit::new().pass("a::one", 1.0));
    let before = sb.data_dir_state();
    let head = "<?xml version=\"1.0\"?>\n<testsuites><testsuite name=\"s\">\n";
    for (i, (line3, column)) in [
        ("<testcase name=\"a\u{0}b\"/>", 18),
        ("<testcase name=\"a&#1;b\"/>", 18),
        ("<testcase name=\"a&#27;[2J\"/>", 18),
        ("<testcase name=\"a&#x1B;]0;t\"/>", 18),
        ("<testcase name=\"a&#0;\"/>", 18),
        ("<testcase name=\"a&#xFFFE;\"/>", 18),
        ("<testcase name=\"a&#1114112;\"/>", 18),
        (
            "<testcase name=\"a\"><failure>x&#8;y</failure></testcase>",
            30,
        ),
        (
            "<testcase name=\"a\"><system-out>ok\u{1b}[31m</system-out></testcase>",
            34,
        ),
        ("<testcase name=\"a\" time=\"1\u{b}\"/>", 27),
    ]
    .into_iter()
    .enumerate()
    {
        let report = format!("{head}{line3}\n</testsuite></testsuites>\n");
        let path = sb.write(&format!("x{i}.xml"), report);
        for command in ["record", "gate"] {
            let out = sb
                .fedtest()
                .args([command, "--junit"])
                .arg(&path)
                .args(if command == "record" {
                    vec!["--build", "x"]
                } else {
                    vec![]
                })
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(3), "{line3:?}: {}", stderr(&out));
            let want = format!("x{i}.xml:3:{column}: ");
            assert!(
                stderr(&out).contains(&want),
                "{line3:?}: want {want} in {}",
                stderr(&out)
            );
            assert!(
                stderr(&out).contains("not allowed in XML 1.0"),
                "{}",
                stderr(&out)
            );
            assert_log_safe(&stderr(&out), "xml error");
        }
    }
    assert_eq!(sb.data_dir_state(), before);
}

// ------------------------------------------------------------------ class 3: store integrity

fn set_meta(sb: &Sandbox, sql: &str) {
    let conn = rusqlite::Connection::open(sb.store_path()).unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    sb.data_dir_state().assert_quiescent();
}

/// A corrupt totals row: `record` exits 4, `plan` warns and runs everything, and neither
/// writes a byte.
#[test]
fn issue_11_a_corrupt_meta_row_is_reported_and_never_overwritten() {
    for corruption in [
        "UPDATE meta SET value = '{\"builds\": 3, \"last_seq\"' WHERE key = 'global'",
        "UPDATE meta SET value = '[]' WHERE key = 'global'",
        "UPDATE meta SET value = '{\"builds\": \"many\", \"last_seq\": 3, \"failures\": 1}' WHERE key = 'global'",
        "UPDATE meta SET value = '{\"builds\": -3, \"last_seq\": 3, \"failures\": 1}' WHERE key = 'global'",
        "UPDATE meta SET value = '' WHERE key = 'global'",
        "DELETE FROM meta WHERE key = 'global'",
    ] {
        let sb = Sandbox::new();
        History::record(&sb, 12);
        set_meta(&sb, corruption);
        let before = sb.data_dir_state();
        let path = sb.write("next.xml", History::build(12).to_xml());
        sb.fedtest()
            .args(["record", "--build", "b13", "--junit"])
            .arg(&path)
            .assert()
            .code(4)
            .stderr(predicate::str::contains("corrupt").and(predicate::str::contains("meta")));
        assert_eq!(sb.data_dir_state(), before, "{corruption}: record wrote");

        let ids = History::ids();
        let candidates: Vec<&str> = ids.iter().map(String::as_str).collect();
        for from in [vec!["--tests", "tests.txt"], vec!["--from-history"]] {
            sb.write_tests("tests.txt", &candidates);
            let out = sb
                .fedtest()
                .arg("plan")
                .args(&from)
                .args(["--budget", "10%"])
                .assert()
                .success()
                .stderr(
                    predicate::str::contains("fedtest: warning:")
                        .and(predicate::str::contains("corrupt")),
                )
                .get_output()
                .clone();
            assert_eq!(
                stdout(&out).lines().count(),
                candidates.len(),
                "{corruption}"
            );
            assert_eq!(sb.data_dir_state(), before, "{corruption}: plan wrote");
        }
    }
}

/// The store's identity (`PRAGMA application_id`) is checked before anything is written: a
/// database of another program is refused untouched.
#[test]
fn issue_11_a_foreign_database_is_refused_untouched() {
    let foreign: &[&str] = &[
        // Another program's tables, no identity.
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('global', '{}');",
        // Someone else's identity, with our very schema.
        "PRAGMA application_id = 1234; CREATE TABLE builds(seq INTEGER PRIMARY KEY);",
        // A schema version but no identity.
        "PRAGMA user_version = 1; CREATE TABLE t(x);",
        // Another program's WAL-mode database.
        "PRAGMA journal_mode = WAL; PRAGMA application_id = 42; CREATE TABLE t(x); INSERT INTO t VALUES (1);",
    ];
    for sql in foreign {
        let sb = Sandbox::new();
        std::fs::create_dir_all(sb.data_dir()).unwrap();
        let conn = rusqlite::Connection::open(sb.store_path()).unwrap();
        conn.execute_batch(sql).unwrap();
        drop(conn);
        let before = sb.data_dir_state();
        let path = sb.write("r.xml", Junit::new().pass("a::b", 1.0).to_xml());
        sb.fedtest()
            .args(["record", "--build", "b1", "--junit"])
            .arg(&path)
            .assert()
            .code(4)
            .stderr(predicate::str::contains("not a fedtest store"));
        assert_eq!(sb.data_dir_state(), before, "{sql}: record wrote");
        sb.write_tests("tests.txt", &["a::b", "c::d"]);
        sb.fedtest()
            .args(["plan", "--tests", "tests.txt", "--budget", "10%"])
            .assert()
            .success()
            .stdout("a::b\nc::d\n")
            .stderr(predicate::str::contains("fedtest: warning:"));
        assert_eq!(sb.data_dir_state(), before, "{sql}: plan wrote");
    }
}

// ------------------------------------------------------------------ class 4: numbers

fn estimate(plan: &serde_json::Value, id: &str) -> f64 {
    crate::util::planned_test(plan, id)["estimated_seconds"]
        .as_f64()
        .expect("a finite estimate")
}

#[test]
fn issue_11_absurd_durations_are_bounded_and_estimates_recover() {
    let ids = History::ids();
    let candidates: Vec<&str> = ids.iter().map(String::as_str).collect();
    for time in [
        "1e308",
        "1.7976931348623157e308",
        "9e15",
        "1e30",
        "86400000",
    ] {
        let sb = Sandbox::new();
        History::record(&sb, 23);
        // The last build's report says the 30 s test took `time` seconds.
        let xml = History::build(23).to_xml().replace(
            "name=\"late\" time=\"30.000\"",
            &format!("name=\"late\" time=\"{time}\""),
        );
        assert!(xml.contains(time));
        let path = sb.write("b24.xml", xml);
        sb.fedtest()
            .args(["record", "--build", "b24", "--junit"])
            .arg(&path)
            .assert()
            .success()
            .stderr(predicate::str::contains("app.Slow::late"));
        let plan = sb.plan_json(&candidates, &["--budget", "5m"]);
        let late = estimate(&plan, History::LATE);
        assert!(late <= 6.0 * 3600.0, "{time}: {late}");
        let total = plan["estimated_seconds_total"].as_f64().unwrap();
        assert!(
            total.is_finite() && total <= 7.0 * 3600.0,
            "{time}: {total}"
        );
        // One honest report later the estimate is honest again.
        sb.record("b25", &History::build(0));
        let plan = sb.plan_json(&candidates, &["--budget", "30%"]);
        assert!(estimate(&plan, History::LATE) <= 30.0, "{time}: {plan:#}");
        assert!(
            plan["deselected"].as_u64().unwrap() > 0,
            "{time}: 30% runs everything"
        );
    }
}

#[test]
fn issue_11_a_poisoned_stored_estimate_is_bounded_at_once() {
    let ids = History::ids();
    let candidates: Vec<&str> = ids.iter().map(String::as_str).collect();
    for value in ["1e308", "9e999", "-9e999", "1e20"] {
        let sb = Sandbox::new();
        History::record(&sb, 24);
        set_meta(
            &sb,
            &format!("UPDATE tests SET duration = {value} WHERE name = 'app.Core::test_001'"),
        );
        let plan = sb.plan_json(&candidates, &["--budget", "30%"]);
        let est = estimate(&plan, "app.Core::test_001");
        assert!((0.0..=6.0 * 3600.0).contains(&est), "{value}: {est}");
        sb.record("b25", &History::build(1));
        let plan = sb.plan_json(&candidates, &["--budget", "30%"]);
        assert!(
            estimate(&plan, "app.Core::test_001") <= 4.0,
            "{value}: {plan:#}"
        );
    }
}

#[test]
fn issue_11_config_floats_must_be_finite_and_in_range() {
    let sb = Sandbox::new();
    sb.write_tests("tests.txt", &["a::b"]);
    for (key, value) in [
        ("plan.duration_weight", "nan"),
        ("plan.duration_weight", "+inf"),
        ("plan.duration_weight", "-1.0"),
        ("plan.duration_weight", "1e300"),
        ("plan.exploration", "nan"),
        ("plan.exploration", "-inf"),
        ("flaky.threshold", "nan"),
        ("flaky.threshold", "inf"),
    ] {
        let (table, name) = key.split_once('.').unwrap();
        sb.write("fedtest.toml", format!("[{table}]\n{name} = {value}\n"));
        sb.fedtest()
            .args(["plan", "--tests", "tests.txt"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(key));
    }
}

// ------------------------------------------------------------------ class 6: smaller ones

fn quarantine_file(n: usize) -> String {
    let mut s = String::with_capacity(n * 80);
    for i in 0..n {
        s.push_str(&format!(
            "[[test]]\nid = \"mod{i}::test\"\nreason = \"flaky\"\nexpires = 2099-01-01\n\n"
        ));
    }
    s
}

#[test]
fn issue_11_quarantine_reading_is_linear() {
    let sb = Sandbox::new();
    sb.write("fedtest.toml", "[flaky]\nmax_quarantine_days = 36500\n");
    sb.write("r.xml", Junit::new().fail("mod7::test", 1.0).to_xml());
    let mut times = Vec::new();
    for n in [25_000, 200_000] {
        sb.write("fedtest-quarantine.toml", quarantine_file(n));
        let start = std::time::Instant::now();
        sb.fedtest()
            .args(["gate", "--junit", "r.xml"])
            .assert()
            .success();
        times.push(start.elapsed().as_secs_f64());
    }
    // 8× the entries in well under 64× the time (quadratic), with room for a loaded machine.
    assert!(times[1] < 20.0 * times[0].max(0.2), "{times:?}");
}

#[test]
fn issue_11_a_quarantine_cannot_hide_everything_or_last_for_years() {
    let sb = Sandbox::new();
    sb.write(
        "r.xml",
        Junit::new()
            .fail("app.net::test_get", 1.0)
            .pass("b::c", 1.0)
            .to_xml(),
    );
    let far = "2999-01-01";
    for (id, expires) in [
        ("*", "2030-01-01"),
        ("*::*", "2030-01-01"),
        ("**", "2030-01-01"),
        ("*.*", "2030-01-01"),
        ("* *", "2030-01-01"),
        ("*::*[*]", "2030-01-01"),
        ("app.net::test_get", far),
        ("app.net::*", far),
    ] {
        // Keep "2030" within the limit whatever today is, by allowing ten years.
        sb.write("fedtest.toml", "[flaky]\nmax_quarantine_days = 3660\n");
        sb.write(
            "fedtest-quarantine.toml",
            format!("[[test]]\nid = \"{id}\"\nreason = \"r\"\nexpires = {expires}\n"),
        );
        sb.fedtest()
            .args(["gate", "--junit", "r.xml"])
            .assert()
            .code(10)
            .stderr(predicate::str::contains("refused"));
    }
    // A pattern with a name in it, within the limit, still works.
    sb.write(
        "fedtest-quarantine.toml",
        "[[test]]\nid = \"app.net::*\"\nreason = \"r\"\nexpires = 2030-01-01\n",
    );
    sb.fedtest()
        .args(["gate", "--junit", "r.xml"])
        .assert()
        .success();
    // `quarantine add` refuses both up front; the file is left as it was.
    let before = read(&sb, "fedtest-quarantine.toml");
    sb.fedtest()
        .args([
            "quarantine",
            "add",
            "x::y",
            "--reason",
            "r",
            "--expires",
            far,
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("max_quarantine_days"));
    sb.fedtest()
        .args(["quarantine", "add", "*::*", "--reason", "r"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("every test"));
    assert_eq!(read(&sb, "fedtest-quarantine.toml"), before);
}

#[test]
fn issue_11_errors_do_not_echo_a_file_that_is_not_toml() {
    let sb = Sandbox::new();
    let secret = "root:$6$S3CRET-HASH-42$:0:0::/root:/bin/bash\nTOKEN=ghp_S3CRET-HASH-42\n";
    sb.write("secret.txt", secret);
    sb.write("r.xml", Junit::new().pass("a::b", 1.0).to_xml());
    // As the configuration itself.
    let out = sb
        .fedtest()
        .args(["--config", "secret.txt", "gate", "--junit", "r.xml"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(!stderr(&out).contains("S3CRET"), "{}", stderr(&out));
    assert!(stderr(&out).contains("line 1, column"), "{}", stderr(&out));
    // As a file a configuration value names.
    sb.write(
        "fedtest.toml",
        "[flaky]\nquarantine_file = \"secret.txt\"\n",
    );
    let out = sb
        .fedtest()
        .args(["gate", "--junit", "r.xml"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    assert!(!stderr(&out).contains("S3CRET"), "{}", stderr(&out));
    assert!(stderr(&out).contains("secret.txt"), "{}", stderr(&out));
}

#[test]
fn issue_11_a_non_utf8_candidate_line_is_skipped_with_a_warning() {
    let sb = Sandbox::new();
    History::record(&sb, 2);
    let mut bytes = b"a::one\n".to_vec();
    bytes.extend_from_slice(b"a::bad\xff\xfe name\n");
    bytes.extend_from_slice(b"a::two\r\n\xc3\x28\n");
    sb.write("tests.txt", &bytes);
    let out = sb
        .fedtest()
        .args(["plan", "--tests", "tests.txt"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "skipped 2 lines that are not UTF-8 (line 2, 4)",
        ))
        .get_output()
        .clone();
    assert_eq!(stdout(&out), "a::one\na::two\n");
    // The same for `run` and for a changed-files list.
    sb.write("changed.txt", &b"src/ok.py\nsrc/\xff.py\n"[..]);
    sb.fedtest()
        .args([
            "plan",
            "--tests",
            "tests.txt",
            "--changed-files",
            "changed.txt",
        ])
        .assert()
        .success()
        .stdout("a::one\na::two\n");
}

/// Whether the current user can create a file in `dir` (root can, whatever its mode says).
fn writable(dir: &Path) -> bool {
    let probe = dir.join(".probe");
    let ok = std::fs::write(&probe, b"x").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

fn set_read_only(dir: &Path, read_only: bool) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let mode = if read_only { 0o444 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let mode = if read_only { 0o555 } else { 0o755 };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn issue_11_a_read_only_data_dir_still_plans_with_the_stored_model() {
    let sb = Sandbox::new();
    History::record(&sb, History::BUILDS);
    assert!(sb.model_path().exists());
    let ids = History::ids();
    let candidates: Vec<&str> = ids.iter().map(String::as_str).collect();
    let writable_plan = sb.plan_json(&candidates, &["--budget", "30%"]);
    let before = sb.data_dir_state();
    set_read_only(&sb.data_dir(), true);
    if writable(&sb.data_dir()) {
        set_read_only(&sb.data_dir(), false);
        // Root ignores the mode: mount the data dir read-only instead, where allowed.
        let ro = std::process::Command::new("mount")
            .args(["--bind", "-o", "ro"])
            .arg(sb.data_dir())
            .arg(sb.data_dir())
            .status();
        if !ro.is_ok_and(|s| s.success()) || writable(&sb.data_dir()) {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipped: cannot make a read-only directory here");
            }
            return;
        }
    }
    let out = sb
        .fedtest()
        .args(["plan", "--format", "json", "--budget", "30%", "--tests"])
        .arg(sb.write_tests("tests.txt", &candidates))
        .output()
        .unwrap();
    let _ = std::process::Command::new("umount")
        .arg(sb.data_dir())
        .status();
    set_read_only(&sb.data_dir(), false);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan, writable_plan);
    assert_eq!(sb.data_dir_state(), before);
}
