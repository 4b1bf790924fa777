//! `DmsTransform`: AWS DMS JSON records (`data` + `metadata`) to rows with a `_cdc` map.

use floe_data::{SinkRecord, Value};

use super::CDC;
use crate::support::{into_map, map_get, map_put};
use crate::{TransformError, Transformation};

/// DmsTransform (no config).
pub struct DmsTransform;

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "null".into(),
        Some(v) => v.to_string(),
    }
}

impl Transformation for DmsTransform {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        if record.value.is_null() {
            return Ok(Some(record));
        }
        if record.value_schema.is_some() {
            return Err(TransformError {
                exception_class: "java.lang.UnsupportedOperationException",
                message: "Schema not support for DMS records".into(),
            });
        }
        let map = into_map(
            std::mem::replace(&mut record.value, Value::Null),
            "DMS transform",
        )?;
        let (Some(Value::Map(data)), Some(Value::Map(metadata))) =
            (map_get(&map, "data"), map_get(&map, "metadata"))
        else {
            return Ok(None);
        };
        let op = match map_get(metadata, "operation") {
            None | Some(Value::Null) => {
                return Err(TransformError {
                    exception_class: "java.lang.NullPointerException",
                    message: "the DMS record has no metadata.operation".into(),
                })
            }
            Some(v) => match v.to_string().as_str() {
                "update" => "U",
                "delete" => "D",
                _ => "I",
            },
        };
        let cdc = vec![
            (Value::String("op".into()), Value::String(op.into())),
            (
                Value::String("ts".into()),
                map_get(metadata, "timestamp")
                    .cloned()
                    .unwrap_or(Value::Null),
            ),
            (
                Value::String("source".into()),
                Value::String(format!(
                    "{}.{}",
                    text(map_get(metadata, "schema-name")),
                    text(map_get(metadata, "table-name"))
                )),
            ),
        ];
        let mut out = data.clone();
        map_put(&mut out, CDC, Value::Map(cdc));
        record.value = Value::Map(out);
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Value::String(k.into()), v))
                .collect(),
        )
    }

    #[test]
    fn dms_records_become_rows_with_cdc() {
        let mut r = SinkRecord::new("t", 0, 0, None);
        r.value = m(vec![
            ("data", m(vec![("id", Value::Int64(1))])),
            (
                "metadata",
                m(vec![
                    ("operation", Value::String("update".into())),
                    ("timestamp", Value::String("2024".into())),
                    ("schema-name", Value::String("s".into())),
                    ("table-name", Value::String("t".into())),
                ]),
            ),
        ]);
        let r = DmsTransform
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
                        ("ts", Value::String("2024".into())),
                        ("source", Value::String("s.t".into()))
                    ])
                )
            ])
        );
        let mut control = SinkRecord::new("t", 0, 0, None);
        control.value = m(vec![("control", m(vec![]))]);
        assert_eq!(DmsTransform.apply(control), Ok(None));
    }
}
