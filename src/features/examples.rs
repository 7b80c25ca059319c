//! A build's training examples: the features each executed test had before the build,
//! paired with its outcome, sampled and weighted.

use crate::flaky::score::{label_weight, score_from_stats};
use crate::history::state::{self, BuildInput, Delta, Example, State};
use crate::history::stats::TestStats;
use crate::junit::{Outcome, TestCase};
use crate::keys::stable_hash;

use super::{BuildContext, compute};

/// Passes kept per build as training examples.
const PASS_SAMPLE: usize = 100;
/// Failures kept per build (a build where everything broke teaches little more per row).
const FAIL_SAMPLE: usize = 200;

/// The stored training examples, oldest first, in this schema: rows a schema-1 release
/// stored read as knowing no symbols ([`super::upgrade`]).
pub fn stored(store: &crate::history::Store) -> Result<Vec<Example>, crate::history::StoreError> {
    let mut examples = store.examples()?;
    for e in &mut examples {
        e.features = super::upgrade(std::mem::take(&mut e.features));
    }
    Ok(examples)
}

/// Fold one build into `state`; return its training examples (computed from the state before
/// the build) and what changed.
pub fn observe(state: &mut State, build: &BuildInput<'_>) -> (Vec<Example>, Delta) {
    let examples = examples(state, build);
    let delta = state::fold(state, build);
    (examples, delta)
}

/// The training examples of one build, from the state before it.
fn examples(state: &State, build: &BuildInput<'_>) -> Vec<Example> {
    // Duplicate rows were grouped by the JUnit reader; skipped tests teach nothing.
    let executed: Vec<&TestCase> = build
        .results
        .iter()
        .filter(|t| t.outcome != Outcome::Skipped)
        .collect();
    let n_fail = executed
        .iter()
        .filter(|t| t.outcome == Outcome::Failed)
        .count();
    let n_pass = executed.len() - n_fail;

    let ctx = BuildContext::new(state, build.changed_files).with_symbols(build.symbols);
    let fails = sample(&executed, true, FAIL_SAMPLE, build.seq);
    let passes = sample(&executed, false, PASS_SAMPLE, build.seq);
    let mut examples = Vec::with_capacity(fails.len() + passes.len());
    for (rows, total, is_fail) in [(fails, n_fail, true), (passes, n_pass, false)] {
        let kept = rows.len().max(1) as f64;
        let weight = if n_fail > 0 { 1.0 / kept } else { 0.0 };
        let natural = total as f64 / kept;
        for t in rows {
            let x = compute(&t.id, t.file.as_deref(), &ctx);
            let stats = state.tests.get(&t.id);
            let hygiene = if is_fail { failure_weight(stats) } else { 1.0 };
            examples.push(Example {
                seq: build.seq,
                features: x,
                failed: is_fail,
                weight: weight * hygiene,
                natural,
            });
        }
    }
    examples
}

/// Failures of tests with a record of flaking are noisy labels for the failure model: count
/// them for less, by the flakiness score their history gives — retry flakes and recent flips,
/// scored as `crate::flaky::score` does (1 without evidence, down to 0.1 when surely flaky).
fn failure_weight(stats: Option<&TestStats>) -> f64 {
    match stats {
        Some(s) if s.runs > 0 => label_weight(score_from_stats(s)),
        _ => 1.0,
    }
}

/// Up to `keep` of the executed tests with the given outcome, chosen by a stable hash of
/// (build, test) so the same build always yields the same sample.
fn sample<'a>(executed: &[&'a TestCase], failed: bool, keep: usize, seq: u64) -> Vec<&'a TestCase> {
    let mut rows: Vec<&TestCase> = executed
        .iter()
        .copied()
        .filter(|t| (t.outcome == Outcome::Failed) == failed)
        .collect();
    if rows.len() > keep {
        rows.sort_by_cached_key(|t| stable_hash(&[&seq.to_le_bytes(), t.id.as_bytes()]));
        rows.truncate(keep);
    }
    rows
}
