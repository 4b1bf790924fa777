//! `Flatten$Key` / `Flatten$Value`: nested structs (maps) become top-level fields named
//! `parent<delimiter>child`.

use std::sync::Arc;

use floe_data::config::{ConfigKey, ConfigType, Importance};
use floe_data::{Schema, SchemaType, SinkRecord, Value};

use crate::props::{KeySpec, Props};
use crate::support::{
    add_field, basics, field_value, inferred_type, into_map, java_class, map_put, struct_basics,
    SchemaCache, Target,
};
use crate::{ConfigError, TransformError, Transformation};

/// Flatten's keys.
pub fn keys() -> Vec<KeySpec> {
    vec![KeySpec::new(ConfigKey::optional("delimiter", ConfigType::String, ".", Importance::Medium, "Delimiter to insert between field names from the input record when generating field names for the output record"))]
}

/// A configured Flatten.
pub struct Flatten {
    target: Target,
    delimiter: String,
    cache: SchemaCache,
}

impl Flatten {
    pub fn new(target: Target, props: &Props) -> Result<Flatten, ConfigError> {
        Ok(Flatten {
            target,
            delimiter: props.string("delimiter", Some(".")).unwrap_or_default(),
            cache: SchemaCache::default(),
        })
    }

    fn name(&self, prefix: &str, field: &str) -> String {
        if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}{}{field}", self.delimiter)
        }
    }
}

impl Transformation for Flatten {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        let (schema, value) = self.target.take(&mut record);
        if value.is_null() {
            self.target.set(&mut record, schema, value);
            return Ok(Some(record));
        }
        let (schema, value) = match schema {
            None => {
                let mut out = Vec::new();
                self.flatten_map(into_map(value, "flattening")?, "", &mut out)?;
                (None, Value::Map(out))
            }
            Some(schema) => {
                let out_schema = self.cache.get_or(&schema, || {
                    let mut out = struct_basics(&schema);
                    self.flatten_schema(&schema, "", false, &mut out)?;
                    Ok(out)
                })?;
                let mut values = Vec::with_capacity(out_schema.fields.len());
                let Value::Struct(fields) = value else {
                    return Err(TransformError::data(format!(
                        "Only Struct objects supported for [flattening], found: {}",
                        java_class(&value)
                    )));
                };
                flatten_values(&schema, Some(&fields), &mut values);
                (Some(out_schema), Value::Struct(values))
            }
        };
        self.target.set(&mut record, schema, value);
        Ok(Some(record))
    }
}

impl Flatten {
    fn flatten_map(
        &self,
        entries: Vec<(Value, Value)>,
        prefix: &str,
        out: &mut Vec<(Value, Value)>,
    ) -> Result<(), TransformError> {
        for (k, v) in entries {
            let key = match k {
                Value::String(s) => s,
                other => {
                    return Err(TransformError {
                        exception_class: "java.lang.ClassCastException",
                        message: format!(
                            "class {} cannot be cast to class java.lang.String",
                            java_class(&other)
                        ),
                    })
                }
            };
            let name = self.name(prefix, &key);
            match v {
                Value::Null => map_put(out, &name, Value::Null),
                Value::Map(inner) => self.flatten_map(inner, &name, out)?,
                Value::Struct(_) => {
                    return Err(TransformError::data(format!(
                        "Flatten transformation does not support class org.apache.kafka.connect.data.Struct for record without schemas (for field {name})."
                    )))
                }
                other if inferred_type(&other).is_none() => {
                    return Err(TransformError::data(format!(
                        "Flatten transformation was passed a value of type class {} which is not supported by Connect's data API",
                        java_class(&other)
                    )))
                }
                other => map_put(out, &name, other),
            }
        }
        Ok(())
    }

    fn flatten_schema(
        &self,
        schema: &Schema,
        prefix: &str,
        optional_parent: bool,
        out: &mut Schema,
    ) -> Result<(), TransformError> {
        for f in &schema.fields {
            let name = self.name(prefix, &f.name);
            let optional = optional_parent || f.schema.optional;
            match f.schema.schema_type {
                SchemaType::Struct => self.flatten_schema(&f.schema, &name, optional, out)?,
                SchemaType::Map => {
                    return Err(TransformError::data(format!(
                        "Flatten transformation does not support MAP for record with schemas (for field {name})."
                    )))
                }
                _ => {
                    let mut s = basics(&f.schema);
                    s.optional = optional;
                    s.default = f.schema.default.clone();
                    add_field(out, &name, Arc::new(s))?;
                }
            }
        }
        Ok(())
    }
}

/// The leaf values of a struct in schema order; a null nested struct leaves its fields null.
fn flatten_values(schema: &Schema, values: Option<&Vec<Value>>, out: &mut Vec<Value>) {
    for (i, f) in schema.fields.iter().enumerate() {
        let v = values.map(|v| field_value(v, f, i, true));
        if f.schema.schema_type == SchemaType::Struct {
            match v {
                Some(Value::Struct(inner)) => flatten_values(&f.schema, Some(&inner), out),
                _ => flatten_values(&f.schema, None, out),
            }
        } else {
            out.push(v.unwrap_or(Value::Null));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_data::{Field, SchemaRef};
    use std::collections::BTreeMap;

    fn flatten(delim: &str, schema: Option<SchemaRef>, value: Value) -> (Option<SchemaRef>, Value) {
        let t = Flatten::new(
            Target::Value,
            &Props::new(BTreeMap::from([(
                "delimiter".to_string(),
                delim.to_string(),
            )])),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value_schema = schema;
        r.value = value;
        let r = t
            .apply(r)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no record"));
        (r.value_schema, r.value)
    }

    #[test]
    fn maps_flatten_in_order_and_keep_arrays() {
        let m = |pairs: Vec<(&str, Value)>| {
            Value::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (Value::String(k.into()), v))
                    .collect(),
            )
        };
        let v = m(vec![
            ("id", Value::Int64(1)),
            (
                "in",
                m(vec![
                    ("x", Value::Int64(2)),
                    ("deep", m(vec![("y", Value::Null)])),
                ]),
            ),
            ("arr", Value::Array(vec![Value::Int64(1)])),
            ("empty", m(vec![])),
        ]);
        assert_eq!(
            flatten("_", None, v).1,
            m(vec![
                ("id", Value::Int64(1)),
                ("in_x", Value::Int64(2)),
                ("in_deep_y", Value::Null),
                ("arr", Value::Array(vec![Value::Int64(1)])),
            ])
        );
    }

    #[test]
    fn structs_flatten_with_optional_parents() {
        let inner = Schema::structure(vec![
            Field::new("x", Schema::new(SchemaType::Int32)),
            Field::new("y", Schema::new(SchemaType::String).optional()),
        ])
        .optional();
        let schema = Arc::new(Schema::structure(vec![
            Field::new("id", Schema::new(SchemaType::Int64)),
            Field::new("in", inner),
        ]));
        let (s, v) = flatten(
            "_",
            Some(schema.clone()),
            Value::Struct(vec![Value::Int64(1), Value::Null]),
        );
        let s = s.unwrap_or_else(|| panic!("schema"));
        let names: Vec<(&str, bool)> = s
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.schema.optional))
            .collect();
        assert_eq!(names, vec![("id", false), ("in_x", true), ("in_y", true)]);
        assert_eq!(
            v,
            Value::Struct(vec![Value::Int64(1), Value::Null, Value::Null])
        );
        let (_, v) = flatten(
            "_",
            Some(schema),
            Value::Struct(vec![
                Value::Int64(1),
                Value::Struct(vec![Value::Int32(2), Value::String("a".into())]),
            ]),
        );
        assert_eq!(
            v,
            Value::Struct(vec![
                Value::Int64(1),
                Value::Int32(2),
                Value::String("a".into())
            ])
        );
    }
}
