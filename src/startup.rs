//! Building and running the service: [`Application::build`] loads the model set, opens the
//! store, binds the listener, starts the file watches and assembles the app; [`Application::run_until_stopped`] serves until SIGINT or
//! SIGTERM, then lets in-flight requests finish (up to `server.shutdown_timeout_secs`).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, middleware, web};

use crate::api::{self, ApiError, AppState};
use crate::decision::Decider;
use crate::decision::catalog::Catalog;
use crate::decision::log::DecisionLog;
use crate::live::{Live, LiveCatalog, LiveModels};
use crate::model::set::ModelSet;
use crate::profile::memory::MemoryStore;
use crate::profile::redis_store::RedisStore;
use crate::profile::{ProfileStore, Profiles, StoreError};
use crate::settings::Settings;
use crate::telemetry::metrics as m;
use crate::telemetry::metrics::{CATALOG_RELOADS, MODEL_RELOADS};
use crate::validation::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {bind} (server.bind, TOUCHPOINT__SERVER__BIND, --bind): {source}")]
    Bind {
        bind: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error("the model set (models.dir, TOUCHPOINT__MODELS__DIR, --models): {0}")]
    Models(#[from] crate::model::set::ModelError),
    #[error("the catalog (catalog.path, TOUCHPOINT__CATALOG__PATH, --catalog): {0}")]
    Catalog(#[from] crate::decision::catalog::CatalogError),
    #[error("the decision log ([decision.log], TOUCHPOINT__DECISION__LOG__...): {0}")]
    DecisionLog(#[from] crate::decision::log::LogError),
    /// Open (no keys) on an address other hosts can reach.
    #[error("{0}")]
    Open(String),
    #[error("cannot watch {path} for changes: {source}")]
    Watch {
        path: std::path::PathBuf,
        source: notify::Error,
    },
}

/// CORS: browsers may call from `web.allowed_origins` and from the service's own pages
/// (the agent screen); preflights are answered, credentials are not needed (the key and
/// the identity travel in headers).
fn cors(origins: &Arc<[String]>) -> actix_cors::Cors {
    use actix_web::http::header;
    let origins = origins.clone();
    actix_cors::Cors::default()
        .allowed_origin_fn(move |origin, head| {
            let origin = origin.as_bytes();
            origins.iter().any(|o| o.as_bytes() == origin)
                || head.headers().get(header::HOST).is_some_and(|host| {
                    [&b"http://"[..], b"https://"]
                        .iter()
                        .any(|scheme| origin.strip_prefix(*scheme) == Some(host.as_bytes()))
                })
        })
        .allowed_methods(["GET", "POST", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-touchpoint-identity"),
        ])
        .max_age(600)
}

pub struct Application {
    server: Server,
    port: u16,
    state: web::Data<AppState>,
    background: Vec<tokio::task::JoinHandle<()>>,
    /// Drains the decision log after the server stops, so no logged decision is lost.
    log_writer: Option<tokio::task::JoinHandle<()>>,
    /// File watches (model set, catalog); they stop when the application is dropped.
    _watches: Vec<crate::watch::WatchGuard>,
}

/// Opens the configured profile store: Redis when `store.redis_url` is set, else memory.
pub async fn open_store(settings: &Settings) -> Result<Profiles, StartupError> {
    let store: Arc<dyn ProfileStore> = if settings.store.uses_redis() {
        Arc::new(
            RedisStore::connect(&settings.store.redis_options()?, settings.profile.clone()).await?,
        )
    } else {
        Arc::new(MemoryStore::new(settings.profile.clone()))
    };
    Ok(Profiles::new(store, settings.store.operation_timeout()))
}

/// The configured model set, in service (reloadable).
fn load_models(settings: &Settings) -> Result<Arc<LiveModels>, StartupError> {
    let dir = settings.models.dir.clone();
    Ok(Arc::new(Live::load(
        "model set",
        MODEL_RELOADS,
        move || ModelSet::load(&dir),
    )?))
}

/// The configured catalog, in service (reloadable).
fn load_catalog(settings: &Settings) -> Result<Arc<LiveCatalog>, StartupError> {
    let path = settings.catalog.path.clone();
    Ok(Arc::new(Live::load(
        "catalog",
        CATALOG_RELOADS,
        move || Catalog::load(&path),
    )?))
}

/// The configured decision log and its writer (the Redis sink on the store's Redis).
fn start_log(
    settings: &Settings,
) -> Result<(DecisionLog, Option<tokio::task::JoinHandle<()>>), StartupError> {
    let redis = settings
        .store
        .uses_redis()
        .then(|| settings.store.redis_options())
        .transpose()?;
    Ok(DecisionLog::start(&settings.decision.log, redis.as_ref())?)
}

/// A decision service on `profiles` with the configured model sets, catalog and decision
/// log, for a command that decides without serving (`touchpoint decide`), and the log's
/// writer: await it after the last decider is dropped so that every record is written.
/// No online learning (it is fed by a serving replica's outcome log).
pub fn decider(
    settings: &Settings,
    profiles: Profiles,
) -> Result<(Decider, Option<tokio::task::JoinHandle<()>>), StartupError> {
    let (models, catalog) = (load_models(settings)?, load_catalog(settings)?);
    let (log, writer) = start_log(settings)?;
    // Plans made here are published by the serving replicas' outbound feed.
    if settings.outbound.feed != crate::outbound::Feed::Off {
        profiles.index_outbound();
    }
    let mut decider = Decider::new(profiles, models, catalog, settings.decision.clone(), log);
    if !settings.models.challenger_dir.as_os_str().is_empty() {
        let dir = settings.models.challenger_dir.clone();
        let challenger = Arc::new(Live::load(
            "challenger model set",
            MODEL_RELOADS,
            move || ModelSet::load(&dir),
        )?);
        decider = decider.with_challenger(challenger, settings.models.challenger_share);
    }
    Ok((decider, writer))
}

impl Application {
    pub async fn build(mut settings: Settings) -> Result<Self, StartupError> {
        settings.fill_default_paths();
        let metrics = m::recorder();
        let models = load_models(&settings)?;
        let current = models.current();
        tracing::info!(version = current.value.version(), models = ?current.value.present(), "model set loaded");
        let catalog = load_catalog(&settings)?;
        tracing::info!(
            offers = catalog.current().value.offers.len(),
            "catalog loaded"
        );
        let profiles = open_store(&settings).await?;
        // A store with no compression dictionary makes one of the first profiles it writes.
        profiles.gather_dictionary_samples();
        let (decision_log, log_writer) = start_log(&settings)?;
        let bind = settings.server.bind.clone();
        let listener = TcpListener::bind(&bind).map_err(|source| StartupError::Bind {
            bind: bind.clone(),
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind {
            bind: bind.clone(),
            source,
        })?;
        settings
            .auth
            .check_bind(&addr)
            .map_err(StartupError::Open)?;
        let port = addr.port();
        let clock = if settings.server.simulated_clock {
            tracing::warn!(
                "running on a simulated clock (server.simulated_clock): PUT /v1/admin/clock sets it"
            );
            crate::time::Clock::simulated()
        } else {
            crate::time::Clock::system()
        };

        let mut learner = crate::learning::Learner::new(
            models.clone(),
            catalog.clone(),
            settings.learning.clone(),
        );
        if !settings.models.challenger_dir.as_os_str().is_empty() {
            learner = learner.with_challenger(settings.models.challenger_share);
        }
        let learner = Arc::new(learner);
        if settings.learning.enabled {
            profiles.learn_with(learner.clone());
        }
        if settings.outbound.feed != crate::outbound::Feed::Off {
            profiles.index_outbound();
        }
        let mut decider = Decider::new(
            profiles.clone(),
            models.clone(),
            catalog.clone(),
            settings.decision.clone(),
            decision_log,
        )
        .with_learner(learner.clone())
        .with_clock(clock.clone());
        if !settings.models.challenger_dir.as_os_str().is_empty() {
            let dir = settings.models.challenger_dir.clone();
            let challenger = Arc::new(Live::load(
                "challenger model set",
                MODEL_RELOADS,
                move || ModelSet::load(&dir),
            )?);
            tracing::info!(
                version = challenger.current().value.version(),
                share = settings.models.challenger_share,
                "challenger model set loaded"
            );
            decider = decider.with_challenger(challenger, settings.models.challenger_share);
        }
        let state = web::Data::new(AppState {
            profiles,
            models: models.clone(),
            catalog: catalog.clone(),
            limits: settings.profile.clone(),
            metrics: metrics.clone(),
            max_body_bytes: settings.server.max_body_bytes,
            ingest: settings.ingest.clone(),
            decider,
            auth: crate::auth::Auth::new(&settings.auth, &settings.web),
            clock: clock.clone(),
        });

        let app_state = state.clone();
        let origins: Arc<[String]> = settings.web.allowed_origins.clone().into();
        let mut server = HttpServer::new(move || {
            let profiles = app_state.profiles.clone();
            let decider = app_state.decider.clone();
            App::new()
                    .app_data(app_state.clone())
                    // Each worker talks to the store over its own connections (see
                    // `ProfileStore::for_this_thread`): handlers take them as
                    // `Data<Profiles>` and, for decisions, `Data<Decider>`.
                    .data_factory(move || {
                        let profiles = profiles.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(profiles.for_this_thread().await)
                        }
                    })
                    .data_factory(move || {
                        let decider = decider.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(decider.for_this_thread().await)
                        }
                    })
                    .app_data(web::QueryConfig::default().error_handler(|e, _| {
                        ApiError::from(FieldError::body("invalid_query", e.to_string())).into()
                    }))
                    .app_data(web::PathConfig::default().error_handler(|e, _| {
                        ApiError::from(FieldError::body("invalid_path", e.to_string())).into()
                    }))
                    .wrap(
                        middleware::ErrorHandlers::new()
                            .handler(StatusCode::METHOD_NOT_ALLOWED, api::method_not_allowed),
                    )
                    .wrap(middleware::from_fn(api::authorize))
                    .wrap(cors(&origins))
                    .wrap(middleware::from_fn(api::record_latency))
                    .configure(api::configure)
                    .default_service(web::to(not_found))
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            bind: bind.clone(),
            source,
        })?
        .shutdown_timeout(settings.server.shutdown_timeout_secs);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.run();

        let mut background = vec![m::spawn_upkeep(metrics)];
        m::zero(state.profiles.backend());
        // The model version on the build-info gauge follows reloads.
        let watched = models.clone();
        background.push(tokio::spawn(async move {
            let mut shown = watched.current().value.version().to_owned();
            m::build_info(None, &shown);
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                let now = watched.current().value.version().to_owned();
                if now != shown {
                    m::build_info(Some(&shown), &now);
                    shown = now;
                }
            }
        }));
        if settings.learning.enabled {
            background.push(tokio::spawn(
                learner.keep_current(state.profiles.clone(), clock.clone()),
            ));
        }
        // The store's compression dictionaries, once a minute: one another replica made is
        // learnt, one the store lost is written back.
        let profiles = state.profiles.clone();
        background.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = profiles
                    .check_dictionaries(chrono::Utc::now().timestamp())
                    .await
                {
                    tracing::warn!(error = %e, "the store's compression dictionaries not checked");
                }
            }
        }));
        if settings.outbound.feed != crate::outbound::Feed::Off {
            background.push(tokio::spawn(crate::outbound::publish(
                settings.outbound.clone(),
                state.profiles.clone(),
                clock.clone(),
            )));
        }
        if settings.ingest.nats.enabled() {
            background.push(tokio::spawn(crate::nats::consume(
                settings.ingest.nats.clone(),
                state.profiles.clone(),
                settings.ingest.max_ahead(),
                clock.clone(),
            )));
        }
        let mut watches = Vec::new();
        if settings.models.watch {
            let registry = models.clone();
            let dir = settings.models.dir.clone();
            watches.push(
                crate::watch::watch(dir.clone(), Duration::from_millis(300), move || {
                    // Errors are logged and counted; the set in service stays.
                    let _ = registry.reload();
                })
                .map_err(|source| StartupError::Watch { path: dir, source })?,
            );
        }
        if settings.catalog.watch {
            let live = catalog.clone();
            let path = settings.catalog.path.clone();
            watches.push(
                crate::watch::watch(path.clone(), Duration::from_millis(300), move || {
                    let _ = live.reload();
                })
                .map_err(|source| StartupError::Watch { path, source })?,
            );
        }
        tracing::info!(
            port,
            store = state.profiles.backend(),
            "touchpoint listening on {}",
            bind
        );
        Ok(Self {
            server,
            port,
            state,
            background,
            log_writer,
            _watches: watches,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from another task (tests; signals do the same in production).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for task in self.background {
            task.abort();
        }
        // The workers are gone; dropping the last handle closes the log's queue, and the
        // writer finishes what is queued.
        drop(self.state);
        if let Some(writer) = self.log_writer
            && tokio::time::timeout(Duration::from_secs(10), writer)
                .await
                .is_err()
        {
            tracing::warn!("the decision log did not finish writing within 10 s");
        }
        tracing::info!("touchpoint stopped");
        result
    }
}

async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::NotFound(format!(
        "no route {} {}",
        req.method(),
        req.path()
    )))
}
