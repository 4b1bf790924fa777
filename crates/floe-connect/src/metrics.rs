//! The worker's metrics (docs/metrics.md): one registry per process, rendered in the
//! Prometheus text format by `GET /metrics` under the names Strimzi's JMX exporter rules give a
//! Java worker's MBeans (`kafka_connect_sink_task_sink_record_read_total{connector,task}`…),
//! so the dashboards and alerts written for Java work unchanged.
//!
//! Counters and gauges are registered once per series (name + labels) and updated through
//! cheap handles (an atomic each); series a task owns go when the task stops. Figures the
//! worker already knows elsewhere (connector and task states, the process) are collected when
//! scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// What a series is to Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Cumulative buckets (`_bucket{le=…}`), `_sum` and `_count`: see [`Histogram`].
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// The label a histogram's `_sum` and `_count` series carry in the registry to tell them from
/// its buckets; written as the sample name's suffix, never as a label.
const SUFFIX_LABEL: &str = "__suffix";

/// A histogram's series: a cumulative count per upper bound (the last is `+Inf`), the sum and
/// the count of the observed values.
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<(f64, Arc<Value>)>,
    sum: Arc<Value>,
    count: Arc<Value>,
}

impl Histogram {
    /// Records one value.
    pub fn observe(&self, v: f64) {
        for (bound, count) in &self.buckets {
            if v <= *bound {
                count.add(1.0);
            }
        }
        self.sum.add(v);
        self.count.add(1.0);
    }
}

/// A series' labels, in order.
pub type Labels = Vec<(&'static str, String)>;

/// A number (an `f64` in an atomic): a counter's total or a gauge's value.
#[derive(Debug, Default)]
pub struct Value(AtomicU64);

impl Value {
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    pub fn add(&self, v: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    /// Raises the value to `v` if it is lower.
    pub fn max(&self, v: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                (v > f64::from_bits(bits)).then_some(v.to_bits())
            });
    }
}

struct Family {
    help: &'static str,
    kind: Kind,
    series: BTreeMap<Labels, Arc<Value>>,
}

/// The process's metrics.
#[derive(Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

/// The registry of this process.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

impl Registry {
    /// The series of family `name` (registered on first use), locked.
    fn family<R>(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        f: impl FnOnce(&mut BTreeMap<Labels, Arc<Value>>) -> R,
    ) -> R {
        let mut families = match self.families.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        let family = families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        f(&mut family.series)
    }

    /// The series `name{labels}`, registered on first use.
    pub fn series(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: Labels,
    ) -> Arc<Value> {
        self.family(name, help, kind, |series| {
            series.entry(labels).or_default().clone()
        })
    }

    /// A new series `name{labels}`, replacing one registered before (a restarted task's
    /// counters start again, as Java's).
    pub fn fresh(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: Labels,
    ) -> Arc<Value> {
        let value = Arc::new(Value::default());
        self.family(name, help, kind, |series| {
            series.insert(labels, value.clone())
        });
        value
    }

    /// Drops the series whose value is one of `values` (and not a newer series under the
    /// same labels).
    pub fn remove_values(&self, values: &[&Arc<Value>]) {
        let mut families = match self.families.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        for family in families.values_mut() {
            family
                .series
                .retain(|_, v| !values.iter().any(|mine| Arc::ptr_eq(v, mine)));
        }
    }

    pub fn counter(&self, name: &'static str, help: &'static str, labels: Labels) -> Arc<Value> {
        self.series(name, help, Kind::Counter, labels)
    }

    pub fn gauge(&self, name: &'static str, help: &'static str, labels: Labels) -> Arc<Value> {
        self.series(name, help, Kind::Gauge, labels)
    }

    /// The histogram `name{labels}` with upper `bounds` (ascending; `+Inf` is added),
    /// registered on first use.
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: Labels,
        bounds: &[f64],
    ) -> Histogram {
        let with = |extra: (&'static str, String)| {
            let mut l = labels.clone();
            l.push(extra);
            l
        };
        let buckets = bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .map(|b| {
                let series = self.series(name, help, Kind::Histogram, with(("le", number(b))));
                (b, series)
            })
            .collect();
        Histogram {
            buckets,
            sum: self.series(
                name,
                help,
                Kind::Histogram,
                with((SUFFIX_LABEL, "_sum".into())),
            ),
            count: self.series(
                name,
                help,
                Kind::Histogram,
                with((SUFFIX_LABEL, "_count".into())),
            ),
        }
    }

    /// Drops every series of the families named `prefix…` whose labels include all of
    /// `matching`.
    pub fn remove(&self, prefix: &str, matching: &[(&'static str, &str)]) {
        let mut families = match self.families.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (_, family) in families.iter_mut().filter(|(n, _)| n.starts_with(prefix)) {
            family.series.retain(|labels, _| {
                !matching
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            });
        }
    }

    /// Every registered series in the Prometheus text format.
    pub fn render(&self, out: &mut Exposition) {
        let families = match self.families.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (name, family) in families.iter() {
            for (labels, value) in &family.series {
                out.sample(name, family.help, family.kind, labels, value.get());
            }
        }
    }
}

/// The Prometheus text format being written: each family's `# HELP`/`# TYPE` once, then its
/// samples (families must not interleave, so samples are grouped by name first).
#[derive(Default)]
pub struct Exposition {
    families: BTreeMap<String, Samples>,
}

/// A family's help, kind and samples.
type Samples = (String, Kind, Vec<(Labels, f64)>);

impl Exposition {
    pub fn sample(&mut self, name: &str, help: &str, kind: Kind, labels: &Labels, value: f64) {
        self.families
            .entry(name.to_string())
            .or_insert_with(|| (help.to_string(), kind, Vec::new()))
            .2
            .push((labels.clone(), value));
    }

    pub fn finish(self) -> String {
        let mut out = String::new();
        for (name, (help, kind, mut samples)) in self.families {
            if kind == Kind::Histogram {
                samples.sort_by(|(a, _), (b, _)| histogram_order(a).cmp(&histogram_order(b)));
            }
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&help));
            let _ = writeln!(out, "# TYPE {name} {}", kind.as_str());
            for (mut labels, value) in samples {
                out.push_str(&name);
                if kind == Kind::Histogram {
                    match labels.iter().position(|(k, _)| *k == SUFFIX_LABEL) {
                        Some(i) => out.push_str(&labels.remove(i).1),
                        None => out.push_str("_bucket"),
                    }
                }
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", number(value));
            }
        }
        out
    }
}

/// A histogram sample's place: by its other labels, then its buckets by bound, `_sum`, `_count`.
fn histogram_order(labels: &Labels) -> (Labels, u8, u64) {
    let mut rest = Labels::new();
    let (mut class, mut bound) = (0, 0);
    for (k, v) in labels {
        match *k {
            "le" => bound = v.parse::<f64>().map_or(u64::MAX, |b| b.to_bits()),
            SUFFIX_LABEL => class = if v == "_sum" { 1 } else { 2 },
            _ => rest.push((k, v.clone())),
        }
    }
    (rest, class, bound)
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sink task's metrics (Java's `sink-task-metrics` and `task-error-metrics` groups).
pub struct SinkTaskMetrics {
    pub record_read: Arc<Value>,
    pub record_send: Arc<Value>,
    pub partition_count: Arc<Value>,
    pub offset_commit_completion: Arc<Value>,
    pub offset_commit_skip: Arc<Value>,
    put_batch_max_ms: Arc<Value>,
    put_batch_avg_ms: Arc<Value>,
    put_batches: AtomicU64,
    put_ms_sum: Value,
    pub record_failures: Arc<Value>,
    pub record_errors: Arc<Value>,
    pub records_skipped: Arc<Value>,
    pub errors_logged: Arc<Value>,
    pub dlq_requests: Arc<Value>,
    pub dlq_failures: Arc<Value>,
    pub last_error_ms: Arc<Value>,
}

impl SinkTaskMetrics {
    /// Registers the series of task `task` of `connector`.
    pub fn register(connector: &str, task: usize) -> Arc<SinkTaskMetrics> {
        let r = registry();
        let counter = |name, help, labels| r.fresh(name, help, Kind::Counter, labels);
        let gauge = |name, help, labels| r.fresh(name, help, Kind::Gauge, labels);
        let labels = || -> Labels {
            vec![
                ("connector", connector.to_string()),
                ("task", task.to_string()),
            ]
        };
        Arc::new(SinkTaskMetrics {
            record_read: counter(
                "kafka_connect_sink_task_sink_record_read_total",
                "Records read from Kafka by this task, before transformations",
                labels(),
            ),
            record_send: counter(
                "kafka_connect_sink_task_sink_record_send_total",
                "Records handed to the sink after transformations",
                labels(),
            ),
            partition_count: gauge(
                "kafka_connect_sink_task_partition_count",
                "Topic partitions assigned to this task",
                labels(),
            ),
            offset_commit_completion: counter(
                "kafka_connect_sink_task_offset_commit_completion_total",
                "Offset commits completed",
                labels(),
            ),
            offset_commit_skip: counter(
                "kafka_connect_sink_task_offset_commit_skip_total",
                "Offset commits skipped (the sink commits its offsets itself)",
                labels(),
            ),
            put_batch_max_ms: gauge(
                "kafka_connect_sink_task_put_batch_max_time_ms",
                "Longest time taken by the sink to put a batch, in ms",
                labels(),
            ),
            put_batch_avg_ms: gauge(
                "kafka_connect_sink_task_put_batch_avg_time_ms",
                "Average time taken by the sink to put a batch, in ms",
                labels(),
            ),
            put_batches: AtomicU64::new(0),
            put_ms_sum: Value::default(),
            record_failures: gauge(
                "kafka_connect_task_error_total_record_failures",
                "Record processing failures",
                labels(),
            ),
            record_errors: gauge(
                "kafka_connect_task_error_total_record_errors",
                "Records that failed processing",
                labels(),
            ),
            records_skipped: gauge(
                "kafka_connect_task_error_total_records_skipped",
                "Records skipped because of errors",
                labels(),
            ),
            errors_logged: gauge(
                "kafka_connect_task_error_total_errors_logged",
                "Errors logged",
                labels(),
            ),
            dlq_requests: gauge(
                "kafka_connect_task_error_deadletterqueue_produce_requests",
                "Records sent to the dead letter queue",
                labels(),
            ),
            dlq_failures: gauge(
                "kafka_connect_task_error_deadletterqueue_produce_failures",
                "Records that could not be sent to the dead letter queue",
                labels(),
            ),
            last_error_ms: gauge(
                "kafka_connect_task_error_last_error_timestamp",
                "Time of the last error, in ms since the epoch",
                labels(),
            ),
        })
    }

    /// A put of a batch that took `ms`.
    pub fn put_batch(&self, ms: f64) {
        let n = self.put_batches.fetch_add(1, Ordering::Relaxed) + 1;
        self.put_ms_sum.add(ms);
        self.put_batch_max_ms.max(ms);
        self.put_batch_avg_ms.set(self.put_ms_sum.get() / n as f64);
    }

    /// An errant record: counted as a failure and an error, and as skipped when tolerated.
    pub fn record_error(&self, skipped: bool, logged: bool) {
        self.record_failures.add(1.0);
        self.record_errors.add(1.0);
        if skipped {
            self.records_skipped.add(1.0);
        }
        if logged {
            self.errors_logged.add(1.0);
        }
        self.last_error_ms.set(now_ms() as f64);
    }
}

impl Drop for SinkTaskMetrics {
    fn drop(&mut self) {
        registry().remove_values(&[
            &self.record_read,
            &self.record_send,
            &self.partition_count,
            &self.offset_commit_completion,
            &self.offset_commit_skip,
            &self.put_batch_max_ms,
            &self.put_batch_avg_ms,
            &self.record_failures,
            &self.record_errors,
            &self.records_skipped,
            &self.errors_logged,
            &self.dlq_requests,
            &self.dlq_failures,
            &self.last_error_ms,
        ]);
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

const STATES: [&str; 6] = [
    "running",
    "paused",
    "failed",
    "unassigned",
    "destroyed",
    "restarting",
];

/// The connectors and tasks of this worker, from their statuses (Java's
/// `connect-worker-metrics`, `connector-metrics`, `connector-task-metrics` status and
/// `connect-coordinator-metrics`, as Strimzi's rules name them).
pub async fn worker(api: &dyn crate::api::ConnectApi, out: &mut Exposition) {
    let me = api.worker().worker_id.clone();
    let (mut connectors, mut tasks) = (0.0, 0.0);
    for name in api.connector_names().await {
        let Ok(status) = api.connector_status(&name).await else {
            continue;
        };
        let connector: Labels = vec![("connector", name.clone())];
        let conn = &status["connector"];
        let here = conn["worker_id"].as_str() == Some(me.as_str());
        let mut counts: BTreeMap<&str, f64> = STATES.iter().map(|s| (*s, 0.0)).collect();
        let mut total = 0.0;
        for t in status["tasks"].as_array().into_iter().flatten() {
            if t["worker_id"].as_str() != Some(me.as_str()) {
                continue;
            }
            let state = t["state"]
                .as_str()
                .unwrap_or("UNASSIGNED")
                .to_ascii_lowercase();
            if let Some(n) = counts.get_mut(state.as_str()) {
                *n += 1.0;
            }
            total += 1.0;
            let task = t["id"].as_u64().map(|i| i.to_string()).unwrap_or_default();
            out.sample(
                "kafka_connect_connector_task_status",
                "The status of the connector task (the status label).",
                Kind::Gauge,
                &vec![
                    ("connector", name.clone()),
                    ("task", task),
                    ("status", state),
                ],
                1.0,
            );
        }
        if !here && total == 0.0 {
            continue;
        }
        tasks += total;
        if here {
            connectors += 1.0;
            let state = conn["state"]
                .as_str()
                .unwrap_or("UNASSIGNED")
                .to_ascii_lowercase();
            out.sample(
                "kafka_connect_connector_status",
                "The status of the connector (the status label).",
                Kind::Gauge,
                &vec![("connector", name.clone()), ("status", state)],
                1.0,
            );
            let kind = status["type"].as_str().unwrap_or("sink").to_string();
            out.sample(
                "kafka_connect_connector_connector_type",
                "The type of the connector (the connector_type label).",
                Kind::Gauge,
                &vec![("connector", name.clone()), ("connector_type", kind)],
                1.0,
            );
            let version = conn["version"]
                .as_str()
                .unwrap_or(env!("CARGO_PKG_VERSION"))
                .to_string();
            out.sample(
                "kafka_connect_connector_connector_version",
                "The version of the connector class (the connector_version label).",
                Kind::Gauge,
                &vec![("connector", name.clone()), ("connector_version", version)],
                1.0,
            );
            if let Ok(config) = api.connector_config(&name).await {
                if let Some(class) = config.get("connector.class") {
                    out.sample(
                        "kafka_connect_connector_connector_class",
                        "The name of the connector class (the connector_class label).",
                        Kind::Gauge,
                        &vec![
                            ("connector", name.clone()),
                            ("connector_class", class.clone()),
                        ],
                        1.0,
                    );
                }
            }
        }
        out.sample(
            "kafka_connect_worker_connector_total_task_count",
            "The number of tasks of the connector on the worker.",
            Kind::Gauge,
            &connector,
            total,
        );
        for (state, n) in counts {
            let metric = match state {
                "running" => "kafka_connect_worker_connector_running_task_count",
                "paused" => "kafka_connect_worker_connector_paused_task_count",
                "failed" => "kafka_connect_worker_connector_failed_task_count",
                "unassigned" => "kafka_connect_worker_connector_unassigned_task_count",
                "destroyed" => "kafka_connect_worker_connector_destroyed_task_count",
                _ => "kafka_connect_worker_connector_restarting_task_count",
            };
            out.sample(
                metric,
                "The number of tasks of the connector on the worker in this state.",
                Kind::Gauge,
                &connector,
                n,
            );
        }
    }
    let none: Labels = Vec::new();
    out.sample(
        "kafka_connect_worker_connector_count",
        "The number of connectors run in this worker.",
        Kind::Gauge,
        &none,
        connectors,
    );
    out.sample(
        "kafka_connect_worker_task_count",
        "The number of tasks run in this worker.",
        Kind::Gauge,
        &none,
        tasks,
    );
    out.sample(
        "kafka_connect_coordinator_assigned_connectors",
        "The number of connector instances currently assigned to this worker.",
        Kind::Gauge,
        &none,
        connectors,
    );
    out.sample(
        "kafka_connect_coordinator_assigned_tasks",
        "The number of tasks currently assigned to this worker.",
        Kind::Gauge,
        &none,
        tasks,
    );
    out.sample(
        "kafka_connect_worker_rebalance_rebalancing",
        "Whether this worker is currently rebalancing.",
        Kind::Gauge,
        &none,
        if api.is_rebalancing() { 1.0 } else { 0.0 },
    );
}

/// Everything `GET /metrics` answers.
pub async fn scrape(api: &dyn crate::api::ConnectApi) -> String {
    let mut out = Exposition::default();
    worker(api, &mut out).await;
    registry().render(&mut out);
    process(&mut out);
    out.finish()
}

/// A Kafka client's bytes and connections from librdkafka's statistics (Java's client metric
/// groups as Strimzi's rules name them: `kafka_consumer_incoming_byte_total{clientId}`…).
pub struct ClientMetrics {
    incoming: Arc<Value>,
    outgoing: Arc<Value>,
    connections: Arc<Value>,
}

/// How often a client reports its statistics (`statistics.interval.ms`).
pub const CLIENT_STATISTICS_INTERVAL_MS: &str = "15000";

impl ClientMetrics {
    /// Registers the series of the consumer (`producer == false`) or producer `client_id`.
    pub fn register(producer: bool, client_id: &str) -> ClientMetrics {
        let r = registry();
        let labels = || -> Labels { vec![("clientId", client_id.to_string())] };
        let (incoming, outgoing, connections) = if producer {
            (
                "kafka_producer_incoming_byte_total",
                "kafka_producer_outgoing_byte_total",
                "kafka_producer_connection_count",
            )
        } else {
            (
                "kafka_consumer_incoming_byte_total",
                "kafka_consumer_outgoing_byte_total",
                "kafka_consumer_connection_count",
            )
        };
        ClientMetrics {
            incoming: r.fresh(
                incoming,
                "Bytes read off all sockets",
                Kind::Counter,
                labels(),
            ),
            outgoing: r.fresh(
                outgoing,
                "Bytes sent to all servers",
                Kind::Counter,
                labels(),
            ),
            connections: r.fresh(
                connections,
                "Current number of active connections",
                Kind::Gauge,
                labels(),
            ),
        }
    }

    /// The client's latest statistics.
    pub fn update(&self, stats: &rdkafka::Statistics) {
        self.incoming.set(stats.rx_bytes as f64);
        self.outgoing.set(stats.tx_bytes as f64);
        let up = stats.brokers.values().filter(|b| b.state == "UP").count();
        self.connections.set(up as f64);
    }
}

/// A client context that only feeds its statistics to [`ClientMetrics`] (e.g. the DLQ
/// producer's).
pub struct StatsContext(pub ClientMetrics);

impl rdkafka::ClientContext for StatsContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.0.update(&statistics);
    }
}

impl Drop for ClientMetrics {
    fn drop(&mut self) {
        registry().remove_values(&[&self.incoming, &self.outgoing, &self.connections]);
    }
}

/// The process's figures in the standard `process_*` names (from `/proc/self`).
pub fn process(out: &mut Exposition) {
    let none: Labels = Vec::new();
    let page = 4096.0;
    let ticks = 100.0;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // The fields after the command name (which may hold spaces) in parentheses.
        if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
            if let (Some(utime), Some(stime)) = (num(11), num(12)) {
                out.sample(
                    "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.",
                    Kind::Counter,
                    &none,
                    (utime + stime) / ticks,
                );
            }
            if let Some(threads) = num(17) {
                out.sample(
                    "process_threads",
                    "Number of OS threads in the process.",
                    Kind::Gauge,
                    &none,
                    threads,
                );
            }
            if let Some(vsize) = num(20) {
                out.sample(
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes.",
                    Kind::Gauge,
                    &none,
                    vsize,
                );
            }
            if let Some(rss) = num(21) {
                out.sample(
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes.",
                    Kind::Gauge,
                    &none,
                    rss * page,
                );
            }
            if let (Some(start), Some(boot)) = (num(19), boot_time()) {
                out.sample(
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    Kind::Gauge,
                    &none,
                    boot + start / ticks,
                );
            }
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        out.sample(
            "process_open_fds",
            "Number of open file descriptors.",
            Kind::Gauge,
            &none,
            fds.count() as f64,
        );
    }
}

fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_once_with_their_samples() {
        let r = Registry::default();
        r.counter("a_total", "A.", vec![("connector", "x".into())])
            .add(3.0);
        r.counter("a_total", "A.", vec![("connector", "y\"z".into())])
            .add(1.5);
        r.gauge("b", "B\nb.", vec![]).set(7.0);
        let mut out = Exposition::default();
        r.render(&mut out);
        assert_eq!(
            out.finish(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total{connector=\"x\"} 3\na_total{connector=\"y\\\"z\"} 1.5\n# HELP b B\\nb.\n# TYPE b gauge\nb 7\n"
        );
    }

    #[test]
    fn histograms_render_cumulative_buckets_in_order_then_sum_and_count() {
        let r = Registry::default();
        let h = r.histogram(
            "s_bytes",
            "S.",
            vec![("table", "t".into())],
            &[100.0, 1000.0, 20.0e6],
        );
        for v in [50.0, 500.0, 500.0, 5e7] {
            h.observe(v);
        }
        let mut out = Exposition::default();
        r.render(&mut out);
        assert_eq!(
            out.finish(),
            "# HELP s_bytes S.\n# TYPE s_bytes histogram\n\
             s_bytes_bucket{table=\"t\",le=\"100\"} 1\n\
             s_bytes_bucket{table=\"t\",le=\"1000\"} 3\n\
             s_bytes_bucket{table=\"t\",le=\"20000000\"} 3\n\
             s_bytes_bucket{table=\"t\",le=\"+Inf\"} 4\n\
             s_bytes_sum{table=\"t\"} 50001050\n\
             s_bytes_count{table=\"t\"} 4\n"
        );
    }

    #[test]
    fn a_stopped_task_takes_its_series_along() {
        let m = SinkTaskMetrics::register("metrics-test-connector", 3);
        m.record_read.add(10.0);
        m.put_batch(4.0);
        m.put_batch(2.0);
        m.record_error(true, false);
        let mut out = Exposition::default();
        registry().render(&mut out);
        let text = out.finish();
        let labels = "{connector=\"metrics-test-connector\",task=\"3\"}";
        assert!(
            text.contains(&format!(
                "kafka_connect_sink_task_sink_record_read_total{labels} 10\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "kafka_connect_sink_task_put_batch_avg_time_ms{labels} 3\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "kafka_connect_sink_task_put_batch_max_time_ms{labels} 4\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "kafka_connect_task_error_total_records_skipped{labels} 1\n"
            )),
            "{text}"
        );
        drop(m);
        let mut out = Exposition::default();
        registry().render(&mut out);
        assert!(!out.finish().contains("metrics-test-connector"));
    }

    #[test]
    fn numbers() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }

    #[test]
    fn process_figures() {
        let mut out = Exposition::default();
        process(&mut out);
        let text = out.finish();
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_threads",
            "process_open_fds",
        ] {
            assert!(
                text.contains(&format!("\n{name} ")),
                "{name} missing:\n{text}"
            );
        }
    }
}
