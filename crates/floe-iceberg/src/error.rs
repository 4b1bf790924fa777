//! Errors of the Iceberg sink.

/// What went wrong in the sink; every variant names the table or record concerned.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Catalog(String),
    #[error("table {table}: {message}")]
    Table { table: String, message: String },
    #[error("{0}")]
    Record(String),
}
