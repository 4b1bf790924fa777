//! Building a catalog from `iceberg.catalog.*`, accepting the Java spellings.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use iceberg::io::LocalFsStorageFactory;
use iceberg::{Catalog, CatalogBuilder};
use iceberg_catalog_rest::RestCatalogBuilder;
use iceberg_catalog_sql::SqlCatalogBuilder;

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
                    url: sqlx_url(uri)?,
                })
            }
            other => Err(SinkError::Config(format!(
                "Unsupported catalog type {other}: Floe supports rest and jdbc (SQLite)"
            ))),
        }
    }
}

/// Turns a JDBC URL into a sqlx one: `jdbc:sqlite:/p/c.db` → `sqlite:/p/c.db?mode=rwc`.
/// A relative path is taken relative to the worker's working directory.
fn sqlx_url(uri: &str) -> Result<String, SinkError> {
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
    Err(SinkError::Config(format!(
        "Unsupported JDBC catalog URI {uri}: Floe supports jdbc:sqlite:<path>"
    )))
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
) -> Result<Arc<dyn Catalog>, SinkError> {
    let kind = CatalogKind::from_props(props)?;
    let storage = Arc::new(LocalFsStorageFactory);
    match kind {
        CatalogKind::Rest => {
            let props: HashMap<String, String> = props
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "type" | "catalog-impl" | "io-impl"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let catalog = RestCatalogBuilder::default()
                .with_storage_factory(storage)
                .load(name, props)
                .await
                .map_err(|e| SinkError::Catalog(format!("cannot load REST catalog {name}: {e}")))?;
            Ok(Arc::new(catalog))
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
            let props = HashMap::from([
                ("uri".to_string(), url.clone()),
                ("warehouse".to_string(), warehouse),
                ("sql_bind_style".to_string(), "QMark".to_string()),
            ]);
            let catalog = SqlCatalogBuilder::default()
                .with_storage_factory(storage)
                .load(name, props)
                .await
                .map_err(|e| SinkError::Catalog(format!("cannot open SQL catalog {name}: {e}")))?;
            Ok(Arc::new(catalog))
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
