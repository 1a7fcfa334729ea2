//! Settings: built-in defaults, then an optional TOML file, then `TOUCHPOINT__SECTION__KEY`
//! environment variables. Every key is described in `config/touchpoint.example.toml`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::decision::DecisionSettings;
use crate::profile::ProfileLimits;
use crate::profile::redis_store::RedisOptions;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub profile: ProfileLimits,
    pub models: ModelSettings,
    pub catalog: CatalogSettings,
    pub decision: DecisionSettings,
    pub log: LogSettings,
    pub ingest: IngestSettings,
    pub import: ImportSettings,
    pub training: TrainingSettings,
    pub learning: crate::learning::LearningSettings,
    pub auth: crate::auth::AuthSettings,
    pub web: crate::auth::WebSettings,
    pub outbound: crate::outbound::OutboundSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    pub bind: String,
    /// Worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Largest request body accepted (bytes); larger bodies get `413`.
    pub max_body_bytes: usize,
    /// On SIGINT/SIGTERM, in-flight requests get this long to finish.
    pub shutdown_timeout_secs: u64,
    /// Run on a simulated clock set through `PUT /v1/admin/clock` ([`crate::time::Clock`]).
    pub simulated_clock: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            workers: 0,
            max_body_bytes: 2 * 1024 * 1024,
            shutdown_timeout_secs: 30,
            simulated_clock: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Redis URL (`redis://[:password@]host:port/db`, or `rediss://` for TLS); empty means
    /// the embedded in-memory store.
    pub redis_url: String,
    /// Nodes of a Redis Cluster (`redis://host:port`, any of its masters or replicas; the
    /// rest are discovered): the store then runs on the cluster instead of `redis_url`. In
    /// the environment, comma-separated.
    #[serde(deserialize_with = "list_or_commas")]
    pub redis_cluster_nodes: Vec<String>,
    /// Acknowledge an event only once this many replicas hold it (Redis `WAIT`); 0: once
    /// the master has it.
    pub wait_replicas: u32,
    /// How long a write waits for those replicas (below `response_timeout_ms`); past it the
    /// events are answered `503` (they are applied on the master, and a retry is
    /// de-duplicated).
    pub wait_timeout_ms: u64,
    /// For `rediss://`: a PEM file of the certificate authorities to trust instead of the
    /// system's (a private CA). Empty: the system's.
    pub tls_ca_file: PathBuf,
    /// Prefix of every Redis key.
    pub key_prefix: String,
    /// Compress stored profiles against a store-wide dictionary (made at the end of the
    /// first import); off: new writes uncompressed (what is compressed still reads).
    pub compress_profiles: bool,
    /// Limit on establishing a Redis connection.
    pub connect_timeout_ms: u64,
    /// Limit on each Redis answer.
    pub response_timeout_ms: u64,
    /// Overall limit on one store operation (a batch of events, an erase), retries included.
    pub operation_timeout_ms: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            redis_url: String::new(),
            redis_cluster_nodes: Vec::new(),
            wait_replicas: 0,
            wait_timeout_ms: 200,
            tls_ca_file: PathBuf::new(),
            key_prefix: "tp".into(),
            compress_profiles: true,
            connect_timeout_ms: 250,
            response_timeout_ms: 250,
            operation_timeout_ms: 1000,
        }
    }
}

impl StoreSettings {
    pub fn uses_redis(&self) -> bool {
        !self.redis_url.trim().is_empty() || !self.redis_cluster_nodes.is_empty()
    }

    /// The Redis store's options; the CA file, when set, is read here.
    pub fn redis_options(&self) -> Result<RedisOptions, SettingsError> {
        let tls_ca = if self.tls_ca_file.as_os_str().is_empty() {
            None
        } else {
            Some(std::fs::read(&self.tls_ca_file).map_err(|e| {
                SettingsError::Invalid(format!(
                    "store.tls_ca_file (TOUCHPOINT__STORE__TLS_CA_FILE) {}: {e}",
                    self.tls_ca_file.display()
                ))
            })?)
        };
        Ok(RedisOptions {
            url: self.redis_url.trim().to_owned(),
            cluster_nodes: self.redis_cluster_nodes.clone(),
            wait_replicas: self.wait_replicas,
            wait_timeout: Duration::from_millis(self.wait_timeout_ms),
            key_prefix: self.key_prefix.clone(),
            compress_profiles: self.compress_profiles,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            response_timeout: Duration::from_millis(self.response_timeout_ms),
            tls_ca,
        })
    }

    pub fn operation_timeout(&self) -> Duration {
        Duration::from_millis(self.operation_timeout_ms)
    }
}

/// A list given as a list (a file) or as one comma-separated string (the environment).
fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        List(Vec<String>),
        Commas(String),
    }
    Ok(match Given::deserialize(d)? {
        Given::List(list) => list,
        Given::Commas(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// Where the shipped model set and catalog are, when the settings do not say: beside an
/// installed binary (`<prefix>/share/touchpoint`, from `<prefix>/bin/touchpoint`), else in
/// the source tree the binary was built from. Never the working directory.
pub fn shipped_data() -> PathBuf {
    let installed = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("share/touchpoint")));
    match installed {
        Some(dir) if dir.join("models/manifest.json").is_file() => dir,
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    }
}

/// Where the service keeps what it writes by default (the decision log):
/// `$XDG_STATE_HOME/touchpoint`, else `$HOME/.local/state/touchpoint`, else a `touchpoint`
/// directory in the system's temporary directory.
pub fn state_dir() -> PathBuf {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from("XDG_STATE_HOME")
        .or_else(|| from("HOME").map(|h| h.join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("touchpoint")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSettings {
    /// Directory of the trained model set that `serve` loads; empty means the shipped one
    /// ([`shipped_data`]`/models`).
    pub dir: PathBuf,
    /// Reload the model set when its directory changes.
    pub watch: bool,
    /// A second model set that decides for `challenger_share` of the customers (by a hash
    /// of the customer id, so a customer stays on one arm); empty means none.
    pub challenger_dir: PathBuf,
    /// Share of customers in 0..=1 the challenger decides for.
    pub challenger_share: f64,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            watch: true,
            challenger_dir: PathBuf::new(),
            challenger_share: 0.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogSettings {
    /// The offer catalog (TOML); empty means the shipped one
    /// ([`shipped_data`]`/config/catalog.toml`).
    pub path: PathBuf,
    /// Reload the catalog when the file changes.
    pub watch: bool,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            watch: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A tracing filter such as `info` or `touchpoint=debug,actix_web=info`.
    /// `RUST_LOG`, when set, wins.
    pub level: String,
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// How events are taken in, whatever their way (HTTP, import).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// An event dated more than this many seconds after the receiver's clock is refused
    /// (`time_in_future`): senders' clocks drift a little, never by days.
    pub max_clock_skew_secs: u64,
    /// Events consumed from a NATS JetStream stream ([`crate::nats`]); off while `url` is
    /// empty.
    pub nats: crate::nats::NatsIngestSettings,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            max_clock_skew_secs: 300,
            nats: crate::nats::NatsIngestSettings::default(),
        }
    }
}

impl IngestSettings {
    pub fn max_ahead(&self) -> i64 {
        i64::try_from(self.max_clock_skew_secs).unwrap_or(i64::MAX)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportSettings {
    /// Events per store batch; each batch is two pipelined round trips.
    pub batch_events: usize,
    /// Events read before they are grouped by customer: a customer's events within a window
    /// cost one profile read and write. Memory grows with it (about 300 bytes an event).
    pub window_events: usize,
    /// Batches in flight at once.
    pub in_flight: usize,
}

impl Default for ImportSettings {
    fn default() -> Self {
        Self {
            batch_events: 1024,
            window_events: 262_144,
            in_flight: 8,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingSettings {
    /// Share of the history's time span, at its end, held out to measure the models.
    pub holdout_fraction: f64,
    /// An answer within this many days of a contact (same customer and offer) counts for it.
    pub response_window_days: f64,
    /// L2 penalty of the logistic regressions.
    pub l2: f64,
    pub max_iterations: u64,
    /// An offer or channel gets its own model with at least this many contacts...
    pub min_examples: usize,
    /// ...and this many positive (and negative) answers; the others use the pooled model.
    pub min_positives: usize,
    /// Response models are fitted on at most this many contacts: all positive answers and a
    /// sample of the others, the intercept corrected for the sampling.
    pub max_rows: usize,
    /// Number of customer segments.
    pub segments: usize,
    /// Customer lifetime value: horizon in days, yearly discount rate, and the share of
    /// spend that is margin.
    pub clv_horizon_days: f64,
    pub clv_discount_rate: f64,
    pub clv_margin: f64,
}

impl Default for TrainingSettings {
    fn default() -> Self {
        Self {
            holdout_fraction: 0.2,
            response_window_days: 7.0,
            l2: 1.0,
            max_iterations: 100,
            min_examples: 300,
            min_positives: 30,
            max_rows: 60_000,
            segments: 5,
            clv_horizon_days: 365.0,
            clv_discount_rate: 0.10,
            clv_margin: 1.0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings: {0}")]
    Read(#[from] config::ConfigError),
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl Settings {
    /// Defaults, then `file` if given, then `TOUCHPOINT__…` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given (tests must not touch the real one).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.exists() {
                return Err(SettingsError::MissingFile(path.to_owned()));
            }
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let vars: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("TOUCHPOINT__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("TOUCHPOINT")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(vars.clone())),
        );
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        if let Some(path) = file {
            settings.resolve_relative_to(path, &vars)?;
        }
        settings.fill_default_paths();
        settings.check()?;
        Ok(settings)
    }

    /// Makes the relative paths the config file gives relative to the file's directory,
    /// not to wherever the command runs (a path given in a `TOUCHPOINT__…` variable or on
    /// the command line stays relative to the working directory).
    fn resolve_relative_to(
        &mut self,
        file: &Path,
        vars: &config::Map<String, String>,
    ) -> Result<(), SettingsError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| SettingsError::Invalid(format!("cannot read {}: {e}", file.display())))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| SettingsError::Invalid(format!("{}: {e}", file.display())))?;
        let dir = file.parent().unwrap_or(Path::new(""));
        let in_file = |section: &[&str], key: &str| {
            let mut t = &table;
            for s in section {
                match t.get(*s).and_then(|v| v.as_table()) {
                    Some(inner) => t = inner,
                    None => return false,
                }
            }
            let var = format!("TOUCHPOINT__{}__{}", section.join("__"), key).to_uppercase();
            t.contains_key(key) && !vars.contains_key(&var)
        };
        let paths: [(&[&str], &str, &mut PathBuf); 5] = [
            (&["models"], "dir", &mut self.models.dir),
            (
                &["models"],
                "challenger_dir",
                &mut self.models.challenger_dir,
            ),
            (&["catalog"], "path", &mut self.catalog.path),
            (&["decision", "log"], "path", &mut self.decision.log.path),
            (&["store"], "tls_ca_file", &mut self.store.tls_ca_file),
        ];
        for (section, key, path) in paths {
            if in_file(section, key) && path.is_relative() && !path.as_os_str().is_empty() {
                *path = dir.join(&*path);
            }
        }
        Ok(())
    }

    /// Puts the default homes in the paths left empty: the shipped models and catalog, and
    /// the decision log in [`state_dir`].
    pub fn fill_default_paths(&mut self) {
        if self.models.dir.as_os_str().is_empty() {
            self.models.dir = shipped_data().join("models");
        }
        if self.catalog.path.as_os_str().is_empty() {
            self.catalog.path = shipped_data().join("config/catalog.toml");
        }
        if self.decision.log.path.as_os_str().is_empty() {
            self.decision.log.path = state_dir().join("decisions.jsonl");
        }
    }

    pub fn check(&self) -> Result<(), SettingsError> {
        self.profile.check().map_err(SettingsError::Invalid)?;
        self.learning.check().map_err(SettingsError::Invalid)?;
        self.auth.check().map_err(SettingsError::Invalid)?;
        self.ingest.nats.check().map_err(SettingsError::Invalid)?;
        self.outbound
            .check(self.store.uses_redis())
            .map_err(SettingsError::Invalid)?;
        let st = &self.store;
        if !st.redis_url.trim().is_empty() && !st.redis_cluster_nodes.is_empty() {
            return Err(SettingsError::Invalid(
                "set store.redis_url or store.redis_cluster_nodes, not both".into(),
            ));
        }
        if st.wait_replicas > 0 && st.wait_timeout_ms >= st.response_timeout_ms {
            return Err(SettingsError::Invalid(format!(
                "store.wait_timeout_ms ({}) must be below store.response_timeout_ms ({}): the wait is one answer",
                st.wait_timeout_ms, st.response_timeout_ms
            )));
        }
        if st.wait_replicas > 0 && !st.uses_redis() {
            return Err(SettingsError::Invalid(
                "store.wait_replicas needs Redis (store.redis_url or store.redis_cluster_nodes)"
                    .into(),
            ));
        }
        let m = &self.models;
        if !(0.0..=1.0).contains(&m.challenger_share) {
            return Err(SettingsError::Invalid(
                "models.challenger_share must be in [0, 1]".into(),
            ));
        }
        if m.challenger_share > 0.0 && m.challenger_dir.as_os_str().is_empty() {
            return Err(SettingsError::Invalid(
                "models.challenger_share needs models.challenger_dir".into(),
            ));
        }
        self.decision
            .check(&self.profile)
            .map_err(SettingsError::Invalid)?;
        if self.server.max_body_bytes < 1024 {
            return Err(SettingsError::Invalid(
                "server.max_body_bytes must be at least 1024".into(),
            ));
        }
        let t = &self.training;
        if !(0.0..0.9).contains(&t.holdout_fraction)
            || t.response_window_days <= 0.0
            || t.l2 < 0.0
            || t.segments < 2
            || t.clv_horizon_days <= 0.0
            || t.clv_discount_rate < 0.0
            || t.clv_margin <= 0.0
        {
            return Err(SettingsError::Invalid(
                "training: holdout_fraction in [0, 0.9), response_window_days > 0, l2 >= 0, segments >= 2, clv settings positive".into(),
            ));
        }
        if self.import.batch_events == 0
            || self.import.in_flight == 0
            || self.import.window_events == 0
        {
            return Err(SettingsError::Invalid(
                "import.batch_events, window_events and in_flight must be positive".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_variables_override_the_file_and_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(
            &file,
            "[store]\nredis_url = \"redis://file:1/0\"\nresponse_timeout_ms = 90\n",
        )
        .unwrap();
        let s = Settings::load_with_env(
            Some(&file),
            env(&[("TOUCHPOINT__STORE__REDIS_URL", "redis://127.0.0.1:6379/0")]),
        )
        .unwrap();
        assert_eq!(s.store.redis_url, "redis://127.0.0.1:6379/0");
        assert_eq!(s.store.response_timeout_ms, 90);
        assert_eq!(s.server.bind, "127.0.0.1:8080");
    }

    /// Run from anywhere, the defaults find the shipped models and catalog, and a config
    /// file's relative paths are the file's, while a variable's are the working
    /// directory's.
    #[test]
    fn paths_do_not_depend_on_the_working_directory() {
        let defaults = Settings::load_with_env(None, env(&[])).unwrap();
        assert!(defaults.models.dir.join("manifest.json").is_file());
        assert!(defaults.catalog.path.is_file());
        assert!(defaults.decision.log.path.is_absolute());
        assert!(
            defaults
                .decision
                .log
                .path
                .ends_with("touchpoint/decisions.jsonl")
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(
            &file,
            "[models]\ndir = \"m\"\n[catalog]\npath = \"c.toml\"\n[decision.log]\npath = \"/var/x.jsonl\"\n",
        )
        .unwrap();
        let s = Settings::load_with_env(
            Some(&file),
            env(&[("TOUCHPOINT__CATALOG__PATH", "rel/c.toml")]),
        )
        .unwrap();
        assert_eq!(s.models.dir, dir.path().join("m"));
        assert_eq!(s.catalog.path, PathBuf::from("rel/c.toml"));
        assert_eq!(s.decision.log.path, PathBuf::from("/var/x.jsonl"));
    }

    #[test]
    fn a_misspelt_key_is_an_error_not_silently_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "[store]\nredis_ulr = \"x\"\n").unwrap();
        let e = Settings::load_with_env(Some(&file), env(&[])).unwrap_err();
        assert!(e.to_string().contains("redis_ulr"), "{e}");
    }

    #[test]
    fn the_example_config_documents_every_setting_and_loads() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/touchpoint.example.toml");
        let text = std::fs::read_to_string(&example).unwrap();
        let loaded = Settings::load_with_env(Some(&example), env(&[])).unwrap();
        // Every key of the defaults appears in the example, so nothing is undocumented.
        fn documented(text: &str, path: &str, table: &toml::Table) {
            for (key, value) in table {
                match value {
                    toml::Value::Table(inner) => {
                        let section = format!("{path}.{key}");
                        assert!(
                            text.contains(&format!("[{section}]")),
                            "missing [{section}]"
                        );
                        documented(text, &section, inner);
                    }
                    toml::Value::String(_)
                    | toml::Value::Integer(_)
                    | toml::Value::Float(_)
                    | toml::Value::Boolean(_)
                    | toml::Value::Datetime(_)
                    | toml::Value::Array(_) => assert!(
                        text.lines().any(|l| l
                            .trim_start_matches('#')
                            .trim_start()
                            .starts_with(&format!("{key} ="))),
                        "the example config does not document {path}.{key}"
                    ),
                }
            }
        }
        let defaults = toml::Value::try_from(Settings::default()).unwrap();
        for (section, table) in defaults.as_table().unwrap() {
            assert!(
                text.contains(&format!("[{section}]")),
                "missing [{section}]"
            );
            documented(&text, section, table.as_table().unwrap());
        }
        assert_eq!(loaded.server.bind, Settings::default().server.bind);
    }
}
