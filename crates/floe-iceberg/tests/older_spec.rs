//! Files written under an older partition spec — another writer evolved the table's spec
//! while a task was writing — are committed as Java commits them: in a manifest of their own
//! spec, beside the files of the current one, against a real SQL catalog on SQLite and a local
//! warehouse. Before, they were handed to iceberg's fast append, which refuses a file of
//! another spec than the default, and the coordinator failed the connector.

mod common;

use std::collections::HashMap;

use common::{catalog_with_table, ids_at, reload, write_ids};
use floe_iceberg::catalog::CatalogHandle;
use floe_iceberg::delta::resolve::KeyIndexCache;
use floe_iceberg::events::WireDataFile;
use floe_iceberg::table_commit::CommitOutcome;
use iceberg::spec::{DataFile, Operation, Transform, UnboundPartitionSpec};
use iceberg::table::Table;
use iceberg::{TableRequirement, TableUpdate};

async fn commit(
    catalog: &CatalogHandle,
    table: &Table,
    files: Vec<DataFile>,
    specs: &HashMap<String, i32>,
) -> CommitOutcome {
    floe_iceberg::delta::commit(
        catalog,
        table,
        vec![(files, Vec::new())],
        specs,
        HashMap::new(),
        None,
        &mut KeyIndexCache::default(),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_an_older_spec_are_committed_under_it() {
    let id_field = common::row_schema().field_by_name("id").unwrap().id;
    let (dir, catalog) = catalog_with_table(
        "older-spec",
        Some(
            UnboundPartitionSpec::builder()
                .add_partition_field(id_field, "id_bucket", Transform::Bucket(4))
                .unwrap()
                .build(),
        ),
    )
    .await;

    // A task writes under spec 0 (bucket(id, 4))...
    let before = reload(&catalog).await;
    assert_eq!(before.metadata().default_partition_spec_id(), 0);
    let old_files = write_ids(&before, 0..20).await;
    assert!(old_files.len() > 1, "one file per bucket");
    // ...while another writer makes the table unpartitioned (spec 1).
    catalog
        .committer()
        .commit(
            &before,
            vec![TableRequirement::UuidMatch {
                uuid: before.metadata().uuid(),
            }],
            vec![
                TableUpdate::AddSpec {
                    spec: UnboundPartitionSpec::builder().build(),
                },
                TableUpdate::SetDefaultSpec { spec_id: -1 },
            ],
        )
        .await
        .unwrap();
    let evolved = reload(&catalog).await;
    assert_eq!(evolved.metadata().default_partition_spec_id(), 1);

    // The coordinator commits the old files under spec 0, with files of spec 1 beside them.
    let new_files = write_ids(&evolved, 20..30).await;
    let mut specs: HashMap<String, i32> = old_files
        .iter()
        .map(|f| (f.file_path().to_string(), 0))
        .collect();
    specs.extend(new_files.iter().map(|f| (f.file_path().to_string(), 1)));
    let files: Vec<DataFile> = old_files.into_iter().chain(new_files).collect();
    let outcome = commit(&catalog, &evolved, files, &specs).await;
    assert!(
        matches!(outcome, CommitOutcome::Committed(_)),
        "{outcome:?}"
    );
    let table = reload(&catalog).await;
    assert_eq!(ids_at(&table, None).await, (0..30).collect::<Vec<_>>());
    let snapshot = table.metadata().current_snapshot().unwrap();
    assert_eq!(snapshot.summary().operation, Operation::Append);
    let manifests = floe_iceberg::snapshot::manifests_of(&table, snapshot)
        .await
        .unwrap();
    let mut manifest_specs: Vec<i32> = manifests.iter().map(|m| m.partition_spec_id).collect();
    manifest_specs.sort_unstable();
    assert_eq!(manifest_specs, vec![0, 1]);

    // Files of the default spec alone still take the plain append, announced as a task
    // announces them (the wire form carries the spec id).
    let schema = table.metadata().current_schema().clone();
    let more: Vec<DataFile> = write_ids(&table, 30..35)
        .await
        .iter()
        .map(|f| {
            WireDataFile::from_data_file(f, 1)
                .and_then(|w| w.to_data_file(&schema, 1))
                .unwrap()
        })
        .collect();
    let outcome = commit(&catalog, &table, more, &HashMap::new()).await;
    assert!(
        matches!(outcome, CommitOutcome::Committed(_)),
        "{outcome:?}"
    );
    assert_eq!(
        ids_at(&reload(&catalog).await, None).await,
        (0..35).collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
