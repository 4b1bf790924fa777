//! Single Message Transforms (SMTs) and predicates, applied by the worker between the
//! converters and the sink task as Kafka Connect applies them (`transforms`, `predicates`).
//!
//! ```text
//! SinkRecord ─► stage 1 (predicate? negate?) ─► stage 2 ─► … ─► SinkRecord, or dropped
//! ```
//!
//! Every transform works on the Connect values the converters made ([`floe_data::Value`]),
//! with a schema (structs) or without one (maps), and follows the Java class it is named after:
//! Kafka's `org.apache.kafka.connect.transforms.*` ([`kafka`]), the Iceberg sink's
//! `org.apache.iceberg.connect.transforms.*` ([`iceberg`]) and Debezium's
//! `io.debezium.transforms.ExtractNewRecordState` ([`debezium`]). The crate knows nothing of
//! Kafka clients or of Iceberg; the worker builds a [`Chain`] from a connector config and runs
//! each record through it. Differences from Java that remain are listed in
//! `docs/transforms.md`.

pub mod chain;
pub mod debezium;
pub mod iceberg;
pub mod java;
pub mod kafka;
pub mod plugins;
pub mod props;
pub mod support;

pub use chain::{Chain, ChainKey, ChainValidation, StageError};
pub use plugins::{Plugin, PluginKind};
pub use props::Props;

use floe_data::SinkRecord;

/// A transformation (`org.apache.kafka.connect.transforms.Transformation`).
pub trait Transformation: Send + Sync {
    /// The transformed record, or None to drop it.
    fn apply(&self, record: SinkRecord) -> Result<Option<SinkRecord>, TransformError>;
}

/// A predicate (`org.apache.kafka.connect.transforms.predicates.Predicate`).
pub trait Predicate: Send + Sync {
    /// Whether the record matches.
    fn test(&self, record: &SinkRecord) -> Result<bool, TransformError>;
}

/// Why a transform could not handle a record: the Java exception it stands for, and its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{exception_class}: {message}")]
pub struct TransformError {
    pub exception_class: &'static str,
    pub message: String,
}

impl TransformError {
    /// `org.apache.kafka.connect.errors.DataException`.
    pub fn data(message: impl Into<String>) -> TransformError {
        TransformError {
            exception_class: "org.apache.kafka.connect.errors.DataException",
            message: message.into(),
        }
    }

    /// `org.apache.kafka.connect.errors.ConnectException`.
    pub fn connect(message: impl Into<String>) -> TransformError {
        TransformError {
            exception_class: "org.apache.kafka.connect.errors.ConnectException",
            message: message.into(),
        }
    }

    /// `java.lang.IllegalArgumentException`.
    pub fn illegal_argument(message: impl Into<String>) -> TransformError {
        TransformError {
            exception_class: "java.lang.IllegalArgumentException",
            message: message.into(),
        }
    }

    /// `org.apache.kafka.connect.errors.SchemaBuilderException`.
    pub fn schema_builder(message: impl Into<String>) -> TransformError {
        TransformError {
            exception_class: "org.apache.kafka.connect.errors.SchemaBuilderException",
            message: message.into(),
        }
    }
}

/// A transform or predicate config that cannot be used (Java's `ConfigException` at
/// `configure`): the task fails at start with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);
