//! Deletion vectors (format v3): the deleted row positions of one data file as a Puffin
//! `deletion-vector-v1` blob, as the Iceberg spec lays it out:
//!
//! ```text
//! length (u32, big-endian: magic + vector) | magic D1 D3 39 64 | vector | CRC-32 (big-endian) of magic + vector
//! ```
//!
//! The vector is a 64-bit Roaring bitmap in the portable format (a little-endian u64 count of
//! 32-bit bitmaps, then each one's little-endian u32 key and portable 32-bit Roaring bitmap, keys
//! ascending). A commit writes one Puffin file holding a blob per data file it deletes rows from;
//! a data file that already has a vector gets a new one holding the old positions and the new
//! (a data file has at most one live vector), and the old one is removed in the same snapshot.
//! On a table upgraded from format v2, the positions of the data file's live position delete
//! files are folded into its new vector too (readers may skip those files once a vector exists),
//! and those that hold positions of that data file alone are removed with the old vector, as
//! Java does.

use std::collections::{HashMap, HashSet};

use iceberg::puffin::{Blob, CompressionCodec, PuffinWriter, DELETION_VECTOR_V1};
use iceberg::spec::{DataContentType, DataFile, DataFileFormat, ManifestContentType, ManifestFile};
use iceberg::table::Table;
use roaring::RoaringTreemap;

use super::position_deletes::{FileDeletes, POS_ID};

const MAGIC: [u8; 4] = [0xD1, 0xD3, 0x39, 0x64];

/// Java's keys in a vector's blob properties.
const REFERENCED_DATA_FILE: &str = "referenced-data-file";
const CARDINALITY: &str = "cardinality";

/// Why a vector's bytes cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("a deletion vector blob of {0} bytes is too short")]
    TooShort(usize),
    #[error("the deletion vector's length prefix says {declared} bytes, the blob holds {actual}")]
    Length { declared: usize, actual: usize },
    #[error("the deletion vector's magic bytes are {0:02x?}, not D1 D3 39 64")]
    Magic([u8; 4]),
    #[error("the deletion vector's CRC-32 is {stored:08x}, its bytes give {computed:08x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("the deletion vector's bitmap cannot be read: {0}")]
    Bitmap(String),
}

/// The blob bytes of `positions`.
pub fn encode(positions: &RoaringTreemap) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + positions.serialized_size());
    body.extend_from_slice(&MAGIC);
    // Writing into a Vec cannot fail.
    let _ = positions.serialize_into(&mut body);
    let crc = crc32fast::hash(&body);
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// The positions of a blob's bytes, checked against its length, magic and CRC.
pub fn decode(blob: &[u8]) -> Result<RoaringTreemap, DecodeError> {
    if blob.len() < 12 {
        return Err(DecodeError::TooShort(blob.len()));
    }
    let declared = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    if declared + 8 != blob.len() {
        return Err(DecodeError::Length {
            declared,
            actual: blob.len().saturating_sub(8),
        });
    }
    let body = &blob[4..4 + declared];
    let magic = [body[0], body[1], body[2], body[3]];
    if magic != MAGIC {
        return Err(DecodeError::Magic(magic));
    }
    let tail = &blob[4 + declared..];
    let stored = u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    RoaringTreemap::deserialize_from(&body[4..]).map_err(|e| DecodeError::Bitmap(e.to_string()))
}

/// The deletes a data file already has.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    /// The entries the new vector replaces: the live vector, and position delete files that
    /// reference this data file alone.
    pub entries: Vec<DataFile>,
    /// Its positions, and those of live position delete files (format v2) for the data file.
    pub positions: RoaringTreemap,
}

/// The deletes `data_files` already have in `manifests` (a snapshot's manifest list): each
/// one's live deletion vector, and the positions of live position delete files.
pub async fn existing(
    table: &Table,
    manifests: &[ManifestFile],
    data_files: &HashSet<String>,
) -> Result<HashMap<String, Existing>, String> {
    let mut out = HashMap::new();
    for manifest in manifests {
        if manifest.content != ManifestContentType::Deletes {
            continue;
        }
        let loaded = crate::snapshot::load_manifest(table, manifest).await?;
        for entry in loaded.entries() {
            let file = entry.data_file();
            if !entry.is_alive() || file.content_type() != DataContentType::PositionDeletes {
                continue;
            }
            let target = file.referenced_data_file();
            if target.as_ref().is_some_and(|t| !data_files.contains(t)) {
                continue;
            }
            if file.file_format() == DataFileFormat::Puffin {
                let Some(target) = target else { continue };
                let positions = read_vector(table, file).await?;
                let slot: &mut Existing = out.entry(target).or_default();
                slot.positions |= positions;
                slot.entries.push(file.clone());
            } else {
                for (found, positions) in
                    read_position_deletes(table, file, Some(data_files)).await?
                {
                    let slot: &mut Existing = out.entry(found).or_default();
                    slot.positions |= positions;
                    if target.is_some() {
                        slot.entries.push(file.clone());
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The positions a (format v2) position delete file holds, per data file: for `data_files`
/// only, or for all.
pub async fn read_position_deletes(
    table: &Table,
    file: &DataFile,
    data_files: Option<&HashSet<String>>,
) -> Result<HashMap<String, RoaringTreemap>, String> {
    use arrow_array::{Array, Int64Array, StringArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let path = file.file_path();
    if file.file_format() != DataFileFormat::Parquet {
        return Err(format!(
            "position delete file {path} is {:?}; Floe reads Parquet position delete files",
            file.file_format()
        ));
    }
    let bytes = crate::snapshot::read_file(table, path).await?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut out: HashMap<String, RoaringTreemap> = HashMap::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("cannot read {path}: {e}"))?;
        let (Some(paths), Some(positions)) = (
            batch
                .column_by_name("file_path")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>()),
            batch
                .column_by_name("pos")
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>()),
        ) else {
            return Err(format!(
                "{path} has no file_path (string) and pos (long) columns"
            ));
        };
        for i in 0..batch.num_rows() {
            if paths.is_null(i) || positions.is_null(i) {
                continue;
            }
            let target = paths.value(i);
            if data_files.is_none_or(|d| d.contains(target)) {
                if let Ok(p) = u64::try_from(positions.value(i)) {
                    out.entry(target.to_string()).or_default().insert(p);
                }
            }
        }
    }
    Ok(out)
}

/// Reads the vector a manifest entry points at.
pub async fn read_vector(table: &Table, file: &DataFile) -> Result<RoaringTreemap, String> {
    let path = file.file_path();
    let (Some(offset), Some(size)) = (file.content_offset(), file.content_size_in_bytes()) else {
        return Err(format!(
            "deletion vector in {path} has no content offset or size"
        ));
    };
    let (offset, size) = (
        u64::try_from(offset).map_err(|_| format!("{path}: negative content offset"))?,
        u64::try_from(size).map_err(|_| format!("{path}: negative content size"))?,
    );
    let bytes = table
        .file_io()
        .new_input(path)
        .map_err(|e| format!("cannot open {path}: {e}"))?
        .reader()
        .await
        .map_err(|e| format!("cannot open {path}: {e}"))?
        .read(offset..offset + size)
        .await
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    decode(&bytes).map_err(|e| format!("{path} at {offset}: {e}"))
}

/// What a commit's vectors are: the new entries (with their partition spec ids) and the
/// entries they replace (old vectors, file-scoped position delete files).
pub struct Written {
    pub added: Vec<(i32, DataFile)>,
    pub replaced: Vec<DataFile>,
}

/// Writes one Puffin file with a vector per data file of `deletes`, each holding the file's new
/// positions and those of its live vector in `existing`.
pub async fn write(
    table: &Table,
    deletes: Vec<FileDeletes>,
    mut existing: HashMap<String, Existing>,
) -> Result<Written, String> {
    let mut deletes: Vec<FileDeletes> = deletes
        .into_iter()
        .filter(|d| !d.positions.is_empty())
        .collect();
    let mut out = Written {
        added: Vec::new(),
        replaced: Vec::new(),
    };
    if deletes.is_empty() {
        return Ok(out);
    }
    deletes.sort_by(|a, b| a.data_file.cmp(&b.data_file));
    let (path, output) = crate::snapshot::new_data_file(table, "dv.puffin")?;
    let mut writer = PuffinWriter::new(
        &output,
        HashMap::from([(
            iceberg::puffin::CREATED_BY_PROPERTY.to_string(),
            format!("Floe {}", env!("CARGO_PKG_VERSION")),
        )]),
        false,
    )
    .await
    .map_err(|e| format!("cannot create {path}: {e}"))?;
    // Blobs follow the 4-byte header, uncompressed and back to back.
    let mut offset: i64 = 4;
    let mut pending = Vec::with_capacity(deletes.len());
    for d in deletes {
        let mut positions = RoaringTreemap::new();
        for p in &d.positions {
            let p = u64::try_from(*p)
                .map_err(|_| format!("negative row position {p} in {}", d.data_file))?;
            positions.insert(p);
        }
        if let Some(old) = existing.remove(&d.data_file) {
            positions |= old.positions;
            out.replaced.extend(old.entries);
        }
        let cardinality = positions.len();
        let data = encode(&positions);
        let size = data.len() as i64;
        let blob = Blob::builder()
            .r#type(DELETION_VECTOR_V1.to_string())
            .fields(vec![POS_ID])
            .snapshot_id(-1)
            .sequence_number(-1)
            .data(data)
            .properties(HashMap::from([
                (REFERENCED_DATA_FILE.to_string(), d.data_file.clone()),
                (CARDINALITY.to_string(), cardinality.to_string()),
            ]))
            .build();
        writer
            .add(blob, CompressionCodec::None)
            .await
            .map_err(|e| format!("cannot write {path}: {e}"))?;
        pending.push((d, offset, size, cardinality));
        offset += size;
    }
    writer
        .close()
        .await
        .map_err(|e| format!("cannot write {path}: {e}"))?;
    let file_size = table
        .file_io()
        .new_input(&path)
        .map_err(|e| format!("cannot open {path}: {e}"))?
        .metadata()
        .await
        .map_err(|e| format!("cannot stat {path}: {e}"))?
        .size;
    for (d, offset, size, cardinality) in pending {
        let file = iceberg::spec::DataFileBuilder::default()
            .content(DataContentType::PositionDeletes)
            .file_path(path.clone())
            .file_format(DataFileFormat::Puffin)
            .partition(d.partition.clone())
            .partition_spec_id(d.spec_id)
            .record_count(cardinality)
            .file_size_in_bytes(file_size)
            .referenced_data_file(Some(d.data_file.clone()))
            .content_offset(Some(offset))
            .content_size_in_bytes(Some(size))
            .build()
            .map_err(|e| {
                format!(
                    "cannot describe the vector of {} in {path}: {e}",
                    d.data_file
                )
            })?;
        out.added.push((d.spec_id, file));
    }
    Ok(out)
}

/// Whether a manifest entry is a deletion vector.
pub fn is_vector(file: &DataFile) -> bool {
    file.content_type() == DataContentType::PositionDeletes
        && file.file_format() == DataFileFormat::Puffin
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_small_vector_has_the_spec_layout() {
        let mut positions = RoaringTreemap::new();
        positions.insert(1);
        positions.insert(3);
        let blob = encode(&positions);
        // Length: magic (4) + one 32-bit bitmap: count u64 (8) + key u32 (4) + the portable
        // bitmap of {1, 3}: cookie 12346 u32, container count u32, key/cardinality-1 u16
        // pair, offset u32, two u16 values = 4 + 4 + 4 + 4 + 4 = 20.
        assert_eq!(&blob[..4], &36u32.to_be_bytes());
        assert_eq!(&blob[4..8], &MAGIC);
        assert_eq!(&blob[8..16], &1u64.to_le_bytes());
        assert_eq!(&blob[16..20], &0u32.to_le_bytes());
        assert_eq!(&blob[20..24], &12346u32.to_le_bytes());
        assert_eq!(blob.len(), 4 + 36 + 4);
        let crc = crc32fast::hash(&blob[4..40]);
        assert_eq!(&blob[40..], &crc.to_be_bytes());
        assert_eq!(decode(&blob), Ok(positions));
    }

    #[test]
    fn damaged_vectors_are_refused_with_the_reason() {
        let mut positions = RoaringTreemap::new();
        positions.insert(7);
        let blob = encode(&positions);
        let mut flipped = blob.clone();
        let last = flipped.len() - 5;
        flipped[last] ^= 1;
        assert!(matches!(
            decode(&flipped),
            Err(DecodeError::Checksum { .. })
        ));
        let mut magic = blob.clone();
        magic[4] = 0;
        assert!(matches!(decode(&magic), Err(DecodeError::Magic(_))));
        assert!(matches!(
            decode(&blob[..blob.len() - 1]),
            Err(DecodeError::Length { .. })
        ));
        assert_eq!(decode(&blob[..3]), Err(DecodeError::TooShort(3)));
    }

    proptest! {
        #[test]
        fn vectors_round_trip(
            low in proptest::collection::vec(0u64..200_000, 0..500),
            high in proptest::collection::vec(0u64..(1u64 << 40), 0..50),
        ) {
            let positions: RoaringTreemap = low.iter().chain(high.iter()).copied().collect();
            let blob = encode(&positions);
            prop_assert_eq!(decode(&blob), Ok(positions));
        }
    }
}
