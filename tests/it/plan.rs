//! `fedtest plan`: order, formats, determinism, budgets and the safety rules.

use predicates::prelude::*;

use crate::util::{History, Junit, Outcome, Sandbox, planned, planned_test, stdout};

const IDS: &[&str] = &[
    "suite.A::one",
    "suite.A::two",
    "suite.B::three",
    "suite.B::four",
];

/// One build where `suite.B::three` failed.
fn one_failure() -> Sandbox {
    let sb = Sandbox::new();
    sb.record(
        "b1",
        &Junit::new()
            .pass("suite.A::one", 0.5)
            .pass("suite.A::two", 0.3)
            .fail("suite.B::three", 1.0)
            .pass("suite.B::four", 0.1),
    );
    sb
}

#[test]
fn failing_test_is_planned_first() {
    let sb = one_failure();
    sb.write_tests("tests.txt", IDS);
    let out = sb
        .fedtest()
        .args(["plan", "--tests", "tests.txt", "--format", "list"])
        .assert()
        .success()
        .get_output()
        .clone();
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.first(), Some(&"suite.B::three"), "{lines:?}");
    // The default budget is 100%: every candidate once, one id a line, nothing else.
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    let mut expected = IDS.to_vec();
    expected.sort_unstable();
    assert_eq!(sorted, expected);
}

#[test]
fn json_lists_every_candidate_with_probability_selection_and_reason() {
    let sb = one_failure();
    let plan = sb.plan_json(&[IDS, &["brand::new"]].concat(), &["--budget", "50%"]);
    let tests = plan["tests"].as_array().unwrap();
    assert_eq!(tests.len(), IDS.len() + 1, "{plan:#}");
    for t in tests {
        let p = t["probability"].as_f64().expect("probability is a number");
        assert!((0.0..=1.0).contains(&p), "{t}");
        assert!(t["selected"].is_boolean(), "{t}");
        assert!(t["reason"].is_string(), "{t}");
        assert!(t["id"].is_string(), "{t}");
    }
    // The test that just failed and the new one (nothing is known of it) before every test
    // that passed; which of the two leads is the prior's call.
    let mut first_two: Vec<&str> = tests[..2]
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    first_two.sort_unstable();
    assert_eq!(first_two, ["brand::new", "suite.B::three"], "{plan:#}");
    assert_eq!(
        plan["selected"].as_u64().unwrap() + plan["deselected"].as_u64().unwrap(),
        tests.len() as u64
    );
}

#[test]
fn candidates_can_come_from_stdin() {
    let sb = one_failure();
    sb.fedtest()
        .args(["plan", "--tests", "-"])
        .write_stdin(IDS.join("\n"))
        .assert()
        .success()
        .stdout(predicate::str::starts_with("suite.B::three\n"));
}

#[test]
fn same_inputs_give_byte_identical_plans() {
    let sb = Sandbox::new();
    History::record(&sb, History::BUILDS);
    let ids = History::ids();
    let mut candidates: Vec<&str> = ids.iter().map(String::as_str).collect();
    candidates.push("app.New::brand_new");
    sb.write_tests("tests.txt", &candidates);
    // Each run is a new process with new hash seeds: any dependence on map iteration order
    // would show up as a difference here.
    let run = |format: &str| {
        sb.fedtest()
            .args([
                "plan",
                "--tests",
                "tests.txt",
                "--budget",
                "30%",
                "--build",
                "next",
            ])
            .args(["--format", format, "--explain"])
            .assert()
            .success()
            .get_output()
            .clone()
    };
    for format in ["json", "list"] {
        let first = run(format);
        for _ in 0..3 {
            let again = run(format);
            assert_eq!(stdout(&again), stdout(&first), "{format} stdout differs");
            assert_eq!(again.stderr, first.stderr, "{format} stderr differs");
        }
    }

    // The same history recorded into another data dir plans the same.
    let other = Sandbox::new();
    History::record(&other, History::BUILDS);
    other.write_tests("tests.txt", &candidates);
    let there = other
        .fedtest()
        .args([
            "plan",
            "--tests",
            "tests.txt",
            "--budget",
            "30%",
            "--build",
            "next",
        ])
        .args(["--format", "json", "--explain"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(stdout(&there), stdout(&run("json")));
}

/// The history's tests plus one never seen.
fn candidates_with_new_test() -> Vec<String> {
    let mut ids = History::ids();
    ids.push("app.New::brand_new".to_owned());
    ids
}

#[test]
fn share_budget_selects_fewer_but_keeps_what_must_run() {
    let sb = Sandbox::new();
    sb.write("fedtest.toml", "[plan]\nmust_run = [\"app.Critical::*\"]\n");
    History::record(&sb, History::BUILDS);
    let ids = candidates_with_new_test();
    let candidates: Vec<&str> = ids.iter().map(String::as_str).collect();

    let plan = sb.plan_json(&candidates, &["--budget", "30%"]);
    assert!(plan["full_run"].is_null(), "{plan:#}");
    // The ordering the backtest chose, with probabilities calibrated on this history.
    assert_eq!(plan["strategy"]["calibrated"], true, "{plan:#}");
    assert_eq!(
        plan["strategy"]["candidate"],
        sb.model_json()["strategy"]["candidate"]
    );
    let rows = planned(&plan);
    let selected = rows.iter().filter(|r| r.1).count();
    assert!(
        selected < candidates.len(),
        "30% selected everything: {plan:#}"
    );
    assert_eq!(plan["selected"], selected);
    for id in [
        "app.New::brand_new",
        History::LATE,
        History::MUST,
        History::OFTEN,
    ] {
        let t = planned_test(&plan, id);
        assert_eq!(t["selected"], true, "{t}");
    }

    // Selected first, then the deselected ones.
    let first_deselected = rows.iter().position(|r| !r.1).unwrap();
    assert!(
        rows[first_deselected..]
            .iter()
            .all(|r| !r.1 && r.2 == "deselected"),
        "{rows:?}"
    );
}

#[test]
fn safety_rules_override_a_tight_budget() {
    let sb = Sandbox::new();
    // No exploration draw, so every selection below is the budget's or a safety rule's.
    let config = "[plan]\nexploration = 0.0\n";
    sb.write("fedtest.toml", config);
    History::record(&sb, History::BUILDS);
    let ids = candidates_with_new_test();
    let candidates: Vec<&str> = ids.iter().map(String::as_str).collect();

    // A budget of one short test: whatever else runs, runs because a rule says so.
    let plan = sb.plan_json(&candidates, &["--budget", "1%"]);
    assert!(plan["full_run"].is_null(), "{plan:#}");
    let reason = |plan: &serde_json::Value, id: &str| planned_test(plan, id)["reason"].clone();
    assert_eq!(reason(&plan, "app.New::brand_new"), "new-test", "{plan:#}");
    assert_eq!(reason(&plan, History::LATE), "recent-failure", "{plan:#}");
    assert_eq!(reason(&plan, History::MUST), "deselected", "{plan:#}");
    // The budget holds one short test at most; a rule's reason wins when it also applies.
    let predicted = planned(&plan).iter().filter(|r| r.2 == "predicted").count();
    assert!(predicted <= 1, "{plan:#}");

    sb.write(
        "fedtest.toml",
        format!("{config}must_run = [\"app.Critical::*\"]\n"),
    );
    let plan = sb.plan_json(&candidates, &["--budget", "1%"]);
    assert_eq!(reason(&plan, History::MUST), "must-run", "{plan:#}");
}

#[test]
fn recall_budget_reaches_its_target() {
    let sb = Sandbox::new();
    History::record(&sb, History::BUILDS);
    let ids = History::ids();
    let candidates: Vec<&str> = ids.iter().map(String::as_str).collect();
    let plan = sb.plan_json(&candidates, &["--budget", "recall:0.9"]);
    assert!(plan["full_run"].is_null(), "{plan:#}");
    assert_eq!(planned_test(&plan, History::OFTEN)["selected"], true);
    assert_eq!(plan["tests"].as_array().unwrap().len(), candidates.len());
}

/// One build of a history in the benchmark format (`bench/`, JSON lines).
struct ReplayBuild {
    tests: Vec<(String, Outcome, f64)>,
    changed: Option<Vec<String>>,
}

fn read_history(path: &std::path::Path) -> Vec<ReplayBuild> {
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .expect("gzip runs");
    assert!(out.status.success(), "gzip -dc {}", path.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let tests = (v["tests"].as_array().unwrap().iter())
                .map(|t| {
                    let outcome = match t["verdict"].as_str().unwrap() {
                        "fail" => Outcome::Fail,
                        "skip" => Outcome::Skip,
                        _ => Outcome::Pass,
                    };
                    let id = t["id"].as_str().unwrap().to_owned();
                    (id, outcome, t["duration"].as_f64().unwrap_or(0.0))
                })
                .collect();
            let changed = v["changed_files"]
                .as_array()
                .map(|a| a.iter().map(|f| f.as_str().unwrap().to_owned()).collect());
            ReplayBuild { tests, changed }
        })
        .collect()
}

#[test]
fn a_recall_budget_catches_what_it_promises_on_a_real_history() {
    // Issue 10: graded by what the plans really selected, not by the planner's own estimate.
    // pallets/flask, 179 real builds with their changed files (bench/fleet/README.md): every
    // build is planned at recall:0.95 from the builds before it, as CI would, then recorded.
    let history = read_history(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/fleet/flask.jsonl.gz"),
    );
    assert_eq!(history.len(), 179);
    let sb = Sandbox::new();
    let (mut recalls, mut deselecting) = (Vec::new(), Vec::new());
    for (i, build) in history.iter().enumerate() {
        let executed: Vec<&(String, Outcome, f64)> = (build.tests.iter())
            .filter(|t| t.1 != Outcome::Skip)
            .collect();
        let failing: Vec<&str> = (executed.iter())
            .filter(|t| t.1 == Outcome::Fail)
            .map(|t| t.0.as_str())
            .collect();
        let mut changed_args: Vec<String> = Vec::new();
        if let Some(files) = &build.changed {
            sb.write("changed.txt", files.join("\n") + "\n");
            changed_args = vec!["--changed-files".into(), "changed.txt".into()];
        }
        if i > 0 && !failing.is_empty() {
            let ids: Vec<&str> = executed.iter().map(|t| t.0.as_str()).collect();
            let mut extra = vec!["--budget", "recall:0.95"];
            extra.extend(changed_args.iter().map(String::as_str));
            let plan = sb.plan_json(&ids, &extra);
            let selected: std::collections::HashSet<&str> = (plan["tests"].as_array().unwrap())
                .iter()
                .filter(|t| t["selected"] == true)
                .map(|t| t["id"].as_str().unwrap())
                .collect();
            let caught = failing.iter().filter(|f| selected.contains(*f)).count();
            let recall = caught as f64 / failing.len() as f64;
            recalls.push(recall);
            if plan["deselected"].as_u64().unwrap() > 0 {
                deselecting.push(recall);
            }
        }
        let mut report = Junit::new();
        // Five builds hold a passing row with the id "::" (no name): a report with an unnamed
        // testcase is refused by `record` (file:line:col), so the row is left out here.
        for (id, outcome, seconds) in build.tests.iter().filter(|t| t.0 != "::") {
            report = report.case(id, *outcome, *seconds);
        }
        let path = sb.write(&format!("reports/{i:03}.xml"), report.to_xml());
        sb.fedtest()
            .args(["record", "--build", &format!("b{i:03}"), "--junit"])
            .arg(path)
            .args(&changed_args)
            .assert()
            .success();
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let summary = format!(
        "{} failing builds, mean recall {:.4}; {} planned with deselection, mean recall {:.4}",
        recalls.len(),
        mean(&recalls),
        deselecting.len(),
        mean(&deselecting)
    );
    assert!(recalls.len() >= 35, "{summary}");
    // The budget really deselected in a good share of the failing builds, so the bar below
    // grades its choices, not cold-start full runs.
    assert!(deselecting.len() >= 10, "{summary}");
    assert!(mean(&recalls) >= 0.95, "{summary}: {recalls:?}");
    assert!(mean(&deselecting) >= 0.9, "{summary}: {deselecting:?}");
}

#[test]
fn run_all_file_in_changed_files_forces_a_full_run() {
    let sb = Sandbox::new();
    History::record(&sb, History::BUILDS);
    let ids = History::ids();
    let candidates: Vec<&str> = ids.iter().map(String::as_str).collect();
    sb.write("changed.txt", "src/lib.rs\nCargo.lock\n");
    let plan = sb.plan_json(
        &candidates,
        &["--budget", "10%", "--changed-files", "changed.txt"],
    );
    assert!(
        plan["full_run"].as_str().unwrap().contains("Cargo.lock"),
        "{plan:#}"
    );
    assert!(planned(&plan).iter().all(|r| r.1), "{plan:#}");

    // Without the lock file the same budget does skip.
    sb.write("changed.txt", "src/lib.rs\n");
    let plan = sb.plan_json(
        &candidates,
        &["--budget", "10%", "--changed-files", "changed.txt"],
    );
    assert!(plan["full_run"].is_null(), "{plan:#}");
}

#[test]
fn cold_start_runs_everything() {
    let sb = Sandbox::new();
    History::record(&sb, 2);
    let ids = History::ids();
    let candidates: Vec<&str> = ids.iter().map(String::as_str).collect();
    sb.write_tests("tests.txt", &candidates);
    let out = sb
        .fedtest()
        .args(["plan", "--tests", "tests.txt", "--budget", "10%"])
        .assert()
        .success()
        .stderr(predicate::str::contains("cold start"))
        .get_output()
        .clone();
    assert_eq!(stdout(&out).lines().count(), candidates.len());
}

/// `[plan] min_failures`: a number is the one threshold of both the cold start and training;
/// `"auto"` (the default) scales the cold start to the project and leaves training at 20.
#[test]
fn min_failures_drives_training_and_the_cold_start() {
    // 12 builds hold 10 failures: short of the 20 training waits for, past what this 20-test
    // project's scaled cold start asks (√20 → 5 failures; a failing build in most builds →
    // 5 builds).
    let ids = History::ids();
    let candidates: Vec<&str> = ids.iter().map(String::as_str).collect();
    let sb = Sandbox::new();
    History::record(&sb, 12);
    assert!(!sb.model_path().exists(), "no model before 20 failures");
    let plan = sb.plan_json(&candidates, &["--budget", "30%"]);
    assert!(plan["full_run"].is_null(), "{plan:#}");
    assert!(plan["deselected"].as_u64().unwrap() > 0, "{plan:#}");
    assert_eq!(plan["evidence"]["min_failures"], 5, "{plan:#}");
    assert_eq!(plan["evidence"]["min_builds"], 5, "{plan:#}");
    assert_eq!(plan["evidence"]["scaled"], true, "{plan:#}");

    // A number is honoured, and the plan says what it waits for.
    let sb = Sandbox::new();
    sb.write("fedtest.toml", "[plan]\nmin_failures = 20\n");
    History::record(&sb, 12);
    let plan = sb.plan_json(&candidates, &["--budget", "30%"]);
    let why = plan["full_run"].as_str().unwrap();
    assert!(
        why.starts_with("cold start: deselecting waits for 5 builds and 20 failed tests;")
            && why.ends_with("so about 12 more builds at this failure rate"),
        "{plan:#}"
    );
    assert_eq!(plan["deselected"], 0, "{plan:#}");

    let sb = Sandbox::new();
    sb.write("fedtest.toml", "[plan]\nmin_failures = 8\n");
    History::record(&sb, 12);
    assert!(sb.model_path().exists(), "a model once 8 failures are in");
    assert_eq!(sb.model_json()["source"], "local");
    let plan = sb.plan_json(&candidates, &["--budget", "30%"]);
    assert!(plan["full_run"].is_null(), "{plan:#}");
    assert!(plan["deselected"].as_u64().unwrap() > 0, "{plan:#}");
}

#[test]
fn without_history_plan_runs_everything() {
    let sb = Sandbox::new();
    sb.write_tests("tests.txt", IDS);
    let out = sb
        .fedtest()
        .args(["plan", "--tests", "tests.txt", "--budget", "10%"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(stdout(&out).lines().count(), IDS.len());
    // Planning reads; it must not create a store.
    assert!(!sb.store_path().exists());
}

#[test]
fn bad_budget_is_a_usage_error() {
    let sb = one_failure();
    sb.write_tests("tests.txt", IDS);
    for budget in ["lots", "0%", "150%", "recall:2", "5 parsecs"] {
        sb.fedtest()
            .args(["plan", "--tests", "tests.txt", "--budget", budget])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(format!(
                "invalid budget \"{budget}\""
            )));
    }
}

#[test]
fn missing_changed_files_list_is_bad_input() {
    let sb = one_failure();
    sb.write_tests("tests.txt", IDS);
    sb.fedtest()
        .args([
            "plan",
            "--tests",
            "tests.txt",
            "--changed-files",
            "gone.txt",
        ])
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains("gone.txt"));
}

#[test]
fn missing_candidate_list_is_bad_input() {
    let sb = one_failure();
    sb.fedtest()
        .args(["plan", "--tests", "gone.txt"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("gone.txt"));
}

/// Issue 13: candidates in the form runners list them — test files (Jest, Vitest) and Go
/// packages expand to their recorded tests; a file with no recorded test cannot be named in
/// any runner's syntax, so nothing is printed and everything runs; a list that shares nothing
/// with the history warns.
#[test]
fn issue_13_files_and_packages_expand_and_an_unknown_file_runs_everything() {
    let sb = Sandbox::new();
    let report = sb.write(
        "r.xml",
        r#"<testsuites><testsuite name="s">
  <testcase classname="math adds" name="math adds" file="src/math.test.js" time="0.1"/>
  <testcase classname="math divides" name="math divides" file="src/math.test.js" time="0.1"/>
  <testcase classname="example.com/calc" name="TestSum" time="0.1"/>
</testsuite></testsuites>"#,
    );
    sb.fedtest()
        .args(["record", "--build", "b1", "--junit"])
        .arg(&report)
        .assert()
        .success();
    sb.write_tests("files.txt", &["./src/math.test.js", "example.com/calc"]);
    sb.fedtest()
        .args(["plan", "--tests", "files.txt"])
        .assert()
        .success()
        .stdout("math adds::math adds\nmath divides::math divides\nexample.com/calc::TestSum\n");

    sb.write_tests("new.txt", &["src/math.test.js", "src/new.test.js"]);
    sb.fedtest()
        .args(["plan", "--format", "jest", "--tests", "new.txt"])
        .assert()
        .success()
        .stdout("")
        .stderr(
            predicate::str::contains("fedtest: warning:")
                .and(predicate::str::contains("\"src/new.test.js\""))
                .and(predicate::str::contains("the whole command runs")),
        );

    sb.write_tests("other.txt", &["calc_test::TestSum"]);
    sb.fedtest()
        .args(["plan", "--tests", "other.txt"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "fedtest: warning: none of the 1 candidate tests is one the history knows",
        ));
}
