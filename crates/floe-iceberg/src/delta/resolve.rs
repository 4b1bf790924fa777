//! Turning the tasks' equality deletes into position deletes, in the coordinator, before it
//! commits (docs/upserts.md).
//!
//! The keys of the cycle's equality-delete files are looked up in every live data file of the
//! snapshot being committed on: files whose bounds on the first key column cannot hold any of
//! the keys are skipped, the others are read (key columns only) into an index of key →
//! positions that is kept between commits, so each data file is read once. A position found is
//! forgotten by the index once its delete is committed, so a later change of the same key does
//! not delete it again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use iceberg::spec::{DataContentType, DataFile, Datum, ManifestContentType, Schema};
use iceberg::table::Table;
use tracing::debug;

use super::key_schema;
use super::keys::{arrow_key_schema, KeyEncoder};
use super::position_deletes::FileDeletes;

/// The rows a resolution found in one data file: its path, and each row's key and position.
pub type FileRows = (String, Vec<(Box<[u8]>, u32)>);

/// Keys → row positions of one data file.
struct FileIndex {
    keys: HashMap<Box<[u8]>, Vec<u32>>,
}

/// The indexes of one table's data files, kept between commits.
#[derive(Default)]
pub struct KeyIndexCache {
    /// By key field ids, then data file path.
    files: HashMap<(Vec<i32>, String), FileIndex>,
    entries: usize,
}

/// Keys held in all of a table's indexes before they are dropped to make room.
const MAX_CACHED_KEYS: usize = 4_000_000;

impl KeyIndexCache {
    /// Forgets committed deletes, so the same rows are not deleted again.
    pub fn forget(&mut self, key_ids: &[i32], deleted: &[FileRows]) {
        for (path, rows) in deleted {
            if let Some(index) = self.files.get_mut(&(key_ids.to_vec(), path.clone())) {
                for (key, pos) in rows {
                    if let Some(positions) = index.keys.get_mut(key) {
                        positions.retain(|p| p != pos);
                        if positions.is_empty() {
                            index.keys.remove(key);
                            self.entries = self.entries.saturating_sub(1);
                        }
                    }
                }
            }
        }
    }

    /// Drops the indexes of files no longer live (compacted away, expired).
    fn retain_live(&mut self, live: &HashSet<String>) {
        let before = self.files.len();
        self.files.retain(|(_, path), _| live.contains(path));
        if self.files.len() != before {
            self.entries = self.files.values().map(|f| f.keys.len()).sum();
        }
    }

    fn insert(&mut self, key: (Vec<i32>, String), index: FileIndex) {
        if self.entries + index.keys.len() > MAX_CACHED_KEYS {
            self.files.clear();
            self.entries = 0;
        }
        self.entries += index.keys.len();
        self.files.insert(key, index);
    }
}

/// What resolving found: the position deletes to commit, and what to forget once committed.
pub struct Resolved {
    pub deletes: Vec<FileDeletes>,
    pub key_ids: Vec<i32>,
    pub found: Vec<FileRows>,
    pub keys: usize,
    pub files_read: usize,
    pub files_skipped: usize,
}

/// The first key column's smallest and largest value among the keys, for skipping data files.
struct KeyRange {
    field_id: i32,
    min: Datum,
    max: Datum,
}

/// Finds the rows that the keys of `equality_deletes` match in the live data files of
/// `table`'s branch head (`branch`, or the current snapshot) and in `earlier` (data files of
/// the same commit announced before these deletes, written with the default spec).
pub async fn resolve(
    table: &Table,
    branch: Option<&str>,
    equality_deletes: &[DataFile],
    earlier: &[DataFile],
    cache: &mut KeyIndexCache,
) -> Result<Resolved, String> {
    let metadata = table.metadata();
    let schema: &Schema = metadata.current_schema();
    let key_ids = equality_deletes
        .first()
        .and_then(|f| f.equality_ids())
        .ok_or("an equality-delete file without equality ids")?;
    if equality_deletes
        .iter()
        .any(|f| f.equality_ids().as_deref() != Some(&key_ids[..]))
    {
        return Err("the cycle's equality deletes use different key columns".into());
    }
    let fields = key_ids
        .iter()
        .map(|id| {
            schema
                .field_by_id(*id)
                .cloned()
                .ok_or_else(|| format!("key field {id} is not in the table schema"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key_schema = key_schema(&fields)?;
    let encoder = KeyEncoder::new(&*arrow_key_schema(&key_schema)?)?;
    // The keys, and the range of the first key column.
    let mut keys: HashSet<Box<[u8]>> = HashSet::new();
    let mut range: Option<KeyRange> = None;
    for file in equality_deletes {
        let bytes = crate::snapshot::read_file(table, file.file_path()).await?;
        keys.extend(encoder.file_keys(bytes.clone())?);
        range = widen(range, file, key_ids[0]);
    }
    let mut out = Resolved {
        deletes: Vec::new(),
        key_ids: key_ids.clone(),
        found: Vec::new(),
        keys: keys.len(),
        files_read: 0,
        files_skipped: 0,
    };
    let snapshot = match branch {
        Some(b) => metadata.snapshot_for_ref(b),
        None => metadata.current_snapshot(),
    };
    let mut live: HashSet<String> = HashSet::new();
    let mut candidates: Vec<(i32, Arc<DataFile>)> = Vec::new();
    for file in earlier {
        live.insert(file.file_path().to_string());
        if overlaps(range.as_ref(), file) {
            candidates.push((metadata.default_partition_spec_id(), Arc::new(file.clone())));
        } else {
            out.files_skipped += 1;
        }
    }
    let manifests = match snapshot {
        Some(snapshot) => crate::snapshot::manifests_of(table, snapshot).await?,
        None => Vec::new(),
    };
    for manifest in &manifests {
        if manifest.content != ManifestContentType::Data {
            continue;
        }
        let loaded = crate::snapshot::load_manifest(table, manifest).await?;
        for entry in loaded.entries() {
            if !entry.is_alive() || entry.content_type() != DataContentType::Data {
                continue;
            }
            let file = entry.data_file();
            live.insert(file.file_path().to_string());
            if !overlaps(range.as_ref(), file) {
                out.files_skipped += 1;
                continue;
            }
            candidates.push((manifest.partition_spec_id, Arc::new(file.clone())));
        }
    }
    cache.retain_live(&live);
    for (spec_id, file) in candidates {
        let cache_key = (key_ids.clone(), file.file_path().to_string());
        if !cache.files.contains_key(&cache_key) {
            let bytes = crate::snapshot::read_file(table, file.file_path()).await?;
            let rows = encoder
                .file_keys(bytes)
                .map_err(|e| format!("data file {}: {e}", file.file_path()))?;
            let mut index: HashMap<Box<[u8]>, Vec<u32>> = HashMap::with_capacity(rows.len());
            for (pos, key) in rows.into_iter().enumerate() {
                index.entry(key).or_default().push(pos as u32);
            }
            cache.insert(cache_key.clone(), FileIndex { keys: index });
            out.files_read += 1;
        }
        let Some(index) = cache.files.get(&cache_key) else {
            continue;
        };
        let mut rows: Vec<(Box<[u8]>, u32)> = Vec::new();
        if keys.len() <= index.keys.len() {
            for k in &keys {
                if let Some(positions) = index.keys.get(k) {
                    rows.extend(positions.iter().map(|p| (k.clone(), *p)));
                }
            }
        } else {
            for (k, positions) in &index.keys {
                if keys.contains(k) {
                    rows.extend(positions.iter().map(|p| (k.clone(), *p)));
                }
            }
        }
        if rows.is_empty() {
            continue;
        }
        let mut positions: Vec<i64> = rows.iter().map(|(_, p)| *p as i64).collect();
        positions.sort_unstable();
        positions.dedup();
        out.deletes.push(FileDeletes {
            data_file: file.file_path().to_string(),
            spec_id,
            partition: file.partition().clone(),
            positions,
        });
        out.found.push((file.file_path().to_string(), rows));
    }
    debug!(
        table = %table.identifier(),
        keys = out.keys,
        files_read = out.files_read,
        files_skipped = out.files_skipped,
        rows_deleted = out.deletes.iter().map(|d| d.positions.len()).sum::<usize>(),
        "equality deletes resolved to positions"
    );
    Ok(out)
}

/// Widens `range` by the bounds an equality-delete file records for the first key column.
fn widen(range: Option<KeyRange>, file: &DataFile, field_id: i32) -> Option<KeyRange> {
    let (lo, hi) = (
        file.lower_bounds().get(&field_id)?,
        file.upper_bounds().get(&field_id)?,
    );
    Some(match range {
        None => KeyRange {
            field_id,
            min: lo.clone(),
            max: hi.clone(),
        },
        Some(r) => KeyRange {
            field_id,
            min: if lo < &r.min { lo.clone() } else { r.min },
            max: if hi > &r.max { hi.clone() } else { r.max },
        },
    })
}

/// Whether a data file's bounds on the first key column can hold a key of `range` (true when
/// either side has no bounds: the file is read).
fn overlaps(range: Option<&KeyRange>, file: &DataFile) -> bool {
    let Some(r) = range else { return true };
    match (
        file.lower_bounds().get(&r.field_id),
        file.upper_bounds().get(&r.field_id),
    ) {
        (Some(lo), Some(hi)) => {
            // Bounds of a string column may be truncated: a truncated upper bound is still an
            // upper bound of the prefix, so compare conservatively by prefix for strings.
            let below = hi.partial_cmp(&r.min) == Some(std::cmp::Ordering::Less)
                && !is_prefix_bound(hi, &r.min);
            let above = lo.partial_cmp(&r.max) == Some(std::cmp::Ordering::Greater);
            !(below || above)
        }
        _ => true,
    }
}

/// Whether `bound` (a possibly truncated string upper bound) is a prefix of `value`.
fn is_prefix_bound(bound: &Datum, value: &Datum) -> bool {
    match (bound.literal(), value.literal()) {
        (
            iceberg::spec::PrimitiveLiteral::String(b),
            iceberg::spec::PrimitiveLiteral::String(v),
        ) => v.starts_with(b.as_str()),
        _ => false,
    }
}
