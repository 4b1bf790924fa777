//! The task's side of upserts and CDC (docs/upserts.md): records of a table in delta mode are
//! kept per key in a [`ChangeBuffer`] until the task answers a commit, then written as data
//! files (each key's last row) and one equality-delete file (the keys whose earlier rows go).

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef as ArrowSchemaRef;
use floe_connect::TaskError;
use floe_data::SinkRecord;
use iceberg::spec::{DataFile, Schema};

use super::{connect_err, lookup_for, Started, TASK_CLASS};
use crate::arrow::{records_to_batch, Cell, Lookup};
use crate::delta::changes::{write_equality_deletes, ChangeBuffer};
use crate::delta::{key_fields, key_schema, Op};

impl Started {
    /// Converts `rows` of `records` to `schema`'s columns. A record that does not fit is
    /// reported (the task fails, or it goes to the dead-letter queue under
    /// `errors.tolerance=all`), removed from `rows`, and the rest converted again.
    pub(super) async fn convert_rows(
        &self,
        table: &str,
        schema: &Schema,
        arrow_schema: &ArrowSchemaRef,
        lookup: &Lookup,
        records: &[SinkRecord],
        rows: &mut Vec<usize>,
    ) -> Result<Option<RecordBatch>, TaskError> {
        loop {
            if rows.is_empty() {
                return Ok(None);
            }
            let cells: Vec<Cell<'_>> = rows
                .iter()
                .map(|i| Cell {
                    schema: records[*i].value_schema.as_deref(),
                    value: &records[*i].value,
                })
                .collect();
            match records_to_batch(schema, arrow_schema, &cells, lookup) {
                Ok(batch) => return Ok(Some(batch)),
                Err(e) => {
                    let r = &records[rows[e.row]];
                    let message = format!(
                        "An error occurred converting record, topic: {}, partition: {}, offset: {}, table: {table}: {}",
                        r.topic, r.partition, r.offset, e.message
                    );
                    self.context.report_errant(r, TASK_CLASS, message).await?;
                    rows.remove(e.row);
                }
            }
        }
    }

    /// Keeps `rows` of `records` as changes of `table` (delta mode): their operations, and
    /// their keys converted to the key columns.
    pub(super) async fn buffer_changes(
        &mut self,
        table: &str,
        records: &[SinkRecord],
        mut rows: Vec<usize>,
    ) -> Result<(), TaskError> {
        let Some(mode) = self.config.delta_mode() else {
            return Ok(());
        };
        let Some(writer) = self.writers.get(table) else {
            return Ok(());
        };
        if !self.changes.contains_key(table) {
            let schema = writer.table().metadata().current_schema();
            let fields = key_fields(schema, &self.config.id_columns(table), table)
                .map_err(TaskError::connect)?;
            let keys = key_schema(&fields).map_err(TaskError::connect)?;
            let buffer = ChangeBuffer::new(mode, keys)
                .map_err(|e| TaskError::connect(format!("Table {table}: {e}")))?;
            self.changes.insert(table.to_string(), buffer);
        }
        let lookup = lookup_for(table, writer, self.config.case_insensitive)?;
        let Some(buffer) = self.changes.get(table) else {
            return Ok(());
        };
        let (key_schema, key_arrow) = (
            buffer.key_schema().clone(),
            buffer.key_arrow_schema().clone(),
        );
        let Some(keys) = self
            .convert_rows(table, &key_schema, &key_arrow, &lookup, records, &mut rows)
            .await?
        else {
            return Ok(());
        };
        let Some(buffer) = self.changes.get_mut(table) else {
            return Ok(());
        };
        let ops: Vec<Op> = rows.iter().map(|i| buffer.mode.op(&records[*i])).collect();
        let before = buffer.bytes();
        buffer
            .apply(
                rows.iter().map(|i| records[*i].clone()).collect(),
                &ops,
                &keys,
            )
            .map_err(|e| TaskError::connect(format!("Table {table}: {e}")))?;
        self.buffered_records += rows.len() as u64;
        self.buffered_bytes += buffer.bytes().saturating_sub(before);
        Ok(())
    }

    /// Writes every table's buffered changes: the rows to their writers, the touched keys to
    /// an equality-delete file per table (returned, by table).
    pub(super) async fn flush_changes(&mut self) -> Result<Vec<(String, DataFile)>, TaskError> {
        let mut out = Vec::new();
        let tables: Vec<String> = self.changes.keys().cloned().collect();
        for table in tables {
            let Some(buffer) = self.changes.get_mut(&table) else {
                continue;
            };
            if buffer.is_empty() {
                continue;
            }
            let (records, touched) = buffer.take();
            let (key_schema, key_arrow) = (
                buffer.key_schema().clone(),
                buffer.key_arrow_schema().clone(),
            );
            let Some(writer) = self.writers.get(&table) else {
                continue;
            };
            let schema = writer.table().metadata().current_schema().clone();
            let arrow_schema = writer.arrow_schema().clone();
            let lookup = lookup_for(&table, writer, self.config.case_insensitive)?;
            let mut rows: Vec<usize> = (0..records.len()).collect();
            if let Some(batch) = self
                .convert_rows(&table, &schema, &arrow_schema, &lookup, &records, &mut rows)
                .await?
            {
                if let Some(writer) = self.writers.get_mut(&table) {
                    writer.write(batch).await.map_err(connect_err)?;
                }
            }
            let Some(writer) = self.writers.get(&table) else {
                continue;
            };
            if let Some(file) =
                write_equality_deletes(writer.table(), &key_schema, &key_arrow, &touched)
                    .await
                    .map_err(|e| {
                        TaskError::connect(format!(
                            "Table {table}: cannot write the deleted keys: {e}"
                        ))
                    })?
            {
                out.push((table, file));
            }
        }
        Ok(out)
    }
}
