//! How one action is chosen among the scored candidates of a rank, and with what
//! probability: the [`Policy`] seam. Arbitration asks the policy at each rank of the slate;
//! the log records, for every decision, the probability of each candidate at rank 1 and of
//! each action at its rank, so that another policy can be evaluated off-line on the same
//! decisions (`touchpoint evaluate`).
//!
//! [`EpsilonGreedy`]: the best candidate with probability 1 - epsilon, otherwise one drawn
//! uniformly (the best included).
//!
//! [`Thompson`]: Thompson sampling over the online learner's uncertainty
//! ([`crate::learning`]): each arm's probability is the chance that it is the best when
//! every propensity is drawn from its posterior (the logit's Gaussian, linearised around its
//! mean so that a draw is one multiply-add), estimated by Monte-Carlo draws (seeded by
//! the arms, so the same arms always get the same probabilities), with a floor of
//! `epsilon / n` for every arm and a cap on the share of arms the learner knows little
//! about, each arm's share weighed by how little ([`Arm::unproven`]: 1 for a new offer
//! without answers, down to 0 at `learning.thin_answers`), so that the cap loosens as the
//! answers come instead of lifting at once. The action is then drawn from exactly those probabilities, so the logged
//! probability is the true probability of the choice.

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
    /// How much the priority grows per unit of propensity (margin x value factor x context
    /// weight x lever): what a drawn propensity does to the priority.
    pub slope: f64,
    /// Standard deviation of the propensity's logit (0: known, as far as the policy cares).
    pub spread: f64,
    /// How little the learner knows about it, in [0, 1] (0: known): the arms' shares
    /// weighed by it are capped together.
    pub unproven: f64,
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

    /// [`Policy::choose`] when `probabilities` of these arms are already known (the
    /// slate's first rank, whose probabilities the log records): a policy that draws from
    /// its probabilities need not compute them again.
    fn choose_given(&self, arms: &[Arm], _probabilities: &[f64], rng: &mut StdRng) -> Choice {
        self.choose(arms, rng)
    }

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

/// Thompson sampling with a floor and a cap; see the module's documentation.
#[derive(Debug, Clone)]
pub struct Thompson {
    epsilon: f64,
    draws: usize,
    max_uncertain_share: f64,
    record: Arc<str>,
}

impl Thompson {
    pub const KIND: &'static str = "thompson";

    /// `epsilon` in [0, 1], `max_uncertain_share` in [0, 1], `draws` >= 1 (the settings
    /// check them).
    pub fn new(epsilon: f64, draws: usize, max_uncertain_share: f64) -> Self {
        let record = serde_json::json!({
            "kind": Self::KIND,
            "epsilon": epsilon,
            "draws": draws,
            "max_uncertain_share": max_uncertain_share,
        })
        .to_string();
        Self {
            epsilon,
            draws,
            max_uncertain_share,
            record: record.into(),
        }
    }

    #[cfg(test)]
    /// The arm's priority when its propensity's logit is drawn `z` standard deviations
    /// from its mean, linearised around the mean (the delta method: the propensity moves by
    /// `p (1 - p) spread z`), so that a draw is one multiply-add.
    fn drawn_priority(arm: &Arm, z: f64) -> f64 {
        arm.priority + Self::priority_sd(arm) * z
    }

    /// How much one standard deviation of the drawn logit moves the arm's priority.
    fn priority_sd(arm: &Arm) -> f64 {
        arm.propensity * (1.0 - arm.propensity) * arm.spread * arm.slope
    }
}

impl Policy for Thompson {
    fn choose(&self, arms: &[Arm], rng: &mut StdRng) -> Choice {
        let mut p = Vec::with_capacity(arms.len());
        self.probabilities(arms, &mut p);
        self.choose_given(arms, &p, rng)
    }

    fn choose_given(&self, arms: &[Arm], p: &[f64], rng: &mut StdRng) -> Choice {
        let mut x: f64 = rng.random_range(0.0..1.0);
        let mut index = p.len() - 1;
        for (i, &pi) in p.iter().enumerate() {
            if x < pi {
                index = i;
                break;
            }
            x -= pi;
        }
        let best = greedy(arms).unwrap_or(0);
        Choice {
            index,
            probability: p[index],
            greedy: index == best,
        }
    }

    fn probabilities(&self, arms: &[Arm], out: &mut Vec<f64>) {
        use rand::SeedableRng;
        out.clear();
        out.resize(arms.len(), 0.0);
        let n = arms.len();
        let Some(best) = greedy(arms) else {
            return;
        };
        let sd: Vec<f64> = arms.iter().map(Self::priority_sd).collect();
        // Arms that cannot be the best even three standard deviations up are left out of
        // the draws (they keep the floor).
        let floor = arms
            .iter()
            .zip(&sd)
            .map(|(a, s)| a.priority - 3.0 * s)
            .fold(f64::NEG_INFINITY, f64::max);
        let contenders: Vec<usize> = (0..n)
            .filter(|&i| i == best || arms[i].priority + 3.0 * sd[i] >= floor)
            .collect();
        if contenders.len() == 1 || contenders.iter().all(|&i| arms[i].spread == 0.0) {
            out[best] = 1.0;
        } else {
            let mut seed = 0u64;
            for a in arms {
                seed =
                    seed.rotate_left(7) ^ a.priority.to_bits() ^ a.spread.to_bits().rotate_left(13);
            }
            // A small fast generator (xoshiro): the draws need speed, not secrecy.
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let normal = rand_distr::StandardNormal;
            let share = 1.0 / self.draws as f64;
            for _ in 0..self.draws {
                let mut top = (best, f64::NEG_INFINITY);
                for &i in &contenders {
                    let z: f64 = rand_distr::Distribution::sample(&normal, &mut rng);
                    let v = arms[i].priority + sd[i] * z;
                    if v > top.1 {
                        top = (i, v);
                    }
                }
                out[top.0] += share;
            }
        }
        // The cap on what the learner knows little about, each arm's share weighed by how
        // little (so that it loosens as answers come): the arms it knows little about are
        // scaled down together and the rest goes to the best known arm.
        let weighed: f64 = (0..n).map(|i| out[i] * arms[i].unproven).sum();
        if weighed > self.max_uncertain_share {
            let scale = self.max_uncertain_share / weighed;
            let target = (0..n)
                .filter(|&i| arms[i].unproven == 0.0)
                .max_by(|&a, &b| arms[a].priority.total_cmp(&arms[b].priority));
            if let Some(target) = target {
                let mut freed = 0.0;
                for i in 0..n {
                    if arms[i].unproven > 0.0 {
                        freed += out[i] * (1.0 - scale);
                        out[i] *= scale;
                    }
                }
                out[target] += freed;
            }
        }
        for v in out.iter_mut() {
            *v = (1.0 - self.epsilon) * *v + self.epsilon / n as f64;
        }
    }

    fn record(&self) -> Arc<str> {
        self.record.clone()
    }

    fn explain(&self, choice: &Choice) -> serde_json::Value {
        serde_json::json!({
            "policy": Self::KIND,
            "epsilon": self.epsilon,
            "probability": choice.probability,
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
                slope: priority / 0.1,
                spread: 0.0,
                unproven: 0.0,
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
        chooses_as_often_as_said(&policy, &arms, &said, 7, 200_000, Some(1));
    }

    /// Each choice reports the probability `said` gives it, and over `draws` choices each
    /// arm is chosen within 5 standard errors of its binomial count.
    fn chooses_as_often_as_said(
        policy: &dyn Policy,
        arms: &[Arm],
        said: &[f64],
        seed: u64,
        draws: usize,
        greedy: Option<usize>,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut seen = vec![0usize; arms.len()];
        for _ in 0..draws {
            let c = policy.choose(arms, &mut rng);
            assert_eq!(c.probability, said[c.index]);
            if let Some(g) = greedy {
                assert_eq!(c.greedy, c.index == g);
            }
            seen[c.index] += 1;
        }
        for (i, &n) in seen.iter().enumerate() {
            let p = said[i];
            let sd = (draws as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (n as f64 - draws as f64 * p).abs() < 5.0 * sd,
                "arm {i}: {n} vs {p}"
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

    fn uncertain_arms() -> Vec<Arm> {
        // A known best, a close rival, an uncertain newcomer and a hopeless one.
        [
            (0.05, 0.3, false),
            (0.045, 0.3, false),
            (0.03, 1.0, true),
            (0.001, 0.1, false),
        ]
        .iter()
        .map(|&(p, spread, uncertain)| Arm {
            priority: p * 10.0,
            propensity: p,
            slope: 10.0,
            spread,
            unproven: if uncertain { 1.0 } else { 0.0 },
        })
        .collect()
    }

    /// The logged probability of each arm is how often Thompson chooses it, and the floor
    /// and cap hold.
    #[test]
    fn thompson_chooses_as_often_as_it_says() {
        let policy = Thompson::new(0.04, 64, 0.1);
        let arms = uncertain_arms();
        let mut said = Vec::new();
        policy.probabilities(&arms, &mut said);
        assert!((said.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(said.iter().all(|&p| p >= 0.01 - 1e-12), "{said:?}");
        assert!(said[2] <= 0.96 * 0.1 + 0.01 + 1e-12, "capped: {said:?}");
        assert!(said[1] > 0.05 && said[0] > said[1], "{said:?}");
        chooses_as_often_as_said(&policy, &arms, &said, 3, 100_000, Some(0));
    }

    /// The cap weighs each arm by how little the learner knows of it: a newcomer half-way
    /// to known may take twice the share of one without answers, and the share taken from
    /// it goes to the best known arm.
    #[test]
    fn the_cap_loosens_as_an_arm_becomes_known() {
        let policy = Thompson::new(0.0, 4096, 0.1);
        let mut arms = uncertain_arms();
        // The newcomer looks as good as the best, so it would be drawn half the time.
        arms[2].priority = arms[0].priority;
        arms[2].propensity = arms[0].propensity;
        let mut share = Vec::new();
        for unproven in [1.0, 0.5, 0.0] {
            arms[2].unproven = unproven;
            let mut said = Vec::new();
            policy.probabilities(&arms, &mut said);
            assert!((said.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{said:?}");
            share.push(said[2]);
        }
        assert!((share[0] - 0.1).abs() < 1e-12, "{share:?}");
        assert!((share[1] - 0.2).abs() < 1e-12, "{share:?}");
        assert!(share[2] > 0.3, "known, it is not capped: {share:?}");
    }

    /// With enough draws the Monte-Carlo probabilities approach the exact Thompson
    /// probability: for two arms with Gaussian priorities it has a closed form,
    /// P(A > B) = Phi((mu_a - mu_b) / sqrt(s_a^2 + s_b^2)); here the draws are on the logit,
    /// so the reference is a direct count over a million independent draws.
    #[test]
    fn thompson_probabilities_match_a_long_count() {
        let arms = &uncertain_arms()[..2];
        let policy = Thompson::new(0.0, 4096, 1.0);
        let mut said = Vec::new();
        policy.probabilities(arms, &mut said);
        let mut rng = StdRng::seed_from_u64(11);
        let normal = rand_distr::StandardNormal;
        let n = 1_000_000;
        let mut first = 0;
        for _ in 0..n {
            let za: f64 = rand_distr::Distribution::sample(&normal, &mut rng);
            let zb: f64 = rand_distr::Distribution::sample(&normal, &mut rng);
            if Thompson::drawn_priority(&arms[0], za) > Thompson::drawn_priority(&arms[1], zb) {
                first += 1;
            }
        }
        let want = first as f64 / n as f64;
        // 4096 draws: a standard error of at most 0.008.
        assert!((said[0] - want).abs() < 0.03, "{} vs {want}", said[0]);
    }
}
