//! `IcebergSinkConfig`: the Java sink's configuration keys, parsed and validated.

use std::collections::BTreeMap;
use std::time::Duration;

use floe_connect::config_def::{ConfigKey, ConfigType, Importance};
use floe_connect::worker_config::{list_value, strip_prefix};
use floe_connect::ConfigMap;

/// Parsed sink configuration.
#[derive(Debug, Clone)]
pub struct IcebergSinkConfig {
    pub connector_name: String,
    pub task_id: u32,
    /// Static destination tables, as written.
    pub tables: Vec<String>,
    pub dynamic_enabled: bool,
    pub route_field: Option<String>,
    /// `iceberg.table.<name>.route-regex`, by table name.
    pub route_regex: BTreeMap<String, regex::Regex>,
    pub auto_create: bool,
    pub auto_create_props: BTreeMap<String, String>,
    pub default_partition_by: Option<String>,
    pub table_partition_by: BTreeMap<String, String>,
    pub default_id_columns: Option<String>,
    pub table_id_columns: BTreeMap<String, String>,
    pub write_props: BTreeMap<String, String>,
    pub force_optional: bool,
    pub case_insensitive: bool,
    pub evolve_schema: bool,
    pub catalog_name: String,
    pub catalog_props: BTreeMap<String, String>,
    pub commit_interval: Duration,
    pub commit_timeout: Duration,
    pub max_consecutive_failures: u32,
    /// `floe.control.commit.server-error-timeout-ms`.
    pub server_error_timeout: Duration,
    /// `iceberg.control.commit.threads`: tables the coordinator commits at once.
    pub commit_threads: usize,
    pub control_topic: String,
    pub group_id_prefix: String,
    /// `iceberg.connect.group-id`: the connector's consumer group when it is not the default.
    pub connect_group_id: Option<String>,
    pub transactional_prefix: String,
    /// Per-generation suffix of the worker's transactional id, set in task configs.
    pub transactional_suffix: String,
    /// `iceberg.kafka.*`: overrides for the sink's own Kafka clients.
    pub kafka_props: BTreeMap<String, String>,
    pub default_commit_branch: Option<String>,
    pub table_commit_branch: BTreeMap<String, String>,
    /// The connector's `topics`, or its `topics.regex`.
    pub topics: Vec<String>,
    pub topics_regex: Option<regex::Regex>,
    /// Floe extension: ask for an early commit once a task buffers this many records.
    pub max_buffered_records: Option<u64>,
    /// Floe extension: ask for an early commit once a task buffers this many bytes (Arrow).
    pub max_buffered_bytes: Option<u64>,
    /// `iceberg.tables.upsert-mode-enabled`: every record replaces the row with its key.
    pub upsert: bool,
    /// `iceberg.tables.cdc-field`: the field holding each record's operation.
    pub cdc_field: Option<String>,
    /// `floe.maintenance.*`, per table with `iceberg.table.<table>.floe.maintenance.*`.
    pub maintenance: crate::maintenance::Maintenance,
}

/// What a task in delta mode keeps before asking for an early commit, unless
/// `floe.commit.max-buffered-bytes` says otherwise: the cycle's rows are held until it answers.
pub const DELTA_DEFAULT_MAX_BUFFERED_BYTES: u64 = 64 * 1024 * 1024;

const TABLES: &str = "iceberg.tables";
const DYNAMIC: &str = "iceberg.tables.dynamic-enabled";
const ROUTE_FIELD: &str = "iceberg.tables.route-field";
const AUTO_CREATE: &str = "iceberg.tables.auto-create-enabled";
const EVOLVE: &str = "iceberg.tables.evolve-schema-enabled";
const COMMIT_INTERVAL: &str = "iceberg.control.commit.interval-ms";
const COMMIT_TIMEOUT: &str = "iceberg.control.commit.timeout-ms";
const MAX_FAILURES: &str = "iceberg.control.commit.max-consecutive-failures";
const MAX_BUFFERED_RECORDS: &str = "floe.commit.max-buffered-records";
/// Floe extension: how long commits failing with a catalog's server errors (HTTP 5xx) are
/// ridden out before they count toward `iceberg.control.commit.max-consecutive-failures`.
pub const SERVER_ERROR_TIMEOUT: &str = "floe.control.commit.server-error-timeout-ms";
/// Fifteen minutes: a restart or failover of a catalog server is ridden out.
pub const DEFAULT_SERVER_ERROR_TIMEOUT_MS: u64 = 15 * 60 * 1000;
const MAX_BUFFERED_BYTES: &str = "floe.commit.max-buffered-bytes";
const UPSERT: &str = "iceberg.tables.upsert-mode-enabled";
const CDC_FIELD: &str = "iceberg.tables.cdc-field";

/// The sink's configuration keys, for `/connector-plugins/…/config/validate`.
pub fn config_keys() -> Vec<ConfigKey> {
    use ConfigType::*;
    use Importance::*;
    let mut keys = vec![
        ConfigKey::nullable(TABLES, List, High, "Comma-delimited list of destination tables"),
        ConfigKey::optional(DYNAMIC, Boolean, "false", Medium, "Enable dynamic routing to tables based on a record value"),
        ConfigKey::nullable(ROUTE_FIELD, String, Medium, "Source record field for routing records to tables"),
        ConfigKey::nullable("iceberg.tables.default-commit-branch", String, Medium, "Default branch for commits"),
        ConfigKey::nullable("iceberg.tables.default-id-columns", String, Medium, "Default ID columns for tables, comma-separated"),
        ConfigKey::nullable("iceberg.tables.default-partition-by", String, Medium, "Default partition spec to use when creating tables, comma-separated"),
        ConfigKey::optional(AUTO_CREATE, Boolean, "false", Medium, "Set to true to automatically create destination tables, false otherwise"),
        ConfigKey::optional("iceberg.tables.schema-force-optional", Boolean, "false", Medium, "Set to true to set columns as optional during table create and evolution, false to respect schema"),
        ConfigKey::optional("iceberg.tables.schema-case-insensitive", Boolean, "false", Medium, "Set to true to look up table columns by case-insensitive name, false for case-sensitive"),
        ConfigKey::optional(EVOLVE, Boolean, "false", Medium, "Set to true to add any missing record fields to the table schema, false otherwise"),
        ConfigKey::optional("iceberg.catalog", String, "iceberg", High, "Name of the catalog"),
        ConfigKey::optional("iceberg.control.topic", String, "control-iceberg", Medium, "Name of the control topic"),
        ConfigKey::optional("iceberg.control.group-id-prefix", String, "cg-control-", Medium, "Prefix for the control consumer group"),
        ConfigKey::nullable("iceberg.connect.group-id", String, Medium, "Name of the Connect consumer group, should not be set under normal conditions"),
        ConfigKey::optional(COMMIT_INTERVAL, Int, "300000", Medium, "Coordinator interval for performing Iceberg table commits, in millis"),
        ConfigKey::optional("iceberg.control.commit.timeout-ms", Int, "30000", Medium, "Coordinator time to wait for worker responses before committing, in millis"),
        ConfigKey::optional("iceberg.control.commit.threads", Int, "4", Medium, "Coordinator threads to use for table commits, default is (cores * 2)"),
        ConfigKey::nullable("iceberg.coordinator.transactional.prefix", String, Medium, "Optional prefix of the transactional id for the coordinator"),
        ConfigKey::nullable("iceberg.hadoop-conf-dir", String, Medium, "If specified, Hadoop config files in this directory will be loaded"),
        ConfigKey::optional("iceberg.coordinator-executor-keep-alive-timeout-ms", Long, "120000", Low, "config to control coordinator executor keep alive time (accepted; Floe's coordinator keeps no thread pool)"),
        ConfigKey::optional(MAX_FAILURES, Int, "1", Medium, "Number of consecutive failed full commits before the coordinator stops"),
        ConfigKey::optional(SERVER_ERROR_TIMEOUT, Long, "900000", Medium, "Floe: how long the coordinator rides out commits the catalog answers with server errors (HTTP 5xx) before each one counts toward iceberg.control.commit.max-consecutive-failures; a catalog that does not answer at all is ridden out however long it lasts"),
        ConfigKey::optional(MAX_BUFFERED_RECORDS, Long, "0", Medium, "Floe: a task asks for a commit before the interval once it holds this many records (0: off)"),
        ConfigKey::optional(MAX_BUFFERED_BYTES, Long, "0", Medium, "Floe: a task asks for a commit before the interval once it holds this many bytes of rows (0: off)"),
    ];
    keys.extend(crate::maintenance::config_keys());
    keys
}

fn flag(config: &ConfigMap, key: &str) -> bool {
    config
        .get(key)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn non_empty<'a>(config: &'a ConfigMap, key: &str) -> Option<&'a str> {
    config.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// Checks the rules the Java sink enforces when its config is built, plus Floe's own limits.
pub fn validate(config: &ConfigMap) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    if strip_prefix(config, "iceberg.catalog.").is_empty() {
        errors.push((
            "iceberg.catalog".to_string(),
            "Must specify Iceberg catalog properties (iceberg.catalog.*)".to_string(),
        ));
    } else if let Err(e) =
        crate::catalog::CatalogKind::from_props(&strip_prefix(config, "iceberg.catalog."))
    {
        errors.push(("iceberg.catalog".to_string(), e.to_string()));
    }
    if let Some(e) = crate::catalog::io_impl_error(&strip_prefix(config, "iceberg.catalog.")) {
        errors.push(("iceberg.catalog.io-impl".to_string(), e));
    }
    errors.extend(unhonoured(config));
    let has_tables = non_empty(config, TABLES).is_some();
    let dynamic = flag(config, DYNAMIC);
    if has_tables && dynamic {
        errors.push((
            TABLES.into(),
            "Cannot specify both static and dynamic table names".into(),
        ));
    } else if dynamic && non_empty(config, ROUTE_FIELD).is_none() {
        errors.push((
            ROUTE_FIELD.into(),
            "Must specify a route field if using dynamic table names".into(),
        ));
    } else if !has_tables && !dynamic {
        errors.push((TABLES.into(), "Must specify table name(s)".into()));
    }
    for (key, value) in config
        .iter()
        .filter(|(k, _)| k.starts_with("iceberg.table.") && k.ends_with(".route-regex"))
    {
        if let Err(e) = regex::Regex::new(&format!("^(?:{value})$")) {
            errors.push((
                key.clone(),
                format!("Invalid value {value} for configuration {key}: {e}"),
            ));
        }
    }
    for (key, spec) in partition_by_entries(config) {
        if let Err(e) = crate::schema::parse_partition_by(&spec) {
            errors.push((key, e.to_string()));
        }
    }
    errors
}

/// Hadoop settings (`iceberg.hadoop.*`) Floe reads: the S3A keys a HadoopFileIO on `s3a://`
/// warehouses takes, as the FileIO keys that mean the same.
pub const HADOOP_S3A_KEYS: &[(&str, &str)] = &[
    ("fs.s3a.endpoint", "s3.endpoint"),
    ("fs.s3a.access.key", "s3.access-key-id"),
    ("fs.s3a.secret.key", "s3.secret-access-key"),
    ("fs.s3a.session.token", "s3.session-token"),
    ("fs.s3a.path.style.access", "s3.path-style-access"),
    ("fs.s3a.endpoint.region", "client.region"),
];

/// Keys the Java sink accepts that Floe cannot honour, each with why and what to do instead:
/// reported by validation rather than silently ignored.
/// PostgreSQL JDBC settings that ask for TLS (`jdbc.ssl=true`, `jdbc.sslmode` of `require`,
/// `verify-ca` or `verify-full`, certificates and keys, as Java passes `jdbc.*` catalog
/// properties to the driver, or the same in the URI's query): Floe's SQL catalog connects to
/// PostgreSQL without TLS, so each is a validation error naming it rather than a connection
/// in plain text. `sslmode` `disable`, `allow` and `prefer` promise no TLS and are accepted.
fn postgres_tls_refusals(catalog: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let Some(uri) = catalog
        .get("uri")
        .filter(|u| u.trim().starts_with("jdbc:postgresql:"))
    else {
        return Vec::new();
    };
    let asks_for_tls = |key: &str, value: &str| {
        let v = value.trim().to_ascii_lowercase();
        match key {
            "ssl" => v == "true",
            "sslmode" => !matches!(v.as_str(), "disable" | "allow" | "prefer" | ""),
            "sslrootcert" | "sslcert" | "sslkey" | "sslpassword" | "sslfactory" => !v.is_empty(),
            _ => false,
        }
    };
    let refusal = |key: String, value: &str| {
        (
            key.clone(),
            format!(
                "Invalid value {value} for configuration {key}: Floe's SQL catalog connects to PostgreSQL without TLS, so it cannot honour this; remove it (or set sslmode to disable or prefer) or use a REST catalog in front of the database"
            ),
        )
    };
    let mut errors = Vec::new();
    for (key, value) in catalog {
        if let Some(setting) = key.strip_prefix("jdbc.") {
            if asks_for_tls(setting, value) {
                errors.push(refusal(format!("iceberg.catalog.{key}"), value));
            }
        }
    }
    if let Some((_, query)) = uri.split_once('?') {
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if asks_for_tls(k, v) {
                errors.push(refusal("iceberg.catalog.uri".into(), uri));
                break;
            }
        }
    }
    errors
}

fn unhonoured(config: &ConfigMap) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    for (key, value) in config {
        if let Some(hadoop) = key.strip_prefix("iceberg.hadoop.") {
            if !HADOOP_S3A_KEYS.iter().any(|(k, _)| *k == hadoop) {
                errors.push((key.clone(), format!(
                    "Invalid value {value} for configuration {key}: Floe reads no Hadoop configuration beyond the S3A keys ({}); set the FileIO keys under iceberg.catalog. instead (e.g. iceberg.catalog.s3.endpoint)",
                    HADOOP_S3A_KEYS.iter().map(|(k, _)| format!("iceberg.hadoop.{k}")).collect::<Vec<_>>().join(", ")
                )));
            }
        }
    }
    if let Some(dir) = non_empty(config, "iceberg.hadoop-conf-dir") {
        errors.push(("iceberg.hadoop-conf-dir".into(), format!(
            "Invalid value {dir} for configuration iceberg.hadoop-conf-dir: Floe reads no Hadoop configuration files; set the FileIO keys under iceberg.catalog. instead (e.g. iceberg.catalog.s3.endpoint)"
        )));
    }
    if let Some(v) = non_empty(config, "iceberg.tables.auto-create-props.format-version") {
        if !matches!(v.trim(), "1" | "2" | "3") {
            errors.push(("iceberg.tables.auto-create-props.format-version".into(), format!(
                "Invalid value {v} for configuration iceberg.tables.auto-create-props.format-version: Iceberg format versions are 1, 2 and 3"
            )));
        }
    }
    let catalog = catalog_props(config);
    if catalog.keys().any(|k| k.starts_with("ssl.")) {
        let rest = matches!(
            crate::catalog::CatalogKind::from_props(&catalog),
            Ok(crate::catalog::CatalogKind::Rest)
        );
        if !rest {
            errors.push(("iceberg.catalog.ssl".into(), "Invalid configuration iceberg.catalog.ssl.*: TLS settings apply to the REST catalog only".into()));
        } else if let Err(e) = floe_tls::Material::from_java(&catalog, "") {
            errors.push((
                format!("iceberg.catalog.{}", e.key),
                format!(
                    "Invalid configuration iceberg.catalog.{}: {}",
                    e.key, e.reason
                ),
            ));
        }
    }
    errors.extend(postgres_tls_refusals(&catalog));
    let delta = flag(config, UPSERT) || non_empty(config, CDC_FIELD).is_some();
    if delta {
        let version = non_empty(config, "iceberg.tables.auto-create-props.format-version");
        if version == Some("1") {
            errors.push(("iceberg.tables.auto-create-props.format-version".into(), "Invalid value 1 for configuration iceberg.tables.auto-create-props.format-version: upserts and CDC delete rows, which format version 1 cannot express; use 2".into()));
        }
        let has_default = non_empty(config, "iceberg.tables.default-id-columns").is_some();
        if flag(config, AUTO_CREATE) && !has_default {
            let tables = list_value(config, TABLES);
            let missing: Vec<&String> = tables
                .iter()
                .filter(|t| non_empty(config, &format!("iceberg.table.{t}.id-columns")).is_none())
                .collect();
            if flag(config, DYNAMIC) || !missing.is_empty() {
                errors.push(("iceberg.tables.default-id-columns".into(), format!(
                    "Upserts and CDC need the rows' key: tables created by the sink{} need iceberg.tables.default-id-columns or iceberg.table.<table>.id-columns",
                    if missing.is_empty() { String::new() } else { format!(" ({})", missing.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")) }
                )));
            }
        }
    }
    errors
}

/// The catalog a connector config names: its name (`iceberg.catalog`) and properties.
pub fn catalog_of(config: &ConfigMap) -> (String, BTreeMap<String, String>) {
    let name = non_empty(config, "iceberg.catalog")
        .unwrap_or("iceberg")
        .to_string();
    (name, catalog_props(config))
}

/// `iceberg.catalog.*`, with the Hadoop S3A keys as the FileIO keys they stand for (a
/// FileIO key given under `iceberg.catalog.` wins).
fn catalog_props(config: &ConfigMap) -> BTreeMap<String, String> {
    let mut props = strip_prefix(config, "iceberg.catalog.");
    for (hadoop, fileio) in HADOOP_S3A_KEYS {
        if let Some(v) = non_empty(config, &format!("iceberg.hadoop.{hadoop}")) {
            props
                .entry(fileio.to_string())
                .or_insert_with(|| v.to_string());
        }
    }
    props
}

fn partition_by_entries(config: &ConfigMap) -> Vec<(String, String)> {
    config
        .iter()
        .filter(|(k, v)| {
            !v.trim().is_empty()
                && (k.as_str() == "iceberg.tables.default-partition-by"
                    || (k.starts_with("iceberg.table.") && k.ends_with(".partition-by")))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl IcebergSinkConfig {
    /// Parses a task config. `validate` has already passed on the connector config.
    pub fn parse(config: &ConfigMap) -> Result<IcebergSinkConfig, String> {
        let errors = validate(config);
        if let Some((key, e)) = errors.first() {
            return Err(format!("Invalid configuration {key}: {e}"));
        }
        let tables = list_value(config, TABLES);
        let mut route_regex = BTreeMap::new();
        let mut table_partition_by = BTreeMap::new();
        let mut table_id_columns = BTreeMap::new();
        for (key, value) in config {
            let Some(rest) = key.strip_prefix("iceberg.table.") else {
                continue;
            };
            if let Some(table) = rest.strip_suffix(".route-regex") {
                let re = regex::Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("Invalid value {value} for configuration {key}: {e}"))?;
                route_regex.insert(table.to_string(), re);
            } else if let Some(table) = rest.strip_suffix(".partition-by") {
                table_partition_by.insert(table.to_string(), value.clone());
            } else if let Some(table) = rest.strip_suffix(".id-columns") {
                table_id_columns.insert(table.to_string(), value.clone());
            }
        }
        let number = |key: &str, default: u64| -> Result<u64, String> {
            match config.get(key) {
                Some(v) => v.trim().parse().map_err(|_| {
                    format!("Invalid value {v} for configuration {key}: Not a number of type INT")
                }),
                None => Ok(default),
            }
        };
        let commit_interval_ms = number(COMMIT_INTERVAL, 300_000)?;
        let commit_timeout_ms = number(COMMIT_TIMEOUT, 30_000)?;
        let max_consecutive_failures = number(MAX_FAILURES, 1)?.max(1) as u32;
        let server_error_timeout = Duration::from_millis(number(
            SERVER_ERROR_TIMEOUT,
            DEFAULT_SERVER_ERROR_TIMEOUT_MS,
        )?);
        let commit_threads = number("iceberg.control.commit.threads", 4)?.max(1) as usize;
        let mut table_commit_branch = BTreeMap::new();
        for (key, value) in config {
            if let Some(table) = key
                .strip_prefix("iceberg.table.")
                .and_then(|r| r.strip_suffix(".commit-branch"))
            {
                table_commit_branch.insert(table.to_string(), value.trim().to_string());
            }
        }
        let topics_regex =
            match non_empty(config, "topics.regex") {
                Some(r) => Some(regex::Regex::new(&format!("^(?:{r})$")).map_err(|e| {
                    format!("Invalid value {r} for configuration topics.regex: {e}")
                })?),
                None => None,
            };
        Ok(IcebergSinkConfig {
            connector_name: config.get("name").cloned().unwrap_or_default(),
            task_id: config
                .get("task.id")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0),
            tables,
            dynamic_enabled: flag(config, DYNAMIC),
            route_field: non_empty(config, ROUTE_FIELD).map(str::to_string),
            route_regex,
            auto_create: flag(config, AUTO_CREATE),
            auto_create_props: strip_prefix(config, "iceberg.tables.auto-create-props."),
            default_partition_by: non_empty(config, "iceberg.tables.default-partition-by")
                .map(str::to_string),
            table_partition_by,
            default_id_columns: non_empty(config, "iceberg.tables.default-id-columns")
                .map(str::to_string),
            table_id_columns,
            write_props: strip_prefix(config, "iceberg.tables.write-props."),
            force_optional: flag(config, "iceberg.tables.schema-force-optional"),
            case_insensitive: flag(config, "iceberg.tables.schema-case-insensitive"),
            evolve_schema: flag(config, EVOLVE),
            catalog_name: non_empty(config, "iceberg.catalog")
                .unwrap_or("iceberg")
                .to_string(),
            catalog_props: catalog_props(config),
            commit_interval: Duration::from_millis(commit_interval_ms),
            commit_timeout: Duration::from_millis(commit_timeout_ms),
            max_consecutive_failures,
            server_error_timeout,
            commit_threads,
            control_topic: non_empty(config, "iceberg.control.topic")
                .unwrap_or("control-iceberg")
                .to_string(),
            group_id_prefix: config
                .get("iceberg.control.group-id-prefix")
                .cloned()
                .unwrap_or_else(|| "cg-control-".to_string()),
            connect_group_id: non_empty(config, "iceberg.connect.group-id").map(str::to_string),
            transactional_prefix: config
                .get("iceberg.coordinator.transactional.prefix")
                .cloned()
                .unwrap_or_default(),
            transactional_suffix: config
                .get("iceberg.coordinator.transactional.suffix")
                .cloned()
                .unwrap_or_else(|| {
                    format!(
                        "-txn-{}-{}",
                        uuid::Uuid::new_v4(),
                        config.get("task.id").map(String::as_str).unwrap_or("0")
                    )
                }),
            kafka_props: strip_prefix(config, "iceberg.kafka."),
            default_commit_branch: non_empty(config, "iceberg.tables.default-commit-branch")
                .map(str::to_string),
            table_commit_branch,
            topics: list_value(config, "topics"),
            topics_regex,
            max_buffered_records: Some(number(MAX_BUFFERED_RECORDS, 0)?).filter(|n| *n > 0),
            max_buffered_bytes: Some(number(MAX_BUFFERED_BYTES, 0)?)
                .filter(|n| *n > 0)
                .or_else(|| {
                    (flag(config, UPSERT) || non_empty(config, CDC_FIELD).is_some())
                        .then_some(DELTA_DEFAULT_MAX_BUFFERED_BYTES)
                }),
            upsert: flag(config, UPSERT),
            cdc_field: non_empty(config, CDC_FIELD).map(str::to_string),
            maintenance: crate::maintenance::Maintenance::parse(
                config,
                Duration::from_millis(commit_interval_ms.saturating_add(commit_timeout_ms)),
            )?,
        })
    }

    /// The identifier columns for auto-creating `table` (`iceberg.table.<t>.id-columns`, else
    /// `iceberg.tables.default-id-columns`).
    pub fn id_columns(&self, table: &str) -> Vec<String> {
        self.table_id_columns
            .get(table)
            .or(self.default_id_columns.as_ref())
            .map(|v| {
                v.split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How records change the tables: None when every record is appended.
    pub fn delta_mode(&self) -> Option<crate::delta::DeltaMode> {
        (self.upsert || self.cdc_field.is_some()).then(|| crate::delta::DeltaMode {
            upsert: self.upsert,
            cdc_field: self.cdc_field.clone(),
        })
    }

    /// The partition spec text for auto-creating `table`.
    pub fn partition_by(&self, table: &str) -> Option<&str> {
        self.table_partition_by
            .get(table)
            .map(String::as_str)
            .or(self.default_partition_by.as_deref())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn postgres_tls_settings_are_refused_not_ignored() {
        let catalog = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let pg = ("uri", "jdbc:postgresql://db:5432/iceberg");
        for (key, value) in [
            ("jdbc.ssl", "true"),
            ("jdbc.sslmode", "verify-full"),
            ("jdbc.sslmode", "REQUIRE"),
            ("jdbc.sslrootcert", "/etc/ca.pem"),
        ] {
            let errors = postgres_tls_refusals(&catalog(&[pg, (key, value)]));
            assert_eq!(errors.len(), 1, "{key}={value}");
            assert_eq!(errors[0].0, format!("iceberg.catalog.{key}"));
            assert!(errors[0].1.contains("without TLS"), "{}", errors[0].1);
        }
        for (key, value) in [
            ("jdbc.sslmode", "prefer"),
            ("jdbc.ssl", "false"),
            ("jdbc.user", "u"),
        ] {
            assert!(postgres_tls_refusals(&catalog(&[pg, (key, value)])).is_empty());
        }
        let in_uri = catalog(&[(
            "uri",
            "jdbc:postgresql://db/iceberg?ssl=true&sslmode=verify-ca",
        )]);
        assert_eq!(postgres_tls_refusals(&in_uri)[0].0, "iceberg.catalog.uri");
        // SQLite has no TLS to ask for.
        let sqlite = catalog(&[
            ("uri", "jdbc:sqlite:/tmp/c.db"),
            ("jdbc.sslmode", "require"),
        ]);
        assert!(postgres_tls_refusals(&sqlite).is_empty());
    }
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> ConfigMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn requires_catalog_and_tables() {
        let errors = validate(&cfg(&[]));
        assert_eq!(
            errors,
            vec![
                (
                    "iceberg.catalog".to_string(),
                    "Must specify Iceberg catalog properties (iceberg.catalog.*)".to_string()
                ),
                (TABLES.to_string(), "Must specify table name(s)".to_string()),
            ]
        );
    }

    #[test]
    fn keys_floe_cannot_honour_are_refused() {
        let base = [
            ("iceberg.catalog.type", "rest"),
            ("iceberg.catalog.uri", "http://c"),
            ("iceberg.tables", "db.t"),
        ];
        let keys_with_errors = |extra: &[(&str, &str)]| -> Vec<String> {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            validate(&cfg(&pairs)).into_iter().map(|(k, _)| k).collect()
        };
        assert_eq!(
            keys_with_errors(&[("iceberg.catalog.io-impl", "com.example.IO")]),
            vec!["iceberg.catalog.io-impl"]
        );
        assert_eq!(
            keys_with_errors(&[("iceberg.hadoop.fs.defaultFS", "hdfs://nn")]),
            vec!["iceberg.hadoop.fs.defaultFS"]
        );
        assert!(keys_with_errors(&[("iceberg.hadoop.fs.s3a.endpoint", "http://s3")]).is_empty());
        assert_eq!(
            keys_with_errors(&[("iceberg.tables.auto-create-props.format-version", "4")]),
            vec!["iceberg.tables.auto-create-props.format-version"]
        );
        assert!(keys_with_errors(&[("iceberg.tables.upsert-mode-enabled", "true")]).is_empty());
        assert_eq!(
            keys_with_errors(&[
                ("iceberg.tables.upsert-mode-enabled", "true"),
                ("iceberg.tables.auto-create-enabled", "true"),
            ]),
            vec!["iceberg.tables.default-id-columns"]
        );
        assert!(keys_with_errors(&[
            ("iceberg.tables.cdc-field", "_cdc.op"),
            ("iceberg.tables.auto-create-enabled", "true"),
            ("iceberg.table.db.t.id-columns", "id"),
        ])
        .is_empty());
        assert_eq!(
            keys_with_errors(&[
                ("iceberg.tables.upsert-mode-enabled", "true"),
                ("iceberg.tables.auto-create-props.format-version", "1"),
            ]),
            vec!["iceberg.tables.auto-create-props.format-version"]
        );
        // Format v3: deletion vectors.
        assert!(keys_with_errors(&[
            ("iceberg.tables.upsert-mode-enabled", "true"),
            ("iceberg.tables.default-id-columns", "id"),
            ("iceberg.tables.auto-create-props.format-version", "3"),
        ])
        .is_empty());
        assert!(keys_with_errors(&[(
            "iceberg.catalog.io-impl",
            "org.apache.iceberg.aws.s3.S3FileIO"
        )])
        .is_empty());
    }

    #[test]
    fn hadoop_s3a_keys_become_fileio_keys() {
        let c = IcebergSinkConfig::parse(&cfg(&[
            ("name", "ice"),
            ("topics", "t"),
            ("iceberg.catalog.type", "jdbc"),
            ("iceberg.catalog.uri", "jdbc:sqlite:/tmp/c.db"),
            ("iceberg.catalog.s3.endpoint", "http://given"),
            ("iceberg.tables", "db.t"),
            ("iceberg.hadoop.fs.s3a.endpoint", "http://hadoop"),
            ("iceberg.hadoop.fs.s3a.access.key", "AK"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.catalog_props["s3.endpoint"], "http://given");
        assert_eq!(c.catalog_props["s3.access-key-id"], "AK");
    }

    #[test]
    fn static_and_dynamic_are_exclusive() {
        let errors = validate(&cfg(&[
            ("iceberg.catalog.type", "rest"),
            ("iceberg.catalog.uri", "http://x"),
            (TABLES, "a.b"),
            (DYNAMIC, "true"),
        ]));
        assert_eq!(
            errors,
            vec![(
                TABLES.to_string(),
                "Cannot specify both static and dynamic table names".to_string()
            )]
        );
    }

    #[test]
    fn parses_tables_and_routes() {
        let c = IcebergSinkConfig::parse(&cfg(&[
            ("name", "ice"),
            ("task.id", "2"),
            ("iceberg.catalog.type", "rest"),
            ("iceberg.catalog.uri", "http://x"),
            (TABLES, " db.a , db.b"),
            (ROUTE_FIELD, "kind"),
            ("iceberg.table.db.a.route-regex", "a|aa"),
            (COMMIT_INTERVAL, "1000"),
        ]))
        .unwrap();
        assert_eq!(c.tables, vec!["db.a".to_string(), "db.b".to_string()]);
        assert_eq!(c.task_id, 2);
        assert!(c.route_regex["db.a"].is_match("aa"));
        assert!(!c.route_regex["db.a"].is_match("aaa"));
        assert_eq!(c.commit_interval, Duration::from_secs(1));
    }
}
