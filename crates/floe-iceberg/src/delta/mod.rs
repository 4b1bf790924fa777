//! Upserts and CDC (docs/upserts.md).
//!
//! A table is written in delta mode when `iceberg.tables.upsert-mode-enabled` is on (every
//! record replaces the row with its key) or `iceberg.tables.cdc-field` names the field holding
//! each record's operation (`I`/`U`/`D` by the first letter, as the Tabular sink reads it, so
//! Debezium's `c`/`r`/`u`/`d` work too).
//!
//! * A task keeps the cycle's changes per table ([`changes::ChangeBuffer`]): the last row per
//!   key, and every key an update or delete touched. When it answers a commit it writes the
//!   surviving rows as data files and the touched keys as one equality-delete file, and
//!   announces both (the control-topic events stay Java's).
//! * The coordinator never commits those equality deletes: before committing it finds the rows
//!   the keys match in the table's live data files ([`resolve`]) and commits position deletes
//!   for them, with the new data files, in one row-delta snapshot (`row_delta.rs`): position
//!   delete files on format v2 tables, deletion vectors on v3 ([`deletion_vectors`]). Readers
//!   join nothing.

pub mod changes;
pub mod deletion_vectors;
pub mod keys;
pub mod position_deletes;
pub mod resolve;

use std::collections::HashMap;
use std::sync::Arc;

use floe_data::SinkRecord;
use iceberg::spec::{DataContentType, DataFile, FormatVersion, NestedFieldRef, Schema};
use iceberg::table::Table;
use tracing::{info, warn};

use crate::catalog::CatalogHandle;
use crate::error::SinkError;
use crate::table_commit::{self, CommitOutcome};
use resolve::KeyIndexCache;

/// Commits the announced files of `table`, `groups` in the order they were announced (each
/// one task's answer to one cycle): a plain append when nothing is deleted; otherwise each
/// group's equality deletes are resolved to position deletes against the branch head and the
/// data files of the groups before it (a task's earlier cycle not committed yet, after a
/// restart), and everything is committed in one row-delta snapshot. The equality-delete files
/// are removed once committed (they are never part of the table), as are the position delete
/// files of an attempt that lost a conflict. `data_specs` names the partition spec of each data
/// file written under another spec than the table's default.
pub async fn commit(
    catalog: &CatalogHandle,
    table: &Table,
    groups: Vec<(Vec<DataFile>, Vec<DataFile>)>,
    data_specs: &HashMap<String, i32>,
    properties: HashMap<String, String>,
    branch: Option<&str>,
    cache: &mut KeyIndexCache,
) -> Result<CommitOutcome, SinkError> {
    let name = table.identifier().to_string();
    let fail = |message: String| SinkError::Table {
        table: name.clone(),
        message,
    };
    let mut data: Vec<DataFile> = Vec::new();
    let mut equality: Vec<DataFile> = Vec::new();
    let mut file_deletes: HashMap<String, position_deletes::FileDeletes> = HashMap::new();
    let mut resolutions = Vec::new();
    for (group_data, group_deletes) in groups {
        if let Some(other) = group_deletes
            .iter()
            .find(|f| f.content_type() != DataContentType::EqualityDeletes)
        {
            return Err(fail(format!(
                "announced delete file {} is not an equality delete; Floe commits the position deletes it resolves itself",
                other.file_path()
            )));
        }
        if !group_deletes.is_empty() {
            let resolved = resolve::resolve(table, branch, &group_deletes, &data, cache)
                .await
                .map_err(|e| fail(format!("cannot resolve the deleted keys: {e}")))?;
            for d in &resolved.deletes {
                let entry = file_deletes.entry(d.data_file.clone()).or_insert_with(|| {
                    position_deletes::FileDeletes {
                        positions: Vec::new(),
                        ..d.clone()
                    }
                });
                entry.positions.extend(&d.positions);
                entry.positions.sort_unstable();
                entry.positions.dedup();
            }
            resolutions.push(resolved);
            equality.extend(group_deletes);
        }
        data.extend(group_data);
    }
    // Files written under an older partition spec go into manifests of their own spec, which
    // iceberg's fast append cannot write.
    let default_spec = table.metadata().default_partition_spec_id();
    let older_spec = data.iter().any(|f| {
        data_specs
            .get(f.file_path())
            .is_some_and(|s| *s != default_spec)
    });
    if equality.is_empty() && older_spec {
        return crate::row_delta::commit(
            catalog,
            table,
            data,
            data_specs,
            Vec::new(),
            Vec::new(),
            properties,
            branch,
        )
        .await;
    }
    if equality.is_empty() {
        return table_commit::append(catalog, table, data, Vec::new(), properties, branch).await;
    }
    let file_deletes: Vec<position_deletes::FileDeletes> = file_deletes.into_values().collect();
    let rows: usize = file_deletes.iter().map(|d| d.positions.len()).sum();
    let (written, replaced) = if table.metadata().format_version() == FormatVersion::V3 {
        let vectors = write_vectors(table, branch, file_deletes)
            .await
            .map_err(|e| fail(format!("cannot write deletion vectors: {e}")))?;
        (vectors.added, vectors.replaced)
    } else {
        let files = position_deletes::write(table, file_deletes)
            .await
            .map_err(|e| fail(format!("cannot write position deletes: {e}")))?;
        (files, Vec::new())
    };
    let outcome = if written.is_empty() && !older_spec {
        table_commit::append(catalog, table, data, Vec::new(), properties, branch).await?
    } else {
        crate::row_delta::commit(
            catalog,
            table,
            data,
            data_specs,
            written.clone(),
            replaced,
            properties,
            branch,
        )
        .await?
    };
    match &outcome {
        CommitOutcome::Committed(snapshot_id) => {
            for r in &resolutions {
                cache.forget(&r.key_ids, &r.found);
            }
            info!(
                table = %name,
                snapshot_id,
                keys = resolutions.iter().map(|r| r.keys).sum::<usize>(),
                rows_deleted = rows,
                delete_files = written.len(),
                data_files_read = resolutions.iter().map(|r| r.files_read).sum::<usize>(),
                data_files_skipped = resolutions.iter().map(|r| r.files_skipped).sum::<usize>(),
                "deleted keys committed as position deletes"
            );
            remove(table, equality.iter().map(|f| f.file_path())).await;
        }
        CommitOutcome::Conflict(_) => {
            let paths: std::collections::BTreeSet<&str> =
                written.iter().map(|(_, f)| f.file_path()).collect();
            remove(table, paths.into_iter()).await;
        }
        // The commit may have landed: its files stay.
        CommitOutcome::Unknown(_) => {}
    }
    Ok(outcome)
}

/// Writes the deletion vectors of `deletes`, each merged with its data file's live vector on
/// the branch head.
async fn write_vectors(
    table: &Table,
    branch: Option<&str>,
    deletes: Vec<position_deletes::FileDeletes>,
) -> Result<deletion_vectors::Written, String> {
    let metadata = table.metadata();
    let snapshot = match branch {
        Some(b) => metadata.snapshot_for_ref(b),
        None => metadata.current_snapshot(),
    };
    let existing = match snapshot {
        Some(snapshot) => {
            let manifests = crate::snapshot::manifests_of(table, snapshot).await?;
            let targets = deletes.iter().map(|d| d.data_file.clone()).collect();
            deletion_vectors::existing(table, &manifests, &targets).await?
        }
        None => HashMap::new(),
    };
    deletion_vectors::write(table, deletes, existing).await
}

async fn remove<'a>(table: &Table, paths: impl Iterator<Item = &'a str>) {
    for path in paths {
        if let Err(e) = table.file_io().delete(path).await {
            warn!(table = %table.identifier(), file = path, error = %e, "cannot remove a file no snapshot needs");
        }
    }
}

/// What a record does to the row with its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A new row (in upsert mode: replaces the key's row).
    Insert,
    /// Replaces the key's row.
    Update,
    /// Removes the key's row.
    Delete,
}

/// How a table's records change it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaMode {
    /// Every record replaces the row with its key.
    pub upsert: bool,
    /// The dotted path of the field holding the operation.
    pub cdc_field: Option<String>,
}

impl DeltaMode {
    /// The operation of a record, as the Tabular sink reads it: the first letter of the CDC
    /// field's text, `D` delete, `U` update, anything else (or no field) an insert; in upsert
    /// mode an insert replaces too.
    pub fn op(&self, record: &SinkRecord) -> Op {
        let Some(path) = &self.cdc_field else {
            return Op::Update;
        };
        let op = crate::sink::route_value(record, path)
            .ok()
            .flatten()
            .and_then(|s| s.trim().chars().next())
            .map(|c| c.to_ascii_uppercase());
        match op {
            Some('D') => Op::Delete,
            Some('U') => Op::Update,
            _ if self.upsert => Op::Update,
            _ => Op::Insert,
        }
    }
}

/// The key columns of `schema`: the columns named in `id_columns`, else the schema's
/// identifier fields. They must be top-level primitive columns.
pub fn key_fields(
    schema: &Schema,
    id_columns: &[String],
    table: &str,
) -> Result<Vec<NestedFieldRef>, String> {
    let fields: Vec<NestedFieldRef> = if id_columns.is_empty() {
        schema
            .identifier_field_ids()
            .filter_map(|id| schema.field_by_id(id).cloned())
            .collect()
    } else {
        id_columns
            .iter()
            .map(|c| {
                schema
                    .field_by_name(c)
                    .cloned()
                    .ok_or_else(|| format!("table {table}: id column {c} is not in the table"))
            })
            .collect::<Result<_, _>>()?
    };
    if fields.is_empty() {
        return Err(format!(
            "table {table}: upserts and CDC need the rows' key: set iceberg.tables.default-id-columns or iceberg.table.{table}.id-columns, or give the table identifier fields"
        ));
    }
    for f in &fields {
        let top_level = schema.as_struct().fields().iter().any(|t| t.id == f.id);
        if !top_level || !f.field_type.is_primitive() {
            return Err(format!(
                "table {table}: key column {} must be a top-level primitive column",
                f.name
            ));
        }
        if matches!(
            f.field_type.as_primitive_type(),
            Some(iceberg::spec::PrimitiveType::Float | iceberg::spec::PrimitiveType::Double)
        ) {
            return Err(format!(
                "table {table}: key column {} is a floating-point column, which cannot identify rows",
                f.name
            ));
        }
    }
    Ok(fields)
}

/// A schema of the key columns alone (same ids), for converting and writing keys.
pub fn key_schema(fields: &[NestedFieldRef]) -> Result<Arc<Schema>, String> {
    Schema::builder()
        .with_fields(fields.iter().map(|f| {
            let mut f = f.as_ref().clone();
            f.required = true;
            Arc::new(f)
        }))
        .build()
        .map(Arc::new)
        .map_err(|e| format!("cannot build the key schema: {e}"))
}

/// Writes `batch` as one Parquet file `<table>/data/<uuid>-<suffix>.parquet`: its path and the
/// builder of its entry, for the caller to set content, partition and spec.
async fn write_parquet(
    table: &Table,
    schema: Arc<Schema>,
    batch: &arrow_array::RecordBatch,
    suffix: &str,
) -> Result<(String, iceberg::spec::DataFileBuilder), String> {
    use iceberg::writer::file_writer::{FileWriter, FileWriterBuilder, ParquetWriterBuilder};
    let (path, output) = crate::snapshot::new_data_file(table, &format!("{suffix}.parquet"))?;
    let properties = parquet::file::properties::WriterProperties::builder().build();
    let mut writer = ParquetWriterBuilder::new(properties, schema)
        .build(output)
        .await
        .map_err(|e| format!("cannot create {path}: {e}"))?;
    writer
        .write(batch)
        .await
        .map_err(|e| format!("cannot write {path}: {e}"))?;
    let builder = writer
        .close()
        .await
        .map_err(|e| format!("cannot write {path}: {e}"))?
        .pop()
        .ok_or_else(|| format!("{path} was not written"))?;
    Ok((path, builder))
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_data::Value;

    fn record(op: Option<&str>) -> SinkRecord {
        let mut entries = vec![(Value::String("id".into()), Value::Int64(1))];
        if let Some(op) = op {
            entries.push((
                Value::String("_cdc".into()),
                Value::Map(vec![(Value::String("op".into()), Value::String(op.into()))]),
            ));
        }
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value = Value::Map(entries);
        r
    }

    #[test]
    fn operations_are_read_from_the_first_letter_as_tabular_reads_them() {
        let cdc = DeltaMode {
            upsert: false,
            cdc_field: Some("_cdc.op".into()),
        };
        assert_eq!(cdc.op(&record(Some("D"))), Op::Delete);
        assert_eq!(cdc.op(&record(Some("d"))), Op::Delete);
        assert_eq!(cdc.op(&record(Some("UPDATE"))), Op::Update);
        assert_eq!(cdc.op(&record(Some("u"))), Op::Update);
        assert_eq!(cdc.op(&record(Some("c"))), Op::Insert);
        assert_eq!(cdc.op(&record(Some("r"))), Op::Insert);
        assert_eq!(cdc.op(&record(None)), Op::Insert);
        let upsert_cdc = DeltaMode {
            upsert: true,
            ..cdc
        };
        assert_eq!(upsert_cdc.op(&record(Some("I"))), Op::Update);
        assert_eq!(upsert_cdc.op(&record(Some("D"))), Op::Delete);
        let upsert = DeltaMode {
            upsert: true,
            cdc_field: None,
        };
        assert_eq!(upsert.op(&record(Some("D"))), Op::Update);
    }
}
