//! Connect values → Arrow columns, driven by the table schema (Java `RecordConverter`): the
//! Iceberg type of each column decides how a record's value is converted.

use std::sync::Arc;

use arrow_array::builder::{BooleanBufferBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, FixedSizeBinaryArray, Float32Array,
    Float64Array, Int32Array, Int64Array, LargeBinaryArray, ListArray, MapArray, RecordBatch,
    StringArray, StructArray, Time64MicrosecondArray, TimestampMicrosecondArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, SchemaRef as ArrowSchemaRef};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use floe_data::decimal::{parse_decimal, rescale};
use floe_data::{Schema as ConnectSchema, Value};
use iceberg::spec::{NestedField, NestedFieldRef, PrimitiveType, Schema, Type};

/// A value that cannot go into its column. `row` indexes the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub row: usize,
    pub message: String,
}

/// A value with the Connect schema that describes it (None when schemaless).
#[derive(Clone, Copy)]
pub struct Cell<'a> {
    pub schema: Option<&'a ConnectSchema>,
    pub value: &'a Value,
}

type Cells<'a> = Vec<Option<Cell<'a>>>;

/// Converts record values into a batch with the table's Arrow schema.
pub fn records_to_batch(
    schema: &Schema,
    arrow_schema: &ArrowSchemaRef,
    rows: &[Cell<'_>],
    lookup: &Lookup,
) -> Result<RecordBatch, RowError> {
    let mut columns = Vec::with_capacity(arrow_schema.fields().len());
    for (pos, (field, arrow_field)) in schema
        .as_struct()
        .fields()
        .iter()
        .zip(arrow_schema.fields())
        .enumerate()
    {
        let mut cells = Vec::with_capacity(rows.len());
        for (row, cell) in rows.iter().enumerate() {
            cells.push(
                child(*cell, field, pos, lookup).map_err(|message| RowError { row, message })?,
            );
        }
        columns.push(build(
            field,
            arrow_field.data_type(),
            &cells,
            &field.name,
            lookup,
        )?);
    }
    RecordBatch::try_new(arrow_schema.clone(), columns).map_err(|e| RowError {
        row: 0,
        message: format!("cannot assemble the batch: {e}"),
    })
}

/// How record fields are matched to columns (Java `RecordConverter`): by the table's name
/// mapping (`schema.name-mapping.default`) when it has one — every name listed for a column's
/// field id, or the column name for unmapped columns, compared exactly — otherwise by the column
/// name, case-insensitively with `iceberg.tables.schema-case-insensitive`.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub case_insensitive: bool,
    /// Field id → the record field names that map to it; None without a name mapping.
    pub names: Option<std::collections::HashMap<i32, Vec<String>>>,
}

impl Lookup {
    /// Matching by column name.
    pub fn by_name(case_insensitive: bool) -> Lookup {
        Lookup {
            case_insensitive,
            names: None,
        }
    }

    /// The lookup for a table with these properties; an unreadable name mapping is an error.
    pub fn for_table(
        properties: &std::collections::HashMap<String, String>,
        case_insensitive: bool,
    ) -> Result<Lookup, String> {
        let Some(text) = properties.get("schema.name-mapping.default") else {
            return Ok(Lookup::by_name(case_insensitive));
        };
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("invalid schema.name-mapping.default: {e}"))?;
        let mut names = std::collections::HashMap::new();
        collect_mapping(&json, &mut names)?;
        Ok(Lookup {
            case_insensitive,
            names: Some(names),
        })
    }

    pub(crate) fn matches(&self, field: &NestedField, candidate: &str) -> bool {
        match &self.names {
            Some(names) => match names.get(&field.id) {
                Some(mapped) => mapped.iter().any(|n| n == candidate),
                None => field.name == candidate,
            },
            None if self.case_insensitive => field.name.eq_ignore_ascii_case(candidate),
            None => field.name == candidate,
        }
    }
}

fn collect_mapping(
    json: &serde_json::Value,
    out: &mut std::collections::HashMap<i32, Vec<String>>,
) -> Result<(), String> {
    let entries = json
        .as_array()
        .ok_or("invalid schema.name-mapping.default: expected an array of fields")?;
    for e in entries {
        let names: Vec<String> = e
            .get("names")
            .and_then(|n| n.as_array())
            .map(|n| {
                n.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(id) = e.get("field-id").and_then(|i| i.as_i64()) {
            let id = i32::try_from(id)
                .map_err(|_| format!("invalid field-id {id} in the name mapping"))?;
            out.insert(id, names);
        }
        if let Some(fields) = e.get("fields").filter(|f| !f.is_null()) {
            collect_mapping(fields, out)?;
        }
    }
    Ok(())
}

/// The value of column `field` inside a struct or map cell; None when absent or null. `pos` is
/// the field's position in the table schema: records usually carry their fields in that order,
/// so it is tried before a scan.
fn child<'a>(
    cell: Cell<'a>,
    field: &NestedField,
    pos: usize,
    lookup: &Lookup,
) -> Result<Option<Cell<'a>>, String> {
    let name = &field.name;
    let found = match cell.value {
        Value::Struct(values) => {
            let schema = cell.schema.ok_or("a struct value has no schema")?;
            let at = |i: usize| {
                schema
                    .fields
                    .get(i)
                    .is_some_and(|f| lookup.matches(field, &f.name))
            };
            (if at(pos) {
                Some(pos)
            } else {
                schema
                    .fields
                    .iter()
                    .position(|f| lookup.matches(field, &f.name))
            })
            .and_then(|i| {
                values.get(i).map(|v| Cell {
                    schema: Some(&schema.fields[i].schema),
                    value: v,
                })
            })
        }
        Value::Map(entries) => entries
            .get(pos)
            .filter(|(k, _)| k.as_str().is_some_and(|k| lookup.matches(field, k)))
            .or_else(|| {
                entries
                    .iter()
                    .find(|(k, _)| k.as_str().is_some_and(|k| lookup.matches(field, k)))
            })
            .map(|(_, v)| Cell {
                schema: cell.schema.and_then(|s| s.values.as_deref()),
                value: v,
            }),
        Value::Null => None,
        other => {
            return Err(format!(
                "expected a struct or map to read field {name}, found {}",
                other.kind()
            ))
        }
    };
    Ok(found.filter(|c| !c.value.is_null()))
}

fn err(row: usize, path: &str, message: impl std::fmt::Display) -> RowError {
    RowError {
        row,
        message: format!("column {path}: {message}"),
    }
}

fn nulls_of(cells: &Cells<'_>) -> Option<NullBuffer> {
    if cells.iter().all(Option::is_some) {
        return None;
    }
    let mut b = BooleanBufferBuilder::new(cells.len());
    for c in cells {
        b.append(c.is_some());
    }
    Some(NullBuffer::new(b.finish()))
}

fn build(
    field: &NestedFieldRef,
    dt: &DataType,
    cells: &Cells<'_>,
    path: &str,
    ci: &Lookup,
) -> Result<ArrayRef, RowError> {
    if field.required {
        if let Some(row) = cells.iter().position(Option::is_none) {
            return Err(err(row, path, "required column is null or missing"));
        }
    }
    build_type(&field.field_type, dt, cells, path, ci)
}

fn prim<T, F>(cells: &Cells<'_>, path: &str, f: F) -> Result<Vec<Option<T>>, RowError>
where
    F: Fn(&Cell<'_>) -> Result<T, String>,
{
    cells
        .iter()
        .enumerate()
        .map(|(row, c)| {
            c.as_ref()
                .map(&f)
                .transpose()
                .map_err(|m| err(row, path, m))
        })
        .collect()
}

fn build_type(
    ty: &Type,
    dt: &DataType,
    cells: &Cells<'_>,
    path: &str,
    ci: &Lookup,
) -> Result<ArrayRef, RowError> {
    match ty {
        Type::Primitive(p) => build_primitive(p, dt, cells, path),
        Type::Struct(st) => {
            let DataType::Struct(arrow_fields) = dt else {
                return Err(err(0, path, "struct column without a struct Arrow type"));
            };
            let mut arrays = Vec::with_capacity(st.fields().len());
            for (pos, (f, af)) in st.fields().iter().zip(arrow_fields.iter()).enumerate() {
                let mut sub = Vec::with_capacity(cells.len());
                for (row, c) in cells.iter().enumerate() {
                    sub.push(match c {
                        Some(c) => child(*c, f, pos, ci).map_err(|m| err(row, path, m))?,
                        None => None,
                    });
                }
                let sub_path = format!("{path}.{}", f.name);
                if f.required {
                    if let Some(row) =
                        (0..cells.len()).find(|r| cells[*r].is_some() && sub[*r].is_none())
                    {
                        return Err(err(row, &sub_path, "required column is null or missing"));
                    }
                }
                arrays.push(build_type(
                    &f.field_type,
                    af.data_type(),
                    &sub,
                    &sub_path,
                    ci,
                )?);
            }
            let array = StructArray::try_new(arrow_fields.clone(), arrays, nulls_of(cells))
                .map_err(|e| err(0, path, e))?;
            Ok(Arc::new(array))
        }
        Type::List(lt) => {
            let DataType::List(item_field) = dt else {
                return Err(err(0, path, "list column without a list Arrow type"));
            };
            let mut offsets = vec![0i32];
            let mut items: Cells<'_> = Vec::new();
            for (row, c) in cells.iter().enumerate() {
                if let Some(c) = c {
                    let Value::Array(values) = c.value else {
                        return Err(err(
                            row,
                            path,
                            format!("expected a list, found {}", c.value.kind()),
                        ));
                    };
                    let item_schema = c.schema.and_then(|s| s.items.as_deref());
                    for v in values {
                        items.push((!v.is_null()).then_some(Cell {
                            schema: item_schema,
                            value: v,
                        }));
                    }
                }
                offsets.push(items.len() as i32);
            }
            let item_path = format!("{path}.element");
            let values = build(
                &lt.element_field,
                item_field.data_type(),
                &items,
                &item_path,
                ci,
            )?;
            let array = ListArray::try_new(
                item_field.clone(),
                OffsetBuffer::new(offsets.into()),
                values,
                nulls_of(cells),
            )
            .map_err(|e| err(0, path, e))?;
            Ok(Arc::new(array))
        }
        Type::Map(mt) => {
            let DataType::Map(entries_field, ordered) = dt else {
                return Err(err(0, path, "map column without a map Arrow type"));
            };
            let DataType::Struct(kv_fields) = entries_field.data_type() else {
                return Err(err(0, path, "map entries are not a struct"));
            };
            let mut offsets = vec![0i32];
            let mut keys: Cells<'_> = Vec::new();
            let mut values: Cells<'_> = Vec::new();
            for (row, c) in cells.iter().enumerate() {
                if let Some(c) = c {
                    let Value::Map(entries) = c.value else {
                        return Err(err(
                            row,
                            path,
                            format!("expected a map, found {}", c.value.kind()),
                        ));
                    };
                    let (ks, vs) = (
                        c.schema.and_then(|s| s.keys.as_deref()),
                        c.schema.and_then(|s| s.values.as_deref()),
                    );
                    for (k, v) in entries {
                        keys.push((!k.is_null()).then_some(Cell {
                            schema: ks,
                            value: k,
                        }));
                        values.push((!v.is_null()).then_some(Cell {
                            schema: vs,
                            value: v,
                        }));
                    }
                }
                offsets.push(keys.len() as i32);
            }
            let key_array = build(
                &mt.key_field,
                kv_fields[0].data_type(),
                &keys,
                &format!("{path}.key"),
                ci,
            )?;
            let value_array = build(
                &mt.value_field,
                kv_fields[1].data_type(),
                &values,
                &format!("{path}.value"),
                ci,
            )?;
            let entries =
                StructArray::try_new(kv_fields.clone(), vec![key_array, value_array], None)
                    .map_err(|e| err(0, path, e))?;
            let array = MapArray::try_new(
                entries_field.clone(),
                OffsetBuffer::new(offsets.into()),
                entries,
                nulls_of(cells),
                *ordered,
            )
            .map_err(|e| err(0, path, e))?;
            Ok(Arc::new(array))
        }
    }
}

fn build_primitive(
    p: &PrimitiveType,
    dt: &DataType,
    cells: &Cells<'_>,
    path: &str,
) -> Result<ArrayRef, RowError> {
    Ok(match p {
        PrimitiveType::Boolean => {
            Arc::new(BooleanArray::from(prim(cells, path, |c| to_bool(c.value))?))
        }
        PrimitiveType::Int => Arc::new(Int32Array::from(prim(cells, path, |c| to_i32(c.value))?)),
        PrimitiveType::Long => Arc::new(Int64Array::from(prim(cells, path, |c| to_i64(c.value))?)),
        PrimitiveType::Float => Arc::new(Float32Array::from(prim(cells, path, |c| {
            to_f64(c.value).map(|v| v as f32)
        })?)),
        PrimitiveType::Double => {
            Arc::new(Float64Array::from(prim(cells, path, |c| to_f64(c.value))?))
        }
        PrimitiveType::Decimal { precision, scale } => {
            let scale_i = *scale as i32;
            let values = prim(cells, path, |c| to_decimal(c.value, scale_i))?;
            Arc::new(
                Decimal128Array::from(values)
                    .with_precision_and_scale(*precision as u8, *scale as i8)
                    .map_err(|e| err(0, path, e))?,
            )
        }
        PrimitiveType::Date => {
            Arc::new(Date32Array::from(prim(cells, path, |c| to_date(c.value))?))
        }
        PrimitiveType::Time => Arc::new(Time64MicrosecondArray::from(prim(cells, path, |c| {
            to_time_micros(c.value)
        })?)),
        PrimitiveType::Timestamptz | PrimitiveType::Timestamp => {
            let zoned = matches!(p, PrimitiveType::Timestamptz);
            let values = prim(cells, path, |c| to_timestamp_micros(c.value, zoned))?;
            let tz = match dt {
                DataType::Timestamp(_, tz) => tz.clone(),
                _ => None,
            };
            Arc::new(TimestampMicrosecondArray::from(values).with_timezone_opt(tz))
        }
        PrimitiveType::String => Arc::new(strings(cells, path)?),
        PrimitiveType::Uuid => {
            let values = prim(cells, path, |c| to_uuid(c.value))?;
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(values.into_iter(), 16)
                    .map_err(|e| err(0, path, e))?,
            )
        }
        PrimitiveType::Fixed(len) => {
            let values = prim(cells, path, |c| to_bytes(c.value))?;
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    values.into_iter(),
                    *len as i32,
                )
                .map_err(|e| err(0, path, e))?,
            )
        }
        PrimitiveType::Binary => {
            let values = prim(cells, path, |c| to_bytes(c.value))?;
            Arc::new(LargeBinaryArray::from_iter(
                values.iter().map(|v| v.as_deref()),
            ))
        }
        other => {
            return Err(err(
                0,
                path,
                format!("type {other} is not supported by the sink"),
            ))
        }
    })
}

fn kind_err(expected: &str, v: &Value) -> String {
    format!(
        "cannot convert {} value '{}' to {expected}",
        v.kind(),
        short(v)
    )
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

fn to_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Boolean(b) => Ok(*b),
        Value::String(s) => Ok(s.trim().eq_ignore_ascii_case("true")),
        other => Err(kind_err("boolean", other)),
    }
}

fn to_i64(v: &Value) -> Result<i64, String> {
    match v {
        Value::Float32(f) => Ok(*f as i64),
        Value::Float64(f) => Ok(*f as i64),
        Value::Decimal { unscaled, scale } => rescale(*unscaled, *scale, 0)
            .and_then(|u| i64::try_from(u).ok())
            .ok_or_else(|| kind_err("long", v)),
        Value::String(s) => s.trim().parse().map_err(|_| kind_err("long", v)),
        other => other.as_i64().ok_or_else(|| kind_err("long", other)),
    }
}

fn to_i32(v: &Value) -> Result<i32, String> {
    let wide = to_i64(v).map_err(|_| kind_err("int", v))?;
    i32::try_from(wide).map_err(|_| format!("value {wide} is out of range for int"))
}

fn to_f64(v: &Value) -> Result<f64, String> {
    match v {
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| kind_err("a floating point number", v)),
        other => other
            .as_f64()
            .ok_or_else(|| kind_err("a floating point number", other)),
    }
}

fn to_decimal(v: &Value, scale: i32) -> Result<i128, String> {
    let (unscaled, from) = match v {
        Value::Decimal { unscaled, scale } => (*unscaled, *scale),
        Value::String(s) => parse_decimal(s).ok_or_else(|| kind_err("decimal", v))?,
        Value::Float32(_) | Value::Float64(_) => {
            let f = v.as_f64().unwrap_or(f64::NAN);
            if !f.is_finite() {
                return Err(kind_err("decimal", v));
            }
            parse_decimal(&format!("{f}")).ok_or_else(|| kind_err("decimal", v))?
        }
        other => (
            i128::from(other.as_i64().ok_or_else(|| kind_err("decimal", other))?),
            0,
        ),
    };
    rescale(unscaled, from, scale)
        .ok_or_else(|| format!("decimal value {} does not fit scale {scale}", short(v)))
}

const EPOCH_DAYS_FROM_CE: i32 = 719_163;

fn to_date(v: &Value) -> Result<i32, String> {
    match v {
        Value::Date(d) => Ok(*d),
        Value::Timestamp(ms) => Ok(ms.div_euclid(86_400_000) as i32),
        Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(|d| chrono::Datelike::num_days_from_ce(&d) - EPOCH_DAYS_FROM_CE)
            .map_err(|_| kind_err("date (yyyy-MM-dd)", v)),
        other => other
            .as_i64()
            .and_then(|d| i32::try_from(d).ok())
            .ok_or_else(|| kind_err("date", other)),
    }
}

fn to_time_micros(v: &Value) -> Result<i64, String> {
    match v {
        Value::Time(ms) => Ok(i64::from(*ms) * 1000),
        Value::String(s) => {
            let s = s.trim();
            ["%H:%M:%S%.f", "%H:%M"]
                .iter()
                .find_map(|f| NaiveTime::parse_from_str(s, f).ok())
                .map(|t| {
                    i64::from(t.num_seconds_from_midnight()) * 1_000_000
                        + i64::from(t.nanosecond() / 1000)
                })
                .ok_or_else(|| kind_err("time (HH:mm[:ss[.f]])", v))
        }
        // Java: a number is milliseconds of the day.
        other => other
            .as_i64()
            .and_then(|ms| ms.checked_mul(1000))
            .ok_or_else(|| kind_err("time", other)),
    }
}

fn to_timestamp_micros(v: &Value, zoned: bool) -> Result<i64, String> {
    match v {
        Value::Timestamp(ms) => ms
            .checked_mul(1000)
            .ok_or_else(|| format!("timestamp {ms} ms is out of range")),
        Value::String(s) => parse_timestamp(s, zoned).ok_or_else(|| kind_err("timestamp", v)),
        // Java: a number is epoch milliseconds.
        other => other
            .as_i64()
            .and_then(|ms| ms.checked_mul(1000))
            .ok_or_else(|| kind_err("timestamp", other)),
    }
}

/// Java `RecordConverter` timestamp strings: a space at index 10 becomes `T`; an offset
/// `+HH:MM` after index 19 loses its colon; parsed as local date-time plus `+HHmm`/`Z`.
/// Timestamptz prefers the offset form and falls back to local-as-UTC; timestamp prefers the
/// local form and otherwise keeps the local wall time of an offset form.
pub fn parse_timestamp(text: &str, zoned: bool) -> Option<i64> {
    let mut s: Vec<char> = text.trim().chars().collect();
    if s.len() < 11 {
        return None;
    }
    if s[10] == ' ' {
        s[10] = 'T';
    }
    let mut s: String = s.into_iter().collect();
    if s.ends_with('Z') {
        s.truncate(s.len() - 1);
        s.push_str("+0000");
    }
    let with_offset = |s: &str| {
        DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
            .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M%z"))
            .ok()
    };
    let local = |s: &str| {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
            .ok()
    };
    if zoned {
        with_offset(&s)
            .map(|d| d.timestamp_micros())
            .or_else(|| local(&s).map(|d| d.and_utc().timestamp_micros()))
    } else {
        local(&s)
            .or_else(|| with_offset(&s).map(|d| d.naive_local()))
            .map(|d| d.and_utc().timestamp_micros())
    }
}

/// A string column: string values are copied once, into the array; others are rendered.
fn strings(cells: &Cells<'_>, path: &str) -> Result<StringArray, RowError> {
    let bytes: usize = cells
        .iter()
        .flatten()
        .map(|c| match c.value {
            Value::String(s) => s.len(),
            _ => 16,
        })
        .sum();
    let mut b = StringBuilder::with_capacity(cells.len(), bytes);
    for (row, c) in cells.iter().enumerate() {
        match c {
            None => b.append_null(),
            Some(Cell {
                value: Value::String(s),
                ..
            }) => b.append_value(s),
            Some(c) => b.append_value(to_text(c).map_err(|m| err(row, path, m))?),
        }
    }
    Ok(b.finish())
}

fn to_text(c: &Cell<'_>) -> Result<String, String> {
    Ok(match c.value {
        Value::String(s) => s.clone(),
        Value::Float64(f) => java_double(*f),
        Value::Float32(f) => java_double(f64::from(*f)),
        Value::Map(_) | Value::Array(_) | Value::Struct(_) => {
            to_json(c.schema, c.value).to_string()
        }
        Value::Bytes(b) => BASE64.encode(b),
        other => other.to_string(),
    })
}

/// Java `Double.toString` for the common cases: integral values keep a `.0`.
fn java_double(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e7 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

fn to_json(schema: Option<&ConnectSchema>, v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::String(s) => J::String(s.clone()),
        Value::Float32(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(J::Null, J::Number),
        Value::Float64(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Bytes(b) => J::String(BASE64.encode(b)),
        Value::Decimal { .. } => J::String(v.to_string()),
        Value::Array(items) => {
            let s = schema.and_then(|s| s.items.as_deref());
            J::Array(items.iter().map(|i| to_json(s, i)).collect())
        }
        Value::Map(entries) => {
            let s = schema.and_then(|s| s.values.as_deref());
            J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_string(), to_json(s, v)))
                    .collect(),
            )
        }
        Value::Struct(values) => match schema {
            Some(s) => J::Object(
                s.fields
                    .iter()
                    .zip(values)
                    .map(|(f, v)| (f.name.clone(), to_json(Some(&f.schema), v)))
                    .collect(),
            ),
            None => J::Array(values.iter().map(|v| to_json(None, v)).collect()),
        },
        other => other.as_i64().map_or(J::Null, |i| J::Number(i.into())),
    }
}

fn to_uuid(v: &Value) -> Result<Vec<u8>, String> {
    match v {
        Value::String(s) => uuid::Uuid::parse_str(s.trim())
            .map(|u| u.as_bytes().to_vec())
            .map_err(|_| kind_err("uuid", v)),
        Value::Bytes(b) if b.len() == 16 => Ok(b.clone()),
        other => Err(kind_err("uuid", other)),
    }
}

fn to_bytes(v: &Value) -> Result<Vec<u8>, String> {
    match v {
        Value::Bytes(b) => Ok(b.clone()),
        Value::String(s) => BASE64
            .decode(s.trim())
            .map_err(|_| kind_err("binary (base64)", v)),
        other => Err(kind_err("binary", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use floe_data::{Field, SchemaType};
    use iceberg::arrow::schema_to_arrow_schema;
    use iceberg::spec::NestedField;

    fn table_schema() -> Schema {
        Schema::builder()
            .with_fields(vec![
                Arc::new(NestedField::required(
                    1,
                    "id",
                    Type::Primitive(PrimitiveType::Long),
                )),
                Arc::new(NestedField::optional(
                    2,
                    "name",
                    Type::Primitive(PrimitiveType::String),
                )),
                Arc::new(NestedField::optional(
                    3,
                    "ts",
                    Type::Primitive(PrimitiveType::Timestamptz),
                )),
                Arc::new(NestedField::optional(
                    4,
                    "amount",
                    Type::Primitive(PrimitiveType::Decimal {
                        precision: 10,
                        scale: 2,
                    }),
                )),
            ])
            .build()
            .unwrap()
    }

    fn map(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Value::String(k.into()), v))
                .collect(),
        )
    }

    #[test]
    fn converts_schemaless_rows() {
        let schema = table_schema();
        let arrow = Arc::new(schema_to_arrow_schema(&schema).unwrap());
        let r1 = map(vec![
            ("id", Value::Int64(1)),
            ("name", Value::String("a".into())),
            ("ts", Value::String("2024-07-18 12:34:56.789+02:00".into())),
            ("amount", Value::Float64(1.005)),
        ]);
        let r2 = map(vec![
            ("id", Value::String("2".into())),
            ("extra", Value::Int64(9)),
            ("ts", Value::Int64(1_000)),
        ]);
        let rows = [
            Cell {
                schema: None,
                value: &r1,
            },
            Cell {
                schema: None,
                value: &r2,
            },
        ];
        let batch = records_to_batch(&schema, &arrow, &rows, &Lookup::by_name(false)).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.values().to_vec(), vec![1, 2]);
        let names = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(names.value(0), "a");
        assert!(names.is_null(1));
        let ts = batch
            .column(2)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(ts.value(0), 1_721_298_896_789_000);
        assert_eq!(ts.value(1), 1_000_000);
        let amount = batch
            .column(3)
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .unwrap();
        assert_eq!(amount.value(0), 101);
    }

    #[test]
    fn struct_rows_are_matched_by_name() {
        let schema = table_schema();
        let arrow = Arc::new(schema_to_arrow_schema(&schema).unwrap());
        let cs = ConnectSchema::structure(vec![
            Field::new("name", ConnectSchema::new(SchemaType::String)),
            Field::new("id", ConnectSchema::new(SchemaType::Int32)),
        ]);
        let v = Value::Struct(vec![Value::String("x".into()), Value::Int32(7)]);
        let batch = records_to_batch(
            &schema,
            &arrow,
            &[Cell {
                schema: Some(&cs),
                value: &v,
            }],
            &Lookup::by_name(false),
        )
        .unwrap();
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.value(0), 7);
    }

    #[test]
    fn bad_values_name_the_row_and_column() {
        let schema = table_schema();
        let arrow = Arc::new(schema_to_arrow_schema(&schema).unwrap());
        let ok = map(vec![("id", Value::Int64(1))]);
        let bad = map(vec![("id", Value::String("abc".into()))]);
        let missing = map(vec![("name", Value::String("n".into()))]);
        let e = records_to_batch(
            &schema,
            &arrow,
            &[
                Cell {
                    schema: None,
                    value: &ok,
                },
                Cell {
                    schema: None,
                    value: &bad,
                },
            ],
            &Lookup::by_name(false),
        )
        .unwrap_err();
        assert_eq!(
            e,
            RowError {
                row: 1,
                message: "column id: cannot convert string value 'abc' to long".into()
            }
        );
        let e = records_to_batch(
            &schema,
            &arrow,
            &[Cell {
                schema: None,
                value: &missing,
            }],
            &Lookup::by_name(false),
        )
        .unwrap_err();
        assert_eq!(
            e,
            RowError {
                row: 0,
                message: "column id: required column is null or missing".into()
            }
        );
    }

    #[test]
    fn parses_java_timestamp_strings() {
        assert_eq!(
            parse_timestamp("2024-07-18T12:34:56Z", true),
            Some(1_721_306_096_000_000)
        );
        assert_eq!(
            parse_timestamp("2024-07-18 12:34:56", true),
            Some(1_721_306_096_000_000)
        );
        assert_eq!(
            parse_timestamp("2024-07-18T14:34:56+0200", true),
            Some(1_721_306_096_000_000)
        );
        assert_eq!(
            parse_timestamp("2024-07-18T14:34:56+02:00", false),
            Some(1_721_313_296_000_000)
        );
        assert_eq!(parse_timestamp("2024-07-18", true), None);
    }
}
