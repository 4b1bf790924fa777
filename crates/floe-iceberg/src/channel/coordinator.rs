//! The coordinator: one per connector (run by task 0), fenced by a stable transactional id.
//! It asks every task for its files on a cadence, commits them per table with the control-
//! topic offsets they were read at, and announces the result.
//!
//! ```text
//!  every commit.interval-ms          tasks answer                     all partitions answered
//!  StartCommit(id) ───────────► DataWritten…, DataComplete ───────► commit each table
//!                                     (or commit.timeout-ms: partial)   │ CAS on the branch head
//!                                                                      ▼
//!                        CommitComplete + -coord offsets (one txn) ◄── CommitToTable per table
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::catalog::CatalogHandle;
use crate::events::{Event, Payload, TableReference, WireDataFile};
use floe_data::TopicPartition;
use futures::{FutureExt, StreamExt};
use iceberg::table::Table;
use iceberg::{NamespaceIdent, TableIdent};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::commit_state::{
    files_by_envelope, for_table_uuid, merge_offsets, offsets_json, parse_offsets_json,
    CommitState, Envelope, TableKey,
};
use super::kafka::{
    control_consumer, high_watermarks, transactional_producer, StartAt, TxnProducer, KAFKA_TIMEOUT,
};
use crate::delta::resolve::KeyIndexCache;
use crate::error::SinkError;
use crate::summary;
use crate::table_commit::CommitOutcome;

/// What the coordinator needs to know.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub connector: String,
    pub task_id: u32,
    pub connect_group: String,
    pub control_topic: String,
    pub transactional_id: String,
    pub kafka_props: BTreeMap<String, String>,
    pub commit_interval: Duration,
    pub commit_timeout: Duration,
    pub max_consecutive_failures: u32,
    /// How long commits the catalog answers with server errors are ridden out before they
    /// count as failures (`floe.control.commit.server-error-timeout-ms`).
    pub server_error_timeout: Duration,
    /// Tables committed at once (`iceberg.control.commit.threads`).
    pub commit_threads: usize,
    /// Source topics (`topics`), or None with `topics_regex` set.
    pub topics: Vec<String>,
    pub topics_regex: Option<regex::Regex>,
    /// Branch per table (`ns.table`); None = main.
    pub default_branch: Option<String>,
    pub table_branches: BTreeMap<String, String>,
    /// Maintenance of the committed tables (their main branch), between commits.
    pub maintenance: crate::maintenance::Maintenance,
}

impl CoordinatorConfig {
    fn offsets_key(&self) -> String {
        format!(
            "kafka.connect.offsets.{}.{}",
            self.control_topic, self.connect_group
        )
    }

    fn branch_for(&self, table: &str) -> Option<&str> {
        self.table_branches
            .get(table)
            .map(String::as_str)
            .or(self.default_branch.as_deref())
    }
}

/// A running coordinator.
pub struct CoordinatorHandle {
    shutdown: watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
    failure: Arc<Mutex<Option<String>>>,
}

impl CoordinatorHandle {
    /// Why the coordinator stopped on its own, if it did.
    pub fn failure(&self) -> Option<String> {
        if self.join.is_finished() {
            return Some(
                self.failure
                    .lock()
                    .ok()
                    .and_then(|f| f.clone())
                    .unwrap_or_else(|| "the coordinator stopped".into()),
            );
        }
        None
    }

    /// Stops the coordinator and waits for it.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if tokio::time::timeout(Duration::from_secs(60), &mut self.join)
            .await
            .is_err()
        {
            warn!("coordinator did not stop within 60 s");
        }
    }
}

impl Drop for CoordinatorHandle {
    /// A task dropped without being stopped (abandoned by the worker) takes its coordinator
    /// with it: a coordinator never outlives its task.
    fn drop(&mut self) {
        self.join.abort();
    }
}

/// An idle coordinator still runs a cycle this often (or every commit interval, if longer):
/// maintenance and the commit metrics follow cycles.
const IDLE_CYCLE_AT_LEAST: Duration = Duration::from_secs(60);

/// One table's commit in a cycle, run beside the others.
type TableCommitFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = (TableKey, Result<Option<i64>, SinkError>)> + Send + 'a>,
>;

/// Starts the coordinator.
pub fn spawn(
    config: CoordinatorConfig,
    catalog: CatalogHandle,
    catalog_name: String,
) -> CoordinatorHandle {
    let (shutdown, rx) = watch::channel(false);
    let failure = Arc::new(Mutex::new(None));
    let failure_slot = failure.clone();
    let join = tokio::spawn(async move {
        let name = format!("{}-{}", config.connector, config.task_id);
        let connector = config.connector.clone();
        let outcome = run(config, catalog, catalog_name, rx).await;
        crate::sink_metrics::forget(&connector);
        match outcome {
            Ok(()) => info!(coordinator = %name, "coordinator stopped"),
            Err(e) => {
                warn!(coordinator = %name, error = %e, "coordinator terminated");
                if let Ok(mut f) = failure_slot.lock() {
                    *f = Some(e.to_string());
                }
            }
        }
    });
    CoordinatorHandle {
        shutdown,
        join,
        failure,
    }
}

struct Coordinator {
    config: CoordinatorConfig,
    catalog: CatalogHandle,
    catalog_name: String,
    producer: TxnProducer,
    consumer: StreamConsumer,
    control_partitions: Vec<i32>,
    key: String,
    state: CommitState,
    last_start: Instant,
    /// When the last cycle this coordinator started began (idle intervals skip cycles).
    last_cycle: Instant,
    idle_cycles_skipped: u64,
    /// Fetching the control topic is paused while idle.
    control_paused: bool,
    consecutive_failures: u32,
    /// Since when commits have failed with the catalog's server errors.
    server_errors: ServerErrors,
    /// Commit ids started or adopted lately, so a `StartCommit` read back is not adopted.
    recent_commits: Vec<Uuid>,
    /// The producer's last transaction could not be aborted; it is replaced before the next.
    producer_broken: bool,
    /// Per table, the key indexes of its data files, for resolving deleted keys.
    key_caches: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<KeyIndexCache>>>>,
    /// Maintains the tables this coordinator committed.
    maintainer: Option<super::maintainer::Maintainer>,
}

async fn run(
    config: CoordinatorConfig,
    catalog: CatalogHandle,
    catalog_name: String,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SinkError> {
    // A new producer with the stable id fences every older coordinator of this connector (I6).
    let producer = transactional_producer(&config.kafka_props, &config.transactional_id)?;
    let consumer = control_consumer(
        &config.kafka_props,
        &format!("{}-coord", config.connect_group),
        &config.control_topic,
        StartAt::CommittedOrBeginning,
    )?;
    let control_partitions: Vec<i32> = consumer
        .assignment()
        .map(|a| a.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default();
    info!(connector = %config.connector, transactional_id = %config.transactional_id, "coordinator started");
    let mut c = Coordinator {
        config,
        catalog,
        catalog_name,
        producer,
        consumer,
        control_partitions,
        key: Uuid::new_v4().to_string(),
        state: CommitState::default(),
        last_start: Instant::now(),
        last_cycle: Instant::now(),
        idle_cycles_skipped: 0,
        control_paused: false,
        consecutive_failures: 0,
        server_errors: ServerErrors::default(),
        recent_commits: Vec::new(),
        producer_broken: false,
        key_caches: Mutex::new(std::collections::HashMap::new()),
        maintainer: None,
    };
    if c.config.maintenance.any() {
        c.maintainer = Some(super::maintainer::Maintainer::new(
            &c.config.connector,
            c.config.maintenance.clone(),
            c.catalog.clone(),
        ));
    }
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let first = tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            received = tokio::time::timeout(c.wait(), c.consumer.recv()) => match received {
                Ok(Ok(msg)) => Some(owned(&msg)),
                // The client retries on its own (a broker restart, say); nothing is lost.
                Ok(Err(e)) => {
                    debug!(error = %e, "control-topic consumer error");
                    None
                }
                Err(_) => None,
            },
        };
        if let Some((partition, offset, payload)) = first {
            c.receive(partition, offset, payload.as_deref())?;
        }
        loop {
            let next = match c.consumer.recv().now_or_never() {
                Some(Ok(msg)) => owned(&msg),
                Some(Err(e)) => {
                    debug!(error = %e, "control-topic consumer error");
                    break;
                }
                None => break,
            };
            c.receive(next.0, next.1, next.2.as_deref())?;
        }
        c.step().await?;
    }
}

/// A crash for recovery tests: when `FLOE_CRASH_AT` names this point, the process aborts here,
/// as a power loss would, so tests can reproduce the worst moments deterministically.
fn crash_point(name: &str) {
    if std::env::var("FLOE_CRASH_AT").is_ok_and(|v| v == name) {
        warn!(point = name, "FLOE_CRASH_AT reached; aborting the process");
        std::process::abort();
    }
}

/// Whether a Kafka error means this producer can never succeed again (fenced, fatal).
fn is_fatal(e: &rdkafka::error::KafkaError) -> bool {
    match e {
        rdkafka::error::KafkaError::Transaction(t) => t.is_fatal(),
        rdkafka::error::KafkaError::MessageProduction(c)
        | rdkafka::error::KafkaError::Global(c) => matches!(
            c,
            rdkafka::types::RDKafkaErrorCode::ProducerFenced
                | rdkafka::types::RDKafkaErrorCode::InvalidProducerEpoch
                | rdkafka::types::RDKafkaErrorCode::Fatal
        ),
        _ => false,
    }
}

fn owned(msg: &rdkafka::message::BorrowedMessage<'_>) -> (i32, i64, Option<Vec<u8>>) {
    (
        msg.partition(),
        msg.offset(),
        msg.payload().map(<[u8]>::to_vec),
    )
}

impl Coordinator {
    fn receive(
        &mut self,
        partition: i32,
        offset: i64,
        payload: Option<&[u8]>,
    ) -> Result<(), SinkError> {
        self.state.consumed(partition, offset);
        let Some(bytes) = payload else { return Ok(()) };
        let event = match crate::events::decode_for_group(bytes, &self.config.connect_group) {
            Ok(Some(event)) => event,
            // Another connector's event.
            Ok(None) => return Ok(()),
            Err(e) => {
                super::skip_undecodable(&self.config.control_topic, partition, offset, &e);
                return Ok(());
            }
        };
        match event.payload {
            Payload::DataWritten {
                table_reference,
                data_files,
                delete_files,
                ..
            } => {
                self.state.data_written(Envelope {
                    partition,
                    offset,
                    table: table_reference,
                    data_files,
                    delete_files,
                });
            }
            Payload::DataComplete {
                commit_id,
                assignments,
            } => self.state.data_complete(commit_id, &assignments),
            Payload::StartCommit { commit_id } => self.adopt(commit_id, event.timestamp_micros)?,
            _ => {}
        }
        Ok(())
    }

    /// A `StartCommit` this coordinator did not send: a task asked for an early commit because
    /// it holds more than its buffer limit (`floe.commit.max-buffered-*`). An idle coordinator
    /// makes it the current cycle; old ones (replayed history) are ignored.
    fn adopt(&mut self, commit_id: Uuid, sent_micros: i64) -> Result<(), SinkError> {
        if self.state.current().is_some() || self.recent_commits.contains(&commit_id) {
            return Ok(());
        }
        let age = chrono::Utc::now().timestamp_micros() - sent_micros;
        if age > self.config.commit_timeout.as_micros() as i64 {
            return Ok(());
        }
        let expected = self.expected_partitions()?;
        self.last_start = Instant::now();
        self.state.start(commit_id, expected, self.last_start);
        self.remember(commit_id);
        info!(commit_id = %commit_id, "commit requested by a task whose buffer is full");
        Ok(())
    }

    fn remember(&mut self, commit_id: Uuid) {
        if self.recent_commits.len() >= 64 {
            self.recent_commits.remove(0);
        }
        self.recent_commits.push(commit_id);
    }

    async fn step(&mut self) -> Result<(), SinkError> {
        let now = Instant::now();
        match self.state.current() {
            None if now.duration_since(self.last_start) >= self.config.commit_interval => {
                if self.idle(now) {
                    // Nothing to commit: look again next interval, without a cycle, and stop
                    // fetching the control topic meanwhile (a fetch every 100 ms per
                    // coordinator is most of what a worker of many idle connectors does).
                    // Events sent meanwhile (a task's early commit) are read on resuming.
                    self.pause_control(true);
                    self.last_start = now;
                    self.idle_cycles_skipped += 1;
                    crate::sink_metrics::cycle_skipped(&self.config.connector);
                    debug!(
                        skipped = self.idle_cycles_skipped,
                        "no new record in the source partitions since the last quiet cycle; commit skipped"
                    );
                } else {
                    self.pause_control(false);
                    self.start_commit()?
                }
            }
            None => {}
            Some(_) if self.state.is_complete() => self.commit(false).await?,
            Some(_) if self.state.timed_out(now, self.config.commit_timeout) => {
                self.commit(true).await?
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Whether the cycle due now would have nothing to commit (`CommitState::idle`): the last
    /// one was quiet and the source partitions end where the committed records end. A cycle
    /// still runs at least every `IDLE_CYCLE_AT_LEAST` (maintenance follows cycles), and
    /// whenever the broker cannot say.
    fn idle(&self, now: Instant) -> bool {
        if !self.state.quiet()
            || now.duration_since(self.last_cycle)
                >= IDLE_CYCLE_AT_LEAST.max(self.config.commit_interval)
            || self.maintainer.as_ref().is_some_and(|m| m.due())
        {
            return false;
        }
        let Ok(expected) = self.expected_partitions() else {
            return false;
        };
        let mut tpl = TopicPartitionList::new();
        for tp in &expected {
            if tpl
                .add_partition_offset(&tp.topic, tp.partition, Offset::End)
                .is_err()
            {
                return false;
            }
        }
        // Timestamp -1 asks for each partition's latest offset, in one request.
        let Ok(ends) =
            tokio::task::block_in_place(|| self.consumer.offsets_for_times(tpl, KAFKA_TIMEOUT))
        else {
            return false;
        };
        let mut latest = BTreeMap::new();
        for e in ends.elements() {
            match (e.error(), e.offset()) {
                (Ok(()), Offset::Offset(o)) => {
                    latest.insert(TopicPartition::new(e.topic(), e.partition()), o);
                }
                _ => return false,
            }
        }
        latest.len() == expected.len() && self.state.idle(&latest)
    }

    /// How long the loop waits for a control event before stepping: 200 ms, or while idle
    /// (nothing is fetched) until the next commit is due.
    fn wait(&self) -> Duration {
        const STEP: Duration = Duration::from_millis(200);
        if !self.control_paused {
            return STEP;
        }
        (self.last_start + self.config.commit_interval)
            .saturating_duration_since(Instant::now())
            .max(STEP)
    }

    /// Pauses or resumes fetching every control partition (positions are kept).
    fn pause_control(&mut self, pause: bool) {
        if self.control_paused == pause {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for p in &self.control_partitions {
            tpl.add_partition(&self.config.control_topic, *p);
        }
        let result = if pause {
            self.consumer.pause(&tpl)
        } else {
            self.consumer.resume(&tpl)
        };
        match result {
            Ok(()) => self.control_paused = pause,
            Err(e) => debug!(pause, error = %e, "cannot pause or resume the control topic"),
        }
    }

    fn event(&self, payload: Payload) -> Event {
        Event {
            id: Uuid::new_v4(),
            timestamp_micros: chrono::Utc::now().timestamp_micros(),
            group_id: self.config.connect_group.clone(),
            payload,
        }
    }

    /// Sends events in one transaction, with the `-coord` group offsets when given.
    /// Sends events in one transaction. Ok(false): the transaction failed for a reason that may
    /// pass (a broker restart) and was aborted; Err: this coordinator was fenced or its producer
    /// broke for good.
    fn send(
        &mut self,
        events: Vec<Event>,
        coord_offsets: Option<&BTreeMap<i32, i64>>,
    ) -> Result<bool, SinkError> {
        let encoded = events
            .iter()
            .map(crate::events::encode)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SinkError::Config(format!("encoding a control event: {e}")))?;
        if self.producer_broken {
            // A transaction could not even be aborted (the broker was away): start a fresh
            // producer with the same id, which aborts the old transaction and fences the old
            // instance. If the broker is still away, try again next cycle.
            match transactional_producer(&self.config.kafka_props, &self.config.transactional_id) {
                Ok(p) => {
                    self.producer = p;
                    self.producer_broken = false;
                }
                Err(e) => {
                    warn!(error = %e, "cannot recreate the coordinator producer yet");
                    return Ok(false);
                }
            }
        }
        match self.try_send(&encoded, coord_offsets) {
            Ok(()) => Ok(true),
            Err(e) if is_fatal(&e) => Err(SinkError::Config(format!(
                "coordinator transaction failed; a newer coordinator has fenced this one: {e}"
            ))),
            Err(e) => {
                warn!(error = %e, "coordinator transaction failed; aborting it and retrying next cycle");
                if let Err(abort) =
                    tokio::task::block_in_place(|| self.producer.abort_transaction(KAFKA_TIMEOUT))
                {
                    if is_fatal(&abort) {
                        return Err(SinkError::Config(format!(
                            "coordinator producer failed: {abort}"
                        )));
                    }
                    self.producer_broken = true;
                }
                Ok(false)
            }
        }
    }

    fn try_send(
        &mut self,
        encoded: &[Vec<u8>],
        coord_offsets: Option<&BTreeMap<i32, i64>>,
    ) -> Result<(), rdkafka::error::KafkaError> {
        self.producer.begin_transaction()?;
        for bytes in encoded {
            self.producer
                .send(
                    BaseRecord::to(&self.config.control_topic)
                        .key(&self.key)
                        .payload(bytes),
                )
                .map_err(|(e, _)| e)?;
        }
        if let Some(offsets) = coord_offsets {
            if let Some(metadata) = self.consumer.group_metadata() {
                let mut tpl = TopicPartitionList::new();
                for (p, o) in offsets {
                    tpl.add_partition_offset(&self.config.control_topic, *p, Offset::Offset(*o))?;
                }
                tokio::task::block_in_place(|| {
                    self.producer
                        .send_offsets_to_transaction(&tpl, &metadata, KAFKA_TIMEOUT)
                })?;
            }
        }
        tokio::task::block_in_place(|| self.producer.commit_transaction(KAFKA_TIMEOUT))
    }

    fn expected_partitions(&self) -> Result<BTreeSet<TopicPartition>, SinkError> {
        // One named topic: ask for it alone, not for every topic of the cluster.
        let only = match (&self.config.topics[..], &self.config.topics_regex) {
            ([topic], None) => Some(topic.as_str()),
            _ => None,
        };
        let metadata =
            tokio::task::block_in_place(|| self.consumer.fetch_metadata(only, KAFKA_TIMEOUT))
                .map_err(|e| SinkError::Config(format!("cannot read topic metadata: {e}")))?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| {
                self.config.topics.iter().any(|n| n == t.name())
                    || self
                        .config
                        .topics_regex
                        .as_ref()
                        .is_some_and(|r| r.is_match(t.name()))
            })
            .flat_map(|t| {
                t.partitions()
                    .iter()
                    .map(|p| TopicPartition::new(t.name(), p.id()))
            })
            .collect())
    }

    /// Ends the commit cycle (`all_ok`: every table committed, the buffer cleared).
    fn end_cycle(&mut self, all_ok: bool) {
        self.state.end(all_ok);
        crate::sink_metrics::commit_in_progress(&self.config.connector, false);
    }

    fn start_commit(&mut self) -> Result<(), SinkError> {
        let id = Uuid::new_v4();
        self.remember(id);
        let expected = self.expected_partitions()?;
        self.last_start = Instant::now();
        self.last_cycle = self.last_start;
        self.state.start(id, expected, self.last_start);
        crate::sink_metrics::commit_in_progress(&self.config.connector, true);
        let start = self.event(Payload::StartCommit { commit_id: id });
        if !self.send(vec![start], None)? {
            // Nobody was asked; start again next interval.
            self.end_cycle(false);
        }
        debug!(commit_id = %id, "commit started");
        Ok(())
    }

    async fn commit(&mut self, partial: bool) -> Result<(), SinkError> {
        let Some(commit_id) = self.state.current() else {
            return Ok(());
        };
        let valid_through = if partial {
            None
        } else {
            self.state.valid_through()
        };
        if partial {
            warn!(commit_id = %commit_id, "commit timeout reached before every partition answered; committing what arrived");
        }
        let tables: Vec<(TableKey, Vec<Envelope>)> = self
            .state
            .by_table()
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().cloned().collect()))
            .collect();
        let mut all_ok = true;
        let mut outage = false;
        let mut server_error = false;
        let mut announcements = Vec::new();
        // Up to `iceberg.control.commit.threads` tables commit at once.
        let this = &*self;
        let mut commits: Vec<TableCommitFuture<'_>> = Vec::with_capacity(tables.len());
        for (key, envelopes) in &tables {
            commits.push(Box::pin(async move {
                let refs: Vec<&Envelope> = envelopes.iter().collect();
                let outcome = this
                    .commit_table(key, &refs, commit_id, valid_through)
                    .await;
                (key.clone(), outcome)
            }));
        }
        let outcomes: Vec<(TableKey, Result<Option<i64>, SinkError>)> =
            futures::stream::iter(commits)
                .buffer_unordered(self.config.commit_threads.max(1))
                .collect()
                .await;
        for (key, outcome) in outcomes {
            match outcome {
                Ok(Some(snapshot_id)) => announcements.push(self.event(Payload::CommitToTable {
                    commit_id,
                    table_reference: TableReference {
                        catalog: key.catalog.clone(),
                        namespace: key.namespace.clone(),
                        name: key.name.clone(),
                        table_uuid: tables.iter().find(|(k, _)| *k == key).and_then(
                            |(_, envelopes)| envelopes.iter().find_map(|e| e.table.table_uuid),
                        ),
                    },
                    snapshot_id: Some(snapshot_id),
                    valid_through_ts_micros: valid_through,
                })),
                Ok(None) => {}
                Err(e) => {
                    all_ok = false;
                    let message = e.to_string();
                    if crate::outage::transient(&message) || self.unreachable().await {
                        // An outage is not a failed commit: the files stay buffered and the
                        // commit is retried next cycle; a catalog answering server errors,
                        // for `server_error_timeout` at most.
                        outage = true;
                        server_error |= crate::outage::server_error(&message);
                        warn!(table = %key.display_name(), commit_id = %commit_id, error = %e, "catalog or storage unreachable; the commit is retried next cycle");
                    } else {
                        warn!(table = %key.display_name(), commit_id = %commit_id, error = %e, "table commit failed; its files stay buffered for the next cycle");
                    }
                }
            }
        }
        if all_ok {
            // Never move the -coord offsets backwards (I3).
            let coord_offsets = self.state.consumed_offsets().clone();
            announcements.push(self.event(Payload::CommitComplete {
                commit_id,
                valid_through_ts_micros: valid_through,
            }));
            if !self.send(announcements, Some(&coord_offsets))? {
                // The tables hold the files; the buffer stays and is filtered by the tables'
                // offsets next cycle (I2), so nothing is committed twice.
                self.end_cycle(false);
                return Ok(());
            }
            self.consecutive_failures = 0;
            self.server_errors.clear();
            info!(commit_id = %commit_id, partial, "commit complete");
            self.maintain(&tables).await;
        } else {
            if !announcements.is_empty() {
                let _ = self.send(announcements, None)?;
            }
            let counts = if outage {
                let counts = self.server_errors.counts(
                    server_error,
                    Instant::now(),
                    self.config.server_error_timeout,
                );
                if counts {
                    warn!(commit_id = %commit_id, "the catalog has answered server errors for longer than floe.control.commit.server-error-timeout-ms; this failed commit counts toward iceberg.control.commit.max-consecutive-failures");
                }
                counts
            } else {
                true
            };
            if !partial && counts {
                self.consecutive_failures += 1;
                if self.consecutive_failures >= self.config.max_consecutive_failures {
                    self.end_cycle(false);
                    return Err(SinkError::Config(format!(
                        "{} consecutive commits failed (iceberg.control.commit.max-consecutive-failures)",
                        self.consecutive_failures
                    )));
                }
            }
        }
        self.end_cycle(all_ok);
        Ok(())
    }

    /// Maintains the tables of this coordinator's catalog it committed on `main` whose time
    /// has come (channel/maintainer.rs), after every completed commit cycle (idle ones too,
    /// so a table is compacted after its stream stops).
    async fn maintain(&mut self, tables: &[(TableKey, Vec<Envelope>)]) {
        let committed: Vec<(String, Vec<String>, String)> = tables
            .iter()
            .map(|(key, _)| (key.display_name(), key))
            .filter(|(name, key)| {
                key.catalog == self.catalog_name && self.config.branch_for(name).is_none()
            })
            .map(|(name, key)| (name, key.namespace.clone(), key.name.clone()))
            .collect();
        if let Some(m) = self.maintainer.as_mut() {
            m.after_cycle(committed).await;
        }
    }

    /// Commits one table; Ok(None) when there was nothing new for it.
    async fn commit_table(
        &self,
        key: &TableKey,
        envelopes: &[&Envelope],
        commit_id: Uuid,
        valid_through: Option<i64>,
    ) -> Result<Option<i64>, SinkError> {
        let name = key.display_name();
        let ident = TableIdent::new(
            NamespaceIdent::from_vec(key.namespace.clone())
                .map_err(|e| SinkError::Config(format!("table {name}: {e}")))?,
            key.name.clone(),
        );
        if key.catalog != self.catalog_name {
            debug!(table = %name, catalog = %key.catalog, "files for another catalog; skipped");
            return Ok(None);
        }
        let started = Instant::now();
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let table = match self.catalog.load_table(&ident).await {
                Ok(t) => t,
                Err(e) => {
                    // Asked only when the load itself found no table: a load that failed
                    // otherwise keeps the files, whatever an existence check would answer.
                    let exists = if e.kind() == iceberg::ErrorKind::TableNotFound {
                        self.catalog.table_exists(&ident).await.ok()
                    } else {
                        None
                    };
                    if table_gone(&e, exists) {
                        warn!(table = %name, "table no longer exists; its files are skipped");
                        return Ok(None);
                    }
                    return Err(SinkError::Table {
                        table: name,
                        message: format!("cannot load: {e}"),
                    });
                }
            };
            let current = for_table_uuid(envelopes, table.metadata().uuid());
            if current.len() < envelopes.len() {
                warn!(table = %name, skipped = envelopes.len() - current.len(), "table was replaced (uuid changed); files written for the old table are skipped");
            }
            let branch = self.config.branch_for(&name).map(str::to_string);
            let committed = self.committed_offsets(&table, branch.as_deref());
            let groups = files_by_envelope(&current, &committed);
            if groups.is_empty() {
                return Ok(None);
            }
            let offsets = merge_offsets(&committed, self.state.consumed_offsets());
            let mut properties = std::collections::HashMap::from([
                (self.config.offsets_key(), offsets_json(&offsets)),
                (summary::COMMIT_ID.to_string(), commit_id.to_string()),
                (
                    summary::TASK_ID.to_string(),
                    format!("{}-{}", self.config.connector, self.config.task_id),
                ),
            ]);
            if let Some(vtts) = valid_through {
                properties.insert(
                    summary::VALID_THROUGH_TS.to_string(),
                    summary::format_timestamp(vtts.div_euclid(1000)),
                );
            }
            let schema = table.metadata().current_schema().clone();
            let spec_id = table.metadata().default_partition_spec_id();
            // Files written under an older spec (another writer evolved it meanwhile) are
            // committed under theirs; a spec the table does not hold is an invalid file.
            let mut data_specs = std::collections::HashMap::new();
            for (data, _) in &groups {
                for f in data {
                    let Some(own) = f.spec_id.filter(|s| *s != spec_id) else {
                        continue;
                    };
                    if table.metadata().partition_spec_by_id(own).is_none() {
                        return Err(SinkError::Table {
                            table: name.clone(),
                            message: format!(
                                "invalid announced file {}: partition spec {own} is not in the table",
                                f.file_path
                            ),
                        });
                    }
                    data_specs.insert(f.file_path.clone(), own);
                }
            }
            let to_files =
                |files: Vec<WireDataFile>| -> Result<Vec<iceberg::spec::DataFile>, SinkError> {
                    files
                        .iter()
                        .map(|f| f.to_data_file(&schema, spec_id))
                        .collect::<Result<_, _>>()
                        .map_err(|e| SinkError::Table {
                            table: name.clone(),
                            message: format!("invalid announced file: {e}"),
                        })
                };
            let groups = groups
                .into_iter()
                .map(|(data, deletes)| Ok((to_files(data)?, to_files(deletes)?)))
                .collect::<Result<Vec<_>, SinkError>>()?;
            let mut added = crate::sink_metrics::Committed {
                data_files: 0,
                delete_files: 0,
                bytes: 0,
                records: 0,
                seconds: 0.0,
                lag_seconds: valid_through
                    .map(|micros| (chrono::Utc::now().timestamp_micros() - micros) as f64 / 1e6),
                data_file_sizes: Vec::new(),
            };
            for (data, deletes) in &groups {
                added.data_files += data.len();
                added.delete_files += deletes.len();
                added.bytes += data
                    .iter()
                    .chain(deletes)
                    .map(|f| f.file_size_in_bytes())
                    .sum::<u64>();
                added.records += data.iter().map(|f| f.record_count()).sum::<u64>();
                added
                    .data_file_sizes
                    .extend(data.iter().map(|f| f.file_size_in_bytes()));
            }
            let cache = self.key_cache(&name);
            let mut cache = cache.lock().await;
            match crate::delta::commit(
                &self.catalog,
                &table,
                groups,
                &data_specs,
                properties,
                branch.as_deref(),
                &mut cache,
            )
            .await
            {
                Ok(CommitOutcome::Committed(snapshot_id)) => {
                    info!(table = %name, commit_id = %commit_id, snapshot_id, "table committed");
                    added.seconds = started.elapsed().as_secs_f64();
                    crate::sink_metrics::table_committed(&self.config.connector, &name, &added);
                    crash_point("coordinator-after-table-commit");
                    return Ok(Some(snapshot_id));
                }
                Ok(CommitOutcome::Conflict(reason)) if attempt < ATTEMPTS => {
                    info!(table = %name, attempt, reason = %reason, "commit conflict; reloading and revalidating");
                }
                Ok(CommitOutcome::Conflict(reason)) => {
                    return Err(SinkError::Table {
                        table: name,
                        message: format!("commit conflict: {reason}"),
                    });
                }
                Ok(CommitOutcome::Unknown(reason)) => {
                    warn!(table = %name, reason = %reason, "commit outcome unknown; looking for the commit id in the table");
                    if let Some(snapshot_id) =
                        self.find_commit(&ident, branch.as_deref(), commit_id).await
                    {
                        return Ok(Some(snapshot_id));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(SinkError::Table {
            table: name,
            message: "commit did not succeed: the commit state is unknown after every attempt"
                .into(),
        })
    }

    /// The key index cache of table `name`.
    fn key_cache(&self, name: &str) -> Arc<tokio::sync::Mutex<KeyIndexCache>> {
        match self.key_caches.lock() {
            Ok(mut caches) => caches.entry(name.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// Whether the catalog (or the storage of the tables being committed) does not answer: a
    /// commit that failed during an outage is retried, never counted against
    /// `max-consecutive-failures` (outage.rs).
    async fn unreachable(&self) -> bool {
        let mut tables = Vec::new();
        for key in self.state.by_table().keys().take(3) {
            let Ok(ns) = NamespaceIdent::from_vec(key.namespace.clone()) else {
                continue;
            };
            let ident = TableIdent::new(ns, key.name.clone());
            let load =
                tokio::time::timeout(Duration::from_secs(5), self.catalog.load_table(&ident));
            match load.await {
                Ok(Ok(table)) => tables.push(table),
                _ => return true,
            }
        }
        !crate::outage::reachable(&*self.catalog, &tables).await
    }

    /// Control-topic offsets stored in the branch's ancestry (I2), ignoring offsets beyond the
    /// end of a control-topic partition: the topic was recreated, and stale offsets must not
    /// filter out every new file.
    fn committed_offsets(&self, table: &Table, branch: Option<&str>) -> BTreeMap<i32, i64> {
        let stored = stored_offsets(table, branch, &self.config.offsets_key());
        let ends = high_watermarks(
            &self.consumer,
            &self.config.control_topic,
            &self.control_partitions,
        );
        stored
            .into_iter()
            .filter(|(p, o)| match ends.get(p) {
                Some(end) if o > end => {
                    warn!(partition = p, stored = o, end, "stored control-topic offset is beyond the topic's end (topic recreated?); ignoring it");
                    false
                }
                _ => true,
            })
            .collect()
    }

    async fn find_commit(
        &self,
        ident: &TableIdent,
        branch: Option<&str>,
        commit_id: Uuid,
    ) -> Option<i64> {
        let table = self.catalog.load_table(ident).await.ok()?;
        let id = commit_id.to_string();
        let found = ancestry(&table, branch).find_map(|s| {
            (s.summary().additional_properties.get(summary::COMMIT_ID) == Some(&id))
                .then_some(s.snapshot_id())
        });
        found
    }
}

/// Whether the table whose load failed with `load_error` is gone, so the files written for it
/// are skipped and the offsets move past them: only when the load said the table does not
/// exist (`ErrorKind::TableNotFound`; Java's `Coordinator.commitToTable` skips on
/// `NoSuchTableException` alone) and the catalog, asked again, has no such table (`exists`:
/// None when it was not asked or did not answer). Any other failure — the catalog answering
/// 5xx or not at all, the metadata file unreadable, a SQL error — is not a missing table: the
/// files stay buffered and the commit is retried next cycle.
fn table_gone(load_error: &iceberg::Error, exists: Option<bool>) -> bool {
    load_error.kind() == iceberg::ErrorKind::TableNotFound && exists == Some(false)
}

fn ancestry<'a>(
    table: &'a Table,
    branch: Option<&str>,
) -> impl Iterator<Item = &'a iceberg::spec::SnapshotRef> + 'a {
    let metadata = table.metadata();
    let head = match branch {
        Some(b) => metadata.snapshot_for_ref(b),
        None => metadata.current_snapshot(),
    };
    crate::snapshot::ancestry(metadata, head.map(|s| s.snapshot_id()))
}

/// The offsets JSON of the newest snapshot in the ancestry that carries `key`.
/// How long commits have failed with a catalog's server errors (HTTP 5xx answers): ridden out
/// as an outage up to a bound, then each one counts as a failed commit, so a catalog that
/// keeps answering the same error does not leave files buffered forever. A catalog that does
/// not answer at all is ridden out however long it lasts.
#[derive(Debug, Default)]
struct ServerErrors {
    since: Option<Instant>,
}

impl ServerErrors {
    /// Whether a commit that failed in an outage at `now` counts as a failure:
    /// `server_error` (the catalog answered 5xx) for longer than `timeout` since the first
    /// such failure. An outage without a server's answer neither counts nor ends the run.
    fn counts(&mut self, server_error: bool, now: Instant, timeout: Duration) -> bool {
        if !server_error {
            return false;
        }
        let since = *self.since.get_or_insert(now);
        now.duration_since(since) >= timeout
    }

    /// A commit went through.
    fn clear(&mut self) {
        self.since = None;
    }
}

pub fn stored_offsets(table: &Table, branch: Option<&str>, key: &str) -> BTreeMap<i32, i64> {
    ancestry(table, branch)
        .find_map(|s| {
            s.summary()
                .additional_properties
                .get(key)
                .and_then(|j| parse_offsets_json(j))
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use iceberg::{Error, ErrorKind};

    use std::time::{Duration, Instant};

    use super::{table_gone, ServerErrors};

    #[test]
    fn server_errors_count_as_failures_only_past_their_bound() {
        let t0 = Instant::now();
        let bound = Duration::from_secs(60);
        let mut errors = ServerErrors::default();
        // A catalog that does not answer is ridden out, and starts no clock.
        assert!(!errors.counts(false, t0 + Duration::from_secs(600), bound));
        assert!(!errors.counts(true, t0, bound));
        assert!(!errors.counts(true, t0 + Duration::from_secs(59), bound));
        assert!(!errors.counts(false, t0 + Duration::from_secs(61), bound));
        assert!(errors.counts(true, t0 + Duration::from_secs(60), bound));
        assert!(errors.counts(true, t0 + Duration::from_secs(90), bound));
        // A commit that went through starts the clock again.
        errors.clear();
        assert!(!errors.counts(true, t0 + Duration::from_secs(91), bound));
        assert!(errors.counts(true, t0 + Duration::from_secs(151), bound));
    }

    #[test]
    fn only_a_load_that_found_no_table_skips_its_files() {
        let not_found = Error::new(ErrorKind::TableNotFound, "table db.t does not exist");
        assert!(table_gone(&not_found, Some(false)));
        // Asked again, the catalog has the table, or does not answer: the files wait.
        assert!(!table_gone(&not_found, Some(true)));
        assert!(!table_gone(&not_found, None));
        // A load that failed for another reason is no missing table, even when an existence
        // check says there is none: a 5xx or an unreadable metadata file (Unexpected), a
        // metadata file that does not parse (DataInvalid), a missing namespace.
        for kind in [
            ErrorKind::Unexpected,
            ErrorKind::DataInvalid,
            ErrorKind::FeatureUnsupported,
            ErrorKind::NamespaceNotFound,
            ErrorKind::CatalogCommitConflicts,
        ] {
            let e = Error::new(kind, "table db.t does not exist");
            assert!(!table_gone(&e, Some(false)), "{kind:?}");
            assert!(!table_gone(&e, None), "{kind:?}");
        }
    }
}
