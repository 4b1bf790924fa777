//! What the table-layer tests share: a SQL catalog on SQLite with a local warehouse in a
//! directory of its own, table `db.events` of `id` longs, and writing, appending and reading
//! its ids. Each test binary uses part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use arrow_array::Int64Array;
use floe_data::Value;
use floe_iceberg::arrow::{records_to_batch, Cell, Lookup};
use floe_iceberg::catalog::{load_catalog, CatalogHandle};
use floe_iceberg::schema::schema_for_record;
use floe_iceberg::table_commit::{append, CommitOutcome};
use floe_iceberg::writer::TableWriter;
use futures::TryStreamExt;
use iceberg::spec::{DataFile, UnboundPartitionSpec};
use iceberg::table::Table;
use iceberg::{NamespaceIdent, TableCreation, TableIdent};

/// A record of the table: `{"id": id}`.
pub fn row(id: i64) -> Value {
    Value::Map(vec![(Value::String("id".into()), Value::Int64(id))])
}

pub fn ident() -> TableIdent {
    TableIdent::from_strs(["db", "events"]).unwrap()
}

pub async fn reload(catalog: &CatalogHandle) -> Table {
    catalog.load_table(&ident()).await.unwrap()
}

/// The schema the sink infers from [`row`]: one optional long, `id`.
pub fn row_schema() -> iceberg::spec::Schema {
    schema_for_record(None, &row(0), false).unwrap()
}

/// A SQL catalog on SQLite in a new directory named after `test`, with namespace `db` and
/// table `db.events` (format version 2, partitioned by `spec` when given).
pub async fn catalog_with_table(
    test: &str,
    spec: Option<UnboundPartitionSpec>,
) -> (PathBuf, CatalogHandle) {
    let dir = std::env::temp_dir().join(format!("floe-{test}-{}", uuid::Uuid::new_v4()));
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
        .schema(row_schema())
        .format_version(iceberg::spec::FormatVersion::V2);
    let creation = match spec {
        Some(spec) => creation.partition_spec(spec).build(),
        None => creation.build(),
    };
    catalog.create_table(&ns, creation).await.unwrap();
    (dir, catalog)
}

/// Writes `ids` with the table's current default spec; the files are not committed.
pub async fn write_ids(table: &Table, ids: std::ops::Range<i64>) -> Vec<DataFile> {
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
    writer.close().await.unwrap()
}

/// Appends one file holding `ids`.
pub async fn append_ids(catalog: &CatalogHandle, ids: std::ops::Range<i64>) {
    let table = reload(catalog).await;
    let files = write_ids(&table, ids).await;
    let outcome = append(catalog, &table, files, vec![], HashMap::new(), None)
        .await
        .unwrap();
    assert!(
        matches!(outcome, CommitOutcome::Committed(_)),
        "{outcome:?}"
    );
}

/// The ids of the table at `snapshot_id` (the current snapshot when None), sorted.
pub async fn ids_at(table: &Table, snapshot_id: Option<i64>) -> Vec<i64> {
    let mut scan = table.scan().select_all();
    if let Some(id) = snapshot_id {
        scan = scan.snapshot_id(id);
    }
    let batches: Vec<_> = scan
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

/// The Parquet files below `dir`.
pub fn parquet_files(dir: &Path) -> usize {
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
