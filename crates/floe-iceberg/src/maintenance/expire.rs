//! Snapshot expiry (Java's `ExpireSnapshots` with the table's `history.expire.*` properties,
//! docs/maintenance.md): snapshots older than `history.expire.max-snapshot-age-ms` (5 days)
//! are removed from the table, except
//!
//! * the head of every branch and tag, and the newest `history.expire.min-snapshots-to-keep`
//!   (1) of each branch's ancestry;
//! * every snapshot of a branch's ancestry from its head down to the newest snapshot carrying
//!   each `kafka.connect.offsets.*` key: a sink coordinator (Floe's or Java's) walks the
//!   ancestry from the head for its offsets, so the walk must not break before it finds them.
//!
//! Then the files only the removed snapshots reached are deleted: their manifest lists, the
//! manifests no kept snapshot lists, and the data and delete files no kept snapshot reaches —
//! a kept snapshot reaches the files its manifests list as live (`ADDED` or `EXISTING`). An
//! entry `DELETED` in a kept manifest (a compaction's `replace` lists the files it rewrote so,
//! and the appends after it carry that manifest on) records a removal, it is no reference:
//! the files it names go once the snapshots that added them are expired. Candidates are the
//! entries of the manifests no kept snapshot lists (Java's `ReachableFileCleanup`), and the
//! `DELETED` entries, in kept manifests, of the snapshots this expiry removes (Java's
//! `IncrementalFileCleanup`); of them, every file live in a kept manifest stays. The removal is
//! a compare-and-set on the branch heads it read; files are deleted only once it is committed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use iceberg::spec::SnapshotRef;
use iceberg::table::Table;
use iceberg::{TableRequirement, TableUpdate};
use serde::Serialize;

use crate::catalog::CatalogHandle;
use crate::snapshot::manifests_of;

/// Java's table properties for expiry, and their defaults.
pub const MAX_SNAPSHOT_AGE: &str = "history.expire.max-snapshot-age-ms";
pub const MIN_SNAPSHOTS_TO_KEEP: &str = "history.expire.min-snapshots-to-keep";
pub const DEFAULT_MAX_SNAPSHOT_AGE_MS: u64 = 5 * 24 * 60 * 60 * 1000;

/// The summary keys whose newest snapshot must stay reachable from the head.
const OFFSETS_PREFIX: &str = "kafka.connect.offsets.";

/// What an expiry may remove.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpireOptions {
    pub max_age: Duration,
    pub min_to_keep: usize,
    pub dry_run: bool,
}

impl ExpireOptions {
    /// The table's `history.expire.*` properties, or Java's defaults.
    pub fn for_table(table: &Table) -> ExpireOptions {
        let props = table.metadata().properties();
        let number = |key: &str| props.get(key).and_then(|v| v.trim().parse::<u64>().ok());
        ExpireOptions {
            max_age: Duration::from_millis(
                number(MAX_SNAPSHOT_AGE).unwrap_or(DEFAULT_MAX_SNAPSHOT_AGE_MS),
            ),
            min_to_keep: number(MIN_SNAPSHOTS_TO_KEEP).unwrap_or(1).max(1) as usize,
            dry_run: false,
        }
    }
}

/// What an expiry did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ExpireReport {
    pub table: String,
    pub snapshots_expired: usize,
    pub snapshots_kept: usize,
    /// Kept although old: the chain from the head to the newest sink offsets.
    pub kept_for_offsets: usize,
    pub manifest_lists_deleted: usize,
    pub manifests_deleted: usize,
    pub files_deleted: usize,
    pub skipped: Option<String>,
}

/// Why an expiry failed.
#[derive(Debug, thiserror::Error)]
pub enum ExpireError {
    #[error("table {table}: {message}")]
    Table { table: String, message: String },
}

/// The snapshots to remove, with how many old ones were kept for the sink's offsets. `heads`
/// are the snapshots refs point at, each with whether the ref is a branch: every head stays,
/// and along each branch's ancestry the newest `min_to_keep` and the chain down to the newest
/// snapshot of each offsets key.
fn plan(
    snapshots: &[SnapshotRef],
    heads: &[(i64, bool)],
    now_ms: i64,
    options: &ExpireOptions,
) -> (BTreeSet<i64>, usize) {
    let by_id: HashMap<i64, &SnapshotRef> =
        snapshots.iter().map(|s| (s.snapshot_id(), s)).collect();
    let cutoff =
        now_ms.saturating_sub(i64::try_from(options.max_age.as_millis()).unwrap_or(i64::MAX));
    let mut keep: HashSet<i64> = heads.iter().map(|(id, _)| *id).collect();
    let mut kept_for_offsets = 0;
    for (head, _) in heads.iter().filter(|(_, branch)| *branch) {
        // The branch's ancestry, newest first.
        let mut ancestry = Vec::new();
        let mut walked = HashSet::new();
        let mut next = Some(*head);
        // A snapshot met twice (parents in a cycle) ends the walk.
        while let Some(id) = next.filter(|id| walked.insert(*id)) {
            let Some(s) = by_id.get(&id) else { break };
            ancestry.push(*s);
            next = s.parent_snapshot_id();
        }
        keep.extend(
            ancestry
                .iter()
                .take(options.min_to_keep)
                .map(|s| s.snapshot_id()),
        );
        let mut seen_keys: HashSet<&str> = HashSet::new();
        let mut chain_end = 0;
        for (i, s) in ancestry.iter().enumerate() {
            for key in s.summary().additional_properties.keys() {
                if key.starts_with(OFFSETS_PREFIX) && seen_keys.insert(key.as_str()) {
                    chain_end = i + 1;
                }
            }
        }
        for s in ancestry.iter().take(chain_end) {
            if s.timestamp_ms() < cutoff && keep.insert(s.snapshot_id()) {
                kept_for_offsets += 1;
            }
        }
    }
    let expired = snapshots
        .iter()
        .filter(|s| s.timestamp_ms() < cutoff && !keep.contains(&s.snapshot_id()))
        .map(|s| s.snapshot_id())
        .collect();
    (expired, kept_for_offsets)
}

/// The table's branches and tags: the snapshot each points at, and whether it is a branch
/// (iceberg 0.10 keeps the map to itself; the metadata's JSON form has it).
fn refs_of(table: &Table) -> Result<HashMap<String, (i64, bool)>, String> {
    let json = serde_json::to_value(table.metadata())
        .map_err(|e| format!("cannot read the table's refs: {e}"))?;
    let mut out = HashMap::new();
    if let Some(refs) = json.get("refs").and_then(|r| r.as_object()) {
        for (name, r) in refs {
            let id = r
                .get("snapshot-id")
                .and_then(|v| v.as_i64())
                .ok_or_else(|| format!("ref {name} has no snapshot id"))?;
            let branch = r.get("type").and_then(|t| t.as_str()) != Some("tag");
            out.insert(name.clone(), (id, branch));
        }
    }
    Ok(out)
}

/// Expires `table`'s old snapshots and deletes the files only they reached.
pub async fn expire(
    catalog: &CatalogHandle,
    table: &Table,
    options: &ExpireOptions,
) -> Result<ExpireReport, ExpireError> {
    let name = table.identifier().to_string();
    let fail = |message: String| ExpireError::Table {
        table: name.clone(),
        message,
    };
    let metadata = table.metadata();
    let mut report = ExpireReport {
        table: name.clone(),
        ..ExpireReport::default()
    };
    let snapshots: Vec<SnapshotRef> = metadata.snapshots().cloned().collect();
    let refs = refs_of(table).map_err(fail)?;
    let heads: Vec<(i64, bool)> = refs.values().copied().collect();
    let now = chrono::Utc::now().timestamp_millis();
    let (expired, kept_for_offsets) = plan(&snapshots, &heads, now, options);
    report.snapshots_expired = expired.len();
    report.snapshots_kept = snapshots.len() - expired.len();
    report.kept_for_offsets = kept_for_offsets;
    if expired.is_empty() {
        report.skipped = Some(format!(
            "no snapshot is older than {} ms beyond those kept",
            options.max_age.as_millis()
        ));
        return Ok(report);
    }

    // What the kept snapshots reach, and what only the expired ones do.
    let mut kept_lists = HashSet::new();
    let mut kept_manifests = HashSet::new();
    // The files live (ADDED or EXISTING) in a kept manifest: only these are still reached.
    // Java's ReachableFileCleanup subtracts `ManifestFiles.readPaths` of the kept manifests,
    // which reads `liveEntries()`; a DELETED entry protects nothing.
    let mut kept_files = HashSet::new();
    // The files kept manifests list as DELETED by a snapshot this expiry removes: Java's
    // IncrementalFileCleanup deletes a DELETED entry's file once its snapshot is no longer
    // valid, also when a kept snapshot still lists the manifest (the appends after a
    // compaction carry its manifest on). A file whose adding manifest went without it (an
    // earlier expiry that counted DELETED entries as reached, Java's incremental cleanup
    // while the deleting snapshot was kept) is found only here.
    let mut removed_by_expired = Vec::new();
    let mut old_lists = Vec::new();
    let mut old_manifests = Vec::new();
    for s in &snapshots {
        let is_expired = expired.contains(&s.snapshot_id());
        if is_expired {
            old_lists.push(s.manifest_list().to_string());
        } else {
            kept_lists.insert(s.manifest_list().to_string());
        }
        for m in manifests_of(table, s).await.map_err(fail)? {
            if is_expired {
                old_manifests.push(m);
            } else if kept_manifests.insert(m.manifest_path.clone()) {
                let loaded = crate::snapshot::load_manifest(table, &m)
                    .await
                    .map_err(fail)?;
                for e in loaded.entries() {
                    let path = e.data_file().file_path().to_string();
                    if e.is_alive() {
                        kept_files.insert(path);
                    } else if e.snapshot_id().is_some_and(|id| expired.contains(&id)) {
                        removed_by_expired.push(path);
                    }
                }
            }
        }
    }
    let mut doomed_manifests = BTreeSet::new();
    let mut doomed_files = BTreeSet::new();
    for m in old_manifests {
        if kept_manifests.contains(&m.manifest_path)
            || !doomed_manifests.insert(m.manifest_path.clone())
        {
            continue;
        }
        let loaded = crate::snapshot::load_manifest(table, &m)
            .await
            .map_err(fail)?;
        // Every entry, live or DELETED: only expired snapshots list the manifest.
        for e in loaded.entries() {
            let path = e.data_file().file_path();
            if !kept_files.contains(path) {
                doomed_files.insert(path.to_string());
            }
        }
    }
    // A file a DELETED entry names was usually deleted already, with the snapshots that
    // added it (an append expires before the compaction that rewrote its files): only those
    // still there count.
    for path in removed_by_expired {
        if kept_files.contains(&path) || doomed_files.contains(&path) {
            continue;
        }
        if table.file_io().exists(&path).await.unwrap_or(true) {
            doomed_files.insert(path);
        }
    }
    let doomed_lists: BTreeSet<String> = old_lists
        .into_iter()
        .filter(|l| !kept_lists.contains(l))
        .collect();
    report.manifest_lists_deleted = doomed_lists.len();
    report.manifests_deleted = doomed_manifests.len();
    report.files_deleted = doomed_files.len();
    if options.dry_run {
        return Ok(report);
    }

    let mut requirements = vec![TableRequirement::UuidMatch {
        uuid: metadata.uuid(),
    }];
    for (ref_name, (snapshot_id, _)) in &refs {
        requirements.push(TableRequirement::RefSnapshotIdMatch {
            r#ref: ref_name.clone(),
            snapshot_id: Some(*snapshot_id),
        });
    }
    let updates = vec![TableUpdate::RemoveSnapshots {
        snapshot_ids: expired.iter().copied().collect(),
    }];
    catalog
        .committer()
        .commit(table, requirements, updates)
        .await
        .map_err(|e| fail(format!("cannot remove the expired snapshots: {e}")))?;
    for path in doomed_files
        .iter()
        .chain(doomed_manifests.iter())
        .chain(doomed_lists.iter())
    {
        if let Err(e) = table.file_io().delete(path).await {
            tracing::warn!(table = %name, file = %path, error = %e, "cannot delete a file of an expired snapshot");
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use iceberg::spec::{Operation, Snapshot, Summary};

    use super::*;

    fn snapshot(id: i64, parent: Option<i64>, ts: i64, offsets: Option<&str>) -> SnapshotRef {
        let mut props = HashMap::new();
        if let Some(key) = offsets {
            props.insert(format!("{OFFSETS_PREFIX}{key}"), "{}".to_string());
        }
        Arc::new(
            Snapshot::builder()
                .with_snapshot_id(id)
                .with_parent_snapshot_id(parent)
                .with_sequence_number(id)
                .with_timestamp_ms(ts)
                .with_manifest_list(format!("list-{id}"))
                .with_summary(Summary {
                    operation: Operation::Append,
                    additional_properties: props,
                })
                .build(),
        )
    }

    fn options(max_age_ms: u64, keep: usize) -> ExpireOptions {
        ExpireOptions {
            max_age: Duration::from_millis(max_age_ms),
            min_to_keep: keep,
            dry_run: false,
        }
    }

    #[test]
    fn old_snapshots_go_the_newest_stay() {
        // 1 ← 2 ← 3 ← 4 (head), all with the sink's offsets, timestamps 10..40.
        let s: Vec<SnapshotRef> = (1..=4)
            .map(|i| snapshot(i, (i > 1).then_some(i - 1), i * 10, Some("c.g")))
            .collect();
        let heads = [(4, true)];
        let (expired, kept) = plan(&s, &heads, 100, &options(75, 1));
        assert_eq!(expired, BTreeSet::from([1, 2]));
        assert_eq!(kept, 0);
        let (expired, _) = plan(&s, &heads, 100, &options(0, 2));
        assert_eq!(expired, BTreeSet::from([1, 2]));
    }

    #[test]
    fn parents_in_a_cycle_end_the_walk() {
        // 1 ← 2 ← 3 ← 1: metadata no correct writer makes; planning still ends.
        let s = vec![
            snapshot(1, Some(3), 10, None),
            snapshot(2, Some(1), 20, None),
            snapshot(3, Some(2), 30, None),
        ];
        let (expired, _) = plan(&s, &[(3, true)], 100, &options(0, 1));
        assert_eq!(expired, BTreeSet::from([1, 2]));
        // A maximum age past the epoch does not overflow.
        let (expired, _) = plan(&s, &[(3, true)], 100, &options(u64::MAX, 1));
        assert!(expired.is_empty());
    }

    #[test]
    fn the_chain_to_the_newest_offsets_stays() {
        // 1 (offsets) ← 2 (offsets) ← 3 (compaction) ← 4 (compaction, head).
        let s = vec![
            snapshot(1, None, 10, Some("c.g")),
            snapshot(2, Some(1), 20, Some("c.g")),
            snapshot(3, Some(2), 30, None),
            snapshot(4, Some(3), 40, None),
        ];
        let (expired, kept) = plan(&s, &[(4, true)], 100, &options(0, 1));
        assert_eq!(expired, BTreeSet::from([1]));
        assert_eq!(kept, 2);
        // Two connectors: each one's newest offsets stay reachable.
        let s = vec![
            snapshot(1, None, 10, Some("a.g")),
            snapshot(2, Some(1), 20, Some("b.g")),
            snapshot(3, Some(2), 30, Some("b.g")),
        ];
        let (expired, _) = plan(&s, &[(3, true)], 100, &options(0, 1));
        assert!(expired.is_empty());
    }

    #[test]
    fn branch_and_tag_heads_stay() {
        let s = vec![
            snapshot(1, None, 10, None),
            snapshot(2, Some(1), 20, None),
            snapshot(3, Some(2), 30, None),
        ];
        // main at 3, a tag at 1.
        let (expired, _) = plan(&s, &[(3, true), (1, false)], 100, &options(0, 1));
        assert_eq!(expired, BTreeSet::from([2]));
    }

    #[test]
    fn a_branch_keeps_the_chain_to_its_offsets() {
        // main: 1 ← 2; a sink commits to branch b: 1 ← 3 (offsets) ← 4 (compaction).
        let s = vec![
            snapshot(1, None, 10, None),
            snapshot(2, Some(1), 20, None),
            snapshot(3, Some(1), 30, Some("c.g")),
            snapshot(4, Some(3), 40, None),
        ];
        let (expired, kept) = plan(&s, &[(2, true), (4, true)], 100, &options(0, 1));
        assert_eq!(expired, BTreeSet::from([1]));
        assert_eq!(kept, 1);
    }
}
