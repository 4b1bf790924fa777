//! Sink connector offsets (KIP-875): the committed offsets of the connector's consumer group.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value as Json};

use crate::kafka_config::client_config;
use crate::plugin::ConfigMap;
use crate::worker_config::{list_value, WorkerConfig};

const TIMEOUT: Duration = Duration::from_secs(30);

/// One partition's offset; None resets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: Option<i64>,
}

fn group_consumer(worker: &WorkerConfig, group: &str) -> Result<BaseConsumer, String> {
    let mut props: BTreeMap<String, String> = worker.with_prefix("consumer.");
    props.insert("bootstrap.servers".into(), worker.bootstrap_servers.clone());
    props.insert("group.id".into(), group.into());
    props.insert("enable.auto.commit".into(), "false".into());
    client_config(&props)
        .create()
        .map_err(|e| format!("cannot create a consumer for group {group}: {e}"))
}

/// The committed offsets of `group` for the connector's topics.
pub fn committed(
    worker: &WorkerConfig,
    group: &str,
    config: &ConfigMap,
) -> Result<Vec<PartitionOffset>, String> {
    let consumer = group_consumer(worker, group)?;
    let metadata = consumer
        .fetch_metadata(None, TIMEOUT)
        .map_err(|e| format!("cannot read topic metadata: {e}"))?;
    let topics = list_value(config, "topics");
    let regex = config
        .get("topics.regex")
        .filter(|r| !r.trim().is_empty())
        .and_then(|r| regex::Regex::new(&format!("^(?:{})$", r.trim())).ok());
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics() {
        if topics.iter().any(|n| n == t.name())
            || regex.as_ref().is_some_and(|r| r.is_match(t.name()))
        {
            for p in t.partitions() {
                tpl.add_partition(t.name(), p.id());
            }
        }
    }
    if tpl.count() == 0 {
        return Ok(Vec::new());
    }
    let committed = consumer
        .committed_offsets(tpl, TIMEOUT)
        .map_err(|e| format!("cannot read the offsets of group {group}: {e}"))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(PartitionOffset {
                topic: e.topic().to_string(),
                partition: e.partition(),
                offset: Some(o),
            }),
            _ => None,
        })
        .collect())
}

/// The REST shape of sink offsets.
pub fn to_json(offsets: &[PartitionOffset]) -> Json {
    let list: Vec<Json> = offsets
        .iter()
        .map(|o| {
            json!({
                "partition": {"kafka_topic": o.topic, "kafka_partition": o.partition},
                "offset": o.offset.map(|v| json!({"kafka_offset": v})),
            })
        })
        .collect();
    json!({ "offsets": list })
}

fn number(v: &Json) -> Option<i64> {
    match v {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses a `PATCH /offsets` body (partitions and offsets may be numbers or numeric strings).
pub fn parse_request(body: &Json) -> Result<Vec<PartitionOffset>, String> {
    let list = body
        .get("offsets")
        .and_then(Json::as_array)
        .ok_or("Partitions / offsets need to be provided for an alter offsets request")?;
    if list.is_empty() {
        return Err("Partitions / offsets need to be provided for an alter offsets request".into());
    }
    let mut out = Vec::new();
    for entry in list {
        let partition = entry
            .get("partition")
            .ok_or("Each entry needs a partition")?;
        let topic = partition
            .get("kafka_topic")
            .and_then(Json::as_str)
            .ok_or("Kafka topic names must be valid strings and may not be null")?;
        let p = partition
            .get("kafka_partition")
            .and_then(number)
            .and_then(|p| i32::try_from(p).ok())
            .ok_or("Kafka partitions must be valid numbers and may not be null")?;
        let offset = match entry.get("offset") {
            None | Some(Json::Null) => None,
            Some(o) => Some(
                o.get("kafka_offset")
                    .and_then(number)
                    .ok_or("Kafka offsets must be valid numbers")?,
            ),
        };
        out.push(PartitionOffset {
            topic: topic.to_string(),
            partition: p,
            offset,
        });
    }
    Ok(out)
}

/// Commits the given offsets for the (empty) group.
pub fn alter(
    worker: &WorkerConfig,
    group: &str,
    changes: &[PartitionOffset],
) -> Result<(), String> {
    if changes.iter().any(|c| c.offset.is_none()) {
        return Err("Resetting a single partition's offset (\"offset\": null) is not supported by this worker; use DELETE /connectors/{name}/offsets to reset all of them".into());
    }
    let consumer = group_consumer(worker, group)?;
    let mut tpl = TopicPartitionList::new();
    for c in changes {
        tpl.add_partition_offset(&c.topic, c.partition, Offset::Offset(c.offset.unwrap_or(0)))
            .map_err(|e| format!("invalid offset for {}-{}: {e}", c.topic, c.partition))?;
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .map_err(|e| format!("cannot alter the offsets of group {group}: {e}"))
}

/// Deletes the group (and so its offsets); a group that does not exist is fine.
pub async fn delete_group(worker: &WorkerConfig, group: &str) -> Result<(), String> {
    let mut props: BTreeMap<String, String> = worker.with_prefix("admin.");
    props.insert("bootstrap.servers".into(), worker.bootstrap_servers.clone());
    let admin: AdminClient<DefaultClientContext> = client_config(&props)
        .create()
        .map_err(|e| format!("cannot create an admin client: {e}"))?;
    let results = admin
        .delete_groups(
            &[group],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await
        .map_err(|e| format!("cannot delete group {group}: {e}"))?;
    for r in results {
        match r {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::GroupIdNotFound)) => {}
            Err((g, code)) => return Err(format!("cannot delete group {g}: {code}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_numeric_strings() {
        let body = json!({"offsets": [
            {"partition": {"kafka_topic": "t", "kafka_partition": "1"}, "offset": {"kafka_offset": "42"}},
            {"partition": {"kafka_topic": "t", "kafka_partition": 0}, "offset": null},
        ]});
        assert_eq!(
            parse_request(&body).unwrap(),
            vec![
                PartitionOffset {
                    topic: "t".into(),
                    partition: 1,
                    offset: Some(42)
                },
                PartitionOffset {
                    topic: "t".into(),
                    partition: 0,
                    offset: None
                },
            ]
        );
        assert!(parse_request(&json!({"offsets": []})).is_err());
    }

    #[test]
    fn renders_the_rest_shape() {
        let j = to_json(&[PartitionOffset {
            topic: "t".into(),
            partition: 0,
            offset: Some(5),
        }]);
        assert_eq!(
            j,
            json!({"offsets": [{"partition": {"kafka_topic": "t", "kafka_partition": 0}, "offset": {"kafka_offset": 5}}]})
        );
    }
}
