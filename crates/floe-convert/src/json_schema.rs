//! `io.confluent.connect.json.JsonSchemaConverter`: Confluent-framed JSON with a JSON Schema
//! from a Schema Registry, mapped to Connect schemas as Confluent's `JsonSchemaData` does.

use std::collections::BTreeMap;
use std::sync::Arc;

use floe_data::{Field, Schema, SchemaRef, SchemaType};
use serde_json::Value as Json;

use crate::json::convert;
use crate::registry::{split_frame, ParsedSchemas, RegistryClient, SchemaSource};
use crate::{ConfigError, ConvertError, Converter, SchemaAndValue};

pub(crate) const CLASS: &str = "io.confluent.connect.json.JsonSchemaConverter";

/// The JSON Schema converter.
pub struct JsonSchemaConverter {
    schemas: ParsedSchemas<SchemaRef>,
}

impl JsonSchemaConverter {
    /// Configures from converter properties (`schema.registry.url`, auth keys).
    pub fn configure(props: &BTreeMap<String, String>) -> Result<JsonSchemaConverter, ConfigError> {
        Ok(JsonSchemaConverter::with_source(Arc::new(
            RegistryClient::configure(props)?,
        )))
    }

    /// A converter reading schemas from `source`.
    pub fn with_source(source: Arc<dyn SchemaSource>) -> JsonSchemaConverter {
        JsonSchemaConverter {
            schemas: ParsedSchemas::new(source, "JSON"),
        }
    }

    fn schema(&self, id: u32) -> Result<SchemaRef, ConvertError> {
        let parsed = self.schemas.get(id, |text| {
            let doc: Json = serde_json::from_str(text)
                .map_err(|e| ConvertError::Data(format!("Invalid JSON schema {id}: {e}")))?;
            Ok(Arc::new(to_connect(&doc, &doc, false, 0)?))
        })?;
        Ok(parsed.as_ref().clone())
    }
}

impl Converter for JsonSchemaConverter {
    fn to_connect(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<SchemaAndValue, ConvertError> {
        let Some(bytes) = bytes else {
            return Ok(SchemaAndValue::null());
        };
        let (id, payload) = split_frame(bytes).map_err(ConvertError::Serialization)?;
        let schema = self.schema(id)?;
        let json: Json = serde_json::from_slice(payload)
            .map_err(|e| ConvertError::Serialization(e.to_string()))?;
        let value = convert(&schema, json)?;
        Ok(SchemaAndValue {
            schema: Some(schema),
            value,
        })
    }

    fn class_name(&self) -> &'static str {
        CLASS
    }
}

fn err(msg: impl Into<String>) -> ConvertError {
    ConvertError::Data(msg.into())
}

/// Follows a local `$ref` (`#/definitions/X`, `#/$defs/X`).
fn deref<'a>(root: &'a Json, node: &'a Json) -> Result<&'a Json, ConvertError> {
    match node.get("$ref").and_then(Json::as_str) {
        Some(r) => {
            let path = r
                .strip_prefix("#/")
                .ok_or_else(|| err(format!("Unsupported $ref {r}")))?;
            path.split('/')
                .try_fold(root, |n, part| n.get(part))
                .ok_or_else(|| err(format!("Unresolved $ref {r}")))
        }
        None => Ok(node),
    }
}

fn to_connect(
    root: &Json,
    node: &Json,
    optional: bool,
    depth: usize,
) -> Result<Schema, ConvertError> {
    if depth > 64 {
        return Err(err("JSON schema nests too deeply"));
    }
    let node = deref(root, node)?;
    // Nullable forms: oneOf/anyOf with a null branch, or "type": [..., "null"].
    for key in ["oneOf", "anyOf"] {
        if let Some(branches) = node.get(key).and_then(Json::as_array) {
            let non_null: Vec<&Json> = branches
                .iter()
                .filter(|b| b.get("type").and_then(Json::as_str) != Some("null"))
                .collect();
            if non_null.len() == 1 {
                return to_connect(
                    root,
                    non_null[0],
                    optional || non_null.len() < branches.len(),
                    depth + 1,
                );
            }
            return Err(err(format!(
                "{key} with several non-null branches is not supported"
            )));
        }
    }
    let (type_name, nullable) = match node.get("type") {
        Some(Json::String(t)) => (t.as_str(), false),
        Some(Json::Array(ts)) => {
            let names: Vec<&str> = ts
                .iter()
                .filter_map(Json::as_str)
                .filter(|t| *t != "null")
                .collect();
            match names.as_slice() {
                [one] => (*one, names.len() < ts.len()),
                _ => {
                    return Err(err(
                        "A JSON schema type list with several non-null types is not supported",
                    ))
                }
            }
        }
        _ if node.get("properties").is_some() => ("object", false),
        _ => return Err(err(format!("JSON schema without a type: {node}"))),
    };
    let connect_type = node.get("connect.type").and_then(Json::as_str);
    let mut schema = match type_name {
        "boolean" => Schema::new(SchemaType::Boolean),
        "integer" => Schema::new(match connect_type {
            Some("int8") => SchemaType::Int8,
            Some("int16") => SchemaType::Int16,
            Some("int32") => SchemaType::Int32,
            _ => SchemaType::Int64,
        }),
        "number" => match connect_type {
            Some("float32") => Schema::new(SchemaType::Float32),
            Some("int8") => Schema::new(SchemaType::Int8),
            Some("int16") => Schema::new(SchemaType::Int16),
            Some("int32") => Schema::new(SchemaType::Int32),
            Some("int64") => Schema::new(SchemaType::Int64),
            Some("bytes") => Schema::new(SchemaType::Bytes),
            _ => Schema::new(SchemaType::Float64),
        },
        "string" if connect_type == Some("bytes") => Schema::new(SchemaType::Bytes),
        "string" => Schema::new(SchemaType::String),
        "array" => {
            let items = node
                .get("items")
                .ok_or_else(|| err("Array schema without items"))?;
            Schema::array(to_connect(root, items, false, depth + 1)?)
        }
        "object" if connect_type == Some("map") || node.get("properties").is_none() => {
            let values = match node.get("additionalProperties") {
                Some(v @ Json::Object(_)) => to_connect(root, v, false, depth + 1)?,
                _ => Schema::new(SchemaType::String).optional(),
            };
            Schema::map(Schema::new(SchemaType::String), values)
        }
        "object" => {
            let required: Vec<&str> = node
                .get("required")
                .and_then(Json::as_array)
                .map(|r| r.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            let props = node
                .get("properties")
                .and_then(Json::as_object)
                .ok_or_else(|| err("Object schema without properties"))?;
            let mut fields: Vec<(i64, Field)> = Vec::with_capacity(props.len());
            for (i, (name, prop)) in props.iter().enumerate() {
                let index = prop
                    .get("connect.index")
                    .and_then(Json::as_i64)
                    .unwrap_or(i as i64);
                let field_schema =
                    to_connect(root, prop, !required.contains(&name.as_str()), depth + 1)?;
                fields.push((
                    index,
                    Field {
                        name: name.clone(),
                        schema: Arc::new(field_schema),
                    },
                ));
            }
            fields.sort_by_key(|(i, _)| *i);
            Schema::structure(fields.into_iter().map(|(_, f)| f).collect())
        }
        other => return Err(err(format!("Unsupported JSON schema type {other}"))),
    };
    if let Some(title) = node.get("title").and_then(Json::as_str) {
        schema.name = Some(title.to_string());
    }
    if let Some(Json::Object(params)) = node.get("connect.parameters") {
        for (k, v) in params {
            schema.parameters.insert(
                k.clone(),
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            );
        }
    }
    if let Some(doc) = node.get("description").and_then(Json::as_str) {
        schema.doc = Some(doc.to_string());
    }
    schema.optional = optional || nullable;
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegisteredSchema;
    use floe_data::{logical, Value};

    struct Fixed(String);

    impl SchemaSource for Fixed {
        fn schema_by_id(&self, id: u32) -> Result<RegisteredSchema, String> {
            Ok(RegisteredSchema {
                id,
                schema_type: "JSON".into(),
                schema: self.0.clone(),
                references: vec![],
            })
        }
    }

    #[test]
    fn maps_json_schema_like_json_schema_data() {
        let schema = r#"{"type":"object","title":"shop.Order","properties":{
            "id":{"type":"integer"},
            "qty":{"type":"integer","connect.type":"int32"},
            "note":{"oneOf":[{"type":"null"},{"type":"string"}]},
            "amount":{"type":"number","title":"org.apache.kafka.connect.data.Decimal","connect.type":"bytes","connect.parameters":{"scale":"2"}},
            "tags":{"type":"array","items":{"type":"string"}},
            "attrs":{"type":"object","connect.type":"map","additionalProperties":{"type":"integer"}}
        },"required":["id","qty","amount","tags","attrs"]}"#;
        let c = JsonSchemaConverter::with_source(Arc::new(Fixed(schema.into())));
        let mut bytes = vec![0, 0, 0, 0, 3];
        bytes.extend_from_slice(
            br#"{"id":1,"qty":2,"note":null,"amount":12.345,"tags":["a"],"attrs":{"x":5}}"#,
        );
        let sv = c.to_connect("t", Some(&bytes)).unwrap();
        let s = sv.schema.unwrap();
        assert_eq!(s.name.as_deref(), Some("shop.Order"));
        let types: Vec<(String, SchemaType, bool)> = s
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.schema.schema_type, f.schema.optional))
            .collect();
        assert_eq!(
            types,
            vec![
                ("id".into(), SchemaType::Int64, false),
                ("qty".into(), SchemaType::Int32, false),
                ("note".into(), SchemaType::String, true),
                ("amount".into(), SchemaType::Bytes, false),
                ("tags".into(), SchemaType::Array, false),
                ("attrs".into(), SchemaType::Map, false),
            ]
        );
        assert_eq!(s.fields[3].schema.name.as_deref(), Some(logical::DECIMAL));
        assert_eq!(
            sv.value,
            Value::Struct(vec![
                Value::Int64(1),
                Value::Int32(2),
                Value::Null,
                Value::Decimal {
                    unscaled: 1235,
                    scale: 2
                },
                Value::Array(vec![Value::String("a".into())]),
                Value::Map(vec![(Value::String("x".into()), Value::Int64(5))]),
            ])
        );
    }
}
