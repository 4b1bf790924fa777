//! Committing requirements and updates Floe built itself to an Iceberg REST catalog: one
//! `POST /v1/{prefix}/namespaces/{ns}/tables/{table}` with `{identifier, requirements, updates}`
//! (the REST spec's `CommitTableRequest`). The catalog checks the requirements and applies the
//! updates atomically; `409` means a requirement failed (a conflict), `5xx`/timeouts leave the
//! outcome unknown.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use iceberg::spec::TableMetadata;
use iceberg::{Error, ErrorKind, Result, TableIdent, TableRequirement, TableUpdate};
use serde::Deserialize;
use serde_json::json;

use super::oauth::TokenSource;
use super::percent_encode as encode;

/// The HTTP side of Floe's REST commits: the catalog URI, its path prefix, the headers the
/// connector config gives (`header.*`) and the bearer token of the catalog's token source.
#[derive(Clone)]
pub struct RestCommitter {
    client: reqwest::Client,
    base: String,
    headers: Vec<(String, String)>,
    tokens: Option<Arc<TokenSource>>,
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
    /// properties (`uri`, `warehouse`, `prefix`, `header.*`) and its token source.
    pub async fn connect(
        props: &BTreeMap<String, String>,
        tokens: Option<Arc<TokenSource>>,
    ) -> Result<Self> {
        let uri = props
            .get("uri")
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .ok_or_else(|| Error::new(ErrorKind::DataInvalid, "the REST catalog needs a uri"))?;
        let headers: Vec<(String, String)> = props
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("header.")
                    .map(|h| (h.to_string(), v.clone()))
            })
            .collect();
        let client = super::http_builder(props)?
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| http_error("cannot build the HTTP client", e))?;
        let mut committer = RestCommitter {
            client,
            base: format!("{uri}/v1"),
            headers,
            tokens,
        };
        let mut url = format!("{uri}/v1/config");
        if let Some(warehouse) = props.get("warehouse") {
            url = format!("{url}?warehouse={}", encode(warehouse));
        }
        let config: ConfigResponse = committer
            .request(committer.client.get(&url))
            .await?
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

    /// A request with the configured headers and the current bearer token.
    async fn request(&self, mut req: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder> {
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(tokens) = &self.tokens {
            req = req.bearer_auth(tokens.token().await?);
        }
        Ok(req)
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
        let mut response = self
            .request(self.client.post(&url))
            .await?
            .json(&body)
            .send()
            .await
            .map_err(|e| http_error(format!("commit to {ident}: POST {url}"), e))?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            // The token was refused before anything was applied: renew it and send again.
            if let Some(tokens) = self.tokens.as_ref().filter(|t| t.renews()) {
                tokens.invalidate().await;
                response = self
                    .request(self.client.post(&url))
                    .await?
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| http_error(format!("commit to {ident}: POST {url}"), e))?;
            }
        }
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
