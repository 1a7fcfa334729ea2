//! Property tests over random profiles, catalogs, contact policies, planned actions of earlier
//! decisions and requests: a decision never acts without consent, beyond a contact limit
//! (counting the planned actions not yet sent), in quiet hours, or outside an offer's
//! eligibility and caps. Every check here is computed independently of the engine, from the
//! profile and the catalog as the test built them.

use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Timelike, Utc};
use proptest::prelude::*;
use touchpoint::decision::catalog::Catalog;
use touchpoint::decision::contact_policy::{ChannelLimit, ContactPolicy};
use touchpoint::decision::engine::{DecisionEngine, DecisionInput};
use touchpoint::decision::request::parse_request;
use touchpoint::decision::{DecisionSettings, Exploration};
use touchpoint::model::set::ModelSet;
use touchpoint::profile::event::parse_body;
use touchpoint::profile::planned::{CLOCK_SKEW, PlannedAction};
use touchpoint::profile::{AttrValue, Channel, DecisionId, OfferId, Profile, ProfileLimits};

use crate::helpers::repo_path;

const DAY: i64 = 86_400;
const NOW: i64 = 1_798_761_600; // 2027-01-01T00:00:00Z
const OUTBOUND: [Channel; 4] = [
    Channel::Email,
    Channel::Sms,
    Channel::Push,
    Channel::DirectMail,
];
const ALL: [Channel; 8] = Channel::ALL;
const ZONES: [&str; 4] = [
    "Europe/London",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
];
const AGES: [&str; 3] = ["18-24", "35-44", "65+"];

fn models() -> &'static ModelSet {
    static M: OnceLock<ModelSet> = OnceLock::new();
    M.get_or_init(|| ModelSet::load(&repo_path("models")).unwrap())
}

/// An eligibility condition and the same rule as a plain function of the profile.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Everyone,
    Age(usize),
    NotAge(usize),
    Vip,
    MinPurchases(u32),
}

impl Rule {
    fn source(self) -> String {
        match self {
            Rule::Everyone => String::new(),
            Rule::Age(i) => format!("attr.age_band == \"{}\"", AGES[i]),
            Rule::NotAge(i) => format!("attr.age_band != \"{}\"", AGES[i]),
            Rule::Vip => "attr.vip == true".into(),
            Rule::MinPurchases(n) => format!("profile.purchases >= {n}"),
        }
    }

    fn holds(self, p: &Profile) -> bool {
        let age = match p.attribute("age_band") {
            Some(AttrValue::Text(t)) => Some(t.as_str()),
            _ => None,
        };
        match self {
            Rule::Everyone => true,
            Rule::Age(i) => age == Some(AGES[i]),
            // A missing value makes != true (the language's rule).
            Rule::NotAge(i) => age != Some(AGES[i]),
            Rule::Vip => matches!(p.attribute("vip"), Some(AttrValue::Bool(true))),
            Rule::MinPurchases(n) => p.purchases.count >= n,
        }
    }
}

#[derive(Debug, Clone)]
struct OfferSpec {
    channels: Vec<Channel>,
    rule: Rule,
    max_contacts: Option<(u32, u32)>,
    max_acceptances: Option<u32>,
    service: bool,
    group: Option<u8>,
    value: f64,
}

fn offer_spec() -> impl Strategy<Value = OfferSpec> {
    (
        proptest::sample::subsequence(ALL.to_vec(), 1..=8),
        prop_oneof![
            Just(Rule::Everyone),
            (0..3usize).prop_map(Rule::Age),
            (0..3usize).prop_map(Rule::NotAge),
            Just(Rule::Vip),
            (1..4u32).prop_map(Rule::MinPurchases),
        ],
        proptest::option::of((1..4u32, 1..30u32)),
        proptest::option::of(1..3u32),
        proptest::bool::weighted(0.2),
        proptest::option::of(0..3u8),
        1.0..500.0f64,
    )
        .prop_map(
            |(channels, rule, max_contacts, max_acceptances, service, group, value)| OfferSpec {
                channels,
                rule,
                max_contacts,
                max_acceptances,
                service,
                group,
                value,
            },
        )
}

fn catalog_text(offers: &[OfferSpec]) -> String {
    let mut t = String::new();
    for (i, o) in offers.iter().enumerate() {
        let channels: Vec<String> = o.channels.iter().map(|c| format!("\"{c}\"")).collect();
        t.push_str(&format!(
            "[[offers]]\nid = \"offer-{i}\"\nname = \"Offer {i}\"\ncategory = \"{}\"\nchannels = [{}]\nvalue = {}\ncost = {{ email = 0.01, sms = 0.05 }}\neligibility = '{}'\nservice = {}\n",
            ["card", "loan", "savings"][i % 3],
            channels.join(", "),
            o.value,
            o.rule.source(),
            o.service
        ));
        if let Some((max, days)) = o.max_contacts {
            t.push_str(&format!("max_contacts = {max}\ncap_days = {days}\n"));
        }
        if let Some(a) = o.max_acceptances {
            t.push_str(&format!("max_acceptances = {a}\n"));
        }
        if let Some(g) = o.group {
            t.push_str(&format!("priority_group = \"g{g}\"\n"));
        }
        t.push('\n');
    }
    t
}

/// A random history: attributes, consents granted and withdrawn, contacts, answers,
/// purchases, all in the 40 days before the decision.
#[derive(Debug, Clone)]
enum Ev {
    Consent(usize, bool, i64),
    Contact(usize, usize, i64),
    Answer(usize, bool, i64),
    Purchase(i64),
}

fn history(offers: usize) -> impl Strategy<Value = (usize, bool, bool, usize, Vec<Ev>)> {
    let ev = prop_oneof![
        (0..4usize, any::<bool>(), 0..40 * DAY).prop_map(|(c, g, t)| Ev::Consent(c, g, t)),
        (0..4usize, 0..offers, 0..40 * DAY).prop_map(|(c, o, t)| Ev::Contact(c, o, t)),
        (0..offers, any::<bool>(), 0..40 * DAY).prop_map(|(o, p, t)| Ev::Answer(o, p, t)),
        (0..40 * DAY).prop_map(Ev::Purchase),
    ];
    (
        0..3usize,
        proptest::bool::weighted(0.3),
        proptest::bool::weighted(0.15),
        0..ZONES.len(),
        proptest::collection::vec(ev, 0..60),
    )
}

fn build_profile(age: usize, vip: bool, dnc: bool, zone: usize, events: &[Ev]) -> Profile {
    let t = |secs: i64| {
        DateTime::<Utc>::from_timestamp(NOW - 40 * DAY + secs, 0)
            .unwrap()
            .to_rfc3339()
    };
    let mut json = vec![
        serde_json::json!({"event_id": "attrs", "customer_id": "c", "type": "attributes",
        "at": t(0), "attributes": {"age_band": AGES[age], "vip": vip, "do_not_contact": dnc, "timezone": ZONES[zone]}}),
    ];
    for (i, e) in events.iter().enumerate() {
        let id = format!("e{i}");
        json.push(match e {
            Ev::Consent(c, g, at) => serde_json::json!({"event_id": id, "customer_id": "c", "type": "consent",
                "at": t(*at), "consent": {"channel": OUTBOUND[*c], "granted": g}}),
            Ev::Contact(c, o, at) => serde_json::json!({"event_id": id, "customer_id": "c", "type": "contact",
                "at": t(*at), "channel": OUTBOUND[*c], "offer_id": format!("offer-{o}")}),
            Ev::Answer(o, positive, at) => serde_json::json!({"event_id": id, "customer_id": "c", "type": "response",
                "at": t(*at), "offer_id": format!("offer-{o}"), "outcome": if *positive { "accepted" } else { "declined" }}),
            Ev::Purchase(at) => serde_json::json!({"event_id": id, "customer_id": "c", "type": "purchase",
                "at": t(*at), "amount": 20.0}),
        });
    }
    let mut p = Profile::default();
    for e in parse_body(serde_json::json!({"events": json}).to_string().as_bytes()).unwrap() {
        p.apply(&e, &ProfileLimits::default(), 0).unwrap();
    }
    p
}

fn policy() -> impl Strategy<Value = ContactPolicy> {
    (
        proptest::collection::vec((0..4usize, 1..3u32, 1..10u32), 0..4),
        1..6u32,
        1..14u32,
        0..24u32,
        0..24u32,
        24..100u32,
        0..40u32,
    )
        .prop_map(
            |(limits, outbound_max, outbound_days, qs, qe, horizon, cooldown)| {
                let mut channel_limits: Vec<ChannelLimit> = Vec::new();
                for (c, max, days) in limits {
                    if !channel_limits.iter().any(|l| l.channel == OUTBOUND[c]) {
                        channel_limits.push(ChannelLimit {
                            channel: OUTBOUND[c],
                            max,
                            days,
                        });
                    }
                }
                ContactPolicy {
                    channel_limits,
                    outbound_max,
                    outbound_days,
                    decline_cooldown_days: cooldown,
                    quiet_hours_start: qs,
                    quiet_hours_end: qe,
                    horizon_hours: horizon,
                    // The engine is given the plans; recording new ones is the service's.
                    planned_grace_hours: 24,
                    do_not_contact_attribute: "do_not_contact".into(),
                }
            },
        )
}

/// The most plans that can each be matched to a distinct contact at or after its decision.
fn max_matched(plans: &[&PlannedAction], sent: &[i64], used: &mut Vec<bool>) -> usize {
    let Some((first, rest)) = plans.split_first() else {
        return 0;
    };
    let mut best = max_matched(rest, sent, used);
    for i in 0..sent.len() {
        if !used[i] && sent[i] >= first.made_at - CLOCK_SKEW {
            used[i] = true;
            best = best.max(1 + max_matched(rest, sent, used));
            used[i] = false;
        }
    }
    best
}

/// At most `max` contacts in any window of `len` seconds that contains `new`.
fn within_limit(times: &[i64], new: i64, len: i64, max: u32) -> bool {
    let mut all: Vec<i64> = times.to_vec();
    all.push(new);
    all.sort_unstable();
    all.iter()
        .filter(|&&end| end >= new && end - len < new)
        .all(|&end| all.iter().filter(|&&x| x > end - len && x <= end).count() <= max as usize)
}

fn local_hour(at: i64, zone: usize) -> u32 {
    let tz: chrono_tz::Tz = ZONES[zone].parse().unwrap();
    tz.from_utc_datetime(&DateTime::<Utc>::from_timestamp(at, 0).unwrap().naive_utc())
        .hour()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn decisions_never_break_consent_contact_limits_quiet_hours_or_eligibility(
        offers in proptest::collection::vec(offer_spec(), 1..12),
        (age, vip, dnc, zone, events) in history(12),
        policy in policy(),
        touchpoint in proptest::option::of(prop_oneof![Just(Channel::Web), Just(Channel::App), Just(Channel::CallCentre)]),
        channels in proptest::option::of(proptest::sample::subsequence(OUTBOUND.to_vec(), 1..=4)),
        limit in 1..6usize,
        epsilon in prop_oneof![Just(0.0), Just(0.3)],
        seed in any::<u64>(),
        // Earlier decisions' plans: channel, offer, made this long ago, to be sent this
        // long after, counting this long after that.
        planned in proptest::collection::vec((0..4usize, 0..12usize, 0..3 * DAY, 0..3 * DAY, 0..2 * DAY), 0..6),
    ) {
        let events: Vec<Ev> = events.into_iter().map(|e| match e {
            Ev::Contact(c, o, t) => Ev::Contact(c, o % offers.len(), t),
            Ev::Answer(o, p, t) => Ev::Answer(o % offers.len(), p, t),
            other @ (Ev::Consent(..) | Ev::Purchase(_)) => other,
        }).collect();
        let catalog = Catalog::parse(&catalog_text(&offers), std::path::Path::new("prop.toml")).unwrap();
        let profile = build_profile(age, vip, dnc, zone, &events);
        let settings = DecisionSettings {
            contact_policy: policy.clone(),
            exploration: Exploration { epsilon, policy: touchpoint::decision::PolicyKind::EpsilonGreedy, ..Exploration::default() },
            ..DecisionSettings::default()
        };
        let mut body = serde_json::json!({"customer_id": "c", "limit": limit,
            "at": DateTime::<Utc>::from_timestamp(NOW, 0).unwrap().to_rfc3339()});
        if let Some(tp) = touchpoint { body["touchpoint"] = serde_json::json!(tp); }
        if let Some(ch) = &channels { body["channels"] = serde_json::json!(ch); }
        let request = parse_request(body.to_string().as_bytes()).unwrap();
        let planned: Vec<PlannedAction> = planned.into_iter().enumerate().map(|(i, (c, o, ago, after, grace))| {
            let made_at = NOW - ago;
            PlannedAction {
                decision_id: DecisionId::parse(format!("earlier-{i}")).unwrap(),
                offer_id: OfferId::parse(format!("offer-{}", o % offers.len())).unwrap(),
                channel: OUTBOUND[c],
                send_at: made_at + after,
                made_at,
                until: made_at + after + grace,
                counts: true,
            }
        }).collect();
        let chooser = settings.exploration.policy();
        let engine = DecisionEngine { catalog: &catalog, models: models(), settings: &settings, policy: &*chooser, online: None };
        let decision = engine.decide(&DecisionInput {
            request: &request,
            profile: Some(&profile),
            planned: &planned,
            degraded: false,
            now: Utc::now(),
            decision_id: DecisionId::parse(format!("d-{seed}")).unwrap(),
        });

        let is_service = |id: &str| catalog.offer(id).is_some_and(|o| o.service);
        // The earlier plans that still count: not sent, not lapsed, not a service message. A
        // contact of the offer on the channel since a plan's decision (less the clock skew
        // allowed) is one plan sent (lapsed
        // plans too): the most plans that the contacts can answer, one each, found here by
        // trying every assignment (few plans of one offer and channel) rather than as the
        // engine does.
        let mut pending: Vec<&PlannedAction> = Vec::new();
        let mut groups: Vec<(Channel, &str)> = planned.iter().map(|p| (p.channel, p.offer_id.as_str())).collect();
        groups.sort_unstable();
        groups.dedup();
        for (channel, offer) in groups {
            let plans: Vec<&PlannedAction> = planned.iter().filter(|p| p.channel == channel && p.offer_id.as_str() == offer).collect();
            let sent: Vec<i64> = profile.contacts.iter()
                .filter(|c| c.channel == channel && c.offer_id.as_ref().is_some_and(|o| o.as_str() == offer))
                .map(|c| c.at).collect();
            // The largest set of plans matched to distinct contacts, by brute force; the
            // ones left counting are the latest made (in the order given, among equals).
            let best = max_matched(&plans, &sent, &mut vec![false; sent.len()]);
            let mut by_made: Vec<&PlannedAction> = plans.clone();
            by_made.sort_by_key(|p| p.made_at);
            pending.extend(by_made.into_iter().skip(best).filter(|p| p.made_at <= NOW && NOW < p.until && !is_service(p.offer_id.as_str())));
        }
        let mut planned: Vec<(Channel, i64)> = pending.iter().map(|p| (p.channel, p.send_at)).collect();
        let mut seen_offers = Vec::new();
        let mut seen_groups = Vec::new();
        for a in &decision.actions {
            let i: usize = a.offer_id.as_str().trim_start_matches("offer-").parse().unwrap();
            let spec = &offers[i];
            let offer = catalog.offer(a.offer_id.as_str()).unwrap();
            let at = DateTime::parse_from_rfc3339(&a.send_at).unwrap().timestamp();
            prop_assert!(spec.channels.contains(&a.channel), "channel the offer does not use");
            prop_assert!(spec.rule.holds(&profile), "{} is not eligible: {:?}", a.offer_id, spec.rule);
            prop_assert!(a.probability > 0.0 && a.probability <= 1.0);
            prop_assert!(!seen_offers.contains(&i), "an offer twice");
            seen_offers.push(i);
            if let Some(g) = spec.group {
                prop_assert!(!seen_groups.contains(&g), "a priority group twice");
                seen_groups.push(g);
            }
            // Caps and the decline cool-down, as of the decision.
            if let Some((max, days)) = spec.max_contacts {
                let n = profile.contacts.iter().filter(|c| c.offer_id.as_ref().map(|o| o.as_str()) == Some(a.offer_id.as_str()) && c.at > NOW - days as i64 * DAY && c.at <= NOW).count()
                    + pending.iter().filter(|p| p.offer_id == a.offer_id && p.send_at > NOW - days as i64 * DAY).count();
                prop_assert!(n < max as usize, "offer cap");
            }
            if let (Some(max), Some(s)) = (spec.max_acceptances, profile.offer(a.offer_id.as_str())) {
                prop_assert!(s.positive_responses < max, "accepted too often");
            }
            if let Some(d) = profile.offer(a.offer_id.as_str()).and_then(|s| s.last_declined_at) {
                prop_assert!(NOW - d >= policy.decline_cooldown_days as i64 * DAY, "declined recently");
            }
            if a.channel.is_outbound() {
                prop_assert!(profile.consent(a.channel).is_some_and(|s| s.granted), "no consent for {}", a.channel);
                prop_assert!(!dnc, "do not contact");
                prop_assert!(!policy.is_quiet(local_hour(at, zone)), "quiet hours at {}", a.send_at);
                prop_assert!(at >= NOW && at <= NOW + policy.horizon_hours as i64 * 3600, "outside the horizon");
                if !offer.service {
                    let history: Vec<(Channel, i64)> = profile.contacts.iter()
                        .filter(|c| c.channel.is_outbound() && !c.offer_id.as_ref().is_some_and(|o| is_service(o.as_str())))
                        .map(|c| (c.channel, c.at))
                        .chain(planned.iter().copied())
                        .collect();
                    if let Some(l) = policy.channel_limits.iter().find(|l| l.channel == a.channel) {
                        let times: Vec<i64> = history.iter().filter(|(c, _)| *c == a.channel).map(|(_, t)| *t).collect();
                        prop_assert!(within_limit(&times, at, l.days as i64 * DAY, l.max), "{} limit broken", a.channel);
                    }
                    let times: Vec<i64> = history.iter().map(|(_, t)| *t).collect();
                    prop_assert!(within_limit(&times, at, policy.outbound_days as i64 * DAY, policy.outbound_max), "outbound limit broken");
                    planned.push((a.channel, at));
                }
            } else {
                prop_assert_eq!(Some(a.channel), touchpoint, "inbound actions are for the touchpoint");
                prop_assert_eq!(at, NOW, "inbound actions are now");
            }
        }
        prop_assert!(decision.actions.len() <= limit);
    }
}
