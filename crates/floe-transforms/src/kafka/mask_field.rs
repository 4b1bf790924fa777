//! `MaskField$Key` / `MaskField$Value`: replaces fields with a null-equivalent of their type
//! (`0`, `false`, `""`, empty list or map, the epoch) or with a given replacement.

use floe_data::config::{ConfigKey, ConfigType, Importance};
use floe_data::{SinkRecord, Value};

use crate::java::number::{decimal_integral, parse_big_decimal};
use crate::props::{
    Check, KeySpec, Props, REPLACE_NULL_WITH_DEFAULT, REPLACE_NULL_WITH_DEFAULT_DOC,
};
use crate::support::{field_value, into_map, into_struct, java_class, map_get, map_put, Target};
use crate::{ConfigError, TransformError, Transformation};

const PURPOSE: &str = "mask fields";

/// MaskField's keys.
pub fn keys() -> Vec<KeySpec> {
    vec![
        KeySpec::checked(
            ConfigKey::required("fields", ConfigType::List, Importance::High, "Names of fields to mask."),
            Check::NonEmptyList,
        ),
        KeySpec::checked(
            ConfigKey::nullable("replacement", ConfigType::String, Importance::Low, "Custom value replacement, that will be applied to all 'fields' values (numeric or non-empty string values only)."),
            Check::NonEmptyString,
        ),
        KeySpec::new(ConfigKey::optional(REPLACE_NULL_WITH_DEFAULT, ConfigType::Boolean, "true", Importance::Medium, REPLACE_NULL_WITH_DEFAULT_DOC)),
    ]
}

/// A configured MaskField.
pub struct MaskField {
    target: Target,
    fields: Vec<String>,
    replacement: Option<String>,
    with_default: bool,
}

impl MaskField {
    pub fn new(target: Target, props: &Props) -> Result<MaskField, ConfigError> {
        Ok(MaskField {
            target,
            fields: props.list("fields"),
            replacement: props.string("replacement", None),
            with_default: props.replace_null_with_default()?,
        })
    }

    fn masked(&self, v: &Value) -> Result<Value, TransformError> {
        match &self.replacement {
            None => null_equivalent(v),
            Some(r) => replaced(v, r),
        }
    }
}

fn null_equivalent(v: &Value) -> Result<Value, TransformError> {
    Ok(match v {
        Value::Null => Value::Null,
        Value::Boolean(_) => Value::Boolean(false),
        Value::Int8(_) => Value::Int8(0),
        Value::Int16(_) => Value::Int16(0),
        Value::Int32(_) => Value::Int32(0),
        Value::Int64(_) => Value::Int64(0),
        Value::Float32(_) => Value::Float32(0.0),
        Value::Float64(_) => Value::Float64(0.0),
        Value::Decimal { scale, .. } => Value::Decimal {
            unscaled: 0,
            scale: *scale,
        },
        Value::Date(_) => Value::Date(0),
        Value::Time(_) => Value::Time(0),
        Value::Timestamp(_) => Value::Timestamp(0),
        Value::String(_) => Value::String(String::new()),
        Value::Array(_) => Value::Array(Vec::new()),
        Value::Map(_) => Value::Map(Vec::new()),
        other => {
            return Err(TransformError::data(format!(
                "Cannot mask value of type: class {}",
                java_class(other)
            )))
        }
    })
}

fn replaced(v: &Value, r: &str) -> Result<Value, TransformError> {
    let not_a_number = || {
        TransformError::data(format!(
            "Unable to convert {r} (class java.lang.String) to a number"
        ))
    };
    let integral = || {
        parse_big_decimal(r)
            .map(|(u, s)| decimal_integral(u, s) as i64)
            .ok_or_else(not_a_number)
    };
    let double = || {
        parse_big_decimal(r)
            .map(|(u, s)| u as f64 / 10f64.powi(s))
            .ok_or_else(not_a_number)
    };
    Ok(match v {
        Value::Null => Value::Null,
        Value::Int8(_) => Value::Int8(integral()? as i8),
        Value::Int16(_) => Value::Int16(integral()? as i16),
        Value::Int32(_) => Value::Int32(integral()? as i32),
        Value::Int64(_) => Value::Int64(integral()?),
        Value::Float32(_) => Value::Float32(double()? as f32),
        Value::Float64(_) => Value::Float64(double()?),
        Value::String(_) => Value::String(r.to_string()),
        Value::Decimal { .. } => {
            let (unscaled, scale) = parse_big_decimal(r).ok_or_else(|| {
                TransformError::data(format!(
                    "Unable to convert {r} (class java.lang.String) to number"
                ))
            })?;
            Value::Decimal { unscaled, scale }
        }
        other => {
            return Err(TransformError::data(format!(
                "Cannot mask value of type class {} with custom replacement.",
                java_class(other)
            )))
        }
    })
}

impl Transformation for MaskField {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        let (schema, value) = self.target.take(&mut record);
        let value = match &schema {
            None => {
                let mut map = into_map(value, PURPOSE)?;
                for f in &self.fields {
                    let masked = match map_get(&map, f) {
                        Some(v) => self.masked(v)?,
                        None => Value::Null,
                    };
                    map_put(&mut map, f, masked);
                }
                Value::Map(map)
            }
            Some(schema) => {
                let values = into_struct(value, PURPOSE)?;
                let mut out = Vec::with_capacity(values.len());
                for (i, f) in schema.fields.iter().enumerate() {
                    let v = field_value(&values, f, i, self.with_default);
                    out.push(if self.fields.contains(&f.name) {
                        self.masked(&v)?
                    } else {
                        v
                    });
                }
                Value::Struct(out)
            }
        };
        self.target.set(&mut record, schema, value);
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn mask(replacement: Option<&str>, value: Value) -> Result<Value, TransformError> {
        let mut p = BTreeMap::from([("fields".to_string(), "a, missing".to_string())]);
        if let Some(r) = replacement {
            p.insert("replacement".into(), r.into());
        }
        let t =
            MaskField::new(Target::Value, &Props::new(p)).map_err(|e| TransformError::data(e.0))?;
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value = value;
        t.apply(r)
            .map(|r| r.map(|r| r.value).unwrap_or(Value::Null))
    }

    fn one(v: Value) -> Value {
        Value::Map(vec![(Value::String("a".into()), v)])
    }

    fn masked(v: Value) -> Value {
        Value::Map(vec![
            (Value::String("a".into()), v),
            (Value::String("missing".into()), Value::Null),
        ])
    }

    #[test]
    fn fields_are_masked_by_type() {
        assert_eq!(
            mask(None, one(Value::Int64(5))),
            Ok(masked(Value::Int64(0)))
        );
        assert_eq!(
            mask(None, one(Value::String("secret".into()))),
            Ok(masked(Value::String(String::new())))
        );
        assert_eq!(
            mask(Some("1.5"), one(Value::Int64(5))),
            Ok(masked(Value::Int64(1)))
        );
        assert_eq!(
            mask(Some("***"), one(Value::String("secret".into()))),
            Ok(masked(Value::String("***".into())))
        );
        assert_eq!(
            mask(Some("abc"), one(Value::Int64(5)))
                .err()
                .map(|e| e.message),
            Some("Unable to convert abc (class java.lang.String) to a number".into())
        );
        assert_eq!(
            mask(Some("x"), one(Value::Boolean(true)))
                .err()
                .map(|e| e.message),
            Some(
                "Cannot mask value of type class java.lang.Boolean with custom replacement.".into()
            )
        );
        assert_eq!(
            mask(None, one(Value::Bytes(vec![1])))
                .err()
                .map(|e| e.message),
            Some("Cannot mask value of type: class [B".into())
        );
        assert_eq!(
            mask(None, Value::Null).err().map(|e| e.message),
            Some(
                "Only Map objects supported in absence of schema for [mask fields], found: null"
                    .into()
            )
        );
    }
}
