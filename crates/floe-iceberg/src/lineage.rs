//! Row lineage (format version 3): every row's `_row_id` and `_last_updated_sequence_number`.
//!
//! A data file may store both as columns. Where it does not, or a value is null, a row's id is
//! its file's `first_row_id` plus its position in the file, and its sequence number is the
//! file's data sequence number. A file whose manifest entry leaves `first_row_id` null inherits
//! one: its manifest's `first_row_id` plus the record counts of the live entries before it that
//! leave theirs null too (the spec's "first row ID inheritance"; the manifest list gave the
//! manifest a range covering them).
//!
//! Whatever rewrites rows or manifests keeps these: a rewritten row carries its id and
//! sequence number in the new file's columns, and a carried manifest entry gets the
//! `first_row_id` it inherited, so the new manifest's range cannot renumber it.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int64Array};
use futures::TryStreamExt;
use iceberg::metadata_columns::{
    RESERVED_COL_NAME_LAST_UPDATED_SEQUENCE_NUMBER, RESERVED_COL_NAME_ROW_ID,
    RESERVED_FIELD_ID_LAST_UPDATED_SEQUENCE_NUMBER, RESERVED_FIELD_ID_ROW_ID,
};
use iceberg::spec::{
    DataFile, DataFileBuilder, Manifest, ManifestContentType, ManifestFile, ManifestStatus,
    NestedField, NestedFieldRef, PrimitiveType, Type,
};
use iceberg::table::Table;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use parquet::arrow::ProjectionMask;

/// The two lineage fields as a data file stores them (optional longs, as Java writes them).
pub fn fields() -> [NestedFieldRef; 2] {
    [
        Arc::new(NestedField::optional(
            RESERVED_FIELD_ID_ROW_ID,
            RESERVED_COL_NAME_ROW_ID,
            Type::Primitive(PrimitiveType::Long),
        )),
        Arc::new(NestedField::optional(
            RESERVED_FIELD_ID_LAST_UPDATED_SEQUENCE_NUMBER,
            RESERVED_COL_NAME_LAST_UPDATED_SEQUENCE_NUMBER,
            Type::Primitive(PrimitiveType::Long),
        )),
    ]
}

/// The `first_row_id` of every entry of `loaded` (in order), inherited where the entry leaves
/// it null; `None` for delete manifests, deleted entries and tables without lineage.
pub fn first_row_ids(manifest: &ManifestFile, loaded: &Manifest) -> Vec<Option<i64>> {
    let first = match (manifest.content, manifest.first_row_id) {
        (ManifestContentType::Data, Some(first)) => i64::try_from(first).ok(),
        _ => None,
    };
    inherit(
        first,
        loaded.entries().iter().map(|e| {
            let file = e.data_file();
            (e.status(), file.first_row_id(), file.record_count())
        }),
    )
}

/// [`first_row_ids`] over (status, first_row_id, record_count) in manifest order.
fn inherit(
    first: Option<i64>,
    entries: impl Iterator<Item = (ManifestStatus, Option<i64>, u64)>,
) -> Vec<Option<i64>> {
    let mut next = first;
    entries
        .map(|(status, own, records)| match (own, status, next) {
            (Some(id), _, _) => Some(id),
            (None, ManifestStatus::Deleted, _) | (None, _, None) => None,
            (None, _, Some(id)) => {
                next = Some(id.saturating_add(records as i64));
                Some(id)
            }
        })
        .collect()
}

/// `file` with `first_row_id` set (every other field kept).
pub fn with_first_row_id(
    file: &DataFile,
    spec_id: i32,
    first_row_id: i64,
) -> Result<DataFile, String> {
    let mut builder = DataFileBuilder::default();
    builder
        .content(file.content_type())
        .file_path(file.file_path().to_string())
        .file_format(file.file_format())
        .partition(file.partition().clone())
        .record_count(file.record_count())
        .file_size_in_bytes(file.file_size_in_bytes())
        .column_sizes(file.column_sizes().clone())
        .value_counts(file.value_counts().clone())
        .null_value_counts(file.null_value_counts().clone())
        .nan_value_counts(file.nan_value_counts().clone())
        .lower_bounds(file.lower_bounds().clone())
        .upper_bounds(file.upper_bounds().clone())
        .key_metadata(file.key_metadata().map(<[u8]>::to_vec))
        .split_offsets(file.split_offsets().map(<[i64]>::to_vec))
        .equality_ids(file.equality_ids())
        .first_row_id(Some(first_row_id))
        .partition_spec_id(spec_id)
        .referenced_data_file(file.referenced_data_file())
        .content_offset(file.content_offset())
        .content_size_in_bytes(file.content_size_in_bytes());
    if let Some(order) = file.sort_order_id() {
        builder.sort_order_id(order);
    }
    builder
        .build()
        .map_err(|e| format!("cannot keep the row ids of {}: {e}", file.file_path()))
}

/// What a data file stores of its rows' lineage: a column per lineage field it has, values in
/// row order (null where a row does not carry one).
#[derive(Debug, Default)]
pub struct Stored {
    pub row_ids: Option<Vec<Option<i64>>>,
    pub sequence_numbers: Option<Vec<Option<i64>>>,
}

/// Reads the lineage columns `path` stores (only those column chunks: most files store none,
/// and then only the footer is read).
pub async fn stored(table: &Table, path: &str, size: u64) -> Result<Stored, String> {
    let fail = |e: &dyn std::fmt::Display| format!("cannot read the row lineage of {path}: {e}");
    let input = table.file_io().new_input(path).map_err(|e| fail(&e))?;
    let reader = iceberg::arrow::ArrowFileReader::new(
        iceberg::io::FileMetadata { size },
        input.reader().await.map_err(|e| fail(&e))?,
    );
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| fail(&e))?;
    let descriptor = builder.parquet_schema();
    let leaf = |id: i32| {
        (0..descriptor.num_columns()).find(|i| {
            let column = descriptor.column(*i);
            let info = column.self_type().get_basic_info();
            column.path().parts().len() == 1 && info.has_id() && info.id() == id
        })
    };
    let (row_id, sequence) = (
        leaf(RESERVED_FIELD_ID_ROW_ID),
        leaf(RESERVED_FIELD_ID_LAST_UPDATED_SEQUENCE_NUMBER),
    );
    let leaves: Vec<usize> = row_id.iter().chain(sequence.iter()).copied().collect();
    if leaves.is_empty() {
        return Ok(Stored::default());
    }
    let mask = ProjectionMask::leaves(descriptor, leaves);
    let mut stream = builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| fail(&e))?;
    let mut out = Stored {
        row_ids: row_id.map(|_| Vec::new()),
        sequence_numbers: sequence.map(|_| Vec::new()),
    };
    while let Some(batch) = stream.try_next().await.map_err(|e| fail(&e))? {
        for (values, name) in [
            (&mut out.row_ids, RESERVED_COL_NAME_ROW_ID),
            (
                &mut out.sequence_numbers,
                RESERVED_COL_NAME_LAST_UPDATED_SEQUENCE_NUMBER,
            ),
        ] {
            let Some(values) = values else { continue };
            let column = batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                .ok_or_else(|| fail(&format!("its {name} column is not a long")))?;
            values.extend(column.iter());
        }
    }
    Ok(out)
}

/// Where the rows of one data file come from: its `first_row_id` (inherited), its data
/// sequence number and what it stores.
#[derive(Debug)]
pub struct FileLineage {
    pub first_row_id: i64,
    pub sequence_number: i64,
    pub stored: Stored,
}

impl FileLineage {
    /// The lineage columns of the rows at `positions` (positions in the file, ascending).
    pub fn columns(&self, positions: &[u64]) -> Result<[ArrayRef; 2], String> {
        let pick = |stored: &Option<Vec<Option<i64>>>, p: u64| -> Result<Option<i64>, String> {
            match stored {
                Some(values) => values.get(p as usize).copied().ok_or_else(|| {
                    format!("row {p} is past the {} stored lineage values", values.len())
                }),
                None => Ok(None),
            }
        };
        let mut ids = Vec::with_capacity(positions.len());
        let mut sequences = Vec::with_capacity(positions.len());
        for &p in positions {
            ids.push(
                pick(&self.stored.row_ids, p)?
                    .unwrap_or_else(|| self.first_row_id.saturating_add(p as i64)),
            );
            sequences.push(pick(&self.stored.sequence_numbers, p)?.unwrap_or(self.sequence_number));
        }
        Ok([
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(Int64Array::from(sequences)) as ArrayRef,
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_without_a_first_row_id_inherit_one_in_manifest_order() {
        use ManifestStatus::{Added, Deleted, Existing};
        let entries = [
            (Existing, Some(5_000), 10),
            (Added, None, 50),
            (Deleted, None, 30),
            (Added, None, 70),
            (Existing, None, 1),
        ];
        assert_eq!(
            inherit(Some(1_000), entries.into_iter()),
            [Some(5_000), Some(1_000), None, Some(1_050), Some(1_120)]
        );
        // No range on the manifest: a table without lineage (or a delete manifest).
        assert_eq!(
            inherit(None, entries.into_iter()),
            [Some(5_000), None, None, None, None]
        );
    }

    #[test]
    fn lineage_columns_fill_nulls_from_the_file() {
        let lineage = FileLineage {
            first_row_id: 1000,
            sequence_number: 7,
            stored: Stored {
                row_ids: Some(vec![Some(5), None, Some(9), None]),
                sequence_numbers: None,
            },
        };
        let [ids, seqs] = lineage.columns(&[0, 1, 3]).unwrap();
        let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap();
        let seqs = seqs.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ids.values().to_vec(), vec![5, 1001, 1003]);
        assert_eq!(seqs.values().to_vec(), vec![7, 7, 7]);
        assert!(lineage.columns(&[4]).is_err());
        let plain = FileLineage {
            first_row_id: 10,
            sequence_number: 2,
            stored: Stored::default(),
        };
        let [ids, _] = plain.columns(&[0, 2]).unwrap();
        let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ids.values().to_vec(), vec![10, 12]);
    }
}
