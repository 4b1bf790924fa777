//! Committing files to a table, for the coordinator, as a compare-and-set on the table state
//! the coordinator validated.
//!
//! iceberg 0.10's `Transaction::commit` reloads the table before committing and silently
//! rebases the append onto whatever is current, so another committer's snapshot between the
//! coordinator's validation and its commit would go unnoticed. Committing through
//! [`PinnedCatalog`], whose `load_table` answers with the validated table, makes the commit's
//! requirements (table uuid, branch head) those of the validated state: the catalog refuses it
//! if anything moved, and the coordinator reloads and revalidates (docs/control-topic.md, I6).
//!
//! A commit to a branch other than `main` (`iceberg.tables.default-commit-branch`,
//! `iceberg.table.<t>.commit-branch`) is the same append computed against the branch: the
//! pinned table shows the branch head as `main`, so the new snapshot's parent, manifests and
//! summary totals are the branch's; the commit's `main` ref update and ref requirement are then
//! renamed to the branch and sent through Floe's committer for the catalog. A branch that does
//! not exist yet is created by its first commit, with no parent (as Java's `toBranch` does).

use std::collections::HashMap;

use async_trait::async_trait;
use iceberg::spec::{DataFile, SnapshotReference, SnapshotRetention, MAIN_BRANCH};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{
    Catalog, Namespace, NamespaceIdent, TableCommit, TableCreation, TableIdent, TableRequirement,
    TableUpdate,
};

use crate::catalog::{CatalogHandle, Committer};
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
    catalog: &CatalogHandle,
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
    let branch = branch.filter(|b| *b != MAIN_BRANCH);
    let base = match branch {
        Some(b) => branch_as_main(table, b).map_err(|e| SinkError::Table {
            table: name.clone(),
            message: format!("cannot prepare the commit to branch {b}: {e}"),
        })?,
        None => table.clone(),
    };
    let tx = Transaction::new(&base);
    let action = tx
        .fast_append()
        .set_snapshot_properties(properties)
        .add_data_files(data);
    let tx = action.apply(tx).map_err(|e| SinkError::Table {
        table: name.clone(),
        message: format!("cannot prepare the commit: {e}"),
    })?;
    let pinned = PinnedCatalog {
        inner: &**catalog,
        base,
        branch: branch.map(|b| (b.to_string(), catalog.committer().clone(), table.clone())),
    };
    match tx.commit(&pinned).await {
        Ok(t) => {
            let head = t.metadata().snapshot_for_ref(branch.unwrap_or(MAIN_BRANCH));
            Ok(CommitOutcome::Committed(
                head.map_or(-1, |s| s.snapshot_id()),
            ))
        }
        Err(e) if e.retryable() || e.kind() == iceberg::ErrorKind::DataInvalid => {
            Ok(CommitOutcome::Conflict(e.to_string()))
        }
        Err(e) if e.kind() == iceberg::ErrorKind::CatalogCommitConflicts => {
            Ok(CommitOutcome::Conflict(e.to_string()))
        }
        Err(e) => Ok(CommitOutcome::Unknown(e.to_string())),
    }
}

/// The table as it would be if `branch` were `main`: `main` points at the branch head, or at
/// nothing when the branch does not exist yet.
fn branch_as_main(table: &Table, branch: &str) -> iceberg::Result<Table> {
    let metadata = table.metadata();
    let location = table.metadata_location_result()?.to_string();
    let builder = metadata.clone().into_builder(Some(location.clone()));
    let builder = match metadata.snapshot_for_ref(branch) {
        Some(head) => builder.set_ref(
            MAIN_BRANCH,
            SnapshotReference::new(
                head.snapshot_id(),
                SnapshotRetention::branch(None, None, None),
            ),
        )?,
        None => builder.remove_ref(MAIN_BRANCH),
    };
    Table::builder()
        .identifier(table.identifier().clone())
        .metadata(builder.build()?.metadata)
        .metadata_location(location)
        .file_io(table.file_io().clone())
        .runtime(iceberg::Runtime::try_current()?)
        .build()
}

/// Renames the `main` ref in a commit computed by [`branch_as_main`] to `branch`.
fn retarget(
    branch: &str,
    requirements: Vec<TableRequirement>,
    updates: Vec<TableUpdate>,
) -> (Vec<TableRequirement>, Vec<TableUpdate>) {
    let requirements = requirements
        .into_iter()
        .map(|r| match r {
            TableRequirement::RefSnapshotIdMatch { r#ref, snapshot_id } if r#ref == MAIN_BRANCH => {
                TableRequirement::RefSnapshotIdMatch {
                    r#ref: branch.to_string(),
                    snapshot_id,
                }
            }
            other => other,
        })
        .collect();
    let updates = updates
        .into_iter()
        .map(|u| match u {
            TableUpdate::SetSnapshotRef {
                ref_name,
                reference,
            } if ref_name == MAIN_BRANCH => TableUpdate::SetSnapshotRef {
                ref_name: branch.to_string(),
                reference,
            },
            other => other,
        })
        .collect();
    (requirements, updates)
}

/// A catalog whose `load_table` returns the table state a commit was validated against, and
/// which sends a commit meant for a branch through Floe's committer.
pub struct PinnedCatalog<'a> {
    inner: &'a dyn Catalog,
    base: Table,
    /// The branch, its catalog's committer and the real (not re-pointed) table.
    branch: Option<(String, Committer, Table)>,
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

    async fn update_table(&self, mut commit: TableCommit) -> iceberg::Result<Table> {
        match &self.branch {
            None => self.inner.update_table(commit).await,
            Some((branch, committer, table)) => {
                let (requirements, updates) =
                    retarget(branch, commit.take_requirements(), commit.take_updates());
                committer.commit(table, requirements, updates).await
            }
        }
    }
}
