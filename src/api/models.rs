//! `GET /v1/models`: the model set in service; `POST /v1/admin/models/reload`: take the model
//! directory's current set into service now (the file watcher does the same on change).

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState};
use crate::live::Loaded;
use crate::model::set::ModelSet;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/models").get(get_models))
        .service(web::resource("/v1/admin/models/reload").post(reload_models));
}

/// The loaded model set.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelsView {
    #[schema(example = "2026-11-22T09:00:00Z-3f2a")]
    pub version: String,
    pub trained_at: String,
    /// Only events before this time were used in training.
    pub as_of: String,
    /// Start of the held-out period the metrics were measured on.
    pub holdout_from: String,
    pub loaded_at: String,
    pub dir: String,
    /// Models present (value, propensity, channel, send_time, segments).
    pub models: Vec<&'static str>,
    pub events: usize,
    pub customers: usize,
    /// Held-out metrics of each model against its baseline.
    #[schema(value_type = Object)]
    pub metrics: serde_json::Value,
    /// What could not be trained and why.
    pub notes: Vec<String>,
    /// Segments, when there is a segment model.
    pub segments: Vec<SegmentSummary>,
    /// What the online learner has learned since this set went into service.
    pub online: Option<crate::learning::OnlineView>,
    /// Decisions by arm since start, when a challenger is configured.
    pub arms: Option<ArmsView>,
}

/// Champion and challenger (`models.challenger_dir`, `models.challenger_share`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ArmsView {
    /// Share of customers the challenger decides for.
    pub challenger_share: f64,
    pub champion: ArmView,
    pub challenger: ArmView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ArmView {
    pub version: String,
    pub dir: String,
    /// Decisions this arm made since the service started.
    pub decisions: u64,
    /// Answers joined to this arm's customers' decisions, from the outcome log since start.
    pub outcomes: crate::learning::ArmOutcomes,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentSummary {
    pub index: usize,
    pub name: String,
    pub description: String,
    pub size: usize,
}

impl ModelsView {
    pub fn new(loaded: &Loaded<ModelSet>, learner: Option<&crate::learning::Learner>) -> Self {
        let set = &loaded.value;
        let m = &set.manifest;
        Self {
            version: m.version.clone(),
            trained_at: m.trained_at.clone(),
            as_of: m.as_of.clone(),
            holdout_from: m.holdout_from.clone(),
            loaded_at: loaded
                .loaded_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            dir: set.dir.display().to_string(),
            models: set.present(),
            events: m.events,
            customers: m.customers,
            metrics: m.metrics.clone(),
            notes: m.notes.clone(),
            segments: set
                .segments
                .iter()
                .flat_map(|s| s.segments.iter().enumerate())
                .map(|(index, s)| SegmentSummary {
                    index,
                    name: s.name.clone(),
                    description: s.description.clone(),
                    size: s.size,
                })
                .collect(),
            online: learner.map(|l| l.view()),
            arms: None,
        }
    }

    /// The view with the arms of `decider` (when it has a challenger).
    fn with_arms(mut self, decider: &crate::decision::Decider) -> Self {
        if let Some((challenger, share)) = decider.challenger() {
            let [champion_n, challenger_n] = decider.arm_decisions();
            let [champion_o, challenger_o] = decider
                .learner()
                .map(|l| l.arm_outcomes())
                .unwrap_or_default();
            let c = challenger.current();
            self.arms = Some(ArmsView {
                challenger_share: share,
                champion: ArmView {
                    version: self.version.clone(),
                    dir: self.dir.clone(),
                    decisions: champion_n,
                    outcomes: champion_o,
                },
                challenger: ArmView {
                    version: c.value.version().to_owned(),
                    dir: c.value.dir.display().to_string(),
                    decisions: challenger_n,
                    outcomes: challenger_o,
                },
            });
        }
        self
    }
}

/// The model set in service, its version and held-out metrics.
#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, body = ModelsView)))]
pub async fn get_models(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(
        ModelsView::new(
            &state.models.current(),
            state.decider.learner().map(|l| &**l),
        )
        .with_arms(&state.decider),
    )
}

/// Loads the model directory again and takes the new set into service without a restart;
/// requests in flight finish with the set they started with. A set that cannot be served is
/// refused and the one in service stays.
#[utoipa::path(post, path = "/v1/admin/models/reload", tag = "models",
    responses(
        (status = 200, description = "The new set is in service", body = ModelsView),
        (status = 422, description = "The directory's set cannot be served; the old one stays", body = super::error::ErrorBody),
    ))]
pub async fn reload_models(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let registry = state.models.clone();
    let loaded = web::block(move || registry.reload())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::InvalidModelSet(e.to_string()))?;
    Ok(HttpResponse::Ok().json(
        ModelsView::new(&loaded, state.decider.learner().map(|l| &**l)).with_arms(&state.decider),
    ))
}
