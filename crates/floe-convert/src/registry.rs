//! A Schema Registry client (Confluent API; Apicurio's `/apis/ccompat/v7` too): schemas by id,
//! cached, with basic or bearer authentication and several URLs tried in order.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::ConfigError;

/// A registered schema as the registry returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegisteredSchema {
    pub id: u32,
    /// `AVRO` (the default), `JSON` or `PROTOBUF`.
    pub schema_type: String,
    pub schema: String,
    /// Other schemas this one imports (Protobuf imports, Avro named types, JSON `$ref`s).
    pub references: Vec<SchemaReference>,
}

/// A schema reference: the import `name` and the subject version that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaReference {
    pub name: String,
    pub subject: String,
    pub version: i64,
}

/// Where schemas come from; the registry client, or a fixed set in tests.
pub trait SchemaSource: Send + Sync {
    /// The schema with `id`.
    fn schema_by_id(&self, id: u32) -> Result<RegisteredSchema, String>;

    /// The schema registered as `version` of `subject` (for references).
    fn schema_by_subject(&self, subject: &str, version: i64) -> Result<RegisteredSchema, String> {
        Err(format!(
            "cannot resolve the reference to {subject} version {version}: no registry"
        ))
    }
}

/// Registry settings from converter properties (`schema.registry.url`, `basic.auth.*`,
/// `bearer.auth.*`).
#[derive(Clone)]
pub struct RegistryClient {
    urls: Vec<String>,
    auth: Option<String>,
    http: reqwest::Client,
    cache: Arc<Mutex<HashMap<u32, RegisteredSchema>>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        f.debug_struct("RegistryClient")
            .field("urls", &self.urls)
            .finish_non_exhaustive()
    }
}

fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

impl RegistryClient {
    /// Builds a client from converter properties (prefix already stripped).
    pub fn configure(props: &BTreeMap<String, String>) -> Result<RegistryClient, ConfigError> {
        let urls: Vec<String> = props
            .get("schema.registry.url")
            .map(|u| {
                u.split(',')
                    .map(|s| s.trim().trim_end_matches('/').to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if urls.is_empty() {
            return Err(ConfigError::InvalidValue {
                key: "schema.registry.url".into(),
                value: String::new(),
                reason: "Missing required configuration \"schema.registry.url\" which has no default value.".into(),
            });
        }
        let source = props
            .get("basic.auth.credentials.source")
            .map(|s| s.trim().to_ascii_uppercase())
            .unwrap_or_else(|| "URL".into());
        if !matches!(source.as_str(), "URL" | "USER_INFO") {
            return Err(ConfigError::InvalidValue {
                key: "basic.auth.credentials.source".into(),
                value: source,
                reason: "Floe reads registry credentials from URL or USER_INFO".into(),
            });
        }
        let mut auth = match source.as_str() {
            "USER_INFO" => props
                .get("basic.auth.user.info")
                .map(|u| format!("Basic {}", base64(u))),
            _ => None,
        };
        if let Some(token) = props.get("bearer.auth.token").filter(|t| !t.is_empty()) {
            auth = Some(format!("Bearer {token}"));
        }
        let mut clean_urls = Vec::new();
        for u in urls {
            // URL credentials: http://user:pass@host:port
            match u.split_once("://").and_then(|(scheme, rest)| {
                rest.split_once('@')
                    .map(|(cred, host)| (scheme, cred, host))
            }) {
                Some((scheme, cred, host)) if source == "URL" => {
                    auth.get_or_insert_with(|| format!("Basic {}", base64(cred)));
                    clean_urls.push(format!("{scheme}://{host}"));
                }
                _ => clean_urls.push(u),
            }
        }
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
        // A custom CA, and a client certificate for mutual TLS, as the Confluent client's
        // schema.registry.ssl.* keys say, or else the JVM-wide stores of KAFKA_OPTS.
        let jvm = floe_tls::jvm_default_keys(std::env::var("KAFKA_OPTS").ok().as_deref());
        let specific = props.keys().any(|k| k.starts_with("schema.registry.ssl."));
        if specific || !jvm.is_empty() {
            let (source, prefix) = if specific {
                (props, "schema.registry.")
            } else {
                (&jvm, "")
            };
            let tls = floe_tls::Material::from_java(source, prefix)
                .and_then(|m| m.client_config("schema.registry.ssl"))
                .map_err(|e| ConfigError::InvalidValue {
                    key: e.key,
                    value: "(not shown)".into(),
                    reason: e.reason,
                })?;
            builder = builder.use_preconfigured_tls(tls);
        }
        let http = builder.build().map_err(|e| ConfigError::InvalidValue {
            key: "schema.registry.url".into(),
            value: clean_urls.join(","),
            reason: e.to_string(),
        })?;
        Ok(RegistryClient {
            urls: clean_urls,
            auth,
            http,
            cache: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// GETs `path` from the first registry URL that answers; `what` names it in errors.
    async fn get_json(&self, path: &str, what: &str) -> Result<serde_json::Value, String> {
        let mut last = String::new();
        for url in &self.urls {
            let mut req = self.http.get(format!("{url}{path}"));
            if let Some(a) = &self.auth {
                req = req.header(reqwest::header::AUTHORIZATION, a);
            }
            match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    return resp
                        .json()
                        .await
                        .map_err(|e| format!("{what} from {url}: {e}"));
                }
                Ok(resp) if resp.status() == reqwest::StatusCode::NOT_FOUND => {
                    return Err(format!("{what} not found in the registry at {url}"));
                }
                Ok(resp) => {
                    last = format!("registry at {url} answered {} for {what}", resp.status())
                }
                Err(e) => last = format!("registry at {url} unreachable: {e}"),
            }
        }
        Err(last)
    }

    async fn fetch(&self, path: String, id: u32, what: String) -> Result<RegisteredSchema, String> {
        let body = self.get_json(&path, &what).await?;
        let schema = body
            .get("schema")
            .and_then(|s| s.as_str())
            .ok_or_else(|| format!("{what}: no \"schema\" in the answer"))?;
        let schema_type = body
            .get("schemaType")
            .and_then(|s| s.as_str())
            .unwrap_or("AVRO")
            .to_string();
        let references = body
            .get("references")
            .and_then(|r| r.as_array())
            .map(|refs| {
                refs.iter()
                    .filter_map(|r| {
                        Some(SchemaReference {
                            name: r.get("name")?.as_str()?.to_string(),
                            subject: r.get("subject")?.as_str()?.to_string(),
                            version: r.get("version")?.as_i64()?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let id = body
            .get("id")
            .and_then(|i| i.as_u64())
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(id);
        Ok(RegisteredSchema {
            id,
            schema_type,
            schema: schema.to_string(),
            references,
        })
    }

    /// Runs a registry call from sync converter code (inside or outside a runtime).
    fn block_on<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => tokio::task::block_in_place(|| handle.block_on(fut)),
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(fut),
        }
    }
}

impl SchemaSource for RegistryClient {
    fn schema_by_id(&self, id: u32) -> Result<RegisteredSchema, String> {
        if let Some(s) = self.cache.lock().ok().and_then(|c| c.get(&id).cloned()) {
            return Ok(s);
        }
        let fetched =
            self.block_on(self.fetch(format!("/schemas/ids/{id}"), id, format!("schema id {id}")))?;
        if let Ok(mut c) = self.cache.lock() {
            c.insert(id, fetched.clone());
        }
        Ok(fetched)
    }

    fn schema_by_subject(&self, subject: &str, version: i64) -> Result<RegisteredSchema, String> {
        let path = format!("/subjects/{}/versions/{version}", encode_path(subject));
        self.block_on(self.fetch(path, 0, format!("subject {subject} version {version}")))
    }
}

/// Schemas of one format fetched by id and parsed once: what every registry-backed converter
/// keeps (`T` is the converter's parsed form).
pub struct ParsedSchemas<T> {
    source: Arc<dyn SchemaSource>,
    /// The registry's `schemaType` this converter reads (`AVRO`, `JSON`, `PROTOBUF`).
    schema_type: &'static str,
    parsed: Mutex<HashMap<u32, Arc<T>>>,
}

impl<T> ParsedSchemas<T> {
    /// Schemas of `schema_type` from `source`.
    pub fn new(source: Arc<dyn SchemaSource>, schema_type: &'static str) -> ParsedSchemas<T> {
        ParsedSchemas {
            source,
            schema_type,
            parsed: Mutex::new(HashMap::new()),
        }
    }

    /// The parsed schema `id`, fetched and parsed with `parse` the first time.
    pub fn get(
        &self,
        id: u32,
        parse: impl FnOnce(&str) -> Result<T, crate::ConvertError>,
    ) -> Result<Arc<T>, crate::ConvertError> {
        self.get_registered(id, |registered, _| parse(&registered.schema))
    }

    /// Like [`ParsedSchemas::get`], for formats whose schemas need the whole registry answer
    /// (references) and the source to resolve them.
    pub fn get_registered(
        &self,
        id: u32,
        parse: impl FnOnce(&RegisteredSchema, &dyn SchemaSource) -> Result<T, crate::ConvertError>,
    ) -> Result<Arc<T>, crate::ConvertError> {
        use crate::ConvertError;
        if let Some(p) = self.parsed.lock().ok().and_then(|m| m.get(&id).cloned()) {
            return Ok(p);
        }
        let registered = self.source.schema_by_id(id).map_err(|e| {
            ConvertError::Data(format!(
                "Error retrieving {} schema for id {id}: {e}",
                self.display()
            ))
        })?;
        if !registered
            .schema_type
            .eq_ignore_ascii_case(self.schema_type)
        {
            return Err(ConvertError::Data(format!(
                "Schema {id} is a {} schema, not {}",
                registered.schema_type,
                self.display()
            )));
        }
        let parsed = Arc::new(parse(&registered, self.source.as_ref())?);
        if let Ok(mut m) = self.parsed.lock() {
            m.insert(id, parsed.clone());
        }
        Ok(parsed)
    }

    fn display(&self) -> &'static str {
        match self.schema_type {
            "AVRO" => "Avro",
            other => other,
        }
    }
}

/// Percent-encodes a URL path segment (RFC 3986 unreserved characters stay as they are).
fn encode_path(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// Splits Confluent framing: magic byte 0, 4-byte big-endian schema id, payload.
pub fn split_frame(bytes: &[u8]) -> Result<(u32, &[u8]), String> {
    match bytes {
        [0, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [] => Err("empty payload".into()),
        [m, ..] if *m != 0 => Err("Unknown magic byte!".into()),
        _ => Err("payload shorter than the 5-byte schema registry header".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_confluent_frames() {
        assert_eq!(split_frame(&[0, 0, 0, 1, 2, 9]).unwrap(), (258, &[9u8][..]));
        assert_eq!(split_frame(&[1, 0]).unwrap_err(), "Unknown magic byte!");
        assert!(split_frame(&[0, 0]).is_err());
    }

    #[test]
    fn reads_auth_settings_without_printing_them() {
        let props = BTreeMap::from([(
            "schema.registry.url".to_string(),
            "http://u:p@h1:1,http://h2:2/".to_string(),
        )]);
        let c = RegistryClient::configure(&props).unwrap();
        assert_eq!(
            c.urls,
            vec!["http://h1:1".to_string(), "http://h2:2".to_string()]
        );
        assert_eq!(c.auth.as_deref(), Some("Basic dTpw"));
        assert!(!format!("{c:?}").contains("dTpw"));
        let props = BTreeMap::from([
            ("schema.registry.url".to_string(), "http://h".to_string()),
            (
                "basic.auth.credentials.source".to_string(),
                "USER_INFO".to_string(),
            ),
            ("basic.auth.user.info".to_string(), "a:b".to_string()),
        ]);
        assert_eq!(
            RegistryClient::configure(&props).unwrap().auth.as_deref(),
            Some("Basic YTpi")
        );
    }
}
