//! An action's explanation (with `explain`): the factors behind its propensity, value and
//! priority, why this channel and this time, the catalog rules that applied, and how the
//! policy chose it. Numbers and plain words, for a call-centre agent as much as an analyst.

use serde_json::{Value, json};

use super::candidates::Candidate;
use super::catalog::Offer;
use super::channels::ChannelPlan;
use super::engine::Scene;
use super::policy::Choice;
use crate::model::features::{FeatureInput, OfferFacts};
use crate::model::response::ModelScope;
use crate::time::rfc3339;

/// The explanation of a chosen candidate.
pub(super) fn explain(
    scene: &Scene<'_>,
    c: &Candidate,
    plans: &[ChannelPlan],
    choice: &Choice,
) -> Value {
    let offer = &scene.catalog.offers[c.offer];
    let plan = &plans[c.plan];
    // Parts built as values are moved in, not passed through `json!` (which would copy
    // each by serialising it again).
    object([
        ("propensity", propensity(scene, c, offer, plan)),
        (
            "value",
            json!({
                "margin": offer.value,
                "clv_365d": scene.scores.value.map(|v| v.clv_365d),
                "clv_factor": c.clv_factor,
                "channel_cost": offer.cost(plan.channel),
                "value": c.value,
                "formula": "margin x clv_factor - channel_cost / propensity",
            }),
        ),
        (
            "priority",
            json!({
                "propensity": c.propensity,
                "value": c.value,
                "context_weight": c.context_weight,
                "context_rules": context_rules(scene, c),
                "lever": offer.lever,
                "priority": c.priority,
                "formula": "propensity x value x context_weight x lever",
            }),
        ),
        ("channel", channel(offer, plan, plans)),
        ("timing", timing(scene, c, plan)),
        (
            "rules",
            json!({
                "eligibility": offer.eligibility.source(),
                "max_contacts": offer.max_contacts.map(|m| format!("{m} in {} days", offer.cap_days)),
                "max_acceptances": offer.max_acceptances,
                "service": offer.service,
                "priority_group": offer.priority_group,
            }),
        ),
        ("exploration", scene.policy.explain(choice)),
    ])
}

fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// The detail of a candidate no hour of the horizon keeps within the limits.
pub(super) fn no_hour(scene: &Scene<'_>) -> String {
    format!(
        "no hour within {} h keeps it",
        scene.settings.contact_policy.horizon_hours
    )
}

fn propensity(scene: &Scene<'_>, c: &Candidate, offer: &Offer, plan: &ChannelPlan) -> Value {
    let model = match c.scope {
        Some(ModelScope::Offer) => "the offer's own model",
        Some(ModelScope::Category) => "the offer category's model",
        Some(ModelScope::Pooled) => "the pooled model",
        None => "no model: the default propensity",
    };
    object([
        ("offer_propensity", json!(c.offer_propensity)),
        ("model", json!(model)),
        ("top_factors", Value::Array(top_factors(scene, c, offer))),
        ("channel_lift", json!(plan.lift)),
        ("time_lift", json!(c.slot.time_lift)),
        ("propensity", json!(c.propensity)),
    ])
}

/// The features that moved the offer's propensity most, as effects on its log-odds.
fn top_factors(scene: &Scene<'_>, c: &Candidate, offer: &Offer) -> Vec<Value> {
    let (Some((schema, model)), Some(_)) = (&scene.models.propensity, c.scope) else {
        return Vec::new();
    };
    let input = FeatureInput {
        profile: scene.profile,
        at: scene.scores.at,
        summary: scene.scores.summary,
        offer: Some(OfferFacts {
            id: offer.id.as_str(),
            category: &offer.category,
            history: scene.profile.offer(offer.id.as_str()),
        }),
        channel: None,
    };
    let x = schema.build(&input);
    let (m, _) = model.for_offer(offer.id.as_str(), &offer.category);
    m.top_contributions(&x, &scene.models.response_names, 5)
        .into_iter()
        .map(|(feature, effect)| json!({"feature": feature, "log_odds_effect": effect}))
        .collect()
}

fn context_rules(scene: &Scene<'_>, c: &Candidate) -> Vec<String> {
    scene
        .catalog
        .context_rules
        .iter()
        .enumerate()
        .filter(|(i, _)| c.rules & 1u64.checked_shl(*i as u32).unwrap_or(0) != 0)
        .map(|(_, r)| r.name.clone())
        .collect()
}

fn channel(offer: &Offer, plan: &ChannelPlan, plans: &[ChannelPlan]) -> Value {
    let alternatives: Vec<Value> = plans
        .iter()
        .map(|p| {
            json!({
                "channel": p.channel,
                "lift": p.lift,
                "status": if !offer.allows(p.channel) {
                    "not offered on it"
                } else {
                    p.blocked.map_or("available", |r| r.as_str())
                },
            })
        })
        .collect();
    let why = if plan.now {
        "the customer is on this touchpoint now"
    } else {
        "the best answer lift among the requested channels the customer consented to, within contact limits"
    };
    object([
        ("chosen", json!(plan.channel)),
        ("why", json!(why)),
        ("alternatives", Value::Array(alternatives)),
    ])
}

fn timing(scene: &Scene<'_>, c: &Candidate, plan: &ChannelPlan) -> Value {
    let (local_hour, how) = scene.clock.hour(c.slot.at);
    let policy = &scene.settings.contact_policy;
    let why = if plan.now {
        "inbound: answered now".to_owned()
    } else {
        format!(
            "the hour with the best answer lift within {} h, outside quiet hours {:02}:00-{:02}:00 local{}",
            policy.horizon_hours,
            policy.quiet_hours_start,
            policy.quiet_hours_end,
            if c.service {
                " (a service message: contact limits do not apply)"
            } else {
                " and within contact limits"
            }
        )
    };
    json!({
        "send_at": rfc3339(c.slot.at),
        "local_hour": local_hour,
        "hour_of_week": how,
        "why": why,
    })
}
