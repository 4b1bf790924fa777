//! The header transforms: `DropHeaders`, `InsertHeader`, `HeaderFrom$Key` / `HeaderFrom$Value`.

use std::collections::BTreeSet;

use floe_data::config::{ConfigKey, ConfigType, Importance};
use floe_data::{Header, SchemaRef, SinkRecord, Value};

use crate::java::values::parse_string;
use crate::props::{
    Check, KeySpec, Props, REPLACE_NULL_WITH_DEFAULT, REPLACE_NULL_WITH_DEFAULT_DOC,
};
use crate::support::{
    field_value, into_map, java_class, map_get, map_remove, struct_basics, SchemaCache, Target,
};
use crate::{ConfigError, TransformError, Transformation};

/// DropHeaders' keys.
pub fn drop_headers_keys() -> Vec<KeySpec> {
    vec![KeySpec::checked(
        ConfigKey::required(
            "headers",
            ConfigType::List,
            Importance::High,
            "The name of the headers to be removed.",
        ),
        Check::NonEmptyList,
    )]
}

/// `DropHeaders`: removes the headers with the given names.
pub struct DropHeaders {
    names: BTreeSet<String>,
}

impl DropHeaders {
    pub fn new(props: &Props) -> Result<DropHeaders, ConfigError> {
        Ok(DropHeaders {
            names: props.list("headers").into_iter().collect(),
        })
    }
}

impl Transformation for DropHeaders {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        record.headers.retain(|h| !self.names.contains(&h.key));
        Ok(Some(record))
    }
}

/// InsertHeader's keys.
pub fn insert_header_keys() -> Vec<KeySpec> {
    vec![
        KeySpec::checked(
            ConfigKey::required(
                "header",
                ConfigType::String,
                Importance::High,
                "The name of the header.",
            ),
            Check::NonNull,
        ),
        KeySpec::checked(
            ConfigKey::required(
                "value.literal",
                ConfigType::String,
                Importance::High,
                "The literal value that is to be set as the header value on all records.",
            ),
            Check::NonNull,
        ),
    ]
}

/// `InsertHeader`: appends a header with a literal value, typed as Connect's
/// `Values.parseString` types it.
pub struct InsertHeader {
    header: String,
    schema: Option<SchemaRef>,
    value: Value,
}

impl InsertHeader {
    pub fn new(props: &Props) -> Result<InsertHeader, ConfigError> {
        let header = props.required_string("header")?;
        let literal = props.required_string("value.literal")?;
        let (schema, value) = parse_string(&literal);
        Ok(InsertHeader {
            header,
            schema,
            value,
        })
    }
}

impl Transformation for InsertHeader {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        record.headers.push(Header {
            key: self.header.clone(),
            schema: self.schema.clone(),
            value: self.value.clone(),
        });
        Ok(Some(record))
    }
}

/// HeaderFrom's keys.
pub fn header_from_keys() -> Vec<KeySpec> {
    vec![
        KeySpec::checked(
            ConfigKey::required("fields", ConfigType::List, Importance::High, "Field names in the record whose values are to be copied or moved to headers."),
            Check::NonEmptyList,
        ),
        KeySpec::checked(
            ConfigKey::required("headers", ConfigType::List, Importance::High, "Header names, in the same order as the field names listed in the fields configuration property."),
            Check::NonEmptyList,
        ),
        KeySpec::checked(
            ConfigKey::required("operation", ConfigType::String, Importance::High, "Either <code>move</code> if the fields are to be moved to the headers (removed from the key/value), or <code>copy</code> if the fields are to be copied to the headers (retained in the key/value)."),
            Check::OneOf(&["move", "copy"]),
        ),
        KeySpec::new(ConfigKey::optional(REPLACE_NULL_WITH_DEFAULT, ConfigType::Boolean, "true", Importance::Medium, REPLACE_NULL_WITH_DEFAULT_DOC)),
    ]
}

/// `HeaderFrom`: copies or moves fields into headers.
pub struct HeaderFrom {
    target: Target,
    pairs: Vec<(String, String)>,
    moving: bool,
    with_default: bool,
    cache: SchemaCache,
}

impl HeaderFrom {
    pub fn new(target: Target, props: &Props) -> Result<HeaderFrom, ConfigError> {
        let fields = props.list("fields");
        let headers = props.list("headers");
        if fields.len() != headers.len() {
            return Err(ConfigError(
                "'fields' config must have the same number of elements as 'headers' config.".into(),
            ));
        }
        let operation = props.required_string("operation")?;
        let moving = match operation.as_str() {
            "move" => true,
            "copy" => false,
            other => {
                return Err(ConfigError(format!(
                    "Invalid value {other} for configuration operation: String must be one of: move, copy"
                )))
            }
        };
        Ok(HeaderFrom {
            target,
            pairs: fields.into_iter().zip(headers).collect(),
            moving,
            with_default: props.replace_null_with_default()?,
            cache: SchemaCache::default(),
        })
    }

    fn purpose(&self) -> &'static str {
        if self.moving {
            "header move"
        } else {
            "header copy"
        }
    }
}

impl Transformation for HeaderFrom {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        let (schema, value) = self.target.take(&mut record);
        let mut added = Vec::with_capacity(self.pairs.len());
        let (schema, value) = match schema {
            None => {
                let mut map = into_map(value, self.purpose())?;
                for (field, header) in &self.pairs {
                    let v = if self.moving {
                        map_remove(&mut map, field)
                    } else {
                        map_get(&map, field).cloned()
                    };
                    added.push(Header {
                        key: header.clone(),
                        schema: None,
                        value: v.unwrap_or(Value::Null),
                    });
                }
                (None, Value::Map(map))
            }
            Some(schema) => {
                let values = match value {
                    Value::Struct(values) => values,
                    other => {
                        return Err(TransformError::data(format!(
                            "Only Struct objects supported for [{}], found: {}",
                            self.purpose(),
                            java_class(&other)
                        )))
                    }
                };
                for (field, header) in &self.pairs {
                    let Some((i, f)) = schema.field(field) else {
                        return Err(TransformError {
                            exception_class: "java.lang.NullPointerException",
                            message: "Cannot invoke \"org.apache.kafka.connect.data.Field.schema()\" because the return value of \"org.apache.kafka.connect.data.Schema.field(String)\" is null".into(),
                        });
                    };
                    let v = field_value(&values, f, i, self.with_default);
                    if v.is_null() && !f.schema.optional {
                        return Err(TransformError::data(format!(
                            "A null value requires an optional schema but was Schema{{{}}}",
                            f.schema.schema_type.name().to_ascii_uppercase()
                        )));
                    }
                    added.push(Header {
                        key: header.clone(),
                        schema: Some(f.schema.clone()),
                        value: v,
                    });
                }
                if self.moving {
                    let out = self.cache.get_or(&schema, || {
                        let mut out = struct_basics(&schema);
                        out.fields = schema
                            .fields
                            .iter()
                            .filter(|f| !self.pairs.iter().any(|(m, _)| *m == f.name))
                            .cloned()
                            .collect();
                        Ok(out)
                    })?;
                    let kept: Vec<Value> = schema
                        .fields
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| !self.pairs.iter().any(|(m, _)| *m == f.name))
                        .map(|(i, f)| field_value(&values, f, i, self.with_default))
                        .collect();
                    (Some(out), Value::Struct(kept))
                } else {
                    (Some(schema), Value::Struct(values))
                }
            }
        };
        self.target.set(&mut record, schema, value);
        record.headers.extend(added);
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_data::{Field, Schema, SchemaType};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn props(pairs: &[(&str, &str)]) -> Props {
        Props::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    #[test]
    fn headers_are_dropped_inserted_and_taken_from_fields() {
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.headers = vec![
            Header {
                key: "a".into(),
                schema: None,
                value: Value::Null,
            },
            Header {
                key: "b".into(),
                schema: None,
                value: Value::Null,
            },
        ];
        let r = DropHeaders::new(&props(&[("headers", "a")]))
            .ok()
            .and_then(|t| t.apply(r).ok().flatten());
        let r = r.unwrap_or_else(|| panic!("record"));
        assert_eq!(
            r.headers.iter().map(|h| h.key.as_str()).collect::<Vec<_>>(),
            vec!["b"]
        );

        let r = InsertHeader::new(&props(&[("header", "n"), ("value.literal", "42")]))
            .ok()
            .and_then(|t| t.apply(r).ok().flatten())
            .unwrap_or_else(|| panic!("record"));
        assert_eq!(
            r.headers.last().map(|h| h.value.clone()),
            Some(Value::Int8(42))
        );

        let schema = Arc::new(Schema::structure(vec![
            Field::new("id", Schema::new(SchemaType::Int64)),
            Field::new("z", Schema::new(SchemaType::String)),
        ]));
        let mut r = r;
        r.value_schema = Some(schema);
        r.value = Value::Struct(vec![Value::Int64(7), Value::String("x".into())]);
        let t = HeaderFrom::new(
            Target::Value,
            &props(&[("fields", "id"), ("headers", "h"), ("operation", "move")]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let r = t
            .apply(r)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        assert_eq!(r.value, Value::Struct(vec![Value::String("x".into())]));
        assert_eq!(r.value_schema.map(|s| s.fields.len()), Some(1));
        assert_eq!(
            r.headers.last().map(|h| (h.key.clone(), h.value.clone())),
            Some(("h".into(), Value::Int64(7)))
        );
    }

    #[test]
    fn header_from_fails_on_tombstones_as_java() {
        let t = HeaderFrom::new(
            Target::Value,
            &props(&[("fields", "id"), ("headers", "h"), ("operation", "copy")]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.apply(SinkRecord::new("t", 0, 0, None))
                .err()
                .map(|e| e.message),
            Some(
                "Only Map objects supported in absence of schema for [header copy], found: null"
                    .into()
            )
        );
        assert!(HeaderFrom::new(
            Target::Value,
            &props(&[("fields", "a,b"), ("headers", "h"), ("operation", "copy")])
        )
        .is_err());
    }
}
