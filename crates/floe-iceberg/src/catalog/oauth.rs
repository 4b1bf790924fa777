//! OAuth2 for the REST catalog, configured as Java's REST catalog client is: `token` is a fixed
//! bearer token; `credential` (`client_id:secret`, or just `secret`) is exchanged for a token
//! with the client-credentials grant at `oauth2-server-uri` (default `<uri>/v1/oauth/tokens`)
//! for `scope` (default `catalog`), and the token is renewed before it expires — at 80 % of
//! its `expires_in` — and whenever the catalog refuses it. Every REST call Floe makes, its own
//! commits included, carries the current token.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use iceberg::{Error, ErrorKind, Result};
use serde::Deserialize;
use tokio::sync::Mutex;
use tracing::debug;

/// Where a REST catalog's bearer tokens come from.
pub struct TokenSource {
    grant: Grant,
    http: reqwest::Client,
    current: Mutex<Option<Issued>>,
}

enum Grant {
    Fixed(String),
    ClientCredentials {
        endpoint: String,
        client_id: Option<String>,
        secret: String,
        scope: String,
    },
}

struct Issued {
    token: String,
    /// When to renew it (None: it does not expire).
    renew_at: Option<Instant>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token or the secret.
        let kind = match &self.grant {
            Grant::Fixed(_) => "fixed token",
            Grant::ClientCredentials { .. } => "client credentials",
        };
        f.debug_struct("TokenSource").field("kind", &kind).finish()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenSource {
    /// The token source the catalog properties describe, or None without `token` and
    /// `credential`.
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<Option<TokenSource>> {
        let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let grant = match (get("token"), get("credential")) {
            (Some(token), _) => Grant::Fixed(token.to_string()),
            (None, Some(credential)) => {
                let uri = get("uri").unwrap_or_default().trim_end_matches('/');
                let endpoint = get("oauth2-server-uri")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{uri}/v1/oauth/tokens"));
                let (client_id, secret) = match credential.split_once(':') {
                    Some((id, secret)) => (Some(id.to_string()), secret.to_string()),
                    None => (None, credential.to_string()),
                };
                Grant::ClientCredentials {
                    endpoint,
                    client_id,
                    secret,
                    scope: get("scope").unwrap_or("catalog").to_string(),
                }
            }
            (None, None) => return Ok(None),
        };
        let http = super::http_builder(props)?
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unexpected,
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        Ok(Some(TokenSource {
            grant,
            http,
            current: Mutex::new(None),
        }))
    }

    /// The token to send now (renewed first when it is due).
    pub async fn token(&self) -> Result<String> {
        let mut current = self.current.lock().await;
        match current.as_ref() {
            Some(issued) if issued.renew_at.is_none_or(|at| Instant::now() < at) => {
                return Ok(issued.token.clone())
            }
            _ => {}
        }
        let issued = self.issue().await?;
        let token = issued.token.clone();
        *current = Some(issued);
        Ok(token)
    }

    /// Forgets the current token (the catalog refused it): the next call gets a new one.
    pub async fn invalidate(&self) {
        *self.current.lock().await = None;
    }

    /// Whether tokens are obtained (and can be renewed) rather than fixed.
    pub fn renews(&self) -> bool {
        matches!(self.grant, Grant::ClientCredentials { .. })
    }

    async fn issue(&self) -> Result<Issued> {
        let (endpoint, client_id, secret, scope) = match &self.grant {
            Grant::Fixed(token) => {
                return Ok(Issued {
                    token: token.clone(),
                    renew_at: None,
                })
            }
            Grant::ClientCredentials {
                endpoint,
                client_id,
                secret,
                scope,
            } => (endpoint, client_id, secret, scope),
        };
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "client_credentials"),
            ("client_secret", secret),
            ("scope", scope),
        ];
        if let Some(id) = client_id {
            form.push(("client_id", id));
        }
        let refused = |what: String| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("OAuth2 token request to {endpoint} {what}"),
            )
        };
        let response = self
            .http
            .post(endpoint.as_str())
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unexpected,
                    format!("OAuth2 token request to {endpoint} failed: {e}"),
                )
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(refused(format!("answered {status}: {body}")));
        }
        let answer: TokenResponse = response
            .json()
            .await
            .map_err(|e| refused(format!("answered something that is not a token: {e}")))?;
        let renew_at = answer
            .expires_in
            .map(|secs| Instant::now() + Duration::from_millis(secs * 800));
        debug!(endpoint = %endpoint, expires_in = ?answer.expires_in, "OAuth2 token issued");
        Ok(Issued {
            token: answer.access_token,
            renew_at,
        })
    }
}

/// Whether an error from the catalog means the token was refused (401).
pub fn unauthorized(e: &Error) -> bool {
    let text = format!("{e:?}");
    text.contains("401") || text.contains("NotAuthorized") || text.contains("Unauthorized")
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
    fn credentials_and_tokens_are_read_as_java_reads_them() {
        let s = TokenSource::from_props(&props(&[("uri", "http://c/"), ("credential", "id:sec")]))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("a source"));
        match &s.grant {
            Grant::ClientCredentials {
                endpoint,
                client_id,
                secret,
                scope,
            } => {
                assert_eq!(endpoint, "http://c/v1/oauth/tokens");
                assert_eq!(client_id.as_deref(), Some("id"));
                assert_eq!((secret.as_str(), scope.as_str()), ("sec", "catalog"));
            }
            Grant::Fixed(_) => panic!("client credentials expected"),
        }
        assert!(s.renews());
        let fixed =
            TokenSource::from_props(&props(&[("token", "s3cr3t-token"), ("credential", "x")]))
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("a source"));
        assert!(!fixed.renews());
        let shown = format!("{fixed:?}");
        assert!(
            shown.contains("fixed token") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        assert!(TokenSource::from_props(&props(&[("uri", "http://c")]))
            .ok()
            .flatten()
            .is_none());
    }
}
