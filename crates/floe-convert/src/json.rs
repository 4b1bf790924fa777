//! `org.apache.kafka.connect.json.JsonConverter`.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use floe_data::decimal::{parse_decimal, rescale, unscaled_from_be_bytes};
use floe_data::{logical, Field, Schema, SchemaRef, SchemaType, Value};
use serde_json::Value as Json;

use crate::{ConfigError, ConvertError, Converter, SchemaAndValue};

pub(crate) const CLASS: &str = "org.apache.kafka.connect.json.JsonConverter";

const ENVELOPE_ERROR: &str = "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.";

/// The JSON converter, with or without the `{"schema":…,"payload":…}` envelope.
#[derive(Debug, Clone)]
pub struct JsonConverter {
    schemas_enabled: bool,
}

impl JsonConverter {
    /// Reads `schemas.enable` (default true) and accepts the other JsonConverter keys.
    pub fn configure(
        props: &BTreeMap<String, String>,
        _is_key: bool,
    ) -> Result<JsonConverter, ConfigError> {
        let schemas_enabled = match props.get("schemas.enable") {
            None => true,
            Some(v) => parse_bool("schemas.enable", v)?,
        };
        if let Some(format) = props.get("decimal.format") {
            if !matches!(format.to_ascii_uppercase().as_str(), "BASE64" | "NUMERIC") {
                return Err(ConfigError::InvalidValue {
                    key: "decimal.format".into(),
                    value: format.clone(),
                    reason: "must be one of BASE64, NUMERIC".into(),
                });
            }
        }
        Ok(JsonConverter { schemas_enabled })
    }

    /// A converter with the given `schemas.enable`.
    pub fn new(schemas_enabled: bool) -> JsonConverter {
        JsonConverter { schemas_enabled }
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::InvalidValue {
            key: key.into(),
            value: v.into(),
            reason: "Expected value to be either true or false".into(),
        }),
    }
}

impl Converter for JsonConverter {
    fn to_connect(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<SchemaAndValue, ConvertError> {
        let Some(bytes) = bytes else {
            return Ok(SchemaAndValue::null());
        };
        if !self.schemas_enabled {
            // Straight from the bytes into Connect values: no intermediate JSON tree.
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let value = serde::de::DeserializeSeed::deserialize(Schemaless, &mut de)
                .and_then(|v| de.end().map(|()| v))
                .map_err(|e| ConvertError::Serialization(e.to_string()))?;
            return Ok(SchemaAndValue {
                schema: None,
                value,
            });
        }
        let json: Json = serde_json::from_slice(bytes)
            .map_err(|e| ConvertError::Serialization(e.to_string()))?;
        let Json::Object(mut envelope) = json else {
            return Err(ConvertError::Data(ENVELOPE_ERROR.into()));
        };
        if envelope.len() != 2 || !envelope.contains_key("schema") {
            return Err(ConvertError::Data(ENVELOPE_ERROR.into()));
        }
        let (Some(schema_json), Some(payload)) =
            (envelope.remove("schema"), envelope.remove("payload"))
        else {
            return Err(ConvertError::Data(ENVELOPE_ERROR.into()));
        };
        if schema_json.is_null() {
            return Ok(SchemaAndValue {
                schema: None,
                value: schemaless(payload),
            });
        }
        let schema = Arc::new(parse_schema(&schema_json)?);
        let value = convert(&schema, payload)?;
        Ok(SchemaAndValue {
            schema: Some(schema),
            value,
        })
    }

    fn class_name(&self) -> &'static str {
        CLASS
    }

    fn raw_values(&self) -> Option<crate::RawValues> {
        (!self.schemas_enabled).then_some(crate::RawValues::SchemalessJson)
    }
}

/// Schemaless JSON: objects become string-keyed maps, integral numbers int64, others float64.
/// Schemaless JSON read straight into Connect values, as Java's JsonConverter reads it:
/// integral numbers are INT64 (beyond i64, an exact decimal), others FLOAT64; objects keep their
/// key order and, for a repeated key, the last value at the first key's place (as Jackson does).
struct Schemaless;

/// Objects up to this many keys find repeated keys by scanning.
const SCAN_LIMIT: usize = 16;

impl<'de> serde::de::DeserializeSeed<'de> for Schemaless {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Schemaless {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int64(i),
            // Beyond i64: Java reads a BigInteger; keep it exact as a decimal.
            Err(_) => Value::Decimal {
                unscaled: i128::from(v),
                scale: 0,
            },
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float64(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(Schemaless)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(Value, Value)> = Vec::with_capacity(map.size_hint().unwrap_or(8));
        // Repeated keys are looked up by a scan while the object is small, by an index once it
        // is wide, so neither case costs more than it must.
        let mut index: Option<std::collections::HashMap<String, usize>> = None;
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Schemaless)?;
            let found = match &index {
                Some(ix) => ix.get(&key).copied(),
                None => entries
                    .iter()
                    .position(|(k, _)| matches!(k, Value::String(s) if *s == key)),
            };
            match found {
                Some(i) => entries[i].1 = value,
                None => {
                    if let Some(ix) = &mut index {
                        ix.insert(key.clone(), entries.len());
                    }
                    entries.push((Value::String(key), value));
                    if index.is_none() && entries.len() > SCAN_LIMIT {
                        index = Some(
                            entries
                                .iter()
                                .enumerate()
                                .filter_map(|(i, (k, _))| k.as_str().map(|k| (k.to_string(), i)))
                                .collect(),
                        );
                    }
                }
            }
        }
        Ok(Value::Map(entries))
    }
}

/// A parsed schemaless JSON value (the envelope's payload when its schema is null) as Connect data,
/// by the same rules as bytes read directly.
fn schemaless(json: Json) -> Value {
    use serde::de::DeserializeSeed;
    // A parsed tree always deserializes: every JSON value is accepted.
    Schemaless.deserialize(json).unwrap_or(Value::Null)
}

fn data_err(msg: impl Into<String>) -> ConvertError {
    ConvertError::Data(msg.into())
}

/// A type name of JsonConverter's schema format (`JsonSchema`): Connect's names, except that
/// FLOAT32 and FLOAT64 are written `float` and `double` (and `float32`/`float64` are not read).
pub fn json_schema_type(name: &str) -> Option<SchemaType> {
    match name {
        "float" => Some(SchemaType::Float32),
        "double" => Some(SchemaType::Float64),
        "float32" | "float64" => None,
        other => SchemaType::from_name(other),
    }
}

/// Parses a JsonConverter schema document.
pub fn parse_schema(json: &Json) -> Result<Schema, ConvertError> {
    let obj = json
        .as_object()
        .ok_or_else(|| data_err("Schema must be a JSON object"))?;
    let type_name = obj
        .get("type")
        .and_then(Json::as_str)
        .ok_or_else(|| data_err("Schema must contain 'type' field"))?;
    let schema_type = json_schema_type(type_name)
        .ok_or_else(|| data_err(format!("Unknown schema type: {type_name}")))?;
    let mut schema = Schema::new(schema_type);
    schema.optional = obj.get("optional").and_then(Json::as_bool).unwrap_or(false);
    schema.name = obj.get("name").and_then(Json::as_str).map(str::to_string);
    schema.version = obj
        .get("version")
        .and_then(Json::as_i64)
        .and_then(|v| i32::try_from(v).ok());
    schema.doc = obj.get("doc").and_then(Json::as_str).map(str::to_string);
    if let Some(params) = obj.get("parameters") {
        let params = params
            .as_object()
            .ok_or_else(|| data_err("Schema parameters must be a JSON object"))?;
        for (k, v) in params {
            let text = match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            schema.parameters.insert(k.clone(), text);
        }
    }
    match schema_type {
        SchemaType::Struct => {
            let fields = obj
                .get("fields")
                .and_then(Json::as_array)
                .ok_or_else(|| data_err("Struct schema's \"fields\" argument is not an array."))?;
            for f in fields {
                let name = f
                    .get("field")
                    .and_then(Json::as_str)
                    .ok_or_else(|| data_err("Struct schema's field name not specified properly"))?;
                schema.fields.push(Field {
                    name: name.to_string(),
                    schema: Arc::new(parse_schema(f)?),
                });
            }
        }
        SchemaType::Array => {
            let items = obj
                .get("items")
                .ok_or_else(|| data_err("Array schema did not specify the element type"))?;
            schema.items = Some(Arc::new(parse_schema(items)?));
        }
        SchemaType::Map => {
            let keys = obj
                .get("keys")
                .ok_or_else(|| data_err("Map schema did not specify the key type"))?;
            let values = obj
                .get("values")
                .ok_or_else(|| data_err("Map schema did not specify the value type"))?;
            schema.keys = Some(Arc::new(parse_schema(keys)?));
            schema.values = Some(Arc::new(parse_schema(values)?));
        }
        _ => {}
    }
    if let Some(default) = obj.get("default") {
        if !default.is_null() {
            let probe = Arc::new(schema.clone());
            schema.default = Some(convert(&probe, default.clone())?);
        }
    }
    Ok(schema)
}

fn mismatch(schema: &Schema, json: &Json) -> ConvertError {
    let found = match json {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    };
    data_err(format!(
        "Invalid JSON for {} schema{}: found {found} {}",
        schema.schema_type,
        schema
            .name
            .as_deref()
            .map(|n| format!(" {n}"))
            .unwrap_or_default(),
        truncate(&json.to_string(), 80)
    ))
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn integral(schema: &Schema, json: &Json) -> Result<i64, ConvertError> {
    json.as_i64().ok_or_else(|| mismatch(schema, json))
}

fn narrow<T: TryFrom<i64>>(schema: &Schema, json: &Json) -> Result<T, ConvertError> {
    let v = integral(schema, json)?;
    T::try_from(v).map_err(|_| {
        data_err(format!(
            "Value {v} is out of range for {} schema",
            schema.schema_type
        ))
    })
}

/// Converts a payload according to its schema.
pub fn convert(schema: &SchemaRef, json: Json) -> Result<Value, ConvertError> {
    if json.is_null() {
        if let Some(default) = &schema.default {
            return Ok(default.clone());
        }
        if schema.optional {
            return Ok(Value::Null);
        }
        return Err(data_err(format!(
            "Invalid null value for required {} field",
            schema.schema_type.name().to_ascii_uppercase()
        )));
    }
    if let Some(name) = schema.logical_name() {
        return convert_logical(schema, name, &json);
    }
    Ok(match schema.schema_type {
        SchemaType::Boolean => {
            Value::Boolean(json.as_bool().ok_or_else(|| mismatch(schema, &json))?)
        }
        SchemaType::Int8 => Value::Int8(narrow(schema, &json)?),
        SchemaType::Int16 => Value::Int16(narrow(schema, &json)?),
        SchemaType::Int32 => Value::Int32(narrow(schema, &json)?),
        SchemaType::Int64 => Value::Int64(integral(schema, &json)?),
        SchemaType::Float32 => {
            Value::Float32(json.as_f64().ok_or_else(|| mismatch(schema, &json))? as f32)
        }
        SchemaType::Float64 => {
            Value::Float64(json.as_f64().ok_or_else(|| mismatch(schema, &json))?)
        }
        SchemaType::String => match json {
            Json::String(s) => Value::String(s),
            other => return Err(mismatch(schema, &other)),
        },
        SchemaType::Bytes => match &json {
            Json::String(s) => Value::Bytes(
                BASE64
                    .decode(s)
                    .map_err(|e| data_err(format!("Invalid base64 in bytes field: {e}")))?,
            ),
            other => return Err(mismatch(schema, other)),
        },
        SchemaType::Array => {
            let items_schema = schema
                .items
                .as_ref()
                .ok_or_else(|| data_err("Array schema without items"))?;
            match json {
                Json::Array(items) => Value::Array(
                    items
                        .into_iter()
                        .map(|item| convert(items_schema, item))
                        .collect::<Result<_, _>>()?,
                ),
                other => return Err(mismatch(schema, &other)),
            }
        }
        SchemaType::Map => convert_map(schema, json)?,
        SchemaType::Struct => match json {
            Json::Object(mut obj) => {
                let mut values = Vec::with_capacity(schema.fields.len());
                for field in &schema.fields {
                    let v = obj.remove(&field.name).unwrap_or(Json::Null);
                    values.push(
                        convert(&field.schema, v)
                            .map_err(|e| data_err(format!("field '{}': {e}", field.name)))?,
                    );
                }
                Value::Struct(values)
            }
            other => return Err(mismatch(schema, &other)),
        },
    })
}

fn convert_map(schema: &SchemaRef, json: Json) -> Result<Value, ConvertError> {
    let (Some(key_schema), Some(value_schema)) = (&schema.keys, &schema.values) else {
        return Err(data_err("Map schema without key or value schema"));
    };
    match json {
        Json::Object(obj) if key_schema.schema_type == SchemaType::String => {
            let mut entries = Vec::with_capacity(obj.len());
            for (k, v) in obj {
                entries.push((Value::String(k), convert(value_schema, v)?));
            }
            Ok(Value::Map(entries))
        }
        Json::Array(pairs) => {
            let mut entries = Vec::with_capacity(pairs.len());
            for pair in pairs {
                match pair {
                    Json::Array(mut kv) if kv.len() == 2 => {
                        let v = kv.pop().unwrap_or(Json::Null);
                        let k = kv.pop().unwrap_or(Json::Null);
                        entries.push((convert(key_schema, k)?, convert(value_schema, v)?));
                    }
                    _ => {
                        return Err(data_err("Found invalid map entry instead of array tuple"));
                    }
                }
            }
            Ok(Value::Map(entries))
        }
        other => Err(mismatch(schema, &other)),
    }
}

fn convert_logical(schema: &Schema, name: &str, json: &Json) -> Result<Value, ConvertError> {
    match name {
        logical::DECIMAL => {
            let scale = schema
                .decimal_scale()
                .ok_or_else(|| data_err("Invalid Decimal schema: scale parameter not found."))?;
            let unscaled = match json {
                Json::String(s) => {
                    let bytes = BASE64
                        .decode(s)
                        .map_err(|e| data_err(format!("Invalid base64 decimal: {e}")))?;
                    unscaled_from_be_bytes(&bytes)
                        .ok_or_else(|| data_err("Decimal value exceeds 38 digits"))?
                }
                Json::Number(n) => {
                    let (u, s) =
                        parse_decimal(&n.to_string()).ok_or_else(|| mismatch(schema, json))?;
                    rescale(u, s, scale)
                        .ok_or_else(|| data_err("Decimal value exceeds 38 digits"))?
                }
                _ => return Err(mismatch(schema, json)),
            };
            Ok(Value::Decimal { unscaled, scale })
        }
        logical::DATE => Ok(Value::Date(narrow(schema, json)?)),
        logical::TIME => Ok(Value::Time(narrow(schema, json)?)),
        logical::TIMESTAMP => Ok(Value::Timestamp(integral(schema, json)?)),
        _ => Err(data_err(format!("Unknown logical type {name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(enabled: bool, text: &str) -> Result<SchemaAndValue, ConvertError> {
        JsonConverter::new(enabled).to_connect("t", Some(text.as_bytes()))
    }

    #[test]
    fn schemaless_edge_cases_match_jackson() {
        let sv = conv(
            false,
            r#"{"a":1,"b":2,"a":3,"big":18446744073709551615,"neg":-5,"e":1e2}"#,
        )
        .unwrap();
        assert_eq!(
            sv.value,
            Value::Map(vec![
                (Value::String("a".into()), Value::Int64(3)),
                (Value::String("b".into()), Value::Int64(2)),
                (
                    Value::String("big".into()),
                    Value::Decimal {
                        unscaled: 18446744073709551615,
                        scale: 0
                    }
                ),
                (Value::String("neg".into()), Value::Int64(-5)),
                (Value::String("e".into()), Value::Float64(100.0)),
            ])
        );
        let wide: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
        let text = format!("{{{},\"k3\":-3,\"k39\":-39}}", wide.join(","));
        let Value::Map(entries) = conv(false, &text).unwrap().value else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 40);
        assert_eq!(entries[3].1, Value::Int64(-3));
        assert_eq!(entries[39].1, Value::Int64(-39));
        assert_eq!(conv(false, "[]").unwrap().value, Value::Array(vec![]));
        assert_eq!(
            conv(false, r#""x""#).unwrap().value,
            Value::String("x".into())
        );
        assert!(conv(false, r#"{"a":1} trailing"#).is_err());
        assert!(conv(false, r#"{"a":"#).is_err());
    }

    #[test]
    fn schemaless_objects_keep_order_and_number_kinds() {
        let sv = conv(
            false,
            r#"{"b":1,"a":2.5,"c":"x","d":[true,null],"e":{"f":null}}"#,
        )
        .unwrap();
        assert_eq!(sv.schema, None);
        assert_eq!(
            sv.value,
            Value::Map(vec![
                (Value::String("b".into()), Value::Int64(1)),
                (Value::String("a".into()), Value::Float64(2.5)),
                (Value::String("c".into()), Value::String("x".into())),
                (
                    Value::String("d".into()),
                    Value::Array(vec![Value::Boolean(true), Value::Null])
                ),
                (
                    Value::String("e".into()),
                    Value::Map(vec![(Value::String("f".into()), Value::Null)])
                ),
            ])
        );
    }

    #[test]
    fn envelope_with_logical_types() {
        let text = r#"{"schema":{"type":"struct","name":"orders","optional":false,"fields":[
           {"field":"id","type":"int64","optional":false},
           {"field":"amount","type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},
           {"field":"ts","type":"int64","optional":true,"name":"org.apache.kafka.connect.data.Timestamp","version":1}]},
         "payload":{"id":1,"amount":"AN4=","ts":1700000000000}}"#;
        let sv = conv(true, text).unwrap();
        let schema = sv.schema.unwrap();
        assert_eq!(schema.schema_type, SchemaType::Struct);
        assert_eq!(schema.fields.len(), 3);
        assert!(!schema.fields[0].schema.optional);
        assert_eq!(schema.fields[1].schema.decimal_scale(), Some(2));
        assert_eq!(
            sv.value,
            Value::Struct(vec![
                Value::Int64(1),
                Value::Decimal {
                    unscaled: 222,
                    scale: 2
                },
                Value::Timestamp(1_700_000_000_000),
            ])
        );
    }

    #[test]
    fn numeric_decimals_are_rescaled() {
        let text = r#"{"schema":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}},"payload":12.345}"#;
        assert_eq!(
            conv(true, text).unwrap().value,
            Value::Decimal {
                unscaled: 1235,
                scale: 2
            }
        );
    }

    #[test]
    fn envelope_is_required_when_schemas_enabled() {
        let err = conv(true, r#"{"id":1}"#).unwrap_err();
        assert_eq!(err.to_string(), ENVELOPE_ERROR);
    }

    #[test]
    fn malformed_json_is_a_serialization_error() {
        let err = conv(false, "{not json").unwrap_err();
        assert!(
            err.to_string().starts_with(
                "Converting byte[] to Kafka Connect data failed due to serialization error: "
            ),
            "{err}"
        );
    }

    #[test]
    fn required_null_and_type_mismatch_are_errors() {
        let text =
            r#"{"schema":{"type":"struct","fields":[{"field":"id","type":"int32"}]},"payload":{}}"#;
        assert_eq!(
            conv(true, text).unwrap_err().to_string(),
            "field 'id': Invalid null value for required INT32 field"
        );
        let text = r#"{"schema":{"type":"struct","fields":[{"field":"id","type":"int32"}]},"payload":{"id":"abc"}}"#;
        assert_eq!(
            conv(true, text).unwrap_err().to_string(),
            "field 'id': Invalid JSON for int32 schema: found string \"abc\""
        );
    }

    #[test]
    fn maps_with_non_string_keys_are_pairs() {
        let text = r#"{"schema":{"type":"map","keys":{"type":"int32"},"values":{"type":"string"}},"payload":[[1,"a"],[2,"b"]]}"#;
        assert_eq!(
            conv(true, text).unwrap().value,
            Value::Map(vec![
                (Value::Int32(1), Value::String("a".into())),
                (Value::Int32(2), Value::String("b".into())),
            ])
        );
    }

    #[test]
    fn tombstones_are_null() {
        let sv = JsonConverter::new(true).to_connect("t", None).unwrap();
        assert_eq!(sv, SchemaAndValue::null());
    }

    #[test]
    fn floats_are_named_as_java_names_them() {
        let text = r#"{"schema":{"type":"struct","fields":[{"field":"f","type":"float"},{"field":"d","type":"double"}]},"payload":{"f":1.5,"d":2.5}}"#;
        assert_eq!(
            conv(true, text).unwrap().value,
            Value::Struct(vec![Value::Float32(1.5), Value::Float64(2.5)])
        );
        let text = r#"{"schema":{"type":"float64"},"payload":1.5}"#;
        assert_eq!(
            conv(true, text).unwrap_err().to_string(),
            "Unknown schema type: float64"
        );
    }
}
