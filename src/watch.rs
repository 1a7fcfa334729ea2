//! Watching files for changes (model sets, the catalog), so they can be reloaded without a
//! restart. Changes are debounced: a writer that touches several files triggers one reload.

use std::path::PathBuf;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Keeps the watch running; dropping it stops the watch and its task.
pub struct WatchGuard {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Calls `on_change` (on the tokio runtime, off the async threads) after `path` changed and
/// then stayed quiet for `quiet`. `path` may be a directory (its direct entries are watched)
/// or a file (its directory is watched, so that replacing the file by rename is seen).
pub fn watch<F>(path: PathBuf, quiet: Duration, on_change: F) -> notify::Result<WatchGuard>
where
    F: Fn() + Send + Sync + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let file = path.is_file().then(|| path.clone());
    let target = match &file {
        Some(f) => f
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from(".")),
        None => path.clone(),
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        let relevant = match &file {
            Some(f) => event.paths.iter().any(|p| p.file_name() == f.file_name()),
            None => true,
        };
        if relevant {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&target, RecursiveMode::NonRecursive)?;
    let on_change = std::sync::Arc::new(on_change);
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Wait until the writer is done: no event for `quiet`.
            while let Ok(Some(())) = tokio::time::timeout(quiet, rx.recv()).await {}
            let f = on_change.clone();
            let _ = tokio::task::spawn_blocking(move || f()).await;
        }
    });
    Ok(WatchGuard {
        _watcher: watcher,
        task,
    })
}
