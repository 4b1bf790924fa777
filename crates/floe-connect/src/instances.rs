//! Task instances: never two instances of one task in a worker.
//!
//! Every start of a task — the first one, a restart, a reconfiguration, a rebalance bringing
//! it back, a connector deleted and created again — goes through [`Instances::start`], which
//! puts the new instance behind the last one of the same task (`connector`, `task id`): the new
//! instance asks its predecessor to stop and waits until it has stopped (files closed or
//! abandoned, consumer closed, producers gone) before it creates a single client. Callers never
//! wait for a task to stop: a herder records the change, answers at once, and the new instance
//! shows RESTARTING until its predecessor is gone.
//!
//! ```text
//! start(t) ─► instance 1 running
//! start(t) ─► instance 2: RESTARTING ── stop(1), wait ──► 1 stopped ─► instance 2 running
//! start(t) ─► instance 3: RESTARTING ── stop(2), wait ──► 2 stopped (never ran) ─► 3 running
//! ```
//!
//! A predecessor that does not stop within the limit is abandoned (its future dropped, its
//! clients closed off the runtime, see `task::run`) with a log line, so a stuck task can never
//! block its successors, or the worker's shutdown, for ever.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::AbortHandle;
use tracing::warn;

use crate::status::{State, StatusCell};
use crate::task::{self, TaskCommand, TaskSpec};

/// A task's identity within a worker.
type TaskKey = (String, u32);

/// One instance of a task: its status, and the means to steer and await it.
#[derive(Clone)]
pub struct Instance {
    pub status: StatusCell,
    /// `<connector>-<task>`, for logs.
    name: Arc<str>,
    control: Arc<watch::Sender<TaskCommand>>,
    done: watch::Receiver<bool>,
    abort: AbortHandle,
}

impl Instance {
    /// An instance that never ran: its task could not be created (`trace` says why).
    pub fn failed(trace: String) -> Instance {
        let status = StatusCell::new(State::Failed);
        status.fail(trace);
        let (control, _) = watch::channel(TaskCommand::Shutdown);
        let (done_tx, done) = watch::channel(true);
        drop(done_tx);
        Instance {
            status,
            name: Arc::from("failed"),
            control: Arc::new(control),
            done,
            abort: tokio::spawn(async {}).abort_handle(),
        }
    }

    /// Tells the instance what to do; `Shutdown` asks it to stop and returns at once.
    pub fn command(&self, command: TaskCommand) {
        // Sending succeeds as long as the instance holds its receiver; a finished one does not.
        let _ = self.control.send(command);
    }

    /// Asks the instance to stop (returns at once).
    pub fn stop(&self) {
        self.command(TaskCommand::Shutdown);
    }

    /// Whether the instance has finished (stopped, failed and stopped, or been abandoned).
    pub fn finished(&self) -> bool {
        *self.done.borrow() || self.done.has_changed().is_err()
    }

    /// Waits until the instance has finished, at most `limit`; whether it did.
    pub async fn wait_finished(&self, limit: Duration) -> bool {
        let mut done = self.done.clone();
        tokio::time::timeout(limit, async move {
            loop {
                if *done.borrow_and_update() {
                    return;
                }
                // The sender is gone only when the instance's future was dropped (abandoned).
                if done.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .is_ok()
    }

    /// Stops the instance and waits up to `limit`; abandons it if it has not stopped by then.
    pub async fn stop_within(&self, limit: Duration) {
        self.stop();
        if !self.wait_finished(limit).await {
            warn!(
                task = %self.name,
                limit_ms = limit.as_millis() as u64,
                "task instance did not stop in time; abandoning it"
            );
            self.abort.abort();
        }
    }
}

/// The task instances of one worker, at most one running per task.
pub struct Instances {
    latest: Mutex<HashMap<TaskKey, Instance>>,
    /// How long a predecessor may take to stop before it is abandoned.
    stop_limit: Duration,
}

impl Instances {
    /// Instances whose predecessors get `stop_limit` to stop.
    pub fn new(stop_limit: Duration) -> Instances {
        Instances {
            latest: Mutex::new(HashMap::new()),
            stop_limit,
        }
    }

    /// Starts a new instance of `spec`'s task with `command` (Run or Pause) once the previous
    /// instance of that task, if any, has stopped. Returns at once.
    pub fn start(&self, spec: TaskSpec, command: TaskCommand) -> Instance {
        let key = (spec.connector.clone(), spec.task_id);
        let name: Arc<str> = format!("{}-{}", spec.connector, spec.task_id).into();
        let mut latest = match self.latest.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        latest.retain(|_, i| !i.finished());
        let previous = latest.get(&key).cloned();
        let status = StatusCell::new(if previous.is_some() {
            State::Restarting
        } else {
            State::Unassigned
        });
        let (control, control_rx) = watch::channel(command);
        let (done_tx, done) = watch::channel(false);
        let limit = self.stop_limit;
        let run_status = status.clone();
        let handle = tokio::spawn(async move {
            if let Some(previous) = previous {
                previous.stop_within(limit).await;
            }
            if *control_rx.borrow() == TaskCommand::Shutdown {
                // Stopped before it could start: nothing ran, nothing to close.
                run_status.set(State::Unassigned);
            } else {
                task::run(spec, run_status, control_rx).await;
            }
            let _ = done_tx.send(true);
        });
        let instance = Instance {
            status,
            name,
            control: Arc::new(control),
            done,
            abort: handle.abort_handle(),
        };
        latest.insert(key, instance.clone());
        instance
    }

    /// Waits until no instance of `connector`'s tasks is running, at most `limit`.
    pub async fn wait_connector_stopped(&self, connector: &str, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        for i in self.of_connector(Some(connector)) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !i.wait_finished(left).await {
                return false;
            }
        }
        true
    }

    /// The latest instances of `connector`'s tasks, or of every task.
    fn of_connector(&self, connector: Option<&str>) -> Vec<Instance> {
        let latest = match self.latest.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        latest
            .iter()
            .filter(|((c, _), _)| connector.is_none_or(|want| want == c))
            .map(|(_, i)| i.clone())
            .collect()
    }

    /// Asks every instance to stop and waits for them all, at most `limit` in all; returns
    /// whether they all stopped (those that did not are abandoned).
    pub async fn stop_all(&self, limit: Duration) -> bool {
        let all = self.of_connector(None);
        for i in &all {
            i.stop();
        }
        let deadline = tokio::time::Instant::now() + limit;
        let mut all_stopped = true;
        for i in all {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !i.wait_finished(left).await {
                warn!(task = %i.name, "task instance did not stop in time; abandoning it");
                i.abort.abort();
                all_stopped = false;
            }
        }
        all_stopped
    }
}
