//! Translating Java Kafka client properties into librdkafka ones.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

use crate::kafka_security::{is_security_key, Security, SecurityError};

/// Java client keys that librdkafka does not know and that carry no meaning for it.
const JAVA_ONLY_KEYS: &[&str] = &[
    "key.deserializer",
    "value.deserializer",
    "key.serializer",
    "value.serializer",
    "interceptor.classes",
    "metric.reporters",
    "metrics.num.samples",
    "metrics.sample.window.ms",
    "metrics.recording.level",
    "max.poll.records",
    "default.api.timeout.ms",
    "exclude.internal.topics",
    "retry.backoff.max.ms",
    "client.dns.lookup",
    "security.providers",
    "auto.include.jmx.reporter",
];

/// KIP-714 client telemetry, pushed to brokers that run a telemetry plugin. Off unless set:
/// librdkafka allocates its histograms in every client whether or not a broker asks for them
/// (about 0.25 MB per client), and a worker runs a few clients per connector.
const METRICS_PUSH: &str = "enable.metrics.push";

/// Builds an rdkafka config from Java-style properties: Java-only keys are dropped, the
/// assignor class names mapped to librdkafka's names, and the security keys (`security.protocol`,
/// `sasl.*`, `ssl.*`) translated by [`Security`], with the stores read into PEM.
pub fn client_config(props: &BTreeMap<String, String>) -> Result<ClientConfig, SecurityError> {
    let mut cfg = ClientConfig::new();
    for (k, v) in Security::from_props(props)?.librdkafka() {
        cfg.set(k, v);
    }
    for (k, v) in props {
        if JAVA_ONLY_KEYS.contains(&k.as_str()) || is_security_key(k) {
            continue;
        }
        if k == "partition.assignment.strategy" {
            cfg.set(k, map_assignors(v));
            continue;
        }
        cfg.set(k, v);
    }
    if !props.contains_key(METRICS_PUSH) {
        cfg.set(METRICS_PUSH, "false");
    }
    Ok(cfg)
}

fn map_assignors(v: &str) -> String {
    let names: Vec<&str> = v
        .split(',')
        .map(|s| match s.trim().rsplit('.').next().unwrap_or("") {
            "RangeAssignor" => "range",
            "RoundRobinAssignor" => "roundrobin",
            "CooperativeStickyAssignor" | "StickyAssignor" => "cooperative-sticky",
            other => other,
        })
        .filter(|s| !s.is_empty())
        .collect();
    // librdkafka cannot mix eager and cooperative assignors; Java's default list mixes them.
    if names.contains(&"cooperative-sticky") && names.iter().any(|n| *n != "cooperative-sticky") {
        return names
            .iter()
            .filter(|n| **n != "cooperative-sticky")
            .copied()
            .collect::<Vec<_>>()
            .join(",");
    }
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_java_assignors() {
        assert_eq!(
            map_assignors("org.apache.kafka.clients.consumer.CooperativeStickyAssignor"),
            "cooperative-sticky"
        );
        assert_eq!(
            map_assignors("org.apache.kafka.clients.consumer.RangeAssignor,org.apache.kafka.clients.consumer.CooperativeStickyAssignor"),
            "range"
        );
    }

    #[test]
    fn drops_java_only_keys() {
        let props = BTreeMap::from([
            ("bootstrap.servers".to_string(), "b:1".to_string()),
            ("max.poll.records".to_string(), "10".to_string()),
        ]);
        let cfg = client_config(&props).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.get("bootstrap.servers"), Some("b:1"));
        assert_eq!(cfg.get("security.protocol"), Some("plaintext"));
        assert_eq!(cfg.get("max.poll.records"), None);
    }

    #[test]
    fn metrics_push_is_off_unless_set() {
        let props = BTreeMap::from([("bootstrap.servers".to_string(), "b:1".to_string())]);
        let cfg = client_config(&props).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.get("enable.metrics.push"), Some("false"));
        let props = BTreeMap::from([
            ("bootstrap.servers".to_string(), "b:1".to_string()),
            ("enable.metrics.push".to_string(), "true".to_string()),
        ]);
        let cfg = client_config(&props).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.get("enable.metrics.push"), Some("true"));
    }
}
