//! `GET /v1/offers`: the offer catalog in force.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::profile::Channel;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/offers").get(get_offers));
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogView {
    pub currency: String,
    /// Hash of the catalog file.
    pub version: String,
    pub loaded_at: String,
    pub offers: Vec<OfferView>,
    pub context_rules: Vec<ContextRuleView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfferView {
    pub id: String,
    pub name: String,
    pub category: String,
    pub description: Option<String>,
    pub channels: Vec<Channel>,
    pub value: f64,
    /// Cost of one contact by channel.
    pub cost: BTreeMap<String, f64>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub eligibility: String,
    pub max_contacts: Option<u32>,
    pub cap_days: u32,
    pub max_acceptances: Option<u32>,
    pub lever: f64,
    pub priority_group: Option<String>,
    pub service: bool,
    pub placements: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContextRuleView {
    pub name: String,
    pub when: String,
    pub categories: Vec<String>,
    pub offers: Vec<String>,
    pub weight: f64,
}

/// The catalog in force.
#[utoipa::path(get, path = "/v1/offers", tag = "offers",
    responses((status = 200, body = CatalogView)))]
pub async fn get_offers(state: web::Data<AppState>) -> HttpResponse {
    let loaded = state.catalog.current();
    let c = &loaded.value;
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    HttpResponse::Ok().json(CatalogView {
        currency: c.currency.clone(),
        version: c.version.clone(),
        loaded_at: loaded
            .loaded_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        offers: c
            .offers
            .iter()
            .map(|o| OfferView {
                id: o.id.to_string(),
                name: o.name.clone(),
                category: o.category.clone(),
                description: o.description.clone(),
                channels: o.channels.clone(),
                value: o.value,
                cost: Channel::ALL
                    .iter()
                    .filter(|ch| o.cost(**ch) > 0.0)
                    .map(|ch| (ch.to_string(), o.cost(*ch)))
                    .collect(),
                valid_from: time(o.valid_from),
                valid_until: time(o.valid_until),
                eligibility: o.eligibility.source().to_owned(),
                max_contacts: o.max_contacts,
                cap_days: o.cap_days,
                max_acceptances: o.max_acceptances,
                lever: o.lever,
                priority_group: o.priority_group.clone(),
                service: o.service,
                placements: o.placements.clone(),
            })
            .collect(),
        context_rules: c
            .context_rules
            .iter()
            .map(|r| ContextRuleView {
                name: r.name.clone(),
                when: r.when.source().to_owned(),
                categories: r.categories.clone(),
                offers: r.offers.iter().map(|o| o.to_string()).collect(),
                weight: r.weight,
            })
            .collect(),
    })
}
