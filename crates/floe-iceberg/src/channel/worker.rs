//! The worker side of the control-topic protocol: answer each `StartCommit` with the task's
//! files (`DataWritten`) and its assignment (`DataComplete`), and commit the source offsets in
//! the same Kafka transaction (I1), on the producer the worker's tasks of the connector share
//! (`producers.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::events::{Event, Payload};
use floe_data::TopicPartition;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, warn};
use uuid::Uuid;

use super::kafka::KAFKA_TIMEOUT;
use super::producers::{shared_producer, SharedProducer};
use crate::error::SinkError;

/// The control-topic channel of one task.
pub struct WorkerChannel {
    /// The transactional producer of this worker's tasks of the connector.
    producer: Arc<SharedProducer>,
    /// `StartCommit`s of this connector, from the worker's shared control-topic consumer.
    start_commits: super::feed::StartCommits,
    topic: String,
    key: String,
}

impl WorkerChannel {
    /// Opens the channel: a subscription to the worker's shared consumer at the end of the
    /// control topic (group `<group-id-prefix><uuid>`, never committed; `feed.rs`) and the
    /// transactional producer `transactional_id`, shared with the worker's other tasks of the
    /// connector.
    pub fn open(
        props: &BTreeMap<String, String>,
        topic: &str,
        connect_group: &str,
        group_id_prefix: &str,
        transactional_id: &str,
    ) -> Result<WorkerChannel, SinkError> {
        let start_commits = super::feed::subscribe(props, topic, group_id_prefix, connect_group)?;
        // A transaction left open by a killed worker blocks read_committed readers of the
        // control topic and its pending offsets until it times out: transactional_producer
        // keeps that short.
        let producer = shared_producer(props, transactional_id)?;
        Ok(WorkerChannel {
            producer,
            start_commits,
            topic: topic.to_string(),
            key: Uuid::new_v4().to_string(),
        })
    }

    /// Commit ids of the `StartCommit`s for this connector read since the last call.
    pub fn start_commits(&mut self) -> Result<Vec<Uuid>, SinkError> {
        Ok(self.start_commits.drain())
    }

    /// Sends `events` and commits `offsets` (next offset per source partition) for the task's
    /// consumer group in one transaction. On failure the transaction is aborted; the caller
    /// must drop what it announced and rewind.
    pub fn send(
        &mut self,
        events: &[Event],
        offsets: &BTreeMap<TopicPartition, i64>,
        metadata: Option<&ConsumerGroupMetadata>,
    ) -> Result<(), SinkError> {
        let result = self
            .producer
            .transaction(|producer| self.fill(producer, events, offsets, metadata));
        if result.is_ok() && super::fault_injected("worker-commit-outcome-unknown") {
            // The broker committed the transaction, but the task is told the commit timed out:
            // what it does next must be right whether or not the transaction went through.
            warn!(transactional_id = %self.producer.id(), "test fault: reporting a committed transaction as failed");
            return Err(SinkError::Record(
                "commit_transaction timed out (FLOE_TEST_FAULT)".into(),
            ));
        }
        result
    }

    /// Asks the coordinator for an early commit: a `StartCommit` every task answers.
    pub fn request_commit(&mut self, connect_group: &str) -> Result<(), SinkError> {
        let event = Event {
            id: Uuid::new_v4(),
            timestamp_micros: chrono::Utc::now().timestamp_micros(),
            group_id: connect_group.to_string(),
            payload: Payload::StartCommit {
                commit_id: Uuid::new_v4(),
            },
        };
        self.send(&[event], &BTreeMap::new(), None)
    }

    /// Sends `events` and `offsets` into the open transaction of `producer`.
    fn fill(
        &self,
        producer: &super::kafka::TxnProducer,
        events: &[Event],
        offsets: &BTreeMap<TopicPartition, i64>,
        metadata: Option<&ConsumerGroupMetadata>,
    ) -> Result<(), SinkError> {
        let fail = |what: &str, e: KafkaError| SinkError::Config(format!("{what}: {e}"));
        for event in events {
            let bytes = crate::events::encode(event)
                .map_err(|e| SinkError::Config(format!("encoding a control event: {e}")))?;
            producer
                .send(BaseRecord::to(&self.topic).key(&self.key).payload(&bytes))
                .map_err(|(e, _)| fail("send control event", e))?;
        }
        if !offsets.is_empty() {
            let metadata = metadata.ok_or_else(|| {
                SinkError::Config(
                    "the task consumer has no group metadata yet; cannot commit offsets".into(),
                )
            })?;
            let mut tpl = TopicPartitionList::new();
            for (tp, next) in offsets {
                tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*next))
                    .map_err(|e| fail("offsets", e))?;
            }
            producer
                .send_offsets_to_transaction(&tpl, metadata, KAFKA_TIMEOUT)
                .map_err(|e| fail("send offsets to transaction", e))?;
        }
        debug!(
            events = events.len(),
            offsets = offsets.len(),
            "control-topic transaction filled"
        );
        Ok(())
    }
}
