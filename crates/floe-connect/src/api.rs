//! What the REST API asks of a herder, standalone or distributed.

use async_trait::async_trait;
use serde_json::Value as Json;

use crate::config_def::Validation;
use crate::herder::{Herder, HerderError, RestartRequest, TargetState};
use crate::loggers::Loggers;
use crate::plugin::{ConfigMap, Plugins};
use crate::worker_config::WorkerConfig;

/// Where a request that changes the cluster is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// By this worker (standalone, or the distributed leader).
    Here,
    /// By the leader at this URL.
    Leader(String),
    /// Nowhere yet: the group has no leader (a rebalance is under way).
    NoLeader,
}

/// What `GET /health` reports (KIP-1017).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Startup is not complete (503).
    Starting,
    /// The worker can serve requests (200).
    Healthy,
    /// The worker cannot serve requests, and why (500).
    Unhealthy(String),
}

/// How long a health check waits for the herder, as Java's `DEFAULT_HEALTH_CHECK_TIMEOUT_MS`.
pub const HEALTH_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The operations behind the Connect REST API.
#[async_trait]
pub trait ConnectApi: Send + Sync {
    fn worker(&self) -> &WorkerConfig;
    fn plugins(&self) -> &Plugins;
    fn loggers(&self) -> &Loggers;
    fn is_ready(&self) -> bool;
    /// Startup complete, and the herder answers within [`HEALTH_CHECK_TIMEOUT`].
    async fn health(&self) -> Health {
        if self.is_ready() {
            Health::Healthy
        } else {
            Health::Starting
        }
    }
    fn cluster_id(&self) -> Option<String>;
    /// Whether the worker is rebalancing (`kafka_connect_worker_rebalance_rebalancing`): a
    /// standalone worker only while it starts.
    fn is_rebalancing(&self) -> bool {
        !self.is_ready()
    }
    /// Where requests that change connectors go.
    fn route(&self) -> Route {
        Route::Here
    }
    /// Sets a log level on every worker of the cluster (`scope=cluster`).
    async fn set_cluster_logger(&self, _namespace: &str, _level: &str) -> Result<(), HerderError> {
        Ok(())
    }
    /// Whether this worker runs the task (a restart forwarded here must find it).
    async fn runs_task(&self, _name: &str, _task: usize) -> bool {
        true
    }
    async fn connector_names(&self) -> Vec<String>;
    fn validate_config(&self, config: &ConfigMap) -> Result<Validation, HerderError>;
    async fn put_connector(
        &self,
        name: &str,
        config: ConfigMap,
        allow_replace: bool,
        initial_state: Option<TargetState>,
    ) -> Result<(Json, bool), HerderError>;
    async fn delete_connector(&self, name: &str) -> Result<(), HerderError>;
    async fn set_target_state(&self, name: &str, target: TargetState) -> Result<(), HerderError>;
    async fn restart_task(&self, name: &str, task_id: usize) -> Result<(), HerderError>;
    async fn restart_connector(
        &self,
        name: &str,
        request: RestartRequest,
    ) -> Result<Option<Json>, HerderError>;
    async fn connector_info(&self, name: &str) -> Result<Json, HerderError>;
    async fn connector_config(&self, name: &str) -> Result<ConfigMap, HerderError>;
    async fn connector_status(&self, name: &str) -> Result<Json, HerderError>;
    async fn task_status(&self, name: &str, task_id: usize) -> Result<Json, HerderError>;
    async fn connector_tasks(&self, name: &str) -> Result<Json, HerderError>;
    async fn tasks_config(&self, name: &str) -> Result<Json, HerderError>;
    async fn active_topics(&self, name: &str) -> Result<Json, HerderError>;
    async fn reset_active_topics(&self, name: &str) -> Result<(), HerderError>;
    async fn get_offsets(&self, name: &str) -> Result<Json, HerderError>;
    async fn alter_offsets(&self, name: &str, body: &Json) -> Result<Json, HerderError>;
    async fn reset_offsets(&self, name: &str) -> Result<Json, HerderError>;
}

#[async_trait]
impl ConnectApi for Herder {
    fn worker(&self) -> &WorkerConfig {
        Herder::worker(self)
    }
    fn plugins(&self) -> &Plugins {
        Herder::plugins(self)
    }
    fn loggers(&self) -> &Loggers {
        Herder::loggers(self)
    }
    fn is_ready(&self) -> bool {
        Herder::is_ready(self)
    }
    async fn health(&self) -> Health {
        Herder::health(self).await
    }
    fn cluster_id(&self) -> Option<String> {
        Herder::cluster_id(self)
    }
    async fn connector_names(&self) -> Vec<String> {
        Herder::connector_names(self).await
    }
    fn validate_config(&self, config: &ConfigMap) -> Result<Validation, HerderError> {
        Herder::validate_config(self, config)
    }
    async fn put_connector(
        &self,
        name: &str,
        config: ConfigMap,
        allow_replace: bool,
        initial_state: Option<TargetState>,
    ) -> Result<(Json, bool), HerderError> {
        Herder::put_connector(self, name, config, allow_replace, initial_state).await
    }
    async fn delete_connector(&self, name: &str) -> Result<(), HerderError> {
        Herder::delete_connector(self, name).await
    }
    async fn set_target_state(&self, name: &str, target: TargetState) -> Result<(), HerderError> {
        Herder::set_target_state(self, name, target).await
    }
    async fn restart_task(&self, name: &str, task_id: usize) -> Result<(), HerderError> {
        Herder::restart_task(self, name, task_id).await
    }
    async fn restart_connector(
        &self,
        name: &str,
        request: RestartRequest,
    ) -> Result<Option<Json>, HerderError> {
        Herder::restart_connector(self, name, request).await
    }
    async fn connector_info(&self, name: &str) -> Result<Json, HerderError> {
        Herder::connector_info(self, name).await
    }
    async fn connector_config(&self, name: &str) -> Result<ConfigMap, HerderError> {
        Herder::connector_config(self, name).await
    }
    async fn connector_status(&self, name: &str) -> Result<Json, HerderError> {
        Herder::connector_status(self, name).await
    }
    async fn task_status(&self, name: &str, task_id: usize) -> Result<Json, HerderError> {
        Herder::task_status(self, name, task_id).await
    }
    async fn connector_tasks(&self, name: &str) -> Result<Json, HerderError> {
        Herder::connector_tasks(self, name).await
    }
    async fn tasks_config(&self, name: &str) -> Result<Json, HerderError> {
        Herder::tasks_config(self, name).await
    }
    async fn active_topics(&self, name: &str) -> Result<Json, HerderError> {
        Herder::active_topics(self, name).await
    }
    async fn reset_active_topics(&self, name: &str) -> Result<(), HerderError> {
        Herder::reset_active_topics(self, name).await
    }
    async fn get_offsets(&self, name: &str) -> Result<Json, HerderError> {
        Herder::get_offsets(self, name).await
    }
    async fn alter_offsets(&self, name: &str, body: &Json) -> Result<Json, HerderError> {
        Herder::alter_offsets(self, name, body).await
    }
    async fn reset_offsets(&self, name: &str) -> Result<Json, HerderError> {
        Herder::reset_offsets(self, name).await
    }
}
