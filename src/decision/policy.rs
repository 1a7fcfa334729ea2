//! How one action is chosen among the scored candidates of a rank, and with what
//! probability: the [`Policy`] seam. Arbitration asks the policy at each rank of the slate;
//! the log records, for every decision, the probability of each candidate at rank 1 and of
//! each action at its rank, so that another policy can be evaluated off-line on the same
//! decisions (`touchpoint evaluate`).
//!
//! [`EpsilonGreedy`] is the first: the best candidate with probability 1 - epsilon,
//! otherwise one drawn uniformly (the best included).

use std::sync::Arc;

use rand::Rng;
use rand::rngs::StdRng;

/// What a policy sees of a candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arm {
    /// The arbitration score: propensity x value x context weight x lever.
    pub priority: f64,
    /// The predicted probability of a positive answer.
    pub propensity: f64,
}

/// One choice at a rank.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// Index into the arms offered.
    pub index: usize,
    /// The probability with which the policy chose it.
    pub probability: f64,
    /// Whether it is the arm of the highest priority (the choice without exploration).
    pub greedy: bool,
}

pub trait Policy: Send + Sync + std::fmt::Debug {
    /// Chooses one of `arms` (never empty), drawing from `rng` (seeded per decision).
    fn choose(&self, arms: &[Arm], rng: &mut StdRng) -> Choice;

    /// The probability with which each arm would be chosen (`out[i]` for `arms[i]`); they
    /// sum to 1 over a non-empty list.
    fn probabilities(&self, arms: &[Arm], out: &mut Vec<f64>);

    /// The policy as the decision log records it: a JSON object with its `kind` and its
    /// parameters, made once (every decision's record shares it).
    fn record(&self) -> Arc<str>;

    /// The `exploration` part of an action's explanation.
    fn explain(&self, choice: &Choice) -> serde_json::Value;
}

/// The index of the arm of the highest priority (the last of equals).
pub fn greedy(arms: &[Arm]) -> Option<usize> {
    arms.iter()
        .enumerate()
        .max_by(|a, b| a.1.priority.total_cmp(&b.1.priority))
        .map(|(i, _)| i)
}

/// The best arm with probability 1 - epsilon, otherwise one drawn uniformly (the best
/// included): the best is chosen with probability 1 - epsilon + epsilon / n, every other one
/// with epsilon / n.
#[derive(Debug, Clone)]
pub struct EpsilonGreedy {
    epsilon: f64,
    record: Arc<str>,
}

impl EpsilonGreedy {
    pub const KIND: &'static str = "epsilon_greedy";

    /// `epsilon` in [0, 1] (the settings check it).
    pub fn new(epsilon: f64) -> Self {
        let epsilon_json = serde_json::to_string(&epsilon).expect("a number serialises");
        let record = format!(r#"{{"kind":"{}","epsilon":{epsilon_json}}}"#, Self::KIND);
        Self {
            epsilon,
            record: record.into(),
        }
    }

    fn probability(&self, n: usize, greedy: bool) -> f64 {
        self.epsilon / n as f64 + if greedy { 1.0 - self.epsilon } else { 0.0 }
    }
}

impl Policy for EpsilonGreedy {
    fn choose(&self, arms: &[Arm], rng: &mut StdRng) -> Choice {
        let best = greedy(arms).unwrap_or(0);
        let index = if self.epsilon > 0.0 && rng.random_bool(self.epsilon) {
            rng.random_range(0..arms.len())
        } else {
            best
        };
        Choice {
            index,
            probability: self.probability(arms.len(), index == best),
            greedy: index == best,
        }
    }

    fn probabilities(&self, arms: &[Arm], out: &mut Vec<f64>) {
        let best = greedy(arms);
        out.clear();
        out.extend((0..arms.len()).map(|i| self.probability(arms.len(), Some(i) == best)));
    }

    fn record(&self) -> Arc<str> {
        self.record.clone()
    }

    fn explain(&self, choice: &Choice) -> serde_json::Value {
        serde_json::json!({
            "policy": Self::KIND,
            "epsilon": self.epsilon,
            "greedy_choice": choice.greedy,
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn arms(priorities: &[f64]) -> Vec<Arm> {
        priorities
            .iter()
            .map(|&priority| Arm {
                priority,
                propensity: 0.1,
            })
            .collect()
    }

    /// The logged probabilities are the frequencies of the choices it makes.
    #[test]
    fn epsilon_greedy_chooses_as_often_as_it_says() {
        let policy = EpsilonGreedy::new(0.3);
        let arms = arms(&[1.0, 3.0, 2.0, 0.5]);
        let mut said = Vec::new();
        policy.probabilities(&arms, &mut said);
        assert!((said.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((said[1] - (0.7 + 0.3 / 4.0)).abs() < 1e-12);
        let mut rng = StdRng::seed_from_u64(7);
        let draws = 200_000;
        let mut seen = [0usize; 4];
        for _ in 0..draws {
            let c = policy.choose(&arms, &mut rng);
            assert_eq!(c.probability, said[c.index]);
            assert_eq!(c.greedy, c.index == 1);
            seen[c.index] += 1;
        }
        for (i, &n) in seen.iter().enumerate() {
            let p = said[i];
            // Within 5 standard errors of the binomial count.
            let sd = (draws as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (n as f64 - draws as f64 * p).abs() < 5.0 * sd,
                "arm {i}: {n}"
            );
        }
    }

    #[test]
    fn without_exploration_the_best_is_always_chosen() {
        let policy = EpsilonGreedy::new(0.0);
        let mut rng = StdRng::seed_from_u64(1);
        let c = policy.choose(&arms(&[1.0, 3.0, 2.0]), &mut rng);
        assert_eq!((c.index, c.probability, c.greedy), (1, 1.0, true));
        assert_eq!(
            &*policy.record(),
            r#"{"kind":"epsilon_greedy","epsilon":0.0}"#
        );
    }
}
