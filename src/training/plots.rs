//! The SVG plots of the training report and the load tests.
//!
//! The plots ([`calibration_svg`], [`lift_svg`], [`bars_svg`], [`lines_svg`]) are 640x480 SVG
//! documents rendered by plotters without a font backend: the SVG backend
//! writes text as `<text>` elements for the viewer to lay out, so labels show
//! up even though plotters only estimates their size.

use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::metrics::{CalibrationBin, LiftPoint};

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

/// Lines over a common x axis (e.g. a closed-loop run's rates by day), y from 0 to a
/// little above the highest point. Curves with no finite points are left out; if none
/// remain the plot says "no data".
pub fn lines_svg(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    curves: &[(&str, &[(f64, f64)])],
) -> Result<String, PlotError> {
    let curves: Vec<(&str, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|&(name, points)| {
            let line: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|&(x, y)| finite_point(x, y))
                .collect();
            (name, line)
        })
        .filter(|(_, line)| !line.is_empty())
        .collect();
    let points = || curves.iter().flat_map(|(_, l)| l.iter().copied());
    let (x_lo, x_hi) = points().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (x, _)| {
        (lo.min(x), hi.max(x))
    });
    let y_hi = points().fold(0.0f64, |hi, (_, y)| hi.max(y));
    let x_hi = if x_hi > x_lo { x_hi } else { x_lo + 1.0 };
    let y_hi = if y_hi > 0.0 { y_hi * 1.15 } else { 1.0 };
    render(|root| {
        if curves.is_empty() {
            return draw_no_data(root, title);
        }
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 20))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(58)
            .build_cartesian_2d(x_lo..x_hi, 0f64..y_hi)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .house_style()
            .draw()?;
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
    use crate::training::metrics::tests::{P, Y, labels};
    use crate::training::metrics::{calibration, lift_curve};

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
