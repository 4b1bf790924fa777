//! Building a catalog from `iceberg.catalog.*`, accepting the Java spellings.

pub mod jdbc;
pub mod oauth;
pub mod rest;
pub mod rest_commit;

use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;
use std::sync::Arc;

use iceberg::io::{FileIO, FileIOBuilder};
use iceberg::table::Table;
use iceberg::{Catalog, TableRequirement, TableUpdate};
use iceberg_storage_opendal::OpenDalResolvingStorageFactory;

use self::jdbc::JdbcCatalog;
use self::rest_commit::RestCommitter;

/// Java's REST client keys for its connect and socket (read) timeouts, and Floe's defaults:
/// a catalog that accepts a connection and never answers fails the call (and the commit is
/// retried next cycle) instead of holding the coordinator. Java's HTTP client waits up to
/// 3 minutes when the keys are unset.
pub const CONNECT_TIMEOUT: (&str, u64) = ("rest.client.connection-timeout-ms", 10_000);
pub const SOCKET_TIMEOUT: (&str, u64) = ("rest.client.socket-timeout-ms", 60_000);

/// An HTTP client builder for the REST catalog (its API, its OAuth2 token endpoint), with a
/// custom CA and a client certificate when the catalog properties give Java-style
/// `ssl.truststore.*` / `ssl.keystore.*` keys (`iceberg.catalog.ssl.truststore.location`, …),
/// or else the JVM-wide `-Djavax.net.ssl.*` stores given in `KAFKA_OPTS`; and the connect and
/// read timeouts of `rest.client.connection-timeout-ms` / `rest.client.socket-timeout-ms`.
pub fn http_builder<'a>(
    props: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> iceberg::Result<reqwest::ClientBuilder> {
    let props: BTreeMap<&String, &String> = props.into_iter().collect();
    let timeout = |(key, default): (&str, u64)| -> iceberg::Result<std::time::Duration> {
        let ms = match props.iter().find(|(k, _)| k.as_str() == key) {
            Some((_, v)) => v.trim().parse::<u64>().map_err(|_| {
                iceberg::Error::new(
                    iceberg::ErrorKind::DataInvalid,
                    format!("iceberg.catalog.{key}: {v:?} is not a number of milliseconds"),
                )
            })?,
            None => default,
        };
        Ok(std::time::Duration::from_millis(ms.max(1)))
    };
    let builder = reqwest::Client::builder()
        .connect_timeout(timeout(CONNECT_TIMEOUT)?)
        .read_timeout(timeout(SOCKET_TIMEOUT)?);
    let mut ssl: BTreeMap<String, String> = props
        .iter()
        .filter(|(k, _)| k.starts_with("ssl."))
        .map(|(k, v)| ((*k).clone(), (*v).clone()))
        .collect();
    if ssl.is_empty() {
        // As a Java worker's REST catalog client, the JVM-wide stores of KAFKA_OPTS.
        ssl = floe_tls::jvm_default_keys(std::env::var("KAFKA_OPTS").ok().as_deref());
    }
    if ssl.is_empty() {
        return Ok(builder);
    }
    let tls = floe_tls::Material::from_java(&ssl, "")
        .and_then(|m| m.client_config("iceberg.catalog.ssl"))
        .map_err(|e| {
            iceberg::Error::new(
                iceberg::ErrorKind::DataInvalid,
                format!("iceberg.catalog.{}: {}", e.key, e.reason),
            )
        })?;
    Ok(builder.use_preconfigured_tls(tls))
}

/// A loaded catalog, and the way Floe sends it commits it built itself (appends to a branch,
/// schema updates), which iceberg's `Transaction` cannot express. Dereferences to the catalog.
#[derive(Clone, Debug)]
pub struct CatalogHandle {
    catalog: Arc<dyn Catalog>,
    committer: Committer,
}

/// How requirements + updates reach the catalog atomically.
#[derive(Clone, Debug)]
pub enum Committer {
    /// Floe's SQL catalog: metadata file + compare-and-set on its pointer row.
    Jdbc(Arc<JdbcCatalog>),
    /// The REST catalog's commit endpoint.
    Rest(Arc<RestCommitter>),
}

impl CatalogHandle {
    /// The committer for this catalog.
    pub fn committer(&self) -> &Committer {
        &self.committer
    }
}

impl Deref for CatalogHandle {
    type Target = dyn Catalog;

    fn deref(&self) -> &Self::Target {
        self.catalog.as_ref()
    }
}

impl Committer {
    /// Commits `updates` to `base`'s table if `requirements` hold against the catalog's current
    /// state; answers the table as the catalog now holds it.
    pub async fn commit(
        &self,
        base: &Table,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
    ) -> iceberg::Result<Table> {
        match self {
            Committer::Jdbc(catalog) => {
                catalog
                    .commit(base.identifier(), requirements, updates)
                    .await
            }
            Committer::Rest(rest) => {
                let (location, metadata) = rest
                    .commit(base.identifier(), requirements, updates)
                    .await?;
                Table::builder()
                    .identifier(base.identifier().clone())
                    .metadata_location(location)
                    .metadata(metadata)
                    .file_io(base.file_io().clone())
                    .runtime(iceberg::Runtime::try_current()?)
                    .build()
            }
        }
    }
}

use crate::error::SinkError;

/// The catalog implementations Floe can talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogKind {
    /// The Iceberg REST catalog.
    Rest,
    /// The SQL (JDBC) catalog: the sqlx connection URL and the size of its connection pool.
    Sql { url: String, pool_size: u32 },
}

/// Java's catalog property for the size of a catalog's client pool (`CatalogProperties.
/// CLIENT_POOL_SIZE`): for the SQL catalog, its connections.
const CLIENTS: &str = "clients";
/// The SQL catalog's connections when `clients` is unset. A Java task opens a catalog (and a
/// pool of 2) of its own; in Floe every connector of a worker writing through the same catalog
/// shares one pool.
pub const DEFAULT_SQL_POOL_SIZE: u32 = 4;
/// The most connections `clients` may ask for (SQLite serialises writers anyway; each
/// connection of a SQLite pool is a thread).
const MAX_SQL_POOL_SIZE: u32 = 64;

fn sql_pool_size(value: Option<&str>) -> Result<u32, SinkError> {
    let Some(v) = value else {
        return Ok(DEFAULT_SQL_POOL_SIZE);
    };
    match v.parse::<u32>() {
        Ok(n) if (1..=MAX_SQL_POOL_SIZE).contains(&n) => Ok(n),
        _ => Err(SinkError::Config(format!(
            "Invalid value {v} for configuration iceberg.catalog.{CLIENTS}: the SQL catalog's connections, a whole number from 1 to {MAX_SQL_POOL_SIZE}"
        ))),
    }
}

impl CatalogKind {
    /// Picks the catalog from `type`, `catalog-impl` or, failing both, the `uri` scheme.
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<CatalogKind, SinkError> {
        let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let kind = match (get("type"), get("catalog-impl")) {
            (Some(t), _) => t.to_ascii_lowercase(),
            (None, Some(class)) => match class {
                "org.apache.iceberg.rest.RESTCatalog" => "rest".to_string(),
                "org.apache.iceberg.jdbc.JdbcCatalog" => "jdbc".to_string(),
                other => return Err(SinkError::Config(format!("Unsupported catalog-impl {other}: Floe supports org.apache.iceberg.rest.RESTCatalog and org.apache.iceberg.jdbc.JdbcCatalog"))),
            },
            (None, None) => match get("uri") {
                Some(uri) if uri.starts_with("http://") || uri.starts_with("https://") => "rest".into(),
                Some(uri) if uri.starts_with("jdbc:") || uri.starts_with("sqlite:") => "jdbc".into(),
                _ => return Err(SinkError::Config("Cannot tell the catalog type: set iceberg.catalog.type to rest or jdbc".into())),
            },
        };
        match kind.as_str() {
            "rest" => {
                if get("uri").is_none() {
                    return Err(SinkError::Config(
                        "The REST catalog needs iceberg.catalog.uri".into(),
                    ));
                }
                Ok(CatalogKind::Rest)
            }
            "jdbc" | "sql" => {
                let uri = get("uri").ok_or_else(|| SinkError::Config("The JDBC catalog needs iceberg.catalog.uri (e.g. jdbc:sqlite:/path/catalog.db)".into()))?;
                Ok(CatalogKind::Sql {
                    url: sqlx_url(uri, get("jdbc.user"), get("jdbc.password"))?,
                    pool_size: sql_pool_size(get(CLIENTS))?,
                })
            }
            other => Err(SinkError::Config(format!(
                "Unsupported catalog type {other}: Floe supports rest and jdbc (SQLite, PostgreSQL)"
            ))),
        }
    }
}

/// Turns a JDBC URL into a sqlx one: `jdbc:sqlite:/p/c.db` → `sqlite:/p/c.db?mode=rwc` (a
/// relative path is taken relative to the worker's working directory);
/// `jdbc:postgresql://h:5432/db` with `jdbc.user` / `jdbc.password` → `postgres://u:p@h:5432/db`.
fn sqlx_url(uri: &str, user: Option<&str>, password: Option<&str>) -> Result<String, SinkError> {
    let rest = uri.strip_prefix("jdbc:").unwrap_or(uri);
    if let Some(path) = rest.strip_prefix("sqlite:") {
        let path = path.strip_prefix("file:").unwrap_or(path);
        let path = path.split('?').next().unwrap_or(path);
        let path = match path.strip_prefix("//") {
            Some(p) => p.to_string(),
            None => path.to_string(),
        };
        return Ok(format!("sqlite:{}?mode=rwc", absolute(&path).display()));
    }
    if let Some(target) = rest.strip_prefix("postgresql://") {
        let (authority_and_db, query) = target.split_once('?').unwrap_or((target, ""));
        let mut params: Vec<(String, String)> = Vec::new();
        let (mut url_user, mut url_password) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "user" => url_user = Some(v.to_string()),
                "password" => url_password = Some(v.to_string()),
                _ => params.push((k.to_string(), v.to_string())),
            }
        }
        let user = user.map(str::to_string).or(url_user);
        let password = password.map(str::to_string).or(url_password);
        let userinfo = match (user, password) {
            (Some(u), Some(p)) => format!("{}:{}@", percent_encode(&u), percent_encode(&p)),
            (Some(u), None) => format!("{}@", percent_encode(&u)),
            _ => String::new(),
        };
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{}", query.join("&"))
        };
        return Ok(format!("postgres://{userinfo}{authority_and_db}{query}"));
    }
    Err(SinkError::Config(format!(
        "Unsupported JDBC catalog URI {uri}: Floe supports jdbc:sqlite:<path> and jdbc:postgresql://<host>/<db>"
    )))
}

/// Percent-encodes one URL component (user info, path segment, query value).
pub(crate) fn percent_encode(s: &str) -> String {
    const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

fn absolute(path: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// The `io-impl` values Floe reads and writes with: Java's S3, Hadoop and resolving FileIOs
/// (and Floe's storage picks the store by the location's scheme for each of them).
pub const IO_IMPLS: &[&str] = &[
    "org.apache.iceberg.aws.s3.S3FileIO",
    "org.apache.iceberg.io.ResolvingFileIO",
    "org.apache.iceberg.hadoop.HadoopFileIO",
    "org.apache.iceberg.gcp.gcs.GCSFileIO",
    "org.apache.iceberg.azure.adlsv2.ADLSFileIO",
];

/// Why an `io-impl` cannot be used, if it cannot.
pub fn io_impl_error(props: &BTreeMap<String, String>) -> Option<String> {
    let io = props
        .get("io-impl")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())?;
    (!IO_IMPLS.contains(&io)).then(|| {
        format!(
            "Unsupported io-impl {io}: Floe reads and writes tables through {} (the store is chosen by the location's scheme: file, s3, s3a, gs, abfss)",
            IO_IMPLS.join(", ")
        )
    })
}

/// The FileIO of a catalog: local files, S3 (and S3-compatible stores), GCS and ADLS, chosen
/// by each location's scheme and configured with Java's FileIO keys (`s3.endpoint`,
/// `s3.path-style-access`, `s3.access-key-id`, `s3.secret-access-key`, `s3.session-token`,
/// `client.region`, `gcs.*`, `adls.*`). Without keys, S3 uses the AWS default credential chain
/// (environment, profile, web identity, instance metadata).
pub fn file_io(props: &BTreeMap<String, String>) -> FileIO {
    FileIOBuilder::new(storage_factory())
        .with_props(props.iter().map(|(k, v)| (k.clone(), v.clone())))
        .build()
}

fn storage_factory() -> Arc<OpenDalResolvingStorageFactory> {
    Arc::new(OpenDalResolvingStorageFactory::new())
}

/// A loaded catalog, held weakly: the handle of every task that loads the same catalog.
struct SharedCatalog {
    catalog: std::sync::Weak<dyn Catalog>,
    committer: WeakCommitter,
}

enum WeakCommitter {
    Jdbc(std::sync::Weak<JdbcCatalog>),
    Rest(std::sync::Weak<RestCommitter>),
}

impl SharedCatalog {
    fn of(handle: &CatalogHandle) -> SharedCatalog {
        SharedCatalog {
            catalog: Arc::downgrade(&handle.catalog),
            committer: match &handle.committer {
                Committer::Jdbc(c) => WeakCommitter::Jdbc(Arc::downgrade(c)),
                Committer::Rest(c) => WeakCommitter::Rest(Arc::downgrade(c)),
            },
        }
    }

    fn upgrade(&self) -> Option<CatalogHandle> {
        Some(CatalogHandle {
            catalog: self.catalog.upgrade()?,
            committer: match &self.committer {
                WeakCommitter::Jdbc(c) => Committer::Jdbc(c.upgrade()?),
                WeakCommitter::Rest(c) => Committer::Rest(c.upgrade()?),
            },
        })
    }
}

/// Per catalog (name and properties), the one loaded, if any task still holds it. Each slot
/// has a lock of its own, held while loading, so tasks starting together load a catalog once
/// and a catalog that does not answer delays only the tasks that use it.
type Slot = Arc<tokio::sync::Mutex<Option<SharedCatalog>>>;

fn slot(key: String) -> Slot {
    static LOADED: std::sync::OnceLock<std::sync::Mutex<HashMap<String, Slot>>> =
        std::sync::OnceLock::new();
    let mut loaded = match LOADED.get_or_init(Default::default).lock() {
        Ok(l) => l,
        Err(poisoned) => poisoned.into_inner(),
    };
    // Slots nobody is loading and whose catalog every task dropped.
    loaded.retain(|_, s| {
        Arc::strong_count(s) > 1
            || s.try_lock()
                .map(|c| c.as_ref().and_then(SharedCatalog::upgrade).is_some())
                .unwrap_or(true)
    });
    loaded.entry(key).or_default().clone()
}

/// Loads the catalog named `name` from its properties, or answers the one already loaded in
/// this process with the same name and properties: the tasks of every connector writing
/// through one catalog share its connection pool (and, for SQLite, the pool's threads) and
/// its REST session, as long as any of them holds it.
pub async fn load_catalog(
    name: &str,
    props: &BTreeMap<String, String>,
) -> Result<CatalogHandle, SinkError> {
    let slot = slot(format!("{name}\u{0}{props:?}"));
    let mut shared = slot.lock().await;
    if let Some(handle) = shared.as_ref().and_then(SharedCatalog::upgrade) {
        return Ok(handle);
    }
    let handle = open_catalog(name, props).await?;
    *shared = Some(SharedCatalog::of(&handle));
    Ok(handle)
}

async fn open_catalog(
    name: &str,
    props: &BTreeMap<String, String>,
) -> Result<CatalogHandle, SinkError> {
    let kind = CatalogKind::from_props(props)?;
    if let Some(e) = io_impl_error(props) {
        return Err(SinkError::Config(e));
    }
    let storage = storage_factory();
    match kind {
        CatalogKind::Rest => {
            let cannot = |e: iceberg::Error| {
                SinkError::Catalog(format!("cannot load REST catalog {name}: {e}"))
            };
            let tokens = oauth::TokenSource::from_props(props)
                .map_err(cannot)?
                .map(Arc::new);
            let catalog = rest::RenewingRestCatalog::connect(name, props, storage, tokens.clone())
                .await
                .map_err(cannot)?;
            let committer = RestCommitter::connect(props, tokens)
                .await
                .map_err(cannot)?;
            Ok(CatalogHandle {
                catalog: Arc::new(catalog),
                committer: Committer::Rest(Arc::new(committer)),
            })
        }
        CatalogKind::Sql { url, pool_size } => {
            let warehouse = props
                .get("warehouse")
                .map(|w| warehouse_location(w.trim()))
                .ok_or_else(|| {
                    SinkError::Config("The JDBC catalog needs iceberg.catalog.warehouse".into())
                })?;
            if let Some(dir) = warehouse.strip_prefix("file://") {
                std::fs::create_dir_all(dir).map_err(|e| {
                    SinkError::Catalog(format!("cannot create warehouse directory {dir}: {e}"))
                })?;
            }
            if let Some(path) = url
                .strip_prefix("sqlite:")
                .and_then(|p| p.split('?').next())
            {
                if let Some(parent) = std::path::Path::new(path).parent() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        SinkError::Catalog(format!("cannot create directory for {path}: {e}"))
                    })?;
                }
            }
            let catalog = JdbcCatalog::open(name, &url, pool_size, &warehouse, file_io(props))
                .await
                .map_err(|e| SinkError::Catalog(format!("cannot open SQL catalog {name}: {e}")))?;
            let catalog = Arc::new(catalog);
            Ok(CatalogHandle {
                catalog: catalog.clone(),
                committer: Committer::Jdbc(catalog),
            })
        }
    }
}

/// A warehouse given as a plain path becomes a `file://` URI of the absolute path.
fn warehouse_location(w: &str) -> String {
    if w.contains("://") {
        return w.trim_end_matches('/').to_string();
    }
    let path = w.strip_prefix("file:").unwrap_or(w);
    format!("file://{}", absolute(path.trim_end_matches('/')).display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn accepts_java_spellings() {
        assert_eq!(
            CatalogKind::from_props(&props(&[
                ("type", "jdbc"),
                ("uri", "jdbc:sqlite:/tmp/c.db")
            ]))
            .unwrap(),
            CatalogKind::Sql {
                url: "sqlite:/tmp/c.db?mode=rwc".into(),
                pool_size: DEFAULT_SQL_POOL_SIZE,
            }
        );
        assert_eq!(
            CatalogKind::from_props(&props(&[
                ("catalog-impl", "org.apache.iceberg.jdbc.JdbcCatalog"),
                ("uri", "jdbc:sqlite:file:/tmp/c.db")
            ]))
            .unwrap(),
            CatalogKind::Sql {
                url: "sqlite:/tmp/c.db?mode=rwc".into(),
                pool_size: DEFAULT_SQL_POOL_SIZE,
            }
        );
        assert_eq!(
            CatalogKind::from_props(&props(&[
                ("type", "jdbc"),
                ("uri", "jdbc:postgresql://db:5432/iceberg?sslmode=disable"),
                ("jdbc.user", "floe"),
                ("jdbc.password", "p@ss word"),
            ]))
            .unwrap(),
            CatalogKind::Sql {
                url: "postgres://floe:p%40ss%20word@db:5432/iceberg?sslmode=disable".into(),
                pool_size: DEFAULT_SQL_POOL_SIZE,
            }
        );
        assert_eq!(
            CatalogKind::from_props(&props(&[
                ("type", "rest"),
                ("uri", "http://localhost:8181")
            ]))
            .unwrap(),
            CatalogKind::Rest
        );
        assert!(
            CatalogKind::from_props(&props(&[("type", "hive"), ("uri", "thrift://x")])).is_err()
        );
    }

    #[test]
    fn clients_sizes_the_sql_pool() {
        let sql = |clients: &str| {
            CatalogKind::from_props(&props(&[
                ("type", "jdbc"),
                ("uri", "jdbc:sqlite:/tmp/c.db"),
                ("clients", clients),
            ]))
        };
        assert_eq!(
            sql("8").unwrap(),
            CatalogKind::Sql {
                url: "sqlite:/tmp/c.db?mode=rwc".into(),
                pool_size: 8,
            }
        );
        assert_eq!(
            sql(" 1 ").unwrap(),
            CatalogKind::Sql {
                url: "sqlite:/tmp/c.db?mode=rwc".into(),
                pool_size: 1,
            }
        );
        for bad in ["0", "-2", "two", "65"] {
            let e = sql(bad).unwrap_err().to_string();
            assert!(
                e.contains(&format!(
                    "Invalid value {bad} for configuration iceberg.catalog.clients"
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn every_store_is_reachable_through_the_java_keys() {
        // Building an output file resolves the store from the scheme and reads its keys;
        // nothing is sent until something is written.
        let io = file_io(&props(&[
            ("io-impl", "org.apache.iceberg.io.ResolvingFileIO"),
            ("s3.endpoint", "http://127.0.0.1:1"),
            ("s3.path-style-access", "true"),
            ("s3.access-key-id", "AK"),
            ("s3.secret-access-key", "SK"),
            ("client.region", "us-east-1"),
            ("gcs.project-id", "p"),
            ("gcs.no-auth", "true"),
            ("adls.account-name", "acct"),
            ("adls.account-key", "a2V5"),
        ]));
        for location in [
            "file:///tmp/w/t/data/f.parquet",
            "s3://bucket/w/f.parquet",
            "s3a://bucket/w/f.parquet",
            "gs://bucket/w/f.parquet",
            "abfss://fs@acct.dfs.core.windows.net/w/f.parquet",
        ] {
            assert!(io.new_output(location).is_ok(), "{location}");
        }
        assert!(
            io_impl_error(&props(&[("io-impl", "org.apache.iceberg.aws.s3.S3FileIO")])).is_none()
        );
        assert!(io_impl_error(&props(&[("io-impl", "com.example.IO")]))
            .is_some_and(|e| e.contains("Unsupported io-impl com.example.IO")));
    }

    #[test]
    fn warehouse_paths_become_file_uris() {
        assert_eq!(warehouse_location("/tmp/wh/"), "file:///tmp/wh");
        assert_eq!(warehouse_location("file:///tmp/wh"), "file:///tmp/wh");
        assert_eq!(warehouse_location("s3://b/wh"), "s3://b/wh");
    }
}
