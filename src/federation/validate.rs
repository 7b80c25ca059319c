//! Trust, but check: before the global model replaces anything, it is scored on this
//! repository's own newest builds against the local model and a 50/50 blend of the two, and
//! whichever ranks the held-out failures best (AUC) is used.
//!
//! The comparison is fair: the local candidates are fitted on the older builds only, so no
//! candidate has seen the holdout. The model that is then used is refitted on everything.
//!
//! There are two local candidates: one anchored on the embedded prior (what the repository
//! would use with no federation at all) and one anchored on the global model. The first is
//! the default; every candidate further from it must beat the one before by a margin. So
//! federation is adopted where it demonstrably ranks this repository's failures better, and
//! otherwise changes nothing — replaying real histories, anchoring on a global model shaped
//! by other repositories cost one of them 0.04 APFD.

use std::collections::BTreeSet;

use serde::Serialize;

use super::protocol;
use crate::history::state::Example;
use crate::model::train::{self, TrainOptions};
use crate::model::{Holdout, Model, Source};

/// Share of the newest builds held out.
const HOLDOUT_SHARE: f64 = 0.2;
/// Fewer held-out failures than this and the comparison is noise: keep the local model.
const MIN_HOLDOUT_FAILURES: usize = 3;

/// Largest absolute weight a downloaded global model may hold. The prior's largest is about
/// 2 and honest federation moved the global model 3.1 from it in 155 versions; a weight of
/// 1e6 passed the old shape-and-finiteness check and became the anchor of local training.
pub const MAX_GLOBAL_WEIGHT: f64 = 25.0;
/// How far (Euclidean) a downloaded global model may be from both the prior and the local
/// model: about four times the largest honest drift measured (see [`MAX_GLOBAL_WEIGHT`]).
pub const MAX_GLOBAL_DISTANCE: f64 = 12.0;

/// Whether a downloaded global model (`vector`: weights then intercept) is sane enough to
/// plan with or to anchor local training on: every number within [`MAX_GLOBAL_WEIGHT`], and
/// within [`MAX_GLOBAL_DISTANCE`] of the prior or of the local model. The reason when not.
pub fn check_global(vector: &[f64], prior: &Model, local: Option<&Model>) -> Result<(), String> {
    if let Some(w) = vector
        .iter()
        .find(|w| !w.is_finite() || w.abs() > MAX_GLOBAL_WEIGHT)
    {
        return Err(format!("a weight of {w} is outside ±{MAX_GLOBAL_WEIGHT}"));
    }
    let distance = |m: &Model| {
        let v = protocol::vector_of(m);
        if v.len() != vector.len() {
            return f64::INFINITY;
        }
        let d: Vec<f64> = vector.iter().zip(&v).map(|(a, b)| a - b).collect();
        protocol::norm(&d)
    };
    let from_prior = distance(prior);
    let from_local = local.map_or(f64::INFINITY, distance);
    if from_prior.min(from_local) > MAX_GLOBAL_DISTANCE {
        return Err(format!(
            "it is {from_prior:.1} from the prior{} (at most {MAX_GLOBAL_DISTANCE} from either)",
            if from_local.is_finite() {
                format!(" and {from_local:.1} from the local model")
            } else {
                String::new()
            }
        ));
    }
    Ok(())
}

/// The scores behind the choice.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Scores {
    pub holdout_builds: u64,
    pub holdout_failures: u64,
    /// The local model anchored on the prior (no federation).
    pub own_auc: Option<f64>,
    /// The local model anchored on the global model.
    pub local_auc: Option<f64>,
    pub global_auc: Option<f64>,
    pub blend_auc: Option<f64>,
}

/// What local training is anchored on (pulled toward) until the next sync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Anchor {
    /// The embedded prior: federation did not help this repository's newest builds.
    Prior,
    /// The global model.
    #[default]
    Global,
}

/// The model to use and why.
#[derive(Clone, Debug)]
pub struct Choice {
    pub model: Model,
    pub anchor: Anchor,
    pub scores: Scores,
    /// Why, in a few words, when the choice was not made by scores.
    pub reason: &'static str,
}

/// Average of two models' vectors (the calibration is refitted by the caller).
pub fn blend(a: &Model, b: &Model) -> Model {
    let v: Vec<f64> = protocol::vector_of(a)
        .iter()
        .zip(protocol::vector_of(b))
        .map(|(x, y)| 0.5 * (x + y))
        .collect();
    protocol::model_of(&v, Source::Blend).expect("two valid models blend into a valid one")
}

/// Refit the calibration of `m` on `examples` (its ranking is unchanged).
fn calibrated(mut m: Model, examples: &[Example]) -> Model {
    let scores: Vec<f64> = examples.iter().map(|e| m.score(&e.features)).collect();
    let y: Vec<bool> = examples.iter().map(|e| e.failed).collect();
    let w: Vec<f64> = examples.iter().map(|e| e.natural).collect();
    m.calibration = train::platt(&scores, &y, &w).unwrap_or([1.0, 0.0]);
    m
}

fn auc_of(m: &Model, rows: &[&Example]) -> Option<f64> {
    let scores: Vec<f64> = rows.iter().map(|e| m.score(&e.features)).collect();
    let y: Vec<bool> = rows.iter().map(|e| e.failed).collect();
    let w: Vec<f64> = rows.iter().map(|e| e.natural).collect();
    train::auc(&scores, &y, &w)
}

/// AUC a candidate further from the local data must gain over the one before it.
const ADOPT_MARGIN: f64 = 0.01;

/// Choose between the local model anchored on `prior`, the local model anchored on
/// `global`, `global` itself and a blend of the last two.
pub fn choose(
    examples: &[Example],
    global: &Model,
    prior: &Model,
    previous: Option<&Model>,
    opts: &TrainOptions,
) -> Choice {
    let as_global = |m: &Model| Model {
        source: Source::Global,
        ..calibrated(m.clone(), examples)
    };
    let Some(local) = train::train(examples, global, previous, opts) else {
        return Choice {
            model: as_global(global),
            anchor: Anchor::Global,
            scores: Scores::default(),
            reason: "not enough local failures to train a local model",
        };
    };
    let own = train::train(examples, prior, previous, opts).unwrap_or_else(|| local.clone());
    let seqs: BTreeSet<u64> = examples.iter().map(|e| e.seq).collect();
    let holdout_builds =
        ((seqs.len() as f64 * HOLDOUT_SHARE).ceil() as usize).min(seqs.len().saturating_sub(1));
    let cut = seqs
        .iter()
        .rev()
        .nth(holdout_builds.saturating_sub(1))
        .copied();
    let (older, newest): (Vec<&Example>, Vec<&Example>) = match cut {
        Some(cut) if holdout_builds > 0 => examples.iter().partition(|e| e.seq < cut),
        _ => (examples.iter().collect(), Vec::new()),
    };
    let failures = newest.iter().filter(|e| e.failed).count();
    let mut scores = Scores {
        holdout_builds: holdout_builds as u64,
        holdout_failures: failures as u64,
        ..Scores::default()
    };
    let keep_local = |scores: Scores, reason| Choice {
        model: own.clone(),
        anchor: Anchor::Prior,
        scores,
        reason,
    };
    if failures < MIN_HOLDOUT_FAILURES || failures == newest.len() {
        return keep_local(scores, "too few recent failures to compare models");
    }
    let older: Vec<Example> = older.into_iter().cloned().collect();
    let (Some(local_older), Some(own_older)) = (
        train::train(&older, global, previous, opts),
        train::train(&older, prior, previous, opts),
    ) else {
        return keep_local(scores, "too few older failures to compare models");
    };
    let mixed = blend(&local_older, global);
    scores.own_auc = auc_of(&own_older, &newest);
    scores.local_auc = auc_of(&local_older, &newest);
    scores.global_auc = auc_of(global, &newest);
    scores.blend_auc = auc_of(&mixed, &newest);
    // Ties keep what is closest to local data: the prior-anchored local model, then the
    // globally anchored one, the blend, global. A model further from local data must win by a
    // margin, not by holdout noise: adopting on sub-0.01 AUC differences cost druid 0.04 APFD.
    let candidates = [
        (Candidate::Own, scores.own_auc),
        (Candidate::Local, scores.local_auc),
        (Candidate::Blend, scores.blend_auc),
        (Candidate::Global, scores.global_auc),
    ];
    let mut best = (Candidate::Own, f64::NEG_INFINITY);
    for (c, a) in candidates {
        if let Some(a) = a
            && (best.1 == f64::NEG_INFINITY || a > best.1 + ADOPT_MARGIN)
        {
            best = (c, a);
        }
    }
    let holdout = |auc: Option<f64>| Holdout {
        builds: holdout_builds as u64,
        examples: newest.len() as u64,
        failures: failures as u64,
        auc,
        log_loss: None,
        base_log_loss: None,
    };
    let model = match best.0 {
        Candidate::Global => Model {
            holdout: holdout(scores.global_auc),
            trained_examples: local.trained_examples,
            trained_failures: local.trained_failures,
            trained_builds: local.trained_builds,
            ..as_global(global)
        },
        Candidate::Blend => Model {
            holdout: holdout(scores.blend_auc),
            trained_examples: local.trained_examples,
            trained_failures: local.trained_failures,
            trained_builds: local.trained_builds,
            ..calibrated(blend(&local, global), examples)
        },
        Candidate::Local => local.clone(),
        Candidate::Own => own.clone(),
    };
    Choice {
        model,
        anchor: if best.0 == Candidate::Own {
            Anchor::Prior
        } else {
            Anchor::Global
        },
        scores,
        reason: "best holdout AUC",
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Candidate {
    Own,
    Local,
    Blend,
    Global,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features;
    use crate::model::prior::prior;

    /// Feature 1 predicts failure in this repository.
    fn examples() -> Vec<Example> {
        let mut v = Vec::new();
        for seq in 0..50u64 {
            for t in 0..30u64 {
                let mut x = vec![0.0; features::DIM];
                let flag = (seq * 7 + t * 13) % 10 == 0;
                x[1] = f64::from(u8::from(flag));
                x[2] = ((seq + t) % 7) as f64 / 7.0;
                let failed = flag && (seq + t) % 4 != 0;
                v.push(Example {
                    seq,
                    features: x,
                    failed,
                    weight: if failed { 1.0 } else { 0.1 },
                    natural: 1.0,
                });
            }
        }
        v
    }

    fn weak() -> TrainOptions {
        TrainOptions {
            l2_history: 1.0,
            ..TrainOptions::default()
        }
    }

    #[test]
    fn a_global_model_that_ranks_backwards_is_not_adopted() {
        let mut bad = prior();
        bad.weights.iter_mut().for_each(|w| *w = 0.0);
        bad.weights[1] = -5.0;
        bad.source = Source::Global;
        let c = choose(&examples(), &bad, &prior(), None, &weak());
        assert_ne!(c.model.source, Source::Global, "{:?}", c.scores);
        assert!(c.scores.global_auc.unwrap() < 0.5);
        // ... and local training stops being pulled toward it.
        assert_eq!(c.anchor, Anchor::Prior, "{:?}", c.scores);
    }

    #[test]
    fn a_better_global_model_is_used() {
        let mut good = prior();
        good.weights.iter_mut().for_each(|w| *w = 0.0);
        good.weights[1] = 5.0;
        good.source = Source::Global;
        // A strong pull keeps the local model at the anchor: local = global there, so only
        // a tie-break separates them. Use no history at all instead: global must be chosen.
        let none: Vec<Example> = Vec::new();
        let c = choose(&none, &good, &prior(), None, &weak());
        assert_eq!(c.model.source, Source::Global);
        let c = choose(&examples(), &good, &prior(), None, &weak());
        assert!(c.scores.global_auc.unwrap() > 0.9, "{:?}", c.scores);
        c.model.validate().unwrap();
    }

    #[test]
    fn a_global_model_of_absurd_magnitude_or_far_from_everything_is_refused() {
        let p = prior();
        let ok = protocol::vector_of(&p);
        assert!(check_global(&ok, &p, None).is_ok());
        // Issue 11: weights of 1e6 passed as long as they were finite.
        let mut huge = ok.clone();
        huge[3] = 1e6;
        assert!(
            check_global(&huge, &p, None)
                .unwrap_err()
                .contains("outside")
        );
        // Every weight moderate, but all moved far in one direction.
        let far: Vec<f64> = ok.iter().map(|w| w + 3.0).collect();
        let why = check_global(&far, &p, None).unwrap_err();
        assert!(why.contains("from the prior"), "{why}");
        // Close to the local model is enough: the repository's own data agrees with it.
        let local = protocol::model_of(&far, Source::Local).unwrap();
        assert!(check_global(&far, &p, Some(&local)).is_ok());
        // Shape and finiteness are still checked.
        assert!(check_global(&[f64::NAN; 24], &p, None).is_err());
        assert!(check_global(&ok[1..], &p, None).is_err());
    }

    #[test]
    fn blend_is_the_midpoint() {
        let a = prior();
        let mut b = prior();
        b.intercept += 2.0;
        let m = blend(&a, &b);
        assert!((m.intercept - a.intercept - 1.0).abs() < 1e-12);
        assert_eq!(m.source, Source::Blend);
    }
}
