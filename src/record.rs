//! The record workflow: one build into the history, then what follows a build (retrain,
//! federate, calibrate). `fedtest record`, `run`, `import` and `demo` all go through here.
//!
//! [`record`]: the store opens the transaction and loads the state before the build; the
//! training examples (`features`), the folded aggregates (`history::state`) and the flakiness
//! evidence (`flaky`) are computed here and handed back to the store, which writes them and
//! commits.

use std::path::Path;

use crate::ci::{Env, ResolvedBuild};
use crate::config::Config;
use crate::config::env::Vars;
use crate::error::{Error, Result};
use crate::features;
use crate::federation;
use crate::flaky;
use crate::history::state::{BuildInput, Example};
use crate::history::store::{Backtest, BuildMeta, Retention};
use crate::history::{Begun, RecordOutcome, Rows, Store, StoreError};
use crate::inputs::BuildSpec;
use crate::junit::{self, Limits, TestCase};
use crate::keys::stable_hash;
use crate::model::Model;
use crate::model::train::{self, TrainOptions};
use crate::output::Printer;
use crate::strategy::{self, Models};

/// Read a build's JUnit reports (files, directories or glob patterns) as `record` keeps them:
/// within `[record]`'s size bound, printable ids only, durations bounded.
pub fn read_reports(paths: &[String], config: &Config, printer: &Printer) -> Result<Vec<TestCase>> {
    let limits = Limits {
        max_file_bytes: config.record.max_report_mib.saturating_mul(1024 * 1024),
        // Only ids a plan can print as one line enter the history (issue 11).
        printable_ids: true,
        ..Limits::default()
    };
    let mut results = junit::read_reports(paths, &limits)?;
    bound_durations(&mut results, printer);
    Ok(results)
}

/// `fedtest record`: read the build's reports, resolve its metadata, record it. Everything is
/// parsed before the store is touched: a bad report leaves the history as it was.
pub fn record_reports(
    data_dir: &Path,
    config: &Config,
    reports: &[String],
    build: &BuildSpec,
    learn: Option<&Learn>,
    env: &Env,
    printer: &Printer,
) -> Result<()> {
    let results = read_reports(reports, config, printer)?;
    let build = crate::inputs::resolve_build(build, env, printer)?;
    record_results(data_dir, config, &results, build, learn, printer)
}

/// `fedtest record`'s workflow: record one build's results, say what was recorded, then
/// (with `learn`) retrain, federate and calibrate.
pub fn record_results(
    data_dir: &Path,
    config: &Config,
    results: &[TestCase],
    build: ResolvedBuild,
    learn: Option<&Learn>,
    printer: &Printer,
) -> Result<()> {
    let build_id = build.build_id.unwrap_or_else(|| content_id(results));
    let base = build.base;
    let meta = BuildMeta {
        build_id: build_id.clone(),
        commit: build.commit,
        branch: build.branch,
        changed_files: build.changed_files,
        recorded_at: None,
    };
    let mut store = Store::open_or_create(data_dir)?;
    // Training examples and the backtest see the symbol features as the plan saw them.
    let ids: Vec<&str> = results.iter().map(|t| t.id.as_str()).collect();
    let symbols = crate::changes::for_build(
        data_dir,
        meta.changed_files.as_deref(),
        base.as_deref(),
        &ids,
        true,
    )
    .and_then(Result::ok);
    // Every candidate ordering is judged on this build before it joins the history.
    let models = Models::load(data_dir);
    let mut backtest = strategy::backtest(
        &models,
        results,
        meta.changed_files.as_deref(),
        symbols.as_ref(),
    );
    match crate::record::record(
        &mut store,
        &meta,
        results,
        retention(config),
        &mut backtest,
        symbols.as_ref(),
    )? {
        RecordOutcome::AlreadyRecorded { seq } => {
            printer.info(&format!(
                "build {build_id} is already recorded (build #{seq}); nothing changed"
            ));
            return Ok(());
        }
        RecordOutcome::Recorded {
            seq,
            tests,
            failed,
            flaky,
            skipped,
            new_tests,
            renamed,
        } => {
            if let Some(id) = &renamed {
                printer.warn(&format!(
                    "build id {build_id} is already recorded for another commit; recording this \
                     commit as build {id} (give each run its own id: --build, or a CI run id)"
                ));
            }
            let build_id = renamed.unwrap_or(build_id);
            printer.info(&format!(
                "recorded build {build_id} (#{seq}): {tests} tests, {failed} failed, {flaky} flaky, {skipped} skipped, {new_tests} new"
            ));
        }
    }
    if let Some(learn) = learn {
        after_recording(
            &store,
            data_dir,
            learn,
            meta.changed_files.is_some(),
            printer,
        );
    }
    Ok(())
}

/// Record one build in a single transaction. Recording a build id twice changes nothing.
///
/// `backtest` sees the state before the build (what `plan` saw) and the stored backtest
/// record, and returns the new record, written in the same transaction; an error means the
/// stored record is corrupt, and nothing is written.
pub fn record(
    store: &mut Store,
    meta: &BuildMeta,
    results: &[TestCase],
    retention: Retention,
    backtest: Backtest<'_>,
    symbols: Option<&crate::changes::Analysis>,
) -> Result<RecordOutcome, StoreError> {
    let mut rec = match store.begin(meta, backtest)? {
        Begun::AlreadyRecorded { seq } => return Ok(RecordOutcome::AlreadyRecorded { seq }),
        Begun::New(rec) => *rec,
    };
    let seq = rec.seq();
    let changed = meta.changed_files.as_deref();
    let build = BuildInput {
        seq,
        results,
        changed_files: changed,
        symbols,
    };
    let new_tests = results
        .iter()
        .filter(|t| !rec.state.tests.contains_key(&t.id))
        .count();
    let (examples, delta) = features::observe(&mut rec.state, &build);
    let stored = rec.flaky_rows(results)?;
    let tests = &rec.state.tests;
    let flaky_evidence = flaky::update::fold_build(
        stored,
        seq,
        meta.commit.as_deref(),
        changed,
        results,
        |id| tests.get(id).and_then(|s| s.file.as_deref()),
    );
    rec.finish(&Rows {
        meta,
        results,
        retention,
        new_tests,
        examples: &examples,
        delta: &delta,
        flaky_evidence: &flaky_evidence,
    })
}

/// Clamp durations over [`junit::MAX_TEST_SECONDS`] (a report's `time="1e308"`), with one
/// warning naming the first few: the results are still recorded, the estimates stay finite.
pub fn bound_durations(results: &mut [TestCase], printer: &Printer) {
    let mut clamped: Vec<String> = Vec::new();
    for t in results.iter_mut() {
        if !t.duration.is_finite() || t.duration > junit::MAX_TEST_SECONDS {
            if clamped.len() < 3 {
                clamped.push(format!("{} ({:e} s)", t.id, t.duration));
            } else if clamped.len() == 3 {
                clamped.push("…".to_owned());
            }
            t.duration = if t.duration.is_nan() {
                0.0
            } else {
                junit::MAX_TEST_SECONDS
            };
        }
    }
    if !clamped.is_empty() {
        printer.warn(&format!(
            "test durations over {} s recorded as {} s: {}",
            junit::MAX_TEST_SECONDS,
            junit::MAX_TEST_SECONDS,
            clamped.join(", ")
        ));
    }
}

/// Retention of raw rows, from `[record]` in the configuration.
pub fn retention(config: &Config) -> Retention {
    Retention {
        builds: config.record.retention_builds,
        ..Retention::default()
    }
}

/// What follows recording new builds: retrain with `train`, then sync with `sync` (when a
/// server is configured).
#[derive(Clone, Debug, Default)]
pub struct Learn {
    pub train: TrainOptions,
    pub sync: Option<federation::Settings>,
}

impl Learn {
    /// Training as `[plan]` says; a sync after it when `FEDTEST_SERVER` is set.
    pub fn new(config: &Config, vars: &Vars) -> Learn {
        let train = TrainOptions::for_plan(&config.plan);
        let sync = vars.server.as_ref().map(|server| federation::Settings {
            server: Some(server.clone()),
            token: vars.token.clone(),
            train: train.clone(),
            ..federation::Settings::default()
        });
        Learn { train, sync }
    }
}

/// After new builds are committed: retrain, federate when a server is configured, and
/// calibrate the strategy the next plan will use (`changes_known`: whether it will know its
/// changed files, as the builds just recorded did). Never fails: the history is committed,
/// and a failed retrain only leaves the previous model.
pub fn after_recording(
    store: &Store,
    data_dir: &Path,
    learn: &Learn,
    changes_known: bool,
    printer: &Printer,
) {
    // One read of the stored examples serves training, the sync and the strategy's
    // calibration.
    let examples = match crate::features::stored(store) {
        Ok(examples) => examples,
        Err(e) => return printer.warn(&format!("model not updated: {e}")),
    };
    let anchor = federation::sync::training_anchor(data_dir);
    match retrain(&examples, &anchor, data_dir, &learn.train, printer) {
        Err(e) => printer.warn(&format!("model not updated: {e}")),
        // Federate with what was just trained; fails open (a warning, never an error).
        Ok(model) => {
            let trained = federation::sync::Trained {
                examples: &examples,
                anchor: &anchor,
                model: model.as_ref(),
            };
            if let Some(sync) = &learn.sync
                && let Err(e) = federation::sync::sync_trained(data_dir, sync, &trained, printer)
            {
                printer.warn(&format!(
                    "federation sync failed: {e}; keeping the local model"
                ));
            }
        }
    }
    if let Err(e) = calibrate_strategy(store, data_dir, &examples, changes_known) {
        printer.warn(&format!("strategy not calibrated: {e}"));
    }
}

/// Calibrate the probabilities of the strategy the next plan will use, when its model has no
/// calibration of its own (see `strategy::needs_calibration`), on the stored examples.
pub fn calibrate_strategy(
    store: &Store,
    data_dir: &Path,
    examples: &[Example],
    changes_known: bool,
) -> Result<()> {
    let board = strategy::Scoreboard::parse(store.backtest()?.as_deref())
        .map_err(|e| Error::Internal(format!("backtest record unreadable: {e}")))?;
    let models = Models::load(data_dir);
    // Before any candidate leads, which one plans depends on whether the changed files are
    // known (the cold start): calibrate the one the next plan will choose.
    let candidate = board.choose(&models, changes_known);
    if !strategy::needs_calibration(candidate) {
        return Ok(());
    }
    let Some(model) = models.get(candidate) else {
        return Ok(());
    };
    let Some(calibration) = strategy::calibrate(&model, examples) else {
        return Ok(());
    };
    let value = strategy::Calibration {
        candidate,
        calibration,
    };
    store.set_meta(
        strategy::CALIBRATION_KEY,
        &serde_json::to_string(&value).expect("a calibration serialises"),
    )?;
    Ok(())
}

/// A build id for reports recorded outside CI without `--build`: the same reports give the
/// same id, so recording them twice changes nothing.
fn content_id(results: &[TestCase]) -> String {
    let mut h = 0u64;
    for t in results {
        h = stable_hash(&[
            &h.to_le_bytes(),
            t.id.as_bytes(),
            &[t.outcome as u8],
            &t.duration.to_le_bytes(),
        ]);
    }
    format!("local-{h:016x}")
}

/// Retrain the local model from the stored examples, anchored on `anchor` (the prior, or the
/// global model: `federation::sync::training_anchor`), and save it.
pub fn retrain(
    examples: &[Example],
    anchor: &Model,
    data_dir: &Path,
    opts: &TrainOptions,
    printer: &Printer,
) -> Result<Option<Model>> {
    let previous = crate::model::previous_local(data_dir);
    let Some(model) = train::train(examples, anchor, previous.as_ref(), opts) else {
        printer.info(&format!(
            "not enough failures yet to train a local model (it waits for {} failed tests in \
             the retained builds); until then the plan orders by failure history or {}, \
             whichever the backtest favours",
            opts.min_failures,
            crate::model::prior::name()
        ));
        return Ok(None);
    };
    model
        .save(&crate::model::local_path(data_dir))
        .map_err(|e| {
            Error::Internal(format!(
                "cannot write {}: {e}",
                crate::model::local_path(data_dir).display()
            ))
        })?;
    Ok(Some(model))
}
