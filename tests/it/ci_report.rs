//! What `plan`, `run` and `gate` tell the CI platform (issue 4): GitHub step outputs, job
//! summary and annotations; GitLab dotenv report and log section. The real binary runs with the
//! platform's environment (`GITHUB_ACTIONS=true`, `GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`, or
//! `GITLAB_CI=true` and its job variables) and the files it writes are snapshotted.

use std::path::Path;

use crate::util::{
    History, Junit, Outcome, Sandbox, regex_escape, stderr, stdout, tmp_redacted_settings,
};

/// Names a summary must escape: a pipe (a table cell), backticks (a code span), and HTML; and a
/// percent-encoded line break, which must stay as it is. (A real line break cannot be in the
/// history: `record` refuses it, issue 11.)
const PIPE: &str = "app.Odd::pipe|name";
const TICKS: &str = "app.Odd::`tick` and ``double``";
const NEWLINE: &str = "app.Odd::new%0A::error::line";
const HTML: &str = "app.Odd::<b>html</b>";

/// `History` plus the odd names: `PIPE` fails in odd builds (and in the last), `NEWLINE` in
/// every third, `TICKS` flakes (fails, then passes on a retry) in every fourth.
fn odd_build(i: usize) -> Junit {
    let mut j = History::build(i);
    j = j.case(
        PIPE,
        if i % 2 == 1 {
            Outcome::Fail
        } else {
            Outcome::Pass
        },
        3.0,
    );
    j = j.case(
        NEWLINE,
        if i % 3 == 1 {
            Outcome::Fail
        } else {
            Outcome::Pass
        },
        1.0,
    );
    if i.is_multiple_of(4) {
        j = j.fail(TICKS, 0.5);
    }
    j.pass(TICKS, 0.5).pass(HTML, 0.2)
}

fn odd_history() -> Sandbox {
    let sb = Sandbox::new();
    for i in 0..History::BUILDS {
        sb.record(&format!("b{:02}", i + 1), &odd_build(i));
    }
    sb
}

/// The GitHub Actions environment, with the report files in the sandbox.
fn github(cmd: &mut assert_cmd::Command, sb: &Sandbox) {
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", sb.path().join("github_output"))
        .env("GITHUB_STEP_SUMMARY", sb.path().join("step_summary.md"));
}

/// What gitlab-ci-local sets (GITLAB_CI=false, yet a job).
fn gitlab_ci_local(cmd: &mut assert_cmd::Command) {
    cmd.env("GITLAB_CI", "false")
        .env("CI_JOB_ID", "4242")
        .env("CI_PIPELINE_ID", "1001")
        .env("CI_SERVER_URL", "https://gitlab.com");
}

fn read(sb: &Sandbox, name: &str) -> String {
    let path = sb.path().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Temp paths, the fedtest version, GitHub's random delimiters, section timestamps and
/// dates redacted.
fn settings(sb: &Sandbox) -> insta::Settings {
    let mut s = tmp_redacted_settings(sb);
    s.add_filter(
        &regex_escape(&format!("fedtest {}", env!("CARGO_PKG_VERSION"))),
        "fedtest [VERSION]",
    );
    s.add_filter(r"ghadelimiter_[0-9a-f]{32}", "[DELIMITER]");
    s.add_filter(r"section_(start|end):\d+:", "section_$1:[TIME]:");
    s.add_filter(r"20[2-9]\d-\d\d-\d\d", "[DATE]");
    s
}

/// The GitHub output file as `name = value` pairs (multi-line values joined with `\n`).
fn parse_outputs(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delimiter {
                    break;
                }
                value.push(l);
            }
            out.push((name.to_owned(), value.join("\n")));
        } else if let Some((name, value)) = line.split_once('=') {
            out.push((name.to_owned(), value.to_owned()));
        } else {
            panic!("not an output line: {line:?} in\n{text}");
        }
    }
    out
}

fn output<'a>(outputs: &'a [(String, String)], name: &str) -> &'a str {
    &outputs
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no output {name} in {outputs:?}"))
        .1
}

#[test]
fn github_plan_writes_outputs_and_a_summary_once() {
    let sb = odd_history();
    let mut cmd = sb.fedtest();
    github(&mut cmd, &sb);
    let out = cmd
        .args(["plan", "--from-history", "--budget", "30%", "--plan-file"])
        .arg(sb.path().join("plan.json"))
        .assert()
        .success()
        .get_output()
        .clone();
    let summary = read(&sb, "step_summary.md");
    let outputs_text = read(&sb, "github_output");
    let outputs = parse_outputs(&outputs_text);

    // The outputs agree with the plan file, which is the plan `--format json` prints.
    let plan: serde_json::Value = serde_json::from_str(&read(&sb, "plan.json")).unwrap();
    assert_eq!(
        output(&outputs, "selected-count"),
        plan["selected"].to_string()
    );
    assert_eq!(
        output(&outputs, "deselected-count"),
        plan["deselected"].to_string()
    );
    // The name before the rename, kept for workflows that read it.
    assert_eq!(
        output(&outputs, "skipped-count"),
        output(&outputs, "deselected-count")
    );
    assert_eq!(output(&outputs, "full-run"), "false");
    assert_eq!(
        output(&outputs, "plan-file"),
        sb.path().join("plan.json").display().to_string()
    );
    let ids: Vec<&str> = plan["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["selected"] == true)
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&NEWLINE) && ids.contains(&PIPE), "{ids:?}");
    assert_eq!(output(&outputs, "selected"), ids.join("\n"));
    assert!(outputs_text.contains("selected<<ghadelimiter_"));
    assert!(!stdout(&out).is_empty());

    // Escaping: no raw pipe, backtick fence or line break from a name reaches the tables.
    assert!(summary.contains("`app.Odd::pipe\\|name`"), "{summary}");
    assert!(
        summary.contains("`app.Odd::new%0A::error::line`"),
        "{summary}"
    );
    assert!(
        summary.contains("``` app.Odd::`tick` and ``double`` ```"),
        "{summary}"
    );
    for row in summary.lines().filter(|l| l.starts_with("| ")) {
        let cells = row.replace("\\|", "").matches('|').count();
        assert!(
            cells == 5 || cells == 4 || cells == 6,
            "a cell too many: {row}"
        );
    }
    assert!(summary.len() < 64 * 1024);
    assert!(summary.contains("```mermaid\npie"), "{summary}");

    settings(&sb).bind(|| {
        insta::assert_snapshot!("ci_report_github_plan_summary", summary);
        insta::assert_snapshot!("ci_report_github_plan_outputs", outputs_text);
    });
}

#[test]
fn gitlab_run_writes_a_dotenv_report_and_a_log_section() {
    let sb = odd_history();
    // The next build, as the stand-in runner "writes" it; it exits 1 as a runner whose tests
    // failed does.
    sb.write("next.xml", odd_build(History::BUILDS).to_xml());
    let mut cmd = sb.fedtest();
    gitlab_ci_local(&mut cmd);
    let out = cmd
        .args([
            "run",
            "--runner",
            "pytest",
            "--budget",
            "30%",
            "--junit",
            "out.xml",
            "--",
            "sh",
            "-c",
            "cp next.xml out.xml; exit 1",
            "sh",
        ])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = stderr(&out);
    // gitlab-ci-local's job is recognised: the job's build id, and the default dotenv path.
    assert!(err.contains("recorded build gl-4242"), "{err}");
    let dotenv = read(&sb, "fedtest.env");
    assert!(dotenv.len() < 5 * 1024);
    for line in dotenv.lines() {
        let (key, _) = line.split_once('=').expect("KEY=value");
        assert!(
            key.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
            "{key}"
        );
    }
    let start = err.find("\u{1b}[0Ksection_start").expect("a log section");
    let section = err[start..].replace('\u{1b}', "\\e").replace('\r', "\\r");
    assert!(section.contains("section_end"), "{section}");
    settings(&sb).bind(|| {
        insta::assert_snapshot!("ci_report_gitlab_run_dotenv", dotenv);
        insta::assert_snapshot!("ci_report_gitlab_run_section", section);
    });

    // A later `gate` in the same job adds its variables and keeps the run's.
    let mut cmd = sb.fedtest();
    gitlab_ci_local(&mut cmd);
    cmd.args(["gate", "--junit", "out.xml"]).assert().code(10);
    let after = read(&sb, "fedtest.env");
    assert!(after.starts_with(&dotenv), "{after}");
    assert!(after.contains("FEDTEST_GATE=failed\n"), "{after}");
    assert!(after.contains("FEDTEST_FAILED_COUNT="), "{after}");
}

#[test]
fn github_run_without_history_reports_the_whole_command_and_its_exit_code() {
    let sb = Sandbox::new();
    sb.write("next.xml", odd_build(0).to_xml());
    let mut cmd = sb.fedtest();
    github(&mut cmd, &sb);
    cmd.args([
        "run",
        "--runner",
        "pytest",
        "--junit",
        "out.xml",
        "--",
        "sh",
        "-c",
        "cp next.xml out.xml; exit 3",
        "sh",
    ])
    .assert()
    .code(3);
    let outputs = parse_outputs(&read(&sb, "github_output"));
    assert_eq!(output(&outputs, "exit-code"), "3");
    assert_eq!(output(&outputs, "full-run"), "true");
    assert_eq!(
        output(&outputs, "full-run-reason"),
        "no history yet: the whole command runs"
    );
    assert!(
        !outputs.iter().any(|(k, _)| k == "plan-file"),
        "{outputs:?}"
    );
    let summary = read(&sb, "step_summary.md");
    assert!(summary.contains("exited with **3**"), "{summary}");
}

const QUARANTINE: &str = "\
[[test]]
id = \"app.B::race\"
reason = \"data race in the fixture, see #12\"
owner = \"@team-b\"
expires = 2099-12-31
";

/// A pytest xunit1 report: `file` and `line` on each row.
const GATE_REPORT: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.test_a" name="test_ok" file="tests/test_a.py" line="3" time="0.1"/>
<testcase classname="app.B" name="race" file="tests/test_b.py" line="10" time="0.1"><failure message="boom">x</failure></testcase>
<testcase classname="tests.test_c" name="test_real[a,b: 50%]" file="tests/test_c.py" line="27" time="0.1"><failure message="assert 1 == 2">x</failure></testcase>
<testcase classname="tests.test_d" name="test_no_place" time="0.1"><error message="boom">x</error></testcase>
</testsuite></testsuites>
"#;

#[test]
fn github_gate_annotates_failures_at_their_file_and_line() {
    let sb = Sandbox::new();
    sb.write("fedtest-quarantine.toml", QUARANTINE);
    // The entry expires in 2099: allow that (by default an entry may last 180 days).
    sb.write("fedtest.toml", "[flaky]\nmax_quarantine_days = 36500\n");
    let report = sb.write("r.xml", GATE_REPORT);
    let mut cmd = sb.fedtest();
    github(&mut cmd, &sb);
    let out = cmd
        .args(["gate", "--junit"])
        .arg(&report)
        .assert()
        .code(10)
        .get_output()
        .clone();
    let err = stderr(&out);
    let annotations: Vec<&str> = err.lines().filter(|l| l.starts_with("::")).collect();
    let annotations = annotations.join("\n");
    let summary = read(&sb, "step_summary.md");
    let outputs = read(&sb, "github_output");
    settings(&sb).bind(|| {
        insta::assert_snapshot!("ci_report_gate_annotations", annotations);
        insta::assert_snapshot!("ci_report_gate_summary", summary);
        insta::assert_snapshot!("ci_report_gate_outputs", outputs);
    });
    // Without the CI environment: no annotation syntax, no files; the quarantined failure is
    // still a plain warning.
    let plain = Sandbox::new();
    plain.write("fedtest-quarantine.toml", QUARANTINE);
    plain.write("fedtest.toml", "[flaky]\nmax_quarantine_days = 36500\n");
    let report = plain.write("r.xml", GATE_REPORT);
    let out = plain
        .fedtest()
        .args(["gate", "--junit"])
        .arg(&report)
        .assert()
        .code(10)
        .get_output()
        .clone();
    assert!(
        !stderr(&out).lines().any(|l| l.starts_with("::")),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("fedtest: warning: quarantined test app.B::race failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn fail_open_warnings_are_annotations_and_the_summary_says_everything_ran() {
    let sb = Sandbox::new();
    History::record(&sb, 3);
    std::fs::write(
        sb.store_path(),
        b"this is not a SQLite database, not even close",
    )
    .unwrap();
    let ids = History::ids();
    let candidates: Vec<&str> = ids.iter().map(String::as_str).collect();
    sb.write_tests("tests.txt", &candidates);
    let mut cmd = sb.fedtest();
    github(&mut cmd, &sb);
    let out = cmd
        .args(["plan", "--tests", "tests.txt", "--budget", "10%"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(stdout(&out).lines().count(), candidates.len());
    let err = stderr(&out);
    assert!(
        err.lines().any(
            |l| l.starts_with("::warning title=fedtest::could not plan (")
                && l.ends_with("running every test")
        ),
        "{err}"
    );
    let summary = read(&sb, "step_summary.md");
    assert!(
        summary.contains("**Full run**: fedtest could not plan; running everything"),
        "{summary}"
    );
    let outputs = parse_outputs(&read(&sb, "github_output"));
    assert_eq!(output(&outputs, "full-run"), "true");
}

#[test]
fn unwritable_report_files_warn_and_never_fail_the_command() {
    let sb = Sandbox::new();
    History::record(&sb, 3);
    let dir = sb.path().join("a-directory");
    std::fs::create_dir(&dir).unwrap();
    let out = sb
        .fedtest()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &dir)
        .env("GITHUB_STEP_SUMMARY", &dir)
        .args(["plan", "--from-history", "--dotenv"])
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(stdout(&out).lines().count(), History::ids().len());
    let err = stderr(&out);
    for what in ["step outputs", "job summary", "dotenv report"] {
        assert!(
            err.contains(&format!("::warning title=fedtest::cannot write the {what}")),
            "{what}: {err}"
        );
    }
}

#[test]
fn no_ci_report_writes_nothing_and_forced_paths_work_anywhere() {
    let sb = Sandbox::new();
    History::record(&sb, 3);
    let mut cmd = sb.fedtest();
    github(&mut cmd, &sb);
    cmd.args(["plan", "--from-history", "--no-ci-report"])
        .assert()
        .success();
    assert!(!sb.path().join("github_output").exists());
    assert!(!sb.path().join("step_summary.md").exists());

    // Outside CI, only where asked.
    sb.fedtest()
        .args(["plan", "--from-history", "--step-summary", "local.md"])
        .assert()
        .success();
    assert!(read(&sb, "local.md").starts_with("## fedtest plan\n"));
    assert!(!Path::new(&sb.path().join("fedtest.env")).exists());

    sb.fedtest()
        .args([
            "plan",
            "--from-history",
            "--no-ci-report",
            "--dotenv",
            "x.env",
        ])
        .assert()
        .code(2);
}

/// Issue 16: `plan --from-history` with no readable history has no candidates to order. It
/// prints nothing (never an empty selection to pass to a runner), warns, exits 0, and signals a
/// full run — step output and dotenv — which the action and the component act on.
#[test]
fn issue16_plan_from_a_corrupt_or_missing_history_signals_run_everything() {
    for corrupt in [false, true] {
        let sb = Sandbox::new();
        if corrupt {
            std::fs::create_dir_all(sb.data_dir()).unwrap();
            std::fs::write(
                sb.data_dir().join("history.sqlite"),
                "not a database\n".repeat(100),
            )
            .unwrap();
        }
        let mut cmd = sb.fedtest();
        github(&mut cmd, &sb);
        let out = cmd
            .args([
                "plan",
                "--from-history",
                "--format",
                "pytest",
                "--dotenv",
                "fedtest.env",
            ])
            .assert()
            .success()
            .get_output()
            .clone();
        assert_eq!(stdout(&out), "", "corrupt: {corrupt}");
        let err = stderr(&out);
        let why = if corrupt {
            "cannot read the history ("
        } else {
            "no history in "
        };
        assert!(
            err.lines()
                .any(|l| l.starts_with("::warning title=fedtest::")
                    && l.contains(why)
                    && l.ends_with("run the unmodified test command")),
            "{err}"
        );
        let outputs = parse_outputs(&read(&sb, "github_output"));
        assert_eq!(output(&outputs, "full-run"), "true");
        assert!(read(&sb, "fedtest.env").contains("FEDTEST_FULL_RUN=true\n"));
    }
}
