//! Control-topic events against the real Java library (`org.apache.iceberg:iceberg-kafka-connect-events`):
//! Java decodes every event Floe writes, and Floe decodes every event Java writes; both print
//! the same canonical JSON, compared field by field. Runs when `FLOE_INTEROP_JAVA` names the
//! runner (`tests/interop/run`, as `test.sh` sets it); otherwise it says so and passes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use floe_iceberg::events::{
    decode, encode, Event, Payload, TableReference, TopicPartitionOffset, WireDataFile,
};
use iceberg::spec::{Literal, NestedField, PrimitiveLiteral, PrimitiveType, StructType, Type};
use serde_json::{json, Value as Json};
use uuid::Uuid;

fn runner() -> Option<PathBuf> {
    std::env::var_os("FLOE_INTEROP_JAVA").map(PathBuf::from)
}

fn java(runner: &Path, mode: &str, dir: &Path) -> String {
    let out = Command::new(runner)
        .arg(mode)
        .arg(dir)
        .output()
        .expect("run the Java interop program");
    assert!(
        out.status.success(),
        "java {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn literal(l: &Option<Literal>) -> Json {
    match l {
        None => Json::Null,
        Some(Literal::Primitive(p)) => json!(match p {
            PrimitiveLiteral::Int(i) => i.to_string(),
            PrimitiveLiteral::Long(l) => l.to_string(),
            PrimitiveLiteral::String(s) => s.clone(),
            PrimitiveLiteral::Boolean(b) => b.to_string(),
            other => format!("{other:?}"),
        }),
        Some(other) => json!(format!("{other:?}")),
    }
}

fn pairs(p: &Option<Vec<(i32, i64)>>) -> Json {
    match p {
        Some(v) if !v.is_empty() => {
            Json::Object(v.iter().map(|(k, c)| (k.to_string(), json!(c))).collect())
        }
        _ => Json::Null,
    }
}

fn hex_pairs(p: &Option<Vec<(i32, Vec<u8>)>>) -> Json {
    match p {
        Some(v) if !v.is_empty() => Json::Object(
            v.iter()
                .map(|(k, b)| {
                    (
                        k.to_string(),
                        json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
                    )
                })
                .collect(),
        ),
        _ => Json::Null,
    }
}

fn file(f: &WireDataFile) -> Json {
    json!({
        "path": f.file_path, "format": f.file_format, "content": f.content, "spec_id": f.spec_id,
        "record_count": f.record_count, "file_size": f.file_size_in_bytes,
        "partition": f.partition.iter().map(literal).collect::<Vec<_>>(),
        "column_sizes": pairs(&f.column_sizes), "value_counts": pairs(&f.value_counts),
        "null_value_counts": pairs(&f.null_value_counts), "nan_value_counts": pairs(&f.nan_value_counts),
        "lower_bounds": hex_pairs(&f.lower_bounds), "upper_bounds": hex_pairs(&f.upper_bounds),
        "split_offsets": f.split_offsets, "equality_ids": f.equality_ids, "sort_order_id": f.sort_order_id,
    })
}

fn table(t: &TableReference) -> Json {
    json!({"catalog": t.catalog, "namespace": t.namespace, "name": t.name, "uuid": t.table_uuid.map(|u| u.to_string())})
}

fn canonical(e: &Event) -> Json {
    let (type_id, payload) = match &e.payload {
        Payload::StartCommit { commit_id } => (
            0,
            json!({"kind": "StartCommit", "commit_id": commit_id.to_string()}),
        ),
        Payload::DataWritten {
            commit_id,
            table_reference,
            data_files,
            delete_files,
            ..
        } => (
            1,
            json!({
                "kind": "DataWritten", "commit_id": commit_id.to_string(), "table": table(table_reference),
                "data_files": data_files.iter().map(file).collect::<Vec<_>>(),
                "delete_files": delete_files.iter().map(file).collect::<Vec<_>>(),
            }),
        ),
        Payload::DataComplete {
            commit_id,
            assignments,
        } => (
            2,
            json!({
                "kind": "DataComplete", "commit_id": commit_id.to_string(),
                "assignments": assignments.iter().map(|a| json!({
                    "topic": a.topic, "partition": a.partition, "offset": a.offset, "timestamp_micros": a.timestamp_micros,
                })).collect::<Vec<_>>(),
            }),
        ),
        Payload::CommitToTable {
            commit_id,
            table_reference,
            snapshot_id,
            valid_through_ts_micros,
        } => (
            3,
            json!({
                "kind": "CommitToTable", "commit_id": commit_id.to_string(), "table": table(table_reference),
                "snapshot_id": snapshot_id, "valid_through_micros": valid_through_ts_micros,
            }),
        ),
        Payload::CommitComplete {
            commit_id,
            valid_through_ts_micros,
        } => (
            4,
            json!({
                "kind": "CommitComplete", "commit_id": commit_id.to_string(), "valid_through_micros": valid_through_ts_micros,
            }),
        ),
    };
    json!({"id": e.id.to_string(), "type": type_id, "timestamp_micros": e.timestamp_micros, "group_id": e.group_id, "payload": payload})
}

fn lines(text: &str) -> Vec<(String, Json)> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, body) = l.split_once('\t').expect("name<TAB>json");
            (name.to_string(), serde_json::from_str(body).expect("json"))
        })
        .collect()
}

fn floe_events() -> Vec<Event> {
    let commit_id = Uuid::parse_str("6f1c2a3e-0000-4000-8000-00000000f10e").unwrap();
    let reference = TableReference {
        catalog: "iceberg".into(),
        namespace: vec!["db".into(), "sub".into()],
        name: "events".into(),
        table_uuid: Some(Uuid::parse_str("0a0b0c0d-0000-4000-8000-000000000002").unwrap()),
    };
    let partition_type = StructType::new(vec![
        Arc::new(NestedField::optional(
            1000,
            "kind",
            Type::Primitive(PrimitiveType::String),
        )),
        Arc::new(NestedField::optional(
            1001,
            "ts_day",
            Type::Primitive(PrimitiveType::Date),
        )),
        Arc::new(NestedField::optional(
            1002,
            "id_bucket",
            Type::Primitive(PrimitiveType::Int),
        )),
        Arc::new(NestedField::optional(
            1003,
            "name_trunc",
            Type::Primitive(PrimitiveType::String),
        )),
        Arc::new(NestedField::optional(
            1004,
            "n",
            Type::Primitive(PrimitiveType::Long),
        )),
    ]);
    let file = WireDataFile {
        content: 0,
        file_path: "file:///wh/db/sub/events/data/00001-1-x-00000.parquet".into(),
        file_format: "PARQUET".into(),
        spec_id: Some(0),
        partition: vec![
            Some(Literal::string("a")),
            Some(Literal::Primitive(PrimitiveLiteral::Int(19_922))),
            Some(Literal::Primitive(PrimitiveLiteral::Int(3))),
            Some(Literal::string("abcd")),
            None,
        ],
        record_count: 10,
        file_size_in_bytes: 4321,
        column_sizes: Some(vec![(1, 100), (3, 30)]),
        value_counts: Some(vec![(1, 10)]),
        null_value_counts: Some(vec![(1, 0), (3, 2)]),
        nan_value_counts: None,
        lower_bounds: Some(vec![(1, 1i64.to_le_bytes().to_vec())]),
        upper_bounds: Some(vec![(1, 9i64.to_le_bytes().to_vec())]),
        key_metadata: None,
        split_offsets: Some(vec![4]),
        equality_ids: None,
        sort_order_id: None,
        first_row_id: None,
        referenced_data_file: None,
        content_offset: None,
        content_size_in_bytes: None,
    };
    let event = |payload| Event {
        id: Uuid::new_v4(),
        timestamp_micros: 1_721_306_096_789_000,
        group_id: "connect-ice".into(),
        payload,
    };
    vec![
        event(Payload::StartCommit { commit_id }),
        event(Payload::DataWritten {
            commit_id,
            table_reference: reference.clone(),
            partition_type,
            data_files: vec![
                file.clone(),
                WireDataFile {
                    file_path: "file:///wh/b.parquet".into(),
                    ..file
                },
            ],
            delete_files: vec![],
        }),
        event(Payload::DataWritten {
            commit_id,
            table_reference: reference.clone(),
            partition_type: StructType::new(vec![]),
            data_files: vec![],
            delete_files: vec![],
        }),
        event(Payload::DataComplete {
            commit_id,
            assignments: vec![
                TopicPartitionOffset {
                    topic: "events".into(),
                    partition: 0,
                    offset: Some(42),
                    timestamp_micros: Some(1_721_306_096_789_000),
                },
                TopicPartitionOffset {
                    topic: "events".into(),
                    partition: 1,
                    offset: None,
                    timestamp_micros: None,
                },
            ],
        }),
        event(Payload::CommitToTable {
            commit_id,
            table_reference: reference.clone(),
            snapshot_id: Some(123),
            valid_through_ts_micros: Some(1_721_306_096_789_000),
        }),
        event(Payload::CommitToTable {
            commit_id,
            table_reference: reference,
            snapshot_id: None,
            valid_through_ts_micros: None,
        }),
        event(Payload::CommitComplete {
            commit_id,
            valid_through_ts_micros: Some(1_721_306_096_789_000),
        }),
        event(Payload::CommitComplete {
            commit_id,
            valid_through_ts_micros: None,
        }),
    ]
}

#[test]
fn java_and_floe_read_each_others_events() {
    let Some(runner) = runner() else {
        eprintln!("FLOE_INTEROP_JAVA is not set: the Java interop test was skipped");
        return;
    };
    let dir = std::env::temp_dir().join(format!("floe-interop-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();

    // Java writes, Floe reads.
    java(&runner, "write", &dir);
    let expected = lines(&std::fs::read_to_string(dir.join("java-expected.jsonl")).unwrap());
    assert_eq!(expected.len(), 7);
    for (name, want) in &expected {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let event = decode(&bytes).unwrap_or_else(|e| panic!("Floe cannot decode {name}: {e}"));
        assert_eq!(canonical(&event), *want, "{name}");
    }

    // Floe writes, Java reads.
    let floe_dir = dir.join("floe");
    std::fs::create_dir_all(&floe_dir).unwrap();
    let events = floe_events();
    for (i, e) in events.iter().enumerate() {
        std::fs::write(
            floe_dir.join(format!("floe-{i:02}.bin")),
            encode(e).unwrap(),
        )
        .unwrap();
    }
    let read = lines(&java(&runner, "read", &floe_dir));
    assert_eq!(read.len(), events.len());
    for ((name, got), e) in read.iter().zip(&events) {
        assert_eq!(*got, canonical(e), "Java read {name} differently");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
