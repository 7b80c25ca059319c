//! Training a local model from the stored examples: class weighting, an L2 pull toward the
//! prior (or global) model, a time-ordered holdout, and Platt calibration on that holdout.

use std::collections::BTreeSet;

use super::logistic::{self, Dataset, FitOptions};
use super::{Holdout, Model, Source};
use crate::features;
use crate::history::state::Example;

/// Knobs of local training.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// L2 strength toward the anchor (mean-loss scale).
    pub l2: f64,
    /// Fewer failures than this and the anchor model is kept as it is.
    pub min_failures: u64,
    /// Share of the newest builds held out for calibration and metrics.
    pub holdout_share: f64,
    /// Upper bound of the failure class weight (failures are rare; balance them, within reason).
    pub max_class_weight: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            l2: 2e-3,
            min_failures: 3,
            holdout_share: 0.2,
            max_class_weight: 20.0,
        }
    }
}

/// Fit a local model; `None` when the examples cannot support one (too few failures, or one
/// class only) and the anchor should be used as it is.
pub fn train(examples: &[Example], anchor: &Model, opts: &TrainOptions) -> Option<Model> {
    let failures = examples.iter().filter(|e| e.failed).count() as u64;
    if failures < opts.min_failures || failures as usize == examples.len() {
        return None;
    }
    let seqs: BTreeSet<u64> = examples.iter().map(|e| e.seq).collect();
    let holdout_builds = ((seqs.len() as f64 * opts.holdout_share).ceil() as usize)
        .min(seqs.len().saturating_sub(1));
    let cut = seqs
        .iter()
        .rev()
        .nth(holdout_builds.saturating_sub(1))
        .copied()
        .filter(|_| holdout_builds > 0);
    let (train_part, hold): (Vec<&Example>, Vec<&Example>) = match cut {
        Some(cut) => examples.iter().partition(|e| e.seq < cut),
        None => (examples.iter().collect(), Vec::new()),
    };
    let hold_failures = hold.iter().filter(|e| e.failed).count() as u64;
    let train_failures = train_part.iter().filter(|e| e.failed).count() as u64;
    let fit_opts = FitOptions {
        l2: opts.l2,
        anchor: Some(anchor.weights.clone()),
        ..Default::default()
    };

    // Calibrate on the holdout when it has enough failures to say anything.
    let mut calibration = None;
    let mut holdout = Holdout {
        builds: holdout_builds as u64,
        examples: hold.len() as u64,
        failures: hold_failures,
        ..Default::default()
    };
    if hold_failures >= 5
        && train_failures >= opts.min_failures
        && hold.len() > hold_failures as usize
    {
        let (fit, pos_w) = fit_weighted(&train_part, &fit_opts, anchor, opts);
        let scores: Vec<f64> = hold
            .iter()
            .map(|e| logistic::dot(&fit.weights, &e.features) + fit.intercept)
            .collect();
        let y: Vec<bool> = hold.iter().map(|e| e.failed).collect();
        let w: Vec<f64> = hold.iter().map(|e| e.weight).collect();
        let cal = platt(&scores, &y, &w).unwrap_or([1.0, -pos_w.ln()]);
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

    let all: Vec<&Example> = examples.iter().collect();
    let (fit, pos_w) = fit_weighted(&all, &fit_opts, anchor, opts);
    // Without a usable holdout, undo the class weighting analytically (a logit shift).
    let calibration = calibration.unwrap_or([1.0, -pos_w.ln()]);
    if !fit.weights.iter().all(|w| w.is_finite()) || !fit.intercept.is_finite() {
        return None;
    }
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

/// Fit with failures up-weighted; returns the fit and the failure weight used.
fn fit_weighted(
    rows: &[&Example],
    fit_opts: &FitOptions,
    anchor: &Model,
    opts: &TrainOptions,
) -> (logistic::Fit, f64) {
    let pos: f64 = rows.iter().filter(|e| e.failed).map(|e| e.weight).sum();
    let neg: f64 = rows.iter().filter(|e| !e.failed).map(|e| e.weight).sum();
    // Square-root balancing: enough to make failures matter, not so much that it distorts ranking.
    let pos_w = if pos > 0.0 {
        (neg / pos).sqrt().clamp(1.0, opts.max_class_weight)
    } else {
        1.0
    };
    let x: Vec<Vec<f64>> = rows.iter().map(|e| e.features.clone()).collect();
    let y: Vec<bool> = rows.iter().map(|e| e.failed).collect();
    let w: Vec<f64> = rows
        .iter()
        .map(|e| if e.failed { e.weight * pos_w } else { e.weight })
        .collect();
    let fit = logistic::fit(
        &Dataset {
            x: &x,
            y: &y,
            w: &w,
        },
        fit_opts,
        Some((&anchor.weights, anchor.intercept)),
    );
    (fit, pos_w)
}

/// Platt scaling: fit `σ(a·s + c)` to the labels. `None` when the fit is degenerate.
pub fn platt(scores: &[f64], y: &[bool], w: &[f64]) -> Option<[f64; 2]> {
    let x: Vec<Vec<f64>> = scores.iter().map(|s| vec![*s]).collect();
    let fit = logistic::fit(
        &Dataset { x: &x, y, w },
        &FitOptions {
            l2: 1e-6,
            ..Default::default()
        },
        Some((&[1.0], 0.0)),
    );
    let a = fit.weights[0];
    // A non-positive slope would invert the ranking: the holdout is too small to trust.
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

    fn examples() -> Vec<Example> {
        // Feature 4 (failed last run) predicts failure; everything else is noise.
        let mut v = Vec::new();
        for seq in 0..50u64 {
            for t in 0..40u64 {
                let mut x = vec![0.0; features::DIM];
                let flag = (seq * 7 + t * 13) % 10 == 0;
                x[4] = f64::from(u8::from(flag));
                x[13] = ((seq + t) % 5) as f64 / 5.0;
                let failed = flag && (seq + t) % 3 != 0 || (!flag && (seq * t) % 97 == 1);
                v.push(Example {
                    seq,
                    features: x,
                    failed,
                    weight: 1.0,
                });
            }
        }
        v
    }

    #[test]
    fn learns_and_calibrates() {
        let ex = examples();
        let m = train(&ex, &prior(), &TrainOptions::default()).expect("a model");
        m.validate().unwrap();
        assert!(m.weights[4] > 1.0, "{:?}", m.weights);
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
    fn too_few_failures_keeps_the_anchor() {
        let mut ex = examples();
        ex.iter_mut().for_each(|e| e.failed = false);
        assert!(train(&ex, &prior(), &TrainOptions::default()).is_none());
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
