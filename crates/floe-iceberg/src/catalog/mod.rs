//! Building a catalog from `iceberg.catalog.*`, accepting the Java spellings.

pub mod jdbc;
pub mod rest_commit;

use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;
use std::sync::Arc;

use iceberg::io::{FileIOBuilder, LocalFsStorageFactory};
use iceberg::table::Table;
use iceberg::{Catalog, CatalogBuilder, TableRequirement, TableUpdate};
use iceberg_catalog_rest::RestCatalogBuilder;

use self::jdbc::JdbcCatalog;
use self::rest_commit::RestCommitter;

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
    /// The SQL (JDBC) catalog; holds the sqlx connection URL.
    Sql { url: String },
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

/// Loads the catalog named `name` from its properties.
pub async fn load_catalog(
    name: &str,
    props: &BTreeMap<String, String>,
) -> Result<CatalogHandle, SinkError> {
    let kind = CatalogKind::from_props(props)?;
    let storage = Arc::new(LocalFsStorageFactory);
    match kind {
        CatalogKind::Rest => {
            let rest_props: HashMap<String, String> = props
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "type" | "catalog-impl" | "io-impl"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let catalog = RestCatalogBuilder::default()
                .with_storage_factory(storage)
                .load(name, rest_props)
                .await
                .map_err(|e| SinkError::Catalog(format!("cannot load REST catalog {name}: {e}")))?;
            let committer = RestCommitter::connect(props)
                .await
                .map_err(|e| SinkError::Catalog(format!("cannot load REST catalog {name}: {e}")))?;
            Ok(CatalogHandle {
                catalog: Arc::new(catalog),
                committer: Committer::Rest(Arc::new(committer)),
            })
        }
        CatalogKind::Sql { url } => {
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
            let file_io = FileIOBuilder::new(storage).build();
            let catalog = JdbcCatalog::open(name, &url, &warehouse, file_io)
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
                url: "sqlite:/tmp/c.db?mode=rwc".into()
            }
        );
        assert_eq!(
            CatalogKind::from_props(&props(&[
                ("catalog-impl", "org.apache.iceberg.jdbc.JdbcCatalog"),
                ("uri", "jdbc:sqlite:file:/tmp/c.db")
            ]))
            .unwrap(),
            CatalogKind::Sql {
                url: "sqlite:/tmp/c.db?mode=rwc".into()
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
                url: "postgres://floe:p%40ss%20word@db:5432/iceberg?sslmode=disable".into()
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
    fn warehouse_paths_become_file_uris() {
        assert_eq!(warehouse_location("/tmp/wh/"), "file:///tmp/wh");
        assert_eq!(warehouse_location("file:///tmp/wh"), "file:///tmp/wh");
        assert_eq!(warehouse_location("s3://b/wh"), "s3://b/wh");
    }
}
