//! `DebeziumTransform`: a Debezium change event becomes its row (`after`, or `before` for a
//! delete) with a `_cdc` struct: `op` (`I`/`U`/`D`), `ts`, `offset`, `source`, `target` and the
//! record's `key`.

use std::sync::Arc;

use floe_data::config::{ConfigKey, ConfigType, Importance};
use floe_data::{Field, Schema, SchemaRef, SinkRecord, Value};

use super::CDC;
use crate::props::{KeySpec, Props};
use crate::support::{
    add_field, field_value, into_map, into_struct, java_class, map_get, map_put, primitive,
    struct_basics, timestamp_schema,
};
use crate::{ConfigError, TransformError, Transformation};

const PURPOSE: &str = "Debezium transform";

/// DebeziumTransform's keys.
pub fn keys() -> Vec<KeySpec> {
    vec![KeySpec::new(ConfigKey::nullable(
        "cdc.target.pattern",
        ConfigType::String,
        Importance::Medium,
        "Pattern to use for setting the CDC target field value.",
    ))]
}

/// A configured DebeziumTransform.
pub struct DebeziumTransform {
    pattern: Option<String>,
}

impl DebeziumTransform {
    pub fn new(props: &Props) -> Result<DebeziumTransform, ConfigError> {
        Ok(DebeziumTransform {
            pattern: props
                .string("cdc.target.pattern", None)
                .filter(|p| !p.is_empty()),
        })
    }

    fn target(&self, db: &str, table: &str) -> String {
        match &self.pattern {
            None => format!("{db}.{table}"),
            Some(p) => p.replace("{db}", db).replace("{table}", table),
        }
    }
}

fn op_code(op: &str) -> &'static str {
    match op {
        "u" => "U",
        "d" => "D",
        _ => "I",
    }
}

fn npe(what: &str) -> TransformError {
    TransformError {
        exception_class: "java.lang.NullPointerException",
        message: format!("the Debezium event has no {what}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

impl Transformation for DebeziumTransform {
    fn apply(&self, record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        if record.value.is_null() {
            return Ok(Some(record));
        }
        match record.value_schema.clone() {
            None => self.schemaless(record),
            Some(schema) => self.with_schema(record, &schema),
        }
    }
}

impl DebeziumTransform {
    fn with_schema(
        &self,
        mut record: SinkRecord,
        schema: &SchemaRef,
    ) -> Result<Option<SinkRecord>, TransformError> {
        let values = into_struct(std::mem::replace(&mut record.value, Value::Null), PURPOSE)?;
        let get = |name: &str| -> Result<(usize, &Field), TransformError> {
            schema
                .field(name)
                .ok_or_else(|| TransformError::data(format!("{name} is not a valid field name")))
        };
        let (op_index, _) = get("op")?;
        let op = match &values[op_index] {
            Value::Null => return Err(npe("op")),
            v => op_code(&v.to_string()),
        };
        let (payload_index, payload_field) = get(if op == "D" { "before" } else { "after" })?;
        let payload = match &values[payload_index] {
            Value::Struct(p) => p.clone(),
            Value::Null => return Err(npe(if op == "D" { "before" } else { "after" })),
            other => {
                return Err(TransformError::data(format!(
                    "Only Struct objects supported for [{PURPOSE}], found: {}",
                    java_class(other)
                )))
            }
        };
        let (source_index, source_field) = get("source")?;
        let Value::Struct(source) = &values[source_index] else {
            return Err(npe("source"));
        };
        let source_schema = &source_field.schema;
        let source_get = |name: &str| -> Result<Value, TransformError> {
            let (i, _) = source_schema
                .field(name)
                .ok_or_else(|| TransformError::data(format!("{name} is not a valid field name")))?;
            Ok(source[i].clone())
        };
        let db = if source_schema.field("schema").is_some() {
            source_get("schema")?
        } else {
            source_get("db")?
        };
        let table = source_get("table")?;
        let (db, table) = (text(&db), text(&table));
        let (ts_index, _) = get("ts_ms")?;
        let ts = values[ts_index].as_i64().ok_or_else(|| npe("ts_ms"))?;

        let mut cdc_schema = Schema::structure(vec![
            Field::new("op", Schema::new(floe_data::SchemaType::String)),
            Field::new("ts", timestamp_schema(false)),
            Field {
                name: "offset".into(),
                schema: primitive(floe_data::SchemaType::Int64, true),
            },
            Field::new("source", Schema::new(floe_data::SchemaType::String)),
            Field::new("target", Schema::new(floe_data::SchemaType::String)),
        ]);
        let mut cdc = vec![
            Value::String(op.into()),
            Value::Timestamp(ts),
            Value::Int64(record.offset),
            Value::String(format!("{db}.{table}")),
            Value::String(self.target(&db, &table)),
        ];
        if let Some(key_schema) = &record.key_schema {
            cdc_schema.fields.push(Field {
                name: "key".into(),
                schema: key_schema.clone(),
            });
            cdc.push(record.key.clone());
        }
        let payload_schema = &payload_field.schema;
        let mut out = struct_basics(payload_schema);
        out.fields = payload_schema.fields.clone();
        add_field(&mut out, CDC, Arc::new(cdc_schema))?;
        let mut row: Vec<Value> = payload_schema
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| field_value(&payload, f, i, true))
            .collect();
        row.push(Value::Struct(cdc));
        record.value_schema = Some(Arc::new(out));
        record.value = Value::Struct(row);
        Ok(Some(record))
    }

    fn schemaless(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        let map = into_map(std::mem::replace(&mut record.value, Value::Null), PURPOSE)?;
        let op = match map_get(&map, "op") {
            None | Some(Value::Null) => return Err(npe("op")),
            Some(v) => op_code(&v.to_string()),
        };
        let Some(Value::Map(payload)) = map_get(&map, if op == "D" { "before" } else { "after" })
        else {
            return Ok(None);
        };
        let source = match map_get(&map, "source") {
            Some(Value::Map(s)) => s,
            other => {
                return Err(TransformError::data(format!(
                    "Only Map objects supported in absence of schema for [{PURPOSE}], found: {}",
                    java_class(other.unwrap_or(&Value::Null))
                )))
            }
        };
        let required = |name: &str| match map_get(source, name) {
            None | Some(Value::Null) => Err(npe(name)),
            Some(v) => Ok(v.to_string()),
        };
        let db = if map_get(source, "schema").is_some() {
            required("schema")?
        } else {
            required("db")?
        };
        let table = required("table")?;
        let mut cdc = vec![
            (Value::String("op".into()), Value::String(op.into())),
            (
                Value::String("ts".into()),
                map_get(&map, "ts_ms").cloned().unwrap_or(Value::Null),
            ),
            (Value::String("offset".into()), Value::Int64(record.offset)),
            (
                Value::String("source".into()),
                Value::String(format!("{db}.{table}")),
            ),
            (
                Value::String("target".into()),
                Value::String(self.target(&db, &table)),
            ),
        ];
        if let Value::Map(_) = &record.key {
            cdc.push((Value::String("key".into()), record.key.clone()));
        }
        let mut row = payload.clone();
        map_put(&mut row, CDC, Value::Map(cdc));
        record.value = Value::Map(row);
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_data::SchemaType;

    fn m(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Value::String(k.into()), v))
                .collect(),
        )
    }

    #[test]
    fn schemaless_events_become_rows_with_cdc() {
        let t = DebeziumTransform {
            pattern: Some("{db}_x.{table}_x".into()),
        };
        let mut r = SinkRecord::new("t", 0, 7, None);
        r.value = m(vec![
            ("op", Value::String("u".into())),
            ("ts_ms", Value::Int64(5)),
            ("before", Value::Null),
            ("after", m(vec![("id", Value::Int64(1))])),
            (
                "source",
                m(vec![
                    ("schema", Value::String("public".into())),
                    ("db", Value::String("d".into())),
                    ("table", Value::String("tbl".into())),
                ]),
            ),
        ]);
        let r = t
            .apply(r)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        assert_eq!(
            r.value,
            m(vec![
                ("id", Value::Int64(1)),
                (
                    "_cdc",
                    m(vec![
                        ("op", Value::String("U".into())),
                        ("ts", Value::Int64(5)),
                        ("offset", Value::Int64(7)),
                        ("source", Value::String("public.tbl".into())),
                        ("target", Value::String("public_x.tbl_x".into())),
                    ])
                )
            ])
        );
        let mut truncate = SinkRecord::new("t", 0, 0, None);
        truncate.value = m(vec![
            ("op", Value::String("t".into())),
            ("after", Value::Null),
        ]);
        assert_eq!(t.apply(truncate), Ok(None));
    }

    #[test]
    fn struct_events_get_a_cdc_struct_after_the_row() {
        let row = Schema::structure(vec![Field::new("id", Schema::new(SchemaType::Int64))])
            .optional()
            .named("db.t.Value");
        let source = Schema::structure(vec![
            Field::new("db", Schema::new(SchemaType::String)),
            Field::new("table", Schema::new(SchemaType::String)),
        ]);
        let envelope = Arc::new(Schema::structure(vec![
            Field::new("before", row.clone()),
            Field::new("after", row),
            Field::new("source", source),
            Field::new("op", Schema::new(SchemaType::String)),
            Field::new("ts_ms", Schema::new(SchemaType::Int64).optional()),
        ]));
        let mut r = SinkRecord::new("t", 0, 3, None);
        r.key_schema = Some(Arc::new(Schema::new(SchemaType::String)));
        r.key = Value::String("k".into());
        r.value_schema = Some(envelope);
        r.value = Value::Struct(vec![
            Value::Struct(vec![Value::Int64(1)]),
            Value::Null,
            Value::Struct(vec![
                Value::String("inventory".into()),
                Value::String("customers".into()),
            ]),
            Value::String("d".into()),
            Value::Int64(9),
        ]);
        let r = DebeziumTransform { pattern: None }
            .apply(r)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        let s = r.value_schema.unwrap_or_else(|| panic!("schema"));
        assert_eq!(s.name.as_deref(), Some("db.t.Value"));
        assert!(!s.optional);
        let cdc: Vec<&str> = s.fields[1]
            .schema
            .fields
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(cdc, vec!["op", "ts", "offset", "source", "target", "key"]);
        assert_eq!(
            r.value,
            Value::Struct(vec![
                Value::Int64(1),
                Value::Struct(vec![
                    Value::String("D".into()),
                    Value::Timestamp(9),
                    Value::Int64(3),
                    Value::String("inventory.customers".into()),
                    Value::String("inventory.customers".into()),
                    Value::String("k".into()),
                ])
            ])
        );
    }
}
