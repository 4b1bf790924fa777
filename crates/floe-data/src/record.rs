use std::fmt;

use crate::{SchemaRef, Value};

/// A topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    /// A topic partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A record header, converted.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub key: String,
    pub schema: Option<SchemaRef>,
    pub value: Value,
}

/// A record consumed from Kafka, after conversion, as handed to a sink task.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Kafka record timestamp in epoch milliseconds.
    pub timestamp: Option<i64>,
    pub key_schema: Option<SchemaRef>,
    pub key: Value,
    pub value_schema: Option<SchemaRef>,
    pub value: Value,
    pub headers: Vec<Header>,
    /// The value's bytes when the worker left decoding them to the task (a task that reads
    /// schemaless JSON or Avro straight into its own columns); `value` is then [`Value::Null`] until
    /// the task decodes it. None otherwise.
    pub encoded_value: Option<Vec<u8>>,
    /// The topic the record was read from, when a transform gave it another `topic` (Java's
    /// `originalTopic()`, KIP-793); None while unchanged. Offsets belong to this topic.
    pub original_topic: Option<String>,
}

impl SinkRecord {
    /// A record read from `topic`/`partition` at `offset`, with a null key and value and no
    /// headers.
    pub fn new(topic: &str, partition: i32, offset: i64, timestamp: Option<i64>) -> SinkRecord {
        SinkRecord {
            topic: topic.to_string(),
            partition,
            offset,
            timestamp,
            key_schema: None,
            key: Value::Null,
            value_schema: None,
            value: Value::Null,
            headers: Vec::new(),
            encoded_value: None,
            original_topic: None,
        }
    }

    /// The topic the record was read from, whatever transforms made of `topic`.
    pub fn source_topic(&self) -> &str {
        self.original_topic.as_deref().unwrap_or(&self.topic)
    }

    /// The partition the record was read from: the key of its offset.
    pub fn source_partition(&self) -> TopicPartition {
        TopicPartition::new(self.source_topic(), self.partition)
    }

    /// `topic/partition/offset` as read from Kafka, the coordinates every error message names.
    pub fn coordinates(&self) -> String {
        format!(
            "topic {}, partition {}, offset {}",
            self.source_topic(),
            self.partition,
            self.offset
        )
    }
}
