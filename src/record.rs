//! The record workflow: one build into the history. The store opens the transaction and
//! loads the state before the build; the training examples (`features`), the folded
//! aggregates (`history::state`) and the flakiness evidence (`flaky`) are computed here and
//! handed back to the store, which writes them and commits.

use crate::features;
use crate::flaky;
use crate::history::state::{self, BuildInput};
use crate::history::store::{Backtest, BuildMeta, Retention};
use crate::history::{Begun, RecordOutcome, Rows, Store, StoreError};
use crate::junit::TestCase;

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
    };
    let new_tests = results
        .iter()
        .filter(|t| !rec.state.tests.contains_key(&t.id))
        .count();
    let examples = features::examples(&rec.state, &build);
    let delta = state::fold(&mut rec.state, &build);
    let stored = rec.flaky_rows(results)?;
    let tests = &rec.state.tests;
    let flaky_evidence = flaky::update::fold_build(
        &stored,
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
