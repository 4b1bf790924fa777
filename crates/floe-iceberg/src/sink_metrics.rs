//! The Iceberg sink's own metrics (docs/metrics.md), in the worker's registry under
//! `floe_sink_*` (commits) and `floe_table_*` (maintenance and table health), labelled with the
//! connector and the table. The connector's coordinator reports them; they go when it stops.

use std::sync::Arc;

use floe_connect::metrics::{registry, Kind, Labels, Value};

use crate::maintenance::compact::CompactReport;
use crate::maintenance::expire::ExpireReport;
use crate::maintenance::health::HealthReport;
use crate::maintenance::orphans::OrphanReport;

fn labels(connector: &str, table: &str) -> Labels {
    vec![
        ("connector", connector.to_string()),
        ("table", table.to_string()),
    ]
}

/// What one table commit of the coordinator added.
pub struct Committed {
    pub data_files: usize,
    pub delete_files: usize,
    pub bytes: u64,
    pub records: u64,
    pub seconds: f64,
    /// Now minus the commit's `valid-through-ts`.
    pub lag_seconds: Option<f64>,
    /// The size of each data file committed.
    pub data_file_sizes: Vec<u64>,
}

/// Upper bounds of the data-file size histogram: from the few-kilobyte files of a frequent
/// commit to Java's 512 MiB target.
const FILE_SIZE_BOUNDS: [f64; 9] = [
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    134_217_728.0,
    268_435_456.0,
    536_870_912.0,
];

pub fn table_committed(connector: &str, table: &str, c: &Committed) {
    let r = registry();
    let l = || labels(connector, table);
    let sizes = r.histogram(
        "floe_sink_data_file_size_bytes",
        "Sizes of the data files committed",
        l(),
        &FILE_SIZE_BOUNDS,
    );
    for size in &c.data_file_sizes {
        sizes.observe(*size as f64);
    }
    r.counter(
        "floe_sink_commits_total",
        "Table commits by the connector's coordinator",
        l(),
    )
    .add(1.0);
    r.counter(
        "floe_sink_commit_seconds_total",
        "Time spent committing the table (divide by floe_sink_commits_total for the average)",
        l(),
    )
    .add(c.seconds);
    r.gauge(
        "floe_sink_last_commit_seconds",
        "Time the last commit of the table took",
        l(),
    )
    .set(c.seconds);
    r.counter(
        "floe_sink_data_files_committed_total",
        "Data files committed",
        l(),
    )
    .add(c.data_files as f64);
    r.counter(
        "floe_sink_delete_files_committed_total",
        "Delete files committed",
        l(),
    )
    .add(c.delete_files as f64);
    r.counter(
        "floe_sink_bytes_committed_total",
        "Bytes of the data and delete files committed",
        l(),
    )
    .add(c.bytes as f64);
    r.counter(
        "floe_sink_records_committed_total",
        "Records of the data files committed",
        l(),
    )
    .add(c.records as f64);
    if let Some(lag) = c.lag_seconds {
        r.gauge(
            "floe_sink_commit_lag_seconds",
            "At the last commit: now minus its kafka.connect.valid-through-ts",
            l(),
        )
        .set(lag);
    }
}

pub fn compacted(connector: &str, r: &CompactReport) {
    let l = || labels(connector, &r.table);
    let m = registry();
    m.counter("floe_table_compactions_total", "Compactions committed", l())
        .add(1.0);
    m.counter(
        "floe_table_compaction_files_rewritten_total",
        "Data files rewritten by compaction",
        l(),
    )
    .add(r.data_files_rewritten as f64);
    m.counter(
        "floe_table_compaction_bytes_rewritten_total",
        "Bytes rewritten by compaction",
        l(),
    )
    .add(r.bytes_rewritten as f64);
}

pub fn expired(connector: &str, r: &ExpireReport) {
    let l = || labels(connector, &r.table);
    let m = registry();
    m.counter(
        "floe_table_snapshots_expired_total",
        "Snapshots expired",
        l(),
    )
    .add(r.snapshots_expired as f64);
    m.counter(
        "floe_table_expired_files_deleted_total",
        "Data and delete files deleted with expired snapshots",
        l(),
    )
    .add(r.files_deleted as f64);
}

pub fn orphans_removed(connector: &str, r: &OrphanReport) {
    let l = || labels(connector, &r.table);
    registry()
        .counter(
            "floe_table_orphan_files_removed_total",
            "Orphan files deleted",
            l(),
        )
        .add((r.orphans - r.failed) as f64);
}

/// The table's health figures (docs/maintenance.md), as of the last maintenance run.
pub fn health(connector: &str, h: &HealthReport) {
    let l = || labels(connector, &h.table);
    let m = registry();
    let gauges: [(&'static str, &'static str, Option<f64>); 11] = [
        (
            "floe_table_snapshots",
            "Snapshots the table's metadata holds",
            Some(h.snapshots as f64),
        ),
        (
            "floe_table_data_files",
            "Live data files",
            Some(h.data_files as f64),
        ),
        (
            "floe_table_delete_files",
            "Live delete files",
            Some(h.delete_files as f64),
        ),
        (
            "floe_table_data_manifests",
            "Data manifests of the head",
            Some(h.data_manifests as f64),
        ),
        (
            "floe_table_records",
            "Records in the live data files",
            Some(h.records as f64),
        ),
        (
            "floe_table_avg_data_file_bytes",
            "Average live data file size",
            Some(h.avg_data_file_bytes as f64),
        ),
        (
            "floe_table_small_files",
            "Live data files under the small-file threshold",
            Some(h.small_files as f64),
        ),
        (
            "floe_table_small_file_share",
            "Share of live data files under the small-file threshold",
            Some(h.small_file_share),
        ),
        (
            "floe_table_commits_last_hour",
            "Snapshots of main committed in the last hour",
            Some(h.commits_last_hour as f64),
        ),
        (
            "floe_table_oldest_small_file_age_seconds",
            "Age of the oldest small data file (compaction lag)",
            h.oldest_small_file_age_ms.map(|ms| ms as f64 / 1000.0),
        ),
        (
            "floe_table_freshness_seconds",
            "Now minus the newest kafka.connect.valid-through-ts",
            h.freshness_ms.map(|ms| ms as f64 / 1000.0),
        ),
    ];
    for (name, help, v) in gauges {
        if let Some(v) = v {
            m.gauge(name, help, l()).set(v);
        }
    }
}

/// Drops the connector's coordinator series (its coordinator stopped).
pub fn forget(connector: &str) {
    for prefix in ["floe_sink_", "floe_table_"] {
        registry().remove(prefix, &[("connector", connector)]);
    }
}

/// Whether the connector's coordinator has a commit cycle under way (asked the tasks, waiting
/// for their answers or committing), 1 or 0; the series exists while the coordinator runs here.
pub fn commit_in_progress(connector: &str, yes: bool) {
    registry()
        .gauge(
            "floe_sink_commit_in_progress",
            "1 while the connector's coordinator (on this worker) runs a commit cycle",
            vec![("connector", connector.to_string())],
        )
        .set(if yes { 1.0 } else { 0.0 });
}

/// A commit cycle the connector's coordinator skipped because it would have committed nothing
/// (docs/control-topic.md, "Idle connectors").
pub fn cycle_skipped(connector: &str) {
    registry()
        .counter(
            "floe_sink_commit_cycles_skipped_total",
            "Commit cycles the connector's coordinator (on this worker) skipped: nothing had arrived since the last quiet cycle",
            vec![("connector", connector.to_string())],
        )
        .add(1.0);
}

/// What a task holds for the next commit: records and Arrow bytes written since its last
/// answer (`floe_task_records_buffered`, `floe_task_bytes_buffered`, labels `connector`,
/// `task`); the series go with the task.
pub struct TaskBuffer {
    records: Arc<Value>,
    bytes: Arc<Value>,
}

impl TaskBuffer {
    pub fn register(connector: &str, task: u32) -> TaskBuffer {
        let labels = || -> Labels {
            vec![
                ("connector", connector.to_string()),
                ("task", task.to_string()),
            ]
        };
        let r = registry();
        TaskBuffer {
            records: r.fresh(
                "floe_task_records_buffered",
                "Records the task has written since it last answered a commit",
                Kind::Gauge,
                labels(),
            ),
            bytes: r.fresh(
                "floe_task_bytes_buffered",
                "Arrow bytes of the records the task has written since it last answered a commit",
                Kind::Gauge,
                labels(),
            ),
        }
    }

    pub fn set(&self, records: u64, bytes: u64) {
        self.records.set(records as f64);
        self.bytes.set(bytes as f64);
    }
}

impl Drop for TaskBuffer {
    fn drop(&mut self) {
        registry().remove_values(&[&self.records, &self.bytes]);
    }
}
