//! `CopyValue`: copies a top-level field of the value into a new field.

use floe_data::config::{ConfigKey, ConfigType, Importance};
use floe_data::{SinkRecord, Value};

use crate::props::{KeySpec, Props};
use crate::support::{
    add_field, field_value, into_map, into_struct, map_get, map_put, struct_basics, SchemaCache,
};
use crate::{ConfigError, TransformError, Transformation};

const PURPOSE: &str = "copy value";

/// CopyValue's keys.
pub fn keys() -> Vec<KeySpec> {
    vec![
        KeySpec::new(ConfigKey::required(
            "source.field",
            ConfigType::String,
            Importance::High,
            "Source field name.",
        )),
        KeySpec::new(ConfigKey::required(
            "target.field",
            ConfigType::String,
            Importance::High,
            "Target field name.",
        )),
    ]
}

/// A configured CopyValue.
pub struct CopyValue {
    source: String,
    target: String,
    cache: SchemaCache,
}

impl CopyValue {
    pub fn new(props: &Props) -> Result<CopyValue, ConfigError> {
        Ok(CopyValue {
            source: props.required_string("source.field")?,
            target: props.required_string("target.field")?,
            cache: SchemaCache::default(),
        })
    }
}

impl Transformation for CopyValue {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        if record.value.is_null() {
            return Ok(Some(record));
        }
        let value = std::mem::replace(&mut record.value, Value::Null);
        match record.value_schema.clone() {
            None => {
                let mut map = into_map(value, PURPOSE)?;
                let copied = map_get(&map, &self.source).cloned().unwrap_or(Value::Null);
                map_put(&mut map, &self.target, copied);
                record.value = Value::Map(map);
            }
            Some(schema) => {
                let values = into_struct(value, PURPOSE)?;
                let Some((source_index, source)) = schema.field(&self.source) else {
                    return Err(TransformError {
                        exception_class: "java.lang.NullPointerException",
                        message: format!("Cannot invoke \"org.apache.kafka.connect.data.Field.schema()\" because the field {} is not in the schema", self.source),
                    });
                };
                let out = self.cache.get_or(&schema, || {
                    let mut out = struct_basics(&schema);
                    out.fields = schema.fields.clone();
                    add_field(&mut out, &self.target, source.schema.clone())?;
                    Ok(out)
                })?;
                let mut new_values: Vec<Value> = schema
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| field_value(&values, f, i, true))
                    .collect();
                new_values.push(field_value(&values, source, source_index, true));
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
    fn a_field_is_copied_and_a_missing_one_copies_null() {
        let t = CopyValue::new(&Props::new(BTreeMap::from([
            ("source.field".to_string(), "a".to_string()),
            ("target.field".to_string(), "b".to_string()),
        ])))
        .unwrap_or_else(|e| panic!("{e}"));
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value = Value::Map(vec![(Value::String("a".into()), Value::Int64(1))]);
        let r = t
            .apply(r)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        assert_eq!(
            r.value,
            Value::Map(vec![
                (Value::String("a".into()), Value::Int64(1)),
                (Value::String("b".into()), Value::Int64(1))
            ])
        );
    }
}
