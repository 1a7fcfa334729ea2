//! The readable training report (`report.md` next to the model set): each model's held-out
//! metrics against its baseline, what could not be trained and why, the segments in words,
//! and the plots.

use std::fmt::Write;

use super::Outcome;
use crate::model::segments::SegmentModel;
use crate::model::set::Manifest;

fn number(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
    }
}

pub fn markdown(manifest: &Manifest, outcome: &Outcome, segments: &Option<SegmentModel>) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Model set {}\n", manifest.version);
    let _ = writeln!(
        md,
        "Trained at {} on {} events of {} customers before {}. Metrics are measured on the held-out period from {} (models fitted on the history before it), then every model was fitted again on the whole history for serving.\n",
        manifest.trained_at,
        manifest.events,
        manifest.customers,
        manifest.as_of,
        manifest.holdout_from
    );
    let _ = writeln!(md, "## Models against their baselines (held out)\n");
    let _ = writeln!(
        md,
        "| model | metric | model | baseline | margin | relative |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for (model, comps) in &outcome.comparisons {
        for c in comps {
            let _ = writeln!(
                md,
                "| {model} | {} | {} | {} | {} {} | {} |",
                c.metric,
                number(c.model),
                number(c.baseline),
                number(c.margin()),
                if c.model_is_better() {
                    "better"
                } else {
                    "worse"
                },
                c.relative_improvement()
                    .map_or("-".into(), |r| format!("{:+.1}%", r * 100.0))
            );
        }
    }
    let _ = writeln!(
        md,
        "\nBaselines: propensity against the overall answer rate and against each offer's own rate; channel against each channel's rate (the most popular channel first); send time against everyone's hours (the most popular hours); value against each customer buying on at their past rate; segments against one segment for all. `decision_propensity` is what decisions use: the offer's propensity times the channel's and the hour's lift.\n"
    );
    if !outcome.notes.is_empty() {
        let _ = writeln!(md, "## Notes: what had too little data\n");
        for n in &outcome.notes {
            let _ = writeln!(md, "- {n}");
        }
        md.push('\n');
    }
    if let Some(s) = segments {
        let _ = writeln!(md, "## Segments\n");
        let _ = writeln!(md, "| # | name | customers | description |");
        let _ = writeln!(md, "|---|---|---|---|");
        for (i, seg) in s.segments.iter().enumerate() {
            let _ = writeln!(
                md,
                "| {i} | {} | {} | {} |",
                seg.name, seg.size, seg.description
            );
        }
        md.push('\n');
    }
    if !outcome.plots.is_empty() {
        let _ = writeln!(md, "## Plots\n");
        for (file, _) in &outcome.plots {
            let _ = writeln!(md, "![{file}]({file})\n");
        }
    }
    let _ = writeln!(md, "## All metrics\n\n```json");
    let _ = writeln!(
        md,
        "{}",
        serde_json::to_string_pretty(&manifest.metrics).unwrap_or_default()
    );
    let _ = writeln!(md, "```");
    md
}
