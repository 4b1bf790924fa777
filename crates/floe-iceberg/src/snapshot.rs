//! Snapshots produced by hand — a row delta (`row_delta.rs`), a compaction
//! (`maintenance/compact.rs`) — share this: the new snapshot's ids, its manifest writers (format
//! v2 or v3), the manifest list (with the row-id range on v3), Java's summary totals, and the
//! commit as a compare-and-set on the branch head the producer read.

use std::collections::HashMap;

use iceberg::spec::{
    FormatVersion, ManifestFile, ManifestListWriter, ManifestWriter, ManifestWriterBuilder,
    Operation, Snapshot, SnapshotRef, SnapshotReference, SnapshotRetention, Summary,
};
use iceberg::table::Table;
use iceberg::{TableRequirement, TableUpdate};

use crate::catalog::CatalogHandle;
use crate::table_commit::CommitOutcome;

/// Java's summary totals, and the added/removed keys each follows.
const TOTALS: &[(&str, &str, &str)] = &[
    ("total-data-files", "added-data-files", "deleted-data-files"),
    (
        "total-delete-files",
        "added-delete-files",
        "removed-delete-files",
    ),
    ("total-records", "added-records", "deleted-records"),
    ("total-files-size", "added-files-size", "removed-files-size"),
    (
        "total-position-deletes",
        "added-position-deletes",
        "removed-position-deletes",
    ),
    (
        "total-equality-deletes",
        "added-equality-deletes",
        "removed-equality-deletes",
    ),
];

/// A snapshot being produced on `branch` of `table`.
pub struct Draft<'a> {
    pub table: &'a Table,
    pub branch: String,
    /// The branch head it is produced on (None: the branch does not exist yet).
    pub parent: Option<SnapshotRef>,
    pub snapshot_id: i64,
    pub sequence_number: i64,
    commit_uuid: uuid::Uuid,
    manifests_written: usize,
}

impl<'a> Draft<'a> {
    /// A snapshot on the current head of `branch`.
    pub fn new(table: &'a Table, branch: &str) -> Draft<'a> {
        let metadata = table.metadata();
        Draft {
            table,
            branch: branch.to_string(),
            parent: metadata.snapshot_for_ref(branch).cloned(),
            snapshot_id: new_snapshot_id(table),
            sequence_number: metadata.last_sequence_number() + 1,
            commit_uuid: uuid::Uuid::now_v7(),
            manifests_written: 0,
        }
    }

    fn location(&self) -> &str {
        self.table.metadata().location().trim_end_matches('/')
    }

    /// A writer for a new manifest of data files or delete files written with partition spec
    /// `spec_id`, in the table's format version; and its path.
    pub fn manifest_writer(
        &mut self,
        is_delete: bool,
        spec_id: i32,
    ) -> Result<(String, ManifestWriter), String> {
        let metadata = self.table.metadata();
        let spec = metadata
            .partition_spec_by_id(spec_id)
            .ok_or_else(|| format!("partition spec {spec_id} is not in the table"))?;
        let path = format!(
            "{}/metadata/{}-m{}.avro",
            self.location(),
            self.commit_uuid,
            self.manifests_written
        );
        self.manifests_written += 1;
        let output = self
            .table
            .file_io()
            .new_output(&path)
            .map_err(|e| format!("cannot create manifest {path}: {e}"))?;
        let builder = ManifestWriterBuilder::new(
            output,
            Some(self.snapshot_id),
            metadata.current_schema().clone(),
            spec.as_ref().clone(),
        );
        let writer = match (is_delete, metadata.format_version()) {
            (true, FormatVersion::V3) => builder.build_v3_deletes(),
            (false, FormatVersion::V3) => builder.build_v3_data(),
            (true, FormatVersion::V2) => builder.build_v2_deletes(),
            (false, FormatVersion::V2) => builder.build_v2_data(),
            (_, v) => {
                return Err(format!(
                    "Floe produces snapshots of format version 2 and 3 tables; this table is {v:?}"
                ))
            }
        };
        Ok((path, writer))
    }

    /// The manifests of the head this snapshot is produced on.
    pub async fn parent_manifests(&self) -> Result<Vec<ManifestFile>, String> {
        match &self.parent {
            Some(parent) => manifests_of(self.table, parent).await,
            None => Ok(Vec::new()),
        }
    }

    /// Writes the manifest list of `manifests` and commits the snapshot: `operation`, the
    /// summary `props` with the totals carried from the parent, conditional on the table and
    /// the branch head being those it was produced on.
    pub async fn commit(
        self,
        catalog: &CatalogHandle,
        manifests: Vec<ManifestFile>,
        operation: Operation,
        mut props: HashMap<String, String>,
    ) -> Result<CommitOutcome, String> {
        let metadata = self.table.metadata();
        let v3 = metadata.format_version() == FormatVersion::V3;
        let parent_id = self.parent.as_ref().map(|p| p.snapshot_id());
        let list_path = format!(
            "{}/metadata/snap-{}-1-{}.avro",
            self.location(),
            self.snapshot_id,
            self.commit_uuid
        );
        let writer = self
            .table
            .file_io()
            .new_output(&list_path)
            .map_err(|e| format!("cannot create manifest list {list_path}: {e}"))?
            .writer()
            .await
            .map_err(|e| format!("cannot create manifest list {list_path}: {e}"))?;
        let first_row_id = metadata.next_row_id();
        let mut list = if v3 {
            ManifestListWriter::v3(
                writer,
                self.snapshot_id,
                parent_id,
                self.sequence_number,
                Some(first_row_id),
            )
        } else {
            ManifestListWriter::v2(writer, self.snapshot_id, parent_id, self.sequence_number)
        };
        list.add_manifests(manifests.into_iter())
            .map_err(|e| format!("cannot write manifest list {list_path}: {e}"))?;
        let next_row_id = list.next_row_id();
        list.close()
            .await
            .map_err(|e| format!("cannot write manifest list {list_path}: {e}"))?;
        with_totals(&mut props, self.parent.as_ref().map(|p| p.summary()));
        let snapshot = Snapshot::builder()
            .with_snapshot_id(self.snapshot_id)
            .with_parent_snapshot_id(parent_id)
            .with_sequence_number(self.sequence_number)
            .with_timestamp_ms(chrono::Utc::now().timestamp_millis())
            .with_manifest_list(list_path)
            .with_summary(Summary {
                operation,
                additional_properties: props,
            })
            .with_schema_id(metadata.current_schema_id());
        let snapshot = match next_row_id {
            Some(next) if v3 => snapshot
                .with_row_range(first_row_id, next.saturating_sub(first_row_id))
                .build(),
            _ => snapshot.build(),
        };
        let requirements = vec![
            TableRequirement::UuidMatch {
                uuid: metadata.uuid(),
            },
            TableRequirement::RefSnapshotIdMatch {
                r#ref: self.branch.clone(),
                snapshot_id: parent_id,
            },
        ];
        let updates = vec![
            TableUpdate::AddSnapshot { snapshot },
            TableUpdate::SetSnapshotRef {
                ref_name: self.branch.clone(),
                reference: SnapshotReference::new(
                    self.snapshot_id,
                    SnapshotRetention::branch(None, None, None),
                ),
            },
        ];
        match catalog
            .committer()
            .commit(self.table, requirements, updates)
            .await
        {
            Ok(_) => Ok(CommitOutcome::Committed(self.snapshot_id)),
            Err(e)
                if e.kind() == iceberg::ErrorKind::CatalogCommitConflicts
                    || e.kind() == iceberg::ErrorKind::DataInvalid =>
            {
                Ok(CommitOutcome::Conflict(e.to_string()))
            }
            Err(e) => Ok(CommitOutcome::Unknown(e.to_string())),
        }
    }
}

/// The snapshots from `head` down its parents, newest first (ending where the metadata no
/// longer holds a parent): a branch's history, as coordinators walk it for their offsets. A
/// snapshot met twice (metadata whose parents form a cycle, which no correct writer makes)
/// ends the walk, so it always ends.
pub fn ancestry(
    metadata: &iceberg::spec::TableMetadata,
    head: Option<i64>,
) -> impl Iterator<Item = &SnapshotRef> + '_ {
    let mut next = head;
    let mut seen = std::collections::HashSet::new();
    std::iter::from_fn(move || {
        let id = next?;
        if !seen.insert(id) {
            tracing::warn!(
                snapshot_id = id,
                "the table's snapshot ancestry has a cycle; the walk stops there"
            );
            return None;
        }
        let s = metadata.snapshot_by_id(id)?;
        next = s.parent_snapshot_id();
        Some(s)
    })
}

/// The manifests of `snapshot`.
pub async fn manifests_of(
    table: &Table,
    snapshot: &SnapshotRef,
) -> Result<Vec<ManifestFile>, String> {
    Ok(table
        .manifest_list_reader(snapshot)
        .load()
        .await
        .map_err(|e| {
            format!(
                "cannot read the manifest list of snapshot {}: {e}",
                snapshot.snapshot_id()
            )
        })?
        .consume_entries()
        .into_iter()
        .collect())
}

/// The entries of one of `table`'s manifests.
pub async fn load_manifest(
    table: &Table,
    manifest: &ManifestFile,
) -> Result<iceberg::spec::Manifest, String> {
    manifest
        .load_manifest(table.file_io())
        .await
        .map_err(|e| format!("cannot read manifest {}: {e}", manifest.manifest_path))
}

/// A new file `<table>/data/<uuid>-<name>` to write: its path and output.
pub fn new_data_file(
    table: &Table,
    name: &str,
) -> Result<(String, iceberg::io::OutputFile), String> {
    let path = format!(
        "{}/data/{}-{name}",
        table.metadata().location().trim_end_matches('/'),
        uuid::Uuid::now_v7()
    );
    let output = table
        .file_io()
        .new_output(&path)
        .map_err(|e| format!("cannot create {path}: {e}"))?;
    Ok((path, output))
}

/// The bytes of a file of `table`.
pub async fn read_file(table: &Table, path: &str) -> Result<bytes::Bytes, String> {
    table
        .file_io()
        .new_input(path)
        .map_err(|e| format!("cannot open {path}: {e}"))?
        .read()
        .await
        .map_err(|e| format!("cannot read {path}: {e}"))
}

/// A snapshot id not used by the table (Java's: random, positive).
fn new_snapshot_id(table: &Table) -> i64 {
    loop {
        let id = (uuid::Uuid::new_v4().as_u128() as i64) & i64::MAX;
        if id != 0 && table.metadata().snapshot_by_id(id).is_none() {
            return id;
        }
    }
}

/// Adds Java's `total-*` keys: the parent's totals with this snapshot's additions.
fn with_totals(props: &mut HashMap<String, String>, parent: Option<&Summary>) {
    let get = |map: &HashMap<String, String>, key: &str| {
        map.get(key)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    for (total, added, removed) in TOTALS {
        let before = parent.map_or(0, |p| get(&p.additional_properties, total));
        let value = (before + get(props, added)).saturating_sub(get(props, removed));
        props.insert(total.to_string(), value.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_follow_the_parent() {
        let parent = Summary {
            operation: Operation::Append,
            additional_properties: HashMap::from([
                ("total-records".to_string(), "10".to_string()),
                ("total-data-files".to_string(), "2".to_string()),
            ]),
        };
        let mut props = HashMap::from([
            ("added-records".to_string(), "5".to_string()),
            ("added-data-files".to_string(), "1".to_string()),
            ("added-position-deletes".to_string(), "3".to_string()),
            ("added-delete-files".to_string(), "1".to_string()),
        ]);
        with_totals(&mut props, Some(&parent));
        assert_eq!(props["total-records"], "15");
        assert_eq!(props["total-data-files"], "3");
        assert_eq!(props["total-position-deletes"], "3");
        assert_eq!(props["total-delete-files"], "1");
        assert_eq!(props["total-equality-deletes"], "0");
    }
}
