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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tracing::{info, warn};

use super::kafka::{transactional_producer, TxnProducer, KAFKA_TIMEOUT};
use crate::error::SinkError;
use rdkafka::producer::Producer;

/// A transactional producer shared by the tasks of one connector in this process.
pub struct SharedProducer {
    id: String,
    props: BTreeMap<String, String>,
    producer: Mutex<TxnProducer>,
}

/// Per key, the slot its value is created in.
type Slots<T> = HashMap<String, Arc<Mutex<Weak<T>>>>;

fn producers() -> &'static Mutex<Slots<SharedProducer>> {
    static PRODUCERS: OnceLock<Mutex<Slots<SharedProducer>>> = OnceLock::new();
    PRODUCERS.get_or_init(Mutex::default)
}

/// The value of `key` in `slots` while one is alive, else the one `create` makes. The registry
/// is held only to find the slot, so values of other keys are created at the same time, each
/// under its own slot's lock, and one key never gets two values alive at once.
fn get_or_create<T>(
    slots: &Mutex<Slots<T>>,
    key: String,
    create: impl FnOnce() -> Result<T, SinkError>,
) -> Result<Arc<T>, SinkError> {
    let poisoned = || SinkError::Config(format!("shared client registry poisoned ({key})"));
    let slot = {
        let mut slots = slots.lock().map_err(|_| poisoned())?;
        // A slot goes once its value has and nobody is about to create one in it: a slot
        // handed out (below, under this lock) but not yet filled is held by its caller.
        slots.retain(|_, slot| Arc::strong_count(slot) > 1 || is_live(slot));
        slots.entry(key.clone()).or_default().clone()
    };
    let mut slot = slot.lock().map_err(|_| poisoned())?;
    if let Some(value) = slot.upgrade() {
        return Ok(value);
    }
    let value = Arc::new(create()?);
    *slot = Arc::downgrade(&value);
    Ok(value)
}

/// Whether the slot's value is alive.
fn is_live<T>(slot: &Mutex<Weak<T>>) -> bool {
    slot.lock().map(|w| w.strong_count() > 0).unwrap_or(false)
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_value_per_key_while_alive_however_many_ask_at_once() {
        let slots: Mutex<Slots<usize>> = Mutex::default();
        let created = AtomicUsize::new(0);
        for round in 0..20 {
            let values: Vec<Arc<usize>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..8)
                    .map(|i| {
                        let (slots, created) = (&slots, &created);
                        // Half the threads ask for the shared key, the rest for keys of
                        // their own, so slots are pruned while others are being filled.
                        let key = if i % 2 == 0 {
                            format!("shared-{round}")
                        } else {
                            format!("own-{round}-{i}")
                        };
                        scope.spawn(move || {
                            get_or_create(slots, key, || {
                                std::thread::sleep(std::time::Duration::from_millis(2));
                                Ok(created.fetch_add(1, Ordering::SeqCst))
                            })
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().ok().and_then(Result::ok))
                    .collect()
            });
            assert_eq!(values.len(), 8);
            let shared: Vec<&Arc<usize>> = values.iter().step_by(2).collect();
            assert!(
                shared.iter().all(|v| Arc::ptr_eq(v, shared[0])),
                "round {round}: the shared key got more than one value"
            );
        }
        // 20 rounds of one shared value and four values of their own.
        assert_eq!(created.load(Ordering::SeqCst), 20 * 5);
        // Every value is gone: the next call prunes every slot and creates afresh.
        let again = get_or_create(&slots, "shared-0".into(), || Ok(7)).ok();
        assert_eq!(again.as_deref(), Some(&7));
        assert_eq!(slots.lock().map(|s| s.len()).ok(), Some(1));
    }

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
