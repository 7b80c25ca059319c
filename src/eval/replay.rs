//! Replay builds in time order — plan each with only the past, then learn
//! its outcome — and score the orders. The same code path as `record` and `plan`, in memory.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::curve::{self, Curve, Ordering, Plans, Positions};
use crate::config::PlanConfig;
use crate::history::state::{BuildInput, Example, State};
use crate::history::store::Retention;
use crate::junit::{Outcome, TestCase};
use crate::model::Model;
use crate::model::train::{self, TrainOptions};
use crate::plan::{self, Budget, Knowledge, Request};
use crate::strategy::{self, Candidate, InUse, Models, Scoreboard};

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

/// Running sums behind [`Scores`].
#[derive(Clone, Copy, Debug, Default)]
struct Sums {
    values: [f64; 6],
    scored: usize,
}

impl Sums {
    fn add(&mut self, v: [f64; 6]) {
        for (s, x) in self.values.iter_mut().zip(v) {
            *s += x;
        }
        self.scored += 1;
    }

    fn scores(&self, builds: usize) -> Scores {
        let mean = |v: f64| {
            if self.scored > 0 {
                v / self.scored as f64
            } else {
                0.0
            }
        };
        Scores {
            builds,
            failing_builds_scored: self.scored,
            apfd: mean(self.values[0]),
            recall_time_10: mean(self.values[1]),
            recall_time_20: mean(self.values[2]),
            recall_time_33: mean(self.values[3]),
            builds_caught_10: mean(self.values[4]),
            builds_caught_33: mean(self.values[5]),
        }
    }
}

/// A replay's result: what fedtest's plans scored (the strategy the backtest chose, build by
/// build), and what each candidate would have scored had it planned every build.
#[derive(Debug, Default, Serialize, Clone)]
pub struct Replay {
    /// fedtest's own scores (at the top level of `eval --json`, as before candidates existed).
    #[serde(flatten)]
    pub fedtest: Scores,
    pub candidates: Vec<CandidateScores>,
    /// The strategy in use after the last build.
    pub strategy: Option<Candidate>,
    /// Builds at which the strategy in use changed.
    pub switches: usize,
    /// What running each share of the test time would have caught (issue 17).
    pub curve: Curve,
}

#[derive(Debug, Serialize, Clone)]
pub struct CandidateScores {
    pub candidate: Candidate,
    #[serde(flatten)]
    pub scores: Scores,
}

/// One build for the replay.
pub struct ReplayBuild<'a> {
    pub results: &'a [TestCase],
    pub changed_files: Option<&'a [String]>,
}

/// Metrics of one order: APFD, recall at 10/20/33 % of the time, caught within 10/33 %.
fn metrics(order: &[String], failing: &HashSet<&str>, dur: &HashMap<&str, f64>) -> [f64; 6] {
    let r10 = recall_at_time(order, failing, dur, 0.10).unwrap_or(0.0);
    let r33 = recall_at_time(order, failing, dur, 0.33).unwrap_or(0.0);
    [
        apfd(order, failing).unwrap_or(0.0),
        r10,
        recall_at_time(order, failing, dur, 0.20).unwrap_or(0.0),
        r33,
        f64::from(u8::from(r10 > 0.0)),
        f64::from(u8::from(r33 > 0.0)),
    ]
}

/// Replay `builds` from an empty history; the first `warmup` builds are learned, not scored.
/// `anchor` is what local training is pulled toward (the prior, or the global model), and
/// `global` the federation's model when there is one. Each build is planned by every candidate
/// with only the builds before it, then learned; the backtest's choice is what fedtest scores.
pub fn replay(
    builds: &[ReplayBuild<'_>],
    anchor: &Model,
    global: Option<&Model>,
    plan_cfg: &PlanConfig,
    warmup: usize,
) -> Replay {
    let train_opts = TrainOptions::for_plan(plan_cfg);
    let mut state = State::default();
    let mut examples: Vec<Example> = Vec::new();
    let mut models = Models {
        local: None,
        global: global.cloned(),
        prior: crate::model::prior::prior(),
        problems: Vec::new(),
    };
    let mut board = Scoreboard::default();
    let mut fedtest = Sums::default();
    let mut per: Vec<(Candidate, Sums)> = Vec::new();
    let mut switches = 0;
    let mut last_choice = None;
    // The plain orderings' curves; fedtest's is its real plans at every budget.
    let mut positions: Vec<(Ordering, Positions)> = [Ordering::History, Ordering::Original]
        .iter()
        .map(|&o| (o, Positions::default()))
        .collect();
    let mut plans = Plans::default();
    let budgets: Vec<Budget> = (0..curve::BUDGET_STEPS).map(curve::budget).collect();
    let (mut curve_seconds, mut curve_builds) = (0.0, 0usize);
    for (i, b) in builds.iter().enumerate() {
        let seq = i as u64 + 1;
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
        let dur: HashMap<&str, f64> = executed
            .iter()
            .map(|t| (t.id.as_str(), t.duration))
            .collect();
        let seconds = |t: &str| dur.get(t).copied().unwrap_or(0.0);
        let known = b.changed_files.is_some();
        let choice = board.choose(&models, known);
        // Every plan of this build (the curve's budgets, each candidate's order) asks the same.
        let ids: Vec<String> = if i >= warmup {
            executed.iter().map(|t| t.id.clone()).collect()
        } else {
            Vec::new()
        };
        let req = Request {
            candidates: &ids,
            changed_files: b.changed_files,
            // A stored history has no sources: symbol features stay unknown, as when it was
            // recorded without a checkout.
            symbols: None,
            branch: None,
            build_key: "",
            budget: Budget::All,
            explain: false,
        };
        if i >= warmup && !executed.is_empty() {
            plan_at_every_budget(
                &mut plans,
                &Knowledge {
                    state: &state,
                    model: &models
                        .get(choice)
                        .expect("the chosen candidate is available"),
                    strategy: &in_use(choice, &board),
                },
                &req,
                plan_cfg,
                &budgets,
                &failing,
                &dur,
            );
            curve_builds += 1;
            curve_seconds += executed.iter().map(|t| t.duration.max(0.0)).sum::<f64>();
            if failing.is_empty() {
                positions.iter_mut().for_each(|(_, p)| p.push_passing());
            } else if executed.len() == 1 {
                // One test: it runs at any budget (the first test always does).
                let id = [executed[0].id.as_str()];
                for (_, p) in &mut positions {
                    p.push(&id, |_| true, seconds);
                }
            } else {
                let given: Vec<&str> = executed.iter().map(|t| t.id.as_str()).collect();
                position(&mut positions, Ordering::Original).push(
                    &given,
                    |t| failing.contains(t),
                    seconds,
                );
            }
        }
        if i >= warmup && !failing.is_empty() && executed.len() > 1 {
            if last_choice.is_some_and(|c| c != choice) {
                switches += 1;
            }
            last_choice = Some(choice);
            for c in strategy::ALL {
                let Some(model) = models.get(c) else { continue };
                let p = plan::plan(
                    &Knowledge {
                        state: &state,
                        model: &model,
                        strategy: &in_use(c, &board),
                    },
                    &req,
                    plan_cfg,
                )
                .expect("the built-in plan settings are valid");
                let order: Vec<String> = p.tests.into_iter().map(|t| t.id).collect();
                let m = metrics(&order, &failing, &dur);
                let ordered: Vec<&str> = order.iter().map(String::as_str).collect();
                let mut keep = |o| {
                    position(&mut positions, o).push(&ordered, |t| failing.contains(t), seconds);
                };
                if c == choice {
                    fedtest.add(m);
                }
                if c == Candidate::History {
                    keep(Ordering::History);
                }
                match per.iter_mut().find(|(k, _)| *k == c) {
                    Some((_, s)) => s.add(m),
                    None => {
                        let mut s = Sums::default();
                        s.add(m);
                        per.push((c, s));
                    }
                }
            }
        }
        // The backtest, exactly as `record` runs it: from the state before the build (the
        // board has not moved since `choice`).
        if let Some(j) = strategy::judge(&state, b.results, b.changed_files, None, &models, choice)
        {
            board.curve.push(j.failing_at);
            board.observe(seq, &j.scores, known);
        }
        let (new_examples, _) = crate::features::observe(
            &mut state,
            &BuildInput {
                seq,
                results: b.results,
                changed_files: b.changed_files,
                symbols: None,
            },
        );
        examples.extend(new_examples);
        // The same bound on training examples as the store keeps.
        let oldest = seq.saturating_sub(Retention::default().example_builds);
        examples.retain(|e| e.seq > oldest);
        if let Some(m) = train::train(&examples, anchor, models.local.as_ref(), &train_opts) {
            models.local = Some(m);
        }
    }
    per.sort_by_key(|(c, _)| *c);
    Replay {
        fedtest: fedtest.scores(builds.len()),
        candidates: per
            .into_iter()
            .map(|(candidate, s)| CandidateScores {
                candidate,
                scores: s.scores(builds.len()),
            })
            .collect(),
        strategy: board.leader,
        switches,
        curve: Curve::new(
            positions,
            &plans,
            if curve_builds > 0 {
                curve_seconds / curve_builds as f64
            } else {
                0.0
            },
            None,
        ),
    }
}

/// The ordering `c` as the plan would use it now: the backtest's curve is what a recall
/// budget reads.
fn in_use(c: Candidate, board: &Scoreboard) -> InUse {
    InUse {
        candidate: c,
        since_build: None,
        builds_scored: board.builds,
        calibrated: true,
        curve: board.curve.clone(),
    }
}

/// Plan one build at every budget of the curve, as `fedtest plan --budget N%` would have, and
/// add what each plan ran and caught. Shares of time are of the measured durations (a build
/// that measured none: of the test count), as `bench/replay.py --budget` counts them.
#[allow(clippy::too_many_arguments)]
fn plan_at_every_budget(
    plans: &mut Plans,
    k: &Knowledge<'_>,
    req: &Request<'_>,
    cfg: &PlanConfig,
    budgets: &[Budget],
    failing: &HashSet<&str>,
    dur: &HashMap<&str, f64>,
) {
    let sel = plan::selections(k, req, cfg, budgets).expect("the plan settings are valid");
    let seconds: Vec<f64> = (sel.ids.iter())
        .map(|t| dur.get(t.as_str()).copied().unwrap_or(0.0).max(0.0))
        .collect();
    let total: f64 = seconds.iter().sum();
    let time_share: Vec<f64> = (sel.selected.iter())
        .map(|run| {
            if total > 0.0 {
                run.iter()
                    .zip(&seconds)
                    .filter(|(r, _)| **r)
                    .map(|(_, s)| s)
                    .sum::<f64>()
                    / total
            } else {
                run.iter().filter(|r| **r).count() as f64 / run.len().max(1) as f64
            }
        })
        .collect();
    let failing_share: Option<Vec<f64>> = (!failing.is_empty()).then(|| {
        (sel.selected.iter())
            .map(|run| {
                let caught = (run.iter().zip(&sel.ids))
                    .filter(|(r, t)| **r && failing.contains(t.as_str()))
                    .count();
                caught as f64 / failing.len() as f64
            })
            .collect()
    });
    plans.push(&time_share, failing_share.as_deref());
}

fn position(positions: &mut [(Ordering, Positions)], o: Ordering) -> &mut Positions {
    &mut positions
        .iter_mut()
        .find(|(k, _)| *k == o)
        .expect("every ordering has positions")
        .1
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
