//! Held-out evaluation of binary scores and the SVG plots of the training report.
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
//! The plots ([`calibration_svg`], [`lift_svg`], [`bars_svg`]) are 640x480 SVG
//! documents rendered by plotters without a font backend: the SVG backend
//! writes text as `<text>` elements for the viewer to lay out, so labels show
//! up even though plotters only estimates their size.

use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
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

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// plotters failed; its error type is generic over the backend, so only
    /// the message is kept.
    #[error("plot rendering failed: {0}")]
    Render(String),
    /// The caller's data do not fit together (e.g. a bar series of the wrong length).
    #[error("invalid plot input: {0}")]
    InvalidInput(String),
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(err: DrawingAreaErrorKind<E>) -> Self {
        PlotError::Render(err.to_string())
    }
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Plots
// ---------------------------------------------------------------------------

const SIZE: (u32, u32) = (640, 480);
const FONT: &str = "sans-serif";
/// Okabe-Ito colours: distinguishable with the common colour-vision
/// deficiencies and in greyscale print.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(0, 0, 0),
];
const REFERENCE: RGBColor = RGBColor(128, 128, 128);
const GRID: RGBColor = RGBColor(225, 225, 225);

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The look every plot's axes and grid share.
trait HouseStyle {
    fn house_style(&mut self) -> &mut Self;
}

impl<X: Ranged, Y: Ranged, DB: DrawingBackend> HouseStyle for MeshStyle<'_, '_, X, Y, DB> {
    fn house_style(&mut self) -> &mut Self {
        self.axis_desc_style((FONT, 16))
            .label_style((FONT, 14))
            .light_line_style(GRID.mix(0.5))
            .bold_line_style(GRID)
    }
}

type Root<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Owns the buffer so the backend is dropped (and the SVG closed) before the
/// string is returned.
fn render(draw: impl FnOnce(&Root<'_>) -> Result<(), PlotError>) -> Result<String, PlotError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(out)
}

/// A report should still show which plot is missing, so empty input draws a
/// titled placeholder instead of failing the whole report.
fn draw_no_data(root: &Root<'_>, title: &str) -> Result<(), PlotError> {
    let area = root.margin(14, 14, 14, 14).titled(title, (FONT, 24))?;
    let (w, h) = area.dim_in_pixel();
    let style = TextStyle::from((FONT, 20).into_font())
        .color(&REFERENCE)
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new("no data", (w as i32 / 2, h as i32 / 2), style))?;
    Ok(())
}

fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
        .margin(10)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

/// The dashed diagonal y = x of a unit-square plot (perfect calibration, random targeting).
fn draw_diagonal<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    label: &str,
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate<From = (f64, f64)>,
    DB::ErrorType: 'static,
{
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            6,
            4,
            REFERENCE.stroke_width(1),
        ))?
        .label(label)
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], REFERENCE.stroke_width(1)));
    Ok(())
}

/// Curve `i` of a plot, in the `i`th palette colour, with its legend entry.
fn draw_named_line<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    i: usize,
    name: &str,
    line: &[(f64, f64)],
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate<From = (f64, f64)>,
    DB::ErrorType: 'static,
{
    let c = colour(i);
    chart
        .draw_series(LineSeries::new(line.iter().copied(), c.stroke_width(2)))?
        .label(name)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
    Ok(())
}

fn finite_point(x: f64, y: f64) -> Option<(f64, f64)> {
    (x.is_finite() && y.is_finite()).then_some((x, y))
}

/// Reliability diagram: mean predicted probability against observed positive
/// rate per bin, with the diagonal of perfect calibration. Marker area grows
/// with the bin's count. `baseline_rate`, if given, is drawn as a horizontal
/// line (the no-skill forecast that always predicts the base rate).
///
/// Empty `model` gives a "no data" plot.
pub fn calibration_svg(
    title: &str,
    model: &[CalibrationBin],
    baseline_rate: Option<f64>,
) -> Result<String, PlotError> {
    let points: Vec<((f64, f64), usize)> = model
        .iter()
        .filter_map(|b| finite_point(b.mean_predicted, b.observed_rate).map(|p| (p, b.count)))
        .collect();
    render(|root| {
        if points.is_empty() {
            return draw_no_data(root, title);
        }
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 24))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(58)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
        chart
            .configure_mesh()
            .x_desc("mean predicted probability")
            .y_desc("observed positive rate")
            .house_style()
            .draw()?;

        draw_diagonal(&mut chart, "perfect calibration")?;

        if let Some(rate) = baseline_rate.filter(|r| r.is_finite()) {
            let base = colour(1);
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, rate), (1.0, rate)],
                    8,
                    4,
                    base.stroke_width(2),
                ))?
                .label(format!("base rate {rate:.3}"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], base.stroke_width(2))
                });
        }

        let line = colour(0);
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|&(p, _)| p),
                line.stroke_width(2),
            ))?
            .label("model (marker size ~ bin count)")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], line.stroke_width(2)));
        let max_count = points.iter().map(|&(_, c)| c).max().unwrap_or(0).max(1) as f64;
        chart.draw_series(points.iter().map(|&(p, count)| {
            // Area, not radius, proportional to count so large bins do not
            // visually dominate; the floor keeps tiny bins visible.
            let radius = 3.0 + 5.0 * (count as f64 / max_count).sqrt();
            Circle::new(p, radius.round() as u32, line.filled())
        }))?;

        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// Cumulative gains curves of several named scorers plus the random-targeting
/// diagonal; each curve starts at the origin.
///
/// Curves with no points are left out; if none remain the plot says "no data".
pub fn lift_svg(title: &str, curves: &[(&str, &[LiftPoint])]) -> Result<String, PlotError> {
    let curves: Vec<(&str, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|&(name, points)| {
            let line: Vec<(f64, f64)> =
                std::iter::once((0.0, 0.0))
                    .chain(points.iter().filter_map(|p| {
                        finite_point(p.share_targeted, p.share_of_positives_captured)
                    }))
                    .collect();
            (name, line)
        })
        .filter(|(_, line)| line.len() > 1)
        .collect();
    render(|root| {
        if curves.is_empty() {
            return draw_no_data(root, title);
        }
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 24))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(58)
            // Headroom above 1 so a curve that reaches 100% is not clipped.
            .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)?;
        chart
            .configure_mesh()
            .x_desc("share of population targeted (top by score)")
            .y_desc("share of positives captured")
            .house_style()
            .draw()?;

        draw_diagonal(&mut chart, "random")?;

        for (i, (name, line)) in curves.iter().enumerate() {
            draw_named_line(&mut chart, i, name, line)?;
        }

        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// Latency against percentile, as HDR histograms plot it: the x axis spreads the tail
/// (ticks at 0, 90, 99, 99.9, 99.99 %, equally spaced), the y axis is milliseconds on a log
/// scale. Each curve is `(quantile in 0..1, milliseconds)` points; `target`, if given, is a
/// `(quantile, milliseconds)` limit drawn as a dashed line up to that percentile. Used by the
/// load tests.
///
/// Curves with no finite points are left out; if none remain the plot says "no data".
pub fn latency_svg(
    title: &str,
    curves: &[(&str, &[(f64, f64)])],
    target: Option<(f64, f64)>,
) -> Result<String, PlotError> {
    // x = log10(1 / (1 - q)): 90% -> 1, 99% -> 2, 99.9% -> 3.
    let spread = |q: f64| -(1.0 - q.clamp(0.0, 0.99999)).log10();
    let curves: Vec<(&str, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|&(name, points)| {
            let line = points
                .iter()
                .filter(|&&(q, ms)| (0.0..1.0).contains(&q) && ms.is_finite() && ms > 0.0)
                .map(|&(q, ms)| (spread(q), ms))
                .collect();
            (name, line)
        })
        .filter(|(_, line): &(&str, Vec<(f64, f64)>)| !line.is_empty())
        .collect();
    let all = || curves.iter().flat_map(|(_, l)| l.iter().copied());
    let x_max = all().map(|p| p.0).fold(1.0f64, f64::max).ceil();
    let (lo, hi) = all()
        .map(|p| p.1)
        .chain(target.map(|t| t.1))
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    render(|root| {
        if curves.is_empty() {
            return draw_no_data(root, title);
        }
        let (lo, hi) = (lo / 1.5, hi * 1.5);
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 22))
            .margin(14)
            // Room for the last percentile label, centred on the axis' end.
            .margin_right(34)
            .x_label_area_size(48)
            .y_label_area_size(62)
            .build_cartesian_2d(0f64..x_max, (lo..hi).log_scale())?;
        let percentile = |x: &f64| {
            let p = 100.0 * (1.0 - 10f64.powf(-x));
            let digits = (x.round() as usize).saturating_sub(2);
            format!("{p:.digits$}%")
        };
        chart
            .configure_mesh()
            .x_labels(x_max as usize + 1)
            .x_label_formatter(&percentile)
            .y_label_formatter(&|ms: &f64| {
                let text = format!("{ms:.3}");
                format!("{} ms", text.trim_end_matches('0').trim_end_matches('.'))
            })
            .x_desc("percentile")
            .y_desc("latency")
            .house_style()
            .draw()?;
        if let Some((q, ms)) = target {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, ms), (spread(q), ms)],
                    6,
                    4,
                    REFERENCE.stroke_width(2),
                ))?
                .label(format!("target: p{} <= {ms} ms", 100.0 * q))
                .legend(|(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], REFERENCE.stroke_width(2))
                });
        }
        for (i, (name, line)) in curves.iter().enumerate() {
            draw_named_line(&mut chart, i, name, line)?;
            if line.len() < 40 {
                let c = colour(i);
                chart.draw_series(line.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
            }
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// Bars too crowded to label individually beyond this.
const MAX_VALUE_LABELS: usize = 24;
/// Bar-chart x units per group, and the part of it the bars fill.
const GROUP_STEP: i32 = 1000;
const GROUP_WIDTH: i32 = 800;
/// Far beyond legibility already; the cap keeps the i32 axis from overflowing.
const MAX_BAR_GROUPS: i32 = 100_000;

fn format_value(v: f64) -> String {
    let magnitude = v.abs();
    if magnitude >= 1000.0 {
        format!("{v:.0}")
    } else if magnitude >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Grouped bar chart: one group per entry of `labels`, one bar per series in
/// each group, each bar annotated with its value when there are few enough.
///
/// Every series must have one value per label, otherwise
/// [`PlotError::InvalidInput`]. Non-finite values leave a gap. No labels or no
/// series gives a "no data" plot.
pub fn bars_svg(
    title: &str,
    labels: &[String],
    series: &[(&str, &[f64])],
) -> Result<String, PlotError> {
    if let Some((name, values)) = series.iter().find(|(_, v)| v.len() != labels.len()) {
        return Err(PlotError::InvalidInput(format!(
            "bar series {name:?} has {} values for {} labels",
            values.len(),
            labels.len()
        )));
    }
    let finite = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = finite.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    render(|root| {
        if labels.is_empty() || series.is_empty() {
            return draw_no_data(root, title);
        }
        let span = hi - lo;
        if span == 0.0 {
            hi = 1.0;
        } else {
            // Room above/below the bars for their value labels.
            let pad = 0.12 * span;
            if hi > 0.0 {
                hi += pad;
            }
            if lo < 0.0 {
                lo -= pad;
            }
        }
        let groups = labels.len();
        // Integer x coordinates in thousandths of a group, because plotters only
        // formats custom tick labels on integer axes once key points are bound.
        let groups_i32 = i32::try_from(groups)
            .ok()
            .filter(|&g| g <= MAX_BAR_GROUPS)
            .ok_or_else(|| PlotError::InvalidInput(format!("{groups} bar groups are too many")))?;
        let series_i32 = i32::try_from(series.len())
            .ok()
            .filter(|&s| s <= GROUP_WIDTH)
            .ok_or_else(|| {
                PlotError::InvalidInput(format!("{} bar series are too many", series.len()))
            })?;
        let centres: Vec<i32> = (0..groups_i32).map(|g| g * GROUP_STEP).collect();
        let x_range = -GROUP_STEP / 2..groups_i32 * GROUP_STEP - GROUP_STEP / 2;
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 24))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(62)
            .build_cartesian_2d(x_range.clone().with_key_points(centres), lo..hi)?;
        let label_of = |x: &i32| {
            usize::try_from(x / GROUP_STEP)
                .ok()
                .filter(|_| x % GROUP_STEP == 0)
                .and_then(|g| labels.get(g))
                .cloned()
                .unwrap_or_default()
        };
        // Tick arithmetic can leave the zero tick at -0.0 or 1e-17; snap it
        // so the axis reads "0.0", otherwise keep plotters' own formatting.
        let zero_tolerance = (hi - lo) * 1e-9;
        let y_label = |v: &f64| {
            let v = if v.abs() < zero_tolerance { 0.0 } else { *v };
            RangedCoordf64::format(&v)
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&label_of)
            .y_label_formatter(&y_label)
            .y_desc("value")
            .house_style()
            .draw()?;

        if lo < 0.0 {
            chart.draw_series(LineSeries::new(
                [(x_range.start, 0.0), (x_range.end, 0.0)],
                BLACK.stroke_width(1),
            ))?;
        }

        let bar_width = GROUP_WIDTH / series_i32;
        // A small gap separates adjacent bars of one group.
        let inset = (bar_width / 25).max(1);
        let annotate = groups * series.len() <= MAX_VALUE_LABELS;
        for ((name, values), s) in series.iter().zip(0..) {
            let c = colour(s as usize);
            let bars = values
                .iter()
                .zip(0..)
                .filter(|(v, _)| v.is_finite())
                .map(|(&v, g)| {
                    let x0 = g * GROUP_STEP - GROUP_WIDTH / 2 + s * bar_width;
                    (x0, x0 + bar_width, v)
                });
            chart
                .draw_series(bars.clone().map(|(x0, x1, v)| {
                    Rectangle::new([(x0 + inset, 0.0), (x1 - inset, v)], c.filled())
                }))?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled()));
            if annotate {
                chart.draw_series(bars.map(|(x0, x1, v)| {
                    let v_pos = if v < 0.0 { VPos::Top } else { VPos::Bottom };
                    let style = TextStyle::from((FONT, 13).into_font())
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, v_pos));
                    // Offset a few pixels so the label does not touch the bar end.
                    let offset = if v < 0.0 { 3 } else { -3 };
                    EmptyElement::at(((x0 + x1) / 2, v))
                        + Text::new(format_value(v), (0, offset), style)
                }))?;
            }
        }

        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared fixture with ties inside and across classes (0.8, 0.7, 0.5,
    /// 0.4, 0.1) and a tie straddling a quantile edge (0.7), so the
    /// scikit-learn references exercise tie handling.
    const P: [f64; 20] = [
        0.9, 0.8, 0.8, 0.7, 0.7, 0.7, 0.6, 0.55, 0.5, 0.5, 0.4, 0.4, 0.35, 0.3, 0.3, 0.2, 0.15,
        0.1, 0.1, 0.05,
    ];
    const Y: [u8; 20] = [1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0];

    fn labels(y: &[u8]) -> Vec<bool> {
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

    /// Checks that every non-self-closing tag is closed in order, which is as
    /// much XML well-formedness as the tests need without an XML crate.
    fn assert_balanced_svg(svg: &str) {
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("</svg>").count(), 1);
        assert!(svg.trim_end().ends_with("</svg>"));
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let close = after.find('>').expect("unterminated tag");
            let tag = &after[..close];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
            } else if !tag.ends_with('/') && !tag.starts_with('?') && !tag.starts_with('!') {
                let name = tag.split_whitespace().next().expect("tag name");
                stack.push(name);
            }
            rest = &after[close + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    fn assert_plot(svg: &str, title: &str, texts: &[&str]) {
        assert_balanced_svg(svg);
        assert!(svg.contains(title), "title {title:?} missing");
        for t in texts {
            assert!(svg.contains(t), "text {t:?} missing");
        }
    }

    #[test]
    fn calibration_svg_draws_a_titled_reliability_diagram() {
        let bins = calibration(&P, &labels(&Y), 4);
        let svg =
            calibration_svg("Calibration of the offer model", &bins, Some(0.5)).expect("renders");
        assert_plot(
            &svg,
            "Calibration of the offer model",
            &[
                "mean predicted probability",
                "observed positive rate",
                "perfect calibration",
                "base rate 0.500",
                "<circle",
            ],
        );
    }

    #[test]
    fn lift_svg_draws_every_named_curve_and_the_random_line() {
        let y = labels(&Y);
        let model = lift_curve(&P, &y, 10);
        let baseline = lift_curve(&[0.5; 20], &y, 10);
        let svg = lift_svg(
            "Cumulative gains",
            &[("model", &model), ("baseline", &baseline)],
        )
        .expect("renders");
        assert_plot(
            &svg,
            "Cumulative gains",
            &[
                ">\nmodel\n<",
                ">\nbaseline\n<",
                "random",
                "share of positives captured",
            ],
        );
    }

    #[test]
    fn bars_svg_draws_grouped_bars_with_category_and_series_names() {
        let labels = vec![
            "auc".to_string(),
            "log_loss".to_string(),
            "brier".to_string(),
        ];
        let svg = bars_svg(
            "Model vs baseline",
            &labels,
            &[
                ("model", &[0.65, 0.716, 0.2515]),
                ("baseline", &[0.5, 0.693, 0.25]),
            ],
        )
        .expect("renders");
        assert_plot(
            &svg,
            "Model vs baseline",
            &[
                "auc", "log_loss", "brier", "model", "baseline", "0.716", "<rect",
            ],
        );
        let negative =
            bars_svg("Margins", &labels, &[("margin", &[0.15, -0.02, f64::NAN])]).expect("renders");
        assert_plot(&negative, "Margins", &["-0.020"]);
        assert!(!negative.contains("\n-0.0\n"), "zero tick printed as -0.0");
    }

    #[test]
    fn latency_svg_labels_the_tail_percentiles_and_the_target() {
        let service = [(0.5, 0.21), (0.9, 0.3), (0.99, 0.62), (0.999, 1.4)];
        let reference = [(0.5, 0.12), (0.9, 0.2), (0.99, 0.41)];
        let svg = latency_svg(
            "Decisions at 10,000/s",
            &[("touchpoint", &service), ("reference", &reference)],
            Some((0.99, 1.0)),
        )
        .expect("renders");
        assert_plot(
            &svg,
            "Decisions at 10,000/s",
            &[
                ">\ntouchpoint\n<",
                ">\nreference\n<",
                "99%",
                "99.9%",
                "target: p99 &lt;= 1 ms",
            ],
        );
        let empty = latency_svg("No latency", &[("touchpoint", &[(0.5, f64::NAN)])], None);
        assert_plot(&empty.expect("renders"), "No latency", &["no data"]);
    }

    #[test]
    fn bars_svg_rejects_a_series_of_the_wrong_length() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let err = bars_svg("t", &labels, &[("model", &[1.0])]).expect_err("length mismatch");
        assert!(matches!(err, PlotError::InvalidInput(_)), "{err}");
    }

    #[test]
    fn empty_plot_inputs_give_a_titled_no_data_plot() {
        let plots = [
            calibration_svg("Empty calibration", &[], None),
            lift_svg("Empty lift", &[]),
            lift_svg("Empty lift curves", &[("model", &[])]),
            bars_svg("Empty bars", &[], &[]),
            bars_svg("Bars without series", &["auc".to_string()], &[]),
        ];
        let titles = [
            "Empty calibration",
            "Empty lift",
            "Empty lift curves",
            "Empty bars",
            "Bars without series",
        ];
        for (svg, title) in plots.into_iter().zip(titles) {
            let svg = svg.expect("renders");
            assert_plot(&svg, title, &["no data"]);
        }
    }

    #[test]
    fn plot_text_is_escaped_for_xml() {
        let svg = lift_svg(
            "A & B <gains>",
            &[("model \"v2\"", &lift_curve(&P, &labels(&Y), 5))],
        )
        .expect("renders");
        assert_balanced_svg(&svg);
        assert!(svg.contains("A &amp; B &lt;gains&gt;"));
    }
}
