//! Distributed mode: workers with the same `group.id` form a cluster through Kafka's group
//! coordinator, share connector configs through the config topic and statuses through the
//! status topic (both in the Java worker's record formats), and split connectors and tasks
//! between them. See `docs/distributed.md`.

pub mod assignor;
pub mod herder;
pub mod log;
pub mod membership;
pub mod protocol;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::ConfigError;
use crate::worker_config::WorkerConfig;

pub use herder::DistributedHerder;

/// The distributed-only worker settings.
#[derive(Debug, Clone)]
pub struct DistributedConfig {
    pub group_id: String,
    pub config_topic: String,
    pub config_replication: i32,
    pub status_topic: String,
    pub status_partitions: i32,
    pub status_replication: i32,
    pub offset_topic: String,
    pub offset_partitions: i32,
    pub offset_replication: i32,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub rebalance_timeout: Duration,
    pub max_delay: Duration,
}

impl DistributedConfig {
    /// Reads the distributed settings of a worker config (`group.id` and the three storage
    /// topics are required, as in Java).
    pub fn from_worker(worker: &WorkerConfig) -> Result<DistributedConfig, ConfigError> {
        let props = &worker.props;
        let required = |k: &str| {
            props
                .get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConfigError::Missing { key: k.to_string() })
        };
        let num = |k: &str, default: i64| -> Result<i64, ConfigError> {
            match props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                    key: k.to_string(),
                    value: v.to_string(),
                    reason: "Not a number".into(),
                }),
            }
        };
        let ms = |k: &str, default: i64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(num(k, default)?.max(0) as u64))
        };
        Ok(DistributedConfig {
            group_id: required("group.id")?,
            config_topic: required("config.storage.topic")?,
            config_replication: num("config.storage.replication.factor", 3)? as i32,
            status_topic: required("status.storage.topic")?,
            status_partitions: num("status.storage.partitions", 5)? as i32,
            status_replication: num("status.storage.replication.factor", 3)? as i32,
            offset_topic: required("offset.storage.topic")?,
            offset_partitions: num("offset.storage.partitions", 25)? as i32,
            offset_replication: num("offset.storage.replication.factor", 3)? as i32,
            session_timeout: ms("session.timeout.ms", 10_000)?,
            heartbeat_interval: ms("heartbeat.interval.ms", 3_000)?,
            rebalance_timeout: ms("rebalance.timeout.ms", 60_000)?,
            max_delay: ms("scheduled.rebalance.max.delay.ms", 300_000)?,
        })
    }
}

/// The worker's own Kafka client settings (internal topics, group membership): the bootstrap
/// servers and the security settings, as Java's worker uses its un-prefixed properties.
pub fn internal_client_props(worker: &WorkerConfig) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = worker
        .props
        .iter()
        .filter(|(k, _)| {
            k.starts_with("ssl.") || k.starts_with("sasl.") || k.as_str() == "security.protocol"
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.insert("bootstrap.servers".into(), worker.bootstrap_servers.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(extra: &[(&str, &str)]) -> WorkerConfig {
        let mut props: BTreeMap<String, String> = [
            (
                "key.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        props.insert("listeners".into(), "http://127.0.0.1:8083".into());
        WorkerConfig::from_props(props).expect("worker config")
    }

    #[test]
    fn group_and_topics_are_required() {
        let err = DistributedConfig::from_worker(&worker(&[])).unwrap_err();
        assert!(err.to_string().contains("group.id"), "{err}");
        let ok = DistributedConfig::from_worker(&worker(&[
            ("group.id", "g"),
            ("config.storage.topic", "c"),
            ("status.storage.topic", "s"),
            ("offset.storage.topic", "o"),
            ("scheduled.rebalance.max.delay.ms", "5000"),
        ]))
        .expect("valid");
        assert_eq!(ok.max_delay, Duration::from_millis(5000));
        assert_eq!(ok.status_partitions, 5);
        assert_eq!(ok.session_timeout, Duration::from_secs(10));
    }

    #[test]
    fn a_secured_group_connection_is_read_and_checked() {
        let jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"p\";";
        let w = worker(&[
            ("group.id", "g"),
            ("config.storage.topic", "c"),
            ("status.storage.topic", "s"),
            ("offset.storage.topic", "o"),
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.jaas.config", jaas),
        ]);
        let props = internal_client_props(&w);
        assert_eq!(props["sasl.jaas.config"], jaas);
        let security = crate::kafka_security::Security::from_props(&props);
        assert!(security.is_ok_and(|s| s.sasl.is_some()));
    }
}
