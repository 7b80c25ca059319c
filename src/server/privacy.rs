//! Server-side DP-FedAvg (McMahan et al. 2018): Gaussian noise on the aggregate, and the
//! privacy spent, accounted in Rényi differential privacy (Mironov 2017).
//!
//! The mechanism: every update is clipped to a *fixed* bound C (an adaptive bound computed
//! from the data would leak), weighted equally, and averaged over the n updates of the
//! aggregate, so replacing one client's update moves the mean by at most C/n (its L2
//! sensitivity; each token has one slot, so a client is in an aggregate at most once, and
//! the staleness discount only shrinks a delta). Noise N(0, σ²) with σ = z·C/n is added to
//! every coordinate: a Gaussian mechanism with noise multiplier z, whose RDP at order α is
//! α/(2z²). Aggregations compose by adding their RDP. Updates arrive asynchronously, not by a
//! sampling the server controls, so no subsampling amplification is claimed: every client is
//! assumed to take part in every aggregation (the worst case). ε at δ is the standard
//! conversion ε = min over α of RDP(α) + ln(1/δ)/(α − 1), over [`ORDERS`].

/// The Rényi orders α the accountant minimises over.
pub const ORDERS: &[f64] = &[
    1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 14.0,
    16.0, 20.0, 24.0, 28.0, 32.0, 48.0, 64.0, 128.0, 256.0,
];

/// δ of the reported (ε, δ) unless `--dp-delta` says otherwise.
pub const DEFAULT_DELTA: f64 = 1e-5;

/// RDP at order `alpha` of one Gaussian mechanism with noise multiplier `z`.
pub fn gaussian_rdp(z: f64, alpha: f64) -> f64 {
    alpha / (2.0 * z * z)
}

/// ε at `delta` from an RDP curve, and the order that attains it.
pub fn epsilon(rdp: impl Fn(f64) -> f64, delta: f64) -> (f64, f64) {
    let log_inv_delta = (1.0 / delta).ln();
    ORDERS
        .iter()
        .map(|&a| (rdp(a) + log_inv_delta / (a - 1.0), a))
        .fold((f64::INFINITY, ORDERS[0]), |best, e| {
            if e.0 < best.0 { e } else { best }
        })
}

/// What the noised aggregations so far have spent: their count and Σ 1/z² (enough for the
/// RDP of their composition, Σ α/(2z²)).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spent {
    pub aggregations: u64,
    pub sum_inv_z2: f64,
}

impl Spent {
    pub fn add(&mut self, z: f64) {
        self.aggregations += 1;
        self.sum_inv_z2 += 1.0 / (z * z);
    }

    /// ε at `delta` of everything spent (0 when nothing was noised).
    pub fn epsilon(&self, delta: f64) -> f64 {
        if self.aggregations == 0 {
            return 0.0;
        }
        epsilon(|a| a / 2.0 * self.sum_inv_z2, delta).0
    }
}

/// The noise for one aggregate of `n` updates clipped to `clip`: `dim` draws of
/// N(0, (z·clip/n)²).
pub fn noise(dim: usize, z: f64, clip: f64, n: usize) -> Vec<f64> {
    let std = z * clip / n.max(1) as f64;
    let mut out = Vec::with_capacity(dim + 1);
    while out.len() < dim {
        let (a, b) = standard_normal_pair();
        out.push(a * std);
        out.push(b * std);
    }
    out.truncate(dim);
    out
}

/// A uniform number in (0, 1) from the operating system's CSPRNG (53 random bits).
fn uniform_open() -> f64 {
    loop {
        let u = crate::random::unit();
        if u > 0.0 {
            return u;
        }
    }
}

/// Two independent N(0, 1) draws (Box–Muller).
fn standard_normal_pair() -> (f64, f64) {
    let (u1, u2) = (uniform_open(), uniform_open());
    let r = (-2.0 * u1.ln()).sqrt();
    let t = std::f64::consts::TAU * u2;
    (r * t.cos(), r * t.sin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_gaussian_with_sigma_one() {
        // RDP ε(α) = α/(2σ²) = α/2. Over the orders, ε = min α/2 + ln(1e5)/(α − 1) is reached
        // at α = 6: 3 + ln(1e5)/5 = 5.3026; the minimum over all real α > 1 is
        // α* = 1 + sqrt(2 ln(1e5)) = 5.7985, ε* = 5.2985, so the grid costs < 0.01.
        assert_eq!(gaussian_rdp(1.0, 4.0), 2.0);
        let (eps, alpha) = epsilon(|a| gaussian_rdp(1.0, a), 1e-5);
        assert_eq!(alpha, 6.0);
        assert!((eps - (3.0 + (1e5f64).ln() / 5.0)).abs() < 1e-12, "{eps}");
        assert!((eps - 5.3026).abs() < 1e-4, "{eps}");
        let l = (1e5f64).ln();
        let a = 1.0 + (2.0 * l).sqrt();
        let continuous = a / 2.0 + l / (a - 1.0);
        assert!((continuous - 5.2985).abs() < 1e-4);
        assert!(eps >= continuous && eps - continuous < 0.01);
    }

    #[test]
    fn composition_adds_rdp() {
        // 100 mechanisms with z = 10 compose to the RDP of one with z = 1.
        let mut s = Spent::default();
        for _ in 0..100 {
            s.add(10.0);
        }
        assert!((s.sum_inv_z2 - 1.0).abs() < 1e-12);
        let one = epsilon(|a| gaussian_rdp(1.0, a), 1e-5).0;
        assert!((s.epsilon(1e-5) - one).abs() < 1e-9);
        assert_eq!(Spent::default().epsilon(1e-5), 0.0);
        // More noise, less ε; a looser δ, less ε.
        let mut t = Spent::default();
        t.add(3.0);
        assert!(t.epsilon(1e-5) < one);
        assert!(t.epsilon(1e-3) < t.epsilon(1e-5));
        // z = 3, one aggregation, δ = 1e-5: α/18 + 11.513/(α − 1), best on the grid at α = 16:
        // 0.8889 + 0.7675 = 1.6564.
        assert!((t.epsilon(1e-5) - (16.0 / 18.0 + (1e5f64).ln() / 15.0)).abs() < 1e-12);
    }

    #[test]
    fn noise_has_the_asked_variance() {
        let (z, clip, n) = (1.5, 0.4, 3);
        let std = z * clip / n as f64;
        let draws = noise(20_000, z, clip, n);
        assert_eq!(draws.len(), 20_000);
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!(
            mean.abs() < 4.0 * std / (draws.len() as f64).sqrt(),
            "{mean}"
        );
        // The sample variance of 20,000 normals is within ±4% of σ² with overwhelming odds.
        assert!(
            (var / (std * std) - 1.0).abs() < 0.04,
            "{var} vs {}",
            std * std
        );
    }
}
