//! A task's changes to one table during a commit cycle: the last row per key, and the keys
//! whose earlier rows the cycle deletes.
//!
//! Records are kept as they arrived and converted to the table's columns only when the task
//! answers a commit, so a schema update in the middle of the cycle applies to all of them. A
//! later change of a key replaces the earlier row before anything is written: the data files of
//! a cycle hold each key at most once, and no position delete ever points into them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow_array::{RecordBatch, UInt32Array};
use arrow_schema::SchemaRef as ArrowSchemaRef;
use floe_data::{SinkRecord, Value};
use iceberg::spec::{DataContentType, DataFile, DataFileFormat, PartitionSpec, Schema, Struct};
use iceberg::table::Table;

use super::keys::{arrow_key_schema, KeyEncoder};
use super::{DeltaMode, Op};

/// The changes of one table since the last answer.
pub struct ChangeBuffer {
    pub mode: DeltaMode,
    key_schema: Arc<Schema>,
    key_arrow: ArrowSchemaRef,
    encoder: KeyEncoder,
    /// Rows to write, in arrival order; None once a later change of the key replaced them.
    rows: Vec<Option<SinkRecord>>,
    /// Index in `rows` of each key's row still to be written.
    live: HashMap<Box<[u8]>, usize>,
    /// Keys whose rows already in the table this cycle deletes.
    touched: HashSet<Box<[u8]>>,
    /// The touched keys' columns, each key once.
    touched_keys: Vec<RecordBatch>,
    /// Rough size of the rows held, for the task's buffer limit.
    bytes: u64,
}

impl ChangeBuffer {
    pub fn new(mode: DeltaMode, key_schema: Arc<Schema>) -> Result<ChangeBuffer, String> {
        let key_arrow = arrow_key_schema(&key_schema)?;
        let encoder = KeyEncoder::new(&key_arrow)?;
        Ok(ChangeBuffer {
            mode,
            key_schema,
            key_arrow,
            encoder,
            rows: Vec::new(),
            live: HashMap::new(),
            touched: HashSet::new(),
            touched_keys: Vec::new(),
            bytes: 0,
        })
    }

    /// The key columns' schema (Iceberg), for converting records' keys.
    pub fn key_schema(&self) -> &Arc<Schema> {
        &self.key_schema
    }

    /// The key columns' schema (Arrow).
    pub fn key_arrow_schema(&self) -> &ArrowSchemaRef {
        &self.key_arrow
    }

    /// Whether nothing changed since the last answer.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.touched.is_empty()
    }

    /// Rough bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Applies changes in arrival order: `records[i]` with `ops[i]`, whose key columns are
    /// row `i` of `keys`.
    pub fn apply(
        &mut self,
        records: Vec<SinkRecord>,
        ops: &[Op],
        keys: &RecordBatch,
    ) -> Result<(), String> {
        let encoded = self.encoder.batch_keys(keys)?;
        let mut newly_touched: Vec<u32> = Vec::new();
        for (i, (record, op)) in records.into_iter().zip(ops).enumerate() {
            let key: Box<[u8]> = encoded.row(i).as_ref().into();
            if let Some(earlier) = self.live.remove(&key) {
                if let Some(r) = self.rows[earlier].take() {
                    self.bytes = self.bytes.saturating_sub(approx_size(&r));
                }
            }
            if matches!(op, Op::Update | Op::Delete) && self.touched.insert(key.clone()) {
                newly_touched.push(i as u32);
            }
            if *op != Op::Delete {
                self.bytes += approx_size(&record);
                self.live.insert(key, self.rows.len());
                self.rows.push(Some(record));
            }
        }
        if !newly_touched.is_empty() {
            let indices = UInt32Array::from(newly_touched);
            let columns = keys
                .columns()
                .iter()
                .map(|c| arrow_select::take::take(c, &indices, None))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("cannot keep the touched keys: {e}"))?;
            let batch = RecordBatch::try_new(self.key_arrow.clone(), columns)
                .map_err(|e| format!("cannot keep the touched keys: {e}"))?;
            self.bytes += batch.get_array_memory_size() as u64;
            self.touched_keys.push(batch);
        }
        Ok(())
    }

    /// Takes the cycle's changes: the rows to write (each key's last), and the touched keys.
    pub fn take(&mut self) -> (Vec<SinkRecord>, Vec<RecordBatch>) {
        let rows = std::mem::take(&mut self.rows)
            .into_iter()
            .flatten()
            .collect();
        self.live.clear();
        self.touched.clear();
        self.bytes = 0;
        (rows, std::mem::take(&mut self.touched_keys))
    }
}

/// A rough size of a record's value in memory.
fn approx_size(record: &SinkRecord) -> u64 {
    fn value(v: &Value) -> usize {
        32 + match v {
            Value::String(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::Array(items) => items.iter().map(value).sum(),
            Value::Struct(items) => items.iter().map(value).sum(),
            Value::Map(entries) => entries.iter().map(|(k, v)| value(k) + value(v)).sum(),
            _ => 0,
        }
    }
    value(&record.value) as u64
}

/// Writes the touched keys as one equality-delete file of `table` (the coordinator turns it
/// into position deletes; it is never committed as it is).
pub async fn write_equality_deletes(
    table: &Table,
    key_schema: &Arc<Schema>,
    key_arrow: &ArrowSchemaRef,
    batches: &[RecordBatch],
) -> Result<Option<DataFile>, String> {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if rows == 0 {
        return Ok(None);
    }
    let batch = arrow_select::concat::concat_batches(key_arrow, batches)
        .map_err(|e| format!("cannot gather the deleted keys: {e}"))?;
    let metadata = table.metadata();
    let (path, mut builder) =
        super::write_parquet(table, key_schema.clone(), &batch, "keys").await?;
    let spec: &PartitionSpec = metadata.default_partition_spec();
    // The keys are matched against every live data file, whatever its partition: the file's
    // partition values are left null.
    let partition = Struct::from_iter(spec.fields().iter().map(|_| None));
    builder
        .content(DataContentType::EqualityDeletes)
        .file_format(DataFileFormat::Parquet)
        .equality_ids(Some(
            key_schema
                .as_struct()
                .fields()
                .iter()
                .map(|f| f.id)
                .collect(),
        ))
        .partition(partition)
        .partition_spec_id(metadata.default_partition_spec_id());
    builder
        .build()
        .map(Some)
        .map_err(|e| format!("cannot describe {path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int64Array;
    use iceberg::spec::{NestedField, PrimitiveType, Type};

    fn buffer(mode: DeltaMode) -> ChangeBuffer {
        let schema = Schema::builder()
            .with_fields(vec![Arc::new(NestedField::required(
                1,
                "id",
                Type::Primitive(PrimitiveType::Long),
            ))])
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        ChangeBuffer::new(mode, Arc::new(schema)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn record(offset: i64) -> SinkRecord {
        let mut r = SinkRecord::new("t", 0, offset, None);
        r.value = Value::Int64(offset);
        r
    }

    fn keys(b: &ChangeBuffer, ids: &[i64]) -> RecordBatch {
        RecordBatch::try_new(
            b.key_arrow_schema().clone(),
            vec![Arc::new(Int64Array::from(ids.to_vec()))],
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_last_change_of_a_key_wins_and_every_touched_key_is_deleted_once() {
        let mut b = buffer(DeltaMode {
            upsert: false,
            cdc_field: Some("op".into()),
        });
        let k = keys(&b, &[1, 2, 1, 3]);
        b.apply(
            (0..4).map(record).collect(),
            &[Op::Insert, Op::Update, Op::Update, Op::Delete],
            &k,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let k = keys(&b, &[2, 4, 1]);
        b.apply(
            (4..7).map(record).collect(),
            &[Op::Delete, Op::Insert, Op::Update],
            &k,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (rows, touched) = b.take();
        // Key 1: inserted, updated (offset 2), updated again (6). Key 2: updated then deleted.
        // Key 3: deleted. Key 4: inserted.
        let offsets: Vec<i64> = rows.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![5, 6]);
        let touched: Vec<i64> = touched
            .iter()
            .flat_map(|batch| {
                let ids = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .map(|a| a.values().to_vec())
                    .unwrap_or_default();
                ids
            })
            .collect();
        assert_eq!(touched, vec![2, 1, 3]);
        assert!(b.is_empty());
    }
}
