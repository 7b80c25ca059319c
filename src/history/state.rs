//! The learning state of one repository, independent of where it is stored.
//!
//! [`fold`] folds one build into the state. `features::observe` computes the build's
//! training examples from the state before it — the features each executed test had *before*
//! the build (exactly what `plan` saw) paired with its outcome — then folds it in. `record`
//! runs it on state loaded from SQLite; `eval` and the benchmarks run the same function on
//! state held in memory, so all three agree by construction.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::history::stats::TestStats;
use crate::junit::{Outcome, TestCase};
use crate::keys::{family_key, family_of, module_key};

/// Repository-wide aggregates.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GlobalStats {
    /// Builds recorded so far.
    pub builds: u64,
    /// Sequence number of the last build.
    pub last_seq: u64,
    /// Failed verdicts seen in total.
    pub failures: u64,
    /// Failed and executed verdicts, decayed by [`VERDICT_DECAY`] per build.
    #[serde(default)]
    pub recent_fails: f64,
    #[serde(default)]
    pub recent_verdicts: f64,
    /// Builds with a failure, and builds, decayed by [`BUILD_DECAY`] per build.
    #[serde(default)]
    pub recent_failing_builds: f64,
    #[serde(default)]
    pub recent_builds: f64,
}

/// Decay of the repository's failing-verdict share, per build.
pub const VERDICT_DECAY: f64 = 0.95;
/// Decay of the failing-build share, per build.
pub const BUILD_DECAY: f64 = 0.9;
/// Decay of module and family aggregates, per build in which the group ran. A one-test
/// family is computed from the test's own counts decayed per run, which must match.
pub const GROUP_DECAY: f64 = 0.9;
const _: () = assert!(GROUP_DECAY == crate::history::stats::DECAYS[1]);

impl GlobalStats {
    /// The repository's recent share of failing verdicts, smoothed: the base rate every
    /// per-test rate is shrunk toward.
    pub fn base_rate(&self) -> f64 {
        (self.recent_fails + 0.5) / (self.recent_verdicts + 50.0)
    }
}

/// History of a module (file or class) or a family (a test's parametrised variants).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GroupStats {
    /// Failures and runs, decayed by [`GROUP_DECAY`] per build in which the group ran.
    pub fails: f64,
    pub runs: f64,
    /// Share of the group that failed the last time it ran.
    pub last_fail_share: f64,
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

/// Everything fedtest knows of a repository's history.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub tests: HashMap<String, TestStats>,
    pub groups: HashMap<String, GroupStats>,
    pub global: GlobalStats,
    pub cochange: CoChange,
}

/// One training example: features before the build, outcome after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub seq: u64,
    pub features: Vec<f64>,
    pub failed: bool,
    /// Training weight. Every failing build carries mass 1 of failures and mass 1 of passes,
    /// which turns pooled logistic regression into something close to ranking within a
    /// build; builds without a failure carry none (there is nothing to rank).
    pub weight: f64,
    /// Weight that undoes the sampling (how many real verdicts this row stands for), for
    /// calibrating probabilities.
    pub natural: f64,
}

/// One build to fold in.
pub struct BuildInput<'a> {
    pub seq: u64,
    pub results: &'a [TestCase],
    pub changed_files: Option<&'a [String]>,
    /// The build's symbol-level change analysis, when the checkout was at hand.
    pub symbols: Option<&'a crate::changes::Analysis>,
}

/// What changed, so a store can persist only that.
#[derive(Debug, Default)]
pub struct Delta {
    pub changed_files: Vec<String>,
    pub cofail: Vec<(String, String)>,
    pub groups: Vec<String>,
}

/// Fold one build into `state`'s aggregates; return what changed. The build's training
/// examples are computed from the state before this (`features::observe` does both).
pub fn fold(state: &mut State, build: &BuildInput<'_>) -> Delta {
    // Duplicate rows were grouped by the JUnit reader; skipped tests teach nothing.
    let executed: Vec<&TestCase> = build
        .results
        .iter()
        .filter(|t| t.outcome != Outcome::Skipped)
        .collect();
    let failed = |t: &&&TestCase| t.outcome == Outcome::Failed;
    let n_fail = executed.iter().filter(failed).count();

    // Groups: one update per group that ran in this build.
    let mut group_runs: HashMap<String, (f64, f64)> = HashMap::new();
    for t in &executed {
        let f = f64::from(u8::from(t.outcome == Outcome::Failed));
        // A test that is its own family needs no family row (see `features::compute`).
        let family = (family_of(&t.id) != t.id).then(|| family_key(&t.id));
        for key in std::iter::once(module_key(&t.id)).chain(family) {
            let e = group_runs.entry(key).or_default();
            e.0 += f;
            e.1 += 1.0;
        }
    }
    let mut delta = Delta::default();
    for (key, (fails, runs)) in group_runs {
        let g = state.groups.entry(key.clone()).or_default();
        g.fails = GROUP_DECAY * g.fails + fails;
        g.runs = GROUP_DECAY * g.runs + runs;
        g.last_fail_share = fails / runs;
        delta.groups.push(key);
    }

    for t in build.results {
        state
            .tests
            .entry(t.id.clone())
            .or_insert_with(|| TestStats::new(build.seq))
            .observe(build.seq, t.outcome, t.duration, t.file.as_deref());
    }

    if let Some(changed) = build
        .changed_files
        .filter(|c| !c.is_empty() && c.len() <= MAX_COCHANGE_FILES)
    {
        let co = &mut state.cochange;
        for f in changed {
            *co.file_changes.entry(f.clone()).or_default() += 1.0;
            delta.changed_files.push(f.clone());
            for t in executed.iter().filter(failed) {
                *co.cofail
                    .entry(f.clone())
                    .or_default()
                    .entry(t.id.clone())
                    .or_default() += 1.0;
                delta.cofail.push((f.clone(), t.id.clone()));
            }
        }
    }

    let g = &mut state.global;
    g.builds += 1;
    g.last_seq = build.seq;
    g.failures += n_fail as u64;
    g.recent_fails = VERDICT_DECAY * g.recent_fails + n_fail as f64;
    g.recent_verdicts = VERDICT_DECAY * g.recent_verdicts + executed.len() as f64;
    g.recent_failing_builds =
        BUILD_DECAY * g.recent_failing_builds + f64::from(u8::from(n_fail > 0));
    g.recent_builds = BUILD_DECAY * g.recent_builds + 1.0;
    delta
}
