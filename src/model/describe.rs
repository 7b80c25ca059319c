//! The model in words: what its source means, and its weights per named feature with the
//! training size and holdout metrics (`fedtest model`).

use std::fmt::Write as _;

use super::{Model, Source};
use crate::features;

/// What a model source means, in words.
pub fn source_name(source: Source) -> &'static str {
    match source {
        Source::Prior if super::prior::from_env() => "the prior FEDTEST_PRIOR names",
        Source::Prior => "the built-in prior",
        Source::Local => "local, trained on this repository's history",
        Source::Global => "global, from the federation server",
        Source::Blend => "a blend of the local and global models",
        Source::Heuristic => "a fixed heuristic (see the strategy above)",
    }
}

/// The model as a table: weights per named feature, training size and holdout metrics.
pub fn table(m: &Model) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "model: {}, feature schema v{}",
        source_name(m.source),
        m.schema
    );
    let _ = writeln!(
        s,
        "trained on {} examples ({} failures) from {} builds",
        m.trained_examples, m.trained_failures, m.trained_builds
    );
    let h = &m.holdout;
    let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
    let _ = writeln!(
        s,
        "holdout (newest {} builds, {} examples, {} failures): AUC {}, log-loss {} (base rate {})",
        h.builds,
        h.examples,
        h.failures,
        fmt(h.auc),
        fmt(h.log_loss),
        fmt(h.base_log_loss)
    );
    let _ = writeln!(
        s,
        "calibration: p = sigmoid({:.3} * score {:+.3})",
        m.calibration[0], m.calibration[1]
    );
    let _ = writeln!(s, "\n{:<28} {:>9}", "feature", "weight");
    for (name, w) in features::NAMES.iter().zip(&m.weights) {
        let _ = writeln!(s, "{name:<28} {w:>+9.3}");
    }
    let _ = writeln!(s, "{:<28} {:>+9.3}", "(intercept)", m.intercept);
    s
}
