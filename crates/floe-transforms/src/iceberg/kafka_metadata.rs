//! `KafkaMetadataTransform`: adds the record's topic, partition, offset and timestamp (and a
//! constant) as fields, flat (`<name>_topic`, …) or nested in a struct `<name>`. Each instance
//! keeps its own settings (Java's keeps them in a static field shared by every instance).

use std::sync::Arc;

use floe_data::config::{ConfigKey, ConfigType, Importance};
use floe_data::{Field, Schema, SchemaType, SinkRecord, Value};

use crate::props::{KeySpec, Props};
use crate::support::{
    add_field, field_value, into_map, into_struct, map_put, primitive, struct_basics, SchemaCache,
};
use crate::{ConfigError, TransformError, Transformation};

/// KafkaMetadataTransform's keys.
pub fn keys() -> Vec<KeySpec> {
    vec![
        KeySpec::new(ConfigKey::optional(
            "field_name",
            ConfigType::String,
            "_kafka_metadata",
            Importance::Low,
            "the field to append Kafka metadata under (or prefix fields with)",
        )),
        KeySpec::new(ConfigKey::optional(
            "nested",
            ConfigType::Boolean,
            "false",
            Importance::Low,
            "(true/false) to make a nested record under name or prefix names on the top level",
        )),
        KeySpec::new(ConfigKey::nullable(
            "external_field",
            ConfigType::String,
            Importance::Low,
            "key,value representing a String to be injected on Kafka metadata (e.g. Cluster)",
        )),
    ]
}

/// A configured KafkaMetadataTransform.
pub struct KafkaMetadataTransform {
    name: String,
    nested: bool,
    external: Option<(String, String)>,
    cache: SchemaCache,
}

impl KafkaMetadataTransform {
    pub fn new(props: &Props) -> Result<KafkaMetadataTransform, ConfigError> {
        let external = match props.raw("external_field") {
            None => None,
            Some(raw) => match raw.split(',').collect::<Vec<_>>().as_slice() {
                [k, v] => Some((k.to_string(), v.to_string())),
                _ => {
                    return Err(ConfigError(format!(
                        "Could not parse {raw} for external_field"
                    )))
                }
            },
        };
        Ok(KafkaMetadataTransform {
            name: props
                .string("field_name", Some("_kafka_metadata"))
                .unwrap_or_default(),
            nested: props.boolean("nested", false)?,
            external,
            cache: SchemaCache::default(),
        })
    }

    /// (name, schema, value) of each metadata field, names unprefixed.
    fn metadata(&self, record: &SinkRecord) -> Vec<(String, Arc<Schema>, Value)> {
        let mut out = vec![
            (
                "topic".to_string(),
                primitive(SchemaType::String, false),
                Value::String(record.topic.clone()),
            ),
            (
                "partition".to_string(),
                primitive(SchemaType::Int32, false),
                Value::Int32(record.partition),
            ),
            (
                "offset".to_string(),
                primitive(SchemaType::Int64, false),
                Value::Int64(record.offset),
            ),
            (
                "timestamp".to_string(),
                primitive(SchemaType::Int64, true),
                record.timestamp.map_or(Value::Null, Value::Int64),
            ),
        ];
        if let Some((k, v)) = &self.external {
            out.push((
                k.clone(),
                primitive(SchemaType::String, false),
                Value::String(v.clone()),
            ));
        }
        out
    }

    fn flat_name(&self, field: &str) -> String {
        format!("{}_{field}", self.name)
    }
}

impl Transformation for KafkaMetadataTransform {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        if record.value.is_null() {
            return Ok(Some(record));
        }
        let metadata = self.metadata(&record);
        let value = std::mem::replace(&mut record.value, Value::Null);
        match record.value_schema.clone() {
            None => {
                let mut map = into_map(value, "KafkaMetadata transform")?;
                if self.nested {
                    let inner = metadata
                        .into_iter()
                        .filter(|(_, _, v)| !v.is_null())
                        .map(|(k, _, v)| (Value::String(k), v))
                        .collect();
                    map_put(&mut map, &self.name, Value::Map(inner));
                } else {
                    for (k, _, v) in metadata.into_iter().filter(|(_, _, v)| !v.is_null()) {
                        map_put(&mut map, &self.flat_name(&k), v);
                    }
                }
                record.value = Value::Map(map);
            }
            Some(schema) => {
                let values = into_struct(value, "KafkaMetadataTransform")?;
                let out = self.cache.get_or(&schema, || {
                    let mut out = struct_basics(&schema);
                    out.fields = schema.fields.clone();
                    if self.nested {
                        let inner = Schema::structure(
                            metadata
                                .iter()
                                .map(|(k, s, _)| Field {
                                    name: k.clone(),
                                    schema: s.clone(),
                                })
                                .collect(),
                        );
                        add_field(&mut out, &self.name, Arc::new(inner))?;
                    } else {
                        for (k, s, _) in &metadata {
                            add_field(&mut out, &self.flat_name(k), s.clone())?;
                        }
                    }
                    Ok(out)
                })?;
                let mut new_values: Vec<Value> = schema
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| field_value(&values, f, i, true))
                    .collect();
                let meta_values = metadata.into_iter().map(|(_, _, v)| v);
                if self.nested {
                    new_values.push(Value::Struct(meta_values.collect()));
                } else {
                    new_values.extend(meta_values);
                }
                record.value_schema = Some(out);
                record.value = Value::Struct(new_values);
            }
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn metadata_is_added_flat_or_nested() {
        let t = KafkaMetadataTransform::new(&Props::new(BTreeMap::from([(
            "external_field".to_string(),
            "env,prod".to_string(),
        )])))
        .unwrap_or_else(|e| panic!("{e}"));
        let mut r = SinkRecord::new("orders", 2, 9, None);
        r.value = Value::Map(vec![]);
        let r = t
            .apply(r)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        assert_eq!(
            r.value,
            Value::Map(vec![
                (
                    Value::String("_kafka_metadata_topic".into()),
                    Value::String("orders".into())
                ),
                (
                    Value::String("_kafka_metadata_partition".into()),
                    Value::Int32(2)
                ),
                (
                    Value::String("_kafka_metadata_offset".into()),
                    Value::Int64(9)
                ),
                (
                    Value::String("_kafka_metadata_env".into()),
                    Value::String("prod".into())
                ),
            ])
        );
        assert!(KafkaMetadataTransform::new(&Props::new(BTreeMap::from([(
            "external_field".to_string(),
            "a,b,c".to_string()
        )])))
        .is_err());
    }
}
