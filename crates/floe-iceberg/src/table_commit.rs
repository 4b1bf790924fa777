//! Committing files to a table, for the coordinator, as a compare-and-set on the table state
//! the coordinator validated.
//!
//! iceberg 0.10's `Transaction::commit` reloads the table before committing and silently
//! rebases the append onto whatever is current, so another committer's snapshot between the
//! coordinator's validation and its commit would go unnoticed. Committing through
//! [`PinnedCatalog`], whose `load_table` answers with the validated table, makes the commit's
//! requirements (table uuid, branch head) those of the validated state: the catalog refuses it
//! if anything moved, and the coordinator reloads and revalidates (docs/control-topic.md, I6).

use std::collections::HashMap;

use async_trait::async_trait;
use iceberg::spec::DataFile;
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{Catalog, Namespace, NamespaceIdent, TableCommit, TableCreation, TableIdent};

use crate::error::SinkError;

/// How a commit attempt ended.
#[derive(Debug)]
pub enum CommitOutcome {
    /// The new snapshot id.
    Committed(i64),
    /// The table changed underneath (another committer won): reload, revalidate, retry.
    Conflict(String),
    /// The catalog may or may not have applied the commit: look for the commit id.
    Unknown(String),
}

/// Appends `data` to `table` in one snapshot with `properties` in its summary, conditional on
/// the branch head the caller validated.
pub async fn append(
    catalog: &dyn Catalog,
    table: &Table,
    data: Vec<DataFile>,
    deletes: Vec<DataFile>,
    properties: HashMap<String, String>,
    branch: Option<&str>,
) -> Result<CommitOutcome, SinkError> {
    let name = table.identifier().to_string();
    if !deletes.is_empty() {
        return Err(SinkError::Table {
            table: name,
            message: "delete files cannot be committed yet".into(),
        });
    }
    if branch.is_some_and(|b| b != "main") {
        return Err(SinkError::Table {
            table: name,
            message: "commits to a branch other than main are not supported yet".into(),
        });
    }
    let tx = Transaction::new(table);
    let action = tx
        .fast_append()
        .set_snapshot_properties(properties)
        .add_data_files(data);
    let tx = action.apply(tx).map_err(|e| SinkError::Table {
        table: name.clone(),
        message: format!("cannot prepare the commit: {e}"),
    })?;
    let pinned = PinnedCatalog {
        inner: catalog,
        base: table.clone(),
    };
    match tx.commit(&pinned).await {
        Ok(t) => Ok(CommitOutcome::Committed(
            t.metadata().current_snapshot_id().unwrap_or(-1),
        )),
        Err(e) if e.retryable() || e.kind() == iceberg::ErrorKind::DataInvalid => {
            Ok(CommitOutcome::Conflict(e.to_string()))
        }
        Err(e) if e.kind() == iceberg::ErrorKind::CatalogCommitConflicts => {
            Ok(CommitOutcome::Conflict(e.to_string()))
        }
        Err(e) => Ok(CommitOutcome::Unknown(e.to_string())),
    }
}

/// A catalog whose `load_table` returns the table state a commit was validated against.
pub struct PinnedCatalog<'a> {
    inner: &'a dyn Catalog,
    base: Table,
}

impl std::fmt::Debug for PinnedCatalog<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedCatalog")
            .field("table", self.base.identifier())
            .finish()
    }
}

#[async_trait]
impl Catalog for PinnedCatalog<'_> {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> iceberg::Result<Vec<NamespaceIdent>> {
        self.inner.list_namespaces(parent).await
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> iceberg::Result<Namespace> {
        self.inner.create_namespace(namespace, properties).await
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<Namespace> {
        self.inner.get_namespace(namespace).await
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> iceberg::Result<bool> {
        self.inner.namespace_exists(namespace).await
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> iceberg::Result<()> {
        self.inner.update_namespace(namespace, properties).await
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<()> {
        self.inner.drop_namespace(namespace).await
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> iceberg::Result<Vec<TableIdent>> {
        self.inner.list_tables(namespace).await
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> iceberg::Result<Table> {
        self.inner.create_table(namespace, creation).await
    }

    async fn load_table(&self, table: &TableIdent) -> iceberg::Result<Table> {
        if table == self.base.identifier() {
            return Ok(self.base.clone());
        }
        self.inner.load_table(table).await
    }

    async fn drop_table(&self, table: &TableIdent) -> iceberg::Result<()> {
        self.inner.drop_table(table).await
    }

    async fn purge_table(&self, table: &TableIdent) -> iceberg::Result<()> {
        self.inner.purge_table(table).await
    }

    async fn table_exists(&self, table: &TableIdent) -> iceberg::Result<bool> {
        self.inner.table_exists(table).await
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> iceberg::Result<()> {
        self.inner.rename_table(src, dest).await
    }

    async fn register_table(
        &self,
        table: &TableIdent,
        metadata_location: String,
    ) -> iceberg::Result<Table> {
        self.inner.register_table(table, metadata_location).await
    }

    async fn update_table(&self, commit: TableCommit) -> iceberg::Result<Table> {
        self.inner.update_table(commit).await
    }
}
