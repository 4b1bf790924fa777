//! A row-delta commit: new data files and delete files in one snapshot (Java's `RowDelta`),
//! as a compare-and-set on the branch head the caller validated.
//!
//! The snapshot keeps every manifest of its parent and adds one data manifest and one delete
//! manifest per partition spec; added entries inherit the snapshot's sequence number, so the
//! position deletes apply to rows written before them (and to none written with them). The
//! summary carries Java's keys (`added-delete-files`, `added-position-deletes`, the totals)
//! and the sink's properties. Operation `overwrite`, as Java names a row delta that adds both.
//!
//! On a format v3 table the deletes are deletion vectors: the vectors they replace (a data
//! file has one live vector) are marked deleted in a rewrite of the manifests that held them,
//! the summary counts vectors as Java does (`added-dvs`/`removed-dvs`, sizes by blob), and
//! the snapshot takes the row-id range its new data files are assigned (row lineage).

use std::collections::{BTreeMap, HashMap};

use iceberg::spec::{
    DataContentType, DataFile, FormatVersion, ManifestContentType, ManifestFile,
    ManifestListWriter, ManifestWriterBuilder, Operation, Snapshot, SnapshotReference,
    SnapshotRetention, SnapshotSummaryCollector, Summary, MAIN_BRANCH,
};
use iceberg::table::Table;
use iceberg::{TableRequirement, TableUpdate};

use crate::catalog::CatalogHandle;
use crate::delta::deletion_vectors::is_vector;
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

/// Commits `data` (written with the default partition spec) and `deletes` (position delete
/// files on v2 tables, deletion vectors on v3, each with the id of the partition spec it was
/// written for) to `table`'s `branch` in one snapshot with `properties` in its summary,
/// conditional on the branch head the caller validated. `replaced` are the live deletion
/// vectors (and file-scoped position delete files) the new ones take the place of.
pub async fn commit(
    catalog: &CatalogHandle,
    table: &Table,
    data: Vec<DataFile>,
    deletes: Vec<(i32, DataFile)>,
    replaced: Vec<DataFile>,
    properties: HashMap<String, String>,
    branch: Option<&str>,
) -> Result<CommitOutcome, SinkError> {
    let name = table.identifier().to_string();
    let fail = |message: String| SinkError::Table {
        table: name.clone(),
        message,
    };
    let metadata = table.metadata();
    let v3 = match metadata.format_version() {
        FormatVersion::V2 => false,
        FormatVersion::V3 => true,
        other => {
            return Err(fail(format!(
                "deletes are written to format version 2 and 3 tables; this table is {other:?}"
            )))
        }
    };
    if !v3 && !replaced.is_empty() {
        return Err(fail(
            "deletion vectors are replaced on format version 3 tables only".into(),
        ));
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
    let mut vectors = VectorCounts::default();

    // One manifest per content and partition spec.
    let mut groups: BTreeMap<(bool, i32), Vec<DataFile>> = BTreeMap::new();
    let default_spec = metadata.default_partition_spec_id();
    for f in data {
        groups.entry((false, default_spec)).or_default().push(f);
    }
    for (spec_id, f) in deletes {
        if f.content_type() != DataContentType::PositionDeletes || is_vector(&f) != v3 {
            return Err(fail(format!(
                "only {} are committed to this table",
                if v3 {
                    "deletion vectors"
                } else {
                    "position delete files"
                }
            )));
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
        let mut writer = match (is_delete, v3) {
            (true, true) => builder.build_v3_deletes(),
            (false, true) => builder.build_v3_data(),
            (true, false) => builder.build_v2_deletes(),
            (false, false) => builder.build_v2_data(),
        };
        for f in files {
            summary.add_file(&f, schema.clone(), spec.clone());
            vectors.added(&f);
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
        let parents = list.consume_entries();
        if replaced.is_empty() {
            manifests.extend(parents);
        } else {
            let rewritten = remove_entries(
                table,
                parents.into_iter().collect(),
                &replaced,
                snapshot_id,
                &format!("{location}/metadata/{commit_uuid}"),
            )
            .await
            .map_err(fail)?;
            for (spec_id, f) in &rewritten.removed {
                if let Some(spec) = metadata.partition_spec_by_id(*spec_id) {
                    summary.remove_file(f, schema.clone(), spec.clone());
                }
                vectors.removed(f);
            }
            manifests.extend(rewritten.manifests);
        }
    }
    let list_path = format!("{location}/metadata/snap-{snapshot_id}-1-{commit_uuid}.avro");
    let output = file_io
        .new_output(&list_path)
        .map_err(|e| fail(format!("cannot create manifest list {list_path}: {e}")))?;
    let writer = output
        .writer()
        .await
        .map_err(|e| fail(format!("cannot create manifest list {list_path}: {e}")))?;
    let first_row_id = metadata.next_row_id();
    let mut list = if v3 {
        ManifestListWriter::v3(
            writer,
            snapshot_id,
            parent.as_ref().map(|p| p.snapshot_id()),
            sequence_number,
            Some(first_row_id),
        )
    } else {
        ManifestListWriter::v2(
            writer,
            snapshot_id,
            parent.as_ref().map(|p| p.snapshot_id()),
            sequence_number,
        )
    };
    list.add_manifests(manifests.into_iter())
        .map_err(|e| fail(format!("cannot write manifest list {list_path}: {e}")))?;
    let next_row_id = list.next_row_id();
    list.close()
        .await
        .map_err(|e| fail(format!("cannot write manifest list {list_path}: {e}")))?;

    let mut props = summary.build();
    vectors.apply(&mut props);
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
        .with_schema_id(schema.schema_id());
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

/// What a row delta counts differently for deletion vectors: Java counts them as `dvs` rather
/// than position delete files, and by the size of their blob rather than of the Puffin file.
#[derive(Default)]
pub(crate) struct VectorCounts {
    added: i64,
    removed: i64,
    added_overcount: i64,
    removed_overcount: i64,
}

impl VectorCounts {
    pub(crate) fn added(&mut self, f: &DataFile) {
        if is_vector(f) {
            self.added += 1;
            self.added_overcount += f.file_size_in_bytes() as i64
                - f.content_size_in_bytes()
                    .unwrap_or(f.file_size_in_bytes() as i64);
        }
    }

    pub(crate) fn removed(&mut self, f: &DataFile) {
        if is_vector(f) {
            self.removed += 1;
            self.removed_overcount += f.file_size_in_bytes() as i64
                - f.content_size_in_bytes()
                    .unwrap_or(f.file_size_in_bytes() as i64);
        }
    }

    pub(crate) fn apply(&self, props: &mut HashMap<String, String>) {
        adjust(props, "added-dvs", self.added);
        adjust(props, "added-position-delete-files", -self.added);
        adjust(props, "added-files-size", -self.added_overcount);
        adjust(props, "removed-dvs", self.removed);
        adjust(props, "removed-position-delete-files", -self.removed);
        adjust(props, "removed-files-size", -self.removed_overcount);
    }
}

/// Adds `delta` to a summary count, dropping the key when it comes to zero (Java writes only
/// counts above zero).
fn adjust(props: &mut HashMap<String, String>, key: &str, delta: i64) {
    if delta == 0 {
        return;
    }
    let value = props
        .get(key)
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0)
        + delta;
    if value > 0 {
        props.insert(key.to_string(), value.to_string());
    } else {
        props.remove(key);
    }
}

/// The parent's manifests with `removed` (data files, deletion vectors, position delete files)
/// marked deleted: each manifest holding one of them is rewritten (its other live entries kept
/// as existing), the rest are kept as they are.
pub(crate) struct Rewritten {
    pub manifests: Vec<ManifestFile>,
    /// With the partition spec id of the manifest that held each.
    pub removed: Vec<(i32, DataFile)>,
}

pub(crate) async fn remove_entries(
    table: &Table,
    parents: Vec<ManifestFile>,
    removed: &[DataFile],
    snapshot_id: i64,
    prefix: &str,
) -> Result<Rewritten, String> {
    let metadata = table.metadata();
    let v3 = metadata.format_version() == FormatVersion::V3;
    let key = |f: &DataFile| (f.file_path().to_string(), f.content_offset());
    let wanted: std::collections::HashSet<(String, Option<i64>)> =
        removed.iter().map(key).collect();
    let mut out = Rewritten {
        manifests: Vec::with_capacity(parents.len()),
        removed: Vec::new(),
    };
    for (n, manifest) in parents.into_iter().enumerate() {
        if out.removed.len() == wanted.len() {
            out.manifests.push(manifest);
            continue;
        }
        let loaded = manifest
            .load_manifest(table.file_io())
            .await
            .map_err(|e| format!("cannot read manifest {}: {e}", manifest.manifest_path))?;
        if !loaded
            .entries()
            .iter()
            .any(|e| e.is_alive() && wanted.contains(&key(e.data_file())))
        {
            out.manifests.push(manifest);
            continue;
        }
        let spec = metadata
            .partition_spec_by_id(manifest.partition_spec_id)
            .ok_or_else(|| {
                format!(
                    "partition spec {} of manifest {} is not in the table",
                    manifest.partition_spec_id, manifest.manifest_path
                )
            })?;
        let path = format!("{prefix}-r{n}.avro");
        let output = table
            .file_io()
            .new_output(&path)
            .map_err(|e| format!("cannot create manifest {path}: {e}"))?;
        let builder = ManifestWriterBuilder::new(
            output,
            Some(snapshot_id),
            metadata.current_schema().clone(),
            spec.as_ref().clone(),
        );
        let mut writer = match (manifest.content, v3) {
            (ManifestContentType::Deletes, true) => builder.build_v3_deletes(),
            (ManifestContentType::Deletes, false) => builder.build_v2_deletes(),
            (ManifestContentType::Data, true) => builder.build_v3_data(),
            (ManifestContentType::Data, false) => builder.build_v2_data(),
        };
        for entry in loaded.entries() {
            if !entry.is_alive() {
                continue;
            }
            let file = entry.data_file().clone();
            let (Some(seq), Some(added_by)) = (entry.sequence_number(), entry.snapshot_id()) else {
                return Err(format!(
                    "manifest {} has an entry without its snapshot or sequence number",
                    manifest.manifest_path
                ));
            };
            if wanted.contains(&key(&file)) {
                out.removed.push((manifest.partition_spec_id, file.clone()));
                writer.add_delete_file(file, seq, entry.file_sequence_number)
            } else {
                writer.add_existing_file(file, added_by, seq, entry.file_sequence_number)
            }
            .map_err(|e| format!("cannot rewrite manifest {path}: {e}"))?;
        }
        out.manifests.push(
            writer
                .write_manifest_file()
                .await
                .map_err(|e| format!("cannot write manifest {path}: {e}"))?,
        );
    }
    if out.removed.len() != wanted.len() {
        return Err(format!(
            "{} of the {} files to remove are no longer live",
            wanted.len() - out.removed.len(),
            wanted.len()
        ));
    }
    Ok(out)
}

/// A snapshot id not used by the table (Java's: random, positive).
pub(crate) fn new_snapshot_id(table: &Table) -> i64 {
    loop {
        let id = (uuid::Uuid::new_v4().as_u128() as i64) & i64::MAX;
        if id != 0 && table.metadata().snapshot_by_id(id).is_none() {
            return id;
        }
    }
}

/// Adds Java's `total-*` keys: the parent's totals with this snapshot's additions.
pub(crate) fn with_totals(props: &mut HashMap<String, String>, parent: Option<&Summary>) {
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

    #[test]
    fn vectors_count_as_java_counts_them() {
        let vector = |size: i64| {
            iceberg::spec::DataFileBuilder::default()
                .content(DataContentType::PositionDeletes)
                .file_path("s3://b/t/data/x-dv.puffin".into())
                .file_format(iceberg::spec::DataFileFormat::Puffin)
                .record_count(3)
                .file_size_in_bytes(1000)
                .referenced_data_file(Some("s3://b/t/data/a.parquet".into()))
                .content_offset(Some(4))
                .content_size_in_bytes(Some(size))
                .build()
                .unwrap()
        };
        // What iceberg's collector says for two added vectors and one removed, all in one
        // 1000-byte Puffin file.
        let mut props = HashMap::from([
            ("added-delete-files".to_string(), "2".to_string()),
            ("added-position-delete-files".to_string(), "2".to_string()),
            ("added-files-size".to_string(), "2500".to_string()),
            ("removed-delete-files".to_string(), "1".to_string()),
            ("removed-position-delete-files".to_string(), "1".to_string()),
            ("removed-files-size".to_string(), "1000".to_string()),
        ]);
        let mut counts = VectorCounts::default();
        counts.added(&vector(40));
        counts.added(&vector(60));
        counts.removed(&vector(30));
        counts.apply(&mut props);
        assert_eq!(props["added-dvs"], "2");
        assert_eq!(props["removed-dvs"], "1");
        assert!(!props.contains_key("added-position-delete-files"));
        assert!(!props.contains_key("removed-position-delete-files"));
        // 500 bytes of data files, plus the two blobs.
        assert_eq!(props["added-files-size"], "600");
        assert_eq!(props["removed-files-size"], "30");
        assert_eq!(props["added-delete-files"], "2");
    }
}
