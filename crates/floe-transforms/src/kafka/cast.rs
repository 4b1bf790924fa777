//! `Cast$Key` / `Cast$Value`: casts fields (or the whole key/value) to another primitive type.

use std::sync::Arc;

use base64::Engine;
use floe_data::config::{java_split, parse_list, ConfigKey, ConfigType, Importance};
use floe_data::{logical, Schema, SchemaRef, SchemaType, SinkRecord, Value};

use crate::java::number::{
    big_decimal_to_string, decimal_integral, double_to_string, float_to_string, parse_java_double,
    parse_java_int,
};
use crate::java::values::date_text;
use crate::props::{
    Check, KeySpec, Props, REPLACE_NULL_WITH_DEFAULT, REPLACE_NULL_WITH_DEFAULT_DOC,
};
use crate::support::{
    field_value, inferred_type, into_map, into_struct, java_class, map_get, map_put, struct_basics,
    SchemaCache, Target,
};
use crate::{ConfigError, TransformError, Transformation};

const PURPOSE: &str = "cast types";
const OUTPUTS: [SchemaType; 8] = [
    SchemaType::Int8,
    SchemaType::Int16,
    SchemaType::Int32,
    SchemaType::Int64,
    SchemaType::Float32,
    SchemaType::Float64,
    SchemaType::Boolean,
    SchemaType::String,
];

/// Cast's keys.
pub fn keys() -> Vec<KeySpec> {
    vec![
        KeySpec::checked(
            ConfigKey::required("spec", ConfigType::List, Importance::High, "List of fields and the type to cast them to of the form field1:type,field2:type to cast fields of Maps or Structs. A single type to cast the entire value. Valid types are int8, int16, int32, int64, float32, float64, boolean, and string. Note that binary fields can only be cast to string."),
            Check::Custom(check_spec),
        ),
        KeySpec::new(ConfigKey::optional(REPLACE_NULL_WITH_DEFAULT, ConfigType::Boolean, "true", Importance::Medium, REPLACE_NULL_WITH_DEFAULT_DOC)),
    ]
}

fn check_spec(_name: &str, value: Option<&str>) -> Option<String> {
    parse_spec(&value.map(parse_list).unwrap_or_default()).err()
}

type Spec = (Option<SchemaType>, Vec<(String, SchemaType)>);

fn parse_spec(items: &[String]) -> Result<Spec, String> {
    if items.is_empty() {
        return Err("Must specify at least one field to cast.".into());
    }
    let mut whole = None;
    let mut fields: Vec<(String, SchemaType)> = Vec::new();
    for item in items {
        let parts = java_split(item, ':');
        match parts.as_slice() {
            [t] => whole = Some(cast_type(t)?),
            [field, t] => {
                let t = cast_type(t)?;
                let field = field.trim().to_string();
                fields.retain(|(f, _)| *f != field);
                fields.push((field, t));
            }
            _ => {
                return Err(format!(
                    "Invalid value [{}] for configuration renames: Invalid rename mapping: {item}",
                    items.join(", ")
                ))
            }
        }
    }
    if whole.is_some() && items.len() > 1 {
        return Err("Cast transformations that specify a type to cast the entire value to may only specify a single cast in their spec".into());
    }
    Ok((whole, fields))
}

fn cast_type(name: &str) -> Result<SchemaType, String> {
    let upper = name.trim().to_ascii_uppercase();
    let t = SchemaType::from_name(&upper.to_ascii_lowercase()).ok_or_else(|| {
        format!(
            "Invalid value java.lang.IllegalArgumentException: No enum constant org.apache.kafka.connect.data.Schema.Type.{upper} for configuration Invalid type found in casting spec: {}",
            name.trim()
        )
    })?;
    if !OUTPUTS.contains(&t) {
        return Err(format!("Cast transformation does not support casting to {upper}; supported types are [INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING]"));
    }
    Ok(t)
}

/// A configured Cast.
pub struct Cast {
    target: Target,
    whole: Option<SchemaType>,
    fields: Vec<(String, SchemaType)>,
    with_default: bool,
    cache: SchemaCache,
}

impl Cast {
    pub fn new(target: Target, props: &Props) -> Result<Cast, ConfigError> {
        let (whole, fields) = parse_spec(&props.list("spec")).map_err(ConfigError)?;
        Ok(Cast {
            target,
            whole,
            fields,
            with_default: props.replace_null_with_default()?,
            cache: SchemaCache::default(),
        })
    }

    fn field_type(&self, name: &str) -> Option<SchemaType> {
        self.fields.iter().find(|(f, _)| f == name).map(|(_, t)| *t)
    }

    fn schema_for(&self, schema: &SchemaRef) -> Result<SchemaRef, TransformError> {
        self.cache.get_or(schema, || {
            if let Some(t) = self.whole {
                return whole_schema(schema, t);
            }
            if schema.schema_type != SchemaType::Struct {
                return Err(TransformError::data(
                    "Cannot list fields on non-struct type",
                ));
            }
            let mut out = struct_basics(schema);
            out.optional = schema.optional;
            for f in &schema.fields {
                let field_schema = match self.field_type(&f.name) {
                    Some(t) => {
                        let mut s = Schema::new(t);
                        s.optional = f.schema.optional;
                        if let Some(d) = &f.schema.default {
                            s.default = Some(cast(Some(&f.schema), d, t)?);
                        }
                        Arc::new(s)
                    }
                    None => f.schema.clone(),
                };
                out.fields.push(floe_data::Field {
                    name: f.name.clone(),
                    schema: field_schema,
                });
            }
            Ok(out)
        })
    }
}

/// The schema of a whole value cast to `t`: the original's name, version, doc and parameters
/// (as Java copies them) when they still describe the value — a logical type keeps its name
/// only when cast to its own base type (a Timestamp to int64), so the sink reads what Java's
/// reads (Java's sink decides by the base type for the others).
fn whole_schema(schema: &Schema, t: SchemaType) -> Result<Schema, TransformError> {
    let mut s = Schema::new(t);
    let keeps_name = match schema.logical_name() {
        Some(_) => schema.schema_type == t,
        None => true,
    };
    if keeps_name {
        s.name = schema.name.clone();
        s.version = schema.version;
        s.parameters = schema.parameters.clone();
    }
    s.doc = schema.doc.clone();
    s.optional = schema.optional;
    if let Some(d) = &schema.default {
        s.default = Some(cast(Some(schema), d, t)?);
    }
    Ok(s)
}

impl Transformation for Cast {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        let (schema, value) = self.target.take(&mut record);
        if value.is_null() {
            self.target.set(&mut record, schema, value);
            return Ok(Some(record));
        }
        let (schema, value) = match schema {
            None => (None, self.schemaless(value)?),
            Some(schema) => {
                let out = self.schema_for(&schema)?;
                let value = self.with_schema(&schema, &out, value)?;
                (Some(out), value)
            }
        };
        self.target.set(&mut record, schema, value);
        Ok(Some(record))
    }
}

impl Cast {
    fn schemaless(&self, value: Value) -> Result<Value, TransformError> {
        if let Some(t) = self.whole {
            return cast(None, &value, t);
        }
        let mut map = into_map(value, PURPOSE)?;
        for (field, t) in &self.fields {
            let cast_value = match map_get(&map, field) {
                Some(v) => cast(None, v, *t)?,
                None => Value::Null,
            };
            map_put(&mut map, field, cast_value);
        }
        Ok(Value::Map(map))
    }

    fn with_schema(
        &self,
        schema: &Schema,
        out: &Schema,
        value: Value,
    ) -> Result<Value, TransformError> {
        if let Some(t) = self.whole {
            let v = cast(Some(schema), &value, t)?;
            return Ok(relogical(out, v));
        }
        let values = into_struct(value, PURPOSE)?;
        let mut cast_values = Vec::with_capacity(values.len());
        for (i, f) in schema.fields.iter().enumerate() {
            let v = field_value(&values, f, i, self.with_default);
            cast_values.push(match self.field_type(&f.name) {
                Some(t) => cast(Some(&f.schema), &v, t)?,
                None => v,
            });
        }
        Ok(Value::Struct(cast_values))
    }
}

/// A value under a schema that kept its logical name holds the logical value again.
fn relogical(schema: &Schema, v: Value) -> Value {
    match (schema.logical_name(), v) {
        (Some(logical::TIMESTAMP), Value::Int64(ms)) => Value::Timestamp(ms),
        (Some(logical::DATE), Value::Int32(d)) => Value::Date(d),
        (Some(logical::TIME), Value::Int32(t)) => Value::Time(t),
        (_, v) => v,
    }
}

/// A Java number, as `Number`'s narrowing methods see it.
#[derive(Clone, Copy)]
enum Number {
    Long(i64),
    Double(f64),
    Decimal(i128, i32),
}

impl Number {
    fn long(self) -> i64 {
        match self {
            Number::Long(n) => n,
            Number::Double(d) => d as i64,
            Number::Decimal(u, s) => decimal_integral(u, s) as i64,
        }
    }
    fn int(self) -> i32 {
        match self {
            Number::Long(n) => n as i32,
            Number::Double(d) => d as i32,
            Number::Decimal(u, s) => decimal_integral(u, s) as i32,
        }
    }
    fn double(self) -> f64 {
        match self {
            Number::Long(n) => n as f64,
            Number::Double(d) => d,
            Number::Decimal(u, s) => u as f64 / 10f64.powi(s),
        }
    }
}

/// Casts one value to `t` as Java's `Cast.castValueToType` does.
pub fn cast(
    schema: Option<&Schema>,
    value: &Value,
    t: SchemaType,
) -> Result<Value, TransformError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let source = match schema {
        Some(s) => Some(s.schema_type),
        None => inferred_type(value),
    };
    let Some(source) = source else {
        return Err(TransformError::data(format!(
            "Cast transformation was passed a value of type class {} which is not supported by Connect's data API",
            java_class(value)
        )));
    };
    if matches!(
        source,
        SchemaType::Array | SchemaType::Map | SchemaType::Struct
    ) {
        return Err(TransformError::data(format!(
            "Cast transformation does not support casting from {}; supported types are [INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING, BYTES]",
            source.name().to_ascii_uppercase()
        )));
    }
    if t == SchemaType::String {
        return Ok(Value::String(to_text(value)));
    }
    let number = match value {
        Value::Int8(n) => Number::Long((*n).into()),
        Value::Int16(n) => Number::Long((*n).into()),
        Value::Int32(n) | Value::Date(n) | Value::Time(n) => Number::Long((*n).into()),
        Value::Int64(n) | Value::Timestamp(n) => Number::Long(*n),
        Value::Float32(f) => Number::Double((*f).into()),
        Value::Float64(f) => Number::Double(*f),
        Value::Decimal { unscaled, scale } => Number::Decimal(*unscaled, *scale),
        Value::Boolean(b) => {
            if t == SchemaType::Boolean {
                return Ok(Value::Boolean(*b));
            }
            Number::Long(i64::from(*b))
        }
        Value::String(s) => return parse_text(s, t),
        other => {
            return Err(TransformError::data(format!(
                "Unexpected type in Cast transformation: class {}",
                java_class(other)
            )))
        }
    };
    Ok(match t {
        SchemaType::Int8 => Value::Int8(number.int() as i8),
        SchemaType::Int16 => Value::Int16(number.int() as i16),
        SchemaType::Int32 => Value::Int32(number.int()),
        SchemaType::Int64 => Value::Int64(number.long()),
        SchemaType::Float32 => Value::Float32(number.double() as f32),
        SchemaType::Float64 => Value::Float64(number.double()),
        SchemaType::Boolean => Value::Boolean(number.long() != 0),
        _ => {
            return Err(TransformError::data(format!(
                "Unexpected type in Cast transformation: {t}"
            )))
        }
    })
}

fn parse_text(s: &str, t: SchemaType) -> Result<Value, TransformError> {
    let out_of_range = || {
        TransformError::data(format!(
            "Value ({s}) was out of range for requested data type"
        ))
    };
    Ok(match t {
        SchemaType::Int8 => Value::Int8(parse_java_int(s).ok_or_else(out_of_range)?),
        SchemaType::Int16 => Value::Int16(parse_java_int(s).ok_or_else(out_of_range)?),
        SchemaType::Int32 => Value::Int32(parse_java_int(s).ok_or_else(out_of_range)?),
        SchemaType::Int64 => Value::Int64(parse_java_int(s).ok_or_else(out_of_range)?),
        SchemaType::Float32 => {
            Value::Float32(parse_java_double(s).ok_or_else(out_of_range)? as f32)
        }
        SchemaType::Float64 => Value::Float64(parse_java_double(s).ok_or_else(out_of_range)?),
        SchemaType::Boolean => Value::Boolean(s.eq_ignore_ascii_case("true")),
        _ => return Err(out_of_range()),
    })
}

/// A value as Java's `toString` (dates as `Values.dateFormatFor` prints them, bytes in
/// Base64).
pub fn to_text(value: &Value) -> String {
    match value {
        Value::Float32(f) => float_to_string(*f),
        Value::Float64(d) => double_to_string(*d),
        Value::Decimal { unscaled, scale } => big_decimal_to_string(*unscaled, *scale),
        Value::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b),
        Value::Date(d) => date_text(i64::from(*d) * 86_400_000),
        Value::Time(t) => date_text(i64::from(*t)),
        Value::Timestamp(ms) => date_text(*ms),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn props(spec: &str) -> Props {
        Props::new(BTreeMap::from([("spec".to_string(), spec.to_string())]))
    }

    fn cast_value(spec: &str, value: Value) -> Result<Value, TransformError> {
        let c = Cast::new(Target::Value, &props(spec)).map_err(|e| TransformError::data(e.0))?;
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value = value;
        c.apply(r)
            .map(|r| r.map(|r| r.value).unwrap_or(Value::Null))
    }

    #[test]
    fn spec_errors_are_javas() {
        assert_eq!(
            check_spec("spec", None).as_deref(),
            Some("Must specify at least one field to cast.")
        );
        assert_eq!(
            check_spec("spec", Some("a:b:c")).as_deref(),
            Some("Invalid value [a:b:c] for configuration renames: Invalid rename mapping: a:b:c")
        );
        assert_eq!(
            check_spec("spec", Some("a:bytes")).as_deref(),
            Some("Cast transformation does not support casting to BYTES; supported types are [INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING]")
        );
        assert_eq!(
            check_spec("spec", Some("a:foo")).as_deref(),
            Some("Invalid value java.lang.IllegalArgumentException: No enum constant org.apache.kafka.connect.data.Schema.Type.FOO for configuration Invalid type found in casting spec: foo")
        );
        assert!(check_spec("spec", Some("int32,a:int8")).is_some());
        assert!(check_spec("spec", Some("a:Int32, b:string")).is_none());
    }

    #[test]
    fn schemaless_casts_follow_java() {
        let map = |pairs: Vec<(&str, Value)>| {
            Value::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (Value::String(k.into()), v))
                    .collect(),
            )
        };
        assert_eq!(
            cast_value("a:int32", map(vec![("b", Value::Int64(1))])),
            Ok(map(vec![("b", Value::Int64(1)), ("a", Value::Null)]))
        );
        assert_eq!(
            cast_value("int8", Value::String("300".into()))
                .err()
                .map(|e| e.message),
            Some("Value (300) was out of range for requested data type".into())
        );
        assert_eq!(
            cast_value("int8", Value::Float64(1e20)),
            Ok(Value::Int8(-1))
        );
        assert_eq!(
            cast_value("int32", Value::Float64(1e20)),
            Ok(Value::Int32(i32::MAX))
        );
        assert_eq!(
            cast_value("string", Value::Float64(1e20)),
            Ok(Value::String("1.0E20".into()))
        );
        assert_eq!(
            cast_value("int32", Value::Float64(f64::NAN)),
            Ok(Value::Int32(0))
        );
        assert_eq!(
            cast_value("boolean", Value::Float64(0.5)),
            Ok(Value::Boolean(false))
        );
        assert_eq!(
            cast_value("boolean", Value::String("TRUE".into())),
            Ok(Value::Boolean(true))
        );
        assert_eq!(
            cast_value("boolean", Value::String("yes".into())),
            Ok(Value::Boolean(false))
        );
        assert_eq!(
            cast_value("int32", Value::Float64(-3.9)),
            Ok(Value::Int32(-3))
        );
        assert_eq!(
            cast_value("string", Value::Bytes(vec![1, 2, 3])),
            Ok(Value::String("AQID".into()))
        );
        assert_eq!(
            cast_value("int32", Value::Bytes(vec![1]))
                .err()
                .map(|e| e.message),
            Some("Unexpected type in Cast transformation: class [B".into())
        );
        assert_eq!(
            cast_value("int32", Value::Array(vec![])).err().map(|e| e.message),
            Some("Cast transformation does not support casting from ARRAY; supported types are [INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING, BYTES]".into())
        );
        assert_eq!(cast_value("int32", Value::Null), Ok(Value::Null));
    }

    #[test]
    fn struct_fields_get_plain_schemas_and_logical_values_convert() {
        let mut dec = Schema::decimal(2);
        dec.optional = false;
        let schema = Arc::new(Schema::structure(vec![
            floe_data::Field::new("d", dec),
            floe_data::Field::new("ts", crate::support::timestamp_schema(false)),
            floe_data::Field::new("keep", Schema::new(SchemaType::String)),
        ]));
        let c =
            Cast::new(Target::Value, &props("d:int32,ts:string")).unwrap_or_else(|e| panic!("{e}"));
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value_schema = Some(schema);
        r.value = Value::Struct(vec![
            Value::Decimal {
                unscaled: 123450,
                scale: 2,
            },
            Value::Timestamp(1_700_000_000_123),
            Value::String("x".into()),
        ]);
        let out = c
            .apply(r)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no record"));
        assert_eq!(
            out.value,
            Value::Struct(vec![
                Value::Int32(1234),
                Value::String("2023-11-14T22:13:20.123Z".into()),
                Value::String("x".into())
            ])
        );
        let s = out.value_schema.unwrap_or_else(|| panic!("schema"));
        assert_eq!(s.fields[0].schema.schema_type, SchemaType::Int32);
        assert_eq!(s.fields[0].schema.name, None);
        assert_eq!(s.fields[1].schema.schema_type, SchemaType::String);
    }

    #[test]
    fn a_whole_timestamp_cast_to_int64_stays_a_timestamp_column() {
        let c = Cast::new(Target::Value, &props("int64")).unwrap_or_else(|e| panic!("{e}"));
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value_schema = Some(Arc::new(crate::support::timestamp_schema(false)));
        r.value = Value::Timestamp(5);
        let out = c
            .apply(r)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no record"));
        assert_eq!(out.value, Value::Timestamp(5));
        assert_eq!(
            out.value_schema.and_then(|s| s.name.clone()).as_deref(),
            Some(logical::TIMESTAMP)
        );
    }
}
