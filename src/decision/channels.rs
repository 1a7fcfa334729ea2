//! The channels of a request, each prepared once: an inbound touchpoint answers now; an
//! outbound channel needs a granted consent and no "do not contact", and gets the best hour
//! of the horizon for a marketing message (within contact limits) and for a service message.
//! With neither a touchpoint nor channels, every outbound channel the customer consented to.

use super::answer::Reason;
use super::contact_policy::{Block, ContactLedger};
use super::engine::Scene;
use super::timing::Slot;
use crate::profile::Channel;

pub(super) struct ChannelPlan {
    pub channel: Channel,
    /// Inbound: the customer is there now.
    pub now: bool,
    /// Why nothing may go out on it at all.
    pub blocked: Option<Reason>,
    /// How much likelier a positive answer is on it than on an average contact.
    pub lift: f64,
    pub marketing: Result<Slot, Block>,
    pub service: Result<Slot, Block>,
}

/// The request's channels: (channel, inbound now).
fn requested(scene: &Scene<'_>) -> Vec<(Channel, bool)> {
    let request = scene.request;
    let mut requested: Vec<(Channel, bool)> = Vec::new();
    if let Some(tp) = request.touchpoint {
        requested.push((tp, true));
    }
    match &request.channels {
        Some(list) => requested.extend(list.iter().map(|&c| (c, false))),
        None if request.touchpoint.is_none() => requested.extend(
            Channel::ALL
                .into_iter()
                .filter(|c| c.is_outbound() && scene.profile.consent(*c).is_some_and(|s| s.granted))
                .map(|c| (c, false)),
        ),
        None => {}
    }
    requested
}

pub(super) fn plan(scene: &Scene<'_>, ledger: &ContactLedger) -> Vec<ChannelPlan> {
    let requested = requested(scene);
    let policy = &scene.settings.contact_policy;
    let profile = scene.profile;
    let dnc = policy.do_not_contact(profile);
    let channel_lifts: Vec<f64> = if scene.degraded {
        vec![1.0; requested.len()]
    } else {
        let channels: Vec<Channel> = requested.iter().map(|(c, _)| *c).collect();
        let mut scratch = Vec::new();
        scene
            .models
            .channel_lifts(profile, &scene.scores, &channels, &mut scratch)
            .unwrap_or_else(|| vec![1.0; requested.len()])
    };
    requested
        .iter()
        .zip(channel_lifts)
        .map(|(&(channel, now), lift)| {
            if now {
                let lifts = scene.scores.time_lifts.as_ref();
                let time_lift = lifts.map_or(1.0, |l| l[scene.clock.hour(scene.t).1]);
                let slot = Slot {
                    at: scene.t,
                    time_lift,
                };
                return ChannelPlan {
                    channel,
                    now,
                    blocked: None,
                    lift,
                    marketing: Ok(slot),
                    service: Ok(slot),
                };
            }
            let blocked = if scene.degraded {
                Some(Reason::ProfileUnavailable)
            } else if dnc {
                Some(Reason::DoNotContact)
            } else if !profile.consent(channel).is_some_and(|s| s.granted) {
                Some(Reason::NoConsent)
            } else {
                None
            };
            let (marketing, service) = if blocked.is_some() {
                (Err(Block::NoConsent), Err(Block::NoConsent))
            } else {
                scene.slots().best(policy, ledger, channel)
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
        .collect()
}
