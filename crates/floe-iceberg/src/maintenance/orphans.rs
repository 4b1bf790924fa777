//! Orphan file removal (Java's `DeleteOrphanFiles`, docs/maintenance.md): files where the
//! table writes that no metadata references, older than a safety age, are deleted — data
//! files of a task that crashed before its commit, files of a commit whose answer was lost,
//! metadata versions dropped from the metadata log.
//!
//! Where it looks: only where the table writes — `write.data.path` and `write.metadata.path`,
//! by default `<location>/data` and `<location>/metadata` — and of those only what lies inside
//! the table's location (a data path elsewhere can be shared by many tables; Java's action
//! lists the location only); never the whole location, which can hold other tables (the SQL catalog puts table `db.a.b` inside table `db.a`'s directory).
//! Below those, a directory that holds another table's metadata (`…/metadata/*.metadata.json`
//! or `version-hint.text` this table does not reference) is another table's, and nothing under
//! it is touched. A table whose location, or a root it writes to, is a bucket or file-system
//! root or the catalog's warehouse is refused.
//!
//! Referenced: the current metadata file and every one in its log, the statistics files,
//! every snapshot's manifest list, every manifest those list and every file any manifest
//! entry names (in any state). Files younger than the safety age stay whatever they are: a
//! task's data file waits for its commit, a commit in flight has written its manifests but
//! not yet its metadata. Paths are compared after normalising the scheme (`file:` and bare
//! paths, `s3a://`/`s3n://` and `s3://`).

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use iceberg::table::Table;
use opendal::Operator;
use serde::Serialize;

use crate::snapshot::{load_manifest, manifests_of};

/// Java's default safety age (`DeleteOrphanFiles.olderThan`: three days).
pub const DEFAULT_OLDER_THAN_MS: u64 = 3 * 24 * 60 * 60 * 1000;

/// How many orphan paths a report lists (the counts cover all of them).
const LISTED: usize = 100;

/// What an orphan removal may delete.
#[derive(Debug, Clone, PartialEq)]
pub struct OrphanOptions {
    /// Only files last modified longer ago than this go.
    pub older_than: Duration,
    pub dry_run: bool,
    /// The catalog's warehouse location, when it has one: a table located there is refused.
    pub warehouse: Option<String>,
}

impl Default for OrphanOptions {
    fn default() -> Self {
        OrphanOptions {
            older_than: Duration::from_millis(DEFAULT_OLDER_THAN_MS),
            dry_run: false,
            warehouse: None,
        }
    }
}

/// What an orphan removal did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct OrphanReport {
    pub table: String,
    /// The directories listed: where the table writes its data and its metadata.
    pub roots: Vec<String>,
    /// Where the table writes outside its location (a `write.data.path` elsewhere, which
    /// other tables may share): not listed, as Java's action lists the location only.
    pub roots_outside_location: Vec<String>,
    /// Files found under those directories.
    pub files_listed: usize,
    /// Files the metadata references.
    pub files_referenced: usize,
    /// Unreferenced files older than the safety age: deleted (or to delete).
    pub orphans: usize,
    pub orphan_bytes: u64,
    /// Unreferenced files younger than the safety age, left alone.
    pub too_young: usize,
    /// Orphans that could not be deleted.
    pub failed: usize,
    /// Directories below the roots that hold another table's metadata: left alone, with every
    /// file under them.
    pub other_tables: Vec<String>,
    /// Files under those directories, not counted as orphans.
    pub other_tables_files: usize,
    /// The first orphans' paths (scheme normalised: local ones bare).
    pub orphan_paths: Vec<String>,
}

/// Why an orphan removal failed.
#[derive(Debug, thiserror::Error)]
pub enum OrphanError {
    #[error("table {table}: {message}")]
    Table { table: String, message: String },
    /// Removal would look where other tables' files can be: nothing is listed or deleted.
    #[error("table {table}: orphan removal refused: {reason}")]
    Refused { table: String, reason: String },
}

/// Where `table` writes: its data root (`write.data.path`, else `write.object-storage.path`,
/// else `write.folder-storage.path`, by default `<location>/data`) and its metadata root
/// (`write.metadata.path`, by default `<location>/metadata`), normalised and without a
/// trailing `/`.
pub fn write_roots(table: &Table) -> (String, String) {
    let metadata = table.metadata();
    let location = normalize(metadata.location().trim_end_matches('/'));
    let root = |keys: &[&str], default: &str| {
        keys.iter()
            .find_map(|key| {
                metadata
                    .properties()
                    .get(*key)
                    .map(|v| v.trim())
                    .filter(|v| !v.is_empty())
            })
            .map(|v| normalize(v.trim_end_matches('/')))
            .unwrap_or_else(|| format!("{location}/{default}"))
    };
    (
        root(
            &[
                "write.data.path",
                "write.object-storage.path",
                "write.folder-storage.path",
            ],
            "data",
        ),
        root(&["write.metadata.path"], "metadata"),
    )
}

/// The roots to list, and those left out for lying outside the table's `location` (a data
/// path elsewhere can be shared by many tables: its files are no one table's to judge). A root
/// inside the other is listed with it.
fn roots_to_list(location: &str, data: &str, metadata: &str) -> (Vec<String>, Vec<String>) {
    let location = normalize(location.trim_end_matches('/'));
    let mut roots: Vec<String> = Vec::new();
    let mut outside = Vec::new();
    for root in [data, metadata] {
        if !is_under(root, &location) {
            outside.push(root.to_string());
        } else if !roots.iter().any(|r| is_under(root, r)) {
            roots.retain(|r| !is_under(r, root));
            roots.push(root.to_string());
        }
    }
    (roots, outside)
}

/// Why a location must not be searched for orphans: a bucket or file-system root, or the
/// catalog's warehouse. None when it may be.
fn unsafe_root(location: &str, warehouse: Option<&str>) -> Option<String> {
    let trimmed = normalize(location.trim_end_matches('/'));
    if trimmed.is_empty() || trimmed == "/" {
        return Some(format!("{location} is the file system's root"));
    }
    if let Some((scheme, rest)) = trimmed.split_once("://") {
        if !rest.trim_matches('/').contains('/') {
            return Some(format!(
                "{location} is the root of {scheme} bucket {}",
                rest.trim_matches('/')
            ));
        }
    }
    let warehouse = warehouse.map(|w| normalize(w.trim().trim_end_matches('/')))?;
    (!warehouse.is_empty() && trimmed == warehouse)
        .then(|| format!("{location} is the catalog's warehouse"))
}

/// The directory a file of another table's metadata names as that table's location: for
/// `<dir>/metadata/<name>` where `<name>` is a metadata file (`*.metadata.json`, possibly
/// compressed, or Hadoop's `version-hint.text`) and `<dir>/metadata` is not `own_metadata`.
fn foreign_table_dir(path: &str, own_metadata: &str) -> Option<String> {
    let (dir, name) = path.rsplit_once('/')?;
    let is_metadata = name.ends_with(".metadata.json")
        || name.ends_with(".metadata.json.gz")
        || name.ends_with(".gz.metadata.json")
        || name == "version-hint.text";
    if !is_metadata || dir == own_metadata {
        return None;
    }
    let table_dir = dir.strip_suffix("/metadata")?;
    Some(table_dir.to_string())
}

/// Whether `path` is `dir` or below it.
fn is_under(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `path` with its scheme normalised, so a file named `file:/x`, `file:///x` or `/x` (or
/// `s3a://b/k` and `s3://b/k`) is one file.
pub fn normalize(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("file:") {
        return format!("/{}", rest.trim_start_matches('/'));
    }
    for scheme in ["s3a://", "s3n://"] {
        if let Some(rest) = path.strip_prefix(scheme) {
            return format!("s3://{rest}");
        }
    }
    path.to_string()
}

/// Every file `table`'s metadata references, normalised.
pub async fn referenced_files(table: &Table) -> Result<HashSet<String>, String> {
    let metadata = table.metadata();
    let mut out = HashSet::new();
    if let Some(location) = table.metadata_location() {
        out.insert(normalize(location));
    }
    for log in metadata.metadata_log() {
        out.insert(normalize(&log.metadata_file));
    }
    for s in metadata.statistics_iter() {
        out.insert(normalize(&s.statistics_path));
    }
    for s in metadata.partition_statistics_iter() {
        out.insert(normalize(&s.statistics_path));
    }
    let mut seen_manifests = HashSet::new();
    for snapshot in metadata.snapshots() {
        out.insert(normalize(snapshot.manifest_list()));
        for m in manifests_of(table, snapshot).await? {
            if !seen_manifests.insert(m.manifest_path.clone()) {
                continue;
            }
            out.insert(normalize(&m.manifest_path));
            let loaded = load_manifest(table, &m).await?;
            for e in loaded.entries() {
                out.insert(normalize(e.data_file().file_path()));
            }
        }
    }
    Ok(out)
}

/// A listed file: its normalised path, the path to delete it by, size and age.
struct Listed {
    path: String,
    modified: Option<SystemTime>,
    size: u64,
}

/// The operator that lists `location`, and the prefix to list, with how a listed entry's
/// path becomes a full one.
fn lister_for(table: &Table, location: &str) -> Result<(Operator, String, String), String> {
    let location = normalize(location);
    let dir = format!("{}/", location.trim_end_matches('/'));
    if let Some(local) = dir.strip_prefix('/') {
        let op = Operator::new(opendal::services::Fs::default().root("/"))
            .map_err(|e| format!("cannot list {location}: {e}"))?
            .finish();
        return Ok((op, local.to_string(), "file:///".to_string()));
    }
    if let Some(rest) = dir.strip_prefix("s3://") {
        let (bucket, key) = rest
            .split_once('/')
            .ok_or_else(|| format!("table location {location} has no bucket"))?;
        let props = table.file_io().config().props();
        let mut builder = opendal::services::S3::default().bucket(bucket);
        if let Some(v) = props.get("s3.endpoint") {
            builder = builder.endpoint(v);
        }
        if let Some(v) = props
            .get("s3.region")
            .or_else(|| props.get("client.region"))
        {
            builder = builder.region(v);
        }
        if let Some(v) = props.get("s3.access-key-id") {
            builder = builder.access_key_id(v);
        }
        if let Some(v) = props.get("s3.secret-access-key") {
            builder = builder.secret_access_key(v);
        }
        if let Some(v) = props.get("s3.session-token") {
            builder = builder.session_token(v);
        }
        let path_style = props
            .get("s3.path-style-access")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
        if !path_style {
            builder = builder.enable_virtual_host_style();
        }
        let op = Operator::new(builder)
            .map_err(|e| format!("cannot list {location}: {e}"))?
            .finish();
        return Ok((op, key.to_string(), format!("s3://{bucket}/")));
    }
    Err(format!(
        "cannot list {location}: orphan removal lists local and S3 locations only"
    ))
}

async fn list(table: &Table, location: &str) -> Result<Vec<Listed>, String> {
    let (op, prefix, root) = lister_for(table, location)?;
    let mut lister = op
        .lister_with(&prefix)
        .recursive(true)
        .await
        .map_err(|e| format!("cannot list {location}: {e}"))?;
    let mut out = Vec::new();
    while let Some(entry) = lister
        .try_next()
        .await
        .map_err(|e| format!("cannot list {location}: {e}"))?
    {
        if entry.metadata().is_dir() {
            continue;
        }
        let mut modified = entry.metadata().last_modified().map(SystemTime::from);
        let mut size = entry.metadata().content_length();
        if modified.is_none() {
            // The local lister gives names only.
            let meta = op
                .stat(entry.path())
                .await
                .map_err(|e| format!("cannot read the age of {}: {e}", entry.path()))?;
            modified = meta.last_modified().map(SystemTime::from);
            size = meta.content_length();
        }
        out.push(Listed {
            path: format!("{root}{}", entry.path()),
            modified,
            size,
        });
    }
    Ok(out)
}

/// Deletes `table`'s orphan files older than the safety age.
pub async fn remove_orphans(
    table: &Table,
    options: &OrphanOptions,
) -> Result<OrphanReport, OrphanError> {
    let name = table.identifier().to_string();
    let fail = |message: String| OrphanError::Table {
        table: name.clone(),
        message,
    };
    let (data_root, metadata_root) = write_roots(table);
    let location = table.metadata().location();
    let (roots, outside) = roots_to_list(location, &data_root, &metadata_root);
    for place in std::iter::once(location).chain(roots.iter().map(String::as_str)) {
        if let Some(reason) = unsafe_root(place, options.warehouse.as_deref()) {
            return Err(OrphanError::Refused {
                table: name.clone(),
                reason: format!(
                    "{reason}, where other tables' files can be; give the table a location of its own"
                ),
            });
        }
    }
    // A commit landing after `table` was loaded references files written since: they are
    // younger than the safety age, so they stay.
    let mut listed = Vec::new();
    for root in &roots {
        listed.extend(list(table, root).await.map_err(fail)?);
    }
    let referenced = referenced_files(table).await.map_err(fail)?;
    let cutoff = SystemTime::now()
        .checked_sub(options.older_than)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut report = OrphanReport {
        table: name.clone(),
        roots: roots.clone(),
        roots_outside_location: outside,
        files_listed: listed.len(),
        ..OrphanReport::default()
    };
    let listed: Vec<(String, &Listed)> = listed.iter().map(|f| (normalize(&f.path), f)).collect();
    // Another table's metadata below a root marks its directory: everything under it is that
    // table's, whatever this table's metadata says.
    let others: BTreeSet<String> = listed
        .iter()
        .filter(|(path, _)| !referenced.contains(path))
        .filter_map(|(path, _)| foreign_table_dir(path, &metadata_root))
        .collect();
    let mut orphans = BTreeSet::new();
    for (path, file) in &listed {
        if others.iter().any(|dir| is_under(path, dir)) {
            report.other_tables_files += 1;
            continue;
        }
        if referenced.contains(path) || path.ends_with("/version-hint.text") {
            report.files_referenced += 1;
            continue;
        }
        match file.modified {
            Some(t) if t < cutoff => {
                report.orphan_bytes += file.size;
                orphans.insert(file.path.clone());
            }
            _ => report.too_young += 1,
        }
    }
    if !others.is_empty() {
        tracing::warn!(table = %name, other_tables = ?others, "orphan removal leaves alone directories below the table's roots that hold another table's metadata");
    }
    report.other_tables = others.into_iter().collect();
    report.orphans = orphans.len();
    report.orphan_paths = orphans.iter().take(LISTED).map(|p| normalize(p)).collect();
    if options.dry_run {
        return Ok(report);
    }
    for path in &orphans {
        if let Err(e) = table.file_io().delete(path).await {
            report.failed += 1;
            tracing::warn!(table = %name, file = %path, error = %e, "cannot delete an orphan file");
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_normalise() {
        assert_eq!(normalize("file:///tmp/w/a.parquet"), "/tmp/w/a.parquet");
        assert_eq!(normalize("file:/tmp/w/a.parquet"), "/tmp/w/a.parquet");
        assert_eq!(normalize("/tmp/w/a.parquet"), "/tmp/w/a.parquet");
        assert_eq!(normalize("s3a://b/k/a.parquet"), "s3://b/k/a.parquet");
        assert_eq!(normalize("s3n://b/k"), "s3://b/k");
        assert_eq!(normalize("s3://b/k"), "s3://b/k");
        assert_eq!(normalize("gs://b/k"), "gs://b/k");
    }

    #[test]
    fn roots_of_buckets_file_systems_and_warehouses_are_refused() {
        assert!(unsafe_root("/", None).is_some());
        assert!(unsafe_root("file:///", None).is_some());
        assert!(unsafe_root("s3://bucket", None).is_some());
        assert!(unsafe_root("s3a://bucket/", None).is_some());
        assert!(unsafe_root("gs://bucket//", None).is_some());
        let wh = Some("file:///tmp/wh/");
        assert!(unsafe_root("/tmp/wh", wh).is_some());
        assert!(unsafe_root("file:/tmp/wh/", wh).is_some());
        assert_eq!(unsafe_root("/tmp/wh/db/t", wh), None);
        assert_eq!(
            unsafe_root("s3://bucket/wh/db/t", Some("s3://bucket/wh")),
            None
        );
        assert_eq!(unsafe_root("s3://bucket/t", None), None);
    }

    #[test]
    fn another_tables_metadata_marks_its_directory() {
        let own = "/wh/db/a/metadata";
        // The table `db.a.data` sits in `db.a`'s data directory.
        assert_eq!(
            foreign_table_dir("/wh/db/a/data/metadata/00001-x.metadata.json", own).as_deref(),
            Some("/wh/db/a/data")
        );
        assert_eq!(
            foreign_table_dir("/wh/db/a/data/t/metadata/version-hint.text", own).as_deref(),
            Some("/wh/db/a/data/t")
        );
        assert_eq!(
            foreign_table_dir("/wh/db/a/data/x/metadata/v3.gz.metadata.json", own).as_deref(),
            Some("/wh/db/a/data/x")
        );
        // This table's own metadata, and files that are not metadata files.
        assert_eq!(
            foreign_table_dir("/wh/db/a/metadata/00009-x.metadata.json", own),
            None
        );
        assert_eq!(
            foreign_table_dir("/wh/db/a/data/metadata/snap-1.avro", own),
            None
        );
        assert_eq!(
            foreign_table_dir("/wh/db/a/data/f.metadata.json", own),
            None
        );
    }

    #[test]
    fn only_roots_inside_the_location_are_listed() {
        let (roots, outside) = roots_to_list("file:///wh/t/", "/wh/t/data", "/wh/t/metadata");
        assert_eq!(roots, vec!["/wh/t/data", "/wh/t/metadata"]);
        assert!(outside.is_empty());
        // A data path shared by many tables (object storage) is not this table's to list.
        let (roots, outside) = roots_to_list("s3://b/wh/t", "s3://b/data", "s3://b/wh/t/metadata");
        assert_eq!(roots, vec!["s3://b/wh/t/metadata"]);
        assert_eq!(outside, vec!["s3://b/data"]);
        // A root inside the other is listed with it.
        let (roots, _) = roots_to_list("/wh/t", "/wh/t", "/wh/t/metadata");
        assert_eq!(roots, vec!["/wh/t"]);
        let (roots, _) = roots_to_list("/wh/t", "/wh/t/metadata/data", "/wh/t/metadata");
        assert_eq!(roots, vec!["/wh/t/metadata"]);
    }

    #[test]
    fn under_means_at_or_below_a_directory() {
        assert!(is_under("/wh/t/data/f", "/wh/t/data"));
        assert!(is_under("/wh/t/data", "/wh/t/data"));
        assert!(!is_under("/wh/t/data2/f", "/wh/t/data"));
        assert!(!is_under("/wh/t", "/wh/t/data"));
    }
}
