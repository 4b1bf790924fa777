//! One open writer per table: Arrow batches in, Parquet data files out (rolling at the
//! table's target size, fanned out per partition for partitioned tables).
//!
//! Parquet encoding and compression run in a task of their own per table, fed through a small
//! bounded channel, so a sink task decodes the next records while the previous ones are encoded
//! (two cores for one task) and memory stays bounded by the channel.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef as ArrowSchemaRef;
use iceberg::arrow::{schema_to_arrow_schema, RecordBatchPartitionSplitter};
use iceberg::spec::{DataFile, DataFileFormat};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::{DataFileWriter, DataFileWriterBuilder};
use iceberg::writer::file_writer::location_generator::DefaultFileNameGenerator;
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::partitioning::fanout_writer::FanoutWriter;
use iceberg::writer::partitioning::PartitioningWriter;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::SinkError;
use crate::events::WireDataFile;
use crate::locations::DataLocations;
use crate::metrics_mode::MetricsModes;

type FileWriterBuilder =
    DataFileWriterBuilder<ParquetWriterBuilder, DataLocations, DefaultFileNameGenerator>;
type FileWriter = DataFileWriter<ParquetWriterBuilder, DataLocations, DefaultFileNameGenerator>;

struct PartitionedWriter {
    writer: FanoutWriter<FileWriterBuilder>,
    splitter: RecordBatchPartitionSplitter,
}

enum Inner {
    Unpartitioned(Box<FileWriter>),
    Partitioned(Box<PartitionedWriter>),
}

/// Writes one table's rows for the current commit cycle.
pub struct TableWriter {
    name: String,
    table: Table,
    arrow_schema: ArrowSchemaRef,
    /// What the closed files' manifest entries carry of each column (`write.metadata.metrics.*`).
    metrics: MetricsModes,
    rows: u64,
    batches: Option<mpsc::Sender<RecordBatch>>,
    encoder: Option<JoinHandle<Result<Vec<DataFile>, SinkError>>>,
}

/// Batches queued for encoding per table: enough to keep the encoder busy, few enough to keep
/// memory flat.
const QUEUED_BATCHES: usize = 4;

const DEFAULT_TARGET_FILE_SIZE: usize = 512 * 1024 * 1024;
/// Java's table property for the size of a Parquet row group, and its default (128 MiB): a row
/// group is flushed once its encoded size passes it, which bounds a writer's memory with wide
/// records and lets readers split a file between threads.
const ROW_GROUP_SIZE: &str = "write.parquet.row-group-size-bytes";
const DEFAULT_ROW_GROUP_BYTES: usize = 128 * 1024 * 1024;
/// parquet-java's zstd level, what the Java sink writes with when
/// `write.parquet.compression-level` is unset (the Rust writer's own default is 1).
const DEFAULT_ZSTD_LEVEL: i32 = 3;

fn compression(props: &HashMap<String, String>) -> Result<Compression, String> {
    let codec = props
        .get("write.parquet.compression-codec")
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "zstd".into());
    let level = props
        .get("write.parquet.compression-level")
        .and_then(|l| l.trim().parse::<i32>().ok());
    Ok(match codec.as_str() {
        "zstd" => Compression::ZSTD(match level {
            Some(l) => ZstdLevel::try_new(l).map_err(|e| e.to_string())?,
            None => ZstdLevel::try_new(DEFAULT_ZSTD_LEVEL).map_err(|e| e.to_string())?,
        }),
        "snappy" => Compression::SNAPPY,
        "gzip" => Compression::GZIP(match level {
            Some(l) => GzipLevel::try_new(l as u32).map_err(|e| e.to_string())?,
            None => GzipLevel::default(),
        }),
        "lz4" => Compression::LZ4_RAW,
        "uncompressed" | "none" => Compression::UNCOMPRESSED,
        other => {
            return Err(format!(
                "unsupported write.parquet.compression-codec {other}"
            ))
        }
    })
}

/// Java's Parquet page and dictionary settings, and their defaults (parquet-java's: a 2 MiB
/// dictionary page where the Rust writer's default is 1 MiB).
const PAGE_SIZE: &str = "write.parquet.page-size-bytes";
const DEFAULT_PAGE_BYTES: usize = 1024 * 1024;
const PAGE_ROW_LIMIT: &str = "write.parquet.page-row-limit";
const DEFAULT_PAGE_ROWS: usize = 20_000;
const DICT_SIZE: &str = "write.parquet.dict-size-bytes";
const DEFAULT_DICT_BYTES: usize = 2 * 1024 * 1024;
/// Per column: `write.parquet.bloom-filter-enabled.column.<name>` (true/false) and
/// `write.parquet.bloom-filter-fpp.column.<name>` (the false-positive probability, 0 to 1).
const BLOOM_ENABLED: &str = "write.parquet.bloom-filter-enabled.column.";
const BLOOM_FPP: &str = "write.parquet.bloom-filter-fpp.column.";

/// The Parquet writer's settings from the table's write properties (Java's keys): codec and
/// level, row group, page and dictionary sizes, page row limit, and bloom filters per column.
/// A value that is not of its type is an error naming the key.
pub fn parquet_properties(props: &HashMap<String, String>) -> Result<WriterProperties, String> {
    let size = |key: &str, default: usize| -> Result<usize, String> {
        match props.get(key).map(|v| v.trim()) {
            None | Some("") => Ok(default),
            Some(v) => v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("Invalid value {v} for table property {key}: expected a positive number")
            }),
        }
    };
    let mut builder = WriterProperties::builder()
        .set_compression(compression(props)?)
        .set_max_row_group_bytes(Some(size(ROW_GROUP_SIZE, DEFAULT_ROW_GROUP_BYTES)?))
        .set_data_page_size_limit(size(PAGE_SIZE, DEFAULT_PAGE_BYTES)?)
        .set_data_page_row_count_limit(size(PAGE_ROW_LIMIT, DEFAULT_PAGE_ROWS)?)
        .set_dictionary_page_size_limit(size(DICT_SIZE, DEFAULT_DICT_BYTES)?);
    let column = |name: &str| {
        parquet::schema::types::ColumnPath::from(
            name.split('.').map(str::to_string).collect::<Vec<_>>(),
        )
    };
    let mut enabled = Vec::new();
    for (key, value) in props {
        if let Some(name) = key.strip_prefix(BLOOM_ENABLED) {
            match value.trim().to_ascii_lowercase().as_str() {
                "true" => enabled.push(name),
                "false" => {}
                _ => {
                    return Err(format!(
                        "Invalid value {value} for table property {key}: expected true or false"
                    ))
                }
            }
        }
    }
    for name in enabled {
        builder = builder.set_column_bloom_filter_enabled(column(name), true);
        // The writer's setting would turn a filter on by itself; Java's only tunes one.
        let key = format!("{BLOOM_FPP}{name}");
        if let Some(value) = props.get(&key) {
            let fpp = value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|p| *p > 0.0 && *p < 1.0)
                .ok_or_else(|| {
                    format!("Invalid value {value} for table property {key}: expected a probability between 0 and 1")
                })?;
            builder = builder.set_column_bloom_filter_fpp(column(name), fpp);
        }
    }
    Ok(builder.build())
}

impl TableWriter {
    /// Opens a writer for `table`; `write_props` override the table's properties.
    pub async fn open(
        name: &str,
        table: Table,
        write_props: &std::collections::BTreeMap<String, String>,
    ) -> Result<TableWriter, SinkError> {
        Self::open_with(name, table, write_props, false).await
    }

    /// Opens a writer whose files also store each row's lineage (`_row_id` and
    /// `_last_updated_sequence_number`, the last two columns of its batches): a rewrite of a
    /// format version 3 table's rows keeps their ids.
    pub async fn open_with_lineage(
        name: &str,
        table: Table,
        write_props: &std::collections::BTreeMap<String, String>,
    ) -> Result<TableWriter, SinkError> {
        Self::open_with(name, table, write_props, true).await
    }

    async fn open_with(
        name: &str,
        table: Table,
        write_props: &std::collections::BTreeMap<String, String>,
        lineage: bool,
    ) -> Result<TableWriter, SinkError> {
        let fail = |message: String| SinkError::Table {
            table: name.to_string(),
            message,
        };
        let metadata = table.metadata();
        let mut props = metadata.properties().clone();
        props.extend(write_props.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(format) = props.get("write.format.default") {
            if !format.eq_ignore_ascii_case("parquet") {
                return Err(fail(format!(
                    "write.format.default={format} is not supported; Floe writes parquet"
                )));
            }
        }
        let mut schema = metadata.current_schema().clone();
        if lineage {
            let fields = schema
                .as_struct()
                .fields()
                .iter()
                .cloned()
                .chain(crate::lineage::fields())
                .collect::<Vec<_>>();
            schema = Arc::new(
                iceberg::spec::Schema::builder()
                    .with_schema_id(schema.schema_id())
                    .with_identifier_field_ids(schema.identifier_field_ids())
                    .with_fields(fields)
                    .build()
                    .map_err(|e| fail(format!("cannot add the row lineage fields: {e}")))?,
            );
        }
        let arrow_schema = Arc::new(
            schema_to_arrow_schema(&schema)
                .map_err(|e| fail(format!("cannot map the schema to Arrow: {e}")))?,
        );
        let writer_props = parquet_properties(&props).map_err(fail)?;
        let metrics = MetricsModes::from_props(&props, metadata.current_schema()).map_err(fail)?;
        let target_size = props
            .get("write.target-file-size-bytes")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(DEFAULT_TARGET_FILE_SIZE);
        let location = DataLocations::for_table(metadata, &props).map_err(fail)?;
        let prefix = format!(
            "00001-{}-{}",
            chrono::Utc::now().timestamp_millis(),
            uuid::Uuid::new_v4()
        );
        let names = DefaultFileNameGenerator::new(prefix, None, DataFileFormat::Parquet);
        let rolling = RollingFileWriterBuilder::new(
            ParquetWriterBuilder::new(writer_props, schema.clone()),
            target_size,
            table.file_io().clone(),
            location,
            names,
        );
        let builder = DataFileWriterBuilder::new(rolling);
        let spec = metadata.default_partition_spec().clone();
        let inner = if spec.is_unpartitioned() {
            Inner::Unpartitioned(Box::new(
                builder
                    .build(None)
                    .await
                    .map_err(|e| fail(format!("cannot open a data file writer: {e}")))?,
            ))
        } else {
            let splitter =
                RecordBatchPartitionSplitter::try_new_with_computed_values(schema.clone(), spec)
                    .map_err(|e| fail(format!("cannot partition rows: {e}")))?;
            Inner::Partitioned(Box::new(PartitionedWriter {
                writer: FanoutWriter::new(builder),
                splitter,
            }))
        };
        let (batches, queue) = mpsc::channel(QUEUED_BATCHES);
        let encoder = tokio::spawn(encode(name.to_string(), inner, queue));
        Ok(TableWriter {
            name: name.to_string(),
            table,
            arrow_schema,
            metrics,
            rows: 0,
            batches: Some(batches),
            encoder: Some(encoder),
        })
    }

    /// The table as loaded when the writer opened.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The Arrow schema batches must have.
    pub fn arrow_schema(&self) -> &ArrowSchemaRef {
        &self.arrow_schema
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Queues a batch for encoding; waits while the queue is full.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<(), SinkError> {
        let rows = batch.num_rows() as u64;
        let sent = match &self.batches {
            Some(tx) => tx.send(batch).await.is_ok(),
            None => false,
        };
        if !sent {
            // The encoder stopped: it failed, and says why when joined.
            self.batches = None;
            return Err(match self.encoder.take() {
                Some(handle) => match join(&self.name, handle).await {
                    Err(e) => e,
                    Ok(_) => self.stopped(),
                },
                None => self.stopped(),
            });
        }
        self.rows += rows;
        Ok(())
    }

    fn stopped(&self) -> SinkError {
        SinkError::Table {
            table: self.name.clone(),
            message: "the writer stopped after an earlier failure".into(),
        }
    }

    /// Encodes what is queued, closes the open files and returns them, each with the
    /// statistics its columns' metrics modes keep and the id of the spec it was written with.
    pub async fn close(mut self) -> Result<Vec<DataFile>, SinkError> {
        self.batches = None;
        let files = match self.encoder.take() {
            Some(handle) => join(&self.name, handle).await?,
            None => return Err(self.stopped()),
        };
        let metadata = self.table.metadata();
        let (schema, spec_id) = (
            metadata.current_schema(),
            metadata.default_partition_spec_id(),
        );
        files
            .iter()
            .map(|f| {
                let mut wire =
                    WireDataFile::from_data_file(f, spec_id).map_err(|e| e.to_string())?;
                self.metrics.apply(&mut wire, schema);
                wire.to_data_file(schema, spec_id)
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, String>>()
            .map_err(|message| SinkError::Table {
                table: self.name.clone(),
                message: format!("cannot keep the closed files' metrics: {message}"),
            })
    }

    /// Closes the files and deletes them: their rows will be read again.
    pub async fn abandon(self) {
        let file_io = self.table.file_io().clone();
        let name = self.name.clone();
        match self.close().await {
            Ok(files) => {
                for f in files {
                    if let Err(e) = file_io.delete(f.file_path()).await {
                        tracing::warn!(table = %name, file = f.file_path(), error = %e, "cannot delete an abandoned data file");
                    }
                }
            }
            Err(e) => tracing::warn!(table = %name, error = %e, "cannot close an abandoned writer"),
        }
    }
}

async fn join(
    table: &str,
    handle: JoinHandle<Result<Vec<DataFile>, SinkError>>,
) -> Result<Vec<DataFile>, SinkError> {
    handle.await.unwrap_or_else(|e| {
        Err(SinkError::Table {
            table: table.to_string(),
            message: format!("the writer task ended abnormally: {e}"),
        })
    })
}

/// The encoder task of one table: writes every queued batch, then closes the files when the
/// queue closes. Stops at the first failure.
async fn encode(
    name: String,
    mut inner: Inner,
    mut queue: mpsc::Receiver<RecordBatch>,
) -> Result<Vec<DataFile>, SinkError> {
    let fail = |what: &str, e: iceberg::Error| SinkError::Table {
        table: name.clone(),
        message: format!("{what} failed: {e}"),
    };
    while let Some(batch) = queue.recv().await {
        match &mut inner {
            Inner::Unpartitioned(w) => w.write(batch).await.map_err(|e| fail("write", e))?,
            Inner::Partitioned(p) => {
                for (key, part) in p.splitter.split(&batch).map_err(|e| fail("write", e))? {
                    p.writer
                        .write(key, part)
                        .await
                        .map_err(|e| fail("write", e))?;
                }
            }
        }
    }
    match inner {
        Inner::Unpartitioned(mut w) => w.close().await.map_err(|e| fail("closing data files", e)),
        Inner::Partitioned(p) => p
            .writer
            .close()
            .await
            .map_err(|e| fail("closing data files", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::schema::types::ColumnPath;

    fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn javas_parquet_keys_set_the_writer() {
        let p = parquet_properties(&props(&[
            (PAGE_SIZE, "65536"),
            (PAGE_ROW_LIMIT, "500"),
            (DICT_SIZE, "4096"),
            ("write.parquet.bloom-filter-enabled.column.id", "true"),
            ("write.parquet.bloom-filter-fpp.column.id", "0.01"),
            ("write.parquet.bloom-filter-fpp.column.name", "0.2"),
            ("write.parquet.bloom-filter-enabled.column.a.b", "TRUE"),
        ]))
        .unwrap();
        assert_eq!(p.data_page_size_limit(), 65536);
        assert_eq!(p.data_page_row_count_limit(), 500);
        assert_eq!(p.dictionary_page_size_limit(), 4096);
        let id = p.bloom_filter_properties(&ColumnPath::from("id")).unwrap();
        assert_eq!(id.fpp, 0.01);
        assert!(p
            .bloom_filter_properties(&ColumnPath::from(vec!["a".to_string(), "b".to_string()]))
            .is_some());
        // An fpp alone turns no filter on, as in Java.
        assert!(p
            .bloom_filter_properties(&ColumnPath::from("name"))
            .is_none());
        // Java's defaults.
        let d = parquet_properties(&HashMap::new()).unwrap();
        assert_eq!(d.dictionary_page_size_limit(), 2 * 1024 * 1024);
        assert_eq!(d.data_page_size_limit(), 1024 * 1024);
        assert_eq!(d.data_page_row_count_limit(), 20_000);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value) in [
            (PAGE_SIZE, "big"),
            (DICT_SIZE, "0"),
            ("write.parquet.bloom-filter-enabled.column.id", "yes"),
            ("write.parquet.bloom-filter-enabled.column.id", "true"),
        ] {
            let mut p = props(&[(key, value)]);
            if value == "true" {
                p.insert(
                    "write.parquet.bloom-filter-fpp.column.id".into(),
                    "1.5".into(),
                );
            }
            let e = parquet_properties(&p).err().unwrap_or_default();
            assert!(e.contains("write.parquet."), "{key}={value}: {e}");
        }
    }
}
