//! Learning models from event histories; used by the `train` and `simulate` commands only.
//!
//! [`train`] reads any event history in the API's format, however partial, and writes a model
//! set (see [`crate::model::set`]): each model is fitted on the history before a held-out
//! period (the last `training.holdout_fraction` of the time span), measured on that period
//! against a simple baseline, then fitted again on the whole history for serving. A model with
//! too little data is left out and the report says why; a file of purchases alone still gives
//! the customer-value model.

pub mod closed_loop;
pub mod dataset;
pub mod evaluate;
pub mod metrics;
pub mod plots;
pub mod remote;
pub mod report;
pub mod response;
pub mod segments;
pub mod send_time;
pub mod simulate;
pub mod value_fit;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use indicatif::ProgressBar;
use serde::Serialize;

use crate::decision::catalog::Catalog;
use crate::model::features::FeatureSchema;
use crate::model::response::{ChannelModel, Combination, PropensityModel};
use crate::model::segments::SegmentModel;
use crate::model::send_time::SendTimeModel;
use crate::model::set::{Artifact, FeatureSchemas, MANIFEST, Manifest, hash_hex, names};
use crate::model::value::{ClvSettings, RfmSummary, TimeUnit, ValueModel};
use crate::profile::PurchaseSummary;
use crate::settings::Settings;
use dataset::{Replay, ReplayOptions, days};
use metrics::{BinaryMetrics, Comparison, binary_metrics};
use response::FitSettings;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("cannot read the events {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} holds no usable event before the as-of time")]
    NoEvents(PathBuf),
    #[error("cannot write the model set to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("fitting failed: {0}")]
    Fit(String),
}

/// What `train` did, for the command's summary.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub version: String,
    pub events: usize,
    pub rejected_lines: usize,
    pub customers: usize,
    pub contacts: usize,
    pub models: Vec<String>,
    pub notes: Vec<String>,
    pub report: PathBuf,
}

/// Progress reporting: one bar per long step.
pub trait Progress {
    fn step(&self, name: &str) -> ProgressBar;
}

/// No progress output (tests, libraries).
pub struct Quiet;

impl Progress for Quiet {
    fn step(&self, _: &str) -> ProgressBar {
        ProgressBar::hidden()
    }
}

#[derive(Debug, Clone, Serialize)]
struct ValueMetrics {
    customers: usize,
    holdout_weeks: f64,
    /// Mean absolute error of each customer's repeat purchases in the held-out period.
    mae: f64,
    /// The same for the baseline: each customer keeps buying at their past rate.
    baseline_mae: f64,
    actual_total: f64,
    predicted_total: f64,
    baseline_total: f64,
    /// Correlation of predicted and actual purchases per customer.
    correlation: f64,
    baseline_correlation: f64,
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    if va <= 0.0 || vb <= 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

fn rfm(s: &PurchaseSummary) -> RfmSummary {
    RfmSummary {
        frequency: s.frequency,
        recency: TimeUnit::Week.from_days(s.recency_days),
        age: TimeUnit::Week.from_days(s.age_days),
        mean_repeat_spend: s.mean_repeat_spend,
    }
}

fn fit_value(
    summaries: &[RfmSummary],
    clv: ClvSettings,
    notes: &mut Vec<String>,
) -> Option<ValueModel> {
    let opts = value_fit::FitOptions::default();
    let bg = match value_fit::fit_bg_nbd(summaries, &opts) {
        Ok(r) => r.params,
        Err(e) => {
            notes.push(format!("value: no BG/NBD model ({e})"));
            return None;
        }
    };
    let gg = match value_fit::fit_gamma_gamma(summaries, &opts) {
        Ok(r) => Some(r.params),
        Err(e) => {
            notes.push(format!(
                "value: no Gamma-Gamma spend model ({e}); spend and CLV are 0"
            ));
            None
        }
    };
    Some(ValueModel {
        time_unit: TimeUnit::Week,
        bg_nbd: bg,
        gamma_gamma: gg,
        clv,
    })
}

fn evaluate_value(replay: &Replay, model: &ValueModel, holdout_days: f64) -> Option<ValueMetrics> {
    let t = TimeUnit::Week.from_days(holdout_days);
    let mut actual = Vec::new();
    let mut predicted = Vec::new();
    let mut baseline = Vec::new();
    for (split, end) in replay.at_split.iter().zip(&replay.at_end) {
        let (Some(Some(s)), Some(e)) = (split.as_ref().map(|x| x.summary), end.summary) else {
            continue;
        };
        let r = rfm(&s);
        actual.push((e.frequency - s.frequency).max(0.0));
        predicted.push(model.bg_nbd.expected_purchases(&r, t));
        baseline.push(if r.age > 0.0 {
            r.frequency / r.age * t
        } else {
            0.0
        });
    }
    if actual.is_empty() {
        return None;
    }
    let mae = |p: &[f64]| {
        p.iter()
            .zip(&actual)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>()
            / actual.len() as f64
    };
    Some(ValueMetrics {
        customers: actual.len(),
        holdout_weeks: t,
        mae: mae(&predicted),
        baseline_mae: mae(&baseline),
        actual_total: actual.iter().sum(),
        predicted_total: predicted.iter().sum(),
        baseline_total: baseline.iter().sum(),
        correlation: correlation(&predicted, &actual),
        baseline_correlation: correlation(&baseline, &actual),
    })
}

/// Deterministic 1-in-5 split of customers for the segment evaluation.
fn held_out_customer(id: &str) -> bool {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes()).is_multiple_of(5)
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), TrainError> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).map_err(|source| TrainError::Write { path, source })
}

/// Everything the report and the manifest say about one training run.
pub struct Outcome {
    pub metrics: serde_json::Map<String, serde_json::Value>,
    pub comparisons: BTreeMap<String, Vec<Comparison>>,
    pub plots: Vec<(String, String)>,
    pub notes: Vec<String>,
}

pub fn train(
    events_path: &Path,
    out_dir: &Path,
    as_of: Option<DateTime<Utc>>,
    settings: &Settings,
    progress: &dyn Progress,
) -> Result<TrainSummary, TrainError> {
    let ts = &settings.training;
    let started = std::time::Instant::now();
    let bar = progress.step("reading events");
    let loaded = dataset::load_events(events_path, as_of.map(|t| t.timestamp()), &bar).map_err(
        |source| TrainError::Read {
            path: events_path.to_owned(),
            source,
        },
    )?;
    bar.finish_and_clear();
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "training step 1 done"
    );
    let events = loaded.events;
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Err(TrainError::NoEvents(events_path.to_owned()));
    };
    let start = first.at.timestamp();
    let end = as_of.map_or(last.at.timestamp() + 1, |t| t.timestamp());
    let holdout_seconds = ((end - start) as f64 * ts.holdout_fraction) as i64;
    let split = end - holdout_seconds;
    let mut notes: Vec<String> = Vec::new();
    if loaded.rejected > 0 {
        notes.push(format!(
            "{} of {} lines were not valid events and were skipped (first: line {} {})",
            loaded.rejected, loaded.lines, loaded.first_rejects[0].0, loaded.first_rejects[0].1
        ));
    }

    let catalog = Catalog::load(&settings.catalog.path)
        .inspect_err(|e| {
            notes.push(format!(
                "no catalog ({e}): offers are known to the pooled model by their history only"
            ))
        })
        .ok();
    let categories = catalog.as_ref().map(|c| c.categories()).unwrap_or_default();
    let vocab = dataset::learn_vocabulary(&events);
    let response_schema = dataset::response_schema(&vocab, &categories);
    let channel_schema = dataset::channel_schema(&vocab);

    let bar = progress.step("replaying history");
    let replay = dataset::replay(
        &events,
        catalog.as_ref(),
        &response_schema,
        &channel_schema,
        &ReplayOptions {
            split,
            end,
            response_window: days(ts.response_window_days),
            limits: settings.profile.clone(),
        },
        &bar,
    );
    bar.finish_and_clear();
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "training step 2 done"
    );

    let mut outcome = Outcome {
        metrics: serde_json::Map::new(),
        comparisons: BTreeMap::new(),
        plots: Vec::new(),
        notes,
    };
    let mut artifacts: Vec<(&'static str, Vec<u8>)> = Vec::new();

    // Customer value: BG/NBD + Gamma-Gamma, held out on the purchases after the split.
    let clv = ClvSettings {
        horizon_days: ts.clv_horizon_days,
        annual_discount_rate: ts.clv_discount_rate,
        margin: ts.clv_margin,
    };
    let split_rfm: Vec<RfmSummary> = replay
        .at_split
        .iter()
        .filter_map(|s| s.as_ref().and_then(|s| s.summary).map(|p| rfm(&p)))
        .collect();
    let end_rfm: Vec<RfmSummary> = replay
        .at_end
        .iter()
        .filter_map(|s| s.summary.map(|p| rfm(&p)))
        .collect();
    let mut eval_notes = Vec::new();
    if let Some(m) = fit_value(&split_rfm, clv, &mut eval_notes)
        && let Some(metrics) = evaluate_value(&replay, &m, holdout_seconds as f64 / 86_400.0)
    {
        outcome.comparisons.insert(
            names::VALUE.into(),
            vec![
                Comparison::new(
                    "holdout purchases MAE",
                    metrics.mae,
                    metrics.baseline_mae,
                    false,
                ),
                Comparison::new(
                    "holdout purchases correlation",
                    metrics.correlation,
                    metrics.baseline_correlation,
                    true,
                ),
            ],
        );
        outcome.metrics.insert(
            names::VALUE.into(),
            serde_json::to_value(&metrics).unwrap_or_default(),
        );
    }
    let value_model = fit_value(&end_rfm, clv, &mut outcome.notes);
    if let Some(v) = &value_model {
        artifacts.push((names::VALUE, pretty(v)));
    }

    // Segments: k-means on value and engagement features.
    let bar = progress.step("segments");
    let split_rows: Vec<(usize, [f64; 6])> = replay
        .at_split
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i, s.segment_features)))
        .collect();
    let (fit_rows, eval_rows): (Vec<_>, Vec<_>) = split_rows
        .iter()
        .partition(|(i, _)| !held_out_customer(replay.customers[*i].as_str()));
    let fit_rows: Vec<[f64; 6]> = fit_rows.iter().map(|(_, r)| *r).collect();
    let eval_rows: Vec<[f64; 6]> = eval_rows.iter().map(|(_, r)| *r).collect();
    let eval_segments = match segments::fit_segments(&fit_rows, ts.segments) {
        Ok(m) => {
            let metrics = segments::evaluate_segments(&m, &eval_rows);
            outcome.comparisons.insert(
                names::SEGMENTS.into(),
                vec![Comparison::new(
                    "held-out explained variance",
                    metrics.explained_variance,
                    metrics.baseline_explained_variance,
                    true,
                )],
            );
            outcome.metrics.insert(
                names::SEGMENTS.into(),
                serde_json::to_value(&metrics).unwrap_or_default(),
            );
            Some(m)
        }
        Err(e) => {
            outcome.notes.push(format!("segments: not evaluated ({e})"));
            None
        }
    };
    let end_rows: Vec<[f64; 6]> = replay.at_end.iter().map(|s| s.segment_features).collect();
    let segment_model: Option<SegmentModel> = match segments::fit_segments(&end_rows, ts.segments) {
        Ok(m) => Some(m),
        Err(e) => {
            outcome.notes.push(format!("segments: no model ({e})"));
            None
        }
    };
    if let Some(s) = &segment_model {
        artifacts.push((names::SEGMENTS, pretty(s)));
    }
    bar.finish_and_clear();
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "training step 3 done"
    );

    // Send time.
    let bar = progress.step("send time");
    let split_engagement: Vec<&[u32]> = replay
        .at_split
        .iter()
        .map(|s| s.as_ref().map_or(&[][..], |s| s.engagement.as_slice()))
        .collect();
    let split_segment: Vec<Option<usize>> = replay
        .at_split
        .iter()
        .map(|s| {
            s.as_ref().and_then(|s| {
                eval_segments
                    .as_ref()
                    .map(|m| m.assign(&s.segment_features))
            })
        })
        .collect();
    let total_touches: u64 = split_engagement
        .iter()
        .flat_map(|e| e.iter())
        .map(|&n| n as u64)
        .sum();
    let mut send_time_model: Option<SendTimeModel> = None;
    if total_touches < 100 || replay.holdout_touches.len() < 50 {
        outcome.notes.push(format!(
            "send_time: too little data ({total_touches} touches before the held-out period, {} in it)",
            replay.holdout_touches.len()
        ));
    } else {
        let k = eval_segments.as_ref().map_or(0, |m| m.centres.len());
        let (global, by_segment) = send_time::profiles(&split_engagement, &split_segment, k);
        let (mut eval_model, metrics) = send_time::fit_shrinkage(
            global,
            by_segment,
            &split_engagement,
            &split_segment,
            &replay.holdout_touches,
        );
        outcome.comparisons.insert(
            names::SEND_TIME.into(),
            vec![
                Comparison::new(
                    "held-out touch log-likelihood",
                    metrics.log_likelihood,
                    metrics.baseline_log_likelihood,
                    true,
                ),
                Comparison::new(
                    "held-out touches in top-3 hours",
                    metrics.top3_hit_rate,
                    metrics.baseline_top3_hit_rate,
                    true,
                ),
            ],
        );
        // Time sensitivity from the contacts before the split.
        let (scores, labels): (Vec<f64>, Vec<bool>) = replay
            .examples
            .iter()
            .filter(|e| !e.holdout)
            .map(|e| {
                (
                    send_time::contact_score(&eval_model, e, split_segment[e.customer as usize]),
                    e.positive,
                )
            })
            .unzip();
        eval_model.time_sensitivity =
            send_time::fit_time_sensitivity(&scores, &labels).unwrap_or(0.0);
        let mut m = serde_json::to_value(&metrics).unwrap_or_default();
        m["time_sensitivity"] = eval_model.time_sensitivity.into();
        m["smoothing"] = eval_model.smoothing.into();
        m["daily_pooling"] = eval_model.daily_pooling.into();
        m["segment_weight"] = eval_model.segment_weight.into();
        m["global_weight"] = eval_model.global_weight.into();
        outcome.metrics.insert(names::SEND_TIME.into(), m);
        // The served model: profiles from the whole history, the weights learned above.
        let end_engagement: Vec<&[u32]> = replay
            .at_end
            .iter()
            .map(|s| s.engagement.as_slice())
            .collect();
        let end_segment: Vec<Option<usize>> = replay
            .at_end
            .iter()
            .map(|s| {
                segment_model
                    .as_ref()
                    .map(|m| m.assign(&s.segment_features))
            })
            .collect();
        let k = segment_model.as_ref().map_or(0, |m| m.centres.len());
        let (global, by_segment) = send_time::profiles(&end_engagement, &end_segment, k);
        let model = SendTimeModel {
            global,
            segments: by_segment,
            ..eval_model.clone()
        };
        artifacts.push((names::SEND_TIME, pretty(&model)));
        send_time_model = Some(model);
    }
    bar.finish_and_clear();
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "training step 4 done"
    );

    // Response models.
    let fit = FitSettings {
        l2: ts.l2,
        max_iterations: ts.max_iterations,
        min_examples: ts.min_examples,
        min_positives: ts.min_positives,
        max_rows: ts.max_rows,
    };
    let train_rows: Vec<usize> = (0..replay.examples.len())
        .filter(|&i| !replay.examples[i].holdout)
        .collect();
    let hold_rows: Vec<usize> = (0..replay.examples.len())
        .filter(|&i| replay.examples[i].holdout)
        .collect();
    let all_rows: Vec<usize> = (0..replay.examples.len()).collect();
    let positives = replay.examples.iter().filter(|e| e.positive).count();
    let mut propensity_model: Option<PropensityModel> = None;
    let mut channel_model: Option<ChannelModel> = None;
    if replay.examples.len() < ts.min_examples
        || positives < ts.min_positives
        || hold_rows.is_empty()
    {
        outcome.notes.push(format!(
            "propensity and channel: too little data ({} contacts with a known outcome, {positives} answered positively, {} in the held-out period); no response models",
            replay.examples.len(),
            hold_rows.len()
        ));
    } else {
        let bar = progress.step("propensity models");
        let eval =
            response::fit_propensity(&replay, &train_rows, &response_schema, &fit, None, &bar)
                .map_err(|e| TrainError::Fit(e.to_string()))?;
        let ch_eval =
            response::fit_channels(&replay, &train_rows, channel_schema.width(), &fit, None)
                .map_err(|e| TrainError::Fit(e.to_string()))?;
        let combination = evaluate_response(
            &replay,
            &train_rows,
            &hold_rows,
            &response_schema,
            &channel_schema,
            &eval.model,
            &ch_eval.0,
            send_time_model.as_ref(),
            &fit,
            &mut outcome,
        );
        let mut final_fit = response::fit_propensity(
            &replay,
            &all_rows,
            &response_schema,
            &fit,
            Some(&eval.model),
            &bar,
        )
        .map_err(|e| TrainError::Fit(e.to_string()))?;
        final_fit.model.combination = combination;
        bar.finish_and_clear();
        for (offer, why) in &final_fit.shared_offers {
            outcome.notes.push(format!(
                "propensity: {offer} has too little data for a model of its own ({why}; a model needs {} contacts and {} positive and negative answers)",
                ts.min_examples, ts.min_positives
            ));
        }
        let (ch_final, ch_notes) = response::fit_channels(
            &replay,
            &all_rows,
            channel_schema.width(),
            &fit,
            Some(&ch_eval.0),
        )
        .map_err(|e| TrainError::Fit(e.to_string()))?;
        outcome.notes.extend(ch_notes);
        artifacts.push((names::PROPENSITY, pretty(&final_fit.model)));
        artifacts.push((names::CHANNEL, pretty(&ch_final)));
        propensity_model = Some(final_fit.model);
        channel_model = Some(ch_final);
    }

    // Write: artifacts first, the manifest last, by rename, so a reader never sees a
    // manifest pointing at files not yet written.
    std::fs::create_dir_all(out_dir).map_err(|source| TrainError::Write {
        path: out_dir.to_owned(),
        source,
    })?;
    let mut table = BTreeMap::new();
    let mut all_bytes = Vec::new();
    for (name, bytes) in &artifacts {
        let file = format!("{name}.json");
        write_file(out_dir, &file, bytes)?;
        all_bytes.extend_from_slice(bytes);
        table.insert(
            (*name).to_owned(),
            Artifact {
                file,
                xxh3: hash_hex(bytes),
            },
        );
    }
    for (file, svg) in &outcome.plots {
        write_file(out_dir, file, svg.as_bytes())?;
    }
    let trained_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let version = format!("{trained_at}-{}", &hash_hex(&all_bytes)[..4]);
    let mut metrics = outcome.metrics.clone();
    metrics.insert(
        "comparisons".into(),
        serde_json::to_value(&outcome.comparisons).unwrap_or_default(),
    );
    let rfc = |t: i64| {
        DateTime::<Utc>::from_timestamp(t, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let manifest = Manifest {
        version: version.clone(),
        trained_at,
        as_of: rfc(end),
        holdout_from: rfc(split),
        events: events.len(),
        customers: replay.customers.len(),
        feature_schemas: FeatureSchemas {
            response: propensity_model.as_ref().map(|_| response_schema.clone()),
            channel: channel_model.as_ref().map(|_| channel_schema.clone()),
        },
        artifacts: table,
        metrics: serde_json::Value::Object(metrics),
        notes: outcome.notes.clone(),
    };
    let report_path = out_dir.join("report.md");
    let report = report::markdown(&manifest, &outcome, &segment_model);
    write_file(out_dir, "report.md", report.as_bytes())?;
    let tmp = out_dir.join(format!(".{MANIFEST}.tmp"));
    let text = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    std::fs::write(&tmp, text).map_err(|source| TrainError::Write {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, out_dir.join(MANIFEST)).map_err(|source| TrainError::Write {
        path: out_dir.join(MANIFEST),
        source,
    })?;
    Ok(TrainSummary {
        version,
        events: events.len(),
        rejected_lines: loaded.rejected,
        customers: replay.customers.len(),
        contacts: replay.examples.len(),
        models: artifacts.iter().map(|(n, _)| (*n).to_owned()).collect(),
        notes: outcome.notes,
        report: report_path,
    })
}

fn pretty<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).expect("artifacts serialise")
}

/// The parts of the decision propensity for one contact: the offer's propensity, the
/// channel's lift and the hour's lift (normalised over the customer's week as serving does,
/// using the customer's engagement at the split).
struct Parts<'a> {
    replay: &'a Replay,
    rw: usize,
    cw: usize,
    propensity: &'a PropensityModel,
    channels: &'a ChannelModel,
    send_time: Option<&'a SendTimeModel>,
    week_norm: std::collections::HashMap<usize, f64>,
    rx: Vec<f64>,
    cx: Vec<f64>,
}

impl Parts<'_> {
    fn of(&mut self, i: usize) -> [f64; 3] {
        let replay = self.replay;
        let e = &replay.examples[i];
        response::row_into(&replay.response_x, self.rw, i, &mut self.rx);
        response::row_into(&replay.channel_x, self.cw, i, &mut self.cx);
        let (m, _) = self.propensity.for_offer(
            &replay.offers[e.offer as usize],
            &replay.offer_categories[e.offer as usize],
        );
        let p = m.probability(&self.rx);
        let channel_lift = self.channels.lift(e.channel, &self.cx);
        let time_lift = self.send_time.map_or(1.0, |st| {
            let c = e.customer as usize;
            let norm = *self.week_norm.entry(c).or_insert_with(|| {
                let engagement = replay.at_split[c]
                    .as_ref()
                    .map_or(&[][..], |s| s.engagement.as_slice());
                let q = st.distribution(engagement, None);
                q.iter()
                    .map(|x| (168.0 * x).max(1e-9).powf(st.time_sensitivity))
                    .sum::<f64>()
                    / 168.0
            });
            (send_time::contact_score(st, e, None) * st.time_sensitivity).exp() / norm
        });
        [p, channel_lift, time_lift]
    }
}

/// Held-out metrics of the propensity models, the channel models and the propensity the
/// decisions use (offer propensity with channel and hour lifts, combined by a calibration
/// fitted on the training contacts), each against baselines. Returns the combination.
#[allow(clippy::too_many_arguments)]
fn evaluate_response(
    replay: &Replay,
    train_rows: &[usize],
    hold_rows: &[usize],
    response_schema: &FeatureSchema,
    channel_schema: &FeatureSchema,
    propensity: &PropensityModel,
    channels: &ChannelModel,
    send_time: Option<&SendTimeModel>,
    settings: &FitSettings,
    outcome: &mut Outcome,
) -> Combination {
    let ex = &replay.examples;
    let mut parts = Parts {
        replay,
        rw: response_schema.width(),
        cw: channel_schema.width(),
        propensity,
        channels,
        send_time,
        week_norm: std::collections::HashMap::new(),
        rx: vec![0.0; response_schema.width()],
        cx: vec![0.0; channel_schema.width()],
    };
    // The combination, on (a sample of) the training contacts.
    let step = (train_rows.len() / settings.max_rows.max(1)).max(1);
    let sample: Vec<usize> = train_rows.iter().copied().step_by(step).collect();
    let train_parts: Vec<[f64; 3]> = sample.iter().map(|&i| parts.of(i)).collect();
    let train_labels: Vec<bool> = sample.iter().map(|&i| ex[i].positive).collect();
    let combination =
        response::fit_combination(&train_parts, &train_labels, settings.l2).unwrap_or_default();

    let train_rate = train_rows.iter().filter(|&&i| ex[i].positive).count() as f64
        / train_rows.len().max(1) as f64;
    let mut offer_counts: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    for &i in train_rows {
        let c = offer_counts.entry(ex[i].offer).or_default();
        c.0 += ex[i].positive as u8 as f64;
        c.1 += 1.0;
    }
    let offer_rate = |o: u32| {
        offer_counts
            .get(&o)
            .map_or(train_rate, |(p, n)| (p + train_rate * 10.0) / (n + 10.0))
    };
    let labels: Vec<bool> = hold_rows.iter().map(|&i| ex[i].positive).collect();
    let mut p_model = Vec::with_capacity(hold_rows.len());
    let mut p_offer_rate = Vec::with_capacity(hold_rows.len());
    let mut p_channel = Vec::with_capacity(hold_rows.len());
    let mut p_channel_base = Vec::with_capacity(hold_rows.len());
    let mut p_combined = Vec::with_capacity(hold_rows.len());
    for &i in hold_rows {
        let e = &ex[i];
        let [p, channel_lift, time_lift] = parts.of(i);
        p_model.push(p);
        p_offer_rate.push(offer_rate(e.offer));
        p_channel.push(channel_lift * channels.overall_rate);
        p_channel_base.push(
            channels
                .base_rates
                .get(&e.channel)
                .copied()
                .unwrap_or(channels.overall_rate),
        );
        p_combined.push(combination.probability(p, channel_lift, time_lift));
    }
    let constant = vec![train_rate; hold_rows.len()];
    let base: BinaryMetrics = binary_metrics(&constant, &labels);
    let model = binary_metrics(&p_model, &labels);
    let by_offer = binary_metrics(&p_offer_rate, &labels);
    let mut comps = model.compare(&base);
    comps.extend(model.compare(&by_offer).into_iter().map(|c| {
        Comparison::new(
            format!("{} vs offer rates", c.metric),
            c.model,
            c.baseline,
            c.higher_is_better,
        )
    }));
    outcome.comparisons.insert(names::PROPENSITY.into(), comps);
    let ch = binary_metrics(&p_channel, &labels);
    let ch_base = binary_metrics(&p_channel_base, &labels);
    outcome
        .comparisons
        .insert(names::CHANNEL.into(), ch.compare(&ch_base));
    let combined = binary_metrics(&p_combined, &labels);
    let mut comps = combined.compare(&base);
    comps.extend(combined.compare(&by_offer).into_iter().map(|c| {
        Comparison::new(
            format!("{} vs offer rates", c.metric),
            c.model,
            c.baseline,
            c.higher_is_better,
        )
    }));
    outcome
        .comparisons
        .insert("decision_propensity".into(), comps);
    outcome.metrics.insert(
        names::PROPENSITY.into(),
        serde_json::json!({"model": model, "overall_rate_baseline": base, "offer_rate_baseline": by_offer}),
    );
    outcome.metrics.insert(
        names::CHANNEL.into(),
        serde_json::json!({"model": ch, "channel_rate_baseline": ch_base}),
    );
    outcome.metrics.insert(
        "decision_propensity".into(),
        serde_json::json!({"model": combined, "overall_rate_baseline": base, "offer_rate_baseline": by_offer, "combination": combination}),
    );
    let calib = metrics::calibration(&p_combined, &labels, 10);
    if let Ok(svg) = plots::calibration_svg(
        "Calibration of the decision propensity (held out)",
        &calib,
        Some(train_rate),
    ) {
        outcome.plots.push(("calibration.svg".into(), svg));
    }
    let l_model = metrics::lift_curve(&p_combined, &labels, 20);
    let l_offer = metrics::lift_curve(&p_offer_rate, &labels, 20);
    let l_prop = metrics::lift_curve(&p_model, &labels, 20);
    if let Ok(svg) = plots::lift_svg(
        "Cumulative gains on held-out contacts",
        &[
            ("decision propensity", &l_model),
            ("offer propensity", &l_prop),
            ("baseline: offer rates", &l_offer),
        ],
    ) {
        outcome.plots.push(("lift.svg".into(), svg));
    }
    combination
}
