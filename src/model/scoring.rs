//! What a model set says about one customer, as served: value figures, segment, answer hours
//! and lifts, channel lifts, offer propensities. The customer view and decisions both use
//! these, so they always agree. Every function works with whatever models the set has and
//! says `None` for the rest.

use super::features::{FeatureInput, OfferFacts};
use super::response::ModelScope;
use super::send_time::WeekProfile;
use super::set::ModelSet;
use super::value::ValueFigures;
use crate::profile::{Channel, Profile, PurchaseSummary};

/// Per-customer results computed once per request.
#[derive(Debug, Clone)]
pub struct CustomerScores {
    pub at: i64,
    pub summary: Option<PurchaseSummary>,
    pub value: Option<ValueFigures>,
    pub segment: Option<usize>,
    /// Answer distribution over local hours of week.
    pub week: Option<WeekProfile>,
    /// Lift of the answer probability by local hour of week (averages 1).
    pub time_lifts: Option<WeekProfile>,
}

/// An offer's propensity and which model gave it.
#[derive(Debug, Clone, Copy)]
pub struct OfferScore {
    pub propensity: f64,
    pub scope: ModelScope,
}

impl ModelSet {
    pub fn score_customer(&self, profile: &Profile, at: i64) -> CustomerScores {
        let summary = profile.purchase_summary(at);
        let value = self.value.as_ref().map(|v| v.figures(&v.summary(summary)));
        let segment = self
            .segments
            .as_ref()
            .map(|s| s.assign(&super::segments::segment_features(profile, summary)));
        let week = self
            .send_time
            .as_ref()
            .map(|m| m.distribution(&profile.engagement, segment));
        let time_lifts = self
            .send_time
            .as_ref()
            .zip(self.send_time_priors.as_ref())
            .zip(week.as_ref())
            .map(|((m, powers), q)| m.lifts(q, &profile.engagement, segment, powers));
        CustomerScores {
            at,
            summary,
            value,
            segment,
            week,
            time_lifts,
        }
    }

    /// Scores many offers for one customer, building the customer's features once.
    pub fn offer_scorer<'a>(
        &'a self,
        profile: &'a Profile,
        scores: &CustomerScores,
    ) -> OfferScorer<'a> {
        OfferScorer {
            set: self,
            profile,
            at: scores.at,
            summary: scores.summary,
            features: Vec::new(),
            built: false,
        }
    }

    /// The offer's probability of a positive answer, before channel and time.
    pub fn offer_propensity(
        &self,
        profile: &Profile,
        scores: &CustomerScores,
        offer: OfferFacts<'_>,
        scratch: &mut Vec<f64>,
    ) -> Option<OfferScore> {
        let (schema, model) = self.propensity.as_ref()?;
        let input = FeatureInput {
            profile,
            at: scores.at,
            summary: scores.summary,
            offer: Some(offer),
            channel: None,
        };
        scratch.resize(schema.width(), 0.0);
        schema.build_into(&input, scratch);
        let (m, scope) = model.for_offer(offer.id, offer.category);
        Some(OfferScore {
            propensity: m.probability(scratch),
            scope,
        })
    }

    /// How much likelier a positive answer is on `channel` than on an average contact.
    pub fn channel_lift(
        &self,
        profile: &Profile,
        scores: &CustomerScores,
        channel: Channel,
        scratch: &mut Vec<f64>,
    ) -> Option<f64> {
        self.channel_lifts(profile, scores, &[channel], scratch)
            .map(|l| l[0])
    }

    /// The lifts of several channels, building the customer's features once.
    pub fn channel_lifts(
        &self,
        profile: &Profile,
        scores: &CustomerScores,
        channels: &[Channel],
        scratch: &mut Vec<f64>,
    ) -> Option<Vec<f64>> {
        let (schema, model) = self.channel.as_ref()?;
        let mut lifts = Vec::with_capacity(channels.len());
        for (i, &channel) in channels.iter().enumerate() {
            let input = FeatureInput {
                profile,
                at: scores.at,
                summary: scores.summary,
                offer: None,
                channel: Some(channel),
            };
            if i == 0 {
                scratch.resize(schema.width(), 0.0);
                schema.build_into(&input, scratch);
            } else {
                schema.rebuild_channel_part(&input, scratch);
            }
            lifts.push(model.lift(channel, scratch));
        }
        Some(lifts)
    }

    /// The probability of a positive answer to one action: offer, channel lift, hour lift.
    pub fn action_propensity(
        &self,
        offer_propensity: f64,
        channel_lift: f64,
        time_lift: f64,
    ) -> f64 {
        match &self.propensity {
            Some((_, m)) => m
                .combination
                .probability(offer_propensity, channel_lift, time_lift),
            None => offer_propensity,
        }
    }
}

/// See [`ModelSet::offer_scorer`].
pub struct OfferScorer<'a> {
    set: &'a ModelSet,
    profile: &'a Profile,
    at: i64,
    summary: Option<PurchaseSummary>,
    features: Vec<f64>,
    built: bool,
}

impl OfferScorer<'_> {
    /// The feature vector of the offer scored last (empty before the first).
    pub fn features(&self) -> &[f64] {
        &self.features
    }

    pub fn score(&mut self, offer: OfferFacts<'_>) -> Option<OfferScore> {
        let (schema, model) = self.set.propensity.as_ref()?;
        let input = FeatureInput {
            profile: self.profile,
            at: self.at,
            summary: self.summary,
            offer: Some(offer),
            channel: None,
        };
        if self.built {
            schema.rebuild_offer_part(&input, &mut self.features);
        } else {
            self.features.resize(schema.width(), 0.0);
            schema.build_into(&input, &mut self.features);
            self.built = true;
        }
        let (m, scope) = model.for_offer(offer.id, offer.category);
        Some(OfferScore {
            propensity: m.probability(&self.features),
            scope,
        })
    }
}
