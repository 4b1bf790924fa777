//! Row keys as comparable bytes (Arrow's row format over the key columns), and reading the key
//! columns of a Parquet file by field id.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::{DataType, Schema as ArrowSchema};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ProjectionMask, PARQUET_FIELD_ID_META_KEY};

/// Encodes key columns into bytes that are equal exactly when the keys are.
pub struct KeyEncoder {
    converter: RowConverter,
    types: Vec<DataType>,
    /// The key columns' field ids, in key order.
    pub field_ids: Vec<i32>,
}

impl KeyEncoder {
    /// An encoder for the columns of `key_schema` (Arrow, with field ids).
    pub fn new(key_schema: &ArrowSchema) -> Result<KeyEncoder, String> {
        let types: Vec<DataType> = key_schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let field_ids = key_schema
            .fields()
            .iter()
            .map(|f| {
                field_id(f.metadata())
                    .ok_or_else(|| format!("key column {} has no field id", f.name()))
            })
            .collect::<Result<_, _>>()?;
        let converter = RowConverter::new(types.iter().cloned().map(SortField::new).collect())
            .map_err(|e| format!("cannot encode keys of types {types:?}: {e}"))?;
        Ok(KeyEncoder {
            converter,
            types,
            field_ids,
        })
    }

    /// The keys of `columns` (in key order), cast to the key types first.
    pub fn encode(&self, columns: &[ArrayRef]) -> Result<Rows, String> {
        let cast: Vec<ArrayRef> = columns
            .iter()
            .zip(&self.types)
            .map(|(c, t)| {
                if c.data_type() == t {
                    Ok(c.clone())
                } else {
                    arrow_cast::cast(c, t).map_err(|e| {
                        format!(
                            "cannot read a key column of type {} as {t}: {e}",
                            c.data_type()
                        )
                    })
                }
            })
            .collect::<Result<_, String>>()?;
        self.converter
            .convert_columns(&cast)
            .map_err(|e| format!("cannot encode keys: {e}"))
    }

    /// The key columns of `batch`, found by field id, in key order.
    pub fn key_columns(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>, String> {
        let schema = batch.schema();
        self.field_ids
            .iter()
            .map(|id| {
                schema
                    .fields()
                    .iter()
                    .position(|f| field_id(f.metadata()) == Some(*id))
                    .map(|i| batch.column(i).clone())
                    .ok_or_else(|| format!("the rows have no column with field id {id}"))
            })
            .collect()
    }

    /// The keys of every row of `batch`.
    pub fn batch_keys(&self, batch: &RecordBatch) -> Result<Rows, String> {
        self.encode(&self.key_columns(batch)?)
    }

    /// Encodes the key columns of a Parquet file's bytes, one key per row, in row order (a
    /// row's position is its index).
    pub fn file_keys(&self, file: Bytes) -> Result<Vec<Box<[u8]>>, String> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| format!("cannot read the Parquet footer: {e}"))?;
        let descriptor = builder.parquet_schema();
        let mut leaves = Vec::new();
        for id in &self.field_ids {
            let leaf = (0..descriptor.num_columns())
                .find(|i| {
                    let column = descriptor.column(*i);
                    column.path().parts().len() == 1
                        && column.self_type().get_basic_info().has_id()
                        && column.self_type().get_basic_info().id() == *id
                })
                .ok_or_else(|| {
                    format!("the file has no top-level column with field id {id} (a file written without field ids cannot be matched by key)")
                })?;
            leaves.push(leaf);
        }
        let mask = ProjectionMask::leaves(descriptor, leaves);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| format!("cannot read the key columns: {e}"))?;
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| format!("cannot read the key columns: {e}"))?;
            let rows = self.batch_keys(&batch)?;
            out.extend(rows.iter().map(|r| Box::<[u8]>::from(r.as_ref())));
        }
        Ok(out)
    }

    /// The Arrow types of the key columns.
    pub fn types(&self) -> &[DataType] {
        &self.types
    }
}

fn field_id(metadata: &std::collections::HashMap<String, String>) -> Option<i32> {
    metadata
        .get(PARQUET_FIELD_ID_META_KEY)
        .and_then(|v| v.parse().ok())
}

/// An Arrow schema of the key fields of an Iceberg schema.
pub fn arrow_key_schema(key_schema: &iceberg::spec::Schema) -> Result<Arc<ArrowSchema>, String> {
    iceberg::arrow::schema_to_arrow_schema(key_schema)
        .map(Arc::new)
        .map_err(|e| format!("cannot map the key columns to Arrow: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::Field;
    use parquet::arrow::ArrowWriter;

    fn with_id(name: &str, t: DataType, id: i32) -> Field {
        Field::new(name, t, false)
            .with_metadata([(PARQUET_FIELD_ID_META_KEY.to_string(), id.to_string())].into())
    }

    #[test]
    fn keys_of_a_file_match_keys_of_batches_by_field_id() {
        let key_schema = ArrowSchema::new(vec![
            with_id("id", DataType::Int64, 1),
            with_id("region", DataType::Utf8, 3),
        ]);
        let encoder = KeyEncoder::new(&key_schema).unwrap_or_else(|e| panic!("{e}"));
        // A data file with the key columns in another order and another column between.
        let file_schema = Arc::new(ArrowSchema::new(vec![
            with_id("region", DataType::Utf8, 3),
            with_id("payload", DataType::Utf8, 2),
            with_id("id", DataType::Int64, 1),
        ]));
        let batch = RecordBatch::try_new(
            file_schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["eu", "us", "eu"])),
                Arc::new(StringArray::from(vec!["a", "b", "c"])),
                Arc::new(Int64Array::from(vec![1, 1, 2])),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut bytes = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut bytes, file_schema, None).unwrap_or_else(|e| panic!("{e}"));
        writer.write(&batch).unwrap_or_else(|e| panic!("{e}"));
        writer.close().unwrap_or_else(|e| panic!("{e}"));
        let keys = encoder
            .file_keys(Bytes::from(bytes))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys.len(), 3);
        let wanted = RecordBatch::try_new(
            Arc::new(key_schema),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["us", "eu"])),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let wanted = encoder
            .batch_keys(&wanted)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&*keys[1], wanted.row(0).as_ref());
        assert_eq!(&*keys[2], wanted.row(1).as_ref());
        assert_ne!(keys[0], keys[1]);
    }
}
