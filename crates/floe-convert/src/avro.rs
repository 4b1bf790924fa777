//! `io.confluent.connect.avro.AvroConverter`: Confluent-framed Avro with schemas from a Schema
//! Registry, mapped to Connect schemas and values as Confluent's `AvroData` does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value as AvroValue;
use apache_avro::Schema as Avro;
use floe_data::decimal::unscaled_from_be_bytes;
use floe_data::{logical, Field, Schema, SchemaRef, SchemaType, Value};

use crate::registry::{split_frame, ParsedSchemas, RegistryClient, SchemaSource};
use crate::{
    ConfigError, ConvertError, Converter, FlatField, FlatKind, FlatRecord, RawValues,
    SchemaAndValue,
};

pub(crate) const CLASS: &str = "io.confluent.connect.avro.AvroConverter";

struct Parsed {
    avro: Avro,
    names: HashMap<Name, Avro>,
    connect: SchemaRef,
    flat: Option<Arc<FlatRecord>>,
}

/// The Avro converter.
pub struct AvroConverter {
    schemas: ParsedSchemas<Parsed>,
}

impl AvroConverter {
    /// Configures from converter properties (`schema.registry.url`, auth keys).
    pub fn configure(props: &BTreeMap<String, String>) -> Result<AvroConverter, ConfigError> {
        Ok(AvroConverter::with_source(Arc::new(
            RegistryClient::configure(props)?,
        )))
    }

    /// A converter reading schemas from `source`.
    pub fn with_source(source: Arc<dyn SchemaSource>) -> AvroConverter {
        AvroConverter {
            schemas: ParsedSchemas::new(source, "AVRO"),
        }
    }

    fn parsed(&self, id: u32) -> Result<Arc<Parsed>, ConvertError> {
        self.schemas.get(id, |text| {
            let invalid = |e: apache_avro::Error| {
                ConvertError::Data(format!("Invalid Avro schema {id}: {e}"))
            };
            let avro = Avro::parse_str(text).map_err(invalid)?;
            let names: HashMap<Name, Avro> = ResolvedSchema::try_from(&avro)
                .map_err(invalid)?
                .get_names()
                .iter()
                .map(|(n, s)| (n.clone(), (*s).clone()))
                .collect();
            let connect = Arc::new(to_connect_schema(&avro, &names, false, 0)?);
            let flat = flat_record(&avro).map(Arc::new);
            Ok(Parsed {
                avro,
                names,
                connect,
                flat,
            })
        })
    }
}

impl Converter for AvroConverter {
    fn to_connect(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<SchemaAndValue, ConvertError> {
        let Some(bytes) = bytes else {
            return Ok(SchemaAndValue::null());
        };
        let (id, mut payload) = split_frame(bytes).map_err(ConvertError::Serialization)?;
        let parsed = self.parsed(id)?;
        let datum =
            apache_avro::from_avro_datum(&parsed.avro, &mut payload, None).map_err(|e| {
                ConvertError::Serialization(format!(
                    "Error deserializing Avro message for id {id}: {e}"
                ))
            })?;
        let value = to_connect_value(&parsed.avro, &parsed.names, datum, 0)?;
        Ok(SchemaAndValue {
            schema: Some(parsed.connect.clone()),
            value,
        })
    }

    fn class_name(&self) -> &'static str {
        CLASS
    }

    fn raw_values(&self) -> Option<RawValues> {
        Some(RawValues::Avro)
    }

    fn flat_avro(&self, id: u32) -> Option<Arc<FlatRecord>> {
        self.parsed(id).ok().and_then(|p| p.flat.clone())
    }
}

/// The [`FlatRecord`] layout of a record schema whose fields all convert to Connect primitives,
/// Timestamp or Date (as [`to_connect_schema`] and [`to_connect_value`] map them).
fn flat_record(schema: &Avro) -> Option<FlatRecord> {
    let Avro::Record(r) = schema else {
        return None;
    };
    let kind = |s: &Avro| match s {
        Avro::Boolean => Some(FlatKind::Boolean),
        Avro::Int => Some(FlatKind::Int),
        Avro::Long
        | Avro::TimeMicros
        | Avro::TimestampMicros
        | Avro::TimestampNanos
        | Avro::LocalTimestampMillis
        | Avro::LocalTimestampMicros
        | Avro::LocalTimestampNanos => Some(FlatKind::Long),
        Avro::Float => Some(FlatKind::Float),
        Avro::Double => Some(FlatKind::Double),
        Avro::String => Some(FlatKind::String),
        Avro::TimestampMillis => Some(FlatKind::TimestampMillis),
        Avro::Date => Some(FlatKind::Date),
        _ => None,
    };
    let fields = r
        .fields
        .iter()
        .map(|f| {
            let (kind, null_branch) = match &f.schema {
                Avro::Union(u) => match u.variants() {
                    [Avro::Null, other] => (kind(other)?, Some(0)),
                    [other, Avro::Null] => (kind(other)?, Some(1)),
                    _ => return None,
                },
                other => (kind(other)?, None),
            };
            Some(FlatField {
                name: f.name.clone(),
                kind,
                null_branch,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(FlatRecord { fields })
}

const MAX_DEPTH: usize = 64;

fn deep(depth: usize) -> Result<(), ConvertError> {
    if depth > MAX_DEPTH {
        return Err(ConvertError::Data("Avro schema nests too deeply".into()));
    }
    Ok(())
}

fn resolve<'a>(schema: &'a Avro, names: &'a HashMap<Name, Avro>) -> Result<&'a Avro, ConvertError> {
    match schema {
        Avro::Ref { name } => names.get(name).ok_or_else(|| {
            ConvertError::Data(format!("Unknown Avro type {}", name.fullname(None)))
        }),
        other => Ok(other),
    }
}

fn attr_str(attrs: &BTreeMap<String, serde_json::Value>, key: &str) -> Option<String> {
    attrs.get(key).and_then(|v| v.as_str()).map(str::to_string)
}

/// Confluent `AvroData.toConnectSchema`.
fn to_connect_schema(
    schema: &Avro,
    names: &HashMap<Name, Avro>,
    optional: bool,
    depth: usize,
) -> Result<Schema, ConvertError> {
    deep(depth)?;
    let schema = resolve(schema, names)?;
    let mut s = match schema {
        Avro::Null => {
            return Err(ConvertError::Data(
                "A null Avro schema outside a union is not supported".into(),
            ))
        }
        Avro::Boolean => Schema::new(SchemaType::Boolean),
        Avro::Int => Schema::new(SchemaType::Int32),
        Avro::Long => Schema::new(SchemaType::Int64),
        Avro::Float => Schema::new(SchemaType::Float32),
        Avro::Double => Schema::new(SchemaType::Float64),
        Avro::Bytes => Schema::new(SchemaType::Bytes),
        Avro::String | Avro::Uuid => Schema::new(SchemaType::String),
        Avro::Date => Schema::new(SchemaType::Int32).named(logical::DATE),
        Avro::TimeMillis => Schema::new(SchemaType::Int32).named(logical::TIME),
        Avro::TimeMicros => Schema::new(SchemaType::Int64),
        Avro::TimestampMillis => Schema::new(SchemaType::Int64).named(logical::TIMESTAMP),
        Avro::TimestampMicros
        | Avro::TimestampNanos
        | Avro::LocalTimestampMillis
        | Avro::LocalTimestampMicros
        | Avro::LocalTimestampNanos => Schema::new(SchemaType::Int64),
        Avro::Decimal(d) => {
            let mut s = Schema::decimal(d.scale as i32);
            s.parameters
                .insert("connect.decimal.precision".into(), d.precision.to_string());
            s
        }
        Avro::BigDecimal | Avro::Duration => Schema::new(SchemaType::Bytes),
        Avro::Fixed(f) => {
            let mut s = Schema::new(SchemaType::Bytes);
            s.name = Some(f.name.fullname(None));
            s.parameters
                .insert("connect.fixed.size".into(), f.size.to_string());
            s
        }
        Avro::Enum(e) => {
            let mut s = Schema::new(SchemaType::String);
            s.name = Some(e.name.fullname(None));
            s.parameters.insert(
                "io.confluent.connect.avro.Enum".into(),
                e.name.fullname(None),
            );
            for sym in &e.symbols {
                s.parameters
                    .insert(format!("io.confluent.connect.avro.Enum.{sym}"), sym.clone());
            }
            s
        }
        Avro::Array(a) => Schema::array(to_connect_schema(&a.items, names, false, depth + 1)?),
        Avro::Map(m) => Schema::map(
            Schema::new(SchemaType::String),
            to_connect_schema(&m.types, names, false, depth + 1)?,
        ),
        Avro::Union(u) => {
            let variants = u.variants();
            let non_null: Vec<&Avro> = variants
                .iter()
                .filter(|v| !matches!(v, Avro::Null))
                .collect();
            let has_null = non_null.len() < variants.len();
            if non_null.len() == 1 {
                return to_connect_schema(non_null[0], names, has_null || optional, depth + 1);
            }
            let mut fields = Vec::new();
            for v in non_null {
                let name = union_branch_name(resolve(v, names)?);
                fields.push(Field {
                    name,
                    schema: Arc::new(to_connect_schema(v, names, true, depth + 1)?),
                });
            }
            let mut s = Schema::structure(fields);
            s.name = Some("io.confluent.connect.avro.Union".into());
            s.optional = has_null || optional;
            return Ok(s);
        }
        Avro::Record(r) => {
            let mut fields = Vec::with_capacity(r.fields.len());
            for f in &r.fields {
                let field_schema = to_connect_schema(&f.schema, names, false, depth + 1)?;
                fields.push(Field {
                    name: f.name.clone(),
                    schema: Arc::new(field_schema),
                });
            }
            let mut s = Schema::structure(fields);
            s.name = Some(
                attr_str(&r.attributes, "connect.name").unwrap_or_else(|| r.name.fullname(None)),
            );
            s.doc = r.doc.clone();
            if let Some(serde_json::Value::Object(params)) = r.attributes.get("connect.parameters")
            {
                for (k, v) in params {
                    s.parameters.insert(
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    );
                }
            }
            s
        }
        Avro::Ref { .. } => return Err(ConvertError::Data("Unresolved Avro reference".into())),
    };
    s.optional = optional;
    Ok(s)
}

fn union_branch_name(schema: &Avro) -> String {
    match schema {
        Avro::Record(r) => r.name.name.clone(),
        Avro::Enum(e) => e.name.name.clone(),
        Avro::Fixed(f) => f.name.name.clone(),
        Avro::Boolean => "boolean".into(),
        Avro::Int | Avro::Date | Avro::TimeMillis => "int".into(),
        Avro::Long | Avro::TimestampMillis | Avro::TimestampMicros | Avro::TimeMicros => {
            "long".into()
        }
        Avro::Float => "float".into(),
        Avro::Double => "double".into(),
        Avro::Bytes | Avro::Decimal(_) => "bytes".into(),
        Avro::String | Avro::Uuid => "string".into(),
        Avro::Array(_) => "array".into(),
        Avro::Map(_) => "map".into(),
        _ => "value".into(),
    }
}

fn to_connect_value(
    schema: &Avro,
    names: &HashMap<Name, Avro>,
    value: AvroValue,
    depth: usize,
) -> Result<Value, ConvertError> {
    deep(depth)?;
    let schema = resolve(schema, names)?;
    let bad =
        |v: &AvroValue| ConvertError::Data(format!("Avro value {v:?} does not match its schema"));
    Ok(match (schema, value) {
        (_, AvroValue::Null) => Value::Null,
        (Avro::Union(u), AvroValue::Union(index, inner)) => {
            let variants = u.variants();
            let branch = variants.get(index as usize).ok_or_else(|| {
                ConvertError::Data(format!("Avro union index {index} out of range"))
            })?;
            let non_null: Vec<&Avro> = variants
                .iter()
                .filter(|v| !matches!(v, Avro::Null))
                .collect();
            if non_null.len() == 1 {
                return to_connect_value(branch, names, *inner, depth + 1);
            }
            let position = non_null
                .iter()
                .position(|v| std::ptr::eq(*v, branch))
                .unwrap_or(0);
            let mut fields = vec![Value::Null; non_null.len()];
            fields[position] = to_connect_value(branch, names, *inner, depth + 1)?;
            Value::Struct(fields)
        }
        (_, AvroValue::Boolean(b)) => Value::Boolean(b),
        (Avro::Date, AvroValue::Date(d)) => Value::Date(d),
        (Avro::TimeMillis, AvroValue::TimeMillis(t)) => Value::Time(t),
        (Avro::TimestampMillis, AvroValue::TimestampMillis(t)) => Value::Timestamp(t),
        (_, AvroValue::Int(i) | AvroValue::Date(i) | AvroValue::TimeMillis(i)) => Value::Int32(i),
        (
            _,
            AvroValue::Long(l)
            | AvroValue::TimeMicros(l)
            | AvroValue::TimestampMillis(l)
            | AvroValue::TimestampMicros(l)
            | AvroValue::TimestampNanos(l)
            | AvroValue::LocalTimestampMillis(l)
            | AvroValue::LocalTimestampMicros(l)
            | AvroValue::LocalTimestampNanos(l),
        ) => Value::Int64(l),
        (_, AvroValue::Float(f)) => Value::Float32(f),
        (_, AvroValue::Double(d)) => Value::Float64(d),
        (_, AvroValue::String(s)) => Value::String(s),
        (_, AvroValue::Uuid(u)) => Value::String(u.to_string()),
        (_, AvroValue::Enum(_, symbol)) => Value::String(symbol),
        (Avro::Decimal(d), AvroValue::Decimal(dec)) => {
            let bytes: Vec<u8> = Vec::try_from(&dec)
                .map_err(|e| ConvertError::Data(format!("Invalid Avro decimal: {e}")))?;
            Value::Decimal {
                unscaled: unscaled_from_be_bytes(&bytes)
                    .ok_or_else(|| ConvertError::Data("Avro decimal exceeds 38 digits".into()))?,
                scale: d.scale as i32,
            }
        }
        (_, AvroValue::Bytes(b) | AvroValue::Fixed(_, b)) => Value::Bytes(b),
        (Avro::Array(a), AvroValue::Array(items)) => Value::Array(
            items
                .into_iter()
                .map(|i| to_connect_value(&a.items, names, i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        (Avro::Map(m), AvroValue::Map(entries)) => {
            let mut entries: Vec<(String, AvroValue)> = entries.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        Ok((
                            Value::String(k),
                            to_connect_value(&m.types, names, v, depth + 1)?,
                        ))
                    })
                    .collect::<Result<_, ConvertError>>()?,
            )
        }
        (Avro::Record(r), AvroValue::Record(fields)) => {
            let mut values = Vec::with_capacity(r.fields.len());
            for (f, (_, v)) in r.fields.iter().zip(fields) {
                values.push(to_connect_value(&f.schema, names, v, depth + 1)?);
            }
            Value::Struct(values)
        }
        (_, other) => return Err(bad(&other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegisteredSchema;

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

    const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"id","type":"long"},
        {"name":"note","type":["null","string"],"default":null},
        {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
        {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
        {"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]}}
    ]}"#;

    fn framed(id: u32, schema: &Avro, value: AvroValue) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&id.to_be_bytes());
        out.extend(apache_avro::to_avro_datum(schema, value).unwrap());
        out
    }

    #[test]
    fn converts_records_like_avro_data() {
        let schema = Avro::parse_str(ORDER).unwrap();
        let value = AvroValue::Record(vec![
            ("id".into(), AvroValue::Long(7)),
            (
                "note".into(),
                AvroValue::Union(1, Box::new(AvroValue::String("hi".into()))),
            ),
            (
                "amount".into(),
                AvroValue::Decimal(apache_avro::Decimal::from(vec![0x00, 0xde])),
            ),
            ("ts".into(), AvroValue::TimestampMillis(1_700_000_000_000)),
            (
                "tags".into(),
                AvroValue::Array(vec![AvroValue::String("x".into())]),
            ),
            ("kind".into(), AvroValue::Enum(1, "B".into())),
        ]);
        let c =
            AvroConverter::with_source(Arc::new(Fixed(HashMap::from([(5, ORDER.to_string())]))));
        let sv = c.to_connect("t", Some(&framed(5, &schema, value))).unwrap();
        let s = sv.schema.unwrap();
        assert_eq!(s.name.as_deref(), Some("shop.Order"));
        assert!(s.fields[1].schema.optional);
        assert!(!s.fields[0].schema.optional);
        assert_eq!(s.fields[2].schema.decimal_scale(), Some(2));
        assert_eq!(s.fields[3].schema.name.as_deref(), Some(logical::TIMESTAMP));
        assert_eq!(
            sv.value,
            Value::Struct(vec![
                Value::Int64(7),
                Value::String("hi".into()),
                Value::Decimal {
                    unscaled: 222,
                    scale: 2
                },
                Value::Timestamp(1_700_000_000_000),
                Value::Array(vec![Value::String("x".into())]),
                Value::String("B".into()),
            ])
        );
    }

    #[test]
    fn records_of_primitive_fields_have_a_flat_layout() {
        let flat = r#"{"type":"record","name":"E","fields":[
            {"name":"id","type":"long"},
            {"name":"n","type":"int"},
            {"name":"note","type":["null","string"]},
            {"name":"ok","type":["boolean","null"]},
            {"name":"f","type":"float"},
            {"name":"d","type":"double"},
            {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
            {"name":"day","type":["null",{"type":"int","logicalType":"date"}]},
            {"name":"us","type":{"type":"long","logicalType":"timestamp-micros"}}
        ]}"#;
        let with_time = format!(
            r#"{},{{"name":"t","type":{{"type":"int","logicalType":"time-millis"}}}}]}}"#,
            flat.trim_end().strip_suffix("]}").unwrap()
        );
        let c = AvroConverter::with_source(Arc::new(Fixed(HashMap::from([
            (1, flat.to_string()),
            (2, ORDER.to_string()),
            (3, r#""string""#.to_string()),
            (4, with_time),
        ]))));
        let layout = c.flat_avro(1).unwrap();
        let got: Vec<(&str, FlatKind, Option<u8>)> = layout
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.kind, f.null_branch))
            .collect();
        assert_eq!(
            got,
            vec![
                ("id", FlatKind::Long, None),
                ("n", FlatKind::Int, None),
                ("note", FlatKind::String, Some(0)),
                ("ok", FlatKind::Boolean, Some(1)),
                ("f", FlatKind::Float, None),
                ("d", FlatKind::Double, None),
                ("at", FlatKind::TimestampMillis, None),
                ("day", FlatKind::Date, Some(0)),
                ("us", FlatKind::Long, None),
            ]
        );
        // Decimals, arrays and enums take the general path; so do schemas that are not
        // records, and ids the registry does not know. Timestamps and dates do not.
        assert_eq!(c.flat_avro(2), None);
        assert_eq!(c.flat_avro(3), None);
        // time-millis is Connect's Time, which the fast path does not fill.
        assert_eq!(c.flat_avro(4), None);
        assert_eq!(c.flat_avro(5), None);
        assert_eq!(c.raw_values(), Some(RawValues::Avro));
    }

    #[test]
    fn unknown_ids_and_bad_frames_are_errors() {
        let c = AvroConverter::with_source(Arc::new(Fixed(HashMap::new())));
        let err = c.to_connect("t", Some(&[0, 0, 0, 0, 9, 1])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Error retrieving Avro schema for id 9: schema id 9 not found"
        );
        let err = c.to_connect("t", Some(&[7, 1])).unwrap_err();
        assert!(err.to_string().ends_with("Unknown magic byte!"), "{err}");
    }
}
