//! The sink's own Kafka clients: the control-topic consumers and the transactional producers.
//! They get the worker's connection settings overlaid with `iceberg.kafka.*`.

use std::collections::BTreeMap;
use std::time::Duration;

use floe_connect::kafka_config::client_config;
use floe_connect::metrics::{ClientMetrics, CLIENT_STATISTICS_INTERVAL_MS};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::SinkError;

/// How long a blocking Kafka call may take before it counts as failed.
pub const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);

/// Default `transaction.timeout.ms` of the sink's transactional producers (unless set through
/// `iceberg.kafka.*`). Their transactions last milliseconds, but one left open by a killed
/// process holds back every `read_committed` reader of the control topic — every connector
/// sharing it — until the broker aborts it: Kafka's default of 60 s would stall them that long.
pub const CONTROL_TRANSACTION_TIMEOUT_MS: u32 = 15_000;

/// The transactional producer type of workers and coordinators. No polling thread: a
/// transaction's commit flushes the producer, which serves its delivery reports, and a
/// polling thread per producer cost CPU even while idle (two per task).
pub type TxnProducer = BaseProducer<ProducerStats>;

/// A producer's context: its statistics feed the worker's client metrics
/// (`kafka_producer_outgoing_byte_total{clientId}`…, docs/metrics.md); deliveries need nothing.
pub struct ProducerStats(ClientMetrics);

impl ClientContext for ProducerStats {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.0.update(&statistics);
    }
}

impl ProducerContext for ProducerStats {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// Worker connection settings overlaid with `iceberg.kafka.*`.
pub fn client_props(
    worker: &BTreeMap<String, String>,
    iceberg_kafka: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut props = worker.clone();
    props.extend(iceberg_kafka.iter().map(|(k, v)| (k.clone(), v.clone())));
    props
}

fn kafka_err(what: &str, e: impl std::fmt::Display) -> SinkError {
    SinkError::Config(format!("{what}: {e}"))
}

/// A transactional producer with `transactional.id` = `id`, its transactions initialised
/// (which fences any older producer with the same id).
pub fn transactional_producer(
    props: &BTreeMap<String, String>,
    id: &str,
) -> Result<TxnProducer, SinkError> {
    let mut p = props.clone();
    p.insert("transactional.id".into(), id.into());
    p.insert("enable.idempotence".into(), "true".into());
    p.insert("acks".into(), "all".into());
    p.insert("client.id".into(), id.into());
    p.entry("transaction.timeout.ms".into())
        .or_insert_with(|| CONTROL_TRANSACTION_TIMEOUT_MS.to_string());
    p.remove("group.id");
    p.entry("statistics.interval.ms".into())
        .or_insert_with(|| CLIENT_STATISTICS_INTERVAL_MS.to_string());
    let producer: TxnProducer = client_config(&p)
        .map_err(|e| kafka_err(&format!("cannot create producer {id}"), e))?
        .create_with_context(ProducerStats(ClientMetrics::register(true, id)))
        .map_err(|e| kafka_err(&format!("cannot create producer {id}"), e))?;
    tokio::task::block_in_place(|| producer.init_transactions(KAFKA_TIMEOUT))
        .map_err(|e| kafka_err(&format!("cannot initialise transactions for {id}"), e))?;
    Ok(producer)
}

/// Where a control consumer starts on partitions without a committed offset.
#[derive(Debug, Clone, Copy)]
pub enum StartAt {
    /// The end of each partition (workers: only new `StartCommit`s matter).
    End,
    /// The group's committed offsets, else the beginning (the coordinator: replays are
    /// filtered per table by the offsets stored in the table).
    CommittedOrBeginning,
}

/// A `read_committed` consumer of every partition of the control topic, assigned (no group
/// membership) and never auto-committing.
pub fn control_consumer(
    props: &BTreeMap<String, String>,
    group_id: &str,
    topic: &str,
    start: StartAt,
) -> Result<StreamConsumer, SinkError> {
    let mut p = props.clone();
    p.insert("group.id".into(), group_id.into());
    p.insert("enable.auto.commit".into(), "false".into());
    p.insert("isolation.level".into(), "read_committed".into());
    p.insert("enable.partition.eof".into(), "false".into());
    // Control events are few and every hop of a cycle waits on them: a short fetch wait keeps
    // a transaction's events from sitting in the broker's fetch purgatory (unless set).
    p.entry("fetch.wait.max.ms".into())
        .or_insert_with(|| "100".into());
    let consumer: StreamConsumer = client_config(&p)
        .map_err(|e| kafka_err("cannot create the control-topic consumer", e))?
        .create()
        .map_err(|e| kafka_err("cannot create the control-topic consumer", e))?;
    let partitions = control_partitions(&consumer, topic)?;
    let mut tpl = TopicPartitionList::new();
    for partition in &partitions {
        tpl.add_partition(topic, *partition);
    }
    let committed = match start {
        StartAt::End => None,
        StartAt::CommittedOrBeginning => Some(
            tokio::task::block_in_place(|| consumer.committed_offsets(tpl.clone(), KAFKA_TIMEOUT))
                .map_err(|e| {
                    kafka_err(
                        &format!("cannot read the committed offsets of {group_id}"),
                        e,
                    )
                })?,
        ),
    };
    let mut assignment = TopicPartitionList::new();
    for partition in partitions {
        let offset = match (&committed, start) {
            (_, StartAt::End) => Offset::End,
            (Some(c), _) => match c.find_partition(topic, partition).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Offset::Offset(o),
                _ => Offset::Beginning,
            },
            (None, _) => Offset::Beginning,
        };
        assignment
            .add_partition_offset(topic, partition, offset)
            .map_err(|e| kafka_err("invalid control-topic assignment", e))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| kafka_err("cannot assign the control topic", e))?;
    Ok(consumer)
}

fn control_partitions(consumer: &StreamConsumer, topic: &str) -> Result<Vec<i32>, SinkError> {
    // A topic created a moment ago may take a little while to show in metadata.
    let deadline = std::time::Instant::now() + KAFKA_TIMEOUT;
    loop {
        let metadata =
            tokio::task::block_in_place(|| consumer.fetch_metadata(Some(topic), KAFKA_TIMEOUT))
                .map_err(|e| {
                    kafka_err(&format!("cannot read metadata of control topic {topic}"), e)
                })?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if !partitions.is_empty() {
            return Ok(partitions);
        }
        if std::time::Instant::now() >= deadline {
            return Err(SinkError::Config(format!(
                "control topic {topic} does not exist (create it, or let Floe create it)"
            )));
        }
        tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(200)));
    }
}

/// Creates the control topic with one partition if it does not exist yet.
pub async fn ensure_control_topic(
    props: &BTreeMap<String, String>,
    topic: &str,
) -> Result<(), SinkError> {
    let mut p = props.clone();
    p.remove("group.id");
    let admin: AdminClient<DefaultClientContext> = client_config(&p)
        .map_err(|e| kafka_err("cannot create an admin client", e))?
        .create()
        .map_err(|e| kafka_err("cannot create an admin client", e))?;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1));
    let results = admin
        .create_topics(
            [&new],
            &AdminOptions::new().operation_timeout(Some(KAFKA_TIMEOUT)),
        )
        .await
        .map_err(|e| kafka_err(&format!("cannot create control topic {topic}"), e))?;
    for r in results {
        match r {
            Ok(_) => tracing::info!(topic, "control topic created"),
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(SinkError::Config(format!(
                    "cannot create control topic {t}: {code}"
                )));
            }
        }
    }
    Ok(())
}

/// Per-partition high watermarks of a topic.
pub fn high_watermarks(
    consumer: &StreamConsumer,
    topic: &str,
    partitions: &[i32],
) -> BTreeMap<i32, i64> {
    partitions
        .iter()
        .filter_map(|p| {
            tokio::task::block_in_place(|| consumer.fetch_watermarks(topic, *p, KAFKA_TIMEOUT))
                .ok()
                .map(|(_, high)| (*p, high))
        })
        .collect()
}
