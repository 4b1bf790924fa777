//! The Apache Iceberg sink connector (`org.apache.iceberg.connect.IcebergSinkConnector`) for the
//! Floe worker: configuration, catalogs, routing, schema inference, record → Arrow conversion,
//! Parquet writers and table commits with the Java sink's snapshot summary keys.

pub mod arrow;
mod avro_rows;
pub mod catalog;
pub mod channel;
pub mod config;
pub mod delta;
pub mod error;
pub mod events;
mod json_rows;
pub mod lineage;
pub mod locations;
pub mod maintenance;
pub mod metrics_mode;
pub mod outage;
pub mod row_delta;
mod rows;
pub mod schema;
pub mod schema_update;
pub mod sink;
pub mod sink_metrics;
pub mod snapshot;
pub mod summary;
pub mod table_commit;
pub mod writer;

pub use sink::{IcebergSinkConnector, CONNECTOR_CLASS, TABULAR_CONNECTOR_CLASS};
