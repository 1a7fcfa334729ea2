//! The customer's history as a decision counts it: the outbound marketing contacts in the
//! contact ledger (service messages do not count), plus the actions earlier decisions planned
//! and not yet sent ([`crate::profile::planned`]), each catalog offer's contacts for its
//! caps, and each offer's history with the customer. Found in one pass over the profile:
//! each contact's catalog offer is looked up once.

use super::catalog::Catalog;
use super::contact_policy::ContactLedger;
use crate::profile::Profile;
use crate::profile::planned::{PlannedAction, still_counting};
use crate::profile::state::OfferStats;

pub(super) struct History<'a> {
    /// Contacts and planned actions counted by the contact limits.
    pub ledger: ContactLedger,
    /// Per catalog offer (by index): the times of the customer's contacts of it.
    contacts_by_offer: Vec<Vec<i64>>,
    /// (catalog offer, send time) of the plans still counting.
    planned_offers: Vec<(usize, i64)>,
    /// Per catalog offer (by index): the customer's history with it.
    pub offers: Vec<Option<&'a OfferStats>>,
}

impl<'a> History<'a> {
    pub fn new(catalog: &Catalog, profile: &'a Profile, planned: &[PlannedAction], t: i64) -> Self {
        let mut contacts_by_offer: Vec<Vec<i64>> = vec![Vec::new(); catalog.offers.len()];
        let mut service_contact = Vec::with_capacity(profile.contacts.len());
        for c in &profile.contacts {
            let offer = c
                .offer_id
                .as_ref()
                .and_then(|o| catalog.offer_index(o.as_str()));
            if let Some(i) = offer {
                contacts_by_offer[i].push(c.at);
            }
            service_contact.push(offer.is_some_and(|i| catalog.offers[i].service));
        }
        let mut ledger = ContactLedger::new(profile, &service_contact);
        // Outbound actions planned by earlier decisions and not sent yet count as contacts
        // at their send time: on their channel, overall, and toward their offer's cap
        // (each counts in the cap from the decision on, whenever it is to be sent).
        let mut planned_offers: Vec<(usize, i64)> = Vec::new();
        for p in still_counting(planned, t, &profile.contacts) {
            if !p.channel.is_outbound() {
                continue;
            }
            let offer = catalog.offer_index(p.offer_id.as_str());
            // A service message counts toward its offer's cap, not the contact limits.
            if p.counts && !offer.is_some_and(|i| catalog.offers[i].service) {
                ledger.plan(p.channel, p.send_at);
            }
            if let Some(i) = offer {
                planned_offers.push((i, p.send_at));
            }
        }
        // In one pass over the profile's per-offer counts (`Profile::offer` scans them, and
        // every offer is asked about twice).
        let mut offers: Vec<Option<&OfferStats>> = vec![None; catalog.offers.len()];
        for s in &profile.offers {
            if let Some(i) = catalog.offer_index(s.offer_id.as_str()) {
                offers[i].get_or_insert(s);
            }
        }
        Self {
            ledger,
            contacts_by_offer,
            planned_offers,
            offers,
        }
    }

    /// Contacts of catalog offer `offer` in `(since, t]`, and its plans still counting sent
    /// after `since`.
    pub fn offer_contacts(&self, offer: usize, since: i64, t: i64) -> usize {
        self.contacts_by_offer[offer]
            .iter()
            .filter(|&&at| at > since && at <= t)
            .count()
            + self
                .planned_offers
                .iter()
                .filter(|&&(i, at)| i == offer && at > since)
                .count()
    }
}
