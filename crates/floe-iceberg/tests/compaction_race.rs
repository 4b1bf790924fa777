//! Compaction racing other commits, against a real SQL catalog on SQLite and a local warehouse:
//! a compaction planned on a table that another writer has since appended to is rebased onto
//! the append; one that meets another rewrite gives up and deletes its files. Every row stays
//! exactly once.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use arrow_array::Int64Array;
use floe_data::Value;
use floe_iceberg::arrow::{records_to_batch, Cell, Lookup};
use floe_iceberg::catalog::{load_catalog, CatalogHandle};
use floe_iceberg::maintenance::compact::{compact, CompactOptions};
use floe_iceberg::schema::schema_for_record;
use floe_iceberg::table_commit::{append, CommitOutcome};
use floe_iceberg::writer::TableWriter;
use futures::TryStreamExt;
use iceberg::table::Table;
use iceberg::{NamespaceIdent, TableCreation, TableIdent};

fn row(id: i64) -> Value {
    Value::Map(vec![(Value::String("id".into()), Value::Int64(id))])
}

fn ident() -> TableIdent {
    TableIdent::from_strs(["db", "events"]).unwrap()
}

async fn reload(catalog: &CatalogHandle) -> Table {
    catalog.load_table(&ident()).await.unwrap()
}

/// Appends one file holding `ids`.
async fn append_ids(catalog: &CatalogHandle, ids: std::ops::Range<i64>) {
    let table = reload(catalog).await;
    let mut writer = TableWriter::open("db.events", table.clone(), &BTreeMap::new())
        .await
        .unwrap();
    let rows: Vec<Value> = ids.map(row).collect();
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
    let outcome = append(catalog, &table, files, vec![], HashMap::new(), None)
        .await
        .unwrap();
    assert!(
        matches!(outcome, CommitOutcome::Committed(_)),
        "{outcome:?}"
    );
}

async fn ids(table: &Table) -> Vec<i64> {
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
        let col = b
            .column_by_name("id")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        out.extend(col.iter().flatten());
    }
    out.sort_unstable();
    out
}

fn parquet_files(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                n += 1;
            }
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_rebases_onto_appends_and_gives_up_on_a_rewrite() {
    let dir = std::env::temp_dir().join(format!("floe-compact-race-{}", uuid::Uuid::new_v4()));
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
    let ns = NamespaceIdent::new("db".into());
    catalog.create_namespace(&ns, HashMap::new()).await.unwrap();
    let creation = TableCreation::builder()
        .name("events".into())
        .schema(schema_for_record(None, &row(0), false).unwrap())
        .format_version(iceberg::spec::FormatVersion::V2)
        .build();
    catalog.create_table(&ns, creation).await.unwrap();
    for i in 0..5 {
        append_ids(&catalog, i * 10..i * 10 + 10).await;
    }

    // Planned on 5 appends; a sixth lands before its commit: the commit is rebased onto it.
    let planned_on = reload(&catalog).await;
    append_ids(&catalog, 50..60).await;
    let options = CompactOptions::for_table(&planned_on, None);
    let report = compact(&catalog, &planned_on, &options).await.unwrap();
    assert_eq!(report.rebased, 1, "{report:?}");
    assert_eq!(
        (report.data_files_rewritten, report.data_files_written),
        (5, 1)
    );
    let table = reload(&catalog).await;
    let head = table.metadata().current_snapshot().unwrap();
    assert_eq!(head.summary().operation, iceberg::spec::Operation::Replace);
    assert_eq!(ids(&table).await, (0..60).collect::<Vec<_>>());
    let files = table.metadata().current_snapshot().unwrap().summary();
    assert_eq!(files.additional_properties["total-data-files"], "2");

    // Planned on a table another compaction has rewritten since: it gives up, and the files
    // it wrote are gone.
    for i in 6..11 {
        append_ids(&catalog, i * 10..i * 10 + 10).await;
    }
    let planned_on = reload(&catalog).await;
    let first = compact(&catalog, &reload(&catalog).await, &options)
        .await
        .unwrap();
    assert!(first.snapshot_id.is_some(), "{first:?}");
    let on_disk = parquet_files(&dir);
    let late = compact(&catalog, &planned_on, &options).await.unwrap();
    assert_eq!(late.snapshot_id, None);
    let why = late.skipped.unwrap_or_default();
    assert!(why.contains("not an append"), "{why}");
    assert_eq!(
        parquet_files(&dir),
        on_disk,
        "the late compaction's files stay"
    );
    let table = reload(&catalog).await;
    assert_eq!(ids(&table).await, (0..110).collect::<Vec<_>>());
    std::fs::remove_dir_all(&dir).unwrap();
}
