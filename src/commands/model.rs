//! `fedtest model`: the current model, readable.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use crate::cli::ModelArgs;
use crate::error::{Error, Result};
use crate::features;
use crate::model::Model;
use crate::output::Printer;

pub fn run(data_dir: &Path, args: &ModelArgs, printer: &Printer) -> Result<()> {
    let model = super::load_model(data_dir, printer);
    let mut out = printer.stdout();
    let text = if args.json {
        serde_json::to_string_pretty(&model).expect("model serialises") + "\n"
    } else {
        render(&model)
    };
    out.write_all(text.as_bytes()).map_err(Error::Output)
}

/// What a model source means, in words.
pub fn source_name(source: crate::model::Source) -> &'static str {
    match source {
        crate::model::Source::Prior if crate::model::prior::from_env() => {
            "the prior FEDTEST_PRIOR names (no usable local model yet)"
        }
        crate::model::Source::Prior => "built-in prior (no usable local model yet)",
        crate::model::Source::Local => "local, trained on this repository's history",
        crate::model::Source::Global => "global, from the federation server",
        crate::model::Source::Blend => "a blend of the local and global models",
    }
}

/// The model as a table: weights per named feature, training size and holdout metrics.
pub fn render(m: &Model) -> String {
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
