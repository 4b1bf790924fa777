//! The tasks' view of the control topic: one `read_committed` consumer per worker process (per
//! control topic and connection settings), shared by every task of every connector in it. It
//! decodes each event once, skips other workers' groups without reading their payload, and
//! hands each `StartCommit` to the tasks of its connector's group.
//!
//! A consumer per task cost four librdkafka threads and a fetch every 100 ms per task, and
//! every task decoded every event of every connector on the topic: with a hundred connectors
//! that was most of an idle worker's CPU. Tasks only ever read `StartCommit`s from the end of
//! the topic, so one consumer serves them all; coordinators keep their own, since each starts
//! from its own group's committed offsets.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Message;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};
use uuid::Uuid;

use super::kafka::{control_consumer, StartAt};
use super::shared::{get_or_create, Slots};
use crate::error::SinkError;
use crate::events::Payload;

/// A subscribed task: its subscription id and where its `StartCommit` ids go.
type Subscriber = (u64, mpsc::UnboundedSender<Uuid>);

/// Where a feed's `StartCommit`s go: per connector group, the tasks subscribed to it.
#[derive(Default)]
struct Routes {
    by_group: Mutex<HashMap<String, Vec<Subscriber>>>,
}

impl Routes {
    fn wants(&self, group: &str) -> bool {
        self.by_group
            .lock()
            .map(|r| r.contains_key(group))
            .unwrap_or(false)
    }

    fn send(&self, group: &str, commit_id: Uuid) {
        if let Ok(mut routes) = self.by_group.lock() {
            if let Some(subscribers) = routes.get_mut(group) {
                subscribers.retain(|(_, tx)| tx.send(commit_id).is_ok());
            }
        }
    }

    fn add(&self, group: &str, id: u64, tx: mpsc::UnboundedSender<Uuid>) {
        if let Ok(mut routes) = self.by_group.lock() {
            routes.entry(group.to_string()).or_default().push((id, tx));
        }
    }

    fn remove(&self, group: &str, id: u64) {
        if let Ok(mut routes) = self.by_group.lock() {
            if let Some(subscribers) = routes.get_mut(group) {
                subscribers.retain(|(i, _)| *i != id);
                if subscribers.is_empty() {
                    routes.remove(group);
                }
            }
        }
    }
}

/// A running shared consumer. Its reading loop ends when the last subscription is dropped
/// (the stop sender goes with it).
struct Feed {
    routes: Arc<Routes>,
    _stop: watch::Sender<bool>,
}

/// Feeds by control topic, group-id prefix and connection settings.
fn feeds() -> &'static Mutex<Slots<Feed>> {
    static FEEDS: OnceLock<Mutex<Slots<Feed>>> = OnceLock::new();
    FEEDS.get_or_init(Mutex::default)
}

/// One task's subscription: the `StartCommit` ids of its connector's group, from the moment it
/// subscribed.
pub struct StartCommits {
    feed: Arc<Feed>,
    group: String,
    id: u64,
    rx: mpsc::UnboundedReceiver<Uuid>,
}

impl StartCommits {
    /// The ids received since the last call (never waits).
    pub fn drain(&mut self) -> Vec<Uuid> {
        let mut ids = Vec::new();
        while let Ok(id) = self.rx.try_recv() {
            ids.push(id);
        }
        ids
    }
}

impl Drop for StartCommits {
    fn drop(&mut self) {
        self.feed.routes.remove(&self.group, self.id);
    }
}

/// Subscribes to the `StartCommit`s of `connect_group` on `topic`, starting the worker's
/// shared consumer of that topic if none runs. Must be called within the Tokio runtime.
pub fn subscribe(
    props: &BTreeMap<String, String>,
    topic: &str,
    group_id_prefix: &str,
    connect_group: &str,
) -> Result<StartCommits, SinkError> {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let key = format!("{topic}\u{0}{group_id_prefix}\u{0}{props:?}");
    let (tx, rx) = mpsc::unbounded_channel();
    let feed = tokio::task::block_in_place(|| {
        get_or_create(feeds(), key, || {
            // The consumer's group is never committed (it reads from the end, assigned), as
            // Java's per-task `<prefix><uuid>` group; one per worker here.
            let consumer = control_consumer(
                props,
                &format!("{group_id_prefix}{}", Uuid::new_v4()),
                topic,
                StartAt::End,
            )?;
            let routes = Arc::new(Routes::default());
            let (stop, stopped) = watch::channel(false);
            tokio::spawn(read(consumer, routes.clone(), stopped, topic.to_string()));
            info!(topic, "control-topic feed started for this worker's tasks");
            Ok(Feed {
                routes,
                _stop: stop,
            })
        })
    })?;
    // Every event read from here on reaches this subscription.
    feed.routes.add(connect_group, id, tx);
    Ok(StartCommits {
        feed,
        group: connect_group.to_string(),
        id,
        rx,
    })
}

async fn read(
    consumer: StreamConsumer,
    routes: Arc<Routes>,
    mut stopped: watch::Receiver<bool>,
    topic: String,
) {
    loop {
        tokio::select! {
            // The last subscription went (the sender is dropped with the feed).
            _ = stopped.changed() => break,
            received = consumer.recv() => match received {
                Ok(msg) => {
                    let Some(bytes) = msg.payload() else { continue };
                    match crate::events::decode_if(bytes, |g| routes.wants(g)) {
                        Ok(Some(event)) => {
                            if let Payload::StartCommit { commit_id } = event.payload {
                                routes.send(&event.group_id, commit_id);
                            }
                        }
                        Ok(None) => {}
                        Err(e) => super::skip_undecodable(&topic, msg.partition(), msg.offset(), &e),
                    }
                }
                // The client retries on its own (a broker restart, say).
                Err(e) => debug!(topic = %topic, error = %e, "control-topic consumer error"),
            },
        }
    }
    info!(topic = %topic, "control-topic feed stopped: no task reads it any more");
    // Closing a consumer waits on its broker threads; not on a runtime thread.
    drop(tokio::task::spawn_blocking(move || drop(consumer)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_commits_go_to_every_subscriber_of_their_group_only() {
        let routes = Routes::default();
        let (a1, mut ra1) = mpsc::unbounded_channel();
        let (a2, mut ra2) = mpsc::unbounded_channel();
        let (b, mut rb) = mpsc::unbounded_channel();
        routes.add("connect-a", 1, a1);
        routes.add("connect-a", 2, a2);
        routes.add("connect-b", 3, b);
        assert!(routes.wants("connect-a"));
        assert!(!routes.wants("connect-c"));
        let id = Uuid::new_v4();
        routes.send("connect-a", id);
        assert_eq!(ra1.try_recv().ok(), Some(id));
        assert_eq!(ra2.try_recv().ok(), Some(id));
        assert!(rb.try_recv().is_err());
        routes.remove("connect-a", 1);
        routes.remove("connect-a", 2);
        assert!(!routes.wants("connect-a"));
        assert!(routes.wants("connect-b"));
    }

    #[test]
    fn a_closed_subscriber_is_dropped_on_the_next_send() {
        let routes = Routes::default();
        let (tx, rx) = mpsc::unbounded_channel();
        routes.add("connect-a", 1, tx);
        drop(rx);
        routes.send("connect-a", Uuid::new_v4());
        let left = routes
            .by_group
            .lock()
            .map(|r| r["connect-a"].len())
            .unwrap_or(99);
        assert_eq!(left, 0);
    }
}
