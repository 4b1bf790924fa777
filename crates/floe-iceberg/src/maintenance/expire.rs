//! Snapshot expiry (Java's `ExpireSnapshots` with the table's `history.expire.*` properties,
//! docs/maintenance.md): snapshots older than `history.expire.max-snapshot-age-ms` (5 days)
//! are removed from the table, except
//!
//! * the head of every branch and tag, and along each branch's ancestry what the branch's
//!   own retention keeps (Java's `RemoveSnapshots`): the newest `min-snapshots-to-keep` and
//!   every snapshot newer than its `max-snapshot-age-ms`, set on the ref or else the table's
//!   `history.expire.min-snapshots-to-keep` (1) and `history.expire.max-snapshot-age-ms`;
//! * every snapshot of a branch's ancestry from its head down to the newest snapshot carrying
//!   each `kafka.connect.offsets.*` key: a sink coordinator (Floe's or Java's) walks the
//!   ancestry from the head for its offsets, so the walk must not break before it finds them.
//!
//! A branch or tag other than `main` whose head is older than its `max-ref-age-ms` (or the
//! table's `history.expire.max-ref-age-ms`; unset, refs never age) is removed first, as Java
//! does, and its snapshots are then judged like any other.
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
pub const MAX_REF_AGE: &str = "history.expire.max-ref-age-ms";
pub const DEFAULT_MAX_SNAPSHOT_AGE_MS: u64 = 5 * 24 * 60 * 60 * 1000;

/// The summary keys whose newest snapshot must stay reachable from the head.
const OFFSETS_PREFIX: &str = "kafka.connect.offsets.";

/// What an expiry may remove.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpireOptions {
    pub max_age: Duration,
    pub min_to_keep: usize,
    /// How old a ref's head may be before the ref (not `main`) is removed; None: forever.
    pub max_ref_age: Option<Duration>,
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
            max_ref_age: number(MAX_REF_AGE).map(Duration::from_millis),
            dry_run: false,
        }
    }
}

/// A branch or tag: the snapshot it points at and its own retention (the ref's
/// `min-snapshots-to-keep`, `max-snapshot-age-ms` and `max-ref-age-ms`; None: the table's).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Ref {
    pub snapshot_id: i64,
    pub branch: bool,
    pub min_snapshots_to_keep: Option<usize>,
    pub max_snapshot_age: Option<Duration>,
    pub max_ref_age: Option<Duration>,
}

/// `now_ms` less `age`, saturating.
fn before(now_ms: i64, age: Duration) -> i64 {
    now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
}

/// The refs to remove: every one but `main` whose head is older than its maximum ref age
/// (Java's `RemoveSnapshots.computeRefsToRetain`). A ref whose head is not in the metadata
/// stays.
fn aged_refs(
    refs: &HashMap<String, Ref>,
    snapshots: &[SnapshotRef],
    now_ms: i64,
    options: &ExpireOptions,
) -> BTreeSet<String> {
    refs.iter()
        .filter(|(name, _)| name.as_str() != "main")
        .filter(|(_, r)| {
            let Some(max_age) = r.max_ref_age.or(options.max_ref_age) else {
                return false;
            };
            snapshots
                .iter()
                .find(|s| s.snapshot_id() == r.snapshot_id)
                .is_some_and(|head| head.timestamp_ms() < before(now_ms, max_age))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// What an expiry did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ExpireReport {
    pub table: String,
    pub snapshots_expired: usize,
    pub snapshots_kept: usize,
    /// Kept although old: the chain from the head to the newest sink offsets.
    pub kept_for_offsets: usize,
    /// Branches and tags removed for being older than their maximum ref age.
    pub refs_removed: Vec<String>,
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
/// are the refs that stay: every head stays, and along each branch's ancestry what its
/// retention keeps — the newest `min-snapshots-to-keep` and those newer than its
/// `max-snapshot-age-ms` — and the chain down to the newest snapshot of each offsets key. Of
/// the rest, the snapshots older than the table's maximum age go.
fn plan(
    snapshots: &[SnapshotRef],
    heads: &[Ref],
    now_ms: i64,
    options: &ExpireOptions,
) -> (BTreeSet<i64>, usize) {
    let by_id: HashMap<i64, &SnapshotRef> =
        snapshots.iter().map(|s| (s.snapshot_id(), s)).collect();
    let cutoff = before(now_ms, options.max_age);
    let mut keep: HashSet<i64> = heads.iter().map(|r| r.snapshot_id).collect();
    let mut kept_for_offsets = 0;
    for branch in heads.iter().filter(|r| r.branch) {
        let head = &branch.snapshot_id;
        let min_to_keep = branch
            .min_snapshots_to_keep
            .unwrap_or(options.min_to_keep)
            .max(1);
        let branch_cutoff = before(now_ms, branch.max_snapshot_age.unwrap_or(options.max_age));
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
        // Java's computeBranchSnapshotsToRetain: from the head, while fewer than the minimum
        // are kept or the snapshot is young enough for the branch.
        for (i, s) in ancestry.iter().enumerate() {
            if i < min_to_keep || s.timestamp_ms() >= branch_cutoff {
                keep.insert(s.snapshot_id());
            } else {
                break;
            }
        }
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

/// The table's branches and tags with their retention (iceberg 0.10 keeps the map to itself;
/// the metadata's JSON form has it).
fn refs_of(table: &Table) -> Result<HashMap<String, Ref>, String> {
    let json = serde_json::to_value(table.metadata())
        .map_err(|e| format!("cannot read the table's refs: {e}"))?;
    let mut out = HashMap::new();
    if let Some(refs) = json.get("refs").and_then(|r| r.as_object()) {
        for (name, r) in refs {
            let snapshot_id = r
                .get("snapshot-id")
                .and_then(|v| v.as_i64())
                .ok_or_else(|| format!("ref {name} has no snapshot id"))?;
            let number = |key: &str| r.get(key).and_then(|v| v.as_u64());
            out.insert(
                name.clone(),
                Ref {
                    snapshot_id,
                    branch: r.get("type").and_then(|t| t.as_str()) != Some("tag"),
                    min_snapshots_to_keep: number("min-snapshots-to-keep")
                        .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                    max_snapshot_age: number("max-snapshot-age-ms").map(Duration::from_millis),
                    max_ref_age: number("max-ref-age-ms").map(Duration::from_millis),
                },
            );
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
    let now = chrono::Utc::now().timestamp_millis();
    let aged = aged_refs(&refs, &snapshots, now, options);
    let heads: Vec<Ref> = refs
        .iter()
        .filter(|(name, _)| !aged.contains(*name))
        .map(|(_, r)| *r)
        .collect();
    let (expired, kept_for_offsets) = plan(&snapshots, &heads, now, options);
    report.snapshots_expired = expired.len();
    report.snapshots_kept = snapshots.len() - expired.len();
    report.kept_for_offsets = kept_for_offsets;
    report.refs_removed = aged.iter().cloned().collect();
    if expired.is_empty() && aged.is_empty() {
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
    for (ref_name, r) in &refs {
        requirements.push(TableRequirement::RefSnapshotIdMatch {
            r#ref: ref_name.clone(),
            snapshot_id: Some(r.snapshot_id),
        });
    }
    let mut updates: Vec<TableUpdate> = aged
        .iter()
        .map(|ref_name| TableUpdate::RemoveSnapshotRef {
            ref_name: ref_name.clone(),
        })
        .collect();
    if !expired.is_empty() {
        updates.push(TableUpdate::RemoveSnapshots {
            snapshot_ids: expired.iter().copied().collect(),
        });
    }
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
            max_ref_age: None,
            dry_run: false,
        }
    }

    /// Refs with the table's retention: (head, is a branch).
    fn h(heads: &[(i64, bool)]) -> Vec<Ref> {
        heads
            .iter()
            .map(|(snapshot_id, branch)| Ref {
                snapshot_id: *snapshot_id,
                branch: *branch,
                ..Ref::default()
            })
            .collect()
    }

    #[test]
    fn a_branch_keeps_what_its_own_retention_keeps() {
        // main: 1 ← 2 ← 3 (head); audit: 1 ← 2 ← 4 ← 5 (head), timestamps 10..50, now 100.
        let s = vec![
            snapshot(1, None, 10, None),
            snapshot(2, Some(1), 20, None),
            snapshot(3, Some(2), 30, None),
            snapshot(4, Some(2), 40, None),
            snapshot(5, Some(4), 50, None),
        ];
        let main = Ref {
            snapshot_id: 3,
            branch: true,
            ..Ref::default()
        };
        // The table's retention (age 0, keep 1) keeps the heads only.
        let audit = Ref {
            snapshot_id: 5,
            branch: true,
            ..Ref::default()
        };
        let (expired, _) = plan(&s, &[main, audit], 100, &options(0, 1));
        assert_eq!(expired, BTreeSet::from([1, 2, 4]));
        // The branch keeps its newest three.
        let keeps_three = Ref {
            min_snapshots_to_keep: Some(3),
            ..audit
        };
        let (expired, _) = plan(&s, &[main, keeps_three], 100, &options(0, 1));
        assert_eq!(expired, BTreeSet::from([1]));
        // The branch keeps what is younger than 65 ms (at 100: timestamps 40 and 50), though
        // the table keeps nothing older than now.
        let keeps_young = Ref {
            max_snapshot_age: Some(Duration::from_millis(65)),
            ..audit
        };
        let (expired, _) = plan(&s, &[main, keeps_young], 100, &options(0, 1));
        assert_eq!(expired, BTreeSet::from([1, 2]));
        // A tag keeps its snapshot only.
        let tag = Ref {
            snapshot_id: 1,
            branch: false,
            ..Ref::default()
        };
        let (expired, _) = plan(&s, &[main, audit, tag], 100, &options(0, 1));
        assert_eq!(expired, BTreeSet::from([2, 4]));
    }

    #[test]
    fn refs_older_than_their_maximum_age_go_but_main_stays() {
        let s = vec![snapshot(1, None, 10, None), snapshot(2, Some(1), 90, None)];
        let refs = HashMap::from([
            (
                "main".to_string(),
                Ref {
                    snapshot_id: 1,
                    branch: true,
                    max_ref_age: Some(Duration::from_millis(1)),
                    ..Ref::default()
                },
            ),
            (
                "old-tag".to_string(),
                Ref {
                    snapshot_id: 1,
                    max_ref_age: Some(Duration::from_millis(50)),
                    ..Ref::default()
                },
            ),
            (
                "young-branch".to_string(),
                Ref {
                    snapshot_id: 2,
                    branch: true,
                    max_ref_age: Some(Duration::from_millis(50)),
                    ..Ref::default()
                },
            ),
            (
                "table-default".to_string(),
                Ref {
                    snapshot_id: 1,
                    branch: true,
                    ..Ref::default()
                },
            ),
        ]);
        assert_eq!(
            aged_refs(&refs, &s, 100, &options(0, 1)),
            BTreeSet::from(["old-tag".to_string()])
        );
        let table_ages_refs = ExpireOptions {
            max_ref_age: Some(Duration::from_millis(80)),
            ..options(0, 1)
        };
        assert_eq!(
            aged_refs(&refs, &s, 100, &table_ages_refs),
            BTreeSet::from(["old-tag".to_string(), "table-default".to_string()])
        );
    }

    #[test]
    fn old_snapshots_go_the_newest_stay() {
        // 1 ← 2 ← 3 ← 4 (head), all with the sink's offsets, timestamps 10..40.
        let s: Vec<SnapshotRef> = (1..=4)
            .map(|i| snapshot(i, (i > 1).then_some(i - 1), i * 10, Some("c.g")))
            .collect();
        let heads = [(4, true)];
        let (expired, kept) = plan(&s, &h(&heads), 100, &options(75, 1));
        assert_eq!(expired, BTreeSet::from([1, 2]));
        assert_eq!(kept, 0);
        let (expired, _) = plan(&s, &h(&heads), 100, &options(0, 2));
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
        let (expired, _) = plan(&s, &h(&[(3, true)]), 100, &options(0, 1));
        assert_eq!(expired, BTreeSet::from([1, 2]));
        // A maximum age past the epoch does not overflow.
        let (expired, _) = plan(&s, &h(&[(3, true)]), 100, &options(u64::MAX, 1));
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
        let (expired, kept) = plan(&s, &h(&[(4, true)]), 100, &options(0, 1));
        assert_eq!(expired, BTreeSet::from([1]));
        assert_eq!(kept, 2);
        // Two connectors: each one's newest offsets stay reachable.
        let s = vec![
            snapshot(1, None, 10, Some("a.g")),
            snapshot(2, Some(1), 20, Some("b.g")),
            snapshot(3, Some(2), 30, Some("b.g")),
        ];
        let (expired, _) = plan(&s, &h(&[(3, true)]), 100, &options(0, 1));
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
        let (expired, _) = plan(&s, &h(&[(3, true), (1, false)]), 100, &options(0, 1));
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
        let (expired, kept) = plan(&s, &h(&[(2, true), (4, true)]), 100, &options(0, 1));
        assert_eq!(expired, BTreeSet::from([1]));
        assert_eq!(kept, 1);
    }
}
