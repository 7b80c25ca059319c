//! `fedtest demo`: the main job end to end on the embedded example builds — record a real
//! project's CI history, learn from it, then plan a build that carries a regression and show
//! what the plan would have run, why, what it catches and the time it saves.

mod builds;

use std::fmt::Write as _;
use std::path::Path;

use crate::commands::record::retrain;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::eval::{self, ReplayBuild};
use crate::history::Store;
use crate::history::store::{BuildMeta, Retention};
use crate::junit::{self, Limits, Outcome, TestCase};
use crate::model::prior;
use crate::model::train::TrainOptions;
use crate::output::Printer;
use crate::plan::{self, Budget, Knowledge, Request};

pub use builds::{BUILDS, DemoBuild};

/// The JUnit results of one embedded build.
pub fn results(b: &DemoBuild) -> Result<Vec<TestCase>> {
    let label = format!("examples/demo/builds/{}/junit.xml", b.id);
    let attempts = junit::read_from(b.junit.as_bytes(), &label, &Limits::default())?;
    Ok(junit::group(attempts))
}

fn changed(b: &DemoBuild) -> Vec<String> {
    b.changed_files.iter().map(|s| (*s).to_owned()).collect()
}

/// Run the demo in `dir` and return the report.
pub fn run(dir: &Path, budget: Budget, printer: &Printer) -> Result<String> {
    let config = Config::default();
    let all: Vec<Vec<TestCase>> = BUILDS.iter().map(results).collect::<Result<_>>()?;
    // Plan the last build that broke something: it is what a reviewer wants fedtest to catch.
    let target = (0..BUILDS.len())
        .rev()
        .find(|&i| all[i].iter().any(|t| t.outcome == Outcome::Failed))
        .unwrap_or(BUILDS.len() - 1);
    let quiet = Printer::new(crate::ci::Platform::None).quiet();
    let mut store = Store::open_or_create(dir)?;
    for (b, results) in BUILDS.iter().zip(&all).take(target) {
        let meta = BuildMeta {
            build_id: format!("demo-{}", b.id),
            commit: Some(b.commit.to_owned()),
            branch: Some("main".to_owned()),
            changed_files: Some(changed(b)),
            recorded_at: None,
        };
        let models = crate::strategy::Models::load(dir);
        let mut backtest =
            crate::strategy::backtest(&models, results, meta.changed_files.as_deref());
        store.record(&meta, results, Retention::default(), &mut backtest)?;
        let examples = store.examples()?;
        retrain(
            &examples,
            dir,
            &TrainOptions::for_plan(&config.plan),
            &quiet,
        )?;
        crate::commands::record::calibrate_strategy(&store, dir, &examples)?;
    }
    printer.info(&format!(
        "recorded {target} example builds into {}",
        dir.display()
    ));

    let b = &BUILDS[target];
    let candidates: Vec<String> = all[target]
        .iter()
        .filter(|t| t.outcome != Outcome::Skipped)
        .map(|t| t.id.clone())
        .collect();
    let changed_files = changed(b);
    let state = store.state(&changed_files)?;
    let models = crate::strategy::Models::load(dir);
    let (model, strategy) =
        crate::strategy::for_plan(Some(&store), &models, true).map_err(Error::Internal)?;
    let plan = plan::plan(
        &Knowledge {
            state: &state,
            model: &model,
            strategy: &strategy,
        },
        &Request {
            candidates: &candidates,
            changed_files: Some(&changed_files),
            branch: Some("main"),
            build_key: b.commit,
            budget,
            explain: true,
        },
        &config.plan,
    )
    .map_err(Error::Internal)?;

    let mut s = String::new();
    let _ = writeln!(
        s,
        "fedtest demo — a real project's CI history (examples/demo/README.md)\n"
    );
    let _ = writeln!(
        s,
        "Recorded builds 01–{:02}; ordering by {}.",
        target,
        strategy.describe()
    );
    let _ = writeln!(s, "Next build {}: \"{}\"", b.id, b.message);
    let _ = writeln!(s, "  changed: {}\n", b.changed_files.join(", "));
    let _ = writeln!(
        s,
        "Plan at budget {budget}: run {} of {} tests, {:.1} s of {:.1} s estimated.",
        plan.selected,
        plan.tests.len(),
        plan.estimated_seconds_selected,
        plan.estimated_seconds_total
    );
    if let Some(why) = &plan.full_run {
        let _ = writeln!(s, "  (running everything: {why})");
    }
    let _ = writeln!(s, "\nFirst tests of the plan, and why:");
    let shown = 12.min(plan.tests.len());
    let mut table = crate::commands::plan::explain(&plan);
    table = table.lines().take(shown + 1).collect::<Vec<_>>().join("\n");
    let _ = writeln!(s, "{table}");
    let _ = writeln!(s, "  … {} more\n", plan.tests.len() - shown);

    // Reality check against what the build really did.
    let failed: Vec<&TestCase> = all[target]
        .iter()
        .filter(|t| t.outcome == Outcome::Failed)
        .collect();
    let selected: std::collections::HashSet<&str> = plan
        .tests
        .iter()
        .filter(|t| t.selected)
        .map(|t| t.id.as_str())
        .collect();
    let caught = failed
        .iter()
        .filter(|t| selected.contains(t.id.as_str()))
        .count();
    let real_total: f64 = all[target].iter().map(|t| t.duration).sum();
    let real_selected: f64 = all[target]
        .iter()
        .filter(|t| selected.contains(t.id.as_str()))
        .map(|t| t.duration)
        .sum();
    let _ = writeln!(
        s,
        "What really happened in build {}: {} tests failed; the plan runs {} of them.",
        b.id,
        failed.len(),
        caught
    );
    for t in &failed {
        let rank = plan
            .tests
            .iter()
            .position(|p| p.id == t.id)
            .map_or(0, |r| r + 1);
        let _ = writeln!(
            s,
            "  {} {} (rank {rank})",
            if selected.contains(t.id.as_str()) {
                "caught "
            } else {
                "MISSED "
            },
            t.id
        );
    }
    if real_total > 0.0 {
        let _ = writeln!(
            s,
            "Test time: {:.1} s instead of {:.1} s — {:.0}% saved.",
            real_selected,
            real_total,
            100.0 * (1.0 - real_selected / real_total)
        );
    }

    // And over the whole history, as `fedtest eval` would report it.
    let owned: Vec<Vec<String>> = BUILDS.iter().map(changed).collect();
    let replay: Vec<ReplayBuild<'_>> = all
        .iter()
        .zip(&owned)
        .map(|(r, c)| ReplayBuild {
            results: r,
            changed_files: Some(c),
        })
        .collect();
    let replayed = eval::replay(&replay, &prior::prior(), None, &config.plan, 5);
    let scores = replayed.fedtest;
    let _ = writeln!(
        s,
        "\nReplaying all {} builds (plan each with only the past): APFD {:.3}; failures caught in the first 20% of test time: {:.0}%; failing builds caught within 33%: {:.0}%.",
        scores.builds,
        scores.apfd,
        scores.recall_time_20 * 100.0,
        scores.builds_caught_33 * 100.0
    );
    let _ = writeln!(
        s,
        "\nNext: `fedtest record --junit <reports>` after your tests, `fedtest plan --tests <list> --budget 30%` before them."
    );
    // The answer to "what would skipping have cost us": `fedtest eval` draws it for your history.
    let _ = writeln!(s);
    s.push_str(&eval::curve::terminal(&replayed.curve));
    Ok(s)
}
