//! `ExtractField$Key` / `ExtractField$Value`: replaces the key or value with one of its fields
//! (a dotted path with `field.syntax.version=V2`).

use floe_data::config::{ConfigKey, ConfigType, Importance};
use floe_data::{Schema, SchemaRef, SchemaType, SinkRecord, Value};

use crate::props::{
    Check, KeySpec, Props, REPLACE_NULL_WITH_DEFAULT, REPLACE_NULL_WITH_DEFAULT_DOC,
};
use crate::support::{field_value, java_class, map_get, Target};
use crate::{ConfigError, TransformError, Transformation};

/// ExtractField's keys.
pub fn keys() -> Vec<KeySpec> {
    vec![
        KeySpec::new(ConfigKey::required("field", ConfigType::String, Importance::Medium, "Field name to extract.")),
        KeySpec::new(ConfigKey::optional(REPLACE_NULL_WITH_DEFAULT, ConfigType::Boolean, "true", Importance::Medium, REPLACE_NULL_WITH_DEFAULT_DOC)),
        KeySpec::checked(
            ConfigKey::optional("field.syntax.version", ConfigType::String, "V1", Importance::High, "Defines the version of the syntax to access fields. If set to `V1`, then the field paths are limited to access the elements at the root level of the struct or map. If set to `V2`, the syntax will support accessing nested elements. To access nested elements, dotted notation is used. If dots are already included in the field name, then backtick pairs can be used to wrap field names containing dots. E.g. to access the subfield `baz` from a field named \"foo.bar\" in a struct/map the following format can be used to access its elements: \"`foo.bar`.baz\"."),
            Check::OneOfIgnoringCase(&["V1", "V2"]),
        ),
    ]
}

/// A configured ExtractField.
pub struct ExtractField {
    target: Target,
    field: String,
    path: Vec<String>,
    with_default: bool,
}

impl ExtractField {
    pub fn new(target: Target, props: &Props) -> Result<ExtractField, ConfigError> {
        let field = props.required_string("field")?;
        let v2 = props
            .string("field.syntax.version", Some("V1"))
            .is_some_and(|v| v.eq_ignore_ascii_case("V2"));
        let path = if v2 {
            field_path(&field)?
        } else {
            vec![field.clone()]
        };
        Ok(ExtractField {
            target,
            field,
            path,
            with_default: props.replace_null_with_default()?,
        })
    }
}

/// A V2 path: dotted steps, a step in backticks may hold dots (`` `a.b`.c ``), `\` escapes a
/// backtick inside one.
pub fn field_path(path: &str) -> Result<Vec<String>, ConfigError> {
    let chars: Vec<char> = path.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    loop {
        let mut step = String::new();
        if chars.get(i) == Some(&'`') {
            let open = i;
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(ConfigError(format!(
                            "Incomplete backtick pair in path: [{path}], consider adding a backslash before backtick at position {open} to escape it"
                        )))
                    }
                    Some('\\') if chars.get(i + 1) == Some(&'`') => {
                        step.push('`');
                        i += 2;
                    }
                    Some('`') if matches!(chars.get(i + 1), None | Some('.')) => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        step.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(c) = chars.get(i).filter(|c| **c != '.') {
                step.push(*c);
                i += 1;
            }
        }
        steps.push(step);
        match chars.get(i) {
            Some('.') => i += 1,
            _ => return Ok(steps),
        }
    }
}

impl Transformation for ExtractField {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        let (schema, value) = self.target.take(&mut record);
        let (schema, value) = match schema {
            None => (None, self.schemaless(value)?),
            Some(schema) => self.with_schema(&schema, value)?,
        };
        self.target.set(&mut record, schema, value);
        Ok(Some(record))
    }
}

impl ExtractField {
    fn schemaless(&self, value: Value) -> Result<Value, TransformError> {
        let mut current = &value;
        for (n, step) in self.path.iter().enumerate() {
            let entries = match current {
                Value::Null => return Ok(Value::Null),
                Value::Map(entries) => entries,
                other => {
                    let purpose = if n == 0 {
                        "field extraction"
                    } else {
                        "nested field access"
                    };
                    return Err(TransformError::data(format!(
                        "Only Map objects supported in absence of schema for [{purpose}], found: {}",
                        java_class(other)
                    )));
                }
            };
            match map_get(entries, step) {
                Some(v) => current = v,
                None => return Ok(Value::Null),
            }
        }
        Ok(current.clone())
    }

    fn with_schema(
        &self,
        schema: &SchemaRef,
        value: Value,
    ) -> Result<(Option<SchemaRef>, Value), TransformError> {
        // The field is looked up in the schema first, even for a null value.
        let mut s: &Schema = schema;
        let mut indices = Vec::with_capacity(self.path.len());
        for step in &self.path {
            if s.schema_type != SchemaType::Struct {
                return Err(TransformError::data(
                    "Cannot look up fields on non-struct type",
                ));
            }
            let (i, f) = s.field(step).ok_or_else(|| {
                TransformError::illegal_argument(format!("Unknown field: {}", self.field))
            })?;
            indices.push(i);
            s = &f.schema;
        }
        let out_schema = {
            let mut s: &SchemaRef = schema;
            for i in &indices {
                s = &s.fields[*i].schema;
            }
            s.clone()
        };
        let mut current = value;
        let mut s: &Schema = schema;
        for (n, i) in indices.iter().enumerate() {
            let values = match current {
                Value::Null => return Ok((Some(out_schema), Value::Null)),
                Value::Struct(values) => values,
                other => {
                    let purpose = if n == 0 {
                        "field extraction"
                    } else {
                        "nested field access"
                    };
                    return Err(TransformError::data(format!(
                        "Only Struct objects supported for [{purpose}], found: {}",
                        java_class(&other)
                    )));
                }
            };
            let last = n + 1 == indices.len();
            let f = &s.fields[*i];
            current = field_value(&values, f, *i, !last || self.with_default);
            s = &f.schema;
        }
        Ok((Some(out_schema), current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_data::Field;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn extract(
        field: &str,
        v2: bool,
        schema: Option<SchemaRef>,
        value: Value,
    ) -> Result<(Option<SchemaRef>, Value), TransformError> {
        let mut p = BTreeMap::from([("field".to_string(), field.to_string())]);
        if v2 {
            p.insert("field.syntax.version".into(), "v2".into());
        }
        let t = ExtractField::new(Target::Value, &Props::new(p))
            .map_err(|e| TransformError::data(e.0))?;
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value_schema = schema;
        r.value = value;
        t.apply(r).map(|r| {
            r.map(|r| (r.value_schema, r.value))
                .unwrap_or((None, Value::Null))
        })
    }

    #[test]
    fn paths_parse_with_backticks() {
        let p = |s: &str| field_path(s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p("a.b"), vec!["a", "b"]);
        assert_eq!(p("`a.b`.c"), vec!["a.b", "c"]);
        assert_eq!(p("a."), vec!["a", ""]);
        assert!(field_path("`a.b").is_err());
    }

    #[test]
    fn nested_fields_come_out_of_maps_and_structs() {
        let m = |pairs: Vec<(&str, Value)>| {
            Value::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (Value::String(k.into()), v))
                    .collect(),
            )
        };
        let v = m(vec![
            ("a", m(vec![("b", Value::Int64(1))])),
            ("a.b", Value::Int64(2)),
        ]);
        assert_eq!(
            extract("a.b", true, None, v.clone()).map(|r| r.1),
            Ok(Value::Int64(1))
        );
        assert_eq!(
            extract("a.b", false, None, v.clone()).map(|r| r.1),
            Ok(Value::Int64(2))
        );
        assert_eq!(extract("zz", false, None, v).map(|r| r.1), Ok(Value::Null));

        let inner = Schema::structure(vec![Field::new("b", Schema::new(SchemaType::Int32))]);
        let schema = Arc::new(Schema::structure(vec![Field::new("a", inner)]));
        let value = Value::Struct(vec![Value::Struct(vec![Value::Int32(3)])]);
        let (s, v) =
            extract("a.b", true, Some(schema.clone()), value).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v, Value::Int32(3));
        assert_eq!(s.map(|s| s.schema_type), Some(SchemaType::Int32));
        assert_eq!(
            extract("zz", false, Some(schema), Value::Null).err(),
            Some(TransformError::illegal_argument("Unknown field: zz"))
        );
    }
}
