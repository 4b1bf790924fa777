//! What the transforms share: the part of a record a `$Key`/`$Value` variant works on, Java's
//! `Requirements` checks, schema building (`SchemaUtil.copySchemaBasics`, `SchemaBuilder.field`),
//! KIP-1040 field reads and a small schema cache.

use std::sync::{Arc, Mutex};

use floe_data::{Field, Schema, SchemaRef, SchemaType, SinkRecord, Value};

use crate::TransformError;

/// Which part of the record a `$Key` or `$Value` transform works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Key,
    Value,
}

impl Target {
    /// The part's schema and value.
    pub fn get(self, record: &SinkRecord) -> (Option<&SchemaRef>, &Value) {
        match self {
            Target::Key => (record.key_schema.as_ref(), &record.key),
            Target::Value => (record.value_schema.as_ref(), &record.value),
        }
    }

    /// Takes the part out of the record (leaving a null value).
    pub fn take(self, record: &mut SinkRecord) -> (Option<SchemaRef>, Value) {
        match self {
            Target::Key => (
                record.key_schema.take(),
                std::mem::replace(&mut record.key, Value::Null),
            ),
            Target::Value => (
                record.value_schema.take(),
                std::mem::replace(&mut record.value, Value::Null),
            ),
        }
    }

    /// Puts a new schema and value in the part.
    pub fn set(self, record: &mut SinkRecord, schema: Option<SchemaRef>, value: Value) {
        match self {
            Target::Key => {
                record.key_schema = schema;
                record.key = value;
            }
            Target::Value => {
                record.value_schema = schema;
                record.value = value;
            }
        }
    }

    /// `$Key` or `$Value`, the suffix of the Java class name.
    pub fn suffix(self) -> &'static str {
        match self {
            Target::Key => "$Key",
            Target::Value => "$Value",
        }
    }
}

/// The Java class of a value as Connect holds it, for error messages.
pub fn java_class(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Boolean(_) => "java.lang.Boolean",
        Value::Int8(_) => "java.lang.Byte",
        Value::Int16(_) => "java.lang.Short",
        Value::Int32(_) => "java.lang.Integer",
        Value::Int64(_) => "java.lang.Long",
        Value::Float32(_) => "java.lang.Float",
        Value::Float64(_) => "java.lang.Double",
        Value::String(_) => "java.lang.String",
        Value::Bytes(_) => "[B",
        Value::Array(_) => "java.util.ArrayList",
        Value::Map(_) => "java.util.HashMap",
        Value::Struct(_) => "org.apache.kafka.connect.data.Struct",
        Value::Decimal { .. } => "java.math.BigDecimal",
        Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => "java.util.Date",
    }
}

/// The Connect type of a value without a schema (`ConnectSchema.schemaType(class)`): None for
/// the logical types, which a schema alone can tell.
pub fn inferred_type(v: &Value) -> Option<SchemaType> {
    Some(match v {
        Value::Boolean(_) => SchemaType::Boolean,
        Value::Int8(_) => SchemaType::Int8,
        Value::Int16(_) => SchemaType::Int16,
        Value::Int32(_) => SchemaType::Int32,
        Value::Int64(_) => SchemaType::Int64,
        Value::Float32(_) => SchemaType::Float32,
        Value::Float64(_) => SchemaType::Float64,
        Value::String(_) => SchemaType::String,
        Value::Bytes(_) => SchemaType::Bytes,
        Value::Array(_) => SchemaType::Array,
        Value::Map(_) => SchemaType::Map,
        Value::Struct(_) => SchemaType::Struct,
        Value::Null
        | Value::Decimal { .. }
        | Value::Date(_)
        | Value::Time(_)
        | Value::Timestamp(_) => return None,
    })
}

/// `Requirements.requireMap`.
pub fn require_map<'a>(
    v: &'a Value,
    purpose: &str,
) -> Result<&'a Vec<(Value, Value)>, TransformError> {
    match v {
        Value::Map(entries) => Ok(entries),
        other => Err(TransformError::data(format!(
            "Only Map objects supported in absence of schema for [{purpose}], found: {}",
            java_class(other)
        ))),
    }
}

/// `Requirements.requireMap`, taking the entries.
pub fn into_map(v: Value, purpose: &str) -> Result<Vec<(Value, Value)>, TransformError> {
    match v {
        Value::Map(entries) => Ok(entries),
        other => Err(TransformError::data(format!(
            "Only Map objects supported in absence of schema for [{purpose}], found: {}",
            java_class(&other)
        ))),
    }
}

/// `Requirements.requireStruct`, taking the field values.
pub fn into_struct(v: Value, purpose: &str) -> Result<Vec<Value>, TransformError> {
    match v {
        Value::Struct(values) => Ok(values),
        other => Err(TransformError::data(format!(
            "Only Struct objects supported for [{purpose}], found: {}",
            java_class(&other)
        ))),
    }
}

/// `Requirements.requireStruct`.
pub fn require_struct<'a>(v: &'a Value, purpose: &str) -> Result<&'a Vec<Value>, TransformError> {
    match v {
        Value::Struct(values) => Ok(values),
        other => Err(TransformError::data(format!(
            "Only Struct objects supported for [{purpose}], found: {}",
            java_class(other)
        ))),
    }
}

/// The schema a struct value must come with.
pub fn struct_schema<'a>(
    schema: Option<&'a SchemaRef>,
    purpose: &str,
) -> Result<&'a Schema, TransformError> {
    match schema {
        Some(s) if s.schema_type == SchemaType::Struct => Ok(s),
        Some(_) => Err(TransformError::data(
            "Cannot list fields on non-struct type",
        )),
        None => Err(TransformError::data(format!(
            "Schema required for [{purpose}]"
        ))),
    }
}

/// `SchemaUtil.copySchemaBasics(source, SchemaBuilder.struct())`: a struct schema with the
/// source's name, version, doc and parameters, no fields, required and without a default.
pub fn struct_basics(source: &Schema) -> Schema {
    let mut s = Schema::new(SchemaType::Struct);
    s.name = source.name.clone();
    s.version = source.version;
    s.doc = source.doc.clone();
    s.parameters = source.parameters.clone();
    s
}

/// `SchemaUtil.copySchemaBasics(source)`: a schema of the same type (with its element, key and
/// value schemas), name, version, doc and parameters; required, without a default or fields.
pub fn basics(source: &Schema) -> Schema {
    let mut s = Schema::new(source.schema_type);
    s.name = source.name.clone();
    s.version = source.version;
    s.doc = source.doc.clone();
    s.parameters = source.parameters.clone();
    s.items = source.items.clone();
    s.keys = source.keys.clone();
    s.values = source.values.clone();
    s
}

/// `SchemaBuilder.field`: appends a field, refusing a name already there.
pub fn add_field(
    schema: &mut Schema,
    name: &str,
    field_schema: SchemaRef,
) -> Result<(), TransformError> {
    if schema.fields.iter().any(|f| f.name == name) {
        return Err(TransformError::schema_builder(format!(
            "Cannot create field because of field name duplication {name}"
        )));
    }
    schema.fields.push(Field {
        name: name.to_string(),
        schema: field_schema,
    });
    Ok(())
}

/// A field of a struct value as `Struct.get` (the field's default when the value is null and
/// `with_default`) or `Struct.getWithoutDefault` reads it.
pub fn field_value(values: &[Value], field: &Field, index: usize, with_default: bool) -> Value {
    match values.get(index) {
        Some(Value::Null) | None if with_default => {
            field.schema.default.clone().unwrap_or(Value::Null)
        }
        Some(v) => v.clone(),
        None => Value::Null,
    }
}

/// `Struct.put`'s check of a value against its field: a null needs an optional schema.
pub fn check_put(field: &str, schema: &Schema, value: &Value) -> Result<(), TransformError> {
    if value.is_null() && !schema.optional {
        return Err(TransformError::data(format!(
            "Invalid value: null used for required field: \"{field}\", schema type: {}",
            schema.schema_type.name().to_ascii_uppercase()
        )));
    }
    Ok(())
}

/// The value of `key` in a schemaless map.
pub fn map_get<'a>(entries: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// Sets `key` in a schemaless map: replaced in place, or appended.
pub fn map_put(entries: &mut Vec<(Value, Value)>, key: &str, value: Value) {
    match entries.iter_mut().find(|(k, _)| k.as_str() == Some(key)) {
        Some((_, v)) => *v = value,
        None => entries.push((Value::String(key.to_string()), value)),
    }
}

/// Removes `key` from a schemaless map, returning its value.
pub fn map_remove(entries: &mut Vec<(Value, Value)>, key: &str) -> Option<Value> {
    let at = entries.iter().position(|(k, _)| k.as_str() == Some(key))?;
    Some(entries.remove(at).1)
}

/// Derived schemas per input schema, as Java's transforms keep them (an LRU of 16): schemas
/// from a converter are shared `Arc`s, so a hit is a pointer comparison.
#[derive(Default)]
pub struct SchemaCache {
    entries: Mutex<Vec<(SchemaRef, SchemaRef)>>,
}

const CACHE_SIZE: usize = 16;

impl SchemaCache {
    /// The schema derived from `input`, made by `derive` on a miss.
    pub fn get_or(
        &self,
        input: &SchemaRef,
        derive: impl FnOnce() -> Result<Schema, TransformError>,
    ) -> Result<SchemaRef, TransformError> {
        if let Ok(entries) = self.entries.lock() {
            if let Some((_, out)) = entries
                .iter()
                .find(|(k, _)| Arc::ptr_eq(k, input) || **k == **input)
            {
                return Ok(out.clone());
            }
        }
        let out = Arc::new(derive()?);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_SIZE {
                entries.remove(0);
            }
            entries.push((input.clone(), out.clone()));
        }
        Ok(out)
    }
}

/// Optional or required primitive schemas, as Connect's `Schema.OPTIONAL_STRING_SCHEMA` etc.
pub fn primitive(t: SchemaType, optional: bool) -> SchemaRef {
    let s = Schema::new(t);
    Arc::new(if optional { s.optional() } else { s })
}

/// The logical `Timestamp` schema (version 1).
pub fn timestamp_schema(optional: bool) -> Schema {
    logical(floe_data::logical::TIMESTAMP, SchemaType::Int64, optional)
}

/// A logical schema (`Date`, `Time`, `Timestamp`) of version 1.
pub fn logical(name: &str, t: SchemaType, optional: bool) -> Schema {
    let mut s = Schema::new(t).named(name);
    s.version = Some(1);
    s.optional = optional;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_name_the_java_class() {
        assert_eq!(
            require_map(&Value::Int32(1), "cast types").err().map(|e| e.message),
            Some("Only Map objects supported in absence of schema for [cast types], found: java.lang.Integer".into())
        );
        assert_eq!(
            require_struct(&Value::Null, "field insertion")
                .err()
                .map(|e| e.message),
            Some("Only Struct objects supported for [field insertion], found: null".into())
        );
    }

    #[test]
    fn the_cache_derives_once_per_schema() {
        let cache = SchemaCache::default();
        let input = Arc::new(Schema::new(SchemaType::Int32));
        let mut calls = 0;
        for _ in 0..3 {
            let out = cache.get_or(&input, || {
                calls += 1;
                Ok(Schema::new(SchemaType::String))
            });
            assert!(out.is_ok());
        }
        assert_eq!(calls, 1);
    }

    #[test]
    fn defaults_fill_null_fields_only_when_asked() {
        let mut schema = Schema::new(SchemaType::Int32).optional();
        schema.default = Some(Value::Int32(7));
        let field = Field {
            name: "a".into(),
            schema: Arc::new(schema),
        };
        assert_eq!(
            field_value(&[Value::Null], &field, 0, true),
            Value::Int32(7)
        );
        assert_eq!(field_value(&[Value::Null], &field, 0, false), Value::Null);
        assert_eq!(
            field_value(&[Value::Int32(1)], &field, 0, true),
            Value::Int32(1)
        );
    }
}
