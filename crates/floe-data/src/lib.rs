//! The Kafka Connect data model: schemas, values, logical types and sink records.
//!
//! Converters produce these types; transforms and connectors consume them. The model follows
//! `org.apache.kafka.connect.data` closely so that behaviour (optional fields, logical types,
//! schemaless maps) matches what a Java connector sees.

pub mod config;
pub mod decimal;
mod record;
mod schema;
mod value;

pub use record::{Header, SinkRecord, TopicPartition};
pub use schema::{logical, Field, Schema, SchemaRef, SchemaType};
pub use value::Value;
