//! Table maintenance (docs/maintenance.md): operations on a table that need no Connect
//! runtime, run by the connector's coordinator between commits and by `floe table`.

pub mod compact;
pub mod expire;
pub mod health;
pub mod orphans;

use std::collections::BTreeMap;
use std::time::Duration;

use floe_connect::config_def::{ConfigKey, ConfigType, Importance};
use floe_connect::ConfigMap;
use iceberg::table::Table;
use iceberg::TableIdent;

use crate::catalog::CatalogHandle;

pub const COMPACTION: &str = "floe.maintenance.compaction.enabled";
pub const INTERVAL: &str = "floe.maintenance.interval-ms";
pub const EXPIRE_SNAPSHOTS: &str = "floe.maintenance.expire-snapshots.enabled";
pub const COMPACTION_TARGET: &str = "floe.maintenance.compaction.target-file-size-bytes";
pub const COMPACTION_MIN_FILES: &str = "floe.maintenance.compaction.min-input-files";
pub const REMOVE_ORPHANS: &str = "floe.maintenance.remove-orphans.enabled";
pub const ORPHANS_OLDER_THAN: &str = "floe.maintenance.remove-orphans.older-than-ms";
pub const ORPHANS_INTERVAL: &str = "floe.maintenance.remove-orphans.interval-ms";
/// Ten minutes between two maintenance runs on a table.
pub const DEFAULT_INTERVAL_MS: u64 = 600_000;
/// A day between two orphan removals on a table (each lists the table's location).
pub const DEFAULT_ORPHANS_INTERVAL_MS: u64 = 24 * 60 * 60 * 1000;
/// The prefix of a table's own maintenance keys: `iceberg.table.<table>.floe.maintenance.*`.
const TABLE_PREFIX: &str = "iceberg.table.";

/// Maintenance run by the connector's coordinator on one table (`floe.maintenance.*`).
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
    /// Orphan file removal, at most once per `orphans_interval`, of files older than
    /// `orphans_older_than`.
    pub remove_orphans: bool,
    pub orphans_older_than: Duration,
    pub orphans_interval: Duration,
    /// Overrides the table's `write.target-file-size-bytes`.
    pub target_file_size: Option<u64>,
    pub min_input_files: usize,
}

impl MaintenanceSettings {
    /// The settings the keys `get` finds (defaults for the rest); None when every step is
    /// off. A file a task wrote waits at most `in_flight` for its commit: a safety age under
    /// that could delete it, so it is refused.
    pub fn parse(
        get: &dyn Fn(&str) -> Option<String>,
        in_flight: Duration,
    ) -> Result<Option<MaintenanceSettings>, String> {
        let on = |key: &str| -> Result<bool, String> {
            match get(key).as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(true),
                Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
                Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
                Some(v) => Err(format!(
                    "Invalid value {v} for configuration {key}: Expected value to be either true or false"
                )),
            }
        };
        let number = |key: &str| -> Result<Option<u64>, String> {
            match get(key).as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| {
                    format!("Invalid value {v} for configuration {key}: Not a number of type LONG")
                }),
            }
        };
        let (compact, expire_snapshots, remove_orphans) =
            (on(COMPACTION)?, on(EXPIRE_SNAPSHOTS)?, on(REMOVE_ORPHANS)?);
        let orphans_older_than =
            number(ORPHANS_OLDER_THAN)?.unwrap_or(orphans::DEFAULT_OLDER_THAN_MS);
        if remove_orphans && u128::from(orphans_older_than) < in_flight.as_millis() {
            return Err(format!(
                "Invalid value {orphans_older_than} for configuration {ORPHANS_OLDER_THAN}: a data file waits up to iceberg.control.commit.interval-ms + iceberg.control.commit.timeout-ms ({} ms) for its commit, so the safety age must be at least that",
                in_flight.as_millis()
            ));
        }
        let settings = MaintenanceSettings {
            interval: Duration::from_millis(
                number(INTERVAL)?.unwrap_or(DEFAULT_INTERVAL_MS).max(1),
            ),
            compact,
            expire_snapshots,
            remove_orphans,
            orphans_older_than: Duration::from_millis(orphans_older_than),
            orphans_interval: Duration::from_millis(
                number(ORPHANS_INTERVAL)?
                    .unwrap_or(DEFAULT_ORPHANS_INTERVAL_MS)
                    .max(1),
            ),
            target_file_size: number(COMPACTION_TARGET)?.map(|n| n.max(1)),
            min_input_files: number(COMPACTION_MIN_FILES)?.unwrap_or(5).max(2) as usize,
        };
        Ok((compact || expire_snapshots || remove_orphans).then_some(settings))
    }
}

/// The connector's maintenance: its own settings, and those of the tables that override any
/// key with `iceberg.table.<table>.floe.maintenance.*`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Maintenance {
    pub default: Option<MaintenanceSettings>,
    pub tables: BTreeMap<String, Option<MaintenanceSettings>>,
    /// The catalog's warehouse (`iceberg.catalog.warehouse`): orphan removal refuses a table
    /// located there.
    pub warehouse: Option<String>,
}

impl Maintenance {
    pub fn parse(config: &ConfigMap, in_flight: Duration) -> Result<Maintenance, String> {
        let default = MaintenanceSettings::parse(&|k: &str| config.get(k).cloned(), in_flight)?;
        let mut tables = BTreeMap::new();
        for key in config.keys() {
            let Some((table, _)) = key
                .strip_prefix(TABLE_PREFIX)
                .and_then(|rest| rest.split_once(".floe.maintenance."))
            else {
                continue;
            };
            if tables.contains_key(table) {
                continue;
            }
            let own = format!("{TABLE_PREFIX}{table}.");
            let settings = MaintenanceSettings::parse(
                &|k: &str| {
                    config
                        .get(&format!("{own}{k}"))
                        .or_else(|| config.get(k))
                        .cloned()
                },
                in_flight,
            )
            .map_err(|e| format!("table {table}: {e}"))?;
            tables.insert(table.to_string(), settings);
        }
        let warehouse = config
            .get("iceberg.catalog.warehouse")
            .map(|w| w.trim().to_string())
            .filter(|w| !w.is_empty());
        Ok(Maintenance {
            default,
            tables,
            warehouse,
        })
    }

    /// The settings of `table` (`namespace.name`); None when nothing is maintained.
    pub fn for_table(&self, table: &str) -> Option<&MaintenanceSettings> {
        match self.tables.get(table) {
            Some(own) => own.as_ref(),
            None => self.default.as_ref(),
        }
    }

    /// Whether any table may be maintained.
    pub fn any(&self) -> bool {
        self.default.is_some() || self.tables.values().any(Option::is_some)
    }
}

/// The maintenance keys, for `/connector-plugins/…/config/validate`.
pub fn config_keys() -> Vec<ConfigKey> {
    use ConfigType::*;
    use Importance::*;
    vec![
        ConfigKey::optional(COMPACTION, Boolean, "true", Medium, "Floe: the coordinator compacts the tables it commits (small files bin-packed, deletes applied)"),
        ConfigKey::optional(EXPIRE_SNAPSHOTS, Boolean, "true", Medium, "Floe: the coordinator expires the snapshots of the tables it commits by their history.expire.* properties, keeping the sink's offsets reachable"),
        ConfigKey::optional(REMOVE_ORPHANS, Boolean, "true", Medium, "Floe: the coordinator deletes files under the table's location that no metadata references and that are older than the safety age"),
        ConfigKey::optional(ORPHANS_OLDER_THAN, Long, "259200000", Medium, "Floe: the safety age of orphan removal, in millis (at least commit interval + commit timeout)"),
        ConfigKey::optional(ORPHANS_INTERVAL, Long, "86400000", Medium, "Floe: time between two orphan removals on one table, in millis"),
        ConfigKey::optional(INTERVAL, Long, "600000", Medium, "Floe: time between two maintenance runs (compaction, expiry, health) on one table, in millis"),
        ConfigKey::nullable(COMPACTION_TARGET, Long, Medium, "Floe: the size compaction writes files at (default: the table's write.target-file-size-bytes, else 512 MiB)"),
        ConfigKey::optional(COMPACTION_MIN_FILES, Int, "5", Medium, "Floe: a partition is compacted once it has this many small files"),
    ]
}

/// Loads `name` (`namespace.table`, nested namespaces dotted) from `catalog`.
pub async fn load_table(catalog: &CatalogHandle, name: &str) -> Result<Table, String> {
    let ident = TableIdent::from_strs(name.split('.'))
        .map_err(|e| format!("invalid table name {name}: {e}"))?;
    catalog
        .load_table(&ident)
        .await
        .map_err(|e| format!("cannot load table {name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> ConfigMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const IN_FLIGHT: Duration = Duration::from_secs(35);

    #[test]
    fn defaults_then_table_overrides() {
        let m = Maintenance::parse(
            &config(&[
                (INTERVAL, "5000"),
                (
                    "iceberg.table.db.quiet.floe.maintenance.compaction.enabled",
                    "false",
                ),
                (
                    "iceberg.table.db.quiet.floe.maintenance.expire-snapshots.enabled",
                    "false",
                ),
                (
                    "iceberg.table.db.quiet.floe.maintenance.remove-orphans.enabled",
                    "false",
                ),
                (
                    "iceberg.table.db.big.floe.maintenance.compaction.target-file-size-bytes",
                    "1000",
                ),
            ]),
            IN_FLIGHT,
        )
        .unwrap();
        let d = m.for_table("db.other").unwrap();
        assert!(d.compact && d.expire_snapshots && d.remove_orphans);
        assert_eq!(d.interval, Duration::from_millis(5000));
        assert_eq!(
            d.orphans_older_than,
            Duration::from_millis(orphans::DEFAULT_OLDER_THAN_MS)
        );
        assert_eq!(d.target_file_size, None);
        assert_eq!(m.for_table("db.quiet"), None);
        let big = m.for_table("db.big").unwrap();
        assert_eq!(big.target_file_size, Some(1000));
        // The connector's keys hold where the table says nothing.
        assert_eq!(big.interval, Duration::from_millis(5000));
        assert!(m.any());
    }

    #[test]
    fn all_off_is_none_and_bad_values_are_errors() {
        let off = config(&[
            (COMPACTION, "false"),
            (EXPIRE_SNAPSHOTS, "false"),
            (REMOVE_ORPHANS, "false"),
        ]);
        let m = Maintenance::parse(&off, IN_FLIGHT).unwrap();
        assert!(!m.any());
        let e = Maintenance::parse(&config(&[(COMPACTION, "yes")]), IN_FLIGHT).unwrap_err();
        assert!(e.contains(COMPACTION), "{e}");
        let e = Maintenance::parse(&config(&[(INTERVAL, "soon")]), IN_FLIGHT).unwrap_err();
        assert!(e.contains(INTERVAL), "{e}");
        let e = Maintenance::parse(
            &config(&[(
                "iceberg.table.db.t.floe.maintenance.remove-orphans.older-than-ms",
                "1000",
            )]),
            IN_FLIGHT,
        )
        .unwrap_err();
        assert!(e.contains("table db.t") && e.contains("35000 ms"), "{e}");
        // A short safety age is fine when orphan removal is off.
        let ok = config(&[(ORPHANS_OLDER_THAN, "1000"), (REMOVE_ORPHANS, "false")]);
        assert!(Maintenance::parse(&ok, IN_FLIGHT).is_ok());
    }
}
