//! The sink task end to end against a real SQL catalog on SQLite and a local warehouse: records
//! in, a committed snapshot with the Java summary keys out, rows read back by a table scan.

use std::collections::BTreeMap;

use arrow_array::{Array, Int64Array, StringArray};
use floe_connect::{ConfigMap, SinkConnector, TaskContext};
use floe_data::{SinkRecord, TopicPartition, Value};
use floe_iceberg::catalog::load_catalog;
use floe_iceberg::IcebergSinkConnector;
use futures::TryStreamExt;
use iceberg::TableIdent;

fn record(offset: i64, id: i64, name: &str) -> SinkRecord {
    SinkRecord {
        topic: "events".into(),
        partition: 0,
        offset,
        timestamp: Some(1_721_306_096_789 + offset),
        key_schema: None,
        key: Value::Null,
        value_schema: None,
        value: Value::Map(vec![
            (Value::String("id".into()), Value::Int64(id)),
            (Value::String("name".into()), Value::String(name.into())),
        ]),
        headers: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_records_with_summary_keys() {
    let dir = std::env::temp_dir().join(format!("floe-sink-test-{}", uuid::Uuid::new_v4()));
    let db = dir.join("catalog.db");
    let warehouse = dir.join("warehouse");
    let config: ConfigMap = BTreeMap::from([
        ("name".to_string(), "ice".to_string()),
        (
            "connector.class".to_string(),
            floe_iceberg::CONNECTOR_CLASS.to_string(),
        ),
        ("iceberg.catalog.type".to_string(), "jdbc".to_string()),
        (
            "iceberg.catalog.uri".to_string(),
            format!("jdbc:sqlite:{}", db.display()),
        ),
        (
            "iceberg.catalog.warehouse".to_string(),
            warehouse.display().to_string(),
        ),
        ("iceberg.tables".to_string(), "db.events".to_string()),
        (
            "iceberg.tables.auto-create-enabled".to_string(),
            "true".to_string(),
        ),
    ]);
    let connector = IcebergSinkConnector;
    assert!(connector.validate(&config).is_empty());
    let task_config = connector.task_configs(&config, 1).remove(0);
    let mut task = connector.create_task();
    task.start(
        &task_config,
        TaskContext::new("ice", 0, "connect-ice", BTreeMap::new()),
    )
    .await
    .unwrap();
    task.put(vec![record(0, 1, "a"), record(1, 2, "b")])
        .await
        .unwrap();
    task.put(vec![record(2, 3, "c")]).await.unwrap();
    let current = BTreeMap::from([(TopicPartition::new("events", 0), 3)]);
    let committed = task.pre_commit(&current, true).await.unwrap();
    assert_eq!(committed, current);
    task.stop().await.unwrap();

    let catalog = load_catalog(
        "iceberg",
        &BTreeMap::from([
            ("type".to_string(), "jdbc".to_string()),
            ("uri".to_string(), format!("jdbc:sqlite:{}", db.display())),
            ("warehouse".to_string(), warehouse.display().to_string()),
        ]),
    )
    .await
    .unwrap();
    let table = catalog
        .load_table(&TableIdent::from_strs(["db", "events"]).unwrap())
        .await
        .unwrap();
    let snapshot = table.metadata().current_snapshot().unwrap();
    let summary = &snapshot.summary().additional_properties;
    assert_eq!(summary["kafka.connect.task-id"], "ice-0");
    assert_eq!(
        summary["kafka.connect.valid-through-ts"],
        "2024-07-18T12:34:56.791Z"
    );
    assert!(uuid::Uuid::parse_str(&summary["kafka.connect.commit-id"]).is_ok());
    assert_eq!(summary["added-records"], "3");

    let batches: Vec<_> = table
        .scan()
        .select_all()
        .build()
        .unwrap()
        .to_arrow()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut rows = Vec::new();
    for b in &batches {
        let ids = b
            .column_by_name("id")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let names = b
            .column_by_name("name")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        for i in 0..b.num_rows() {
            assert!(!ids.is_null(i));
            rows.push((ids.value(i), names.value(i).to_string()));
        }
    }
    rows.sort();
    assert_eq!(
        rows,
        vec![
            (1, "a".to_string()),
            (2, "b".to_string()),
            (3, "c".to_string())
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
