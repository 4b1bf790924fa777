//! Java's column metrics modes (`write.metadata.metrics.*`): which statistics of each column a
//! data file's manifest entry carries. `none` keeps a column's values out of the table's
//! metadata altogether (a column of personal data, say), `counts` keeps its value, null and
//! NaN counts, `truncate(n)` also its bounds, string and binary ones cut to `n` characters or
//! bytes (the upper bound rounded up, so it still bounds every value), `full` its whole bounds.
//!
//! - `write.metadata.metrics.default`: the mode of every column no key below names; when it is
//!   not set, `truncate(16)` for the first `write.metadata.metrics.max-inferred-column-defaults`
//!   (100) leaf columns in schema order and `none` for the rest, as Java's `MetricsConfig`.
//! - `write.metadata.metrics.column.<name>`: one column's mode (a dotted name for a nested one).
//!
//! Column sizes are always kept, as in Java.

use std::collections::HashMap;

use iceberg::spec::{NestedFieldRef, PrimitiveType, Schema, Type};

use crate::events::WireDataFile;

const DEFAULT: &str = "write.metadata.metrics.default";
const COLUMN: &str = "write.metadata.metrics.column.";
const MAX_INFERRED: &str = "write.metadata.metrics.max-inferred-column-defaults";
const DEFAULT_MAX_INFERRED: usize = 100;
const DEFAULT_TRUNCATE: usize = 16;

/// What a column's manifest entries carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    None,
    Counts,
    Truncate(usize),
    Full,
}

impl Mode {
    /// Java's `MetricsModes.fromString`: `none`, `counts`, `full` or `truncate(n)`, n > 0.
    pub fn parse(text: &str) -> Option<Mode> {
        let t = text.trim().to_ascii_lowercase();
        match t.as_str() {
            "none" => Some(Mode::None),
            "counts" => Some(Mode::Counts),
            "full" => Some(Mode::Full),
            _ => t
                .strip_prefix("truncate(")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|n| n.trim().parse::<usize>().ok())
                .filter(|n| *n > 0)
                .map(Mode::Truncate),
        }
    }
}

/// The mode of every column of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsModes {
    default: Mode,
    columns: HashMap<i32, Mode>,
}

impl MetricsModes {
    /// The modes the table's properties set for `schema`; a mode that does not parse is an
    /// error naming its key. A column key naming no column of the schema is left alone.
    pub fn from_props(props: &HashMap<String, String>, schema: &Schema) -> Result<Self, String> {
        let parse = |key: &str, value: &str| {
            Mode::parse(value).ok_or_else(|| {
                format!("Invalid value {value} for table property {key}: expected none, counts, full or truncate(n)")
            })
        };
        let mut columns = HashMap::new();
        let default = match props.get(DEFAULT) {
            Some(v) => parse(DEFAULT, v)?,
            None => {
                let max = match props.get(MAX_INFERRED) {
                    None => DEFAULT_MAX_INFERRED,
                    Some(v) => v.trim().parse::<usize>().map_err(|_| {
                        format!("Invalid value {v} for table property {MAX_INFERRED}: expected a number")
                    })?,
                };
                let leaves = leaf_ids(schema);
                if leaves.len() <= max {
                    Mode::Truncate(DEFAULT_TRUNCATE)
                } else {
                    for id in leaves.into_iter().take(max) {
                        columns.insert(id, Mode::Truncate(DEFAULT_TRUNCATE));
                    }
                    Mode::None
                }
            }
        };
        for (key, value) in props {
            let Some(name) = key.strip_prefix(COLUMN) else {
                continue;
            };
            let mode = parse(key, value)?;
            if let Some(field) = schema.field_by_name(name) {
                columns.insert(field.id, mode);
            }
        }
        Ok(MetricsModes { default, columns })
    }

    fn mode(&self, id: i32) -> Mode {
        self.columns.get(&id).copied().unwrap_or(self.default)
    }

    /// `file`'s statistics as the modes keep them; `schema` types the bounds.
    pub fn apply(&self, file: &mut WireDataFile, schema: &Schema) {
        let keep_counts = |id: &i32| !matches!(self.mode(*id), Mode::None);
        for counts in [
            &mut file.value_counts,
            &mut file.null_value_counts,
            &mut file.nan_value_counts,
        ]
        .into_iter()
        .flatten()
        {
            counts.retain(|(id, _)| keep_counts(id));
        }
        for (bounds, upper) in [
            (&mut file.lower_bounds, false),
            (&mut file.upper_bounds, true),
        ] {
            let Some(bounds) = bounds else { continue };
            bounds.retain_mut(|(id, bytes)| match self.mode(*id) {
                Mode::None | Mode::Counts => false,
                Mode::Full => true,
                Mode::Truncate(n) => match primitive(schema, *id) {
                    Some(PrimitiveType::String) => truncate_string(bytes, n, upper),
                    Some(PrimitiveType::Binary) => truncate_binary(bytes, n, upper),
                    _ => true,
                },
            });
        }
    }
}

fn primitive(schema: &Schema, id: i32) -> Option<PrimitiveType> {
    match schema.field_by_id(id)?.field_type.as_ref() {
        Type::Primitive(p) => Some(p.clone()),
        _ => None,
    }
}

/// The ids of `schema`'s leaf (primitive) columns, depth first in schema order.
fn leaf_ids(schema: &Schema) -> Vec<i32> {
    fn walk(field: &NestedFieldRef, out: &mut Vec<i32>) {
        match field.field_type.as_ref() {
            Type::Primitive(_) => out.push(field.id),
            Type::Struct(s) => s.fields().iter().for_each(|f| walk(f, out)),
            Type::List(l) => walk(&l.element_field, out),
            Type::Map(m) => {
                walk(&m.key_field, out);
                walk(&m.value_field, out);
            }
        }
    }
    let mut out = Vec::new();
    schema
        .as_struct()
        .fields()
        .iter()
        .for_each(|f| walk(f, &mut out));
    out
}

/// Cuts a UTF-8 string bound to `n` characters: a lower bound to its prefix, an upper bound to
/// its prefix with the last character that can be incremented incremented (Java's
/// `UnicodeUtil.truncateStringMax`). False when the bound must go (no upper bound of `n`
/// characters exists, or the bytes are not UTF-8).
fn truncate_string(bytes: &mut Vec<u8>, n: usize, upper: bool) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= n {
        return true;
    }
    let mut prefix: Vec<char> = chars[..n].to_vec();
    if upper {
        loop {
            let Some(last) = prefix.pop() else {
                return false;
            };
            let next = (u32::from(last) + 1..=0x10FFFF).find_map(char::from_u32);
            if let Some(c) = next {
                prefix.push(c);
                break;
            }
        }
    }
    *bytes = prefix.into_iter().collect::<String>().into_bytes();
    true
}

/// Cuts a binary bound to `n` bytes, an upper bound rounded up (Java's
/// `BinaryUtil.truncateBinaryMax`). False when no upper bound of `n` bytes exists.
fn truncate_binary(bytes: &mut Vec<u8>, n: usize, upper: bool) -> bool {
    if bytes.len() <= n {
        return true;
    }
    bytes.truncate(n);
    if upper {
        while let Some(last) = bytes.pop() {
            if last < u8::MAX {
                bytes.push(last + 1);
                return true;
            }
        }
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use iceberg::spec::NestedField;
    use std::sync::Arc;

    fn schema(columns: usize) -> Schema {
        let mut fields: Vec<NestedFieldRef> = vec![
            Arc::new(NestedField::optional(
                1,
                "name",
                Type::Primitive(PrimitiveType::String),
            )),
            Arc::new(NestedField::optional(
                2,
                "blob",
                Type::Primitive(PrimitiveType::Binary),
            )),
            Arc::new(NestedField::optional(
                3,
                "n",
                Type::Primitive(PrimitiveType::Long),
            )),
        ];
        for i in 3..columns {
            fields.push(Arc::new(NestedField::optional(
                i as i32 + 1,
                format!("c{i}"),
                Type::Primitive(PrimitiveType::Int),
            )));
        }
        Schema::builder().with_fields(fields).build().unwrap()
    }

    fn file(columns: usize) -> WireDataFile {
        let ids = 1..=columns as i32;
        WireDataFile {
            content: 0,
            file_path: "f.parquet".into(),
            file_format: "PARQUET".into(),
            spec_id: Some(0),
            partition: vec![],
            record_count: 2,
            file_size_in_bytes: 10,
            column_sizes: Some(ids.clone().map(|i| (i, 5)).collect()),
            value_counts: Some(ids.clone().map(|i| (i, 2)).collect()),
            null_value_counts: Some(ids.clone().map(|i| (i, 0)).collect()),
            nan_value_counts: None,
            lower_bounds: Some(vec![
                (1, "aaaa-long-name-of-twenty".into()),
                (2, vec![1, 2, 3, 4, 5]),
                (3, 1i64.to_le_bytes().to_vec()),
            ]),
            upper_bounds: Some(vec![
                (1, "zzzz-long-name-of-twenty".into()),
                (2, vec![9, 0xFF, 0xFF, 4]),
                (3, 9i64.to_le_bytes().to_vec()),
            ]),
            key_metadata: None,
            split_offsets: None,
            equality_ids: None,
            sort_order_id: None,
            first_row_id: None,
            referenced_data_file: None,
            content_offset: None,
            content_size_in_bytes: None,
        }
    }

    fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn bound(b: &Option<Vec<(i32, Vec<u8>)>>, id: i32) -> Option<Vec<u8>> {
        b.iter()
            .flatten()
            .find(|(i, _)| *i == id)
            .map(|(_, v)| v.clone())
    }

    #[test]
    fn modes_parse_as_javas() {
        assert_eq!(Mode::parse("None"), Some(Mode::None));
        assert_eq!(Mode::parse(" counts"), Some(Mode::Counts));
        assert_eq!(Mode::parse("FULL"), Some(Mode::Full));
        assert_eq!(Mode::parse("truncate(8)"), Some(Mode::Truncate(8)));
        assert_eq!(Mode::parse("truncate(0)"), None);
        assert_eq!(Mode::parse("truncate"), None);
        assert_eq!(Mode::parse("some"), None);
        let e = MetricsModes::from_props(&props(&[(DEFAULT, "all")]), &schema(3)).unwrap_err();
        assert!(e.contains(DEFAULT), "{e}");
    }

    #[test]
    fn the_default_truncates_strings_and_binaries_to_16() {
        let s = schema(3);
        let modes = MetricsModes::from_props(&HashMap::new(), &s).unwrap();
        let mut f = file(3);
        modes.apply(&mut f, &s);
        assert_eq!(bound(&f.lower_bounds, 1).unwrap(), b"aaaa-long-name-o");
        assert_eq!(bound(&f.upper_bounds, 1).unwrap(), b"zzzz-long-name-p");
        // Five bytes fit in sixteen.
        assert_eq!(bound(&f.lower_bounds, 2).unwrap(), vec![1, 2, 3, 4, 5]);
        assert_eq!(
            bound(&f.upper_bounds, 3).unwrap(),
            9i64.to_le_bytes().to_vec()
        );
        assert_eq!(f.value_counts.as_ref().unwrap().len(), 3);
    }

    #[test]
    fn none_and_counts_keep_values_out() {
        let s = schema(3);
        let modes = MetricsModes::from_props(
            &props(&[
                ("write.metadata.metrics.column.name", "none"),
                ("write.metadata.metrics.column.n", "counts"),
                ("write.metadata.metrics.column.blob", "truncate(2)"),
                ("write.metadata.metrics.column.gone", "none"),
            ]),
            &s,
        )
        .unwrap();
        let mut f = file(3);
        modes.apply(&mut f, &s);
        assert_eq!(bound(&f.lower_bounds, 1), None);
        assert_eq!(bound(&f.upper_bounds, 1), None);
        assert!(!f
            .value_counts
            .as_ref()
            .unwrap()
            .iter()
            .any(|(i, _)| *i == 1));
        assert!(!f
            .null_value_counts
            .as_ref()
            .unwrap()
            .iter()
            .any(|(i, _)| *i == 1));
        assert_eq!(bound(&f.lower_bounds, 3), None);
        assert!(f
            .value_counts
            .as_ref()
            .unwrap()
            .iter()
            .any(|(i, _)| *i == 3));
        assert_eq!(bound(&f.lower_bounds, 2).unwrap(), vec![1, 2]);
        // 9, FF: the FF cannot grow, so 9 does.
        assert_eq!(bound(&f.upper_bounds, 2).unwrap(), vec![10]);
        assert_eq!(f.column_sizes.as_ref().unwrap().len(), 3);
    }

    #[test]
    fn wide_tables_keep_metrics_for_their_first_columns_only() {
        let s = schema(120);
        let modes = MetricsModes::from_props(&HashMap::new(), &s).unwrap();
        assert_eq!(modes.mode(1), Mode::Truncate(16));
        assert_eq!(modes.mode(100), Mode::Truncate(16));
        assert_eq!(modes.mode(101), Mode::None);
        let explicit = MetricsModes::from_props(&props(&[(DEFAULT, "full")]), &s).unwrap();
        assert_eq!(explicit.mode(120), Mode::Full);
    }

    #[test]
    fn upper_bounds_round_up_or_go() {
        let mut max = "a\u{10FFFF}\u{10FFFF}b".as_bytes().to_vec();
        assert!(truncate_string(&mut max, 3, true));
        assert_eq!(max, b"b");
        let mut none = "\u{10FFFF}\u{10FFFF}x".as_bytes().to_vec();
        assert!(!truncate_string(&mut none, 2, true));
        let mut bin = vec![0xFF, 0xFF, 1];
        assert!(!truncate_binary(&mut bin, 2, true));
        let mut low = "héllo".as_bytes().to_vec();
        assert!(truncate_string(&mut low, 2, false));
        assert_eq!(low, "hé".as_bytes());
    }
}
