//! Confluent-framed Avro values straight into Arrow columns: the sink's fast path for
//! `io.confluent.connect.avro.AvroConverter`.
//!
//! When a record's writer schema is a record of primitive fields (the converter's
//! [`FlatRecord`] layout), its binary datum is read field by field into the builders of the
//! table's top-level columns: no Avro value, no Connect value tree. A schema is planned once per
//! batch against the table: every field must land in a column of the same type (boolean, int,
//! long, float, double, string; timestamp-millis in a timestamp or timestamptz column, date in
//! a date column) or, with schema evolution off, in no column (read and dropped).
//! A schema that does not plan — a field the table lacks while evolution is on, a column of
//! another type, a nullable field for a required column while evolution would relax it — and
//! any record that does not read cleanly (a bad frame, an unknown schema id, a union index out
//! of range, an int out of range, invalid UTF-8, a truncated datum) make [`AvroRows::push`]
//! answer [`Row::Fallback`] without adding the row; the sink converts that record through the
//! general path ([`crate::arrow`]), which also names the reason when it cannot be written. For
//! every record the fast path accepts, both paths give the same row.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::SchemaRef as ArrowSchemaRef;
use floe_convert::registry::split_frame;
use floe_convert::{Converter, FlatKind, FlatRecord};
use iceberg::spec::Schema;

use crate::arrow::Lookup;
use crate::rows::{Column, Columns, Kind, Row, Slot, Slots};

/// How one field of a writer schema is read: its type, its null branch, and the column it
/// fills (None: read and dropped).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Step {
    kind: FlatKind,
    null_branch: Option<u8>,
    column: Option<usize>,
}

/// Rows being read into the columns of one table.
pub(crate) struct AvroRows {
    columns: Columns,
    lookup: Lookup,
    evolve: bool,
    converter: Arc<dyn Converter>,
    /// Each writer schema id's steps, or None when its records take the general path.
    plans: HashMap<u32, Option<Vec<Step>>>,
}

impl AvroRows {
    /// Rows for a table with `schema`, with layouts from `converter` (see
    /// [`crate::json_rows::JsonRows::new`] for `capacity` and `widths`). None when the fast
    /// path cannot serve the table: with schema evolution on and a name mapping, evolution
    /// matches fields by column name while rows are matched by the mapping.
    pub(crate) fn new(
        schema: &Schema,
        arrow_schema: &ArrowSchemaRef,
        lookup: Lookup,
        evolve: bool,
        converter: Arc<dyn Converter>,
        capacity: usize,
        widths: &[usize],
    ) -> Option<AvroRows> {
        if evolve && lookup.names.is_some() {
            return None;
        }
        let columns = Columns::new(schema, arrow_schema, &lookup, capacity, widths)?;
        Some(AvroRows {
            columns,
            lookup,
            evolve,
            converter,
            plans: HashMap::new(),
        })
    }

    /// The columns filled so far.
    pub(crate) fn columns(&self) -> &Columns {
        &self.columns
    }

    /// The columns, to finish the batch.
    pub(crate) fn into_columns(self) -> Columns {
        self.columns
    }

    /// Reads one record's value bytes (a Confluent frame) into the columns.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Row {
        let Ok((id, datum)) = split_frame(bytes) else {
            return Row::Fallback;
        };
        if !self.plans.contains_key(&id) {
            let steps = self
                .converter
                .flat_avro(id)
                .and_then(|layout| plan(&self.columns.columns, &self.lookup, self.evolve, &layout));
            self.plans.insert(id, steps);
        }
        let Some(Some(steps)) = self.plans.get(&id) else {
            return Row::Fallback;
        };
        let n = self.columns.columns.len();
        let mut slots = Slots::new(n);
        let slots = slots.as_mut();
        if read(steps, datum, slots).is_none() {
            return Row::Fallback;
        }
        self.columns.push(slots, "")
    }
}

/// The steps for a writer schema, or None when its records must take the general path.
fn plan(
    columns: &[Column],
    lookup: &Lookup,
    evolve: bool,
    layout: &FlatRecord,
) -> Option<Vec<Step>> {
    let mut taken = vec![false; columns.len()];
    let mut steps = Vec::with_capacity(layout.fields.len());
    for field in &layout.fields {
        let column = columns
            .iter()
            .position(|c| lookup.matches(&c.field, &field.name));
        match column {
            None if evolve => return None,
            None => {}
            Some(i) => {
                let c = &columns[i];
                let same = matches!(
                    (field.kind, c.kind),
                    (FlatKind::Boolean, Kind::Boolean)
                        | (FlatKind::Int, Kind::Int)
                        | (FlatKind::Long, Kind::Long)
                        | (FlatKind::Float, Kind::Float)
                        | (FlatKind::Double, Kind::Double)
                        | (FlatKind::String, Kind::String)
                        | (FlatKind::TimestampMillis, Kind::Timestamp)
                        | (FlatKind::Date, Kind::Date)
                );
                // Evolution would make a required column optional for a nullable field.
                let relaxes = evolve && field.null_branch.is_some() && c.field.required;
                if !same || relaxes || std::mem::replace(&mut taken[i], true) {
                    return None;
                }
            }
        }
        steps.push(Step {
            kind: field.kind,
            null_branch: field.null_branch,
            column,
        });
    }
    Some(steps)
}

/// Reads a datum by `steps` into `slots`; None when it does not read as the converter would.
fn read<'a>(steps: &[Step], mut datum: &'a [u8], slots: &mut [Slot<'a>]) -> Option<()> {
    let buf = &mut datum;
    for step in steps {
        let value = match step.null_branch {
            Some(null) => match read_long(buf)? {
                branch if branch == i64::from(null) => Slot::Null,
                branch if branch == i64::from(1 - null) => read_value(step.kind, buf)?,
                _ => return None,
            },
            None => read_value(step.kind, buf)?,
        };
        if let Some(i) = step.column {
            *slots.get_mut(i)? = value;
        }
    }
    // Bytes after the datum are ignored, as the converter ignores them.
    Some(())
}

fn read_value<'a>(kind: FlatKind, buf: &mut &'a [u8]) -> Option<Slot<'a>> {
    Some(match kind {
        FlatKind::Boolean => match take(buf, 1)? {
            [0] => Slot::Bool(false),
            [1] => Slot::Bool(true),
            _ => return None,
        },
        FlatKind::Int => Slot::Int(i64::from(i32::try_from(read_long(buf)?).ok()?)),
        FlatKind::Long => Slot::Int(read_long(buf)?),
        FlatKind::Float => {
            let b: [u8; 4] = take(buf, 4)?.try_into().ok()?;
            Slot::Float(f64::from(f32::from_le_bytes(b)))
        }
        FlatKind::Double => {
            let b: [u8; 8] = take(buf, 8)?.try_into().ok()?;
            Slot::Float(f64::from_le_bytes(b))
        }
        FlatKind::String => {
            let len = usize::try_from(read_long(buf)?).ok()?;
            Slot::Str(std::str::from_utf8(take(buf, len)?).ok()?)
        }
        // Epoch milliseconds into the column's microseconds.
        FlatKind::TimestampMillis => Slot::Int(read_long(buf)?.checked_mul(1000)?),
        FlatKind::Date => Slot::Int(i64::from(i32::try_from(read_long(buf)?).ok()?)),
    })
}

/// The next `n` bytes.
fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Some(head)
}

/// A zig-zag varint long (at most 10 bytes).
fn read_long(buf: &mut &[u8]) -> Option<i64> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 1 {
            return None;
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use apache_avro::types::Value as AvroValue;
    use arrow_array::RecordBatch;
    use floe_convert::registry::{RegisteredSchema, SchemaSource};
    use floe_convert::AvroConverter;
    use iceberg::spec::{NestedField, PrimitiveType, Type};
    use proptest::prelude::*;

    use super::*;
    use crate::arrow::{records_to_batch, Cell};

    const WRITER: &str = r#"{"type":"record","name":"E","fields":[
        {"name":"id","type":"long"},
        {"name":"name","type":["null","string"]},
        {"name":"amount","type":"double"},
        {"name":"flag","type":["boolean","null"]},
        {"name":"small","type":"int"},
        {"name":"ratio","type":"float"},
        {"name":"extra","type":"string"}
    ]}"#;
    /// A schema with an enum: not flat.
    const NOT_FLAT: &str = r#"{"type":"record","name":"L","fields":[
        {"name":"id","type":"long"},
        {"name":"name","type":{"type":"enum","name":"K","symbols":["A","B"]}}
    ]}"#;

    /// Timestamps and dates: Connect's Timestamp and Date; timestamp-micros is a plain long.
    const TIMED: &str = r#"{"type":"record","name":"T","fields":[
        {"name":"id","type":"long"},
        {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
        {"name":"day","type":["null",{"type":"int","logicalType":"date"}]},
        {"name":"us","type":{"type":"long","logicalType":"timestamp-micros"}},
        {"name":"local","type":{"type":"long","logicalType":"timestamp-millis"}}
    ]}"#;

    struct Fixed(HashMap<u32, String>);

    impl SchemaSource for Fixed {
        fn schema_by_id(&self, id: u32) -> Result<RegisteredSchema, String> {
            self.0
                .get(&id)
                .map(|s| RegisteredSchema {
                    id,
                    schema_type: "AVRO".into(),
                    schema: s.clone(),
                    references: vec![],
                })
                .ok_or_else(|| format!("schema id {id} not found"))
        }
    }

    fn converter() -> Arc<AvroConverter> {
        Arc::new(AvroConverter::with_source(Arc::new(Fixed(HashMap::from(
            [
                (1, WRITER.to_string()),
                (2, NOT_FLAT.to_string()),
                (3, TIMED.to_string()),
            ],
        )))))
    }

    fn table(required_name: bool) -> Schema {
        let name = if required_name {
            NestedField::required(2, "name", Type::Primitive(PrimitiveType::String))
        } else {
            NestedField::optional(2, "name", Type::Primitive(PrimitiveType::String))
        };
        Schema::builder()
            .with_fields(vec![
                NestedField::optional(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
                name.into(),
                NestedField::optional(3, "amount", Type::Primitive(PrimitiveType::Double)).into(),
                NestedField::optional(4, "flag", Type::Primitive(PrimitiveType::Boolean)).into(),
                NestedField::optional(5, "small", Type::Primitive(PrimitiveType::Int)).into(),
                NestedField::optional(6, "ratio", Type::Primitive(PrimitiveType::Float)).into(),
                NestedField::optional(7, "at", Type::Primitive(PrimitiveType::Timestamptz)).into(),
            ])
            .build()
            .unwrap()
    }

    fn timed_table() -> Schema {
        Schema::builder()
            .with_fields(vec![
                NestedField::optional(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
                NestedField::optional(2, "at", Type::Primitive(PrimitiveType::Timestamptz)).into(),
                NestedField::optional(3, "day", Type::Primitive(PrimitiveType::Date)).into(),
                NestedField::optional(4, "us", Type::Primitive(PrimitiveType::Long)).into(),
                NestedField::optional(5, "local", Type::Primitive(PrimitiveType::Timestamp)).into(),
            ])
            .build()
            .unwrap()
    }

    fn timed(id: i64, at: i64, day: Option<i32>, us: i64, local: i64) -> AvroValue {
        AvroValue::Record(vec![
            ("id".into(), AvroValue::Long(id)),
            ("at".into(), AvroValue::TimestampMillis(at)),
            (
                "day".into(),
                match day {
                    Some(d) => AvroValue::Union(1, Box::new(AvroValue::Date(d))),
                    None => AvroValue::Union(0, Box::new(AvroValue::Null)),
                },
            ),
            ("us".into(), AvroValue::TimestampMicros(us)),
            ("local".into(), AvroValue::TimestampMillis(local)),
        ])
    }

    fn arrow(schema: &Schema) -> ArrowSchemaRef {
        Arc::new(iceberg::arrow::schema_to_arrow_schema(schema).unwrap())
    }

    fn frame(id: u32, schema: &str, value: AvroValue) -> Vec<u8> {
        let schema = apache_avro::Schema::parse_str(schema).unwrap();
        let mut out = vec![0];
        out.extend_from_slice(&id.to_be_bytes());
        out.extend(apache_avro::to_avro_datum(&schema, value).unwrap());
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        id: i64,
        name: Option<&str>,
        amount: f64,
        flag: Option<bool>,
        small: i32,
        ratio: f32,
        extra: &str,
    ) -> AvroValue {
        let union = |index: u32, v: AvroValue| AvroValue::Union(index, Box::new(v));
        AvroValue::Record(vec![
            ("id".into(), AvroValue::Long(id)),
            (
                "name".into(),
                match name {
                    Some(n) => union(1, AvroValue::String(n.into())),
                    None => union(0, AvroValue::Null),
                },
            ),
            ("amount".into(), AvroValue::Double(amount)),
            (
                "flag".into(),
                match flag {
                    Some(f) => union(0, AvroValue::Boolean(f)),
                    None => union(1, AvroValue::Null),
                },
            ),
            ("small".into(), AvroValue::Int(small)),
            ("ratio".into(), AvroValue::Float(ratio)),
            ("extra".into(), AvroValue::String(extra.into())),
        ])
    }

    fn rows(schema: &Schema, evolve: bool) -> AvroRows {
        AvroRows::new(
            schema,
            &arrow(schema),
            Lookup::by_name(false),
            evolve,
            converter(),
            8,
            &[],
        )
        .unwrap()
    }

    /// The general path's batch for the same frames: the converter's Connect values.
    fn general(schema: &Schema, frames: &[Vec<u8>]) -> RecordBatch {
        let c = converter();
        let converted: Vec<_> = frames
            .iter()
            .map(|f| c.to_connect("t", Some(f)).unwrap())
            .collect();
        let cells: Vec<Cell<'_>> = converted
            .iter()
            .map(|sv| Cell {
                schema: sv.schema.as_deref(),
                value: &sv.value,
            })
            .collect();
        records_to_batch(schema, &arrow(schema), &cells, &Lookup::by_name(false)).unwrap()
    }

    #[test]
    fn flat_records_read_as_the_general_path_reads_them() {
        let schema = table(false);
        let frames = vec![
            frame(
                1,
                WRITER,
                event(1, Some("a"), 1.5, Some(true), -3, 0.25, "x"),
            ),
            frame(
                1,
                WRITER,
                event(-9, None, -0.0, None, i32::MAX, f32::MIN, ""),
            ),
            frame(
                1,
                WRITER,
                event(
                    i64::MIN,
                    Some("ünï"),
                    f64::MAX,
                    Some(false),
                    i32::MIN,
                    1e-3,
                    "y",
                ),
            ),
        ];
        let mut r = rows(&schema, false);
        for f in &frames {
            assert_eq!(r.push(f), Row::Added);
        }
        assert_eq!(
            r.into_columns().finish().unwrap(),
            general(&schema, &frames)
        );
    }

    #[test]
    fn what_the_fast_path_cannot_take_falls_back() {
        let good = frame(1, WRITER, event(1, None, 1.0, None, 1, 1.0, "x"));
        // `extra` has no column: with evolution on the schema would grow.
        assert_eq!(rows(&table(false), true).push(&good), Row::Fallback);
        // A nullable field for a required column: evolution would relax it; without
        // evolution only a null value falls back.
        assert_eq!(rows(&table(true), true).push(&good), Row::Fallback);
        assert_eq!(rows(&table(true), false).push(&good), Row::Fallback);
        let named = frame(1, WRITER, event(1, Some("n"), 1.0, None, 1, 1.0, "x"));
        assert_eq!(rows(&table(true), false).push(&named), Row::Added);
        let mut r = rows(&table(false), false);
        // A schema that is not flat, an unknown id, a bad magic byte, a truncated datum, a
        // union index out of range, invalid UTF-8.
        let not_flat = frame(
            2,
            NOT_FLAT,
            AvroValue::Record(vec![
                ("id".into(), AvroValue::Long(1)),
                ("name".into(), AvroValue::Enum(1, "B".into())),
            ]),
        );
        assert_eq!(r.push(&not_flat), Row::Fallback);
        let mut unknown = good.clone();
        unknown[4] = 9;
        assert_eq!(r.push(&unknown), Row::Fallback);
        let mut magic = good.clone();
        magic[0] = 1;
        assert_eq!(r.push(&magic), Row::Fallback);
        assert_eq!(r.push(&good[..good.len() - 1]), Row::Fallback);
        // id 1 (zigzag 2), then union index 2 (zigzag 4).
        assert_eq!(r.push(&[0, 0, 0, 0, 1, 2, 4]), Row::Fallback);
        let mut bad_utf8 = vec![0, 0, 0, 0, 1, 2, 2, 2, 0xff, 0xfe];
        bad_utf8.extend_from_slice(&[0; 20]);
        assert_eq!(r.push(&bad_utf8), Row::Fallback);
        assert_eq!(r.columns().len(), 0);
        assert_eq!(r.push(&good), Row::Added);
        assert_eq!(r.columns().len(), 1);
    }

    #[test]
    fn a_timestamp_out_of_range_falls_back_and_the_general_path_names_it() {
        let schema = timed_table();
        let frame = frame(3, TIMED, timed(1, i64::MAX / 10, None, 0, 0));
        let mut r = rows(&schema, false);
        assert_eq!(r.push(&frame), Row::Fallback);
        let sv = converter().to_connect("t", Some(&frame)).unwrap();
        let cells = [Cell {
            schema: sv.schema.as_deref(),
            value: &sv.value,
        }];
        let err = records_to_batch(&schema, &arrow(&schema), &cells, &Lookup::by_name(false))
            .unwrap_err()
            .message;
        assert!(
            err.contains("timestamp 922337203685477580 ms is out of range"),
            "{err}"
        );
    }

    #[test]
    fn zigzag_longs() {
        for (bytes, want) in [
            (&[0u8][..], Some(0)),
            (&[1], Some(-1)),
            (&[2], Some(1)),
            (&[0x80, 0x01], Some(64)),
            (
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                Some(i64::MIN),
            ),
            (
                &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                Some(i64::MAX),
            ),
            (&[0x80], None),
            (
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
                None,
            ),
        ] {
            let mut buf = bytes;
            assert_eq!(read_long(&mut buf), want, "{bytes:?}");
        }
    }

    proptest! {
        #[test]
        fn any_flat_record_reads_as_the_general_path_reads_it(
            id in any::<i64>(),
            name in proptest::option::of(".{0,12}"),
            amount in any::<f64>().prop_filter("NaN compares unequal", |f| !f.is_nan()),
            flag in proptest::option::of(any::<bool>()),
            small in any::<i32>(),
            ratio in any::<f32>().prop_filter("NaN compares unequal", |f| !f.is_nan()),
            extra in ".{0,8}",
        ) {
            let schema = table(false);
            let frames = vec![frame(1, WRITER, event(id, name.as_deref(), amount, flag, small, ratio, &extra))];
            let mut r = rows(&schema, false);
            prop_assert_eq!(r.push(&frames[0]), Row::Added);
            prop_assert_eq!(r.into_columns().finish().unwrap(), general(&schema, &frames));
        }

        #[test]
        fn any_timestamps_and_dates_read_as_the_general_path_reads_them(
            id in any::<i64>(),
            at in -(1i64 << 52)..(1i64 << 52),
            day in proptest::option::of(any::<i32>()),
            us in any::<i64>(),
            local in -(1i64 << 52)..(1i64 << 52),
        ) {
            let schema = timed_table();
            let frames = vec![frame(3, TIMED, timed(id, at, day, us, local))];
            let mut r = rows(&schema, false);
            prop_assert_eq!(r.push(&frames[0]), Row::Added);
            prop_assert_eq!(r.into_columns().finish().unwrap(), general(&schema, &frames));
        }

        #[test]
        fn any_bytes_fall_back_or_read_as_the_general_path_does(tail in proptest::collection::vec(any::<u8>(), 0..48)) {
            let schema = table(false);
            let mut frame = vec![0, 0, 0, 0, 1];
            frame.extend(tail);
            let mut r = rows(&schema, false);
            let general_ok = converter().to_connect("t", Some(&frame)).is_ok();
            if r.push(&frame) == Row::Added {
                prop_assert!(general_ok);
                prop_assert_eq!(r.into_columns().finish().unwrap(), general(&schema, &[frame]));
            }
        }
    }
}
