//! Committing files to a table, for the coordinator.

use std::collections::HashMap;

use iceberg::spec::DataFile;
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::Catalog;

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
    match tx.commit(catalog).await {
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
