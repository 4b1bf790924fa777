//! `ReplaceField$Key` / `ReplaceField$Value`: keeps (`include`), drops (`exclude`) and renames
//! (`renames`) top-level fields.

use std::collections::BTreeMap;

use floe_data::config::{java_split, parse_list, ConfigKey, ConfigType, Importance};
use floe_data::{SinkRecord, Value};

use crate::props::{
    Check, KeySpec, Props, REPLACE_NULL_WITH_DEFAULT, REPLACE_NULL_WITH_DEFAULT_DOC,
};
use crate::support::{
    add_field, field_value, into_map, into_struct, map_put, struct_basics, SchemaCache, Target,
};
use crate::{ConfigError, TransformError, Transformation};

const PURPOSE: &str = "field replacement";

/// ReplaceField's keys (`whitelist`/`blacklist` are gone since Kafka 4.0: ignored, as there).
pub fn keys() -> Vec<KeySpec> {
    vec![
        KeySpec::new(ConfigKey::optional(
            "exclude",
            ConfigType::List,
            "",
            Importance::Medium,
            "Fields to exclude. This takes precedence over the fields to include.",
        )),
        KeySpec::new(ConfigKey::optional(
            "include",
            ConfigType::List,
            "",
            Importance::Medium,
            "Fields to include. If specified, only these fields will be used.",
        )),
        KeySpec::checked(
            ConfigKey::optional(
                "renames",
                ConfigType::List,
                "",
                Importance::Medium,
                "Field rename mappings.",
            ),
            Check::Custom(check_renames),
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

fn check_renames(name: &str, value: Option<&str>) -> Option<String> {
    parse_renames(name, &value.map(parse_list).unwrap_or_default()).err()
}

fn parse_renames(name: &str, items: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in items {
        match java_split(item, ':').as_slice() {
            [from, to] => {
                out.retain(|(f, _)| f != from);
                out.push((from.to_string(), to.to_string()));
            }
            _ => {
                return Err(format!(
                    "Invalid value [{}] for configuration {name}: Invalid rename mapping: {item}",
                    items.join(", ")
                ))
            }
        }
    }
    Ok(out)
}

/// A configured ReplaceField.
pub struct ReplaceField {
    target: Target,
    exclude: Vec<String>,
    include: Vec<String>,
    renames: BTreeMap<String, String>,
    with_default: bool,
    cache: SchemaCache,
}

impl ReplaceField {
    pub fn new(target: Target, props: &Props) -> Result<ReplaceField, ConfigError> {
        let renames = parse_renames("renames", &props.list("renames")).map_err(ConfigError)?;
        Ok(ReplaceField {
            target,
            exclude: props.list("exclude"),
            include: props.list("include"),
            renames: renames.into_iter().collect(),
            with_default: props.replace_null_with_default()?,
            cache: SchemaCache::default(),
        })
    }

    fn keeps(&self, name: &str) -> bool {
        !self.exclude.iter().any(|e| e == name)
            && (self.include.is_empty() || self.include.iter().any(|i| i == name))
    }

    fn renamed<'a>(&'a self, name: &'a str) -> &'a str {
        self.renames.get(name).map(String::as_str).unwrap_or(name)
    }
}

impl Transformation for ReplaceField {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        let (schema, value) = self.target.take(&mut record);
        if value.is_null() {
            self.target.set(&mut record, schema, value);
            return Ok(Some(record));
        }
        match schema {
            None => {
                let map = into_map(value, PURPOSE)?;
                let mut out = Vec::with_capacity(map.len());
                for (k, v) in map {
                    let Some(name) = k.as_str() else { continue };
                    if self.keeps(name) {
                        let renamed = self.renamed(name).to_string();
                        map_put(&mut out, &renamed, v);
                    }
                }
                self.target.set(&mut record, None, Value::Map(out));
            }
            Some(schema) => {
                let values = into_struct(value, PURPOSE)?;
                let out = self.cache.get_or(&schema, || {
                    let mut out = struct_basics(&schema);
                    for f in schema.fields.iter().filter(|f| self.keeps(&f.name)) {
                        add_field(&mut out, self.renamed(&f.name), f.schema.clone())?;
                    }
                    Ok(out)
                })?;
                let kept: Vec<Value> = schema
                    .fields
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| self.keeps(&f.name))
                    .map(|(i, f)| field_value(&values, f, i, self.with_default))
                    .collect();
                self.target.set(&mut record, Some(out), Value::Struct(kept));
            }
        }
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_data::{Field, Schema, SchemaType};
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
    fn fields_are_kept_dropped_and_renamed() {
        let t = ReplaceField::new(
            Target::Value,
            &props(&[
                ("include", "id,in"),
                ("exclude", "in"),
                ("renames", "id:ident"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let schema = Arc::new(Schema::structure(vec![
            Field::new("id", Schema::new(SchemaType::Int64)),
            Field::new("in", Schema::new(SchemaType::String)),
            Field::new("z", Schema::new(SchemaType::String)),
        ]));
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value_schema = Some(schema);
        r.value = Value::Struct(vec![
            Value::Int64(1),
            Value::String("a".into()),
            Value::String("b".into()),
        ]);
        let r = t
            .apply(r)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        assert_eq!(r.value, Value::Struct(vec![Value::Int64(1)]));
        assert_eq!(
            r.value_schema.map(|s| s.fields[0].name.clone()).as_deref(),
            Some("ident")
        );

        let t = ReplaceField::new(
            Target::Value,
            &props(&[("exclude", "secret"), ("renames", "a:b")]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value = Value::Map(vec![
            (Value::String("a".into()), Value::Int64(1)),
            (Value::String("secret".into()), Value::Int64(2)),
        ]);
        let r = t
            .apply(r)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        assert_eq!(
            r.value,
            Value::Map(vec![(Value::String("b".into()), Value::Int64(1))])
        );
    }

    #[test]
    fn bad_renames_are_javas_errors() {
        assert_eq!(
            check_renames("renames", Some("a:b:c, x:y")).as_deref(),
            Some("Invalid value [a:b:c, x:y] for configuration renames: Invalid rename mapping: a:b:c")
        );
        let schema = Arc::new(Schema::structure(vec![
            Field::new("id", Schema::new(SchemaType::Int64)),
            Field::new("ts", Schema::new(SchemaType::Int64)),
        ]));
        let t = ReplaceField::new(Target::Value, &props(&[("renames", "id:ts")]))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value_schema = Some(schema);
        r.value = Value::Struct(vec![Value::Int64(1), Value::Int64(2)]);
        assert_eq!(
            t.apply(r).err().map(|e| e.message),
            Some("Cannot create field because of field name duplication ts".into())
        );
    }
}
