//! Iceberg schemas from Connect data, exactly as the Java sink infers them (`SchemaUtils`),
//! and the `partition-by` syntax (`bucket(id, 16)`, `days(ts)`, `name`).

use std::sync::Arc;

use floe_data::{logical, Schema as ConnectSchema, SchemaType, Value};
use iceberg::spec::{
    ListType, MapType, NestedField, NestedFieldRef, PrimitiveType, Schema, StructType, Transform,
    Type, UnboundPartitionSpec,
};

use crate::error::SinkError;

/// Assigns field ids in the order fields are created.
struct Ids(i32);

impl Ids {
    fn next(&mut self) -> i32 {
        self.0 += 1;
        self.0
    }
}

/// The Iceberg schema for a record: from its Connect schema when it has one, otherwise
/// inferred from the schemaless value.
pub fn schema_for_record(
    value_schema: Option<&ConnectSchema>,
    value: &Value,
    force_optional: bool,
) -> Result<Schema, SinkError> {
    let mut ids = Ids(0);
    let fields = match value_schema {
        Some(s) if s.schema_type == SchemaType::Struct => {
            struct_fields(s, force_optional, &mut ids)
        }
        Some(s) => {
            return Err(SinkError::Config(format!(
                "Cannot create a table from a record whose value schema is {} (a struct is needed)",
                s.schema_type
            )));
        }
        None => match infer_type(value, &mut ids) {
            Some(Type::Struct(st)) => st.fields().to_vec(),
            _ => Vec::new(),
        },
    };
    if fields.is_empty() {
        return Err(SinkError::Config(
            "Unable to create table from empty object".into(),
        ));
    }
    Schema::builder()
        .with_fields(fields)
        .build()
        .map_err(|e| SinkError::Config(format!("invalid inferred schema: {e}")))
}

fn struct_fields(s: &ConnectSchema, force_optional: bool, ids: &mut Ids) -> Vec<NestedFieldRef> {
    // Java assigns the struct's field ids first, then descends (NestedField.of(nextId(), …)
    // evaluates the id before the child type).
    s.fields
        .iter()
        .map(|f| {
            let id = ids.next();
            let ty = connect_to_iceberg(&f.schema, force_optional, ids);
            let field = if force_optional || f.schema.optional {
                NestedField::optional(id, &f.name, ty)
            } else {
                NestedField::required(id, &f.name, ty)
            };
            Arc::new(field)
        })
        .collect()
}

/// The Iceberg type of a Connect schema, with nested field ids counted on from `*next`.
pub(crate) fn connect_type(s: &ConnectSchema, force_optional: bool, next: &mut i32) -> Type {
    let mut ids = Ids(*next);
    let t = connect_to_iceberg(s, force_optional, &mut ids);
    *next = ids.0;
    t
}

/// The Iceberg type inferred from a schemaless value (`None`: not inferable, skip the field),
/// with nested field ids counted on from `*next`.
pub(crate) fn infer_value_type(value: &Value, next: &mut i32) -> Option<Type> {
    let mut ids = Ids(*next);
    let t = infer_type(value, &mut ids);
    *next = ids.0;
    t
}

/// Java `SchemaUtils.toIcebergType`.
fn connect_to_iceberg(s: &ConnectSchema, force_optional: bool, ids: &mut Ids) -> Type {
    let p = |t| Type::Primitive(t);
    match (s.schema_type, s.name.as_deref()) {
        (SchemaType::Boolean, _) => p(PrimitiveType::Boolean),
        (SchemaType::Int32, Some(logical::DATE)) => p(PrimitiveType::Date),
        (SchemaType::Int32, Some(logical::TIME)) => p(PrimitiveType::Time),
        (SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32, _) => p(PrimitiveType::Int),
        (SchemaType::Int64, Some(logical::TIMESTAMP)) => p(PrimitiveType::Timestamptz),
        (SchemaType::Int64, _) => p(PrimitiveType::Long),
        (SchemaType::Float32, _) => p(PrimitiveType::Float),
        (SchemaType::Float64, _) => p(PrimitiveType::Double),
        (SchemaType::Bytes, Some(logical::DECIMAL)) => p(PrimitiveType::Decimal {
            precision: 38,
            scale: s.decimal_scale().unwrap_or(0).max(0) as u32,
        }),
        (SchemaType::Bytes, _) => p(PrimitiveType::Binary),
        (SchemaType::String, Some("uuid")) => p(PrimitiveType::Uuid),
        (SchemaType::String, _) => p(PrimitiveType::String),
        (SchemaType::Array, _) => {
            let id = ids.next();
            let items = s.items.as_deref();
            let ty = items.map_or(p(PrimitiveType::String), |i| {
                connect_to_iceberg(i, force_optional, ids)
            });
            let optional = force_optional || items.is_none_or(|i| i.optional);
            let element = if optional {
                NestedField::list_element(id, ty, false)
            } else {
                NestedField::list_element(id, ty, true)
            };
            Type::List(ListType::new(Arc::new(element)))
        }
        (SchemaType::Map, _) => {
            let key_id = ids.next();
            let value_id = ids.next();
            let key_ty = s.keys.as_deref().map_or(p(PrimitiveType::String), |k| {
                connect_to_iceberg(k, force_optional, ids)
            });
            let values = s.values.as_deref();
            let value_ty = values.map_or(p(PrimitiveType::String), |v| {
                connect_to_iceberg(v, force_optional, ids)
            });
            let value_required = !(force_optional || values.is_none_or(|v| v.optional));
            Type::Map(MapType::new(
                Arc::new(NestedField::map_key_element(key_id, key_ty)),
                Arc::new(NestedField::map_value_element(
                    value_id,
                    value_ty,
                    value_required,
                )),
            ))
        }
        (SchemaType::Struct, _) => {
            Type::Struct(StructType::new(struct_fields(s, force_optional, ids)))
        }
    }
}

/// Java `SchemaUtils.inferIcebergType` for schemaless values; `None` means "skip the field".
fn infer_type(value: &Value, ids: &mut Ids) -> Option<Type> {
    let p = |t| Some(Type::Primitive(t));
    match value {
        Value::Null => None,
        Value::String(_) => p(PrimitiveType::String),
        Value::Boolean(_) => p(PrimitiveType::Boolean),
        Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_) => {
            p(PrimitiveType::Long)
        }
        Value::Float32(_) | Value::Float64(_) => p(PrimitiveType::Double),
        Value::Decimal { unscaled, scale } => {
            let digits = unscaled.unsigned_abs().to_string().len() as i32;
            let scale = (*scale).max(0);
            let precision = digits.max(scale).max(1);
            if precision > 38 {
                None
            } else {
                p(PrimitiveType::Decimal {
                    precision: precision as u32,
                    scale: scale as u32,
                })
            }
        }
        Value::Date(_) => p(PrimitiveType::Date),
        Value::Time(_) => p(PrimitiveType::Time),
        Value::Timestamp(_) => p(PrimitiveType::Timestamptz),
        Value::Bytes(_) => p(PrimitiveType::Binary),
        Value::Array(items) => {
            let first = items.first()?;
            let id = ids.next();
            let ty = infer_type(first, ids)?;
            Some(Type::List(ListType::new(Arc::new(
                NestedField::list_element(id, ty, false),
            ))))
        }
        Value::Map(entries) => {
            let mut fields = Vec::new();
            for (k, v) in entries {
                if v.is_null() {
                    continue;
                }
                let id = ids.next();
                if let Some(ty) = infer_type(v, ids) {
                    fields.push(Arc::new(NestedField::optional(id, k.to_string(), ty)));
                }
            }
            if fields.is_empty() {
                None
            } else {
                Some(Type::Struct(StructType::new(fields)))
            }
        }
        Value::Struct(_) => None,
    }
}

/// One parsed `partition-by` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTerm {
    pub column: String,
    pub transform: Transform,
}

/// Parses the Java `partition-by` syntax: entries split on commas outside parentheses.
pub fn parse_partition_by(text: &str) -> Result<Vec<PartitionTerm>, SinkError> {
    let mut entries = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                entries.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    entries.push(current);
    let mut terms = Vec::new();
    for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        terms.push(parse_term(entry)?);
    }
    Ok(terms)
}

fn parse_term(entry: &str) -> Result<PartitionTerm, SinkError> {
    let bad = |why: &str| SinkError::Config(format!("Invalid partition-by entry '{entry}': {why}"));
    let Some(open) = entry.find('(') else {
        return Ok(PartitionTerm {
            column: entry.to_string(),
            transform: Transform::Identity,
        });
    };
    let inner = entry[open + 1..]
        .strip_suffix(')')
        .ok_or_else(|| bad("missing ')'"))?;
    let func = entry[..open].trim().to_ascii_lowercase();
    let args: Vec<&str> = inner.split(',').map(str::trim).collect();
    let one_arg = || match args.as_slice() {
        [c] if !c.is_empty() => Ok(c.to_string()),
        _ => Err(bad("expected one column")),
    };
    let with_width = || match args.as_slice() {
        [c, n] => n
            .parse::<u32>()
            .map(|n| (c.to_string(), n))
            .map_err(|_| bad("expected a number as the second argument")),
        _ => Err(bad("expected a column and a number")),
    };
    let (column, transform) = match func.as_str() {
        "year" | "years" => (one_arg()?, Transform::Year),
        "month" | "months" => (one_arg()?, Transform::Month),
        "day" | "days" => (one_arg()?, Transform::Day),
        "hour" | "hours" => (one_arg()?, Transform::Hour),
        "bucket" => with_width().map(|(c, n)| (c, Transform::Bucket(n)))?,
        "truncate" => with_width().map(|(c, n)| (c, Transform::Truncate(n)))?,
        "void" => (one_arg()?, Transform::Void),
        other => return Err(bad(&format!("Unsupported transform: {other}"))),
    };
    Ok(PartitionTerm { column, transform })
}

/// `schema` with `columns` (top-level names) as its identifier fields, made required as
/// Iceberg demands of identifier fields. An unknown column, or one that is not a primitive, is
/// an error.
pub fn with_identifier_fields(schema: Schema, columns: &[String]) -> Result<Schema, SinkError> {
    if columns.is_empty() {
        return Ok(schema);
    }
    let mut ids = Vec::with_capacity(columns.len());
    for c in columns {
        let field = schema.field_by_name(c).ok_or_else(|| {
            SinkError::Config(format!(
                "Invalid id-columns: column {c} not found in the table schema"
            ))
        })?;
        if !field.field_type.is_primitive() {
            return Err(SinkError::Config(format!(
                "Invalid id-columns: column {c} is a {}, identifier fields must be primitive",
                field.field_type
            )));
        }
        ids.push(field.id);
    }
    let fields: Vec<NestedFieldRef> = schema
        .as_struct()
        .fields()
        .iter()
        .map(|f| {
            if ids.contains(&f.id) && !f.required {
                let mut required = f.as_ref().clone();
                required.required = true;
                Arc::new(required)
            } else {
                f.clone()
            }
        })
        .collect();
    Schema::builder()
        .with_schema_id(schema.schema_id())
        .with_fields(fields)
        .with_identifier_field_ids(ids)
        .build()
        .map_err(|e| SinkError::Config(format!("Invalid id-columns: {e}")))
}

/// Builds the partition spec for a new table; an unknown column is an error, never a silent
/// unpartitioned table.
pub fn partition_spec(schema: &Schema, text: &str) -> Result<UnboundPartitionSpec, SinkError> {
    // The spec id is sent: Java's REST catalog refuses a create-table request without it.
    let mut builder = UnboundPartitionSpec::builder().with_spec_id(0);
    for term in parse_partition_by(text)? {
        let field = schema.field_by_name(&term.column).ok_or_else(|| {
            SinkError::Config(format!(
                "Invalid partition-by '{text}': column {} not found in the table schema",
                term.column
            ))
        })?;
        let name = match term.transform {
            Transform::Identity => term.column.clone(),
            Transform::Year => format!("{}_year", term.column),
            Transform::Month => format!("{}_month", term.column),
            Transform::Day => format!("{}_day", term.column),
            Transform::Hour => format!("{}_hour", term.column),
            Transform::Bucket(_) => format!("{}_bucket", term.column),
            Transform::Truncate(_) => format!("{}_trunc", term.column),
            Transform::Void => format!("{}_null", term.column),
            _ => term.column.clone(),
        };
        builder = builder
            .add_partition_field(field.id, name, term.transform)
            .map_err(|e| SinkError::Config(format!("Invalid partition-by '{text}': {e}")))?;
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use floe_data::Field;

    use super::*;

    fn field_summary(schema: &Schema) -> Vec<(i32, String, bool, String)> {
        schema
            .as_struct()
            .fields()
            .iter()
            .map(|f| (f.id, f.name.clone(), f.required, f.field_type.to_string()))
            .collect()
    }

    #[test]
    fn infers_schemaless_json_like_java() {
        let value = Value::Map(vec![
            (Value::String("id".into()), Value::Int64(1)),
            (Value::String("price".into()), Value::Float64(2.5)),
            (Value::String("name".into()), Value::String("x".into())),
            (Value::String("gone".into()), Value::Null),
            (
                Value::String("tags".into()),
                Value::Array(vec![Value::String("a".into())]),
            ),
            (Value::String("empty".into()), Value::Array(vec![])),
            (Value::String("ok".into()), Value::Boolean(true)),
        ]);
        let schema = schema_for_record(None, &value, false).unwrap();
        let names: Vec<_> = field_summary(&schema)
            .into_iter()
            .map(|(_, n, r, t)| (n, r, t))
            .collect();
        assert_eq!(
            names,
            vec![
                ("id".to_string(), false, "long".to_string()),
                ("price".to_string(), false, "double".to_string()),
                ("name".to_string(), false, "string".to_string()),
                ("tags".to_string(), false, "list".to_string()),
                ("ok".to_string(), false, "boolean".to_string()),
            ]
        );
    }

    #[test]
    fn maps_connect_schemas_like_java() {
        let s = ConnectSchema::structure(vec![
            Field::new("id", ConnectSchema::new(SchemaType::Int32)),
            Field::new("amount", ConnectSchema::decimal(2).optional()),
            Field::new(
                "ts",
                ConnectSchema::new(SchemaType::Int64)
                    .named(logical::TIMESTAMP)
                    .optional(),
            ),
            Field::new(
                "d",
                ConnectSchema::new(SchemaType::Int32)
                    .named(logical::DATE)
                    .optional(),
            ),
            Field::new("small", ConnectSchema::new(SchemaType::Int8)),
            Field::new("f", ConnectSchema::new(SchemaType::Float32)),
        ]);
        let schema = schema_for_record(Some(&s), &Value::Null, false).unwrap();
        assert_eq!(
            field_summary(&schema),
            vec![
                (1, "id".to_string(), true, "int".to_string()),
                (2, "amount".to_string(), false, "decimal(38, 2)".to_string()),
                (3, "ts".to_string(), false, "timestamptz".to_string()),
                (4, "d".to_string(), false, "date".to_string()),
                (5, "small".to_string(), true, "int".to_string()),
                (6, "f".to_string(), true, "float".to_string()),
            ]
        );
        let forced = schema_for_record(Some(&s), &Value::Null, true).unwrap();
        assert!(forced.as_struct().fields().iter().all(|f| !f.required));
    }

    #[test]
    fn empty_objects_cannot_create_tables() {
        let err = schema_for_record(None, &Value::Map(vec![]), false).unwrap_err();
        assert_eq!(err.to_string(), "Unable to create table from empty object");
    }

    #[test]
    fn parses_partition_by() {
        let terms = parse_partition_by("days(ts), bucket(id, 16), truncate(name,4), kind").unwrap();
        assert_eq!(
            terms,
            vec![
                PartitionTerm {
                    column: "ts".into(),
                    transform: Transform::Day
                },
                PartitionTerm {
                    column: "id".into(),
                    transform: Transform::Bucket(16)
                },
                PartitionTerm {
                    column: "name".into(),
                    transform: Transform::Truncate(4)
                },
                PartitionTerm {
                    column: "kind".into(),
                    transform: Transform::Identity
                },
            ]
        );
        assert!(parse_partition_by("weeks(ts)").is_err());
        assert!(parse_partition_by("bucket(id)").is_err());
    }
}
