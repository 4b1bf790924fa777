//! Control-topic events in the Java sink's byte layout (`org.apache.iceberg.connect.events`):
//! magic `C2 01`, the writer schema as JSON in Java `writeUTF` form, then the Avro datum. Fields
//! are read by their Iceberg field id, so unknown ids are ignored and missing optional ones are
//! None. See `docs/control-topic-events.md`.

mod avro;
mod data_file;

use iceberg::spec::{Literal, NestedField, PrimitiveLiteral, PrimitiveType, StructType, Type};
use uuid::Uuid;

use avro::{AvroField, AvroType, AvroValue, Reader};
pub use data_file::WireDataFile;

/// Why an event could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("Unrecognized header bytes: {0:02X?}")]
    Header(Vec<u8>),
    #[error("truncated event")]
    Truncated,
    #[error("invalid event schema: {0}")]
    Schema(String),
    #[error("invalid event: {0}")]
    Decode(String),
    /// Over one of the bounds on what an event (its writer schema or its datum) may take to
    /// decode: see `docs/control-topic-events.md`, "Limits".
    #[error("event over a decoding limit: {0}")]
    Limit(String),
    #[error("cannot encode event: {0}")]
    Encode(String),
}

const MAGIC: [u8; 2] = [0xC2, 0x01];
const NS: &str = "org.apache.iceberg.connect.events";

/// `TableReference`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReference {
    pub catalog: String,
    pub namespace: Vec<String>,
    pub name: String,
    pub table_uuid: Option<Uuid>,
}

/// `TopicPartitionOffset`: `offset` is the next offset; the timestamp is the last record's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitionOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: Option<i64>,
    pub timestamp_micros: Option<i64>,
}

/// An event's payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    StartCommit {
        commit_id: Uuid,
    },
    DataWritten {
        commit_id: Uuid,
        table_reference: TableReference,
        partition_type: StructType,
        data_files: Vec<WireDataFile>,
        delete_files: Vec<WireDataFile>,
    },
    DataComplete {
        commit_id: Uuid,
        assignments: Vec<TopicPartitionOffset>,
    },
    CommitToTable {
        commit_id: Uuid,
        table_reference: TableReference,
        snapshot_id: Option<i64>,
        valid_through_ts_micros: Option<i64>,
    },
    CommitComplete {
        commit_id: Uuid,
        valid_through_ts_micros: Option<i64>,
    },
}

impl Payload {
    fn type_id(&self) -> i32 {
        match self {
            Payload::StartCommit { .. } => 0,
            Payload::DataWritten { .. } => 1,
            Payload::DataComplete { .. } => 2,
            Payload::CommitToTable { .. } => 3,
            Payload::CommitComplete { .. } => 4,
        }
    }
}

/// An event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Uuid,
    pub timestamp_micros: i64,
    pub group_id: String,
    pub payload: Payload,
}

// ------------------------------------------------------------------------------ schema pieces

fn uuid_type() -> AvroType {
    AvroType::Fixed {
        name: "uuid_fixed".into(),
        size: 16,
        logical: Some("uuid".into()),
        precision: 0,
        scale: 0,
    }
}

fn timestamptz() -> AvroType {
    AvroType::Long {
        logical: Some("timestamp-micros".into()),
        adjust_to_utc: true,
    }
}

fn optional(ty: AvroType) -> AvroType {
    AvroType::Union(vec![AvroType::Null, ty])
}

fn field(name: &str, id: i32, ty: AvroType) -> AvroField {
    AvroField {
        name: name.into(),
        field_id: Some(id),
        original_name: None,
        ty,
    }
}

fn int() -> AvroType {
    AvroType::Int { logical: None }
}

fn long() -> AvroType {
    AvroType::Long {
        logical: None,
        adjust_to_utc: false,
    }
}

fn table_reference_type() -> AvroType {
    AvroType::Record {
        name: format!("{NS}.TableReference"),
        fields: vec![
            field("catalog", 10600, AvroType::String),
            field(
                "namespace",
                10601,
                AvroType::Array {
                    items: Box::new(AvroType::String),
                    element_id: Some(10602),
                    logical_map: false,
                },
            ),
            field("name", 10603, AvroType::String),
            field("table_uuid", 10604, optional(uuid_type())),
        ],
    }
}

fn topic_partition_offset_type() -> AvroType {
    AvroType::Record {
        name: format!("{NS}.TopicPartitionOffset"),
        fields: vec![
            field("topic", 10700, AvroType::String),
            field("partition", 10701, int()),
            field("offset", 10702, optional(long())),
            field("timestamp", 10703, optional(timestamptz())),
        ],
    }
}

fn payload_type(p: &Payload) -> Result<AvroType, EventError> {
    let (name, fields) = match p {
        Payload::StartCommit { .. } => {
            ("StartCommit", vec![field("commit_id", 10200, uuid_type())])
        }
        Payload::DataWritten { partition_type, .. } => {
            let file = data_file::avro_type(partition_type)?;
            // Java's schema cache gives the delete-file list the same record: the schema
            // prints it as a reference by name (avro::to_json defines a name once).
            let delete_file = file.clone();
            (
                "DataWritten",
                vec![
                    field("commit_id", 10300, uuid_type()),
                    field("table_reference", 10301, table_reference_type()),
                    field(
                        "data_files",
                        10302,
                        optional(AvroType::Array {
                            items: Box::new(file),
                            element_id: Some(10303),
                            logical_map: false,
                        }),
                    ),
                    field(
                        "delete_files",
                        10304,
                        optional(AvroType::Array {
                            items: Box::new(delete_file),
                            element_id: Some(10305),
                            logical_map: false,
                        }),
                    ),
                ],
            )
        }
        Payload::DataComplete { .. } => (
            "DataComplete",
            vec![
                field("commit_id", 10100, uuid_type()),
                field(
                    "assignments",
                    10101,
                    optional(AvroType::Array {
                        items: Box::new(topic_partition_offset_type()),
                        element_id: Some(10102),
                        logical_map: false,
                    }),
                ),
            ],
        ),
        Payload::CommitToTable { .. } => (
            "CommitToTable",
            vec![
                field("commit_id", 10400, uuid_type()),
                field("table_reference", 10401, table_reference_type()),
                field("snapshot_id", 10402, optional(long())),
                field("valid_through_ts", 10403, optional(timestamptz())),
            ],
        ),
        Payload::CommitComplete { .. } => (
            "CommitComplete",
            vec![
                field("commit_id", 10000, uuid_type()),
                field("valid_through_ts", 10001, optional(timestamptz())),
            ],
        ),
    };
    Ok(AvroType::Record {
        name: format!("{NS}.{name}"),
        fields,
    })
}

fn event_type(p: &Payload) -> Result<AvroType, EventError> {
    Ok(AvroType::Record {
        name: format!("{NS}.Event"),
        fields: vec![
            field("id", 10500, uuid_type()),
            field("type", 10501, int()),
            field("timestamp", 10502, timestamptz()),
            field("group_id", 10503, AvroType::String),
            field("payload", 10504, payload_type(p)?),
        ],
    })
}

// ------------------------------------------------------------------------------------ values

fn uuid_value(u: &Uuid) -> AvroValue {
    AvroValue::Fixed(u.as_bytes().to_vec())
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> AvroValue) -> AvroValue {
    v.map_or(AvroValue::Null, f)
}

fn table_reference_value(t: &TableReference) -> AvroValue {
    AvroValue::Record(vec![
        AvroValue::String(t.catalog.clone()),
        AvroValue::Array(
            t.namespace
                .iter()
                .map(|n| AvroValue::String(n.clone()))
                .collect(),
        ),
        AvroValue::String(t.name.clone()),
        opt(t.table_uuid.as_ref(), uuid_value),
    ])
}

fn payload_value(p: &Payload) -> Result<AvroValue, EventError> {
    Ok(match p {
        Payload::StartCommit { commit_id } => AvroValue::Record(vec![uuid_value(commit_id)]),
        Payload::DataWritten {
            commit_id,
            table_reference,
            partition_type,
            data_files,
            delete_files,
        } => AvroValue::Record(vec![
            uuid_value(commit_id),
            table_reference_value(table_reference),
            AvroValue::Array(
                data_files
                    .iter()
                    .map(|f| f.to_avro(partition_type))
                    .collect::<Result<_, _>>()?,
            ),
            if delete_files.is_empty() {
                AvroValue::Null
            } else {
                AvroValue::Array(
                    delete_files
                        .iter()
                        .map(|f| f.to_avro(partition_type))
                        .collect::<Result<_, _>>()?,
                )
            },
        ]),
        Payload::DataComplete {
            commit_id,
            assignments,
        } => AvroValue::Record(vec![
            uuid_value(commit_id),
            AvroValue::Array(
                assignments
                    .iter()
                    .map(|a| {
                        AvroValue::Record(vec![
                            AvroValue::String(a.topic.clone()),
                            AvroValue::Int(a.partition),
                            opt(a.offset, AvroValue::Long),
                            opt(a.timestamp_micros, AvroValue::Long),
                        ])
                    })
                    .collect(),
            ),
        ]),
        Payload::CommitToTable {
            commit_id,
            table_reference,
            snapshot_id,
            valid_through_ts_micros,
        } => AvroValue::Record(vec![
            uuid_value(commit_id),
            table_reference_value(table_reference),
            opt(*snapshot_id, AvroValue::Long),
            opt(*valid_through_ts_micros, AvroValue::Long),
        ]),
        Payload::CommitComplete {
            commit_id,
            valid_through_ts_micros,
        } => AvroValue::Record(vec![
            uuid_value(commit_id),
            opt(*valid_through_ts_micros, AvroValue::Long),
        ]),
    })
}

/// Java `DataOutputStream.writeUTF`: 2-byte length, then modified UTF-8.
fn write_utf(s: &str, out: &mut Vec<u8>) -> Result<(), EventError> {
    let mut body = Vec::with_capacity(s.len());
    for unit in s.encode_utf16() {
        match unit {
            0x0001..=0x007F => body.push(unit as u8),
            0x0000 | 0x0080..=0x07FF => {
                body.push(0xC0 | ((unit >> 6) & 0x1F) as u8);
                body.push(0x80 | (unit & 0x3F) as u8);
            }
            _ => {
                body.push(0xE0 | ((unit >> 12) & 0x0F) as u8);
                body.push(0x80 | ((unit >> 6) & 0x3F) as u8);
                body.push(0x80 | (unit & 0x3F) as u8);
            }
        }
    }
    let len = u16::try_from(body.len())
        .map_err(|_| EventError::Encode(format!("schema of {} bytes exceeds 65535", body.len())))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(())
}

fn read_utf(bytes: &[u8]) -> Result<(String, usize), EventError> {
    let len = u16::from_be_bytes(
        bytes
            .get(..2)
            .ok_or(EventError::Truncated)?
            .try_into()
            .map_err(|_| EventError::Truncated)?,
    ) as usize;
    let body = bytes.get(2..2 + len).ok_or(EventError::Truncated)?;
    let mut units = Vec::with_capacity(len);
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        let (unit, n) = if b & 0x80 == 0 {
            (u16::from(b), 1)
        } else if b & 0xE0 == 0xC0 {
            let b2 = *body.get(i + 1).ok_or(EventError::Truncated)?;
            ((u16::from(b & 0x1F) << 6) | u16::from(b2 & 0x3F), 2)
        } else {
            let b2 = *body.get(i + 1).ok_or(EventError::Truncated)?;
            let b3 = *body.get(i + 2).ok_or(EventError::Truncated)?;
            (
                (u16::from(b & 0x0F) << 12) | (u16::from(b2 & 0x3F) << 6) | u16::from(b3 & 0x3F),
                3,
            )
        };
        units.push(unit);
        i += n;
    }
    let s =
        String::from_utf16(&units).map_err(|e| EventError::Decode(format!("schema text: {e}")))?;
    Ok((s, 2 + len))
}

/// Encodes an event.
pub fn encode(event: &Event) -> Result<Vec<u8>, EventError> {
    let schema = event_type(&event.payload)?;
    let value = AvroValue::Record(vec![
        uuid_value(&event.id),
        AvroValue::Int(event.payload.type_id()),
        AvroValue::Long(event.timestamp_micros),
        AvroValue::String(event.group_id.clone()),
        payload_value(&event.payload)?,
    ]);
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(&MAGIC);
    let json = serde_json::to_string(&avro::to_json(&schema))
        .map_err(|e| EventError::Encode(e.to_string()))?;
    write_utf(&json, &mut out)?;
    avro::encode(&schema, &value, &mut out)?;
    Ok(out)
}

// ------------------------------------------------------------------------------- decoding

/// A decoded record: its type and values, read by field id.
struct Rec<'a> {
    name: &'a str,
    fields: &'a [AvroField],
    values: Vec<AvroValue>,
}

impl<'a> Rec<'a> {
    fn new(ty: &'a AvroType, v: AvroValue) -> Result<Rec<'a>, EventError> {
        match (ty, v) {
            (AvroType::Record { name, fields }, AvroValue::Record(values)) => Ok(Rec {
                name,
                fields,
                values,
            }),
            (AvroType::Union(branches), v) => {
                let branch = branches
                    .iter()
                    .find(|b| matches!(b, AvroType::Record { .. }))
                    .ok_or_else(|| EventError::Decode("expected a record".into()))?;
                Rec::new(branch, v)
            }
            _ => Err(EventError::Decode("expected a record".into())),
        }
    }

    fn get(&self, id: i32) -> Option<(&'a AvroType, &AvroValue)> {
        self.fields
            .iter()
            .position(|f| f.field_id == Some(id))
            .and_then(|i| self.values.get(i).map(|v| (&self.fields[i].ty, v)))
    }

    fn take(&mut self, id: i32) -> Option<(&'a AvroType, AvroValue)> {
        let i = self.fields.iter().position(|f| f.field_id == Some(id))?;
        let v = std::mem::replace(self.values.get_mut(i)?, AvroValue::Null);
        Some((&self.fields[i].ty, v))
    }

    fn required(&self, id: i32) -> Result<&AvroValue, EventError> {
        match self.get(id) {
            Some((_, v)) if *v != AvroValue::Null => Ok(v),
            _ => Err(EventError::Decode(format!(
                "{}: required field {id} is missing",
                self.name
            ))),
        }
    }

    fn uuid(&self, id: i32) -> Result<Uuid, EventError> {
        match self.required(id)? {
            AvroValue::Fixed(b) => {
                Uuid::from_slice(b).map_err(|e| EventError::Decode(e.to_string()))
            }
            AvroValue::String(s) => {
                Uuid::parse_str(s).map_err(|e| EventError::Decode(e.to_string()))
            }
            other => Err(EventError::Decode(format!(
                "field {id}: expected a uuid, found {}",
                other.kind()
            ))),
        }
    }

    fn opt_uuid(&self, id: i32) -> Result<Option<Uuid>, EventError> {
        match self.get(id) {
            None | Some((_, AvroValue::Null)) => Ok(None),
            Some(_) => self.uuid(id).map(Some),
        }
    }

    fn string(&self, id: i32) -> Result<String, EventError> {
        match self.required(id)? {
            AvroValue::String(s) => Ok(s.clone()),
            other => Err(EventError::Decode(format!(
                "field {id}: expected a string, found {}",
                other.kind()
            ))),
        }
    }

    fn opt_long(&self, id: i32) -> Option<i64> {
        match self.get(id) {
            Some((_, AvroValue::Long(l))) => Some(*l),
            Some((_, AvroValue::Int(i))) => Some(i64::from(*i)),
            _ => None,
        }
    }

    fn int(&self, id: i32) -> Result<i32, EventError> {
        match self.required(id)? {
            AvroValue::Int(i) => Ok(*i),
            other => Err(EventError::Decode(format!(
                "field {id}: expected an int, found {}",
                other.kind()
            ))),
        }
    }
}

fn table_reference(ty: &AvroType, v: AvroValue) -> Result<TableReference, EventError> {
    let r = Rec::new(ty, v)?;
    let namespace = match r.required(10601)? {
        AvroValue::Array(items) => items
            .iter()
            .map(|i| match i {
                AvroValue::String(s) => Ok(s.clone()),
                _ => Err(EventError::Decode("namespace element".into())),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(EventError::Decode("namespace".into())),
    };
    Ok(TableReference {
        catalog: r.string(10600)?,
        namespace,
        name: r.string(10603)?,
        table_uuid: r.opt_uuid(10604)?,
    })
}

fn array_items(
    ty: &AvroType,
    v: AvroValue,
) -> Result<(Option<&AvroType>, Vec<AvroValue>), EventError> {
    let ty = match ty {
        AvroType::Union(branches) => branches
            .iter()
            .find(|b| !matches!(b, AvroType::Null))
            .unwrap_or(ty),
        other => other,
    };
    match (ty, v) {
        (_, AvroValue::Null) => Ok((None, Vec::new())),
        (AvroType::Array { items, .. }, AvroValue::Array(values)) => Ok((Some(items), values)),
        _ => Err(EventError::Decode("expected an array".into())),
    }
}

/// Decodes an event; events for unknown payload types are an error naming the record name.
pub fn decode(bytes: &[u8]) -> Result<Event, EventError> {
    decode_if(bytes, |_| true)?.ok_or_else(|| EventError::Decode("event filtered out".into()))
}

/// Decodes an event of the consumer group `group` (the `group_id` every event carries); None,
/// without decoding its payload, for an event of another group. Every connector sharing a
/// control topic reads every other's events, so this is most of what a reader decodes.
pub fn decode_for_group(bytes: &[u8], group: &str) -> Result<Option<Event>, EventError> {
    decode_if(bytes, |g| g == group)
}

/// Writer schemas parsed before, by their bytes as sent: every event of a kind carries the
/// same schema text, and parsing its JSON was most of a decode's cost. A schema over the limits
/// of `avro::parse` is refused, and not kept.
fn writer_schema(bytes: &[u8]) -> Result<(std::sync::Arc<AvroType>, usize), EventError> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    /// Distinct schemas are a handful (one per event kind and partition type); the cache is
    /// emptied if a writer ever sends more, or schemas of more than `MAX_CACHED_BYTES` in all.
    const MAX_CACHED: usize = 256;
    /// Bytes of the cached schemas: their text and their parsed trees as `avro::parse`
    /// estimates them. A `DataWritten` schema takes tens of KB; one at the limits, under 2 MB.
    const MAX_CACHED_BYTES: usize = 32 << 20;
    #[derive(Default)]
    struct Cache {
        schemas: HashMap<Vec<u8>, Arc<AvroType>>,
        bytes: usize,
    }
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let len = u16::from_be_bytes([
        *bytes.first().ok_or(EventError::Truncated)?,
        *bytes.get(1).ok_or(EventError::Truncated)?,
    ]) as usize;
    let key = bytes.get(2..2 + len).ok_or(EventError::Truncated)?;
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(schema) = cache.lock().ok().and_then(|c| c.schemas.get(key).cloned()) {
        return Ok((schema, 2 + len));
    }
    let (schema_text, used) = read_utf(bytes)?;
    let schema_json: serde_json::Value =
        serde_json::from_str(&schema_text).map_err(|e| EventError::Schema(e.to_string()))?;
    let (schema, schema_bytes) = avro::parse(&schema_json)?;
    let schema = Arc::new(schema);
    let size = schema_bytes.saturating_add(key.len());
    if let Ok(mut c) = cache.lock() {
        if c.schemas.len() >= MAX_CACHED || c.bytes.saturating_add(size) > MAX_CACHED_BYTES {
            c.schemas.clear();
            c.bytes = 0;
        }
        c.bytes = c.bytes.saturating_add(size);
        c.schemas.insert(key.to_vec(), schema.clone());
    }
    Ok((schema, used))
}

/// The id of `Event.group_id`.
const GROUP_ID_FIELD: i32 = 10503;

/// Decodes an event whose group `wanted` accepts; None, without decoding its payload, for any
/// other.
pub fn decode_if(bytes: &[u8], wanted: impl Fn(&str) -> bool) -> Result<Option<Event>, EventError> {
    if bytes.get(..2) != Some(&MAGIC[..]) {
        return Err(EventError::Header(bytes.iter().take(2).copied().collect()));
    }
    let (schema, used) = writer_schema(&bytes[2..])?;
    let mut reader = Reader::new(&bytes[2 + used..]);
    // The event's fields one by one, stopping at a group id that is not wanted: the payload
    // (files, partition values) is never read for other groups' events.
    let datum = match schema.as_ref() {
        AvroType::Record { fields, .. } => {
            let mut values = Vec::with_capacity(fields.len());
            for field in fields {
                let value = reader.read(&field.ty)?;
                if field.field_id == Some(GROUP_ID_FIELD) {
                    if let AvroValue::String(group) = &value {
                        if !wanted(group) {
                            return Ok(None);
                        }
                    }
                }
                values.push(value);
            }
            AvroValue::Record(values)
        }
        other => reader.read(other)?,
    };
    let mut event = Rec::new(&schema, datum)?;
    let id = event.uuid(10500)?;
    let type_id = event.int(10501)?;
    let timestamp_micros = event
        .opt_long(10502)
        .ok_or_else(|| EventError::Decode("Event: timestamp missing".into()))?;
    let group_id = event.string(GROUP_ID_FIELD)?;
    if !wanted(&group_id) {
        return Ok(None);
    }
    let (payload_ty, payload_v) = event
        .take(10504)
        .ok_or_else(|| EventError::Decode("Event: payload missing".into()))?;
    let mut p = Rec::new(payload_ty, payload_v)?;
    let short = p.name.rsplit('.').next().unwrap_or(p.name);
    let payload = match (type_id, short) {
        (0, _) | (_, "StartCommit") => Payload::StartCommit {
            commit_id: p.uuid(10200)?,
        },
        (1, _) | (_, "DataWritten") => {
            let commit_id = p.uuid(10300)?;
            let (tr_ty, tr_v) = p
                .take(10301)
                .ok_or_else(|| EventError::Decode("DataWritten: table_reference missing".into()))?;
            let table_reference = table_reference(tr_ty, tr_v)?;
            let mut partition_type = StructType::new(Vec::new());
            let mut read_files =
                |id: i32, p: &mut Rec<'_>| -> Result<Vec<WireDataFile>, EventError> {
                    let Some((ty, v)) = p.take(id) else {
                        return Ok(Vec::new());
                    };
                    let (items_ty, values) = array_items(ty, v)?;
                    let Some(items_ty) = items_ty else {
                        return Ok(Vec::new());
                    };
                    let mut files = Vec::with_capacity(values.len());
                    for v in values {
                        let (file, pt) = WireDataFile::from_avro(items_ty, v)?;
                        partition_type = pt;
                        files.push(file);
                    }
                    Ok(files)
                };
            let data_files = read_files(10302, &mut p)?;
            let delete_files = read_files(10304, &mut p)?;
            Payload::DataWritten {
                commit_id,
                table_reference,
                partition_type,
                data_files,
                delete_files,
            }
        }
        (2, _) | (_, "DataComplete") => {
            let commit_id = p.uuid(10100)?;
            let assignments = match p.take(10101) {
                None => Vec::new(),
                Some((ty, v)) => {
                    let (items_ty, values) = array_items(ty, v)?;
                    let mut out = Vec::with_capacity(values.len());
                    if let Some(items_ty) = items_ty {
                        for v in values {
                            let r = Rec::new(items_ty, v)?;
                            out.push(TopicPartitionOffset {
                                topic: r.string(10700)?,
                                partition: r.int(10701)?,
                                offset: r.opt_long(10702),
                                timestamp_micros: r.opt_long(10703),
                            });
                        }
                    }
                    out
                }
            };
            Payload::DataComplete {
                commit_id,
                assignments,
            }
        }
        (3, _) | (_, "CommitToTable") => {
            let commit_id = p.uuid(10400)?;
            let (tr_ty, tr_v) = p.take(10401).ok_or_else(|| {
                EventError::Decode("CommitToTable: table_reference missing".into())
            })?;
            Payload::CommitToTable {
                commit_id,
                table_reference: table_reference(tr_ty, tr_v)?,
                snapshot_id: p.opt_long(10402),
                valid_through_ts_micros: p.opt_long(10403),
            }
        }
        (4, _) | (_, "CommitComplete") => Payload::CommitComplete {
            commit_id: p.uuid(10000)?,
            valid_through_ts_micros: p.opt_long(10001),
        },
        (t, name) => {
            return Err(EventError::Decode(format!(
                "unknown event payload {name} (type {t})"
            )))
        }
    };
    Ok(Some(Event {
        id,
        timestamp_micros,
        group_id,
        payload,
    }))
}

// ------------------------------------------------------------------------- partition values

/// Avro type of a partition field's (or any primitive) Iceberg type.
pub(crate) fn primitive_avro(t: &PrimitiveType) -> Result<AvroType, EventError> {
    Ok(match t {
        PrimitiveType::Boolean => AvroType::Boolean,
        PrimitiveType::Int => int(),
        PrimitiveType::Long => long(),
        PrimitiveType::Float => AvroType::Float,
        PrimitiveType::Double => AvroType::Double,
        PrimitiveType::Date => AvroType::Int {
            logical: Some("date".into()),
        },
        PrimitiveType::Time => AvroType::Long {
            logical: Some("time-micros".into()),
            adjust_to_utc: false,
        },
        PrimitiveType::Timestamp => AvroType::Long {
            logical: Some("timestamp-micros".into()),
            adjust_to_utc: false,
        },
        PrimitiveType::Timestamptz => timestamptz(),
        PrimitiveType::String => AvroType::String,
        PrimitiveType::Uuid => uuid_type(),
        PrimitiveType::Binary => AvroType::Bytes,
        PrimitiveType::Fixed(n) => AvroType::Fixed {
            name: format!("fixed_{n}"),
            size: *n as usize,
            logical: None,
            precision: 0,
            scale: 0,
        },
        PrimitiveType::Decimal { precision, scale } => AvroType::Fixed {
            name: format!("decimal_{precision}_{scale}"),
            size: decimal_bytes(*precision),
            logical: Some("decimal".into()),
            precision: *precision,
            scale: *scale,
        },
        other => {
            return Err(EventError::Encode(format!(
                "partition type {other} is not supported"
            )))
        }
    })
}

/// Iceberg `TypeUtil.decimalRequiredBytes`.
fn decimal_bytes(precision: u32) -> usize {
    (1..=16)
        .find(|n| (8 * n - 1) as f64 * 2f64.log10() >= f64::from(precision))
        .unwrap_or(16)
}

pub(crate) fn literal_to_avro(t: &PrimitiveType, l: &Literal) -> Result<AvroValue, EventError> {
    let Literal::Primitive(p) = l else {
        return Err(EventError::Encode(
            "nested partition values are not supported".into(),
        ));
    };
    Ok(match (t, p) {
        (_, PrimitiveLiteral::Boolean(b)) => AvroValue::Boolean(*b),
        (_, PrimitiveLiteral::Int(i)) => AvroValue::Int(*i),
        (_, PrimitiveLiteral::Long(l)) => AvroValue::Long(*l),
        (_, PrimitiveLiteral::Float(f)) => AvroValue::Float(f.0),
        (_, PrimitiveLiteral::Double(d)) => AvroValue::Double(d.0),
        (_, PrimitiveLiteral::String(s)) => AvroValue::String(s.clone()),
        (PrimitiveType::Fixed(_), PrimitiveLiteral::Binary(b)) => AvroValue::Fixed(b.clone()),
        (_, PrimitiveLiteral::Binary(b)) => AvroValue::Bytes(b.clone()),
        (_, PrimitiveLiteral::UInt128(u)) => AvroValue::Fixed(u.to_be_bytes().to_vec()),
        (PrimitiveType::Decimal { precision, .. }, PrimitiveLiteral::Int128(i)) => {
            let n = decimal_bytes(*precision);
            AvroValue::Fixed(i.to_be_bytes()[16 - n..].to_vec())
        }
        (t, p) => {
            return Err(EventError::Encode(format!(
                "partition value {p:?} does not fit {t}"
            )))
        }
    })
}

pub(crate) fn avro_to_literal(
    ty: &AvroType,
    v: &AvroValue,
) -> Result<(PrimitiveType, Option<Literal>), EventError> {
    let base = match ty {
        AvroType::Union(b) => b
            .iter()
            .find(|t| !matches!(t, AvroType::Null))
            .unwrap_or(ty),
        t => t,
    };
    let prim = match base {
        AvroType::Boolean => PrimitiveType::Boolean,
        AvroType::Int { logical: Some(l) } if l == "date" => PrimitiveType::Date,
        AvroType::Int { .. } => PrimitiveType::Int,
        AvroType::Long {
            logical: Some(l),
            adjust_to_utc,
        } if l == "timestamp-micros" => {
            if *adjust_to_utc {
                PrimitiveType::Timestamptz
            } else {
                PrimitiveType::Timestamp
            }
        }
        AvroType::Long {
            logical: Some(l), ..
        } if l == "time-micros" => PrimitiveType::Time,
        AvroType::Long { .. } => PrimitiveType::Long,
        AvroType::Float => PrimitiveType::Float,
        AvroType::Double => PrimitiveType::Double,
        AvroType::String => PrimitiveType::String,
        AvroType::Bytes => PrimitiveType::Binary,
        AvroType::Fixed {
            logical: Some(l), ..
        } if l == "uuid" => PrimitiveType::Uuid,
        AvroType::Fixed {
            logical: Some(l),
            precision,
            scale,
            ..
        } if l == "decimal" => PrimitiveType::Decimal {
            precision: *precision,
            scale: *scale,
        },
        AvroType::Fixed { size, .. } => PrimitiveType::Fixed(*size as u64),
        other => {
            return Err(EventError::Decode(format!(
                "unsupported partition type {}",
                other.kind()
            )))
        }
    };
    let lit = match v {
        AvroValue::Null => None,
        AvroValue::Boolean(b) => Some(Literal::bool(*b)),
        AvroValue::Int(i) => Some(Literal::Primitive(PrimitiveLiteral::Int(*i))),
        AvroValue::Long(l) => Some(Literal::Primitive(PrimitiveLiteral::Long(*l))),
        AvroValue::Float(f) => Some(Literal::float(*f)),
        AvroValue::Double(d) => Some(Literal::double(*d)),
        AvroValue::String(s) => Some(Literal::string(s.clone())),
        AvroValue::Bytes(b) => Some(Literal::binary(b.clone())),
        AvroValue::Fixed(b) => Some(match &prim {
            PrimitiveType::Uuid => {
                Literal::Primitive(PrimitiveLiteral::UInt128(u128::from_be_bytes(
                    b.as_slice()
                        .try_into()
                        .map_err(|_| EventError::Decode("uuid of wrong size".into()))?,
                )))
            }
            PrimitiveType::Decimal { .. } => {
                let fill = if b.first().is_some_and(|x| x & 0x80 != 0) {
                    0xff
                } else {
                    0
                };
                let mut buf = [fill; 16];
                buf[16 - b.len().min(16)..].copy_from_slice(&b[b.len().saturating_sub(16)..]);
                Literal::Primitive(PrimitiveLiteral::Int128(i128::from_be_bytes(buf)))
            }
            _ => Literal::binary(b.clone()),
        }),
        other => {
            return Err(EventError::Decode(format!(
                "unsupported partition value {}",
                other.kind()
            )))
        }
    };
    Ok((prim, lit))
}

/// Rebuilds a partition type from the fields of a `PartitionData` record.
pub(crate) fn partition_type_of(fields: &[AvroField]) -> Result<StructType, EventError> {
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let (prim, _) = avro_to_literal(&f.ty, &AvroValue::Null)?;
        let id = f.field_id.ok_or_else(|| {
            EventError::Decode(format!("partition field {} has no field-id", f.name))
        })?;
        let name = f.original_name.clone().unwrap_or_else(|| f.name.clone());
        out.push(std::sync::Arc::new(NestedField::optional(
            id,
            name,
            Type::Primitive(prim),
        )));
    }
    Ok(StructType::new(out))
}

#[cfg(test)]
mod tests;
