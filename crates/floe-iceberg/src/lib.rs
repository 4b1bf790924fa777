//! floe-iceberg
