//! Offline evaluation: replay builds in time order — plan each with only the past, then learn
//! its outcome — and score the orders. The same code path as `record` and `plan`, in memory.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::config::PlanConfig;
use crate::history::state::{self, BuildInput, Example, State};
use crate::history::store::Retention;
use crate::junit::{Outcome, TestCase};
use crate::model::Model;
use crate::model::train::{self, TrainOptions};
use crate::plan::{self, Budget, Knowledge, Request};

/// APFD of an order against the failing tests (Rothermel et al.); `None` without failures.
pub fn apfd(order: &[String], failing: &HashSet<&str>) -> Option<f64> {
    let (n, m) = (order.len() as f64, failing.len() as f64);
    if order.is_empty() || failing.is_empty() {
        return None;
    }
    let sum: f64 = order
        .iter()
        .enumerate()
        .filter(|(_, t)| failing.contains(t.as_str()))
        .map(|(i, _)| (i + 1) as f64)
        .sum();
    Some(1.0 - sum / (n * m) + 1.0 / (2.0 * n))
}

/// Share of the failing tests that run within the first `share` of the order's total time.
pub fn recall_at_time(
    order: &[String],
    failing: &HashSet<&str>,
    duration: &HashMap<&str, f64>,
    share: f64,
) -> Option<f64> {
    if failing.is_empty() {
        return None;
    }
    let cost = |t: &str| duration.get(t).copied().unwrap_or(0.0).max(1e-3);
    let total: f64 = order.iter().map(|t| cost(t)).sum();
    let (mut acc, mut caught, mut chosen) = (0.0, 0usize, 0usize);
    for t in order {
        let c = cost(t);
        if acc + c > total * share && chosen > 0 {
            break;
        }
        acc += c;
        chosen += 1;
        caught += usize::from(failing.contains(t.as_str()));
    }
    Some(caught as f64 / failing.len() as f64)
}

/// Mean scores over the failing builds of a replay.
#[derive(Debug, Default, Serialize, Clone)]
pub struct Scores {
    pub builds: usize,
    pub failing_builds_scored: usize,
    pub apfd: f64,
    /// Recall at 10 / 20 / 33 % of the test time.
    pub recall_time_10: f64,
    pub recall_time_20: f64,
    pub recall_time_33: f64,
    /// Share of failing builds with at least one failure inside 10 / 33 % of the test time.
    pub builds_caught_10: f64,
    pub builds_caught_33: f64,
}

/// One build for the replay.
pub struct ReplayBuild<'a> {
    pub results: &'a [TestCase],
    pub changed_files: Option<&'a [String]>,
}

/// Replay `builds` from an empty history; the first `warmup` builds are learned, not scored.
pub fn replay(
    builds: &[ReplayBuild<'_>],
    anchor: &Model,
    plan_cfg: &PlanConfig,
    warmup: usize,
) -> Scores {
    let train_opts = TrainOptions::for_plan(plan_cfg);
    let mut state = State::default();
    let mut examples: Vec<Example> = Vec::new();
    let mut model = anchor.clone();
    let mut sums = [0.0f64; 6];
    let mut scored = 0usize;
    for (i, b) in builds.iter().enumerate() {
        let executed: Vec<&TestCase> = b
            .results
            .iter()
            .filter(|t| t.outcome != Outcome::Skipped)
            .collect();
        let failing: HashSet<&str> = executed
            .iter()
            .filter(|t| t.outcome == Outcome::Failed)
            .map(|t| t.id.as_str())
            .collect();
        if i >= warmup && !failing.is_empty() && executed.len() > 1 {
            let ids: Vec<String> = executed.iter().map(|t| t.id.clone()).collect();
            let p = plan::plan(
                &Knowledge {
                    state: &state,
                    model: &model,
                },
                &Request {
                    candidates: &ids,
                    changed_files: b.changed_files,
                    branch: None,
                    build_key: "",
                    budget: Budget::All,
                    explain: false,
                },
                plan_cfg,
            )
            .expect("the built-in plan settings are valid");
            let order: Vec<String> = p.tests.into_iter().map(|t| t.id).collect();
            let dur: HashMap<&str, f64> = executed
                .iter()
                .map(|t| (t.id.as_str(), t.duration))
                .collect();
            let r10 = recall_at_time(&order, &failing, &dur, 0.10).unwrap_or(0.0);
            let r33 = recall_at_time(&order, &failing, &dur, 0.33).unwrap_or(0.0);
            let vals = [
                apfd(&order, &failing).unwrap_or(0.0),
                r10,
                recall_at_time(&order, &failing, &dur, 0.20).unwrap_or(0.0),
                r33,
                f64::from(u8::from(r10 > 0.0)),
                f64::from(u8::from(r33 > 0.0)),
            ];
            for (s, v) in sums.iter_mut().zip(vals) {
                *s += v;
            }
            scored += 1;
        }
        let (new_examples, _) = state::observe(
            &mut state,
            &BuildInput {
                seq: i as u64 + 1,
                results: b.results,
                changed_files: b.changed_files,
            },
        );
        examples.extend(new_examples);
        // The same bound on training examples as the store keeps.
        let oldest = (i as u64 + 1).saturating_sub(Retention::default().example_builds);
        examples.retain(|e| e.seq > oldest);
        if let Some(m) = train::train(&examples, anchor, Some(&model), &train_opts) {
            model = m;
        }
    }
    let mean = |v: f64| if scored > 0 { v / scored as f64 } else { 0.0 };
    Scores {
        builds: builds.len(),
        failing_builds_scored: scored,
        apfd: mean(sums[0]),
        recall_time_10: mean(sums[1]),
        recall_time_20: mean(sums[2]),
        recall_time_33: mean(sums[3]),
        builds_caught_10: mean(sums[4]),
        builds_caught_33: mean(sums[5]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn apfd_matches_the_textbook_values() {
        let failing: HashSet<&str> = ["a"].into_iter().collect();
        // First of 4: 1 − 1/4 + 1/8
        assert_eq!(apfd(&ids(&["a", "b", "c", "d"]), &failing), Some(0.875));
        assert_eq!(apfd(&ids(&["b", "c", "d", "a"]), &failing), Some(0.125));
    }

    #[test]
    fn recall_at_time_counts_by_duration() {
        let failing: HashSet<&str> = ["slow"].into_iter().collect();
        let dur: HashMap<&str, f64> = [("fast", 1.0), ("slow", 9.0)].into_iter().collect();
        assert_eq!(
            recall_at_time(&ids(&["fast", "slow"]), &failing, &dur, 0.5),
            Some(0.0)
        );
        assert_eq!(
            recall_at_time(&ids(&["slow", "fast"]), &failing, &dur, 0.5),
            Some(1.0)
        );
    }
}
