//! Sink connector offsets (KIP-875): the committed offsets of the connector's consumer group.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value as Json};

use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, GroupId, OffsetDeleteRequest, OffsetDeleteResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::kafka_config::client_config;
use crate::kafka_security::Security;
use crate::plugin::ConfigMap;
use crate::wire::find_coordinator;
use crate::worker_config::{list_value, WorkerConfig};

const TIMEOUT: Duration = Duration::from_secs(30);
const GROUP_ID_NOT_FOUND: i16 = 69;

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
        .map_err(|e| format!("cannot create a consumer for group {group}: consumer.{e}"))?
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

/// Commits the given offsets for the (empty) group; entries with a null offset have their
/// committed offset deleted (`OffsetDelete`, KIP-496), so the partition starts over per
/// `auto.offset.reset`.
pub async fn alter(
    worker: &WorkerConfig,
    group: &str,
    changes: &[PartitionOffset],
) -> Result<(), String> {
    let (resets, sets): (Vec<&PartitionOffset>, Vec<&PartitionOffset>) =
        changes.iter().partition(|c| c.offset.is_none());
    if !sets.is_empty() {
        let mut tpl = TopicPartitionList::new();
        for c in &sets {
            tpl.add_partition_offset(&c.topic, c.partition, Offset::Offset(c.offset.unwrap_or(0)))
                .map_err(|e| format!("invalid offset for {}-{}: {e}", c.topic, c.partition))?;
        }
        let consumer = group_consumer(worker, group)?;
        let group_name = group.to_string();
        tokio::task::spawn_blocking(move || {
            consumer
                .commit(&tpl, CommitMode::Sync)
                .map_err(|e| format!("cannot alter the offsets of group {group_name}: {e}"))
        })
        .await
        .map_err(|e| e.to_string())??;
    }
    if !resets.is_empty() {
        delete_offsets(worker, group, &resets).await?;
    }
    Ok(())
}

async fn delete_offsets(
    worker: &WorkerConfig,
    group: &str,
    partitions: &[&PartitionOffset],
) -> Result<(), String> {
    // The group's offsets are the consumers' to change: their security settings apply.
    let security = Security::from_props(&worker.with_prefix("consumer."))
        .map_err(|e| format!("cannot reach the coordinator of group {group}: consumer.{e}"))?;
    let bootstrap: Vec<String> = worker
        .bootstrap_servers
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let mut conn = find_coordinator(&bootstrap, group, "floe-offsets", &security)
        .await
        .map_err(|e| format!("cannot reach the coordinator of group {group}: {e}"))?;
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for p in partitions {
        topics.entry(&p.topic).or_default().push(p.partition);
    }
    let mut request = OffsetDeleteRequest::default();
    request.group_id = GroupId(StrBytes::from_string(group.to_string()));
    request.topics = topics
        .into_iter()
        .map(|(name, parts)| {
            let mut t = OffsetDeleteRequestTopic::default();
            t.name = TopicName(StrBytes::from_string(name.to_string()));
            t.partitions = parts
                .into_iter()
                .map(|p| {
                    let mut rp = OffsetDeleteRequestPartition::default();
                    rp.partition_index = p;
                    rp
                })
                .collect();
            t
        })
        .collect();
    let response: OffsetDeleteResponse = conn
        .call(ApiKey::OffsetDelete, 0, &request)
        .await
        .map_err(|e| e.to_string())?;
    // GROUP_ID_NOT_FOUND: nothing is committed, so nothing to delete.
    if response.error_code != 0 && response.error_code != GROUP_ID_NOT_FOUND {
        return Err(format!(
            "cannot delete offsets of group {group}: Kafka error code {}",
            response.error_code
        ));
    }
    for t in &response.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                return Err(format!(
                    "cannot delete the offset of {}-{} for group {group}: Kafka error code {}",
                    t.name.0.as_str(),
                    p.partition_index,
                    p.error_code
                ));
            }
        }
    }
    Ok(())
}

/// Deletes the group (and so its offsets); a group that does not exist is fine.
pub async fn delete_group(worker: &WorkerConfig, group: &str) -> Result<(), String> {
    let props = worker.admin_props();
    let admin: AdminClient<DefaultClientContext> = client_config(&props)
        .map_err(|e| format!("cannot create an admin client: {e}"))?
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
