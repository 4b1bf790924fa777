//! Riding out catalog and storage outages without failing a task or losing a record.
//!
//! ```text
//! put ─► error ─► catalog and storage answer? ── yes ─► the error fails the task, as before
//!                         │ no
//!                         ▼
//!        drop the unannounced files, rewind to the committed offsets, hold consumption
//!        for a backoff (1 s, doubling to 30 s), answer commit cycles empty meanwhile,
//!        then read again from the committed offsets
//! ```
//!
//! A task also keeps the tables it last loaded: while the catalog does not answer, it goes on
//! writing to them (the coordinator buffers what they announce until the catalog is back), so
//! a catalog outage does not even stop the writing. The coordinator never counts a commit
//! that failed during an outage against `iceberg.control.commit.max-consecutive-failures`.

use std::time::{Duration, Instant};

use iceberg::table::Table;
use iceberg::Catalog;

/// How long a probe of the catalog or the storage may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Whether the catalog lists its namespaces and the storage of `tables` (at most three of them)
/// serves their current metadata files, each within a few seconds.
pub async fn reachable(catalog: &dyn Catalog, tables: &[Table]) -> bool {
    if !matches!(
        tokio::time::timeout(PROBE_TIMEOUT, catalog.list_namespaces(None)).await,
        Ok(Ok(_))
    ) {
        return false;
    }
    for table in tables.iter().take(3) {
        let Some(location) = table.metadata_location() else {
            continue;
        };
        let read = tokio::time::timeout(PROBE_TIMEOUT, table.file_io().exists(location));
        if !matches!(read.await, Ok(Ok(true))) {
            return false;
        }
    }
    true
}

/// Whether an error is a server's answer that it cannot do it now (HTTP 500-504): the
/// request may well succeed later, so it is ridden out like an outage.
pub fn server_error(message: &str) -> bool {
    [
        "500 Internal Server Error",
        "502 Bad Gateway",
        "503 Service Unavailable",
        "504 Gateway Timeout",
    ]
    .iter()
    .any(|s| message.contains(s))
        || message.contains("the commit state is unknown")
}

/// Whether a storage request never got an answer (connection refused or reset, a timeout):
/// the object store is away, even when no table is loaded yet whose location could be probed.
pub fn storage_unreachable(message: &str) -> bool {
    message.contains("Failure in doing io operation")
        && [
            "error sending request for url",
            "operation timeout reached",
            "io timeout reached",
        ]
        .iter()
        .any(|s| message.contains(s))
}

/// Whether an error is one to ride out without probing: a server's 5xx, an unknown commit
/// outcome, or a storage request that got no answer.
pub fn transient(message: &str) -> bool {
    server_error(message) || storage_unreachable(message)
}

/// A task's view of an outage: when it started, and until when the task waits.
#[derive(Debug, Default)]
pub struct Outage {
    since: Option<Instant>,
    retry_at: Option<Instant>,
    backoff: Option<Duration>,
}

impl Outage {
    /// Starts (or continues) an outage: the task waits for the next backoff.
    pub fn begin(&mut self) -> Duration {
        let now = Instant::now();
        self.since.get_or_insert(now);
        let wait = match self.backoff {
            None => FIRST_BACKOFF,
            Some(b) => (b * 2).min(MAX_BACKOFF),
        };
        self.backoff = Some(wait);
        self.retry_at = Some(now + wait);
        wait
    }

    /// Whether the task is waiting out a backoff now.
    pub fn waiting(&self) -> bool {
        self.retry_at.is_some_and(|at| Instant::now() < at)
    }

    /// How long the outage has lasted, if there is one.
    pub fn lasted(&self) -> Option<Duration> {
        self.since.map(|s| s.elapsed())
    }

    /// The task wrote again: the outage is over. Returns how long it lasted.
    pub fn end(&mut self) -> Option<Duration> {
        let lasted = self.lasted();
        *self = Outage::default();
        lasted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_told_from_others() {
        assert!(server_error(
            "Cannot create table t: Unexpected, context: { status: 500 Internal Server Error, … }"
        ));
        assert!(server_error(
            "An unknown server-side problem occurred; the commit state is unknown."
        ));
        assert!(!server_error("Cannot create table t: 400 Bad Request"));
    }

    #[test]
    fn storage_requests_without_an_answer_are_transient() {
        let load = "Cannot load table db.t: Unexpected => Failure in doing io operation, source: \
            Unexpected (persistent) at read, context: { service: s3 } => send http request, \
            source: error sending request for url (http://127.0.0.1:1/b/t/metadata/1.json)";
        assert!(storage_unreachable(load) && transient(load));
        let missing = "Cannot load table db.t: Unexpected => Failure in doing io operation, \
            source: NotFound (permanent) at read, context: { service: s3 }";
        assert!(!transient(missing));
        assert!(transient("Cannot create table t: 503 Service Unavailable"));
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut o = Outage::default();
        assert_eq!(o.begin(), Duration::from_secs(1));
        assert!(o.waiting());
        assert_eq!(o.begin(), Duration::from_secs(2));
        for _ in 0..10 {
            o.begin();
        }
        assert_eq!(o.begin(), MAX_BACKOFF);
        assert!(o.end().is_some());
        assert!(!o.waiting());
        assert_eq!(o.begin(), FIRST_BACKOFF);
    }
}
