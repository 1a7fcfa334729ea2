//! Fitting the response models with linfa's logistic regression: propensity per offer (and
//! pooled), and answer rate per channel.

use std::collections::BTreeMap;

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};

use super::dataset::{Example, Replay};
use crate::model::features::FeatureSchema;
use crate::model::response::{ChannelModel, Combination, Logistic, PropensityModel, logit};
use crate::profile::Channel;

#[derive(Debug, Clone)]
pub struct FitSettings {
    /// L2 penalty (linfa's `alpha`; the loss is summed over examples).
    pub l2: f64,
    pub max_iterations: u64,
    /// An offer or channel gets a model of its own with at least this many examples...
    pub min_examples: usize,
    /// ...and this many positive and this many negative ones.
    pub min_positives: usize,
    /// Larger training sets are fitted on all positives and a sample of negatives.
    pub max_rows: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("{what}: only one outcome in the data ({positives} positive of {examples})")]
    OneClass {
        what: String,
        examples: usize,
        positives: usize,
    },
    #[error("{what}: {message}")]
    Linfa { what: String, message: String },
}

/// The chosen rows and columns, standardised (mean 0, standard deviation 1 per column),
/// with the means and deviations used. Column-major, because linfa's gradient multiplies by
/// the transpose: with this layout that product walks memory in order (measured: most of the
/// fit time went to a strided walk otherwise). Standardised columns make the optimiser
/// converge in a fraction of the iterations.
fn matrix(
    rows: &[usize],
    x: &[f32],
    width: usize,
    columns: &[usize],
) -> (Array2<f64>, Vec<f64>, Vec<f64>) {
    use ndarray::ShapeBuilder;
    let mut m = Array2::<f64>::zeros((rows.len(), columns.len()).f());
    for (r, &i) in rows.iter().enumerate() {
        let src = &x[i * width..(i + 1) * width];
        for (dst, &c) in m.row_mut(r).iter_mut().zip(columns) {
            *dst = src[c] as f64;
        }
    }
    let n = rows.len().max(1) as f64;
    let mut means = Vec::with_capacity(columns.len());
    let mut scales = Vec::with_capacity(columns.len());
    for mut col in m.columns_mut() {
        let mean = col.sum() / n;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        // A constant column carries nothing; leave it at 0 rather than divide by 0.
        let scale = if var > 1e-12 {
            var.sqrt()
        } else {
            f64::INFINITY
        };
        col.mapv_inplace(|v| {
            if scale.is_finite() {
                (v - mean) / scale
            } else {
                0.0
            }
        });
        means.push(mean);
        scales.push(scale);
    }
    (m, means, scales)
}

/// What to fit: the rows, a subset of the columns, and a model to start from.
pub struct FitInput<'a> {
    pub rows: &'a [usize],
    pub x: &'a [f32],
    pub width: usize,
    /// Columns used; the weights of the others are 0.
    pub columns: &'a [usize],
    /// A fit on similar data (the held-out evaluation's) to start from: the refit on the
    /// whole history then needs few iterations.
    pub warm_start: Option<&'a Logistic>,
}

/// Fits `P(positive | x)`. Above `max_rows` examples, negatives are subsampled and the
/// intercept corrected by the log of the sampling rate (the odds in the sample are the true
/// odds divided by it), which keeps the fit fast on large histories.
pub fn fit_logistic(
    input: &FitInput<'_>,
    examples: &[Example],
    settings: &FitSettings,
    what: &str,
) -> Result<Logistic, FitError> {
    let all_positives = input.rows.iter().filter(|&&i| examples[i].positive).count();
    if all_positives == 0 || all_positives == input.rows.len() {
        return Err(FitError::OneClass {
            what: what.to_owned(),
            examples: input.rows.len(),
            positives: all_positives,
        });
    }
    let negatives = input.rows.len() - all_positives;
    let keep_rate = if input.rows.len() > settings.max_rows && settings.max_rows > all_positives {
        (settings.max_rows - all_positives) as f64 / negatives as f64
    } else {
        1.0
    };
    let sampled: Vec<usize> = if keep_rate < 1.0 {
        let threshold = (keep_rate * u64::MAX as f64) as u64;
        input
            .rows
            .iter()
            .copied()
            .filter(|&i| {
                examples[i].positive
                    || xxhash_rust::xxh3::xxh3_64(&(i as u64).to_le_bytes()) <= threshold
            })
            .collect()
    } else {
        input.rows.to_vec()
    };
    let labels: Array1<bool> = sampled.iter().map(|&i| examples[i].positive).collect();
    let positives = labels.iter().filter(|&&p| p).count();
    // linfa labels the larger class (by count) as its positive one; with fewer positive
    // answers than negative ones that is `false`, and its parameters are ours negated.
    let linfa_sign = if positives * 2 > labels.len() {
        1.0
    } else {
        -1.0
    };
    let mut params = LogisticRegression::default()
        .alpha(settings.l2)
        .max_iterations(settings.max_iterations)
        // linfa's loss is summed over examples, so its gradient grows with their number: a
        // fixed tolerance would demand ever more precision of larger data.
        .gradient_tolerance(1e-4 * sampled.len() as f64);
    let (records, means, scales) = matrix(&sampled, input.x, input.width, input.columns);
    if let Some(w) = input.warm_start {
        // The earlier fit's weights, in this fit's standardised units.
        let std_weights: Vec<f64> = input
            .columns
            .iter()
            .zip(&scales)
            .map(|(&c, s)| if s.is_finite() { w.weights[c] * s } else { 0.0 })
            .collect();
        let shift: f64 = input
            .columns
            .iter()
            .zip(&means)
            .map(|(&c, m)| w.weights[c] * m)
            .sum();
        let mut init: Vec<f64> = std_weights.iter().map(|w| linfa_sign * w).collect();
        init.push(linfa_sign * (w.intercept + shift - keep_rate.ln()));
        params = params.initial_params(Array1::from(init));
    }
    let data = Dataset::new(records, labels);
    let fitted = params.fit(&data).map_err(|e| FitError::Linfa {
        what: what.to_owned(),
        message: e.to_string(),
    })?;
    // Read the sign from the model rather than trust the count rule above.
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    // Back to raw units: w = w_std / scale, intercept -= sum(w * mean).
    let mut weights = vec![0.0; input.width];
    let mut intercept = sign * fitted.intercept() + keep_rate.ln();
    for (((&c, w), m), s) in input
        .columns
        .iter()
        .zip(fitted.params())
        .zip(&means)
        .zip(&scales)
    {
        if s.is_finite() {
            weights[c] = sign * w / s;
            intercept -= weights[c] * m;
        }
    }
    Ok(Logistic {
        intercept,
        weights,
        examples: input.rows.len(),
        positives: all_positives,
    })
}

fn enough(rows: &[usize], examples: &[Example], s: &FitSettings) -> bool {
    let pos = rows.iter().filter(|&&i| examples[i].positive).count();
    rows.len() >= s.min_examples && pos >= s.min_positives && rows.len() - pos >= s.min_positives
}

pub struct PropensityFit {
    pub model: PropensityModel,
    /// Offers without a model of their own, with why and which model scores them.
    pub shared_offers: Vec<(String, String)>,
}

pub fn fit_propensity(
    replay: &Replay,
    rows: &[usize],
    schema: &FeatureSchema,
    settings: &FitSettings,
    warm_start: Option<&PropensityModel>,
    progress: &indicatif::ProgressBar,
) -> Result<PropensityFit, FitError> {
    let ex = &replay.examples;
    let width = schema.width();
    let all_columns: Vec<usize> = (0..width).collect();
    let offer_columns = schema.offer_independent_columns();
    let mut by_offer: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    let mut by_category: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in rows {
        by_offer.entry(ex[i].offer).or_default().push(i);
        by_category
            .entry(replay.offer_categories[ex[i].offer as usize].as_str())
            .or_default()
            .push(i);
    }
    progress.set_length((by_offer.len() + by_category.len()) as u64 + 1);
    let fit = |rows: &[usize], columns: &[usize], warm: Option<&Logistic>, what: &str| {
        fit_logistic(
            &FitInput {
                rows,
                x: &replay.response_x,
                width,
                columns,
                warm_start: warm,
            },
            ex,
            settings,
            what,
        )
    };
    let pooled = fit(
        rows,
        &all_columns,
        warm_start.map(|m| &m.pooled),
        "pooled propensity",
    )?;
    progress.inc(1);
    let mut categories = BTreeMap::new();
    for (category, category_rows) in &by_category {
        if *category != "unknown" && enough(category_rows, ex, settings) {
            let warm = warm_start.and_then(|m| m.categories.get(category));
            let m = fit(
                category_rows,
                &offer_columns,
                warm,
                &format!("propensity of category {category}"),
            )?;
            categories.insert((*category).to_owned(), m);
        }
        progress.inc(1);
    }
    let mut offers = BTreeMap::new();
    let mut shared_offers = Vec::new();
    for (o, offer_rows) in by_offer {
        let id = replay.offers[o as usize].clone();
        if enough(&offer_rows, ex, settings) {
            let warm = warm_start.and_then(|m| m.offers.get(&id));
            let m = fit(
                &offer_rows,
                &offer_columns,
                warm,
                &format!("propensity of {id}"),
            )?;
            offers.insert(id, m);
        } else {
            let pos = offer_rows.iter().filter(|&&i| ex[i].positive).count();
            let category = &replay.offer_categories[o as usize];
            let by = if categories.contains_key(category) {
                format!("the {category} category's model")
            } else {
                "the pooled model".to_owned()
            };
            shared_offers.push((
                id,
                format!(
                    "{} contacts, {pos} positive; scored by {by}",
                    offer_rows.len()
                ),
            ));
        }
        progress.inc(1);
    }
    Ok(PropensityFit {
        model: PropensityModel {
            offers: offers.into(),
            categories: categories.into(),
            pooled,
            combination: Combination::default(),
        },
        shared_offers,
    })
}

pub fn fit_channels(
    replay: &Replay,
    rows: &[usize],
    width: usize,
    settings: &FitSettings,
    warm_start: Option<&ChannelModel>,
) -> Result<(ChannelModel, Vec<String>), FitError> {
    let all_columns: Vec<usize> = (0..width).collect();
    let ex = &replay.examples;
    let mut by_channel: BTreeMap<Channel, Vec<usize>> = BTreeMap::new();
    for &i in rows {
        by_channel.entry(ex[i].channel).or_default().push(i);
    }
    let positives = rows.iter().filter(|&&i| ex[i].positive).count();
    let overall_rate = positives as f64 / rows.len().max(1) as f64;
    let mut channels = BTreeMap::new();
    let mut base_rates = BTreeMap::new();
    let mut notes = Vec::new();
    for (c, channel_rows) in by_channel {
        let pos = channel_rows.iter().filter(|&&i| ex[i].positive).count();
        base_rates.insert(c, (pos as f64 + 1.0) / (channel_rows.len() as f64 + 2.0));
        if enough(&channel_rows, ex, settings) {
            let m = fit_logistic(
                &FitInput {
                    rows: &channel_rows,
                    x: &replay.channel_x,
                    width,
                    columns: &all_columns,
                    warm_start: warm_start.and_then(|m| m.channels.get(&c)),
                },
                ex,
                settings,
                &format!("channel model of {c}"),
            )?;
            channels.insert(c, m);
        } else {
            notes.push(format!(
                "channel {c}: too little data for a model ({} contacts, {pos} positive); its average rate is used",
                channel_rows.len()
            ));
        }
    }
    Ok((
        ChannelModel {
            channels,
            base_rates,
            overall_rate: overall_rate.clamp(1e-6, 1.0 - 1e-6),
        },
        notes,
    ))
}

/// Row `i` of a row-major feature table, as f64.
pub fn row_into(x: &[f32], width: usize, i: usize, out: &mut [f64]) {
    for (dst, &v) in out.iter_mut().zip(&x[i * width..(i + 1) * width]) {
        *dst = v as f64;
    }
}

/// Fits the [`Combination`] of offer propensity, channel lift and hour lift on rows of
/// `[p_offer, channel_lift, time_lift]` and their outcomes.
pub fn fit_combination(rows: &[[f64; 3]], labels: &[bool], l2: f64) -> Option<Combination> {
    let positives = labels.iter().filter(|&&l| l).count();
    if rows.len() < 100 || positives < 10 || positives == labels.len() {
        return None;
    }
    let mut x = Array2::<f64>::zeros((rows.len(), 3));
    for (i, r) in rows.iter().enumerate() {
        x[[i, 0]] = logit(r[0]);
        x[[i, 1]] = r[1].max(1e-9).ln();
        x[[i, 2]] = r[2].max(1e-9).ln();
    }
    let y: Array1<bool> = labels.iter().copied().collect();
    let fitted = LogisticRegression::default()
        .alpha(l2)
        .max_iterations(200)
        .fit(&Dataset::new(x, y))
        .ok()?;
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    let w = fitted.params();
    Some(Combination {
        intercept: sign * fitted.intercept(),
        offer: sign * w[0],
        channel: sign * w[1],
        time: sign * w[2],
    })
}
