//! The send-time model: how likely an answer is by local hour of week for one customer.
//!
//! A customer's own engagement by hour of week is sparse, so it is smoothed over neighbouring
//! hours, pooled in part or in whole with the same hour of the other days of the week (most
//! people keep their hours from one day to the next: a share `ω` of each touch is spread over
//! the seven days at its hour; 1 on the shipped data), and shrunk toward their segment's profile and everyone's, each with a
//! weight in pseudo-touches; smoothing, `ω` and the weights are chosen by the likelihood of
//! held-out touches. A new customer gets the segment's and everyone's hours, a customer with
//! hundreds of touches mostly their own.
//! `own_h = (1 - ω)·smooth(n)_h + ω·smooth(n)_{day(h)}/7` (the second summed over the days at
//! the hour of day of `h`), `q_h = (own_h + α·segment_h + β·global_h) / (N + α + β)`.
//! The answer rate's sensitivity to `q` (`κ`, learned from contacts) turns it into a lift on
//! the response probability: `lift_h = (168·q_h)^κ`, normalised to average 1 over the week.

use serde::{Deserialize, Serialize};

use crate::time::HOURS_PER_WEEK;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendTimeModel {
    /// Everyone's touches by local hour of week, as probabilities.
    pub global: Vec<f64>,
    /// Each segment's, by segment index of the segment model.
    pub segments: Vec<Vec<f64>>,
    /// α: how many touches the segment profile counts for.
    pub segment_weight: f64,
    /// β: how many touches everyone's profile counts for.
    pub global_weight: f64,
    /// Share of a touch given to each neighbouring hour.
    pub smoothing: f64,
    /// ω: share of a touch spread evenly over the same hour of the seven days of the week
    /// (0 in a model file from before it was learned).
    #[serde(default)]
    pub daily_pooling: f64,
    /// κ: change of the answer logit per unit of ln(168·q).
    pub time_sensitivity: f64,
}

/// A customer's distribution of answers over the 168 local hours of the week.
pub type WeekProfile = [f64; HOURS_PER_WEEK];

impl SendTimeModel {
    pub fn check(&self, segments: Option<usize>) -> Result<(), String> {
        let ok = |v: &Vec<f64>| {
            v.len() == HOURS_PER_WEEK && v.iter().all(|x| x.is_finite() && *x >= 0.0)
        };
        if !ok(&self.global) || !self.segments.iter().all(ok) {
            return Err("the send-time model needs 168 non-negative numbers per profile".into());
        }
        if let Some(n) = segments
            && !self.segments.is_empty()
            && self.segments.len() != n
        {
            return Err(format!(
                "the send-time model has {} segment profiles, the segment model {n} segments",
                self.segments.len()
            ));
        }
        if !(0.0..=0.5).contains(&self.smoothing)
            || !(0.0..=1.0).contains(&self.daily_pooling)
            || self.segment_weight < 0.0
            || self.global_weight <= 0.0
            || !self.time_sensitivity.is_finite()
        {
            return Err("the send-time model's weights are out of range".into());
        }
        Ok(())
    }

    /// The segment profile a customer's hours are shrunk toward, and its weight α.
    fn segment_prior(&self, segment: Option<usize>) -> (Option<&Vec<f64>>, f64) {
        match segment.and_then(|i| self.segments.get(i)) {
            Some(p) => (Some(p), self.segment_weight),
            None => (None, 0.0),
        }
    }

    /// The customer's answer distribution over local hours of week.
    pub fn distribution(&self, engagement: &[u32], segment: Option<usize>) -> WeekProfile {
        let (mut q, total) = self.own(engagement);
        let (seg, alpha) = self.segment_prior(segment);
        for h in 0..HOURS_PER_WEEK {
            q[h] += alpha * seg.map_or(0.0, |p| p[h]) + self.global_weight * self.global[h];
        }
        let norm = total + alpha + self.global_weight;
        for x in &mut q {
            *x /= norm;
        }
        q
    }

    /// The customer's own part of [`Self::distribution`] before the priors and the
    /// normalisation: their touches smoothed and pooled over the days (`own_h`), and how
    /// many there are (`N`).
    pub fn own(&self, engagement: &[u32]) -> (WeekProfile, f64) {
        let mut q = [0.0; HOURS_PER_WEEK];
        let mut total = 0.0;
        if engagement.len() == HOURS_PER_WEEK {
            let s = self.smoothing;
            for h in 0..HOURS_PER_WEEK {
                let n = engagement[h] as f64;
                if n == 0.0 {
                    continue;
                }
                total += n;
                q[h] += n * (1.0 - 2.0 * s);
                q[(h + 1) % HOURS_PER_WEEK] += n * s;
                q[(h + HOURS_PER_WEEK - 1) % HOURS_PER_WEEK] += n * s;
            }
            let omega = self.daily_pooling;
            if omega > 0.0 && total > 0.0 {
                let mut daily = [0.0; 24];
                for (h, x) in q.iter().enumerate() {
                    daily[h % 24] += x;
                }
                for (h, x) in q.iter_mut().enumerate() {
                    *x = (1.0 - omega) * *x + omega * daily[h % 24] / 7.0;
                }
            }
        }
        (q, total)
    }

    /// Lift of the answer probability at each hour, averaging 1 over the week, for the
    /// distribution `q` that [`Self::distribution`] gave for `engagement` and `segment`.
    ///
    /// `(168·q_h)^κ` for 168 hours is the costliest part of scoring a customer (a `powf`
    /// each). Where the customer has no touch in or next to an hour, `q_h` is the prior's
    /// share alone, `prior_h / N` with `N` the customer's touches plus the prior weights,
    /// so its power is `(168·prior_h)^κ · N^-κ`: the first factor is the model's
    /// ([`PriorPowers`], made when a model set is loaded), and a customer's hours then cost
    /// one `powf` plus one per touched hour.
    pub fn lifts(
        &self,
        q: &WeekProfile,
        engagement: &[u32],
        segment: Option<usize>,
        powers: &PriorPowers,
    ) -> WeekProfile {
        // Single precision is ample for a lift and several times faster than f64 powf on
        // the decision path.
        let kappa = self.time_sensitivity as f32;
        let (_, alpha) = self.segment_prior(segment);
        let touched = engagement.len() == HOURS_PER_WEEK;
        let total: f64 = if touched {
            engagement.iter().map(|&n| n as f64).sum()
        } else {
            0.0
        };
        let scale = ((total + alpha + self.global_weight) as f32).powf(-kappa);
        // Powers made from another model may lack the table: every hour is then computed.
        let prior = powers.0.get(match segment {
            Some(i) if i < self.segments.len() => i + 1,
            _ => 0,
        });
        // Hours with a touch in or (when smoothed) next to them, and with daily pooling at
        // those hours of every day: one pass over the touches.
        let mut own = [false; HOURS_PER_WEEK];
        if touched {
            let spread = self.smoothing > 0.0;
            let pooled = self.daily_pooling > 0.0;
            for (h, _) in engagement.iter().enumerate().filter(|(_, n)| **n > 0) {
                for k in [h, h + 1, h + HOURS_PER_WEEK - 1] {
                    if k != h && !spread {
                        continue;
                    }
                    let k = k % HOURS_PER_WEEK;
                    if pooled {
                        for day in 0..7 {
                            own[day * 24 + k % 24] = true;
                        }
                    } else {
                        own[k] = true;
                    }
                }
            }
        }
        let mut l = [0.0; HOURS_PER_WEEK];
        let mut sum = 0.0;
        for h in 0..HOURS_PER_WEEK {
            let own = own[h];
            let raw = match prior.map(|p| p[h]) {
                Some(p) if !own && !p.is_nan() => p * scale,
                _ => ((HOURS_PER_WEEK as f64 * q[h]).max(1e-9) as f32).powf(kappa),
            };
            l[h] = raw as f64;
            sum += l[h];
        }
        let mean = sum / HOURS_PER_WEEK as f64;
        for x in &mut l {
            *x /= mean;
        }
        l
    }

    /// The model's factor of [`Self::lifts`]: `(168·prior_h)^κ` for everyone's prior and for
    /// each segment's (NaN where the prior is 0: that hour's power depends on the floor
    /// `lifts` puts under `168·q`).
    pub fn prior_powers(&self) -> PriorPowers {
        let kappa = self.time_sensitivity as f32;
        let table = |segment: Option<usize>| {
            let (seg, alpha) = self.segment_prior(segment);
            std::array::from_fn(|h| {
                let prior = alpha * seg.map_or(0.0, |p| p[h]) + self.global_weight * self.global[h];
                if prior > 0.0 {
                    ((HOURS_PER_WEEK as f64 * prior) as f32).powf(kappa)
                } else {
                    f32::NAN
                }
            })
        };
        PriorPowers(
            std::iter::once(table(None))
                .chain((0..self.segments.len()).map(|i| table(Some(i))))
                .collect(),
        )
    }
}

/// See [`SendTimeModel::prior_powers`]; belongs to the model it was made from.
#[derive(Debug, Clone)]
pub struct PriorPowers(Vec<[f32; HOURS_PER_WEEK]>);

/// Hours of week ordered best first.
pub fn ranked_hours(q: &WeekProfile) -> Vec<usize> {
    let mut hours: Vec<usize> = (0..HOURS_PER_WEEK).collect();
    hours.sort_by(|&a, &b| q[b].total_cmp(&q[a]).then(a.cmp(&b)));
    hours
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> SendTimeModel {
        SendTimeModel {
            global: vec![1.0 / 168.0; 168],
            segments: vec![],
            segment_weight: 0.0,
            global_weight: 10.0,
            smoothing: 0.25,
            daily_pooling: 0.0,
            time_sensitivity: 0.5,
        }
    }

    #[test]
    fn a_customer_with_no_touches_gets_everyones_hours_and_many_touches_their_own() {
        let m = model();
        let q = m.distribution(&[], None);
        assert!((q.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!((q[5] - 1.0 / 168.0).abs() < 1e-12);
        let mut e = vec![0u32; 168];
        e[40] = 200;
        let q = m.distribution(&e, None);
        assert!((q.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(ranked_hours(&q)[0], 40);
        assert!(q[40] > 0.4 && q[41] > q[42]);
        let lifts = m.lifts(&q, &e, None, &m.prior_powers());
        assert!((lifts.iter().sum::<f64>() / 168.0 - 1.0).abs() < 1e-9);
        assert!(lifts[40] > 1.0 && lifts[100] < 1.0);
    }

    /// Touches on Monday and Tuesday evenings: pooled over the days, Thursday evening is
    /// likelier than Thursday noon, and the touched hours keep most of their weight; not
    /// pooled, Thursday knows nothing of them.
    #[test]
    fn pooling_over_days_carries_a_habit_to_the_other_days() {
        let mut e = vec![0u32; 168];
        e[19] = 6; // Monday 19:00 (hour of week 0 is Monday 00:00)
        e[24 + 19] = 4; // Tuesday 19:00
        let thursday = |h: usize| 3 * 24 + h;
        let apart = model().distribution(&e, None);
        assert!((apart[thursday(19)] - apart[thursday(12)]).abs() < 1e-12);
        let m = SendTimeModel {
            daily_pooling: 0.5,
            ..model()
        };
        let q = m.distribution(&e, None);
        assert!((q.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(q[thursday(19)] > 2.0 * q[thursday(12)]);
        assert!(q[19] > q[thursday(19)] && q[thursday(19)] > apart[thursday(19)]);
        let lifts = m.lifts(&q, &e, None, &m.prior_powers());
        assert!(lifts[thursday(19)] > lifts[thursday(12)]);
    }

    /// The direct `(168·q_h)^κ` for every hour, normalised: what `lifts` computes faster.
    fn direct_lifts(m: &SendTimeModel, q: &WeekProfile) -> WeekProfile {
        let kappa = m.time_sensitivity as f32;
        let raw: Vec<f64> = q
            .iter()
            .map(|&x| ((168.0 * x).max(1e-9) as f32).powf(kappa) as f64)
            .collect();
        let mean = raw.iter().sum::<f64>() / 168.0;
        std::array::from_fn(|h| raw[h] / mean)
    }

    #[test]
    fn lifts_from_the_prior_powers_are_the_direct_ones() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut global: Vec<f64> = (0..168).map(|_| rng.random_range(0.0..1.0)).collect();
        global[3] = 0.0; // an hour nobody is ever touched: the floor applies
        let total: f64 = global.iter().sum();
        global.iter_mut().for_each(|x| *x /= total);
        let segment: Vec<f64> = (0..168)
            .map(|h| if h % 24 == 9 { 1.0 / 7.0 } else { 0.0 })
            .collect();
        for (smoothing, daily_pooling) in [(0.0, 0.0), (0.3, 0.0), (0.0, 0.5), (0.3, 0.8)] {
            let m = SendTimeModel {
                global: global.clone(),
                segments: vec![segment.clone()],
                segment_weight: 5.0,
                global_weight: 30.0,
                smoothing,
                daily_pooling,
                time_sensitivity: 0.574,
            };
            let powers = m.prior_powers();
            let mut sparse = vec![0u32; 168];
            sparse[0] = 3;
            sparse[167] = 1;
            sparse[40] = 12;
            let dense: Vec<u32> = (0..168).map(|_| rng.random_range(0..5)).collect();
            for engagement in [vec![], vec![0; 168], sparse, dense, vec![1; 12]] {
                for seg in [None, Some(0), Some(9)] {
                    let q = m.distribution(&engagement, seg);
                    let fast = m.lifts(&q, &engagement, seg, &powers);
                    let direct = direct_lifts(&m, &q);
                    for h in 0..168 {
                        let err = (fast[h] - direct[h]).abs() / direct[h];
                        assert!(
                            err < 1e-5,
                            "hour {h}: {} vs {} ({seg:?}, {smoothing}, {daily_pooling})",
                            fast[h],
                            direct[h]
                        );
                    }
                }
            }
        }
    }
}
