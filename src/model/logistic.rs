//! Weighted, L2-regularised logistic regression fitted by Newton's method.
//!
//! Why not linfa-logistic for the fit itself: federated training needs sample weights (class
//! balance per build, down-weighted flaky labels, sampled passes), a separate L2 strength per
//! parameter, and an L2 pull toward the global or prior model (FedProx-style) — linfa 0.8 has
//! none of these, and it orients labels by class frequency. With d ≈ 30 Newton converges in a handful of iterations and is exact; a test in
//! `tests` checks that it reaches linfa's optimum when the extras are switched off.

/// Training data: rows of features, a 0/1 label and a non-negative weight per row.
pub struct Dataset<'a> {
    pub x: &'a [Vec<f64>],
    pub y: &'a [bool],
    pub w: &'a [f64],
}

/// Fit options. The objective is `Σ wᵢ·ℓᵢ + ½ Σⱼ λⱼ (βⱼ − cⱼ)²` over the parameters β
/// (weights, then the intercept last), with per-parameter strengths λ and centre c.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// L2 strength per parameter (weights then intercept).
    pub l2: Vec<f64>,
    /// Centre of the L2 pull per parameter (the prior or global model).
    pub anchor: Vec<f64>,
    pub max_iter: usize,
    pub tol: f64,
}

impl FitOptions {
    /// The same strength on every weight, none on the intercept, pulled toward zero.
    pub fn uniform(dim: usize, l2: f64) -> Self {
        let mut strengths = vec![l2; dim + 1];
        strengths[dim] = 0.0;
        FitOptions {
            l2: strengths,
            anchor: vec![0.0; dim + 1],
            max_iter: 50,
            tol: 1e-10,
        }
    }
}

/// Coefficients and intercept; the probability of failure is `σ(β·x + b)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    pub weights: Vec<f64>,
    pub intercept: f64,
    pub iterations: usize,
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Weighted mean log-loss of probabilities `p` against labels.
pub fn log_loss(p: &[f64], y: &[bool], w: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for ((&p, &y), &w) in p.iter().zip(y).zip(w) {
        let p = p.clamp(1e-12, 1.0 - 1e-12);
        num -= w * if y { p.ln() } else { (1.0 - p).ln() };
        den += w;
    }
    if den > 0.0 { num / den } else { 0.0 }
}

/// Fit by damped Newton iterations. `start` (weights then intercept) warm-starts the fit.
pub fn fit(data: &Dataset<'_>, opts: &FitOptions, start: Option<(&[f64], f64)>) -> Fit {
    let n = data.x.len();
    let d = data.x.first().map_or(0, Vec::len);
    let p = d + 1; // parameters: weights then intercept
    assert_eq!(opts.l2.len(), p, "one L2 strength per parameter");
    assert_eq!(opts.anchor.len(), p, "one anchor value per parameter");
    let anchor = &opts.anchor;
    let mut beta = vec![0.0; p];
    if let Some((w, b)) = start {
        beta[..d].copy_from_slice(&w[..d]);
        beta[d] = b;
    }
    let mut iterations = 0;
    let mut grad = vec![0.0; p];
    let mut hess = vec![0.0; p * p];
    let mut xi = vec![0.0; p];
    // Most features are zero in most rows (change features without changes, flags): a zero
    // adds nothing to the gradient or the Hessian, so only the row's nonzero entries are
    // visited — the same sums in the same order, a fraction of the p²/2 products.
    let mut nonzero: Vec<usize> = Vec::with_capacity(p);
    let objective = |beta: &[f64]| -> f64 {
        let mut loss = 0.0;
        for i in 0..n {
            let z = dot(&data.x[i], &beta[..d]) + beta[d];
            // log(1 + e^z) − y·z, computed stably
            let l = if z > 0.0 {
                z + (-z).exp().ln_1p()
            } else {
                z.exp().ln_1p()
            };
            loss += data.w[i] * (l - if data.y[i] { z } else { 0.0 });
        }
        let reg: f64 = (0..p)
            .map(|j| opts.l2[j] * (beta[j] - anchor[j]) * (beta[j] - anchor[j]))
            .sum();
        loss + 0.5 * reg
    };
    let mut current = objective(&beta);
    for _ in 0..opts.max_iter {
        iterations += 1;
        grad.iter_mut().for_each(|g| *g = 0.0);
        hess.iter_mut().for_each(|h| *h = 0.0);
        for i in 0..n {
            xi[..d].copy_from_slice(&data.x[i]);
            xi[d] = 1.0;
            let mu = sigmoid(dot(&xi, &beta));
            let wi = data.w[i];
            let r = wi * (mu - f64::from(u8::from(data.y[i])));
            let s = wi * mu * (1.0 - mu);
            nonzero.clear();
            nonzero.extend((0..p).filter(|&a| xi[a] != 0.0));
            for (k, &a) in nonzero.iter().enumerate() {
                grad[a] += r * xi[a];
                let sa = s * xi[a];
                for &b in &nonzero[k..] {
                    hess[a * p + b] += sa * xi[b];
                }
            }
        }
        for a in 0..p {
            for b in 0..a {
                hess[a * p + b] = hess[b * p + a];
            }
        }
        for j in 0..p {
            grad[j] += opts.l2[j] * (beta[j] - anchor[j]);
            hess[j * p + j] += opts.l2[j];
        }
        // A tiny ridge keeps the system solvable when a feature is constant.
        for j in 0..p {
            hess[j * p + j] += 1e-9;
        }
        let Some(step) = solve(&hess, &grad, p) else {
            break;
        };
        // Backtracking line search keeps the objective decreasing on separable data.
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..30 {
            let cand: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b - t * s).collect();
            let value = objective(&cand);
            if value <= current {
                let improvement = current - value;
                beta = cand;
                current = value;
                accepted = true;
                if improvement < opts.tol {
                    return Fit {
                        intercept: beta[d],
                        weights: beta[..d].to_vec(),
                        iterations,
                    };
                }
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            break;
        }
    }
    Fit {
        intercept: beta[d],
        weights: beta[..d].to_vec(),
        iterations,
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solve `A x = b` for a symmetric positive-definite `A` (row-major, n×n) by Cholesky.
fn solve(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = a[i * n + j];
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if sum <= 0.0 || !sum.is_finite() {
                    return None;
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let mut sum = b[i];
        for k in 0..i {
            sum -= l[i * n + k] * y[k];
        }
        y[i] = sum / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut sum = y[i];
        for k in i + 1..n {
            sum -= l[k * n + i] * x[k];
        }
        x[i] = sum / l[i * n + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> (Vec<Vec<f64>>, Vec<bool>) {
        // Deterministic, overlapping classes: label depends on x0 − 0.5·x1 plus a fixed pattern.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..400 {
            let a = ((i * 37) % 101) as f64 / 50.0 - 1.0;
            let b = ((i * 53) % 97) as f64 / 48.0 - 1.0;
            let noise = ((i * 71) % 13) as f64 / 13.0 - 0.5;
            x.push(vec![a, b]);
            y.push(a - 0.5 * b + noise > 0.3);
        }
        (x, y)
    }

    #[test]
    fn reaches_the_weighted_optimum() {
        let (x, y) = toy();
        let w = vec![1.0; x.len()];
        let f = fit(
            &Dataset {
                x: &x,
                y: &y,
                w: &w,
            },
            &FitOptions::uniform(2, 0.0),
            None,
        );
        assert!(f.weights[0] > 0.0 && f.weights[1] < 0.0, "{f:?}");
        // At the optimum the gradient vanishes: Σ (μ − y)·x = 0 for every column and the intercept.
        let mut g = [0.0; 3];
        for (xi, &yi) in x.iter().zip(&y) {
            let r = sigmoid(dot(xi, &f.weights) + f.intercept) - f64::from(u8::from(yi));
            g[0] += r * xi[0];
            g[1] += r * xi[1];
            g[2] += r;
        }
        for gi in g {
            assert!(gi.abs() < 1e-6, "gradient {g:?}");
        }
    }

    #[test]
    fn l2_pulls_toward_the_anchor() {
        let (x, y) = toy();
        let w = vec![1.0; x.len()];
        let anchor = vec![5.0, 5.0];
        let strong = FitOptions {
            l2: vec![1e5, 1e5, 0.0],
            anchor: vec![5.0, 5.0, 0.0],
            ..FitOptions::uniform(2, 0.0)
        };
        let f = fit(
            &Dataset {
                x: &x,
                y: &y,
                w: &w,
            },
            &strong,
            None,
        );
        for (b, a) in f.weights.iter().zip(&anchor) {
            assert!((b - a).abs() < 0.05, "{f:?}");
        }
    }

    #[test]
    fn weights_act_like_repeated_rows() {
        let (x, y) = toy();
        let w2: Vec<f64> = (0..x.len())
            .map(|i| if i % 2 == 0 { 2.0 } else { 1.0 })
            .collect();
        let mut xr = Vec::new();
        let mut yr = Vec::new();
        for i in 0..x.len() {
            for _ in 0..(if i % 2 == 0 { 2 } else { 1 }) {
                xr.push(x[i].clone());
                yr.push(y[i]);
            }
        }
        let ones = vec![1.0; xr.len()];
        let opts = FitOptions::uniform(2, 0.01);
        let a = fit(
            &Dataset {
                x: &x,
                y: &y,
                w: &w2,
            },
            &opts,
            None,
        );
        let b = fit(
            &Dataset {
                x: &xr,
                y: &yr,
                w: &ones,
            },
            &opts,
            None,
        );
        for (p, q) in a.weights.iter().zip(&b.weights) {
            assert!((p - q).abs() < 1e-6);
        }
    }

    #[test]
    fn separable_data_stays_finite() {
        let x: Vec<Vec<f64>> = (0..20).map(|i| vec![f64::from(i)]).collect();
        let y: Vec<bool> = (0..20).map(|i| i >= 10).collect();
        let w = vec![1.0; 20];
        let f = fit(
            &Dataset {
                x: &x,
                y: &y,
                w: &w,
            },
            &FitOptions::uniform(1, 1e-4),
            None,
        );
        assert!(f.weights[0].is_finite() && f.weights[0] > 0.0);
    }

    /// linfa-logistic stays in the loop as the reference: on the same data, with no
    /// regularisation extras, both must land on the same decision function.
    #[test]
    fn agrees_with_linfa() {
        use linfa::prelude::*;
        use linfa_logistic::LogisticRegression;
        use ndarray::Array2;

        let (x, y) = toy();
        let n = x.len();
        let flat: Vec<f64> = x.iter().flatten().copied().collect();
        let records = Array2::from_shape_vec((n, 2), flat).unwrap();
        let targets = ndarray::Array1::from_vec(y.clone());
        let ds = linfa::Dataset::new(records, targets);
        // linfa minimises Σℓ + α/2‖β‖² with the intercept unpenalised, as `uniform` does.
        let alpha = 1.0;
        let lin = LogisticRegression::default()
            .alpha(alpha)
            .max_iterations(1000)
            .fit(&ds)
            .unwrap();
        let w = vec![1.0; n];
        let ours = fit(
            &super::Dataset {
                x: &x,
                y: &y,
                w: &w,
            },
            &FitOptions::uniform(2, alpha),
            None,
        );
        // linfa's positive class is the more frequent label; compare probabilities of `true`.
        let probs = lin.predict_probabilities(ds.records());
        let true_is_positive = lin.labels().pos.class;
        let mut max_diff: f64 = 0.0;
        for (i, xi) in x.iter().enumerate() {
            let p_lin = if true_is_positive {
                probs[i]
            } else {
                1.0 - probs[i]
            };
            let p_ours = sigmoid(dot(xi, &ours.weights) + ours.intercept);
            max_diff = max_diff.max((p_lin - p_ours).abs());
        }
        assert!(max_diff < 1e-3, "max probability difference {max_diff}");
    }
}
