//! Snapshot expiry after a compaction, against a real SQL catalog on SQLite and a local
//! warehouse. The compaction's `replace` snapshot lists the files it rewrote as DELETED, and
//! the appends after it carry its manifest on: those entries record a removal, they reach
//! nothing. Once the appends that added the files expire, no kept snapshot reaches them and
//! expiry deletes them (Java's `ReachableFileCleanup`); a file that only such a DELETED entry
//! still names goes when the snapshot that deleted it expires (Java's
//! `IncrementalFileCleanup`). Every file a kept snapshot reads stays.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow_array::Int64Array;
use floe_data::Value;
use floe_iceberg::arrow::{records_to_batch, Cell, Lookup};
use floe_iceberg::catalog::{load_catalog, CatalogHandle};
use floe_iceberg::maintenance::compact::{compact, CompactOptions};
use floe_iceberg::maintenance::expire::{expire, ExpireOptions};
use floe_iceberg::schema::schema_for_record;
use floe_iceberg::table_commit::{append, CommitOutcome};
use floe_iceberg::writer::TableWriter;
use futures::TryStreamExt;
use iceberg::table::Table;
use iceberg::{NamespaceIdent, TableCreation, TableIdent, TableUpdate};

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

async fn ids_at(table: &Table, snapshot_id: Option<i64>) -> Vec<i64> {
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

/// A table of five appends (ids 0..50, a file each), compacted into one file by a `replace`
/// snapshot, then a sixth append (ids 50..60) that carries the compaction's manifest on.
async fn appended_compacted_appended() -> (PathBuf, CatalogHandle) {
    let dir = std::env::temp_dir().join(format!("floe-expire-{}", uuid::Uuid::new_v4()));
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
    let table = reload(&catalog).await;
    let report = compact(&catalog, &table, &CompactOptions::for_table(&table, None))
        .await
        .unwrap();
    assert_eq!(
        (report.data_files_rewritten, report.data_files_written),
        (5, 1),
        "{report:?}"
    );
    append_ids(&catalog, 50..60).await;
    assert_eq!(parquet_files(&dir), 7);
    // Expiry with a max age of 0 takes the snapshots strictly older than now.
    tokio::time::sleep(Duration::from_millis(20)).await;
    (dir, catalog)
}

fn keep(min_to_keep: usize) -> ExpireOptions {
    ExpireOptions {
        max_age: Duration::ZERO,
        min_to_keep,
        max_ref_age: None,
        dry_run: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_deletes_the_files_a_kept_compaction_rewrote() {
    let (dir, catalog) = appended_compacted_appended().await;
    let table = reload(&catalog).await;
    let compaction = table
        .metadata()
        .current_snapshot()
        .unwrap()
        .parent_snapshot_id()
        .unwrap();

    // The five appends go; the compaction and the last append stay. The five files the
    // appends added are DELETED in the compaction's manifest, which both kept snapshots list:
    // no kept snapshot reads them, so they go with the appends.
    let report = expire(&catalog, &table, &keep(2)).await.unwrap();
    assert_eq!(
        (report.snapshots_expired, report.snapshots_kept),
        (5, 2),
        "{report:?}"
    );
    assert_eq!(report.files_deleted, 5, "{report:?}");
    assert_eq!(
        parquet_files(&dir),
        2,
        "the compacted file and the last append's stay"
    );
    let table = reload(&catalog).await;
    assert_eq!(ids_at(&table, None).await, (0..60).collect::<Vec<_>>());
    assert_eq!(
        ids_at(&table, Some(compaction)).await,
        (0..50).collect::<Vec<_>>(),
        "the kept compaction still reads"
    );

    // The compaction goes too: the last append still reads both files.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = expire(&catalog, &table, &keep(1)).await.unwrap();
    assert_eq!(
        (report.snapshots_expired, report.files_deleted),
        (1, 0),
        "{report:?}"
    );
    assert_eq!(parquet_files(&dir), 2);
    assert_eq!(
        ids_at(&reload(&catalog).await, None).await,
        (0..60).collect::<Vec<_>>()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_only_a_deleted_entry_names_goes_when_the_snapshot_that_deleted_it_expires() {
    let (dir, catalog) = appended_compacted_appended().await;
    // The five appends removed without their files (as an expiry that counted DELETED entries
    // as reached left them): the five rewritten files are named only by the compaction's
    // DELETED entries, in the manifest the last append carries on.
    let table = reload(&catalog).await;
    let head = table.metadata().current_snapshot().unwrap();
    let compaction = head.parent_snapshot_id().unwrap();
    let appends: Vec<i64> = table
        .metadata()
        .snapshots()
        .map(|s| s.snapshot_id())
        .filter(|id| *id != head.snapshot_id() && *id != compaction)
        .collect();
    assert_eq!(appends.len(), 5);
    catalog
        .committer()
        .commit(
            &table,
            vec![],
            vec![TableUpdate::RemoveSnapshots {
                snapshot_ids: appends,
            }],
        )
        .await
        .unwrap();
    assert_eq!(parquet_files(&dir), 7);

    // The compaction expires: the files it deleted go, the two the last append reads stay.
    let table = reload(&catalog).await;
    let report = expire(&catalog, &table, &keep(1)).await.unwrap();
    assert_eq!(
        (report.snapshots_expired, report.files_deleted),
        (1, 5),
        "{report:?}"
    );
    assert_eq!(parquet_files(&dir), 2);
    assert_eq!(
        ids_at(&reload(&catalog).await, None).await,
        (0..60).collect::<Vec<_>>()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
