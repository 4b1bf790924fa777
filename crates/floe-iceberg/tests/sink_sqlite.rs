//! Writer and commit path against a real SQL catalog on SQLite and a local warehouse: records
//! converted to Arrow, written to Parquet, appended with the Java summary keys, read back by a
//! table scan.

use std::collections::{BTreeMap, HashMap};

use arrow_array::{Array, Int64Array, StringArray};
use floe_data::Value;
use floe_iceberg::arrow::{records_to_batch, Cell, Lookup};
use floe_iceberg::catalog::load_catalog;
use floe_iceberg::schema::schema_for_record;
use floe_iceberg::table_commit::{append, CommitOutcome};
use floe_iceberg::writer::TableWriter;
use futures::TryStreamExt;
use iceberg::{NamespaceIdent, TableCreation, TableIdent};

fn row(id: i64, name: &str) -> Value {
    Value::Map(vec![
        (Value::String("id".into()), Value::Int64(id)),
        (Value::String("name".into()), Value::String(name.into())),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_appends_with_summary_keys() {
    let dir = std::env::temp_dir().join(format!("floe-sink-test-{}", uuid::Uuid::new_v4()));
    let props = BTreeMap::from([
        ("type".to_string(), "jdbc".to_string()),
        (
            "uri".to_string(),
            format!("jdbc:sqlite:{}", dir.join("catalog.db").display()),
        ),
        (
            "warehouse".to_string(),
            dir.join("warehouse").display().to_string(),
        ),
    ]);
    let catalog = load_catalog("iceberg", &props).await.unwrap();
    let rows = [row(1, "a"), row(2, "b"), row(3, "c")];
    let schema = schema_for_record(None, &rows[0], false).unwrap();
    let ns = NamespaceIdent::new("db".into());
    catalog.create_namespace(&ns, HashMap::new()).await.unwrap();
    let creation = TableCreation::builder()
        .name("events".into())
        .schema(schema)
        .build();
    let table = catalog.create_table(&ns, creation).await.unwrap();

    let mut writer = TableWriter::open("db.events", table.clone(), &BTreeMap::new())
        .await
        .unwrap();
    let cells: Vec<Cell<'_>> = rows
        .iter()
        .map(|v| Cell {
            schema: None,
            value: v,
        })
        .collect();
    let batch = records_to_batch(
        table.metadata().current_schema(),
        writer.arrow_schema(),
        &cells,
        &Lookup::by_name(false),
    )
    .unwrap();
    writer.write(batch).await.unwrap();
    let files = writer.close().await.unwrap();
    assert_eq!(files.iter().map(|f| f.record_count()).sum::<u64>(), 3);

    let summary = HashMap::from([
        (
            "kafka.connect.commit-id".to_string(),
            "c0ffee00-0000-4000-8000-000000000000".to_string(),
        ),
        ("kafka.connect.task-id".to_string(), "ice-0".to_string()),
    ]);
    let outcome = append(&catalog, &table, files, vec![], summary, None)
        .await
        .unwrap();
    let CommitOutcome::Committed(snapshot_id) = outcome else {
        panic!("unexpected outcome {outcome:?}")
    };

    let table = catalog
        .load_table(&TableIdent::from_strs(["db", "events"]).unwrap())
        .await
        .unwrap();
    let snapshot = table.metadata().current_snapshot().unwrap();
    assert_eq!(snapshot.snapshot_id(), snapshot_id);
    let props = &snapshot.summary().additional_properties;
    assert_eq!(props["kafka.connect.task-id"], "ice-0");
    assert_eq!(
        props["kafka.connect.commit-id"],
        "c0ffee00-0000-4000-8000-000000000000"
    );
    assert_eq!(props["added-records"], "3");

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
    let mut out = Vec::new();
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
            out.push((ids.value(i), names.value(i).to_string()));
        }
    }
    out.sort();
    assert_eq!(
        out,
        vec![
            (1, "a".to_string()),
            (2, "b".to_string()),
            (3, "c".to_string())
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
