//! Kafka Connect converters: bytes from Kafka into Connect schemas and values.
//!
//! Class names and configuration keys are those of the Java converters, so connector configs
//! written for a Java worker work unchanged.

mod avro;
mod json;
mod json_schema;
mod protobuf;
pub mod registry;
mod simple;

use std::collections::BTreeMap;
use std::sync::Arc;

use floe_data::{SchemaRef, Value};

pub use avro::AvroConverter;
pub use json::JsonConverter;
pub use json_schema::JsonSchemaConverter;
pub use protobuf::ProtobufConverter;
pub use simple::{ByteArrayConverter, StringConverter};

/// A converted key or value: its schema (None when schemaless) and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaAndValue {
    pub schema: Option<SchemaRef>,
    pub value: Value,
}

impl SchemaAndValue {
    /// The null value without a schema (tombstones, missing keys).
    pub fn null() -> SchemaAndValue {
        SchemaAndValue {
            schema: None,
            value: Value::Null,
        }
    }
}

/// Why bytes could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("Converting byte[] to Kafka Connect data failed due to serialization error: {0}")]
    Serialization(String),
    #[error("{0}")]
    Data(String),
}

/// Why a converter could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Unknown converter class {0}")]
    UnknownClass(String),
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
}

/// Converts raw Kafka bytes into Connect data.
pub trait Converter: Send + Sync {
    /// Converts `bytes` (None for a null key or a tombstone) read from `topic`.
    fn to_connect(&self, topic: &str, bytes: Option<&[u8]>)
        -> Result<SchemaAndValue, ConvertError>;

    /// The Java class name this converter answers to.
    fn class_name(&self) -> &'static str;

    /// Which value bytes of this converter a task may read itself, straight into its columns
    /// (None: only through [`Converter::to_connect`]).
    fn raw_values(&self) -> Option<RawValues> {
        None
    }

    /// For [`RawValues::Avro`]: the layout of the writer schema `id` when it is a record of
    /// primitive fields ([`FlatRecord`]); None when it is not, or cannot be fetched or parsed
    /// (the record then goes through [`Converter::to_connect`], which names the error).
    fn flat_avro(&self, _id: u32) -> Option<Arc<FlatRecord>> {
        None
    }
}

/// Value bytes a task may read itself (see [`Converter::raw_values`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawValues {
    /// Plain schemaless JSON (JsonConverter with `schemas.enable=false`).
    SchemalessJson,
    /// Confluent-framed Avro (magic byte, 4-byte schema id, binary datum); records whose
    /// writer schema has a [`Converter::flat_avro`] layout can be read field by field.
    Avro,
}

/// An Avro record schema whose fields are all primitives: boolean, int, long, float, double
/// and string (longs with a logical type Connect reads as plain int64 among them), and
/// timestamp-millis and date (Connect's Timestamp and Date), each alone or in a union with
/// null. Its fields in writer order, as they come in the binary encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatRecord {
    pub fields: Vec<FlatField>,
}

/// One field of a [`FlatRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatField {
    pub name: String,
    pub kind: FlatKind,
    /// For a union with null: the index of the null branch (0 or 1) the union index names.
    pub null_branch: Option<u8>,
}

/// The primitive type of a [`FlatField`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlatKind {
    Boolean,
    Int,
    Long,
    Float,
    Double,
    String,
    /// A long of epoch milliseconds (Connect Timestamp).
    TimestampMillis,
    /// An int of days since the epoch (Connect Date).
    Date,
}

/// The converter classes Floe knows, by their Java names.
pub const CONVERTER_CLASSES: &[&str] = &[
    avro::CLASS,
    json::CLASS,
    json_schema::CLASS,
    protobuf::CLASS,
    simple::STRING_CLASS,
    simple::BYTE_ARRAY_CLASS,
];

/// Builds a converter from its class name and its properties (prefix already stripped).
pub fn build_converter(
    class: &str,
    props: &BTreeMap<String, String>,
    is_key: bool,
) -> Result<Arc<dyn Converter>, ConfigError> {
    match class.trim() {
        json::CLASS => Ok(Arc::new(JsonConverter::configure(props, is_key)?)),
        avro::CLASS => Ok(Arc::new(AvroConverter::configure(props)?)),
        json_schema::CLASS => Ok(Arc::new(JsonSchemaConverter::configure(props)?)),
        protobuf::CLASS => Ok(Arc::new(ProtobufConverter::configure(props)?)),
        simple::STRING_CLASS => Ok(Arc::new(StringConverter::configure(props)?)),
        simple::BYTE_ARRAY_CLASS => Ok(Arc::new(ByteArrayConverter)),
        other => Err(ConfigError::UnknownClass(other.to_string())),
    }
}
