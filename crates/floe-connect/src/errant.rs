//! Records a task cannot take (`errors.tolerance`, KIP-610's `ErrantRecordReporter`): records
//! that failed conversion in the worker, and records the task itself reports while it puts them
//! (a value that does not fit its column, a table that does not exist, a route that cannot be
//! read). With `errors.tolerance=none` the task fails naming the record; with `all` the record
//! goes to the dead-letter queue when one is configured (its original bytes, headers and the
//! `__connect.errors.*` context), or is logged and skipped. Either way its offset counts as
//! consumed only after the DLQ acknowledged it, so nothing is lost silently.
//!
//! With `errors.log.enable=true` every failure is also logged as Java's `LogReporter` logs it,
//! at error level, tolerated or not (`Error encountered in task <connector>-<task>. Executing
//! stage '<stage>' with class '<class>'.`), with the record's topic, partition, offset and
//! timestamp when `errors.log.include.messages=true`; those are the errors
//! `total-errors-logged` counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use floe_data::SinkRecord;
use rdkafka::message::{Message, OwnedMessage};
use tracing::{error, warn};

use crate::dead_letter::{DeadLetterQueue, Failure};
use crate::error::TaskError;
use crate::metrics::SinkTaskMetrics;

/// The errant-record policy of one task, and the original messages of the batch being put.
pub struct ErrantRecords {
    tolerate: bool,
    dead_letters: Option<DeadLetterQueue>,
    connector: String,
    task_id: u32,
    /// Original messages of the current batch by (topic, partition, offset); kept only when
    /// there is a DLQ to send them to.
    batch: Mutex<HashMap<(String, i32, i64), OwnedMessage>>,
    metrics: Option<Arc<SinkTaskMetrics>>,
    /// `errors.log.enable` and `errors.log.include.messages`.
    log: ErrorLog,
}

/// What Java's `LogReporter` logs of each failure: nothing (`errors.log.enable=false`), the
/// stage and class, or those and the record's coordinates (`errors.log.include.messages`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorLog {
    pub enable: bool,
    pub include_messages: bool,
}

impl ErrorLog {
    /// The connector's `errors.log.*` keys (Java's defaults: both false).
    pub fn from_config(config: &crate::ConfigMap) -> ErrorLog {
        let on = |key: &str| {
            config
                .get(key)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        };
        ErrorLog {
            enable: on("errors.log.enable"),
            include_messages: on("errors.log.include.messages"),
        }
    }

    /// Java's line for a failure in `stage` of `class`, on the record at `coordinates` with
    /// `timestamp` (ms, when it has one).
    fn line(
        &self,
        task: &str,
        stage: &str,
        class: &str,
        (topic, partition, offset): (&str, i32, i64),
        timestamp: Option<i64>,
    ) -> String {
        let mut line = format!(
            "Error encountered in task {task}. Executing stage '{stage}' with class '{class}'"
        );
        if self.include_messages {
            line.push_str(&format!(
                ", where consumed record is {{topic='{topic}', partition={partition}, offset={offset}"
            ));
            if let Some(ts) = timestamp {
                line.push_str(&format!(", timestamp={ts}, timestampType=CreateTime"));
            }
            line.push('}');
        }
        line.push('.');
        line
    }
}

impl ErrantRecords {
    pub fn new(
        tolerate: bool,
        dead_letters: Option<DeadLetterQueue>,
        connector: &str,
        task_id: u32,
    ) -> ErrantRecords {
        ErrantRecords {
            tolerate,
            dead_letters,
            connector: connector.to_string(),
            task_id,
            batch: Mutex::new(HashMap::new()),
            metrics: None,
            log: ErrorLog::default(),
        }
    }

    /// Logs failures as `errors.log.enable` and `errors.log.include.messages` say.
    pub fn with_error_log(mut self, log: ErrorLog) -> ErrantRecords {
        self.log = log;
        self
    }

    fn log_stage_failure(&self, record: &SinkRecord, failure: &StageFailure) {
        self.log_failure(
            failure.stage,
            failure.class,
            (record.source_topic(), record.partition, record.offset),
            record.timestamp,
            &failure.message,
        );
    }

    /// Logs a failure when `errors.log.enable` says so.
    fn log_failure(
        &self,
        stage: &str,
        class: &str,
        coordinates: (&str, i32, i64),
        timestamp: Option<i64>,
        message: &str,
    ) {
        if self.log.enable {
            let task = format!("{}-{}", self.connector, self.task_id);
            let line = self.log.line(&task, stage, class, coordinates, timestamp);
            error!(connector = %self.connector, task = self.task_id, error = %message, "{line}");
        }
    }

    /// Counts errant records in the task's `task-error-metrics`.
    pub fn with_metrics(mut self, metrics: Arc<SinkTaskMetrics>) -> ErrantRecords {
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, skipped: bool) {
        if let Some(m) = &self.metrics {
            m.record_error(skipped, self.log.enable);
        }
    }

    /// Whether the original messages of a batch must be kept for the DLQ.
    pub fn keeps_originals(&self) -> bool {
        self.tolerate && self.dead_letters.is_some()
    }

    /// Keeps the original of a message handed to the task in the current batch.
    pub fn keep(&self, message: OwnedMessage) {
        if let Ok(mut batch) = self.batch.lock() {
            batch.insert(
                (
                    message.topic().to_string(),
                    message.partition(),
                    message.offset(),
                ),
                message,
            );
        }
    }

    /// Forgets the previous batch's originals.
    pub fn new_batch(&self) {
        if let Ok(mut batch) = self.batch.lock() {
            batch.clear();
        }
    }

    /// A record that failed: fail the task (`errors.tolerance=none`), or send it to the
    /// dead-letter queue when one is configured, else log and skip it.
    pub async fn handle(&self, failure: Failure) -> Result<(), TaskError> {
        let r = &failure.record;
        let coordinates = (r.topic(), r.partition(), r.offset());
        let detail = detail(failure.stage, failure.class, coordinates, &failure.message);
        self.log_failure(
            failure.stage,
            failure.class,
            coordinates,
            r.timestamp().to_millis(),
            &failure.message,
        );
        self.count(self.tolerate);
        if !self.tolerate {
            return Err(tolerance_exceeded(&detail));
        }
        match &self.dead_letters {
            Some(dlq) => {
                if let Some(m) = &self.metrics {
                    m.dlq_requests.add(1.0);
                }
                if let Err(e) = dlq.report(&failure).await {
                    if let Some(m) = &self.metrics {
                        m.dlq_failures.add(1.0);
                    }
                    return Err(e);
                }
                warn!(connector = %self.connector, task = self.task_id, "record sent to the dead letter queue: {detail}");
            }
            None => warn!(
                connector = %self.connector,
                task = self.task_id,
                "record skipped (errors.tolerance=all, no dead letter queue): {detail}"
            ),
        }
        Ok(())
    }

    /// A record of the current batch the task cannot write (stage `TASK_PUT`, as Java's
    /// reporter): `Err` (the task fails) unless errors are tolerated.
    pub async fn report(
        &self,
        record: &SinkRecord,
        task_class: &'static str,
        message: String,
    ) -> Result<(), TaskError> {
        if !self.tolerate {
            self.log_failure(
                "TASK_PUT",
                task_class,
                (record.source_topic(), record.partition, record.offset),
                record.timestamp,
                &message,
            );
            self.count(false);
            return Err(TaskError::data(message));
        }
        self.report_stage(
            record,
            StageFailure {
                stage: "TASK_PUT",
                class: task_class,
                message,
            },
        )
        .await
    }

    /// A record of the current batch that failed in `failure.stage` (a task that decodes values
    /// itself reports a value it cannot decode as the converter would have): handled as the
    /// worker handles a record that failed there.
    pub async fn report_stage(
        &self,
        record: &SinkRecord,
        failure: StageFailure,
    ) -> Result<(), TaskError> {
        if !self.tolerate {
            self.log_stage_failure(record, &failure);
            self.count(false);
            return Err(tolerance_exceeded(&detail(
                failure.stage,
                failure.class,
                (record.source_topic(), record.partition, record.offset),
                &failure.message,
            )));
        }
        let key = (
            record.source_topic().to_string(),
            record.partition,
            record.offset,
        );
        let original = self.batch.lock().ok().and_then(|mut b| b.remove(&key));
        match original {
            Some(original) => {
                self.handle(Failure {
                    stage: failure.stage,
                    class: failure.class,
                    exception_class: "org.apache.kafka.connect.errors.DataException",
                    message: failure.message,
                    record: original,
                })
                .await
            }
            None => {
                self.log_stage_failure(record, &failure);
                self.count(true);
                warn!(
                    connector = %self.connector,
                    task = self.task_id,
                    "record skipped (errors.tolerance=all, no dead letter queue): {}: {}",
                    record.coordinates(), failure.message
                );
                Ok(())
            }
        }
    }
}

/// Why a record of a batch failed, and in which stage (`VALUE_CONVERTER`, `TASK_PUT`, …) and
/// class.
pub struct StageFailure {
    pub stage: &'static str,
    pub class: &'static str,
    pub message: String,
}

fn detail(
    stage: &str,
    class: &str,
    (topic, partition, offset): (&str, i32, i64),
    message: &str,
) -> String {
    format!(
        "Error in stage {stage} ({class}) for record: topic {topic}, partition {partition}, offset {offset}: {message}"
    )
}

fn tolerance_exceeded(detail: &str) -> TaskError {
    TaskError::connect(format!(
        "Tolerance exceeded in error handler\nCaused by: org.apache.kafka.connect.errors.DataException: {detail}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_log_lines_are_javas() {
        let config: crate::ConfigMap = [
            ("errors.log.enable".to_string(), " TRUE".to_string()),
            (
                "errors.log.include.messages".to_string(),
                "false".to_string(),
            ),
        ]
        .into_iter()
        .collect();
        let log = ErrorLog::from_config(&config);
        assert_eq!(
            log,
            ErrorLog {
                enable: true,
                include_messages: false
            }
        );
        let class = "org.apache.kafka.connect.json.JsonConverter";
        assert_eq!(
            log.line("sink-0", "VALUE_CONVERTER", class, ("t", 1, 7), Some(5)),
            "Error encountered in task sink-0. Executing stage 'VALUE_CONVERTER' with class 'org.apache.kafka.connect.json.JsonConverter'."
        );
        let detailed = ErrorLog {
            include_messages: true,
            ..log
        };
        assert_eq!(
            detailed.line("sink-0", "TASK_PUT", "C", ("t", 1, 7), Some(5)),
            "Error encountered in task sink-0. Executing stage 'TASK_PUT' with class 'C', where consumed record is {topic='t', partition=1, offset=7, timestamp=5, timestampType=CreateTime}."
        );
        assert_eq!(
            detailed.line("sink-0", "TASK_PUT", "C", ("t", 1, 7), None),
            "Error encountered in task sink-0. Executing stage 'TASK_PUT' with class 'C', where consumed record is {topic='t', partition=1, offset=7}."
        );
        assert_eq!(
            ErrorLog::from_config(&crate::ConfigMap::new()),
            ErrorLog::default()
        );
    }
}
