//! `fedtest model` and `fedtest eval`.

use predicates::prelude::*;

use crate::util::{History, Sandbox};

#[test]
fn model_is_the_prior_until_enough_history() {
    let sb = Sandbox::new();
    let prior = sb.model_json();
    assert_eq!(prior["source"], "prior", "{prior:#}");
    assert_eq!(
        prior["weights"].as_array().unwrap().len(),
        prior["features"].as_array().unwrap().len()
    );

    History::record(&sb, 2);
    assert_eq!(sb.model_json()["source"], "prior");
}

#[test]
fn model_is_trained_locally_from_history() {
    let sb = Sandbox::new();
    History::record(&sb, History::BUILDS);
    let model = sb.model_json();
    assert_eq!(model["source"], "local", "{model:#}");
    assert!(
        model["trained_failures"].as_u64().unwrap() >= 5,
        "{model:#}"
    );
    assert!(model["trained_builds"].as_u64().unwrap() >= 1, "{model:#}");
    assert!(
        model["trained_builds"].as_u64().unwrap() <= History::BUILDS as u64,
        "{model:#}"
    );

    sb.fedtest().arg("model").assert().success().stdout(
        predicate::str::contains("model: local").and(predicate::str::contains("(intercept)")),
    );
}

#[test]
fn eval_replays_the_retained_builds() {
    let sb = Sandbox::new();
    History::record(&sb, History::BUILDS);
    let scores = sb.eval_json();
    assert_eq!(scores["builds"], History::BUILDS, "{scores:#}");
    assert!(
        scores["failing_builds_scored"].as_u64().unwrap() >= 1,
        "{scores:#}"
    );
    let apfd = scores["apfd"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&apfd), "{scores:#}");
    // A failure every other build is easy to predict: a useful model beats a random order.
    assert!(apfd > 0.5, "{scores:#}");

    sb.fedtest()
        .arg("eval")
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "replayed {} retained builds",
            History::BUILDS
        )));
}

#[test]
fn eval_without_history_is_a_usage_error() {
    let sb = Sandbox::new();
    sb.fedtest()
        .args(["eval", "--json"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("no history"));
}

#[test]
fn fedtest_prior_replaces_the_built_in_prior_and_a_bad_one_falls_back_with_a_warning() {
    let sb = Sandbox::new();
    let mut custom = sb.model_json();
    custom["weights"][0] = serde_json::json!(0.4242);
    custom["intercept"] = serde_json::json!(-1.25);
    let file = sb.write("prior.json", serde_json::to_vec(&custom).unwrap());
    let out = sb
        .fedtest()
        .env("FEDTEST_PRIOR", &file)
        .args(["model", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let used: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&used["source"], &used["weights"][0], &used["intercept"]),
        (
            &serde_json::json!("prior"),
            &serde_json::json!(0.4242),
            &serde_json::json!(-1.25)
        )
    );
    sb.fedtest()
        .env("FEDTEST_PRIOR", &file)
        .arg("model")
        .assert()
        .success()
        .stdout(predicate::str::contains("the prior FEDTEST_PRIOR names"));

    let bad = sb.write("bad.json", "{\"schema\": 1}");
    let out = sb
        .fedtest()
        .env("FEDTEST_PRIOR", &bad)
        .args(["model", "--json"])
        .assert()
        .success()
        .stderr(predicate::str::contains("FEDTEST_PRIOR").and(predicate::str::contains("bad.json")))
        .get_output()
        .clone();
    let fallback: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(fallback["weights"], sb.model_json()["weights"]);
}
