use std::sync::Arc;

use iceberg::spec::{Literal, NestedField, PrimitiveLiteral, PrimitiveType, StructType, Type};
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
