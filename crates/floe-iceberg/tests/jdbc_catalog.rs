//! Floe's SQL catalog on a real SQLite file: the JdbcCatalog table layout (V1 when Floe creates
//! it, V0 as Java's JdbcCatalog creates it by default), namespaces, and the compare-and-set commit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use floe_iceberg::catalog::jdbc::{JdbcCatalog, Layout};
use iceberg::io::{FileIOBuilder, LocalFsStorageFactory};
use iceberg::spec::{NestedField, PrimitiveType, Schema, Type};
use iceberg::{
    Catalog, ErrorKind, NamespaceIdent, TableCreation, TableIdent, TableRequirement, TableUpdate,
};
use sqlx::ConnectOptions;

struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("floe-jdbc-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("warehouse")).unwrap();
        Scratch(dir)
    }
    fn url(&self) -> String {
        format!("sqlite:{}?mode=rwc", self.0.join("catalog.db").display())
    }
    fn warehouse(&self) -> String {
        format!("file://{}", self.0.join("warehouse").display())
    }
    async fn open(&self) -> JdbcCatalog {
        let io = FileIOBuilder::new(Arc::new(LocalFsStorageFactory)).build();
        JdbcCatalog::open("iceberg", &self.url(), 2, &self.warehouse(), io)
            .await
            .unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn schema() -> Schema {
    Schema::builder()
        .with_fields(vec![NestedField::required(
            1,
            "id",
            Type::Primitive(PrimitiveType::Long),
        )
        .into()])
        .build()
        .unwrap()
}

async fn create(catalog: &JdbcCatalog, ns: &str, name: &str) -> TableIdent {
    let ns = NamespaceIdent::new(ns.into());
    if !catalog.namespace_exists(&ns).await.unwrap() {
        catalog.create_namespace(&ns, HashMap::new()).await.unwrap();
    }
    let creation = TableCreation::builder()
        .name(name.into())
        .schema(schema())
        .build();
    catalog.create_table(&ns, creation).await.unwrap();
    TableIdent::new(ns, name.into())
}

fn set_prop(key: &str, value: &str) -> TableUpdate {
    TableUpdate::SetProperties {
        updates: HashMap::from([(key.to_string(), value.to_string())]),
    }
}

#[tokio::test]
async fn new_catalogs_get_the_v1_layout_and_tables_round_trip() {
    let scratch = Scratch::new();
    let catalog = scratch.open().await;
    assert_eq!(catalog.layout(), Layout::V1);
    let ident = create(&catalog, "db", "events").await;

    let table = catalog.load_table(&ident).await.unwrap();
    let location = table.metadata_location().unwrap().to_string();
    assert!(
        location.starts_with(&format!(
            "{}/db/events/metadata/00000-",
            scratch.warehouse()
        )),
        "{location}"
    );
    assert_eq!(
        catalog
            .list_tables(&NamespaceIdent::new("db".into()))
            .await
            .unwrap(),
        vec![ident.clone()]
    );
    assert_eq!(
        catalog.list_namespaces(None).await.unwrap(),
        vec![NamespaceIdent::new("db".into())]
    );
    let again = catalog
        .create_table(
            ident.namespace(),
            TableCreation::builder()
                .name("events".into())
                .schema(schema())
                .build(),
        )
        .await
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::TableAlreadyExists);
    let missing = TableIdent::new(NamespaceIdent::new("db".into()), "nope".into());
    assert_eq!(
        catalog.load_table(&missing).await.unwrap_err().kind(),
        ErrorKind::TableNotFound
    );
}

#[tokio::test]
async fn a_java_v0_catalog_is_used_as_it_is() {
    let scratch = Scratch::new();
    // The tables as Java's JdbcCatalog creates them without jdbc.schema-version=V1.
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(scratch.0.join("catalog.db"))
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    for ddl in [
        "CREATE TABLE iceberg_tables (catalog_name VARCHAR(255) NOT NULL, table_namespace VARCHAR(255) NOT NULL, \
         table_name VARCHAR(255) NOT NULL, metadata_location VARCHAR(1000), previous_metadata_location VARCHAR(1000), \
         PRIMARY KEY (catalog_name, table_namespace, table_name))",
        "CREATE TABLE iceberg_namespace_properties (catalog_name VARCHAR(255) NOT NULL, namespace VARCHAR(255) NOT NULL, \
         property_key VARCHAR(255), property_value VARCHAR(1000), PRIMARY KEY (catalog_name, namespace, property_key))",
    ] {
        sqlx::query(ddl).execute(&mut conn).await.unwrap();
    }
    let catalog = scratch.open().await;
    assert_eq!(catalog.layout(), Layout::V0);
    let ident = create(&catalog, "db", "events").await;
    let committed = catalog
        .commit(&ident, vec![], vec![set_prop("k", "v")])
        .await
        .unwrap();
    assert_eq!(
        committed
            .metadata()
            .properties()
            .get("k")
            .map(String::as_str),
        Some("v")
    );
    // The layout was left as it was: still no iceberg_type column.
    let columns: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info('iceberg_tables')")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert!(!columns.iter().any(|c| c == "iceberg_type"), "{columns:?}");
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT metadata_location, previous_metadata_location FROM iceberg_tables")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].0.contains("/metadata/00001-"), "{rows:?}");
    assert!(
        rows[0]
            .1
            .as_deref()
            .is_some_and(|p| p.contains("/metadata/00000-")),
        "{rows:?}"
    );
}

#[tokio::test]
async fn commits_are_compare_and_set() {
    let scratch = Scratch::new();
    let catalog = scratch.open().await;
    let ident = create(&catalog, "db", "events").await;
    let base = catalog.load_table(&ident).await.unwrap();
    let uuid = base.metadata().uuid();

    // Requirements are checked against the catalog's current state.
    let stale = TableRequirement::UuidMatch {
        uuid: uuid::Uuid::new_v4(),
    };
    let err = catalog
        .commit(&ident, vec![stale], vec![set_prop("a", "1")])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CatalogCommitConflicts);

    // Two committers validated the same state; the second one's requirement no longer holds.
    let head = TableRequirement::RefSnapshotIdMatch {
        r#ref: "main".into(),
        snapshot_id: None,
    };
    let first = catalog
        .commit(
            &ident,
            vec![head.clone()],
            vec![set_prop("writer", "first")],
        )
        .await
        .unwrap();
    let second = catalog
        .commit(
            &ident,
            vec![TableRequirement::UuidMatch { uuid }],
            vec![set_prop("writer", "second")],
        )
        .await
        .unwrap();
    assert_eq!(
        second
            .metadata()
            .properties()
            .get("writer")
            .map(String::as_str),
        Some("second")
    );
    assert!(first.metadata_location() != second.metadata_location());

    // Racing committers: each commit either lands whole or fails as a conflict; no landed
    // commit is lost by a later one.
    let catalog = Arc::new(catalog);
    let racers = (0..8).map(|i| {
        let catalog = catalog.clone();
        let ident = ident.clone();
        tokio::spawn(async move {
            catalog
                .commit(&ident, vec![], vec![set_prop(&format!("racer-{i}"), "1")])
                .await
                .map(|_| i)
        })
    });
    let mut landed = Vec::new();
    for racer in futures::future::join_all(racers).await {
        match racer.unwrap() {
            Ok(i) => landed.push(i),
            Err(e) => assert_eq!(e.kind(), ErrorKind::CatalogCommitConflicts, "{e}"),
        }
    }
    assert!(!landed.is_empty());
    let last = catalog.load_table(&ident).await.unwrap();
    for i in landed {
        assert!(
            last.metadata()
                .properties()
                .contains_key(&format!("racer-{i}")),
            "racer {i} lost"
        );
    }
}

/// What the coordinator relies on to skip a table's files as gone (channel/coordinator.rs,
/// `table_gone`): the catalog says TableNotFound, and `table_exists` says false, only when the
/// table's row is missing. A metadata file that cannot be read, or a SQL statement that fails,
/// is an error of another kind, never a missing table.
#[tokio::test]
async fn a_failed_load_is_not_a_missing_table() {
    let scratch = Scratch::new();
    let catalog = scratch.open().await;
    let ident = create(&catalog, "db", "events").await;

    // The metadata file cannot be read.
    let table = catalog.load_table(&ident).await.unwrap();
    let location = table.metadata_location().unwrap().to_string();
    let path = location
        .strip_prefix("file://")
        .unwrap_or(&location)
        .to_string();
    let saved = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let e = catalog.load_table(&ident).await.unwrap_err();
    assert_ne!(e.kind(), ErrorKind::TableNotFound, "{e}");
    assert!(catalog.table_exists(&ident).await.unwrap());
    std::fs::write(&path, saved).unwrap();

    // The catalog's SQL fails (its table is away).
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(scratch.0.join("catalog.db"))
        .connect()
        .await
        .unwrap();
    sqlx::query("ALTER TABLE iceberg_tables RENAME TO iceberg_tables_away")
        .execute(&mut conn)
        .await
        .unwrap();
    let e = catalog.load_table(&ident).await.unwrap_err();
    assert_ne!(e.kind(), ErrorKind::TableNotFound, "{e}");
    assert!(catalog.table_exists(&ident).await.is_err());
    sqlx::query("ALTER TABLE iceberg_tables_away RENAME TO iceberg_tables")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(catalog.table_exists(&ident).await.unwrap());
    catalog.load_table(&ident).await.unwrap();

    // Dropped: now it is gone.
    catalog.drop_table(&ident).await.unwrap();
    let e = catalog.load_table(&ident).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TableNotFound, "{e}");
    assert!(!catalog.table_exists(&ident).await.unwrap());
}
