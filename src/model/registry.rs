//! The model set in service, swapped atomically: a decision takes the current set once
//! (`Arc`) and keeps using it even if a new set arrives meanwhile; the next one sees the new
//! set. A set that fails to load never replaces the one in service.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use super::set::{ModelError, ModelSet};
use crate::telemetry::metrics as m;

pub struct ModelRegistry {
    current: ArcSwap<Loaded>,
    dir: PathBuf,
    /// Serialises reloads (admin call and file watcher); readers never take it.
    reloading: Mutex<()>,
}

/// A model set and when it went into service.
pub struct Loaded {
    pub set: ModelSet,
    pub loaded_at: DateTime<Utc>,
}

impl ModelRegistry {
    /// Loads the model set in `dir`; the service does not start with a set it cannot serve.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let set = ModelSet::load(dir)?;
        tracing::info!(version = set.version(), models = ?set.present(), dir = %dir.display(), "model set loaded");
        Ok(Self {
            current: ArcSwap::from_pointee(Loaded {
                set,
                loaded_at: Utc::now(),
            }),
            dir: dir.to_owned(),
            reloading: Mutex::new(()),
        })
    }

    /// The set in service now.
    pub fn current(&self) -> Arc<Loaded> {
        self.current.load_full()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads the directory again and puts the new set in service. On error the set in
    /// service stays. Blocking (file reads): call it off the async threads.
    pub fn reload(&self) -> Result<Arc<Loaded>, ModelError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        match ModelSet::load(&self.dir) {
            Ok(set) => {
                let previous = self.current().set.version().to_owned();
                tracing::info!(version = set.version(), previous, "model set reloaded");
                metrics::counter!(m::MODEL_RELOADS, "result" => "ok").increment(1);
                self.current.store(Arc::new(Loaded {
                    set,
                    loaded_at: Utc::now(),
                }));
                Ok(self.current())
            }
            Err(e) => {
                tracing::warn!(error = %e, "model set not reloaded; the one in service stays");
                metrics::counter!(m::MODEL_RELOADS, "result" => "error").increment(1);
                Err(e)
            }
        }
    }
}
