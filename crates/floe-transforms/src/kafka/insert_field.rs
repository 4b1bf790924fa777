//! `InsertField$Key` / `InsertField$Value`: adds the record's topic, partition, offset,
//! timestamp or a static value as fields.

use floe_data::config::{ConfigKey, ConfigType, Importance};
use floe_data::{SchemaType, SinkRecord, Value};

use crate::props::{KeySpec, Props, REPLACE_NULL_WITH_DEFAULT, REPLACE_NULL_WITH_DEFAULT_DOC};
use crate::support::{
    add_field, field_value, into_map, into_struct, map_put, primitive, struct_basics,
    timestamp_schema, SchemaCache, Target,
};
use crate::{ConfigError, TransformError, Transformation};

const PURPOSE: &str = "field insertion";

/// InsertField's keys.
pub fn keys() -> Vec<KeySpec> {
    let key = |name: &'static str, doc: &'static str| {
        KeySpec::new(ConfigKey::nullable(
            name,
            ConfigType::String,
            Importance::Medium,
            doc,
        ))
    };
    vec![
        key("topic.field", "Field name for Kafka topic. Suffix with <code>!</code> to make this a required field, or <code>?</code> to keep it optional (the default)."),
        key("partition.field", "Field name for Kafka partition. Suffix with <code>!</code> to make this a required field, or <code>?</code> to keep it optional (the default)."),
        key("offset.field", "Field name for Kafka offset - only applicable to sink connectors.<br/>Suffix with <code>!</code> to make this a required field, or <code>?</code> to keep it optional (the default)."),
        key("timestamp.field", "Field name for record timestamp. Suffix with <code>!</code> to make this a required field, or <code>?</code> to keep it optional (the default)."),
        key("static.field", "Field name for static data field. Suffix with <code>!</code> to make this a required field, or <code>?</code> to keep it optional (the default)."),
        key("static.value", "Static field value, if field name configured."),
        KeySpec::new(ConfigKey::optional(REPLACE_NULL_WITH_DEFAULT, ConfigType::Boolean, "true", Importance::Medium, REPLACE_NULL_WITH_DEFAULT_DOC)),
    ]
}

/// A field to insert: its name and whether it is optional (`name?`, `name!`).
#[derive(Debug, Clone)]
struct Spec {
    name: String,
    optional: bool,
}

fn spec(value: Option<String>) -> Option<Spec> {
    let v = value?;
    Some(if let Some(name) = v.strip_suffix('?') {
        Spec {
            name: name.into(),
            optional: true,
        }
    } else if let Some(name) = v.strip_suffix('!') {
        Spec {
            name: name.into(),
            optional: false,
        }
    } else {
        Spec {
            name: v,
            optional: true,
        }
    })
}

/// A configured InsertField.
pub struct InsertField {
    target: Target,
    topic: Option<Spec>,
    partition: Option<Spec>,
    offset: Option<Spec>,
    timestamp: Option<Spec>,
    static_field: Option<(Spec, String)>,
    with_default: bool,
    cache: SchemaCache,
}

impl InsertField {
    pub fn new(target: Target, props: &Props) -> Result<InsertField, ConfigError> {
        let topic = spec(props.string("topic.field", None));
        let partition = spec(props.string("partition.field", None));
        let offset = spec(props.string("offset.field", None));
        let timestamp = spec(props.string("timestamp.field", None));
        let static_field = match spec(props.string("static.field", None)) {
            None => None,
            Some(s) => match props.string("static.value", None) {
                Some(v) => Some((s, v)),
                None => {
                    return Err(ConfigError(format!(
                        "Invalid value null for configuration static.value: No value specified for static field: {}",
                        s.name
                    )))
                }
            },
        };
        if topic.is_none()
            && partition.is_none()
            && offset.is_none()
            && timestamp.is_none()
            && static_field.is_none()
        {
            return Err(ConfigError("No field insertion configured".into()));
        }
        Ok(InsertField {
            target,
            topic,
            partition,
            offset,
            timestamp,
            static_field,
            with_default: props.replace_null_with_default()?,
            cache: SchemaCache::default(),
        })
    }

    /// The inserted fields and values, in Java's order.
    fn inserted(&self, record: &SinkRecord, schemaless: bool) -> Vec<(&Spec, Value)> {
        let mut out = Vec::with_capacity(5);
        if let Some(s) = &self.topic {
            out.push((s, Value::String(record.topic.clone())));
        }
        if let Some(s) = &self.partition {
            out.push((s, Value::Int32(record.partition)));
        }
        if let Some(s) = &self.offset {
            out.push((s, Value::Int64(record.offset)));
        }
        if let Some(s) = &self.timestamp {
            // Without a schema Java skips a missing timestamp; a struct leaves the field null.
            match record.timestamp {
                None if schemaless => {}
                None => out.push((s, Value::Null)),
                Some(ms) if schemaless => out.push((s, Value::Int64(ms))),
                Some(ms) => out.push((s, Value::Timestamp(ms))),
            }
        }
        if let Some((s, v)) = &self.static_field {
            out.push((s, Value::String(v.clone())));
        }
        out
    }
}

impl Transformation for InsertField {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        let (schema, value) = self.target.take(&mut record);
        if value.is_null() {
            self.target.set(&mut record, schema, value);
            return Ok(Some(record));
        }
        match schema {
            None => {
                let mut map = into_map(value, PURPOSE)?;
                for (s, v) in self.inserted(&record, true) {
                    map_put(&mut map, &s.name, v);
                }
                self.target.set(&mut record, None, Value::Map(map));
            }
            Some(schema) => {
                let values = into_struct(value, PURPOSE)?;
                let out = self.cache.get_or(&schema, || {
                    let mut out = struct_basics(&schema);
                    out.fields = schema.fields.clone();
                    let add = |out: &mut floe_data::Schema, s: &Option<Spec>, t: SchemaType| match s
                    {
                        Some(s) => add_field(out, &s.name, primitive(t, s.optional)),
                        None => Ok(()),
                    };
                    add(&mut out, &self.topic, SchemaType::String)?;
                    add(&mut out, &self.partition, SchemaType::Int32)?;
                    add(&mut out, &self.offset, SchemaType::Int64)?;
                    if let Some(s) = &self.timestamp {
                        add_field(
                            &mut out,
                            &s.name,
                            std::sync::Arc::new(timestamp_schema(s.optional)),
                        )?;
                    }
                    let static_spec = self.static_field.as_ref().map(|(s, _)| s.clone());
                    add(&mut out, &static_spec, SchemaType::String)?;
                    Ok(out)
                })?;
                let mut new_values: Vec<Value> = schema
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| field_value(&values, f, i, self.with_default))
                    .collect();
                new_values.extend(self.inserted(&record, false).into_iter().map(|(_, v)| v));
                self.target
                    .set(&mut record, Some(out), Value::Struct(new_values));
            }
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_data::{Field, Schema};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn insert(pairs: &[(&str, &str)], schema: Option<Arc<Schema>>, value: Value) -> SinkRecord {
        let p = Props::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        );
        let t = InsertField::new(Target::Value, &p).unwrap_or_else(|e| panic!("{e}"));
        let mut r = SinkRecord::new("topic", 0, 42, Some(1_700_000_000_000));
        r.value_schema = schema;
        r.value = value;
        t.apply(r)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"))
    }

    #[test]
    fn schemaless_inserts_coordinates_as_plain_values() {
        let r = insert(
            &[
                ("topic.field", "t"),
                ("partition.field", "p"),
                ("offset.field", "o"),
                ("timestamp.field", "ts"),
            ],
            None,
            Value::Map(vec![]),
        );
        assert_eq!(
            r.value,
            Value::Map(vec![
                (Value::String("t".into()), Value::String("topic".into())),
                (Value::String("p".into()), Value::Int32(0)),
                (Value::String("o".into()), Value::Int64(42)),
                (Value::String("ts".into()), Value::Int64(1_700_000_000_000)),
            ])
        );
    }

    #[test]
    fn structs_get_appended_fields_with_suffix_optionality() {
        let schema = Arc::new(
            Schema::structure(vec![Field::new("a", Schema::new(SchemaType::Int32))]).optional(),
        );
        let r = insert(
            &[
                ("topic.field", "t!"),
                ("partition.field", "p"),
                ("offset.field", "o?"),
                ("timestamp.field", "ts"),
                ("static.field", "sf"),
                ("static.value", "v"),
            ],
            Some(schema),
            Value::Struct(vec![Value::Int32(1)]),
        );
        let s = r.value_schema.unwrap_or_else(|| panic!("schema"));
        let fields: Vec<(&str, SchemaType, bool)> = s
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.schema.schema_type, f.schema.optional))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("a", SchemaType::Int32, false),
                ("t", SchemaType::String, false),
                ("p", SchemaType::Int32, true),
                ("o", SchemaType::Int64, true),
                ("ts", SchemaType::Int64, true),
                ("sf", SchemaType::String, true),
            ]
        );
        assert!(!s.optional);
        assert_eq!(
            r.value,
            Value::Struct(vec![
                Value::Int32(1),
                Value::String("topic".into()),
                Value::Int32(0),
                Value::Int64(42),
                Value::Timestamp(1_700_000_000_000),
                Value::String("v".into()),
            ])
        );
    }

    #[test]
    fn configure_errors_are_javas() {
        let p = Props::new(BTreeMap::new());
        assert_eq!(
            InsertField::new(Target::Value, &p).err().map(|e| e.0),
            Some("No field insertion configured".into())
        );
    }
}
