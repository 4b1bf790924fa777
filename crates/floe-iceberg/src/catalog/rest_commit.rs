//! Committing requirements and updates Floe built itself to an Iceberg REST catalog: one
//! `POST /v1/{prefix}/namespaces/{ns}/tables/{table}` with `{identifier, requirements, updates}`
//! (the REST spec's `CommitTableRequest`). The catalog checks the requirements and applies the
//! updates atomically; `409` means a requirement failed (a conflict), `5xx`/timeouts leave the
//! outcome unknown.

use std::collections::BTreeMap;
use std::time::Duration;

use iceberg::spec::TableMetadata;
use iceberg::{Error, ErrorKind, Result, TableIdent, TableRequirement, TableUpdate};
use serde::Deserialize;
use serde_json::json;

use super::percent_encode as encode;

/// The HTTP side of Floe's REST commits: the catalog URI, its path prefix and the headers the
/// connector config gives (`token`, `header.*`).
#[derive(Clone)]
pub struct RestCommitter {
    client: reqwest::Client,
    base: String,
    headers: Vec<(String, String)>,
}

impl std::fmt::Debug for RestCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values may hold credentials: only their names are shown.
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("RestCommitter")
            .field("base", &self.base)
            .field("headers", &names)
            .finish()
    }
}

#[derive(Deserialize)]
struct ConfigResponse {
    #[serde(default)]
    defaults: BTreeMap<String, String>,
    #[serde(default)]
    overrides: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct CommitResponse {
    #[serde(rename = "metadata-location")]
    metadata_location: String,
    metadata: TableMetadata,
}

fn http_error(what: impl std::fmt::Display, e: reqwest::Error) -> Error {
    Error::new(ErrorKind::Unexpected, format!("{what}: {e}"))
}

impl RestCommitter {
    /// Reads the catalog's `/v1/config` (for the path prefix) with the connector's catalog
    /// properties (`uri`, `warehouse`, `prefix`, `token`, `header.*`).
    pub async fn connect(props: &BTreeMap<String, String>) -> Result<Self> {
        let uri = props
            .get("uri")
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .ok_or_else(|| Error::new(ErrorKind::DataInvalid, "the REST catalog needs a uri"))?;
        if props.contains_key("credential") && !props.contains_key("token") {
            return Err(Error::new(
                ErrorKind::FeatureUnsupported,
                "commits Floe builds itself (branches, schema updates) need iceberg.catalog.token \
                 when the REST catalog uses OAuth2 client credentials",
            ));
        }
        let mut headers: Vec<(String, String)> = props
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("header.")
                    .map(|h| (h.to_string(), v.clone()))
            })
            .collect();
        if let Some(token) = props.get("token") {
            headers.push(("Authorization".into(), format!("Bearer {token}")));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| http_error("cannot build the HTTP client", e))?;
        let mut committer = RestCommitter {
            client,
            base: format!("{uri}/v1"),
            headers,
        };
        let mut url = format!("{uri}/v1/config");
        if let Some(warehouse) = props.get("warehouse") {
            url = format!("{url}?warehouse={}", encode(warehouse));
        }
        let config: ConfigResponse = committer
            .request(committer.client.get(&url))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| http_error(format!("GET {url}"), e))?
            .json()
            .await
            .map_err(|e| http_error(format!("reading GET {url}"), e))?;
        let prefix = config
            .overrides
            .get("prefix")
            .or(props.get("prefix"))
            .or(config.defaults.get("prefix"))
            .filter(|p| !p.is_empty());
        if let Some(prefix) = prefix {
            committer.base = format!("{uri}/v1/{}", prefix.trim_matches('/'));
        }
        Ok(committer)
    }

    fn request(&self, mut req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        req
    }

    /// Sends one commit; answers the metadata location and metadata the catalog now holds.
    pub async fn commit(
        &self,
        ident: &TableIdent,
        requirements: Vec<TableRequirement>,
        updates: Vec<TableUpdate>,
    ) -> Result<(String, TableMetadata)> {
        let url = format!(
            "{}/namespaces/{}/tables/{}",
            self.base,
            encode(&ident.namespace().join("\u{1f}")),
            encode(ident.name())
        );
        let body = json!({
            "identifier": {"namespace": ident.namespace().clone().inner(), "name": ident.name()},
            "requirements": requirements,
            "updates": updates,
        });
        let response = self
            .request(self.client.post(&url))
            .json(&body)
            .send()
            .await
            .map_err(|e| http_error(format!("commit to {ident}: POST {url}"), e))?;
        let status = response.status();
        if status.is_success() {
            let committed: CommitResponse = response
                .json()
                .await
                .map_err(|e| http_error(format!("commit to {ident}: reading the answer"), e))?;
            return Ok((committed.metadata_location, committed.metadata));
        }
        let text = response.text().await.unwrap_or_default();
        let kind = match status.as_u16() {
            409 => ErrorKind::CatalogCommitConflicts,
            404 => ErrorKind::TableNotFound,
            400 | 401 | 403 | 406 => ErrorKind::DataInvalid,
            _ => ErrorKind::Unexpected,
        };
        Err(
            Error::new(kind, format!("commit to {ident} answered {status}: {text}"))
                .with_retryable(kind == ErrorKind::CatalogCommitConflicts),
        )
    }
}
