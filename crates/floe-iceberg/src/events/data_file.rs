//! `GenericDataFile` / `GenericDeleteFile` records (`DataFile.getType(partitionType)`) and the
//! `PartitionData` tuple inside them.

use std::collections::HashMap;

use iceberg::spec::{
    DataContentType, DataFile, DataFileBuilder, DataFileFormat, Datum, Literal, Schema, Struct,
    StructType, Type,
};

use super::avro::{AvroField, AvroType, AvroValue};
use super::{avro_to_literal, literal_to_avro, partition_type_of, primitive_avro, EventError};

/// Per-column binary bounds, by field id.
pub type Bounds = Vec<(i32, Vec<u8>)>;

/// A data or delete file as it travels on the control topic. Bounds stay in Iceberg's
/// single-value binary form until the table schema is at hand.
#[derive(Debug, Clone, PartialEq)]
pub struct WireDataFile {
    /// 0 data, 1 position deletes, 2 equality deletes.
    pub content: i32,
    pub file_path: String,
    pub file_format: String,
    pub spec_id: Option<i32>,
    /// Values in the order of the partition type's fields.
    pub partition: Vec<Option<Literal>>,
    pub record_count: i64,
    pub file_size_in_bytes: i64,
    pub column_sizes: Option<Vec<(i32, i64)>>,
    pub value_counts: Option<Vec<(i32, i64)>>,
    pub null_value_counts: Option<Vec<(i32, i64)>>,
    pub nan_value_counts: Option<Vec<(i32, i64)>>,
    pub lower_bounds: Option<Bounds>,
    pub upper_bounds: Option<Bounds>,
    pub key_metadata: Option<Vec<u8>>,
    pub split_offsets: Option<Vec<i64>>,
    pub equality_ids: Option<Vec<i32>>,
    pub sort_order_id: Option<i32>,
    pub first_row_id: Option<i64>,
    pub referenced_data_file: Option<String>,
    pub content_offset: Option<i64>,
    pub content_size_in_bytes: Option<i64>,
}

fn err(msg: impl Into<String>) -> EventError {
    EventError::Decode(msg.into())
}

/// Java `AvroSchemaUtil.makeCompatibleName`.
fn compatible_name(name: &str) -> String {
    let valid = |c: char, first: bool| {
        c == '_' || c.is_ascii_alphabetic() || (!first && c.is_ascii_digit())
    };
    if name.chars().enumerate().all(|(i, c)| valid(c, i == 0)) && !name.is_empty() {
        return name.to_string();
    }
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if valid(c, i == 0) {
            out.push(c);
        } else if i == 0 && c.is_ascii_digit() {
            out.push('_');
            out.push(c);
        } else {
            out.push_str(&format!("_x{:X}", c as u32));
        }
    }
    out
}

fn int_map(key_id: i32, value_id: i32, value: AvroType) -> AvroType {
    AvroType::Array {
        items: Box::new(AvroType::Record {
            name: format!("k{key_id}_v{value_id}"),
            fields: vec![
                AvroField {
                    name: "key".into(),
                    field_id: Some(key_id),
                    original_name: None,
                    ty: AvroType::Int { logical: None },
                },
                AvroField {
                    name: "value".into(),
                    field_id: Some(value_id),
                    original_name: None,
                    ty: value,
                },
            ],
        }),
        element_id: None,
        logical_map: true,
    }
}

fn f(name: &str, id: i32, ty: AvroType) -> AvroField {
    AvroField {
        name: name.into(),
        field_id: Some(id),
        original_name: None,
        ty,
    }
}

fn opt(ty: AvroType) -> AvroType {
    AvroType::Union(vec![AvroType::Null, ty])
}

fn long() -> AvroType {
    AvroType::Long {
        logical: None,
        adjust_to_utc: false,
    }
}

fn int() -> AvroType {
    AvroType::Int { logical: None }
}

/// The record type of data files for a partition type.
pub(crate) fn avro_type(partition_type: &StructType) -> Result<AvroType, EventError> {
    let mut partition_fields = Vec::new();
    for pf in partition_type.fields() {
        let Type::Primitive(p) = pf.field_type.as_ref() else {
            return Err(EventError::Encode(format!(
                "partition field {} is not primitive",
                pf.name
            )));
        };
        let name = compatible_name(&pf.name);
        let original_name = (name != pf.name).then(|| pf.name.clone());
        partition_fields.push(AvroField {
            name,
            field_id: Some(pf.id),
            original_name,
            ty: opt(primitive_avro(p)?),
        });
    }
    Ok(AvroType::Record {
        name: "org.apache.iceberg.GenericDataFile".into(),
        fields: vec![
            f("content", 134, opt(int())),
            f("file_path", 100, AvroType::String),
            f("file_format", 101, AvroType::String),
            f("spec_id", 141, opt(int())),
            f(
                "partition",
                102,
                AvroType::Record {
                    name: "org.apache.iceberg.PartitionData".into(),
                    fields: partition_fields,
                },
            ),
            f("record_count", 103, long()),
            f("file_size_in_bytes", 104, long()),
            f("column_sizes", 108, opt(int_map(117, 118, long()))),
            f("value_counts", 109, opt(int_map(119, 120, long()))),
            f("null_value_counts", 110, opt(int_map(121, 122, long()))),
            f("nan_value_counts", 137, opt(int_map(138, 139, long()))),
            f("lower_bounds", 125, opt(int_map(126, 127, AvroType::Bytes))),
            f("upper_bounds", 128, opt(int_map(129, 130, AvroType::Bytes))),
            f("key_metadata", 131, opt(AvroType::Bytes)),
            f(
                "split_offsets",
                132,
                opt(AvroType::Array {
                    items: Box::new(long()),
                    element_id: Some(133),
                    logical_map: false,
                }),
            ),
            f(
                "equality_ids",
                135,
                opt(AvroType::Array {
                    items: Box::new(int()),
                    element_id: Some(136),
                    logical_map: false,
                }),
            ),
            f("sort_order_id", 140, opt(int())),
            f("first_row_id", 142, opt(long())),
            f("referenced_data_file", 143, opt(AvroType::String)),
            f("content_offset", 144, opt(long())),
            f("content_size_in_bytes", 145, opt(long())),
        ],
    })
}

fn counts(m: &HashMap<i32, u64>) -> Option<Vec<(i32, i64)>> {
    if m.is_empty() {
        return None;
    }
    let mut v: Vec<(i32, i64)> = m.iter().map(|(k, c)| (*k, *c as i64)).collect();
    v.sort();
    Some(v)
}

fn bounds(m: &HashMap<i32, Datum>) -> Result<Option<Bounds>, EventError> {
    if m.is_empty() {
        return Ok(None);
    }
    let mut v = Vec::with_capacity(m.len());
    for (k, d) in m {
        v.push((
            *k,
            d.to_bytes()
                .map_err(|e| EventError::Encode(format!("bound of field {k}: {e}")))?
                .to_vec(),
        ));
    }
    v.sort();
    Ok(Some(v))
}

fn pairs_value(p: &Option<Vec<(i32, i64)>>) -> AvroValue {
    match p {
        None => AvroValue::Null,
        Some(v) => AvroValue::Array(
            v.iter()
                .map(|(k, c)| AvroValue::Record(vec![AvroValue::Int(*k), AvroValue::Long(*c)]))
                .collect(),
        ),
    }
}

fn bytes_pairs_value(p: &Option<Vec<(i32, Vec<u8>)>>) -> AvroValue {
    match p {
        None => AvroValue::Null,
        Some(v) => AvroValue::Array(
            v.iter()
                .map(|(k, b)| {
                    AvroValue::Record(vec![AvroValue::Int(*k), AvroValue::Bytes(b.clone())])
                })
                .collect(),
        ),
    }
}

fn o<T>(v: Option<T>, f: impl FnOnce(T) -> AvroValue) -> AvroValue {
    v.map_or(AvroValue::Null, f)
}

impl WireDataFile {
    /// From a file written by this process for partition spec `spec_id`.
    pub fn from_data_file(file: &DataFile, spec_id: i32) -> Result<WireDataFile, EventError> {
        Ok(WireDataFile {
            content: match file.content_type() {
                DataContentType::Data => 0,
                DataContentType::PositionDeletes => 1,
                DataContentType::EqualityDeletes => 2,
            },
            file_path: file.file_path().to_string(),
            file_format: file.file_format().to_string().to_ascii_uppercase(),
            spec_id: Some(spec_id),
            partition: file.partition().iter().map(|l| l.cloned()).collect(),
            record_count: file.record_count() as i64,
            file_size_in_bytes: file.file_size_in_bytes() as i64,
            column_sizes: counts(file.column_sizes()),
            value_counts: counts(file.value_counts()),
            null_value_counts: counts(file.null_value_counts()),
            nan_value_counts: counts(file.nan_value_counts()),
            lower_bounds: bounds(file.lower_bounds())?,
            upper_bounds: bounds(file.upper_bounds())?,
            key_metadata: file.key_metadata().map(<[u8]>::to_vec),
            split_offsets: file.split_offsets().map(<[i64]>::to_vec),
            equality_ids: file.equality_ids(),
            sort_order_id: file.sort_order_id(),
            first_row_id: file.first_row_id(),
            referenced_data_file: file.referenced_data_file(),
            content_offset: file.content_offset(),
            content_size_in_bytes: file.content_size_in_bytes(),
        })
    }

    /// Back to an Iceberg data file; `schema` types the bounds.
    pub fn to_data_file(
        &self,
        schema: &Schema,
        default_spec_id: i32,
    ) -> Result<DataFile, EventError> {
        let to_map = |p: &Option<Vec<(i32, i64)>>| -> HashMap<i32, u64> {
            p.iter()
                .flatten()
                .map(|(k, v)| (*k, (*v).max(0) as u64))
                .collect()
        };
        let to_bounds =
            |p: &Option<Vec<(i32, Vec<u8>)>>| -> Result<HashMap<i32, Datum>, EventError> {
                let mut out = HashMap::new();
                for (id, bytes) in p.iter().flatten() {
                    // Bounds of columns the schema no longer has are dropped, as metrics are optional.
                    let Some(field) = schema.field_by_id(*id) else {
                        continue;
                    };
                    let Type::Primitive(t) = field.field_type.as_ref() else {
                        continue;
                    };
                    let datum = Datum::try_from_bytes(bytes, t.clone())
                        .map_err(|e| err(format!("bound of field {id}: {e}")))?;
                    out.insert(*id, datum);
                }
                Ok(out)
            };
        let mut b = DataFileBuilder::default();
        b.content(match self.content {
            1 => DataContentType::PositionDeletes,
            2 => DataContentType::EqualityDeletes,
            _ => DataContentType::Data,
        })
        .file_path(self.file_path.clone())
        .file_format(match self.file_format.to_ascii_uppercase().as_str() {
            "AVRO" => DataFileFormat::Avro,
            "ORC" => DataFileFormat::Orc,
            _ => DataFileFormat::Parquet,
        })
        .partition(Struct::from_iter(self.partition.iter().cloned()))
        .record_count(self.record_count.max(0) as u64)
        .file_size_in_bytes(self.file_size_in_bytes.max(0) as u64)
        .column_sizes(to_map(&self.column_sizes))
        .value_counts(to_map(&self.value_counts))
        .null_value_counts(to_map(&self.null_value_counts))
        .nan_value_counts(to_map(&self.nan_value_counts))
        .lower_bounds(to_bounds(&self.lower_bounds)?)
        .upper_bounds(to_bounds(&self.upper_bounds)?)
        .key_metadata(self.key_metadata.clone())
        .split_offsets(self.split_offsets.clone())
        .equality_ids(self.equality_ids.clone())
        .first_row_id(self.first_row_id)
        .partition_spec_id(self.spec_id.unwrap_or(default_spec_id))
        .referenced_data_file(self.referenced_data_file.clone())
        .content_offset(self.content_offset)
        .content_size_in_bytes(self.content_size_in_bytes);
        if let Some(s) = self.sort_order_id {
            b.sort_order_id(s);
        }
        b.build()
            .map_err(|e| err(format!("data file {}: {e}", self.file_path)))
    }

    pub(crate) fn to_avro(&self, partition_type: &StructType) -> Result<AvroValue, EventError> {
        let mut partition = Vec::with_capacity(partition_type.fields().len());
        for (i, pf) in partition_type.fields().iter().enumerate() {
            let Type::Primitive(p) = pf.field_type.as_ref() else {
                return Err(EventError::Encode(format!(
                    "partition field {} is not primitive",
                    pf.name
                )));
            };
            partition.push(match self.partition.get(i).cloned().flatten() {
                Some(l) => literal_to_avro(p, &l)?,
                None => AvroValue::Null,
            });
        }
        Ok(AvroValue::Record(vec![
            AvroValue::Int(self.content),
            AvroValue::String(self.file_path.clone()),
            AvroValue::String(self.file_format.clone()),
            o(self.spec_id, AvroValue::Int),
            AvroValue::Record(partition),
            AvroValue::Long(self.record_count),
            AvroValue::Long(self.file_size_in_bytes),
            pairs_value(&self.column_sizes),
            pairs_value(&self.value_counts),
            pairs_value(&self.null_value_counts),
            pairs_value(&self.nan_value_counts),
            bytes_pairs_value(&self.lower_bounds),
            bytes_pairs_value(&self.upper_bounds),
            o(self.key_metadata.clone(), AvroValue::Bytes),
            o(self.split_offsets.clone(), |v| {
                AvroValue::Array(v.into_iter().map(AvroValue::Long).collect())
            }),
            o(self.equality_ids.clone(), |v| {
                AvroValue::Array(v.into_iter().map(AvroValue::Int).collect())
            }),
            o(self.sort_order_id, AvroValue::Int),
            o(self.first_row_id, AvroValue::Long),
            o(self.referenced_data_file.clone(), AvroValue::String),
            o(self.content_offset, AvroValue::Long),
            o(self.content_size_in_bytes, AvroValue::Long),
        ]))
    }

    /// Reads a data-file record, returning it with its partition type.
    pub(crate) fn from_avro(
        ty: &AvroType,
        v: AvroValue,
    ) -> Result<(WireDataFile, StructType), EventError> {
        let (AvroType::Record { fields, .. }, AvroValue::Record(values)) = (ty, v) else {
            return Err(err("a data file is not a record"));
        };
        let get = |id: i32| -> Option<(&AvroType, &AvroValue)> {
            fields
                .iter()
                .position(|f| f.field_id == Some(id))
                .and_then(|i| values.get(i).map(|v| (&fields[i].ty, v)))
        };
        let long_of = |id: i32| match get(id) {
            Some((_, AvroValue::Long(l))) => Some(*l),
            Some((_, AvroValue::Int(i))) => Some(i64::from(*i)),
            _ => None,
        };
        let int_of = |id: i32| match get(id) {
            Some((_, AvroValue::Int(i))) => Some(*i),
            _ => None,
        };
        let string_of = |id: i32| match get(id) {
            Some((_, AvroValue::String(s))) => Some(s.clone()),
            _ => None,
        };
        let pairs = |id: i32| -> Option<Vec<(i32, i64)>> {
            match get(id) {
                Some((_, AvroValue::Array(items))) => Some(
                    items
                        .iter()
                        .filter_map(|i| match i {
                            AvroValue::Record(kv) => match (kv.first(), kv.get(1)) {
                                (Some(AvroValue::Int(k)), Some(AvroValue::Long(v))) => {
                                    Some((*k, *v))
                                }
                                _ => None,
                            },
                            _ => None,
                        })
                        .collect(),
                ),
                Some((_, AvroValue::Map(entries))) => Some(
                    entries
                        .iter()
                        .filter_map(|(k, v)| match (k.parse::<i32>(), v) {
                            (Ok(k), AvroValue::Long(v)) => Some((k, *v)),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => None,
            }
        };
        let byte_pairs = |id: i32| -> Option<Vec<(i32, Vec<u8>)>> {
            match get(id) {
                Some((_, AvroValue::Array(items))) => Some(
                    items
                        .iter()
                        .filter_map(|i| match i {
                            AvroValue::Record(kv) => match (kv.first(), kv.get(1)) {
                                (Some(AvroValue::Int(k)), Some(AvroValue::Bytes(v))) => {
                                    Some((*k, v.clone()))
                                }
                                _ => None,
                            },
                            _ => None,
                        })
                        .collect(),
                ),
                _ => None,
            }
        };
        let list_of = |id: i32| match get(id) {
            Some((_, AvroValue::Array(items))) => Some(items.clone()),
            _ => None,
        };
        let (partition_type, partition) = match get(102) {
            Some((
                AvroType::Record {
                    fields: pfields, ..
                },
                AvroValue::Record(pvalues),
            )) => {
                let pt = partition_type_of(pfields)?;
                let mut values = Vec::with_capacity(pfields.len());
                for (pf, pv) in pfields.iter().zip(pvalues) {
                    values.push(avro_to_literal(&pf.ty, pv)?.1);
                }
                (pt, values)
            }
            _ => return Err(err("data file without partition record (field 102)")),
        };
        let file = WireDataFile {
            content: int_of(134).unwrap_or(0),
            file_path: string_of(100).ok_or_else(|| err("data file without file_path (100)"))?,
            file_format: string_of(101)
                .ok_or_else(|| err("data file without file_format (101)"))?,
            spec_id: int_of(141),
            partition,
            record_count: long_of(103)
                .ok_or_else(|| err("data file without record_count (103)"))?,
            file_size_in_bytes: long_of(104)
                .ok_or_else(|| err("data file without file_size_in_bytes (104)"))?,
            column_sizes: pairs(108),
            value_counts: pairs(109),
            null_value_counts: pairs(110),
            nan_value_counts: pairs(137),
            lower_bounds: byte_pairs(125),
            upper_bounds: byte_pairs(128),
            key_metadata: match get(131) {
                Some((_, AvroValue::Bytes(b))) => Some(b.clone()),
                _ => None,
            },
            split_offsets: list_of(132).map(|v| {
                v.iter()
                    .filter_map(|x| {
                        if let AvroValue::Long(l) = x {
                            Some(*l)
                        } else {
                            None
                        }
                    })
                    .collect()
            }),
            equality_ids: list_of(135).map(|v| {
                v.iter()
                    .filter_map(|x| {
                        if let AvroValue::Int(i) = x {
                            Some(*i)
                        } else {
                            None
                        }
                    })
                    .collect()
            }),
            sort_order_id: int_of(140),
            first_row_id: long_of(142),
            referenced_data_file: string_of(143),
            content_offset: long_of(144),
            content_size_in_bytes: long_of(145),
        };
        Ok((file, partition_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_names_like_java() {
        assert_eq!(compatible_name("ts_day"), "ts_day");
        assert_eq!(compatible_name("a.b"), "a_x2Eb");
        assert_eq!(compatible_name("1x"), "_1x");
    }
}
