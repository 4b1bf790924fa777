//! A row-delta commit: new data files and delete files in one snapshot (Java's `RowDelta`),
//! as a compare-and-set on the branch head the caller validated.
//!
//! The snapshot keeps every manifest of its parent and adds one data manifest and one delete
//! manifest per partition spec; added entries inherit the snapshot's sequence number, so the
//! position deletes apply to rows written before them (and to none written with them). The
//! summary carries Java's keys (`added-delete-files`, `added-position-deletes`, the totals)
//! and the sink's properties. Operation `overwrite`, as Java names a row delta that adds both.

use std::collections::{BTreeMap, HashMap};

use iceberg::spec::{
    DataContentType, DataFile, FormatVersion, ManifestFile, ManifestListWriter,
    ManifestWriterBuilder, Operation, Snapshot, SnapshotReference, SnapshotRetention,
    SnapshotSummaryCollector, Summary, MAIN_BRANCH,
};
use iceberg::table::Table;
use iceberg::{TableRequirement, TableUpdate};

use crate::catalog::CatalogHandle;
use crate::error::SinkError;
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

/// Commits `data` (written with the default partition spec) and `deletes` (position deletes,
/// each with the id of the partition spec it was written for) to `table`'s `branch` in one
/// snapshot with `properties` in its summary, conditional on the branch head the caller
/// validated.
pub async fn commit(
    catalog: &CatalogHandle,
    table: &Table,
    data: Vec<DataFile>,
    deletes: Vec<(i32, DataFile)>,
    properties: HashMap<String, String>,
    branch: Option<&str>,
) -> Result<CommitOutcome, SinkError> {
    let name = table.identifier().to_string();
    let fail = |message: String| SinkError::Table {
        table: name.clone(),
        message,
    };
    let metadata = table.metadata();
    if metadata.format_version() != FormatVersion::V2 {
        return Err(fail(format!(
            "deletes are written to format version 2 tables; this table is {:?}",
            metadata.format_version()
        )));
    }
    let branch = branch.unwrap_or(MAIN_BRANCH);
    let parent = metadata.snapshot_for_ref(branch).cloned();
    let snapshot_id = new_snapshot_id(table);
    let sequence_number = metadata.last_sequence_number() + 1;
    let schema = metadata.current_schema().clone();
    let file_io = table.file_io();
    let location = metadata.location().trim_end_matches('/');
    let commit_uuid = uuid::Uuid::now_v7();
    let mut summary = SnapshotSummaryCollector::default();
    let mut manifests: Vec<ManifestFile> = Vec::new();

    // One manifest per content and partition spec.
    let mut groups: BTreeMap<(bool, i32), Vec<DataFile>> = BTreeMap::new();
    let default_spec = metadata.default_partition_spec_id();
    for f in data {
        groups.entry((false, default_spec)).or_default().push(f);
    }
    for (spec_id, f) in deletes {
        if f.content_type() != DataContentType::PositionDeletes {
            return Err(fail("only position deletes are committed".into()));
        }
        groups.entry((true, spec_id)).or_default().push(f);
    }
    for (n, ((is_delete, spec_id), files)) in groups.into_iter().enumerate() {
        let spec = metadata
            .partition_spec_by_id(spec_id)
            .ok_or_else(|| fail(format!("partition spec {spec_id} is not in the table")))?
            .clone();
        let path = format!("{location}/metadata/{commit_uuid}-m{n}.avro");
        let output = file_io
            .new_output(&path)
            .map_err(|e| fail(format!("cannot create manifest {path}: {e}")))?;
        let builder = ManifestWriterBuilder::new(
            output,
            Some(snapshot_id),
            schema.clone(),
            spec.as_ref().clone(),
        );
        let mut writer = if is_delete {
            builder.build_v2_deletes()
        } else {
            builder.build_v2_data()
        };
        for f in files {
            summary.add_file(&f, schema.clone(), spec.clone());
            writer
                .add_file(f, -1)
                .map_err(|e| fail(format!("cannot add a file to manifest {path}: {e}")))?;
        }
        manifests.push(
            writer
                .write_manifest_file()
                .await
                .map_err(|e| fail(format!("cannot write manifest {path}: {e}")))?,
        );
    }
    if let Some(parent) = &parent {
        let list = table
            .manifest_list_reader(parent)
            .load()
            .await
            .map_err(|e| fail(format!("cannot read the parent's manifest list: {e}")))?;
        manifests.extend(list.consume_entries());
    }
    let list_path = format!("{location}/metadata/snap-{snapshot_id}-1-{commit_uuid}.avro");
    let output = file_io
        .new_output(&list_path)
        .map_err(|e| fail(format!("cannot create manifest list {list_path}: {e}")))?;
    let writer = output
        .writer()
        .await
        .map_err(|e| fail(format!("cannot create manifest list {list_path}: {e}")))?;
    let mut list = ManifestListWriter::v2(
        writer,
        snapshot_id,
        parent.as_ref().map(|p| p.snapshot_id()),
        sequence_number,
    );
    list.add_manifests(manifests.into_iter())
        .map_err(|e| fail(format!("cannot write manifest list {list_path}: {e}")))?;
    list.close()
        .await
        .map_err(|e| fail(format!("cannot write manifest list {list_path}: {e}")))?;

    let mut props = summary.build();
    with_totals(&mut props, parent.as_ref().map(|p| p.summary()));
    props.extend(properties);
    let snapshot = Snapshot::builder()
        .with_snapshot_id(snapshot_id)
        .with_parent_snapshot_id(parent.as_ref().map(|p| p.snapshot_id()))
        .with_sequence_number(sequence_number)
        .with_timestamp_ms(chrono::Utc::now().timestamp_millis())
        .with_manifest_list(list_path)
        .with_summary(Summary {
            operation: Operation::Overwrite,
            additional_properties: props,
        })
        .with_schema_id(schema.schema_id())
        .build();
    let requirements = vec![
        TableRequirement::UuidMatch {
            uuid: metadata.uuid(),
        },
        TableRequirement::RefSnapshotIdMatch {
            r#ref: branch.to_string(),
            snapshot_id: parent.as_ref().map(|p| p.snapshot_id()),
        },
    ];
    let updates = vec![
        TableUpdate::AddSnapshot { snapshot },
        TableUpdate::SetSnapshotRef {
            ref_name: branch.to_string(),
            reference: SnapshotReference::new(
                snapshot_id,
                SnapshotRetention::branch(None, None, None),
            ),
        },
    ];
    match catalog
        .committer()
        .commit(table, requirements, updates)
        .await
    {
        Ok(_) => Ok(CommitOutcome::Committed(snapshot_id)),
        Err(e)
            if e.kind() == iceberg::ErrorKind::CatalogCommitConflicts
                || e.kind() == iceberg::ErrorKind::DataInvalid =>
        {
            Ok(CommitOutcome::Conflict(e.to_string()))
        }
        Err(e) => Ok(CommitOutcome::Unknown(e.to_string())),
    }
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
