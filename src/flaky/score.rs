//! Per-test flakiness evidence, folded in once per build in O(1) state, and the score it gives.
//!
//! The score is the posterior probability that a test is flaky *now*, under a forgetting
//! model: it starts from a prior log-odds ([`PRIOR`]), every executed run multiplies the
//! accumulated evidence (log-likelihood ratios) by [`DECAY`], and the run's own signal adds
//! its weight:
//!
//! | signal | weight | why |
//! |---|---|---|
//! | failed, then passed on a retry in the same build | [`RETRY_EVIDENCE`] | the definition of a flaky test: same code, two outcomes |
//! | pass ↔ fail flip on the same commit as its previous run | [`SAME_COMMIT_EVIDENCE`] | the same, one build apart |
//! | flip, the build's changed files known but none of them the test's own file or module | [`FLIP_EVIDENCE`] | weak: a change to the code under test breaks tests without touching them |
//! | flip, changed files unknown | [`FLIP_EVIDENCE`] | weak, as above |
//! | flip, the test's own file or module changed | 0 | the change explains it |
//!
//! A plain flip is weak on purpose: a real regression flips a test twice (break, fix), just
//! like one intermittent failure. Only repetition — a high recency-weighted flip rate, as in
//! Kowalczyk et al., "Modeling and ranking flaky tests at Apple" (ICSE-SEIP 2020), which
//! ranks tests by flip rates weighted toward recent runs — or a retry makes a test flaky.
//! The decayed evidence is a recency-weighted flip count: flip rate × the effective window
//! `1 / (1 - DECAY)` ≈ 33 runs. Confidence grows with evidence: one retry flake gives a score
//! of 0.96 and keeps the test flaky for 19 clean runs; without retries, a test must keep
//! failing alone (a pass on either side) about once in nine runs.
//!
//! Evidence is capped at [`MAX_EVIDENCE`], chosen so that from *any* state, 20 runs without a
//! signal bring the score under [`DEFAULT_THRESHOLD`] (and any higher threshold): a test that
//! stays green is trusted again within 20 builds. The weights were set on the replay benchmark
//! (`bench/flaky.py`), not on the data the integration tests use.

pub use crate::history::flaky_rows::FlakyState;
use crate::history::stats::TestStats;
use crate::junit::Outcome;

/// Prior probability that a test is flaky, before any evidence.
pub const PRIOR: f64 = 0.02;
/// Per-run decay of the evidence (one run of the test = one build in which it executed).
pub const DECAY: f64 = 0.97;
/// Log-likelihood ratio of a retry flake (failed, then passed, in one build): the whole cap,
/// so one flake keeps a test flagged for [`TRUST_AGAIN_RUNS`]` - 1` clean runs, not fewer — most
/// flaky tests fail in under 1% of runs (Lam et al., ISSRE 2020), and a flag that lapses
/// sooner than it must misses them between their rare flakes.
pub const RETRY_EVIDENCE: f64 = MAX_EVIDENCE;
/// Log-likelihood ratio of a flip on the same commit: two outcomes of the same code, as sure
/// a sign as a retry flake.
pub const SAME_COMMIT_EVIDENCE: f64 = MAX_EVIDENCE;
/// Log-likelihood ratio of a flip that no change to the test's own file explains.
pub const FLIP_EVIDENCE: f64 = 0.5;
/// Cap of the accumulated evidence: `MAX_EVIDENCE · DECAY^20 < -logit(PRIOR)` (20 clean runs
/// always bring a test under the default threshold) and `MAX_EVIDENCE · DECAY^19 ≥
/// -logit(PRIOR)` (19 do not), checked in the tests.
pub const MAX_EVIDENCE: f64 = 7.1;
/// Default `[flaky] threshold`: a test scoring at least this is flaky.
pub const DEFAULT_THRESHOLD: f64 = 0.5;
/// Runs without a signal after which any state scores under [`DEFAULT_THRESHOLD`].
pub const TRUST_AGAIN_RUNS: u32 = 20;

const _: () = assert!(MAX_EVIDENCE < 7.16 && RETRY_EVIDENCE <= MAX_EVIDENCE);

/// What one run of a test says about its flakiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    None,
    /// Failed, then passed on a retry within the build.
    RetryFlake,
    /// Passed ↔ failed against its previous run on the same commit.
    SameCommitFlip,
    /// Flipped; the build's changed files are known and none is the test's own.
    UnrelatedFlip,
    /// Flipped; the build's changed files are unknown.
    UnknownFlip,
    /// Flipped, and its own file or module changed: explained, no evidence.
    RelatedFlip,
}

impl Signal {
    /// Log-likelihood ratio this signal adds.
    pub fn weight(self) -> f64 {
        match self {
            Signal::RetryFlake => RETRY_EVIDENCE,
            Signal::SameCommitFlip => SAME_COMMIT_EVIDENCE,
            Signal::UnrelatedFlip | Signal::UnknownFlip => FLIP_EVIDENCE,
            Signal::RelatedFlip | Signal::None => 0.0,
        }
    }
}

/// One build's result for one test, with the context flakiness needs.
#[derive(Clone, Copy, Debug)]
pub struct Observation {
    pub seq: u64,
    pub outcome: Outcome,
    /// Hash of the build's commit, when known.
    pub commit: Option<u64>,
    /// Whether the build changed the test's own file or module; `None` when unknown.
    pub related_change: Option<bool>,
}

/// `ln(p / (1 - p))`.
pub fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The score of an amount of evidence.
pub fn score_of(evidence: f64) -> f64 {
    sigmoid(logit(PRIOR) + evidence.clamp(0.0, MAX_EVIDENCE))
}

impl FlakyState {
    /// Flakiness score in `[0, 1]`: the posterior probability that the test is flaky now.
    pub fn score(&self) -> f64 {
        score_of(self.evidence)
    }

    /// Fold one build's result in; returns the signal it carried.
    pub fn observe(&mut self, obs: &Observation) -> Signal {
        if obs.outcome == Outcome::Skipped {
            return Signal::None;
        }
        let failed = obs.outcome == Outcome::Failed;
        let flipped = self.last_failed.is_some_and(|last| last != failed);
        let signal = if obs.outcome == Outcome::Flaky {
            Signal::RetryFlake
        } else if !flipped {
            Signal::None
        } else if obs.commit.is_some() && obs.commit == self.last_commit {
            Signal::SameCommitFlip
        } else {
            match obs.related_change {
                Some(true) => Signal::RelatedFlip,
                Some(false) => Signal::UnrelatedFlip,
                None => Signal::UnknownFlip,
            }
        };
        match signal {
            Signal::RetryFlake => self.retry_flakes += 1,
            Signal::SameCommitFlip => self.same_commit_flips += 1,
            Signal::UnrelatedFlip => self.unrelated_flips += 1,
            Signal::UnknownFlip => self.unknown_flips += 1,
            Signal::RelatedFlip => self.related_flips += 1,
            Signal::None => {}
        }
        let w = signal.weight();
        self.evidence = (self.evidence * DECAY + w).clamp(0.0, MAX_EVIDENCE);
        let unstable = f64::from(u8::from(signal != Signal::None));
        self.flip_rate = DECAY * self.flip_rate + (1.0 - DECAY) * unstable;
        if w > 0.0 {
            self.first_flake_seq.get_or_insert(obs.seq);
            self.last_flake_seq = Some(obs.seq);
            self.flake_free_runs = 0;
        } else {
            self.flake_free_runs = self.flake_free_runs.saturating_add(1);
        }
        self.runs = self.runs.saturating_add(1);
        self.last_failed = Some(failed);
        self.last_commit = obs.commit;
        signal
    }
}

/// The score from the evidence a [`TestStats`] carries: the flips of its 64-run failure
/// window (context unknown) and its retry-flake rate. `features::examples` sees only
/// `TestStats`, so this is what weights training labels there; it uses the same weights,
/// decay and cap as [`FlakyState`], without the commit and changed-file context.
pub fn score_from_stats(s: &TestStats) -> f64 {
    let n = s.window_len();
    if n == 0 {
        return score_of(0.0);
    }
    // Oldest first, as the runs happened. Bit i is the run i runs ago.
    let mut evidence: f64 = 0.0;
    for i in (0..n.saturating_sub(1)).rev() {
        let now = (s.window >> i) & 1;
        let before = (s.window >> (i + 1)) & 1;
        evidence = evidence * DECAY + if now != before { FLIP_EVIDENCE } else { 0.0 };
    }
    // Retry flakes are counted, not dated: spread them evenly over the runs.
    let retry_rate = f64::from(s.flaky) / f64::from(s.runs.max(1));
    let window = (1.0 - DECAY.powi(n as i32)) / (1.0 - DECAY);
    evidence += RETRY_EVIDENCE * retry_rate * window;
    score_of(evidence.min(MAX_EVIDENCE))
}

/// Weight of a failure as a training label for the failure model: 1 for a test without
/// flakiness evidence, down to [`MIN_LABEL_WEIGHT`] for a test that is surely flaky.
pub fn label_weight(score: f64) -> f64 {
    let excess = ((score - PRIOR) / (1.0 - PRIOR)).clamp(0.0, 1.0);
    1.0 - (1.0 - MIN_LABEL_WEIGHT) * excess
}

/// The weight of a surely flaky test's failure as a label.
pub const MIN_LABEL_WEIGHT: f64 = 0.1;

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(seq: u64, outcome: Outcome) -> Observation {
        Observation {
            seq,
            outcome,
            commit: None,
            related_change: None,
        }
    }

    #[test]
    fn the_cap_keeps_the_promise_to_trust_again_within_20_runs() {
        assert!(MAX_EVIDENCE * DECAY.powi(TRUST_AGAIN_RUNS as i32) < -logit(PRIOR));
        assert!(MAX_EVIDENCE * DECAY.powi(TRUST_AGAIN_RUNS as i32 - 1) >= -logit(PRIOR));
        let mut s = FlakyState::default();
        for seq in 0..50 {
            s.observe(&obs(seq, Outcome::Flaky));
        }
        assert!(s.score() > 0.95, "{}", s.score());
        let mut clean = 0;
        while s.score() >= DEFAULT_THRESHOLD {
            s.observe(&obs(100 + u64::from(clean), Outcome::Passed));
            clean += 1;
        }
        // After exactly 20 runs: a flaky test is not trusted after a shorter lucky streak.
        assert_eq!(clean, TRUST_AGAIN_RUNS);
        assert_eq!(s.flake_free_runs, clean);
    }

    #[test]
    fn one_retry_flake_flags_for_19_clean_runs() {
        let mut s = FlakyState::default();
        s.observe(&obs(1, Outcome::Passed));
        assert_eq!(s.observe(&obs(2, Outcome::Flaky)), Signal::RetryFlake);
        assert!(s.score() > 0.95, "{}", s.score());
        let clean_runs = |s: &mut FlakyState, from: u64, n: u32| {
            for seq in from..from + u64::from(n) {
                s.observe(&obs(seq, Outcome::Passed));
            }
        };
        clean_runs(&mut s, 3, TRUST_AGAIN_RUNS - 1);
        assert!(s.score() >= DEFAULT_THRESHOLD, "{}", s.score());
        // A second flake while still flagged starts the count again from the cap.
        s.observe(&obs(100, Outcome::Flaky));
        assert!(s.score() > 0.95, "{}", s.score());
        clean_runs(&mut s, 101, TRUST_AGAIN_RUNS - 1);
        assert!(s.score() >= DEFAULT_THRESHOLD, "{}", s.score());
        clean_runs(&mut s, 200, 1);
        assert!(s.score() < DEFAULT_THRESHOLD, "{}", s.score());
        assert_eq!(
            (s.retry_flakes, s.first_flake_seq, s.last_flake_seq),
            (2, Some(2), Some(100))
        );
    }

    #[test]
    fn one_break_and_fix_is_not_flaky_but_repeated_flips_are() {
        let mut s = FlakyState::default();
        for (seq, o) in [Outcome::Passed, Outcome::Failed, Outcome::Passed]
            .into_iter()
            .enumerate()
        {
            s.observe(&obs(seq as u64, o));
        }
        assert_eq!(s.unknown_flips, 2);
        assert!(s.score() < DEFAULT_THRESHOLD, "{}", s.score());
        for seq in 3..20u64 {
            let o = if seq.is_multiple_of(2) {
                Outcome::Failed
            } else {
                Outcome::Passed
            };
            s.observe(&obs(seq, o));
        }
        assert!(s.score() >= DEFAULT_THRESHOLD, "{}", s.score());
        assert!(s.flip_rate > 0.3, "{}", s.flip_rate);
    }

    #[test]
    fn context_decides_what_a_flip_means() {
        let at = |commit, related_change, outcome| Observation {
            seq: 1,
            outcome,
            commit,
            related_change,
        };
        let mut s = FlakyState::default();
        s.observe(&at(Some(7), None, Outcome::Passed));
        assert_eq!(
            s.observe(&at(Some(7), Some(true), Outcome::Failed)),
            Signal::SameCommitFlip
        );
        assert!(s.score() >= DEFAULT_THRESHOLD);
        assert_eq!(
            s.observe(&at(Some(8), Some(true), Outcome::Passed)),
            Signal::RelatedFlip
        );
        assert_eq!(
            s.observe(&at(Some(9), Some(false), Outcome::Failed)),
            Signal::UnrelatedFlip
        );
        assert_eq!(
            s.observe(&at(Some(9), Some(false), Outcome::Skipped)),
            Signal::None
        );
        assert_eq!(s.runs, 4);
        assert_eq!(s.related_flips, 1);
    }

    #[test]
    fn label_weights_follow_the_score() {
        assert_eq!(label_weight(score_of(0.0)), 1.0);
        assert!(label_weight(score_of(MAX_EVIDENCE)) < 0.2);
        let mut stable = TestStats::new(1);
        let mut flaky = TestStats::new(1);
        for seq in 1..=30u64 {
            stable.observe(seq, Outcome::Passed, 1.0, None);
            let o = if seq.is_multiple_of(3) {
                Outcome::Failed
            } else {
                Outcome::Passed
            };
            flaky.observe(seq, o, 1.0, None);
        }
        assert_eq!(label_weight(score_from_stats(&stable)), 1.0);
        assert!(label_weight(score_from_stats(&flaky)) < 0.5);
        let mut retried = TestStats::new(1);
        for seq in 1..=30u64 {
            let o = if seq.is_multiple_of(5) {
                Outcome::Flaky
            } else {
                Outcome::Passed
            };
            retried.observe(seq, o, 1.0, None);
        }
        assert!(score_from_stats(&retried) >= DEFAULT_THRESHOLD);
    }
}
