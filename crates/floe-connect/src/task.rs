//! The sink task loop: consume, convert, `put`, commit (Java `WorkerSinkTask`).
//!
//! ```text
//! recv ─► convert key/value/headers ─► batch ─► task.put(batch)
//!                                                   │ every offset.flush.interval.ms or on request
//!                                                   ▼
//!                              task.pre_commit(consumed) ─► commit returned offsets to connect-<name>
//! ```
//!
//! Rebalance events are recorded by the consumer's callbacks and acted on between batches, in
//! the order they happened relative to the records: the records received before an event are
//! handed to the task first, then the task is told (`close`/`open`). After a revocation the
//! task holds nothing uncommitted, so every partition the task keeps is rewound to its
//! committed offset and nothing is lost or read twice.
//!
//! A panic anywhere in a task — its own code, a converter, a transform — fails the task as an
//! error would: it is stopped, its clients are closed, and its status is FAILED with the panic
//! message in the trace.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use floe_convert::{build_converter, Converter, SchemaAndValue};
use floe_data::{Header, SinkRecord, TopicPartition, Value};
use floe_transforms::Chain;
use futures::FutureExt;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::config_provider::ConfigProviders;
use crate::dead_letter::{DeadLetterQueue, Failure};
use crate::errant::{ErrantRecords, ErrorLog};
use crate::error::TaskError;
use crate::kafka_config::client_config;
use crate::metrics::{ClientMetrics, SinkTaskMetrics, CLIENT_STATISTICS_INTERVAL_MS};
use crate::plugin::{ConfigMap, Offsets, SinkConnector, SinkTask, TaskContext};
use crate::status::{State, StatusCell};
use crate::worker_config::{list_value, strip_prefix, WorkerConfig};

/// Everything needed to run one task.
pub struct TaskSpec {
    pub connector: String,
    pub task_id: u32,
    pub config: ConfigMap,
    pub worker: Arc<WorkerConfig>,
    pub plugin: Arc<dyn SinkConnector>,
    /// Topics this connector has read records from (`GET /connectors/{name}/topics`).
    pub active_topics: Arc<Mutex<BTreeSet<String>>>,
}

/// The consumer group of a sink connector: `connect-<name>` unless overridden.
pub fn group_id(connector: &str, config: &ConfigMap) -> String {
    config
        .get("consumer.override.group.id")
        .filter(|g| !g.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| format!("connect-{connector}"))
}

#[derive(Debug)]
enum RebalanceEvent {
    Assigned(Vec<TopicPartition>),
    Revoked(Vec<TopicPartition>),
}

/// Rebalance events in the order the callbacks saw them. `pending` lets the poll loop check
/// for events after every record without taking the lock.
#[derive(Default)]
struct RebalanceEvents {
    queue: Mutex<Vec<RebalanceEvent>>,
    pending: AtomicBool,
}

impl RebalanceEvents {
    fn push(&self, event: RebalanceEvent) {
        match self.queue.lock() {
            Ok(mut q) => q.push(event),
            Err(p) => p.into_inner().push(event),
        }
        self.pending.store(true, Ordering::Release);
    }

    fn take(&self) -> Vec<RebalanceEvent> {
        let mut q = match self.queue.lock() {
            Ok(q) => q,
            Err(p) => p.into_inner(),
        };
        self.pending.store(false, Ordering::Release);
        std::mem::take(&mut *q)
    }

    fn pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }
}

struct TaskConsumerContext {
    events: Arc<RebalanceEvents>,
    client: ClientMetrics,
}

fn partitions(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}

impl TaskConsumerContext {
    fn push(&self, event: RebalanceEvent) {
        self.events.push(event);
    }
}

impl ClientContext for TaskConsumerContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.client.update(&statistics);
    }
}

impl ConsumerContext for TaskConsumerContext {
    fn pre_rebalance(&self, c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let revoked = partitions(tpl);
            let protocol = match c.rebalance_protocol() {
                rdkafka::consumer::RebalanceProtocol::Cooperative => "Cooperative",
                rdkafka::consumer::RebalanceProtocol::Eager => "Eager",
                rdkafka::consumer::RebalanceProtocol::None => "None",
            };
            debug!(protocol, ?revoked, "rebalance: partitions revoked");
            self.push(RebalanceEvent::Revoked(revoked));
        }
    }

    fn post_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => self.push(RebalanceEvent::Assigned(partitions(tpl))),
            Rebalance::Error(e) => warn!(error = %e, "consumer rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }
}

type TaskConsumer = StreamConsumer<TaskConsumerContext>;

/// What the herder wants a task to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskCommand {
    Run,
    /// Keep the task and its partitions, but consume nothing (target state PAUSED).
    Pause,
    /// Stop gracefully.
    Shutdown,
}

/// How long a stopped task waits for its Kafka clients to close before it reports itself
/// stopped anyway (they go on closing in the background).
const CLIENT_CLOSE_LIMIT: Duration = Duration::from_secs(10);

/// Runs a task until told to shut down or until it fails; the outcome lands in `status`.
/// Returns once the task's clients are closed (at most [`CLIENT_CLOSE_LIMIT`] after it
/// stopped), so a new instance of the task never overlaps this one's consumer.
pub async fn run(spec: TaskSpec, status: StatusCell, shutdown: watch::Receiver<TaskCommand>) {
    let name = format!("{}-{}", spec.connector, spec.task_id);
    // Logged before any client exists; "task stopped"/"task failed" once they are all gone.
    info!(task = %name, "task instance starting");
    let (closed, mut closing) = tokio::sync::mpsc::channel::<()>(2);
    // A panic outside the loop's guarded steps (creating or starting the task, say) unwinds
    // `run_task`, dropping — and so closing — every client it made; it fails the task here.
    let outcome = AssertUnwindSafe(run_task(&spec, &status, shutdown, &closed))
        .catch_unwind()
        .await
        .unwrap_or_else(|payload| Err(panicked(&spec, &*payload)));
    drop(closed);
    // Every client handed to a `Release` reports here when it is gone; the channel closes
    // once they all are.
    let all_closed = tokio::time::timeout(CLIENT_CLOSE_LIMIT, async {
        while closing.recv().await.is_some() {}
    })
    .await
    .is_ok();
    if !all_closed {
        warn!(task = %name, "the task's Kafka clients did not close in time; leaving them to close in the background");
    }
    match outcome {
        Ok(()) => info!(task = %name, "task stopped"),
        Err(e) => {
            // A resolved placeholder value (a secret) never reaches the log or the trace.
            let e = e.redacted(&ConfigProviders::redactor_for(
                &spec.worker.props,
                &spec.config,
            ));
            error!(task = %name, error = %e, "task failed");
            status.fail(e.trace());
        }
    }
}

/// The failure a panic ends a task with: a `ConnectException` naming the task, with the panic
/// message (the panic itself is logged where it happened, by the panic hook).
fn panicked(spec: &TaskSpec, payload: &(dyn Any + Send)) -> TaskError {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string());
    TaskError::connect(format!(
        "Task {}-{} panicked: {message}",
        spec.connector, spec.task_id
    ))
}

/// Runs one step of the task loop, a panic in it (in the task's, a converter's or a
/// transform's code) becoming the error the task fails with, so the loop still stops the task
/// as it does on an error.
async fn guarded<T>(
    spec: &TaskSpec,
    step: impl Future<Output = Result<T, TaskError>>,
) -> Result<T, TaskError> {
    AssertUnwindSafe(step)
        .catch_unwind()
        .await
        .unwrap_or_else(|payload| Err(panicked(spec, &*payload)))
}

/// A value whose drop may block — a consumer leaving its group runs librdkafka's close, which
/// waits for the group coordinator and the rebalance callbacks — dropped on a thread of its
/// own, so no runtime thread (and no process shutdown) ever waits for it. The sender it holds
/// is dropped once the value is gone.
struct Release<T: Send + 'static> {
    value: Option<T>,
    closed: tokio::sync::mpsc::Sender<()>,
}

impl<T: Send + 'static> Release<T> {
    fn new(value: T, closed: &tokio::sync::mpsc::Sender<()>) -> Release<T> {
        Release {
            value: Some(value),
            closed: closed.clone(),
        }
    }
}

impl<T: Send + 'static> std::ops::Deref for Release<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // Present until drop.
        self.value.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<T: Send + 'static> std::ops::DerefMut for Release<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl<T: Send + 'static> Drop for Release<T> {
    fn drop(&mut self) {
        let Some(value) = self.value.take() else {
            return;
        };
        let closed = self.closed.clone();
        // Dropping may need the runtime (a client's own tasks and timers).
        let runtime = tokio::runtime::Handle::try_current().ok();
        let release = move || {
            let _entered = runtime.as_ref().map(|r| r.enter());
            drop(value);
            drop(closed);
        };
        if let Err(e) = std::thread::Builder::new()
            .name("floe-release".into())
            .spawn(release)
        {
            // The closure, and the value in it, were dropped here.
            warn!(error = %e, "cannot start a thread to close a task's clients");
        }
    }
}

struct Converters {
    key: Arc<dyn Converter>,
    value: Arc<dyn Converter>,
}

fn converter_for(
    worker: &WorkerConfig,
    config: &ConfigMap,
    which: &str,
) -> Result<Arc<dyn Converter>, TaskError> {
    let class_key = format!("{which}.converter");
    let prefix = format!("{which}.converter.");
    // A connector that names its own converter class uses only its own converter props.
    let (class, props) = match config.get(&class_key).filter(|c| !c.trim().is_empty()) {
        Some(class) => (class.clone(), strip_prefix(config, &prefix)),
        None => (
            if which == "key" {
                worker.key_converter.clone()
            } else {
                worker.value_converter.clone()
            },
            worker.with_prefix(&prefix),
        ),
    };
    build_converter(&class, &props, which == "key")
        .map_err(|e| TaskError::connect(format!("Failed to create {which} converter: {e}")))
}

/// Client properties a task may reuse for its own Kafka clients: the worker's un-prefixed
/// connection and security settings (never logged: they may hold credentials).
fn worker_kafka_props(worker: &WorkerConfig) -> BTreeMap<String, String> {
    let mut props: BTreeMap<String, String> = worker
        .props
        .iter()
        .filter(|(k, _)| {
            k.starts_with("security.") || k.starts_with("ssl.") || k.starts_with("sasl.")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    props.insert("bootstrap.servers".into(), worker.bootstrap_servers.clone());
    props
}

/// Errors a consumer cannot get past by retrying: authentication (SASL, TLS) and
/// authorization failures.
fn refused(code: rdkafka::types::RDKafkaErrorCode) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        code,
        C::Authentication
            | C::SaslAuthenticationFailed
            | C::SSL
            | C::TopicAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::ClusterAuthorizationFailed
    )
}

/// How long a poll waits while partitions are paused: the task still gets `put` calls often
/// enough to answer a commit and release its hold.
const HELD_POLL: Duration = Duration::from_millis(50);

fn consumer_props(spec: &TaskSpec, group: &str) -> BTreeMap<String, String> {
    let mut props = BTreeMap::from([
        (
            "bootstrap.servers".to_string(),
            spec.worker.bootstrap_servers.clone(),
        ),
        ("group.id".to_string(), group.to_string()),
        (
            "client.id".to_string(),
            format!("connector-consumer-{}-{}", spec.connector, spec.task_id),
        ),
        ("enable.auto.commit".to_string(), "false".to_string()),
        ("auto.offset.reset".to_string(), "earliest".to_string()),
        // librdkafka prefetches into a local queue and, once the queue is over its limit,
        // waits `fetch.queue.backoff.ms` (1 s by default) before fetching again: a task that
        // drains the queue faster than that sits idle for the rest of the second. Fetch again
        // soon after the queue has room, and keep the queue small (memory), as a Java
        // consumer's one outstanding fetch does.
        ("fetch.queue.backoff.ms".to_string(), "10".to_string()),
        // Bytes and connections for the metrics (docs/metrics.md).
        (
            "statistics.interval.ms".to_string(),
            CLIENT_STATISTICS_INTERVAL_MS.to_string(),
        ),
        (
            "queued.max.messages.kbytes".to_string(),
            prefetch_kbytes(&spec.config).to_string(),
        ),
    ]);
    props.extend(spec.worker.with_prefix("consumer."));
    props.extend(strip_prefix(&spec.config, "consumer.override."));
    props
}

/// A connector's consumers prefetch about this much in all, split between its tasks.
const CONNECTOR_PREFETCH_KBYTES: usize = 8 * 1024;
/// The least a task prefetches, so a task of many still reads ahead of its puts.
const TASK_PREFETCH_KBYTES: usize = 2 * 1024;

/// The prefetch queue of one task's consumer: the connector's share for each of its
/// `tasks.max` tasks (the tasks of a worker share its cores, so more of them need no more
/// read-ahead in all).
fn prefetch_kbytes(config: &ConfigMap) -> usize {
    let tasks = config
        .get("tasks.max")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    (CONNECTOR_PREFETCH_KBYTES / tasks).max(TASK_PREFETCH_KBYTES)
}

struct Loop<'a> {
    spec: &'a TaskSpec,
    consumer: Release<Arc<TaskConsumer>>,
    events: Arc<RebalanceEvents>,
    task: Release<Box<dyn SinkTask>>,
    context: TaskContext,
    converters: Converters,
    /// Values are handed to the task undecoded (see `SinkTask::decodes_raw_values`).
    encoded_values: bool,
    /// The connector's transforms (`transforms`, `predicates`), applied after the converters.
    chain: Chain,
    consumed: Offsets,
    reset_to_latest: bool,
    seen_topics: BTreeSet<String>,
    errant: Arc<ErrantRecords>,
    metrics: Arc<SinkTaskMetrics>,
}

/// The outcome of converting (and transforming) one message.
enum Converted {
    Record(TopicPartition, i64, SinkRecord),
    /// A transform dropped it: consumed, nothing to hand over.
    Dropped(TopicPartition, i64),
    Failed(TopicPartition, i64, Failure),
}

async fn run_task(
    spec: &TaskSpec,
    status: &StatusCell,
    mut control: watch::Receiver<TaskCommand>,
    closed: &tokio::sync::mpsc::Sender<()>,
) -> Result<(), TaskError> {
    // Placeholders are resolved now, for this task only; the stored config keeps them.
    let providers = ConfigProviders::from_worker(&spec.worker.props).map_err(TaskError::connect)?;
    let resolved = providers
        .resolve(&spec.config)
        .map_err(TaskError::connect)?;
    let spec = &TaskSpec {
        connector: spec.connector.clone(),
        task_id: spec.task_id,
        config: resolved,
        worker: spec.worker.clone(),
        plugin: spec.plugin.clone(),
        active_topics: spec.active_topics.clone(),
    };
    let converters = Converters {
        key: converter_for(&spec.worker, &spec.config, "key")?,
        value: converter_for(&spec.worker, &spec.config, "value")?,
    };
    let chain = Chain::from_config(&spec.config).map_err(|e| {
        TaskError::connect(format!(
            "Failed to build the transformation chain: org.apache.kafka.common.config.ConfigException: {e}"
        ))
    })?;
    // A config stored under another worker's policy is checked again, as Java's worker does
    // when it builds the task's clients.
    let policy = spec.worker.override_policy;
    if let Some(key) = spec.config.keys().find_map(|k| {
        crate::worker_config::OVERRIDE_PREFIXES
            .iter()
            .find_map(|p| k.strip_prefix(p))
            .filter(|client_key| !policy.allows(client_key))
    }) {
        return Err(TaskError::connect(format!(
            "Client override refused: {}",
            policy.refusal(key)
        )));
    }
    let group = group_id(&spec.connector, &spec.config);
    let props = consumer_props(spec, &group);
    let max_batch: usize = props
        .get("max.poll.records")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(500);
    let reset_to_latest = props
        .get("auto.offset.reset")
        .is_some_and(|v| v.trim() == "latest");
    let context = TaskConsumerContext {
        events: Arc::default(),
        client: ClientMetrics::register(
            false,
            props
                .get("client.id")
                .map(String::as_str)
                .unwrap_or(group.as_str()),
        ),
    };
    let events = context.events.clone();
    let consumer = Release::new(
        Arc::new(
            client_config(&props)
                .map_err(|e| {
                    TaskError::connect(format!("Failed to create the task consumer: consumer.{e}"))
                })?
                .create_with_context(context)
                .map_err(|e| {
                    TaskError::connect(format!("Failed to create the task consumer: {e}"))
                })?,
        ),
        closed,
    );
    subscribe(&consumer, &spec.config)?;

    let dead_letters =
        DeadLetterQueue::open(&spec.worker, &spec.config, &spec.connector, spec.task_id).await?;
    let tolerate_errors = spec
        .config
        .get("errors.tolerance")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("all"));
    let metrics = SinkTaskMetrics::register(&spec.connector, spec.task_id as usize);
    let errant = Arc::new(
        ErrantRecords::new(tolerate_errors, dead_letters, &spec.connector, spec.task_id)
            .with_metrics(metrics.clone())
            .with_error_log(ErrorLog::from_config(&spec.config)),
    );
    let mut task = Release::new(spec.plugin.create_task(), closed);
    let metadata_consumer = Arc::downgrade(&*consumer);
    let task_context = TaskContext::new(
        &spec.connector,
        spec.task_id,
        &group,
        worker_kafka_props(&spec.worker),
    )
    .with_group_metadata(Arc::new(move || {
        metadata_consumer.upgrade().and_then(|c| c.group_metadata())
    }))
    .with_errant_records(errant.clone())
    .with_value_converter(converters.value.clone())
    .with_worker_id(&spec.worker.worker_id);
    task.start(&spec.config, task_context.clone()).await?;
    // Values the converter offers raw (schemaless JSON, Avro) go to a task that reads them
    // itself straight into its own columns, unless a transform needs them decoded first.
    let encoded_values = converters
        .value
        .raw_values()
        .is_some_and(|raw| task.decodes_raw_values(raw))
        && chain.is_empty();
    status.set(State::Running);
    let mut paused = false;
    let mut consumer_paused = false;
    info!(connector = %spec.connector, task = spec.task_id, group = %group, "task started");

    let mut state = Loop {
        spec,
        consumer,
        events,
        task,
        context: task_context,
        converters,
        encoded_values,
        chain,
        consumed: Offsets::new(),
        reset_to_latest,
        seen_topics: BTreeSet::new(),
        errant,
        metrics,
    };
    let flush_interval = spec.worker.offset_flush_interval;
    let mut next_flush = Instant::now() + flush_interval;
    let result = loop {
        // Marked seen, so that a poll below ends early only on a newer command.
        let command = *control.borrow_and_update();
        match command {
            TaskCommand::Shutdown => break guarded(spec, state.graceful_stop()).await,
            TaskCommand::Pause if !paused => {
                paused = true;
                status.set(State::Paused);
            }
            TaskCommand::Run if paused => {
                paused = false;
                status.set(State::Running);
            }
            _ => {}
        }
        // Partitions are paused for the PAUSED target state and while the task holds
        // consumption (its memory bound); re-applied after every poll so partitions assigned
        // meanwhile start paused too.
        let hold = paused || state.context.consumption_held();
        if hold || consumer_paused {
            if let Err(e) = state.set_paused(hold) {
                break Err(e);
            }
            consumer_paused = hold;
        }
        let poll_for =
            next_flush
                .saturating_duration_since(Instant::now())
                .min(if consumer_paused {
                    HELD_POLL
                } else {
                    Duration::from_millis(500)
                });
        // Not raced against the shutdown signal: a batch half received must still reach the
        // task, or its offsets would be committed without its records.
        if let Err(e) = guarded(spec, state.poll_batch(poll_for, max_batch, &mut control)).await {
            break Err(e);
        }
        if state.context.take_rewind_request() {
            state.consumed.clear();
            if let Err(e) = state.rewind_owned() {
                break Err(e);
            }
        }
        if state.context.take_commit_request() || Instant::now() >= next_flush {
            if let Err(e) = guarded(spec, state.commit(false)).await {
                break Err(e);
            }
            next_flush = Instant::now() + flush_interval;
        }
    };
    if result.is_err() {
        // Best effort, after a panic too (a task that panicked may panic again); the failure
        // is what the status reports.
        let _ = guarded(spec, state.task.stop()).await;
    }
    result
}

fn subscribe(consumer: &TaskConsumer, config: &ConfigMap) -> Result<(), TaskError> {
    let topics = list_value(config, "topics");
    let result = if topics.is_empty() {
        let regex = config.get("topics.regex").map(|r| r.trim()).unwrap_or("");
        if regex.is_empty() {
            return Err(TaskError::connect(
                "Must configure one of topics or topics.regex",
            ));
        }
        // librdkafka treats a subscription starting with ^ as a regular expression.
        let pattern = if regex.starts_with('^') {
            regex.to_string()
        } else {
            format!("^{regex}")
        };
        consumer.subscribe(&[pattern.as_str()])
    } else {
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&refs)
    };
    result.map_err(|e| TaskError::connect(format!("Failed to subscribe: {e}")))
}

impl Loop<'_> {
    /// Pauses or resumes every assigned partition; the loop keeps polling (and calling `put`
    /// with empty batches) so the task stays in its group and can act on time.
    fn set_paused(&self, pause: bool) -> Result<(), TaskError> {
        let assignment = self
            .consumer
            .assignment()
            .map_err(|e| TaskError::connect(format!("Failed to read the assignment: {e}")))?;
        if assignment.count() == 0 {
            return Ok(());
        }
        let result = if pause {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        };
        result.map_err(|e| {
            TaskError::connect(format!(
                "Failed to {} partitions: {e}",
                if pause { "pause" } else { "resume" }
            ))
        })
    }

    fn take_events(&self) -> Vec<RebalanceEvent> {
        self.events.take()
    }

    fn events_pending(&self) -> bool {
        self.events.pending()
    }

    /// Receives up to `max` records for at most `wait`, hands them to the task, and applies
    /// rebalance events in order. A new command (pause, resume, shutdown) ends the wait early, as Java's consumer wakeup does, so
    /// the task's state follows its target state at once; what was received still goes to the
    /// task.
    async fn poll_batch(
        &mut self,
        wait: Duration,
        max: usize,
        control: &mut watch::Receiver<TaskCommand>,
    ) -> Result<(), TaskError> {
        // One timer per batch, polled only when no record is ready (reading the clock per
        // record was a visible cost).
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        let mut commanded = false;
        let mut batch: Vec<SinkRecord> = Vec::new();
        self.errant.new_batch();
        let mut read = 0u64;
        while batch.len() < max {
            let received = tokio::select! {
                biased;
                r = self.consumer.recv() => Ok(r),
                _ = &mut deadline => Err(()),
                // A closed channel counts as no news: the loop reads the command once more.
                changed = control.changed(), if !commanded => {
                    commanded = true;
                    if changed.is_ok() { Err(()) } else { continue }
                }
            };
            let record = match received {
                Err(_) => break,
                Ok(Err(e)) => {
                    if let Some(code) = e.rdkafka_error_code().filter(|c| refused(*c)) {
                        // As Java's consumer throws on a failed authentication or a refused
                        // authorization: retrying cannot help, the task fails saying why.
                        return Err(TaskError::connect(format!(
                            "The task consumer was refused by the broker ({code:?}): {e}"
                        )));
                    }
                    warn!(connector = %self.spec.connector, task = self.spec.task_id, error = %e, "consumer error");
                    break;
                }
                Ok(Ok(msg)) => {
                    read += 1;
                    if self.errant.keeps_originals() {
                        self.errant.keep(msg.detach());
                    }
                    if !self.seen_topics.contains(msg.topic()) {
                        self.seen_topics.insert(msg.topic().to_string());
                        if let Ok(mut topics) = self.spec.active_topics.lock() {
                            topics.insert(msg.topic().to_string());
                        }
                    }
                    self.convert(&msg)
                }
            };
            // Events seen now happened before this record was returned.
            if self.events_pending() && self.settle_events(&mut batch).await? {
                // Every owned partition was rewound: this record will be read again.
                continue;
            }
            match record {
                Converted::Record(tp, next, rec) => {
                    self.consumed.insert(tp, next);
                    batch.push(rec);
                }
                Converted::Dropped(tp, next) => {
                    self.consumed.insert(tp, next);
                }
                Converted::Failed(tp, next, failure) => {
                    self.errant.handle(failure).await?;
                    self.consumed.insert(tp, next);
                }
            }
        }
        if self.events_pending() {
            self.settle_events(&mut batch).await?;
        }
        self.metrics.record_read.add(read as f64);
        self.put(batch).await
    }

    /// Hands `batch` to the task, counting it in the task's metrics.
    async fn put(&mut self, batch: Vec<SinkRecord>) -> Result<(), TaskError> {
        if batch.is_empty() {
            return self.task.put(batch).await;
        }
        let records = batch.len();
        let started = Instant::now();
        let result = self.task.put(batch).await;
        self.metrics.record_send.add(records as f64);
        self.metrics
            .put_batch(started.elapsed().as_secs_f64() * 1000.0);
        result
    }

    /// Applies pending rebalance events before the task may act again. Records received before
    /// a revocation are dropped rather than handed over: the task drops its uncommitted data on
    /// `close` and every owned partition is rewound, so they are read again; and the task must
    /// not announce data for partitions that may already belong to another task. Returns whether
    /// partitions were revoked.
    async fn settle_events(&mut self, batch: &mut Vec<SinkRecord>) -> Result<bool, TaskError> {
        let events = self.take_events();
        let revoked = events
            .iter()
            .any(|e| matches!(e, RebalanceEvent::Revoked(_)));
        if revoked {
            batch.clear();
        } else {
            self.put(std::mem::take(batch)).await?;
        }
        self.apply(events).await?;
        Ok(revoked)
    }

    /// Converts one message and runs it through the transforms: the record, or that a
    /// transform dropped it, or why it could not be converted or transformed.
    fn convert(&self, msg: &rdkafka::message::BorrowedMessage<'_>) -> Converted {
        match self.decode(msg) {
            Converted::Record(tp, next, record) if !self.chain.is_empty() => {
                match self.chain.apply(record) {
                    Ok(Some(record)) => Converted::Record(tp, next, record),
                    Ok(None) => Converted::Dropped(tp, next),
                    Err(e) => Converted::Failed(
                        tp,
                        next,
                        Failure {
                            stage: "TRANSFORMATION",
                            class: e.class,
                            exception_class: e.error.exception_class,
                            message: e.error.message,
                            record: msg.detach(),
                        },
                    ),
                }
            }
            other => other,
        }
    }

    /// Converts one message's key, value and headers.
    fn decode(&self, msg: &rdkafka::message::BorrowedMessage<'_>) -> Converted {
        let topic = msg.topic();
        let partition = msg.partition();
        let offset = msg.offset();
        let tp = TopicPartition::new(topic, partition);
        let converted = self
            .converters
            .key
            .to_connect(topic, msg.key())
            .map_err(|e| ("KEY_CONVERTER", self.converters.key.class_name(), e))
            .and_then(|key| {
                if self.encoded_values && msg.payload().is_some() {
                    // Decoded by the task.
                    return Ok((key, SchemaAndValue::null()));
                }
                self.converters
                    .value
                    .to_connect(topic, msg.payload())
                    .map(|value| (key, value))
                    .map_err(|e| ("VALUE_CONVERTER", self.converters.value.class_name(), e))
            });
        match converted {
            Ok((key, value)) => {
                let headers = msg
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| Header {
                                key: h.key.to_string(),
                                schema: None,
                                value: match h.value {
                                    None => Value::Null,
                                    Some(b) => match std::str::from_utf8(b) {
                                        Ok(s) => Value::String(s.to_string()),
                                        Err(_) => Value::Bytes(b.to_vec()),
                                    },
                                },
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Converted::Record(
                    tp,
                    offset + 1,
                    SinkRecord {
                        topic: topic.to_string(),
                        partition,
                        offset,
                        timestamp: msg.timestamp().to_millis(),
                        key_schema: key.schema,
                        key: key.value,
                        value_schema: value.schema,
                        value: value.value,
                        headers,
                        encoded_value: if self.encoded_values {
                            msg.payload().map(<[u8]>::to_vec)
                        } else {
                            None
                        },
                        original_topic: None,
                    },
                )
            }
            Err((stage, class, e)) => Converted::Failed(
                tp,
                offset + 1,
                Failure {
                    stage,
                    class,
                    exception_class: "org.apache.kafka.connect.errors.DataException",
                    message: e.to_string(),
                    record: msg.detach(),
                },
            ),
        }
    }
}

impl Loop<'_> {
    async fn apply_events(&mut self) -> Result<(), TaskError> {
        let events = self.take_events();
        self.apply(events).await
    }

    async fn apply(&mut self, events: Vec<RebalanceEvent>) -> Result<(), TaskError> {
        for event in events {
            match event {
                RebalanceEvent::Assigned(parts) => {
                    debug!(task = self.spec.task_id, ?parts, "partitions assigned");
                    self.task.open(&parts).await?;
                }
                RebalanceEvent::Revoked(parts) => {
                    debug!(task = self.spec.task_id, ?parts, "partitions revoked");
                    self.task.close(&parts).await?;
                    self.consumed.clear();
                    self.rewind_owned()?;
                }
            }
            if let Ok(assignment) = self.consumer.assignment() {
                self.metrics.partition_count.set(assignment.count() as f64);
            }
        }
        Ok(())
    }

    /// Seeks every partition still owned back to its committed offset.
    fn rewind_owned(&self) -> Result<(), TaskError> {
        let assignment = self
            .consumer
            .assignment()
            .map_err(|e| TaskError::connect(format!("Failed to read the assignment: {e}")))?;
        if assignment.count() == 0 {
            return Ok(());
        }
        let committed = tokio::task::block_in_place(|| {
            self.consumer
                .committed_offsets(assignment, Duration::from_secs(30))
        })
        .map_err(|e| TaskError::connect(format!("Failed to read committed offsets: {e}")))?;
        let mut seek = TopicPartitionList::new();
        for e in committed.elements() {
            let to = match e.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ if self.reset_to_latest => Offset::End,
                _ => Offset::Beginning,
            };
            seek.add_partition_offset(e.topic(), e.partition(), to)
                .map_err(|err| {
                    TaskError::connect(format!(
                        "Failed to rewind {}-{}: {err}",
                        e.topic(),
                        e.partition()
                    ))
                })?;
        }
        let result = tokio::task::block_in_place(|| {
            self.consumer.seek_partitions(seek, Duration::from_secs(30))
        })
        .map_err(|e| TaskError::connect(format!("Failed to rewind partitions: {e}")))?;
        for e in result.elements() {
            if let Err(err) = e.error() {
                return Err(TaskError::connect(format!(
                    "Failed to rewind {}-{} to its committed offset: {err}",
                    e.topic(),
                    e.partition()
                )));
            }
        }
        Ok(())
    }

    /// Asks the task what may be committed and commits it to the consumer group.
    async fn commit(&mut self, closing: bool) -> Result<(), TaskError> {
        let offsets = self.task.pre_commit(&self.consumed, closing).await?;
        if offsets.is_empty() {
            // The sink commits its offsets itself (the Iceberg sink: in its transactions).
            self.metrics.offset_commit_skip.add(1.0);
            return Ok(());
        }
        let assignment = self
            .consumer
            .assignment()
            .map_err(|e| TaskError::connect(format!("Failed to read the assignment: {e}")))?;
        let owned: std::collections::BTreeSet<TopicPartition> =
            partitions(&assignment).into_iter().collect();
        let mut tpl = TopicPartitionList::new();
        for (tp, offset) in offsets.iter().filter(|(tp, _)| owned.contains(*tp)) {
            tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*offset))
                .map_err(|e| TaskError::connect(format!("Invalid offset for {tp}: {e}")))?;
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        let committed =
            tokio::task::block_in_place(|| self.consumer.commit(&tpl, CommitMode::Sync));
        match committed {
            Ok(()) => {
                self.metrics.offset_commit_completion.add(1.0);
                debug!(task = self.spec.task_id, offsets = ?offsets, "offsets committed")
            }
            // The data is durable in the sink; a failed offset commit only means re-reading.
            Err(e) => {
                warn!(connector = %self.spec.connector, task = self.spec.task_id, error = %e, "offset commit failed")
            }
        }
        Ok(())
    }

    async fn graceful_stop(&mut self) -> Result<(), TaskError> {
        if self.events_pending() {
            self.apply_events().await?;
        }
        self.commit(true).await?;
        self.task.stop().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_def::ConfigKey;
    use async_trait::async_trait;

    #[test]
    fn a_connectors_prefetch_is_split_between_its_tasks() {
        let with_tasks = |n: &str| ConfigMap::from([("tasks.max".to_string(), n.to_string())]);
        assert_eq!(prefetch_kbytes(&ConfigMap::new()), 8192);
        assert_eq!(prefetch_kbytes(&with_tasks("1")), 8192);
        assert_eq!(prefetch_kbytes(&with_tasks("2")), 4096);
        assert_eq!(prefetch_kbytes(&with_tasks("4")), 2048);
        assert_eq!(prefetch_kbytes(&with_tasks("16")), 2048);
        assert_eq!(prefetch_kbytes(&with_tasks("x")), 8192);
    }

    /// Where [`PanickingTask`] panics.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum PanicIn {
        Start,
        Put,
    }

    struct PanickingSink {
        at: PanicIn,
        stopped: Arc<AtomicBool>,
    }

    impl SinkConnector for PanickingSink {
        fn class_name(&self) -> &'static str {
            "test.PanickingSink"
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
        fn task_configs(&self, config: &ConfigMap, _max: usize) -> Vec<ConfigMap> {
            vec![config.clone()]
        }
        fn task_class(&self) -> &'static str {
            "test.PanickingTask"
        }
        fn create_task(&self) -> Box<dyn SinkTask> {
            Box::new(PanickingTask {
                at: self.at,
                stopped: self.stopped.clone(),
            })
        }
    }

    /// A task that panics in `start` or in `put` (which the loop calls, with an empty batch,
    /// on every poll: no broker is needed), and records whether it was stopped.
    struct PanickingTask {
        at: PanicIn,
        stopped: Arc<AtomicBool>,
    }

    #[async_trait]
    impl SinkTask for PanickingTask {
        async fn start(
            &mut self,
            _config: &ConfigMap,
            _context: TaskContext,
        ) -> Result<(), TaskError> {
            if self.at == PanicIn::Start {
                panic!("boom in start");
            }
            Ok(())
        }
        async fn open(&mut self, _partitions: &[TopicPartition]) -> Result<(), TaskError> {
            Ok(())
        }
        async fn put(&mut self, records: Vec<SinkRecord>) -> Result<(), TaskError> {
            if self.at == PanicIn::Put {
                let n = records.len();
                panic!("boom in put of {n} records");
            }
            Ok(())
        }
        async fn pre_commit(
            &mut self,
            _current: &Offsets,
            _closing: bool,
        ) -> Result<Offsets, TaskError> {
            Ok(Offsets::new())
        }
        async fn close(&mut self, _partitions: &[TopicPartition]) -> Result<(), TaskError> {
            Ok(())
        }
        async fn stop(&mut self) -> Result<(), TaskError> {
            self.stopped.store(true, Ordering::Release);
            Ok(())
        }
    }

    fn panicking_spec(at: PanicIn, stopped: &Arc<AtomicBool>) -> TaskSpec {
        let string = "org.apache.kafka.connect.storage.StringConverter".to_string();
        let worker = WorkerConfig::from_props(BTreeMap::from([
            ("key.converter".to_string(), string.clone()),
            ("value.converter".to_string(), string),
            // Nothing listens there: the consumer never gets a record.
            ("bootstrap.servers".to_string(), "127.0.0.1:1".to_string()),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        TaskSpec {
            connector: "panics".into(),
            task_id: 0,
            config: ConfigMap::from([("topics".to_string(), "t".to_string())]),
            worker: Arc::new(worker),
            plugin: Arc::new(PanickingSink {
                at,
                stopped: stopped.clone(),
            }),
            active_topics: Arc::default(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_fails_the_task_with_the_panic_in_its_trace() {
        for (at, message, stopped_after) in [
            // Unwinds `run_task`: like an error from `start`, no `stop`.
            (PanicIn::Start, "boom in start", false),
            // Caught around the loop's step: the task is stopped as after an error.
            (PanicIn::Put, "boom in put of 0 records", true),
        ] {
            let stopped = Arc::new(AtomicBool::new(false));
            let status = StatusCell::new(State::Unassigned);
            let (_control, control_rx) = watch::channel(TaskCommand::Run);
            let ran = tokio::time::timeout(
                Duration::from_secs(60),
                run(panicking_spec(at, &stopped), status.clone(), control_rx),
            )
            .await;
            assert!(ran.is_ok(), "{at:?}: the task did not end");
            let s = status.get();
            assert_eq!(s.state, State::Failed, "{at:?}");
            assert_eq!(
                s.trace.as_deref(),
                Some(
                    format!(
                        "org.apache.kafka.connect.errors.ConnectException: Task panics-0 panicked: {message}"
                    )
                    .as_str()
                ),
            );
            assert_eq!(stopped.load(Ordering::Acquire), stopped_after, "{at:?}");
        }
    }
}
