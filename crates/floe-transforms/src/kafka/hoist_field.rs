//! `HoistField$Key` / `HoistField$Value`: wraps the key or value in a struct (map) of one field.

use floe_data::config::{ConfigKey, ConfigType, Importance};
use floe_data::{Field, Schema, SinkRecord, Value};

use crate::props::{KeySpec, Props};
use crate::support::{check_put, SchemaCache, Target};
use crate::{ConfigError, TransformError, Transformation};

/// HoistField's keys.
pub fn keys() -> Vec<KeySpec> {
    vec![KeySpec::new(ConfigKey::required(
        "field",
        ConfigType::String,
        Importance::Medium,
        "Field name for the single field that will be created in the resulting Struct or Map.",
    ))]
}

/// A configured HoistField.
pub struct HoistField {
    target: Target,
    field: String,
    cache: SchemaCache,
}

impl HoistField {
    pub fn new(target: Target, props: &Props) -> Result<HoistField, ConfigError> {
        Ok(HoistField {
            target,
            field: props.required_string("field")?,
            cache: SchemaCache::default(),
        })
    }
}

impl Transformation for HoistField {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        let (schema, value) = self.target.take(&mut record);
        match schema {
            None => {
                let map = vec![(Value::String(self.field.clone()), value)];
                self.target.set(&mut record, None, Value::Map(map));
            }
            Some(schema) => {
                check_put(&self.field, &schema, &value)?;
                let out = self.cache.get_or(&schema, || {
                    Ok(Schema::structure(vec![Field {
                        name: self.field.clone(),
                        schema: schema.clone(),
                    }]))
                })?;
                self.target
                    .set(&mut record, Some(out), Value::Struct(vec![value]));
            }
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_data::SchemaType;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    #[test]
    fn values_are_wrapped() {
        let t = HoistField::new(
            Target::Value,
            &Props::new(BTreeMap::from([("field".to_string(), "f".to_string())])),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let out = t
            .apply(SinkRecord::new("t", 0, 0, None))
            .ok()
            .flatten()
            .map(|r| r.value);
        assert_eq!(
            out,
            Some(Value::Map(vec![(Value::String("f".into()), Value::Null)]))
        );
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value_schema = Some(Arc::new(Schema::new(SchemaType::String)));
        assert_eq!(
            t.apply(r).err().map(|e| e.message),
            Some("Invalid value: null used for required field: \"f\", schema type: STRING".into())
        );
    }
}
