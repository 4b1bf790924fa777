//! `io.confluent.connect.protobuf.ProtobufConverter`: Confluent-framed Protobuf with `.proto`
//! schemas from a Schema Registry (imports resolved through the schema's references), mapped to
//! Connect data as Confluent's `ProtobufData` does with its default settings:
//!
//! | Protobuf | Connect |
//! |---|---|
//! | int32, sint32, sfixed32 | int32 |
//! | int64, sint64, sfixed64, uint32, fixed32, uint64, fixed64 | int64 |
//! | float, double, bool, string, bytes | float32, float64, boolean, string, bytes |
//! | enum | string (the value's name) |
//! | message | struct named by the message's full name |
//! | repeated T / map<K, V> | array / map |
//! | oneof `o` (the n-th of its message) | an optional struct field `o_n` holding the branches |
//! | `google.protobuf.Timestamp` | Timestamp |
//!
//! Every field is optional (proto3 has no required fields); an unset scalar reads as its default
//! value, an unset message as null. The payload after the schema id starts with the message
//! indexes: zig-zag varints, a count then the path to the message (`0` alone means the first
//! message of the file).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use floe_data::{logical, Field, Schema, SchemaRef, SchemaType, Value};
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    OneofDescriptor, ReflectMessage, Value as ProtoValue,
};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use crate::registry::{split_frame, ParsedSchemas, RegisteredSchema, RegistryClient, SchemaSource};
use crate::{ConfigError, ConvertError, Converter, SchemaAndValue};

pub(crate) const CLASS: &str = "io.confluent.connect.protobuf.ProtobufConverter";

const MAIN_FILE: &str = "floe-registry-schema.proto";
const TIMESTAMP: &str = "google.protobuf.Timestamp";
const MAX_DEPTH: usize = 64;

/// A compiled registry schema, and the Connect schema of each message read from it so far.
struct ProtoSchema {
    pool: DescriptorPool,
    messages: Mutex<HashMap<Vec<i32>, (MessageDescriptor, SchemaRef)>>,
}

/// The Protobuf converter.
pub struct ProtobufConverter {
    schemas: ParsedSchemas<ProtoSchema>,
}

impl ProtobufConverter {
    /// Configures from converter properties (`schema.registry.url`, auth keys).
    pub fn configure(props: &BTreeMap<String, String>) -> Result<ProtobufConverter, ConfigError> {
        Ok(ProtobufConverter::with_source(Arc::new(
            RegistryClient::configure(props)?,
        )))
    }

    /// A converter reading schemas from `source`.
    pub fn with_source(source: Arc<dyn SchemaSource>) -> ProtobufConverter {
        ProtobufConverter {
            schemas: ParsedSchemas::new(source, "PROTOBUF"),
        }
    }
}

fn err(msg: impl Into<String>) -> ConvertError {
    ConvertError::Data(msg.into())
}

/// The registry schema and its references (fetched recursively) as in-memory `.proto` files,
/// with Google's well-known types behind them.
struct RegistryFiles(HashMap<String, String>);

impl FileResolver for RegistryFiles {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.get(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

fn collect_files(
    schema: &RegisteredSchema,
    name: &str,
    source: &dyn SchemaSource,
    files: &mut HashMap<String, String>,
    depth: usize,
) -> Result<(), ConvertError> {
    if depth > MAX_DEPTH {
        return Err(err("Protobuf schema references nest too deeply"));
    }
    files.insert(name.to_string(), schema.schema.clone());
    for r in &schema.references {
        if files.contains_key(&r.name) {
            continue;
        }
        let referenced = source
            .schema_by_subject(&r.subject, r.version)
            .map_err(|e| {
                err(format!(
                    "Error retrieving Protobuf schema reference {} ({} version {}): {e}",
                    r.name, r.subject, r.version
                ))
            })?;
        collect_files(&referenced, &r.name, source, files, depth + 1)?;
    }
    Ok(())
}

fn compile(
    schema: &RegisteredSchema,
    source: &dyn SchemaSource,
) -> Result<ProtoSchema, ConvertError> {
    let mut files = HashMap::new();
    collect_files(schema, MAIN_FILE, source, &mut files, 0)?;
    let mut resolver = ChainFileResolver::new();
    resolver.add(RegistryFiles(files));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler
        .open_file(MAIN_FILE)
        .map_err(|e| err(format!("Invalid Protobuf schema {}: {e}", schema.id)))?;
    Ok(ProtoSchema {
        pool: compiler.descriptor_pool(),
        messages: Mutex::new(HashMap::new()),
    })
}

/// Reads one Kafka zig-zag varint (`ByteUtils.readVarint`).
fn read_varint(bytes: &mut &[u8]) -> Result<i32, ConvertError> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        let (&b, rest) = bytes
            .split_first()
            .ok_or_else(|| ConvertError::Serialization("truncated message indexes".into()))?;
        *bytes = rest;
        value |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(((value >> 1) as i32) ^ -((value & 1) as i32));
        }
    }
    Err(ConvertError::Serialization(
        "malformed message index varint".into(),
    ))
}

/// The message indexes at the start of a payload, and the protobuf bytes after them.
pub fn message_indexes(mut payload: &[u8]) -> Result<(Vec<i32>, &[u8]), ConvertError> {
    let count = read_varint(&mut payload)?;
    if count == 0 {
        return Ok((vec![0], payload));
    }
    if !(0..=MAX_DEPTH as i32).contains(&count) {
        return Err(ConvertError::Serialization(format!(
            "invalid message index count {count}"
        )));
    }
    let mut indexes = Vec::with_capacity(count as usize);
    for _ in 0..count {
        indexes.push(read_varint(&mut payload)?);
    }
    Ok((indexes, payload))
}

impl ProtoSchema {
    fn message(
        &self,
        id: u32,
        indexes: &[i32],
    ) -> Result<(MessageDescriptor, SchemaRef), ConvertError> {
        if let Some(m) = self
            .messages
            .lock()
            .ok()
            .and_then(|m| m.get(indexes).cloned())
        {
            return Ok(m);
        }
        let file = self
            .pool
            .get_file_by_name(MAIN_FILE)
            .ok_or_else(|| err(format!("Protobuf schema {id} has no file")))?;
        let not_found = || {
            err(format!(
                "Protobuf schema {id} has no message at indexes {indexes:?}"
            ))
        };
        let (first, rest) = indexes.split_first().ok_or_else(not_found)?;
        let mut desc = usize::try_from(*first)
            .ok()
            .and_then(|i| file.messages().nth(i))
            .ok_or_else(not_found)?;
        for i in rest {
            desc = usize::try_from(*i)
                .ok()
                .and_then(|i| desc.child_messages().nth(i))
                .ok_or_else(not_found)?;
        }
        let schema = Arc::new(message_schema(&desc, 0)?);
        if let Ok(mut m) = self.messages.lock() {
            m.insert(indexes.to_vec(), (desc.clone(), schema.clone()));
        }
        Ok((desc, schema))
    }
}

/// The fields of a message in declaration order, a oneof's branches grouped where its first
/// branch is declared.
enum Slot {
    Field(FieldDescriptor),
    OneOf(OneofDescriptor),
}

fn slots(desc: &MessageDescriptor) -> Vec<Slot> {
    let mut out: Vec<Slot> = Vec::new();
    for f in desc.fields() {
        match f.containing_oneof().filter(|o| !o.is_synthetic()) {
            None => out.push(Slot::Field(f)),
            Some(o) => {
                let seen = out
                    .iter()
                    .any(|s| matches!(s, Slot::OneOf(x) if x.name() == o.name()));
                if !seen {
                    out.push(Slot::OneOf(o));
                }
            }
        }
    }
    out
}

/// Confluent's field name for a oneof: `<name>_<index among the message's oneofs>`.
fn oneof_field_name(desc: &MessageDescriptor, o: &OneofDescriptor) -> String {
    let index = desc
        .oneofs()
        .position(|x| x.name() == o.name())
        .unwrap_or(0);
    format!("{}_{index}", o.name())
}

fn message_schema(desc: &MessageDescriptor, depth: usize) -> Result<Schema, ConvertError> {
    if depth > MAX_DEPTH {
        return Err(err(format!(
            "Protobuf message {} nests too deeply",
            desc.full_name()
        )));
    }
    if desc.full_name() == TIMESTAMP {
        return Ok(Schema::new(SchemaType::Int64)
            .named(logical::TIMESTAMP)
            .optional());
    }
    let mut s = Schema::new(SchemaType::Struct)
        .named(desc.full_name())
        .optional();
    for slot in slots(desc) {
        match slot {
            Slot::Field(f) => s
                .fields
                .push(Field::new(f.name(), field_schema(&f, depth)?)),
            Slot::OneOf(o) => {
                let mut union = Schema::new(SchemaType::Struct)
                    .named("io.confluent.connect.protobuf.Union")
                    .optional();
                for b in o.fields() {
                    union
                        .fields
                        .push(Field::new(b.name(), field_schema(&b, depth)?));
                }
                s.fields
                    .push(Field::new(&oneof_field_name(desc, &o), union));
            }
        }
    }
    Ok(s)
}

fn kind_schema(kind: &Kind, depth: usize) -> Result<Schema, ConvertError> {
    let t = |t| Ok(Schema::new(t).optional());
    match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => t(SchemaType::Int32),
        Kind::Int64
        | Kind::Sint64
        | Kind::Sfixed64
        | Kind::Uint32
        | Kind::Fixed32
        | Kind::Uint64
        | Kind::Fixed64 => t(SchemaType::Int64),
        Kind::Float => t(SchemaType::Float32),
        Kind::Double => t(SchemaType::Float64),
        Kind::Bool => t(SchemaType::Boolean),
        Kind::String | Kind::Enum(_) => t(SchemaType::String),
        Kind::Bytes => t(SchemaType::Bytes),
        Kind::Message(m) => message_schema(m, depth + 1),
    }
}

fn field_schema(f: &FieldDescriptor, depth: usize) -> Result<Schema, ConvertError> {
    if f.is_map() {
        let Kind::Message(entry) = f.kind() else {
            return Err(err(format!(
                "map field {} without an entry type",
                f.full_name()
            )));
        };
        let key = kind_schema(&entry.map_entry_key_field().kind(), depth)?;
        let value = kind_schema(&entry.map_entry_value_field().kind(), depth)?;
        let mut m = Schema::new(SchemaType::Map).optional();
        m.keys = Some(Arc::new(key));
        m.values = Some(Arc::new(value));
        return Ok(m);
    }
    let element = kind_schema(&f.kind(), depth)?;
    if f.is_list() {
        let mut a = Schema::new(SchemaType::Array).optional();
        a.items = Some(Arc::new(element));
        return Ok(a);
    }
    Ok(element)
}

fn scalar(v: &ProtoValue, kind: &Kind) -> Value {
    match v {
        ProtoValue::Bool(b) => Value::Boolean(*b),
        ProtoValue::I32(i) => Value::Int32(*i),
        ProtoValue::I64(i) => Value::Int64(*i),
        ProtoValue::U32(u) => Value::Int64(i64::from(*u)),
        // Confluent keeps the bits: uint64 values above i64::MAX read as negative.
        ProtoValue::U64(u) => Value::Int64(*u as i64),
        ProtoValue::F32(f) => Value::Float32(*f),
        ProtoValue::F64(f) => Value::Float64(*f),
        ProtoValue::String(s) => Value::String(s.clone()),
        ProtoValue::Bytes(b) => Value::Bytes(b.to_vec()),
        ProtoValue::EnumNumber(n) => match kind {
            Kind::Enum(e) => Value::String(
                e.get_value(*n)
                    .map_or_else(|| n.to_string(), |v| v.name().to_string()),
            ),
            _ => Value::String(n.to_string()),
        },
        ProtoValue::Message(m) => message_value(m),
        ProtoValue::List(items) => Value::Array(items.iter().map(|i| scalar(i, kind)).collect()),
        ProtoValue::Map(_) => Value::Null,
    }
}

fn map_key(k: &MapKey) -> Value {
    match k {
        MapKey::Bool(b) => Value::Boolean(*b),
        MapKey::I32(i) => Value::Int32(*i),
        MapKey::I64(i) => Value::Int64(*i),
        MapKey::U32(u) => Value::Int64(i64::from(*u)),
        MapKey::U64(u) => Value::Int64(*u as i64),
        MapKey::String(s) => Value::String(s.clone()),
    }
}

fn field_value(m: &DynamicMessage, f: &FieldDescriptor) -> Value {
    if let Kind::Message(_) = f.kind() {
        if !f.is_list() && !f.is_map() && !m.has_field(f) {
            return Value::Null;
        }
    }
    let v = m.get_field(f);
    if let (true, ProtoValue::Map(entries), Kind::Message(entry)) =
        (f.is_map(), v.as_ref(), f.kind())
    {
        let value_kind = entry.map_entry_value_field().kind();
        let mut out: Vec<(Value, Value)> = entries
            .iter()
            .map(|(k, v)| (map_key(k), scalar(v, &value_kind)))
            .collect();
        out.sort_by_cached_key(|e| e.0.to_string());
        return Value::Map(out);
    }
    scalar(&v, &f.kind())
}

fn message_value(m: &DynamicMessage) -> Value {
    let desc = m.descriptor();
    if desc.full_name() == TIMESTAMP {
        let get = |name: &str| {
            desc.get_field_by_name(name)
                .map(|f| m.get_field(&f).into_owned())
        };
        let seconds = match get("seconds") {
            Some(ProtoValue::I64(s)) => s,
            _ => 0,
        };
        let nanos = match get("nanos") {
            Some(ProtoValue::I32(n)) => i64::from(n),
            _ => 0,
        };
        return Value::Int64(
            seconds
                .saturating_mul(1000)
                .saturating_add(nanos / 1_000_000),
        );
    }
    let mut values = Vec::new();
    for slot in slots(&desc) {
        match slot {
            Slot::Field(f) => values.push(field_value(m, &f)),
            Slot::OneOf(o) => {
                if o.fields().any(|b| m.has_field(&b)) {
                    values.push(Value::Struct(
                        o.fields()
                            .map(|b| {
                                if m.has_field(&b) {
                                    field_value(m, &b)
                                } else {
                                    Value::Null
                                }
                            })
                            .collect(),
                    ));
                } else {
                    values.push(Value::Null);
                }
            }
        }
    }
    Value::Struct(values)
}

impl Converter for ProtobufConverter {
    fn to_connect(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<SchemaAndValue, ConvertError> {
        let Some(bytes) = bytes else {
            return Ok(SchemaAndValue::null());
        };
        let (id, payload) = split_frame(bytes).map_err(ConvertError::Serialization)?;
        let (indexes, body) = message_indexes(payload)?;
        let compiled = self
            .schemas
            .get_registered(id, |registered, source| compile(registered, source))?;
        let (desc, schema) = compiled.message(id, &indexes)?;
        let message = DynamicMessage::decode(desc, body)
            .map_err(|e| ConvertError::Serialization(format!("invalid Protobuf payload: {e}")))?;
        Ok(SchemaAndValue {
            schema: Some(schema),
            value: message_value(&message),
        })
    }

    fn class_name(&self) -> &'static str {
        CLASS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(HashMap<u32, RegisteredSchema>, HashMap<String, String>);

    impl SchemaSource for Fixed {
        fn schema_by_id(&self, id: u32) -> Result<RegisteredSchema, String> {
            self.0
                .get(&id)
                .cloned()
                .ok_or_else(|| format!("schema id {id} not found"))
        }
        fn schema_by_subject(
            &self,
            subject: &str,
            _version: i64,
        ) -> Result<RegisteredSchema, String> {
            self.1
                .get(subject)
                .map(|s| RegisteredSchema {
                    id: 0,
                    schema_type: "PROTOBUF".into(),
                    schema: s.clone(),
                    references: vec![],
                })
                .ok_or_else(|| format!("subject {subject} not found"))
        }
    }

    const ORDER: &str = r#"
        syntax = "proto3";
        package shop;
        import "google/protobuf/timestamp.proto";
        import "common.proto";
        message Other { string x = 1; }
        message Order {
          int64 id = 1;
          int32 qty = 2;
          uint32 small = 3;
          string note = 4;
          repeated string tags = 5;
          map<string, int64> counts = 6;
          google.protobuf.Timestamp at = 7;
          common.Money price = 8;
          Kind kind = 9;
          oneof payment { string card = 10; string iban = 11; }
          message Line { string sku = 1; }
          repeated Line lines = 12;
          enum Kind { A = 0; B = 1; }
        }
    "#;
    const COMMON: &str = r#"syntax = "proto3"; package common; message Money { int64 cents = 1; }"#;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn tag(field: u32, wire: u32, out: &mut Vec<u8>) {
        varint(u64::from(field << 3 | wire), out);
    }

    fn bytes_field(field: u32, data: &[u8], out: &mut Vec<u8>) {
        tag(field, 2, out);
        varint(data.len() as u64, out);
        out.extend_from_slice(data);
    }

    #[test]
    fn decodes_confluent_framed_protobuf_with_references() {
        let registered = RegisteredSchema {
            id: 7,
            schema_type: "PROTOBUF".into(),
            schema: ORDER.into(),
            references: vec![crate::registry::SchemaReference {
                name: "common.proto".into(),
                subject: "common".into(),
                version: 1,
            }],
        };
        let source = Fixed(
            HashMap::from([(7, registered)]),
            HashMap::from([("common".to_string(), COMMON.to_string())]),
        );
        let converter = ProtobufConverter::with_source(Arc::new(source));
        let mut body = Vec::new();
        tag(1, 0, &mut body);
        varint(42, &mut body);
        tag(3, 0, &mut body);
        varint(7, &mut body);
        bytes_field(5, b"a", &mut body);
        bytes_field(5, b"b", &mut body);
        let mut entry = Vec::new();
        bytes_field(1, b"k", &mut entry);
        tag(2, 0, &mut entry);
        varint(5, &mut entry);
        bytes_field(6, &entry, &mut body);
        let mut ts = Vec::new();
        tag(1, 0, &mut ts);
        varint(1_700_000_000, &mut ts);
        tag(2, 0, &mut ts);
        varint(250_000_000, &mut ts);
        bytes_field(7, &ts, &mut body);
        tag(9, 0, &mut body);
        varint(1, &mut body);
        bytes_field(11, b"DE00", &mut body);
        let mut line = Vec::new();
        bytes_field(1, b"s1", &mut line);
        bytes_field(12, &line, &mut body);
        // magic, id 7, message indexes [1] (the second message, Order)
        let mut frame = vec![0, 0, 0, 0, 7, 2, 2];
        frame.extend_from_slice(&body);

        let out = converter.to_connect("t", Some(&frame)).unwrap();
        let schema = out.schema.unwrap();
        assert_eq!(schema.name.as_deref(), Some("shop.Order"));
        let names: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "qty",
                "small",
                "note",
                "tags",
                "counts",
                "at",
                "price",
                "kind",
                "payment_0",
                "lines"
            ]
        );
        assert!(schema.fields.iter().all(|f| f.schema.optional));
        assert_eq!(
            schema.fields[6].schema.name.as_deref(),
            Some(logical::TIMESTAMP)
        );
        let Value::Struct(v) = out.value else {
            panic!("not a struct")
        };
        assert_eq!(v[0], Value::Int64(42));
        assert_eq!(v[1], Value::Int32(0), "unset scalars read as their default");
        assert_eq!(v[2], Value::Int64(7));
        assert_eq!(v[3], Value::String(String::new()));
        assert_eq!(
            v[4],
            Value::Array(vec![Value::String("a".into()), Value::String("b".into())])
        );
        assert_eq!(
            v[5],
            Value::Map(vec![(Value::String("k".into()), Value::Int64(5))])
        );
        assert_eq!(v[6], Value::Int64(1_700_000_000_250));
        assert_eq!(v[7], Value::Null, "unset messages read as null");
        assert_eq!(v[8], Value::String("B".into()));
        assert_eq!(
            v[9],
            Value::Struct(vec![Value::Null, Value::String("DE00".into())])
        );
        assert_eq!(
            v[10],
            Value::Array(vec![Value::Struct(vec![Value::String("s1".into())])])
        );
    }

    #[test]
    fn message_indexes_follow_the_confluent_encoding() {
        assert_eq!(message_indexes(&[0, 9]).unwrap(), (vec![0], &[9u8][..]));
        // count 2 (zig-zag 4), indexes 1 (2) and 0 (0)
        assert_eq!(
            message_indexes(&[4, 2, 0, 9]).unwrap(),
            (vec![1, 0], &[9u8][..])
        );
        assert!(message_indexes(&[4, 2]).is_err());
    }
}
