//! Robust aggregation of buffered updates (FedBuff): weight, clip, combine coordinate-wise.
//!
//! Pure functions, so the same inputs give the same model — the storage layer relies on that
//! and a test replays them. Defaults follow the design table: weight `min(n, 1000)·(1+τ)^-0.5`,
//! clip every delta to `C`, coordinate-wise trimmed mean with β = 0.1 — but at least one value
//! from each end once three updates are combined, or one attacker among the default buffer of
//! four would move every coordinate by a quarter of its clipped delta — median as the
//! alternative.

use crate::federation::protocol::{self, MAX_SAMPLES};

/// How clipped deltas are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Coordinate-wise trimmed mean: drop the ⌊β·n⌋ (at least one, from n = 3) largest and
    /// smallest values per coordinate.
    TrimmedMean,
    /// Coordinate-wise weighted median.
    Median,
}

/// Aggregation knobs.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub rule: Rule,
    /// Share trimmed from each end by the trimmed mean.
    pub trim: f64,
    /// Server learning rate: `global += lr · aggregate`.
    pub lr: f64,
    /// DP-FedAvg's noise multiplier z: when set, updates are weighted equally, combined by
    /// the plain clipped mean, and Gaussian noise of std z·C/n is added (see
    /// [`super::privacy`]).
    pub dp_noise: Option<f64>,
}

impl Params {
    /// The combination actually used: DP needs the plain mean (sensitivity C/n).
    pub fn effective(&self) -> Params {
        match self.dp_noise {
            Some(_) => Params {
                rule: Rule::TrimmedMean,
                trim: 0.0,
                ..*self
            },
            None => *self,
        }
    }
}

impl Default for Params {
    fn default() -> Self {
        Params {
            rule: Rule::TrimmedMean,
            trim: 0.1,
            lr: 1.0,
            dp_noise: None,
        }
    }
}

/// One buffered update as the aggregator sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Buffered {
    pub delta: Vec<f64>,
    pub samples: u64,
    /// Versions between the update's base and the model it is applied to.
    pub staleness: u64,
}

/// FedBuff/FedAsync staleness discount `(1+τ)^-0.5`.
pub fn staleness_weight(tau: u64) -> f64 {
    (1.0 + tau as f64).powf(-0.5)
}

/// The weight of one update among the others: its capped sample count.
pub fn weight(u: &Buffered) -> f64 {
    u.samples.clamp(1, MAX_SAMPLES) as f64
}

/// The aggregate step (before the learning rate) of `updates`, each clipped to `clip`.
/// `None` for an empty buffer.
pub fn aggregate(updates: &[Buffered], clip: f64, params: &Params) -> Option<Vec<f64>> {
    let dim = updates.first()?.delta.len();
    let rows: Vec<(Vec<f64>, f64)> = updates
        .iter()
        .map(|u| {
            let mut d = u.delta.clone();
            protocol::clip(&mut d, clip);
            // Staleness shrinks the delta itself (FedBuff's s(τ)·Δ), not only its share:
            // a share is renormalised away when an update is aggregated alone, and then a
            // stale delta computed against an old base would land at full strength.
            let s = staleness_weight(u.staleness);
            d.iter_mut().for_each(|v| *v *= s);
            (d, weight(u))
        })
        .collect();
    let mut out = vec![0.0; dim];
    let mut column: Vec<(f64, f64)> = Vec::with_capacity(rows.len());
    for (j, o) in out.iter_mut().enumerate() {
        column.clear();
        column.extend(rows.iter().map(|(d, w)| (d[j], *w)));
        column.sort_by(|a, b| a.0.total_cmp(&b.0));
        *o = match params.rule {
            Rule::TrimmedMean => trimmed_mean(&column, params.trim),
            Rule::Median => weighted_median(&column),
        };
    }
    Some(out)
}

/// Weighted mean of the sorted `(value, weight)` pairs after dropping ⌊β·n⌋ from each end —
/// at least one when β > 0 and there are three or more, always leaving one.
fn trimmed_mean(sorted: &[(f64, f64)], beta: f64) -> f64 {
    let n = sorted.len();
    let k = (beta * n as f64).floor() as usize;
    let k = if beta > 0.0 && n >= 3 { k.max(1) } else { k };
    let k = k.min((n - 1) / 2);
    let kept = &sorted[k..n - k];
    let total: f64 = kept.iter().map(|(_, w)| w).sum();
    if total <= 0.0 {
        return 0.0;
    }
    kept.iter().map(|(v, w)| v * w).sum::<f64>() / total
}

/// The smallest value whose cumulative weight reaches half the total.
fn weighted_median(sorted: &[(f64, f64)]) -> f64 {
    let total: f64 = sorted.iter().map(|(_, w)| w).sum();
    let mut acc = 0.0;
    for (v, w) in sorted {
        acc += w;
        if acc >= total / 2.0 {
            return *v;
        }
    }
    sorted.last().map_or(0.0, |(v, _)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn honest(i: usize) -> Vec<f64> {
        // Honest clients agree on the direction (1, -1, 0.5) with a little spread.
        let e = (i as f64 * 0.37).sin() * 0.05;
        vec![1.0 + e, -1.0 - e, 0.5 + e]
    }

    fn buffered(delta: Vec<f64>) -> Buffered {
        Buffered {
            delta,
            samples: 100,
            staleness: 0,
        }
    }

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < tol)
    }

    #[test]
    fn trimmed_mean_resists_a_sign_flipped_attacker() {
        let mut ups: Vec<Buffered> = (0..9).map(|i| buffered(honest(i))).collect();
        let clean = aggregate(&ups, 10.0, &Params::default()).unwrap();
        ups.push(buffered(honest(0).iter().map(|v| -v).collect()));
        let attacked = aggregate(&ups, 10.0, &Params::default()).unwrap();
        assert!(close(&clean, &attacked, 0.08), "{clean:?} vs {attacked:?}");
        // Without trimming, the flipped update drags every coordinate by about a fifth.
        let mean = aggregate(
            &ups,
            10.0,
            &Params {
                trim: 0.0,
                ..Params::default()
            },
        )
        .unwrap();
        assert!(!close(&clean, &mean, 0.1), "{clean:?} vs {mean:?}");
    }

    #[test]
    fn one_attacker_in_a_buffer_of_four_is_trimmed_away() {
        let ups: Vec<Buffered> = (0..3).map(|i| buffered(honest(i))).collect();
        let mut attacked = ups.clone();
        attacked.push(buffered(honest(0).iter().map(|v| -v).collect()));
        let got = aggregate(&attacked, 10.0, &Params::default()).unwrap();
        // Each coordinate is the mean of the two middle values: never the attacker's sign
        // flip, which is the smallest value wherever the honest ones agree in sign.
        let lo_hi: Vec<(f64, f64)> = (0..honest(0).len())
            .map(|j| {
                let col: Vec<f64> = ups.iter().map(|u| u.delta[j]).collect();
                (
                    col.iter().copied().fold(f64::INFINITY, f64::min),
                    col.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                )
            })
            .collect();
        for (g, (lo, hi)) in got.iter().zip(&lo_hi) {
            assert!(
                *g >= lo - 1e-12 && *g <= hi + 1e-12,
                "{g} outside [{lo}, {hi}]"
            );
        }
        // β = 0 is the plain mean, which the flipped update drags outside that range.
        let mean = aggregate(
            &attacked,
            10.0,
            &Params {
                trim: 0.0,
                ..Params::default()
            },
        )
        .unwrap();
        assert!(
            mean.iter()
                .zip(&lo_hi)
                .any(|(g, (lo, hi))| g < lo || g > hi),
            "{mean:?}"
        );
    }

    #[test]
    fn trimmed_mean_and_clipping_resist_a_scaled_attacker() {
        let mut ups: Vec<Buffered> = (0..9).map(|i| buffered(honest(i))).collect();
        let clean = aggregate(&ups, 2.0, &Params::default()).unwrap();
        ups.push(buffered(honest(3).iter().map(|v| v * 100.0).collect()));
        let attacked = aggregate(&ups, 2.0, &Params::default()).unwrap();
        assert!(close(&clean, &attacked, 0.08), "{clean:?} vs {attacked:?}");
        // Even the plain mean is bounded by the clip: the attacker moves it by at most C/n.
        let mean = aggregate(
            &ups,
            2.0,
            &Params {
                trim: 0.0,
                ..Params::default()
            },
        )
        .unwrap();
        assert!(protocol::norm(&mean) < protocol::norm(&clean) + 2.0 / 10.0 + 1e-9);
    }

    #[test]
    fn median_resists_one_of_four() {
        let params = Params {
            rule: Rule::Median,
            ..Params::default()
        };
        let mut ups: Vec<Buffered> = (0..3).map(|i| buffered(honest(i))).collect();
        ups.push(buffered(honest(0).iter().map(|v| -100.0 * v).collect()));
        let agg = aggregate(&ups, 10.0, &params).unwrap();
        assert!(close(&agg, &honest(1), 0.1), "{agg:?}");
    }

    #[test]
    fn staleness_discounts_old_updates() {
        assert_eq!(staleness_weight(0), 1.0);
        assert!((staleness_weight(3) - 0.5).abs() < 1e-12);
        assert!(staleness_weight(20) < staleness_weight(19));
        // Two updates, one fresh, one 3 versions stale: the stale delta is halved.
        let ups = vec![
            Buffered {
                delta: vec![1.0],
                samples: 10,
                staleness: 0,
            },
            Buffered {
                delta: vec![-1.0],
                samples: 10,
                staleness: 3,
            },
        ];
        let agg = aggregate(&ups, 10.0, &Params::default()).unwrap();
        assert!((agg[0] - (1.0 - 0.5) / 2.0).abs() < 1e-12, "{agg:?}");
        // Alone, a stale update is still shrunk: normalising cannot undo the discount.
        let alone = aggregate(&ups[1..], 10.0, &Params::default()).unwrap();
        assert!((alone[0] + 0.5).abs() < 1e-12, "{alone:?}");
    }

    #[test]
    fn sample_counts_are_capped() {
        let big = Buffered {
            delta: vec![1.0],
            samples: 1_000_000,
            staleness: 0,
        };
        assert_eq!(weight(&big), MAX_SAMPLES as f64);
        let ups = vec![
            big,
            Buffered {
                delta: vec![-1.0],
                samples: 1000,
                staleness: 0,
            },
        ];
        let agg = aggregate(&ups, 10.0, &Params::default()).unwrap();
        assert!(agg[0].abs() < 1e-12, "{agg:?}");
    }

    #[test]
    fn clipping_bounds_each_delta() {
        let ups = vec![buffered(vec![30.0, 40.0])];
        let agg = aggregate(&ups, 1.0, &Params::default()).unwrap();
        assert!((protocol::norm(&agg) - 1.0).abs() < 1e-12);
    }
}
