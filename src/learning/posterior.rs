//! An online Bayesian logistic regression with a diagonal Gaussian posterior, updated one
//! answer at a time by the Laplace approximation (Chapelle and Li, "An Empirical Evaluation
//! of Thompson Sampling", NIPS 2011, Algorithm 3: the posterior mean is the MAP weight under
//! the previous posterior as prior, each precision grows by `sum x_i^2 p (1 - p)`).
//!
//! It learns a correction to a prior model's logit: `logit P(positive) = offset + w · z`, the
//! offset being the trained model's logit for the action and `z` the learning features
//! ([`super::features`]). Before any answer `w` is 0 with the configured prior spread, so an
//! offer is scored as the trained model scores it, with an uncertainty.

use serde::{Deserialize, Serialize};

/// Newton steps per answer: the MAP of one more logistic term under a Gaussian prior is
/// reached to 1e-9 in logit within eight (a test checks).
const NEWTON_STEPS: usize = 8;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Posterior {
    /// Posterior means.
    pub mean: Vec<f64>,
    /// Posterior precisions (1 / variance), each > 0.
    pub precision: Vec<f64>,
    /// Answers learned from, and how many were positive.
    pub answers: u64,
    pub positives: u64,
}

impl Posterior {
    /// The prior: mean 0, standard deviation `sd[i]` for weight `i`.
    pub fn prior(sd: &[f64]) -> Self {
        Self {
            mean: vec![0.0; sd.len()],
            precision: sd.iter().map(|s| 1.0 / (s * s).max(1e-12)).collect(),
            answers: 0,
            positives: 0,
        }
    }

    pub fn width(&self) -> usize {
        self.mean.len()
    }

    /// The correction's mean and variance for features `z` (given as the indexes and values
    /// of its non-zero entries).
    pub fn predict(&self, z: &[(usize, f64)]) -> (f64, f64) {
        let mut mean = 0.0;
        let mut var = 0.0;
        for &(i, v) in z {
            mean += self.mean[i] * v;
            var += v * v / self.precision[i];
        }
        (mean, var)
    }

    /// Learns one answer: `positive` for features `z` at prior logit `offset`.
    pub fn update(&mut self, z: &[(usize, f64)], offset: f64, positive: bool) {
        let y = if positive { 1.0 } else { 0.0 };
        let prior_mean: Vec<f64> = z.iter().map(|&(i, _)| self.mean[i]).collect();
        let mut w = prior_mean.clone();
        for _ in 0..NEWTON_STEPS {
            let logit = offset + z.iter().zip(&w).map(|(&(_, v), w)| w * v).sum::<f64>();
            let p = sigmoid(logit);
            let h = p * (1.0 - p);
            // One Newton step on the diagonal of the Hessian, for every weight at once.
            for (k, &(i, v)) in z.iter().enumerate() {
                let q = self.precision[i];
                let grad = q * (w[k] - prior_mean[k]) + (p - y) * v;
                let hess = q + h * v * v;
                w[k] -= grad / hess;
            }
        }
        let logit = offset + z.iter().zip(&w).map(|(&(_, v), w)| w * v).sum::<f64>();
        let p = sigmoid(logit);
        for (k, &(i, v)) in z.iter().enumerate() {
            self.mean[i] = w[k];
            self.precision[i] += p * (1.0 - p) * v * v;
        }
        self.answers += 1;
        self.positives += u64::from(positive);
    }
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// One answer's MAP under a Gaussian prior, found by bisection on the derivative of the
    /// one-dimensional objective (the reference), matches the Newton steps.
    #[test]
    fn one_answer_moves_the_mean_to_the_map() {
        for (offset, positive, sd) in [(-2.0, true, 0.5), (1.0, false, 1.0), (-4.0, true, 2.0)] {
            let mut p = Posterior::prior(&[sd]);
            p.update(&[(0, 1.0)], offset, positive);
            let y = f64::from(u8::from(positive));
            let q = 1.0 / (sd * sd);
            let derivative = |w: f64| q * w + (sigmoid(offset + w) - y);
            let (mut lo, mut hi) = (-20.0, 20.0);
            for _ in 0..200 {
                let mid = (lo + hi) / 2.0;
                if derivative(mid) > 0.0 {
                    hi = mid
                } else {
                    lo = mid
                }
            }
            assert!((p.mean[0] - lo).abs() < 1e-9, "{} vs {lo}", p.mean[0]);
            let s = sigmoid(offset + lo);
            assert!((p.precision[0] - (q + s * (1.0 - s))).abs() < 1e-9);
        }
    }

    /// Fed answers drawn from a known logistic model (an offer that appeals to one group and
    /// not another), the posterior means find its weights, over several seeds.
    #[test]
    fn learns_who_an_offer_suits() {
        let truth = [-3.0, 2.0, -1.0]; // bias, young renter, older homeowner
        for seed in 0..4 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut p = Posterior::prior(&[1.5, 1.5, 1.5]);
            for _ in 0..20_000 {
                let group = rng.random_range(0..2);
                let z = [(0, 1.0), (1 + group, 1.0)];
                let logit = truth[0] + truth[1 + group];
                let positive = rng.random_bool(sigmoid(logit));
                p.update(&z, 0.0, positive);
            }
            for g in 0..2 {
                let (m, v) = p.predict(&[(0, 1.0), (1 + g, 1.0)]);
                let want = truth[0] + truth[1 + g];
                // The group's logit within 0.15, and the posterior not overconfident by much.
                assert!(
                    (m - want).abs() < 0.15,
                    "seed {seed} group {g}: {m} vs {want}"
                );
                assert!(v.sqrt() < 0.15, "seed {seed}: sd {}", v.sqrt());
            }
        }
    }
}
