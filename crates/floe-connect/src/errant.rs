//! Records a task cannot take (`errors.tolerance`, KIP-610's `ErrantRecordReporter`): records
//! that failed conversion in the worker, and records the task itself reports while it puts them
//! (a value that does not fit its column, a table that does not exist, a route that cannot be
//! read). With `errors.tolerance=none` the task fails naming the record; with `all` the record
//! goes to the dead-letter queue when one is configured (its original bytes, headers and the
//! `__connect.errors.*` context), or is logged and skipped. Either way its offset counts as
//! consumed only after the DLQ acknowledged it, so nothing is lost silently.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use floe_data::SinkRecord;
use rdkafka::message::{Message, OwnedMessage};
use tracing::warn;

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
        }
    }

    /// Counts errant records in the task's `task-error-metrics`.
    pub fn with_metrics(mut self, metrics: Arc<SinkTaskMetrics>) -> ErrantRecords {
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, skipped: bool) {
        if let Some(m) = &self.metrics {
            m.record_error(skipped, skipped);
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
        let detail = detail(
            failure.stage,
            failure.class,
            (r.topic(), r.partition(), r.offset()),
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
