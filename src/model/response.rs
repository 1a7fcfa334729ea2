//! Response models as served: logistic scorers over the shared features.
//!
//! - [`PropensityModel`]: the probability that a customer answers an offer positively: one
//!   model per offer with enough data; for the others (and for offers added after training) a
//!   model per offer category, so a new card is scored like the cards customers answered;
//!   failing that, a pooled model over all offers with the offer's category and value as
//!   features.
//! - [`ChannelModel`]: the probability of a positive answer on each channel, as a lift over
//!   the average, so it can scale an offer's propensity.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::profile::Channel;

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A fitted logistic regression: `P(positive) = sigmoid(intercept + weights · x)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logistic {
    pub intercept: f64,
    pub weights: Vec<f64>,
    /// Training examples and positives behind it, for reports and explanations.
    pub examples: usize,
    pub positives: usize,
}

impl Logistic {
    pub fn logit(&self, x: &[f64]) -> f64 {
        debug_assert_eq!(x.len(), self.weights.len());
        self.intercept + self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>()
    }

    pub fn probability(&self, x: &[f64]) -> f64 {
        sigmoid(self.logit(x))
    }

    /// The `k` features that moved the logit most for this input, largest effect first.
    pub fn top_contributions<'n>(
        &self,
        x: &[f64],
        names: &'n [String],
        k: usize,
    ) -> Vec<(&'n str, f64)> {
        let mut c: Vec<(&str, f64)> = self
            .weights
            .iter()
            .zip(x)
            .zip(names)
            .filter(|((_, v), _)| **v != 0.0)
            .map(|((w, v), n)| (n.as_str(), w * v))
            .collect();
        c.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        c.truncate(k);
        c
    }

    pub fn check(&self, width: usize, what: &str) -> Result<(), String> {
        if self.weights.len() != width {
            return Err(format!(
                "{what} has {} weights but its feature schema builds {width} features",
                self.weights.len()
            ));
        }
        if !self.intercept.is_finite() || self.weights.iter().any(|w| !w.is_finite()) {
            return Err(format!("{what} has a weight that is not a finite number"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropensityModel {
    /// Offers with a model of their own.
    pub offers: ModelMap,
    /// Offer categories with a model, for offers without one of their own.
    pub categories: ModelMap,
    /// For every other offer.
    pub pooled: Logistic,
    /// How an offer's propensity, a channel's lift and an hour's lift combine into the
    /// probability of a positive answer to one action.
    #[serde(default)]
    pub combination: Combination,
}

/// `P(positive | offer, channel, hour) = sigmoid(intercept + offer·logit(p_offer) +
/// channel·ln(channel lift) + time·ln(hour lift))`, fitted on the training contacts. The offer propensity and the lifts are each learned without the others, so a
/// plain product would count twice what they share (e.g. a customer's general
/// responsiveness, which both the offer and the channel models see); this calibrates them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Combination {
    pub intercept: f64,
    pub offer: f64,
    pub channel: f64,
    pub time: f64,
}

impl Default for Combination {
    /// The plain product of propensity and lifts (for odds).
    fn default() -> Self {
        Self {
            intercept: 0.0,
            offer: 1.0,
            channel: 1.0,
            time: 1.0,
        }
    }
}

pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

impl Combination {
    pub fn probability(&self, p_offer: f64, channel_lift: f64, time_lift: f64) -> f64 {
        sigmoid(
            self.intercept
                + self.offer * logit(p_offer)
                + self.channel * channel_lift.max(1e-9).ln()
                + self.time * time_lift.max(1e-9).ln(),
        )
    }

    pub fn check(&self) -> Result<(), String> {
        if [self.intercept, self.offer, self.channel, self.time]
            .iter()
            .all(|x| x.is_finite())
        {
            Ok(())
        } else {
            Err("the propensity combination has a coefficient that is not a finite number".into())
        }
    }
}

/// Which propensity model scored an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelScope {
    Offer,
    Category,
    Pooled,
}

/// Models by name (offer id or category), stored as a map sorted by name (a JSON object in
/// the model file, as a `BTreeMap` writes it) and found by a hash of the name: a decision
/// looks up a model for every offer it scores, and a tree of names cost a string compare at
/// each level.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(
    from = "BTreeMap<String, Logistic>",
    into = "BTreeMap<String, Logistic>"
)]
pub struct ModelMap {
    sorted: BTreeMap<String, Logistic>,
    by_name: foldhash::HashMap<String, Logistic>,
}

impl ModelMap {
    pub fn get(&self, name: &str) -> Option<&Logistic> {
        self.by_name.get(name)
    }
}

impl std::ops::Deref for ModelMap {
    type Target = BTreeMap<String, Logistic>;
    fn deref(&self) -> &Self::Target {
        &self.sorted
    }
}

impl From<BTreeMap<String, Logistic>> for ModelMap {
    fn from(sorted: BTreeMap<String, Logistic>) -> Self {
        let by_name = sorted.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Self { sorted, by_name }
    }
}

impl From<ModelMap> for BTreeMap<String, Logistic> {
    fn from(m: ModelMap) -> Self {
        m.sorted
    }
}

impl<'a> IntoIterator for &'a ModelMap {
    type Item = (&'a String, &'a Logistic);
    type IntoIter = std::collections::btree_map::Iter<'a, String, Logistic>;
    fn into_iter(self) -> Self::IntoIter {
        self.sorted.iter()
    }
}

impl PartialEq for ModelMap {
    fn eq(&self, other: &Self) -> bool {
        self.sorted == other.sorted
    }
}

impl std::fmt::Debug for ModelMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.sorted.fmt(f)
    }
}

impl PropensityModel {
    /// The model for an offer: its own, its category's, or the pooled one.
    pub fn for_offer(&self, offer_id: &str, category: &str) -> (&Logistic, ModelScope) {
        if let Some(m) = self.offers.get(offer_id) {
            (m, ModelScope::Offer)
        } else if let Some(m) = self.categories.get(category) {
            (m, ModelScope::Category)
        } else {
            (&self.pooled, ModelScope::Pooled)
        }
    }

    pub fn check(&self, width: usize) -> Result<(), String> {
        self.combination.check()?;
        self.pooled.check(width, "the pooled propensity model")?;
        for (id, m) in &self.offers {
            m.check(width, &format!("the propensity model of {id}"))?;
        }
        for (c, m) in &self.categories {
            m.check(width, &format!("the propensity model of category {c}"))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelModel {
    /// One model per channel with enough contacts.
    pub channels: BTreeMap<Channel, Logistic>,
    /// Positive-answer rate per channel in training, for channels without a model.
    pub base_rates: BTreeMap<Channel, f64>,
    /// Positive-answer rate over all contacts: a lift of 1.
    pub overall_rate: f64,
}

impl ChannelModel {
    /// Probability of a positive answer to a contact on `channel` for these features.
    pub fn rate(&self, channel: Channel, x: &[f64]) -> f64 {
        match self.channels.get(&channel) {
            Some(m) => m.probability(x),
            None => self
                .base_rates
                .get(&channel)
                .copied()
                .unwrap_or(self.overall_rate),
        }
    }

    /// How much more (>1) or less (<1) likely a positive answer is on this channel than on
    /// an average contact.
    pub fn lift(&self, channel: Channel, x: &[f64]) -> f64 {
        self.rate(channel, x) / self.overall_rate.max(1e-9)
    }

    pub fn check(&self, width: usize) -> Result<(), String> {
        if !(self.overall_rate > 0.0 && self.overall_rate < 1.0) {
            return Err("the channel model's overall rate must be between 0 and 1".into());
        }
        for (c, m) in &self.channels {
            m.check(width, &format!("the channel model of {c}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_without_a_model_are_scored_by_their_category_or_the_pooled_model() {
        let m = PropensityModel {
            categories: ModelMap::from(BTreeMap::from([(
                "card".to_owned(),
                Logistic {
                    intercept: 1.0,
                    weights: vec![0.0],
                    examples: 10,
                    positives: 1,
                },
            )])),
            offers: BTreeMap::from([(
                "a".to_owned(),
                Logistic {
                    intercept: 0.0,
                    weights: vec![1.0],
                    examples: 10,
                    positives: 1,
                },
            )])
            .into(),
            pooled: Logistic {
                intercept: -1.0,
                weights: vec![0.5],
                examples: 100,
                positives: 5,
            },
            combination: Combination::default(),
        };
        assert_eq!(m.for_offer("a", "loan").1, ModelScope::Offer);
        assert_eq!(m.for_offer("new-card", "card").1, ModelScope::Category);
        let (pooled, scope) = m.for_offer("new-offer", "travel");
        assert_eq!(scope, ModelScope::Pooled);
        assert!((pooled.probability(&[2.0]) - 0.5).abs() < 1e-12);
        assert!(m.check(1).is_ok());
        assert!(m.check(2).is_err());
    }

    /// A model file reads and writes the maps as before, sorted objects by name, and the
    /// hashed lookup finds what the map holds.
    #[test]
    fn model_maps_are_sorted_objects_in_a_file() {
        let model = |w: f64| Logistic {
            intercept: w,
            weights: vec![w],
            examples: 1,
            positives: 0,
        };
        let tree = BTreeMap::from([("b".to_owned(), model(2.0)), ("a".to_owned(), model(1.0))]);
        let map = ModelMap::from(tree.clone());
        let text = serde_json::to_string(&map).unwrap();
        assert_eq!(text, serde_json::to_string(&tree).unwrap());
        assert!(text.find("\"a\"").unwrap() < text.find("\"b\"").unwrap());
        let read: ModelMap = serde_json::from_str(&text).unwrap();
        assert_eq!(read, map);
        assert_eq!(read.get("b"), Some(&model(2.0)));
        assert_eq!(read.get("c"), None);
        assert_eq!(read.len(), 2);
    }
}
