//! The slate, rank by rank: at each rank the [`super::policy::Policy`] chooses one of the
//! open candidates, with the probability it chose it; then the other candidates of the same
//! offer and of the same priority group close, and planned outbound marketing actions are
//! re-checked against the contact limits with the action just planned (a candidate moves to
//! its channel's next allowed hour, or closes when there is none).

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::answer::{Action, LoggedCandidate, Reason, Suppressions};
use super::candidates::Candidate;
use super::channels::ChannelPlan;
use super::contact_policy::{Block, ContactLedger};
use super::engine::Scene;
use super::explanation;
use super::policy::{Arm, Choice};
use super::timing::Slot;
use crate::profile::Channel;
use crate::time::rfc3339;

pub(super) struct Slate {
    /// The actions, rank 1 first.
    pub actions: Vec<Action>,
    /// Every candidate, with the probability the policy would choose it at rank 1.
    pub logged: Vec<LoggedCandidate>,
}

pub(super) fn choose(
    scene: &Scene<'_>,
    mut candidates: Vec<Candidate>,
    plans: &[ChannelPlan],
    ledger: &mut ContactLedger,
    suppressed: &mut Suppressions,
) -> Slate {
    let (logged, first) = logged(scene, &candidates, plans);
    // Seeded by the decision: the same decision draws the same way.
    let mut rng = StdRng::seed_from_u64(xxhash_rust::xxh3::xxh3_64(
        scene.decision_id.as_str().as_bytes(),
    ));
    let mut open: Vec<bool> = vec![true; candidates.len()];
    let mut actions: Vec<Action> = Vec::with_capacity(scene.request.limit);
    let mut planned_marketing = false;
    while actions.len() < scene.request.limit {
        if planned_marketing {
            recheck_limits(scene, &mut candidates, &mut open, plans, ledger, suppressed);
        }
        let remaining: Vec<usize> = (0..candidates.len()).filter(|&i| open[i]).collect();
        if remaining.is_empty() {
            break;
        }
        let arms: Vec<Arm> = remaining.iter().map(|&i| candidates[i].arm()).collect();
        // At the first rank every candidate is open: the logged probabilities are its own.
        let choice = if actions.is_empty() && remaining.len() == candidates.len() {
            scene.policy.choose_given(&arms, &first, &mut rng)
        } else {
            scene.policy.choose(&arms, &mut rng)
        };
        let pick = remaining[choice.index];
        let c = candidates[pick];
        let plan = &plans[c.plan];
        planned_marketing = !c.service && !plan.now;
        if planned_marketing {
            ledger.plan(plan.channel, c.slot.at);
        }
        close_rivals(
            scene,
            &candidates,
            &mut open,
            pick,
            plans,
            actions.len() + 1,
            suppressed,
        );
        actions.push(action(
            scene,
            &c,
            plans,
            choice,
            actions.len() + 1,
            planned_marketing,
        ));
    }
    if scene.explain() {
        for (i, c) in candidates.iter().enumerate() {
            let offer = &scene.catalog.offers[c.offer];
            if open[i] && !actions.iter().any(|a| a.offer_id == offer.id) {
                suppressed.add(
                    &offer.id,
                    Some(plans[c.plan].channel),
                    Reason::SlateFull,
                    || {
                        Some(format!(
                            "priority {:.4} below the {} chosen",
                            c.priority,
                            actions.len()
                        ))
                    },
                );
            }
        }
    }
    Slate { actions, logged }
}

/// Every candidate as the log keeps it, with the probability of being chosen at rank 1.
fn logged(
    scene: &Scene<'_>,
    candidates: &[Candidate],
    plans: &[ChannelPlan],
) -> (Vec<LoggedCandidate>, Vec<f64>) {
    let arms: Vec<Arm> = candidates.iter().map(Candidate::arm).collect();
    let mut probabilities = Vec::with_capacity(arms.len());
    scene.policy.probabilities(&arms, &mut probabilities);
    let logged = candidates
        .iter()
        .zip(probabilities.iter().copied())
        .map(|(c, probability)| LoggedCandidate {
            offer_id: scene.catalog.offers[c.offer].id.clone(),
            channel: plans[c.plan].channel,
            send_at: c.slot.at,
            propensity: c.propensity,
            value: c.value,
            priority: c.priority,
            probability,
        })
        .collect();
    (logged, probabilities)
}

fn action(
    scene: &Scene<'_>,
    c: &Candidate,
    plans: &[ChannelPlan],
    choice: Choice,
    rank: usize,
    planned_marketing: bool,
) -> Action {
    let offer = &scene.catalog.offers[c.offer];
    let plan = &plans[c.plan];
    Action {
        rank,
        offer_id: offer.id.clone(),
        channel: plan.channel,
        send_at: rfc3339(c.slot.at),
        send_at_unix: c.slot.at,
        planned: !plan.now && plan.channel.is_outbound(),
        counts_as_contact: planned_marketing && plan.channel.is_outbound(),
        propensity: c.propensity,
        value: c.value,
        priority: c.priority,
        probability: choice.probability,
        explanation: scene
            .explain()
            .then(|| explanation::explain(scene, c, plans, &choice)),
    }
}

/// One action per offer, one per priority group: closes the other candidates of the chosen
/// one's offer and group.
fn close_rivals(
    scene: &Scene<'_>,
    candidates: &[Candidate],
    open: &mut [bool],
    pick: usize,
    plans: &[ChannelPlan],
    rank: usize,
    suppressed: &mut Suppressions,
) {
    let offers = &scene.catalog.offers;
    let chosen = &offers[candidates[pick].offer];
    for (i, other) in candidates.iter().enumerate() {
        if !open[i] {
            continue;
        }
        let same_offer = other.offer == candidates[pick].offer;
        let same_group = chosen.priority_group.is_some()
            && offers[other.offer].priority_group == chosen.priority_group;
        if same_offer || same_group {
            open[i] = false;
            if i != pick {
                let reason = if same_offer {
                    Reason::SlateFull
                } else {
                    Reason::PriorityGroupTaken
                };
                let channel = Some(plans[other.plan].channel);
                suppressed.add(&offers[other.offer].id, channel, reason, || {
                    Some(format!("{} chosen at rank {rank}", chosen.id))
                });
            }
        }
    }
}

/// Re-checks the open outbound marketing candidates against the contact limits with the
/// actions planned so far: one that no longer fits moves to its channel's best allowed hour
/// (and is scored again there), or closes. A new slot depends only on the channel, so it is
/// found once per channel; candidates of a channel share their slot, so it is checked once.
fn recheck_limits(
    scene: &Scene<'_>,
    candidates: &mut [Candidate],
    open: &mut [bool],
    plans: &[ChannelPlan],
    ledger: &ContactLedger,
    suppressed: &mut Suppressions,
) {
    let policy = &scene.settings.contact_policy;
    let mut new_slots: [Option<Result<Slot, Block>>; Channel::COUNT] = [None; Channel::COUNT];
    let mut still_allowed: [Option<(i64, bool)>; Channel::COUNT] = [None; Channel::COUNT];
    for (i, c) in candidates.iter_mut().enumerate() {
        if !open[i] || c.service || plans[c.plan].now {
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
        if allowed {
            continue;
        }
        let slot = *new_slots[channel.index()]
            .get_or_insert_with(|| scene.slots().best(policy, ledger, channel).0);
        let offer = &scene.catalog.offers[c.offer];
        match slot {
            Ok(slot) => {
                c.slot = slot;
                c.score(scene.models, offer, &plans[c.plan]);
            }
            Err(b) => {
                open[i] = false;
                suppressed.add(&offer.id, Some(channel), b.into(), || {
                    Some("limit reached with the actions planned above".into())
                });
            }
        }
    }
}
