//! The offer catalog: a TOML file (see `config/catalog.toml`) loaded at start and on change,
//! checked whole before it is used. Eligibility conditions compile here, so a mistake is an
//! error naming the offer, the field and the column, never a surprise at decision time.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::condition::{self, Condition};
use super::fields::{ConditionFields, Named};
use crate::profile::{Channel, OfferId};

/// The catalog in force.
#[derive(Debug)]
pub struct Catalog {
    pub currency: String,
    pub offers: Vec<Offer>,
    /// Business levers that depend on where the customer is (placement, touchpoint, context).
    pub context_rules: Vec<ContextRule>,
    /// What each named condition slot reads (slot `FIRST_NAMED_SLOT + i`).
    pub named_fields: Vec<Named>,
    /// Hash of the file's bytes: which catalog a decision used.
    pub version: String,
    /// Offer index by id: decisions look offers up for every contact in a history, so the
    /// hasher is foldhash (already in the tree through actix) rather than the slower
    /// default SipHash or xxh3's streaming `Hasher`, which cost twice as much on short ids
    /// (callgrind). It is seeded per process.
    index: foldhash::HashMap<String, usize>,
    pub path: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct Offer {
    /// Shared (an [`OfferId`] is an `Arc<str>`): the decision log holds it for every
    /// candidate without copying.
    pub id: OfferId,
    pub name: String,
    pub category: String,
    pub description: Option<String>,
    /// Channels the offer may use, in `Channel::ALL` order.
    pub channels: Vec<Channel>,
    /// Margin of a positive response, in the catalog's currency.
    pub value: f64,
    /// Cost of one contact, by channel index.
    #[serde(skip)]
    pub cost: [f64; Channel::COUNT],
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    /// Who may get the offer; empty means everyone.
    pub eligibility: Condition,
    /// At most this many contacts of the offer per customer within `cap_days`.
    pub max_contacts: Option<u32>,
    pub cap_days: u32,
    /// After this many positive responses the customer is not offered it again.
    pub max_acceptances: Option<u32>,
    /// Business weight in arbitration (1 = neutral).
    pub lever: f64,
    /// At most one action per group in one decision.
    pub priority_group: Option<String>,
    /// Service messages are not marketing: contact limits do not count them.
    pub service: bool,
    /// Inbound placements it may fill; empty means any.
    pub placements: Vec<String>,
}

impl Offer {
    pub fn cost(&self, channel: Channel) -> f64 {
        self.cost[channel.index()]
    }

    pub fn allows(&self, channel: Channel) -> bool {
        self.channels.contains(&channel)
    }

    pub fn is_valid_at(&self, at: DateTime<Utc>) -> bool {
        self.valid_from.is_none_or(|f| at >= f) && self.valid_until.is_none_or(|u| at < u)
    }
}

/// A weight on offers when the request matches: e.g. the homepage hero favours content, the
/// call centre favours loans. Weights of all matching rules multiply.
#[derive(Debug, Clone, Serialize)]
pub struct ContextRule {
    pub name: String,
    /// Over the request's fields (`touchpoint`, `placement`, `ctx.<name>`) and the customer's.
    pub when: Condition,
    /// Offer categories it applies to; empty means all.
    pub categories: Vec<String>,
    /// Offers it applies to; empty means all (within `categories`).
    pub offers: Vec<OfferId>,
    pub weight: f64,
}

impl ContextRule {
    pub fn applies_to(&self, offer: &Offer) -> bool {
        (self.categories.is_empty() || self.categories.contains(&offer.category))
            && (self.offers.is_empty() || self.offers.contains(&offer.id))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read the catalog {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the catalog {path} is not valid: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("the catalog {path}, offer {offer:?}, field {field}: {message}")]
    Invalid {
        path: PathBuf,
        offer: String,
        field: String,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[serde(default = "default_currency")]
    currency: String,
    offers: Vec<RawOffer>,
    #[serde(default)]
    context_rules: Vec<RawContextRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContextRule {
    name: Option<String>,
    when: String,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    offers: Vec<String>,
    weight: f64,
}

fn default_currency() -> String {
    "EUR".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOffer {
    id: String,
    name: String,
    category: String,
    description: Option<String>,
    channels: Vec<String>,
    value: f64,
    #[serde(default)]
    cost: std::collections::BTreeMap<String, f64>,
    valid_from: Option<toml::Value>,
    valid_until: Option<toml::Value>,
    #[serde(default)]
    eligibility: String,
    max_contacts: Option<u32>,
    cap_days: Option<u32>,
    max_acceptances: Option<u32>,
    lever: Option<f64>,
    priority_group: Option<String>,
    #[serde(default)]
    service: bool,
    #[serde(default)]
    placements: Vec<String>,
}

impl Catalog {
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let bytes = std::fs::read(path).map_err(|source| CatalogError::Read {
            path: path.to_owned(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| CatalogError::Syntax {
            path: path.to_owned(),
            message: "the file is not UTF-8".into(),
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Catalog, CatalogError> {
        let raw: RawCatalog = toml::from_str(text).map_err(|e| CatalogError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let fields = ConditionFields::new();
        let mut offers: Vec<Offer> = Vec::with_capacity(raw.offers.len());
        for raw_offer in raw.offers {
            let offer = check_offer(raw_offer, &fields).map_err(|(offer, field, message)| {
                CatalogError::Invalid {
                    path: path.to_owned(),
                    offer,
                    field,
                    message,
                }
            })?;
            if offers.iter().any(|o| o.id == offer.id) {
                return Err(CatalogError::Invalid {
                    path: path.to_owned(),
                    offer: offer.id.to_string(),
                    field: "id".into(),
                    message: "two offers have this id".into(),
                });
            }
            offers.push(offer);
        }
        if raw.context_rules.len() > 64 {
            return Err(CatalogError::Invalid {
                path: path.to_owned(),
                offer: String::new(),
                field: "context_rules".into(),
                message: format!("at most 64 context rules, not {}", raw.context_rules.len()),
            });
        }
        let mut context_rules = Vec::with_capacity(raw.context_rules.len());
        for (i, r) in raw.context_rules.into_iter().enumerate() {
            let name = r.name.unwrap_or_else(|| format!("context rule {}", i + 1));
            let invalid = |field: &str, message: String| CatalogError::Invalid {
                path: path.to_owned(),
                offer: name.clone(),
                field: format!("context_rules[{i}].{field}"),
                message,
            };
            let when =
                condition::compile(&r.when, &fields).map_err(|e| invalid("when", e.to_string()))?;
            if !r.weight.is_finite() || r.weight < 0.0 {
                return Err(invalid(
                    "weight",
                    format!("weight must be a number >= 0, not {}", r.weight),
                ));
            }
            let mut ids = Vec::new();
            for o in r.offers {
                if !offers.iter().any(|x| x.id.as_str() == o) {
                    return Err(invalid("offers", format!("no offer {o:?} in the catalog")));
                }
                ids.push(OfferId::parse(o).map_err(|e| invalid("offers", e.to_string()))?);
            }
            context_rules.push(ContextRule {
                name: name.clone(),
                when,
                categories: r.categories,
                offers: ids,
                weight: r.weight,
            });
        }
        let index = offers
            .iter()
            .enumerate()
            .map(|(i, o)| (o.id.to_string(), i))
            .collect();
        Ok(Catalog {
            index,
            currency: raw.currency,
            offers,
            context_rules,
            named_fields: fields.into_named(),
            version: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes())),
            path: path.to_owned(),
        })
    }

    pub fn offer(&self, id: &str) -> Option<&Offer> {
        self.offer_index(id).map(|i| &self.offers[i])
    }

    pub fn offer_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Offer categories, sorted and distinct.
    pub fn categories(&self) -> Vec<String> {
        let mut c: Vec<String> = self.offers.iter().map(|o| o.category.clone()).collect();
        c.sort();
        c.dedup();
        c
    }
}

type OfferProblem = (String, String, String);

fn check_offer(raw: RawOffer, fields: &ConditionFields) -> Result<Offer, OfferProblem> {
    let name = raw.id.clone();
    let problem = |field: &str, message: String| (name.clone(), field.to_owned(), message);
    let id = OfferId::parse(raw.id.clone()).map_err(|e| problem("id", format!("id {e}")))?;
    if raw.name.trim().is_empty() {
        return Err(problem("name", "name must not be empty".into()));
    }
    if raw.category.trim().is_empty() {
        return Err(problem("category", "category must not be empty".into()));
    }
    let mut channels = Vec::new();
    for c in &raw.channels {
        channels.push(
            c.parse::<Channel>()
                .map_err(|e| problem("channels", e.to_string()))?,
        );
    }
    if channels.is_empty() {
        return Err(problem(
            "channels",
            "an offer needs at least one channel".into(),
        ));
    }
    channels.sort_by_key(|c| c.index());
    channels.dedup();
    if !raw.value.is_finite() || raw.value < 0.0 {
        return Err(problem(
            "value",
            format!("value must be a number >= 0, not {}", raw.value),
        ));
    }
    let mut cost = [0.0; Channel::COUNT];
    for (c, v) in &raw.cost {
        let channel: Channel = c
            .parse()
            .map_err(|e: crate::profile::channel::UnknownChannel| problem("cost", e.to_string()))?;
        if !v.is_finite() || *v < 0.0 {
            return Err(problem(
                "cost",
                format!("cost of {c} must be a number >= 0, not {v}"),
            ));
        }
        cost[channel.index()] = *v;
    }
    let time = |v: Option<toml::Value>,
                field: &str|
     -> Result<Option<DateTime<Utc>>, OfferProblem> {
        let Some(v) = v else { return Ok(None) };
        #[allow(
            clippy::wildcard_enum_match_arm,
            reason = "any other TOML type is a mistake, whatever new types TOML grows"
        )]
        let text = match v {
            toml::Value::String(s) => s,
            toml::Value::Datetime(d) => d.to_string(),
            other => {
                return Err(problem(
                    field,
                    format!("{field} must be an RFC 3339 time, not {other}"),
                ));
            }
        };
        DateTime::parse_from_rfc3339(&text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| {
                problem(
                    field,
                    format!("{field} must be an RFC 3339 time with a zone, such as 2026-01-01T00:00:00Z ({e})"),
                )
            })
    };
    let valid_from = time(raw.valid_from, "valid_from")?;
    let valid_until = time(raw.valid_until, "valid_until")?;
    if let (Some(f), Some(u)) = (valid_from, valid_until)
        && u <= f
    {
        return Err(problem(
            "valid_until",
            "valid_until must be after valid_from".into(),
        ));
    }
    let eligibility = condition::compile(&raw.eligibility, fields)
        .map_err(|e| problem("eligibility", e.to_string()))?;
    let lever = raw.lever.unwrap_or(1.0);
    if !lever.is_finite() || lever <= 0.0 {
        return Err(problem(
            "lever",
            format!("lever must be a positive number, not {lever}"),
        ));
    }
    let cap_days = raw.cap_days.unwrap_or(30);
    if cap_days == 0 {
        return Err(problem("cap_days", "cap_days must be at least 1".into()));
    }
    if raw.max_contacts.is_none() && raw.cap_days.is_some() {
        return Err(problem(
            "cap_days",
            "cap_days only applies with max_contacts".into(),
        ));
    }
    Ok(Offer {
        id,
        name: raw.name,
        category: raw.category,
        description: raw.description,
        channels,
        value: raw.value,
        cost,
        valid_from,
        valid_until,
        eligibility,
        max_contacts: raw.max_contacts,
        cap_days,
        max_acceptances: raw.max_acceptances,
        lever,
        priority_group: raw.priority_group,
        service: raw.service,
        placements: raw.placements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Catalog, CatalogError> {
        Catalog::parse(text, Path::new("test.toml"))
    }

    const ONE: &str = r#"
[[offers]]
id = "gold-card"
name = "Gold card"
category = "card"
channels = ["email", "sms"]
value = 120.0
cost = { email = 0.02, sms = 0.06 }
valid_from = 2026-01-01T00:00:00Z
valid_until = "2027-01-01T00:00:00Z"
eligibility = 'attr.age_band != "18-24"'
max_contacts = 2
cap_days = 14
"#;

    #[test]
    fn a_valid_offer_loads_with_its_costs_window_and_condition() {
        let c = parse(ONE).unwrap();
        let o = &c.offers[0];
        assert_eq!(o.cost(Channel::Sms), 0.06);
        assert_eq!(o.cost(Channel::Push), 0.0);
        assert!(o.is_valid_at("2026-06-01T00:00:00Z".parse().unwrap()));
        assert!(!o.is_valid_at("2027-01-01T00:00:00Z".parse().unwrap()));
        assert_eq!(o.eligibility.source(), r#"attr.age_band != "18-24""#);
        assert_eq!(c.currency, "EUR");
    }

    #[test]
    fn mistakes_are_named_by_offer_and_field() {
        let cases = [
            (
                ONE.replace(r#"["email", "sms"]"#, r#"["email", "fax"]"#),
                "channels",
            ),
            (ONE.replace("value = 120.0", "value = -1.0"), "value"),
            (ONE.replace("sms = 0.06", "fax = 0.06"), "cost"),
            (ONE.replace(r#"!= "18-24""#, "> 3 and"), "eligibility"),
            (
                ONE.replace("2027-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
                "valid_until",
            ),
            (ONE.replace("cap_days = 14", "cap_days = 0"), "cap_days"),
        ];
        for (text, field) in cases {
            match parse(&text) {
                Err(CatalogError::Invalid {
                    offer, field: f, ..
                }) => {
                    assert_eq!((offer.as_str(), f.as_str()), ("gold-card", field))
                }
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!(matches!(
            parse(&format!("{ONE}\n{ONE}")),
            Err(CatalogError::Invalid { field, .. }) if field == "id"
        ));
        assert!(matches!(
            parse(
                &ONE.replace("lever", "leverr")
                    .replace("cap_days = 14", "colour = 1")
            ),
            Err(CatalogError::Syntax { .. })
        ));
    }

    #[test]
    fn the_shipped_catalog_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/catalog.toml");
        let c = Catalog::load(&path).unwrap();
        assert!(c.offers.len() >= 20, "{}", c.offers.len());
        assert!(c.offers.iter().any(|o| o.service));
    }
}
