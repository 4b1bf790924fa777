//! `SetSchemaMetadata$Key` / `SetSchemaMetadata$Value`: sets a struct schema's name and version.

use floe_data::config::{ConfigKey, ConfigType, Importance};
use floe_data::{SchemaType, SinkRecord, Value};

use crate::props::{KeySpec, Props, REPLACE_NULL_WITH_DEFAULT, REPLACE_NULL_WITH_DEFAULT_DOC};
use crate::support::{field_value, SchemaCache, Target};
use crate::{ConfigError, TransformError, Transformation};

/// SetSchemaMetadata's keys.
pub fn keys() -> Vec<KeySpec> {
    vec![
        KeySpec::new(ConfigKey::nullable(
            "schema.name",
            ConfigType::String,
            Importance::High,
            "Schema name to set.",
        )),
        KeySpec::new(ConfigKey::nullable(
            "schema.version",
            ConfigType::Int,
            Importance::High,
            "Schema version to set.",
        )),
        KeySpec::new(ConfigKey::optional(
            REPLACE_NULL_WITH_DEFAULT,
            ConfigType::Boolean,
            "true",
            Importance::Medium,
            REPLACE_NULL_WITH_DEFAULT_DOC,
        )),
    ]
}

/// A configured SetSchemaMetadata.
pub struct SetSchemaMetadata {
    target: Target,
    name: Option<String>,
    version: Option<i32>,
    with_default: bool,
    cache: SchemaCache,
}

impl SetSchemaMetadata {
    pub fn new(target: Target, props: &Props) -> Result<SetSchemaMetadata, ConfigError> {
        let name = props.string("schema.name", None);
        let version = props.int("schema.version")?;
        if name.is_none() && version.is_none() {
            return Err(ConfigError(
                "Neither schema name nor version configured".into(),
            ));
        }
        Ok(SetSchemaMetadata {
            target,
            name,
            version,
            with_default: props.replace_null_with_default()?,
            cache: SchemaCache::default(),
        })
    }
}

impl Transformation for SetSchemaMetadata {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        let (schema, value) = self.target.take(&mut record);
        let Some(schema) = schema else {
            if value.is_null() {
                self.target.set(&mut record, None, value);
                return Ok(Some(record));
            }
            return Err(TransformError::data(
                "Schema required for [updating schema metadata]",
            ));
        };
        if schema.schema_type != SchemaType::Struct {
            return Err(TransformError::data(
                "Cannot list fields on non-struct type",
            ));
        }
        let out = self.cache.get_or(&schema, || {
            let mut s = (*schema).clone();
            if let Some(n) = &self.name {
                s.name = Some(n.clone());
            }
            if let Some(v) = self.version {
                s.version = Some(v);
            }
            Ok(s)
        })?;
        let value = match value {
            Value::Struct(values) => Value::Struct(
                schema
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| field_value(&values, f, i, self.with_default))
                    .collect(),
            ),
            other => other,
        };
        self.target.set(&mut record, Some(out), value);
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_data::{Field, Schema};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    #[test]
    fn struct_schemas_are_renamed_others_refused() {
        let t = SetSchemaMetadata::new(
            Target::Value,
            &Props::new(BTreeMap::from([(
                "schema.name".to_string(),
                "N2".to_string(),
            )])),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut s = Schema::structure(vec![Field::new("a", Schema::new(SchemaType::Int32))]);
        s.version = Some(3);
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value_schema = Some(Arc::new(s));
        r.value = Value::Struct(vec![Value::Int32(1)]);
        let r = t
            .apply(r)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        let s = r.value_schema.unwrap_or_else(|| panic!("schema"));
        assert_eq!((s.name.as_deref(), s.version), (Some("N2"), Some(3)));
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value_schema = Some(Arc::new(Schema::new(SchemaType::Int32)));
        r.value = Value::Int32(1);
        assert_eq!(
            t.apply(r).err().map(|e| e.message),
            Some("Cannot list fields on non-struct type".into())
        );
    }
}
