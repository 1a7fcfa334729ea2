//! The command line (API.md section 1): argument definitions and the glue that runs each
//! command. Everything real lives in the library modules; this file only wires them up.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::settings::Settings;
use crate::startup::{self, Application};
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "touchpoint",
    version,
    about = "Real-time personalization decision engine"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a fresh random key, once, and the `[[auth.keys]]` lines (with its SHA-256 only)
    /// for the config file.
    New {
        /// Who uses the key (it names the key in logs and errors).
        #[arg(long)]
        name: String,
        /// Comma-separated: decisions, events, customers:read, customers:erase, admin, web.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (embedded in-memory store unless a Redis URL is configured).
    Serve {
        /// Settings file (TOML); `TOUCHPOINT__SECTION__KEY` variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        bind: Option<String>,
        /// Model set directory.
        #[arg(long)]
        models: Option<PathBuf>,
        /// Offer catalog file.
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// Run on a simulated clock that `PUT /v1/admin/clock` sets (server.simulated_clock),
        /// for `simulate --closed-loop --url` and replays; never in production.
        #[arg(long)]
        simulated_clock: bool,
    },
    /// Train a model set from an event history (JSON lines).
    Train {
        #[arg(long)]
        events: PathBuf,
        /// Directory to write the model set to.
        #[arg(long)]
        out: PathBuf,
        /// Use only events before this time (RFC 3339); customer ages are measured to it.
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write a synthetic event history with known ground truth (events.jsonl,
    /// decisions.jsonl, truth.json); with --closed-loop, run the engine against simulated
    /// customers instead and report how it learns (closed_loop.json, closed_loop.svg).
    Simulate {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 5_000)]
        customers: usize,
        /// Days simulated: of history (default 365), or with --closed-loop of closed loop
        /// (default 14).
        #[arg(long)]
        days: Option<u32>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Offer catalog whose offers the simulated company sends (default: the shipped one,
        /// or the one in the --config settings).
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// Train on a simulated history, then decide, send and learn day by day against the
        /// simulated customers, next to mass marketing and the oracle.
        #[arg(long)]
        closed_loop: bool,
        /// The closed loop's scenario.
        #[arg(
            long,
            value_enum,
            default_value = "new-offers",
            requires = "closed_loop"
        )]
        scenario: crate::training::closed_loop::Scenario,
        /// Days of history before the closed loop.
        #[arg(long, default_value_t = 365, requires = "closed_loop")]
        history_days: u32,
        /// Outbound contact opportunities per customer and week in the closed loop.
        #[arg(long, default_value_t = 2.0, requires = "closed_loop")]
        contacts_per_week: f64,
        /// Settings (TOML) the closed loop's engine runs with.
        #[arg(long, requires = "closed_loop")]
        config: Option<PathBuf>,
        /// Run the loop against the service at this URL (http://host:port) instead of
        /// in-process: start it with `serve --simulated-clock` on the models and catalog
        /// `--prepare` wrote into --out. Its API key, if it needs one, is read from
        /// TOUCHPOINT_API_KEY (scopes decisions, events, admin).
        #[arg(long, requires = "closed_loop", conflicts_with = "prepare")]
        url: Option<String>,
        /// Only write the simulated history, the models trained on it and the catalog with
        /// the new offers into --out, for a service that `--url` then runs the loop against.
        #[arg(long, requires = "closed_loop")]
        prepare: bool,
    },
    /// Estimate how a target policy would have done on logged decisions (IPS,
    /// self-normalised IPS, doubly robust), next to the logging policy's observed value.
    Evaluate {
        /// The decision log (JSON lines, the service's record format).
        #[arg(long)]
        log: PathBuf,
        /// The events that answer the decisions (JSON lines; responses carrying a
        /// `decision_id` are joined to it).
        #[arg(long)]
        events: PathBuf,
        /// Another policy's probabilities per decision: JSON lines
        /// `{"decision_id": "...", "probabilities": [["offer", "channel", p], ...]}`.
        #[arg(long, required_unless_present = "models", conflicts_with = "models")]
        target_policy: Option<PathBuf>,
        /// A model set to evaluate instead: the engine's own scoring, with the catalog and
        /// settings in force, on the events replayed to each decision's time.
        #[arg(long)]
        models: Option<PathBuf>,
        /// Settings (TOML): `learning.response_window_hours` bounds an answer; with --models,
        /// the catalog and decision settings the model set decides with.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also write the figures as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Plan a campaign: decide for every customer of a file through the decision service
    /// (consent, contact policy, planned actions recorded, the decision log), writing each
    /// answer as a JSON line.
    Decide {
        /// One customer per line: an id, or a decision request as POST /v1/decisions takes it.
        #[arg(long)]
        customers: PathBuf,
        /// Outbound channels to plan for (comma-separated); default: every consented channel.
        #[arg(long, value_delimiter = ',')]
        channels: Vec<String>,
        /// Actions per customer.
        #[arg(long, default_value_t = 1)]
        limit: usize,
        /// Events to load into the store first (JSON lines; for the embedded store, which
        /// starts empty).
        #[arg(long)]
        events: Option<PathBuf>,
        /// Where the answers go (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Decisions made at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Bulk-load an event history (JSON lines) into the configured store.
    Import {
        /// JSON-lines file, one API event per line.
        #[arg(long)]
        events: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Write every rejected line, with its line number and reason, to this file.
        #[arg(long)]
        rejects: Option<PathBuf>,
    },
}

impl Cli {
    /// Whether this runs the HTTP service.
    pub fn serves(&self) -> bool {
        matches!(self.command, Command::Serve { .. })
    }
}

/// An error and its causes as one line, each cause said once: a message that already quotes
/// its cause (`cannot read x: No such file`) is not followed by it again.
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

pub fn load_settings(config: Option<&std::path::Path>) -> anyhow::Result<Settings> {
    Settings::load(config).context("loading settings")
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            config,
            bind,
            models,
            catalog,
            simulated_clock,
        } => {
            let mut settings = load_settings(config.as_deref())?;
            settings.server.simulated_clock |= simulated_clock;
            if let Some(b) = bind {
                settings.server.bind = b;
            }
            if let Some(m) = models {
                settings.models.dir = m;
            }
            if let Some(c) = catalog {
                settings.catalog.path = c;
            }
            telemetry::init_logs(&settings.log);
            let app = Application::build(settings).await?;
            app.run_until_stopped().await?;
            Ok(())
        }
        Command::Train {
            events,
            out,
            as_of,
            config,
        } => {
            let settings = load_settings(config.as_deref())?;
            telemetry::init_logs(&settings.log);
            let as_of = as_of
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .with_context(|| format!("--as-of {t:?} is not an RFC 3339 time"))
                })
                .transpose()?;
            let started = std::time::Instant::now();
            let summary =
                crate::training::train(&events, &out, as_of, &settings, &TerminalProgress)?;
            println!(
                "trained model set {} in {:.1}s from {} events ({} customers, {} contacts with a known outcome)",
                summary.version,
                started.elapsed().as_secs_f64(),
                summary.events,
                summary.customers,
                summary.contacts
            );
            println!("  models: {}", summary.models.join(", "));
            if summary.rejected_lines > 0 {
                println!("  skipped {} invalid lines", summary.rejected_lines);
            }
            for n in &summary.notes {
                println!("  note: {n}");
            }
            println!("  report: {}", summary.report.display());
            Ok(())
        }
        Command::Simulate {
            out,
            customers,
            days,
            seed,
            catalog,
            closed_loop,
            scenario,
            history_days,
            contacts_per_week,
            config,
            url,
            prepare,
        } => {
            if closed_loop {
                let mut settings = load_settings(config.as_deref())?;
                if let Some(c) = catalog {
                    settings.catalog.path = c;
                }
                settings.fill_default_paths();
                let opts = crate::training::closed_loop::ClosedLoopOptions {
                    customers,
                    days: days.unwrap_or(14),
                    history_days,
                    seed,
                    scenario,
                    contacts_per_week,
                    api_key: url
                        .as_ref()
                        .and_then(|_| std::env::var("TOUCHPOINT_API_KEY").ok())
                        .filter(|k| !k.is_empty()),
                    url,
                };
                if prepare {
                    let bar = progress_bar("{spinner} {msg}");
                    crate::training::closed_loop::prepare(&out, &settings, &opts, &bar)?;
                    bar.finish_and_clear();
                    let dir = out.display();
                    println!(
                        "prepared {dir}: the simulated history, a model set trained on it and the catalog with the new offers"
                    );
                    println!(
                        "  serve: touchpoint serve --simulated-clock --models {dir}/models --catalog {dir}/catalog.toml"
                    );
                    println!(
                        "  then:  touchpoint simulate --closed-loop --url http://127.0.0.1:8080 --out {dir} --seed {seed}"
                    );
                    return Ok(());
                }
                return simulate_closed_loop(&out, &settings, &opts).await;
            }
            let catalog = catalog
                .unwrap_or_else(|| crate::settings::shipped_data().join("config/catalog.toml"));
            let catalog = crate::decision::catalog::Catalog::load(&catalog)?;
            let bar = progress_bar("{spinner} simulating [{wide_bar}] {pos}/{len} customers");
            let opts = crate::training::simulate::SimulationOptions {
                customers,
                days: days.unwrap_or(365),
                seed,
            };
            let summary = crate::training::simulate::simulate(&out, &catalog, &opts, &bar)?;
            bar.finish_and_clear();
            println!(
                "wrote {} events and {} logged decisions for {} customers to {} \
                 ({} purchases, {} contacts, {} positive responses)",
                summary.events,
                summary.decisions,
                summary.customers,
                out.display(),
                summary.purchases,
                summary.contacts,
                summary.positive_responses
            );
            Ok(())
        }
        Command::Evaluate {
            log,
            events,
            target_policy,
            models,
            config,
            json,
        } => {
            let mut settings = load_settings(config.as_deref())?;
            settings.fill_default_paths();
            let target = match (&target_policy, &models) {
                (Some(path), _) => crate::training::evaluate::Target::Policy(path),
                (None, Some(dir)) => crate::training::evaluate::Target::Models {
                    dir,
                    settings: &settings,
                },
                (None, None) => anyhow::bail!("--target-policy or --models is needed"),
            };
            let started = std::time::Instant::now();
            let bar = progress_bar("{spinner} {msg} [{wide_bar}] {bytes}/{total_bytes} ({eta})");
            let e = crate::training::evaluate::evaluate_files(
                &log,
                &events,
                target,
                settings.learning.response_window_hours,
                &bar,
            )
            .await;
            bar.finish_and_clear();
            let e = e?;
            println!(
                "{} decisions evaluated in {:.1}s ({} skipped: no action or a logging probability of 0)",
                e.decisions,
                started.elapsed().as_secs_f64(),
                e.skipped
            );
            println!("  logging policy (observed)  {:.5}", e.logging_policy.value);
            for (name, x) in [
                ("IPS", e.estimates.ips),
                ("self-normalised IPS", e.estimates.snips),
                ("doubly robust", e.estimates.dr),
            ] {
                println!(
                    "  {name:<26} {:.5}  95% interval [{:.5}, {:.5}]",
                    x.value, x.ci_low, x.ci_high
                );
            }
            for (arm, a) in &e.arms {
                println!(
                    "  arm {arm:<22} {:.5}  observed over {} decisions",
                    a.value, a.decisions
                );
            }
            println!(
                "  effective sample size {:.1}, agreement with the log {:.1}%",
                e.effective_sample_size,
                100.0 * e.agreement
            );
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&e)?;
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::New { name, scopes },
        } => {
            let mut parsed = Vec::new();
            for s in &scopes {
                let scope = crate::auth::Scope::parse(s.trim()).ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown scope {s:?}: use decisions, events, customers:read, customers:erase, admin or web"
                    )
                })?;
                parsed.push(scope);
            }
            if name.is_empty() || name.contains(['"', '\\', '\n']) {
                anyhow::bail!("--name must be non-empty, without quotes, backslashes or newlines");
            }
            let (key, hash) = crate::auth::new_key();
            println!("key (shown once; give it to {name}, keep it secret): {key}");
            println!();
            println!("[[auth.keys]]");
            println!("name = \"{name}\"");
            println!("sha256 = \"{hash}\"");
            let list: Vec<String> = parsed
                .iter()
                .map(|s| format!("\"{}\"", s.as_str()))
                .collect();
            println!("scopes = [{}]", list.join(", "));
            Ok(())
        }
        Command::Decide {
            customers,
            channels,
            limit,
            events,
            out,
            concurrency,
            config,
        } => {
            let settings = load_settings(config.as_deref())?;
            telemetry::init_logs(&settings.log);
            let channels = channels
                .iter()
                .map(|c| {
                    c.trim()
                        .parse::<crate::profile::Channel>()
                        .map_err(|e| anyhow::anyhow!("--channels: {c:?}: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let ask = crate::campaign::Ask {
                channels: (!channels.is_empty()).then_some(channels),
                limit,
            };
            decide_audience(
                &settings,
                &customers,
                &ask,
                events.as_deref(),
                out.as_deref(),
                concurrency,
            )
            .await
        }
        Command::Import {
            events,
            config,
            rejects,
        } => {
            let settings = load_settings(config.as_deref())?;
            telemetry::init_logs(&settings.log);
            import(&settings, &events, rejects.as_deref()).await
        }
    }
}

/// Imports an events file into the store with the configured limits, showing `template`'s
/// progress bar on standard error.
async fn import_with_progress(
    settings: &Settings,
    profiles: &crate::profile::Profiles,
    events: &std::path::Path,
    template: &str,
) -> anyhow::Result<crate::import::ImportSummary> {
    let bar = progress_bar(template);
    let summary = crate::import::import_events(
        events,
        profiles,
        &settings.import,
        settings.ingest.max_ahead(),
        &bar,
    )
    .await;
    bar.finish_and_clear();
    Ok(summary?)
}

async fn decide_audience(
    settings: &Settings,
    customers: &std::path::Path,
    ask: &crate::campaign::Ask,
    events: Option<&std::path::Path>,
    out: Option<&std::path::Path>,
    concurrency: usize,
) -> anyhow::Result<()> {
    let requests = crate::campaign::read_customers(customers, ask)?;
    let profiles = startup::open_store(settings)
        .await
        .context("opening the profile store")?;
    if let Some(events) = events {
        let summary = import_with_progress(
            settings,
            &profiles,
            events,
            "{spinner} loading events [{wide_bar}] {bytes}/{total_bytes}",
        )
        .await?;
        eprintln!(
            "loaded {} events of {} ({} rejected)",
            summary.accepted,
            events.display(),
            summary.rejected_total
        );
    }
    let (decider, log_writer) = startup::decider(settings, profiles)?;
    let decider = Arc::new(decider);
    let mut writer: Box<dyn std::io::Write + Send> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let bar = progress_bar("{spinner} deciding [{wide_bar}] {pos}/{len} ({per_sec}, eta {eta})");
    let summary = crate::campaign::plan(decider, requests, concurrency, &mut *writer, &bar).await;
    bar.finish_and_clear();
    let summary = summary?;
    // The deciders are gone: the log's writer drains its queue and stops.
    if let Some(writer) = log_writer {
        writer.await.context("the decision log's writer failed")?;
    }
    eprintln!(
        "{} decisions in {:.2}s ({:.0}/s): {} outbound actions planned, {} without action, {} degraded",
        summary.decisions,
        summary.elapsed.as_secs_f64(),
        summary.per_second(),
        summary.planned,
        summary.no_action,
        summary.degraded
    );
    Ok(())
}

async fn simulate_closed_loop(
    out: &std::path::Path,
    settings: &Settings,
    opts: &crate::training::closed_loop::ClosedLoopOptions,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let bar = progress_bar("{spinner} {msg} [{wide_bar}] {pos}/{len} decisions");
    // The HTTP client for `--url` runs its connections on the thread that made them.
    let report = tokio::task::LocalSet::new()
        .run_until(crate::training::closed_loop::run(out, settings, opts, &bar))
        .await;
    bar.finish_and_clear();
    let report = report?;
    println!(
        "closed loop ({:?}, {} customers, {} days, seed {}) in {:.1}s; the oracle sends new offers in {:.0}% of its contacts",
        report.scenario,
        report.customers,
        report.days,
        report.seed,
        started.elapsed().as_secs_f64(),
        100.0
            * report
                .totals
                .get("oracle")
                .map_or(0.0, |t| t.new_offer_share)
    );
    println!("  arm             contacts  response rate  value/contact  new offers  violations");
    for (name, t) in &report.totals {
        println!(
            "  {name:<15} {:>8}  {:>12.2}%  {:>13.2}  {:>9.1}%  {:>10}",
            t.contacts,
            100.0 * t.response_rate,
            t.value_per_contact,
            100.0 * t.new_offer_share,
            t.violations.total()
        );
    }
    let days = report.days as usize;
    let (first, last) = (
        report.rate("engine", 0, 1),
        report.rate("engine", days.saturating_sub(2), days),
    );
    println!(
        "  engine: day 1 {:.2}%, last two days {:.2}% = {:.0}% of the oracle, {:.1}x mass marketing",
        100.0 * first,
        100.0 * last,
        100.0 * last
            / report
                .rate("oracle", days.saturating_sub(2), days)
                .max(1e-12),
        last / report
            .rate("mass_marketing", days.saturating_sub(2), days)
            .max(1e-12)
    );
    let expected = |arm| report.expected_rate(arm, days.saturating_sub(2), days);
    println!(
        "  expected (the truth's probabilities of the contacts): last two days {:.2}% = {:.0}% of the oracle, {:.2}x mass marketing",
        100.0 * expected("engine"),
        100.0 * expected("engine") / expected("oracle").max(1e-12),
        expected("engine") / expected("mass_marketing").max(1e-12)
    );
    println!("  report: {}", out.join("closed_loop.json").display());
    Ok(())
}

async fn import(
    settings: &Settings,
    events: &std::path::Path,
    rejects: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    if !settings.store.uses_redis() {
        eprintln!(
            "warning: the configured store is the embedded in-memory one, which is gone when this \
             command exits; the import only checks the file. Set store.redis_url (or \
             TOUCHPOINT__STORE__REDIS_URL) to load a Redis store."
        );
    }
    let profiles = startup::open_store(settings)
        .await
        .context("opening the profile store")?;
    let summary = import_with_progress(
        settings,
        &profiles,
        events,
        "{spinner} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    )
    .await?;
    println!(
        "imported {} into the {} store in {:.2}s ({:.0} events/s)",
        events.display(),
        profiles.backend(),
        summary.elapsed.as_secs_f64(),
        summary.events_per_second()
    );
    println!("  lines:      {}", summary.lines);
    println!("  accepted:   {}", summary.accepted);
    println!("  duplicates: {}", summary.duplicates);
    println!("  rejected:   {}", summary.rejected_total);
    if summary.compressed > 0 {
        println!("  compressed: {} profiles", summary.compressed);
    }
    for r in summary.rejected.iter().take(20) {
        println!("    line {}: {}", r.line, r.reason);
    }
    if summary.rejected_total > 20 {
        println!(
            "    ... and {} more{}",
            summary.rejected_total - 20,
            if rejects.is_some() {
                ""
            } else {
                " (use --rejects FILE to list them all)"
            }
        );
    }
    if let Some(path) = rejects {
        let mut out = String::new();
        for r in &summary.rejected {
            out.push_str(&serde_json::json!({"line": r.line, "reason": r.reason}).to_string());
            out.push('\n');
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
        if summary.rejected_total > summary.rejected.len() as u64 {
            eprintln!(
                "note: {} lists the first {} rejected lines",
                path.display(),
                summary.rejected.len()
            );
        }
    }
    Ok(())
}

/// A progress bar on stderr; hidden when stderr is not a terminal (CI logs, pipes).
pub fn progress_bar(template: &str) -> ProgressBar {
    ProgressBar::new(0)
        .with_style(ProgressStyle::with_template(template).expect("valid progress template"))
}

/// One spinner-and-bar per training step, on stderr.
struct TerminalProgress;

impl crate::training::Progress for TerminalProgress {
    fn step(&self, name: &str) -> ProgressBar {
        progress_bar(&format!(
            "{{spinner}} {name} [{{wide_bar}}] {{pos}}/{{len}} ({{elapsed}})"
        ))
    }
}
