//! The standalone herder: connector configs held in memory, tasks run in this process.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config_def::{validate, Validation};
use crate::plugin::{ConfigMap, Plugins, SinkConnector};
use crate::status::{State, StatusCell};
use crate::task::{self, TaskSpec};
use crate::worker_config::WorkerConfig;

/// A failed herder request; maps onto the REST error codes.
#[derive(Debug, thiserror::Error)]
pub enum HerderError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Internal(String),
}

impl HerderError {
    /// The HTTP status (and `error_code`) of this error.
    pub fn status_code(&self) -> u16 {
        match self {
            HerderError::NotFound(_) => 404,
            HerderError::AlreadyExists(_) => 409,
            HerderError::BadRequest(_) => 400,
            HerderError::Internal(_) => 500,
        }
    }
}

struct RunningTask {
    status: StatusCell,
    shutdown: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

struct ConnectorEntry {
    config: ConfigMap,
    task_configs: Vec<ConfigMap>,
    tasks: Vec<RunningTask>,
}

/// Holds the connectors of a standalone worker and runs their tasks.
pub struct Herder {
    worker: Arc<WorkerConfig>,
    plugins: Plugins,
    connectors: Mutex<BTreeMap<String, ConnectorEntry>>,
    ready: AtomicBool,
    cluster_id: std::sync::Mutex<Option<String>>,
}

impl Herder {
    /// A herder for `worker` that can run `plugins`.
    pub fn new(worker: Arc<WorkerConfig>, plugins: Plugins) -> Herder {
        Herder {
            worker,
            plugins,
            connectors: Mutex::new(BTreeMap::new()),
            ready: AtomicBool::new(false),
            cluster_id: std::sync::Mutex::new(None),
        }
    }

    /// The worker config.
    pub fn worker(&self) -> &WorkerConfig {
        &self.worker
    }

    /// The plugins this worker runs.
    pub fn plugins(&self) -> &Plugins {
        &self.plugins
    }

    /// Marks startup complete (`/health` turns healthy).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Whether startup is complete.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Records the Kafka cluster id shown by `GET /`.
    pub fn set_cluster_id(&self, id: Option<String>) {
        if let Ok(mut g) = self.cluster_id.lock() {
            *g = id;
        }
    }

    /// The Kafka cluster id, once known.
    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id.lock().ok().and_then(|g| g.clone())
    }

    /// Names of all connectors.
    pub async fn connector_names(&self) -> Vec<String> {
        self.connectors.lock().await.keys().cloned().collect()
    }

    fn find_plugin(&self, config: &ConfigMap) -> Result<Arc<dyn SinkConnector>, HerderError> {
        let class = config
            .get("connector.class")
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                HerderError::BadRequest(format!(
                    "Connector config {} contains no connector type",
                    java_map(config)
                ))
            })?;
        self.plugins.find(class).ok_or_else(|| {
            let available: Vec<String> = self
                .plugins
                .connectors()
                .iter()
                .map(|p| format!("PluginDesc{{klass=class {}, name='{}', version='{}', type=sink}}", p.class_name(), p.class_name(), p.version()))
                .collect();
            HerderError::BadRequest(format!(
                "Failed to find any class that implements Connector and which name matches {class}, available connectors are: {}",
                available.join(", ")
            ))
        })
    }

    /// Validates a config against the plugin named in it.
    pub fn validate_config(&self, config: &ConfigMap) -> Result<Validation, HerderError> {
        let plugin = self.find_plugin(config)?;
        Ok(validate(plugin.as_ref(), config, &self.plugins))
    }

    /// Creates or (when `allow_replace`) replaces a connector. Returns its info and whether
    /// it was created.
    pub async fn put_connector(
        &self,
        name: &str,
        config: ConfigMap,
        allow_replace: bool,
    ) -> Result<(Json, bool), HerderError> {
        let plugin = self.find_plugin(&config)?;
        let validation = validate(plugin.as_ref(), &config, &self.plugins);
        if validation.error_count() > 0 {
            return Err(HerderError::BadRequest(validation.invalid_config_message()));
        }
        let mut connectors = self.connectors.lock().await;
        let created = match connectors.remove(name) {
            Some(existing) if allow_replace => {
                self.stop_tasks(name, existing.tasks).await;
                false
            }
            Some(existing) => {
                connectors.insert(name.to_string(), existing);
                return Err(HerderError::AlreadyExists(format!(
                    "Connector {name} already exists"
                )));
            }
            None => true,
        };
        let task_configs = self.task_configs(plugin.as_ref(), &config);
        let tasks = task_configs
            .iter()
            .enumerate()
            .map(|(i, tc)| self.start_task(name, i as u32, tc.clone(), plugin.clone()))
            .collect();
        info!(
            connector = name,
            tasks = task_configs.len(),
            created,
            "connector configured"
        );
        let entry = ConnectorEntry {
            config,
            task_configs,
            tasks,
        };
        let info = connector_info(name, &entry);
        connectors.insert(name.to_string(), entry);
        Ok((info, created))
    }

    fn task_configs(&self, plugin: &dyn SinkConnector, config: &ConfigMap) -> Vec<ConfigMap> {
        let max_tasks = config
            .get("tasks.max")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let mut configs = plugin.task_configs(config, max_tasks);
        configs.truncate(max_tasks);
        for tc in &mut configs {
            tc.insert("task.class".into(), plugin.task_class().into());
            for key in ["topics", "topics.regex"] {
                if let Some(v) = config.get(key) {
                    tc.insert(key.into(), v.clone());
                }
            }
        }
        configs
    }

    fn start_task(
        &self,
        connector: &str,
        task_id: u32,
        config: ConfigMap,
        plugin: Arc<dyn SinkConnector>,
    ) -> RunningTask {
        let status = StatusCell::new(State::Unassigned);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let spec = TaskSpec {
            connector: connector.to_string(),
            task_id,
            config,
            worker: self.worker.clone(),
            plugin,
        };
        let handle = tokio::spawn(task::run(spec, status.clone(), shutdown_rx));
        RunningTask {
            status,
            shutdown,
            handle,
        }
    }

    async fn stop_tasks(&self, connector: &str, tasks: Vec<RunningTask>) {
        for t in &tasks {
            let _ = t.shutdown.send(true);
        }
        // A graceful stop commits what the task holds; allow it time beyond the Java default.
        let limit = self.worker.task_shutdown_timeout + Duration::from_secs(60);
        for (i, t) in tasks.into_iter().enumerate() {
            let abort = t.handle.abort_handle();
            if tokio::time::timeout(limit, t.handle).await.is_err() {
                warn!(
                    connector,
                    task = i,
                    "task did not stop in time; abandoning it"
                );
                abort.abort();
            }
        }
    }

    /// Deletes a connector, stopping its tasks.
    pub async fn delete_connector(&self, name: &str) -> Result<(), HerderError> {
        let entry = self
            .connectors
            .lock()
            .await
            .remove(name)
            .ok_or_else(|| not_found(name))?;
        self.stop_tasks(name, entry.tasks).await;
        info!(connector = name, "connector deleted");
        Ok(())
    }

    /// Stops every connector (process shutdown).
    pub async fn shutdown(&self) {
        let all = std::mem::take(&mut *self.connectors.lock().await);
        for (name, entry) in all {
            self.stop_tasks(&name, entry.tasks).await;
        }
    }

    /// `ConnectorInfo`.
    pub async fn connector_info(&self, name: &str) -> Result<Json, HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| not_found(name))?;
        Ok(connector_info(name, entry))
    }

    /// The raw connector config.
    pub async fn connector_config(&self, name: &str) -> Result<ConfigMap, HerderError> {
        let connectors = self.connectors.lock().await;
        Ok(connectors
            .get(name)
            .ok_or_else(|| not_found(name))?
            .config
            .clone())
    }

    /// `ConnectorStateInfo`.
    pub async fn connector_status(&self, name: &str) -> Result<Json, HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| {
            HerderError::NotFound(format!("No status found for connector {name}"))
        })?;
        let worker_id = &self.worker.worker_id;
        let tasks: Vec<Json> = entry
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let s = t.status.get();
                let mut o = json!({"id": i, "state": s.state, "worker_id": worker_id});
                if let Some(trace) = s.trace.filter(|t| !t.is_empty()) {
                    o["trace"] = Json::String(trace);
                }
                o
            })
            .collect();
        Ok(json!({
            "name": name,
            "connector": {"state": State::Running, "worker_id": worker_id},
            "tasks": tasks,
            "type": "sink",
        }))
    }

    /// `TaskInfo` list.
    pub async fn connector_tasks(&self, name: &str) -> Result<Json, HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| not_found(name))?;
        Ok(Json::Array(
            entry
                .task_configs
                .iter()
                .enumerate()
                .map(|(i, c)| json!({"id": {"connector": name, "task": i}, "config": c}))
                .collect(),
        ))
    }
}

fn not_found(name: &str) -> HerderError {
    HerderError::NotFound(format!("Connector {name} not found"))
}

fn connector_info(name: &str, entry: &ConnectorEntry) -> Json {
    let tasks: Vec<Json> = (0..entry.task_configs.len())
        .map(|i| json!({"connector": name, "task": i}))
        .collect();
    json!({"name": name, "config": entry.config, "tasks": tasks, "type": "sink"})
}

/// Java's `Map.toString()` form, used in a few error messages.
fn java_map(map: &ConfigMap) -> String {
    let inner: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", inner.join(", "))
}
