//! Erasing customers' records from the log: which lines are theirs, and telling each
//! erasure its outcome. Shared by the file and the stream writers.

use std::collections::HashSet;

use serde::Deserialize;

use super::Erasure;

/// The customers of a batch's erasures, and how to find their records quickly.
pub(super) struct Erasures {
    ids: HashSet<String>,
    /// Each id as a JSON string (`"c-42"`): a line that holds none of them is kept without
    /// being parsed.
    needles: Vec<memchr::memmem::Finder<'static>>,
}

impl Erasures {
    pub fn new(erasures: &[Erasure]) -> Self {
        let ids: HashSet<String> = erasures.iter().map(|e| e.customer.clone()).collect();
        let needles = ids
            .iter()
            .map(|id| {
                let quoted = serde_json::to_vec(id).expect("a string serialises");
                memchr::memmem::Finder::new(&quoted).into_owned()
            })
            .collect();
        Self { ids, needles }
    }

    /// Whether a record (one line, newline or not) is of an erased customer. A line that
    /// does not read as a record is kept.
    pub fn covers(&self, record: &[u8]) -> bool {
        #[derive(Deserialize)]
        struct Whose<'a> {
            #[serde(borrow)]
            customer_id: std::borrow::Cow<'a, str>,
        }
        self.needles.iter().any(|n| n.find(record).is_some())
            && serde_json::from_slice::<Whose>(record.trim_ascii_end())
                .is_ok_and(|w| self.ids.contains(w.customer_id.as_ref()))
    }
}

/// Tells each erasure its outcome.
pub(super) fn answer(erasures: Vec<Erasure>, result: Result<u64, String>) {
    if let Ok(removed) = &result {
        let customers = erasures.len();
        tracing::info!(customers, removed, "decision log records erased");
    }
    for e in erasures {
        let _ = e.done.send(result.clone());
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use tokio::sync::oneshot;

    pub(in crate::decision::log) fn erasures(customers: &[&str]) -> Erasures {
        let list: Vec<Erasure> = customers
            .iter()
            .map(|c| Erasure {
                customer: (*c).to_owned(),
                done: oneshot::channel().0,
            })
            .collect();
        Erasures::new(&list)
    }
}
