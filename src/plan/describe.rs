//! What a command says about a plan: the one-line summary, the `--explain` table and the
//! candidate list's notes.

use std::fmt::Write as _;

use super::Plan;
use crate::output::Printer;

/// What became of the candidate list: left-out lines, ids read in a runner's syntax, and a
/// list that shares nothing with the history.
pub fn candidate_notes(plan: &Plan, printer: &Printer) {
    for note in plan.candidates.iter().flat_map(|c| c.notes()) {
        if note.warning {
            printer.warn(&note.text);
        } else {
            printer.info(&note.text);
        }
    }
}

/// One line on what the plan runs; `run` prints the same.
pub fn summary(plan: &Plan) -> String {
    let total = plan.tests.len();
    let minutes = |s: f64| {
        if s >= 90.0 {
            format!("{:.1} min", s / 60.0)
        } else if s >= 1.0 || s == 0.0 {
            format!("{s:.1} s")
        } else {
            format!("{:.0} ms", s * 1000.0)
        }
    };
    match &plan.full_run {
        Some(why) if plan.warnings.is_empty() => {
            format!("running all {total} tests, likeliest failures first ({why})")
        }
        Some(why) => format!("running all {total} tests in the given order ({why})"),
        None if plan.deselected == 0 => format!(
            "running all {total} tests, likeliest failures first ({} estimated test time; the \
             budget holds them all)",
            minutes(plan.estimated_seconds_total)
        ),
        None => format!(
            "running {} of {total} tests ({} of {} estimated test time; expected to catch {:.0}% \
             of failures); {} deselected by fedtest: they do not run, so a failure in them \
             stays unseen until they next run",
            plan.selected,
            minutes(plan.estimated_seconds_selected),
            minutes(plan.estimated_seconds_total),
            plan.expected_recall * 100.0,
            plan.deselected
        ),
    }
}

/// A table of every candidate: rank, probability, decision, reason and top features.
pub fn explain(plan: &Plan) -> String {
    let mut s = String::new();
    if let Some(strategy) = &plan.strategy {
        let _ = writeln!(s, "ordering by {}", strategy.describe());
    }
    if let Some(e) = plan.evidence.as_ref().filter(|e| !e.enough()) {
        let _ = writeln!(s, "no test is deselected yet: {}", e.waiting_for());
    }
    if let Some(c) = &plan.changes {
        let _ = writeln!(s, "{}", c.summary);
        for n in &c.notes {
            let _ = writeln!(s, "  {n}");
        }
    }
    let _ = writeln!(
        s,
        "{:>5}  {:>6}  {:<4}  {:<32}  test  [top features: contribution]",
        "rank", "p(fail)", "run", "reason"
    );
    for (i, t) in plan.tests.iter().enumerate() {
        let feats: Vec<String> = t
            .top_features
            .iter()
            .map(|c| format!("{}={:.2}: {:+.2}", c.feature, c.value, c.contribution))
            .collect();
        let _ = writeln!(
            s,
            "{:>5}  {:>6.3}  {:<4}  {:<32}  {}  [{}]",
            i + 1,
            t.probability,
            if t.selected { "yes" } else { "no" },
            t.reason.describe(),
            crate::text::line(&t.id),
            feats.join(", ")
        );
        if let Some(chain) = &t.change_chain {
            let _ = writeln!(s, "{:>5}  {}", "", crate::text::line(chain));
        }
    }
    s
}
