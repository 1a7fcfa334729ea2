//! Segments: k-means (linfa) on the standardised value and engagement features, each centre
//! described in words.

use linfa::prelude::*;
use linfa_clustering::KMeans;
use ndarray::Array2;
use serde::Serialize;

use crate::model::segments::{SEGMENT_FEATURES, SegmentInfo, SegmentModel, describe};

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("{0} customers are too few for {1} segments")]
    TooFew(usize, usize),
    #[error("k-means failed: {0}")]
    KMeans(String),
}

/// Held-out quality: how much of the spread around the average the centres explain.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentMetrics {
    pub customers: usize,
    /// 1 - (sum of squared distances to the nearest centre) / (to the overall mean), on
    /// held-out customers. The baseline, one segment for everyone, explains 0.
    pub explained_variance: f64,
    pub baseline_explained_variance: f64,
}

pub fn fit_segments(rows: &[[f64; 6]], k: usize) -> Result<SegmentModel, SegmentError> {
    if rows.len() < k * 10 {
        return Err(SegmentError::TooFew(rows.len(), k));
    }
    let n = rows.len() as f64;
    let mut mean = vec![0.0; 6];
    for r in rows {
        for j in 0..6 {
            mean[j] += r[j] / n;
        }
    }
    let mut scale = vec![0.0; 6];
    for r in rows {
        for j in 0..6 {
            scale[j] += (r[j] - mean[j]).powi(2) / n;
        }
    }
    // A feature without spread (e.g. no purchases at all) must not divide by zero.
    let scale: Vec<f64> = scale.into_iter().map(|v| v.sqrt().max(1e-6)).collect();
    let mut x = Array2::<f64>::zeros((rows.len(), 6));
    for (i, r) in rows.iter().enumerate() {
        for j in 0..6 {
            x[[i, j]] = (r[j] - mean[j]) / scale[j];
        }
    }
    let data = DatasetBase::from(x);
    let fitted = KMeans::params(k)
        .max_n_iterations(300)
        .tolerance(1e-6)
        .fit(&data)
        .map_err(|e| SegmentError::KMeans(e.to_string()))?;
    let centres: Vec<Vec<f64>> = fitted
        .centroids()
        .rows()
        .into_iter()
        .map(|r| r.to_vec())
        .collect();
    let mut model = SegmentModel {
        features: SEGMENT_FEATURES.map(String::from).to_vec(),
        mean,
        scale,
        centres,
        segments: Vec::new(),
    };
    let mut sizes = vec![0usize; k];
    for r in rows {
        sizes[model.assign(r)] += 1;
    }
    model.segments = model
        .centres
        .iter()
        .zip(sizes)
        .map(|(c, size)| {
            let (name, description) = describe(c);
            SegmentInfo {
                name,
                description,
                size,
            }
        })
        .collect();
    Ok(model)
}

pub fn evaluate_segments(model: &SegmentModel, rows: &[[f64; 6]]) -> SegmentMetrics {
    let mut within = 0.0;
    let mut total = 0.0;
    for r in rows {
        let z = model.standardise(r);
        let c = &model.centres[model.assign(r)];
        within += c.iter().zip(&z).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
        // Standardised with the training mean: the distance to the "average customer".
        total += z.iter().map(|v| v * v).sum::<f64>();
    }
    SegmentMetrics {
        customers: rows.len(),
        explained_variance: if total > 0.0 {
            1.0 - within / total
        } else {
            0.0
        },
        baseline_explained_variance: 0.0,
    }
}
