//! Connector and task states as the REST API shows them.

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// `AbstractStatus.State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Unassigned,
    Running,
    Paused,
    Failed,
    Restarting,
    Stopped,
}

/// A state plus the failure trace, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub trace: Option<String>,
}

/// A task's status, shared between the task runner and the herder.
#[derive(Debug, Clone)]
pub struct StatusCell(Arc<Mutex<Status>>);

impl StatusCell {
    /// A new cell in `state`.
    pub fn new(state: State) -> StatusCell {
        StatusCell(Arc::new(Mutex::new(Status { state, trace: None })))
    }

    /// The current status.
    pub fn get(&self) -> Status {
        match self.0.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Sets the state, clearing any trace.
    pub fn set(&self, state: State) {
        self.replace(Status { state, trace: None });
    }

    /// Marks the task failed with `trace`.
    pub fn fail(&self, trace: String) {
        self.replace(Status {
            state: State::Failed,
            trace: Some(trace),
        });
    }

    fn replace(&self, status: Status) {
        match self.0.lock() {
            Ok(mut g) => *g = status,
            Err(poisoned) => *poisoned.into_inner() = status,
        }
    }
}
