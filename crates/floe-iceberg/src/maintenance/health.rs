//! Table health (docs/maintenance.md): figures about a table's files and commits read from
//! its own metadata, so they hold for any writer — how many commits land, how many files a
//! reader opens and how small they are, how long small files have waited for compaction, and
//! how fresh the data is by the sink's `kafka.connect.valid-through-ts`.

use std::collections::{BTreeMap, HashMap};

use iceberg::spec::{
    DataContentType, ManifestContentType, Operation, SnapshotRef, Struct, TableMetadata,
    MAIN_BRANCH,
};
use iceberg::table::Table;
use serde::Serialize;

use crate::snapshot::{load_manifest, manifests_of};

/// The summary key of the sink's freshness (Java's).
const VALID_THROUGH: &str = "kafka.connect.valid-through-ts";
const HOUR_MS: i64 = 60 * 60 * 1000;

/// The files and figures of one partition.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PartitionHealth {
    pub partition: String,
    pub data_files: usize,
    pub delete_files: usize,
    pub data_bytes: u64,
    pub small_files: usize,
}

/// A table's health, as of `now_ms`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct HealthReport {
    pub table: String,
    pub format_version: u8,
    pub now_ms: i64,
    /// Snapshots the metadata holds (every branch).
    pub snapshots: usize,
    /// Snapshots of `main` committed in the last hour, and the rewrites among them.
    pub commits_last_hour: usize,
    pub compactions_last_hour: usize,
    /// `main`'s commits per hour over its retained history (oldest to newest snapshot).
    pub commits_per_hour: f64,
    /// Live files and manifests of `main`'s head.
    pub data_files: usize,
    pub delete_files: usize,
    pub data_manifests: usize,
    pub delete_manifests: usize,
    pub records: u64,
    pub data_bytes: u64,
    pub avg_data_file_bytes: u64,
    pub median_data_file_bytes: u64,
    /// Files under this size count as small (compaction's `min-file-size`).
    pub small_file_threshold_bytes: u64,
    pub small_files: usize,
    pub small_file_share: f64,
    /// Age of the oldest small data file (since the commit that added it): compaction lag.
    pub oldest_small_file_age_ms: Option<i64>,
    /// Age of `main`'s head.
    pub last_commit_age_ms: Option<i64>,
    /// Now minus the newest `kafka.connect.valid-through-ts` along `main`'s ancestry.
    pub freshness_ms: Option<i64>,
    pub partitions: Vec<PartitionHealth>,
}

/// Why the health could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("table {table}: {message}")]
    Table { table: String, message: String },
}

/// `name=value/…` of a partition tuple under spec `spec_id`.
fn partition_name(metadata: &TableMetadata, spec_id: i32, partition: &Struct) -> String {
    let Some(spec) = metadata.partition_spec_by_id(spec_id) else {
        return format!("spec {spec_id}");
    };
    if spec.fields().is_empty() {
        return "(unpartitioned)".to_string();
    }
    let Ok(partition_type) = spec.partition_type(metadata.current_schema()) else {
        return format!("spec {spec_id} {partition:?}");
    };
    spec.fields()
        .iter()
        .zip(partition_type.fields())
        .zip(partition.iter())
        .map(|((field, typed), value)| {
            format!(
                "{}={}",
                field.name,
                field.transform.to_human_string(&typed.field_type, value)
            )
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The median of `sizes` (sorted in place).
fn median(sizes: &mut [u64]) -> u64 {
    if sizes.is_empty() {
        return 0;
    }
    sizes.sort_unstable();
    let mid = sizes.len() / 2;
    if sizes.len().is_multiple_of(2) {
        (sizes[mid - 1] + sizes[mid]) / 2
    } else {
        sizes[mid]
    }
}

/// The commit figures of `main`'s ancestry (newest first) as of `now_ms`: commits and
/// rewrites in the last hour, commits per hour over the span, head age and freshness.
fn commit_figures(report: &mut HealthReport, ancestry: &[SnapshotRef], now_ms: i64) {
    let recent: Vec<&SnapshotRef> = ancestry
        .iter()
        .filter(|s| s.timestamp_ms() >= now_ms - HOUR_MS)
        .collect();
    report.commits_last_hour = recent.len();
    report.compactions_last_hour = recent
        .iter()
        .filter(|s| s.summary().operation == Operation::Replace)
        .count();
    if let (Some(newest), Some(oldest)) = (ancestry.first(), ancestry.last()) {
        let span = (newest.timestamp_ms() - oldest.timestamp_ms()).max(1);
        report.commits_per_hour = if ancestry.len() > 1 {
            (ancestry.len() - 1) as f64 * HOUR_MS as f64 / span as f64
        } else {
            0.0
        };
        report.last_commit_age_ms = Some(now_ms - newest.timestamp_ms());
    }
    report.freshness_ms = ancestry.iter().find_map(|s| {
        s.summary()
            .additional_properties
            .get(VALID_THROUGH)
            .and_then(|v| parse_timestamp_ms(v))
            .map(|ts| now_ms - ts)
    });
}

/// A `kafka.connect.valid-through-ts` value in millis: Java writes an `OffsetDateTime`
/// (ISO-8601, seconds left out when zero: `2026-12-01T10:40Z`); epoch millis are read too.
fn parse_timestamp_ms(value: &str) -> Option<i64> {
    let v = value.trim();
    if let Ok(ms) = v.parse::<i64>() {
        return Some(ms);
    }
    let parse = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis())
    };
    parse(v).or_else(|| {
        // `yyyy-MM-ddTHH:mm` then the offset.
        let (minutes, offset) = (v.get(..16)?, v.get(16..)?);
        offset
            .starts_with(['Z', '+', '-'])
            .then(|| parse(&format!("{minutes}:00{offset}")))
            .flatten()
    })
}

/// Reads `table`'s health; data files under `small_file_size` count as small.
pub async fn health(table: &Table, small_file_size: u64) -> Result<HealthReport, HealthError> {
    let name = table.identifier().to_string();
    let fail = |message: String| HealthError::Table {
        table: name.clone(),
        message,
    };
    let metadata = table.metadata();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut report = HealthReport {
        table: name.clone(),
        format_version: metadata.format_version() as u8,
        now_ms,
        snapshots: metadata.snapshots().count(),
        small_file_threshold_bytes: small_file_size,
        ..HealthReport::default()
    };
    // `main`'s ancestry, newest first.
    let head = metadata
        .snapshot_for_ref(MAIN_BRANCH)
        .map(|s| s.snapshot_id());
    let ancestry: Vec<SnapshotRef> = crate::snapshot::ancestry(metadata, head).cloned().collect();
    commit_figures(&mut report, &ancestry, now_ms);
    let Some(head) = ancestry.first() else {
        return Ok(report);
    };
    let added_at: HashMap<i64, i64> = metadata
        .snapshots()
        .map(|s| (s.snapshot_id(), s.timestamp_ms()))
        .collect();

    let mut partitions: BTreeMap<String, PartitionHealth> = BTreeMap::new();
    let mut sizes = Vec::new();
    let mut oldest_small: Option<i64> = None;
    for m in manifests_of(table, head).await.map_err(fail)? {
        match m.content {
            ManifestContentType::Data => report.data_manifests += 1,
            ManifestContentType::Deletes => report.delete_manifests += 1,
        }
        let loaded = load_manifest(table, &m).await.map_err(fail)?;
        for e in loaded.entries().iter().filter(|e| e.is_alive()) {
            let file = e.data_file();
            let key = partition_name(metadata, m.partition_spec_id, file.partition());
            let p = partitions
                .entry(key.clone())
                .or_insert_with(|| PartitionHealth {
                    partition: key,
                    ..PartitionHealth::default()
                });
            if file.content_type() != DataContentType::Data {
                p.delete_files += 1;
                report.delete_files += 1;
                continue;
            }
            let size = file.file_size_in_bytes();
            p.data_files += 1;
            p.data_bytes += size;
            report.data_files += 1;
            report.data_bytes += size;
            report.records += file.record_count();
            sizes.push(size);
            if size < small_file_size {
                p.small_files += 1;
                report.small_files += 1;
                let added = e
                    .snapshot_id()
                    .or(Some(m.added_snapshot_id))
                    .and_then(|id| added_at.get(&id).copied());
                if let Some(ts) = added {
                    oldest_small = Some(oldest_small.map_or(ts, |o| o.min(ts)));
                }
            }
        }
    }
    if report.data_files > 0 {
        report.avg_data_file_bytes = report.data_bytes / report.data_files as u64;
        report.small_file_share = report.small_files as f64 / report.data_files as f64;
    }
    report.median_data_file_bytes = median(&mut sizes);
    report.oldest_small_file_age_ms = oldest_small.map(|ts| now_ms - ts);
    report.partitions = partitions.into_values().collect();
    Ok(report)
}

/// The report as the human table `floe table health` prints.
pub fn human(r: &HealthReport) -> String {
    let age = |ms: Option<i64>| match ms {
        Some(ms) => format_age(ms),
        None => "-".to_string(),
    };
    let mut out = format!("table {} (format version {})\n", r.table, r.format_version);
    let rows = [
        ("snapshots", r.snapshots.to_string()),
        (
            "commits in the last hour",
            format!(
                "{} ({} compactions)",
                r.commits_last_hour, r.compactions_last_hour
            ),
        ),
        ("commits per hour", format!("{:.1}", r.commits_per_hour)),
        ("last commit", format!("{} ago", age(r.last_commit_age_ms))),
        (
            "freshness (valid-through)",
            match r.freshness_ms {
                Some(ms) => format!("{} behind", format_age(ms)),
                None => "- (no kafka.connect.valid-through-ts)".to_string(),
            },
        ),
        ("records", r.records.to_string()),
        ("data files", r.data_files.to_string()),
        ("delete files", r.delete_files.to_string()),
        (
            "manifests",
            format!("{} data, {} delete", r.data_manifests, r.delete_manifests),
        ),
        ("data bytes", r.data_bytes.to_string()),
        (
            "file size avg / median",
            format!("{} / {}", r.avg_data_file_bytes, r.median_data_file_bytes),
        ),
        (
            "small files",
            format!(
                "{} ({:.0} % under {} bytes)",
                r.small_files,
                r.small_file_share * 100.0,
                r.small_file_threshold_bytes
            ),
        ),
        ("oldest small file", age(r.oldest_small_file_age_ms)),
    ];
    for (label, value) in rows {
        out.push_str(&format!("  {label:<27} {value}\n"));
    }
    if !r.partitions.is_empty() {
        out.push_str(&format!(
            "  {:<40} {:>10} {:>12} {:>14} {:>11}\n",
            "partition", "data files", "delete files", "data bytes", "small files"
        ));
        for p in &r.partitions {
            out.push_str(&format!(
                "  {:<40} {:>10} {:>12} {:>14} {:>11}\n",
                p.partition, p.data_files, p.delete_files, p.data_bytes, p.small_files
            ));
        }
    }
    out
}

/// `1h 2m 3s`, `4.5s`, `120ms`.
pub fn format_age(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h {m}m {s}s")
    } else {
        format!("{m}m {s}s")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use iceberg::spec::{Snapshot, Summary};

    use super::*;

    fn snapshot(id: i64, ts: i64, op: Operation, valid_through: Option<i64>) -> SnapshotRef {
        let mut props = std::collections::HashMap::new();
        if let Some(v) = valid_through {
            props.insert(VALID_THROUGH.to_string(), v.to_string());
        }
        Arc::new(
            Snapshot::builder()
                .with_snapshot_id(id)
                .with_parent_snapshot_id((id > 1).then_some(id - 1))
                .with_sequence_number(id)
                .with_timestamp_ms(ts)
                .with_manifest_list(format!("list-{id}"))
                .with_summary(Summary {
                    operation: op,
                    additional_properties: props,
                })
                .build(),
        )
    }

    #[test]
    fn commit_figures_of_an_ancestry() {
        let now = 10 * HOUR_MS;
        // Newest first: a compaction 1 min ago, an append with valid-through 2 min ago (at
        // 90 s), an append 2 hours ago.
        let ancestry = vec![
            snapshot(3, now - 60_000, Operation::Replace, None),
            snapshot(2, now - 120_000, Operation::Append, Some(now - 90_000)),
            snapshot(
                1,
                now - 2 * HOUR_MS,
                Operation::Append,
                Some(now - 3 * HOUR_MS),
            ),
        ];
        let mut r = HealthReport::default();
        commit_figures(&mut r, &ancestry, now);
        assert_eq!(r.commits_last_hour, 2);
        assert_eq!(r.compactions_last_hour, 1);
        assert_eq!(r.last_commit_age_ms, Some(60_000));
        assert_eq!(r.freshness_ms, Some(90_000));
        // Two commits after the first, over 2 h - 1 min.
        let expected = 2.0 * HOUR_MS as f64 / (2 * HOUR_MS - 60_000) as f64;
        assert!((r.commits_per_hour - expected).abs() < 1e-9);
    }

    #[test]
    fn valid_through_as_java_writes_it() {
        assert_eq!(
            parse_timestamp_ms("2026-12-01T10:40:51.807Z"),
            Some(1_796_121_651_807)
        );
        assert_eq!(
            parse_timestamp_ms("2026-12-01T10:40Z"),
            Some(1_796_121_600_000)
        );
        assert_eq!(
            parse_timestamp_ms("2026-12-01T11:40+01:00"),
            Some(1_796_121_600_000)
        );
        assert_eq!(parse_timestamp_ms("1796121600000"), Some(1_796_121_600_000));
        assert_eq!(parse_timestamp_ms("soon"), None);
    }

    #[test]
    fn no_snapshot_no_figures() {
        let mut r = HealthReport::default();
        commit_figures(&mut r, &[], 1000);
        assert_eq!(r.commits_last_hour, 0);
        assert_eq!(r.last_commit_age_ms, None);
        assert_eq!(r.freshness_ms, None);
    }

    #[test]
    fn medians_and_ages() {
        assert_eq!(median(&mut []), 0);
        assert_eq!(median(&mut [5]), 5);
        assert_eq!(median(&mut [9, 1, 5]), 5);
        assert_eq!(median(&mut [4, 1, 3, 2]), 2);
        assert_eq!(format_age(250), "250ms");
        assert_eq!(format_age(4_500), "4.5s");
        assert_eq!(format_age(125_000), "2m 5s");
        assert_eq!(format_age(3_725_000), "1h 2m 5s");
        assert_eq!(format_age(-5), "0ms");
    }
}
