//! What a worker process shares between its tasks (the control-topic feed, the tasks'
//! producers): one value per key while any task holds it, created by the first task that asks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::error::SinkError;

/// Per key, the slot its value is created in.
pub(super) type Slots<T> = HashMap<String, Arc<Mutex<Weak<T>>>>;

/// The value of `key` in `slots` while one is alive, else the one `create` makes. The registry
/// is held only to find the slot, so values of other keys are created at the same time, each
/// under its own slot's lock, and one key never gets two values alive at once.
pub(super) fn get_or_create<T>(
    slots: &Mutex<Slots<T>>,
    key: String,
    create: impl FnOnce() -> Result<T, SinkError>,
) -> Result<Arc<T>, SinkError> {
    // Not naming the key: it holds the connection settings, secrets among them.
    let poisoned = || SinkError::Config("shared Kafka client registry poisoned".into());
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
}
