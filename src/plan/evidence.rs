//! When a plan may start deselecting tests: the cold-start thresholds, as `fedtest.toml` sets
//! them or scaled to the project, and how far the history is from them.
//!
//! Reordering risks nothing, so every plan orders from the first build; only deselecting needs
//! evidence (issue 13: with fixed thresholds of 10 builds and 20 failures, a small project that
//! rarely fails waited months for its first deselection, and nothing said so). `"auto"`, the
//! default, scales both thresholds:
//!
//! - `min_failures` = ⌈√tests⌉, between 5 and 20: the more tests, the more failures it takes
//!   before the failures seen say which test fails next (100 tests: 10; 400 and more: 20).
//!   Once 5 builds give a failure rate, it is lowered — never below 5 — to the failures 50
//!   builds bring at that rate, so a project that rarely fails still gets there.
//! - `min_builds` = the builds that bring about three failing builds at the recent share of
//!   failing builds, between 5 and 10 (the old fixed value): one bad commit that breaks
//!   twenty tests is one piece of evidence, not twenty.
//!
//! A number in `fedtest.toml` is used as it is.

use serde::Serialize;

use crate::config::{PlanConfig, Threshold};
use crate::history::state::GlobalStats;

/// Bounds of the scaled `min_failures`.
const MIN_FAILURES: (u64, u64) = (5, 20);
/// Bounds of the scaled `min_builds`.
const MIN_BUILDS: (u64, u64) = (5, 10);
/// A project that fails rarely reaches its failure threshold within this many builds.
const HORIZON_BUILDS: f64 = 50.0;
/// Failing builds `min_builds` asks for, at the recent share of failing builds.
const FAILING_BUILDS: f64 = 3.0;

/// How far the history is from deselection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    /// Builds and failed tests recorded.
    pub builds: u64,
    pub failures: u64,
    /// What deselection waits for.
    pub min_builds: u64,
    pub min_failures: u64,
    /// Whether both thresholds are scaled to the project (`"auto"`) rather than set.
    pub scaled: bool,
    /// Roughly how many more builds, at the failure rate so far; `None` when no failure has
    /// been recorded yet (there is no rate to go by).
    pub builds_to_go: Option<u64>,
}

impl Evidence {
    /// The evidence in `global` (a history of `tests` tests) against `cfg`'s thresholds.
    pub fn of(global: &GlobalStats, tests: usize, cfg: &PlanConfig) -> Evidence {
        let min_failures = match cfg.min_failures {
            Threshold::Fixed(n) => n,
            Threshold::Auto => scaled_min_failures(tests, global.builds, global.failures),
        };
        let min_builds = match cfg.min_builds {
            Threshold::Fixed(n) => n,
            Threshold::Auto => scaled_min_builds(global),
        };
        let need_builds = min_builds.saturating_sub(global.builds);
        let need_failures = min_failures.saturating_sub(global.failures);
        let builds_to_go = if need_failures == 0 {
            Some(need_builds)
        } else if global.failures > 0 && global.builds > 0 {
            // At the rate so far: failures / builds a build.
            let more = need_failures
                .saturating_mul(global.builds)
                .div_ceil(global.failures);
            Some(need_builds.max(more))
        } else {
            None
        };
        Evidence {
            builds: global.builds,
            failures: global.failures,
            min_builds,
            min_failures,
            scaled: cfg.min_builds == Threshold::Auto && cfg.min_failures == Threshold::Auto,
            builds_to_go,
        }
    }

    /// Whether plans may deselect tests.
    pub fn enough(&self) -> bool {
        self.builds >= self.min_builds && self.failures >= self.min_failures
    }

    /// What deselection waits for, for people: "deselecting waits for 10 builds and 7 failed
    /// tests, scaled to this project; 3 builds and 2 failures so far, so about 9 more builds
    /// at this failure rate".
    pub fn waiting_for(&self) -> String {
        let failures = match self.failures {
            0 => "no failure".to_owned(),
            n => format!("{n} failure{}", plural(n)),
        };
        let when = match self.builds_to_go {
            Some(n) if n > 0 => format!(
                ", so about {n} more build{} at this failure rate",
                plural(n)
            ),
            _ => String::new(),
        };
        format!(
            "deselecting waits for {} build{} and {} failed test{}{}; {} build{} and {failures} \
             so far{when}",
            self.min_builds,
            plural(self.min_builds),
            self.min_failures,
            plural(self.min_failures),
            if self.scaled {
                ", scaled to this project"
            } else {
                ""
            },
            self.builds,
            plural(self.builds),
        )
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `min_failures = "auto"`: see the module docs.
fn scaled_min_failures(tests: usize, builds: u64, failures: u64) -> u64 {
    let (lo, hi) = MIN_FAILURES;
    let by_size = ((tests as f64).sqrt().ceil() as u64).clamp(lo, hi);
    if builds < MIN_BUILDS.0 {
        return by_size;
    }
    let reachable = (failures as f64 / builds as f64 * HORIZON_BUILDS).ceil() as u64;
    by_size.min(reachable.max(lo))
}

/// `min_builds = "auto"`: see the module docs.
fn scaled_min_builds(global: &GlobalStats) -> u64 {
    let (lo, hi) = MIN_BUILDS;
    if global.recent_builds <= 0.0 || global.recent_failing_builds <= 0.0 {
        return hi;
    }
    let share = global.recent_failing_builds / global.recent_builds;
    ((FAILING_BUILDS / share).ceil() as u64).clamp(lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(builds: u64, failures: u64, failing_share: f64) -> GlobalStats {
        GlobalStats {
            builds,
            failures,
            recent_builds: builds as f64,
            recent_failing_builds: builds as f64 * failing_share,
            ..GlobalStats::default()
        }
    }

    #[test]
    fn auto_scales_with_size_and_failure_rate() {
        let cfg = PlanConfig::default();
        // Size: a handful of tests needs few failures, a big suite the old 20.
        assert_eq!(Evidence::of(&global(0, 0, 0.0), 9, &cfg).min_failures, 5);
        assert_eq!(Evidence::of(&global(0, 0, 0.0), 100, &cfg).min_failures, 10);
        assert_eq!(
            Evidence::of(&global(0, 0, 0.0), 5000, &cfg).min_failures,
            20
        );
        // Failure rate: 2 failures in 20 builds is 5 in 50 builds, so 5 it is.
        assert_eq!(
            Evidence::of(&global(20, 2, 0.1), 5000, &cfg).min_failures,
            5
        );
        // A busy suite keeps 20.
        assert_eq!(
            Evidence::of(&global(20, 30, 0.5), 5000, &cfg).min_failures,
            20
        );
        // Builds: three failing builds at the recent failing share, between 5 and 10.
        assert_eq!(Evidence::of(&global(4, 4, 1.0), 50, &cfg).min_builds, 5);
        assert_eq!(Evidence::of(&global(4, 4, 0.5), 50, &cfg).min_builds, 6);
        assert_eq!(Evidence::of(&global(4, 1, 0.1), 50, &cfg).min_builds, 10);
        assert_eq!(Evidence::of(&global(0, 0, 0.0), 50, &cfg).min_builds, 10);
    }

    #[test]
    fn numbers_in_the_config_are_honoured() {
        let cfg = PlanConfig {
            min_builds: Threshold::Fixed(3),
            min_failures: Threshold::Fixed(40),
            ..PlanConfig::default()
        };
        let e = Evidence::of(&global(20, 2, 0.1), 5000, &cfg);
        assert_eq!((e.min_builds, e.min_failures, e.scaled), (3, 40, false));
        assert!(!e.enough());
        // 38 more failures at 0.1 a build.
        assert_eq!(e.builds_to_go, Some(380));
    }

    #[test]
    fn says_what_it_waits_for_and_roughly_when() {
        let cfg = PlanConfig::default();
        let e = Evidence::of(&global(3, 2, 0.67), 49, &cfg);
        assert_eq!((e.min_builds, e.min_failures), (5, 7));
        assert_eq!(e.builds_to_go, Some(8));
        assert_eq!(
            e.waiting_for(),
            "deselecting waits for 5 builds and 7 failed tests, scaled to this project; 3 builds \
             and 2 failures so far, so about 8 more builds at this failure rate"
        );
        let none = Evidence::of(&global(2, 0, 0.0), 49, &cfg);
        assert_eq!(none.builds_to_go, None);
        assert!(
            none.waiting_for()
                .ends_with("; 2 builds and no failure so far"),
            "{}",
            none.waiting_for()
        );
        assert!(Evidence::of(&global(12, 30, 0.5), 49, &cfg).enough());
    }
}
