//! Errors of the worker runtime.

/// A worker or connector configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Missing required configuration \"{key}\" which has no default value.")]
    Missing { key: String },
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
    /// A setting whose value may be secret: only the key is named.
    #[error("Invalid configuration {key}: {reason}")]
    Security { key: String, reason: String },
    #[error("cannot parse connector file {path}: {reason}")]
    ConnectorFile { path: String, reason: String },
}

impl ConfigError {
    /// The same error with every value config providers resolved shown as its placeholder.
    pub fn redacted(self, redactor: &crate::config_provider::Redactor) -> ConfigError {
        if redactor.is_empty() {
            return self;
        }
        let r = |text: String| redactor.redact(&text);
        match self {
            ConfigError::Missing { key } => ConfigError::Missing { key },
            ConfigError::Invalid { key, value, reason } => ConfigError::Invalid {
                key,
                value: r(value),
                reason: r(reason),
            },
            ConfigError::Io { path, reason } => ConfigError::Io {
                path,
                reason: r(reason),
            },
            ConfigError::Security { key, reason } => ConfigError::Security {
                key,
                reason: r(reason),
            },
            ConfigError::ConnectorFile { path, reason } => ConfigError::ConnectorFile {
                path,
                reason: r(reason),
            },
        }
    }
}

/// Why a task failed. The message is what `/status` shows as `trace`; it names the record
/// (topic/partition/offset) whenever one is involved.
#[derive(Debug, thiserror::Error)]
#[error("{class}: {message}")]
pub struct TaskError {
    /// A Java-style exception class name, so tools that switch on it keep working.
    pub class: &'static str,
    pub message: String,
}

impl TaskError {
    /// `org.apache.kafka.connect.errors.ConnectException`.
    pub fn connect(message: impl Into<String>) -> TaskError {
        TaskError {
            class: "org.apache.kafka.connect.errors.ConnectException",
            message: message.into(),
        }
    }

    /// `org.apache.kafka.connect.errors.DataException`: bad record contents.
    pub fn data(message: impl Into<String>) -> TaskError {
        TaskError {
            class: "org.apache.kafka.connect.errors.DataException",
            message: message.into(),
        }
    }

    /// The text shown as `trace` in the status API.
    pub fn trace(&self) -> String {
        self.to_string()
    }

    /// The same error with every value config providers resolved shown as its placeholder,
    /// for a status trace or a log line.
    pub fn redacted(mut self, redactor: &crate::config_provider::Redactor) -> TaskError {
        if !redactor.is_empty() {
            self.message = redactor.redact(&self.message);
        }
        self
    }
}
