//! A row-delta commit: new data files and delete files in one snapshot (Java's `RowDelta`),
//! as a compare-and-set on the branch head the caller validated (`snapshot.rs`).
//!
//! The snapshot keeps every manifest of its parent and adds one data manifest and one delete
//! manifest per partition spec; added entries inherit the snapshot's sequence number, so the
//! position deletes apply to rows written before them (and to none written with them). The
//! summary carries Java's keys (`added-delete-files`, `added-position-deletes`, the totals)
//! and the sink's properties. Operation `overwrite`, as Java names a row delta that adds both.
//!
//! Data files go into a manifest of the partition spec they were written with: a file written
//! under an older spec (another writer evolved the spec while it was being written) is
//! committed as Java commits it, in a manifest of its own spec. With no delete file this is an
//! append (operation `append`), which iceberg's fast append cannot do.
//!
//! On a format v3 table the deletes are deletion vectors: the vectors they replace (a data
//! file has one live vector) are marked deleted in a rewrite of the manifests that held them,
//! the summary counts vectors as Java does (`added-dvs`/`removed-dvs`, sizes by blob), and
//! the snapshot takes the row-id range its new data files are assigned (row lineage).

use std::collections::{BTreeMap, HashMap, HashSet};

use iceberg::spec::{
    DataContentType, DataFile, FormatVersion, ManifestFile, ManifestWriter, Operation,
    SnapshotSummaryCollector, MAIN_BRANCH,
};
use iceberg::table::Table;

use crate::catalog::CatalogHandle;
use crate::delta::deletion_vectors::is_vector;
use crate::error::SinkError;
use crate::snapshot::Draft;
use crate::table_commit::CommitOutcome;

/// Commits `data` (written with the partition spec `data_specs` names for its path, by default
/// the table's default spec) and `deletes` (position delete files on v2 tables, deletion
/// vectors on v3, each with the id of the partition spec it was written for) to `table`'s
/// `branch` in one snapshot with `properties` in its summary, conditional on the branch head
/// the caller validated. `replaced` are the live deletion vectors (and file-scoped position
/// delete files) the new ones take the place of.
#[allow(clippy::too_many_arguments)]
pub async fn commit(
    catalog: &CatalogHandle,
    table: &Table,
    data: Vec<DataFile>,
    data_specs: &HashMap<String, i32>,
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
    let appends_only = deletes.is_empty() && replaced.is_empty();
    let v3 = match metadata.format_version() {
        FormatVersion::V2 => false,
        FormatVersion::V3 => true,
        FormatVersion::V1 if appends_only => false,
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
    let mut draft = Draft::new(table, branch.unwrap_or(MAIN_BRANCH));
    let schema = metadata.current_schema().clone();
    let mut summary = SnapshotSummaryCollector::default();
    let mut manifests: Vec<ManifestFile> = Vec::new();
    let mut vectors = VectorCounts::default();

    // One manifest per content and partition spec.
    let mut groups: BTreeMap<(bool, i32), Vec<DataFile>> = BTreeMap::new();
    let default_spec = metadata.default_partition_spec_id();
    for f in data {
        let spec_id = data_specs
            .get(f.file_path())
            .copied()
            .unwrap_or(default_spec);
        groups.entry((false, spec_id)).or_default().push(f);
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
    for ((is_delete, spec_id), files) in groups {
        let spec = metadata
            .partition_spec_by_id(spec_id)
            .ok_or_else(|| fail(format!("partition spec {spec_id} is not in the table")))?
            .clone();
        let (path, mut writer) = draft.manifest_writer(is_delete, spec_id).map_err(fail)?;
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
    let parents = draft.parent_manifests().await.map_err(fail)?;
    if replaced.is_empty() {
        manifests.extend(parents);
    } else {
        let rewritten = remove_entries(&mut draft, parents, &replaced)
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
    let mut props = summary.build();
    vectors.apply(&mut props);
    props.extend(properties);
    let operation = if appends_only {
        Operation::Append
    } else {
        Operation::Overwrite
    };
    draft
        .commit(catalog, manifests, operation, props)
        .await
        .map_err(fail)
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
    draft: &mut Draft<'_>,
    parents: Vec<ManifestFile>,
    removed: &[DataFile],
) -> Result<Rewritten, String> {
    let wanted: HashSet<(String, Option<i64>)> = removed.iter().map(entry_key).collect();
    let mut out = Rewritten {
        manifests: Vec::with_capacity(parents.len()),
        removed: Vec::new(),
    };
    for manifest in parents {
        if out.removed.len() == wanted.len() {
            out.manifests.push(manifest);
            continue;
        }
        let loaded = crate::snapshot::load_manifest(draft.table, &manifest).await?;
        if !loaded
            .entries()
            .iter()
            .any(|e| e.is_alive() && wanted.contains(&entry_key(e.data_file())))
        {
            out.manifests.push(manifest);
            continue;
        }
        let is_delete = manifest.content == iceberg::spec::ManifestContentType::Deletes;
        let (path, mut writer) = draft.manifest_writer(is_delete, manifest.partition_spec_id)?;
        let row_ids = crate::lineage::first_row_ids(&manifest, &loaded);
        for (entry, first_row_id) in loaded.entries().iter().zip(row_ids) {
            if !entry.is_alive() {
                continue;
            }
            let gone = wanted.contains(&entry_key(entry.data_file()));
            carry(
                &mut writer,
                entry,
                gone,
                first_row_id,
                manifest.partition_spec_id,
            )
            .map_err(|e| format!("manifest {}: {e}", manifest.manifest_path))?;
            if gone {
                out.removed
                    .push((manifest.partition_spec_id, entry.data_file().clone()));
            }
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

/// What identifies a manifest entry's file: its path, and for a deletion vector its offset in
/// the Puffin file.
pub(crate) fn entry_key(f: &DataFile) -> (String, Option<i64>) {
    (f.file_path().to_string(), f.content_offset())
}

/// Writes a live entry of a parent manifest into a new one: deleted by this snapshot when
/// `removed`, else existing (keeping its snapshot and sequence numbers, and the `first_row_id`
/// it inherited in its old manifest, `lineage::first_row_ids`, written out so the new
/// manifest's row range does not renumber its rows).
pub(crate) fn carry(
    writer: &mut ManifestWriter,
    entry: &iceberg::spec::ManifestEntry,
    removed: bool,
    first_row_id: Option<i64>,
    spec_id: i32,
) -> Result<(), String> {
    let file = match first_row_id {
        Some(id) if entry.data_file().first_row_id().is_none() => {
            crate::lineage::with_first_row_id(entry.data_file(), spec_id, id)?
        }
        _ => entry.data_file().clone(),
    };
    let (Some(seq), Some(added_by)) = (entry.sequence_number(), entry.snapshot_id()) else {
        return Err(format!(
            "the entry of {} has no snapshot or sequence number",
            file.file_path()
        ));
    };
    if removed {
        writer.add_delete_file(file, seq, entry.file_sequence_number)
    } else {
        writer.add_existing_file(file, added_by, seq, entry.file_sequence_number)
    }
    .map_err(|e| format!("cannot carry {}: {e}", entry.data_file().file_path()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
