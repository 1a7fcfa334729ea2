//! Configuration that changes while the service runs (the model set, the catalog), swapped
//! atomically: a request takes the current value once (`Arc`) and keeps using it even if a
//! new one arrives meanwhile; the next request sees the new one. A value that fails to load
//! never replaces the one in service.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

/// The model set in service.
pub type LiveModels = Live<crate::model::set::ModelSet, crate::model::set::ModelError>;
/// The catalog in service.
pub type LiveCatalog =
    Live<crate::decision::catalog::Catalog, crate::decision::catalog::CatalogError>;

/// A value and when it went into service.
pub struct Loaded<T> {
    pub value: T,
    pub loaded_at: DateTime<Utc>,
}

type Loader<T, E> = Box<dyn Fn() -> Result<T, E> + Send + Sync>;

pub struct Live<T, E> {
    current: ArcSwap<Loaded<T>>,
    load: Loader<T, E>,
    /// What it is, for logs ("model set", "catalog").
    what: &'static str,
    /// Metric counting reloads by result.
    metric: &'static str,
    /// Serialises reloads (admin call and file watcher); readers never take it.
    reloading: Mutex<()>,
}

impl<T, E: std::fmt::Display> Live<T, E> {
    /// Loads the first value; the service does not start without one.
    pub fn load(
        what: &'static str,
        metric: &'static str,
        load: impl Fn() -> Result<T, E> + Send + Sync + 'static,
    ) -> Result<Self, E> {
        let value = load()?;
        Ok(Self {
            current: ArcSwap::from_pointee(Loaded {
                value,
                loaded_at: Utc::now(),
            }),
            load: Box::new(load),
            what,
            metric,
            reloading: Mutex::new(()),
        })
    }

    /// The value in service now.
    pub fn current(&self) -> Arc<Loaded<T>> {
        self.current.load_full()
    }

    /// Loads again and puts the new value in service; on error the one in service stays.
    /// Blocking (file reads): call it off the async threads.
    pub fn reload(&self) -> Result<Arc<Loaded<T>>, E> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        match (self.load)() {
            Ok(value) => {
                self.current.store(Arc::new(Loaded {
                    value,
                    loaded_at: Utc::now(),
                }));
                tracing::info!(what = self.what, "reloaded");
                metrics::counter!(self.metric, "result" => "ok").increment(1);
                Ok(self.current())
            }
            Err(e) => {
                tracing::warn!(what = self.what, error = %e, "not reloaded; the one in service stays");
                metrics::counter!(self.metric, "result" => "error").increment(1);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn a_failed_reload_keeps_the_value_in_service() {
        let n = Arc::new(AtomicU32::new(0));
        let counter = n.clone();
        let live = Live::load("test", "test_reloads_total", move || {
            let v = counter.fetch_add(1, Ordering::SeqCst);
            if v == 2 {
                Err(format!("bad {v}"))
            } else {
                Ok(v)
            }
        })
        .unwrap();
        let held = live.current();
        assert_eq!(live.reload().unwrap().value, 1);
        assert_eq!(held.value, 0, "a reader keeps what it took");
        assert!(live.reload().is_err());
        assert_eq!(live.current().value, 1);
    }
}
