//! Where a table's data files go, by Java's write properties: under the data root
//! (`write.data.path`, else `write.object-storage.path`, else `write.folder-storage.path`, else
//! `<location>/data`), in partition directories, or — with `write.object-storage.enabled` — in
//! Java's object-storage layout: four directories of hash bits before the partition path
//! (`…/data/0101/0110/1001/10110010/id_bucket=1/00001-….parquet`), which spreads the files of
//! a table over an object store's key prefixes as Java's `ObjectStoreLocationProvider` does;
//! with `write.object-storage.partitioned-paths=false` the hash is joined to the file name and
//! no partition directory is made.

use std::collections::HashMap;

use iceberg::spec::{PartitionKey, TableMetadata};
use iceberg::writer::file_writer::location_generator::LocationGenerator;

const DATA_PATH: &str = "write.data.path";
const OBJECT_STORAGE_PATH: &str = "write.object-storage.path";
const FOLDER_STORAGE_PATH: &str = "write.folder-storage.path";
const OBJECT_STORAGE: &str = "write.object-storage.enabled";
const PARTITIONED_PATHS: &str = "write.object-storage.partitioned-paths";

/// Bits of the file name's hash that make the directories, and how they are cut.
const HASH_BITS: usize = 20;
const DIR_LENGTH: usize = 4;
const DIR_DEPTH: usize = 3;

/// The data file locations of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct DataLocations {
    root: String,
    object_storage: bool,
    partitioned_paths: bool,
}

impl DataLocations {
    /// The layout `props` (the table's properties with the connector's write properties over
    /// them) set for the table of `metadata`; a flag that is not true or false is an error
    /// naming its key.
    pub fn for_table(
        metadata: &TableMetadata,
        props: &HashMap<String, String>,
    ) -> Result<DataLocations, String> {
        let flag = |key: &str, default: bool| match props.get(key).map(|v| v.trim()) {
            None | Some("") => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(format!(
                "Invalid value {v} for table property {key}: expected true or false"
            )),
        };
        let root = [DATA_PATH, OBJECT_STORAGE_PATH, FOLDER_STORAGE_PATH]
            .iter()
            .find_map(|k| props.get(*k).map(|v| v.trim()).filter(|v| !v.is_empty()))
            .map(|v| v.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("{}/data", metadata.location().trim_end_matches('/')));
        Ok(DataLocations {
            root,
            object_storage: flag(OBJECT_STORAGE, false)?,
            partitioned_paths: flag(PARTITIONED_PATHS, true)?,
        })
    }

    fn location(&self, partition_path: Option<String>, file_name: &str) -> String {
        let root = &self.root;
        match (self.object_storage, partition_path) {
            (false, None) => format!("{root}/{file_name}"),
            (false, Some(p)) => format!("{root}/{p}/{file_name}"),
            (true, path) if self.partitioned_paths => {
                let name = match path {
                    Some(p) => format!("{p}/{file_name}"),
                    None => file_name.to_string(),
                };
                format!("{root}/{}/{name}", entropy_dirs(&name))
            }
            (true, _) => format!("{root}/{}-{file_name}", entropy_dirs(file_name)),
        }
    }
}

impl LocationGenerator for DataLocations {
    fn generate_location(&self, partition_key: Option<&PartitionKey>, file_name: &str) -> String {
        let path = partition_key
            .filter(|k| !PartitionKey::is_effectively_none(Some(*k)))
            .map(PartitionKey::to_path);
        self.location(path, file_name)
    }
}

/// Java's `ObjectStoreLocationProvider.computeHash`: the low 20 bits of the name's murmur3
/// hash (32-bit, seed 0, of its UTF-8 bytes) as a binary string, cut into three directories of
/// four bits and one of the rest.
fn entropy_dirs(name: &str) -> String {
    let hash = murmur3::murmur3_32(&mut std::io::Cursor::new(name.as_bytes()), 0).unwrap_or(0);
    let bits = format!("{:032b}", hash | 0x8000_0000);
    let bits = &bits[bits.len() - HASH_BITS..];
    let mut dirs = Vec::new();
    for i in (0..DIR_DEPTH * DIR_LENGTH).step_by(DIR_LENGTH) {
        dirs.push(&bits[i..(i + DIR_LENGTH).min(bits.len())]);
    }
    if bits.len() > DIR_DEPTH * DIR_LENGTH {
        dirs.push(&bits[DIR_DEPTH * DIR_LENGTH..]);
    }
    dirs.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_directories_are_javas() {
        // murmur3_32("a") = 0x3c2569b2: its low 20 bits, 0101 0110 1001 10110010.
        assert_eq!(entropy_dirs("a"), "0101/0110/1001/10110010");
        for name in ["x.parquet", "id=1/00001-0-a.parquet", ""] {
            let dirs = entropy_dirs(name);
            let parts: Vec<&str> = dirs.split('/').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                vec![4, 4, 4, 8]
            );
            assert!(dirs.chars().all(|c| c == '0' || c == '1' || c == '/'));
        }
    }

    #[test]
    fn layouts() {
        let plain = DataLocations {
            root: "s3://b/t/data".into(),
            object_storage: false,
            partitioned_paths: true,
        };
        assert_eq!(plain.location(None, "f.parquet"), "s3://b/t/data/f.parquet");
        assert_eq!(
            plain.location(Some("id=1".into()), "f.parquet"),
            "s3://b/t/data/id=1/f.parquet"
        );
        let object = DataLocations {
            object_storage: true,
            ..plain.clone()
        };
        assert_eq!(
            object.location(None, "a"),
            "s3://b/t/data/0101/0110/1001/10110010/a"
        );
        let hashed = entropy_dirs("id=1/f.parquet");
        assert_eq!(
            object.location(Some("id=1".into()), "f.parquet"),
            format!("s3://b/t/data/{hashed}/id=1/f.parquet")
        );
        let flat = DataLocations {
            partitioned_paths: false,
            ..object
        };
        assert_eq!(
            flat.location(Some("id=1".into()), "a"),
            "s3://b/t/data/0101/0110/1001/10110010-a"
        );
    }
}
