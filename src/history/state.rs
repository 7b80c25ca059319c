//! The learning state of one repository, independent of where it is stored.
//!
//! [`observe`] folds one build into the state and returns the training examples it produced:
//! the features each executed test had *before* the build (exactly what `plan` saw) paired with
//! its outcome. `record` runs it on state loaded from SQLite; `eval` and the benchmarks run the
//! same function on state held in memory, so all three agree by construction.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::features::{self, BuildContext, Groups};
use crate::history::stats::TestStats;
use crate::junit::{Outcome, TestCase};

/// Repository-wide aggregates.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GlobalStats {
    /// Builds recorded so far.
    pub builds: u64,
    /// Sequence number of the last build.
    pub last_seq: u64,
    /// Moving average of "the build had a failing test" (0..1).
    pub failing_build_rate: f64,
    /// Failed verdicts seen in total.
    pub failures: u64,
}

/// How often files changed, and how often a test failed in a build that changed a file.
/// `record` loads only the entries for the build's changed files; `eval` keeps them all.
#[derive(Clone, Debug, Default)]
pub struct CoChange {
    pub file_changes: HashMap<String, f64>,
    pub cofail: HashMap<String, HashMap<String, f64>>,
}

/// Builds that change more files than this teach nothing specific about any one file.
pub const MAX_COCHANGE_FILES: usize = 100;

impl CoChange {
    pub fn get(&self, path: &str, test: &str) -> f64 {
        self.cofail
            .get(path)
            .and_then(|m| m.get(test))
            .copied()
            .unwrap_or(0.0)
    }
    pub fn changes(&self, path: &str) -> f64 {
        self.file_changes.get(path).copied().unwrap_or(0.0)
    }
}

/// One training example: features before the build, outcome after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub seq: u64,
    pub features: Vec<f64>,
    pub failed: bool,
    pub weight: f64,
}

/// One build to fold in.
pub struct BuildInput<'a> {
    pub seq: u64,
    pub results: &'a [TestCase],
    pub changed_files: Option<&'a [String]>,
}

/// What changed in the co-change counts, so a store can persist only that.
#[derive(Debug, Default)]
pub struct CoChangeDelta {
    pub files: Vec<String>,
    pub cofail: Vec<(String, String)>,
}

/// Passes kept per build as training examples, at least; failures are always kept.
const PASS_SAMPLE_MIN: usize = 64;
/// ... or this many passes per failure when that is more.
const PASS_SAMPLE_PER_FAIL: usize = 8;

/// Fold one build into `tests`, `global` and `cochange`; return its training examples.
pub fn observe(
    tests: &mut HashMap<String, TestStats>,
    global: &mut GlobalStats,
    cochange: &mut CoChange,
    build: &BuildInput<'_>,
) -> (Vec<Example>, CoChangeDelta) {
    let groups = Groups::build(tests.iter());
    let ctx = BuildContext::new(global, build.changed_files, cochange, tests.values());
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
    let keep_passes = (PASS_SAMPLE_MIN.max(PASS_SAMPLE_PER_FAIL * n_fail)).min(n_pass);
    let pass_weight = if keep_passes > 0 {
        n_pass as f64 / keep_passes as f64
    } else {
        1.0
    };
    let mut examples = Vec::with_capacity(n_fail + keep_passes);
    // Deterministic sample of passes: the `keep_passes` smallest hashes of (build, test).
    let threshold = if keep_passes < n_pass {
        let mut hashes: Vec<u64> = executed
            .iter()
            .filter(|t| t.outcome != Outcome::Failed)
            .map(|t| sample_hash(build.seq, &t.id))
            .collect();
        let (_, nth, _) = hashes.select_nth_unstable(keep_passes.saturating_sub(1));
        *nth
    } else {
        u64::MAX
    };
    for t in &executed {
        let failed = t.outcome == Outcome::Failed;
        if !failed && sample_hash(build.seq, &t.id) > threshold {
            continue;
        }
        let stats = tests.get(&t.id);
        let x = features::compute(&t.id, t.file.as_deref(), stats, &groups, &ctx);
        let weight = if failed {
            failure_weight(stats)
        } else {
            pass_weight
        };
        examples.push(Example {
            seq: build.seq,
            features: x,
            failed,
            weight,
        });
    }

    for t in build.results {
        tests
            .entry(t.id.clone())
            .or_insert_with(|| TestStats::new(build.seq))
            .observe(build.seq, t.outcome, t.duration, t.file.as_deref());
    }

    let mut delta = CoChangeDelta::default();
    if let Some(changed) = build
        .changed_files
        .filter(|c| !c.is_empty() && c.len() <= MAX_COCHANGE_FILES)
    {
        for f in changed {
            *cochange.file_changes.entry(f.clone()).or_default() += 1.0;
            delta.files.push(f.clone());
            for t in executed.iter().filter(|t| t.outcome == Outcome::Failed) {
                *cochange
                    .cofail
                    .entry(f.clone())
                    .or_default()
                    .entry(t.id.clone())
                    .or_default() += 1.0;
                delta.cofail.push((f.clone(), t.id.clone()));
            }
        }
    }

    global.builds += 1;
    global.last_seq = build.seq;
    global.failures += n_fail as u64;
    let failing = if n_fail > 0 { 1.0 } else { 0.0 };
    global.failing_build_rate = if global.builds == 1 {
        failing
    } else {
        0.9 * global.failing_build_rate + 0.1 * failing
    };
    (examples, delta)
}

/// Failures of tests with a record of flaking are noisy labels: count them for less.
fn failure_weight(stats: Option<&TestStats>) -> f64 {
    match stats {
        Some(s) if s.runs > 0 => {
            let flaky_rate = f64::from(s.flaky) / f64::from(s.runs);
            1.0 / (1.0 + 10.0 * flaky_rate)
        }
        _ => 1.0,
    }
}

/// A stable 64-bit hash (FNV-1a) — std's hasher is randomly seeded per process.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn sample_hash(seq: u64, id: &str) -> u64 {
    stable_hash(&[&seq.to_le_bytes(), id.as_bytes()])
}
