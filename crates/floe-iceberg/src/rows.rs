//! The column builders of the sink's fast paths ([`crate::json_rows`], [`crate::avro_rows`]):
//! a record's fields go straight into the Arrow builders of the table's top-level columns, with
//! no Connect value tree in between. A reader fills one [`Slot`] per column for a record, and
//! [`Columns::push`] appends them as a row only when every column can take its slot, so a
//! record the fast path gives up on leaves no partial row.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float32Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{new_null_array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, SchemaRef as ArrowSchemaRef, TimeUnit};
use iceberg::spec::{NestedFieldRef, PrimitiveType, Schema, Type};

use crate::arrow::Lookup;

/// What a fast path did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Row {
    /// The record is a row of the batch.
    Added,
    /// The value is null: nothing to write.
    Tombstone,
    /// The general path must convert this record; nothing was added.
    Fallback,
}

/// The column types the fast paths fill; `Other` columns take nulls only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Boolean,
    Int,
    Long,
    Float,
    Double,
    String,
    /// Timestamp or timestamptz, in microseconds.
    Timestamp,
    /// Days since the epoch.
    Date,
    Other,
}

enum Builder {
    Boolean(BooleanBuilder),
    Int(Int32Builder),
    Long(Int64Builder),
    Float(Float32Builder),
    Double(Float64Builder),
    String(StringBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Nulls,
}

/// One field's value while a record is read. Strings borrow the input, or (JSON strings with
/// escapes) sit in a scratch buffer at a byte range. `Int` also carries a timestamp column's
/// microseconds and a date column's days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Slot<'de> {
    Missing,
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'de str),
    Unescaped(usize, usize),
}

/// Bytes per row reserved for a string column whose width is not known yet.
const DEFAULT_WIDTH: usize = 32;
/// The most bytes reserved up front for one string column of a batch.
const MAX_RESERVED_STRING_BYTES: usize = 8 << 20;
/// Widths are learnt from batches of at least this many rows.
const MIN_ROWS_FOR_WIDTHS: usize = 32;

/// Records of a table with this many columns or fewer are read without allocating.
const STACK_COLUMNS: usize = 32;

/// One record's slots, one per column, all `Missing` to start with: on the stack for tables of
/// up to [`STACK_COLUMNS`] columns.
pub(crate) struct Slots<'de> {
    stack: [Slot<'de>; STACK_COLUMNS],
    heap: Vec<Slot<'de>>,
    n: usize,
}

impl<'de> Slots<'de> {
    pub(crate) fn new(n: usize) -> Slots<'de> {
        Slots {
            stack: [Slot::Missing; STACK_COLUMNS],
            heap: if n <= STACK_COLUMNS {
                Vec::new()
            } else {
                vec![Slot::Missing; n]
            },
            n,
        }
    }

    pub(crate) fn as_mut(&mut self) -> &mut [Slot<'de>] {
        if self.n <= STACK_COLUMNS {
            &mut self.stack[..self.n]
        } else {
            &mut self.heap
        }
    }
}

pub(crate) struct Column {
    pub(crate) field: NestedFieldRef,
    pub(crate) kind: Kind,
}

/// The builders of one table's top-level columns for a batch.
pub(crate) struct Columns {
    pub(crate) columns: Vec<Column>,
    builders: Vec<Builder>,
    arrow_schema: ArrowSchemaRef,
    rows: usize,
}

impl Columns {
    /// Builders for a table with `schema`; about `capacity` rows are expected, with
    /// `widths[i]` bytes per row in string column `i` (as [`Columns::widths`] measured on
    /// earlier rows). None when a record field could fill two columns under `lookup` (the
    /// general path fills each of them, a fast path one).
    pub(crate) fn new(
        schema: &Schema,
        arrow_schema: &ArrowSchemaRef,
        lookup: &Lookup,
        capacity: usize,
        widths: &[usize],
    ) -> Option<Columns> {
        let fields = schema.as_struct().fields();
        if fields.len() != arrow_schema.fields().len() {
            return None;
        }
        let mut columns = Vec::with_capacity(fields.len());
        let mut builders = Vec::with_capacity(fields.len());
        for (i, (field, arrow_field)) in fields.iter().zip(arrow_schema.fields()).enumerate() {
            let kind = match (field.field_type.as_ref(), arrow_field.data_type()) {
                (Type::Primitive(PrimitiveType::Boolean), DataType::Boolean) => Kind::Boolean,
                (Type::Primitive(PrimitiveType::Int), DataType::Int32) => Kind::Int,
                (Type::Primitive(PrimitiveType::Long), DataType::Int64) => Kind::Long,
                (Type::Primitive(PrimitiveType::Float), DataType::Float32) => Kind::Float,
                (Type::Primitive(PrimitiveType::Double), DataType::Float64) => Kind::Double,
                (Type::Primitive(PrimitiveType::String), DataType::Utf8) => Kind::String,
                (
                    Type::Primitive(PrimitiveType::Timestamp | PrimitiveType::Timestamptz),
                    DataType::Timestamp(TimeUnit::Microsecond, _),
                ) => Kind::Timestamp,
                (Type::Primitive(PrimitiveType::Date), DataType::Date32) => Kind::Date,
                _ => Kind::Other,
            };
            builders.push(match kind {
                Kind::Boolean => Builder::Boolean(BooleanBuilder::with_capacity(capacity)),
                Kind::Int => Builder::Int(Int32Builder::with_capacity(capacity)),
                Kind::Long => Builder::Long(Int64Builder::with_capacity(capacity)),
                Kind::Float => Builder::Float(Float32Builder::with_capacity(capacity)),
                Kind::Double => Builder::Double(Float64Builder::with_capacity(capacity)),
                Kind::String => {
                    let width = widths.get(i).copied().unwrap_or(DEFAULT_WIDTH);
                    // A little over the width seen, so most batches never grow a buffer; beyond
                    // the cap the buffer grows as it fills.
                    let bytes = capacity
                        .saturating_mul(width + width / 8 + 1)
                        .min(MAX_RESERVED_STRING_BYTES);
                    Builder::String(StringBuilder::with_capacity(capacity, bytes))
                }
                Kind::Timestamp => Builder::Timestamp(
                    TimestampMicrosecondBuilder::with_capacity(capacity)
                        .with_data_type(arrow_field.data_type().clone()),
                ),
                Kind::Date => Builder::Date(Date32Builder::with_capacity(capacity)),
                Kind::Other => Builder::Nulls,
            });
            columns.push(Column {
                field: field.clone(),
                kind,
            });
        }
        if ambiguous(&columns, lookup) {
            return None;
        }
        Some(Columns {
            columns,
            builders,
            arrow_schema: arrow_schema.clone(),
            rows: 0,
        })
    }

    /// Rows added so far.
    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    /// Bytes per row of each string column so far (0 for other columns), rounded up: the
    /// widths to reserve for the next batch of the table. None while too few rows were read
    /// to say.
    pub(crate) fn widths(&self) -> Option<Vec<usize>> {
        if self.rows < MIN_ROWS_FOR_WIDTHS {
            return None;
        }
        let widths = self
            .builders
            .iter()
            .map(|b| match b {
                Builder::String(b) => b.values_slice().len().div_ceil(self.rows),
                _ => 0,
            })
            .collect();
        Some(widths)
    }

    /// Appends one record's slots (one per column, each of its column's kind, `Missing` or
    /// `Null`) as a row; `scratch` holds the `Unescaped` strings. [`Row::Fallback`], with
    /// nothing appended, when a required column has no value.
    pub(crate) fn push(&mut self, slots: &[Slot<'_>], scratch: &str) -> Row {
        let fits = self.columns.iter().zip(slots).all(|(c, s)| match s {
            Slot::Missing | Slot::Null => !c.field.required,
            _ => true,
        });
        if !fits {
            return Row::Fallback;
        }
        for (builder, slot) in self.builders.iter_mut().zip(slots) {
            append(builder, *slot, scratch);
        }
        self.rows += 1;
        Row::Added
    }

    /// The batch of the rows added, in the table's Arrow schema.
    pub(crate) fn finish(self) -> Result<RecordBatch, ArrowError> {
        let rows = self.rows;
        let columns: Vec<ArrayRef> = self
            .builders
            .into_iter()
            .zip(self.arrow_schema.fields())
            .map(|(builder, field)| -> ArrayRef {
                match builder {
                    Builder::Boolean(mut b) => Arc::new(b.finish()),
                    Builder::Int(mut b) => Arc::new(b.finish()),
                    Builder::Long(mut b) => Arc::new(b.finish()),
                    Builder::Float(mut b) => Arc::new(b.finish()),
                    Builder::Double(mut b) => Arc::new(b.finish()),
                    Builder::String(mut b) => Arc::new(b.finish()),
                    Builder::Timestamp(mut b) => Arc::new(b.finish()),
                    Builder::Date(mut b) => Arc::new(b.finish()),
                    Builder::Nulls => new_null_array(field.data_type(), rows),
                }
            })
            .collect();
        RecordBatch::try_new(self.arrow_schema, columns)
    }
}

/// Whether one record field could fill two columns (names equal but for case with a
/// case-insensitive lookup, or a name the mapping lists for two columns): the general path fills
/// each of them, the fast path fills one, so it stays off for such a table.
fn ambiguous(columns: &[Column], lookup: &Lookup) -> bool {
    let names = |c: &Column| -> Vec<String> {
        match lookup.names.as_ref().and_then(|m| m.get(&c.field.id)) {
            Some(mapped) => mapped.clone(),
            None => vec![c.field.name.clone()],
        }
    };
    columns.iter().enumerate().any(|(i, a)| {
        names(a).iter().any(|name| {
            columns
                .iter()
                .enumerate()
                .any(|(j, b)| i != j && lookup.matches(&b.field, name))
        })
    })
}

/// Appends a slot a reader produced for the builder's own kind.
fn append(builder: &mut Builder, slot: Slot<'_>, scratch: &str) {
    match (builder, slot) {
        (Builder::Boolean(b), Slot::Bool(v)) => b.append_value(v),
        (Builder::Boolean(b), _) => b.append_null(),
        (Builder::Int(b), Slot::Int(v)) => match i32::try_from(v) {
            Ok(v) => b.append_value(v),
            Err(_) => b.append_null(),
        },
        (Builder::Int(b), _) => b.append_null(),
        (Builder::Long(b), Slot::Int(v)) => b.append_value(v),
        (Builder::Long(b), _) => b.append_null(),
        (Builder::Float(b), Slot::Float(v)) => b.append_value(v as f32),
        (Builder::Float(b), _) => b.append_null(),
        (Builder::Double(b), Slot::Float(v)) => b.append_value(v),
        (Builder::Double(b), _) => b.append_null(),
        (Builder::String(b), Slot::Str(s)) => b.append_value(s),
        (Builder::String(b), Slot::Unescaped(from, to)) => match scratch.get(from..to) {
            Some(s) => b.append_value(s),
            None => b.append_null(),
        },
        (Builder::String(b), _) => b.append_null(),
        (Builder::Timestamp(b), Slot::Int(v)) => b.append_value(v),
        (Builder::Timestamp(b), _) => b.append_null(),
        (Builder::Date(b), Slot::Int(v)) => match i32::try_from(v) {
            Ok(v) => b.append_value(v),
            Err(_) => b.append_null(),
        },
        (Builder::Date(b), _) => b.append_null(),
        (Builder::Nulls, _) => {}
    }
}

/// A fast path's rows for one batch, by the value converter's format.
pub(crate) enum RawRows {
    Json(crate::json_rows::JsonRows),
    Avro(crate::avro_rows::AvroRows),
}

impl RawRows {
    /// Reads one record's value bytes into the columns.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Row {
        match self {
            RawRows::Json(r) => r.push(bytes),
            RawRows::Avro(r) => r.push(bytes),
        }
    }

    /// The columns filled so far.
    pub(crate) fn columns(&self) -> &Columns {
        match self {
            RawRows::Json(r) => r.columns(),
            RawRows::Avro(r) => r.columns(),
        }
    }

    /// The batch of the rows added, in the table's Arrow schema.
    pub(crate) fn finish(self) -> Result<RecordBatch, ArrowError> {
        match self {
            RawRows::Json(r) => r.into_columns().finish(),
            RawRows::Avro(r) => r.into_columns().finish(),
        }
    }
}
