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

impl AvroType {
    /// The type's kind, for messages (a whole type may be too big to print).
    pub fn kind(&self) -> &'static str {
        match self {
            AvroType::Null => "null",
            AvroType::Boolean => "boolean",
            AvroType::Int { .. } => "int",
            AvroType::Long { .. } => "long",
            AvroType::Float => "float",
            AvroType::Double => "double",
            AvroType::Bytes => "bytes",
            AvroType::String => "string",
            AvroType::Fixed { .. } => "fixed",
            AvroType::Array { .. } => "array",
            AvroType::Map { .. } => "map",
            AvroType::Union(_) => "union",
            AvroType::Record { .. } => "record",
        }
    }
}

impl AvroValue {
    /// The value's kind, for messages (a whole value may be too big to print).
    pub fn kind(&self) -> &'static str {
        match self {
            AvroValue::Null => "null",
            AvroValue::Boolean(_) => "boolean",
            AvroValue::Int(_) => "int",
            AvroValue::Long(_) => "long",
            AvroValue::Float(_) => "float",
            AvroValue::Double(_) => "double",
            AvroValue::Bytes(_) => "bytes",
            AvroValue::String(_) => "string",
            AvroValue::Fixed(_) => "fixed",
            AvroValue::Array(_) => "array",
            AvroValue::Map(_) => "map",
            AvroValue::Record(_) => "record",
        }
    }
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

// ------------------------------------------------------------------------------------ limits

/// The deepest a writer schema may nest, named types expanded where they are referenced.
/// Java's events nest 9 levels: `Event`, `DataWritten`, the optional file list, the list,
/// `GenericDataFile`, an optional metrics map, its array, its entry record, the entry's value.
pub const MAX_SCHEMA_DEPTH: usize = 32;

/// The most types a writer schema may expand to, a reference to a named type counting as the
/// copy of it the parsed tree holds; and the most its named types may hold in all (the parser
/// keeps a copy of each). A `DataWritten` schema has about 170, and 6 more per partition field;
/// its named types about 430, and 18 more per partition field.
pub const MAX_SCHEMA_TYPES: usize = 10_000;

/// The most bytes of names (of records, fixed types, fields and logical types) a writer schema
/// may expand to: four times what its text, at most 65535 bytes, can spell.
pub const MAX_SCHEMA_NAME_BYTES: usize = 256 * 1024;

/// The most values one datum may decode to, whatever its size. Java's events take at most
/// about 1.5 values a byte (an entry of a metrics map is 3 values in 2 bytes or more), so this
/// is more than any event under the producers' default 1 MB message size holds.
pub const MAX_DATUM_VALUES: usize = 1 << 21;

/// The values a datum may decode to per byte of it, beyond [`MIN_DATUM_VALUES`]. Values that
/// take no bytes (nulls, empty records, zero-size fixed) count as any other, so an array of
/// 2^40 nulls is refused at its block count.
pub const DATUM_VALUES_PER_BYTE: usize = 4;

/// The values any datum may decode to, however short.
pub const MIN_DATUM_VALUES: usize = 1024;

fn limit(msg: impl Into<String>) -> EventError {
    EventError::Limit(msg.into())
}

fn too_deep() -> EventError {
    limit(format!(
        "schema nested deeper than {MAX_SCHEMA_DEPTH} levels"
    ))
}

// ------------------------------------------------------------------------------- JSON → schema

/// Parses a writer schema. It comes with every control-topic record and is trusted no more
/// than the record: past [`MAX_SCHEMA_DEPTH`], [`MAX_SCHEMA_TYPES`] or
/// [`MAX_SCHEMA_NAME_BYTES`], counted with named types expanded where they are referenced, it
/// is refused before it is built. Returns the schema and an estimate of the bytes it takes.
pub fn parse(json: &Json) -> Result<(AvroType, usize), EventError> {
    let mut parser = Parser::default();
    let (ty, _) = parser.parse_type(json, "", 1)?;
    let bytes = parser
        .types
        .saturating_mul(std::mem::size_of::<AvroField>())
        .saturating_add(parser.name_bytes);
    Ok((ty, bytes))
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

/// A named type defined so far, with what a reference to it expands to.
struct Named {
    ty: AvroType,
    /// Types and bytes of names in `ty`.
    types: usize,
    name_bytes: usize,
    /// Levels of `ty`, itself included.
    height: usize,
}

/// The named types of a schema being parsed, and its types and bytes of names so far.
#[derive(Default)]
struct Parser {
    names: HashMap<String, Named>,
    types: usize,
    name_bytes: usize,
    /// Types in the named types' copies `names` holds, bounded as the schema's are.
    defined_types: usize,
}

/// Refuses a schema of `types` types and `name_bytes` bytes of names.
fn check_size(types: usize, name_bytes: usize) -> Result<(), EventError> {
    if types > MAX_SCHEMA_TYPES {
        return Err(limit(format!(
            "schema of more than {MAX_SCHEMA_TYPES} types, named types expanded"
        )));
    }
    if name_bytes > MAX_SCHEMA_NAME_BYTES {
        return Err(limit(format!(
            "schema of more than {MAX_SCHEMA_NAME_BYTES} bytes of names, named types expanded"
        )));
    }
    Ok(())
}

impl Parser {
    /// Counts `types` types and `name_bytes` bytes of names more.
    fn grow(&mut self, types: usize, name_bytes: usize) -> Result<(), EventError> {
        let types = self.types.saturating_add(types);
        let name_bytes = self.name_bytes.saturating_add(name_bytes);
        check_size(types, name_bytes)?;
        self.types = types;
        self.name_bytes = name_bytes;
        Ok(())
    }

    /// Defines the named type `ty`, whose types and names were counted from `before` on.
    fn define(
        &mut self,
        full: String,
        ty: &AvroType,
        before: (usize, usize),
        height: usize,
    ) -> Result<(), EventError> {
        let types = self.types.saturating_sub(before.0);
        self.defined_types = self.defined_types.saturating_add(types);
        if self.defined_types > MAX_SCHEMA_TYPES {
            return Err(limit(format!(
                "schema whose named types have more than {MAX_SCHEMA_TYPES} types in all"
            )));
        }
        let named = Named {
            ty: ty.clone(),
            types,
            name_bytes: self.name_bytes.saturating_sub(before.1),
            height,
        };
        self.names.insert(full, named);
        Ok(())
    }

    /// A reference to the named type `name` at `depth`: a copy of it, once its size is counted.
    fn reference(
        &mut self,
        name: &str,
        ns: &str,
        depth: usize,
    ) -> Result<(AvroType, usize), EventError> {
        let candidates = [full_name(name, None, ns), name.to_string()];
        let Some(named) = candidates.iter().find_map(|n| self.names.get(n)) else {
            return Err(schema_err(format!("unknown type {name}")));
        };
        if depth.saturating_add(named.height) > MAX_SCHEMA_DEPTH + 1 {
            return Err(too_deep());
        }
        let types = self.types.saturating_add(named.types);
        let name_bytes = self.name_bytes.saturating_add(named.name_bytes);
        check_size(types, name_bytes)?;
        let (ty, height) = (named.ty.clone(), named.height);
        self.types = types;
        self.name_bytes = name_bytes;
        Ok((ty, height))
    }

    /// Parses the type `json` at `depth` (the schema itself is at 1) in namespace `ns`,
    /// returning it with its height (its levels, itself included).
    fn parse_type(
        &mut self,
        json: &Json,
        ns: &str,
        depth: usize,
    ) -> Result<(AvroType, usize), EventError> {
        if depth > MAX_SCHEMA_DEPTH {
            return Err(too_deep());
        }
        match json {
            Json::String(s) => match primitive(s) {
                Some(ty) => {
                    self.grow(1, 0)?;
                    Ok((ty, 1))
                }
                None => self.reference(s, ns, depth),
            },
            Json::Array(branches) => {
                self.grow(1, 0)?;
                let mut types = Vec::with_capacity(branches.len());
                let mut height = 0;
                for b in branches {
                    let (ty, h) = self.parse_type(b, ns, depth + 1)?;
                    height = height.max(h);
                    types.push(ty);
                }
                Ok((AvroType::Union(types), 1 + height))
            }
            Json::Object(obj) => {
                let t = obj
                    .get("type")
                    .ok_or_else(|| schema_err("schema object without type"))?;
                let logical = obj
                    .get("logicalType")
                    .and_then(Json::as_str)
                    .map(str::to_string);
                let logical_bytes = logical.as_ref().map_or(0, String::len);
                match t.as_str() {
                    Some("int") => {
                        self.grow(1, logical_bytes)?;
                        Ok((AvroType::Int { logical }, 1))
                    }
                    Some("long") => {
                        self.grow(1, logical_bytes)?;
                        let adjust_to_utc = obj
                            .get("adjust-to-utc")
                            .and_then(Json::as_bool)
                            .unwrap_or(false);
                        Ok((
                            AvroType::Long {
                                logical,
                                adjust_to_utc,
                            },
                            1,
                        ))
                    }
                    Some("fixed") => {
                        let name = obj
                            .get("name")
                            .and_then(Json::as_str)
                            .ok_or_else(|| schema_err("fixed without name"))?;
                        let full = full_name(name, obj.get("namespace").and_then(Json::as_str), ns);
                        let before = (self.types, self.name_bytes);
                        self.grow(1, full.len().saturating_add(logical_bytes))?;
                        let ty = AvroType::Fixed {
                            name: full.clone(),
                            size: obj
                                .get("size")
                                .and_then(Json::as_u64)
                                .ok_or_else(|| schema_err("fixed without size"))?
                                as usize,
                            logical,
                            precision: obj.get("precision").and_then(Json::as_u64).unwrap_or(0)
                                as u32,
                            scale: obj.get("scale").and_then(Json::as_u64).unwrap_or(0) as u32,
                        };
                        self.define(full, &ty, before, 1)?;
                        Ok((ty, 1))
                    }
                    Some("array") => {
                        self.grow(1, 0)?;
                        let (items, height) = self.parse_type(
                            obj.get("items")
                                .ok_or_else(|| schema_err("array without items"))?,
                            ns,
                            depth + 1,
                        )?;
                        Ok((
                            AvroType::Array {
                                items: Box::new(items),
                                element_id: obj
                                    .get("element-id")
                                    .and_then(Json::as_i64)
                                    .map(|i| i as i32),
                                logical_map: logical.as_deref() == Some("map"),
                            },
                            1 + height,
                        ))
                    }
                    Some("map") => {
                        self.grow(1, 0)?;
                        let (values, height) = self.parse_type(
                            obj.get("values")
                                .ok_or_else(|| schema_err("map without values"))?,
                            ns,
                            depth + 1,
                        )?;
                        Ok((
                            AvroType::Map {
                                values: Box::new(values),
                                key_id: obj.get("key-id").and_then(Json::as_i64).map(|i| i as i32),
                                value_id: obj
                                    .get("value-id")
                                    .and_then(Json::as_i64)
                                    .map(|i| i as i32),
                            },
                            1 + height,
                        ))
                    }
                    Some("record") => {
                        let name = obj
                            .get("name")
                            .and_then(Json::as_str)
                            .ok_or_else(|| schema_err("record without name"))?;
                        let full = full_name(name, obj.get("namespace").and_then(Json::as_str), ns);
                        let before = (self.types, self.name_bytes);
                        self.grow(1, full.len())?;
                        let (record_ns, _) = split_name(&full);
                        let record_ns = record_ns.to_string();
                        let mut fields = Vec::new();
                        let mut height = 0;
                        for f in obj
                            .get("fields")
                            .and_then(Json::as_array)
                            .ok_or_else(|| schema_err("record without fields"))?
                        {
                            let name = f
                                .get("name")
                                .and_then(Json::as_str)
                                .ok_or_else(|| schema_err("field without name"))?
                                .to_string();
                            let original_name = f
                                .get("iceberg-field-name")
                                .and_then(Json::as_str)
                                .map(str::to_string);
                            self.grow(
                                0,
                                name.len()
                                    .saturating_add(original_name.as_ref().map_or(0, String::len)),
                            )?;
                            let (ty, h) = self.parse_type(
                                f.get("type")
                                    .ok_or_else(|| schema_err("field without type"))?,
                                &record_ns,
                                depth + 1,
                            )?;
                            height = height.max(h);
                            fields.push(AvroField {
                                name,
                                field_id: f
                                    .get("field-id")
                                    .and_then(Json::as_i64)
                                    .map(|i| i as i32),
                                original_name,
                                ty,
                            });
                        }
                        let ty = AvroType::Record {
                            name: full.clone(),
                            fields,
                        };
                        self.define(full, &ty, before, 1 + height)?;
                        Ok((ty, 1 + height))
                    }
                    Some(other) => {
                        let base = primitive(other)
                            .ok_or_else(|| schema_err(format!("unsupported type {other}")))?;
                        self.grow(1, 0)?;
                        Ok((base, 1))
                    }
                    // A type spelled as an object whose type is a schema: counted one level down.
                    None => self.parse_type(t, ns, depth + 1),
                }
            }
            other => Err(schema_err(format!("invalid schema {other}"))),
        }
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

pub(super) fn write_long(out: &mut Vec<u8>, v: i64) {
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

/// The fewest bytes a value of `ty` takes, a record's counted as none: a lower bound found
/// without walking the schema.
fn min_size(ty: &AvroType) -> usize {
    match ty {
        AvroType::Null | AvroType::Record { .. } => 0,
        AvroType::Fixed { size, .. } => *size,
        AvroType::Float => 4,
        AvroType::Double => 8,
        // A union's index, a collection's last block count, a number or a length.
        _ => 1,
    }
}

/// A cursor over a datum, with the values the datum may still decode to.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    values_left: usize,
}

impl<'a> Reader<'a> {
    /// Reads from `bytes`, which may decode to [`MIN_DATUM_VALUES`] values and
    /// [`DATUM_VALUES_PER_BYTE`] more per byte, [`MAX_DATUM_VALUES`] at most.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        let values_left = bytes
            .len()
            .saturating_mul(DATUM_VALUES_PER_BYTE)
            .saturating_add(MIN_DATUM_VALUES)
            .min(MAX_DATUM_VALUES);
        Reader {
            bytes,
            pos: 0,
            values_left,
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
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

    /// Counts a value against the datum's budget.
    fn spend(&mut self) -> Result<(), EventError> {
        match self.values_left.checked_sub(1) {
            Some(left) => {
                self.values_left = left;
                Ok(())
            }
            None => Err(limit(format!(
                "a datum of {} bytes decodes to more values than allowed",
                self.bytes.len()
            ))),
        }
    }

    /// A block's item count, each item at least `min_size` bytes. A count the rest of the
    /// datum cannot hold is refused before any item is read or room made for it: every item
    /// is a value of the budget, and takes `min_size` of the bytes left.
    fn block_count(&mut self, min_size: usize) -> Result<usize, EventError> {
        let n = self.long()?;
        if n < 0 {
            // A negative count is followed by the block's size in bytes.
            let _ = self.long()?;
        }
        let n = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
        if n > self.values_left {
            return Err(limit(format!(
                "a block of {n} items, more than the {} values the datum may still decode to",
                self.values_left
            )));
        }
        if min_size > 0 && n > self.remaining() / min_size {
            return Err(EventError::Truncated);
        }
        Ok(n)
    }

    /// Decodes a value of type `ty`, counted with every value inside it against the datum's
    /// budget.
    pub fn read(&mut self, ty: &AvroType) -> Result<AvroValue, EventError> {
        self.spend()?;
        self.read_value(ty)
    }

    fn read_value(&mut self, ty: &AvroType) -> Result<AvroValue, EventError> {
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
                let min = min_size(items);
                // Grown as items are read, never sized by a count from the datum.
                let mut out = Vec::new();
                loop {
                    let n = self.block_count(min)?;
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
                    // An entry's key takes a byte at least.
                    let n = self.block_count(1)?;
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
                // A union's value is its branch's, counted once.
                self.read_value(branch)?
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
    use std::time::{Duration, Instant};

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
        assert_eq!(parse(&json).unwrap().0, rec);
    }

    fn array_of(items: AvroType) -> AvroType {
        AvroType::Array {
            items: Box::new(items),
            element_id: None,
            logical_map: false,
        }
    }

    fn empty_record() -> AvroType {
        AvroType::Record {
            name: "Empty".into(),
            fields: Vec::new(),
        }
    }

    #[test]
    fn a_block_of_2_pow_40_items_of_no_bytes_is_refused_at_its_count() {
        for items in [AvroType::Null, empty_record()] {
            for count in [1i64 << 40, -(1i64 << 40), i64::MAX, i64::MIN] {
                let mut bytes = Vec::new();
                write_long(&mut bytes, count);
                if count < 0 {
                    write_long(&mut bytes, 0);
                }
                let started = Instant::now();
                let got = Reader::new(&bytes).read(&array_of(items.clone()));
                assert!(matches!(got, Err(EventError::Limit(_))), "{count}: {got:?}");
                assert!(started.elapsed() < Duration::from_secs(1), "{count}");
            }
        }
    }

    #[test]
    fn items_of_no_bytes_share_one_budget_across_blocks() {
        // A few hundred nulls decode...
        let mut bytes = Vec::new();
        write_long(&mut bytes, 300);
        bytes.push(0);
        let got = Reader::new(&bytes).read(&array_of(AvroType::Null)).unwrap();
        assert_eq!(got, AvroValue::Array(vec![AvroValue::Null; 300]));
        // ...but blocks each within the budget add up past it.
        let mut bytes = Vec::new();
        for _ in 0..3 {
            write_long(&mut bytes, 1000);
        }
        bytes.push(0);
        let got = Reader::new(&bytes).read(&array_of(AvroType::Null));
        assert!(matches!(got, Err(EventError::Limit(_))), "{got:?}");
        // Records of nulls take no bytes either: every null in them counts.
        let nulls = AvroType::Record {
            name: "Nulls".into(),
            fields: (0..100)
                .map(|i| AvroField {
                    name: format!("n{i}"),
                    field_id: None,
                    original_name: None,
                    ty: AvroType::Null,
                })
                .collect(),
        };
        let mut bytes = Vec::new();
        write_long(&mut bytes, 100);
        bytes.push(0);
        let got = Reader::new(&bytes).read(&array_of(nulls));
        assert!(matches!(got, Err(EventError::Limit(_))), "{got:?}");
    }

    #[test]
    fn a_block_count_beyond_the_bytes_left_is_refused_before_reading() {
        let long = AvroType::Long {
            logical: None,
            adjust_to_utc: false,
        };
        let mut bytes = Vec::new();
        write_long(&mut bytes, 500);
        bytes.extend_from_slice(&[2; 10]);
        let got = Reader::new(&bytes).read(&array_of(long));
        assert!(matches!(got, Err(EventError::Truncated)), "{got:?}");
        let huge = AvroType::Fixed {
            name: "huge".into(),
            size: usize::MAX,
            logical: None,
            precision: 0,
            scale: 0,
        };
        let mut bytes = Vec::new();
        write_long(&mut bytes, 1);
        let got = Reader::new(&bytes).read(&array_of(huge));
        assert!(matches!(got, Err(EventError::Truncated)), "{got:?}");
    }

    /// `levels` records, each with two fields of the one before: 2^levels copies of the first
    /// once references are expanded.
    fn doubling_schema(levels: usize) -> Json {
        let mut ty =
            json!({"type": "record", "name": "L0", "fields": [{"name": "a", "type": "null"}]});
        for level in 1..=levels {
            ty = json!({
                "type": "record",
                "name": format!("L{level}"),
                "fields": [
                    {"name": "a", "type": ty},
                    {"name": "b", "type": format!("L{}", level - 1)},
                ],
            });
        }
        ty
    }

    #[test]
    fn exponentially_expanding_named_types_are_refused() {
        let started = Instant::now();
        let got = parse(&doubling_schema(30));
        assert!(matches!(got, Err(EventError::Limit(_))), "{got:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        // A few levels are fine.
        assert!(parse(&doubling_schema(5)).is_ok());
    }

    fn nested_arrays(levels: usize, inner: Json) -> Json {
        (0..levels).fold(inner, |ty, _| json!({"type": "array", "items": ty}))
    }

    #[test]
    fn deep_schemas_are_refused() {
        // An int in 31 arrays is 32 levels deep; in 32, too deep.
        assert!(parse(&nested_arrays(MAX_SCHEMA_DEPTH - 1, json!("int"))).is_ok());
        let got = parse(&nested_arrays(MAX_SCHEMA_DEPTH, json!("int")));
        assert!(matches!(got, Err(EventError::Limit(_))), "{got:?}");
        let got = parse(&nested_arrays(100, json!("int")));
        assert!(matches!(got, Err(EventError::Limit(_))), "{got:?}");
        // A named type is as deep where it is referenced as where it was defined.
        let deep = json!({
            "type": "record",
            "name": "Deep",
            "fields": [{"name": "x", "type": nested_arrays(20, json!("int"))}],
        });
        let schema = json!({
            "type": "record",
            "name": "Outer",
            "fields": [
                {"name": "a", "type": deep},
                {"name": "b", "type": nested_arrays(15, json!("Deep"))},
            ],
        });
        let got = parse(&schema);
        assert!(matches!(got, Err(EventError::Limit(_))), "{got:?}");
    }

    #[test]
    fn oversized_schemas_are_refused() {
        let fields: Vec<Json> = (0..MAX_SCHEMA_TYPES + 1)
            .map(|i| json!({"name": format!("f{i}"), "type": "int"}))
            .collect();
        let got = parse(&json!({"type": "record", "name": "Wide", "fields": fields}));
        assert!(matches!(got, Err(EventError::Limit(_))), "{got:?}");
        // Few types, but a long name copied at every reference.
        let long_name = "n".repeat(40_000);
        let mut fields = vec![json!({
            "name": "first",
            "type": {"type": "record", "name": long_name, "fields": []},
        })];
        fields.extend((0..10).map(|i| json!({"name": format!("f{i}"), "type": long_name})));
        let got = parse(&json!({"type": "record", "name": "Names", "fields": fields}));
        assert!(matches!(got, Err(EventError::Limit(_))), "{got:?}");
    }
}
