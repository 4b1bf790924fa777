//! The tasks' transactional producer: one per connector per worker process, shared by the
//! worker's tasks of that connector, which run their transactions on it one at a time.
//!
//! A producer per task cost a librdkafka client each (four threads, about 1.3 MB and its own
//! wake-ups while idle): with four tasks per connector that was three clients in ten of a
//! worker's. A task's transaction holds a few events and its offsets and lasts milliseconds,
//! so the tasks of one worker wait little for each other.
//!
//! Fencing does not change with it. A task that lost its partitions (a zombie) is fenced by its
//! consumer group generation, which goes with its offsets into the transaction (KIP-447): the
//! broker refuses the offsets, the transaction aborts, and so do its events. The producer's id
//! names the worker (`<prefix>worker-txn-<generation uuid>-<worker id>`), so a worker restarted
//! at the same address fences what its previous process left open, and two workers never fence
//! each other.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::{info, warn};

use super::kafka::{transactional_producer, TxnProducer, KAFKA_TIMEOUT};
use super::shared::{get_or_create, Slots};
use crate::error::SinkError;
use rdkafka::producer::Producer;

/// A transactional producer shared by the tasks of one connector in this process.
pub struct SharedProducer {
    id: String,
    props: BTreeMap<String, String>,
    producer: Mutex<TxnProducer>,
}

fn producers() -> &'static Mutex<Slots<SharedProducer>> {
    static PRODUCERS: OnceLock<Mutex<Slots<SharedProducer>>> = OnceLock::new();
    PRODUCERS.get_or_init(Mutex::default)
}

/// The producer with transactional id `id` and settings `props`, created (its transactions
/// initialised) unless one is running in this process already. Blocks while it is created.
pub fn shared_producer(
    props: &BTreeMap<String, String>,
    id: &str,
) -> Result<Arc<SharedProducer>, SinkError> {
    tokio::task::block_in_place(|| {
        get_or_create(producers(), format!("{id}\u{0}{props:?}"), || {
            let producer = transactional_producer(props, id)?;
            info!(
                transactional_id = id,
                "transactional producer started for this worker's tasks of the connector"
            );
            Ok(SharedProducer {
                id: id.to_string(),
                props: props.clone(),
                producer: Mutex::new(producer),
            })
        })
    })
}

impl SharedProducer {
    /// The producer's `transactional.id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs one transaction: begins it, lets `body` send into it, commits it. On failure the
    /// transaction is aborted (a producer that cannot abort is replaced by a new one with the
    /// same id, which fences what is left of it) and the error returned. Other tasks'
    /// transactions wait until this one is over.
    pub fn transaction(
        &self,
        body: impl FnOnce(&TxnProducer) -> Result<(), SinkError>,
    ) -> Result<(), SinkError> {
        tokio::task::block_in_place(|| {
            let mut producer = self.producer.lock().map_err(|_| {
                SinkError::Config(format!("producer {} poisoned by a panic", self.id))
            })?;
            let fail = |what: &str, e: rdkafka::error::KafkaError| {
                SinkError::Config(format!("{what} (producer {}): {e}", self.id))
            };
            let result = producer
                .begin_transaction()
                .map_err(|e| fail("begin transaction", e))
                .and_then(|()| body(&producer))
                .and_then(|()| {
                    producer
                        .commit_transaction(KAFKA_TIMEOUT)
                        .map_err(|e| fail("commit transaction", e))
                });
            if let Err(e) = &result {
                warn!(transactional_id = %self.id, error = %e, "control-topic transaction failed; aborting");
                if producer.abort_transaction(KAFKA_TIMEOUT).is_err() {
                    // A fenced or broken producer cannot be reused: start a fresh one, which also
                    // fences whatever is left of this one.
                    match transactional_producer(&self.props, &self.id) {
                        Ok(p) => *producer = p,
                        Err(e2) => {
                            warn!(transactional_id = %self.id, error = %e2, "cannot recreate the producer")
                        }
                    }
                }
            }
            result
        })
    }
}

/// The transactional id of the producer a worker's tasks of a connector share:
/// `<prefix>worker-txn-<generation uuid>-<worker id>`, from a task's `<prefix>worker` and its
/// suffix `-txn-<generation uuid>-<task>`. A suffix of another shape is kept whole.
pub fn worker_transactional_id(base: &str, task_suffix: &str, worker_id: &str) -> String {
    let generation = match task_suffix.rsplit_once('-') {
        Some((head, task)) if task.bytes().all(|b| b.is_ascii_digit()) && !task.is_empty() => head,
        _ => task_suffix,
    };
    format!("{base}{generation}-{worker_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_id_replaces_the_task_index() {
        assert_eq!(
            worker_transactional_id("worker", "-txn-1b2c-3", "10.0.0.7:8083"),
            "worker-txn-1b2c-10.0.0.7:8083"
        );
        assert_eq!(
            worker_transactional_id("p-worker", "-txn-1b2c-12", "h:1"),
            "p-worker-txn-1b2c-h:1"
        );
        // A suffix not ending in a task index is kept whole.
        assert_eq!(
            worker_transactional_id("worker", "-custom", "h:1"),
            "worker-custom-h:1"
        );
        assert_eq!(
            worker_transactional_id("worker", "-txn-x-", "h:1"),
            "worker-txn-x--h:1"
        );
    }
}
