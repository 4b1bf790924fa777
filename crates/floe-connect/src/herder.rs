//! The standalone herder: connector configs held in memory, tasks run in this process.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value as Json};
use tokio::sync::Mutex;
use tracing::info;

use crate::config_def::{validate, Validation};
use crate::config_provider::{ConfigProviders, Redactor};
use crate::instances::{Instance, Instances};
use crate::loggers::Loggers;
use crate::offsets::{self, PartitionOffset};
use crate::plugin::{ConfigMap, Plugins, SinkConnector};
use crate::status::State;
use crate::task::{self, TaskCommand, TaskSpec};
use crate::worker_config::{OverridePolicy, WorkerConfig, OVERRIDE_PREFIXES};

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
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
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
            HerderError::Forbidden(_) => 403,
            HerderError::Conflict(_) => 409,
            HerderError::Internal(_) => 500,
        }
    }
}

/// Connector target states (`TargetState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    Started,
    Paused,
    Stopped,
}

impl TargetState {
    /// Parses a REST `initial_state` (`RUNNING`, `PAUSED`, `STOPPED`).
    pub fn from_initial_state(s: &str) -> Option<TargetState> {
        match s.to_ascii_uppercase().as_str() {
            "RUNNING" => Some(TargetState::Started),
            "PAUSED" => Some(TargetState::Paused),
            "STOPPED" => Some(TargetState::Stopped),
            _ => None,
        }
    }

    pub(crate) fn command(self) -> TaskCommand {
        match self {
            TargetState::Started => TaskCommand::Run,
            TargetState::Paused => TaskCommand::Pause,
            TargetState::Stopped => TaskCommand::Shutdown,
        }
    }
}

struct ConnectorEntry {
    config: ConfigMap,
    target: TargetState,
    plugin: Arc<dyn SinkConnector>,
    /// Task configs; empty while STOPPED.
    task_configs: Vec<ConfigMap>,
    /// The current instance of each task (an instance stops in the background when replaced).
    tasks: Vec<Instance>,
    active_topics: Arc<std::sync::Mutex<BTreeSet<String>>>,
}

/// Holds the connectors of a standalone worker and runs their tasks.
pub struct Herder {
    worker: Arc<WorkerConfig>,
    plugins: Plugins,
    connectors: Mutex<BTreeMap<String, ConnectorEntry>>,
    instances: Instances,
    ready: AtomicBool,
    cluster_id: std::sync::Mutex<Option<String>>,
    loggers: Loggers,
}

/// Which instances `POST /connectors/{name}/restart` restarts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestartRequest {
    pub include_tasks: bool,
    pub only_failed: bool,
}

impl Herder {
    /// A herder for `worker` that can run `plugins`.
    pub fn new(worker: Arc<WorkerConfig>, plugins: Plugins) -> Herder {
        Herder {
            instances: Instances::new(worker.restart_stop_limit()),
            worker,
            plugins,
            connectors: Mutex::new(BTreeMap::new()),
            ready: AtomicBool::new(false),
            cluster_id: std::sync::Mutex::new(None),
            loggers: Loggers::new("info", None),
        }
    }

    /// Uses `loggers` for `/admin/loggers`.
    pub fn with_loggers(mut self, loggers: Loggers) -> Herder {
        self.loggers = loggers;
        self
    }

    /// The worker's log levels.
    pub fn loggers(&self) -> &Loggers {
        &self.loggers
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

    /// `GET /health`: starting until startup completes; then healthy when the connectors'
    /// state, which every request goes through, can be taken within the health check timeout.
    pub async fn health(&self) -> crate::api::Health {
        use crate::api::{Health, HEALTH_CHECK_TIMEOUT};
        if !self.is_ready() {
            return Health::Starting;
        }
        match tokio::time::timeout(HEALTH_CHECK_TIMEOUT, self.connectors.lock()).await {
            Ok(_) => Health::Healthy,
            Err(_) => Health::Unhealthy(format!(
                "Worker was unable to handle this request and may be unable to handle other requests: the herder has been busy for more than {} s",
                HEALTH_CHECK_TIMEOUT.as_secs()
            )),
        }
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
        find_plugin(&self.plugins, config)
    }

    /// Validates a config against the plugin named in it, with config-provider placeholders
    /// resolved (as Java does).
    pub fn validate_config(&self, config: &ConfigMap) -> Result<Validation, HerderError> {
        validate_with(&self.worker, &self.plugins, config)
    }

    /// Creates or (when `allow_replace`) replaces a connector. Returns its info and whether
    /// it was created. A replaced connector keeps its target state.
    pub async fn put_connector(
        &self,
        name: &str,
        config: ConfigMap,
        allow_replace: bool,
        initial_state: Option<TargetState>,
    ) -> Result<(Json, bool), HerderError> {
        let plugin = self.find_plugin(&config)?;
        // Through the same path as the validate endpoint, so the 400 answer quotes
        // placeholders, never what they resolved to.
        let validation = validate_plugin(&self.worker, &self.plugins, plugin.as_ref(), &config)?;
        if validation.error_count() > 0 {
            return Err(HerderError::BadRequest(validation.invalid_config_message()));
        }
        let mut connectors = self.connectors.lock().await;
        let (created, target, active_topics) = match connectors.remove(name) {
            Some(existing) if allow_replace => {
                // The new instances start once these have stopped (instances.rs).
                stop_all(&existing.tasks);
                (false, existing.target, existing.active_topics.clone())
            }
            Some(existing) => {
                connectors.insert(name.to_string(), existing);
                return Err(HerderError::AlreadyExists(format!(
                    "Connector {name} already exists"
                )));
            }
            None => (
                true,
                initial_state.unwrap_or(TargetState::Started),
                Arc::new(std::sync::Mutex::new(BTreeSet::new())),
            ),
        };
        let mut entry = ConnectorEntry {
            config,
            target,
            plugin,
            task_configs: Vec::new(),
            tasks: Vec::new(),
            active_topics,
        };
        self.start_connector(name, &mut entry);
        info!(
            connector = name,
            tasks = entry.task_configs.len(),
            created,
            "connector configured"
        );
        let info = connector_info(name, &entry);
        connectors.insert(name.to_string(), entry);
        Ok((info, created))
    }

    /// Generates task configs and starts the tasks, unless the connector is STOPPED.
    fn start_connector(&self, name: &str, entry: &mut ConnectorEntry) {
        if entry.target == TargetState::Stopped {
            entry.task_configs.clear();
            return;
        }
        entry.task_configs = generate_task_configs(entry.plugin.as_ref(), &entry.config);
        entry.tasks = entry
            .task_configs
            .iter()
            .enumerate()
            .map(|(i, tc)| self.start_task(name, i as u32, tc.clone(), entry))
            .collect();
    }

    /// Starts an instance of a task; it runs once the task's previous instance has stopped.
    fn start_task(
        &self,
        connector: &str,
        task_id: u32,
        config: ConfigMap,
        entry: &ConnectorEntry,
    ) -> Instance {
        let spec = TaskSpec {
            connector: connector.to_string(),
            task_id,
            config,
            worker: self.worker.clone(),
            plugin: entry.plugin.clone(),
            active_topics: entry.active_topics.clone(),
        };
        self.instances.start(spec, entry.target.command())
    }

    /// Deletes a connector; its tasks stop in the background.
    pub async fn delete_connector(&self, name: &str) -> Result<(), HerderError> {
        let entry = self
            .connectors
            .lock()
            .await
            .remove(name)
            .ok_or_else(|| not_found(name))?;
        stop_all(&entry.tasks);
        info!(connector = name, "connector deleted");
        Ok(())
    }

    /// Stops every connector (process shutdown), waiting for the tasks at most the worker's
    /// `task.shutdown.graceful.timeout.ms`.
    pub async fn shutdown(&self) {
        self.connectors.lock().await.clear();
        self.instances
            .stop_all(self.worker.task_shutdown_timeout)
            .await;
    }

    /// Pauses, resumes or stops a connector.
    pub async fn set_target_state(
        &self,
        name: &str,
        target: TargetState,
    ) -> Result<(), HerderError> {
        let mut connectors = self.connectors.lock().await;
        let entry = connectors.get_mut(name).ok_or_else(|| not_found(name))?;
        if entry.target == target {
            return Ok(());
        }
        let previous = entry.target;
        entry.target = target;
        match (previous, target) {
            (_, TargetState::Stopped) => {
                stop_all(&std::mem::take(&mut entry.tasks));
                entry.task_configs.clear();
            }
            (TargetState::Stopped, _) => self.start_connector(name, entry),
            _ => {
                for t in &entry.tasks {
                    t.command(target.command());
                }
            }
        }
        info!(connector = name, ?target, "target state changed");
        Ok(())
    }

    /// Restarts one task.
    pub async fn restart_task(&self, name: &str, task_id: usize) -> Result<(), HerderError> {
        let mut connectors = self.connectors.lock().await;
        let entry = connectors.get_mut(name).ok_or_else(|| not_found(name))?;
        if task_id >= entry.tasks.len() {
            return Err(HerderError::NotFound(format!(
                "Unknown task: {name}-{task_id}"
            )));
        }
        self.restart_tasks(name, entry, &[task_id]);
        Ok(())
    }

    /// Replaces the instances of tasks `ids`: each new one starts once the old has stopped.
    fn restart_tasks(&self, name: &str, entry: &mut ConnectorEntry, ids: &[usize]) {
        for &id in ids {
            let config = entry.task_configs[id].clone();
            entry.tasks[id] = self.start_task(name, id as u32, config, entry);
        }
    }

    /// `POST /connectors/{name}/restart`: returns the status to answer with (instances being
    /// restarted shown as RESTARTING), or None for the plain 204 answer.
    pub async fn restart_connector(
        &self,
        name: &str,
        request: RestartRequest,
    ) -> Result<Option<Json>, HerderError> {
        if !request.include_tasks && !request.only_failed {
            // The legacy form restarts only the Connector object, which holds no state here.
            self.connectors
                .lock()
                .await
                .get(name)
                .ok_or_else(|| not_found(name))?;
            return Ok(None);
        }
        let ids: Vec<usize> = {
            let connectors = self.connectors.lock().await;
            let entry = connectors.get(name).ok_or_else(|| not_found(name))?;
            if !request.include_tasks {
                Vec::new()
            } else {
                entry
                    .tasks
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| !request.only_failed || t.status.get().state == State::Failed)
                    .map(|(i, _)| i)
                    .collect()
            }
        };
        let mut status = self.connector_status(name).await?;
        if let Some(tasks) = status["tasks"].as_array_mut() {
            for t in tasks.iter_mut() {
                if t["id"]
                    .as_u64()
                    .is_some_and(|id| ids.contains(&(id as usize)))
                {
                    t["state"] = json!(State::Restarting);
                    if let Some(o) = t.as_object_mut() {
                        o.remove("trace");
                    }
                }
            }
        }
        if !request.only_failed {
            status["connector"]["state"] = json!(State::Restarting);
        }
        let mut connectors = self.connectors.lock().await;
        if let Some(entry) = connectors.get_mut(name) {
            self.restart_tasks(name, entry, &ids);
        }
        Ok(Some(status))
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
        let tasks: Vec<Json> = (0..entry.tasks.len())
            .map(|i| task_state(entry, i, worker_id))
            .collect();
        let state = match entry.target {
            TargetState::Started => State::Running,
            TargetState::Paused => State::Paused,
            TargetState::Stopped => State::Stopped,
        };
        Ok(json!({
            "name": name,
            "connector": {"state": state, "worker_id": worker_id, "version": entry.plugin.version()},
            "tasks": tasks,
            "type": "sink",
        }))
    }

    /// `TaskState` of one task.
    pub async fn task_status(&self, name: &str, task_id: usize) -> Result<Json, HerderError> {
        let connectors = self.connectors.lock().await;
        let missing =
            || HerderError::NotFound(format!("No status found for task {name}-{task_id}"));
        let entry = connectors.get(name).ok_or_else(missing)?;
        if task_id >= entry.tasks.len() {
            return Err(missing());
        }
        Ok(task_state(entry, task_id, &self.worker.worker_id))
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

    /// `GET /connectors/{name}/tasks-config`.
    pub async fn tasks_config(&self, name: &str) -> Result<Json, HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| not_found(name))?;
        let mut out = serde_json::Map::new();
        for (i, c) in entry.task_configs.iter().enumerate() {
            out.insert(format!("{name}-{i}"), json!(c));
        }
        Ok(Json::Object(out))
    }

    /// Topics the connector has read records from.
    pub async fn active_topics(&self, name: &str) -> Result<Json, HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| not_found(name))?;
        let topics: Vec<String> = entry
            .active_topics
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        Ok(json!({ name: {"topics": topics} }))
    }

    /// Forgets the connector's active topics.
    pub async fn reset_active_topics(&self, name: &str) -> Result<(), HerderError> {
        let connectors = self.connectors.lock().await;
        let entry = connectors.get(name).ok_or_else(|| not_found(name))?;
        if let Ok(mut t) = entry.active_topics.lock() {
            t.clear();
        }
        Ok(())
    }

    /// The connector's consumer group, config, and whether it is stopped (its tasks gone:
    /// waits for instances still stopping, so the group has no members left).
    async fn offsets_target(&self, name: &str) -> Result<(String, ConfigMap, bool), HerderError> {
        let (group, config, stopped) = {
            let connectors = self.connectors.lock().await;
            let entry = connectors.get(name).ok_or_else(|| not_found(name))?;
            (
                task::group_id(name, &entry.config),
                entry.config.clone(),
                entry.target == TargetState::Stopped && entry.tasks.is_empty(),
            )
        };
        if stopped {
            self.instances
                .wait_connector_stopped(name, self.worker.restart_stop_limit())
                .await;
        }
        Ok((group, config, stopped))
    }

    /// `GET /connectors/{name}/offsets`: the committed offsets of the connector's group.
    pub async fn get_offsets(&self, name: &str) -> Result<Json, HerderError> {
        let (group, config, _) = self.offsets_target(name).await?;
        read_offsets(&self.worker, group, config).await
    }

    /// `PATCH /connectors/{name}/offsets`.
    pub async fn alter_offsets(&self, name: &str, body: &Json) -> Result<Json, HerderError> {
        let (group, _, stopped) = self.offsets_target(name).await?;
        alter_offsets(&self.worker, name, group, stopped, body).await
    }

    /// `DELETE /connectors/{name}/offsets`.
    pub async fn reset_offsets(&self, name: &str) -> Result<Json, HerderError> {
        let (group, _, stopped) = self.offsets_target(name).await?;
        reset_offsets(&self.worker, name, group, stopped).await
    }
}

/// Asks every instance in `tasks` to stop (returns at once).
fn stop_all(tasks: &[Instance]) {
    for t in tasks {
        t.stop();
    }
}

/// The plugin a connector config names in `connector.class`.
pub(crate) fn find_plugin(
    plugins: &Plugins,
    config: &ConfigMap,
) -> Result<Arc<dyn SinkConnector>, HerderError> {
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
    plugins.find(class).ok_or_else(|| {
        let available: Vec<String> = plugins
            .connectors()
            .iter()
            .map(|p| {
                format!(
                    "PluginDesc{{klass=class {}, name='{}', version='{}', encodedVersion={}, type=sink, typeName='sink', location='classpath'}}",
                    p.class_name(),
                    p.class_name(),
                    p.version(),
                    p.version()
                )
            })
            .collect();
        HerderError::BadRequest(format!(
            "Failed to find any class that implements Connector and which name matches {class}, available connectors are: {}",
            available.join(", ")
        ))
    })
}

/// Resolves config-provider placeholders; the [`Redactor`] puts them back into text built
/// from the resolved config.
pub(crate) fn resolve(
    worker: &WorkerConfig,
    config: &ConfigMap,
) -> Result<(ConfigMap, Redactor), HerderError> {
    ConfigProviders::from_worker(&worker.props)
        .and_then(|p| p.resolve_redacting(config))
        .map_err(HerderError::BadRequest)
}

/// Validates a config against its plugin, placeholders resolved.
pub(crate) fn validate_with(
    worker: &WorkerConfig,
    plugins: &Plugins,
    config: &ConfigMap,
) -> Result<Validation, HerderError> {
    let plugin = find_plugin(plugins, config)?;
    validate_plugin(worker, plugins, plugin.as_ref(), config)
}

/// Validates a config against `plugin` with its placeholders resolved, as Java validates the
/// transformed config; what the answer shows (values and error messages) names the
/// placeholders, never what they resolved to, and hides secret keys.
pub(crate) fn validate_plugin(
    worker: &WorkerConfig,
    plugins: &Plugins,
    plugin: &dyn SinkConnector,
    config: &ConfigMap,
) -> Result<Validation, HerderError> {
    let (resolved, redactor) = resolve(worker, config)?;
    let mut validation = validate(plugin, &resolved, plugins);
    client_overrides(worker.override_policy, &resolved, &mut validation);
    validation.hide_secrets(config, &resolved, &redactor);
    Ok(validation)
}

/// Every client override of `config`, with an error for each one `policy` refuses
/// (`connector.client.config.override.policy`, Java's `validateClientOverrides`).
fn client_overrides(policy: OverridePolicy, config: &ConfigMap, validation: &mut Validation) {
    for (key, value) in config {
        let Some(client_key) = OVERRIDE_PREFIXES
            .iter()
            .find_map(|prefix| key.strip_prefix(prefix))
        else {
            continue;
        };
        let errors = if policy.allows(client_key) {
            Vec::new()
        } else {
            vec![policy.refusal(client_key)]
        };
        validation.push_client_override(key, value, errors);
    }
}

fn not_stopped(name: &str) -> HerderError {
    HerderError::BadRequest(format!(
        "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
    ))
}

/// The committed offsets of a sink connector's consumer group.
pub(crate) async fn read_offsets(
    worker: &Arc<WorkerConfig>,
    group: String,
    config: ConfigMap,
) -> Result<Json, HerderError> {
    let worker = worker.clone();
    let offsets = tokio::task::spawn_blocking(move || offsets::committed(&worker, &group, &config))
        .await
        .map_err(|e| HerderError::Internal(e.to_string()))?
        .map_err(HerderError::Internal)?;
    Ok(offsets::to_json(&offsets))
}

/// Alters a stopped sink connector's group offsets.
pub(crate) async fn alter_offsets(
    worker: &Arc<WorkerConfig>,
    name: &str,
    group: String,
    stopped: bool,
    body: &Json,
) -> Result<Json, HerderError> {
    if !stopped {
        return Err(not_stopped(name));
    }
    let changes: Vec<PartitionOffset> =
        offsets::parse_request(body).map_err(HerderError::BadRequest)?;
    offsets::alter(worker, &group, &changes)
        .await
        .map_err(HerderError::Internal)?;
    Ok(json!({"message": "The offsets for this connector have been altered successfully"}))
}

/// Resets a stopped sink connector's group offsets (deletes the group).
pub(crate) async fn reset_offsets(
    worker: &Arc<WorkerConfig>,
    name: &str,
    group: String,
    stopped: bool,
) -> Result<Json, HerderError> {
    if !stopped {
        return Err(not_stopped(name));
    }
    offsets::delete_group(worker, &group)
        .await
        .map_err(HerderError::Internal)?;
    Ok(json!({"message": "The offsets for this connector have been reset successfully"}))
}

/// The task configs of a connector: the plugin's, each with `task.class` and the topics.
pub(crate) fn generate_task_configs(
    plugin: &dyn SinkConnector,
    config: &ConfigMap,
) -> Vec<ConfigMap> {
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

fn task_state(entry: &ConnectorEntry, i: usize, worker_id: &str) -> Json {
    let s = entry.tasks[i].status.get();
    let mut o = json!({"id": i, "state": s.state, "worker_id": worker_id, "version": entry.plugin.version()});
    if let Some(trace) = s.trace.filter(|t| !t.is_empty()) {
        o["trace"] = Json::String(trace);
    }
    o
}

pub(crate) fn not_found(name: &str) -> HerderError {
    HerderError::NotFound(format!("Connector {name} not found"))
}

fn connector_info(name: &str, entry: &ConnectorEntry) -> Json {
    let tasks: Vec<Json> = (0..entry.task_configs.len())
        .map(|i| json!({"connector": name, "task": i}))
        .collect();
    json!({"name": name, "config": entry.config, "tasks": tasks, "type": "sink"})
}

/// Java's `Map.toString()` form, used in a few error messages.
pub(crate) fn java_map(map: &ConfigMap) -> String {
    let inner: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_def::ConfigKey;
    use crate::plugin::SinkTask;

    struct Sink;

    impl SinkConnector for Sink {
        fn class_name(&self) -> &'static str {
            "test.Sink"
        }
        fn version(&self) -> &'static str {
            "1"
        }
        fn config_keys(&self) -> Vec<ConfigKey> {
            Vec::new()
        }
        fn validate(&self, _config: &ConfigMap) -> Vec<(String, String)> {
            Vec::new()
        }
        fn task_configs(&self, _config: &ConfigMap, _max: usize) -> Vec<ConfigMap> {
            Vec::new()
        }
        fn task_class(&self) -> &'static str {
            "test.Task"
        }
        fn create_task(&self) -> Box<dyn SinkTask> {
            unimplemented!("an invalid config creates no task")
        }
    }

    fn worker_with(extra: &[(&str, &str)]) -> WorkerConfig {
        let props = [
            (
                "key.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("listeners", "http://127.0.0.1:8083"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>();
        WorkerConfig::from_props(props).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_override_policy_decides_which_client_settings_a_connector_overrides() {
        let mut plugins = Plugins::default();
        plugins.register(Arc::new(Sink));
        let config: ConfigMap = [
            ("name", "x"),
            ("connector.class", "test.Sink"),
            ("topics", "t"),
            ("consumer.override.max.poll.records", "10"),
            ("consumer.override.security.protocol", "SSL"),
            ("producer.override.sasl.mechanism", "PLAIN"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let errors = |policy: &str| -> Vec<String> {
            let worker = if policy.is_empty() {
                worker_with(&[])
            } else {
                worker_with(&[("connector.client.config.override.policy", policy)])
            };
            validate_with(&worker, &plugins, &config)
                .unwrap_or_else(|e| panic!("{e}"))
                .errors()
                .map(str::to_string)
                .collect()
        };
        // Java's default is All.
        assert!(errors("").is_empty());
        assert!(errors("All").is_empty());
        assert_eq!(
            errors("Principal"),
            vec!["The 'Principal' policy does not allow 'max.poll.records' to be overridden in the connector configuration."]
        );
        assert_eq!(
            errors("org.apache.kafka.connect.connector.policy.NoneConnectorClientConfigOverridePolicy"),
            vec![
                "The 'None' policy does not allow 'max.poll.records' to be overridden in the connector configuration.",
                "The 'None' policy does not allow 'security.protocol' to be overridden in the connector configuration.",
                "The 'None' policy does not allow 'sasl.mechanism' to be overridden in the connector configuration.",
            ]
        );
        let bad = WorkerConfig::from_props(
            [
                ("key.converter", "a"),
                ("value.converter", "b"),
                ("connector.client.config.override.policy", "Some"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        assert!(bad.is_err());
    }

    #[test]
    fn a_rejected_config_quotes_its_placeholder_not_the_secret() {
        let dir = std::env::temp_dir().join(format!("floe-herder-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("creds.properties");
        std::fs::write(&file, "pw=s3cret\n").unwrap();
        let placeholder = format!("${{file:{}:pw}}", file.display());
        let worker = WorkerConfig::from_props(
            [
                (
                    "key.converter",
                    "org.apache.kafka.connect.storage.StringConverter",
                ),
                (
                    "value.converter",
                    "org.apache.kafka.connect.json.JsonConverter",
                ),
                ("listeners", "http://127.0.0.1:8083"),
                ("config.providers", "file"),
                (
                    "config.providers.file.class",
                    "org.apache.kafka.common.config.provider.FileConfigProvider",
                ),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut plugins = Plugins::default();
        plugins.register(Arc::new(Sink));
        let config: ConfigMap = [
            ("name", "x"),
            ("connector.class", "test.Sink"),
            ("topics", "t"),
            ("errors.tolerance", placeholder.as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let herder = Herder::new(Arc::new(worker), plugins);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Standalone create/update (POST /connectors, PUT /connectors/x/config).
        let err = runtime
            .block_on(herder.put_connector("x", config.clone(), true, None))
            .err()
            .unwrap_or_else(|| panic!("an invalid config was accepted"));
        let message = err.to_string();
        assert!(!message.contains("s3cret"), "{message}");
        assert!(
            message.contains(&format!(
                "Invalid value {placeholder} for configuration errors.tolerance: String must be one of: none, all"
            )),
            "{message}"
        );
        // The validate endpoint, and the distributed herder's create/update.
        let validation = herder
            .validate_config(&config)
            .unwrap_or_else(|e| panic!("{e}"));
        let answer = validation.to_json().to_string();
        assert!(!answer.contains("s3cret"), "{answer}");
        assert!(!validation.invalid_config_message().contains("s3cret"));
        assert!(answer.contains(&placeholder), "{answer}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
