//! `fedtest model`: the current model, readable.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use crate::cli::ModelArgs;
use crate::error::{Error, Result};
use crate::features;
use crate::history::Store;
use crate::model::Model;
use crate::output::Printer;
use crate::strategy::{self, Entry, InUse, Models, Scoreboard};

pub fn run(data_dir: &Path, args: &ModelArgs, printer: &Printer) -> Result<()> {
    let store = Store::open_existing(data_dir)?;
    let models = Models::load(data_dir);
    let board = match &store {
        Some(s) => Scoreboard::parse(s.backtest()?.as_deref()).map_err(|e| {
            Error::Internal(format!(
                "the backtest record in {} is unreadable: {e}",
                s.path().display()
            ))
        })?,
        None => Scoreboard::default(),
    };
    let (_, in_use) =
        strategy::for_plan(store.as_ref(), &models, false).map_err(Error::Internal)?;
    // The learned model (local when trained, else the prior): what training produced and
    // federation shares; the strategy above says whether it or a heuristic plans.
    let model = crate::model::load_or_prior(data_dir, printer);
    let mut out = printer.stdout();
    let text = if args.json {
        // The model's own fields, as before, with the strategy beside them.
        let mut view = serde_json::to_value(&model).expect("model serialises");
        view["strategy"] = serde_json::to_value(&in_use).expect("serialises");
        view["backtest"] = serde_json::to_value(&board).expect("serialises");
        serde_json::to_string_pretty(&view).expect("model serialises") + "\n"
    } else {
        render_strategy(&board, &in_use, &models) + "\n" + &render(&model)
    };
    out.write_all(text.as_bytes()).map_err(Error::Output)
}

/// Every candidate's backtest record, and which one plans.
pub fn render_strategy(board: &Scoreboard, in_use: &InUse, models: &Models) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "strategy: {}", in_use.describe());
    let _ = writeln!(
        s,
        "\n{:<14} {:>7} {:>10} {:>10} {:>7}  what it is",
        "candidate", "scored", "mean APFD", "vs history", "last"
    );
    let fmt = |v: Option<f64>, signed: bool| match v {
        Some(v) if signed => format!("{v:+.3}"),
        Some(v) => format!("{v:.3}"),
        None => "-".to_owned(),
    };
    for c in strategy::ALL {
        let e = board.entries.get(&c);
        let mark = if c == in_use.candidate { "*" } else { " " };
        let note = if models.get(c).is_none() {
            " (not available)"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "{mark}{:<13} {:>7} {:>10} {:>10} {:>7}  {}{note}",
            c.name(),
            e.map_or(0, |e| e.scored),
            fmt(e.and_then(Entry::mean_apfd), false),
            fmt(e.and_then(Entry::mean_advantage), true),
            fmt(e.map(|e| e.last), false),
            c.describe()
        );
    }
    let _ = writeln!(
        s,
        "(means discounted by {} a failing build; a candidate takes over when it leads by more \
         than {} APFD and {} standard errors over at least {} paired builds; the failure history \
         takes back over when it leads by {} standard error)",
        strategy::DECAY,
        strategy::MARGIN,
        strategy::CONFIDENCE,
        strategy::MIN_SCORED,
        strategy::FALLBACK_CONFIDENCE
    );
    s
}

/// What a model source means, in words.
pub fn source_name(source: crate::model::Source) -> &'static str {
    match source {
        crate::model::Source::Prior if crate::model::prior::from_env() => {
            "the prior FEDTEST_PRIOR names"
        }
        crate::model::Source::Prior => "the built-in prior",
        crate::model::Source::Local => "local, trained on this repository's history",
        crate::model::Source::Global => "global, from the federation server",
        crate::model::Source::Blend => "a blend of the local and global models",
        crate::model::Source::Heuristic => "a fixed heuristic (see the strategy above)",
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
