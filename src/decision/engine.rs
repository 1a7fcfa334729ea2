//! The decision itself: eligibility, consent and contact policy, scoring, channel and time,
//! arbitration and exploration, for a website's next-best-offer, a call-centre screen and an
//! outbound campaign planner alike.
//!
//! For each offer of the catalog and each channel of the request:
//! 1. the offer must be valid at the decision time, fit the placement, meet its eligibility
//!    condition, be under its per-customer caps, and not have been declined recently;
//! 2. an outbound channel needs a granted consent and no "do not contact"; the action is
//!    planned at the best hour within the planning horizon that is outside the customer's
//!    quiet hours and keeps every contact limit (service messages skip the limits), counting
//!    the contacts the sender reported and the outbound actions earlier decisions planned and
//!    not yet sent ([`crate::profile::planned`]); an inbound touchpoint answers now;
//! 3. propensity = the offer's propensity combined with the channel's and the hour's lift;
//!    value = margin x lifetime-value factor - contact cost / propensity; priority =
//!    propensity x value x context weight x lever. Below `min_priority`: no action.
//!
//! The slate is then chosen rank by rank (one action per offer, one per priority group),
//! re-checking contact limits against the actions already planned, with epsilon-greedy
//! exploration; each action carries the probability with which it was chosen.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use utoipa::ToSchema;

use super::DecisionSettings;
use super::catalog::{Catalog, Offer};
use super::facts::RequestFacts;
use super::policy::{Block, ContactLedger, declined_recently};
use super::request::DecisionRequest;
use crate::model::features::OfferFacts;
use crate::model::response::ModelScope;
use crate::model::scoring::CustomerScores;
use crate::model::set::ModelSet;
use crate::profile::planned::{PlannedAction, still_counting};
use crate::profile::state::{OfferStats, SECONDS_PER_DAY, rfc3339};
use crate::profile::{Channel, OfferId, Profile};

pub struct DecisionEngine<'a> {
    pub catalog: &'a Catalog,
    pub models: &'a ModelSet,
    pub settings: &'a DecisionSettings,
}

pub struct DecisionInput<'a> {
    pub request: &'a DecisionRequest,
    /// The profile; `None` for a customer never seen, or when it could not be read.
    pub profile: Option<&'a Profile>,
    /// Outbound actions planned for the customer by earlier decisions (read with the
    /// profile): those not yet sent nor lapsed count toward the contact limits.
    pub planned: &'a [PlannedAction],
    /// The profile store could not be read in time: decide from the fallback ranking.
    pub degraded: bool,
    pub now: DateTime<Utc>,
    pub decision_id: String,
}

/// The answer of `POST /v1/decisions`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Decision {
    /// Unique; events that answer this decision carry it.
    pub decision_id: String,
    pub customer_id: String,
    /// The time the decision was made as of.
    pub at: String,
    pub model_version: String,
    /// True when the profile store could not be read and a fallback ranking decided, or when
    /// the planned outbound actions could not be recorded and were left out.
    pub degraded: bool,
    pub actions: Vec<Action>,
    /// Only with `explain`: every candidate left out, with its reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Vec<Suppressed>>,
    /// For the decision log, not the answer.
    #[serde(skip)]
    pub log: LogDetails,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Action {
    pub rank: usize,
    pub offer_id: String,
    pub channel: Channel,
    pub send_at: String,
    /// `send_at` in Unix seconds, for the decision log.
    #[serde(skip)]
    pub send_at_unix: i64,
    /// An outbound marketing action, planned: recorded, it counts toward the contact limits
    /// of later decisions until it is sent or lapses ([`crate::profile::planned`]).
    #[serde(skip)]
    pub counts_as_contact: bool,
    /// Predicted probability of a positive response.
    pub propensity: f64,
    /// Value of a positive response to the business (margin, lifetime value, contact cost).
    pub value: f64,
    /// The arbitration score that ranked it.
    pub priority: f64,
    /// Probability with which the policy chose this action at this rank.
    pub probability: f64,
    /// Only with `explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub explanation: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Suppressed {
    pub offer_id: String,
    /// The channel, when the reason is about one.
    pub channel: Option<Channel>,
    /// no_consent, do_not_contact, channel_limit, outbound_limit, quiet_hours, not_eligible,
    /// not_valid_now, placement, offer_cap, already_accepted, declined_recently,
    /// channel_not_offered, below_threshold, profile_unavailable, slate_full,
    /// priority_group_taken.
    pub reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Decision {
    /// The answer as JSON. Without explanations (every decision but those asked to
    /// `explain`) it is written by hand ([`super::json`]), as serde would write it.
    pub fn to_json(&self) -> Vec<u8> {
        if self.suppressed.is_some() || self.actions.iter().any(|a| a.explanation.is_some()) {
            // Serialising plain data into a Vec cannot fail.
            return serde_json::to_vec(self).expect("a decision serialises");
        }
        let mut out = Vec::with_capacity(256 + 200 * self.actions.len());
        let mut w = super::json::Json(&mut out);
        w.decision_head(self);
        w.degraded(self.degraded);
        w.raw(b",\"actions\":");
        w.actions(&self.actions);
        w.raw(b"}");
        out
    }
}

/// What the decision log keeps beyond the answer: every scored candidate with its rank-1
/// choice probability, and the customer features the decision saw.
#[derive(Debug, Clone, Default)]
pub struct LogDetails {
    /// The decision's time, Unix seconds.
    pub at: i64,
    pub candidates: Vec<LoggedCandidate>,
    pub segment: Option<usize>,
    pub value: Option<crate::model::value::ValueFigures>,
    pub catalog_version: String,
    pub epsilon: f64,
}

#[derive(Debug, Clone)]
pub struct LoggedCandidate {
    pub offer_id: OfferId,
    pub channel: Channel,
    pub send_at: i64,
    pub propensity: f64,
    pub value: f64,
    pub priority: f64,
    /// Probability that the policy would pick it first.
    pub probability: f64,
}

/// When an outbound action would go out, and how good that hour is.
#[derive(Debug, Clone, Copy)]
struct Slot {
    at: i64,
    time_lift: f64,
}

/// One channel of the request, prepared once.
struct ChannelPlan {
    channel: Channel,
    /// Inbound: the customer is there now.
    now: bool,
    blocked: Option<&'static str>,
    lift: f64,
    marketing: Result<Slot, Block>,
    service: Result<Slot, Block>,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    offer: usize,
    plan: usize,
    service: bool,
    slot: Slot,
    offer_propensity: f64,
    scope: Option<ModelScope>,
    propensity: f64,
    value: f64,
    clv_factor: f64,
    context_weight: f64,
    /// Which context rules matched (bit i: rule i), for explanations.
    rules: u64,
    priority: f64,
}

fn block_reason(b: Block) -> &'static str {
    match b {
        Block::NoConsent => "no_consent",
        Block::DoNotContact => "do_not_contact",
        Block::ChannelLimit => "channel_limit",
        Block::OutboundLimit => "outbound_limit",
        Block::QuietHours => "quiet_hours",
    }
}

/// Local clock arithmetic for the planning horizon: the zone's offset at the start and end
/// of the horizon; within it, one offset unless a DST change falls inside (then per slot).
struct LocalClock {
    tz: Option<chrono_tz::Tz>,
    offset: Option<i64>,
}

impl LocalClock {
    fn new(tz: Option<chrono_tz::Tz>, from: i64, to: i64) -> Self {
        let offset_at = |t: i64| -> i64 {
            use chrono::{Offset, TimeZone};
            match tz {
                Some(tz) => tz
                    .offset_from_utc_datetime(
                        &DateTime::<Utc>::from_timestamp(t, 0)
                            .unwrap_or_default()
                            .naive_utc(),
                    )
                    .fix()
                    .local_minus_utc() as i64,
                None => 0,
            }
        };
        let (a, b) = (offset_at(from), offset_at(to));
        Self {
            tz,
            offset: (a == b).then_some(a),
        }
    }

    /// (local hour of day, local hour of week with 0 = Monday 00h).
    fn hour(&self, t: i64) -> (u32, usize) {
        let offset = match self.offset {
            Some(o) => o,
            None => Self::new(self.tz, t, t).offset.unwrap_or(0),
        };
        let local = t + offset;
        let day = local.div_euclid(SECONDS_PER_DAY);
        let hour = (local.rem_euclid(SECONDS_PER_DAY) / 3600) as u32;
        // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday.
        let weekday = (day + 3).rem_euclid(7) as usize;
        (hour, weekday * 24 + hour as usize)
    }
}

impl DecisionEngine<'_> {
    pub fn decide(&self, input: &DecisionInput<'_>) -> Decision {
        let request = input.request;
        let explain = request.explain;
        let at = request.at.unwrap_or(input.now);
        let t = at.timestamp();
        let empty = Profile::default();
        let profile = input.profile.unwrap_or(&empty);
        let policy = &self.settings.contact_policy;
        let scores = if input.degraded {
            CustomerScores::unknown(t)
        } else {
            self.models.score_customer(profile, t)
        };
        let segment_name = scores
            .segment
            .and_then(|i| self.models.segments.as_ref()?.segments.get(i))
            .map(|s| s.name.as_str());
        let facts = RequestFacts::new(
            &self.catalog.named_fields,
            profile,
            request,
            &scores,
            segment_name,
        );
        let clock = LocalClock::new(
            profile.timezone(),
            t,
            t + policy.horizon_hours as i64 * 3600,
        );
        // One pass over the contact history: each contact's catalog offer (for the service
        // flag and the per-offer caps) is looked up once.
        let mut contacts_by_offer: Vec<Vec<i64>> = vec![Vec::new(); self.catalog.offers.len()];
        let mut service_contact = Vec::with_capacity(profile.contacts.len());
        for c in &profile.contacts {
            let offer = c
                .offer_id
                .as_ref()
                .and_then(|o| self.catalog.offer_index(o.as_str()));
            if let Some(i) = offer {
                contacts_by_offer[i].push(c.at);
            }
            service_contact.push(offer.is_some_and(|i| self.catalog.offers[i].service));
        }
        let mut ledger = ContactLedger::new(profile, &service_contact);
        // Outbound actions planned by earlier decisions and not sent yet count as contacts
        // at their send time: on their channel, overall, and toward their offer's cap
        // (each counts in the cap from the decision on, whenever it is to be sent).
        let mut planned_offers: Vec<(usize, i64)> = Vec::new();
        for p in still_counting(input.planned, t, &profile.contacts) {
            if !p.channel.is_outbound() {
                continue;
            }
            let offer = self.catalog.offer_index(&p.offer_id);
            if offer.is_some_and(|i| self.catalog.offers[i].service) {
                continue;
            }
            ledger.plan(p.channel, p.send_at);
            if let Some(i) = offer {
                planned_offers.push((i, p.send_at));
            }
        }
        // Each catalog offer's history with the customer, in one pass over the profile's
        // per-offer counts (`Profile::offer` scans them, and every offer asked twice).
        let mut histories: Vec<Option<&OfferStats>> = vec![None; self.catalog.offers.len()];
        for s in &profile.offers {
            if let Some(i) = self.catalog.offer_index(s.offer_id.as_str()) {
                histories[i].get_or_insert(s);
            }
        }
        let mut scratch = Vec::new();
        let mut suppressed: Vec<Suppressed> = Vec::new();
        let suppress = |list: &mut Vec<Suppressed>,
                        offer: &Offer,
                        channel: Option<Channel>,
                        reason,
                        detail: Option<String>| {
            if explain {
                list.push(Suppressed {
                    offer_id: offer.id.to_string(),
                    channel,
                    reason,
                    detail,
                });
            }
        };

        // The channels of the request, each prepared once.
        let mut requested: Vec<(Channel, bool)> = Vec::new();
        if let Some(tp) = request.touchpoint {
            requested.push((tp, true));
        }
        match &request.channels {
            Some(list) => requested.extend(list.iter().map(|&c| (c, false))),
            None if request.touchpoint.is_none() => requested.extend(
                Channel::ALL
                    .into_iter()
                    .filter(|c| c.is_outbound() && profile.consent(*c).is_some_and(|s| s.granted))
                    .map(|c| (c, false)),
            ),
            None => {}
        }
        let dnc = policy.do_not_contact(profile);
        let lifts = scores.time_lifts.as_ref();
        // Only outbound plans need the hours of the horizon; inbound ones answer now.
        let slot_table_cell = std::cell::OnceCell::new();
        let slots = || slot_table_cell.get_or_init(|| slot_table(&clock, policy, t, lifts));
        let channel_lifts: Vec<f64> = if input.degraded {
            vec![1.0; requested.len()]
        } else {
            let channels: Vec<Channel> = requested.iter().map(|(c, _)| *c).collect();
            self.models
                .channel_lifts(profile, &scores, &channels, &mut scratch)
                .unwrap_or_else(|| vec![1.0; requested.len()])
        };
        let plans: Vec<ChannelPlan> = requested
            .iter()
            .zip(channel_lifts)
            .map(|(&(channel, now), lift)| {
                if now {
                    let time_lift = lifts.map_or(1.0, |l| l[clock.hour(t).1]);
                    let slot = Slot { at: t, time_lift };
                    return ChannelPlan {
                        channel,
                        now,
                        blocked: None,
                        lift,
                        marketing: Ok(slot),
                        service: Ok(slot),
                    };
                }
                let blocked = if input.degraded {
                    Some("profile_unavailable")
                } else if dnc {
                    Some(block_reason(Block::DoNotContact))
                } else if !profile.consent(channel).is_some_and(|s| s.granted) {
                    Some(block_reason(Block::NoConsent))
                } else {
                    None
                };
                let (marketing, service) = if blocked.is_some() {
                    (Err(Block::NoConsent), Err(Block::NoConsent))
                } else {
                    best_slots(slots(), policy, &ledger, channel)
                };
                ChannelPlan {
                    channel,
                    now,
                    blocked,
                    lift,
                    marketing,
                    service,
                }
            })
            .collect();

        // Every (offer, channel) candidate, scored.
        let clv_factor = scores.value.map_or(1.0, |v| {
            1.0 + self.settings.clv_weight
                * (v.clv_365d / self.settings.clv_reference).clamp(0.0, self.settings.clv_cap)
        });
        let mut candidates: Vec<Candidate> =
            Vec::with_capacity(self.catalog.offers.len() * plans.len().max(1));
        let mut scorer = self.models.offer_scorer(profile, &scores);
        for (oi, offer) in self.catalog.offers.iter().enumerate() {
            if !offer.is_valid_at(at) {
                suppress(&mut suppressed, offer, None, "not_valid_now", None);
                continue;
            }
            if let Some(p) = &request.placement
                && !offer.placements.is_empty()
                && !offer.placements.iter().any(|x| x == p)
            {
                suppress(
                    &mut suppressed,
                    offer,
                    None,
                    "placement",
                    Some(format!("not shown in {p}")),
                );
                continue;
            }
            if !offer.eligibility.evaluate(&facts) {
                suppress(
                    &mut suppressed,
                    offer,
                    None,
                    "not_eligible",
                    Some(offer.eligibility.source().to_owned()),
                );
                continue;
            }
            let stats = histories[oi];
            if let (Some(max), Some(s)) = (offer.max_acceptances, stats)
                && s.positive_responses >= max
            {
                suppress(
                    &mut suppressed,
                    offer,
                    None,
                    "already_accepted",
                    Some(format!(
                        "{} positive answers, at most {max}",
                        s.positive_responses
                    )),
                );
                continue;
            }
            if let Some(max) = offer.max_contacts {
                let since = t - offer.cap_days as i64 * SECONDS_PER_DAY;
                let n = contacts_by_offer[oi]
                    .iter()
                    .filter(|&&at| at > since && at <= t)
                    .count()
                    + planned_offers
                        .iter()
                        .filter(|&&(i, at)| i == oi && at > since)
                        .count();
                if n >= max as usize {
                    suppress(
                        &mut suppressed,
                        offer,
                        None,
                        "offer_cap",
                        Some(format!(
                            "{n} contacts in {} days, at most {max}",
                            offer.cap_days
                        )),
                    );
                    continue;
                }
            }
            if declined_recently(stats, t, policy) {
                suppress(
                    &mut suppressed,
                    offer,
                    None,
                    "declined_recently",
                    Some(format!(
                        "declined within {} days",
                        policy.decline_cooldown_days
                    )),
                );
                continue;
            }
            let facts_of_offer = OfferFacts {
                id: offer.id.as_str(),
                category: &offer.category,
                value: offer.value,
                history: stats,
            };
            let (offer_propensity, scope) = match (input.degraded, scorer.score(facts_of_offer)) {
                (false, Some(s)) => (s.propensity, Some(s.scope)),
                _ => (self.settings.default_propensity, None),
            };
            let mut rules = 0u64;
            let mut context_weight = 1.0;
            for (i, r) in self.catalog.context_rules.iter().enumerate() {
                if r.applies_to(offer) && r.when.evaluate(&facts) {
                    context_weight *= r.weight;
                    rules |= 1u64.checked_shl(i as u32).unwrap_or(0);
                }
            }
            for (pi, plan) in plans.iter().enumerate() {
                let channel = plan.channel;
                if !offer.allows(channel) {
                    suppress(
                        &mut suppressed,
                        offer,
                        Some(channel),
                        "channel_not_offered",
                        None,
                    );
                    continue;
                }
                if let Some(reason) = plan.blocked {
                    suppress(&mut suppressed, offer, Some(channel), reason, None);
                    continue;
                }
                let slot = match if offer.service {
                    plan.service
                } else {
                    plan.marketing
                } {
                    Ok(s) => s,
                    Err(b) => {
                        suppress(
                            &mut suppressed,
                            offer,
                            Some(channel),
                            block_reason(b),
                            Some(format!(
                                "no hour within {} h keeps it",
                                policy.horizon_hours
                            )),
                        );
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
                };
                self.score(&mut c, offer, plan);
                if c.priority < self.settings.min_priority || c.priority <= 0.0 {
                    suppress(
                        &mut suppressed,
                        offer,
                        Some(channel),
                        "below_threshold",
                        Some(format!("priority {:.4}", c.priority)),
                    );
                    continue;
                }
                candidates.push(c);
            }
        }

        // The slate, rank by rank.
        let epsilon = self.settings.exploration.epsilon;
        let mut rng =
            StdRng::seed_from_u64(xxhash_rust::xxh3::xxh3_64(input.decision_id.as_bytes()));
        let logged: Vec<LoggedCandidate> = {
            let best = candidates
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.priority.total_cmp(&b.1.priority))
                .map(|(i, _)| i);
            let n = candidates.len() as f64;
            candidates
                .iter()
                .enumerate()
                .map(|(i, c)| LoggedCandidate {
                    offer_id: self.catalog.offers[c.offer].id.clone(),
                    channel: plans[c.plan].channel,
                    send_at: c.slot.at,
                    propensity: c.propensity,
                    value: c.value,
                    priority: c.priority,
                    probability: epsilon / n + if Some(i) == best { 1.0 - epsilon } else { 0.0 },
                })
                .collect()
        };
        let mut open: Vec<bool> = vec![true; candidates.len()];
        let mut actions: Vec<Action> = Vec::with_capacity(request.limit);
        let mut planned_marketing = false;
        while actions.len() < request.limit {
            // Re-check planned outbound marketing actions against what this slate planned;
            // a new slot depends only on the channel, so it is found once per channel.
            let mut new_slots: [Option<Result<Slot, Block>>; Channel::COUNT] =
                [None; Channel::COUNT];
            // Marketing candidates of a channel share their slot: check it once.
            let mut still_allowed: [Option<(i64, bool)>; Channel::COUNT] = [None; Channel::COUNT];
            for (i, c) in candidates.iter_mut().enumerate() {
                if !planned_marketing || !open[i] || c.service || plans[c.plan].now {
                    continue;
                }
                let channel = plans[c.plan].channel;
                let allowed = match still_allowed[channel.index()] {
                    Some((at, ok)) if at == c.slot.at => ok,
                    _ => {
                        let ok = ledger.allows(policy, channel, c.slot.at).is_ok();
                        still_allowed[channel.index()] = Some((c.slot.at, ok));
                        ok
                    }
                };
                if !allowed {
                    let slot = *new_slots[channel.index()]
                        .get_or_insert_with(|| best_slots(slots(), policy, &ledger, channel).0);
                    match slot {
                        Ok(slot) => {
                            c.slot = slot;
                            self.score(c, &self.catalog.offers[c.offer], &plans[c.plan]);
                        }
                        Err(b) => {
                            open[i] = false;
                            suppress(
                                &mut suppressed,
                                &self.catalog.offers[c.offer],
                                Some(channel),
                                block_reason(b),
                                Some("limit reached with the actions planned above".into()),
                            );
                        }
                    }
                }
            }
            let remaining: Vec<usize> = (0..candidates.len()).filter(|&i| open[i]).collect();
            let Some(&greedy) = remaining
                .iter()
                .max_by(|&&a, &&b| candidates[a].priority.total_cmp(&candidates[b].priority))
            else {
                break;
            };
            let pick = if epsilon > 0.0 && rng.random_bool(epsilon) {
                remaining[rng.random_range(0..remaining.len())]
            } else {
                greedy
            };
            let probability =
                epsilon / remaining.len() as f64 + if pick == greedy { 1.0 - epsilon } else { 0.0 };
            let c = candidates[pick];
            let offer = &self.catalog.offers[c.offer];
            let plan = &plans[c.plan];
            planned_marketing = !c.service && !plan.now;
            if planned_marketing {
                ledger.plan(plan.channel, c.slot.at);
            }
            // One action per offer, one per priority group.
            for (i, other) in candidates.iter().enumerate() {
                if !open[i] {
                    continue;
                }
                let same_offer = other.offer == c.offer;
                let same_group = offer.priority_group.is_some()
                    && self.catalog.offers[other.offer].priority_group == offer.priority_group;
                if same_offer || same_group {
                    open[i] = false;
                    if i != pick && explain {
                        let o = &self.catalog.offers[other.offer];
                        suppressed.push(Suppressed {
                            offer_id: o.id.to_string(),
                            channel: Some(plans[other.plan].channel),
                            reason: if same_offer {
                                "slate_full"
                            } else {
                                "priority_group_taken"
                            },
                            detail: Some(format!(
                                "{} chosen at rank {}",
                                offer.id,
                                actions.len() + 1
                            )),
                        });
                    }
                }
            }
            actions.push(Action {
                rank: actions.len() + 1,
                offer_id: offer.id.to_string(),
                channel: plan.channel,
                send_at: rfc3339(c.slot.at),
                send_at_unix: c.slot.at,
                counts_as_contact: planned_marketing && plan.channel.is_outbound(),
                propensity: c.propensity,
                value: c.value,
                priority: c.priority,
                probability,
                explanation: explain.then(|| {
                    self.explain(
                        profile,
                        &c,
                        offer,
                        plan,
                        &plans,
                        &clock,
                        pick == greedy,
                        epsilon,
                        &scores,
                    )
                }),
            });
        }
        if explain {
            for (i, c) in candidates.iter().enumerate() {
                if open[i]
                    && !actions
                        .iter()
                        .any(|a| a.offer_id == self.catalog.offers[c.offer].id.as_str())
                {
                    suppressed.push(Suppressed {
                        offer_id: self.catalog.offers[c.offer].id.to_string(),
                        channel: Some(plans[c.plan].channel),
                        reason: "slate_full",
                        detail: Some(format!(
                            "priority {:.4} below the {} chosen",
                            c.priority,
                            actions.len()
                        )),
                    });
                }
            }
        }
        Decision {
            decision_id: input.decision_id.clone(),
            customer_id: request.customer_id.to_string(),
            at: rfc3339(t),
            model_version: self.models.version().to_owned(),
            degraded: input.degraded,
            actions,
            suppressed: explain.then_some(suppressed),
            log: LogDetails {
                at: t,
                candidates: logged,
                segment: scores.segment,
                value: scores.value,
                catalog_version: self.catalog.version.clone(),
                epsilon,
            },
        }
    }

    /// Propensity, value and priority of a candidate at its slot.
    fn score(&self, c: &mut Candidate, offer: &Offer, plan: &ChannelPlan) {
        c.propensity = if c.scope.is_some() {
            self.models
                .action_propensity(c.offer_propensity, plan.lift, c.slot.time_lift)
        } else {
            c.offer_propensity
        }
        .clamp(1e-6, 1.0);
        c.value = offer.value * c.clv_factor - offer.cost(plan.channel) / c.propensity;
        c.priority = c.propensity * c.value * c.context_weight * offer.lever;
    }

    #[allow(clippy::too_many_arguments)]
    fn explain(
        &self,
        profile: &Profile,
        c: &Candidate,
        offer: &Offer,
        plan: &ChannelPlan,
        plans: &[ChannelPlan],
        clock: &LocalClock,
        greedy: bool,
        epsilon: f64,
        scores: &CustomerScores,
    ) -> serde_json::Value {
        // The features that moved this offer's propensity most, as effects on its log-odds.
        let factors: Vec<serde_json::Value> = match (&self.models.propensity, c.scope) {
            (Some((schema, model)), Some(_)) => {
                let input = crate::model::features::FeatureInput {
                    profile,
                    at: scores.at,
                    summary: scores.summary,
                    offer: Some(OfferFacts {
                        id: offer.id.as_str(),
                        category: &offer.category,
                        value: offer.value,
                        history: profile.offer(offer.id.as_str()),
                    }),
                    channel: None,
                };
                let x = schema.build(&input);
                let (m, _) = model.for_offer(offer.id.as_str(), &offer.category);
                m.top_contributions(&x, &self.models.response_names, 5)
                    .into_iter()
                    .map(|(feature, effect)| serde_json::json!({"feature": feature, "log_odds_effect": effect}))
                    .collect()
            }
            _ => Vec::new(),
        };
        let (local_hour, how) = clock.hour(c.slot.at);
        let alternatives: Vec<serde_json::Value> = plans
            .iter()
            .map(|p| {
                serde_json::json!({
                    "channel": p.channel,
                    "lift": p.lift,
                    "status": if !offer.allows(p.channel) { "not offered on it" } else { p.blocked.unwrap_or("available") },
                })
            })
            .collect();
        let rules: Vec<String> = self
            .catalog
            .context_rules
            .iter()
            .enumerate()
            .filter(|(i, _)| c.rules & 1u64.checked_shl(*i as u32).unwrap_or(0) != 0)
            .map(|(_, r)| r.name.clone())
            .collect();
        serde_json::json!({
            "propensity": {
                "offer_propensity": c.offer_propensity,
                "model": match c.scope {
                    Some(ModelScope::Offer) => "the offer's own model",
                    Some(ModelScope::Category) => "the offer category's model",
                    Some(ModelScope::Pooled) => "the pooled model",
                    None => "no model: the default propensity",
                },
                "top_factors": factors,
                "channel_lift": plan.lift,
                "time_lift": c.slot.time_lift,
                "propensity": c.propensity,
            },
            "value": {
                "margin": offer.value,
                "clv_365d": scores.value.map(|v| v.clv_365d),
                "clv_factor": c.clv_factor,
                "channel_cost": offer.cost(plan.channel),
                "value": c.value,
                "formula": "margin x clv_factor - channel_cost / propensity",
            },
            "priority": {
                "propensity": c.propensity,
                "value": c.value,
                "context_weight": c.context_weight,
                "context_rules": rules,
                "lever": offer.lever,
                "priority": c.priority,
                "formula": "propensity x value x context_weight x lever",
            },
            "channel": {
                "chosen": plan.channel,
                "why": if plan.now { "the customer is on this touchpoint now" } else { "the best answer lift among the requested channels the customer consented to, within contact limits" },
                "alternatives": alternatives,
            },
            "timing": {
                "send_at": rfc3339(c.slot.at),
                "local_hour": local_hour,
                "hour_of_week": how,
                "why": if plan.now { "inbound: answered now".to_owned() } else {
                    format!(
                        "the hour with the best answer lift within {} h, outside quiet hours {:02}:00-{:02}:00 local{}",
                        self.settings.contact_policy.horizon_hours,
                        self.settings.contact_policy.quiet_hours_start,
                        self.settings.contact_policy.quiet_hours_end,
                        if c.service { " (a service message: contact limits do not apply)" } else { " and within contact limits" }
                    )
                },
            },
            "rules": {
                "eligibility": offer.eligibility.source(),
                "max_contacts": offer.max_contacts.map(|m| format!("{m} in {} days", offer.cap_days)),
                "max_acceptances": offer.max_acceptances,
                "service": offer.service,
                "priority_group": offer.priority_group,
            },
            "exploration": {
                "policy": "epsilon_greedy",
                "epsilon": epsilon,
                "greedy_choice": greedy,
            },
        })
    }
}

/// The hours of the planning horizon outside the customer's quiet hours, best answer lift
/// first (the earliest of equals): built once per decision, shared by every channel.
struct SlotTable {
    /// Times of the hours outside quiet hours, ascending.
    times: Vec<i64>,
    /// The same hours best answer lift first (earliest of equals), with their index in
    /// `times`.
    by_lift: Vec<(usize, Slot)>,
}

fn slot_table(
    clock: &LocalClock,
    policy: &super::ContactPolicy,
    from: i64,
    lifts: Option<&crate::model::send_time::WeekProfile>,
) -> SlotTable {
    let slots: Vec<Slot> = (0..=policy.horizon_hours as i64)
        .filter_map(|k| {
            let at = from + k * 3600;
            let (hour, how) = clock.hour(at);
            (!policy.is_quiet(hour)).then(|| Slot {
                at,
                time_lift: lifts.map_or(1.0, |l| l[how]),
            })
        })
        .collect();
    let times = slots.iter().map(|s| s.at).collect();
    let mut by_lift: Vec<(usize, Slot)> = slots.into_iter().enumerate().collect();
    by_lift.sort_unstable_by(|a, b| {
        b.1.time_lift
            .total_cmp(&a.1.time_lift)
            .then(a.1.at.cmp(&b.1.at))
    });
    SlotTable { times, by_lift }
}

/// The best hour for an outbound action on `channel`, for a marketing message (the first
/// hour of the table within contact limits) and for a service message (the first hour).
fn best_slots(
    slots: &SlotTable,
    policy: &super::ContactPolicy,
    ledger: &ContactLedger,
    channel: Channel,
) -> (Result<Slot, Block>, Result<Slot, Block>) {
    let service = slots.by_lift.first().map(|s| s.1).ok_or(Block::QuietHours);
    let allowed = ledger.allows_each(policy, channel, &slots.times);
    let mut reason = Block::QuietHours;
    for &(i, slot) in &slots.by_lift {
        match allowed[i] {
            Ok(()) => return (Ok(slot), service),
            Err(b) => reason = b,
        }
    }
    (Err(reason), service)
}

impl CustomerScores {
    /// Scores for a customer whose profile could not be read: nothing known.
    pub fn unknown(at: i64) -> Self {
        Self {
            at,
            summary: None,
            value: None,
            segment: None,
            week: None,
            time_lifts: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(rank: usize, offer_id: &str, channel: Channel, x: f64) -> Action {
        Action {
            rank,
            offer_id: offer_id.into(),
            channel,
            send_at: "2026-11-22T18:00:00Z".into(),
            send_at_unix: 1_795_370_400,
            counts_as_contact: false,
            propensity: x,
            value: 45.0 * x,
            priority: x / 3.0,
            probability: 0.95,
            explanation: None,
        }
    }

    /// The hand-written answer is the one serde writes, byte for byte, for every shape of
    /// answer.
    #[test]
    fn the_answer_is_the_decision_as_serde_writes_it() {
        let mut decision = Decision {
            decision_id: "0193c0de-0000-7000-8000-000000000000".into(),
            customer_id: "c-42".into(),
            at: "2026-11-22T10:15:00Z".into(),
            model_version: "2026-11-22T09:00:00Z \"3f2a\"".into(),
            degraded: false,
            actions: vec![
                action(1, "gold-card", Channel::Email, 0.031),
                action(2, "loan-2026.b", Channel::CallCentre, f64::NAN),
            ],
            suppressed: None,
            log: LogDetails::default(),
        };
        let same = |d: &Decision| {
            assert_eq!(
                String::from_utf8(d.to_json()).unwrap(),
                serde_json::to_string(d).unwrap()
            );
        };
        same(&decision);
        decision.degraded = true;
        decision.actions.clear();
        same(&decision);
        decision
            .actions
            .push(action(1, "gold-card", Channel::Web, 0.5));
        decision.actions[0].explanation = Some(serde_json::json!({"why": "test"}));
        decision.suppressed = Some(vec![Suppressed {
            offer_id: "loan".into(),
            channel: Some(Channel::Sms),
            reason: "no_consent",
            detail: None,
        }]);
        same(&decision);
        let text = String::from_utf8(decision.to_json()).unwrap();
        assert!(text.contains("\"explanation\"") && text.contains("\"suppressed\""));
    }
}
