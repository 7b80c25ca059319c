//! `fedtest model`: which ordering plans (every candidate's backtest record) and the learned
//! model, readable.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use super::{Entry, InUse, Models, Scoreboard};
use crate::error::{Error, Result};
use crate::history::Store;
use crate::output::Printer;

pub fn show(data_dir: &Path, json: bool, printer: &Printer) -> Result<()> {
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
    let (_, in_use) = super::for_plan(store.as_ref(), &models, false).map_err(Error::Internal)?;
    // The learned model (local when trained, else the prior): what training produced and
    // federation shares; the strategy above says whether it or a heuristic plans.
    let model = crate::model::load_or_prior(data_dir, printer);
    let mut out = printer.stdout();
    let text = if json {
        // The model's own fields, as before, with the strategy beside them.
        let mut view = serde_json::to_value(&model).expect("model serialises");
        view["strategy"] = serde_json::to_value(&in_use).expect("serialises");
        view["backtest"] = serde_json::to_value(&board).expect("serialises");
        serde_json::to_string_pretty(&view).expect("model serialises") + "\n"
    } else {
        render(&board, &in_use, &models) + "\n" + &crate::model::describe::table(&model)
    };
    out.write_all(text.as_bytes()).map_err(Error::Output)
}

/// Every candidate's backtest record, and which one plans.
pub fn render(board: &Scoreboard, in_use: &InUse, models: &Models) -> String {
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
    for c in super::ALL {
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
        super::DECAY,
        super::MARGIN,
        super::CONFIDENCE,
        super::MIN_SCORED,
        super::FALLBACK_CONFIDENCE
    );
    s
}
