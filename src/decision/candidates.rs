//! Every (offer, channel) the decision may choose, scored: each offer that passes
//! [`super::eligibility`], on each planned channel it may use and that has an hour for it.
//!
//! propensity = the offer's propensity combined with the channel's and the hour's lift;
//! value = margin x lifetime-value factor - contact cost / propensity; priority =
//! propensity x value x context weight x lever. Below `min_priority` (or not positive): left
//! out.

use super::answer::{Reason, Suppressions};
use super::catalog::Offer;
use super::channels::ChannelPlan;
use super::engine::Scene;
use super::facts::RequestFacts;
use super::history::History;
use super::policy::Arm;
use super::timing::Slot;
use super::{eligibility, explanation};
use crate::learning::Correction;
use crate::model::features::OfferFacts;
use crate::model::response::ModelScope;
use crate::model::set::ModelSet;

#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate {
    /// Index of the offer in the catalog.
    pub offer: usize,
    /// Index of the channel plan.
    pub plan: usize,
    pub service: bool,
    pub slot: Slot,
    pub offer_propensity: f64,
    /// Which model gave `offer_propensity`; `None` for the default propensity.
    pub scope: Option<ModelScope>,
    pub propensity: f64,
    pub value: f64,
    pub clv_factor: f64,
    pub context_weight: f64,
    /// Which context rules matched (bit i: rule i), for explanations.
    pub rules: u64,
    pub priority: f64,
    /// The online learner's correction of the propensity, if it learns the offer.
    pub correction: Option<Correction>,
    /// What a unit of propensity adds to the priority.
    pub slope: f64,
}

impl Candidate {
    /// Propensity, value and priority at its slot.
    pub fn score(&mut self, models: &ModelSet, offer: &Offer, plan: &ChannelPlan) {
        self.propensity = if self.scope.is_some() {
            models.action_propensity(self.offer_propensity, plan.lift, self.slot.time_lift)
        } else {
            self.offer_propensity
        }
        .clamp(1e-6, 1.0);
        if let Some(c) = self.correction {
            // sigmoid(logit(p) + m), without the logarithm.
            let (p, e) = (self.propensity, c.mean.exp());
            self.propensity = (p * e / (1.0 - p + p * e)).clamp(1e-6, 1.0);
        }
        self.value = offer.value * self.clv_factor - offer.cost(plan.channel) / self.propensity;
        self.priority = self.propensity * self.value * self.context_weight * offer.lever;
        self.slope = offer.value * self.clv_factor * self.context_weight * offer.lever;
    }

    /// What the policy sees of it.
    pub fn arm(&self) -> Arm {
        Arm {
            priority: self.priority,
            propensity: self.propensity,
            slope: self.slope,
            spread: self.correction.map_or(0.0, |c| c.sd),
            unproven: self.correction.map_or(0.0, |c| c.unproven),
        }
    }
}

/// The context rules that match the request for `offer`: their weights' product, and which
/// matched (bit i: rule i).
fn context_weight(scene: &Scene<'_>, facts: &RequestFacts<'_>, offer: &Offer) -> (f64, u64) {
    let mut rules = 0u64;
    let mut weight = 1.0;
    for (i, r) in scene.catalog.context_rules.iter().enumerate() {
        if r.applies_to(offer) && r.when.evaluate(facts) {
            weight *= r.weight;
            rules |= 1u64.checked_shl(i as u32).unwrap_or(0);
        }
    }
    (weight, rules)
}

pub(super) fn gather(
    scene: &Scene<'_>,
    facts: &RequestFacts<'_>,
    history: &History<'_>,
    plans: &[ChannelPlan],
    suppressed: &mut Suppressions,
) -> Vec<Candidate> {
    let settings = scene.settings;
    let clv_factor = scene.scores.value.map_or(1.0, |v| {
        1.0 + settings.clv_weight
            * (v.clv_365d / settings.clv_reference).clamp(0.0, settings.clv_cap)
    });
    let offers = &scene.catalog.offers;
    let mut candidates: Vec<Candidate> = Vec::with_capacity(offers.len() * plans.len().max(1));
    let mut scorer = scene.models.offer_scorer(scene.profile, &scene.scores);
    // The customer's part of the learning features, built with the first offer scored.
    let mut customer: Vec<(usize, f64)> = Vec::new();
    for (oi, offer) in offers.iter().enumerate() {
        if let Err(refusal) = eligibility::check(scene, facts, history, oi, offer) {
            suppressed.add(&offer.id, None, refusal.reason(), || {
                refusal.detail(scene, offer)
            });
            continue;
        }
        let facts_of_offer = OfferFacts {
            id: offer.id.as_str(),
            category: &offer.category,
            history: history.offers[oi],
        };
        let (offer_propensity, scope) = match (scene.degraded, scorer.score(facts_of_offer)) {
            (false, Some(s)) => (s.propensity, Some(s.scope)),
            _ => (settings.default_propensity, None),
        };
        if let Some(online) = scene.online
            && scope.is_some()
            && customer.is_empty()
        {
            online
                .layout
                .customer_part(scorer.features(), &mut customer);
        }
        let (context_weight, rules) = context_weight(scene, facts, offer);
        let online = scope
            .zip(scene.online)
            .and_then(|(scope, online)| online.for_offer(offer.id.as_str(), scope, &customer));
        for (pi, plan) in plans.iter().enumerate() {
            let channel = plan.channel;
            if !offer.allows(channel) {
                suppressed.add(&offer.id, Some(channel), Reason::ChannelNotOffered, || None);
                continue;
            }
            if let Some(reason) = plan.blocked {
                suppressed.add(&offer.id, Some(channel), reason, || None);
                continue;
            }
            let slot = if offer.service {
                plan.service
            } else {
                plan.marketing
            };
            let slot = match slot {
                Ok(s) => s,
                Err(b) => {
                    suppressed.add(&offer.id, Some(channel), b.into(), || {
                        Some(explanation::no_hour(scene))
                    });
                    continue;
                }
            };
            let mut c = Candidate {
                offer: oi,
                plan: pi,
                service: offer.service,
                slot,
                offer_propensity,
                scope,
                propensity: 0.0,
                value: 0.0,
                clv_factor,
                context_weight,
                rules,
                priority: 0.0,
                correction: online.map(|o| o.on(channel)),
                slope: 0.0,
            };
            c.score(scene.models, offer, plan);
            if c.priority < settings.min_priority || c.priority <= 0.0 {
                suppressed.add(&offer.id, Some(channel), Reason::BelowThreshold, || {
                    Some(format!("priority {:.4}", c.priority))
                });
                continue;
            }
            candidates.push(c);
        }
    }
    candidates
}
