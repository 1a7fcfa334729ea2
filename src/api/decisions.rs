//! `POST /v1/decisions`: the next best actions for a customer, now or planned.

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use utoipa::ToSchema;

use super::{ApiError, AppState, read_body};
use crate::decision::engine::{Decision, DecisionEngine, DecisionInput};
use crate::decision::request::parse_request;
use crate::profile::CustomerId;
use crate::profile::planned::PlannedAction;
use crate::profile::store::{DecisionRead, Profiles};
use crate::telemetry::metrics as m;

/// The decision route's path (and pattern).
pub const ROUTE: &str = "/v1/decisions";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(ROUTE, web::post().to(post_decision));
}

/// A decision request (API.md section 3).
#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(example = json!({"customer_id": "c-42", "touchpoint": "call_centre", "limit": 3, "explain": true}))]
pub struct DecisionRequestDoc {
    pub customer_id: String,
    /// The inbound channel the customer is on now (web, app, call_centre, branch): actions
    /// for that channel, now.
    pub touchpoint: Option<crate::profile::Channel>,
    /// Outbound channels to plan for (email, sms, push, direct_mail): the engine picks the
    /// channel and `send_at` of each action. With neither this nor `touchpoint`, every
    /// outbound channel the customer consented to.
    pub channels: Option<Vec<crate::profile::Channel>>,
    /// Slot name, e.g. homepage_hero.
    pub placement: Option<String>,
    /// 1..20, default 1.
    pub limit: Option<u32>,
    /// RFC 3339; the decision is made as of this time (default now).
    pub at: Option<String>,
    /// Free features: string, number or bool values.
    #[schema(value_type = Option<Object>)]
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
    /// Add explanations and the suppressed candidates.
    pub explain: Option<bool>,
}

/// Decides the next best actions. An unknown customer is not an error: the engine decides
/// for a new customer. When the profile store cannot be read within the budget, a fallback
/// ranking decides (inbound only, since consent cannot be checked) and `degraded` is true.
/// Planned outbound marketing actions are recorded so that later decisions count them toward
/// the contact limits until they are reported sent; when that cannot be done, they are left
/// out of the answer and `degraded` is true.
#[utoipa::path(
    post,
    path = "/v1/decisions",
    tag = "decisions",
    request_body = DecisionRequestDoc,
    responses(
        (status = 200, body = Decision),
        (status = 400, description = "A field is missing or wrong", body = super::error::ErrorBody),
    )
)]
pub async fn post_decision(
    state: web::Data<AppState>,
    profiles: web::Data<Profiles>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, state.max_body_bytes).await?;
    let started = Instant::now();
    let request = parse_request(&body)?;
    let budget = Duration::from_millis(state.decision.profile_read_budget_ms);
    // Earlier plans only matter to a decision that may plan outbound contacts, and only
    // while plans are recorded.
    let grace = i64::from(state.decision.contact_policy.planned_grace_hours) * 3600;
    let outbound = grace > 0 && (request.channels.is_some() || request.touchpoint.is_none());
    let (read, degraded) = match profiles
        .load_for_decision(&request.customer_id, outbound, budget)
        .await
    {
        Ok(read) => (read, false),
        Err(e) => {
            tracing::warn!(error = %e, "profile unavailable: deciding from the fallback ranking");
            (DecisionRead::default(), true)
        }
    };
    let models = state.models.current();
    let catalog = state.catalog.current();
    let engine = DecisionEngine {
        catalog: &catalog.value,
        models: &models.value,
        settings: &state.decision,
    };
    let mut decision = engine.decide(&DecisionInput {
        request: &request,
        profile: read.profile.as_deref(),
        planned: &read.planned,
        degraded,
        now: chrono::Utc::now(),
        decision_id: uuid::Uuid::now_v7().to_string(),
    });
    // A customer erased while this decision was made gets nothing recorded.
    let erased = state.erased.contains(request.customer_id.as_str());
    if grace > 0 && !erased {
        record_planned(
            &profiles,
            &request.customer_id,
            &mut decision,
            grace,
            budget,
        )
        .await;
    }
    let outcome = if decision.degraded {
        Outcome::Degraded
    } else if decision.actions.is_empty() {
        Outcome::NoAction
    } else {
        Outcome::Actions
    };
    let json = decision.to_json();
    if !erased {
        state.decision_log.record(&decision, &request);
    }
    DECISION_METRICS.with(|(duration, outcomes)| {
        duration.record(started.elapsed().as_secs_f64());
        outcomes[outcome as usize].increment(1);
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(json))
}

/// Records the decision's planned outbound marketing actions, so that later decisions count
/// them toward the contact limits. When that cannot be done within `budget`, they are taken
/// out of the answer (a limit could otherwise be broken by the next decision) and the
/// decision says `degraded`.
async fn record_planned(
    profiles: &Profiles,
    customer: &CustomerId,
    decision: &mut Decision,
    grace: i64,
    budget: Duration,
) {
    let planned: Vec<PlannedAction> = decision
        .actions
        .iter()
        .filter(|a| a.counts_as_contact)
        .map(|a| PlannedAction {
            decision_id: decision.decision_id.clone(),
            offer_id: a.offer_id.clone(),
            channel: a.channel,
            send_at: a.send_at_unix,
            made_at: decision.log.at,
            until: a.send_at_unix.saturating_add(grace),
        })
        .collect();
    if planned.is_empty() {
        return;
    }
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = profiles.plan(customer, &planned, now, budget).await {
        tracing::warn!(error = %e, "cannot record the planned actions: answering without them");
        decision.actions.retain(|a| !a.counts_as_contact);
        for (i, a) in decision.actions.iter_mut().enumerate() {
            a.rank = i + 1;
        }
        decision.degraded = true;
    }
}

/// A decision's outcome, the label of `touchpoint_decisions_total` ([`Outcome::LABELS`], in
/// this order).
#[derive(Clone, Copy)]
enum Outcome {
    Actions,
    NoAction,
    Degraded,
}

impl Outcome {
    const LABELS: [&'static str; 3] = ["actions", "no_action", "degraded"];
}

thread_local! {
    /// Each worker's handles on the decision duration and the count by outcome: looking
    /// them up in the recorder's registry hashed the name and label on every decision.
    /// Made on a thread's first decision, so the recorder must be installed before (the
    /// service installs it before it starts the HTTP workers).
    static DECISION_METRICS: (metrics::Histogram, [metrics::Counter; 3]) = (
        metrics::histogram!(m::DECISION_DURATION),
        Outcome::LABELS.map(|label| metrics::counter!(m::DECISIONS, "outcome" => label)),
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::decision::engine::{Action, LogDetails};
    use crate::profile::memory::MemoryStore;
    use crate::profile::store::{ApplyOutcome, ProfileStore, StoreError};
    use crate::profile::{Channel, CustomerId, Event, Profile, ProfileLimits};

    /// The memory store, except that plans cannot be recorded (`fail`) or are recorded.
    struct Plans {
        store: MemoryStore,
        fail: bool,
    }

    #[async_trait::async_trait]
    impl ProfileStore for Plans {
        fn name(&self) -> &'static str {
            "plans"
        }
        async fn apply(&self, events: &[Event], now: i64) -> Result<ApplyOutcome, StoreError> {
            self.store.apply(events, now).await
        }
        async fn load(&self, c: &CustomerId) -> Result<Option<Arc<Profile>>, StoreError> {
            self.store.load(c).await
        }
        async fn load_for_decision(
            &self,
            c: &CustomerId,
            planned: bool,
        ) -> Result<DecisionRead, StoreError> {
            self.store.load_for_decision(c, planned).await
        }
        async fn planned(&self, c: &CustomerId) -> Result<Vec<PlannedAction>, StoreError> {
            self.store.planned(c).await
        }
        async fn plan(
            &self,
            c: &CustomerId,
            planned: &[PlannedAction],
            now: i64,
        ) -> Result<(), StoreError> {
            if self.fail {
                Err(StoreError::Unavailable("test".into()))
            } else {
                self.store.plan(c, planned, now).await
            }
        }
        async fn erase(&self, c: &CustomerId) -> Result<bool, StoreError> {
            self.store.erase(c).await
        }
        async fn ping(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    fn action(rank: usize, offer: &str, channel: Channel, planned: bool) -> Action {
        Action {
            rank,
            offer_id: offer.into(),
            channel,
            send_at: "2026-12-01T18:00:00Z".into(),
            send_at_unix: 1_796_148_000,
            counts_as_contact: planned,
            propensity: 0.1,
            value: 10.0,
            priority: 1.0,
            probability: 1.0,
            explanation: None,
        }
    }

    fn decision() -> Decision {
        Decision {
            decision_id: "d-1".into(),
            customer_id: "c-1".into(),
            at: "2026-12-01T10:00:00Z".into(),
            model_version: "m".into(),
            degraded: false,
            actions: vec![
                action(1, "gold-card", Channel::Email, true),
                action(2, "payment-due-reminder", Channel::Sms, false),
                action(3, "personal-loan", Channel::Sms, true),
            ],
            suppressed: None,
            log: LogDetails {
                at: 1_796_119_200,
                candidates: Vec::new(),
                segment: None,
                value: None,
                catalog_version: "c".into(),
                epsilon: 0.0,
            },
        }
    }

    /// Recorded, the planned marketing actions (not the service message) are the customer's
    /// plans; not recorded, they leave the answer, which says it is degraded.
    #[actix_web::test]
    async fn planned_actions_are_recorded_or_withdrawn() {
        let customer = CustomerId::parse("c-1").unwrap();
        let budget = Duration::from_secs(1);
        for fail in [false, true] {
            let store = Plans {
                store: MemoryStore::new(ProfileLimits::default()),
                fail,
            };
            let profiles = Profiles::new(Arc::new(store), budget);
            let mut d = decision();
            record_planned(&profiles, &customer, &mut d, 3600, budget).await;
            let plans = profiles.planned(&customer).await.unwrap();
            let offers: Vec<(&str, usize)> = d
                .actions
                .iter()
                .map(|a| (a.offer_id.as_str(), a.rank))
                .collect();
            if fail {
                assert!(plans.is_empty());
                assert_eq!(offers, [("payment-due-reminder", 1)]);
                assert!(d.degraded);
            } else {
                let planned: Vec<(&str, Channel, i64, i64)> = plans
                    .iter()
                    .map(|p| (p.offer_id.as_str(), p.channel, p.made_at, p.until))
                    .collect();
                let until = 1_796_148_000 + 3600;
                assert_eq!(
                    planned,
                    [
                        ("gold-card", Channel::Email, 1_796_119_200, until),
                        ("personal-loan", Channel::Sms, 1_796_119_200, until)
                    ]
                );
                assert!(plans.iter().all(|p| p.decision_id == "d-1"));
                assert_eq!(offers.len(), 3);
                assert!(!d.degraded);
            }
        }
    }
}
