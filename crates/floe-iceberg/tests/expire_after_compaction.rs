//! Snapshot expiry after a compaction, against a real SQL catalog on SQLite and a local
//! warehouse. The compaction's `replace` snapshot lists the files it rewrote as DELETED, and
//! the appends after it carry its manifest on: those entries record a removal, they reach
//! nothing. Once the appends that added the files expire, no kept snapshot reaches them and
//! expiry deletes them (Java's `ReachableFileCleanup`); a file that only such a DELETED entry
//! still names goes when the snapshot that deleted it expires (Java's
//! `IncrementalFileCleanup`). Every file a kept snapshot reads stays.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{append_ids, catalog_with_table, ids_at, parquet_files, reload};
use floe_iceberg::catalog::CatalogHandle;
use floe_iceberg::maintenance::compact::{compact, CompactOptions};
use floe_iceberg::maintenance::expire::{expire, ExpireOptions};
use iceberg::TableUpdate;

/// A table of five appends (ids 0..50, a file each), compacted into one file by a `replace`
/// snapshot, then a sixth append (ids 50..60) that carries the compaction's manifest on.
async fn appended_compacted_appended() -> (PathBuf, CatalogHandle) {
    let (dir, catalog) = catalog_with_table("expire", None).await;
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
