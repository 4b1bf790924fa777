//! Debezium's `io.debezium.transforms.ExtractNewRecordState` (as in Debezium 3.6): a change
//! event (a struct whose schema name ends in `.Envelope`) becomes its new row state; deletes,
//! tombstones and truncates are handled by `delete.tombstone.handling.mode`; `add.fields` and
//! `add.headers` copy envelope metadata (`op`, `source.ts_ms`, …) into the row or headers.
//! Anything that is not an envelope — schemaless JSON included — passes unchanged.

use std::sync::Arc;

use floe_data::config::{parse_list, ConfigKey, ConfigType, Importance};
use floe_data::{Field, Header, Schema, SchemaRef, SchemaType, SinkRecord, Value};

use crate::kafka::routers::reroute;
use crate::plugins::{Build, Plugin, PluginKind};
use crate::props::{
    Check, KeySpec, Props, REPLACE_NULL_WITH_DEFAULT, REPLACE_NULL_WITH_DEFAULT_DOC,
};
use crate::support::{add_field, basics, field_value, java_class, primitive, struct_basics};
use crate::{ConfigError, TransformError, Transformation};

/// The Debezium release whose transform this follows.
pub const VERSION: &str = "3.6.1.Final";
const CLASS: &str = "io.debezium.transforms.ExtractNewRecordState";
const MODES: &[&str] = &[
    "drop",
    "tombstone",
    "rewrite",
    "rewrite-with-tombstone",
    "delete-to-tombstone",
];

/// Debezium's transforms.
pub fn plugins() -> Vec<Plugin> {
    vec![Plugin {
        class: CLASS,
        kind: PluginKind::Transformation,
        version: VERSION,
        keys,
        build: Build::Transformation(|p| crate::kafka::boxed(ExtractNewRecordState::new(p))),
    }]
}

fn removed(name: &str, value: Option<&str>) -> Option<String> {
    value.map(|v| {
        format!(
            "Invalid value {v} for configuration {name}: removed in Debezium 3.2 (Debezium 3.x ignores it); use delete.tombstone.handling.mode"
        )
    })
}

fn unsupported(name: &str, value: Option<&str>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty()).map(|v| {
        format!("Invalid value {v} for configuration {name}: not supported by Floe's ExtractNewRecordState")
    })
}

/// ExtractNewRecordState's keys.
pub fn keys() -> Vec<KeySpec> {
    vec![
        KeySpec::checked(
            ConfigKey::optional("delete.tombstone.handling.mode", ConfigType::String, "tombstone", Importance::Medium, "How to handle delete records and tombstones: drop, tombstone, rewrite, rewrite-with-tombstone or delete-to-tombstone."),
            Check::OneOfIgnoringCase(MODES),
        ),
        KeySpec::new(ConfigKey::optional("route.by.field", ConfigType::String, "", Importance::Low, "The column which determines how the events will be routed, the value will replace the topic name.")),
        KeySpec::new(ConfigKey::optional("add.fields.prefix", ConfigType::String, "__", Importance::Low, "Adds this prefix to each field listed.")),
        KeySpec::new(ConfigKey::optional("add.fields", ConfigType::List, "", Importance::Low, "Adds each field listed, prefixed with __ (or __<struct>_ if the struct is specified).")),
        KeySpec::new(ConfigKey::optional("add.headers.prefix", ConfigType::String, "__", Importance::Low, "Adds this prefix listed to each header.")),
        KeySpec::new(ConfigKey::optional("add.headers", ConfigType::List, "", Importance::Low, "Adds each field listed to the header, __ (or __<struct>_ if the struct is specified).")),
        KeySpec::new(ConfigKey::optional(REPLACE_NULL_WITH_DEFAULT, ConfigType::Boolean, "true", Importance::Medium, REPLACE_NULL_WITH_DEFAULT_DOC)),
        KeySpec::checked(ConfigKey::nullable("delete.handling.mode", ConfigType::String, Importance::Medium, "Removed in Debezium 3.2: use delete.tombstone.handling.mode."), Check::Custom(removed)),
        KeySpec::checked(ConfigKey::nullable("drop.tombstones", ConfigType::String, Importance::Medium, "Removed in Debezium 3.2: use delete.tombstone.handling.mode."), Check::Custom(removed)),
        KeySpec::checked(ConfigKey::nullable("drop.fields.header.name", ConfigType::String, Importance::Low, "Not supported by Floe."), Check::Custom(unsupported)),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Drop,
    Tombstone,
    Rewrite,
    RewriteWithTombstone,
    DeleteToTombstone,
}

/// An `add.fields` / `add.headers` entry: where the value is read and the name it gets.
#[derive(Debug, Clone)]
struct FieldRef {
    /// The envelope struct holding it (`source`, `transaction`), or None for the envelope.
    parent: Option<String>,
    field: String,
    name: String,
}

fn field_refs(entries: &[String], prefix: &str) -> Result<Vec<FieldRef>, ConfigError> {
    entries
        .iter()
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let parts: Vec<&str> = entry.split(':').collect();
            if parts.len() > 2 {
                return Err(ConfigError(format!("Unexpected field name: {entry}")));
            }
            let path: Vec<&str> = parts[0].split('.').collect();
            let (parent, field) = if path.len() == 1 {
                let f = path[0];
                let parent = match f {
                    "id" | "total_order" | "data_collection_order" => Some("transaction"),
                    "op" | "ts_ms" | "ts_us" | "ts_ns" => None,
                    "updateDescription" => Some("updateDescription"),
                    _ => Some("source"),
                };
                (parent.map(str::to_string), f.to_string())
            } else {
                (Some(path[0].to_string()), path[1].to_string())
            };
            let name = match parts.get(1) {
                Some(rename) => format!("{prefix}{rename}"),
                None if path.len() == 1 => format!("{prefix}{field}"),
                None => format!("{prefix}{}_{field}", path[0]),
            };
            Ok(FieldRef {
                parent,
                field,
                name,
            })
        })
        .collect()
}

/// A configured ExtractNewRecordState.
pub struct ExtractNewRecordState {
    mode: Mode,
    route_by: Option<String>,
    add_fields: Vec<FieldRef>,
    add_headers: Vec<FieldRef>,
    with_default: bool,
}

impl ExtractNewRecordState {
    pub fn new(props: &Props) -> Result<ExtractNewRecordState, ConfigError> {
        for (key, check) in [
            (
                "delete.handling.mode",
                removed as fn(&str, Option<&str>) -> Option<String>,
            ),
            ("drop.tombstones", removed),
            ("drop.fields.header.name", unsupported),
        ] {
            if let Some(e) = check(key, props.raw(key)) {
                return Err(ConfigError(e));
            }
        }
        let mode_name = props
            .string("delete.tombstone.handling.mode", Some("tombstone"))
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mode = match mode_name.as_str() {
            "drop" => Mode::Drop,
            "tombstone" => Mode::Tombstone,
            "rewrite" => Mode::Rewrite,
            "rewrite-with-tombstone" => Mode::RewriteWithTombstone,
            "delete-to-tombstone" => Mode::DeleteToTombstone,
            _ => return Err(ConfigError("Unable to validate config.".into())),
        };
        let fields_prefix = props
            .string("add.fields.prefix", Some("__"))
            .unwrap_or_default();
        let headers_prefix = props
            .string("add.headers.prefix", Some("__"))
            .unwrap_or_default();
        Ok(ExtractNewRecordState {
            mode,
            route_by: props
                .string("route.by.field", Some(""))
                .filter(|r| !r.is_empty()),
            add_fields: field_refs(
                &props.raw("add.fields").map(parse_list).unwrap_or_default(),
                &fields_prefix,
            )?,
            add_headers: field_refs(
                &props.raw("add.headers").map(parse_list).unwrap_or_default(),
                &headers_prefix,
            )?,
            with_default: props.replace_null_with_default()?,
        })
    }

    fn rewrites(&self) -> bool {
        matches!(self.mode, Mode::Rewrite | Mode::RewriteWithTombstone)
    }
}

/// The envelope's field `name`: its schema and value.
fn envelope_field<'a>(
    schema: &'a Schema,
    values: &'a [Value],
    name: &str,
) -> Result<(&'a SchemaRef, &'a Value), TransformError> {
    let (i, f) = schema
        .field(name)
        .ok_or_else(|| TransformError::illegal_argument(format!("Unknown field: {name}")))?;
    Ok((&f.schema, &values[i]))
}

/// Where a `FieldRef` is found in an envelope: its schema and (raw) value; None when absent.
fn resolve(r: &FieldRef, schema: &Schema, values: &[Value]) -> Option<(SchemaRef, Value)> {
    let direct = match &r.parent {
        None => schema
            .field(&r.field)
            .map(|(i, f)| (f.schema.clone(), values[i].clone())),
        Some(parent) => {
            let (pi, pf) = schema.field(parent)?;
            pf.schema.field(&r.field).map(|(i, f)| {
                let v = match &values[pi] {
                    Value::Struct(inner) => inner.get(i).cloned().unwrap_or(Value::Null),
                    _ => Value::Null,
                };
                (f.schema.clone(), v)
            })
        }
    };
    direct.or_else(|| {
        schema
            .field(&r.field)
            .map(|(i, f)| (f.schema.clone(), values[i].clone()))
    })
}

/// An added field's schema: the original's basics, optional, without a default.
fn added_schema(original: &Schema) -> SchemaRef {
    let mut s = basics(original);
    s.optional = true;
    Arc::new(s)
}

impl Transformation for ExtractNewRecordState {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        let tombstone = record.value.is_null();
        let envelope = record
            .value_schema
            .as_ref()
            .and_then(|s| s.name.as_deref())
            .is_some_and(|n| n.ends_with(".Envelope"));
        if tombstone {
            if self.add_headers.iter().any(|h| h.field == "op") {
                for h in self.add_headers.iter().filter(|h| h.field == "op") {
                    record.headers.push(Header {
                        key: h.name.clone(),
                        schema: Some(primitive(SchemaType::String, false)),
                        value: Value::String("d".into()),
                    });
                }
            }
            return Ok(match self.mode {
                Mode::RewriteWithTombstone => Some(record),
                _ => None,
            });
        }
        if !envelope {
            return Ok(Some(record));
        }
        let schema = record
            .value_schema
            .clone()
            .unwrap_or_else(|| Arc::new(Schema::structure(vec![])));
        let Value::Struct(values) = std::mem::replace(&mut record.value, Value::Null) else {
            return Err(TransformError::data(format!(
                "Only Struct objects supported for [record extraction], found: {}",
                java_class(&record.value)
            )));
        };
        for h in &self.add_headers {
            if let Some((s, v)) = resolve(h, &schema, &values) {
                record.headers.push(Header {
                    key: h.name.clone(),
                    schema: Some(added_schema(&s)),
                    value: v,
                });
            }
        }
        let (after_schema, after) = envelope_field(&schema, &values, "after")?;
        let (before_schema, before) = envelope_field(&schema, &values, "before")?;
        if after.is_null() && before.is_null() {
            return Ok(None); // truncate
        }
        if after.is_null() {
            // A delete.
            let routed = match (&self.route_by, before) {
                (Some(field), Value::Struct(b)) => route_value(before_schema, b, field)?,
                _ => None,
            };
            let out = match self.mode {
                Mode::Drop => return Ok(None),
                Mode::Tombstone => {
                    record.value_schema = Some(after_schema.clone());
                    record.value = Value::Null;
                    record
                }
                Mode::DeleteToTombstone => {
                    record.value_schema = None;
                    record.value = Value::Null;
                    record
                }
                Mode::Rewrite | Mode::RewriteWithTombstone => {
                    let (s, v) = self.rewritten(before_schema, before, "true")?;
                    let (s, v) = self.add_fields(&schema, &values, s, v)?;
                    record.value_schema = Some(s);
                    record.value = v;
                    record
                }
            };
            let mut out = out;
            if let Some(topic) = routed {
                reroute(&mut out, topic);
            }
            return Ok(Some(out));
        }
        let (s, v) = if self.rewrites() {
            self.rewritten(after_schema, after, "false")?
        } else {
            (after_schema.clone(), after.clone())
        };
        if let (Some(field), Value::Struct(row)) = (&self.route_by, &v) {
            if let Some(topic) = route_value(&s, row, field)? {
                reroute(&mut record, topic);
            }
        }
        let (s, v) = self.add_fields(&schema, &values, s, v)?;
        record.value_schema = Some(s);
        record.value = v;
        Ok(Some(record))
    }
}

fn route_value(
    schema: &Schema,
    row: &[Value],
    field: &str,
) -> Result<Option<String>, TransformError> {
    let (i, _) = schema
        .field(field)
        .ok_or_else(|| TransformError::data(format!("{field} is not a valid field name")))?;
    match &row[i] {
        Value::String(s) if !s.trim().is_empty() => Ok(Some(s.clone())),
        Value::String(_) | Value::Null => Ok(None),
        _ => Err(TransformError::data(format!(
            "Field '{field}' is not of type STRING"
        ))),
    }
}

impl ExtractNewRecordState {
    /// The row with `__deleted` (`"true"`/`"false"`, optional string) after its columns, as
    /// InsertField adds it.
    fn rewritten(
        &self,
        schema: &SchemaRef,
        row: &Value,
        deleted: &str,
    ) -> Result<(SchemaRef, Value), TransformError> {
        let Value::Struct(values) = row else {
            return Ok((schema.clone(), row.clone()));
        };
        let mut out = struct_basics(schema);
        out.fields = schema.fields.clone();
        add_field(&mut out, "__deleted", primitive(SchemaType::String, true))?;
        let mut new_values: Vec<Value> = schema
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| field_value(values, f, i, self.with_default))
            .collect();
        new_values.push(Value::String(deleted.into()));
        Ok((Arc::new(out), Value::Struct(new_values)))
    }

    /// The row with the `add.fields` appended (those the envelope has).
    fn add_fields(
        &self,
        envelope: &Schema,
        envelope_values: &[Value],
        schema: SchemaRef,
        row: Value,
    ) -> Result<(SchemaRef, Value), TransformError> {
        if self.add_fields.is_empty() {
            return Ok((schema, row));
        }
        let values = match row {
            Value::Struct(v) => v,
            other => {
                return Err(TransformError::data(format!(
                    "Only Struct objects supported for [source field insertion], found: {}",
                    java_class(&other)
                )))
            }
        };
        let mut out = struct_basics(&schema);
        out.fields = schema.fields.clone();
        let mut new_values: Vec<Value> = schema
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| field_value(&values, f, i, false))
            .collect();
        for r in &self.add_fields {
            if let Some((s, v)) = resolve(r, envelope, envelope_values) {
                add_field(&mut out, &r.name, added_schema(&s))?;
                new_values.push(v);
            }
        }
        Ok((Arc::new(out), Value::Struct(new_values)))
    }
}

/// The struct type of an envelope field, for tests and callers building envelopes.
pub fn envelope_schema(name: &str, row: Schema, source: Schema) -> Schema {
    let row = row.optional();
    Schema::structure(vec![
        Field::new("before", row.clone()),
        Field::new("after", row),
        Field::new("source", source),
        Field::new("op", Schema::new(SchemaType::String)),
        Field::new("ts_ms", Schema::new(SchemaType::Int64).optional()),
    ])
    .named(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn row_schema() -> Schema {
        Schema::structure(vec![
            Field::new("id", Schema::new(SchemaType::Int64)),
            Field::new("name", Schema::new(SchemaType::String).optional()),
        ])
        .named("db.inv.customers.Value")
    }

    fn source_schema() -> Schema {
        Schema::structure(vec![
            Field::new("table", Schema::new(SchemaType::String)),
            Field::new("ts_ms", Schema::new(SchemaType::Int64)),
        ])
    }

    fn event(op: &str, before: Option<(i64, &str)>, after: Option<(i64, &str)>) -> SinkRecord {
        let row = |r: Option<(i64, &str)>| {
            r.map_or(Value::Null, |(id, n)| {
                Value::Struct(vec![Value::Int64(id), Value::String(n.into())])
            })
        };
        let mut r = SinkRecord::new("db.inv.customers", 0, 0, None);
        r.value_schema = Some(Arc::new(envelope_schema(
            "db.inv.customers.Envelope",
            row_schema(),
            source_schema(),
        )));
        r.value = Value::Struct(vec![
            row(before),
            row(after),
            Value::Struct(vec![Value::String("customers".into()), Value::Int64(77)]),
            Value::String(op.into()),
            Value::Int64(99),
        ]);
        r
    }

    fn transform(pairs: &[(&str, &str)]) -> ExtractNewRecordState {
        ExtractNewRecordState::new(&Props::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn default_mode_unwraps_and_turns_deletes_into_null_values() {
        let t = transform(&[]);
        let r = t
            .apply(event("c", None, Some((1, "a"))))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        assert_eq!(
            r.value,
            Value::Struct(vec![Value::Int64(1), Value::String("a".into())])
        );
        assert!(r.value_schema.is_some_and(|s| s.optional));
        let r = t
            .apply(event("d", Some((1, "a")), None))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        assert_eq!(r.value, Value::Null);
        assert!(r.value_schema.is_some());
        assert_eq!(t.apply(SinkRecord::new("t", 0, 0, None)), Ok(None));
        assert_eq!(t.apply(event("t", None, None)), Ok(None));
        let mut schemaless = SinkRecord::new("t", 0, 0, None);
        schemaless.value = Value::Map(vec![]);
        assert!(matches!(t.apply(schemaless), Ok(Some(r)) if r.value == Value::Map(vec![])));
    }

    #[test]
    fn rewrite_adds_deleted_and_fields() {
        let t = transform(&[
            ("delete.tombstone.handling.mode", "rewrite"),
            ("add.fields", "op,table,source.ts_ms"),
        ]);
        let r = t
            .apply(event("d", Some((1, "a")), None))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        let s = r.value_schema.unwrap_or_else(|| panic!("schema"));
        let names: Vec<&str> = s.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "id",
                "name",
                "__deleted",
                "__op",
                "__table",
                "__source_ts_ms"
            ]
        );
        assert!(!s.optional);
        assert_eq!(
            r.value,
            Value::Struct(vec![
                Value::Int64(1),
                Value::String("a".into()),
                Value::String("true".into()),
                Value::String("d".into()),
                Value::String("customers".into()),
                Value::Int64(77),
            ])
        );
        assert!(s.fields[3].schema.optional);
    }

    #[test]
    fn removed_keys_are_refused_not_ignored() {
        let p = Props::new(BTreeMap::from([(
            "delete.handling.mode".to_string(),
            "rewrite".to_string(),
        )]));
        assert!(ExtractNewRecordState::new(&p).is_err());
        let t = transform(&[("delete.tombstone.handling.mode", "delete-to-tombstone")]);
        let r = t
            .apply(event("d", Some((1, "a")), None))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        assert_eq!((r.value_schema.is_none(), r.value), (true, Value::Null));
    }
}
