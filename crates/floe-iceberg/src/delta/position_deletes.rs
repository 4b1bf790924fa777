//! Position delete files (format v2): `file_path` and `pos` of each deleted row, sorted, one file
//! per partition of the data files they point into (readers apply a position delete file to the
//! data files of its partition).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use iceberg::spec::{
    DataContentType, DataFile, DataFileFormat, NestedField, PrimitiveType, Schema, Struct, Type,
};
use iceberg::table::Table;

/// The reserved field ids of position delete files (Iceberg spec, "Position Delete Files").
pub const FILE_PATH_ID: i32 = 2147483546;
pub const POS_ID: i32 = 2147483545;

/// Rows to delete in one data file.
#[derive(Debug, Clone)]
pub struct FileDeletes {
    pub data_file: String,
    pub spec_id: i32,
    pub partition: Struct,
    /// Row positions, sorted, without repeats.
    pub positions: Vec<i64>,
}

fn delete_schema() -> Result<Arc<Schema>, String> {
    Schema::builder()
        .with_fields(vec![
            Arc::new(NestedField::required(
                FILE_PATH_ID,
                "file_path",
                Type::Primitive(PrimitiveType::String),
            )),
            Arc::new(NestedField::required(
                POS_ID,
                "pos",
                Type::Primitive(PrimitiveType::Long),
            )),
        ])
        .build()
        .map(Arc::new)
        .map_err(|e| format!("cannot build the position delete schema: {e}"))
}

/// Writes the position delete files for `deletes`: one per partition, each with the id of the
/// partition spec it was written for.
pub async fn write(
    table: &Table,
    deletes: Vec<FileDeletes>,
) -> Result<Vec<(i32, DataFile)>, String> {
    let schema = delete_schema()?;
    let arrow_schema = Arc::new(
        iceberg::arrow::schema_to_arrow_schema(&schema)
            .map_err(|e| format!("cannot map the position delete schema: {e}"))?,
    );
    let mut groups: BTreeMap<String, Vec<FileDeletes>> = BTreeMap::new();
    for d in deletes.into_iter().filter(|d| !d.positions.is_empty()) {
        groups
            .entry(format!("{}/{:?}", d.spec_id, d.partition))
            .or_default()
            .push(d);
    }
    let mut out = Vec::new();
    for (_, mut files) in groups {
        files.sort_by(|a, b| a.data_file.cmp(&b.data_file));
        let rows: usize = files.iter().map(|f| f.positions.len()).sum();
        let mut paths = Vec::with_capacity(rows);
        let mut positions = Vec::with_capacity(rows);
        for f in &files {
            for p in &f.positions {
                paths.push(f.data_file.as_str());
                positions.push(*p);
            }
        }
        let batch = RecordBatch::try_new(
            arrow_schema.clone(),
            vec![
                Arc::new(StringArray::from(paths)) as ArrayRef,
                Arc::new(Int64Array::from(positions)) as ArrayRef,
            ],
        )
        .map_err(|e| format!("cannot build position deletes: {e}"))?;
        let (path, mut builder) =
            super::write_parquet(table, schema.clone(), &batch, "deletes").await?;
        let first = &files[0];
        builder
            .content(DataContentType::PositionDeletes)
            .file_format(DataFileFormat::Parquet)
            .partition(first.partition.clone())
            .partition_spec_id(first.spec_id);
        if files.len() == 1 {
            builder.referenced_data_file(Some(first.data_file.clone()));
        }
        out.push((
            first.spec_id,
            builder
                .build()
                .map_err(|e| format!("cannot describe {path}: {e}"))?,
        ));
    }
    Ok(out)
}
