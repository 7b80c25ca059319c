//! Per-test history kept as O(1) aggregates, updated once per build.
//!
//! Raw per-build rows are pruned after a retention window; these aggregates are kept forever
//! and are all that features and planning read, so `plan` never scans the raw history.

use crate::junit::{MAX_TEST_SECONDS, Outcome};

/// Decay factors of the exponentially decayed failure scores (per run of the test).
pub const DECAYS: [f64; 3] = [0.8, 0.9, 0.95];

/// What fedtest remembers about one test.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TestStats {
    /// Builds in which the test executed (passed, failed or flaky).
    pub runs: u32,
    /// Builds in which it finally failed.
    pub fails: u32,
    /// Builds in which it failed and then passed on a retry.
    pub flaky: u32,
    /// Builds in which it was reported but skipped.
    pub skips: u32,
    /// Changes between pass and fail across consecutive runs.
    pub flips: u32,
    /// Bit i is set when the run i runs ago failed (bit 0 = the last run).
    pub window: u64,
    /// Exponentially decayed failure counts, one per entry of [`DECAYS`].
    pub decayed: [f64; 3],
    /// Sequence number of the build in which the test was first seen.
    pub first_seq: u64,
    /// Sequence number of the last build in which it executed.
    pub last_seq: u64,
    /// `runs` at the moment of its last failure (0 when it never failed).
    pub runs_at_last_fail: u32,
    /// Exponential moving average of its duration, seconds.
    pub duration: f64,
    /// Source file the report named for it, when it named one.
    pub file: Option<String>,
}

/// Weight of the newest observation in the duration average.
const DURATION_ALPHA: f64 = 0.3;

impl TestStats {
    /// A test seen for the first time in build `seq`.
    pub fn new(seq: u64) -> Self {
        TestStats {
            first_seq: seq,
            last_seq: seq,
            ..Default::default()
        }
    }

    /// Number of runs recorded in `window` (at most 64).
    pub fn window_len(&self) -> u32 {
        self.runs.min(64)
    }

    /// Failures among the last `n` runs (n ≤ 64).
    pub fn recent_fails(&self, n: u32) -> u32 {
        let n = n.min(self.window_len());
        if n == 0 {
            return 0;
        }
        let mask = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
        (self.window & mask).count_ones()
    }

    /// Consecutive failures ending with the last run.
    pub fn consecutive_fails(&self) -> u32 {
        (self.window.trailing_ones()).min(self.window_len())
    }

    /// Whether the last run failed.
    pub fn failed_last(&self) -> bool {
        self.runs > 0 && self.window & 1 == 1
    }

    /// Runs since the last failure (`None` when it never failed).
    pub fn runs_since_fail(&self) -> Option<u32> {
        (self.fails > 0).then(|| self.runs - self.runs_at_last_fail)
    }

    /// Fold one build's outcome into the aggregates.
    pub fn observe(&mut self, seq: u64, outcome: Outcome, duration: f64, file: Option<&str>) {
        if let Some(f) = file.filter(|f| self.file.as_deref() != Some(*f)) {
            self.file = Some(f.to_owned());
        }
        if outcome == Outcome::Skipped {
            self.skips += 1;
            return;
        }
        let failed = outcome == Outcome::Failed;
        if self.runs > 0 && self.failed_last() != failed {
            self.flips += 1;
        }
        self.window = (self.window << 1) | u64::from(failed);
        for (score, decay) in self.decayed.iter_mut().zip(DECAYS) {
            *score = *score * decay + f64::from(u8::from(failed));
        }
        let duration = if duration.is_finite() && duration >= 0.0 {
            duration
        } else {
            0.0
        };
        // A time at or past the bound is not believed (`time="1e308"`, issue 11): it leaves a
        // known test's average as it was, and gives a new test the bound. An average at the
        // bound (or an infinity an older fedtest stored) starts again from the next run, so
        // one bad report costs at most one build's estimate.
        let poisoned = !self.duration.is_finite() || self.duration >= MAX_TEST_SECONDS;
        self.duration = if duration >= MAX_TEST_SECONDS {
            if self.runs == 0 || poisoned {
                MAX_TEST_SECONDS
            } else {
                self.duration
            }
        } else if self.runs == 0 || poisoned {
            duration
        } else {
            DURATION_ALPHA * duration + (1.0 - DURATION_ALPHA) * self.duration
        };
        self.runs += 1;
        if failed {
            self.fails += 1;
            self.runs_at_last_fail = self.runs;
        }
        if outcome == Outcome::Flaky {
            self.flaky += 1;
        }
        self.last_seq = seq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_tracks_recent_runs() {
        let mut s = TestStats::new(1);
        for (i, o) in [
            Outcome::Passed,
            Outcome::Failed,
            Outcome::Failed,
            Outcome::Passed,
            Outcome::Failed,
        ]
        .into_iter()
        .enumerate()
        {
            s.observe(i as u64 + 1, o, 1.0, None);
        }
        assert_eq!(s.runs, 5);
        assert_eq!(s.fails, 3);
        assert_eq!(s.flips, 3);
        assert_eq!(s.recent_fails(2), 1);
        assert_eq!(s.recent_fails(5), 3);
        assert_eq!(s.consecutive_fails(), 1);
        assert!(s.failed_last());
        assert_eq!(s.runs_since_fail(), Some(0));
        s.observe(6, Outcome::Passed, 1.0, None);
        assert_eq!(s.runs_since_fail(), Some(1));
        assert_eq!(s.consecutive_fails(), 0);
    }

    #[test]
    fn skipped_runs_do_not_count_as_runs() {
        let mut s = TestStats::new(1);
        s.observe(1, Outcome::Skipped, 0.0, None);
        assert_eq!((s.runs, s.skips, s.window_len()), (0, 1, 0));
        assert!(!s.failed_last());
    }

    #[test]
    fn an_absurd_duration_is_bounded_and_forgotten_after_one_run() {
        let mut s = TestStats::new(1);
        s.observe(1, Outcome::Passed, 2.0, None);
        s.observe(2, Outcome::Passed, 1e308, None);
        assert_eq!(s.duration, 2.0, "not believed");
        // A new test seen first with an absurd time gets the bound, then its next real run.
        let mut s = TestStats::new(1);
        s.observe(1, Outcome::Passed, 1e308, None);
        assert_eq!(s.duration, MAX_TEST_SECONDS);
        s.observe(3, Outcome::Passed, 2.0, None);
        assert_eq!(s.duration, 2.0);
        // A stored infinity (an older fedtest) recovers the same way.
        s.duration = f64::INFINITY;
        s.observe(4, Outcome::Passed, 3.0, None);
        assert_eq!(s.duration, 3.0);
        s.observe(5, Outcome::Passed, f64::NAN, None);
        assert!(s.duration.is_finite());
    }

    #[test]
    fn flaky_is_a_pass_with_evidence() {
        let mut s = TestStats::new(1);
        s.observe(1, Outcome::Flaky, 2.0, Some("tests/a.py"));
        assert_eq!((s.runs, s.fails, s.flaky), (1, 0, 1));
        assert_eq!(s.file.as_deref(), Some("tests/a.py"));
    }
}
