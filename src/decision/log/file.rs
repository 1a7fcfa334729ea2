//! The file writer: JSON lines appended a batch at a time, the file rotated to `<path>.1`
//! past its size, and erasure passes that rewrite both files without a customer's records.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::erasure::{Erasures, answer};
use super::{DecisionLogSettings, Item, LogError, next_batch, split_batch};
use crate::decision::record::RECORD_CAPACITY;
use crate::telemetry::metrics as m;

/// Removes the erased customers' records from one log file: the kept lines are written to a
/// file beside it, synced, and renamed over it. The file is left as it was when it holds
/// none (or does not exist).
fn erase_from_file(path: &Path, erasures: &Erasures) -> std::io::Result<u64> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let kept_path = PathBuf::from(format!("{}.erasing", path.display()));
    let mut kept = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&kept_path)?);
    let mut line = Vec::with_capacity(RECORD_CAPACITY);
    let mut removed = 0;
    let copied = (|| {
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if erasures.covers(&line) {
                removed += 1;
            } else {
                kept.write_all(&line)?;
            }
        }
        kept.flush()?;
        kept.get_ref().sync_all()
    })();
    if copied.is_err() || removed == 0 {
        let _ = std::fs::remove_file(&kept_path);
        return copied.map(|()| 0);
    }
    std::fs::rename(&kept_path, path)?;
    // The rename itself is made durable by syncing the directory.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(removed)
}

/// The rotated log file beside `path`.
fn rotated(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.1", path.display()))
}

pub(super) fn open_append(path: &PathBuf) -> Result<std::fs::File, LogError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| LogError::Open {
            path: path.clone(),
            source,
        })?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| LogError::Open {
            path: path.clone(),
            source,
        })
}

pub(super) async fn write(
    mut rx: mpsc::Receiver<Item>,
    mut file: std::fs::File,
    settings: DecisionLogSettings,
) {
    let mut size = std::fs::metadata(&settings.path)
        .map(|m| m.len())
        .unwrap_or(0);
    let mut batch = Vec::with_capacity(256);
    let mut erasures = Vec::new();
    // A batch goes to the file in one write, not one per 64 KB of a `BufWriter`: under load
    // a batch is a few hundred records.
    let mut out: Vec<u8> = Vec::with_capacity(1 << 20);
    while next_batch(&mut rx, &mut batch).await {
        out.clear();
        let records = split_batch(&mut batch, &mut out, &mut erasures);
        if records > 0 {
            match file.write_all(&out) {
                Ok(()) => size += out.len() as u64,
                Err(e) => {
                    metrics::counter!(m::DECISION_LOG_DROPPED).increment(records);
                    tracing::warn!(path = %settings.path.display(), error = %e, "cannot write the decision log");
                    // A part written would end in half a line that the next batch's first
                    // record runs into: cut it off.
                    let _ = file.set_len(size);
                }
            }
        }
        if size > settings.max_file_bytes {
            let _ = std::fs::rename(&settings.path, rotated(&settings.path));
            match open_append(&settings.path) {
                Ok(f) => {
                    file = f;
                    size = 0;
                }
                Err(e) => tracing::warn!(error = %e, "cannot reopen the decision log"),
            }
        }
        if !erasures.is_empty() {
            // Off the runtime's thread: a pass reads the whole log.
            let (path, found) = (settings.path.clone(), Erasures::new(&erasures));
            let result = tokio::task::spawn_blocking(move || {
                let old = erase_from_file(&rotated(&path), &found)?;
                let current = erase_from_file(&path, &found)?;
                Ok::<_, std::io::Error>(old + current)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| format!("{}: {e}", settings.path.display())));
            // The file may have been replaced: append to the one now at the path.
            match open_append(&settings.path) {
                Ok(f) => {
                    file = f;
                    size = std::fs::metadata(&settings.path).map_or(size, |m| m.len());
                }
                Err(e) => tracing::warn!(error = %e, "cannot reopen the decision log"),
            }
            answer(std::mem::take(&mut erasures), result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::log::erasure::tests::erasures;

    /// Only the erased customers' records go: not another customer's whose record mentions
    /// the id, nor a line that is not a record; a file without any is left untouched.
    #[test]
    fn erasing_rewrites_the_file_without_the_customers_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.jsonl");
        let lines = [
            r#"{"decision_id":"d1","customer_id":"c-1","context":{}}"#,
            r#"{"decision_id":"d2","customer_id":"c-2","context":{"ref":"c-1"}}"#,
            r#"{"decision_id":"d3","customer_id":"c-\"q\"","context":{}}"#,
            r#"{"decision_id":"d4","customer_id":"c-1"#,
            r#"{"decision_id":"d5","customer_id":"c-10","context":{}}"#,
            r#"{"decision_id":"d6","customer_id":"c-1","context":{}}"#,
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let removed = erase_from_file(&path, &erasures(&["c-1", "c-\"q\""])).unwrap();
        assert_eq!(removed, 3);
        let left = std::fs::read_to_string(&path).unwrap();
        assert_eq!(left, [lines[1], lines[3], lines[4]].join("\n") + "\n");
        assert!(!dir.path().join("decisions.jsonl.erasing").exists());

        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(erase_from_file(&path, &erasures(&["c-3"])).unwrap(), 0);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), left);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
        let missing = dir.path().join("none.jsonl");
        assert_eq!(erase_from_file(&missing, &erasures(&["c-1"])).unwrap(), 0);
        assert!(!missing.exists());
    }
}
