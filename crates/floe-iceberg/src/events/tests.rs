use std::sync::Arc;
use std::time::{Duration, Instant};

use iceberg::spec::{Literal, NestedField, PrimitiveLiteral, PrimitiveType, StructType, Type};
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::*;

fn event(payload: Payload) -> Event {
    Event {
        id: Uuid::new_v4(),
        timestamp_micros: 1_721_306_096_789_000,
        group_id: "connect-ice".into(),
        payload,
    }
}

fn table() -> TableReference {
    TableReference {
        catalog: "iceberg".into(),
        namespace: vec!["db".into()],
        name: "events".into(),
        table_uuid: Some(Uuid::new_v4()),
    }
}

fn partition_type() -> StructType {
    StructType::new(vec![
        Arc::new(NestedField::optional(
            1000,
            "ts_day",
            Type::Primitive(PrimitiveType::Date),
        )),
        Arc::new(NestedField::optional(
            1001,
            "id_bucket",
            Type::Primitive(PrimitiveType::Int),
        )),
        Arc::new(NestedField::optional(
            1002,
            "name_trunc",
            Type::Primitive(PrimitiveType::String),
        )),
        Arc::new(NestedField::optional(
            1003,
            "kind",
            Type::Primitive(PrimitiveType::Long),
        )),
    ])
}

fn file(path: &str) -> WireDataFile {
    WireDataFile {
        content: 0,
        file_path: path.into(),
        file_format: "PARQUET".into(),
        spec_id: Some(1),
        partition: vec![
            Some(Literal::Primitive(PrimitiveLiteral::Int(19_000))),
            Some(Literal::Primitive(PrimitiveLiteral::Int(3))),
            Some(Literal::string("ab")),
            None,
        ],
        record_count: 10,
        file_size_in_bytes: 1234,
        column_sizes: Some(vec![(1, 100), (2, 200)]),
        value_counts: Some(vec![(1, 10)]),
        null_value_counts: Some(vec![(1, 0)]),
        nan_value_counts: None,
        lower_bounds: Some(vec![(1, vec![1, 0, 0, 0, 0, 0, 0, 0])]),
        upper_bounds: Some(vec![(1, vec![9, 0, 0, 0, 0, 0, 0, 0])]),
        key_metadata: None,
        split_offsets: Some(vec![4]),
        equality_ids: None,
        sort_order_id: Some(0),
        first_row_id: None,
        referenced_data_file: None,
        content_offset: None,
        content_size_in_bytes: None,
    }
}

#[test]
fn every_event_type_round_trips() {
    let commit_id = Uuid::new_v4();
    let payloads = vec![
        Payload::StartCommit { commit_id },
        Payload::DataWritten {
            commit_id,
            table_reference: table(),
            partition_type: partition_type(),
            data_files: vec![file("/a.parquet"), file("/b.parquet")],
            delete_files: vec![],
        },
        Payload::DataWritten {
            commit_id,
            table_reference: table(),
            partition_type: StructType::new(vec![]),
            data_files: vec![],
            delete_files: vec![],
        },
        // Upserts: equality deletes beside the data files (the list's items are a reference
        // to the data-file record by name).
        Payload::DataWritten {
            commit_id,
            table_reference: table(),
            partition_type: partition_type(),
            data_files: vec![file("/c.parquet")],
            delete_files: vec![
                WireDataFile {
                    content: 2,
                    equality_ids: Some(vec![1, 3]),
                    split_offsets: None,
                    ..file("/c-keys.parquet")
                },
                WireDataFile {
                    content: 1,
                    ..file("/c-pos.parquet")
                },
            ],
        },
        Payload::DataComplete {
            commit_id,
            assignments: vec![
                TopicPartitionOffset {
                    topic: "t".into(),
                    partition: 0,
                    offset: Some(42),
                    timestamp_micros: Some(1_000),
                },
                TopicPartitionOffset {
                    topic: "t".into(),
                    partition: 1,
                    offset: None,
                    timestamp_micros: None,
                },
            ],
        },
        Payload::CommitToTable {
            commit_id,
            table_reference: table(),
            snapshot_id: Some(7),
            valid_through_ts_micros: None,
        },
        Payload::CommitComplete {
            commit_id,
            valid_through_ts_micros: Some(99),
        },
    ];
    for p in payloads {
        let mut e = event(p);
        if let Payload::DataWritten {
            data_files,
            partition_type,
            ..
        } = &mut e.payload
        {
            if data_files.is_empty() {
                *partition_type = StructType::new(vec![]);
            }
        }
        let bytes = encode(&e).unwrap();
        assert_eq!(&bytes[..2], &[0xC2, 0x01]);
        let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        let schema: serde_json::Value = serde_json::from_slice(&bytes[4..4 + len]).unwrap();
        assert_eq!(schema["name"], "Event");
        assert_eq!(schema["namespace"], "org.apache.iceberg.connect.events");
        assert_eq!(decode(&bytes).unwrap(), e);
    }
}

#[test]
fn schema_follows_java_conventions() {
    let e = event(Payload::DataWritten {
        commit_id: Uuid::nil(),
        table_reference: table(),
        partition_type: partition_type(),
        data_files: vec![file("/a")],
        delete_files: vec![],
    });
    let bytes = encode(&e).unwrap();
    let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
    let schema: serde_json::Value = serde_json::from_slice(&bytes[4..4 + len]).unwrap();
    let fields = schema["fields"].as_array().unwrap();
    assert_eq!(
        fields[0]["type"],
        serde_json::json!({"type":"fixed","name":"uuid_fixed","namespace":"","size":16,"logicalType":"uuid"})
    );
    assert_eq!(fields[0]["field-id"], 10500);
    assert_eq!(
        fields[2]["type"],
        serde_json::json!({"type":"long","logicalType":"timestamp-micros","adjust-to-utc":true})
    );
    let payload = &fields[4]["type"];
    assert_eq!(payload["name"], "DataWritten");
    assert_eq!(payload["fields"][0]["type"], "uuid_fixed");
    let data_files = &payload["fields"][2]["type"][1];
    assert_eq!(data_files["element-id"], 10303);
    assert_eq!(data_files["items"]["name"], "GenericDataFile");
    assert_eq!(data_files["items"]["namespace"], "org.apache.iceberg");
    let partition = &data_files["items"]["fields"][4];
    assert_eq!(partition["field-id"], 102);
    assert_eq!(partition["type"]["name"], "PartitionData");
    assert_eq!(
        partition["type"]["fields"][0]["type"][1],
        serde_json::json!({"type":"int","logicalType":"date"})
    );
    let column_sizes = &data_files["items"]["fields"][7]["type"][1];
    assert_eq!(column_sizes["logicalType"], "map");
    assert_eq!(column_sizes["items"]["name"], "k117_v118");
    assert_eq!(
        payload["fields"][3]["type"][1]["items"],
        "org.apache.iceberg.GenericDataFile"
    );
}

#[test]
fn bad_input_is_an_error() {
    assert!(matches!(
        decode(&[0xC3, 0x01, 0, 0]),
        Err(EventError::Header(_))
    ));
    let bytes = encode(&event(Payload::StartCommit {
        commit_id: Uuid::nil(),
    }))
    .unwrap();
    assert!(matches!(
        decode(&bytes[..bytes.len() - 3]),
        Err(EventError::Truncated)
    ));
}

#[test]
fn modified_utf8_round_trips() {
    let mut out = Vec::new();
    write_utf("a\u{0}é€😀", &mut out).unwrap();
    assert_eq!(&out[2..4], &[b'a', 0xC0]);
    assert_eq!(read_utf(&out).unwrap().0, "a\u{0}é€😀");
}

#[test]
fn events_of_other_groups_are_skipped_and_schemas_are_parsed_once() {
    let commit_id = Uuid::new_v4();
    let written = event(Payload::DataWritten {
        commit_id,
        table_reference: table(),
        partition_type: partition_type(),
        data_files: vec![file("/a.parquet")],
        delete_files: vec![],
    });
    let bytes = encode(&written).unwrap();
    // Decoded twice (the second time from the cached schema), the same event.
    assert_eq!(
        decode_for_group(&bytes, "connect-ice").unwrap(),
        Some(written.clone())
    );
    assert_eq!(
        decode_for_group(&bytes, "connect-ice").unwrap(),
        Some(written.clone())
    );
    assert_eq!(decode(&bytes).unwrap(), written);
    // Another connector's event: None, without reading the payload. A payload that would
    // not decode does not matter then.
    assert_eq!(decode_for_group(&bytes, "connect-other").unwrap(), None);
    let mut cut = bytes.clone();
    cut.truncate(bytes.len() - 8);
    assert_eq!(decode_for_group(&cut, "connect-other").unwrap(), None);
    assert!(decode_for_group(&cut, "connect-ice").is_err());
    // A different schema text is a different cache entry.
    let start = event(Payload::StartCommit { commit_id });
    assert_eq!(decode(&encode(&start).unwrap()).unwrap(), start);
}

/// A control-topic record of `schema` and `datum`, as any writer on the topic could send it.
fn record(schema: &serde_json::Value, datum: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    write_utf(&schema.to_string(), &mut out).unwrap();
    out.extend_from_slice(datum);
    out
}

/// Decodes `bytes` for group `connect-ice`, as a worker's feed and a coordinator do, asserting
/// that it takes well under a second.
fn decode_quickly(bytes: &[u8]) -> Result<Option<Event>, EventError> {
    let started = Instant::now();
    let got = decode_for_group(bytes, "connect-ice");
    assert!(started.elapsed() < Duration::from_secs(1), "{got:?}");
    got
}

#[test]
fn a_block_count_of_2_pow_40_nulls_is_refused_not_allocated() {
    // The event's first field, read before its group id, an array of nulls whose block count
    // is 2^40: a record like this made a worker abort on a 2 GB allocation.
    let schema = json!({
        "type": "record",
        "name": "Event",
        "namespace": "org.apache.iceberg.connect.events",
        "fields": [
            {"name": "id", "type": {"type": "array", "items": "null"}, "field-id": 10500},
            {"name": "group_id", "type": "string", "field-id": 10503},
        ],
    });
    let mut datum = Vec::new();
    avro::write_long(&mut datum, 1 << 40);
    let got = decode_quickly(&record(&schema, &datum));
    assert!(matches!(got, Err(EventError::Limit(_))), "{got:?}");
}

#[test]
fn an_exponentially_expanding_writer_schema_is_refused() {
    // 30 levels of records, each with two fields of the level below: 2^30 copies of the
    // innermost record once named types are expanded, in under 3 KB of schema.
    let mut ty = json!({"type": "record", "name": "L0", "fields": [{"name": "a", "type": "null"}]});
    for level in 1..=30 {
        ty = json!({
            "type": "record",
            "name": format!("L{level}"),
            "fields": [
                {"name": "a", "type": ty},
                {"name": "b", "type": format!("L{}", level - 1)},
            ],
        });
    }
    let got = decode_quickly(&record(&ty, &[]));
    assert!(matches!(got, Err(EventError::Limit(_))), "{got:?}");
}

#[test]
fn an_oversized_writer_schema_is_refused() {
    // Within the 64 KB of text, a union of more types than a schema may have.
    let branches: Vec<serde_json::Value> = (0..avro::MAX_SCHEMA_TYPES + 1)
        .map(|_| json!("int"))
        .collect();
    let schema = json!({
        "type": "record",
        "name": "Event",
        "fields": [{"name": "u", "type": branches}],
    });
    let got = decode_quickly(&record(&schema, &[0]));
    assert!(matches!(got, Err(EventError::Limit(_))), "{got:?}");
}

#[test]
fn the_events_own_schemas_are_well_within_the_limits() {
    // A partition of a hundred fields, and every event kind.
    let wide = StructType::new(
        (0..100)
            .map(|i| {
                Arc::new(NestedField::optional(
                    1000 + i,
                    format!("a_partition_field_named_at_some_length_{i}"),
                    Type::Primitive(PrimitiveType::Long),
                ))
            })
            .collect(),
    );
    let commit_id = Uuid::new_v4();
    for payload in [
        Payload::DataWritten {
            commit_id,
            table_reference: table(),
            partition_type: wide,
            data_files: vec![],
            delete_files: vec![],
        },
        Payload::DataComplete {
            commit_id,
            assignments: vec![],
        },
        Payload::StartCommit { commit_id },
    ] {
        let json = avro::to_json(&event_type(&payload).unwrap());
        // Tens of KB as the schema cache estimates it; a schema at the limits takes over 1 MB.
        let (_, bytes) = avro::parse(&json).unwrap();
        assert!(bytes < 256 * 1024, "{bytes}");
    }
}

/// A schema of every shape whose values may take no bytes, for the property below.
fn hostile_schema() -> serde_json::Value {
    let array = |items: serde_json::Value| json!({"type": "array", "items": items});
    let empty = json!({"type": "record", "name": "Empty", "fields": []});
    let zero = json!({"type": "fixed", "name": "z", "size": 0});
    json!({
        "type": "record",
        "name": "Event",
        "fields": [
            {"name": "nulls", "type": array(json!("null"))},
            {"name": "empties", "type": array(empty)},
            {"name": "by_key", "type": {"type": "map", "values": "Empty"}},
            {"name": "nested", "type": ["null", array(array(json!("null")))]},
            {"name": "zero", "type": array(zero)},
            {"name": "group_id", "type": "string", "field-id": 10503},
        ],
    })
}

proptest! {
    /// Whatever datum follows a writer schema (Java's `DataWritten` one, or one of values of
    /// no bytes), decoding returns an event or an error: it neither panics nor runs away.
    #[test]
    fn any_datum_decodes_or_fails_within_its_budget(
        datum in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let written = encode(&event(Payload::DataWritten {
            commit_id: Uuid::nil(),
            table_reference: table(),
            partition_type: partition_type(),
            data_files: vec![file("/a.parquet")],
            delete_files: vec![],
        }))
        .unwrap();
        let len = u16::from_be_bytes([written[2], written[3]]) as usize;
        let mut bytes = written[..4 + len].to_vec();
        bytes.extend_from_slice(&datum);
        let _ = decode_quickly(&bytes);
        let _ = decode_quickly(&record(&hostile_schema(), &datum));
    }

    /// An event with some of its bytes (schema or datum) changed decodes or fails, the same way.
    #[test]
    fn a_corrupted_event_decodes_or_fails(
        changes in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = encode(&event(Payload::DataWritten {
            commit_id: Uuid::nil(),
            table_reference: table(),
            partition_type: partition_type(),
            data_files: vec![file("/a.parquet"), file("/b.parquet")],
            delete_files: vec![],
        }))
        .unwrap();
        let len = bytes.len();
        for (at, byte) in changes {
            bytes[at % len] = byte;
        }
        let _ = decode_quickly(&bytes);
    }
}
