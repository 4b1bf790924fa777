//! Compaction: the small data files of a partition, and the files with many deleted rows,
//! rewritten into files near the target size with their deletes applied, in one `replace`
//! snapshot (Java's `RewriteDataFiles` bin-pack, docs/maintenance.md).
//!
//! Which files: those under `min-file-size` (75 % of the target, as Java) or with at least
//! `delete-ratio` of their rows deleted. A partition is rewritten when it has at least
//! `min-input-files` such files, when they add up to more than the target, or when one of them
//! has that share of deleted rows. The rewrite reads the files with the table's current schema
//! (columns added since read as null), drops deleted positions, writes through the sink's own
//! writer (rolling at the target size), and commits as a compare-and-set on the branch head it
//! read: commits that landed meanwhile and only appended are rebased onto; anything else
//! deletes the new files and the compaction reports the conflict, so a concurrent delete can
//! never be lost. Position delete files whose every row points at a rewritten file are removed
//! with them, and so are the deletion vectors of rewritten files.
//!
//! On a format version 3 table the rewrite keeps every row's lineage: the new files store each
//! row's `_row_id` and `_last_updated_sequence_number` (from the old file's columns, or its
//! inherited `first_row_id` plus position and its data sequence number), and the merged
//! manifests write out the `first_row_id` their carried entries inherited (`lineage.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow_array::{BooleanArray, RecordBatch};
use futures::TryStreamExt;
use iceberg::arrow::ArrowReaderBuilder;
use iceberg::scan::FileScanTask;
use iceberg::spec::{
    DataContentType, DataFile, FormatVersion, ManifestContentType, ManifestFile, ManifestWriter,
    Operation, SnapshotSummaryCollector, MAIN_BRANCH,
};
use iceberg::table::Table;
use iceberg::Runtime;
use roaring::RoaringTreemap;
use serde::Serialize;

use crate::catalog::CatalogHandle;
use crate::delta::deletion_vectors::{is_vector, read_position_deletes, read_vector};
use crate::row_delta::{carry, entry_key};
use crate::snapshot::{manifests_of, Draft};
use crate::table_commit::CommitOutcome;
use crate::writer::TableWriter;

/// The table property of the target size (Java's), and its default.
pub const TARGET_FILE_SIZE: &str = "write.target-file-size-bytes";
pub const DEFAULT_TARGET_FILE_SIZE: u64 = 512 * 1024 * 1024;

/// What a compaction may rewrite.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactOptions {
    pub target_file_size: u64,
    /// Files under this size are rewritten.
    pub min_file_size: u64,
    /// A partition with at least this many files to rewrite is rewritten.
    pub min_input_files: usize,
    /// Files with at least this share of deleted rows are rewritten.
    pub delete_ratio: f64,
    /// Size-tiered selection (the coordinator's): of a partition's small files without
    /// deleted rows, a file larger than all the smaller ones together is left out, so a file
    /// compacted before is rewritten again only once as many bytes have arrived beside it —
    /// each byte is rewritten a logarithmic number of times, not once per run as the table
    /// grows. Small files with deleted rows are always rewritten (alone if need be), so
    /// upserts' delete files do not linger for readers beyond one maintenance run.
    pub tiered: bool,
    /// Plan only.
    pub dry_run: bool,
}

impl CompactOptions {
    /// Java's defaults, with the target from the table's `write.target-file-size-bytes`
    /// (`target` overrides it).
    pub fn for_table(table: &Table, target: Option<u64>) -> CompactOptions {
        let target_file_size = target
            .or_else(|| {
                table
                    .metadata()
                    .properties()
                    .get(TARGET_FILE_SIZE)
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(DEFAULT_TARGET_FILE_SIZE)
            .max(1);
        CompactOptions {
            target_file_size,
            min_file_size: target_file_size / 4 * 3,
            min_input_files: 5,
            delete_ratio: 0.3,
            tiered: false,
            dry_run: false,
        }
    }
}

/// What a compaction did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CompactReport {
    pub table: String,
    /// Partitions rewritten.
    pub partitions: usize,
    pub data_files_rewritten: usize,
    pub bytes_rewritten: u64,
    pub data_files_written: usize,
    pub bytes_written: u64,
    pub delete_files_removed: usize,
    /// Rows carried into the new files, and deleted rows left behind.
    pub rows: u64,
    pub deleted_rows_applied: u64,
    pub snapshot_id: Option<i64>,
    /// Times the commit was rebased onto appends committed while the files were rewritten.
    pub rebased: usize,
    /// Why nothing was rewritten, when nothing was.
    pub skipped: Option<String>,
}

/// Why a compaction failed.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("table {table}: {message}")]
    Table { table: String, message: String },
}

struct LiveFile {
    file: DataFile,
    deleted: u64,
}

/// A live data file's lineage inputs on a format version 3 table: its `first_row_id`
/// (inherited) and its data sequence number.
type LineageOf = HashMap<String, (i64, i64)>;

/// Compacts `table`'s main branch.
pub async fn compact(
    catalog: &CatalogHandle,
    table: &Table,
    options: &CompactOptions,
) -> Result<CompactReport, CompactError> {
    let name = table.identifier().to_string();
    let fail = |message: String| CompactError::Table {
        table: name.clone(),
        message,
    };
    let mut report = CompactReport {
        table: name.clone(),
        ..CompactReport::default()
    };
    let metadata = table.metadata();
    if metadata.format_version() == FormatVersion::V1 {
        report.skipped =
            Some("format version 1: compaction rewrites format version 2 and 3 tables".to_string());
        return Ok(report);
    }
    let v3 = metadata.format_version() >= FormatVersion::V3;
    let Some(head) = metadata.snapshot_for_ref(MAIN_BRANCH).cloned() else {
        report.skipped = Some("the table has no snapshot".into());
        return Ok(report);
    };
    let manifests: Vec<ManifestFile> = manifests_of(table, &head).await.map_err(fail)?;

    // The live files, and every position each position delete file deletes.
    let default_spec = metadata.default_partition_spec_id();
    let mut groups: BTreeMap<String, Vec<LiveFile>> = BTreeMap::new();
    let mut delete_files: Vec<(DataFile, HashSet<String>)> = Vec::new();
    let mut deleted: HashMap<String, RoaringTreemap> = HashMap::new();
    let mut lineage = LineageOf::new();
    for manifest in &manifests {
        let loaded = crate::snapshot::load_manifest(table, manifest)
            .await
            .map_err(fail)?;
        let row_ids = crate::lineage::first_row_ids(manifest, &loaded);
        for (entry, first_row_id) in loaded.entries().iter().zip(row_ids) {
            if !entry.is_alive() {
                continue;
            }
            let file = entry.data_file();
            match (manifest.content, file.content_type()) {
                (ManifestContentType::Data, _) => {
                    if v3 {
                        let (Some(first), Some(seq)) = (first_row_id, entry.sequence_number())
                        else {
                            report.skipped = Some(format!(
                                "{} has no first row id or sequence number; its rows' lineage cannot be kept",
                                file.file_path()
                            ));
                            return Ok(report);
                        };
                        lineage.insert(file.file_path().to_string(), (first, seq));
                    }
                    if manifest.partition_spec_id == default_spec {
                        groups
                            .entry(format!("{:?}", file.partition()))
                            .or_default()
                            .push(LiveFile {
                                file: file.clone(),
                                deleted: 0,
                            });
                    }
                }
                (_, DataContentType::EqualityDeletes) => {
                    report.skipped = Some(format!(
                        "the table has equality deletes ({}); compaction does not apply them yet",
                        file.file_path()
                    ));
                    return Ok(report);
                }
                _ if is_vector(file) => {
                    let Some(target) = file.referenced_data_file() else {
                        return Err(fail(format!(
                            "deletion vector in {} names no data file",
                            file.file_path()
                        )));
                    };
                    let positions = read_vector(table, file).await.map_err(fail)?;
                    *deleted.entry(target.clone()).or_default() |= positions;
                    delete_files.push((file.clone(), HashSet::from([target])));
                }
                _ => {
                    let positions = read_position_deletes(table, file, None)
                        .await
                        .map_err(fail)?;
                    let targets = positions.keys().cloned().collect();
                    for (target, p) in positions {
                        *deleted.entry(target).or_default() |= p;
                    }
                    delete_files.push((file.clone(), targets));
                }
            }
        }
    }

    // The plan.
    for files in groups.values_mut() {
        for f in files.iter_mut() {
            f.deleted = deleted.get(f.file.file_path()).map_or(0, |d| d.len());
        }
    }
    let rewrite: Vec<DataFile> = plan(groups.values().map(Vec::as_slice), options, &mut report);
    if rewrite.is_empty() {
        report.skipped = Some("no partition has enough small files or deleted rows".into());
        return Ok(report);
    }
    let rewritten: HashSet<&str> = rewrite.iter().map(|f| f.file_path()).collect();
    let removable: Vec<DataFile> = delete_files
        .iter()
        .filter(|(_, targets)| targets.iter().all(|t| rewritten.contains(t.as_str())))
        .map(|(f, _)| f.clone())
        .collect();
    report.delete_files_removed = removable.len();
    if options.dry_run {
        return Ok(report);
    }

    // The rewrite.
    let written = rewrite_files(
        table,
        &rewrite,
        &deleted,
        v3.then_some(&lineage),
        &mut report,
    )
    .await
    .map_err(fail)?;
    report.data_files_written = written.len();
    report.bytes_written = written.iter().map(|f| f.file_size_in_bytes()).sum();
    let mut removed = rewrite.clone();
    removed.extend(removable);
    let discard = || async {
        for f in &written {
            let _ = table.file_io().delete(f.file_path()).await;
        }
    };
    // Conflicts with commits that only appended are rebased onto them (Java's rewrite
    // validation): the rewritten files are still live and no delete can name them.
    let mut base = table.clone();
    loop {
        match commit(catalog, &base, written.clone(), &removed).await {
            Ok(CommitOutcome::Committed(snapshot_id)) => {
                report.snapshot_id = Some(snapshot_id);
                return Ok(report);
            }
            Ok(CommitOutcome::Conflict(reason)) => {
                let rebased = if report.rebased < MAX_REBASES {
                    rebase_onto_appends(catalog, &base).await
                } else {
                    Err(format!("rebased {MAX_REBASES} times already"))
                };
                match rebased {
                    Ok(newer) => {
                        report.rebased += 1;
                        base = newer;
                    }
                    Err(why) => {
                        discard().await;
                        report.skipped = Some(format!(
                            "the table changed while it was compacted; nothing was replaced ({reason}; {why})"
                        ));
                        return Ok(report);
                    }
                }
            }
            // The commit may have landed: its files stay (at worst unreferenced).
            Ok(CommitOutcome::Unknown(reason)) => {
                return Err(fail(format!(
                "the outcome of the compaction's commit is unknown ({reason}); its files are kept"
            )))
            }
            Err(e) => {
                discard().await;
                return Err(fail(e));
            }
        }
    }
}

/// How often a compaction rebases onto concurrent appends before it gives up.
const MAX_REBASES: usize = 3;

/// The table as it is now, when everything committed to `main` since `base` was read is an
/// `append` (new data files only: the files a compaction replaces stay live and no delete
/// names them); otherwise why the compaction cannot go on top of it.
async fn rebase_onto_appends(catalog: &CatalogHandle, base: &Table) -> Result<Table, String> {
    let base_head = base
        .metadata()
        .snapshot_for_ref(MAIN_BRANCH)
        .map(|s| s.snapshot_id());
    let now = catalog
        .load_table(base.identifier())
        .await
        .map_err(|e| format!("cannot reload the table: {e}"))?;
    if now.metadata().uuid() != base.metadata().uuid() {
        return Err("the table was replaced".into());
    }
    let head = now
        .metadata()
        .snapshot_for_ref(MAIN_BRANCH)
        .map(|s| s.snapshot_id());
    let mut descends = false;
    for s in crate::snapshot::ancestry(now.metadata(), head) {
        if Some(s.snapshot_id()) == base_head {
            descends = true;
            break;
        }
        if s.summary().operation != Operation::Append {
            return Err(format!(
                "snapshot {} is not an append but {:?}",
                s.snapshot_id(),
                s.summary().operation
            ));
        }
    }
    if !descends {
        return Err("main no longer descends from the snapshot compacted".into());
    }
    Ok(now)
}

/// The files to rewrite, partition by partition.
fn plan<'a>(
    groups: impl Iterator<Item = &'a [LiveFile]>,
    options: &CompactOptions,
    report: &mut CompactReport,
) -> Vec<DataFile> {
    let mut rewrite = Vec::new();
    for files in groups {
        let too_deleted = |f: &LiveFile| {
            f.deleted > 0
                && f.deleted as f64 >= options.delete_ratio * f.file.record_count().max(1) as f64
        };
        let mut picked: Vec<&LiveFile> = files.iter().filter(|f| too_deleted(f)).collect();
        let mut small: Vec<&LiveFile> = files
            .iter()
            .filter(|f| f.file.file_size_in_bytes() < options.min_file_size && !too_deleted(f))
            .collect();
        if options.tiered {
            // Files with deleted rows always go (the rewrite drops their deletes). Of the
            // others, smallest first, the rewrite reaches up to the largest file no larger
            // than all the smaller ones together, and leaves the larger ones.
            let (with_deletes, clean): (Vec<&LiveFile>, Vec<&LiveFile>) =
                small.into_iter().partition(|f| f.deleted > 0);
            picked.extend(with_deletes);
            small = clean;
            small.sort_by_key(|f| f.file.file_size_in_bytes());
            let (mut below, mut keep) = (0, 0);
            for (i, f) in small.iter().enumerate() {
                let size = f.file.file_size_in_bytes();
                if i > 0 && size <= below {
                    keep = i + 1;
                }
                below += size;
            }
            small.truncate(keep);
        }
        picked.extend(small);
        let size: u64 = picked.iter().map(|f| f.file.file_size_in_bytes()).sum();
        let worth = picked.iter().any(|f| too_deleted(f))
            || (options.tiered && picked.iter().any(|f| f.deleted > 0))
            || (picked.len() >= 2
                && (picked.len() >= options.min_input_files || size > options.target_file_size));
        if worth {
            report.partitions += 1;
            report.data_files_rewritten += picked.len();
            report.bytes_rewritten += size;
            rewrite.extend(picked.into_iter().map(|f| f.file.clone()));
        }
    }
    rewrite
}

/// Reads `files` with the current schema, drops their deleted rows, writes the rest (with
/// each row's lineage when `lineage` is given: a format version 3 table).
async fn rewrite_files(
    table: &Table,
    files: &[DataFile],
    deleted: &HashMap<String, RoaringTreemap>,
    lineage: Option<&LineageOf>,
    report: &mut CompactReport,
) -> Result<Vec<DataFile>, String> {
    let name = table.identifier().to_string();
    let mut writer = match lineage {
        Some(_) => TableWriter::open_with_lineage(&name, table.clone(), &BTreeMap::new()).await,
        None => TableWriter::open(&name, table.clone(), &BTreeMap::new()).await,
    }
    .map_err(|e| e.to_string())?;
    let schema = table.metadata().current_schema().clone();
    let field_ids: Vec<i32> = schema.as_struct().fields().iter().map(|f| f.id).collect();
    let runtime = Runtime::try_current().map_err(|e| e.to_string())?;
    let arrow_schema = writer.arrow_schema().clone();
    let empty = RoaringTreemap::new();
    for file in files {
        let path = file.file_path();
        let task = FileScanTask::builder()
            .with_file_size_in_bytes(file.file_size_in_bytes())
            .with_start(0)
            .with_length(file.file_size_in_bytes())
            .with_record_count(Some(file.record_count()))
            .with_data_file_path(path.to_string())
            .with_data_file_format(file.file_format())
            .with_schema(schema.clone())
            .with_project_field_ids(field_ids.clone())
            .with_case_sensitive(true)
            .build();
        let reader = ArrowReaderBuilder::new(table.file_io().clone(), runtime.clone())
            .with_data_file_concurrency_limit(1)
            .with_row_selection_enabled(false)
            .build();
        let tasks = Box::pin(futures::stream::iter(vec![Ok(task)]));
        let mut stream = reader
            .read(tasks)
            .map_err(|e| format!("cannot read {path}: {e}"))?
            .stream();
        let gone = deleted.get(path).unwrap_or(&empty);
        let rows_lineage = match lineage {
            Some(of) => {
                let &(first_row_id, sequence_number) = of
                    .get(path)
                    .ok_or_else(|| format!("{path}: no row lineage for the file"))?;
                Some(crate::lineage::FileLineage {
                    first_row_id,
                    sequence_number,
                    stored: crate::lineage::stored(table, path, file.file_size_in_bytes()).await?,
                })
            }
            None => None,
        };
        let mut position: u64 = 0;
        while let Some(batch) = stream
            .try_next()
            .await
            .map_err(|e| format!("cannot read {path}: {e}"))?
        {
            let rows = batch.num_rows() as u64;
            let kept: Vec<u64> = match &rows_lineage {
                Some(_) => (position..position + rows)
                    .filter(|p| !gone.contains(*p))
                    .collect(),
                None => Vec::new(),
            };
            let batch = if gone.is_empty() {
                batch
            } else {
                let keep: BooleanArray = (position..position + rows)
                    .map(|p| Some(!gone.contains(p)))
                    .collect();
                arrow_select::filter::filter_record_batch(&batch, &keep)
                    .map_err(|e| format!("cannot apply the deletes of {path}: {e}"))?
            };
            position += rows;
            report.deleted_rows_applied += rows - batch.num_rows() as u64;
            report.rows += batch.num_rows() as u64;
            if batch.num_rows() == 0 {
                continue;
            }
            let mut columns = batch.columns().to_vec();
            if let Some(rows_lineage) = &rows_lineage {
                columns.extend(
                    rows_lineage
                        .columns(&kept)
                        .map_err(|e| format!("{path}: {e}"))?,
                );
            }
            let batch = RecordBatch::try_new(arrow_schema.clone(), columns)
                .map_err(|e| format!("{path} does not read as the table's schema: {e}"))?;
            writer.write(batch).await.map_err(|e| e.to_string())?;
        }
        if position != file.record_count() {
            writer.abandon().await;
            return Err(format!(
                "{path} has {position} rows, its manifest entry says {}",
                file.record_count()
            ));
        }
    }
    writer.close().await.map_err(|e| e.to_string())
}

/// Commits the rewrite as a `replace` snapshot on the head the plan was made on. Every manifest
/// of the head is merged into one per content and partition spec: the new files added, the
/// rewritten ones deleted, the rest existing — a compacted table has one data manifest per spec
/// instead of one per commit, fewer files for readers to open.
async fn commit(
    catalog: &CatalogHandle,
    table: &Table,
    added: Vec<DataFile>,
    removed: &[DataFile],
) -> Result<CommitOutcome, String> {
    let metadata = table.metadata();
    let mut draft = Draft::new(table, MAIN_BRANCH);
    let schema = metadata.current_schema().clone();
    let default_spec = metadata.default_partition_spec_id();
    let mut summary = SnapshotSummaryCollector::default();
    let mut writers: BTreeMap<(bool, i32), (String, ManifestWriter)> = BTreeMap::new();
    let (path, mut writer) = draft.manifest_writer(false, default_spec)?;
    for f in added {
        summary.add_file(
            &f,
            schema.clone(),
            metadata.default_partition_spec().clone(),
        );
        writer
            .add_file(f, -1)
            .map_err(|e| format!("cannot add a new file to manifest {path}: {e}"))?;
    }
    writers.insert((false, default_spec), (path, writer));
    let wanted: HashSet<(String, Option<i64>)> = removed.iter().map(entry_key).collect();
    let mut found = 0;
    for manifest in &draft.parent_manifests().await? {
        let loaded = crate::snapshot::load_manifest(table, manifest).await?;
        let key = (
            manifest.content == ManifestContentType::Deletes,
            manifest.partition_spec_id,
        );
        let (_, writer) = match writers.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(draft.manifest_writer(key.0, key.1)?)
            }
        };
        let row_ids = crate::lineage::first_row_ids(manifest, &loaded);
        for (entry, first_row_id) in loaded.entries().iter().zip(row_ids) {
            if !entry.is_alive() {
                continue;
            }
            let gone = wanted.contains(&entry_key(entry.data_file()));
            carry(
                writer,
                entry,
                gone,
                first_row_id,
                manifest.partition_spec_id,
            )
            .map_err(|e| format!("manifest {}: {e}", manifest.manifest_path))?;
            if gone {
                found += 1;
                if let Some(spec) = metadata.partition_spec_by_id(manifest.partition_spec_id) {
                    summary.remove_file(entry.data_file(), schema.clone(), spec.clone());
                }
            }
        }
    }
    if found != wanted.len() {
        return Err(format!(
            "{} of the {} files to replace are no longer live",
            wanted.len() - found,
            wanted.len()
        ));
    }
    let mut manifests = Vec::with_capacity(writers.len());
    for (_, (path, writer)) in writers {
        manifests.push(
            writer
                .write_manifest_file()
                .await
                .map_err(|e| format!("cannot write manifest {path}: {e}"))?,
        );
    }
    draft
        .commit(catalog, manifests, Operation::Replace, summary.build())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, size: u64, records: u64, deleted: u64) -> LiveFile {
        LiveFile {
            file: iceberg::spec::DataFileBuilder::default()
                .content(DataContentType::Data)
                .file_path(path.into())
                .file_format(iceberg::spec::DataFileFormat::Parquet)
                .record_count(records)
                .file_size_in_bytes(size)
                .build()
                .unwrap(),
            deleted,
        }
    }

    fn options() -> CompactOptions {
        CompactOptions {
            target_file_size: 1000,
            min_file_size: 750,
            min_input_files: 5,
            delete_ratio: 0.3,
            tiered: false,
            dry_run: false,
        }
    }

    fn planned_with(
        groups: &[Vec<LiveFile>],
        options: &CompactOptions,
    ) -> (Vec<String>, CompactReport) {
        let mut report = CompactReport::default();
        let files = plan(groups.iter().map(Vec::as_slice), options, &mut report);
        (
            files.iter().map(|f| f.file_path().to_string()).collect(),
            report,
        )
    }

    fn planned(groups: &[Vec<LiveFile>]) -> (Vec<String>, CompactReport) {
        planned_with(groups, &options())
    }

    #[test]
    fn tiered_selection_leaves_a_large_compacted_file_until_as_much_has_arrived() {
        let tiered = CompactOptions {
            tiered: true,
            ..options()
        };
        // A compacted file of 500 and five new ones of 50: only the new ones.
        let mut files: Vec<LiveFile> = (0..5).map(|i| file(&format!("n{i}"), 50, 10, 0)).collect();
        files.push(file("compacted", 500, 100, 0));
        let (picked, report) = planned_with(&[files], &tiered);
        assert_eq!(picked, ["n0", "n1", "n2", "n3", "n4"]);
        assert_eq!(report.bytes_rewritten, 250);
        // Once the new files add up to it, it joins (and so does the next tier).
        let mut files: Vec<LiveFile> = (0..5).map(|i| file(&format!("n{i}"), 50, 10, 0)).collect();
        files.push(file("second", 250, 50, 0));
        files.push(file("first", 500, 100, 0));
        assert_eq!(planned_with(&[files], &tiered).0.len(), 7);
        // Four new files beside a big one: not yet.
        let mut files: Vec<LiveFile> = (0..4).map(|i| file(&format!("n{i}"), 50, 10, 0)).collect();
        files.push(file("compacted", 500, 100, 0));
        assert!(planned_with(&[files], &tiered).0.is_empty());
        // A compacted file with a few deleted rows goes along, so its delete files can go.
        let mut files: Vec<LiveFile> = (0..4).map(|i| file(&format!("n{i}"), 50, 10, 0)).collect();
        files.push(file("compacted", 500, 100, 1));
        assert_eq!(planned_with(&[files], &tiered).0.len(), 5);
        // A small file with one deleted row alone: rewritten, so its delete file goes.
        let files = vec![file("upserted", 50, 10, 1), file("large", 900, 100, 1)];
        assert_eq!(planned_with(&[files], &tiered).0, ["upserted"]);
        // Equal files are all picked; a file with many deletes always is.
        let mut files: Vec<LiveFile> = (0..5).map(|i| file(&format!("e{i}"), 100, 10, 0)).collect();
        files.push(file("deleted", 700, 10, 5));
        assert_eq!(planned_with(&[files], &tiered).0.len(), 6);
    }

    #[test]
    fn a_partition_needs_enough_small_files() {
        let four: Vec<LiveFile> = (0..4).map(|i| file(&format!("a{i}"), 100, 10, 0)).collect();
        assert!(planned(&[four]).0.is_empty());
        let mut five: Vec<LiveFile> = (0..5).map(|i| file(&format!("b{i}"), 100, 10, 0)).collect();
        // A file at the target size stays.
        five.push(file("big", 900, 10, 0));
        let (files, report) = planned(&[five]);
        assert_eq!(files, ["b0", "b1", "b2", "b3", "b4"]);
        assert_eq!(
            (
                report.partitions,
                report.data_files_rewritten,
                report.bytes_rewritten
            ),
            (1, 5, 500)
        );
    }

    #[test]
    fn small_files_adding_up_past_the_target_are_rewritten() {
        let two = vec![file("a", 600, 10, 0), file("b", 600, 10, 0)];
        assert_eq!(planned(&[two]).0, ["a", "b"]);
        // One small file alone is never rewritten for its size.
        assert!(planned(&[vec![file("a", 10, 10, 0)]]).0.is_empty());
    }

    #[test]
    fn files_with_many_deleted_rows_are_rewritten_alone() {
        assert!(planned(&[vec![file("big", 900, 10, 2)]]).0.is_empty());
        assert_eq!(planned(&[vec![file("big", 900, 10, 3)]]).0, ["big"]);
    }

    #[test]
    fn partitions_are_planned_apart() {
        let a: Vec<LiveFile> = (0..5).map(|i| file(&format!("a{i}"), 100, 10, 0)).collect();
        let b: Vec<LiveFile> = (0..3).map(|i| file(&format!("b{i}"), 100, 10, 0)).collect();
        let (files, report) = planned(&[a, b]);
        assert_eq!(files.len(), 5);
        assert_eq!(report.partitions, 1);
    }
}
