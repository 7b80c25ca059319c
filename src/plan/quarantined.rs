//! Quarantined tests in a plan: run last, or left out visibly (`[flaky] quarantined`).

use super::{Plan, PlannedTest, Reason};
use crate::config::{FlakyConfig, QuarantinedTests};
use crate::quarantine::{Date, Quarantine};

/// `[flaky] quarantined`: what a plan does with the tests the quarantine file lists (entries
/// in effect today). "last" runs them after every other selected test; "skip" leaves them out
/// of the run, listed with the reason `quarantined`, never silently. Only a broken quarantine
/// file is an error (the caller then runs everything, with a warning).
pub fn apply(plan: &mut Plan, cfg: &FlakyConfig) -> Result<(), String> {
    if cfg.quarantined == QuarantinedTests::Run {
        return Ok(());
    }
    let q = Quarantine::load_config(cfg).map_err(|e| e.to_string())?;
    let active = q.active(Date::today());
    if active.is_empty() {
        return Ok(());
    }
    let is_q = |t: &PlannedTest| active.contains_key(t.id.as_str());
    let (selected, skipped): (Vec<_>, Vec<_>) = plan.tests.drain(..).partition(|t| t.selected);
    let (quarantined, mut run): (Vec<_>, Vec<_>) = selected.into_iter().partition(is_q);
    let mut rest = skipped;
    match cfg.quarantined {
        QuarantinedTests::Run => unreachable!("returned above"),
        QuarantinedTests::Last => run.extend(quarantined),
        QuarantinedTests::Skip => {
            let mut out: Vec<_> = quarantined
                .into_iter()
                .map(|mut t| {
                    t.selected = false;
                    t.reason = Reason::Quarantined;
                    t
                })
                .collect();
            for t in rest.iter_mut().filter(|t| is_q(t)) {
                t.reason = Reason::Quarantined;
            }
            out.append(&mut rest);
            rest = out;
        }
    }
    let total_p: f64 = run.iter().chain(&rest).map(|t| t.probability).sum();
    let sel_p: f64 = run.iter().map(|t| t.probability).sum();
    plan.selected = run.len();
    plan.deselected = rest.len();
    plan.estimated_seconds_selected = run.iter().map(|t| t.estimated_seconds).sum();
    plan.expected_recall = if total_p > 0.0 { sel_p / total_p } else { 1.0 };
    plan.tests = run;
    plan.tests.extend(rest);
    Ok(())
}
