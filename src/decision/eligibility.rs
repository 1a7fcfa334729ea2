//! Whether an offer may be given to the customer at all, before any channel: valid at the
//! decision time, fit for the placement, its eligibility condition true, under its
//! per-customer caps, and not declined within the cool-down. The first check that fails is
//! the reason it is left out.

use super::answer::Reason;
use super::catalog::Offer;
use super::contact_policy::declined_recently;
use super::engine::Scene;
use super::facts::RequestFacts;
use super::history::History;
use crate::time::SECONDS_PER_DAY;

/// Why an offer is not eligible, with what its detail says.
pub(super) enum Refusal<'a> {
    NotValidNow,
    Placement(&'a str),
    NotEligible,
    AlreadyAccepted { answers: u32, max: u32 },
    OfferCap { contacts: usize, max: u32 },
    DeclinedRecently,
}

impl Refusal<'_> {
    pub fn reason(&self) -> Reason {
        match self {
            Refusal::NotValidNow => Reason::NotValidNow,
            Refusal::Placement(_) => Reason::Placement,
            Refusal::NotEligible => Reason::NotEligible,
            Refusal::AlreadyAccepted { .. } => Reason::AlreadyAccepted,
            Refusal::OfferCap { .. } => Reason::OfferCap,
            Refusal::DeclinedRecently => Reason::DeclinedRecently,
        }
    }

    pub fn detail(&self, scene: &Scene<'_>, offer: &Offer) -> Option<String> {
        match self {
            Refusal::NotValidNow => None,
            Refusal::Placement(p) => Some(format!("not shown in {p}")),
            Refusal::NotEligible => Some(offer.eligibility.source().to_owned()),
            Refusal::AlreadyAccepted { answers, max } => {
                Some(format!("{answers} positive answers, at most {max}"))
            }
            Refusal::OfferCap { contacts, max } => Some(format!(
                "{contacts} contacts in {} days, at most {max}",
                offer.cap_days
            )),
            Refusal::DeclinedRecently => Some(format!(
                "declined within {} days",
                scene.settings.contact_policy.decline_cooldown_days
            )),
        }
    }
}

/// Checks catalog offer `index` for the customer of `scene`.
pub(super) fn check<'a>(
    scene: &'a Scene<'_>,
    facts: &RequestFacts<'_>,
    history: &History<'_>,
    index: usize,
    offer: &Offer,
) -> Result<(), Refusal<'a>> {
    if !offer.is_valid_at(scene.at) {
        return Err(Refusal::NotValidNow);
    }
    if let Some(p) = &scene.request.placement
        && !offer.placements.is_empty()
        && !offer.placements.iter().any(|x| x == p)
    {
        return Err(Refusal::Placement(p));
    }
    if !offer.eligibility.evaluate(facts) {
        return Err(Refusal::NotEligible);
    }
    let stats = history.offers[index];
    if let (Some(max), Some(s)) = (offer.max_acceptances, stats)
        && s.positive_responses >= max
    {
        return Err(Refusal::AlreadyAccepted {
            answers: s.positive_responses,
            max,
        });
    }
    if let Some(max) = offer.max_contacts {
        let since = scene.t - offer.cap_days as i64 * SECONDS_PER_DAY;
        let contacts = history.offer_contacts(index, since, scene.t);
        if contacts >= max as usize {
            return Err(Refusal::OfferCap { contacts, max });
        }
    }
    if declined_recently(stats, scene.t, &scene.settings.contact_policy) {
        return Err(Refusal::DeclinedRecently);
    }
    Ok(())
}
