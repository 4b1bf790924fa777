//! Compaction racing other commits, against a real SQL catalog on SQLite and a local warehouse:
//! a compaction planned on a table that another writer has since appended to is rebased onto
//! the append; one that meets another rewrite gives up and deletes its files. Every row stays
//! exactly once.

mod common;

use common::{append_ids, catalog_with_table, ids_at, parquet_files, reload};
use floe_iceberg::maintenance::compact::{compact, CompactOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_rebases_onto_appends_and_gives_up_on_a_rewrite() {
    let (dir, catalog) = catalog_with_table("compact-race", None).await;
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
    assert_eq!(ids_at(&table, None).await, (0..60).collect::<Vec<_>>());
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
    assert_eq!(ids_at(&table, None).await, (0..110).collect::<Vec<_>>());
    std::fs::remove_dir_all(&dir).unwrap();
}
