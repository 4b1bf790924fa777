//! REST API security as a Java worker configures it:
//!
//! * HTTPS: `listeners=https://host:port`, the server's TLS material from the
//!   `listeners.https.ssl.*` keys when any is set, otherwise from the un-prefixed `ssl.*` keys
//!   (Java's all-or-nothing prefix), and `ssl.client.auth` for client certificates. The same
//!   material is the client side of requests to other workers.
//! * Basic authentication: `rest.extension.classes` naming Kafka's
//!   `BasicAuthSecurityRestExtension`, with the `KafkaConnect` entry of the JAAS file given by
//!   `-Djava.security.auth.login.config=` in `KAFKA_OPTS` (or the worker key
//!   `floe.rest.jaas.config`) and its `PropertyFileLoginModule` credentials file. Requests
//!   without valid credentials get Java's 401 answer; `GET /health` stays open for probes.
//!   Requests forwarded to other workers carry the caller's `Authorization` header, as Java's.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use floe_tls::Material;
use tracing::debug;

use crate::error::ConfigError;
use crate::kafka_security::parse_jaas;
use crate::properties::parse_properties;
use crate::worker_config::{strip_prefix, WorkerConfig};

/// The class of Kafka's basic-authentication REST extension.
pub const BASIC_AUTH_EXTENSION: &str =
    "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension";
/// The worker key naming the JAAS file when `KAFKA_OPTS` does not.
pub const JAAS_FILE_KEY: &str = "floe.rest.jaas.config";
const LOGIN_MODULE: &str =
    "org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule";
/// Java's answer to a request without valid credentials.
pub const UNAUTHORIZED_BODY: &str = "User cannot access the resource.";

/// The REST API's security: the TLS server configuration and the credentials.
#[derive(Clone, Default)]
pub struct RestSecurity {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// TLS material for requests to other workers.
    pub client_tls: Option<Material>,
    pub basic_auth: Option<Arc<BasicAuth>>,
}

impl std::fmt::Debug for RestSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestSecurity")
            .field("https", &self.tls.is_some())
            .field("basic_auth", &self.basic_auth.is_some())
            .finish()
    }
}

/// Users and passwords of a `PropertyFileLoginModule` credentials file.
pub struct BasicAuth {
    users: BTreeMap<String, String>,
}

impl BasicAuth {
    /// Whether an `Authorization` header value holds a known user with its password. An
    /// empty credentials file lets every request through, as Java's login module does.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let Some((user, password)) = authorization.and_then(decode_basic) else {
            return false;
        };
        self.users.get(&user).is_some_and(|expected| {
            expected.len() == password.len()
                && openssl::memcmp::eq(expected.as_bytes(), password.as_bytes())
        })
    }
}

fn decode_basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    (!user.is_empty()).then(|| (user.to_string(), password.to_string()))
}

fn security_error(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Security {
        key: key.to_string(),
        reason: reason.into(),
    }
}

impl RestSecurity {
    /// Reads the REST security settings of a worker; `kafka_opts` is the `KAFKA_OPTS`
    /// environment variable.
    pub fn from_worker(
        worker: &WorkerConfig,
        kafka_opts: Option<&str>,
    ) -> Result<RestSecurity, ConfigError> {
        let mut out = RestSecurity::default();
        if worker.rest_scheme == "https" || has_listener_tls(worker) {
            let (prefix, props) = listener_tls_props(worker);
            let material = Material::from_java(&props, "")
                .map_err(|e| security_error(&format!("{prefix}{}", e.key), e.reason))?;
            if worker.rest_scheme == "https" {
                let server = material
                    .server_config(&format!("{prefix}ssl.keystore"))
                    .map_err(|e| security_error(&e.key, e.reason))?;
                out.tls = Some(Arc::new(server));
            }
            out.client_tls = Some(material);
        }
        let extensions: Vec<String> = worker
            .props
            .get("rest.extension.classes")
            .map(|v| {
                v.split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for class in &extensions {
            if class != BASIC_AUTH_EXTENSION {
                return Err(security_error(
                    "rest.extension.classes",
                    format!("{class} is a Java REST extension Floe cannot load; Floe provides {BASIC_AUTH_EXTENSION}"),
                ));
            }
        }
        if !extensions.is_empty() {
            let file = jaas_file(worker, kafka_opts)?;
            out.basic_auth = Some(Arc::new(load_basic_auth(&file)?));
        }
        Ok(out)
    }
}

fn has_listener_tls(worker: &WorkerConfig) -> bool {
    worker
        .props
        .keys()
        .any(|k| k.starts_with("listeners.https."))
}

/// The TLS keys of the REST listener: `listeners.https.*` when any is set, else the
/// un-prefixed `ssl.*` keys.
fn listener_tls_props(worker: &WorkerConfig) -> (&'static str, BTreeMap<String, String>) {
    if has_listener_tls(worker) {
        (
            "listeners.https.",
            strip_prefix(&worker.props, "listeners.https."),
        )
    } else {
        (
            "",
            worker
                .props
                .iter()
                .filter(|(k, _)| k.starts_with("ssl."))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
}

fn jaas_file(worker: &WorkerConfig, kafka_opts: Option<&str>) -> Result<String, ConfigError> {
    let from_opts = kafka_opts.and_then(|opts| {
        opts.split_whitespace().find_map(|arg| {
            arg.strip_prefix("-Djava.security.auth.login.config=")
                .map(|p| p.trim_start_matches('=').trim_matches('"').to_string())
        })
    });
    from_opts
        .or_else(|| {
            worker
                .props
                .get(JAAS_FILE_KEY)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        })
        .ok_or_else(|| {
            security_error(
                "rest.extension.classes",
                format!("basic authentication needs a JAAS file: -Djava.security.auth.login.config=<file> in KAFKA_OPTS, or {JAAS_FILE_KEY}=<file>"),
            )
        })
}

/// Reads the `KafkaConnect` entry of a JAAS file and its credentials file.
pub fn load_basic_auth(jaas_path: &str) -> Result<BasicAuth, ConfigError> {
    let key = "java.security.auth.login.config";
    let text = std::fs::read_to_string(jaas_path)
        .map_err(|e| security_error(key, format!("cannot read {jaas_path}: {e}")))?;
    let entry = jaas_entry(&text, "KafkaConnect").ok_or_else(|| {
        security_error(
            key,
            format!("{jaas_path} has no KafkaConnect {{ … }}; entry"),
        )
    })?;
    let (module, options) = parse_jaas(&entry)
        .map_err(|e| security_error(key, format!("{jaas_path}: {}", e.reason)))?;
    if module != LOGIN_MODULE {
        return Err(security_error(
            key,
            format!(
                "{jaas_path}: the KafkaConnect entry uses {module}; Floe provides {LOGIN_MODULE}"
            ),
        ));
    }
    let file = options
        .get("file")
        .filter(|f| !f.trim().is_empty())
        .ok_or_else(|| security_error(key, "Property Credentials file must be specified"))?;
    let credentials = std::fs::read_to_string(Path::new(file)).map_err(|e| {
        security_error(
            key,
            format!("Error loading Property Credentials file {file}: {e}"),
        )
    })?;
    let users = parse_properties(&credentials);
    if users.is_empty() {
        tracing::warn!(file = %file, "credential properties file is empty; all requests will be permitted");
    }
    Ok(BasicAuth { users })
}

/// The body of the entry `name { … };` of a JAAS file, comments removed.
fn jaas_entry(text: &str, name: &str) -> Option<String> {
    let without_comments: String = text
        .lines()
        .map(|l| {
            let l = l.trim_start();
            if l.starts_with("//") || l.starts_with('#') {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = without_comments.as_str();
    while let Some(at) = rest.find(name) {
        let after = rest[at + name.len()..].trim_start();
        let before_ok = at == 0
            || rest[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_whitespace() || c == ';' || c == '}');
        if before_ok {
            if let Some(body) = after.strip_prefix('{') {
                let end = body.find('}')?;
                return Some(body[..end].trim().to_string());
            }
        }
        rest = &rest[at + name.len()..];
    }
    None
}

tokio::task_local! {
    /// The `Authorization` header of the request being served, for requests forwarded to
    /// other workers on its behalf.
    static AUTHORIZATION: Option<HeaderValue>;
}

/// Adds the caller's `Authorization` header (if the request being served had one) to a
/// request to another worker.
pub fn forwarded(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match AUTHORIZATION.try_with(|a| a.clone()).ok().flatten() {
        Some(value) => match reqwest::header::HeaderValue::from_bytes(value.as_bytes()) {
            Ok(v) => request.header(reqwest::header::AUTHORIZATION, v),
            Err(_) => request,
        },
        None => request,
    }
}

/// Checks the credentials of each request (when basic authentication is on) and keeps its
/// `Authorization` header for requests forwarded on its behalf.
pub async fn authenticate(
    axum::extract::State(auth): axum::extract::State<Option<Arc<BasicAuth>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    if let Some(auth) = &auth {
        let open = request.method() == Method::GET && request.uri().path() == "/health";
        if !open && !auth.allows(authorization.as_ref().and_then(|v| v.to_str().ok())) {
            debug!(method = %request.method(), path = %request.uri().path(), "request failed authentication");
            return (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "text/plain")],
                UNAUTHORIZED_BODY,
            )
                .into_response();
        }
    }
    AUTHORIZATION.scope(authorization, next.run(request)).await
}

static HTTP: OnceLock<reqwest::Client> = OnceLock::new();

/// Sets the client for requests to other workers (call once, before serving).
pub fn configure_http(security: &RestSecurity) -> Result<(), ConfigError> {
    let mut builder = reqwest::Client::builder();
    if let Some(material) = &security.client_tls {
        let config = material
            .client_config("listeners.https")
            .map_err(|e| security_error(&e.key, e.reason))?;
        builder = builder.use_preconfigured_tls(config);
    }
    let client = builder
        .build()
        .map_err(|e| security_error("listeners", format!("cannot build the HTTP client: {e}")))?;
    let _ = HTTP.set(client);
    Ok(())
}

/// The HTTP client for requests to other workers.
pub fn http() -> &'static reqwest::Client {
    HTTP.get_or_init(reqwest::Client::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_checked_as_javas_login_module_does() {
        let auth = BasicAuth {
            users: BTreeMap::from([("admin".to_string(), "s3cret".to_string())]),
        };
        let header = |u: &str, p: &str| format!("Basic {}", STANDARD.encode(format!("{u}:{p}")));
        assert!(auth.allows(Some(&header("admin", "s3cret"))));
        assert!(!auth.allows(Some(&header("admin", "wrong"))));
        assert!(!auth.allows(Some(&header("other", "s3cret"))));
        assert!(!auth.allows(Some("Bearer abc")));
        assert!(!auth.allows(None));
        let open = BasicAuth {
            users: BTreeMap::new(),
        };
        assert!(open.allows(None));
    }

    #[test]
    fn the_kafka_connect_entry_of_a_jaas_file_is_found() {
        let text = "// comment\nOther {\n  x.Y required;\n};\nKafkaConnect {\n  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required\n  file=\"/etc/creds.properties\";\n};\n";
        let entry = jaas_entry(text, "KafkaConnect").unwrap_or_default();
        let (module, options) = parse_jaas(&entry).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(module, LOGIN_MODULE);
        assert_eq!(options["file"], "/etc/creds.properties");
        assert!(jaas_entry("KafkaConnectX { a b; };", "KafkaConnect").is_none());
    }
}
