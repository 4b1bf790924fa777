//! `org.apache.iceberg.connect.IcebergSinkConnector` and its task.
//!
//! Tasks write files; on each `StartCommit` from the connector's coordinator they announce the
//! files and commit their source offsets in one Kafka transaction (see `channel`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::events::{Event, Payload, TableReference, TopicPartitionOffset, WireDataFile};
use async_trait::async_trait;
use floe_connect::config_def::ConfigKey;
use floe_connect::{ConfigMap, Offsets, SinkConnector, SinkTask, TaskContext, TaskError};
use floe_data::{SinkRecord, TopicPartition, Value};
use iceberg::spec::{DataFile, FormatVersion};
use iceberg::table::Table;
use iceberg::{Catalog, NamespaceIdent, TableCreation, TableIdent};
use tracing::{debug, info, warn};

use crate::arrow::Lookup;
use crate::avro_rows::AvroRows;
use crate::catalog::{load_catalog, CatalogHandle};
use crate::channel::coordinator::{self, CoordinatorConfig, CoordinatorHandle};
use crate::channel::kafka::{client_props, ensure_control_topic};
use crate::channel::producers;
use crate::channel::worker::WorkerChannel;
use crate::config::{self, IcebergSinkConfig};
use crate::error::SinkError;
use crate::json_rows::JsonRows;
use crate::outage::Outage;
use crate::rows::{RawRows, Row};
use crate::schema::{partition_spec, schema_for_record, with_identifier_fields};
use crate::schema_update::{self, EvolveOptions};
use crate::writer::TableWriter;
use arrow_array::RecordBatch;
use floe_convert::RawValues;

mod changes;
use crate::delta::changes::ChangeBuffer;

/// The connector class name.
pub const CONNECTOR_CLASS: &str = "org.apache.iceberg.connect.IcebergSinkConnector";
/// The predecessor's class name, accepted as well.
pub const TABULAR_CONNECTOR_CLASS: &str = "io.tabular.iceberg.connect.IcebergSinkConnector";
const TASK_CLASS: &str = "org.apache.iceberg.connect.IcebergSinkTask";

/// The Iceberg sink connector plugin.
#[derive(Debug, Default)]
pub struct IcebergSinkConnector;

impl SinkConnector for IcebergSinkConnector {
    fn class_name(&self) -> &'static str {
        CONNECTOR_CLASS
    }

    fn other_class_names(&self) -> &'static [&'static str] {
        &[TABULAR_CONNECTOR_CLASS]
    }

    fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    fn config_keys(&self) -> Vec<ConfigKey> {
        config::config_keys()
    }

    fn validate(&self, config: &ConfigMap) -> Vec<(String, String)> {
        config::validate(config)
    }

    fn task_configs(&self, config: &ConfigMap, max_tasks: usize) -> Vec<ConfigMap> {
        let generation = uuid::Uuid::new_v4();
        (0..max_tasks)
            .map(|i| {
                let mut c = config.clone();
                c.insert(
                    "iceberg.coordinator.transactional.suffix".into(),
                    format!("-txn-{generation}-{i}"),
                );
                c.insert("task.id".into(), i.to_string());
                c
            })
            .collect()
    }

    fn generated_keys(&self) -> &'static [&'static str] {
        &["iceberg.coordinator.transactional.suffix"]
    }

    fn task_class(&self) -> &'static str {
        TASK_CLASS
    }

    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::new(IcebergSinkTask::default())
    }
}

/// A running sink task.
#[derive(Default)]
pub struct IcebergSinkTask {
    state: Option<Started>,
}

struct Started {
    config: IcebergSinkConfig,
    catalog: CatalogHandle,
    context: TaskContext,
    connect_group: String,
    writers: BTreeMap<String, TableWriter>,
    /// Per table in delta mode (upserts, CDC), the cycle's changes (sink/changes.rs).
    changes: BTreeMap<String, ChangeBuffer>,
    /// Files of writers closed before a schema update, announced with the next answer.
    flushed: Vec<(String, iceberg::table::Table, Vec<DataFile>)>,
    channel: WorkerChannel,
    coordinator: Option<CoordinatorHandle>,
    /// Partitions this task owns; every `DataComplete` lists all of them, idle ones too.
    assigned: BTreeSet<TopicPartition>,
    /// Next offset and Kafka timestamp (ms) of the last record per partition, since the last
    /// announcement.
    source_offsets: BTreeMap<TopicPartition, (i64, Option<i64>)>,
    /// Rows and Arrow bytes written since the last announcement.
    buffered_records: u64,
    buffered_bytes: u64,
    /// The two figures above, as gauges on /metrics.
    buffer_metrics: crate::sink_metrics::TaskBuffer,
    early_commit_requested: bool,
    /// Bytes per row of each string column in the last batch read straight from JSON, per
    /// table: what the next batch reserves.
    row_widths: HashMap<String, Vec<usize>>,
    /// The last commit this task answered, and whether partitions assigned since need it
    /// answered again.
    last_answered: Option<uuid::Uuid>,
    reanswer: bool,
    /// Each table as last loaded: written to while the catalog does not answer.
    known_tables: HashMap<String, Table>,
    outage: Outage,
}

fn connect_err(e: SinkError) -> TaskError {
    TaskError::connect(e.to_string())
}

impl IcebergSinkTask {
    fn started(&mut self) -> Result<&mut Started, TaskError> {
        self.state
            .as_mut()
            .ok_or_else(|| TaskError::connect("The Iceberg sink task was not started"))
    }
}

#[async_trait]
impl SinkTask for IcebergSinkTask {
    async fn start(&mut self, config: &ConfigMap, context: TaskContext) -> Result<(), TaskError> {
        let config = IcebergSinkConfig::parse(config).map_err(TaskError::connect)?;
        let catalog = load_catalog(&config.catalog_name, &config.catalog_props)
            .await
            .map_err(connect_err)?;
        let connect_group = config
            .connect_group_id
            .clone()
            .unwrap_or_else(|| context.group_id.clone());
        let kafka_props = client_props(&context.kafka_props, &config.kafka_props);
        ensure_control_topic(&kafka_props, &config.control_topic)
            .await
            .map_err(connect_err)?;
        // The worker's tasks of this connector share one transactional producer, named after
        // the worker (channel/producers.rs); without a worker id, one per task.
        let worker_base = format!("{}worker", config.transactional_prefix);
        let transactional_id = match context.worker_id() {
            Some(worker) => producers::worker_transactional_id(
                &worker_base,
                &config.transactional_suffix,
                worker,
            ),
            None => format!("{worker_base}{}", config.transactional_suffix),
        };
        let channel = WorkerChannel::open(
            &kafka_props,
            &config.control_topic,
            &connect_group,
            &config.group_id_prefix,
            &transactional_id,
        )
        .map_err(connect_err)?;
        // Task 0 runs the connector's coordinator; its stable transactional id fences any
        // older one (docs/control-topic.md, I6).
        let coordinator = (context.task_id == 0).then(|| {
            coordinator::spawn(
                CoordinatorConfig {
                    connector: config.connector_name.clone(),
                    task_id: context.task_id,
                    connect_group: connect_group.clone(),
                    control_topic: config.control_topic.clone(),
                    transactional_id: format!(
                        "{}coordinator-{connect_group}",
                        config.transactional_prefix
                    ),
                    kafka_props: kafka_props.clone(),
                    commit_interval: config.commit_interval,
                    commit_timeout: config.commit_timeout,
                    max_consecutive_failures: config.max_consecutive_failures,
                    server_error_timeout: config.server_error_timeout,
                    commit_threads: config.commit_threads,
                    topics: config.topics.clone(),
                    topics_regex: config.topics_regex.clone(),
                    default_branch: config.default_commit_branch.clone(),
                    table_branches: config.table_commit_branch.clone(),
                    maintenance: config.maintenance.clone(),
                },
                catalog.clone(),
                config.catalog_name.clone(),
            )
        });
        info!(connector = %context.connector, task = context.task_id, catalog = %config.catalog_name, control_topic = %config.control_topic, "iceberg sink task started");
        let buffer_metrics =
            crate::sink_metrics::TaskBuffer::register(&context.connector, context.task_id);
        self.state = Some(Started {
            config,
            catalog,
            context,
            connect_group,
            writers: BTreeMap::new(),
            changes: BTreeMap::new(),
            flushed: Vec::new(),
            last_answered: None,
            reanswer: false,
            channel,
            coordinator,
            assigned: BTreeSet::new(),
            source_offsets: BTreeMap::new(),
            buffered_records: 0,
            buffered_bytes: 0,
            buffer_metrics,
            early_commit_requested: false,
            row_widths: HashMap::new(),
            known_tables: HashMap::new(),
            outage: Outage::default(),
        });
        Ok(())
    }

    async fn open(&mut self, partitions: &[TopicPartition]) -> Result<(), TaskError> {
        let s = self.started()?;
        let before = s.assigned.len();
        s.assigned.extend(partitions.iter().cloned());
        // Partitions that arrive after this task answered the current cycle would leave it
        // waiting for its timeout: answer that cycle again, for them (I8).
        if s.assigned.len() > before && s.last_answered.is_some() {
            s.reanswer = true;
        }
        Ok(())
    }

    async fn put(&mut self, records: Vec<SinkRecord>) -> Result<(), TaskError> {
        let s = self.started()?;
        if let Some(failure) = s.coordinator.as_ref().and_then(|c| c.failure()) {
            return Err(TaskError::connect(format!(
                "Coordinator unexpectedly terminated on committer {}-{}: {failure}",
                s.config.connector_name, s.context.task_id
            )));
        }
        let records = if s.outage.waiting() {
            // Waiting out an outage: records that still arrive are read again afterwards.
            if !records.is_empty() {
                s.context.request_rewind();
            }
            Vec::new()
        } else {
            if s.outage.lasted().is_some() {
                s.context.hold_consumption(false);
            }
            records
        };
        let wrote = !records.is_empty();
        match s.put_records(records).await {
            Ok(()) => {
                if wrote {
                    if let Some(lasted) = s.outage.end() {
                        info!(
                            outage_ms = lasted.as_millis() as u64,
                            "catalog and storage answer again; writing resumed"
                        );
                    }
                }
                Ok(())
            }
            Err(e) => s.ride_out(e).await,
        }
    }

    async fn pre_commit(
        &mut self,
        _current: &Offsets,
        _closing: bool,
    ) -> Result<Offsets, TaskError> {
        // Source offsets are committed inside the control-topic transaction, never by the
        // worker's consumer.
        Ok(Offsets::new())
    }

    async fn close(&mut self, partitions: &[TopicPartition]) -> Result<(), TaskError> {
        let s = self.started()?;
        for tp in partitions {
            s.assigned.remove(tp);
        }
        s.abandon().await;
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), TaskError> {
        if let Some(mut s) = self.state.take() {
            if let Some(c) = s.coordinator.take() {
                c.stop().await;
            }
            s.abandon().await;
        }
        Ok(())
    }

    fn decodes_raw_values(&self, _raw: RawValues) -> bool {
        // Upserts and CDC read each record's key and operation: values come decoded.
        self.state
            .as_ref()
            .is_none_or(|s| s.config.delta_mode().is_none())
    }
}

impl Started {
    /// Writes a batch, answers the commit cycles started meanwhile, and asks for an early
    /// commit when the buffer is full.
    async fn put_records(&mut self, records: Vec<SinkRecord>) -> Result<(), TaskError> {
        let s = self;
        if records.iter().any(|r| r.encoded_value.is_some()) {
            s.write_encoded(records).await?;
        } else if !records.is_empty() {
            s.note_offsets(&records);
            s.write(&records).await?;
        }
        let mut answered = false;
        for commit_id in s.channel.start_commits().map_err(connect_err)? {
            s.answer(commit_id).await?;
            answered = true;
        }
        if s.reanswer && !answered {
            if let Some(commit_id) = s.last_answered {
                debug!(commit_id = %commit_id, "partitions assigned after answering; answering again");
                s.answer(commit_id).await?;
            }
        }
        s.reanswer = false;
        s.buffer_metrics.set(s.buffered_records, s.buffered_bytes);
        if s.buffer_full() {
            // At the limit: ask for a commit, and read nothing more until this task has
            // answered one (its files closed, its buffers empty) — memory stays bounded.
            s.context.hold_consumption(true);
            if !s.early_commit_requested {
                s.early_commit_requested = true;
                if let Err(e) = s.channel.request_commit(&s.connect_group) {
                    warn!(error = %e, "cannot ask for an early commit; the next scheduled one will do");
                }
            }
        }
        Ok(())
    }

    /// A write or an answer failed: if the catalog or the storage does not answer, the task
    /// rides the outage out (outage.rs) instead of failing; otherwise the error stands.
    async fn ride_out(&mut self, error: TaskError) -> Result<(), TaskError> {
        let tables: Vec<Table> = self.known_tables.values().cloned().collect();
        if !crate::outage::transient(&error.to_string())
            && crate::outage::reachable(&*self.catalog, &tables).await
        {
            return Err(error);
        }
        let wait = self.outage.begin();
        warn!(
            error = %error,
            retry_in_ms = wait.as_millis() as u64,
            outage_ms = self.outage.lasted().map_or(0, |d| d.as_millis() as u64),
            "catalog or storage unreachable: dropping unannounced files, rewinding to the committed offsets and retrying"
        );
        self.abandon().await;
        self.context.request_rewind();
        self.context.hold_consumption(true);
        Ok(())
    }
}

/// How record fields are matched to the columns of `table` (its name mapping, else by name).
fn lookup_for(
    table: &str,
    writer: &TableWriter,
    case_insensitive: bool,
) -> Result<Lookup, TaskError> {
    Lookup::for_table(writer.table().metadata().properties(), case_insensitive)
        .map_err(|e| TaskError::connect(format!("Table {table}: {e}")))
}

/// `ns.table` (multi-level namespaces allowed) → identifier.
fn table_ident(name: &str) -> Result<TableIdent, SinkError> {
    let parts: Vec<&str> = name.split('.').map(str::trim).collect();
    if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(SinkError::Config(format!(
            "Invalid table name {name}: expected namespace.table"
        )));
    }
    TableIdent::from_strs(parts)
        .map_err(|e| SinkError::Config(format!("Invalid table name {name}: {e}")))
}

/// Checks a table name a record chose (dynamic routing): `namespace.table`, each part without
/// `/`, `\\` or control characters and neither `.` nor `..`, so the table's default location
/// (`<warehouse>/<namespace parts>/<table>`) stays under the warehouse. Err says why not.
fn routed_table_name(name: &str) -> Result<(), &'static str> {
    if name.chars().any(|c| c.is_control()) {
        return Err("holds a control character");
    }
    if name.contains(['/', '\\']) {
        return Err("holds a path separator");
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() < 2 || parts.iter().any(|p| p.trim().is_empty()) {
        return Err("is not namespace.table");
    }
    Ok(())
}

/// Reads a dotted path from a struct or map value.
pub(crate) fn route_value(record: &SinkRecord, path: &str) -> Result<Option<String>, String> {
    let mut schema = record.value_schema.as_deref();
    let mut value = &record.value;
    for part in path.split('.') {
        match value {
            Value::Struct(values) => {
                let s = schema.ok_or("struct value without schema")?;
                let Some((i, f)) = s.field(part) else {
                    return Ok(None);
                };
                schema = Some(&f.schema);
                value = &values[i];
            }
            Value::Map(entries) => {
                let Some((_, v)) = entries.iter().find(|(k, _)| k.as_str() == Some(part)) else {
                    return Ok(None);
                };
                schema = schema.and_then(|s| s.values.as_deref());
                value = v;
            }
            Value::Null => return Ok(None),
            other => {
                return Err(format!(
                    "cannot read route field {path}: found {} at {part}",
                    other.kind()
                ))
            }
        }
    }
    Ok(if value.is_null() {
        None
    } else {
        Some(value.to_string())
    })
}

impl Started {
    /// The tables a record with a route field goes to (Java `SinkWriter` routing); `Err` says
    /// why the record cannot be routed.
    fn route(&self, record: &SinkRecord, field: &str) -> Result<Vec<String>, String> {
        let value = route_value(record, field)
            .map_err(|e| format!("{e} (record {})", record.coordinates()))?;
        let Some(value) = value else {
            return Err(format!(
                "Route field {field} is missing or null in record {}; the record cannot be routed",
                record.coordinates()
            ));
        };
        if self.config.dynamic_enabled {
            let name = value.to_lowercase();
            routed_table_name(&name).map_err(|why| {
                format!(
                    "Route field {field} of record {} names table {name:?}, which {why}; the record cannot be routed",
                    record.coordinates()
                )
            })?;
            return Ok(vec![name]);
        }
        Ok(self
            .config
            .tables
            .iter()
            .filter(|t| {
                self.config
                    .route_regex
                    .get(*t)
                    .is_some_and(|re| re.is_match(&value))
            })
            .cloned()
            .collect())
    }

    /// Remembers the next offset and timestamp of the partition `record` was read from (its
    /// topic before any transform renamed it: offsets belong to what the consumer reads).
    fn note_offset(&mut self, record: &SinkRecord) {
        self.source_offsets.insert(
            record.source_partition(),
            (record.offset + 1, record.timestamp),
        );
    }

    /// Notes the offsets of a batch: once per run of records from the same partition (the
    /// last one of a run carries the partition's latest offset), not once per record.
    fn note_offsets(&mut self, records: &[SinkRecord]) {
        for (i, r) in records.iter().enumerate() {
            let run_ends = records.get(i + 1).is_none_or(|next| {
                next.partition != r.partition || next.source_topic() != r.source_topic()
            });
            if run_ends {
                self.note_offset(r);
            }
        }
    }

    /// Writes a batch whose values the worker left encoded (schemaless JSON or Avro): read
    /// straight into the table's columns where [`JsonRows`] or [`AvroRows`] can, the rest
    /// decoded as the worker would have and written through [`Started::write`].
    async fn write_encoded(&mut self, records: Vec<SinkRecord>) -> Result<(), TaskError> {
        self.note_offsets(&records);
        let general = match self.fast_table() {
            Some(table) => self.write_raw_rows(&table, &records).await?,
            None => vec![true; records.len()],
        };
        let mut rest = Vec::new();
        for (mut record, general) in records.into_iter().zip(general) {
            if general && self.context.decode_value(&mut record).await? {
                rest.push(record);
            }
        }
        if !rest.is_empty() {
            self.write(&rest).await?;
        }
        Ok(())
    }

    /// The table the fast path writes to: the one static table, when there is no route field.
    fn fast_table(&self) -> Option<String> {
        match (&self.config.route_field, self.config.tables.as_slice()) {
            (None, [table]) => Some(table.clone()),
            _ => None,
        }
    }

    /// Reads the encoded values of `records` into a batch of `table`'s writer; answers, per
    /// record, whether the general path must take it (all of them while the table does not
    /// exist: creating it takes a decoded record).
    async fn write_raw_rows(
        &mut self,
        table: &str,
        records: &[SinkRecord],
    ) -> Result<Vec<bool>, TaskError> {
        let mut general = vec![true; records.len()];
        if !self.ensure_writer(table, None).await? {
            return Ok(general);
        }
        let Some(writer) = self.writers.get(table) else {
            return Ok(general);
        };
        let lookup = lookup_for(table, writer, self.config.case_insensitive)?;
        let widths = self.row_widths.get(table).map_or(&[][..], Vec::as_slice);
        let schema = writer.table().metadata().current_schema();
        let converter = self.context.value_converter();
        let rows = match converter.and_then(|c| c.raw_values()) {
            Some(RawValues::SchemalessJson) => JsonRows::new(
                schema,
                writer.arrow_schema(),
                lookup,
                self.config.evolve_schema,
                records.len(),
                widths,
            )
            .map(RawRows::Json),
            Some(RawValues::Avro) => converter.and_then(|c| {
                AvroRows::new(
                    schema,
                    writer.arrow_schema(),
                    lookup,
                    self.config.evolve_schema,
                    c.clone(),
                    records.len(),
                    widths,
                )
                .map(RawRows::Avro)
            }),
            None => None,
        };
        let Some(mut rows) = rows else {
            return Ok(general);
        };
        for (r, general) in records.iter().zip(general.iter_mut()) {
            *general = match &r.encoded_value {
                // A tombstone: nothing to write.
                None => !r.value.is_null(),
                Some(bytes) => rows.push(bytes) == Row::Fallback,
            };
        }
        if rows.columns().len() > 0 {
            if let Some(widths) = rows.columns().widths() {
                self.row_widths.insert(table.to_string(), widths);
            }
            let batch = rows.finish().map_err(|e| {
                TaskError::connect(format!("Table {table}: cannot assemble the batch: {e}"))
            })?;
            self.write_batch(table, batch).await?;
        }
        Ok(general)
    }

    /// Writes decoded records (offsets noted by the caller).
    async fn write(&mut self, records: &[SinkRecord]) -> Result<(), TaskError> {
        let mut by_table: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        // Without a route field every record goes to every static table: rows are collected
        // once, not routed one by one.
        let mut to_all_tables: Vec<usize> = Vec::new();
        let route_field = self.config.route_field.clone();
        for (i, r) in records.iter().enumerate() {
            if r.value.is_null() {
                continue; // tombstone: consumed, nothing to write
            }
            match &route_field {
                None => to_all_tables.push(i),
                Some(field) => match self.route(r, field) {
                    Ok(tables) => {
                        for table in tables {
                            by_table.entry(table).or_default().push(i);
                        }
                    }
                    Err(message) => self.context.report_errant(r, TASK_CLASS, message).await?,
                },
            }
        }
        if !to_all_tables.is_empty() {
            for table in &self.config.tables {
                by_table
                    .entry(table.clone())
                    .or_default()
                    .extend_from_slice(&to_all_tables);
            }
        }
        for (table, mut rows) in by_table {
            if !self.ensure_writer(&table, Some(&records[rows[0]])).await? {
                for i in rows {
                    let r = &records[i];
                    let message = format!(
                        "Table {table} does not exist and iceberg.tables.auto-create-enabled is false (record {})",
                        r.coordinates()
                    );
                    self.context.report_errant(r, TASK_CLASS, message).await?;
                }
                continue;
            }
            if self.config.evolve_schema {
                self.evolve(&table, records, &rows).await?;
            }
            let Some(writer) = self.writers.get(&table) else {
                continue;
            };
            if self.config.delta_mode().is_some() {
                self.buffer_changes(&table, records, rows).await?;
                continue;
            }
            let table_schema = writer.table().metadata().current_schema().clone();
            let arrow_schema = writer.arrow_schema().clone();
            let lookup = lookup_for(&table, writer, self.config.case_insensitive)?;
            let batch = self
                .convert_rows(
                    &table,
                    &table_schema,
                    &arrow_schema,
                    &lookup,
                    records,
                    &mut rows,
                )
                .await?;
            if let Some(batch) = batch {
                self.write_batch(&table, batch).await?;
            }
        }
        Ok(())
    }

    /// Hands a batch to the table's writer and counts it against the buffer limits by the
    /// bytes its rows take (not the capacity reserved for them).
    async fn write_batch(&mut self, table: &str, batch: RecordBatch) -> Result<(), TaskError> {
        let Some(writer) = self.writers.get_mut(table) else {
            return Ok(());
        };
        self.buffered_records += batch.num_rows() as u64;
        self.buffered_bytes += batch
            .columns()
            .iter()
            .map(|c| {
                c.to_data()
                    .get_slice_memory_size()
                    .unwrap_or_else(|_| c.get_array_memory_size())
            })
            .sum::<usize>() as u64;
        writer.write(batch).await.map_err(connect_err)
    }

    /// Evolves the table's schema for what `rows` of `records` carry (added, promoted, relaxed
    /// columns): the open writer is closed first (its files are announced with the next answer),
    /// the schema update is committed, and a writer on the new schema takes over.
    async fn evolve(
        &mut self,
        name: &str,
        records: &[SinkRecord],
        rows: &[usize],
    ) -> Result<(), TaskError> {
        let Some(writer) = self.writers.get(name) else {
            return Ok(());
        };
        let options = EvolveOptions {
            case_insensitive: self.config.case_insensitive,
            force_optional: self.config.force_optional,
        };
        let schema = writer.table().metadata().current_schema().clone();
        let mut changes = Vec::new();
        // A record with a Connect schema asks only what its schema asks: records sharing one
        // schema (a converter's cached schema) are walked once.
        let mut walked: Vec<&floe_data::Schema> = Vec::new();
        for i in rows {
            let r = &records[*i];
            if let Some(s) = r.value_schema.as_deref() {
                if walked.iter().any(|w| std::ptr::eq(*w, s)) {
                    continue;
                }
                walked.push(s);
            }
            schema_update::collect_changes(
                &schema,
                r.value_schema.as_deref(),
                &r.value,
                options,
                &mut changes,
            );
        }
        if changes.is_empty() {
            return Ok(());
        }
        let first = &records[rows[0]];
        debug!(table = name, changes = changes.len(), record = %first.coordinates(), "records need a schema update");
        if let Some(writer) = self.writers.remove(name) {
            let table = writer.table().clone();
            let files = writer.close().await.map_err(connect_err)?;
            if !files.is_empty() {
                self.flushed.push((name.to_string(), table, files));
            }
        }
        let ident = table_ident(name).map_err(connect_err)?;
        let table = schema_update::evolve(&self.catalog, &ident, &changes, options)
            .await
            .map_err(|e| {
                TaskError::connect(format!("{e} (evolving for record {})", first.coordinates()))
            })?;
        let writer = TableWriter::open(name, table, &self.config.write_props)
            .await
            .map_err(connect_err)?;
        self.writers.insert(name.to_string(), writer);
        Ok(())
    }

    /// Opens the writer of table `name`, creating the table from `first` when auto-create is
    /// on; `false` when the table does not exist and may not (or, without `first`, cannot) be
    /// created.
    async fn ensure_writer(
        &mut self,
        name: &str,
        first: Option<&SinkRecord>,
    ) -> Result<bool, TaskError> {
        if self.writers.contains_key(name) {
            return Ok(true);
        }
        let ident = table_ident(name).map_err(connect_err)?;
        let table = match self.load_table(name, &ident).await {
            Ok(Some(table)) => table,
            Ok(None) => match (self.config.auto_create, first) {
                (true, Some(first)) => {
                    create_table(&*self.catalog, &self.config, name, &ident, first).await?
                }
                _ => return Ok(false),
            },
            // The catalog does not answer: the table as last loaded is good to write to; the
            // coordinator holds the files until it can commit them.
            Err(e) => match self.known_tables.get(name) {
                Some(known) => {
                    debug!(table = name, error = %e, "catalog unavailable; writing to the table as last loaded");
                    known.clone()
                }
                None => return Err(e),
            },
        };
        self.known_tables.insert(name.to_string(), table.clone());
        let writer = TableWriter::open(name, table, &self.config.write_props)
            .await
            .map_err(connect_err)?;
        self.writers.insert(name.to_string(), writer);
        Ok(true)
    }
}

impl Started {
    /// The current state of table `name`, or None when it does not exist.
    async fn load_table(&self, name: &str, ident: &TableIdent) -> Result<Option<Table>, TaskError> {
        let exists = self.catalog.table_exists(ident).await.map_err(|e| {
            TaskError::connect(format!("Cannot check whether table {name} exists: {e}"))
        })?;
        if !exists {
            return Ok(None);
        }
        self.catalog
            .load_table(ident)
            .await
            .map(Some)
            .map_err(|e| TaskError::connect(format!("Cannot load table {name}: {e}")))
    }
}

/// Auto-creates a table from the first record routed to it.
async fn create_table(
    catalog: &dyn Catalog,
    config: &IcebergSinkConfig,
    name: &str,
    ident: &TableIdent,
    first: &SinkRecord,
) -> Result<iceberg::table::Table, TaskError> {
    let schema = schema_for_record(
        first.value_schema.as_deref(),
        &first.value,
        config.force_optional,
    )
    .map_err(|e| {
        TaskError::data(format!(
            "Cannot create table {name} from record {}: {e}",
            first.coordinates()
        ))
    })?;
    let schema = with_identifier_fields(schema, &config.id_columns(name))
        .map_err(|e| TaskError::connect(format!("Cannot create table {name}: {e}")))?;
    let namespace: &NamespaceIdent = ident.namespace();
    let ns_exists = catalog.namespace_exists(namespace).await.unwrap_or(false);
    if !ns_exists {
        // Another task may create it at the same time; a failure here is checked below.
        if let Err(e) = catalog.create_namespace(namespace, HashMap::new()).await {
            debug!(namespace = ?namespace, error = %e, "namespace creation failed (may already exist)");
        }
    }
    let mut props: HashMap<String, String> = config.auto_create_props.clone().into_iter().collect();
    let format_version = match props.remove("format-version").as_deref().map(str::trim) {
        Some("1") => FormatVersion::V1,
        Some("3") => FormatVersion::V3,
        _ => FormatVersion::V2,
    };
    let mut creation = TableCreation::builder()
        .name(ident.name().to_string())
        .schema(schema.clone())
        .properties(props)
        .format_version(format_version)
        .build();
    if let Some(spec) = config.partition_by(name) {
        creation.partition_spec = Some(partition_spec(&schema, spec).map_err(connect_err)?);
    }
    match catalog.create_table(namespace, creation).await {
        Ok(t) => {
            info!(table = name, "table created");
            Ok(t)
        }
        Err(create_err) => catalog
            .load_table(ident)
            .await
            .map_err(|_| TaskError::connect(format!("Cannot create table {name}: {create_err}"))),
    }
}

impl Started {
    /// Whether this task holds more than its configured buffer limits.
    fn buffer_full(&self) -> bool {
        self.config
            .max_buffered_records
            .is_some_and(|n| self.buffered_records >= n)
            || self
                .config
                .max_buffered_bytes
                .is_some_and(|n| self.buffered_bytes >= n)
    }

    /// Drops every open writer and its files, and forgets the offsets they held.
    async fn abandon(&mut self) {
        for (_, writer) in std::mem::take(&mut self.writers) {
            writer.abandon().await;
        }
        for buffer in self.changes.values_mut() {
            buffer.take();
        }
        for (_, table, files) in std::mem::take(&mut self.flushed) {
            for f in files {
                let _ = table.file_io().delete(f.file_path()).await;
            }
        }
        self.source_offsets.clear();
        self.buffered_records = 0;
        self.buffered_bytes = 0;
        self.buffer_metrics.set(0, 0);
        self.early_commit_requested = false;
        self.context.hold_consumption(false);
    }

    /// Answers a `StartCommit`: the files of every open writer, then the assignment, with the
    /// source offsets, in one transaction (I1). On failure the files are dropped and the worker
    /// rewinds, so the records are read again for a later cycle.
    async fn answer(&mut self, commit_id: uuid::Uuid) -> Result<(), TaskError> {
        self.last_answered = Some(commit_id);
        let mut key_deletes = self.flush_changes().await?;
        let now = chrono::Utc::now().timestamp_micros();
        let event = |payload| Event {
            id: uuid::Uuid::new_v4(),
            timestamp_micros: now,
            group_id: self.connect_group.clone(),
            payload,
        };
        let mut events = Vec::new();
        let mut written: Vec<(iceberg::io::FileIO, DataFile)> = Vec::new();
        let mut closed = std::mem::take(&mut self.flushed);
        for (name, writer) in std::mem::take(&mut self.writers) {
            let table = writer.table().clone();
            let files = writer.close().await.map_err(connect_err)?;
            closed.push((name, table, files));
        }
        for (name, table, files) in closed {
            written.extend(files.iter().map(|f| (table.file_io().clone(), f.clone())));
            let spec_id = table.metadata().default_partition_spec_id();
            let wire: Vec<WireDataFile> = files
                .iter()
                .map(|f| WireDataFile::from_data_file(f, spec_id))
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    TaskError::connect(format!("Cannot announce the files of table {name}: {e}"))
                })?;
            let deletes: Vec<WireDataFile> = key_deletes
                .iter()
                .filter(|(t, _)| *t == name)
                .map(|(_, f)| WireDataFile::from_data_file(f, spec_id))
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    TaskError::connect(format!(
                        "Cannot announce the deleted keys of table {name}: {e}"
                    ))
                })?;
            key_deletes.retain(|(t, _)| *t != name);
            let ident = table_ident(&name).map_err(connect_err)?;
            events.push(event(Payload::DataWritten {
                commit_id,
                table_reference: TableReference {
                    catalog: self.config.catalog_name.clone(),
                    namespace: ident.namespace().clone().inner(),
                    name: ident.name().to_string(),
                    table_uuid: Some(table.metadata().uuid()),
                },
                partition_type: table.metadata().default_partition_type().clone(),
                data_files: wire,
                delete_files: deletes,
            }));
        }
        let assignments = self
            .assigned
            .iter()
            .map(|tp| {
                let seen = self.source_offsets.get(tp);
                TopicPartitionOffset {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset: seen.map(|(next, _)| *next),
                    timestamp_micros: seen.and_then(|(_, ts)| ts.map(|ms| ms * 1000)),
                }
            })
            .collect();
        events.push(event(Payload::DataComplete {
            commit_id,
            assignments,
        }));
        let offsets: BTreeMap<TopicPartition, i64> = self
            .source_offsets
            .iter()
            .map(|(tp, (next, _))| (tp.clone(), *next))
            .collect();
        let metadata = self.context.group_metadata();
        let sent = self.channel.send(&events, &offsets, metadata.as_ref());
        self.source_offsets.clear();
        self.buffered_records = 0;
        self.buffered_bytes = 0;
        self.buffer_metrics.set(0, 0);
        self.early_commit_requested = false;
        self.context.hold_consumption(false);
        if let Err(e) = sent {
            // The transaction's outcome may be unknown (a commit that timed out may still have
            // been completed by the broker), so a committed DataWritten may reference these
            // files: they are left in place — orphan cleanup removes them if no snapshot does —
            // and the records are read again from the committed offsets.
            warn!(commit_id = %commit_id, error = %e, files = written.len(), "answering the commit failed; leaving this cycle's files and rewinding");
            self.context.request_rewind();
        } else {
            debug!(commit_id = %commit_id, files = written.len(), "answered commit");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_need_a_namespace() {
        assert_eq!(
            table_ident("db.events").unwrap(),
            TableIdent::from_strs(["db", "events"]).unwrap()
        );
        assert_eq!(
            table_ident("a.b.c").unwrap(),
            TableIdent::from_strs(["a", "b", "c"]).unwrap()
        );
        assert!(table_ident("events").is_err());
    }

    #[test]
    fn routed_names_stay_under_the_warehouse() {
        assert_eq!(routed_table_name("db.events"), Ok(()));
        assert_eq!(routed_table_name("db.a.b"), Ok(()));
        for bad in [
            "events",
            "db..events",
            "db.",
            ".events",
            "db.../etc",
            "db./x",
            "../../etc.passwd",
            "db.a/b",
            "db.a\\b",
            "db.a\nb",
            "db.a\u{0}b",
            "db. ",
        ] {
            assert!(routed_table_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn task_configs_carry_ids_and_suffixes() {
        let base = ConfigMap::from([("name".to_string(), "ice".to_string())]);
        let configs = IcebergSinkConnector.task_configs(&base, 2);
        assert_eq!(configs.len(), 2);
        assert_eq!(configs[1]["task.id"], "1");
        assert!(configs[1]["iceberg.coordinator.transactional.suffix"].starts_with("-txn-"));
        assert!(configs[1]["iceberg.coordinator.transactional.suffix"].ends_with("-1"));
    }
}
