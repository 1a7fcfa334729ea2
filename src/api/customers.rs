//! `GET /v1/customers/{id}[?at=]` shows what a profile holds as of a time;
//! `DELETE /v1/customers/{id}` erases every key of the customer and their decision-log records.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState};
use crate::decision::Decider;
use crate::model::scoring::CustomerScores;
use crate::model::set::ModelSet;
use crate::profile::planned::{PlannedAction, still_counting};
use crate::profile::store::Profiles;
use crate::profile::{Channel, CustomerId, Outcome, Profile};
use crate::time::{HOURS_PER_WEEK, SECONDS_PER_DAY, rfc3339};
use crate::validation::FieldError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/customers/{id}")
            .get(get_customer)
            .delete(delete_customer),
    );
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AtQuery {
    /// RFC 3339, from 1900 to before 2200; default now (or the newest event, if later). Every
    /// figure is as of it: the
    /// time-dependent ones (value, ages, windows, planned actions still counting) are
    /// computed for it. It may not be earlier than the customer's newest event (`409
    /// at_before_latest_event`): counts and totals are not kept event by event.
    #[param(value_type = Option<String>, format = DateTime)]
    pub at: Option<String>,
}

pub fn parse_customer_id(raw: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(raw)
        .map_err(|e| FieldError::new(e.code(), "customer_id", format!("customer_id {e}")).into())
}

/// What Touchpoint holds about a customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    pub customer_id: String,
    /// The time the view is computed as of.
    pub at: String,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Events applied (duplicates excluded).
    pub events: u64,
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    pub timezone: Option<String>,
    /// Per channel: the latest grant or withdrawal.
    pub consents: BTreeMap<String, ConsentView>,
    pub purchases: PurchasesView,
    /// Per channel: contacts, responses, customer-started touches.
    pub channels: BTreeMap<String, ChannelView>,
    pub engagement: EngagementView,
    /// Newest first.
    pub recent_contacts: Vec<ContactView>,
    /// Outbound actions decisions planned and the sender has not reported yet, not lapsed
    /// as of `at` (marketing actions count toward the contact limits, service messages
    /// toward their offers' caps); by send time.
    pub planned: Vec<PlannedView>,
    /// Newest first.
    pub recent_responses: Vec<ResponseView>,
    /// Per-offer history (caps and cool-downs use it).
    pub offers: Vec<OfferHistoryView>,
    /// Newest first: the agent screen's timeline.
    pub recent_events: Vec<RecentEventView>,
    /// Customer value as of `at`, from the value model (absent without one).
    pub value: Option<ValueView>,
    pub segment: Option<SegmentView>,
    pub preferences: PreferencesView,
    /// The model set that computed `value`, `segment` and `preferences`.
    pub model_version: String,
}

/// Customer value (BG/NBD and Gamma-Gamma): probability the customer is still active,
/// purchases expected in the next 90 days, expected spend per purchase, and the discounted
/// value of the next 365 days.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"p_alive": 0.71, "expected_purchases_90d": 0.84, "expected_spend_per_purchase": 38.2, "clv_365d": 96.0}))]
pub struct ValueView {
    pub p_alive: f64,
    pub expected_purchases_90d: f64,
    pub expected_spend_per_purchase: f64,
    pub clv_365d: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentView {
    pub index: usize,
    pub name: String,
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreferencesView {
    /// Channels by how likely a positive answer is on each, best first, with the consent
    /// state of outbound channels.
    pub channels: Vec<ChannelPreference>,
    /// The customer's best local hours of week for an answer, best first.
    pub send_hours: Vec<SendHour>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelPreference {
    pub channel: Channel,
    /// Answer probability relative to an average contact.
    pub lift: f64,
    /// Outbound channels: whether the customer consented.
    pub consent: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SendHour {
    pub hour_of_week: usize,
    pub day: &'static str,
    pub hour: usize,
    /// Share of the customer's answers expected in this hour.
    pub probability: f64,
    /// Answer probability relative to an average hour.
    pub lift: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    pub granted: bool,
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurchasesView {
    /// Purchase events.
    pub count: u32,
    pub total_spend: f64,
    pub first_purchase_day: Option<String>,
    pub last_purchase_at: Option<String>,
    /// Transactions after the first purchase day, same-day purchases merged.
    pub repeat_transactions: u32,
    /// Spend on those, the first day excluded.
    pub repeat_spend: f64,
    pub mean_repeat_spend: f64,
    /// Days from the first to the last purchase day.
    pub recency_days: Option<f64>,
    /// Days from the first purchase day to the last day before `at`.
    pub age_days: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelView {
    pub contacts: u32,
    pub positive_responses: u32,
    pub negative_responses: u32,
    pub interactions: u32,
    pub last_contact_at: Option<String>,
    pub last_response_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EngagementView {
    /// Customer-started touches counted by local hour of week.
    pub total: u64,
    /// The busiest local hours of week, busiest first.
    pub top_hours: Vec<HourCount>,
    /// 168 counts, 0 = Monday 00:00-00:59 local time; empty without engagement.
    pub by_hour_of_week: Vec<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HourCount {
    pub hour_of_week: usize,
    #[schema(example = "tuesday")]
    pub day: &'static str,
    pub hour: usize,
    pub count: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    pub at: String,
    pub channel: Channel,
    pub offer_id: Option<String>,
    pub decision_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlannedView {
    pub send_at: String,
    pub channel: Channel,
    pub offer_id: String,
    pub decision_id: String,
    /// When it stops counting if it is not reported sent.
    pub until: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResponseView {
    pub at: String,
    pub channel: Option<Channel>,
    pub offer_id: Option<String>,
    pub decision_id: Option<String>,
    pub outcome: Outcome,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfferHistoryView {
    pub offer_id: String,
    pub contacts: u32,
    pub positive_responses: u32,
    pub declines: u32,
    pub last_contact_at: Option<String>,
    pub last_positive_at: Option<String>,
    pub last_declined_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecentEventView {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub at: String,
    pub channel: Option<Channel>,
    pub offer_id: Option<String>,
    pub amount: Option<f64>,
    pub detail: Option<String>,
}

pub const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

impl CustomerView {
    pub fn new(
        customer: &CustomerId,
        profile: &Profile,
        planned: &[PlannedAction],
        at: DateTime<Utc>,
        models: &ModelSet,
    ) -> Self {
        let t = at.timestamp();
        let scores = models.score_customer(profile, t);
        let upto = |x: i64| x <= t;
        CustomerView {
            customer_id: customer.to_string(),
            at: rfc3339(t),
            first_seen: profile.first_seen.map(rfc3339),
            last_seen: profile.last_seen.map(rfc3339),
            events: profile.events,
            attributes: profile
                .attributes
                .iter()
                .map(|a| (a.name.clone(), a.value.to_json()))
                .collect(),
            timezone: profile.timezone().map(|tz| tz.name().to_owned()),
            consents: consents(profile),
            purchases: purchases(profile, t),
            channels: channels(profile),
            engagement: engagement(profile),
            planned: planned_views(planned, profile, t),
            recent_contacts: profile
                .contacts
                .iter()
                .rev()
                .filter(|c| upto(c.at))
                .map(|c| ContactView {
                    at: rfc3339(c.at),
                    channel: c.channel,
                    offer_id: c.offer_id.as_ref().map(|o| o.to_string()),
                    decision_id: c.decision_id.as_ref().map(|d| d.to_string()),
                })
                .collect(),
            recent_responses: profile
                .responses
                .iter()
                .rev()
                .filter(|r| upto(r.at))
                .map(|r| ResponseView {
                    at: rfc3339(r.at),
                    channel: r.channel,
                    offer_id: r.offer_id.as_ref().map(|o| o.to_string()),
                    decision_id: r.decision_id.as_ref().map(|d| d.to_string()),
                    outcome: r.outcome,
                })
                .collect(),
            offers: profile
                .offers
                .iter()
                .map(|o| OfferHistoryView {
                    offer_id: o.offer_id.to_string(),
                    contacts: o.contacts,
                    positive_responses: o.positive_responses,
                    declines: o.declines,
                    last_contact_at: o.last_contact_at.map(rfc3339),
                    last_positive_at: o.last_positive_at.map(rfc3339),
                    last_declined_at: o.last_declined_at.map(rfc3339),
                })
                .collect(),
            recent_events: profile
                .recent
                .iter()
                .rev()
                .filter(|e| upto(e.at))
                .map(|e| RecentEventView {
                    event_id: e.event_id.clone(),
                    kind: e.kind.as_str(),
                    at: rfc3339(e.at),
                    channel: e.channel,
                    offer_id: e.offer_id.as_ref().map(|o| o.to_string()),
                    amount: e.amount,
                    detail: e.detail.clone(),
                })
                .collect(),
            value: scores.value.map(|v| ValueView {
                p_alive: v.p_alive,
                expected_purchases_90d: v.expected_purchases_90d,
                expected_spend_per_purchase: v.expected_spend_per_purchase,
                clv_365d: v.clv_365d,
            }),
            segment: segment(models, scores.segment),
            preferences: preferences(profile, &scores, models),
            model_version: models.version().to_owned(),
        }
    }
}

fn consents(profile: &Profile) -> BTreeMap<String, ConsentView> {
    Channel::ALL
        .iter()
        .filter_map(|&c| {
            profile.consent(c).map(|s| {
                (
                    c.to_string(),
                    ConsentView {
                        granted: s.granted,
                        at: rfc3339(s.at),
                    },
                )
            })
        })
        .collect()
}

fn purchases(profile: &Profile, t: i64) -> PurchasesView {
    let summary = profile.purchase_summary(t);
    let p = &profile.purchases;
    PurchasesView {
        count: p.count,
        total_spend: p.total_spend,
        first_purchase_day: p.first_day.map(|d| rfc3339(d as i64 * SECONDS_PER_DAY)),
        last_purchase_at: (p.count > 0).then(|| rfc3339(p.last_at)),
        repeat_transactions: p.repeat_transactions,
        repeat_spend: p.repeat_spend,
        mean_repeat_spend: summary.map_or(0.0, |s| s.mean_repeat_spend),
        recency_days: summary.map(|s| s.recency_days),
        age_days: summary.map(|s| s.age_days),
    }
}

fn channels(profile: &Profile) -> BTreeMap<String, ChannelView> {
    Channel::ALL
        .iter()
        .filter_map(|&c| {
            let s = profile.channel(c);
            let used = s.contacts + s.interactions + s.positive_responses + s.negative_responses;
            (used > 0).then(|| {
                (
                    c.to_string(),
                    ChannelView {
                        contacts: s.contacts,
                        positive_responses: s.positive_responses,
                        negative_responses: s.negative_responses,
                        interactions: s.interactions,
                        last_contact_at: s.last_contact_at.map(rfc3339),
                        last_response_at: s.last_response_at.map(rfc3339),
                    },
                )
            })
        })
        .collect()
}

fn engagement(profile: &Profile) -> EngagementView {
    let mut top: Vec<(usize, u32)> = profile
        .engagement
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, c)| c > 0)
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    EngagementView {
        total: profile.engagement.iter().map(|&c| c as u64).sum(),
        top_hours: top
            .into_iter()
            .take(5)
            .map(|(how, count)| HourCount {
                hour_of_week: how,
                day: DAYS[how / 24],
                hour: how % 24,
                count,
            })
            .collect(),
        by_hour_of_week: if profile.engagement.len() == HOURS_PER_WEEK {
            profile.engagement.clone()
        } else {
            Vec::new()
        },
    }
}

fn planned_views(planned: &[PlannedAction], profile: &Profile, t: i64) -> Vec<PlannedView> {
    let mut counting = still_counting(planned, t, &profile.contacts);
    counting.sort_by_key(|p| p.send_at);
    counting
        .into_iter()
        .map(|p| PlannedView {
            send_at: rfc3339(p.send_at),
            channel: p.channel,
            offer_id: p.offer_id.to_string(),
            decision_id: p.decision_id.to_string(),
            until: rfc3339(p.until),
        })
        .collect()
}

fn segment(models: &ModelSet, segment: Option<usize>) -> Option<SegmentView> {
    let i = segment?;
    let s = models.segments.as_ref()?.segments.get(i)?;
    Some(SegmentView {
        index: i,
        name: s.name.clone(),
        description: s.description.clone(),
    })
}

fn preferences(profile: &Profile, scores: &CustomerScores, models: &ModelSet) -> PreferencesView {
    let mut scratch = Vec::new();
    // Channels the channel model knows (it saw contacts on them).
    let known = |c: Channel| {
        models
            .channel
            .as_ref()
            .is_some_and(|(_, m)| m.channels.contains_key(&c) || m.base_rates.contains_key(&c))
    };
    let mut channels: Vec<ChannelPreference> = Channel::ALL
        .iter()
        .filter(|&&c| known(c))
        .filter_map(|&c| {
            models
                .channel_lift(profile, scores, c, &mut scratch)
                .map(|lift| ChannelPreference {
                    channel: c,
                    lift,
                    consent: c
                        .is_outbound()
                        .then(|| profile.consent(c).is_some_and(|s| s.granted)),
                })
        })
        .collect();
    channels.sort_by(|a, b| b.lift.total_cmp(&a.lift));
    let send_hours = match (&scores.week, &scores.time_lifts) {
        (Some(q), Some(l)) => crate::model::send_time::ranked_hours(q)
            .into_iter()
            .take(5)
            .map(|h| SendHour {
                hour_of_week: h,
                day: DAYS[h / 24],
                hour: h % 24,
                probability: q[h],
                lift: l[h],
            })
            .collect(),
        _ => Vec::new(),
    };
    PreferencesView {
        channels,
        send_hours,
    }
}

/// The profile as of `at`, with the customer's value, segment and preferences computed live
/// from the model set in service.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id: 1..128 characters of [A-Za-z0-9._:@-]", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._:@-]+$"), AtQuery),
    responses(
        (status = 200, body = CustomerView),
        (status = 400, description = "A bad id or time", body = super::error::ErrorBody),
        (status = 404, description = "No event was ever applied for this customer", body = super::error::ErrorBody),
        (status = 409, description = "`at` is before the newest event the profile holds", body = super::error::ErrorBody),
        (status = 503, body = super::error::ErrorBody),
    ))]
pub async fn get_customer(
    state: web::Data<AppState>,
    profiles: web::Data<Profiles>,
    id: web::Path<String>,
    query: web::Query<AtQuery>,
) -> Result<HttpResponse, ApiError> {
    let customer = parse_customer_id(&id)?;
    let asked = query
        .at
        .as_deref()
        .map(|s| crate::time::parse_time(s, "at"))
        .transpose()?;
    let profile = profiles
        .load(&customer)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no customer {customer}")))?;
    // Without `at`: now, or the newest event if the sender's clock ran a little ahead.
    let latest = profile
        .last_seen
        .and_then(|t| DateTime::from_timestamp(t, 0));
    let now = state.clock.now_utc();
    let at = asked.unwrap_or_else(|| latest.map_or(now, |l| l.max(now)));
    // Counts, totals, per-channel and per-offer figures, attributes and consents are kept as
    // they stand, not event by event: they cannot be rewound to a time before the newest
    // event the profile holds.
    if let Some(latest) = profile.last_seen
        && at.timestamp() < latest
    {
        return Err(ApiError::CannotHonour(FieldError::new(
            "at_before_latest_event",
            "at",
            format!(
                "the profile holds events up to {}; its counts, totals, attributes and consents cannot be rewound to {}: ask as of that time or later, or without at",
                rfc3339(latest),
                rfc3339(at.timestamp())
            ),
        )));
    }
    let models = state.models.current();
    let planned = profiles.planned(&customer).await?;
    Ok(HttpResponse::Ok().json(CustomerView::new(
        &customer,
        &profile,
        &planned,
        at,
        &models.value,
    )))
}

/// Erases everything held about the customer: the profile's keys and the records of the
/// decisions made for them in the decision log. Idempotent.
#[utoipa::path(delete, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id: 1..128 characters of [A-Za-z0-9._:@-]", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._:@-]+$")),
    responses(
        (status = 204, description = "Erased (or there was nothing)"),
        (status = 400, description = "A bad id", body = super::error::ErrorBody),
        (status = 503, description = "The store or the decision log cannot do it now; asking again is safe", body = super::error::ErrorBody),
    ))]
pub async fn delete_customer(
    decider: web::Data<Decider>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let customer = parse_customer_id(&id)?;
    decider.erase(&customer).await?;
    Ok(HttpResponse::NoContent().finish())
}
