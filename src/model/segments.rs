//! Customer segments as served: the nearest of k centres (from k-means at training) in a
//! standardised space of value and engagement features, each described in words.

use serde::{Deserialize, Serialize};

use crate::profile::{Profile, PurchaseSummary};

/// The features segments are built on, in order. Training and serving both use
/// [`segment_features`], so they cannot disagree.
pub const SEGMENT_FEATURES: [&str; 6] = [
    "repeat purchases",
    "mean repeat spend",
    "days since last purchase",
    "customer age in days",
    "engagement",
    "response rate",
];

/// Days since the last purchase assumed for a customer who never bought.
const NEVER_BOUGHT_DAYS: f64 = 730.0;

/// The segment features of a profile, given its purchase summary as of the time wanted (log
/// scales tame long tails).
pub fn segment_features(profile: &Profile, summary: Option<PurchaseSummary>) -> [f64; 6] {
    let (freq, spend, since, age) = match summary {
        Some(s) => (
            s.frequency,
            s.mean_repeat_spend,
            (s.age_days - s.recency_days).max(0.0),
            s.age_days,
        ),
        None => (0.0, 0.0, NEVER_BOUGHT_DAYS, 0.0),
    };
    let engagement: u64 = profile.engagement.iter().map(|&c| c as u64).sum();
    let (pos, contacts) = profile.channels.iter().fold((0u32, 0u32), |(a, b), c| {
        (a + c.positive_responses, b + c.contacts)
    });
    [
        freq.ln_1p(),
        spend.ln_1p(),
        since.ln_1p(),
        age.ln_1p(),
        (engagement as f64).ln_1p(),
        (pos as f64 + 1.0) / (contacts as f64 + 10.0),
    ]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentModel {
    pub features: Vec<String>,
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    /// Centres in the standardised space.
    pub centres: Vec<Vec<f64>>,
    pub segments: Vec<SegmentInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentInfo {
    /// Short name, e.g. "frequent, high-spend".
    pub name: String,
    /// A sentence describing the centre.
    pub description: String,
    /// Training customers in it.
    pub size: usize,
}

impl SegmentModel {
    pub fn check(&self) -> Result<(), String> {
        let n = SEGMENT_FEATURES.len();
        if self.features != SEGMENT_FEATURES.map(String::from) {
            return Err(format!(
                "the segment model uses features {:?}; this build computes {:?}",
                self.features, SEGMENT_FEATURES
            ));
        }
        if self.mean.len() != n
            || self.scale.len() != n
            || self.scale.iter().any(|s| !(*s > 0.0 && s.is_finite()))
            || self.centres.is_empty()
            || self.centres.iter().any(|c| c.len() != n)
            || self.segments.len() != self.centres.len()
        {
            return Err("the segment model is malformed".into());
        }
        Ok(())
    }

    pub fn standardise(&self, x: &[f64; 6]) -> [f64; 6] {
        let mut z = [0.0; 6];
        for i in 0..6 {
            z[i] = (x[i] - self.mean[i]) / self.scale[i];
        }
        z
    }

    /// Index of the nearest centre.
    pub fn assign(&self, x: &[f64; 6]) -> usize {
        let z = self.standardise(x);
        self.centres
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    i,
                    c.iter()
                        .zip(&z)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>(),
                )
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0, |(i, _)| i)
    }
}

/// Words for a centre from its standardised coordinates: the features at least half a
/// standard deviation from the average, strongest first.
pub fn describe(centre: &[f64]) -> (String, String) {
    let words = [
        ("frequent buyers", "rare buyers"),
        ("high spend", "low spend"),
        ("lapsing", "recent buyers"),
        ("long-standing", "new"),
        ("highly engaged", "disengaged"),
        ("responsive", "unresponsive"),
    ];
    let mut traits: Vec<(f64, &str)> = centre
        .iter()
        .zip(words)
        .filter(|(z, _)| z.abs() >= 0.5)
        .map(|(z, (hi, lo))| (z.abs(), if *z > 0.0 { hi } else { lo }))
        .collect();
    traits.sort_by(|a, b| b.0.total_cmp(&a.0));
    if traits.is_empty() {
        return (
            "average".into(),
            "Close to the average customer on every measure.".into(),
        );
    }
    let name = traits
        .iter()
        .take(2)
        .map(|t| t.1)
        .collect::<Vec<_>>()
        .join(", ");
    let all: Vec<String> = traits
        .iter()
        .map(|(z, t)| format!("{t} ({z:.1} sd)"))
        .collect();
    let description = format!("Customers who are {}.", all.join(", "));
    (name, description)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_centre_is_named_by_its_strongest_traits() {
        let (name, text) = describe(&[1.4, 0.8, -0.9, 0.1, 0.0, 0.2]);
        assert_eq!(name, "frequent buyers, recent buyers");
        assert!(text.contains("high spend (0.8 sd)"), "{text}");
        assert_eq!(describe(&[0.1; 6]).0, "average");
    }
}
