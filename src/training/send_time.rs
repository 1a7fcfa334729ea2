//! Fitting the send-time model: everyone's and each segment's hours from the engagement
//! histograms, the shrinkage weights, smoothing and pooling over the days of the week by
//! held-out likelihood of the touches that followed (a grid), and the time sensitivity from
//! contacts.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::Serialize;

use super::dataset::Example;
use crate::model::send_time::{SendTimeModel, ranked_hours};
use crate::time::HOURS_PER_WEEK;

const SMOOTHING: [f64; 5] = [0.0, 0.1, 0.2, 0.3, 0.4];
const DAILY_POOLING: [f64; 6] = [0.0, 0.25, 0.5, 0.75, 0.9, 1.0];
const SEGMENT_WEIGHTS: [f64; 6] = [0.0, 1.0, 3.0, 10.0, 30.0, 100.0];
const GLOBAL_WEIGHTS: [f64; 6] = [0.3, 1.0, 3.0, 10.0, 30.0, 100.0];

#[derive(Debug, Clone, Serialize)]
pub struct SendTimeMetrics {
    /// Held-out touches scored.
    pub touches: usize,
    /// Mean log-likelihood of the hour of each held-out touch.
    pub log_likelihood: f64,
    /// The same under everyone's hours alone (the "most popular hours" baseline).
    pub baseline_log_likelihood: f64,
    /// Share of held-out touches in the customer's 3 best hours, model vs baseline.
    pub top3_hit_rate: f64,
    pub baseline_top3_hit_rate: f64,
}

fn normalised(counts: &[f64]) -> Vec<f64> {
    let total: f64 = counts.iter().sum();
    counts.iter().map(|c| c / total).collect()
}

/// Everyone's and each segment's hour profiles, with one pseudo-touch per hour so that no
/// hour is impossible.
pub fn profiles(
    engagement: &[&[u32]],
    segment_of: &[Option<usize>],
    segments: usize,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut global = vec![1.0; HOURS_PER_WEEK];
    let mut by_segment = vec![vec![1.0; HOURS_PER_WEEK]; segments];
    for (e, s) in engagement.iter().zip(segment_of) {
        for (h, &n) in e.iter().enumerate() {
            global[h] += n as f64;
            if let Some(s) = s {
                by_segment[*s][h] += n as f64;
            }
        }
    }
    (
        normalised(&global),
        by_segment.iter().map(|v| normalised(v)).collect(),
    )
}

/// Chooses smoothing, pooling over the days and weights by the likelihood of each customer's
/// held-out touches given their engagement before; returns the model (time sensitivity
/// still 0) and its metrics.
pub fn fit_shrinkage(
    global: Vec<f64>,
    segments: Vec<Vec<f64>>,
    engagement: &[&[u32]],
    segment_of: &[Option<usize>],
    touches: &[(u32, u8)],
) -> (SendTimeModel, SendTimeMetrics) {
    let mut by_customer: Vec<Vec<u8>> = vec![Vec::new(); engagement.len()];
    for &(c, h) in touches {
        if let Some(v) = by_customer.get_mut(c as usize) {
            v.push(h);
        }
    }
    let scored: Vec<usize> = (0..engagement.len())
        .filter(|&c| !by_customer[c].is_empty())
        .collect();
    let mut best: Option<(f64, SendTimeModel)> = None;
    let grid = SMOOTHING
        .iter()
        .flat_map(|&s| DAILY_POOLING.iter().map(move |&d| (s, d)));
    let n = scored
        .iter()
        .map(|&c| by_customer[c].len())
        .sum::<usize>()
        .max(1);
    // Per held-out touch, what the weights do not change: the customer's own part at its
    // hour, their touches, the segment's and everyone's share of it. The likelihood of each
    // weighting is then a sum over the touches (the same q as `distribution` gives).
    let mut touch: Vec<(f64, f64, Option<f64>, f64)> = Vec::with_capacity(n);
    for (smoothing, daily_pooling) in grid {
        let mut m = SendTimeModel {
            global: global.clone(),
            segments: segments.clone(),
            segment_weight: 0.0,
            global_weight: 1.0,
            smoothing,
            daily_pooling,
            time_sensitivity: 0.0,
        };
        touch.clear();
        for &c in &scored {
            let (own, total) = m.own(engagement[c]);
            let seg = segment_of[c].and_then(|i| segments.get(i));
            for &h in &by_customer[c] {
                let h = h as usize;
                touch.push((own[h], total, seg.map(|p| p[h]), global[h]));
            }
        }
        for &segment_weight in &SEGMENT_WEIGHTS {
            if segments.is_empty() && segment_weight > 0.0 {
                continue;
            }
            for &global_weight in &GLOBAL_WEIGHTS {
                let ll: f64 = touch
                    .iter()
                    .map(|&(own, total, seg, glob)| {
                        // A customer without a segment profile has no α (`segment_prior`).
                        let (alpha, seg) = seg.map_or((0.0, 0.0), |p| (segment_weight, p));
                        // Summed as `distribution` does.
                        ((own + (alpha * seg + global_weight * glob))
                            / (total + alpha + global_weight))
                            .ln()
                    })
                    .sum::<f64>()
                    / n as f64;
                if best.as_ref().is_none_or(|(b, _)| ll > *b) {
                    m.segment_weight = segment_weight;
                    m.global_weight = global_weight;
                    best = Some((ll, m.clone()));
                }
            }
        }
    }
    let (ll, model) = best.expect("the grid is not empty");
    let mut base_ll = 0.0;
    let mut hits = 0usize;
    let mut base_hits = 0usize;
    let mut n = 0usize;
    let mut base_q = [0.0; HOURS_PER_WEEK];
    base_q.copy_from_slice(&global);
    let base_top: Vec<usize> = ranked_hours(&base_q).into_iter().take(3).collect();
    for &c in &scored {
        let q = model.distribution(engagement[c], segment_of[c]);
        let top: Vec<usize> = ranked_hours(&q).into_iter().take(3).collect();
        for &h in &by_customer[c] {
            let h = h as usize;
            base_ll += global[h].ln();
            hits += top.contains(&h) as usize;
            base_hits += base_top.contains(&h) as usize;
            n += 1;
        }
    }
    let n_f = n.max(1) as f64;
    let metrics = SendTimeMetrics {
        touches: n,
        log_likelihood: ll,
        baseline_log_likelihood: base_ll / n_f,
        top3_hit_rate: hits as f64 / n_f,
        baseline_top3_hit_rate: base_hits as f64 / n_f,
    };
    (model, metrics)
}

/// `ln(168·q)` at a contact's hour, from what the example recorded of the customer's
/// engagement just before it.
pub fn contact_score(model: &SendTimeModel, e: &Example, segment: Option<usize>) -> f64 {
    let h = e.hour_of_week as usize;
    let s = model.smoothing;
    let smooth =
        |[prev, here, next]: [u32; 3]| here as f64 * (1.0 - 2.0 * s) + (prev + next) as f64 * s;
    let w = if e.engagement_total > 0 {
        model.daily_pooling
    } else {
        0.0
    };
    let own = (1.0 - w) * smooth(e.engagement_near) + w * smooth(e.engagement_daily) / 7.0;
    let seg = segment.and_then(|i| model.segments.get(i));
    let alpha = if seg.is_some() {
        model.segment_weight
    } else {
        0.0
    };
    let q = (own + alpha * seg.map_or(0.0, |p| p[h]) + model.global_weight * model.global[h])
        / (e.engagement_total as f64 + alpha + model.global_weight);
    (HOURS_PER_WEEK as f64 * q).max(1e-9).ln()
}

/// κ: the slope of the answer logit in `ln(168·q)` over the given contacts.
pub fn fit_time_sensitivity(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let positives = labels.iter().filter(|&&l| l).count();
    if scores.len() < 100 || positives < 10 || positives == labels.len() {
        return None;
    }
    let x = Array2::from_shape_vec((scores.len(), 1), scores.to_vec()).ok()?;
    let y: Array1<bool> = labels.iter().copied().collect();
    let fitted = LogisticRegression::default()
        .alpha(1.0)
        .max_iterations(100)
        .fit(&Dataset::new(x, y))
        .ok()?;
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    Some((sign * fitted.params()[0]).clamp(0.0, 3.0))
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    /// The fit scores each weighting from per-touch sums; the held-out likelihood it reports
    /// and chooses by is the one `distribution` gives, and no point of the grid scored through
    /// `distribution` does better.
    #[test]
    fn the_fit_chooses_by_the_likelihood_distribution_gives() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let customers = 60;
        let engagement: Vec<Vec<u32>> = (0..customers)
            .map(|c| {
                let peak = (c * 5) % 24;
                (0..HOURS_PER_WEEK)
                    .map(|h| {
                        let near = (h % 24).abs_diff(peak) <= 1;
                        rng.random_range(0..if near { 4 } else { 2 })
                            * u32::from(rng.random_bool(0.2))
                    })
                    .collect()
            })
            .collect();
        let refs: Vec<&[u32]> = engagement.iter().map(|e| e.as_slice()).collect();
        let segment_of: Vec<Option<usize>> = (0..customers)
            .map(|c| (c % 3 != 0).then_some(c % 2))
            .collect();
        let (global, segments) = profiles(&refs, &segment_of, 2);
        let touches: Vec<(u32, u8)> = (0..customers as u32)
            .flat_map(|c| [(c, ((c * 5) % 24 + 24) as u8), (c, ((c * 7) % 168) as u8)])
            .collect();
        let (model, metrics) = fit_shrinkage(
            global.clone(),
            segments.clone(),
            &refs,
            &segment_of,
            &touches,
        );
        let ll = |m: &SendTimeModel| {
            touches
                .iter()
                .map(|&(c, h)| {
                    m.distribution(refs[c as usize], segment_of[c as usize])[h as usize].ln()
                })
                .sum::<f64>()
                / touches.len() as f64
        };
        assert!((ll(&model) - metrics.log_likelihood).abs() < 1e-12);
        for &smoothing in &SMOOTHING {
            for &daily_pooling in &DAILY_POOLING {
                for &segment_weight in &SEGMENT_WEIGHTS {
                    for &global_weight in &GLOBAL_WEIGHTS {
                        let m = SendTimeModel {
                            smoothing,
                            daily_pooling,
                            segment_weight,
                            global_weight,
                            ..model.clone()
                        };
                        assert!(ll(&m) <= metrics.log_likelihood + 1e-12, "{m:?}");
                    }
                }
            }
        }
        // The customers' hours repeat from day to day: pooling over the days is chosen.
        assert!(model.daily_pooling > 0.0, "{model:?}");
    }
}
