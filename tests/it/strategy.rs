//! The backtested strategy: every candidate ordering judged on each failing build, the leader
//! planning, and all of it visible in `model`, `plan` and `eval`.

use predicates::prelude::*;
use serde_json::Value;

use crate::util::{History, Junit, Outcome, Sandbox, stderr};

/// Failing builds among the first `n` of [`History`] (it needs two tests to score, and every
/// build has twenty).
fn failing_builds(n: usize) -> u64 {
    (0..n)
        .filter(|&i| {
            let b = History::build(i).to_xml();
            b.contains("<failure")
        })
        .count() as u64
}

#[test]
fn every_failing_build_scores_every_available_candidate() {
    let sb = Sandbox::new();
    History::record(&sb, 12);
    let model = sb.model_json();
    let board = &model["backtest"];
    let failing = failing_builds(12);
    assert!(failing >= 6, "{failing}");
    assert_eq!(board["builds"], failing, "{board:#}");
    // The heuristics and the prior are always there; the local model only once trained.
    for c in ["history", "failed-first", "prior"] {
        assert_eq!(board["entries"][c]["scored"], failing, "{c}: {board:#}");
        let apfd = board["entries"][c]["apfd"].as_f64().unwrap();
        let weight = board["entries"][c]["weight"].as_f64().unwrap();
        assert!(apfd > 0.0 && apfd <= weight, "{c}: {board:#}");
    }
    assert_eq!(board["entries"]["history"]["advantage"], 0.0);
    assert!(board["entries"].get("local").is_none(), "{board:#}");
    // The strategy named by `model` is the one `plan` uses.
    let leader = board["leader"].as_str().unwrap().to_owned();
    assert_eq!(model["strategy"]["candidate"], leader.as_str());
    let plan = sb.plan_json(
        &History::ids()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &["--explain"],
    );
    assert_eq!(plan["strategy"]["candidate"], leader.as_str(), "{plan:#}");
    assert_eq!(plan["strategy"]["builds_scored"], failing);
}

#[test]
fn the_heuristic_takes_over_where_the_prior_orders_worse() {
    // Two tests take turns failing: the one that failed last time fails again, every time.
    // Decayed failure history and last-failed-first order that perfectly. The prior here
    // (FEDTEST_PRIOR) is the heuristic upside down — the kind of guess a prior fitted on other
    // repositories can be somewhere — and, the builds listing their changed files, it plans
    // the cold start; the backtest must notice and hand the plan to a heuristic after
    // MIN_SCORED (10) failing builds.
    let sb = Sandbox::new();
    let mut prior = sb.model_json();
    let names: Vec<String> = serde_json::from_value(prior["features"].clone()).unwrap();
    let weights: Vec<f64> = names
        .iter()
        .map(|n| match n.as_str() {
            "new_test" => -2.0,
            "decayed_failures_0_8_log" => -1.0,
            _ => 0.0,
        })
        .collect();
    prior["weights"] = serde_json::json!(weights);
    prior["intercept"] = serde_json::json!(0.0);
    let prior = sb.write(
        "upside-down-prior.json",
        serde_json::to_vec(&prior).unwrap(),
    );
    let changed = sb.write("changed.txt", "app/core.py\n");
    let fedtest = || {
        let mut cmd = sb.fedtest();
        cmd.env("FEDTEST_PRIOR", &prior);
        cmd
    };
    for b in 0..16 {
        let culprit = if b < 8 { "app.A::x" } else { "app.B::y" };
        let mut j = Junit::generated("app.Core", 30, |_| (Outcome::Pass, 1.0));
        for id in ["app.A::x", "app.B::y"] {
            j = j.case(
                id,
                if id == culprit {
                    Outcome::Fail
                } else {
                    Outcome::Pass
                },
                1.0,
            );
        }
        let report = sb.write(&format!("reports/b{b:02}.xml"), j.to_xml());
        fedtest()
            .args(["record", "--build", &format!("b{b:02}"), "--junit"])
            .arg(report)
            .arg("--changed-files")
            .arg(&changed)
            .assert()
            .success();
    }
    let out = fedtest().args(["model", "--json"]).output().unwrap();
    let model: Value = serde_json::from_slice(&out.stdout).unwrap();
    let board = &model["backtest"];
    let leader = board["leader"].as_str().unwrap();
    assert!(["history", "failed-first"].contains(&leader), "{board:#}");
    // The prior planned the first failing builds (the cold start) and gave way once ten were
    // scored, not before.
    let since = board["since"].as_u64().unwrap();
    assert!((10..16).contains(&since), "{board:#}");
    let entries = &board["entries"];
    let mean =
        |c: &str| entries[c]["apfd"].as_f64().unwrap() / entries[c]["weight"].as_f64().unwrap();
    assert!(mean(leader) > mean("prior") + 0.1, "{entries:#}");
    // The explanation and the human view name it.
    let ids: Vec<String> = (0..30)
        .map(|t| format!("app.Core::test_{t:03}"))
        .chain(["app.A::x".into(), "app.B::y".into()])
        .collect();
    let tests = sb.write_tests("c.txt", &ids.iter().map(String::as_str).collect::<Vec<_>>());
    let out = fedtest()
        .args(["plan", "--explain", "--tests"])
        .arg(&tests)
        .arg("--changed-files")
        .arg(&changed)
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        stderr(&out).contains(&format!("ordering by {leader} (")),
        "{}",
        stderr(&out)
    );
    // The test that failed last runs first.
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(first, "app.B::y");
    fedtest().arg("model").assert().success().stdout(
        predicate::str::contains(format!("strategy: {leader} ("))
            .and(predicate::str::contains("failed-first"))
            .and(predicate::str::contains("vs history")),
    );
}

#[test]
fn eval_shows_every_candidate_side_by_side() {
    let sb = Sandbox::new();
    History::record(&sb, History::BUILDS);
    let json = sb.eval_json();
    let names: Vec<&str> = json["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["candidate"].as_str().unwrap())
        .collect();
    for c in ["local", "prior", "history", "failed-first"] {
        assert!(names.contains(&c), "{c} missing: {json:#}");
    }
    // What fedtest scored is what one of the candidates scored on each build, so its mean
    // lies within theirs.
    let apfds: Vec<f64> = json["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["apfd"].as_f64().unwrap())
        .collect();
    let fedtest = json["apfd"].as_f64().unwrap();
    let lo = apfds.iter().copied().fold(f64::MAX, f64::min);
    let hi = apfds.iter().copied().fold(f64::MIN, f64::max);
    assert!(lo - 1e-9 <= fedtest && fedtest <= hi + 1e-9, "{json:#}");
    sb.fedtest()
        .arg("eval")
        .assert()
        .success()
        .stdout(predicate::str::contains("history").and(predicate::str::contains("failed-first")));
}

#[test]
fn a_corrupt_backtest_record_is_reported_and_never_overwritten() {
    let sb = Sandbox::new();
    History::record(&sb, 6);
    rusqlite::Connection::open(sb.store_path())
        .unwrap()
        .execute(
            "UPDATE meta SET value = '{not json' WHERE key = 'backtest'",
            [],
        )
        .unwrap();
    let before = sb.data_dir_state();
    let report = sb.write("reports/next.xml", History::build(6).to_xml());
    let out = sb
        .fedtest()
        .args(["record", "--build", "b07", "--junit"])
        .arg(&report)
        .assert()
        .code(4)
        .get_output()
        .clone();
    assert!(stderr(&out).contains("backtest"), "{}", stderr(&out));
    assert_eq!(sb.data_dir_state(), before);
    // plan: a warning, and every candidate in the given order.
    let ids = History::ids();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let plan: Value = sb.plan_json(&ids, &["--budget", "10%"]);
    assert_eq!(plan["selected"], ids.len(), "{plan:#}");
    assert!(
        plan["full_run"]
            .as_str()
            .unwrap()
            .contains("could not plan")
    );
}
