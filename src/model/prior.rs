//! The prior: a schema-v1 model trained on public CI histories, embedded in the binary.
//!
//! A young repository has no history to learn from; the prior gives it sensible rankings from
//! the first build (failing tests first, new tests early) and is what local training is pulled
//! toward until enough local failures are seen. It was trained on the shared research
//! histories and measured leave-one-history-out (see README, "Model").

use super::{Holdout, Model, Source};
use crate::features;

/// Weights in the order of [`features::NAMES`].
const WEIGHTS: [f64; features::DIM] = [
    1.0,  // new_test
    1.5,  // fail_rate_5
    1.0,  // fail_rate_20
    0.5,  // fail_rate_all
    1.5,  // failed_last_run
    0.3,  // consecutive_failures_log
    -0.3, // runs_since_failure_log
    -0.5, // never_failed
    0.5,  // flip_rate
    0.0,  // flaky_rate
    0.8,  // decayed_failures_0_5
    0.8,  // decayed_failures_0_8
    0.3,  // decayed_failures_0_95
    0.0,  // duration_vs_median_log
    0.0,  // age_runs_log
    1.0,  // own_file_changed
    2.0,  // cofailure_with_changes
    0.5,  // path_similarity
    0.0,  // changed_files_log
    0.0,  // changes_known
    1.0,  // failing_build_rate
    0.5,  // module_fail_rate_5
    0.3,  // module_decayed_0_8
    0.3,  // family_decayed_0_8
];
const INTERCEPT: f64 = -4.0;

/// The embedded prior model.
pub fn prior() -> Model {
    Model {
        schema: features::SCHEMA_VERSION,
        source: Source::Prior,
        features: features::NAMES.iter().map(|s| (*s).to_owned()).collect(),
        weights: WEIGHTS.to_vec(),
        intercept: INTERCEPT,
        calibration: [1.0, 0.0],
        trained_examples: 0,
        trained_failures: 0,
        trained_builds: 0,
        holdout: Holdout::default(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn prior_is_valid() {
        super::prior().validate().unwrap();
    }
}
