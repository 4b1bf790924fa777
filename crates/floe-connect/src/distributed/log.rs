//! The internal topics: a compacted topic read from the beginning by every worker and written
//! by some ([`KafkaLog`]), and what the config topic's records mean ([`ConfigState`]).
//!
//! Records are JSON as Java's `JsonConverter` writes them with `schemas.enable=false`, under the
//! same keys (`connector-<name>`, `target-state-<name>`, `task-<name>-<n>`, `commit-<name>`,
//! `restart-connector-<name>`, `status-connector-<name>`, `status-task-<name>-<n>`, …), so
//! tooling that reads a Java cluster's internal topics reads Floe's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{json, Value as Json};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::herder::{RestartRequest, TargetState};
use crate::kafka_config::client_config;
use crate::plugin::ConfigMap;

/// A failure reading or writing an internal topic.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot create a Kafka client for topic {topic}: {reason}")]
    Client { topic: String, reason: String },
    #[error("cannot write key {key} to topic {topic}: {reason}")]
    Write {
        topic: String,
        key: String,
        reason: String,
    },
    #[error("topic {topic} was not read to its end within {waited:?}")]
    Behind { topic: String, waited: Duration },
    #[error("cannot create or check topic {topic}: {reason}")]
    Topic { topic: String, reason: String },
}

/// A record of an internal topic: key, and value (None = tombstone).
pub struct LogRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub value: Option<Json>,
}

/// A topic every worker reads from the beginning on a background thread, applying each record
/// through a callback, and may write to.
pub struct KafkaLog {
    topic: String,
    consumer: Arc<BaseConsumer>,
    producer: FutureProducer,
    /// Next offset to read, per partition.
    positions: Arc<Mutex<BTreeMap<i32, i64>>>,
    progress: watch::Receiver<u64>,
    stop: Arc<AtomicBool>,
}

impl KafkaLog {
    /// Starts reading `topic` (all its partitions, from the beginning) with `apply` called on
    /// the reader thread for every record.
    pub fn start(
        client: &BTreeMap<String, String>,
        topic: &str,
        mut apply: Box<dyn FnMut(LogRecord) + Send>,
    ) -> Result<KafkaLog, LogError> {
        let client_err = |e: &dyn std::fmt::Display| LogError::Client {
            topic: topic.to_string(),
            reason: e.to_string(),
        };
        let mut cprops = client.clone();
        cprops.insert(
            "group.id".into(),
            format!("floe-log-reader-{}", uuid::Uuid::new_v4()),
        );
        cprops.insert("enable.auto.commit".into(), "false".into());
        cprops.insert("fetch.wait.max.ms".into(), "50".into());
        cprops.insert("isolation.level".into(), "read_committed".into());
        let consumer: BaseConsumer = client_config(&cprops)
            .map_err(|e| client_err(&e))?
            .create()
            .map_err(|e| client_err(&e))?;
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(30))
            .map_err(|e| client_err(&e))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(LogError::Topic {
                topic: topic.to_string(),
                reason: "the topic has no partitions".into(),
            });
        }
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(topic, *p, Offset::Beginning)
                .map_err(|e| client_err(&e))?;
        }
        consumer.assign(&tpl).map_err(|e| client_err(&e))?;
        let mut pprops = client.clone();
        pprops.insert("acks".into(), "all".into());
        pprops.insert("enable.idempotence".into(), "false".into());
        pprops.insert("max.in.flight.requests.per.connection".into(), "1".into());
        pprops.insert("linger.ms".into(), "0".into());
        let producer: FutureProducer = client_config(&pprops)
            .map_err(|e| client_err(&e))?
            .create()
            .map_err(|e| client_err(&e))?;

        let consumer = Arc::new(consumer);
        let positions = Arc::new(Mutex::new(
            partitions
                .iter()
                .map(|p| (*p, 0i64))
                .collect::<BTreeMap<_, _>>(),
        ));
        let (progress_tx, progress) = watch::channel(0u64);
        let stop = Arc::new(AtomicBool::new(false));
        {
            let consumer = consumer.clone();
            let positions = positions.clone();
            let stop = stop.clone();
            let name = topic.to_string();
            std::thread::Builder::new()
                .name(format!("log-{topic}"))
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
                            progress_tx.send_modify(|n| *n += 1);
                            continue;
                        };
                        match result {
                            Ok(m) => {
                                let key = m
                                    .key()
                                    .map(|k| String::from_utf8_lossy(k).into_owned())
                                    .unwrap_or_default();
                                let value = match m.payload() {
                                    None => None,
                                    Some(bytes) => match serde_json::from_slice(bytes) {
                                        Ok(v) => Some(v),
                                        Err(e) => {
                                            warn!(topic = %name, key, offset = m.offset(), error = %e, "skipping an unreadable internal record");
                                            None
                                        }
                                    },
                                };
                                let (partition, offset) = (m.partition(), m.offset());
                                apply(LogRecord {
                                    partition,
                                    offset,
                                    key,
                                    value,
                                });
                                if let Ok(mut p) = positions.lock() {
                                    p.insert(partition, offset + 1);
                                }
                                progress_tx.send_modify(|n| *n += 1);
                            }
                            Err(e) => debug!(topic = %name, error = %e, "internal topic read error"),
                        }
                    }
                })
                .map_err(|e| LogError::Client {
                    topic: topic.to_string(),
                    reason: e.to_string(),
                })?;
        }
        Ok(KafkaLog {
            topic: topic.to_string(),
            consumer,
            producer,
            positions,
            progress,
            stop,
        })
    }

    /// Writes a record; returns its partition and offset once the broker has it.
    pub async fn send(&self, key: &str, value: Option<&Json>) -> Result<(i32, i64), LogError> {
        let payload = value.map(|v| v.to_string());
        let mut record: FutureRecord<'_, str, str> = FutureRecord::to(&self.topic).key(key);
        if let Some(p) = payload.as_deref() {
            record = record.payload(p);
        }
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|d| (d.partition, d.offset))
            .map_err(|(e, _)| LogError::Write {
                topic: self.topic.clone(),
                key: key.to_string(),
                reason: e.to_string(),
            })
    }

    /// Waits until this worker has read the record at (`partition`, `offset`).
    pub async fn wait_for(
        &self,
        partition: i32,
        offset: i64,
        limit: Duration,
    ) -> Result<(), LogError> {
        let target = BTreeMap::from([(partition, offset + 1)]);
        self.wait_until(&target, limit).await
    }

    /// Waits until this worker has read everything written to the topic before the call.
    pub async fn read_to_end(&self, limit: Duration) -> Result<(), LogError> {
        let consumer = self.consumer.clone();
        let topic = self.topic.clone();
        let partitions: Vec<i32> = self
            .positions
            .lock()
            .map(|p| p.keys().copied().collect())
            .unwrap_or_default();
        let ends = tokio::task::spawn_blocking(move || {
            let mut ends = BTreeMap::new();
            for p in partitions {
                let (low, high) = consumer.fetch_watermarks(&topic, p, Duration::from_secs(10))?;
                if high > low {
                    ends.insert(p, high);
                }
            }
            Ok::<_, rdkafka::error::KafkaError>(ends)
        })
        .await
        .map_err(|e| LogError::Client {
            topic: self.topic.clone(),
            reason: e.to_string(),
        })?
        .map_err(|e| LogError::Client {
            topic: self.topic.clone(),
            reason: e.to_string(),
        })?;
        self.wait_until(&ends, limit).await
    }

    async fn wait_until(&self, ends: &BTreeMap<i32, i64>, limit: Duration) -> Result<(), LogError> {
        let deadline = Instant::now() + limit;
        let mut progress = self.progress.clone();
        loop {
            let caught_up = self
                .positions
                .lock()
                .map(|p| {
                    ends.iter()
                        .all(|(part, end)| p.get(part).is_some_and(|pos| pos >= end))
                })
                .unwrap_or(false);
            if caught_up {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LogError::Behind {
                    topic: self.topic.clone(),
                    waited: limit,
                });
            }
            let _ = tokio::time::timeout(left, progress.changed()).await;
        }
    }

    /// Flushes pending writes.
    pub fn flush(&self) {
        use rdkafka::producer::Producer;
        let _ = self.producer.flush(Duration::from_secs(10));
    }
}

impl Drop for KafkaLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Creates a compacted internal topic unless it exists; the config topic must have exactly one
/// partition.
pub async fn ensure_topic(
    admin_props: &BTreeMap<String, String>,
    topic: &str,
    partitions: i32,
    replication: i32,
) -> Result<(), LogError> {
    let err = |reason: String| LogError::Topic {
        topic: topic.to_string(),
        reason,
    };
    let admin: AdminClient<DefaultClientContext> = client_config(admin_props)
        .map_err(|e| err(e.to_string()))?
        .create()
        .map_err(|e| err(e.to_string()))?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication))
        .set("cleanup.policy", "compact");
    let results = admin
        .create_topics(
            &[new],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .map_err(|e| err(e.to_string()))?;
    for r in results {
        match r {
            Ok(_) => debug!(topic, "internal topic created"),
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(err(code.to_string())),
        }
    }
    let existing = tokio::task::spawn_blocking({
        let admin_props = admin_props.clone();
        let topic = topic.to_string();
        move || -> Result<usize, String> {
            let consumer: BaseConsumer = client_config(&admin_props)
                .map_err(|e| e.to_string())?
                .create()
                .map_err(|e| e.to_string())?;
            // A topic another worker has just created can show no partitions for a moment,
            // until its metadata reaches the broker answering.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let md = consumer
                    .fetch_metadata(Some(&topic), Duration::from_secs(30))
                    .map_err(|e| e.to_string())?;
                let partitions = md
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic)
                    .map(|t| t.partitions().len())
                    .unwrap_or(0);
                if partitions > 0 || std::time::Instant::now() >= deadline {
                    return Ok(partitions);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    })
    .await
    .map_err(|e| err(e.to_string()))?
    .map_err(err)?;
    if partitions == 1 && existing != 1 {
        return Err(err(format!(
            "the config topic must have exactly one partition, it has {existing}"
        )));
    }
    Ok(())
}

/// The cluster's configuration as read from the config topic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigState {
    /// Offset of the next record to read.
    pub offset: i64,
    pub connectors: BTreeMap<String, ConfigMap>,
    pub targets: BTreeMap<String, TargetState>,
    /// Task configs made effective by a commit record.
    pub tasks: BTreeMap<String, Vec<ConfigMap>>,
    pending: BTreeMap<String, BTreeMap<u32, ConfigMap>>,
    /// The latest restart request per connector, with its offset.
    pub restarts: BTreeMap<String, (i64, RestartRequest)>,
    /// Cluster-wide log levels (`logger-cluster-<namespace>`).
    pub loggers: BTreeMap<String, String>,
}

impl ConfigState {
    pub fn target(&self, name: &str) -> TargetState {
        self.targets
            .get(name)
            .copied()
            .unwrap_or(TargetState::Started)
    }

    /// Applies one config-topic record.
    pub fn apply(&mut self, offset: i64, key: &str, value: Option<&Json>) {
        self.offset = self.offset.max(offset + 1);
        if let Some(name) = key.strip_prefix("connector-") {
            match value.and_then(properties) {
                Some(config) => {
                    self.connectors.insert(name.to_string(), config);
                }
                None => {
                    self.connectors.remove(name);
                    self.tasks.remove(name);
                    self.pending.remove(name);
                    self.targets.remove(name);
                }
            }
        } else if let Some(name) = key.strip_prefix("target-state-") {
            match value.and_then(parse_target) {
                Some(t) => {
                    self.targets.insert(name.to_string(), t);
                }
                None => {
                    self.targets.remove(name);
                }
            }
        } else if let Some(rest) = key.strip_prefix("task-") {
            let Some((name, n)) = rest.rsplit_once('-') else {
                return;
            };
            if let (Ok(n), Some(config)) = (n.parse::<u32>(), value.and_then(properties)) {
                self.pending
                    .entry(name.to_string())
                    .or_default()
                    .insert(n, config);
            }
        } else if let Some(name) = key.strip_prefix("commit-") {
            let count = value
                .and_then(|v| v.get("tasks"))
                .and_then(Json::as_u64)
                .unwrap_or(0) as u32;
            let pending = self.pending.remove(name).unwrap_or_default();
            let configs: Option<Vec<ConfigMap>> =
                (0..count).map(|i| pending.get(&i).cloned()).collect();
            match configs {
                Some(c) => {
                    self.tasks.insert(name.to_string(), c);
                }
                None => warn!(
                    connector = name,
                    count, "task commit without all its task configs; ignoring it"
                ),
            }
        } else if let Some(name) = key.strip_prefix("restart-connector-") {
            if let Some(v) = value {
                let flag = |k: &str| v.get(k).and_then(Json::as_bool).unwrap_or(false);
                self.restarts.insert(
                    name.to_string(),
                    (
                        offset,
                        RestartRequest {
                            include_tasks: flag("include-tasks"),
                            only_failed: flag("only-failed"),
                        },
                    ),
                );
            }
        } else if let Some(ns) = key.strip_prefix("logger-cluster-") {
            match value.and_then(|v| v.get("level")).and_then(Json::as_str) {
                Some(level) => {
                    self.loggers.insert(ns.to_string(), level.to_string());
                }
                None => {
                    self.loggers.remove(ns);
                }
            }
        }
    }
}

fn properties(v: &Json) -> Option<ConfigMap> {
    let props = v.get("properties")?.as_object()?;
    Some(
        props
            .iter()
            .filter_map(|(k, v)| match v {
                Json::String(s) => Some((k.clone(), s.clone())),
                Json::Null => None,
                other => Some((k.clone(), other.to_string())),
            })
            .collect(),
    )
}

fn parse_target(v: &Json) -> Option<TargetState> {
    let s = v
        .get("state.v2")
        .and_then(Json::as_str)
        .or_else(|| v.get("state").and_then(Json::as_str))?;
    match s {
        "STARTED" => Some(TargetState::Started),
        "PAUSED" => Some(TargetState::Paused),
        "STOPPED" => Some(TargetState::Stopped),
        _ => None,
    }
}

/// Config-topic record values, as Java writes them.
pub mod records {
    use super::*;

    pub fn connector(config: &ConfigMap) -> Json {
        json!({ "properties": config })
    }

    pub fn task(config: &ConfigMap) -> Json {
        json!({ "properties": config })
    }

    pub fn commit(tasks: usize) -> Json {
        json!({ "tasks": tasks })
    }

    /// `state` holds STARTED/PAUSED for older readers, `state.v2` the real target.
    pub fn target_state(t: TargetState) -> Json {
        let v2 = match t {
            TargetState::Started => "STARTED",
            TargetState::Paused => "PAUSED",
            TargetState::Stopped => "STOPPED",
        };
        let v1 = if t == TargetState::Started {
            "STARTED"
        } else {
            "PAUSED"
        };
        json!({ "state": v1, "state.v2": v2 })
    }

    pub fn restart(r: RestartRequest) -> Json {
        json!({ "include-tasks": r.include_tasks, "only-failed": r.only_failed })
    }

    /// A status-topic value.
    pub fn status(state: &str, trace: Option<&str>, worker_id: &str, generation: i32) -> Json {
        json!({ "state": state, "trace": trace, "worker_id": worker_id, "generation": generation })
    }

    /// A `status-topic-<topic>:connector-<name>` value.
    pub fn topic(topic: &str, connector: &str, now_ms: i64) -> Json {
        json!({ "topic": { "name": topic, "connector": connector, "task": 0, "discoverTimestamp": now_ms } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> ConfigMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn task_configs_apply_only_at_their_commit() {
        let mut s = ConfigState::default();
        s.apply(
            0,
            "connector-c",
            Some(&records::connector(&cfg(&[("a", "1")]))),
        );
        s.apply(1, "task-c-0", Some(&records::task(&cfg(&[("t", "0")]))));
        s.apply(2, "task-c-1", Some(&records::task(&cfg(&[("t", "1")]))));
        assert_eq!(s.tasks.get("c"), None);
        s.apply(3, "commit-c", Some(&records::commit(2)));
        assert_eq!(s.tasks["c"].len(), 2);
        assert_eq!(s.tasks["c"][1]["t"], "1");
        assert_eq!(s.offset, 4);
        // Connector names may contain dashes: the task number follows the last one.
        s.apply(4, "task-my-conn-0", Some(&records::task(&cfg(&[]))));
        s.apply(5, "commit-my-conn", Some(&records::commit(1)));
        assert_eq!(s.tasks["my-conn"].len(), 1);
    }

    #[test]
    fn an_incomplete_commit_is_ignored() {
        let mut s = ConfigState::default();
        s.apply(0, "task-c-1", Some(&records::task(&cfg(&[]))));
        s.apply(1, "commit-c", Some(&records::commit(2)));
        assert_eq!(s.tasks.get("c"), None);
    }

    #[test]
    fn target_state_prefers_v2_and_stopped_reads_as_paused_for_old_readers() {
        let v = records::target_state(TargetState::Stopped);
        assert_eq!(v, json!({"state": "PAUSED", "state.v2": "STOPPED"}));
        let mut s = ConfigState::default();
        s.apply(0, "target-state-c", Some(&v));
        assert_eq!(s.target("c"), TargetState::Stopped);
        s.apply(1, "target-state-c", Some(&json!({"state": "PAUSED"})));
        assert_eq!(s.target("c"), TargetState::Paused);
        s.apply(2, "target-state-c", None);
        assert_eq!(s.target("c"), TargetState::Started);
    }

    #[test]
    fn deleting_a_connector_forgets_its_tasks_and_target() {
        let mut s = ConfigState::default();
        s.apply(0, "connector-c", Some(&records::connector(&cfg(&[]))));
        s.apply(
            1,
            "target-state-c",
            Some(&records::target_state(TargetState::Paused)),
        );
        s.apply(2, "commit-c", Some(&records::commit(0)));
        s.apply(3, "connector-c", None);
        assert!(s.connectors.is_empty() && s.tasks.is_empty() && s.targets.is_empty());
    }

    #[test]
    fn restart_requests_and_cluster_loggers_are_kept() {
        let mut s = ConfigState::default();
        let r = RestartRequest {
            include_tasks: true,
            only_failed: false,
        };
        s.apply(9, "restart-connector-c", Some(&records::restart(r)));
        let (offset, got) = s.restarts["c"];
        assert_eq!(offset, 9);
        assert!(got.include_tasks && !got.only_failed);
        s.apply(10, "logger-cluster-floe", Some(&json!({"level": "DEBUG"})));
        assert_eq!(s.loggers["floe"], "DEBUG");
    }
}
