//! One build folded into its tests' flakiness evidence. The record workflow computes the new
//! rows here, from the rows the store holds, and hands the changed ones to the store.

use super::score::{FlakyState, Observation};
use crate::junit::TestCase;
use crate::keys::{own_file_changed, stable_hash};

/// Builds that change more files than this say nothing about which tests they concern.
const MAX_CHANGED_FILES: usize = 1000;

/// The hash a commit is remembered by (a 64-bit hash is plenty to tell one from the last).
pub fn commit_hash(commit: &str) -> u64 {
    stable_hash(&[commit.trim().as_bytes()])
}

/// The build's tests whose evidence it changed (index into `results`), with their state after
/// it. `stored` holds each test's row before the build, in the order of `results` (a test
/// without one starts from the default; the reports were grouped, so each test is there
/// once); `file_of` gives a test's file when its report does not.
pub fn fold_build<'a>(
    stored: Vec<Option<FlakyState>>,
    seq: u64,
    commit: Option<&str>,
    changed: Option<&[String]>,
    results: &[TestCase],
    file_of: impl Fn(&str) -> Option<&'a str>,
) -> Vec<(usize, FlakyState)> {
    let commit = commit.filter(|c| !c.trim().is_empty()).map(commit_hash);
    let changed: Option<Vec<&str>> = changed
        .filter(|c| c.len() <= MAX_CHANGED_FILES)
        .map(|c| c.iter().map(String::as_str).collect());
    let mut changed_rows = Vec::with_capacity(results.len());
    for (i, (t, stored)) in results.iter().zip(stored).enumerate() {
        let before = stored.unwrap_or_default();
        let mut state = before.clone();
        let file = t.file.as_deref().or_else(|| file_of(&t.id));
        let related_change = changed.as_deref().map(|c| own_file_changed(&t.id, file, c));
        state.observe(&Observation {
            seq,
            outcome: t.outcome,
            commit,
            related_change,
        });
        if state != before {
            changed_rows.push((i, state));
        }
    }
    changed_rows
}
