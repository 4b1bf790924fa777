//! `ValueToKey`: the key becomes a struct (map) of some of the value's fields.

use floe_data::config::{ConfigKey, ConfigType, Importance};
use floe_data::{Schema, SinkRecord, Value};

use crate::props::{
    Check, KeySpec, Props, REPLACE_NULL_WITH_DEFAULT, REPLACE_NULL_WITH_DEFAULT_DOC,
};
use crate::support::{add_field, field_value, java_class, map_get, require_map, SchemaCache};
use crate::{ConfigError, TransformError, Transformation};

const PURPOSE: &str = "copying fields from value to key";

/// ValueToKey's keys.
pub fn keys() -> Vec<KeySpec> {
    vec![
        KeySpec::checked(
            ConfigKey::required(
                "fields",
                ConfigType::List,
                Importance::High,
                "Field names on the record value to extract as the record key.",
            ),
            Check::NonEmptyList,
        ),
        KeySpec::new(ConfigKey::optional(
            REPLACE_NULL_WITH_DEFAULT,
            ConfigType::Boolean,
            "true",
            Importance::Medium,
            REPLACE_NULL_WITH_DEFAULT_DOC,
        )),
    ]
}

/// A configured ValueToKey.
pub struct ValueToKey {
    fields: Vec<String>,
    with_default: bool,
    cache: SchemaCache,
}

impl ValueToKey {
    pub fn new(props: &Props) -> Result<ValueToKey, ConfigError> {
        Ok(ValueToKey {
            fields: props.list("fields"),
            with_default: props.replace_null_with_default()?,
            cache: SchemaCache::default(),
        })
    }
}

impl Transformation for ValueToKey {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        match &record.value_schema {
            None => {
                let map = require_map(&record.value, PURPOSE)?;
                let key = self
                    .fields
                    .iter()
                    .map(|f| {
                        (
                            Value::String(f.clone()),
                            map_get(map, f).cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect();
                record.key_schema = None;
                record.key = Value::Map(key);
            }
            Some(schema) => {
                let Value::Struct(values) = &record.value else {
                    return Err(TransformError::data(format!(
                        "Only Struct objects supported for [{PURPOSE}], found: {}",
                        java_class(&record.value)
                    )));
                };
                let key_schema = self.cache.get_or(schema, || {
                    let mut out = Schema::structure(Vec::new());
                    for f in &self.fields {
                        let (_, field) = schema.field(f).ok_or_else(|| {
                            TransformError::data(format!("Field does not exist: {f}"))
                        })?;
                        add_field(&mut out, f, field.schema.clone())?;
                    }
                    Ok(out)
                })?;
                let key = self
                    .fields
                    .iter()
                    .map(|f| match schema.field(f) {
                        Some((i, field)) => field_value(values, field, i, self.with_default),
                        None => Value::Null,
                    })
                    .collect();
                record.key_schema = Some(key_schema);
                record.key = Value::Struct(key);
            }
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_data::{Field, SchemaType};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    #[test]
    fn keys_come_from_value_fields_in_config_order() {
        let t = ValueToKey::new(&Props::new(BTreeMap::from([(
            "fields".to_string(),
            "ts,id".to_string(),
        )])))
        .unwrap_or_else(|e| panic!("{e}"));
        let schema = Arc::new(Schema::structure(vec![
            Field::new("id", Schema::new(SchemaType::Int64)),
            Field::new("ts", Schema::new(SchemaType::Int64)),
        ]));
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value_schema = Some(schema);
        r.value = Value::Struct(vec![Value::Int64(1), Value::Int64(2)]);
        let r = t
            .apply(r)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        assert_eq!(r.key, Value::Struct(vec![Value::Int64(2), Value::Int64(1)]));
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value = Value::Map(vec![(Value::String("id".into()), Value::Int64(1))]);
        let r = t
            .apply(r)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        assert_eq!(
            r.key,
            Value::Map(vec![
                (Value::String("ts".into()), Value::Null),
                (Value::String("id".into()), Value::Int64(1))
            ])
        );
        assert!(t.apply(SinkRecord::new("t", 0, 0, None)).is_err());
    }
}
