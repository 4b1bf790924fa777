//! Files written under an older partition spec — another writer evolved the table's spec
//! while a task was writing — are committed as Java commits them: in a manifest of their own
//! spec, beside the files of the current one, against a real SQL catalog on SQLite and a local
//! warehouse. Before, they were handed to iceberg's fast append, which refuses a file of
//! another spec than the default, and the coordinator failed the connector.

use std::collections::{BTreeMap, HashMap};

use arrow_array::Int64Array;
use floe_data::Value;
use floe_iceberg::arrow::{records_to_batch, Cell, Lookup};
use floe_iceberg::catalog::{load_catalog, CatalogHandle};
use floe_iceberg::delta::resolve::KeyIndexCache;
use floe_iceberg::events::WireDataFile;
use floe_iceberg::schema::schema_for_record;
use floe_iceberg::table_commit::CommitOutcome;
use floe_iceberg::writer::TableWriter;
use futures::TryStreamExt;
use iceberg::spec::{DataFile, Operation, Transform, UnboundPartitionSpec};
use iceberg::table::Table;
use iceberg::{NamespaceIdent, TableCreation, TableIdent, TableRequirement, TableUpdate};

fn row(id: i64) -> Value {
    Value::Map(vec![(Value::String("id".into()), Value::Int64(id))])
}

fn ident() -> TableIdent {
    TableIdent::from_strs(["db", "events"]).unwrap()
}

async fn reload(catalog: &CatalogHandle) -> Table {
    catalog.load_table(&ident()).await.unwrap()
}

/// Writes `ids` with the table's current default spec; the files are not committed.
async fn write(table: &Table, ids: std::ops::Range<i64>) -> Vec<DataFile> {
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
    let dir = std::env::temp_dir().join(format!("floe-older-spec-{}", uuid::Uuid::new_v4()));
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
    let schema = schema_for_record(None, &row(0), false).unwrap();
    let id_field = schema.field_by_name("id").unwrap().id;
    let creation = TableCreation::builder()
        .name("events".into())
        .schema(schema)
        .partition_spec(
            UnboundPartitionSpec::builder()
                .add_partition_field(id_field, "id_bucket", Transform::Bucket(4))
                .unwrap()
                .build(),
        )
        .format_version(iceberg::spec::FormatVersion::V2)
        .build();
    catalog.create_table(&ns, creation).await.unwrap();

    // A task writes under spec 0 (bucket(id, 4))...
    let before = reload(&catalog).await;
    assert_eq!(before.metadata().default_partition_spec_id(), 0);
    let old_files = write(&before, 0..20).await;
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
    let new_files = write(&evolved, 20..30).await;
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
    assert_eq!(ids(&table).await, (0..30).collect::<Vec<_>>());
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
    let more: Vec<DataFile> = write(&table, 30..35)
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
        ids(&reload(&catalog).await).await,
        (0..35).collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
