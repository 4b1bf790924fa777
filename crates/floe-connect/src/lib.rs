//! The Kafka Connect worker runtime: worker configuration, the REST API, the standalone herder
//! and the sink task loop. It knows nothing about Iceberg: connectors plug in through
//! [`plugin::SinkConnector`] and [`plugin::SinkTask`].

pub mod api;
pub mod config_def;
pub mod config_provider;
pub mod dead_letter;
pub mod distributed;
pub mod errant;
pub mod error;
pub mod herder;
pub mod instances;
pub mod kafka_config;
pub mod kafka_security;
pub mod loggers;
pub mod metrics;
pub mod offsets;
pub mod plugin;
pub mod properties;
pub mod rest;
pub mod rest_listener;
pub mod rest_security;
pub mod sasl;
pub mod status;
pub mod task;
pub mod wire;
pub mod worker_config;

pub use api::ConnectApi;
pub use error::{ConfigError, TaskError};
pub use herder::Herder;
pub use plugin::{ConfigMap, Offsets, Plugins, SinkConnector, SinkTask, TaskContext};
pub use worker_config::WorkerConfig;
