//! Floe's SQL catalog: the two tables of Java's `JdbcCatalog` (also used by PyIceberg's
//! `SqlCatalog`), on SQLite or PostgreSQL.
//!
//! ```text
//! iceberg_tables(catalog_name, table_namespace, table_name, metadata_location,
//!                previous_metadata_location [, iceberg_type])          -- PK: the first three
//! iceberg_namespace_properties(catalog_name, namespace, property_key, property_value)
//! ```
//!
//! Java's catalog creates the first table without `iceberg_type` (its "V0" layout) unless told
//! to use V1; PyIceberg and Floe create V1. Floe detects which layout a database has and works
//! with both, so a catalog the Java sink created is used as it is, never altered.
//!
//! A commit writes the next metadata file (`<table>/metadata/<version+1>-<uuid>.metadata.json`)
//! and swaps the pointer with a compare-and-set `UPDATE … WHERE metadata_location = <old>`: of
//! two committers on the same base, exactly one changes a row; the other gets
//! [`ErrorKind::CatalogCommitConflicts`] and nothing of it is visible.

use std::collections::HashMap;
use std::str::FromStr;

use async_trait::async_trait;
use iceberg::io::FileIO;
use iceberg::spec::{TableMetadata, TableMetadataBuilder};
use iceberg::table::Table;
use iceberg::{
    Catalog, Error, ErrorKind, MetadataLocation, Namespace, NamespaceIdent, Result, Runtime,
    TableCommit, TableCreation, TableIdent, TableRequirement, TableUpdate,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use tracing::debug;

/// The SQL dialect behind a catalog URL; only the bind placeholders differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Which `iceberg_tables` layout the database has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Without `iceberg_type` (Java's default).
    V0,
    /// With `iceberg_type` (`TABLE` or `VIEW`).
    V1,
}

const NAMESPACE_EXISTS_KEY: &str = "exists";

/// A catalog on the JdbcCatalog tables.
pub struct JdbcCatalog {
    name: String,
    pool: AnyPool,
    dialect: Dialect,
    layout: Layout,
    warehouse: String,
    file_io: FileIO,
    runtime: Runtime,
}

impl std::fmt::Debug for JdbcCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JdbcCatalog")
            .field("name", &self.name)
            .field("dialect", &self.dialect)
            .field("layout", &self.layout)
            .field("warehouse", &self.warehouse)
            .finish()
    }
}

fn sql_error(what: impl std::fmt::Display, e: sqlx::Error) -> Error {
    Error::new(ErrorKind::Unexpected, format!("{what}: {e}"))
}

fn namespace_key(ns: &NamespaceIdent) -> String {
    ns.join(".")
}

impl JdbcCatalog {
    /// Opens the catalog `name` at sqlx URL `url` (`sqlite:…` or `postgres://…`) with a pool of
    /// `pool_size` connections, creating its tables when they are missing.
    pub async fn open(
        name: &str,
        url: &str,
        pool_size: u32,
        warehouse: &str,
        file_io: FileIO,
    ) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else {
            return Err(Error::new(
                ErrorKind::FeatureUnsupported,
                format!("unsupported SQL catalog URL scheme in {}", redact(url)),
            ));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(pool_size)
            .connect(url)
            .await
            .map_err(|e| sql_error(format!("cannot connect to {}", redact(url)), e))?;
        let mut catalog = JdbcCatalog {
            name: name.to_string(),
            pool,
            dialect,
            layout: Layout::V1,
            warehouse: warehouse.trim_end_matches('/').to_string(),
            file_io,
            runtime: Runtime::try_current()?,
        };
        catalog.initialize().await?;
        Ok(catalog)
    }

    /// The layout found (or created) in the database.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    async fn initialize(&mut self) -> Result<()> {
        self.create_catalog_table(
            "iceberg_namespace_properties",
            "CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (\
             catalog_name VARCHAR(255) NOT NULL, namespace VARCHAR(255) NOT NULL, \
             property_key VARCHAR(255), property_value VARCHAR(1000), \
             PRIMARY KEY (catalog_name, namespace, property_key))",
        )
        .await?;
        self.create_catalog_table(
            "iceberg_tables",
            "CREATE TABLE IF NOT EXISTS iceberg_tables (\
             catalog_name VARCHAR(255) NOT NULL, table_namespace VARCHAR(255) NOT NULL, \
             table_name VARCHAR(255) NOT NULL, metadata_location VARCHAR(1000), \
             previous_metadata_location VARCHAR(1000), iceberg_type VARCHAR(5), \
             PRIMARY KEY (catalog_name, table_namespace, table_name))",
        )
        .await?;
        // A table Java created keeps its layout: look for the column instead of adding it.
        self.layout = match sqlx::query("SELECT iceberg_type FROM iceberg_tables WHERE 1 = 0")
            .fetch_all(&self.pool)
            .await
        {
            Ok(_) => Layout::V1,
            Err(_) => Layout::V0,
        };
        Ok(())
    }

    /// Creates one of the catalog's own tables unless it exists. Tasks opening the catalog at
    /// the same moment race here: PostgreSQL's `CREATE TABLE IF NOT EXISTS` is not atomic
    /// (the loser fails on `pg_type_typname_nsp_index`), so a failure is forgiven when the
    /// table is there afterwards.
    async fn create_catalog_table(&self, table: &str, ddl: &str) -> Result<()> {
        let Err(create_err) = self.execute(ddl, &[]).await else {
            return Ok(());
        };
        let probe = format!("SELECT 1 FROM {table} WHERE 1 = 0");
        match sqlx::query(&probe).fetch_all(&self.pool).await {
            Ok(_) => {
                debug!(catalog = %self.name, table, error = %create_err, "catalog table created concurrently");
                Ok(())
            }
            Err(_) => Err(create_err),
        }
    }

    /// `?` placeholders in the dialect's spelling.
    fn sql(&self, query: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => query.to_string(),
            Dialect::Postgres => {
                let mut out = String::with_capacity(query.len() + 8);
                let mut n = 0;
                for c in query.chars() {
                    if c == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    /// Only rows that are tables (V1 also holds views).
    fn tables_only(&self) -> &'static str {
        match self.layout {
            Layout::V0 => "",
            Layout::V1 => " AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)",
        }
    }

    async fn execute(&self, query: &str, args: &[&str]) -> Result<u64> {
        let sql = self.sql(query);
        let mut q = sqlx::query(&sql);
        for a in args {
            q = q.bind(a.to_string());
        }
        q.execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| sql_error(format!("catalog {}: {}", self.name, first_words(query)), e))
    }

    async fn fetch(&self, query: &str, args: &[&str]) -> Result<Vec<AnyRow>> {
        let sql = self.sql(query);
        let mut q = sqlx::query(&sql);
        for a in args {
            q = q.bind(a.to_string());
        }
        q.fetch_all(&self.pool)
            .await
            .map_err(|e| sql_error(format!("catalog {}: {}", self.name, first_words(query)), e))
    }

    async fn metadata_location(&self, table: &TableIdent) -> Result<Option<String>> {
        let query = format!(
            "SELECT metadata_location FROM iceberg_tables \
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?{}",
            self.tables_only()
        );
        let ns = namespace_key(table.namespace());
        let rows = self.fetch(&query, &[&self.name, &ns, table.name()]).await?;
        match rows.first() {
            None => Ok(None),
            Some(row) => row
                .try_get::<Option<String>, _>(0)
                .map_err(|e| sql_error(format!("reading the metadata location of {table}"), e)),
        }
    }

    fn table_from(
        &self,
        ident: TableIdent,
        location: String,
        metadata: TableMetadata,
    ) -> Result<Table> {
        Table::builder()
            .identifier(ident)
            .metadata_location(location)
            .metadata(metadata)
            .file_io(self.file_io.clone())
            .runtime(self.runtime.clone())
            .build()
    }

    /// Applies `updates` to the table if every requirement holds against its current metadata,
    /// then swaps the metadata pointer with a compare-and-set. A pointer that moved in between is
    /// [`ErrorKind::CatalogCommitConflicts`]; the written file is then left unreferenced.
    pub async fn commit(
        &self,
        ident: &TableIdent,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
    ) -> Result<Table> {
        let base = self.load_table(ident).await?;
        let base_location = base.metadata_location_result()?.to_string();
        for requirement in &requirements {
            requirement.check(Some(base.metadata())).map_err(|e| {
                Error::new(
                    ErrorKind::CatalogCommitConflicts,
                    format!("commit to {ident} refused: {e}"),
                )
                .with_retryable(true)
            })?;
        }
        let mut builder = base
            .metadata()
            .clone()
            .into_builder(Some(base_location.clone()));
        for update in updates {
            builder = update.apply(builder)?;
        }
        let metadata = builder.build()?.metadata;
        let location = MetadataLocation::from_str(&base_location)?
            .with_next_version()
            .with_new_metadata(&metadata);
        metadata.write_to(&self.file_io, &location).await?;
        let new_location = location.to_string();
        let changed = self
            .execute(
                "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? \
                 WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? \
                 AND metadata_location = ?",
                &[
                    &new_location,
                    &base_location,
                    &self.name,
                    &namespace_key(ident.namespace()),
                    ident.name(),
                    &base_location,
                ],
            )
            .await?;
        if changed != 1 {
            return Err(Error::new(
                ErrorKind::CatalogCommitConflicts,
                format!("commit to {ident} lost a race: its metadata moved from {base_location}"),
            )
            .with_retryable(true));
        }
        self.delete_dropped_metadata(ident, &base, &base_location, &metadata)
            .await;
        self.table_from(ident.clone(), new_location, metadata)
    }

    /// With the table property `write.metadata.delete-after-commit.enabled` (Java's, default
    /// false), deletes the metadata files that fell out of the metadata log
    /// (`write.metadata.previous-versions-max`) with this commit, as Java's table operations do.
    /// A file that cannot be deleted is logged and left to orphan removal.
    async fn delete_dropped_metadata(
        &self,
        ident: &TableIdent,
        base: &Table,
        base_location: &str,
        metadata: &iceberg::spec::TableMetadata,
    ) {
        let enabled = metadata
            .properties()
            .get("write.metadata.delete-after-commit.enabled")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if !enabled {
            return;
        }
        let kept: std::collections::HashSet<&str> = metadata
            .metadata_log()
            .iter()
            .map(|l| l.metadata_file.as_str())
            .collect();
        let previous = base
            .metadata()
            .metadata_log()
            .iter()
            .map(|l| l.metadata_file.as_str())
            .chain([base_location]);
        for old in previous.filter(|f| !kept.contains(f)) {
            if let Err(e) = self.file_io.delete(old).await {
                tracing::warn!(table = %ident, file = %old, error = %e, "cannot delete a metadata file dropped from the metadata log");
            }
        }
    }

    /// The pointer row of a new table, in the database's layout.
    async fn insert_table(&self, table: &TableIdent, location: &str) -> Result<u64> {
        let query = match self.layout {
            Layout::V1 => {
                "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, \
                 metadata_location, previous_metadata_location, iceberg_type) \
                 VALUES (?, ?, ?, ?, NULL, 'TABLE')"
            }
            Layout::V0 => {
                "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, \
                 metadata_location, previous_metadata_location) VALUES (?, ?, ?, ?, NULL)"
            }
        };
        let ns = namespace_key(table.namespace());
        self.execute(query, &[&self.name, &ns, table.name(), location])
            .await
    }

    async fn namespace_rows(&self, ns: &NamespaceIdent) -> Result<HashMap<String, String>> {
        let rows = self
            .fetch(
                "SELECT property_key, property_value FROM iceberg_namespace_properties \
                 WHERE catalog_name = ? AND namespace = ?",
                &[&self.name, &namespace_key(ns)],
            )
            .await?;
        let mut props = HashMap::new();
        for row in rows {
            let key: Option<String> = row
                .try_get(0)
                .map_err(|e| sql_error("namespace property", e))?;
            let value: Option<String> = row
                .try_get(1)
                .map_err(|e| sql_error("namespace property", e))?;
            if let Some(key) = key {
                props.insert(key, value.unwrap_or_default());
            }
        }
        Ok(props)
    }

    async fn all_namespaces(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for query in [
            "SELECT DISTINCT namespace FROM iceberg_namespace_properties WHERE catalog_name = ?",
            "SELECT DISTINCT table_namespace FROM iceberg_tables WHERE catalog_name = ?",
        ] {
            for row in self.fetch(query, &[&self.name]).await? {
                let ns: String = row.try_get(0).map_err(|e| sql_error("namespace name", e))?;
                if !out.contains(&ns) {
                    out.push(ns);
                }
            }
        }
        Ok(out)
    }

    fn default_location(&self, table: &TableIdent) -> String {
        format!(
            "{}/{}/{}",
            self.warehouse,
            table.namespace().join("/"),
            table.name()
        )
    }
}

/// The first words of a statement, to name it in errors without its arguments.
fn first_words(query: &str) -> String {
    query
        .split_whitespace()
        .take(4)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A URL without its password.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

#[async_trait]
impl Catalog for JdbcCatalog {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> Result<Vec<NamespaceIdent>> {
        let prefix = parent.map(|p| format!("{}.", namespace_key(p)));
        let mut out: Vec<NamespaceIdent> = Vec::new();
        for ns in self.all_namespaces().await? {
            let rest = match &prefix {
                Some(p) => match ns.strip_prefix(p.as_str()) {
                    Some(rest) => rest,
                    None => continue,
                },
                None => ns.as_str(),
            };
            let Some(level) = rest.split('.').next().filter(|l| !l.is_empty()) else {
                continue;
            };
            let mut parts = parent.map(|p| p.clone().inner()).unwrap_or_default();
            parts.push(level.to_string());
            let ident = NamespaceIdent::from_vec(parts)?;
            if !out.contains(&ident) {
                out.push(ident);
            }
        }
        Ok(out)
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<Namespace> {
        if self.namespace_exists(namespace).await? {
            return Err(Error::new(
                ErrorKind::NamespaceAlreadyExists,
                format!("namespace {} already exists", namespace_key(namespace)),
            ));
        }
        let ns = namespace_key(namespace);
        let mut rows = vec![(NAMESPACE_EXISTS_KEY.to_string(), "true".to_string())];
        rows.extend(properties.iter().map(|(k, v)| (k.clone(), v.clone())));
        for (key, value) in rows {
            let insert = self
                .execute(
                    "INSERT INTO iceberg_namespace_properties \
                     (catalog_name, namespace, property_key, property_value) VALUES (?, ?, ?, ?)",
                    &[&self.name, &ns, &key, &value],
                )
                .await;
            // Two tasks creating the same namespace at once: the loser's insert collides.
            if let Err(e) = insert {
                if self.namespace_rows(namespace).await?.contains_key(&key) {
                    continue;
                }
                return Err(e);
            }
        }
        Ok(Namespace::with_properties(namespace.clone(), properties))
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> Result<Namespace> {
        if !self.namespace_exists(namespace).await? {
            return Err(Error::new(
                ErrorKind::NamespaceNotFound,
                format!("namespace {} does not exist", namespace_key(namespace)),
            ));
        }
        let mut props = self.namespace_rows(namespace).await?;
        props.remove(NAMESPACE_EXISTS_KEY);
        Ok(Namespace::with_properties(namespace.clone(), props))
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> Result<bool> {
        let ns = namespace_key(namespace);
        let with_props = self
            .fetch(
                "SELECT 1 FROM iceberg_namespace_properties \
                 WHERE catalog_name = ? AND namespace = ? LIMIT 1",
                &[&self.name, &ns],
            )
            .await?;
        if !with_props.is_empty() {
            return Ok(true);
        }
        let nested = format!("{ns}.%");
        let with_tables = self
            .fetch(
                "SELECT 1 FROM iceberg_tables WHERE catalog_name = ? \
                 AND (table_namespace = ? OR table_namespace LIKE ?) LIMIT 1",
                &[&self.name, &ns, &nested],
            )
            .await?;
        Ok(!with_tables.is_empty())
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<()> {
        let ns = namespace_key(namespace);
        if !self.namespace_exists(namespace).await? {
            return Err(Error::new(
                ErrorKind::NamespaceNotFound,
                format!("namespace {ns} does not exist"),
            ));
        }
        for (key, value) in &properties {
            self.execute(
                "DELETE FROM iceberg_namespace_properties \
                 WHERE catalog_name = ? AND namespace = ? AND property_key = ?",
                &[&self.name, &ns, key],
            )
            .await?;
            self.execute(
                "INSERT INTO iceberg_namespace_properties \
                 (catalog_name, namespace, property_key, property_value) VALUES (?, ?, ?, ?)",
                &[&self.name, &ns, key, value],
            )
            .await?;
        }
        Ok(())
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        let ns = namespace_key(namespace);
        if !self.list_tables(namespace).await?.is_empty() {
            return Err(Error::new(
                ErrorKind::PreconditionFailed,
                format!("namespace {ns} is not empty"),
            ));
        }
        self.execute(
            "DELETE FROM iceberg_namespace_properties WHERE catalog_name = ? AND namespace = ?",
            &[&self.name, &ns],
        )
        .await?;
        Ok(())
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        let query = format!(
            "SELECT table_name FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ?{}",
            self.tables_only()
        );
        let rows = self
            .fetch(&query, &[&self.name, &namespace_key(namespace)])
            .await?;
        rows.iter()
            .map(|row| {
                let name: String = row.try_get(0).map_err(|e| sql_error("table name", e))?;
                Ok(TableIdent::new(namespace.clone(), name))
            })
            .collect()
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        mut creation: TableCreation,
    ) -> Result<Table> {
        let ident = TableIdent::new(namespace.clone(), creation.name.clone());
        if !self.namespace_exists(namespace).await? {
            return Err(Error::new(
                ErrorKind::NamespaceNotFound,
                format!(
                    "cannot create {ident}: namespace {} does not exist",
                    namespace_key(namespace)
                ),
            ));
        }
        if self.metadata_location(&ident).await?.is_some() {
            return Err(Error::new(
                ErrorKind::TableAlreadyExists,
                format!("table {ident} already exists"),
            ));
        }
        let table_location = creation
            .location
            .clone()
            .unwrap_or_else(|| self.default_location(&ident));
        creation.location = Some(table_location.clone());
        let metadata = TableMetadataBuilder::from_table_creation(creation)?
            .build()?
            .metadata;
        let location = MetadataLocation::new_with_metadata(&table_location, &metadata);
        metadata.write_to(&self.file_io, &location).await?;
        let location = location.to_string();
        if let Err(e) = self.insert_table(&ident, &location).await {
            // Another writer created the same table first.
            if self.metadata_location(&ident).await?.is_some() {
                return Err(Error::new(
                    ErrorKind::TableAlreadyExists,
                    format!("table {ident} already exists"),
                ));
            }
            return Err(e);
        }
        self.table_from(ident, location, metadata)
    }

    async fn load_table(&self, table: &TableIdent) -> Result<Table> {
        let location = self.metadata_location(table).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::TableNotFound,
                format!("table {table} does not exist"),
            )
        })?;
        let metadata = TableMetadata::read_from(&self.file_io, &location).await?;
        self.table_from(table.clone(), location, metadata)
    }

    async fn drop_table(&self, table: &TableIdent) -> Result<()> {
        let query = format!(
            "DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?{}",
            self.tables_only()
        );
        let n = self
            .execute(
                &query,
                &[&self.name, &namespace_key(table.namespace()), table.name()],
            )
            .await?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::TableNotFound,
                format!("table {table} does not exist"),
            ));
        }
        Ok(())
    }

    async fn purge_table(&self, table: &TableIdent) -> Result<()> {
        self.drop_table(table).await
    }

    async fn table_exists(&self, table: &TableIdent) -> Result<bool> {
        Ok(self.metadata_location(table).await?.is_some())
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> Result<()> {
        if self.table_exists(dest).await? {
            return Err(Error::new(
                ErrorKind::TableAlreadyExists,
                format!("cannot rename {src}: {dest} already exists"),
            ));
        }
        let query = format!(
            "UPDATE iceberg_tables SET table_namespace = ?, table_name = ? \
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?{}",
            self.tables_only()
        );
        let n = self
            .execute(
                &query,
                &[
                    &namespace_key(dest.namespace()),
                    dest.name(),
                    &self.name,
                    &namespace_key(src.namespace()),
                    src.name(),
                ],
            )
            .await?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::TableNotFound,
                format!("table {src} does not exist"),
            ));
        }
        Ok(())
    }

    async fn register_table(&self, table: &TableIdent, metadata_location: String) -> Result<Table> {
        if self.table_exists(table).await? {
            return Err(Error::new(
                ErrorKind::TableAlreadyExists,
                format!("table {table} already exists"),
            ));
        }
        let metadata = TableMetadata::read_from(&self.file_io, &metadata_location).await?;
        self.insert_table(table, &metadata_location).await?;
        self.table_from(table.clone(), metadata_location, metadata)
    }

    async fn update_table(&self, mut commit: TableCommit) -> Result<Table> {
        let ident = commit.identifier().clone();
        let requirements = commit.take_requirements();
        let updates = commit.take_updates();
        self.commit(&ident, requirements, updates).await
    }
}
