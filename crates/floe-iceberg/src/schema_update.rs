//! Schema evolution (`iceberg.tables.evolve-schema-enabled`): what a batch of records needs
//! from the table schema, the evolved schema, and the schema-update commit.
//!
//! As in the Java sink (`SchemaUpdate`, `SchemaUtils.applySchemaUpdates`):
//! - a record field without a column adds an *optional* column, at any depth (inside structs,
//!   list elements and map values), typed as auto-create would type it;
//! - `int` → `long` and `float` → `double` when the record's field is INT64 / FLOAT64;
//! - a required column becomes optional when the record's field is optional;
//! - nothing is ever dropped, renamed or narrowed.
//!
//! Unlike Java, `iceberg.tables.schema-force-optional` applies to added columns at every depth,
//! and a batch's changes are collected over all its records before one schema commit.
//!
//! The commit is compare-and-set on the schema the changes were computed against (table uuid,
//! current schema id, last assigned field id). On a conflict the table is reloaded and the
//! changes filtered against its schema again, so tasks evolving one table concurrently converge:
//! a column another task added first is found by name and reused, with its field id.

use std::collections::BTreeMap;
use std::sync::Arc;

use floe_data::{Schema as ConnectSchema, SchemaType, Value};
use iceberg::spec::{
    ListType, MapType, NestedField, NestedFieldRef, PrimitiveType, Schema, StructType, Type,
};
use iceberg::table::Table;
use iceberg::{ErrorKind, TableIdent, TableRequirement, TableUpdate};
use tracing::info;

use crate::catalog::CatalogHandle;
use crate::error::SinkError;
use crate::schema::{connect_type, infer_value_type};

/// One change a record asks of the table schema. Parents and fields are named by field id: the
/// id of the field whose type is the struct that gets the column (`None`: top level).
#[derive(Debug, Clone, PartialEq)]
pub enum SchemaChange {
    AddColumn {
        parent: Option<i32>,
        name: String,
        field_type: Type,
    },
    Promote {
        field: i32,
        to: PrimitiveType,
    },
    MakeOptional {
        field: i32,
    },
}

/// How names are matched and added columns typed.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvolveOptions {
    pub case_insensitive: bool,
    pub force_optional: bool,
}

fn find<'a>(st: &'a StructType, name: &str, o: EvolveOptions) -> Option<&'a NestedFieldRef> {
    st.fields().iter().find(|f| {
        if o.case_insensitive {
            f.name.eq_ignore_ascii_case(name)
        } else {
            f.name == name
        }
    })
}

fn push(out: &mut Vec<SchemaChange>, change: SchemaChange) {
    if !out.contains(&change) {
        out.push(change);
    }
}

/// The changes `value` (with its Connect schema, if any) asks of `schema`; added to `out`.
pub fn collect_changes(
    schema: &Schema,
    value_schema: Option<&ConnectSchema>,
    value: &Value,
    o: EvolveOptions,
    out: &mut Vec<SchemaChange>,
) {
    match (value_schema, value) {
        (Some(s), _) if s.schema_type == SchemaType::Struct => {
            struct_from_schema(schema.as_struct(), None, s, o, out)
        }
        (None, Value::Map(entries)) => struct_from_map(schema.as_struct(), None, entries, o, out),
        _ => {}
    }
}

/// A Struct record: everything comes from its Connect schema, so fields nested under a null
/// value are found too.
fn struct_from_schema(
    st: &StructType,
    parent: Option<i32>,
    s: &ConnectSchema,
    o: EvolveOptions,
    out: &mut Vec<SchemaChange>,
) {
    for f in &s.fields {
        let Some(column) = find(st, &f.name, o) else {
            let mut ids = 0;
            push(
                out,
                SchemaChange::AddColumn {
                    parent,
                    name: f.name.clone(),
                    field_type: connect_type(&f.schema, o.force_optional, &mut ids),
                },
            );
            continue;
        };
        if column.required && f.schema.optional {
            push(out, SchemaChange::MakeOptional { field: column.id });
        }
        field_from_schema(column, &f.schema, o, out);
    }
}

fn field_from_schema(
    column: &NestedField,
    s: &ConnectSchema,
    o: EvolveOptions,
    out: &mut Vec<SchemaChange>,
) {
    match (column.field_type.as_ref(), s.schema_type) {
        (Type::Primitive(PrimitiveType::Int), SchemaType::Int64) if s.name.is_none() => push(
            out,
            SchemaChange::Promote {
                field: column.id,
                to: PrimitiveType::Long,
            },
        ),
        (Type::Primitive(PrimitiveType::Float), SchemaType::Float64) => push(
            out,
            SchemaChange::Promote {
                field: column.id,
                to: PrimitiveType::Double,
            },
        ),
        (Type::Struct(st), SchemaType::Struct) => {
            struct_from_schema(st, Some(column.id), s, o, out)
        }
        (Type::List(l), SchemaType::Array) => {
            if let Some(items) = s.items.as_deref() {
                if l.element_field.required && items.optional {
                    push(
                        out,
                        SchemaChange::MakeOptional {
                            field: l.element_field.id,
                        },
                    );
                }
                field_from_schema(&l.element_field, items, o, out);
            }
        }
        (Type::Map(m), SchemaType::Map) => {
            if let Some(values) = s.values.as_deref() {
                if m.value_field.required && values.optional {
                    push(
                        out,
                        SchemaChange::MakeOptional {
                            field: m.value_field.id,
                        },
                    );
                }
                field_from_schema(&m.value_field, values, o, out);
            }
        }
        _ => {}
    }
}

/// A schemaless (map) record: only columns are added, typed from the values (Java does no
/// promotion or relaxation for maps either).
fn struct_from_map(
    st: &StructType,
    parent: Option<i32>,
    entries: &[(Value, Value)],
    o: EvolveOptions,
    out: &mut Vec<SchemaChange>,
) {
    for (k, v) in entries {
        let Some(name) = k.as_str() else { continue };
        match find(st, name, o) {
            None => {
                let mut ids = 0;
                if let Some(field_type) = infer_value_type(v, &mut ids) {
                    push(
                        out,
                        SchemaChange::AddColumn {
                            parent,
                            name: name.to_string(),
                            field_type,
                        },
                    );
                }
            }
            Some(column) => field_from_value(column, v, o, out),
        }
    }
}

fn field_from_value(
    column: &NestedField,
    v: &Value,
    o: EvolveOptions,
    out: &mut Vec<SchemaChange>,
) {
    match (column.field_type.as_ref(), v) {
        (Type::Struct(st), Value::Map(entries)) => {
            struct_from_map(st, Some(column.id), entries, o, out)
        }
        (Type::List(l), Value::Array(items)) => {
            for item in items {
                field_from_value(&l.element_field, item, o, out);
            }
        }
        (Type::Map(m), Value::Map(entries)) => {
            for (_, value) in entries {
                field_from_value(&m.value_field, value, o, out);
            }
        }
        _ => {}
    }
}

/// `schema` with `changes` applied, or `None` when every change is already there. New field ids
/// start after `last_column_id`.
pub fn apply_changes(
    schema: &Schema,
    changes: &[SchemaChange],
    last_column_id: i32,
    o: EvolveOptions,
) -> Result<Option<Schema>, SinkError> {
    let mut next = last_column_id;
    let mut changed = false;
    let fields = rebuild_fields(
        schema.as_struct(),
        None,
        changes,
        o,
        &mut next,
        &mut changed,
    );
    if !changed {
        return Ok(None);
    }
    Schema::builder()
        .with_schema_id(schema.schema_id() + 1)
        .with_identifier_field_ids(schema.identifier_field_ids())
        .with_fields(fields)
        .build()
        .map(Some)
        .map_err(|e| SinkError::Catalog(format!("invalid evolved schema: {e}")))
}

fn rebuild_fields(
    st: &StructType,
    parent: Option<i32>,
    changes: &[SchemaChange],
    o: EvolveOptions,
    next: &mut i32,
    changed: &mut bool,
) -> Vec<NestedFieldRef> {
    let mut fields: Vec<NestedFieldRef> = st
        .fields()
        .iter()
        .map(|f| rebuild_field(f, changes, o, next, changed))
        .collect();
    for change in changes {
        let SchemaChange::AddColumn {
            parent: p,
            name,
            field_type,
        } = change
        else {
            continue;
        };
        if *p != parent {
            continue;
        }
        let present = fields.iter().any(|f| {
            if o.case_insensitive {
                f.name.eq_ignore_ascii_case(name)
            } else {
                f.name == *name
            }
        });
        if present {
            continue;
        }
        *next += 1;
        let id = *next;
        let ty = renumber(field_type, next);
        fields.push(Arc::new(NestedField::optional(id, name, ty)));
        *changed = true;
    }
    fields
}

fn rebuild_field(
    f: &NestedFieldRef,
    changes: &[SchemaChange],
    o: EvolveOptions,
    next: &mut i32,
    changed: &mut bool,
) -> NestedFieldRef {
    let mut field = f.as_ref().clone();
    for change in changes {
        match change {
            SchemaChange::MakeOptional { field: id } if *id == f.id && field.required => {
                field.required = false;
                *changed = true;
            }
            SchemaChange::Promote { field: id, to } if *id == f.id => {
                let promote = matches!(
                    (field.field_type.as_ref(), to),
                    (Type::Primitive(PrimitiveType::Int), PrimitiveType::Long)
                        | (Type::Primitive(PrimitiveType::Float), PrimitiveType::Double)
                );
                if promote {
                    field.field_type = Box::new(Type::Primitive(to.clone()));
                    *changed = true;
                }
            }
            _ => {}
        }
    }
    field.field_type = Box::new(match field.field_type.as_ref() {
        Type::Struct(st) => Type::Struct(StructType::new(rebuild_fields(
            st,
            Some(f.id),
            changes,
            o,
            next,
            changed,
        ))),
        Type::List(l) => Type::List(ListType::new(rebuild_field(
            &l.element_field,
            changes,
            o,
            next,
            changed,
        ))),
        Type::Map(m) => Type::Map(MapType::new(
            m.key_field.clone(),
            rebuild_field(&m.value_field, changes, o, next, changed),
        )),
        other => other.clone(),
    });
    Arc::new(field)
}

/// A copy of `ty` with fresh field ids after `next`, assigned parent first as Java does.
fn renumber(ty: &Type, next: &mut i32) -> Type {
    match ty {
        Type::Primitive(_) => ty.clone(),
        Type::Struct(st) => {
            let ids: Vec<i32> = st
                .fields()
                .iter()
                .map(|_| {
                    *next += 1;
                    *next
                })
                .collect();
            let fields = st
                .fields()
                .iter()
                .zip(ids)
                .map(|(f, id)| {
                    let mut nf = f.as_ref().clone();
                    nf.id = id;
                    nf.field_type = Box::new(renumber(&f.field_type, next));
                    Arc::new(nf)
                })
                .collect();
            Type::Struct(StructType::new(fields))
        }
        Type::List(l) => {
            *next += 1;
            let mut element = l.element_field.as_ref().clone();
            element.id = *next;
            element.field_type = Box::new(renumber(&l.element_field.field_type, next));
            Type::List(ListType::new(Arc::new(element)))
        }
        Type::Map(m) => {
            *next += 1;
            let key_id = *next;
            *next += 1;
            let value_id = *next;
            let mut key = m.key_field.as_ref().clone();
            key.id = key_id;
            key.field_type = Box::new(renumber(&m.key_field.field_type, next));
            let mut value = m.value_field.as_ref().clone();
            value.id = value_id;
            value.field_type = Box::new(renumber(&m.value_field.field_type, next));
            Type::Map(MapType::new(Arc::new(key), Arc::new(value)))
        }
    }
}

const ATTEMPTS: u32 = 3;

/// Commits `changes` to the table `ident` (reloaded first) and answers the table with the
/// evolved schema, or as it is when nothing was missing. Up to three attempts on conflicts.
pub async fn evolve(
    catalog: &CatalogHandle,
    ident: &TableIdent,
    changes: &[SchemaChange],
    o: EvolveOptions,
) -> Result<Table, SinkError> {
    let name = ident.to_string();
    let table_err = |message: String| SinkError::Table {
        table: name.clone(),
        message,
    };
    let mut last_error = String::new();
    for attempt in 1..=ATTEMPTS {
        let table = catalog
            .load_table(ident)
            .await
            .map_err(|e| table_err(format!("cannot reload the table to evolve its schema: {e}")))?;
        let metadata = table.metadata();
        let current = metadata.current_schema();
        let Some(schema) = apply_changes(current, changes, metadata.last_column_id(), o)? else {
            return Ok(table);
        };
        let requirements = vec![
            TableRequirement::UuidMatch {
                uuid: metadata.uuid(),
            },
            TableRequirement::CurrentSchemaIdMatch {
                current_schema_id: metadata.current_schema_id(),
            },
            TableRequirement::LastAssignedFieldIdMatch {
                last_assigned_field_id: metadata.last_column_id(),
            },
        ];
        let updates = vec![
            TableUpdate::AddSchema { schema },
            TableUpdate::SetCurrentSchema { schema_id: -1 },
        ];
        match catalog
            .committer()
            .commit(&table, requirements, updates)
            .await
        {
            Ok(evolved) => {
                info!(table = %name, schema_id = evolved.metadata().current_schema_id(), changes = ?summary(changes), "schema evolved");
                return Ok(evolved);
            }
            Err(e) if e.kind() == ErrorKind::CatalogCommitConflicts || e.retryable() => {
                last_error = e.to_string();
                info!(table = %name, attempt, reason = %e, "schema update conflict; reloading");
            }
            Err(e) => return Err(table_err(format!("schema update failed: {e}"))),
        }
    }
    Err(table_err(format!(
        "schema update failed after {ATTEMPTS} attempts: {last_error}"
    )))
}

fn summary(changes: &[SchemaChange]) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for c in changes {
        let k = match c {
            SchemaChange::AddColumn { .. } => "add",
            SchemaChange::Promote { .. } => "promote",
            SchemaChange::MakeOptional { .. } => "optional",
        };
        *out.entry(k).or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_data::Field;

    fn schema() -> Schema {
        Schema::builder()
            .with_schema_id(0)
            .with_fields(vec![
                Arc::new(NestedField::required(
                    1,
                    "id",
                    Type::Primitive(PrimitiveType::Int),
                )),
                Arc::new(NestedField::optional(
                    2,
                    "nested",
                    Type::Struct(StructType::new(vec![Arc::new(NestedField::optional(
                        3,
                        "a",
                        Type::Primitive(PrimitiveType::Float),
                    ))])),
                )),
            ])
            .build()
            .unwrap()
    }

    fn connect(ty: SchemaType, optional: bool) -> ConnectSchema {
        let mut s = ConnectSchema::new(ty);
        s.optional = optional;
        s
    }

    fn structure(fields: Vec<(&str, ConnectSchema)>) -> ConnectSchema {
        let mut s = ConnectSchema::new(SchemaType::Struct);
        s.fields = fields
            .into_iter()
            .map(|(n, sch)| Field::new(n, sch))
            .collect();
        s
    }

    fn render(t: &Type) -> String {
        match t {
            Type::Struct(st) => format!(
                "struct<{}>",
                st.fields()
                    .iter()
                    .map(|f| format!(
                        "{}:{}{}:{}",
                        f.id,
                        f.name,
                        if f.required { "!" } else { "?" },
                        render(&f.field_type)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Type::List(l) => format!(
                "list<{}:{}>",
                l.element_field.id,
                render(&l.element_field.field_type)
            ),
            Type::Map(m) => format!(
                "map<{}:{}, {}:{}>",
                m.key_field.id,
                render(&m.key_field.field_type),
                m.value_field.id,
                render(&m.value_field.field_type)
            ),
            Type::Primitive(p) => p.to_string(),
        }
    }

    #[test]
    fn struct_records_add_nested_columns_promote_and_relax() {
        let record = structure(vec![
            ("id", connect(SchemaType::Int64, true)),
            (
                "nested",
                structure(vec![
                    ("a", connect(SchemaType::Float64, false)),
                    ("b", connect(SchemaType::String, false)),
                ]),
            ),
            ("tags", {
                let mut a = connect(SchemaType::Array, true);
                a.items = Some(Arc::new(connect(SchemaType::String, false)));
                a
            }),
        ]);
        let o = EvolveOptions::default();
        let mut changes = Vec::new();
        collect_changes(&schema(), Some(&record), &Value::Null, o, &mut changes);
        assert_eq!(changes.len(), 5, "{changes:?}");
        let evolved = apply_changes(&schema(), &changes, 3, o).unwrap().unwrap();
        assert_eq!(evolved.schema_id(), 1);
        assert_eq!(
            render(&Type::Struct(evolved.as_struct().clone())),
            "struct<1:id?:long, 2:nested?:struct<3:a?:double, 4:b?:string>, 5:tags?:list<6:string>>"
        );
        // Applied again on the evolved schema, nothing is missing.
        assert!(apply_changes(&evolved, &changes, 6, o).unwrap().is_none());
    }

    #[test]
    fn map_records_add_inferred_columns_at_any_depth() {
        let value = Value::Map(vec![
            (Value::String("id".into()), Value::Int64(1)),
            (
                Value::String("nested".into()),
                Value::Map(vec![(Value::String("c".into()), Value::Boolean(true))]),
            ),
            (Value::String("extra".into()), Value::Null),
            (Value::String("new".into()), Value::String("x".into())),
        ]);
        let o = EvolveOptions::default();
        let mut changes = Vec::new();
        collect_changes(&schema(), None, &value, o, &mut changes);
        let evolved = apply_changes(&schema(), &changes, 3, o).unwrap().unwrap();
        assert_eq!(
            render(&Type::Struct(evolved.as_struct().clone())),
            "struct<1:id!:int, 2:nested?:struct<3:a?:float, 4:c?:boolean>, 5:new?:string>"
        );
    }

    #[test]
    fn concurrent_additions_reuse_the_column_another_task_added() {
        let o = EvolveOptions {
            case_insensitive: true,
            force_optional: false,
        };
        let add = SchemaChange::AddColumn {
            parent: None,
            name: "Extra".into(),
            field_type: Type::Primitive(PrimitiveType::String),
        };
        let first = apply_changes(&schema(), std::slice::from_ref(&add), 3, o)
            .unwrap()
            .unwrap();
        let add_lower = SchemaChange::AddColumn {
            parent: None,
            name: "extra".into(),
            field_type: Type::Primitive(PrimitiveType::String),
        };
        assert!(apply_changes(&first, &[add_lower], 4, o).unwrap().is_none());
    }
}
