//! `TimestampConverter$Key` / `TimestampConverter$Value`: converts a timestamp (the whole key
//! or value, or one field) between strings, Unix numbers and Connect's Date, Time and Timestamp.

use std::sync::Arc;

use floe_data::config::{ConfigKey, ConfigType, Importance};
use floe_data::{logical, Schema, SchemaRef, SchemaType, SinkRecord, Value};

use crate::java::date_format::DateFormat;
use crate::props::{
    Check, KeySpec, Props, REPLACE_NULL_WITH_DEFAULT, REPLACE_NULL_WITH_DEFAULT_DOC,
};
use crate::support::{
    field_value, into_map, java_class, logical as logical_schema, map_get, map_put, primitive,
    struct_basics, SchemaCache, Target,
};
use crate::{ConfigError, TransformError, Transformation};

const DAY_MS: i64 = 86_400_000;
const TYPES: &[&str] = &["string", "unix", "Date", "Time", "Timestamp"];
const PRECISIONS: &[&str] = &["nanoseconds", "microseconds", "milliseconds", "seconds"];

/// TimestampConverter's keys.
pub fn keys() -> Vec<KeySpec> {
    vec![
        KeySpec::new(ConfigKey::optional("field", ConfigType::String, "", Importance::High, "The field containing the timestamp, or empty if the entire value is a timestamp")),
        KeySpec::checked(
            ConfigKey::required("target.type", ConfigType::String, Importance::High, "The desired timestamp representation: string, unix, Date, Time, or Timestamp"),
            Check::OneOf(TYPES),
        ),
        KeySpec::new(ConfigKey::optional("format", ConfigType::String, "", Importance::Medium, "A SimpleDateFormat-compatible format for the timestamp. Used to generate the output when type=string or used to parse the input if the input is a string.")),
        KeySpec::checked(
            ConfigKey::optional("unix.precision", ConfigType::String, "milliseconds", Importance::Low, "The desired Unix precision for the timestamp: seconds, milliseconds, microseconds, or nanoseconds. Used to generate the output when type=unix or used to parse the input if the input is a Long.Note: This SMT will cause precision loss during conversions from, and to, values with sub-millisecond components."),
            Check::OneOf(PRECISIONS),
        ),
        KeySpec::new(ConfigKey::optional(REPLACE_NULL_WITH_DEFAULT, ConfigType::Boolean, "true", Importance::Medium, REPLACE_NULL_WITH_DEFAULT_DOC)),
    ]
}

/// The representations a timestamp can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Unix,
    Date,
    Time,
    Timestamp,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "string" => Kind::Text,
            "unix" => Kind::Unix,
            "Date" => Kind::Date,
            "Time" => Kind::Time,
            "Timestamp" => Kind::Timestamp,
            _ => return None,
        })
    }

    fn schema(self, optional: bool) -> SchemaRef {
        match self {
            Kind::Text => primitive(SchemaType::String, optional),
            Kind::Unix => primitive(SchemaType::Int64, optional),
            Kind::Date => Arc::new(logical_schema(logical::DATE, SchemaType::Int32, optional)),
            Kind::Time => Arc::new(logical_schema(logical::TIME, SchemaType::Int32, optional)),
            Kind::Timestamp => Arc::new(logical_schema(
                logical::TIMESTAMP,
                SchemaType::Int64,
                optional,
            )),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Precision {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

/// A configured TimestampConverter.
pub struct TimestampConverter {
    target: Target,
    field: String,
    to: Kind,
    format: Option<(String, DateFormat)>,
    precision: Precision,
    with_default: bool,
    cache: SchemaCache,
}

impl TimestampConverter {
    pub fn new(target: Target, props: &Props) -> Result<TimestampConverter, ConfigError> {
        let to_name = props.required_string("target.type")?;
        let to = Kind::parse(&to_name).ok_or_else(|| {
            ConfigError(format!(
                "Invalid value {to_name} for configuration target.type: String must be one of: {}",
                TYPES.join(", ")
            ))
        })?;
        let pattern = props.string("format", Some("")).unwrap_or_default();
        if to == Kind::Text && pattern.trim().is_empty() {
            return Err(ConfigError("TimestampConverter requires format option to be specified when using string timestamps".into()));
        }
        let format = if pattern.trim().is_empty() {
            None
        } else {
            let f = DateFormat::new(&pattern).map_err(|e| {
                ConfigError(format!("Invalid value java.lang.IllegalArgumentException: {e} for configuration TimestampConverter requires a SimpleDateFormat-compatible pattern for string timestamps: {pattern}"))
            })?;
            Some((pattern, f))
        };
        let precision = match props
            .string("unix.precision", Some("milliseconds"))
            .as_deref()
        {
            Some("seconds") => Precision::Seconds,
            Some("microseconds") => Precision::Micros,
            Some("nanoseconds") => Precision::Nanos,
            Some("milliseconds") => Precision::Millis,
            other => {
                return Err(ConfigError(format!(
                    "Invalid value {} for configuration unix.precision: String must be one of: {}",
                    other.unwrap_or("null"),
                    PRECISIONS.join(", ")
                )))
            }
        };
        Ok(TimestampConverter {
            target,
            field: props.string("field", Some("")).unwrap_or_default(),
            to,
            format,
            precision,
            with_default: props.replace_null_with_default()?,
            cache: SchemaCache::default(),
        })
    }

    /// Epoch milliseconds of `value` read as `from`.
    fn to_millis(&self, value: &Value, from: Kind) -> Result<i64, TransformError> {
        match from {
            Kind::Text => {
                let Value::String(s) = value else {
                    return Err(TransformError::data(format!(
                        "Expected string timestamp to be a String, but found {}",
                        java_class(value)
                    )));
                };
                let Some((pattern, format)) = &self.format else {
                    return Err(TransformError {
                        exception_class: "java.lang.NullPointerException",
                        message: "Cannot invoke \"java.text.SimpleDateFormat.parse(String)\" because \"config.format\" is null".into(),
                    });
                };
                format.parse(s).ok_or_else(|| {
                    TransformError::data(format!(
                        "Could not parse timestamp: value ({s}) does not match pattern ({pattern})"
                    ))
                })
            }
            Kind::Unix => {
                let Value::Int64(n) = value else {
                    return Err(TransformError::data(format!(
                        "Expected Unix timestamp to be a Long, but found {}",
                        java_class(value)
                    )));
                };
                Ok(match self.precision {
                    Precision::Seconds => n.saturating_mul(1000),
                    Precision::Millis => *n,
                    Precision::Micros => n / 1000,
                    Precision::Nanos => n / 1_000_000,
                })
            }
            Kind::Date | Kind::Time | Kind::Timestamp => match value {
                Value::Date(d) => Ok(i64::from(*d) * DAY_MS),
                Value::Time(t) => Ok(i64::from(*t)),
                Value::Timestamp(ms) => Ok(*ms),
                other => {
                    let name = match from {
                        Kind::Date => "Date",
                        Kind::Time => "Time",
                        _ => "Timestamp",
                    };
                    Err(TransformError::data(format!(
                        "Expected {name} to be a java.util.Date, but found {}",
                        java_class(other)
                    )))
                }
            },
        }
    }

    /// `ms` in the target representation; `typed` says whether a schema goes with it (without
    /// one, Date and Time are `java.util.Date`s, that is timestamps). An error when the
    /// representation cannot hold it (the midnight before the earliest times is no `i64`).
    fn millis_to_target(&self, ms: i64, typed: bool) -> Result<Value, TransformError> {
        Ok(match self.to {
            Kind::Text => Value::String(
                self.format
                    .as_ref()
                    .map(|(_, f)| f.format(ms))
                    .unwrap_or_default(),
            ),
            Kind::Unix => Value::Int64(match self.precision {
                Precision::Seconds => ms / 1000,
                Precision::Millis => ms,
                Precision::Micros => ms.saturating_mul(1000),
                Precision::Nanos => ms.saturating_mul(1_000_000),
            }),
            Kind::Date => {
                let day = ms.div_euclid(DAY_MS);
                if typed {
                    Value::Date(day as i32)
                } else {
                    Value::Timestamp(day.checked_mul(DAY_MS).ok_or_else(|| {
                        TransformError::data(format!(
                            "Timestamp {ms} has no midnight within the range of a Date"
                        ))
                    })?)
                }
            }
            Kind::Time => {
                let t = ms.rem_euclid(DAY_MS);
                if typed {
                    Value::Time(t as i32)
                } else {
                    Value::Timestamp(t)
                }
            }
            Kind::Timestamp => Value::Timestamp(ms),
        })
    }

    fn convert(&self, value: &Value, from: Kind, typed: bool) -> Result<Value, TransformError> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        let ms = self.to_millis(value, from)?;
        self.millis_to_target(ms, typed)
    }
}

fn kind_of_schema(schema: &Schema) -> Result<Kind, TransformError> {
    match (schema.name.as_deref(), schema.schema_type) {
        (Some(logical::TIMESTAMP), _) => Ok(Kind::Timestamp),
        (Some(logical::DATE), _) => Ok(Kind::Date),
        (Some(logical::TIME), _) => Ok(Kind::Time),
        (_, SchemaType::String) => Ok(Kind::Text),
        (_, SchemaType::Int64) => Ok(Kind::Unix),
        (name, t) => Err(TransformError::connect(format!(
            "Schema Schema{{{}{}}} does not correspond to a known timestamp type format",
            name.map(|n| format!("{n}:")).unwrap_or_default(),
            t.name().to_ascii_uppercase()
        ))),
    }
}

fn kind_of_value(value: &Value) -> Result<Kind, TransformError> {
    match value {
        Value::Date(_) | Value::Time(_) | Value::Timestamp(_) => Ok(Kind::Timestamp),
        Value::Int64(_) => Ok(Kind::Unix),
        Value::String(_) => Ok(Kind::Text),
        other => Err(TransformError::data(format!(
            "TimestampConverter does not support class {} objects as timestamps",
            java_class(other)
        ))),
    }
}

impl Transformation for TimestampConverter {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        let (schema, value) = self.target.take(&mut record);
        let (schema, value) = match schema {
            None if value.is_null() || self.field.is_empty() => {
                let v = if value.is_null() {
                    Value::Null
                } else {
                    self.convert(&value, kind_of_value(&value)?, false)?
                };
                (None, v)
            }
            None => {
                let mut map = into_map(value, "converting timestamp formats")?;
                let converted = match map_get(&map, &self.field) {
                    Some(v) if !v.is_null() => self.convert(v, kind_of_value(v)?, false)?,
                    _ => Value::Null,
                };
                map_put(&mut map, &self.field, converted);
                (None, Value::Map(map))
            }
            Some(schema) if self.field.is_empty() => {
                let from = kind_of_schema(&schema)?;
                (
                    Some(self.to.schema(schema.optional)),
                    self.convert(&value, from, true)?,
                )
            }
            Some(schema) => {
                let Some((index, field)) = schema.field(&self.field) else {
                    self.target.set(&mut record, Some(schema), value);
                    return Ok(Some(record));
                };
                let from = kind_of_schema(&field.schema)?;
                let out = self.cache.get_or(&schema, || {
                    let mut out = struct_basics(&schema);
                    out.optional = schema.optional;
                    for f in &schema.fields {
                        out.fields.push(if f.name == self.field {
                            floe_data::Field {
                                name: f.name.clone(),
                                schema: self.to.schema(f.schema.optional),
                            }
                        } else {
                            f.clone()
                        });
                    }
                    Ok(out)
                })?;
                let value = match value {
                    Value::Null => Value::Null,
                    Value::Struct(values) => {
                        let mut out_values = Vec::with_capacity(values.len());
                        for (i, f) in schema.fields.iter().enumerate() {
                            let v = field_value(&values, f, i, self.with_default);
                            out_values.push(if i == index { self.convert(&v, from, true)? } else { v });
                        }
                        Value::Struct(out_values)
                    }
                    other => {
                        return Err(TransformError::data(format!(
                            "Only Struct objects supported for [converting timestamp formats], found: {}",
                            java_class(&other)
                        )))
                    }
                };
                (Some(out), value)
            }
        };
        self.target.set(&mut record, schema, value);
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_data::Field;
    use std::collections::BTreeMap;

    fn conv(
        pairs: &[(&str, &str)],
        schema: Option<SchemaRef>,
        value: Value,
    ) -> Result<(Option<SchemaRef>, Value), TransformError> {
        let p = Props::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        );
        let t =
            TimestampConverter::new(Target::Value, &p).map_err(|e| TransformError::data(e.0))?;
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value_schema = schema;
        r.value = value;
        t.apply(r).map(|r| {
            r.map(|r| (r.value_schema, r.value))
                .unwrap_or((None, Value::Null))
        })
    }

    #[test]
    fn strings_and_unix_times_convert_leniently() {
        let unix = [("target.type", "unix"), ("format", "yyyy-MM-dd")];
        assert_eq!(
            conv(&unix, None, Value::String("2020-13-45".into())).map(|r| r.1),
            Ok(Value::Int64(1_613_260_800_000))
        );
        assert_eq!(
            conv(&unix, None, Value::String("garbage".into()))
                .err()
                .map(|e| e.message),
            Some(
                "Could not parse timestamp: value (garbage) does not match pattern (yyyy-MM-dd)"
                    .into()
            )
        );
        assert_eq!(
            conv(&[("target.type", "unix")], None, Value::Int32(1))
                .err()
                .map(|e| e.message),
            Some(
                "TimestampConverter does not support class java.lang.Integer objects as timestamps"
                    .into()
            )
        );
        let micros = [
            ("target.type", "Timestamp"),
            ("unix.precision", "microseconds"),
        ];
        assert_eq!(
            conv(&micros, None, Value::Int64(-1500)).map(|r| r.1),
            Ok(Value::Timestamp(-1))
        );
        let to_string = [
            ("target.type", "string"),
            ("format", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"),
        ];
        assert_eq!(
            conv(&to_string, None, Value::Int64(-1)).map(|r| r.1),
            Ok(Value::String("1969-12-31T23:59:59.999Z".into()))
        );
        assert!(TimestampConverter::new(
            Target::Value,
            &Props::new(BTreeMap::from([(
                "target.type".to_string(),
                "string".to_string()
            )]))
        )
        .is_err());
    }

    #[test]
    fn out_of_range_timestamps_are_errors_not_panics() {
        let unix = [("target.type", "unix"), ("format", "yyyy-MM-dd")];
        let err = conv(&unix, None, Value::String("2024-01-999999999999999".into())).err();
        assert_eq!(
            err.as_ref().map(|e| e.exception_class),
            Some("org.apache.kafka.connect.errors.DataException")
        );
        assert_eq!(
            err.map(|e| e.message),
            Some("Could not parse timestamp: value (2024-01-999999999999999) does not match pattern (yyyy-MM-dd)".into())
        );
        // The same value in a struct field, with a schema.
        let schema = Arc::new(Schema::structure(vec![Field::new(
            "ts",
            Schema::new(SchemaType::String),
        )]));
        assert!(conv(
            &[
                ("target.type", "Timestamp"),
                ("field", "ts"),
                ("format", "yyyy-MM-dd"),
            ],
            Some(schema),
            Value::Struct(vec![Value::String("2024-01-999999999999999".into())]),
        )
        .is_err());
        // The earliest times have no midnight in i64 milliseconds.
        assert!(conv(&[("target.type", "Date")], None, Value::Timestamp(i64::MIN)).is_err());
        assert_eq!(
            conv(&[("target.type", "Date")], None, Value::Timestamp(i64::MAX)).map(|r| r.1),
            Ok(Value::Timestamp(i64::MAX - i64::MAX.rem_euclid(DAY_MS)))
        );
        // Times chrono cannot hold format as nothing.
        let to_string = [("target.type", "string"), ("format", "YYYY-ww")];
        for ms in [i64::MIN, i64::MAX] {
            assert_eq!(
                conv(&to_string, None, Value::Timestamp(ms)).map(|r| r.1),
                Ok(Value::String(String::new()))
            );
        }
    }

    #[test]
    fn struct_fields_get_logical_schemas() {
        let schema = Arc::new(Schema::structure(vec![
            Field::new("ts", Schema::new(SchemaType::String).optional()),
            Field::new("n", Schema::new(SchemaType::Int32)),
        ]));
        let (s, v) = conv(
            &[
                ("target.type", "Timestamp"),
                ("field", "ts"),
                ("format", "yyyy-MM-dd"),
            ],
            Some(schema.clone()),
            Value::Struct(vec![Value::String("2024-01-15".into()), Value::Int32(1)]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            v,
            Value::Struct(vec![Value::Timestamp(1_705_276_800_000), Value::Int32(1)])
        );
        let s = s.unwrap_or_else(|| panic!("schema"));
        assert_eq!(s.fields[0].schema.name.as_deref(), Some(logical::TIMESTAMP));
        assert!(s.fields[0].schema.optional);
        let (_, v) = conv(
            &[("target.type", "Date"), ("field", "ts")],
            Some(Arc::new(Schema::structure(vec![Field::new(
                "ts",
                logical_schema(logical::TIMESTAMP, SchemaType::Int64, false),
            )]))),
            Value::Struct(vec![Value::Timestamp(-1)]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v, Value::Struct(vec![Value::Date(-1)]));
        assert_eq!(
            conv(
                &[("target.type", "Date")],
                Some(Arc::new(Schema::new(SchemaType::Int32))),
                Value::Int32(1)
            )
            .err()
            .map(|e| e.message),
            Some(
                "Schema Schema{INT32} does not correspond to a known timestamp type format".into()
            )
        );
    }
}
