//! `touchpoint evaluate`: how another policy would have done on logged decisions, before it
//! serves anyone (off-policy evaluation).
//!
//! The reward of a logged decision is 1 when a positive response (`accepted`, `clicked`,
//! `converted`) carrying its `decision_id` answers its first action within the response
//! window (from the action's send time), else 0. For decision `i` with logged first action
//! `a_i`, logging probability `mu_i` (the action's recorded probability) and the target's
//! probability `pi_i` of the same action, the weight is `w_i = pi_i / mu_i`, and (Dudik,
//! Langford and Li, "Doubly Robust Policy Evaluation and Learning", ICML 2011; the same
//! estimators as Open Bandit Pipeline's `InverseProbabilityWeighting`,
//! `SelfNormalizedInverseProbabilityWeighting` and `DoublyRobust`):
//!
//! - IPS: `mean(w_i r_i)`;
//! - self-normalised IPS: `sum(w_i r_i) / sum(w_i)`;
//! - doubly robust: `mean(sum_a pi(a|x_i) q(x_i, a) + w_i (r_i - q(x_i, a_i)))`, where the
//!   reward model `q` is the logged propensity of the candidate when the log has one, else the
//!   mean reward of the (offer, channel) over the log, else the overall mean.
//!
//! Each has a 95% normal interval: IPS and DR from the sample variance of their terms, SNIPS
//! by the delta method (`var = mean(w_i^2 (r_i - V)^2) / mean(w_i)^2 / n`). The effective
//! sample size is `(sum w)^2 / sum w^2`; agreement is the share of decisions where the
//! target's most probable action is the logged one.
//!
//! Next to them, the observed value of each model arm that decided in the log (champion
//! and challenger, `models.challenger_dir`), on the same log.
//!
//! The target is another system's probabilities per decision (`--target-policy`, one JSON
//! line per decision: `{"decision_id": "...", "probabilities": [["offer", "channel", p], ...]}`;
//! an action it does not list has probability 0), or a model set (`--models`): the engine's
//! own scoring with the catalog and settings in force. For a model set the events are
//! replayed, in time order, into an in-memory store, and at each logged decision's time
//! the decision service decides the logged request again with those models (no online
//! learning, no plans recorded: the log's own contacts are in the events); the target's
//! probabilities are that decision's rank-1 probabilities. The log is read in its order,
//! which is time order for the service's log.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::decision::record::DecisionRecord;
use crate::profile::{EventKind, event::parse_line};

/// z of a two-sided 95% normal interval.
const Z95: f64 = 1.959_963_984_540_054;

#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("no logged decision has an action with a positive logging probability")]
    Empty,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

impl Estimate {
    fn normal(value: f64, variance_of_mean: f64) -> Self {
        let half = Z95 * variance_of_mean.max(0.0).sqrt();
        Self {
            value,
            ci_low: value - half,
            ci_high: value + half,
        }
    }

    pub fn covers(&self, v: f64) -> bool {
        self.ci_low <= v && v <= self.ci_high
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Observed {
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimates {
    pub ips: Estimate,
    pub snips: Estimate,
    pub dr: Estimate,
}

/// What `evaluate` reports (`--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub decisions: usize,
    pub logging_policy: Observed,
    pub estimates: Estimates,
    pub effective_sample_size: f64,
    pub agreement: f64,
    /// Logged decisions left out: no action, or a logging probability of 0.
    pub skipped: usize,
    /// The observed value of each model arm that decided in the log (champion, challenger).
    pub arms: std::collections::BTreeMap<&'static str, ArmObserved>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ArmObserved {
    pub decisions: usize,
    pub value: f64,
}

/// One logged decision as the estimators see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub reward: f64,
    /// The logging policy's probability of the logged action.
    pub logging: f64,
    /// The target's probability of the logged action.
    pub target: f64,
    /// The reward model at the logged action.
    pub q_logged: f64,
    /// The reward model averaged over the target's probabilities.
    pub q_target: f64,
    /// The target's most probable action is the logged one.
    pub agrees: bool,
}

/// The estimates from samples (every `logging` > 0).
pub fn estimate(samples: &[Sample], skipped: usize) -> Result<Evaluation, EvaluateError> {
    if samples.is_empty() {
        return Err(EvaluateError::Empty);
    }
    let n = samples.len() as f64;
    let mean = |f: &dyn Fn(&Sample) -> f64| samples.iter().map(f).sum::<f64>() / n;
    let variance_of_mean = |f: &dyn Fn(&Sample) -> f64, m: f64| {
        if samples.len() < 2 {
            return 0.0;
        }
        samples.iter().map(|s| (f(s) - m).powi(2)).sum::<f64>() / (n - 1.0) / n
    };
    let w = |s: &Sample| s.target / s.logging;
    let ips_term = |s: &Sample| w(s) * s.reward;
    let dr_term = |s: &Sample| s.q_target + w(s) * (s.reward - s.q_logged);
    let ips = mean(&ips_term);
    let dr = mean(&dr_term);
    let w_mean = mean(&w);
    let snips = if w_mean > 0.0 { ips / w_mean } else { 0.0 };
    let snips_var = if w_mean > 0.0 {
        mean(&|s: &Sample| (w(s) * (s.reward - snips)).powi(2)) / (w_mean * w_mean) / n
    } else {
        0.0
    };
    let w_sq = mean(&|s: &Sample| w(s) * w(s));
    Ok(Evaluation {
        decisions: samples.len(),
        logging_policy: Observed {
            value: mean(&|s: &Sample| s.reward),
        },
        estimates: Estimates {
            ips: Estimate::normal(ips, variance_of_mean(&ips_term, ips)),
            snips: Estimate::normal(snips, snips_var),
            dr: Estimate::normal(dr, variance_of_mean(&dr_term, dr)),
        },
        effective_sample_size: if w_sq > 0.0 {
            n * w_mean * w_mean / w_sq
        } else {
            0.0
        },
        agreement: mean(&|s: &Sample| f64::from(u8::from(s.agrees))),
        skipped,
        arms: Default::default(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetLine {
    decision_id: String,
    probabilities: Vec<(String, String, f64)>,
}

/// The lines of `path`, numbered from 1; a read error names the file.
fn lines(
    path: &Path,
) -> Result<impl Iterator<Item = Result<(usize, String), EvaluateError>>, EvaluateError> {
    let read_error = |source| EvaluateError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let path = path.to_owned();
    Ok(std::io::BufReader::with_capacity(1 << 20, file)
        .lines()
        .enumerate()
        .map(move |(i, l)| {
            l.map(|text| (i + 1, text))
                .map_err(|source| EvaluateError::Read {
                    path: path.clone(),
                    source,
                })
        }))
}

/// Positive answers by decision id: (time, offer) of each.
type Answers = HashMap<String, Vec<(i64, Option<String>)>>;
/// A target policy's (offer, channel, probability) by decision id.
type TargetPolicy = HashMap<String, Vec<(String, String, f64)>>;

fn positive_answers(events: &Path) -> Result<Answers, EvaluateError> {
    let mut out = Answers::new();
    for item in lines(events)? {
        let (line, text) = item?;
        // Only responses with a decision can answer one; skip the rest unparsed.
        if !text.contains("\"response\"") || !text.contains("decision_id") {
            continue;
        }
        let e = parse_line(text.as_bytes()).map_err(|e| EvaluateError::Line {
            path: events.to_owned(),
            line,
            message: e.to_string(),
        })?;
        if let (EventKind::Response { outcome }, Some(d)) = (&e.kind, &e.decision_id)
            && outcome.is_positive()
        {
            out.entry(d.as_str().to_owned())
                .or_default()
                .push((e.at.timestamp(), e.offer_id.map(|o| o.as_str().to_owned())));
        }
    }
    Ok(out)
}

fn read_target(path: &Path) -> Result<TargetPolicy, EvaluateError> {
    let mut out = HashMap::new();
    for item in lines(path)? {
        let (line, text) = item?;
        if text.trim().is_empty() {
            continue;
        }
        let t: TargetLine = serde_json::from_str(&text).map_err(|e| EvaluateError::Line {
            path: path.to_owned(),
            line,
            message: e.to_string(),
        })?;
        if let Some(bad) = t.probabilities.iter().find(|p| !(0.0..=1.0).contains(&p.2)) {
            return Err(EvaluateError::Line {
                path: path.to_owned(),
                line,
                message: format!(
                    "probability {} of {} on {} is not in [0, 1]",
                    bad.2, bad.0, bad.1
                ),
            });
        }
        out.insert(t.decision_id, t.probabilities);
    }
    Ok(out)
}

/// What the target policy is.
pub enum Target<'a> {
    /// Another system's probabilities per decision (JSON lines).
    Policy(&'a Path),
    /// A model set, with the catalog and decision settings of `settings`.
    Models {
        dir: &'a Path,
        settings: &'a crate::settings::Settings,
    },
}

/// The target's probabilities of a logged decision's candidates.
enum Source {
    Table(TargetPolicy),
    Replay(Box<Replay>),
}

/// The decision service deciding the log's requests again as of their time, on the events
/// replayed into a memory store up to then.
struct Replay {
    decider: crate::decision::Decider,
    events: Vec<crate::profile::Event>,
    next: usize,
}

impl Replay {
    fn new(
        dir: &Path,
        settings: &crate::settings::Settings,
        events: &Path,
    ) -> Result<Self, EvaluateError> {
        use std::sync::Arc;
        let setup = |message: String| EvaluateError::Line {
            path: dir.to_owned(),
            line: 0,
            message,
        };
        let mut list = Vec::new();
        for item in lines(events)? {
            let (line, text) = item?;
            if text.trim().is_empty() {
                continue;
            }
            list.push(
                parse_line(text.as_bytes()).map_err(|e| EvaluateError::Line {
                    path: events.to_owned(),
                    line,
                    message: e.to_string(),
                })?,
            );
        }
        list.sort_by_key(|e| e.at);
        let models_dir = dir.to_owned();
        let models = crate::live::Live::load("model set", "evaluate_reloads", move || {
            crate::model::set::ModelSet::load(&models_dir)
        })
        .map_err(|e| setup(e.to_string()))?;
        let catalog_path = settings.catalog.path.clone();
        let catalog = crate::live::Live::load("catalog", "evaluate_reloads", move || {
            crate::decision::catalog::Catalog::load(&catalog_path)
        })
        .map_err(|e| setup(format!("the catalog: {e}")))?;
        let mut decision = settings.decision.clone();
        decision.contact_policy.planned_grace_hours = 0;
        decision.log.sink = crate::decision::log::LogSink::Off;
        let (log, _) = crate::decision::log::DecisionLog::start(&decision.log, None)
            .map_err(|e| setup(e.to_string()))?;
        let store = crate::profile::memory::MemoryStore::new(settings.profile.clone());
        let profiles =
            crate::profile::Profiles::new(Arc::new(store), settings.store.operation_timeout());
        let decider = crate::decision::Decider::new(
            profiles,
            Arc::new(models),
            Arc::new(catalog),
            decision,
            log,
        )
        .with_decision_ids("evaluate");
        Ok(Self {
            decider,
            events: list,
            next: 0,
        })
    }

    /// The target's rank-1 probabilities for the logged decision `r` made at `at`.
    async fn probabilities(
        &mut self,
        r: &DecisionRecord,
        at: i64,
    ) -> Result<Vec<(String, String, f64)>, String> {
        let end = self.next + self.events[self.next..].partition_point(|e| e.at.timestamp() < at);
        if end > self.next {
            self.decider
                .profiles()
                .apply(&self.events[self.next..end], at)
                .await
                .map_err(|e| e.to_string())?;
            self.next = end;
        }
        let request = request_of(r, at)?;
        let d = self.decider.decide(&request).await;
        Ok(d.log
            .candidates
            .iter()
            .map(|c| {
                (
                    c.offer_id.to_string(),
                    c.channel.as_str().to_owned(),
                    c.probability,
                )
            })
            .collect())
    }
}

/// The request a record logged, as the decision service takes it.
fn request_of(
    r: &DecisionRecord,
    at: i64,
) -> Result<crate::decision::request::DecisionRequest, String> {
    use crate::decision::request::ContextValue;
    use crate::profile::Channel;
    let channel = |s: &str| {
        s.parse::<Channel>()
            .map_err(|_| format!("unknown channel {s:?}"))
    };
    let context = r
        .request
        .context
        .iter()
        .filter_map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => ContextValue::Text(s.clone()),
                serde_json::Value::Bool(b) => ContextValue::Bool(*b),
                serde_json::Value::Number(n) => ContextValue::Number(n.as_f64()?),
                serde_json::Value::Null
                | serde_json::Value::Array(_)
                | serde_json::Value::Object(_) => return None,
            };
            Some((k.clone(), v))
        })
        .collect();
    Ok(crate::decision::request::DecisionRequest {
        customer_id: crate::profile::CustomerId::parse(r.customer_id.clone())
            .map_err(|e| format!("customer_id: {e}"))?,
        touchpoint: r.request.touchpoint.as_deref().map(channel).transpose()?,
        channels: r
            .request
            .channels
            .as_ref()
            .map(|list| {
                list.iter()
                    .map(|c| channel(c))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?,
        placement: r.request.placement.clone(),
        limit: r
            .request
            .limit
            .clamp(1, crate::decision::request::MAX_LIMIT),
        at: chrono::DateTime::from_timestamp(at, 0),
        context,
        explain: false,
    })
}

/// Evaluates `target` on the decisions of `log` answered by `events`.
pub async fn evaluate_files(
    log: &Path,
    events: &Path,
    target: Target<'_>,
    window_hours: u32,
    progress: &indicatif::ProgressBar,
) -> Result<Evaluation, EvaluateError> {
    progress.set_message("reading the answers");
    let answers = positive_answers(events)?;
    let mut source = match target {
        Target::Policy(path) => {
            progress.set_message("reading the target policy");
            Source::Table(read_target(path)?)
        }
        Target::Models { dir, settings } => {
            progress.set_message("reading the events to replay");
            Source::Replay(Box::new(Replay::new(dir, settings, events)?))
        }
    };
    progress.set_message("reading the decision log");
    if let Ok(m) = std::fs::metadata(log) {
        progress.set_length(m.len());
    }
    let window = i64::from(window_hours) * 3600;
    // First pass result: per decision, what the reward model needs later.
    struct Pending {
        sample: Sample,
        /// (pair, target probability) of target actions without a logged propensity.
        unknown: Vec<(u32, f64)>,
        /// The logged action's pair, when it has no logged propensity.
        logged_pair: Option<u32>,
    }
    let mut pairs: HashMap<(String, String), u32> = HashMap::new();
    let mut pair_rewards: Vec<(f64, f64)> = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    let mut skipped = 0;
    let mut arms: std::collections::BTreeMap<&'static str, ArmObserved> = Default::default();
    let mut pair_of = |o: &str, c: &str, pair_rewards: &mut Vec<(f64, f64)>| -> u32 {
        let next = pairs.len() as u32;
        *pairs
            .entry((o.to_owned(), c.to_owned()))
            .or_insert_with(|| {
                pair_rewards.push((0.0, 0.0));
                next
            })
    };
    for item in lines(log)? {
        let (line, text) = item?;
        progress.inc(text.len() as u64 + 1);
        if text.trim().is_empty() {
            continue;
        }
        let r: DecisionRecord = serde_json::from_str(&text).map_err(|e| EvaluateError::Line {
            path: log.to_owned(),
            line,
            message: e.to_string(),
        })?;
        let Some(a) = r.actions.first().filter(|a| a.probability > 0.0) else {
            skipped += 1;
            continue;
        };
        let at = crate::time::parse_time(&r.at, "at")
            .map(|t| t.timestamp())
            .map_err(|e| EvaluateError::Line {
                path: log.to_owned(),
                line,
                message: e.to_string(),
            })?;
        let sent = at + a.send_after_s;
        let reward = answers.get(&r.decision_id).is_some_and(|list| {
            list.iter().any(|(t, offer)| {
                *t >= at && *t <= sent + window && offer.as_deref().is_none_or(|o| o == a.offer_id)
            })
        });
        let reward = f64::from(u8::from(reward));
        let arm = arms.entry(r.arm.as_str()).or_insert(ArmObserved {
            decisions: 0,
            value: 0.0,
        });
        arm.decisions += 1;
        arm.value += reward;
        let logged = pair_of(&a.offer_id, &a.channel, &mut pair_rewards);
        let e = &mut pair_rewards[logged as usize];
        e.0 += reward;
        e.1 += 1.0;
        let propensity = |o: &str, c: &str| {
            r.candidates
                .iter()
                .find(|k| k.offer_id == o && k.channel == c)
                .and_then(|k| k.propensity)
        };
        let replayed;
        let probabilities =
            match &mut source {
                Source::Table(t) => t.get(&r.decision_id).map_or(&[][..], |v| v),
                Source::Replay(replay) => {
                    replayed = replay.probabilities(&r, at).await.map_err(|message| {
                        EvaluateError::Line {
                            path: log.to_owned(),
                            line,
                            message,
                        }
                    })?;
                    &replayed[..]
                }
            };
        let target_p = probabilities
            .iter()
            .filter(|(o, c, _)| *o == a.offer_id && *c == a.channel)
            .map(|p| p.2)
            .sum::<f64>();
        let top = probabilities
            .iter()
            .max_by(|x, y| x.2.total_cmp(&y.2))
            .filter(|p| p.2 > 0.0);
        let agrees = top.is_some_and(|(o, c, _)| *o == a.offer_id && *c == a.channel);
        let mut q_target = 0.0;
        let mut unknown = Vec::new();
        for (o, c, p) in probabilities {
            match propensity(o, c) {
                Some(q) => q_target += p * q,
                None => unknown.push((pair_of(o, c, &mut pair_rewards), *p)),
            }
        }
        let q_logged = propensity(&a.offer_id, &a.channel);
        pending.push(Pending {
            sample: Sample {
                reward,
                logging: a.probability,
                target: target_p,
                q_logged: q_logged.unwrap_or(0.0),
                q_target,
                agrees,
            },
            unknown,
            logged_pair: q_logged.is_none().then_some(logged),
        });
    }
    // The reward model where the log has no propensity: the pair's mean reward.
    let (sum, count) = pair_rewards
        .iter()
        .fold((0.0, 0.0), |(s, n), (r, k)| (s + r, n + k));
    let overall = if count > 0.0 { sum / count } else { 0.0 };
    let q_pair = |p: u32| {
        let (r, n) = pair_rewards[p as usize];
        if n > 0.0 { r / n } else { overall }
    };
    let samples: Vec<Sample> = pending
        .into_iter()
        .map(|p| {
            let mut s = p.sample;
            s.q_target += p.unknown.iter().map(|&(k, pi)| pi * q_pair(k)).sum::<f64>();
            if let Some(k) = p.logged_pair {
                s.q_logged = q_pair(k);
            }
            s
        })
        .collect();
    let mut e = estimate(&samples, skipped)?;
    for a in arms.values_mut() {
        a.value /= a.decisions.max(1) as f64;
    }
    e.arms = arms;
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(reward: f64, logging: f64, target: f64, q_logged: f64, q_target: f64) -> Sample {
        Sample {
            reward,
            logging,
            target,
            q_logged,
            q_target,
            agrees: target > 0.5,
        }
    }

    /// Three decisions worked by hand.
    /// w = (0.5/0.25, 0/0.5, 1/0.5) = (2, 0, 2); r = (1, 1, 0).
    /// IPS = (2 + 0 + 0) / 3 = 0.6667; SNIPS = 2 / (2 + 0 + 2) = 0.5;
    /// DR terms: 0.3 + 2 (1 - 0.4) = 1.5, 0.2 + 0 = 0.2, 0.1 + 2 (0 - 0.1) = -0.1; DR = 1.6 / 3.
    /// ESS = (4)^2 / (4 + 0 + 4) = 2.
    #[test]
    fn estimates_match_a_hand_computation() {
        let s = [
            sample(1.0, 0.25, 0.5, 0.4, 0.3),
            sample(1.0, 0.5, 0.0, 0.5, 0.2),
            sample(0.0, 0.5, 1.0, 0.1, 0.1),
        ];
        let e = estimate(&s, 0).unwrap();
        assert!((e.estimates.ips.value - 2.0 / 3.0).abs() < 1e-12);
        assert!((e.estimates.snips.value - 0.5).abs() < 1e-12);
        assert!((e.estimates.dr.value - 1.6 / 3.0).abs() < 1e-12);
        assert!((e.effective_sample_size - 2.0).abs() < 1e-12);
        assert!((e.logging_policy.value - 2.0 / 3.0).abs() < 1e-12);
        // IPS terms (2, 0, 0): sample variance 4/3, of the mean 4/9; half-width 1.96 x 2/3.
        let half = Z95 * (4.0f64 / 9.0).sqrt();
        assert!((e.estimates.ips.ci_high - (2.0 / 3.0 + half)).abs() < 1e-12);
        assert!((e.agreement - 1.0 / 3.0).abs() < 1e-12);
    }

    /// When the target is the logging policy, every weight is 1: IPS and SNIPS are the
    /// observed mean and the ESS is n.
    #[test]
    fn the_logging_policy_evaluates_to_what_it_observed() {
        let s: Vec<Sample> = (0..10)
            .map(|i| sample(f64::from(i % 3 == 0), 0.2, 0.2, 0.3, 0.3))
            .collect();
        let e = estimate(&s, 0).unwrap();
        assert!((e.estimates.ips.value - 0.4).abs() < 1e-12);
        assert!((e.estimates.snips.value - 0.4).abs() < 1e-12);
        assert!((e.estimates.dr.value - 0.4).abs() < 1e-12);
        assert!((e.effective_sample_size - 10.0).abs() < 1e-9);
    }
}
