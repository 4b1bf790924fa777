//! The coordinator's table maintenance (docs/maintenance.md): after every completed commit
//! cycle, each table this coordinator committed whose time has come is compacted, its old
//! snapshots expired, its orphan files removed (on their own, longer interval) and its health
//! logged. Never fails the coordinator: a step that cannot run (or loses to a concurrent
//! commit) is logged and tried again after the interval.

use std::collections::BTreeMap;
use std::time::Instant;

use iceberg::table::Table;
use iceberg::{NamespaceIdent, TableIdent};
use tracing::{debug, info, warn};

use crate::catalog::CatalogHandle;
use crate::maintenance::compact::{compact, CompactOptions};
use crate::maintenance::expire::{expire, ExpireOptions};
use crate::maintenance::health::{health, HealthReport};
use crate::maintenance::orphans::{remove_orphans, OrphanOptions};
use crate::maintenance::{Maintenance, MaintenanceSettings};
use crate::sink_metrics;

/// One table's schedule.
struct Due {
    ident: TableIdent,
    next: Instant,
    next_orphans: Instant,
}

pub(super) struct Maintainer {
    connector: String,
    maintenance: Maintenance,
    catalog: CatalogHandle,
    tables: BTreeMap<String, Due>,
}

impl Maintainer {
    pub(super) fn new(
        connector: &str,
        maintenance: Maintenance,
        catalog: CatalogHandle,
    ) -> Maintainer {
        Maintainer {
            connector: connector.to_string(),
            maintenance,
            catalog,
            tables: BTreeMap::new(),
        }
    }

    /// Whether a table's maintenance is due (a cycle must run for it to happen).
    pub(super) fn due(&self) -> bool {
        let now = Instant::now();
        self.tables.values().any(|d| d.next <= now)
    }

    /// Maintains, of `committed` (tables of this coordinator's catalog committed on `main`,
    /// as `namespace.name` and namespace parts), those whose time has come.
    pub(super) async fn after_cycle(&mut self, committed: Vec<(String, Vec<String>, String)>) {
        let now = Instant::now();
        for (display, namespace, name) in committed {
            let Some(settings) = self.maintenance.for_table(&display) else {
                continue;
            };
            if self.tables.contains_key(&display) {
                continue;
            }
            let Ok(ns) = NamespaceIdent::from_vec(namespace) else {
                continue;
            };
            self.tables.insert(
                display,
                Due {
                    ident: TableIdent::new(ns, name),
                    next: now + settings.interval,
                    next_orphans: now + settings.interval,
                },
            );
        }
        let due: Vec<String> = self
            .tables
            .iter()
            .filter(|(_, d)| d.next <= now)
            .map(|(name, _)| name.clone())
            .collect();
        for name in due {
            let Some(settings) = self.maintenance.for_table(&name).cloned() else {
                continue;
            };
            let Some(d) = self.tables.get_mut(&name) else {
                continue;
            };
            d.next = Instant::now() + settings.interval;
            let orphans_due = settings.remove_orphans && d.next_orphans <= now;
            if orphans_due {
                d.next_orphans = Instant::now() + settings.orphans_interval;
            }
            let ident = d.ident.clone();
            if settings.compact {
                if let Some(table) = self.load(&ident, &name, "compact it").await {
                    compact_table(&self.catalog, &table, &name, &settings, &self.connector).await;
                }
            }
            if settings.expire_snapshots {
                if let Some(table) = self.load(&ident, &name, "expire its snapshots").await {
                    expire_table(&self.catalog, &table, &name, &self.connector).await;
                }
            }
            if orphans_due {
                if let Some(table) = self.load(&ident, &name, "remove its orphan files").await {
                    let warehouse = self.maintenance.warehouse.as_deref();
                    orphans_of(&table, &name, &settings, warehouse, &self.connector).await;
                }
            }
            if let Some(table) = self.load(&ident, &name, "read its health").await {
                let small =
                    CompactOptions::for_table(&table, settings.target_file_size).min_file_size;
                match health(&table, small).await {
                    Ok(h) => {
                        log_health(&h);
                        sink_metrics::health(&self.connector, &h);
                    }
                    Err(e) => warn!(table = %name, error = %e, "cannot read the table's health"),
                }
            }
        }
    }

    async fn load(&self, ident: &TableIdent, name: &str, to: &str) -> Option<Table> {
        match self.catalog.load_table(ident).await {
            Ok(t) => Some(t),
            Err(e) => {
                warn!(table = %name, error = %e, "cannot load the table to {to}");
                None
            }
        }
    }
}

async fn compact_table(
    catalog: &CatalogHandle,
    table: &Table,
    name: &str,
    settings: &MaintenanceSettings,
    connector: &str,
) {
    let mut options = CompactOptions::for_table(table, settings.target_file_size);
    options.min_input_files = settings.min_input_files;
    options.tiered = true;
    let started = Instant::now();
    match compact(catalog, table, &options).await {
        Ok(r) if r.snapshot_id.is_some() => {
            sink_metrics::compacted(connector, &r);
            info!(
                table = %name,
                snapshot_id = r.snapshot_id,
                partitions = r.partitions,
                data_files_rewritten = r.data_files_rewritten,
                bytes_rewritten = r.bytes_rewritten,
                data_files_written = r.data_files_written,
                bytes_written = r.bytes_written,
                delete_files_removed = r.delete_files_removed,
                deleted_rows_applied = r.deleted_rows_applied,
                rebased = r.rebased,
                millis = started.elapsed().as_millis() as u64,
                "table compacted"
            )
        }
        Ok(r) => {
            debug!(table = %name, reason = r.skipped.as_deref().unwrap_or(""), "nothing to compact")
        }
        Err(e) => {
            warn!(table = %name, error = %e, "compaction did not run; it is tried again after the interval")
        }
    }
}

async fn expire_table(catalog: &CatalogHandle, table: &Table, name: &str, connector: &str) {
    match expire(catalog, table, &ExpireOptions::for_table(table)).await {
        Ok(r) if r.snapshots_expired > 0 => {
            sink_metrics::expired(connector, &r);
            info!(
                table = %name,
                snapshots_expired = r.snapshots_expired,
                snapshots_kept = r.snapshots_kept,
                kept_for_offsets = r.kept_for_offsets,
                manifest_lists_deleted = r.manifest_lists_deleted,
                manifests_deleted = r.manifests_deleted,
                files_deleted = r.files_deleted,
                "snapshots expired"
            )
        }
        Ok(_) => debug!(table = %name, "no snapshot to expire"),
        Err(e) => {
            warn!(table = %name, error = %e, "snapshot expiry did not run; it is tried again after the interval")
        }
    }
}

async fn orphans_of(
    table: &Table,
    name: &str,
    settings: &MaintenanceSettings,
    warehouse: Option<&str>,
    connector: &str,
) {
    let options = OrphanOptions {
        older_than: settings.orphans_older_than,
        dry_run: false,
        warehouse: warehouse.map(str::to_string),
    };
    match remove_orphans(table, &options).await {
        Ok(r) if r.orphans > 0 => {
            sink_metrics::orphans_removed(connector, &r);
            info!(
                table = %name,
                orphans = r.orphans,
                orphan_bytes = r.orphan_bytes,
                failed = r.failed,
                files_listed = r.files_listed,
                too_young = r.too_young,
                "orphan files removed"
            )
        }
        Ok(r) => {
            debug!(table = %name, files_listed = r.files_listed, too_young = r.too_young, "no orphan file")
        }
        Err(e) => {
            warn!(table = %name, error = %e, "orphan removal did not run; it is tried again after its interval")
        }
    }
}

fn log_health(h: &HealthReport) {
    info!(
        table = %h.table,
        snapshots = h.snapshots,
        commits_last_hour = h.commits_last_hour,
        data_files = h.data_files,
        delete_files = h.delete_files,
        data_manifests = h.data_manifests,
        avg_data_file_bytes = h.avg_data_file_bytes,
        median_data_file_bytes = h.median_data_file_bytes,
        small_files = h.small_files,
        small_file_share = h.small_file_share,
        oldest_small_file_age_ms = h.oldest_small_file_age_ms,
        freshness_ms = h.freshness_ms,
        "table health"
    );
}
