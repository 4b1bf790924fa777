//! What a sink connector plugin provides to the worker, and what the worker gives a task.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use floe_data::{SinkRecord, TopicPartition};
use rdkafka::consumer::ConsumerGroupMetadata;

use crate::config_def::ConfigKey;
use crate::error::TaskError;

/// A flat connector or task configuration.
pub type ConfigMap = BTreeMap<String, String>;

/// Offsets per partition: the next offset to read (last consumed + 1).
pub type Offsets = BTreeMap<TopicPartition, i64>;

/// A sink connector plugin: validates configs and creates tasks.
pub trait SinkConnector: Send + Sync {
    /// The fully qualified Java class name users put in `connector.class`.
    fn class_name(&self) -> &'static str;
    /// Other class names accepted for this plugin (e.g. a predecessor's).
    fn other_class_names(&self) -> &'static [&'static str] {
        &[]
    }
    /// The plugin version shown by `/connector-plugins`.
    fn version(&self) -> &'static str;
    /// The plugin's own configuration keys (framework keys are added by the worker).
    fn config_keys(&self) -> Vec<ConfigKey>;
    /// Validates the plugin's keys: `(key, error message)` for every problem found.
    fn validate(&self, config: &ConfigMap) -> Vec<(String, String)>;
    /// Splits the connector config into at most `max_tasks` task configs.
    fn task_configs(&self, config: &ConfigMap, max_tasks: usize) -> Vec<ConfigMap>;
    /// Task config keys whose values change every time task configs are generated (a fresh
    /// id, say): ignored when deciding whether a connector's task configs are current.
    fn generated_keys(&self) -> &'static [&'static str] {
        &[]
    }
    /// The task class name recorded as `task.class` in task configs.
    fn task_class(&self) -> &'static str;
    /// A new, unstarted task.
    fn create_task(&self) -> Box<dyn SinkTask>;
}

/// Reads the group metadata of the task's consumer (generation, member id), which a task
/// needs to commit source offsets inside its own Kafka transaction (KIP-447 fencing).
pub type GroupMetadataSource = Arc<dyn Fn() -> Option<ConsumerGroupMetadata> + Send + Sync>;

/// What a running task may ask of the worker.
#[derive(Clone)]
pub struct TaskContext {
    pub connector: String,
    pub task_id: u32,
    /// The consumer group of the connector (`connect-<name>` unless overridden).
    pub group_id: String,
    /// Kafka client settings of the worker (bootstrap servers and security), for tasks that
    /// open their own clients.
    pub kafka_props: BTreeMap<String, String>,
    commit_requested: Arc<AtomicBool>,
    rewind_requested: Arc<AtomicBool>,
    hold: Arc<AtomicBool>,
    group_metadata: Option<GroupMetadataSource>,
    errant: Option<Arc<crate::errant::ErrantRecords>>,
    value_converter: Option<Arc<dyn floe_convert::Converter>>,
    worker_id: Option<String>,
}

impl std::fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext")
            .field("connector", &self.connector)
            .field("task_id", &self.task_id)
            .field("group_id", &self.group_id)
            .finish_non_exhaustive()
    }
}

impl TaskContext {
    /// A context for task `task_id` of `connector`.
    pub fn new(
        connector: &str,
        task_id: u32,
        group_id: &str,
        kafka_props: BTreeMap<String, String>,
    ) -> TaskContext {
        TaskContext {
            connector: connector.to_string(),
            task_id,
            group_id: group_id.to_string(),
            kafka_props,
            commit_requested: Arc::new(AtomicBool::new(false)),
            rewind_requested: Arc::new(AtomicBool::new(false)),
            hold: Arc::new(AtomicBool::new(false)),
            group_metadata: None,
            errant: None,
            value_converter: None,
            worker_id: None,
        }
    }

    /// Names the worker the task runs in (`<advertised host>:<port>`, its REST `worker_id`).
    pub fn with_worker_id(mut self, worker_id: &str) -> Self {
        self.worker_id = Some(worker_id.to_string());
        self
    }

    /// The worker the task runs in, when the runtime named it.
    pub fn worker_id(&self) -> Option<&str> {
        self.worker_id.as_deref()
    }

    /// Lets the task decode the values the worker handed over encoded.
    pub fn with_value_converter(mut self, converter: Arc<dyn floe_convert::Converter>) -> Self {
        self.value_converter = Some(converter);
        self
    }

    /// The connector's value converter, when the task was handed one.
    pub fn value_converter(&self) -> Option<&Arc<dyn floe_convert::Converter>> {
        self.value_converter.as_ref()
    }

    /// Decodes `record`'s [`SinkRecord::encoded_value`] with the connector's value converter,
    /// as the worker would have. `Ok(true)`: the record has its value; `Ok(false)`: it could
    /// not be converted and was reported as a converter failure (dead-letter queue, or skipped
    /// under `errors.tolerance=all`) — the task goes on without it; `Err`: the task must fail.
    pub async fn decode_value(&self, record: &mut SinkRecord) -> Result<bool, TaskError> {
        let Some(bytes) = record.encoded_value.take() else {
            return Ok(true);
        };
        let Some(converter) = &self.value_converter else {
            return Err(TaskError::connect(format!(
                "No value converter to decode the record at {}",
                record.coordinates()
            )));
        };
        match converter.to_connect(&record.topic, Some(&bytes)) {
            Ok(converted) => {
                record.value_schema = converted.schema;
                record.value = converted.value;
                Ok(true)
            }
            Err(e) => {
                let failure = crate::errant::StageFailure {
                    stage: "VALUE_CONVERTER",
                    class: converter.class_name(),
                    message: e.to_string(),
                };
                match &self.errant {
                    Some(errant) => errant.report_stage(record, failure).await.map(|()| false),
                    None => Err(TaskError::data(failure.message)),
                }
            }
        }
    }

    /// Lets the task report records it cannot write (`errors.tolerance`, the DLQ).
    pub fn with_errant_records(mut self, errant: Arc<crate::errant::ErrantRecords>) -> TaskContext {
        self.errant = Some(errant);
        self
    }

    /// Reports a record of the current batch the task cannot write, and why (Java's
    /// `ErrantRecordReporter`). `Ok`: the record went to the dead-letter queue or was skipped
    /// under `errors.tolerance=all`, and the task goes on without it; `Err`: the task must fail.
    pub async fn report_errant(
        &self,
        record: &floe_data::SinkRecord,
        task_class: &'static str,
        message: String,
    ) -> Result<(), TaskError> {
        match &self.errant {
            Some(errant) => errant.report(record, task_class, message).await,
            None => Err(TaskError::data(message)),
        }
    }

    /// Lets the task read its consumer's group metadata.
    pub fn with_group_metadata(mut self, source: GroupMetadataSource) -> TaskContext {
        self.group_metadata = Some(source);
        self
    }

    /// The current group metadata of the task's consumer, if it has joined its group.
    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        self.group_metadata.as_ref().and_then(|f| f())
    }

    /// Asks the worker to rewind every partition the task owns to its committed offset,
    /// because the task dropped data it had not made durable (e.g. an aborted transaction).
    pub fn request_rewind(&self) {
        self.rewind_requested.store(true, Ordering::Release);
    }

    /// Holds (true) or releases (false) consumption: while held, the worker pauses every
    /// partition of the task but keeps calling `put` with empty batches, so the task can make
    /// room (a memory bound, as Java's `SinkTaskContext.pause`/`resume` of all partitions).
    pub fn hold_consumption(&self, hold: bool) {
        self.hold.store(hold, Ordering::Release);
    }

    /// Whether the task asked to hold consumption.
    pub fn consumption_held(&self) -> bool {
        self.hold.load(Ordering::Acquire)
    }

    /// Takes a pending rewind request.
    pub fn take_rewind_request(&self) -> bool {
        self.rewind_requested.swap(false, Ordering::AcqRel)
    }

    /// Asks the worker to call `pre_commit` soon (Java `SinkTaskContext.requestCommit`).
    pub fn request_commit(&self) {
        self.commit_requested.store(true, Ordering::Release);
    }

    /// Takes a pending commit request.
    pub fn take_commit_request(&self) -> bool {
        self.commit_requested.swap(false, Ordering::AcqRel)
    }
}

/// A sink task. The worker calls it from one async task; calls never overlap.
#[async_trait]
pub trait SinkTask: Send {
    /// Starts the task with its config.
    async fn start(&mut self, config: &ConfigMap, context: TaskContext) -> Result<(), TaskError>;
    /// Partitions newly assigned to this task.
    async fn open(&mut self, partitions: &[TopicPartition]) -> Result<(), TaskError>;
    /// A batch of records (possibly empty: the worker calls `put` on every poll so a task can
    /// act on time).
    async fn put(&mut self, records: Vec<SinkRecord>) -> Result<(), TaskError>;
    /// Makes everything consumed up to `current` durable if the task wants to (it must when
    /// `closing`: the task is about to stop), and returns the offsets the worker may commit to
    /// the consumer group (empty: commit nothing).
    async fn pre_commit(&mut self, current: &Offsets, closing: bool) -> Result<Offsets, TaskError>;
    /// Partitions taken away: the task drops what it holds for them. The worker then rewinds
    /// the partitions it still owns to their committed offsets.
    async fn close(&mut self, partitions: &[TopicPartition]) -> Result<(), TaskError>;
    /// Stops the task. `pre_commit` has been called before if the stop was graceful.
    async fn stop(&mut self) -> Result<(), TaskError>;
    /// Whether the started task reads values of this kind itself. When it does and no
    /// transform needs the values, the worker hands records over with their value bytes in
    /// [`SinkRecord::encoded_value`]; the task decodes what it cannot read itself with
    /// [`TaskContext::decode_value`].
    fn decodes_raw_values(&self, _raw: floe_convert::RawValues) -> bool {
        false
    }
}

/// The connector plugins a worker can run.
#[derive(Clone, Default)]
pub struct Plugins {
    connectors: Vec<Arc<dyn SinkConnector>>,
}

impl Plugins {
    /// Adds a plugin.
    pub fn register(&mut self, connector: Arc<dyn SinkConnector>) {
        self.connectors.push(connector);
    }

    /// All plugins.
    pub fn connectors(&self) -> &[Arc<dyn SinkConnector>] {
        &self.connectors
    }

    /// Finds a plugin by class name or alias: the simple class name, or the simple name
    /// without a trailing `Connector`, as Java's plugin lookup does.
    pub fn find(&self, name: &str) -> Option<Arc<dyn SinkConnector>> {
        let name = name.trim();
        self.connectors
            .iter()
            .find(|c| {
                std::iter::once(c.class_name())
                    .chain(c.other_class_names().iter().copied())
                    .any(|class| class_matches(class, name))
            })
            .cloned()
    }
}

fn class_matches(class: &str, name: &str) -> bool {
    if class == name {
        return true;
    }
    let simple = class.rsplit('.').next().unwrap_or(class);
    simple == name || simple.strip_suffix("Connector") == Some(name)
}
