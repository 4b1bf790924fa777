//! `JsonToMapTransform`: a JSON string value becomes a struct whose fields are typed from the
//! JSON (objects become `map<string,string>`), or with `json.root=true` one map of texts.

use std::sync::Arc;

use floe_data::config::{ConfigKey, ConfigType, Importance};
use floe_data::{Field, Schema, SchemaType, SinkRecord, Value};
use serde_json::Value as Json;

use crate::java::number::double_to_string;
use crate::props::{KeySpec, Props};
use crate::{ConfigError, TransformError, Transformation};

/// JsonToMapTransform's keys.
pub fn keys() -> Vec<KeySpec> {
    vec![KeySpec::new(ConfigKey::optional(
        "json.root",
        ConfigType::Boolean,
        "false",
        Importance::Medium,
        "When true, sets the resulting schema to a single map field named payload",
    ))]
}

/// A configured JsonToMapTransform.
pub struct JsonToMapTransform {
    root: bool,
}

impl JsonToMapTransform {
    pub fn new(props: &Props) -> Result<JsonToMapTransform, ConfigError> {
        Ok(JsonToMapTransform {
            root: props.boolean("json.root", false)?,
        })
    }
}

fn error(message: String) -> TransformError {
    TransformError {
        exception_class: "org.apache.iceberg.connect.transforms.JsonToMapException",
        message,
    }
}

impl Transformation for JsonToMapTransform {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        let text = match &record.value {
            Value::Null => return Ok(Some(record)),
            Value::String(s) => s,
            _ => {
                return Err(error(
                    "record value is not a string, use StringConverter".into(),
                ))
            }
        };
        let details = || {
            format!(
                "topic {} partition {} offset {}",
                record.topic, record.partition, record.offset
            )
        };
        // Jackson reads the first value and ignores what follows it.
        let parsed = serde_json::Deserializer::from_str(text)
            .into_iter::<Json>()
            .next();
        let object = match parsed {
            Some(Ok(Json::Object(o))) => o,
            Some(Ok(_)) | None => {
                return Err(error(format!(
                    "Expected json object for record.value after parsing: {}",
                    details()
                )))
            }
            Some(Err(e)) => {
                return Err(error(format!(
                    "record.value is not valid json for record.value: {}: {e}",
                    details()
                )))
            }
        };
        let (schema, value) = if self.root {
            let map = object
                .iter()
                .map(|(k, v)| (Value::String(k.clone()), Value::String(node_text(v))))
                .collect();
            let schema = Schema::structure(vec![Field::new(
                "payload",
                text_map_schema(false).optional(),
            )]);
            (schema, Value::Struct(vec![Value::Map(map)]))
        } else {
            let mut fields = Vec::new();
            let mut values = Vec::new();
            for (k, v) in &object {
                let Some(s) = schema_of(v) else { continue };
                if k.is_empty() {
                    return Err(TransformError::schema_builder("fieldName cannot be null."));
                }
                values.push(value_of(v, &s));
                fields.push(Field {
                    name: k.clone(),
                    schema: Arc::new(s),
                });
            }
            (Schema::structure(fields), Value::Struct(values))
        };
        record.value_schema = Some(Arc::new(schema));
        record.value = value;
        Ok(Some(record))
    }
}

/// `map<string, string>`: keys and values required (`optional_entries`: both optional).
fn text_map_schema(optional_entries: bool) -> Schema {
    let s = |o: bool| {
        let s = Schema::new(SchemaType::String);
        if o {
            s.optional()
        } else {
            s
        }
    };
    Schema::map(s(optional_entries), s(optional_entries))
}

/// A JSON node as text: a string's own text, anything else compact JSON as Jackson writes it
/// (doubles as Java prints them).
pub fn node_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => {
            let mut out = String::new();
            write_json(&mut out, other);
            out
        }
    }
}

fn write_json(out: &mut String, v: &Json) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (None, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&double_to_string(f)),
            _ => out.push_str(&n.to_string()),
        },
        Json::String(s) => out.push_str(&Json::String(s.clone()).to_string()),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Json::Object(o) => {
            out.push('{');
            for (i, (k, item)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Json::String(k.clone()).to_string());
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

/// Jackson's node classes, which decide an array's element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum NodeClass {
    Null,
    Text,
    Boolean,
    Int,
    Long,
    BigInteger,
    Double,
    Object,
    Array,
}

fn class_of(v: &Json) -> NodeClass {
    match v {
        Json::Null => NodeClass::Null,
        Json::String(_) => NodeClass::Text,
        Json::Bool(_) => NodeClass::Boolean,
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) if i32::try_from(i).is_ok() => NodeClass::Int,
            (Some(_), _) => NodeClass::Long,
            (None, Some(_)) => NodeClass::BigInteger,
            _ => NodeClass::Double,
        },
        Json::Object(_) => NodeClass::Object,
        Json::Array(_) => NodeClass::Array,
    }
}

fn optional(t: SchemaType) -> Schema {
    Schema::new(t).optional()
}

/// The inferred optional schema of a node; None for nulls, empty objects and arrays whose
/// type cannot be told.
fn schema_of(v: &Json) -> Option<Schema> {
    Some(match class_of(v) {
        NodeClass::Null => return None,
        NodeClass::Text => optional(SchemaType::String),
        NodeClass::Boolean => optional(SchemaType::Boolean),
        NodeClass::Int => optional(SchemaType::Int32),
        NodeClass::Long => optional(SchemaType::Int64),
        NodeClass::BigInteger => Schema::decimal(0).optional(),
        NodeClass::Double => optional(SchemaType::Float64),
        NodeClass::Object => match v {
            Json::Object(o) if o.is_empty() => return None,
            _ => text_map_schema(false).optional(),
        },
        NodeClass::Array => return array_schema(v),
    })
}

fn array_schema(v: &Json) -> Option<Schema> {
    let Json::Array(items) = v else { return None };
    if items.is_empty() {
        return None;
    }
    let mut classes: Vec<NodeClass> = items.iter().map(class_of).collect();
    classes.sort_unstable();
    classes.dedup();
    let strings = || Schema::array(optional(SchemaType::String)).optional();
    if classes.len() > 1 {
        return Some(strings());
    }
    Some(match classes[0] {
        NodeClass::Null => strings(),
        NodeClass::Object => Schema::array(text_map_schema(true).optional()).optional(),
        NodeClass::Array => {
            let mut inner: Vec<Option<Schema>> = Vec::new();
            for item in items {
                let s = schema_of(item);
                if !inner.contains(&s) {
                    inner.push(s);
                }
            }
            match inner.as_slice() {
                [None] => return None,
                [Some(s)] => Schema::array(s.clone()).optional(),
                _ => {
                    Schema::array(Schema::array(optional(SchemaType::String)).optional()).optional()
                }
            }
        }
        _ => Schema::array(schema_of(&items[0])?).optional(),
    })
}

/// A node's value under the schema inferred for it.
fn value_of(v: &Json, schema: &Schema) -> Value {
    match schema.schema_type {
        SchemaType::String => Value::String(node_text(v)),
        SchemaType::Boolean => Value::Boolean(v.as_bool().unwrap_or(false)),
        SchemaType::Int32 => Value::Int32(v.as_i64().unwrap_or(0) as i32),
        SchemaType::Int64 => Value::Int64(v.as_i64().unwrap_or(0)),
        SchemaType::Float64 => Value::Float64(v.as_f64().unwrap_or(0.0)),
        SchemaType::Bytes => Value::Decimal {
            unscaled: v.as_u64().map(i128::from).unwrap_or(0),
            scale: 0,
        },
        SchemaType::Map => match v {
            Json::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, item)| (Value::String(k.clone()), Value::String(node_text(item))))
                    .collect(),
            ),
            _ => Value::Null,
        },
        SchemaType::Array => match (v, &schema.items) {
            (Json::Array(items), Some(element)) => {
                Value::Array(items.iter().map(|item| value_of(item, element)).collect())
            }
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_data::SchemaRef;

    fn apply(root: bool, text: &str) -> Result<(SchemaRef, Value), TransformError> {
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value = Value::String(text.into());
        let r = JsonToMapTransform { root }
            .apply(r)?
            .unwrap_or_else(|| panic!("record"));
        Ok((r.value_schema.unwrap_or_else(|| panic!("schema")), r.value))
    }

    #[test]
    fn fields_are_typed_from_the_json() {
        let (s, v) = apply(false, r#"{"i":1,"l":3000000000,"d":3.0,"s":"x","b":true,"n":null,"e":{},"o":{"a":1,"b":{"c":[1,2]}},"arr":[1,2],"mixed":["one",1],"objs":[{},{"one":1}],"nested":[[1,1],[2,2]],"empty":[]} junk"#)
            .unwrap_or_else(|e| panic!("{e}"));
        let fields: Vec<(&str, SchemaType)> = s
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.schema.schema_type))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("i", SchemaType::Int32),
                ("l", SchemaType::Int64),
                ("d", SchemaType::Float64),
                ("s", SchemaType::String),
                ("b", SchemaType::Boolean),
                ("o", SchemaType::Map),
                ("arr", SchemaType::Array),
                ("mixed", SchemaType::Array),
                ("objs", SchemaType::Array),
                ("nested", SchemaType::Array),
            ]
        );
        let Value::Struct(values) = v else {
            panic!("struct")
        };
        assert_eq!(
            values[5],
            Value::Map(vec![
                (Value::String("a".into()), Value::String("1".into())),
                (
                    Value::String("b".into()),
                    Value::String(r#"{"c":[1,2]}"#.into())
                ),
            ])
        );
        assert_eq!(
            values[7],
            Value::Array(vec![Value::String("one".into()), Value::String("1".into())])
        );
        assert_eq!(
            values[9],
            Value::Array(vec![
                Value::Array(vec![Value::Int32(1), Value::Int32(1)]),
                Value::Array(vec![Value::Int32(2), Value::Int32(2)])
            ])
        );
    }

    #[test]
    fn root_mode_keeps_every_key_as_text() {
        let (_, v) =
            apply(true, r#"{"a":1,"b":null,"c":2.0,"d":"x"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            v,
            Value::Struct(vec![Value::Map(vec![
                (Value::String("a".into()), Value::String("1".into())),
                (Value::String("b".into()), Value::String("null".into())),
                (Value::String("c".into()), Value::String("2.0".into())),
                (Value::String("d".into()), Value::String("x".into())),
            ])])
        );
        assert!(apply(false, "[1]").is_err());
        assert!(apply(false, "{bad").is_err());
    }
}
