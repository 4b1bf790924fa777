//! Schemaless JSON values straight into Arrow columns: the sink's fast path for
//! `JsonConverter` with `schemas.enable=false`.
//!
//! A record's JSON object is read once, field by field, into the builders of the table's
//! top-level columns — no Connect value tree, no allocation per field. It covers what such
//! records hold most of the time: boolean, int, long, float, double and string columns, fields
//! in any order, absent or null fields, fields the table does not have when schema evolution is
//! off. Anything else — a value for a column of another type, a field the schema would grow
//! for, a number out of range, a field given twice, a key or a document that is not plain JSON
//! — makes [`JsonRows::push`] answer [`Row::Fallback`] without adding the row, and the sink
//! converts that record through the general path ([`crate::arrow`]), which also names the
//! reason when the record cannot be written. For every record the fast path accepts, both
//! paths give the same row.

use arrow_schema::SchemaRef as ArrowSchemaRef;
use iceberg::spec::Schema;
use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};

use crate::arrow::Lookup;
use crate::rows::{Column, Columns, Kind, Row, Slot, Slots};

/// Rows being read into the columns of one table.
pub(crate) struct JsonRows {
    columns: Columns,
    lookup: Lookup,
    /// A field no column takes is ignored (false) or means the schema must grow (true).
    evolve: bool,
    scratch: String,
}

impl JsonRows {
    /// Rows for a table with `schema`; about `capacity` rows are expected, with `widths[i]`
    /// bytes per row in string column `i` (as [`JsonRows::widths`] measured on earlier rows).
    /// None when the fast path cannot serve the table: with schema evolution on and a name
    /// mapping, evolution matches fields by column name while rows are matched by the mapping.
    pub(crate) fn new(
        schema: &Schema,
        arrow_schema: &ArrowSchemaRef,
        lookup: Lookup,
        evolve: bool,
        capacity: usize,
        widths: &[usize],
    ) -> Option<JsonRows> {
        if evolve && lookup.names.is_some() {
            return None;
        }
        let columns = Columns::new(schema, arrow_schema, &lookup, capacity, widths)?;
        Some(JsonRows {
            columns,
            lookup,
            evolve,
            scratch: String::new(),
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

    /// Reads one record's value bytes into the columns.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Row {
        let n = self.columns.columns.len();
        let mut slots = Slots::new(n);
        let slots = slots.as_mut();
        self.scratch.clear();
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let read = serde::Deserializer::deserialize_any(
            &mut de,
            RecordVisitor {
                columns: &self.columns.columns,
                lookup: &self.lookup,
                evolve: self.evolve,
                slots,
                scratch: &mut self.scratch,
            },
        )
        .and_then(|top| de.end().map(|()| top));
        match read {
            Ok(Top::Null) => Row::Tombstone,
            Ok(Top::Object) => self.columns.push(slots, &self.scratch),
            Err(_) => Row::Fallback,
        }
    }
}

/// The top-level value of a record.
enum Top {
    Null,
    Object,
}

struct RecordVisitor<'a, 'de> {
    columns: &'a [Column],
    lookup: &'a Lookup,
    evolve: bool,
    slots: &'a mut [Slot<'de>],
    scratch: &'a mut String,
}

impl RecordVisitor<'_, '_> {
    /// The column field `key` goes to; `hint` (the field's position in the record) is tried
    /// first, since records usually carry their fields in the table's order.
    fn column_of(&self, key: &str, hint: usize) -> Option<usize> {
        if let Some(c) = self.columns.get(hint) {
            if self.lookup.matches(&c.field, key) {
                return Some(hint);
            }
        }
        self.columns
            .iter()
            .position(|c| self.lookup.matches(&c.field, key))
    }
}

impl<'de> Visitor<'de> for RecordVisitor<'_, 'de> {
    type Value = Top;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object or null")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Top, E> {
        Ok(Top::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut position = 0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.column_of(key, position) {
                Some(i) => {
                    if self.slots[i] != Slot::Missing {
                        return Err(A::Error::custom("field given twice"));
                    }
                    self.slots[i] = map.next_value_seed(ValueSeed {
                        kind: self.columns[i].kind,
                        scratch: self.scratch,
                    })?;
                }
                None if self.evolve => {
                    return Err(A::Error::custom("field without a column"));
                }
                None => {
                    // Read, not skipped: the converter rejects what a skip would let through
                    // (a lone surrogate, invalid UTF-8, a number out of range, deep nesting).
                    map.next_value_seed(Checked)?;
                }
            }
            position += 1;
        }
        Ok(Top::Object)
    }
}

/// A value no column takes: read as fully as the converter reads it, and dropped.
struct Checked;

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Checked)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Checked)?.is_some() {
            map.next_value_seed(Checked)?;
        }
        Ok(())
    }
}

/// A key borrowed from the input; keys with escapes are left to the general path.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = &'de str;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<&'de str, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = &'de str;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key without escapes")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<&'de str, E> {
        Ok(v)
    }
}

/// Reads one field's value for a column of `kind`; a value of another JSON type fails (the
/// general path then converts or rejects it).
struct ValueSeed<'a> {
    kind: Kind,
    scratch: &'a mut String,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Slot<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Slot<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Slot<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a value for a {:?} column", self.kind)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Slot<'de>, E> {
        Ok(Slot::Null)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Slot<'de>, E> {
        match self.kind {
            Kind::Boolean => Ok(Slot::Bool(v)),
            _ => Err(E::custom("not this column's type")),
        }
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Slot<'de>, E> {
        match self.kind {
            Kind::Long => Ok(Slot::Int(v)),
            Kind::Int if i32::try_from(v).is_ok() => Ok(Slot::Int(v)),
            // As the general path: an integral JSON number is an int64, widened to a double.
            Kind::Float | Kind::Double => Ok(Slot::Float(v as f64)),
            _ => Err(E::custom("not this column's type")),
        }
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Slot<'de>, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(E::custom("beyond int64")),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Slot<'de>, E> {
        match self.kind {
            Kind::Float | Kind::Double => Ok(Slot::Float(v)),
            _ => Err(E::custom("not this column's type")),
        }
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Slot<'de>, E> {
        match self.kind {
            Kind::String => Ok(Slot::Str(v)),
            _ => Err(E::custom("not this column's type")),
        }
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Slot<'de>, E> {
        match self.kind {
            Kind::String => {
                let from = self.scratch.len();
                self.scratch.push_str(v);
                Ok(Slot::Unescaped(from, self.scratch.len()))
            }
            _ => Err(E::custom("not this column's type")),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::RecordBatch;
    use std::sync::Arc;

    use super::*;
    use crate::arrow::{records_to_batch, Cell};
    use floe_data::Value;
    use iceberg::spec::{NestedField, Schema};
    use iceberg::spec::{PrimitiveType, Type};

    fn schema() -> Schema {
        Schema::builder()
            .with_fields(vec![
                NestedField::optional(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
                NestedField::optional(2, "name", Type::Primitive(PrimitiveType::String)).into(),
                NestedField::optional(3, "amount", Type::Primitive(PrimitiveType::Double)).into(),
                NestedField::optional(4, "flag", Type::Primitive(PrimitiveType::Boolean)).into(),
                NestedField::optional(5, "small", Type::Primitive(PrimitiveType::Int)).into(),
                NestedField::optional(6, "ratio", Type::Primitive(PrimitiveType::Float)).into(),
                NestedField::optional(7, "at", Type::Primitive(PrimitiveType::Timestamptz)).into(),
                NestedField::required(8, "must", Type::Primitive(PrimitiveType::String)).into(),
            ])
            .build()
            .unwrap()
    }

    fn arrow(schema: &Schema) -> ArrowSchemaRef {
        Arc::new(iceberg::arrow::schema_to_arrow_schema(schema).unwrap())
    }

    /// The general path's batch for the same records.
    fn general(schema: &Schema, docs: &[&str], lookup: &Lookup) -> RecordBatch {
        let values: Vec<Value> = docs.iter().map(|d| schemaless(d)).collect();
        let cells: Vec<Cell<'_>> = values
            .iter()
            .map(|value| Cell {
                schema: None,
                value,
            })
            .collect();
        records_to_batch(schema, &arrow(schema), &cells, lookup).unwrap()
    }

    /// Schemaless JSON as the worker's JsonConverter reads it.
    fn schemaless(doc: &str) -> Value {
        use floe_convert::{Converter, JsonConverter};
        JsonConverter::new(false)
            .to_connect("t", Some(doc.as_bytes()))
            .unwrap()
            .value
    }

    fn fast(
        schema: &Schema,
        docs: &[&str],
        lookup: Lookup,
        evolve: bool,
    ) -> (Vec<Row>, RecordBatch) {
        let mut rows = JsonRows::new(schema, &arrow(schema), lookup, evolve, 4, &[]).unwrap();
        let outcomes = docs.iter().map(|d| rows.push(d.as_bytes())).collect();
        (outcomes, rows.into_columns().finish().unwrap())
    }

    #[test]
    fn rows_equal_the_general_path() {
        let schema = schema();
        let docs = [
            r#"{"id": 1, "name": "a", "amount": 2.5, "flag": true, "small": 7, "ratio": 0.1, "must": "x"}"#,
            r#"{"must": "y", "flag": false, "id": -9, "amount": 3, "extra": {"nested": [1, 2]}}"#,
            r#"{"id": null, "name": "tab\tand \"quotes\" \u00e9", "must": "z", "at": null}"#,
            r#"{"id": 9223372036854775807, "amount": -1e300, "ratio": 3, "must": ""}"#,
        ];
        let (outcomes, batch) = fast(&schema, &docs, Lookup::by_name(false), false);
        assert_eq!(outcomes, vec![Row::Added; 4]);
        assert_eq!(batch, general(&schema, &docs, &Lookup::by_name(false)));
    }

    #[test]
    fn anything_else_falls_back_without_a_partial_row() {
        let schema = schema();
        let cases = [
            r#"{"id": "12", "must": "x"}"#,          // a string for a long column
            r#"{"name": 5, "must": "x"}"#,           // a number for a string column
            r#"{"small": 3000000000, "must": "x"}"#, // beyond int
            r#"{"id": 18446744073709551615, "must": "x"}"#, // beyond int64
            r#"{"at": "2024-01-01T00:00:00Z", "must": "x"}"#, // a column of another type
            r#"{"id": 1, "id": 2, "must": "x"}"#,    // a field given twice
            r#"{"id": 1}"#,                          // a required column missing
            r#"{"id": 1, "must": null}"#,            // a required column null
            r#"{"i\u0064": 1, "must": "x"}"#,        // an escaped key
            r#"[1, 2]"#,                             // not an object
            r#"{"id": 1, "must": "x"} trailing"#,    // not JSON
            r#"{"id": 1, "must": "x""#,              // truncated
        ];
        for doc in cases {
            let (outcomes, batch) = fast(&schema, &[doc], Lookup::by_name(false), false);
            assert_eq!(outcomes, vec![Row::Fallback], "{doc}");
            assert_eq!(batch.num_rows(), 0, "{doc}");
        }
        // Fields no column takes are read as the converter reads them, not skipped.
        let deep = format!(
            r#"{{"must": "x", "extra": {}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        for doc in [
            r#"{"must": "x", "extra": "\ud800"}"#,
            r#"{"must": "x", "extra": 1e400}"#,
            deep.as_str(),
        ] {
            let (outcomes, batch) = fast(&schema, &[doc], Lookup::by_name(false), false);
            assert_eq!(outcomes, vec![Row::Fallback], "{doc}");
            assert_eq!(batch.num_rows(), 0, "{doc}");
        }
        let mut rows = JsonRows::new(
            &schema,
            &arrow(&schema),
            Lookup::by_name(false),
            false,
            1,
            &[],
        )
        .unwrap();
        assert_eq!(
            rows.push(b"{\"must\": \"x\", \"extra\": \"\xff\"}"),
            Row::Fallback
        );
        assert_eq!(
            rows.push(br#"{"must": "x", "extra": {"a": [1, "b", null]}}"#),
            Row::Added
        );
        assert_eq!(rows.columns().len(), 1);
        let (outcomes, batch) = fast(
            &schema,
            &[r#"{"must": "x", "extra": 1}"#, "null"],
            Lookup::by_name(false),
            true,
        );
        assert_eq!(outcomes, vec![Row::Fallback, Row::Tombstone]);
        assert_eq!(batch.num_rows(), 0);
    }

    #[test]
    fn fields_match_as_the_lookup_says() {
        let schema = schema();
        let docs = [r#"{"ID": 4, "Must": "x"}"#];
        let (outcomes, batch) = fast(&schema, &docs, Lookup::by_name(true), false);
        assert_eq!(outcomes, vec![Row::Added]);
        assert_eq!(batch, general(&schema, &docs, &Lookup::by_name(true)));
        let (outcomes, _) = fast(&schema, &docs, Lookup::by_name(false), false);
        assert_eq!(outcomes, vec![Row::Fallback]); // "must" is missing when case matters
        let mapped = Lookup {
            case_insensitive: false,
            names: Some([(1, vec!["key".to_string()])].into_iter().collect()),
        };
        let docs = [r#"{"key": 4, "id": 5, "must": "x"}"#];
        let (outcomes, batch) = fast(&schema, &docs, mapped.clone(), false);
        assert_eq!(outcomes, vec![Row::Added]);
        assert_eq!(batch, general(&schema, &docs, &mapped));
        assert!(JsonRows::new(&schema, &arrow(&schema), mapped, true, 1, &[]).is_none());
    }

    #[test]
    fn a_field_that_could_fill_two_columns_keeps_the_fast_path_off() {
        let twins = Schema::builder()
            .with_fields(vec![
                NestedField::optional(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
                NestedField::optional(2, "ID", Type::Primitive(PrimitiveType::Long)).into(),
            ])
            .build()
            .unwrap();
        let arrow_twins = arrow(&twins);
        assert!(
            JsonRows::new(&twins, &arrow_twins, Lookup::by_name(true), false, 1, &[]).is_none()
        );
        assert!(
            JsonRows::new(&twins, &arrow_twins, Lookup::by_name(false), false, 1, &[]).is_some()
        );
        let shared = Lookup {
            case_insensitive: false,
            names: Some([(1, vec!["key".to_string()]), (2, vec!["key".to_string()])].into()),
        };
        assert!(JsonRows::new(&twins, &arrow_twins, shared, false, 1, &[]).is_none());
    }
}
