//! Held-out metrics of binary scores, for the training report.
//!
//! The metrics compare a model's predicted probability of a positive response
//! with what actually happened: ranking quality ([`auc`], [`lift_curve`],
//! [`top_k_hit_rate`]), probability quality ([`log_loss`], [`brier`]) and
//! reliability ([`calibration`]). [`binary_metrics`] bundles the headline
//! numbers and [`Comparison`] sets a model against a baseline.
//!
//! Conventions shared by every metric:
//! - `scores`/`probs` and `labels` are parallel slices; a length mismatch is a
//!   caller bug and panics.
//! - Results never contain NaN. An empty input gives `0.0` (or `None`/an empty
//!   `Vec` where the type allows), so check `n` before trusting a number.
//! - A NaN score ranks below every other score; a NaN probability counts as
//!   confidently wrong in [`log_loss`] and [`brier`] and is skipped by
//!   [`calibration`], so a broken model shows up as a bad number, not a NaN.
//! - Tied scores are treated as an unordered group, so results do not depend
//!   on the input order.
//!

use serde::Serialize;
use serde::ser::SerializeStruct;

/// Log loss clamps probabilities this far from 0 and 1 so a single confident
/// mistake costs about 34.5 nats instead of infinity.
const LOG_LOSS_EPS: f64 = 1e-15;

/// One equal-count bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CalibrationBin {
    /// Mean predicted probability of the rows in the bin.
    pub mean_predicted: f64,
    /// Share of the rows in the bin that were positive.
    pub observed_rate: f64,
    /// Number of rows in the bin.
    pub count: usize,
}

/// One point of a cumulative gains (lift) curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LiftPoint {
    /// Top fraction of the population by score, in `(0, 1]`.
    pub share_targeted: f64,
    /// Fraction of all positives found in that top fraction (cumulative gains).
    pub share_of_positives_captured: f64,
    /// `share_of_positives_captured / share_targeted`; 1 means no better than random.
    pub lift: f64,
}

/// Headline metrics of one scorer on a held-out set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BinaryMetrics {
    pub n: usize,
    pub positives: usize,
    /// `positives / n`, or 0 for an empty set.
    pub base_rate: f64,
    /// `None` when only one class is present, where ranking quality is undefined.
    pub auc: Option<f64>,
    pub log_loss: f64,
    pub brier: f64,
}

impl BinaryMetrics {
    /// Compares these (the model's) metrics with a baseline's on the same rows.
    ///
    /// AUC is left out when either side has none.
    pub fn compare(&self, baseline: &BinaryMetrics) -> Vec<Comparison> {
        let mut out = Vec::with_capacity(3);
        if let (Some(model), Some(base)) = (self.auc, baseline.auc) {
            out.push(Comparison::new("auc", model, base, true));
        }
        out.push(Comparison::new(
            "log_loss",
            self.log_loss,
            baseline.log_loss,
            false,
        ));
        out.push(Comparison::new("brier", self.brier, baseline.brier, false));
        out
    }
}

/// One metric of a model next to the same metric of a baseline.
///
/// Serializes with two derived fields, `margin` and `relative_improvement`,
/// so a report reader does not have to know which direction is better.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub metric: String,
    pub model: f64,
    pub baseline: f64,
    pub higher_is_better: bool,
}

impl Comparison {
    pub fn new(
        metric: impl Into<String>,
        model: f64,
        baseline: f64,
        higher_is_better: bool,
    ) -> Self {
        Self {
            metric: metric.into(),
            model,
            baseline,
            higher_is_better,
        }
    }

    /// How much better the model is than the baseline, in the metric's units;
    /// positive means the model is better whichever direction the metric runs.
    pub fn margin(&self) -> f64 {
        if self.higher_is_better {
            self.model - self.baseline
        } else {
            self.baseline - self.model
        }
    }

    /// [`margin`](Self::margin) as a fraction of the baseline's magnitude
    /// (0.1 = 10% better); `None` when the baseline is zero or not finite.
    pub fn relative_improvement(&self) -> Option<f64> {
        let scale = self.baseline.abs();
        let ratio = self.margin() / scale;
        (scale > 0.0 && ratio.is_finite()).then_some(ratio)
    }

    /// Whether the model beats the baseline at all.
    pub fn model_is_better(&self) -> bool {
        self.margin() > 0.0
    }
}

impl Serialize for Comparison {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Comparison", 6)?;
        s.serialize_field("metric", &self.metric)?;
        s.serialize_field("model", &self.model)?;
        s.serialize_field("baseline", &self.baseline)?;
        s.serialize_field("higher_is_better", &self.higher_is_better)?;
        s.serialize_field("margin", &self.margin())?;
        s.serialize_field("relative_improvement", &self.relative_improvement())?;
        s.end()
    }
}

fn check_lengths(what: &str, values: usize, labels: usize) {
    assert_eq!(
        values, labels,
        "{what}: {values} values but {labels} labels; they must be parallel"
    );
}

/// NaN has no place in a ranking; putting it last means a scorer that emits
/// NaN is penalised rather than rewarded.
fn rank_key(score: f64) -> f64 {
    if score.is_nan() {
        f64::NEG_INFINITY
    } else {
        score
    }
}

/// Runs of equal scores, best first, as `(rows, positives)`.
///
/// `==` rather than `total_cmp` decides equality so that `-0.0` and `0.0`
/// share a group; `total_cmp` only orders, which keeps the sort total.
fn tie_groups_descending(scores: &[f64], labels: &[bool]) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| rank_key(scores[b]).total_cmp(&rank_key(scores[a])));
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut previous: Option<f64> = None;
    for &i in &order {
        let key = rank_key(scores[i]);
        let positive = usize::from(labels[i]);
        match groups.last_mut() {
            Some(last) if previous == Some(key) => {
                last.0 += 1;
                last.1 += positive;
            }
            _ => groups.push((1, positive)),
        }
        previous = Some(key);
    }
    groups
}

/// Area under the ROC curve: the probability that a random positive scores
/// above a random negative, ties counting half (the Mann-Whitney U statistic).
///
/// `None` when either class is absent.
///
/// # Panics
/// If `scores` and `labels` differ in length.
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    check_lengths("auc", scores.len(), labels.len());
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Counting in doubled integer units keeps the half-credit for ties exact,
    // so perfectly tied inputs give exactly 0.5 at any size.
    let mut twice_u: u128 = 0;
    let mut negatives_below = negatives as u128;
    for (rows, pos) in tie_groups_descending(scores, labels) {
        let neg = (rows - pos) as u128;
        negatives_below -= neg;
        twice_u += pos as u128 * (2 * negatives_below + neg);
    }
    let pairs = 2 * positives as u128 * negatives as u128;
    Some(twice_u as f64 / pairs as f64)
}

/// Mean negative log-likelihood (natural log) of the labels under `probs`,
/// with probabilities clamped to `[1e-15, 1 - 1e-15]`.
///
/// 0 for empty input. A NaN probability scores as the clamped worst case.
///
/// # Panics
/// If `probs` and `labels` differ in length.
pub fn log_loss(probs: &[f64], labels: &[bool]) -> f64 {
    check_lengths("log_loss", probs.len(), labels.len());
    if probs.is_empty() {
        return 0.0;
    }
    let total: f64 = probs
        .iter()
        .zip(labels)
        .map(|(&p, &positive)| {
            let p_truth = if p.is_nan() {
                LOG_LOSS_EPS
            } else {
                let p = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
                if positive { p } else { 1.0 - p }
            };
            -p_truth.ln()
        })
        .sum();
    total / probs.len() as f64
}

/// Mean squared difference between `probs` and the 0/1 labels.
///
/// Probabilities are clamped to `[0, 1]` and a NaN probability costs the
/// maximum of 1. 0 for empty input.
///
/// # Panics
/// If `probs` and `labels` differ in length.
pub fn brier(probs: &[f64], labels: &[bool]) -> f64 {
    check_lengths("brier", probs.len(), labels.len());
    if probs.is_empty() {
        return 0.0;
    }
    let total: f64 = probs
        .iter()
        .zip(labels)
        .map(|(&p, &positive)| {
            if p.is_nan() {
                return 1.0;
            }
            let err = p.clamp(0.0, 1.0) - if positive { 1.0 } else { 0.0 };
            err * err
        })
        .sum();
    total / probs.len() as f64
}

/// Reliability diagram with (up to) `bins` equal-count bins, lowest
/// probabilities first; empty when there is no data or `bins == 0`.
///
/// Bin `j` ends after sorted position `floor(j * (n - 1) / bins)`, and equal
/// probabilities always share a bin, so heavy ties yield fewer bins. This is
/// the same partition as scikit-learn's
/// `calibration_curve(strategy="quantile")`, which puts interpolated quantile
/// edges between those positions. NaN probabilities are skipped.
///
/// # Panics
/// If `probs` and `labels` differ in length.
pub fn calibration(probs: &[f64], labels: &[bool], bins: usize) -> Vec<CalibrationBin> {
    check_lengths("calibration", probs.len(), labels.len());
    let mut rows: Vec<(f64, bool)> = probs
        .iter()
        .zip(labels)
        .filter(|(p, _)| !p.is_nan())
        .map(|(&p, &l)| (p, l))
        .collect();
    if rows.is_empty() || bins == 0 {
        return Vec::new();
    }
    rows.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let n = rows.len();
    let mut out = Vec::with_capacity(bins.min(n));
    let mut start = 0;
    for j in 1..=bins {
        let mut end = if j == bins {
            n
        } else {
            // u128 because j * (n - 1) can exceed usize for absurd bin counts.
            let last = (j as u128 * (n as u128 - 1)) / bins as u128;
            (last as usize + 1).max(start)
        };
        while end < n && end > 0 && rows[end].0 == rows[end - 1].0 {
            end += 1;
        }
        if end > start {
            let chunk = &rows[start..end];
            let count = chunk.len();
            let sum_p: f64 = chunk.iter().map(|r| r.0).sum();
            let hits = chunk.iter().filter(|r| r.1).count();
            out.push(CalibrationBin {
                mean_predicted: sum_p / count as f64,
                observed_rate: hits as f64 / count as f64,
                count,
            });
        }
        start = end;
    }
    out
}

/// Cumulative gains at `points` evenly spaced targeting depths
/// `1/points, 2/points, ..., 1`, best scores first.
///
/// Where a depth falls inside a group of tied scores, the group's positives
/// are credited pro rata: the expected capture if the tie were broken at
/// random, so the curve does not depend on input order. Empty when there are
/// no rows, no positives (nothing to capture) or `points == 0`.
///
/// # Panics
/// If `scores` and `labels` differ in length.
pub fn lift_curve(scores: &[f64], labels: &[bool], points: usize) -> Vec<LiftPoint> {
    check_lengths("lift_curve", scores.len(), labels.len());
    let positives = labels.iter().filter(|&&l| l).count();
    if positives == 0 || points == 0 {
        return Vec::new();
    }
    let n = scores.len() as f64;
    let groups = tie_groups_descending(scores, labels);
    let mut out = Vec::with_capacity(points);
    let (mut rows_before, mut positives_before, mut next_group) = (0usize, 0usize, 0usize);
    for k in 1..=points {
        let share_targeted = k as f64 / points as f64;
        // k * n / points is exact whenever it is a whole number, so the last
        // point and any depth on a group boundary land exactly.
        let depth = k as f64 * n / points as f64;
        while let Some(&(rows, pos)) = groups.get(next_group) {
            if (rows_before + rows) as f64 > depth {
                break;
            }
            rows_before += rows;
            positives_before += pos;
            next_group += 1;
        }
        let partial = groups.get(next_group).map_or(0.0, |&(rows, pos)| {
            (depth - rows_before as f64) / rows as f64 * pos as f64
        });
        let captured = ((positives_before as f64 + partial) / positives as f64).min(1.0);
        out.push(LiftPoint {
            share_targeted,
            share_of_positives_captured: captured,
            lift: captured / share_targeted,
        });
    }
    out
}

/// Share of rows whose true item is among the first `k` entries of that
/// row's ranking (rankings shorter than `k` count in full). 0 for no rows.
///
/// # Panics
/// If `ranked` and `truth` differ in length.
pub fn top_k_hit_rate(ranked: &[Vec<usize>], truth: &[usize], k: usize) -> f64 {
    check_lengths("top_k_hit_rate", ranked.len(), truth.len());
    if ranked.is_empty() {
        return 0.0;
    }
    let hits = ranked
        .iter()
        .zip(truth)
        .filter(|(ranking, t)| ranking.iter().take(k).any(|item| item == *t))
        .count();
    hits as f64 / ranked.len() as f64
}

/// Headline metrics of `probs` against `labels`.
///
/// # Panics
/// If `probs` and `labels` differ in length.
pub fn binary_metrics(probs: &[f64], labels: &[bool]) -> BinaryMetrics {
    check_lengths("binary_metrics", probs.len(), labels.len());
    let n = labels.len();
    let positives = labels.iter().filter(|&&l| l).count();
    BinaryMetrics {
        n,
        positives,
        base_rate: if n == 0 {
            0.0
        } else {
            positives as f64 / n as f64
        },
        auc: auc(probs, labels),
        log_loss: log_loss(probs, labels),
        brier: brier(probs, labels),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Shared fixture with ties inside and across classes (0.8, 0.7, 0.5,
    /// 0.4, 0.1) and a tie straddling a quantile edge (0.7), so the
    /// scikit-learn references exercise tie handling.
    pub(in crate::training) const P: [f64; 20] = [
        0.9, 0.8, 0.8, 0.7, 0.7, 0.7, 0.6, 0.55, 0.5, 0.5, 0.4, 0.4, 0.35, 0.3, 0.3, 0.2, 0.15,
        0.1, 0.1, 0.05,
    ];
    pub(in crate::training) const Y: [u8; 20] =
        [1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0];

    pub(in crate::training) fn labels(y: &[u8]) -> Vec<bool> {
        y.iter().map(|&v| v == 1).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    // Reference (scikit-learn 1.9.1), run as ref_sklearn.py next to the crate:
    //   from sklearn.metrics import roc_auc_score, log_loss, brier_score_loss
    //   from sklearn.calibration import calibration_curve
    //   p = [0.9, 0.8, 0.8, 0.7, 0.7, 0.7, 0.6, 0.55, 0.5, 0.5,
    //        0.4, 0.4, 0.35, 0.3, 0.3, 0.2, 0.15, 0.1, 0.1, 0.05]
    //   y = [1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0]
    //   roc_auc_score(y, p)     -> 0.65
    //   log_loss(y, p)          -> 0.7160341579984496
    //   brier_score_loss(y, p)  -> 0.2515
    //   calibration_curve(y, p, n_bins=4, strategy="quantile")
    //     prob_true -> [0.4, 0.4, 0.5714285714285714, 0.6666666666666666]
    //     prob_pred -> [0.12, 0.35, 0.6071428571428571, 0.8333333333333334]
    //   calibration_curve(y, p, n_bins=3, strategy="quantile")
    //     prob_true -> [0.2857142857142857, 0.5, 0.7142857142857143]
    //     prob_pred -> [0.17142857142857146, 0.45, 0.7428571428571429]

    #[test]
    fn auc_of_a_perfect_ranking_is_one() {
        let scores = [0.1, 0.2, 0.3, 0.8, 0.9];
        let y = labels(&[0, 0, 0, 1, 1]);
        assert_eq!(auc(&scores, &y), Some(1.0));
    }

    #[test]
    fn auc_of_a_reversed_ranking_is_zero() {
        let scores = [0.9, 0.8, 0.3, 0.2, 0.1];
        let y = labels(&[0, 0, 0, 1, 1]);
        assert_eq!(auc(&scores, &y), Some(0.0));
    }

    #[test]
    fn auc_of_all_tied_scores_is_one_half() {
        let scores = [0.4; 7];
        let y = labels(&[1, 0, 0, 1, 0, 1, 0]);
        assert_eq!(auc(&scores, &y), Some(0.5));
    }

    #[test]
    fn auc_matches_hand_counted_pairs() {
        // Positives {0.35, 0.8} vs negatives {0.1, 0.4}: 3 of 4 pairs won.
        assert_eq!(
            auc(&[0.1, 0.4, 0.35, 0.8], &labels(&[0, 0, 1, 1])),
            Some(0.75)
        );
        // Positives {0.5, 0.9} vs negatives {0.5, 0.2}: 3 wins + 1 tie = 3.5 of 4.
        assert_eq!(
            auc(&[0.5, 0.5, 0.2, 0.9], &labels(&[1, 0, 0, 1])),
            Some(0.875)
        );
    }

    #[test]
    fn auc_matches_scikit_learn_on_a_tied_example() {
        let value = auc(&P, &labels(&Y));
        assert!(value.is_some_and(|v| close(v, 0.65)), "{value:?}");
    }

    #[test]
    fn auc_is_none_when_a_class_is_missing() {
        assert_eq!(auc(&[0.1, 0.9], &[true, true]), None);
        assert_eq!(auc(&[0.1, 0.9], &[false, false]), None);
        assert_eq!(auc(&[], &[]), None);
    }

    #[test]
    fn auc_does_not_depend_on_input_order_or_signed_zero() {
        let y = labels(&Y);
        let mut rows: Vec<(f64, bool)> = P.iter().copied().zip(y.iter().copied()).collect();
        rows.reverse();
        let (p, l): (Vec<f64>, Vec<bool>) = rows.into_iter().unzip();
        assert_eq!(auc(&p, &l), auc(&P, &y));
        assert_eq!(auc(&[0.0, -0.0], &[true, false]), Some(0.5));
    }

    #[test]
    fn auc_ranks_nan_scores_last() {
        assert_eq!(auc(&[f64::NAN, 0.2, 0.7], &labels(&[1, 0, 1])), Some(0.5));
    }

    #[test]
    fn log_loss_matches_scikit_learn() {
        let v = log_loss(&P, &labels(&Y));
        assert!(close(v, 0.7160341579984496), "{v}");
    }

    #[test]
    fn log_loss_clamps_certain_mistakes_and_stays_finite() {
        let v = log_loss(&[0.0, 1.0, f64::NAN], &[true, false, true]);
        // The false positive's loss is ln of 1 - (1 - 1e-15), which rounds
        // to about 1.11e-15 in f64; scikit-learn's clipping does the same.
        let worst = -(1e-15f64).ln();
        let rounded = -(1.0 - (1.0 - 1e-15f64)).ln();
        assert!(close(v, (2.0 * worst + rounded) / 3.0), "{v}");
        assert!(v.is_finite() && v > 34.0);
        assert!(log_loss(&[1.0, 0.0], &[true, false]) < 1e-14);
        assert_eq!(log_loss(&[], &[]), 0.0);
    }

    #[test]
    fn brier_matches_scikit_learn() {
        let v = brier(&P, &labels(&Y));
        assert!(close(v, 0.2515), "{v}");
    }

    #[test]
    fn brier_counts_nan_as_the_worst_prediction() {
        assert_eq!(brier(&[f64::NAN, 1.0], &[true, true]), 0.5);
        assert_eq!(brier(&[], &[]), 0.0);
    }

    fn assert_bins(bins: &[CalibrationBin], pred: &[f64], observed: &[f64], counts: &[usize]) {
        assert_eq!(bins.len(), pred.len(), "{bins:?}");
        for (i, b) in bins.iter().enumerate() {
            assert!(close(b.mean_predicted, pred[i]), "bin {i}: {b:?}");
            assert!(close(b.observed_rate, observed[i]), "bin {i}: {b:?}");
            assert_eq!(b.count, counts[i], "bin {i}: {b:?}");
        }
    }

    #[test]
    fn calibration_bins_match_scikit_learn_quantile_strategy() {
        let y = labels(&Y);
        // The 0.7 tie straddles the 75% edge and stays in one bin, hence 5/5/7/3.
        assert_bins(
            &calibration(&P, &y, 4),
            &[0.12, 0.35, 0.6071428571428571, 0.8333333333333334],
            &[0.4, 0.4, 0.5714285714285714, 0.6666666666666666],
            &[5, 5, 7, 3],
        );
        assert_bins(
            &calibration(&P, &y, 3),
            &[0.17142857142857146, 0.45, 0.7428571428571429],
            &[0.2857142857142857, 0.5, 0.7142857142857143],
            &[7, 6, 7],
        );
    }

    #[test]
    fn calibration_merges_bins_that_ties_make_empty() {
        let p = [0.2, 0.2, 0.2, 0.2, 0.2, 0.9];
        let bins = calibration(&p, &labels(&[0, 0, 1, 0, 0, 1]), 3);
        assert_bins(&bins, &[0.2, 0.9], &[0.2, 1.0], &[5, 1]);
    }

    #[test]
    fn calibration_skips_nan_and_handles_degenerate_input() {
        let bins = calibration(&[f64::NAN, 0.3, 0.6], &[true, false, true], 2);
        assert_bins(&bins, &[0.3, 0.6], &[0.0, 1.0], &[1, 1]);
        assert!(calibration(&[], &[], 5).is_empty());
        assert!(calibration(&[0.5], &[true], 0).is_empty());
        assert_eq!(calibration(&[0.5], &[true], 10).len(), 1);
    }

    #[test]
    fn lift_captures_every_positive_at_full_depth_and_never_decreases() {
        let curve = lift_curve(&P, &labels(&Y), 7);
        assert_eq!(curve.len(), 7);
        let last = curve[curve.len() - 1];
        assert_eq!(last.share_targeted, 1.0);
        assert_eq!(last.share_of_positives_captured, 1.0);
        assert_eq!(last.lift, 1.0);
        for w in curve.windows(2) {
            assert!(w[1].share_of_positives_captured >= w[0].share_of_positives_captured);
            assert!(w[1].share_targeted > w[0].share_targeted);
        }
    }

    #[test]
    fn lift_of_a_perfect_model_captures_all_positives_at_the_base_rate() {
        let y: Vec<bool> = (0..100).map(|i| i % 5 == 0).collect();
        let scores: Vec<f64> = y.iter().map(|&l| if l { 0.9 } else { 0.1 }).collect();
        let curve = lift_curve(&scores, &y, 10);
        assert_eq!(curve[0].share_of_positives_captured, 0.5);
        assert_eq!(curve[1].share_targeted, 0.2);
        assert_eq!(curve[1].share_of_positives_captured, 1.0);
        assert_eq!(curve[1].lift, 5.0);
    }

    #[test]
    fn lift_matches_hand_computed_gains_with_a_split_tie() {
        // Sorted: 0.9(+), 0.5(+), 0.5(-), 0.1(-). At depth 1 of 4 only the top
        // row is in; at 3 of 4 the whole 0.5 tie is in; at 2 of 4 (points=2
        // gives depths 2 and 4) half of the tie, worth half its one positive.
        let scores = [0.5, 0.1, 0.9, 0.5];
        let y = labels(&[0, 0, 1, 1]);
        let curve = lift_curve(&scores, &y, 2);
        assert_eq!(curve[0].share_of_positives_captured, 0.75);
        assert_eq!(curve[0].lift, 1.5);
        let curve = lift_curve(&scores, &y, 4);
        let captured: Vec<f64> = curve
            .iter()
            .map(|p| p.share_of_positives_captured)
            .collect();
        assert_eq!(captured, [0.5, 0.75, 1.0, 1.0]);
    }

    #[test]
    fn lift_is_empty_without_positives_or_points() {
        assert!(lift_curve(&[0.1, 0.2], &[false, false], 10).is_empty());
        assert!(lift_curve(&[0.1, 0.2], &[true, false], 0).is_empty());
        assert!(lift_curve(&[], &[], 10).is_empty());
    }

    #[test]
    fn top_k_hit_rate_counts_truth_within_the_first_k() {
        let ranked = vec![vec![3, 1, 2], vec![2, 3], vec![1], vec![]];
        let truth = [1, 3, 5, 0];
        assert_eq!(top_k_hit_rate(&ranked, &truth, 1), 0.0);
        assert_eq!(top_k_hit_rate(&ranked, &truth, 2), 0.5);
        assert_eq!(top_k_hit_rate(&ranked, &truth, 10), 0.5);
        assert_eq!(top_k_hit_rate(&ranked, &truth, 0), 0.0);
        assert_eq!(top_k_hit_rate(&[], &[], 3), 0.0);
    }

    #[test]
    fn binary_metrics_bundle_the_headline_numbers_and_serialize() {
        let m = binary_metrics(&P, &labels(&Y));
        assert_eq!((m.n, m.positives), (20, 10));
        assert_eq!(m.base_rate, 0.5);
        assert!(m.auc.is_some_and(|v| close(v, 0.65)));
        let json = serde_json::to_value(&m).expect("serializes");
        for key in ["n", "positives", "base_rate", "auc", "log_loss", "brier"] {
            assert!(json.get(key).is_some(), "missing {key} in {json}");
        }
        let empty = binary_metrics(&[], &[]);
        assert_eq!(empty.base_rate, 0.0);
        assert_eq!(
            serde_json::to_value(&empty).expect("serializes")["auc"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn comparison_margin_is_positive_when_the_model_is_better() {
        let auc = Comparison::new("auc", 0.8, 0.6, true);
        assert!(close(auc.margin(), 0.2));
        assert!(
            auc.relative_improvement()
                .is_some_and(|r| close(r, 0.2 / 0.6))
        );
        let loss = Comparison::new("log_loss", 0.4, 0.5, false);
        assert!(close(loss.margin(), 0.1));
        assert!(loss.model_is_better());
        let worse = Comparison::new("brier", 0.3, 0.2, false);
        assert!(worse.margin() < 0.0 && !worse.model_is_better());
        assert_eq!(
            Comparison::new("x", 1.0, 0.0, true).relative_improvement(),
            None
        );
    }

    #[test]
    fn comparison_serializes_with_margin_and_relative_improvement() {
        let json =
            serde_json::to_value(Comparison::new("log_loss", 0.4, 0.5, false)).expect("serializes");
        assert_eq!(json["metric"], "log_loss");
        assert_eq!(json["higher_is_better"], false);
        assert!(json["margin"].as_f64().is_some_and(|m| close(m, 0.1)));
        assert!(
            json["relative_improvement"]
                .as_f64()
                .is_some_and(|r| close(r, 0.2))
        );
    }

    #[test]
    fn compare_skips_auc_when_either_side_has_none() {
        let model = binary_metrics(&P, &labels(&Y));
        let constant = binary_metrics(&[0.5; 20], &labels(&Y));
        let names: Vec<String> = model
            .compare(&constant)
            .into_iter()
            .map(|c| c.metric)
            .collect();
        assert_eq!(names, ["auc", "log_loss", "brier"]);
        let one_class = binary_metrics(&[0.5, 0.6], &[true, true]);
        assert_eq!(one_class.compare(&one_class).len(), 2);
    }
}
