//! Training a local model from the stored examples: per-build balanced weights, an L2 pull
//! toward the prior (or global) model — strong on history features, weak on change features —
//! a time-ordered holdout, and Platt calibration on that holdout.

use std::collections::BTreeSet;

use super::logistic::{self, Dataset, FitOptions};
use super::{Holdout, Model, Source};
use crate::features;
use crate::history::state::Example;

/// Knobs of local training.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// L2 strength toward the anchor on history features. Each failing build carries
    /// weight 2, so 300 means "move only when about 150 failing builds agree". History
    /// signals mean much the same everywhere; a strong pull keeps small histories stable.
    pub l2_history: f64,
    /// L2 strength on change features: what a change breaks is repository-specific, so
    /// these weights are mostly learned locally.
    pub l2_change: f64,
    pub l2_intercept: f64,
    /// Fewer failures than this in the training window and the anchor model is kept as it
    /// is. Set from `[plan] min_failures` when it is a number (see [`TrainOptions::for_plan`]).
    pub min_failures: u64,
    /// Share of the newest builds held out for calibration and metrics.
    pub holdout_share: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            l2_history: 300.0,
            l2_change: 1.0,
            l2_intercept: 0.01,
            min_failures: 20,
            holdout_share: 0.2,
        }
    }
}

impl TrainOptions {
    /// The options every command trains with: the defaults, with `[plan] min_failures` when
    /// it is a number. With `"auto"` the plan's cold start scales to the project
    /// (`plan::evidence`) but training keeps its default: a local model only plans
    /// once the backtest shows it ordering better than the heuristics, so there is nothing
    /// to gain from fitting it on fewer failures — and nothing in the replayed benchmarks
    /// moves.
    pub fn for_plan(plan: &crate::config::PlanConfig) -> Self {
        let defaults = TrainOptions::default();
        TrainOptions {
            min_failures: match plan.min_failures {
                crate::config::Threshold::Fixed(n) => n,
                crate::config::Threshold::Auto => defaults.min_failures,
            },
            ..defaults
        }
    }

    fn fit_options(&self, anchor: &Model) -> FitOptions {
        let d = features::DIM;
        let mut l2: Vec<f64> = (0..d)
            .map(|j| {
                if j < features::FIRST_CHANGE_FEATURE {
                    self.l2_history
                } else {
                    self.l2_change
                }
            })
            .collect();
        l2.push(self.l2_intercept);
        let mut centre = anchor.weights.clone();
        centre.push(anchor.intercept);
        FitOptions {
            l2,
            anchor: centre,
            max_iter: 25,
            tol: 1e-7,
        }
    }
}

/// Fit a local model; `None` when the examples cannot support one (too few failures) and the
/// anchor should be used as it is.
///
/// `start` (the previous local model, when there is one) only warm-starts the optimiser —
/// the optimum is the same, it is found in fewer Newton steps.
pub fn train(
    examples: &[Example],
    anchor: &Model,
    start: Option<&Model>,
    opts: &TrainOptions,
) -> Option<Model> {
    let failures = examples
        .iter()
        .filter(|e| e.failed && e.weight > 0.0)
        .count() as u64;
    if failures < opts.min_failures {
        return None;
    }
    let fit_opts = opts.fit_options(anchor);
    let start = start
        .filter(|m| m.weights.len() == anchor.weights.len())
        .unwrap_or(anchor);
    let seqs: BTreeSet<u64> = examples.iter().map(|e| e.seq).collect();
    let holdout_builds =
        ((seqs.len() as f64 * opts.holdout_share).ceil() as usize).min(seqs.len() - 1);
    let cut = seqs
        .iter()
        .rev()
        .nth(holdout_builds.saturating_sub(1))
        .copied()
        .filter(|_| holdout_builds > 0);
    let (older, newest): (Vec<&Example>, Vec<&Example>) = match cut {
        Some(cut) => examples.iter().partition(|e| e.seq < cut),
        None => (examples.iter().collect(), Vec::new()),
    };
    let newest_failures = newest.iter().filter(|e| e.failed).count() as u64;
    let older_failures = older.iter().filter(|e| e.failed && e.weight > 0.0).count() as u64;
    let mut holdout = Holdout {
        builds: holdout_builds as u64,
        examples: newest.len() as u64,
        failures: newest_failures,
        ..Default::default()
    };

    // Fit on the older builds and judge on the newest ones, the way the model will be used.
    let mut calibration = None;
    if newest_failures >= 5
        && older_failures >= opts.min_failures / 2
        && newest.len() > newest_failures as usize
    {
        let fit = fit_rows(&older, &fit_opts, start);
        let (scores, y, w) = scored(&newest, &fit);
        if let Some(cal) = platt(&scores, &y, &w) {
            let p: Vec<f64> = scores
                .iter()
                .map(|s| logistic::sigmoid(cal[0] * s + cal[1]))
                .collect();
            holdout.auc = auc(&scores, &y, &w);
            holdout.log_loss = Some(logistic::log_loss(&p, &y, &w));
            let base = w
                .iter()
                .zip(&y)
                .filter(|(_, y)| **y)
                .map(|(w, _)| w)
                .sum::<f64>()
                / w.iter().sum::<f64>();
            holdout.base_log_loss = Some(logistic::log_loss(&vec![base; y.len()], &y, &w));
            calibration = Some(cal);
        }
    }

    let all: Vec<&Example> = examples.iter().collect();
    let fit = fit_rows(&all, &fit_opts, start);
    if !fit.weights.iter().all(|w| w.is_finite()) || !fit.intercept.is_finite() {
        return None;
    }
    // Without a usable holdout, calibrate on everything (two parameters; little to overfit).
    let calibration = calibration.unwrap_or_else(|| {
        let (scores, y, w) = scored(&all, &fit);
        platt(&scores, &y, &w).unwrap_or([1.0, 0.0])
    });
    Some(Model {
        schema: features::SCHEMA_VERSION,
        source: Source::Local,
        features: features::NAMES.iter().map(|s| (*s).to_owned()).collect(),
        weights: fit.weights,
        intercept: fit.intercept,
        calibration,
        trained_examples: examples.len() as u64,
        trained_failures: failures,
        trained_builds: seqs.len() as u64,
        holdout,
    })
}

fn fit_rows(rows: &[&Example], fit_opts: &FitOptions, start: &Model) -> logistic::Fit {
    // Builds without a failure have no training weight; leave them out of the fit entirely.
    let rows: Vec<&&Example> = rows.iter().filter(|e| e.weight > 0.0).collect();
    let x: Vec<Vec<f64>> = rows.iter().map(|e| e.features.clone()).collect();
    let y: Vec<bool> = rows.iter().map(|e| e.failed).collect();
    let w: Vec<f64> = rows.iter().map(|e| e.weight).collect();
    logistic::fit(
        &Dataset {
            x: &x,
            y: &y,
            w: &w,
        },
        fit_opts,
        Some((&start.weights, start.intercept)),
    )
}

/// Raw scores, labels and natural (sampling-undoing) weights of the rows.
fn scored(rows: &[&Example], fit: &logistic::Fit) -> (Vec<f64>, Vec<bool>, Vec<f64>) {
    let scores = rows
        .iter()
        .map(|e| logistic::dot(&fit.weights, &e.features) + fit.intercept)
        .collect();
    (
        scores,
        rows.iter().map(|e| e.failed).collect(),
        rows.iter().map(|e| e.natural).collect(),
    )
}

/// Platt scaling: fit `σ(a·s + c)` to the labels. `None` when the fit is degenerate.
pub fn platt(scores: &[f64], y: &[bool], w: &[f64]) -> Option<[f64; 2]> {
    if !y.iter().any(|&v| v) || y.iter().all(|&v| v) {
        return None;
    }
    // Rows with the same score and label are one row with their weights summed: the same
    // objective, and a fraction of the rows — a ranking score takes few distinct values over
    // a history's examples (every test that never failed scores alike), and this runs after
    // every build on all of them.
    let mut rows: Vec<(f64, bool, f64)> = (scores.iter().zip(y).zip(w))
        .map(|((&s, &y), &w)| (s, y, w))
        .collect();
    rows.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut x, mut ys, mut ws): (Vec<Vec<f64>>, Vec<bool>, Vec<f64>) = Default::default();
    for (s, label, weight) in rows {
        if x.last().is_some_and(|l: &Vec<f64>| l[0] == s) && ys.last() == Some(&label) {
            *ws.last_mut().expect("a row was pushed") += weight;
        } else {
            x.push(vec![s]);
            ys.push(label);
            ws.push(weight);
        }
    }
    let fit = logistic::fit(
        &Dataset {
            x: &x,
            y: &ys,
            w: &ws,
        },
        &FitOptions::uniform(1, 1e-6),
        Some((&[1.0], 0.0)),
    );
    let a = fit.weights[0];
    // A non-positive slope would invert the ranking: the data are too few to trust.
    (a.is_finite() && a > 0.0 && fit.intercept.is_finite()).then_some([a, fit.intercept])
}

/// Weighted area under the ROC curve; `None` with one class only.
pub fn auc(scores: &[f64], y: &[bool], w: &[f64]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut pos, mut neg, mut area) = (0.0, 0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        // Ties share their credit.
        let mut j = i;
        let (mut tp, mut tn) = (0.0, 0.0);
        while j < idx.len() && scores[idx[j]] == scores[idx[i]] {
            if y[idx[j]] {
                tp += w[idx[j]]
            } else {
                tn += w[idx[j]]
            }
            j += 1;
        }
        area += tp * (neg + tn / 2.0);
        pos += tp;
        neg += tn;
        i = j;
    }
    (pos > 0.0 && neg > 0.0).then(|| area / (pos * neg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::prior::prior;

    #[test]
    fn platt_on_repeated_rows_equals_platt_on_their_summed_weights() {
        // Three distinct scores, each repeated with both labels in different proportions.
        let mut scores = Vec::new();
        let mut y = Vec::new();
        for (s, fails, passes) in [(-2.0, 1, 9), (0.5, 3, 5), (3.0, 6, 1)] {
            for i in 0..fails + passes {
                scores.push(s);
                y.push(i < fails);
            }
        }
        let w = vec![1.0; scores.len()];
        let compact_scores = [-2.0, -2.0, 0.5, 0.5, 3.0, 3.0];
        let compact_y = [true, false, true, false, true, false];
        let compact_w = [1.0, 9.0, 3.0, 5.0, 6.0, 1.0];
        let a = platt(&scores, &y, &w).unwrap();
        let b = platt(&compact_scores, &compact_y, &compact_w).unwrap();
        assert!(
            (a[0] - b[0]).abs() < 1e-9 && (a[1] - b[1]).abs() < 1e-9,
            "{a:?} {b:?}"
        );
        // And the fit is the weighted logistic optimum: the slope orders as the scores do.
        assert!(a[0] > 0.0);
    }

    #[test]
    fn a_number_for_min_failures_drives_training() {
        // `[plan] min_failures = "auto"` (the default) trains at the default threshold.
        let plan = crate::config::PlanConfig::default();
        assert_eq!(TrainOptions::for_plan(&plan).min_failures, 20);
        let c = crate::config::Config::parse("[plan]\nmin_failures = 7\n").unwrap();
        assert_eq!(TrainOptions::for_plan(&c.plan).min_failures, 7);
    }

    fn examples() -> Vec<Example> {
        // Feature 1 (failed last run) predicts failure; everything else is noise.
        let mut v = Vec::new();
        for seq in 0..60u64 {
            for t in 0..40u64 {
                let mut x = vec![0.0; features::DIM];
                let flag = (seq * 7 + t * 13) % 10 == 0;
                x[1] = f64::from(u8::from(flag));
                x[9] = ((seq + t) % 5) as f64 / 5.0;
                let failed = flag && (seq + t) % 3 != 0 || (!flag && (seq * t) % 97 == 1);
                v.push(Example {
                    seq,
                    features: x,
                    failed,
                    weight: 0.0,
                    natural: 1.0,
                });
            }
        }
        // Per-build balanced training weights, as `observe` assigns them.
        for seq in 0..60u64 {
            let fails = v.iter().filter(|e| e.seq == seq && e.failed).count() as f64;
            let passes = v.iter().filter(|e| e.seq == seq && !e.failed).count() as f64;
            for e in v.iter_mut().filter(|e| e.seq == seq) {
                e.weight = if fails == 0.0 {
                    0.0
                } else if e.failed {
                    1.0 / fails
                } else {
                    1.0 / passes
                };
            }
        }
        v
    }

    #[test]
    fn learns_and_calibrates() {
        let ex = examples();
        let opts = TrainOptions {
            l2_history: 1.0,
            ..TrainOptions::default()
        };
        let m = train(&ex, &prior(), None, &opts).expect("a model");
        m.validate().unwrap();
        assert!(m.weights[1] > 1.0, "{:?}", m.weights);
        let auc = m.holdout.auc.unwrap();
        assert!(auc > 0.8, "auc {auc}");
        assert!(m.holdout.log_loss.unwrap() < m.holdout.base_log_loss.unwrap());
        // Calibrated: mean predicted probability near the observed failure rate.
        let mean_p: f64 =
            ex.iter().map(|e| m.probability(&e.features)).sum::<f64>() / ex.len() as f64;
        let rate = ex.iter().filter(|e| e.failed).count() as f64 / ex.len() as f64;
        assert!(
            (mean_p - rate).abs() < 0.05,
            "mean p {mean_p} vs rate {rate}"
        );
    }

    #[test]
    fn a_strong_pull_keeps_history_weights_at_the_prior() {
        let ex = examples();
        let m = train(
            &ex,
            &prior(),
            None,
            &TrainOptions {
                l2_history: 1e6,
                ..TrainOptions::default()
            },
        )
        .unwrap();
        for (a, b) in m
            .weights
            .iter()
            .zip(&prior().weights)
            .take(features::FIRST_CHANGE_FEATURE)
        {
            assert!((a - b).abs() < 0.01, "{a} vs {b}");
        }
    }

    #[test]
    fn too_few_failures_keeps_the_anchor() {
        let mut ex = examples();
        ex.iter_mut().for_each(|e| e.failed = false);
        assert!(train(&ex, &prior(), None, &TrainOptions::default()).is_none());
    }

    #[test]
    fn auc_of_perfect_and_reversed_rankings() {
        let y = [false, false, true, true];
        let w = [1.0; 4];
        assert_eq!(auc(&[0.0, 1.0, 2.0, 3.0], &y, &w), Some(1.0));
        assert_eq!(auc(&[3.0, 2.0, 1.0, 0.0], &y, &w), Some(0.0));
        assert_eq!(auc(&[1.0; 4], &y, &w), Some(0.5));
    }
}
