//! Table maintenance (docs/maintenance.md): operations on a table that need no Connect
//! runtime, run by the connector's coordinator between commits and by `floe table`.

pub mod compact;
pub mod expire;

use std::time::Duration;

/// Maintenance run by the connector's coordinator (`floe.maintenance.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceSettings {
    /// Time between two maintenance runs on one table (the first comes this long after the
    /// coordinator first commits the table).
    pub interval: Duration,
    /// Compaction (`floe.maintenance.compaction.enabled`).
    pub compact: bool,
    /// Snapshot expiry by the table's `history.expire.*` properties
    /// (`floe.maintenance.expire-snapshots.enabled`).
    pub expire_snapshots: bool,
    /// Overrides the table's `write.target-file-size-bytes`.
    pub target_file_size: Option<u64>,
    pub min_input_files: usize,
}

use iceberg::table::Table;
use iceberg::TableIdent;

use crate::catalog::CatalogHandle;

/// Loads `name` (`namespace.table`, nested namespaces dotted) from `catalog`.
pub async fn load_table(catalog: &CatalogHandle, name: &str) -> Result<Table, String> {
    let ident = TableIdent::from_strs(name.split('.'))
        .map_err(|e| format!("invalid table name {name}: {e}"))?;
    catalog
        .load_table(&ident)
        .await
        .map_err(|e| format!("cannot load table {name}: {e}"))
}
