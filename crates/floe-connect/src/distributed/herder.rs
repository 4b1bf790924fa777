//! The distributed herder: one worker of a cluster.
//!
//! * Every worker reads the config topic (connector configs, target states, task configs,
//!   restart requests) and the status topic into memory, and answers reads from them.
//! * The leader alone writes connector configs and task configs (requests that change
//!   connectors are forwarded to it by the REST layer), and keeps each connector's committed
//!   task configs in line with its config and target state — also after a leader change, so a
//!   half-written change heals.
//! * Each worker runs the units the leader assigned it and publishes their statuses; a
//!   reconcile loop brings what runs here in line with the assignment and the config topic.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value as Json};
use tokio::sync::{watch, Mutex, Notify};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::assignor::{AssignorState, Round};
use super::log::{ensure_topic, records, ConfigState, KafkaLog};
use super::membership::{GroupConfig, GroupListener, Membership};
use super::protocol::{Assignment, MemberMetadata, Unit};
use super::{internal_client_props, DistributedConfig};
use crate::api::{ConnectApi, Health, Route, HEALTH_CHECK_TIMEOUT};
use crate::config_def::Validation;
use crate::error::ConfigError;
use crate::herder::{
    alter_offsets, find_plugin, generate_task_configs, not_found, read_offsets, reset_offsets,
    validate_with, HerderError, RestartRequest, TargetState,
};
use crate::instances::{Instance, Instances};
use crate::kafka_security::Security;
use crate::loggers::Loggers;
use crate::plugin::{ConfigMap, Plugins};
use crate::status::State;
use crate::task::{self, TaskSpec};
use crate::worker_config::WorkerConfig;

const READ_LIMIT: Duration = Duration::from_secs(30);
const CONFLICT: &str =
    "Cannot complete request because of a conflicting operation (e.g. worker rebalance)";

/// A distributed worker failed to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Log(#[from] super::log::LogError),
}

#[derive(Default)]
struct Group {
    member_id: String,
    generation: i32,
    leader: bool,
    leader_url: Option<String>,
    assignment: Option<Assignment>,
    assignor: AssignorState,
    revoke_pending: bool,
    rejoin_requested_for: Option<i32>,
}

struct LocalTask {
    instance: Instance,
    config: ConfigMap,
    target: TargetState,
    published: Option<(State, Option<String>, i32)>,
}

#[derive(Default)]
struct Local {
    tasks: BTreeMap<(String, u32), LocalTask>,
    /// Connectors hosted here, with the state last published.
    connectors: BTreeMap<String, (State, i32)>,
    topics: BTreeMap<String, Arc<StdMutex<BTreeSet<String>>>>,
    confirmed_topics: BTreeSet<(String, String)>,
    restarts_done: BTreeMap<String, i64>,
    loggers_applied: BTreeMap<String, String>,
}

/// One worker of a Floe cluster.
pub struct DistributedHerder {
    worker: Arc<WorkerConfig>,
    plugins: Plugins,
    loggers: Loggers,
    settings: DistributedConfig,
    url: String,
    ready: AtomicBool,
    stopping: AtomicBool,
    cluster_id: StdMutex<Option<String>>,
    config: Arc<StdMutex<ConfigState>>,
    status: Arc<StdMutex<BTreeMap<String, Json>>>,
    config_log: KafkaLog,
    status_log: KafkaLog,
    group: StdMutex<Group>,
    local: Mutex<Local>,
    instances: Instances,
    /// The tasks this worker runs, as of the last reconcile pass (read without `local`, which
    /// the reconcile loop holds while it waits for revoked tasks to stop).
    running_here: StdMutex<BTreeSet<(String, u32)>>,
    /// Restarts of tasks running here, asked for over REST and applied by the next pass.
    pending_restarts: StdMutex<BTreeSet<(String, u32)>>,
    leader_writes: Mutex<()>,
    membership: StdMutex<Option<(Membership, JoinHandle<()>)>>,
    wake: Arc<Notify>,
    /// Passes the reconcile loop has completed (`GET /health` waits for the next one).
    passes: watch::Sender<u64>,
}

impl DistributedHerder {
    /// Creates the internal topics if needed, reads them, joins the group and starts the
    /// reconcile loop.
    pub async fn start(
        worker: Arc<WorkerConfig>,
        plugins: Plugins,
        loggers: Loggers,
    ) -> Result<Arc<DistributedHerder>, StartError> {
        let settings = DistributedConfig::from_worker(&worker)?;
        let client = internal_client_props(&worker);
        let mut admin = client.clone();
        admin.extend(worker.with_prefix("admin."));
        ensure_topic(
            &admin,
            &settings.config_topic,
            1,
            settings.config_replication,
        )
        .await?;
        ensure_topic(
            &admin,
            &settings.status_topic,
            settings.status_partitions,
            settings.status_replication,
        )
        .await?;
        ensure_topic(
            &admin,
            &settings.offset_topic,
            settings.offset_partitions,
            settings.offset_replication,
        )
        .await?;

        let wake = Arc::new(Notify::new());
        let config = Arc::new(StdMutex::new(ConfigState::default()));
        let config_log = {
            let config = config.clone();
            let wake = wake.clone();
            KafkaLog::start(
                &client,
                &settings.config_topic,
                Box::new(move |r| {
                    if let Ok(mut c) = config.lock() {
                        c.apply(r.offset, &r.key, r.value.as_ref());
                    }
                    wake.notify_one();
                }),
            )?
        };
        let status = Arc::new(StdMutex::new(BTreeMap::new()));
        let status_log = {
            let status = status.clone();
            KafkaLog::start(
                &client,
                &settings.status_topic,
                Box::new(move |r| {
                    if let Ok(mut s) = status.lock() {
                        match r.value {
                            Some(v) => s.insert(r.key, v),
                            None => s.remove(&r.key),
                        };
                    }
                }),
            )?
        };
        config_log.read_to_end(Duration::from_secs(60)).await?;
        status_log.read_to_end(Duration::from_secs(60)).await?;

        let mut local = Local::default();
        if let Ok(c) = config.lock() {
            // Restart requests made before this worker started are history.
            local.restarts_done = c
                .restarts
                .iter()
                .map(|(k, (o, _))| (k.clone(), *o))
                .collect();
        }
        let herder = Arc::new(DistributedHerder {
            url: worker.rest_url(),
            worker: worker.clone(),
            plugins,
            loggers,
            settings: settings.clone(),
            ready: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            cluster_id: StdMutex::new(None),
            config,
            status,
            config_log,
            status_log,
            group: StdMutex::new(Group::default()),
            local: Mutex::new(local),
            instances: Instances::new(worker.restart_stop_limit()),
            running_here: StdMutex::new(BTreeSet::new()),
            pending_restarts: StdMutex::new(BTreeSet::new()),
            leader_writes: Mutex::new(()),
            membership: StdMutex::new(None),
            wake,
            passes: watch::channel(0).0,
        });
        tokio::spawn(herder.clone().reconcile_loop());
        let group = GroupConfig {
            bootstrap_servers: worker
                .bootstrap_servers
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            group_id: settings.group_id.clone(),
            client_id: format!("{}-floe-{}", settings.group_id, worker.worker_id),
            session_timeout: settings.session_timeout,
            rebalance_timeout: settings.rebalance_timeout,
            heartbeat_interval: settings.heartbeat_interval,
            security: Security::from_props(&client).map_err(|e| ConfigError::Security {
                key: e.key,
                reason: e.reason,
            })?,
        };
        let listener: Arc<dyn GroupListener> = Arc::new(Listener(herder.clone()));
        let started = Membership::start(group, listener);
        if let Ok(mut m) = herder.membership.lock() {
            *m = Some(started);
        }
        info!(group = %settings.group_id, url = %herder.url, "distributed worker started");
        Ok(herder)
    }

    /// Records the Kafka cluster id shown by `GET /`.
    pub fn set_cluster_id(&self, id: Option<String>) {
        if let Ok(mut g) = self.cluster_id.lock() {
            *g = id;
        }
    }

    fn snapshot(&self) -> ConfigState {
        self.config.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn status_of(&self, key: &str) -> Option<Json> {
        self.status.lock().ok().and_then(|s| s.get(key).cloned())
    }

    fn generation(&self) -> i32 {
        self.group.lock().map(|g| g.generation).unwrap_or(-1)
    }

    fn is_leader(&self) -> bool {
        self.group.lock().map(|g| g.leader).unwrap_or(false)
    }

    fn request_rejoin(&self) {
        if let Ok(m) = self.membership.lock() {
            if let Some((m, _)) = m.as_ref() {
                m.request_rejoin();
            }
        }
    }

    fn internal(e: super::log::LogError) -> HerderError {
        HerderError::Internal(e.to_string())
    }

    /// Writes a config-topic record and waits until this worker has read it back.
    async fn write_config(&self, key: &str, value: Option<&Json>) -> Result<(), HerderError> {
        let (partition, offset) = self
            .config_log
            .send(key, value)
            .await
            .map_err(Self::internal)?;
        self.config_log
            .wait_for(partition, offset, READ_LIMIT)
            .await
            .map_err(Self::internal)
    }

    async fn write_status(&self, key: &str, value: Option<&Json>) {
        if let Err(e) = self.status_log.send(key, value).await {
            warn!(key, error = %e, "cannot write a status record");
        }
    }

    fn require_leader(&self) -> Result<(), HerderError> {
        if self.is_leader() {
            Ok(())
        } else {
            Err(HerderError::Conflict(CONFLICT.into()))
        }
    }

    /// Leader: makes a connector's committed task configs match its config and target state.
    async fn reconcile_tasks(&self, name: &str) -> Result<(), HerderError> {
        let _writing = self.leader_writes.lock().await;
        let snap = self.snapshot();
        let Some(config) = snap.connectors.get(name) else {
            return Ok(());
        };
        let plugin = find_plugin(&self.plugins, config)?;
        let desired = if snap.target(name) == TargetState::Stopped {
            Vec::new()
        } else {
            generate_task_configs(plugin.as_ref(), config)
        };
        let current = snap.tasks.get(name);
        if current.is_some_and(|c| same_tasks(c, &desired, plugin.generated_keys())) {
            return Ok(());
        }
        for (i, tc) in desired.iter().enumerate() {
            self.config_log
                .send(&format!("task-{name}-{i}"), Some(&records::task(tc)))
                .await
                .map_err(Self::internal)?;
        }
        self.write_config(
            &format!("commit-{name}"),
            Some(&records::commit(desired.len())),
        )
        .await?;
        info!(
            connector = name,
            tasks = desired.len(),
            "task configs written"
        );
        Ok(())
    }

    async fn reconcile_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.wake.notified() => {}
            }
            if self.stopping.load(Ordering::Acquire) {
                break;
            }
            self.reconcile().await;
            self.passes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// `GET /health`: starting until the first assignment; unhealthy when the worker has had
    /// no answer from its group coordinator for longer than a rebalance may take, or when
    /// the reconcile loop (the herder's tick) does not complete a pass within the health
    /// check timeout; healthy otherwise.
    async fn check_health(&self) -> Health {
        if !self.is_ready() {
            return Health::Starting;
        }
        let limit = self.settings.rebalance_timeout + self.settings.session_timeout;
        let out = self.membership.lock().ok().and_then(|m| {
            m.as_ref()
                .and_then(|(m, _)| m.out_of_group(&self.settings.group_id, limit))
        });
        if let Some(reason) = out {
            return Health::Unhealthy(reason);
        }
        let mut passes = self.passes.subscribe();
        passes.borrow_and_update();
        self.wake.notify_one();
        match tokio::time::timeout(HEALTH_CHECK_TIMEOUT, passes.changed()).await {
            Ok(Ok(())) => Health::Healthy,
            _ => Health::Unhealthy(format!(
                "Worker was unable to handle this request and may be unable to handle other requests: the herder has not completed a pass in {} s",
                HEALTH_CHECK_TIMEOUT.as_secs()
            )),
        }
    }

    async fn reconcile(&self) {
        let snap = self.snapshot();
        if self.is_leader() {
            for name in snap.connectors.keys() {
                if let Err(e) = self.reconcile_tasks(name).await {
                    warn!(connector = %name, error = %e, "cannot write task configs");
                }
            }
        }
        let snap = self.snapshot();
        let (assignment, generation) = match self.group.lock() {
            Ok(g) => (g.assignment.clone(), g.generation),
            Err(_) => return,
        };
        let mut local = self.local.lock().await;
        self.apply_cluster_loggers(&snap, &mut local);
        let Some(assignment) = assignment.filter(|a| snap.offset >= a.config_offset) else {
            self.publish_statuses(&mut local, generation).await;
            return;
        };
        self.stop_unwanted(&snap, &assignment, &mut local, generation)
            .await;
        // Restarted tasks are started again in this same pass (each new instance runs once
        // the old one has stopped): a task restart forwarded here meanwhile finds them.
        self.process_restarts(&snap, &mut local).await;
        self.start_assigned(&snap, &assignment, &mut local);
        for ((c, _), t) in local.tasks.iter_mut() {
            let want = snap.target(c);
            if t.target != want {
                t.instance.command(want.command());
                t.target = want;
            }
        }
        if let Ok(mut running) = self.running_here.lock() {
            *running = local.tasks.keys().cloned().collect();
        }
        self.publish_connectors(&snap, &assignment, &mut local, generation)
            .await;
        self.publish_statuses(&mut local, generation).await;
        self.publish_topics(&mut local).await;
        drop(local);

        let rejoin = match self.group.lock() {
            Ok(mut g) => {
                let revoked = std::mem::take(&mut g.revoke_pending);
                let changed = g.leader
                    && units_of(&snap) != g.assignor.known_units()
                    && g.rejoin_requested_for != Some(g.generation);
                if changed {
                    g.rejoin_requested_for = Some(g.generation);
                }
                revoked || changed
            }
            Err(_) => false,
        };
        if rejoin {
            self.request_rejoin();
        }
    }

    fn apply_cluster_loggers(&self, snap: &ConfigState, local: &mut Local) {
        for (ns, level) in &snap.loggers {
            if local.loggers_applied.get(ns) != Some(level) {
                if let Err(e) = self.loggers.set(ns, level) {
                    warn!(logger = %ns, error = ?e, "cannot apply a cluster log level");
                }
                local.loggers_applied.insert(ns.clone(), level.clone());
            }
        }
    }

    /// Stops local tasks that are no longer assigned here, whose connector is gone or stopped,
    /// or whose config changed.
    async fn stop_unwanted(
        &self,
        snap: &ConfigState,
        assignment: &Assignment,
        local: &mut Local,
        generation: i32,
    ) {
        let unwanted: Vec<(String, u32)> = local
            .tasks
            .iter()
            .filter(|((c, t), lt)| {
                !assignment.assigned.contains(&Unit::task(c, *t))
                    || snap.target(c) == TargetState::Stopped
                    || snap.tasks.get(c).and_then(|v| v.get(*t as usize)) != Some(&lt.config)
            })
            .map(|(k, _)| k.clone())
            .collect();
        let stopping: Vec<((String, u32), Instance)> = unwanted
            .into_iter()
            .filter_map(|k| local.tasks.remove(&k).map(|lt| (k, lt.instance)))
            .collect();
        for (_, i) in &stopping {
            i.stop();
        }
        for ((c, t), i) in stopping {
            // A task that may now be assigned elsewhere is released only once it has stopped
            // here: it never runs on two workers at once. One that stays here (a new config)
            // is replaced by an instance that waits for this one itself.
            if !assignment.assigned.contains(&Unit::task(&c, t)) {
                i.stop_within(self.worker.restart_stop_limit()).await;
            }
            let key = format!("status-task-{c}-{t}");
            let gone = !snap.connectors.contains_key(&c)
                || snap.tasks.get(&c).is_none_or(|v| v.len() <= t as usize);
            if gone {
                self.write_status(&key, None).await;
            } else {
                let v = self.status_value(State::Unassigned, None, generation);
                self.write_status(&key, Some(&v)).await;
            }
        }
        let connectors: Vec<String> = local
            .connectors
            .keys()
            .filter(|c| {
                !assignment.assigned.contains(&Unit::connector(c))
                    || !snap.connectors.contains_key(*c)
            })
            .cloned()
            .collect();
        for c in connectors {
            local.connectors.remove(&c);
            let key = format!("status-connector-{c}");
            if snap.connectors.contains_key(&c) {
                let v = self.status_value(State::Unassigned, None, generation);
                self.write_status(&key, Some(&v)).await;
            } else {
                self.write_status(&key, None).await;
                local.topics.remove(&c);
            }
        }
    }

    fn start_assigned(&self, snap: &ConfigState, assignment: &Assignment, local: &mut Local) {
        for u in &assignment.assigned {
            let Some(t) = u.task else { continue };
            let c = &u.connector;
            if local.tasks.contains_key(&(c.clone(), t)) || snap.target(c) == TargetState::Stopped {
                continue;
            }
            let (Some(conn_config), Some(task_config)) = (
                snap.connectors.get(c),
                snap.tasks.get(c).and_then(|v| v.get(t as usize)),
            ) else {
                continue;
            };
            let target = snap.target(c);
            let instance = match find_plugin(&self.plugins, conn_config) {
                Ok(plugin) => {
                    let topics = local.topics.entry(c.clone()).or_default().clone();
                    let spec = TaskSpec {
                        connector: c.clone(),
                        task_id: t,
                        config: task_config.clone(),
                        worker: self.worker.clone(),
                        plugin,
                        active_topics: topics,
                    };
                    info!(connector = %c, task = t, "task started here");
                    self.instances.start(spec, target.command())
                }
                Err(e) => Instance::failed(e.to_string()),
            };
            local.tasks.insert(
                (c.clone(), t),
                LocalTask {
                    instance,
                    config: task_config.clone(),
                    target,
                    published: None,
                },
            );
        }
    }

    async fn process_restarts(&self, snap: &ConfigState, local: &mut Local) {
        let asked: Vec<(String, u32)> = self
            .pending_restarts
            .lock()
            .map(|mut p| std::mem::take(&mut *p).into_iter().collect())
            .unwrap_or_default();
        for (c, t) in asked {
            if let Some(lt) = local.tasks.remove(&(c.clone(), t)) {
                // start_assigned, next in the same pass, starts the new instance.
                lt.instance.stop();
            }
        }
        for (c, (offset, request)) in &snap.restarts {
            if local
                .restarts_done
                .get(c)
                .is_some_and(|done| done >= offset)
            {
                continue;
            }
            local.restarts_done.insert(c.clone(), *offset);
            if !request.include_tasks {
                continue;
            }
            let ids: Vec<u32> = local
                .tasks
                .iter()
                .filter(|((conn, _), lt)| {
                    conn == c
                        && (!request.only_failed || lt.instance.status.get().state == State::Failed)
                })
                .map(|((_, t), _)| *t)
                .collect();
            for t in ids {
                if let Some(lt) = local.tasks.remove(&(c.clone(), t)) {
                    let v = self.status_value(State::Restarting, None, self.generation());
                    self.write_status(&format!("status-task-{c}-{t}"), Some(&v))
                        .await;
                    lt.instance.stop();
                }
            }
            // start_assigned, next in the same pass, brings them back.
        }
    }

    async fn publish_connectors(
        &self,
        snap: &ConfigState,
        assignment: &Assignment,
        local: &mut Local,
        generation: i32,
    ) {
        for u in assignment.assigned.iter().filter(|u| u.task.is_none()) {
            let c = &u.connector;
            if !snap.connectors.contains_key(c) {
                continue;
            }
            let state = match snap.target(c) {
                TargetState::Started => State::Running,
                TargetState::Paused => State::Paused,
                TargetState::Stopped => State::Stopped,
            };
            if local.connectors.get(c) == Some(&(state, generation)) {
                continue;
            }
            let v = self.status_value(state, None, generation);
            self.write_status(&format!("status-connector-{c}"), Some(&v))
                .await;
            local.connectors.insert(c.clone(), (state, generation));
        }
    }

    async fn publish_statuses(&self, local: &mut Local, generation: i32) {
        let mut writes = Vec::new();
        for ((c, t), lt) in local.tasks.iter_mut() {
            let s = lt.instance.status.get();
            let now = (s.state, s.trace.clone(), generation);
            if lt.published.as_ref() != Some(&now) {
                writes.push((
                    format!("status-task-{c}-{t}"),
                    self.status_value(s.state, s.trace.as_deref(), generation),
                ));
                lt.published = Some(now);
            }
        }
        for (key, value) in writes {
            self.write_status(&key, Some(&value)).await;
        }
    }

    async fn publish_topics(&self, local: &mut Local) {
        let mut writes = Vec::new();
        let now_ms = chrono::Utc::now().timestamp_millis();
        for (c, set) in &local.topics {
            let topics: Vec<String> = set
                .lock()
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            for t in topics {
                let key = format!("status-topic-{t}:connector-{c}");
                let pair = (c.clone(), t.clone());
                if self.status_of(&key).is_some() {
                    local.confirmed_topics.insert(pair);
                } else if local.confirmed_topics.remove(&pair) {
                    // Reset: forget it; the task records it again on its next record.
                    if let Ok(mut s) = set.lock() {
                        s.remove(&t);
                    }
                } else {
                    writes.push((key, records::topic(&t, c, now_ms)));
                }
            }
        }
        for (key, value) in writes {
            self.write_status(&key, Some(&value)).await;
        }
    }

    fn status_value(&self, state: State, trace: Option<&str>, generation: i32) -> Json {
        let state = serde_json::to_value(state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        records::status(&state, trace, &self.worker.worker_id, generation)
    }

    /// Stops everything this worker runs, marks it UNASSIGNED (so the leader hands it to
    /// others at once) and leaves the group.
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        let generation = self.generation();
        // First, without the reconcile loop's lock (it may be waiting for a task to stop).
        self.instances
            .stop_all(self.worker.task_shutdown_timeout)
            .await;
        let mut local = self.local.lock().await;
        let tasks = std::mem::take(&mut local.tasks);
        let released = self.status_value(State::Unassigned, None, generation);
        for (c, t) in tasks.into_keys() {
            self.write_status(&format!("status-task-{c}-{t}"), Some(&released))
                .await;
        }
        for c in std::mem::take(&mut local.connectors).into_keys() {
            self.write_status(&format!("status-connector-{c}"), Some(&released))
                .await;
        }
        self.status_log.flush();
        let membership = self.membership.lock().ok().and_then(|mut m| m.take());
        if let Some((m, handle)) = membership {
            m.leave();
            let _ = tokio::time::timeout(Duration::from_secs(15), handle).await;
        }
    }

    /// Applies revocations before offering metadata: a unit is never reported while it is
    /// still being stopped, so it never runs on two workers at once.
    async fn stop_revoked(&self) {
        let assignment = self.group.lock().ok().and_then(|g| g.assignment.clone());
        let Some(a) = assignment else { return };
        let mut local = self.local.lock().await;
        let revoked: Vec<(String, u32)> = local
            .tasks
            .keys()
            .filter(|(c, t)| !a.assigned.contains(&Unit::task(c, *t)))
            .cloned()
            .collect();
        let stopping: Vec<Instance> = revoked
            .iter()
            .filter_map(|k| local.tasks.remove(k).map(|lt| lt.instance))
            .collect();
        for i in &stopping {
            i.stop();
        }
        for i in stopping {
            i.stop_within(self.worker.restart_stop_limit()).await;
        }
    }

    fn runs_here(&self, key: &(String, u32)) -> bool {
        self.running_here
            .lock()
            .map(|r| r.contains(key))
            .unwrap_or(false)
    }

    fn task_count(snap: &ConfigState, name: &str) -> usize {
        snap.tasks.get(name).map(Vec::len).unwrap_or(0)
    }

    fn plugin_version(&self, config: Option<&ConfigMap>) -> Json {
        config
            .and_then(|c| find_plugin(&self.plugins, c).ok())
            .map(|p| json!(p.version()))
            .unwrap_or(Json::Null)
    }

    fn state_json(&self, status: &Json, id: Option<usize>, version: &Json) -> Json {
        let mut o = serde_json::Map::new();
        if let Some(id) = id {
            o.insert("id".into(), json!(id));
        }
        o.insert(
            "state".into(),
            status.get("state").cloned().unwrap_or(json!("UNASSIGNED")),
        );
        o.insert(
            "worker_id".into(),
            status.get("worker_id").cloned().unwrap_or(Json::Null),
        );
        o.insert("version".into(), version.clone());
        if let Some(trace) = status
            .get("trace")
            .and_then(Json::as_str)
            .filter(|t| !t.is_empty())
        {
            o.insert("trace".into(), json!(trace));
        }
        Json::Object(o)
    }

    /// Waits until no task of `name` has a status left (they stopped), up to a limit.
    async fn await_tasks_gone(&self, name: &str) -> bool {
        let prefix = format!("status-task-{name}-");
        let deadline = tokio::time::Instant::now() + READ_LIMIT;
        loop {
            let left = self
                .status
                .lock()
                .map(|s| {
                    s.iter().any(|(k, v)| {
                        k.starts_with(&prefix)
                            && k[prefix.len()..].parse::<u32>().is_ok()
                            && v.get("state").and_then(Json::as_str) != Some("UNASSIGNED")
                    })
                })
                .unwrap_or(true);
            if !left {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn offsets_target(&self, name: &str) -> Result<(String, ConfigMap, bool), HerderError> {
        let snap = self.snapshot();
        let config = snap
            .connectors
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))?;
        let stopped =
            snap.target(name) == TargetState::Stopped && Self::task_count(&snap, name) == 0;
        Ok((task::group_id(name, &config), config, stopped))
    }
}

/// Whether committed task configs equal the generated ones, ignoring per-generation keys.
fn same_tasks(current: &[ConfigMap], desired: &[ConfigMap], generated: &[&str]) -> bool {
    let strip = |c: &ConfigMap| -> ConfigMap {
        c.iter()
            .filter(|(k, _)| !generated.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    current.len() == desired.len()
        && current
            .iter()
            .zip(desired)
            .all(|(a, b)| strip(a) == strip(b))
}

/// Every unit the config topic asks for.
fn units_of(snap: &ConfigState) -> BTreeSet<Unit> {
    let mut units = BTreeSet::new();
    for name in snap.connectors.keys() {
        units.insert(Unit::connector(name));
        for t in 0..DistributedHerder::task_count(snap, name) {
            units.insert(Unit::task(name, t as u32));
        }
    }
    units
}

struct Listener(Arc<DistributedHerder>);

#[async_trait]
impl GroupListener for Listener {
    async fn metadata(&self) -> MemberMetadata {
        let h = &self.0;
        h.stop_revoked().await;
        let previous = h.group.lock().ok().and_then(|g| g.assignment.clone());
        MemberMetadata {
            url: h.url.clone(),
            config_offset: h.config.lock().map(|c| c.offset).unwrap_or(0),
            previous,
        }
    }

    async fn assign(
        &self,
        leader_id: &str,
        _generation: i32,
        members: BTreeMap<String, MemberMetadata>,
    ) -> BTreeMap<String, Assignment> {
        let h = &self.0;
        if let Err(e) = h.config_log.read_to_end(Duration::from_secs(10)).await {
            warn!(error = %e, "assigning without having read the whole config topic");
        }
        let _ = h.status_log.read_to_end(Duration::from_secs(5)).await;
        let snap = h.snapshot();
        let units = units_of(&snap);
        let released: BTreeSet<Unit> = {
            let status = h.status.lock().map(|s| s.clone()).unwrap_or_default();
            units
                .iter()
                .filter(|u| {
                    let key = match u.task {
                        Some(t) => format!("status-task-{}-{t}", u.connector),
                        None => format!("status-connector-{}", u.connector),
                    };
                    status
                        .get(&key)
                        .and_then(|v| v.get("state"))
                        .and_then(Json::as_str)
                        == Some("UNASSIGNED")
                })
                .cloned()
                .collect()
        };
        let owned: BTreeMap<String, BTreeSet<Unit>> = members
            .iter()
            .map(|(m, meta)| {
                (
                    m.clone(),
                    meta.previous
                        .as_ref()
                        .map(|a| a.assigned.clone())
                        .unwrap_or_default(),
                )
            })
            .collect();
        let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
        let plan = match h.group.lock() {
            Ok(mut g) => g.assignor.assign(&Round {
                members: &owned,
                units: &units,
                released: &released,
                now_ms,
                max_delay_ms: h.settings.max_delay.as_millis() as u64,
            }),
            Err(_) => Default::default(),
        };
        info!(
            members = members.len(),
            units = units.len(),
            delay_ms = plan.delay_ms,
            "assigned connectors and tasks"
        );
        plan.shares
            .into_iter()
            .map(|(m, share)| {
                (
                    m,
                    Assignment {
                        error: 0,
                        leader: leader_id.to_string(),
                        leader_url: h.url.clone(),
                        config_offset: snap.offset,
                        assigned: share.assigned,
                        revoked: share.revoked,
                        delay: plan.delay_ms.min(i32::MAX as u64) as i32,
                    },
                )
            })
            .collect()
    }

    async fn assigned(&self, member_id: &str, generation: i32, assignment: Assignment) {
        let h = &self.0;
        let leader = assignment.leader == member_id;
        let delay = assignment.delay;
        info!(
            generation,
            leader,
            units = assignment.assigned.len(),
            revoked = assignment.revoked.len(),
            "assignment received"
        );
        if let Ok(mut g) = h.group.lock() {
            g.member_id = member_id.to_string();
            g.generation = generation;
            g.leader = leader;
            g.leader_url = Some(assignment.leader_url.clone());
            g.revoke_pending = !assignment.revoked.is_empty();
            g.assignment = Some(assignment);
        }
        if leader && delay > 0 {
            let h = h.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay as u64)).await;
                if h.generation() == generation {
                    h.request_rejoin();
                }
            });
        }
        h.ready.store(true, Ordering::Release);
        h.wake.notify_one();
    }
}

#[async_trait]
impl ConnectApi for DistributedHerder {
    fn worker(&self) -> &WorkerConfig {
        &self.worker
    }
    fn plugins(&self) -> &Plugins {
        &self.plugins
    }
    fn loggers(&self) -> &Loggers {
        &self.loggers
    }
    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
    async fn health(&self) -> Health {
        self.check_health().await
    }
    fn is_rebalancing(&self) -> bool {
        !self.is_ready()
            || self
                .membership
                .lock()
                .ok()
                .and_then(|m| m.as_ref().map(|(m, _)| m.is_joining()))
                .unwrap_or(true)
    }
    fn cluster_id(&self) -> Option<String> {
        self.cluster_id.lock().ok().and_then(|g| g.clone())
    }
    fn route(&self) -> Route {
        match self.group.lock() {
            Ok(g) if g.leader => Route::Here,
            Ok(g) => match &g.leader_url {
                Some(url) => Route::Leader(url.clone()),
                None => Route::NoLeader,
            },
            Err(_) => Route::NoLeader,
        }
    }

    async fn set_cluster_logger(&self, namespace: &str, level: &str) -> Result<(), HerderError> {
        self.write_config(
            &format!("logger-cluster-{namespace}"),
            Some(&json!({ "level": level })),
        )
        .await
    }

    async fn runs_task(&self, name: &str, task: usize) -> bool {
        self.runs_here(&(name.to_string(), task as u32))
    }

    async fn connector_names(&self) -> Vec<String> {
        self.snapshot().connectors.keys().cloned().collect()
    }

    fn validate_config(&self, config: &ConfigMap) -> Result<Validation, HerderError> {
        validate_with(&self.worker, &self.plugins, config)
    }

    async fn put_connector(
        &self,
        name: &str,
        config: ConfigMap,
        allow_replace: bool,
        initial_state: Option<TargetState>,
    ) -> Result<(Json, bool), HerderError> {
        self.require_leader()?;
        let validation = validate_with(&self.worker, &self.plugins, &config)?;
        if validation.error_count() > 0 {
            return Err(HerderError::BadRequest(validation.invalid_config_message()));
        }
        let exists = self.snapshot().connectors.contains_key(name);
        if exists && !allow_replace {
            return Err(HerderError::AlreadyExists(format!(
                "Connector {name} already exists"
            )));
        }
        if !exists {
            if let Some(state) = initial_state {
                self.write_config(
                    &format!("target-state-{name}"),
                    Some(&records::target_state(state)),
                )
                .await?;
            }
        }
        self.write_config(
            &format!("connector-{name}"),
            Some(&records::connector(&config)),
        )
        .await?;
        self.reconcile_tasks(name).await?;
        self.wake.notify_one();
        info!(connector = name, created = !exists, "connector configured");
        Ok((self.connector_info(name).await?, !exists))
    }

    async fn delete_connector(&self, name: &str) -> Result<(), HerderError> {
        self.require_leader()?;
        if !self.snapshot().connectors.contains_key(name) {
            return Err(not_found(name));
        }
        self.write_config(&format!("connector-{name}"), None)
            .await?;
        self.write_config(&format!("target-state-{name}"), None)
            .await?;
        self.wake.notify_one();
        info!(connector = name, "connector deleted");
        Ok(())
    }

    async fn set_target_state(&self, name: &str, target: TargetState) -> Result<(), HerderError> {
        if !self.snapshot().connectors.contains_key(name) {
            return Err(not_found(name));
        }
        self.write_config(
            &format!("target-state-{name}"),
            Some(&records::target_state(target)),
        )
        .await?;
        if self.is_leader() {
            self.reconcile_tasks(name).await?;
        }
        self.wake.notify_one();
        info!(connector = name, ?target, "target state changed");
        Ok(())
    }

    async fn restart_task(&self, name: &str, task_id: usize) -> Result<(), HerderError> {
        let snap = self.snapshot();
        if !snap.connectors.contains_key(name) {
            return Err(not_found(name));
        }
        if task_id >= Self::task_count(&snap, name) {
            return Err(HerderError::NotFound(format!(
                "Unknown task: {name}-{task_id}"
            )));
        }
        let key = (name.to_string(), task_id as u32);
        if self.runs_here(&key) {
            // Applied by the next reconcile pass, which starts the new instance at once (it
            // runs when the old one has stopped): the answer does not wait for either.
            if let Ok(mut p) = self.pending_restarts.lock() {
                p.insert(key);
            }
            self.wake.notify_one();
            return Ok(());
        }
        let owner = self
            .status_of(&format!("status-task-{name}-{task_id}"))
            .and_then(|v| {
                v.get("worker_id")
                    .and_then(Json::as_str)
                    .map(str::to_string)
            })
            .filter(|w| *w != self.worker.worker_id)
            .ok_or_else(|| HerderError::Conflict(CONFLICT.into()))?;
        let url = format!(
            "{}connectors/{}/tasks/{task_id}/restart?forward=false",
            self.worker.peer_url(&owner),
            crate::rest::encode_segment(name)
        );
        let answer = crate::rest_security::forwarded(crate::rest::http().post(&url))
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    // The owner has gone (stopped, or killed) and the group has not yet
                    // moved its tasks: the same answer as during any rebalance.
                    HerderError::Conflict(CONFLICT.into())
                } else {
                    HerderError::Internal(format!("Error trying to forward REST request: {e}"))
                }
            })?;
        if answer.status().is_success() {
            return Ok(());
        }
        let code = answer.status().as_u16();
        let body: Json = answer.json().await.unwrap_or(Json::Null);
        let message = body
            .get("message")
            .and_then(Json::as_str)
            .unwrap_or(CONFLICT)
            .to_string();
        Err(match code {
            404 => HerderError::NotFound(message),
            409 => HerderError::Conflict(message),
            400 => HerderError::BadRequest(message),
            _ => HerderError::Internal(message),
        })
    }

    async fn restart_connector(
        &self,
        name: &str,
        request: RestartRequest,
    ) -> Result<Option<Json>, HerderError> {
        if !self.snapshot().connectors.contains_key(name) {
            return Err(not_found(name));
        }
        if !request.include_tasks && !request.only_failed {
            // The connector object holds no state here; as in Java the answer is 204.
            return Ok(None);
        }
        let mut status = self.connector_status(name).await?;
        if request.include_tasks {
            if let Some(tasks) = status["tasks"].as_array_mut() {
                for t in tasks.iter_mut() {
                    if !request.only_failed || t["state"] == json!("FAILED") {
                        t["state"] = json!("RESTARTING");
                        if let Some(o) = t.as_object_mut() {
                            o.remove("trace");
                        }
                    }
                }
            }
        }
        if !request.only_failed {
            status["connector"]["state"] = json!("RESTARTING");
        }
        self.write_config(
            &format!("restart-connector-{name}"),
            Some(&records::restart(request)),
        )
        .await?;
        self.wake.notify_one();
        Ok(Some(status))
    }

    async fn connector_info(&self, name: &str) -> Result<Json, HerderError> {
        let snap = self.snapshot();
        let config = snap.connectors.get(name).ok_or_else(|| not_found(name))?;
        let tasks: Vec<Json> = (0..Self::task_count(&snap, name))
            .map(|i| json!({"connector": name, "task": i}))
            .collect();
        Ok(json!({"name": name, "config": config, "tasks": tasks, "type": "sink"}))
    }

    async fn connector_config(&self, name: &str) -> Result<ConfigMap, HerderError> {
        self.snapshot()
            .connectors
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))
    }

    async fn connector_status(&self, name: &str) -> Result<Json, HerderError> {
        let snap = self.snapshot();
        let missing = || HerderError::NotFound(format!("No status found for connector {name}"));
        let config = snap.connectors.get(name).ok_or_else(missing)?;
        let connector = self
            .status_of(&format!("status-connector-{name}"))
            .ok_or_else(missing)?;
        let version = self.plugin_version(Some(config));
        let tasks: Vec<Json> = (0..Self::task_count(&snap, name))
            .filter_map(|i| {
                self.status_of(&format!("status-task-{name}-{i}"))
                    .map(|s| self.state_json(&s, Some(i), &version))
            })
            .collect();
        Ok(json!({
            "name": name,
            "connector": self.state_json(&connector, None, &version),
            "tasks": tasks,
            "type": "sink",
        }))
    }

    async fn task_status(&self, name: &str, task_id: usize) -> Result<Json, HerderError> {
        let snap = self.snapshot();
        let missing =
            || HerderError::NotFound(format!("No status found for task {name}-{task_id}"));
        let config = snap.connectors.get(name).ok_or_else(missing)?;
        if task_id >= Self::task_count(&snap, name) {
            return Err(missing());
        }
        let s = self
            .status_of(&format!("status-task-{name}-{task_id}"))
            .ok_or_else(missing)?;
        Ok(self.state_json(&s, Some(task_id), &self.plugin_version(Some(config))))
    }

    async fn connector_tasks(&self, name: &str) -> Result<Json, HerderError> {
        let snap = self.snapshot();
        if !snap.connectors.contains_key(name) {
            return Err(not_found(name));
        }
        let tasks = snap.tasks.get(name).cloned().unwrap_or_default();
        Ok(Json::Array(
            tasks
                .iter()
                .enumerate()
                .map(|(i, c)| json!({"id": {"connector": name, "task": i}, "config": c}))
                .collect(),
        ))
    }

    async fn tasks_config(&self, name: &str) -> Result<Json, HerderError> {
        let snap = self.snapshot();
        if !snap.connectors.contains_key(name) {
            return Err(not_found(name));
        }
        let mut out = serde_json::Map::new();
        for (i, c) in snap.tasks.get(name).into_iter().flatten().enumerate() {
            out.insert(format!("{name}-{i}"), json!(c));
        }
        Ok(Json::Object(out))
    }

    async fn active_topics(&self, name: &str) -> Result<Json, HerderError> {
        if !self.snapshot().connectors.contains_key(name) {
            return Err(not_found(name));
        }
        let suffix = format!(":connector-{name}");
        let topics: BTreeSet<String> = self
            .status
            .lock()
            .map(|s| {
                s.keys()
                    .filter_map(|k| k.strip_prefix("status-topic-")?.strip_suffix(&suffix))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(json!({ name: {"topics": topics} }))
    }

    async fn reset_active_topics(&self, name: &str) -> Result<(), HerderError> {
        if !self.snapshot().connectors.contains_key(name) {
            return Err(not_found(name));
        }
        let suffix = format!(":connector-{name}");
        let keys: Vec<String> = self
            .status
            .lock()
            .map(|s| {
                s.keys()
                    .filter(|k| k.starts_with("status-topic-") && k.ends_with(&suffix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for k in keys {
            self.write_status(&k, None).await;
        }
        Ok(())
    }

    async fn get_offsets(&self, name: &str) -> Result<Json, HerderError> {
        let (group, config, _) = self.offsets_target(name).await?;
        read_offsets(&self.worker, group, config).await
    }

    async fn alter_offsets(&self, name: &str, body: &Json) -> Result<Json, HerderError> {
        let (group, _, stopped) = self.offsets_target(name).await?;
        if stopped && !self.await_tasks_gone(name).await {
            return Err(HerderError::Conflict(CONFLICT.into()));
        }
        alter_offsets(&self.worker, name, group, stopped, body).await
    }

    async fn reset_offsets(&self, name: &str) -> Result<Json, HerderError> {
        let (group, _, stopped) = self.offsets_target(name).await?;
        if stopped && !self.await_tasks_gone(name).await {
            return Err(HerderError::Conflict(CONFLICT.into()));
        }
        reset_offsets(&self.worker, name, group, stopped).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> ConfigMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn task_configs_compare_without_generated_keys() {
        let a = vec![cfg(&[("topics", "t"), ("suffix", "-txn-1-0")])];
        let b = vec![cfg(&[("topics", "t"), ("suffix", "-txn-2-0")])];
        assert!(same_tasks(&a, &b, &["suffix"]));
        assert!(!same_tasks(&a, &b, &[]));
        let c = vec![cfg(&[("topics", "u"), ("suffix", "-txn-2-0")])];
        assert!(!same_tasks(&a, &c, &["suffix"]));
        assert!(!same_tasks(&a, &[], &["suffix"]));
    }

    #[test]
    fn units_cover_connectors_and_committed_tasks() {
        let mut s = ConfigState::default();
        s.apply(0, "connector-c", Some(&records::connector(&cfg(&[]))));
        s.apply(1, "task-c-0", Some(&records::task(&cfg(&[]))));
        s.apply(2, "task-c-1", Some(&records::task(&cfg(&[]))));
        s.apply(3, "commit-c", Some(&records::commit(2)));
        s.apply(4, "connector-d", Some(&records::connector(&cfg(&[]))));
        let units: Vec<String> = units_of(&s).iter().map(|u| u.to_string()).collect();
        assert_eq!(units, vec!["c", "c-0", "c-1", "d"]);
    }
}
