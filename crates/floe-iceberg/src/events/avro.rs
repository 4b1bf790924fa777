//! The slice of Avro the control-topic events need: a schema tree parsed from (and printed as)
//! JSON with Iceberg's `field-id`/`element-id`/`key-id`/`value-id` properties, and the binary
//! encoding of values against it.

use std::collections::HashMap;

use serde_json::{json, Map, Value as Json};

use super::EventError;

/// An Avro type, with the Iceberg ids the events are decoded by.
#[derive(Debug, Clone, PartialEq)]
pub enum AvroType {
    Null,
    Boolean,
    /// `logical`: `date`.
    Int {
        logical: Option<String>,
    },
    /// `logical`: `timestamp-micros` (with `adjust_to_utc`), `time-micros`.
    Long {
        logical: Option<String>,
        adjust_to_utc: bool,
    },
    Float,
    Double,
    Bytes,
    String,
    /// `logical`: `uuid` or `decimal` (with precision and scale).
    Fixed {
        name: String,
        size: usize,
        logical: Option<String>,
        precision: u32,
        scale: u32,
    },
    Array {
        items: Box<AvroType>,
        element_id: Option<i32>,
        logical_map: bool,
    },
    Map {
        values: Box<AvroType>,
        key_id: Option<i32>,
        value_id: Option<i32>,
    },
    Union(Vec<AvroType>),
    Record {
        name: String,
        fields: Vec<AvroField>,
    },
}

/// A record field.
#[derive(Debug, Clone, PartialEq)]
pub struct AvroField {
    pub name: String,
    pub field_id: Option<i32>,
    /// `iceberg-field-name`: the original name when it is not a valid Avro name.
    pub original_name: Option<String>,
    pub ty: AvroType,
}

/// A decoded (or to be encoded) value.
#[derive(Debug, Clone, PartialEq)]
pub enum AvroValue {
    Null,
    Boolean(bool),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
    Bytes(Vec<u8>),
    String(String),
    Fixed(Vec<u8>),
    Array(Vec<AvroValue>),
    Map(Vec<(String, AvroValue)>),
    /// Field values in schema order.
    Record(Vec<AvroValue>),
}

// ------------------------------------------------------------------------------- schema → JSON

/// Prints a schema as Java's Avro does for Iceberg schemas: a named type is defined at its first
/// use and referenced by name afterwards; nested names inherit the enclosing namespace.
pub fn to_json(ty: &AvroType) -> Json {
    let mut defined = HashMap::new();
    type_json(ty, "", &mut defined)
}

fn split_name(full: &str) -> (&str, &str) {
    match full.rfind('.') {
        Some(i) => (&full[..i], &full[i + 1..]),
        None => ("", full),
    }
}

fn named_header(full: &str, enclosing_ns: &str, obj: &mut Map<String, Json>) {
    let (ns, short) = split_name(full);
    obj.insert("name".into(), json!(short));
    if ns != enclosing_ns {
        obj.insert("namespace".into(), json!(ns));
    }
}

fn reference(full: &str, enclosing_ns: &str) -> Json {
    let (ns, short) = split_name(full);
    if ns == enclosing_ns || ns.is_empty() {
        json!(short)
    } else {
        json!(full)
    }
}

fn type_json(ty: &AvroType, ns: &str, defined: &mut HashMap<String, ()>) -> Json {
    match ty {
        AvroType::Null => json!("null"),
        AvroType::Boolean => json!("boolean"),
        AvroType::Int { logical: None } => json!("int"),
        AvroType::Int { logical: Some(l) } => json!({"type": "int", "logicalType": l}),
        AvroType::Long { logical: None, .. } => json!("long"),
        AvroType::Long {
            logical: Some(l),
            adjust_to_utc,
        } if l == "timestamp-micros" => {
            json!({"type": "long", "logicalType": l, "adjust-to-utc": adjust_to_utc})
        }
        AvroType::Long {
            logical: Some(l), ..
        } => json!({"type": "long", "logicalType": l}),
        AvroType::Float => json!("float"),
        AvroType::Double => json!("double"),
        AvroType::Bytes => json!("bytes"),
        AvroType::String => json!("string"),
        AvroType::Fixed {
            name,
            size,
            logical,
            precision,
            scale,
        } => {
            if defined.contains_key(name) {
                return reference(name, ns);
            }
            defined.insert(name.clone(), ());
            let mut obj = Map::new();
            obj.insert("type".into(), json!("fixed"));
            let (fixed_ns, short) = split_name(name);
            obj.insert("name".into(), json!(short));
            if fixed_ns != ns {
                obj.insert("namespace".into(), json!(fixed_ns));
            }
            obj.insert("size".into(), json!(size));
            if let Some(l) = logical {
                obj.insert("logicalType".into(), json!(l));
                if l == "decimal" {
                    obj.insert("precision".into(), json!(precision));
                    obj.insert("scale".into(), json!(scale));
                }
            }
            Json::Object(obj)
        }
        AvroType::Array {
            items,
            element_id,
            logical_map,
        } => {
            let mut obj = Map::new();
            obj.insert("type".into(), json!("array"));
            obj.insert("items".into(), type_json(items, ns, defined));
            if let Some(id) = element_id {
                obj.insert("element-id".into(), json!(id));
            }
            if *logical_map {
                obj.insert("logicalType".into(), json!("map"));
            }
            Json::Object(obj)
        }
        AvroType::Map {
            values,
            key_id,
            value_id,
        } => {
            let mut obj = Map::new();
            obj.insert("type".into(), json!("map"));
            obj.insert("values".into(), type_json(values, ns, defined));
            if let Some(id) = key_id {
                obj.insert("key-id".into(), json!(id));
            }
            if let Some(id) = value_id {
                obj.insert("value-id".into(), json!(id));
            }
            Json::Object(obj)
        }
        AvroType::Union(branches) => {
            Json::Array(branches.iter().map(|b| type_json(b, ns, defined)).collect())
        }
        AvroType::Record { name, fields } => {
            if defined.contains_key(name) {
                return reference(name, ns);
            }
            defined.insert(name.clone(), ());
            let mut obj = Map::new();
            obj.insert("type".into(), json!("record"));
            named_header(name, ns, &mut obj);
            let (record_ns, _) = split_name(name);
            let fields: Vec<Json> = fields
                .iter()
                .map(|f| {
                    let mut fo = Map::new();
                    fo.insert("name".into(), json!(f.name));
                    fo.insert("type".into(), type_json(&f.ty, record_ns, defined));
                    if matches!(&f.ty, AvroType::Union(b) if b.first() == Some(&AvroType::Null)) {
                        fo.insert("default".into(), Json::Null);
                    }
                    if let Some(id) = f.field_id {
                        fo.insert("field-id".into(), json!(id));
                    }
                    if let Some(orig) = &f.original_name {
                        fo.insert("iceberg-field-name".into(), json!(orig));
                    }
                    Json::Object(fo)
                })
                .collect();
            obj.insert("fields".into(), Json::Array(fields));
            Json::Object(obj)
        }
    }
}

// ------------------------------------------------------------------------------- JSON → schema

/// Parses a writer schema.
pub fn parse(json: &Json) -> Result<AvroType, EventError> {
    let mut names = HashMap::new();
    parse_type(json, "", &mut names)
}

fn full_name(name: &str, ns: Option<&str>, enclosing: &str) -> String {
    if name.contains('.') {
        return name.to_string();
    }
    let ns = ns.unwrap_or(enclosing);
    if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}.{name}")
    }
}

fn schema_err(msg: impl Into<String>) -> EventError {
    EventError::Schema(msg.into())
}

fn parse_type(
    json: &Json,
    ns: &str,
    names: &mut HashMap<String, AvroType>,
) -> Result<AvroType, EventError> {
    match json {
        Json::String(s) => primitive(s).map_or_else(
            || {
                let candidates = [full_name(s, None, ns), s.clone()];
                candidates
                    .iter()
                    .find_map(|n| names.get(n).cloned())
                    .ok_or_else(|| schema_err(format!("unknown type {s}")))
            },
            Ok,
        ),
        Json::Array(branches) => Ok(AvroType::Union(
            branches
                .iter()
                .map(|b| parse_type(b, ns, names))
                .collect::<Result<_, _>>()?,
        )),
        Json::Object(obj) => {
            let t = obj
                .get("type")
                .ok_or_else(|| schema_err("schema object without type"))?;
            let logical = obj
                .get("logicalType")
                .and_then(Json::as_str)
                .map(str::to_string);
            match t.as_str() {
                Some("int") => Ok(AvroType::Int { logical }),
                Some("long") => Ok(AvroType::Long {
                    logical,
                    adjust_to_utc: obj
                        .get("adjust-to-utc")
                        .and_then(Json::as_bool)
                        .unwrap_or(false),
                }),
                Some("fixed") => {
                    let name = obj
                        .get("name")
                        .and_then(Json::as_str)
                        .ok_or_else(|| schema_err("fixed without name"))?;
                    let full = full_name(name, obj.get("namespace").and_then(Json::as_str), ns);
                    let ty = AvroType::Fixed {
                        name: full.clone(),
                        size: obj
                            .get("size")
                            .and_then(Json::as_u64)
                            .ok_or_else(|| schema_err("fixed without size"))?
                            as usize,
                        logical,
                        precision: obj.get("precision").and_then(Json::as_u64).unwrap_or(0) as u32,
                        scale: obj.get("scale").and_then(Json::as_u64).unwrap_or(0) as u32,
                    };
                    names.insert(full, ty.clone());
                    Ok(ty)
                }
                Some("array") => Ok(AvroType::Array {
                    items: Box::new(parse_type(
                        obj.get("items")
                            .ok_or_else(|| schema_err("array without items"))?,
                        ns,
                        names,
                    )?),
                    element_id: obj
                        .get("element-id")
                        .and_then(Json::as_i64)
                        .map(|i| i as i32),
                    logical_map: logical.as_deref() == Some("map"),
                }),
                Some("map") => Ok(AvroType::Map {
                    values: Box::new(parse_type(
                        obj.get("values")
                            .ok_or_else(|| schema_err("map without values"))?,
                        ns,
                        names,
                    )?),
                    key_id: obj.get("key-id").and_then(Json::as_i64).map(|i| i as i32),
                    value_id: obj.get("value-id").and_then(Json::as_i64).map(|i| i as i32),
                }),
                Some("record") => {
                    let name = obj
                        .get("name")
                        .and_then(Json::as_str)
                        .ok_or_else(|| schema_err("record without name"))?;
                    let full = full_name(name, obj.get("namespace").and_then(Json::as_str), ns);
                    let (record_ns, _) = split_name(&full);
                    let record_ns = record_ns.to_string();
                    let mut fields = Vec::new();
                    for f in obj
                        .get("fields")
                        .and_then(Json::as_array)
                        .ok_or_else(|| schema_err("record without fields"))?
                    {
                        fields.push(AvroField {
                            name: f
                                .get("name")
                                .and_then(Json::as_str)
                                .ok_or_else(|| schema_err("field without name"))?
                                .to_string(),
                            field_id: f.get("field-id").and_then(Json::as_i64).map(|i| i as i32),
                            original_name: f
                                .get("iceberg-field-name")
                                .and_then(Json::as_str)
                                .map(str::to_string),
                            ty: parse_type(
                                f.get("type")
                                    .ok_or_else(|| schema_err("field without type"))?,
                                &record_ns,
                                names,
                            )?,
                        });
                    }
                    let ty = AvroType::Record {
                        name: full.clone(),
                        fields,
                    };
                    names.insert(full, ty.clone());
                    Ok(ty)
                }
                Some(other) => {
                    let base = primitive(other)
                        .ok_or_else(|| schema_err(format!("unsupported type {other}")))?;
                    Ok(base)
                }
                None => parse_type(t, ns, names),
            }
        }
        other => Err(schema_err(format!("invalid schema {other}"))),
    }
}

fn primitive(name: &str) -> Option<AvroType> {
    Some(match name {
        "null" => AvroType::Null,
        "boolean" => AvroType::Boolean,
        "int" => AvroType::Int { logical: None },
        "long" => AvroType::Long {
            logical: None,
            adjust_to_utc: false,
        },
        "float" => AvroType::Float,
        "double" => AvroType::Double,
        "bytes" => AvroType::Bytes,
        "string" => AvroType::String,
        _ => return None,
    })
}

// ------------------------------------------------------------------------------------ binary

fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn mismatch(ty: &AvroType, v: &AvroValue) -> EventError {
    EventError::Encode(format!("value {v:?} does not fit Avro type {ty:?}"))
}

/// Encodes `value` as `ty`.
pub fn encode(ty: &AvroType, value: &AvroValue, out: &mut Vec<u8>) -> Result<(), EventError> {
    match (ty, value) {
        (AvroType::Null, AvroValue::Null) => {}
        (AvroType::Boolean, AvroValue::Boolean(b)) => out.push(u8::from(*b)),
        (AvroType::Int { .. }, AvroValue::Int(i)) => write_long(out, i64::from(*i)),
        (AvroType::Long { .. }, AvroValue::Long(l)) => write_long(out, *l),
        (AvroType::Float, AvroValue::Float(f)) => out.extend_from_slice(&f.to_le_bytes()),
        (AvroType::Double, AvroValue::Double(d)) => out.extend_from_slice(&d.to_le_bytes()),
        (AvroType::Bytes, AvroValue::Bytes(b)) => {
            write_long(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        (AvroType::String, AvroValue::String(s)) => {
            write_long(out, s.len() as i64);
            out.extend_from_slice(s.as_bytes());
        }
        (AvroType::Fixed { size, .. }, AvroValue::Fixed(b)) if b.len() == *size => {
            out.extend_from_slice(b)
        }
        (AvroType::Array { items, .. }, AvroValue::Array(values)) => {
            if !values.is_empty() {
                write_long(out, values.len() as i64);
                for v in values {
                    encode(items, v, out)?;
                }
            }
            out.push(0);
        }
        (AvroType::Map { values: vt, .. }, AvroValue::Map(entries)) => {
            if !entries.is_empty() {
                write_long(out, entries.len() as i64);
                for (k, v) in entries {
                    encode(&AvroType::String, &AvroValue::String(k.clone()), out)?;
                    encode(vt, v, out)?;
                }
            }
            out.push(0);
        }
        (AvroType::Union(branches), v) => {
            let index = if matches!(v, AvroValue::Null) {
                branches.iter().position(|b| *b == AvroType::Null)
            } else {
                branches.iter().position(|b| *b != AvroType::Null)
            }
            .ok_or_else(|| mismatch(ty, v))?;
            write_long(out, index as i64);
            encode(&branches[index], v, out)?;
        }
        (AvroType::Record { fields, .. }, AvroValue::Record(values))
            if fields.len() == values.len() =>
        {
            for (f, v) in fields.iter().zip(values) {
                encode(&f.ty, v, out)?;
            }
        }
        (ty, v) => return Err(mismatch(ty, v)),
    }
    Ok(())
}

/// A cursor over a datum.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads from `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], EventError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or(EventError::Truncated)?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn long(&mut self) -> Result<i64, EventError> {
        let mut shift = 0u32;
        let mut z: u64 = 0;
        loop {
            let b = self.take(1)?[0];
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(EventError::Decode("varint too long".into()));
            }
        }
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn len(&mut self) -> Result<usize, EventError> {
        let n = self.long()?;
        usize::try_from(n).map_err(|_| EventError::Decode(format!("negative length {n}")))
    }

    fn block_count(&mut self) -> Result<usize, EventError> {
        let n = self.long()?;
        if n < 0 {
            // A negative count is followed by the block's size in bytes.
            let _ = self.long()?;
            return usize::try_from(-n).map_err(|_| EventError::Decode("bad block".into()));
        }
        Ok(n as usize)
    }

    /// Decodes a value of type `ty`.
    pub fn read(&mut self, ty: &AvroType) -> Result<AvroValue, EventError> {
        Ok(match ty {
            AvroType::Null => AvroValue::Null,
            AvroType::Boolean => AvroValue::Boolean(self.take(1)?[0] != 0),
            AvroType::Int { .. } => AvroValue::Int(
                i32::try_from(self.long()?)
                    .map_err(|_| EventError::Decode("int out of range".into()))?,
            ),
            AvroType::Long { .. } => AvroValue::Long(self.long()?),
            AvroType::Float => AvroValue::Float(f32::from_le_bytes(
                self.take(4)?
                    .try_into()
                    .map_err(|_| EventError::Truncated)?,
            )),
            AvroType::Double => AvroValue::Double(f64::from_le_bytes(
                self.take(8)?
                    .try_into()
                    .map_err(|_| EventError::Truncated)?,
            )),
            AvroType::Bytes => {
                let n = self.len()?;
                AvroValue::Bytes(self.take(n)?.to_vec())
            }
            AvroType::String => {
                let n = self.len()?;
                AvroValue::String(
                    String::from_utf8(self.take(n)?.to_vec())
                        .map_err(|e| EventError::Decode(format!("invalid UTF-8: {e}")))?,
                )
            }
            AvroType::Fixed { size, .. } => AvroValue::Fixed(self.take(*size)?.to_vec()),
            AvroType::Array { items, .. } => {
                let mut out = Vec::new();
                loop {
                    let n = self.block_count()?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        out.push(self.read(items)?);
                    }
                }
                AvroValue::Array(out)
            }
            AvroType::Map { values, .. } => {
                let mut out = Vec::new();
                loop {
                    let n = self.block_count()?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        let AvroValue::String(k) = self.read(&AvroType::String)? else {
                            return Err(EventError::Decode("map key".into()));
                        };
                        out.push((k, self.read(values)?));
                    }
                }
                AvroValue::Map(out)
            }
            AvroType::Union(branches) => {
                let i = self.len()?;
                let branch = branches
                    .get(i)
                    .ok_or_else(|| EventError::Decode(format!("union index {i} out of range")))?;
                self.read(branch)?
            }
            AvroType::Record { fields, .. } => AvroValue::Record(
                fields
                    .iter()
                    .map(|f| self.read(&f.ty))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_matches_the_spec() {
        for (v, bytes) in [
            (0i64, vec![0u8]),
            (-1, vec![1]),
            (1, vec![2]),
            (-64, vec![0x7f]),
            (64, vec![0x80, 0x01]),
        ] {
            let mut out = Vec::new();
            write_long(&mut out, v);
            assert_eq!(out, bytes, "{v}");
            assert_eq!(Reader::new(&bytes).long().unwrap(), v);
        }
    }

    #[test]
    fn named_types_are_defined_once_and_resolved_by_short_name() {
        let uuid = AvroType::Fixed {
            name: "uuid_fixed".into(),
            size: 16,
            logical: Some("uuid".into()),
            precision: 0,
            scale: 0,
        };
        let rec = AvroType::Record {
            name: "a.b.R".into(),
            fields: vec![
                AvroField {
                    name: "x".into(),
                    field_id: Some(1),
                    original_name: None,
                    ty: uuid.clone(),
                },
                AvroField {
                    name: "y".into(),
                    field_id: Some(2),
                    original_name: None,
                    ty: uuid.clone(),
                },
            ],
        };
        let json = to_json(&rec);
        assert_eq!(json["fields"][0]["type"]["namespace"], "");
        assert_eq!(json["fields"][1]["type"], "uuid_fixed");
        assert_eq!(parse(&json).unwrap(), rec);
    }
}
