//! The Kafka Connect REST API (first slice), with the Java worker's shapes, codes and messages.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::{json, Map, Value as Json};

use crate::api::{ConnectApi, Route};
use crate::config_def::{framework_keys, ConfigKey, KeyInfos};
use crate::herder::{HerderError, RestartRequest, TargetState};
use crate::loggers::LoggerError;
use crate::plugin::ConfigMap;

/// The Kafka Connect REST API version this worker answers as.
pub const CONNECT_API_VERSION: &str = "4.3.1";

type AppState = Arc<dyn ConnectApi>;

/// An error answer: `{"error_code": N, "message": "…"}`.
#[derive(Debug)]
pub struct RestError {
    code: StatusCode,
    message: String,
}

impl RestError {
    fn new(code: u16, message: impl Into<String>) -> RestError {
        RestError {
            code: StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: message.into(),
        }
    }
}

impl From<HerderError> for RestError {
    fn from(e: HerderError) -> RestError {
        RestError::new(e.status_code(), e.to_string())
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.code.as_u16(), "message": self.message});
        (self.code, axum::Json(body)).into_response()
    }
}

type RestResult = Result<Response, RestError>;

fn ok(body: Json) -> RestResult {
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// Builds the router.
/// The metrics-only router of `floe.metrics.listener`.
pub fn metrics_router(herder: Arc<dyn ConnectApi>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(herder)
}

pub fn router(herder: Arc<dyn ConnectApi>) -> Router {
    secured_router(herder, None)
}

/// The REST API with basic authentication (when `auth` is set) in front of everything.
pub fn secured_router(
    herder: Arc<dyn ConnectApi>,
    auth: Option<Arc<crate::rest_security::BasicAuth>>,
) -> Router {
    Router::new()
        .route("/", get(server_info))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/connectors", get(list_connectors).post(create_connector))
        .route("/connectors/", get(list_connectors).post(create_connector))
        .route(
            "/connectors/{name}",
            get(get_connector).delete(delete_connector),
        )
        .route(
            "/connectors/{name}/config",
            get(get_config).put(put_config).patch(patch_config),
        )
        .route("/connectors/{name}/status", get(get_status))
        .route("/connectors/{name}/tasks", get(get_tasks))
        .route("/connectors/{name}/tasks-config", get(get_tasks_config))
        .route(
            "/connectors/{name}/tasks/{task}/status",
            get(get_task_status),
        )
        .route(
            "/connectors/{name}/tasks/{task}/restart",
            post(restart_task),
        )
        .route("/connectors/{name}/restart", post(restart_connector))
        .route("/connectors/{name}/pause", put(pause_connector))
        .route("/connectors/{name}/resume", put(resume_connector))
        .route("/connectors/{name}/stop", put(stop_connector))
        .route("/connectors/{name}/topics", get(get_topics))
        .route("/connectors/{name}/topics/reset", put(reset_topics))
        .route(
            "/connectors/{name}/offsets",
            get(get_offsets).patch(alter_offsets).delete(reset_offsets),
        )
        .route("/connector-plugins", get(list_plugins))
        .route("/connector-plugins/", get(list_plugins))
        .route("/connector-plugins/{plugin}/config", get(plugin_config))
        .route("/admin/loggers", get(all_loggers))
        .route("/admin/loggers/", get(all_loggers))
        .route("/admin/loggers/{logger}", get(get_logger).put(set_logger))
        .route(
            "/connector-plugins/{plugin}/config/validate",
            put(validate_config),
        )
        .fallback(|| async { RestError::new(404, "HTTP 404 Not Found") })
        .method_not_allowed_fallback(|| async {
            RestError::new(405, "HTTP 405 Method Not Allowed")
        })
        .layer(axum::middleware::from_fn_with_state(
            herder.clone(),
            forward_to_leader,
        ))
        .layer(axum::middleware::from_fn_with_state(
            auth,
            crate::rest_security::authenticate,
        ))
        .with_state(herder)
}

/// Whether a request changes connectors, and so is handled by the leader of a cluster. Task
/// restarts go to the worker running the task instead (the herder routes them).
fn changes_connectors(method: &Method, path: &str) -> bool {
    path.starts_with("/connectors")
        && !path.contains("/tasks/")
        && matches!(
            *method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        )
}

/// Sends a request that changes connectors to the leader when this worker is not the leader
/// (as a Java worker forwards to the leader's URL). A forwarded request carries
/// `forward=false` so it is never forwarded twice.
async fn forward_to_leader(
    State(h): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let query = request.uri().query().map(str::to_string);
    if !changes_connectors(request.method(), request.uri().path())
        || query_values(query.as_deref(), "forward").any(|v| v.eq_ignore_ascii_case("false"))
    {
        return next.run(request).await;
    }
    let leader = match h.route() {
        Route::Here => return next.run(request).await,
        Route::NoLeader => {
            return RestError::new(
                409,
                "Cannot complete request momentarily due to no known leader URL, likely because a rebalance is underway.",
            )
            .into_response()
        }
        Route::Leader(url) => url,
    };
    match proxy(&leader, request, query).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The HTTP client for requests to other workers (forwarding), shared by the process.
pub(crate) fn http() -> &'static reqwest::Client {
    crate::rest_security::http()
}

async fn proxy(
    leader: &str,
    request: axum::extract::Request,
    query: Option<String>,
) -> Result<Response, RestError> {
    let client = http();
    let url = format!(
        "{}{}?{}forward=false",
        leader.trim_end_matches('/'),
        request.uri().path(),
        query.map(|q| format!("{q}&")).unwrap_or_default()
    );
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())
        .map_err(|e| RestError::new(500, e.to_string()))?;
    let body = axum::body::to_bytes(request.into_body(), 16 * 1024 * 1024)
        .await
        .map_err(|e| RestError::new(400, format!("cannot read the request body: {e}")))?;
    let failed = |e: reqwest::Error| {
        RestError::new(500, format!("Error trying to forward REST request: {e}"))
    };
    let answer = crate::rest_security::forwarded(client.request(method, &url))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_vec())
        .send()
        .await
        .map_err(failed)?;
    let status =
        StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = answer.headers().get(reqwest::header::CONTENT_TYPE).cloned();
    let bytes = answer.bytes().await.map_err(failed)?;
    let mut response = (status, bytes.to_vec()).into_response();
    if let Some(ct) = content_type.and_then(|c| HeaderValue::from_bytes(c.as_bytes()).ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    Ok(response)
}

async fn server_info(State(h): State<AppState>) -> RestResult {
    ok(json!({
        "version": CONNECT_API_VERSION,
        "commit": concat!("floe-", env!("CARGO_PKG_VERSION")),
        "kafka_cluster_id": h.cluster_id(),
    }))
}

/// KIP-1017: 503 while starting, 200 when the worker can serve requests, 500 with the reason
/// when it cannot (its herder stuck, a distributed worker out of its group).
async fn health(State(h): State<AppState>) -> Response {
    let (status, body) = match h.health().await {
        crate::api::Health::Healthy => (
            StatusCode::OK,
            json!({"status": "healthy", "message": "Worker has completed startup and is ready to handle requests."}),
        ),
        crate::api::Health::Starting => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "starting", "message": "Worker is still starting up."}),
        ),
        crate::api::Health::Unhealthy(reason) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"status": "unhealthy", "message": reason}),
        ),
    };
    (status, axum::Json(body)).into_response()
}

/// The worker's metrics in the Prometheus text format (docs/metrics.md).
async fn metrics(State(h): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::scrape(h.as_ref()).await,
    )
        .into_response()
}

/// The values of query parameter `name` in a raw query string (a parameter may repeat).
fn query_values<'a>(query: Option<&'a str>, name: &'a str) -> impl Iterator<Item = &'a str> {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Reads `expand=` values (the parameter may repeat).
fn expand_values(query: Option<&str>) -> Vec<String> {
    query_values(query, "expand")
        .map(str::to_ascii_lowercase)
        .collect()
}

async fn list_connectors(State(h): State<AppState>, RawQuery(query): RawQuery) -> RestResult {
    let expand = expand_values(query.as_deref());
    let names = h.connector_names().await;
    if expand.is_empty() {
        return ok(json!(names));
    }
    let mut out = Map::new();
    for name in names {
        let mut entry = Map::new();
        if expand.iter().any(|e| e == "status") {
            match h.connector_status(&name).await {
                Ok(s) => {
                    entry.insert("status".into(), s);
                }
                Err(_) => continue,
            }
        }
        if expand.iter().any(|e| e == "info") {
            match h.connector_info(&name).await {
                Ok(i) => {
                    entry.insert("info".into(), i);
                }
                Err(_) => continue,
            }
        }
        out.insert(name, Json::Object(entry));
    }
    ok(Json::Object(out))
}

fn parse_json(body: &Bytes) -> Result<Json, RestError> {
    serde_json::from_slice(body)
        .map_err(|e| RestError::new(500, format!("Cannot deserialize request body: {e}")))
}

/// A JSON object of config values as strings (numbers and booleans are accepted, as Jackson
/// coerces them; nulls are dropped).
fn config_map(value: &Json) -> Result<ConfigMap, RestError> {
    let obj = value
        .as_object()
        .ok_or_else(|| RestError::new(400, "Connector configuration must be a JSON object"))?;
    let mut out = ConfigMap::new();
    for (k, v) in obj {
        let text = match v {
            Json::String(s) => s.clone(),
            Json::Number(n) => n.to_string(),
            Json::Bool(b) => b.to_string(),
            Json::Null => continue,
            other => {
                return Err(RestError::new(
                    400,
                    format!("Configuration value of {k} must be a string, found {other}"),
                ));
            }
        };
        out.insert(k.clone(), text);
    }
    Ok(out)
}

/// Java `checkAndPutConnectorConfigName`.
fn check_name(name: &str, config: &mut ConfigMap) -> Result<(), RestError> {
    if name.trim().is_empty() {
        return Err(RestError::new(400, "Connector name cannot be empty"));
    }
    match config.get("name") {
        Some(included) if included != name => Err(RestError::new(
            400,
            format!("Connector name configuration ({included}) doesn't match connector name in the URL ({name})"),
        )),
        Some(_) => Ok(()),
        None => {
            config.insert("name".into(), name.to_string());
            Ok(())
        }
    }
}

fn created(name: &str, info: Json) -> Response {
    let mut resp = (StatusCode::CREATED, axum::Json(info)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/connectors/{}", encode_segment(name))) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

pub(crate) fn encode_segment(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

async fn create_connector(State(h): State<AppState>, body: Bytes) -> RestResult {
    let request = parse_json(&body)?;
    let name = request
        .get("name")
        .and_then(Json::as_str)
        .map(|n| n.trim().to_string())
        .unwrap_or_default();
    let mut config = match request.get("config") {
        Some(c) if !c.is_null() => config_map(c)?,
        _ => ConfigMap::new(),
    };
    check_name(&name, &mut config)?;
    let initial_state = match request.get("initial_state") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(TargetState::from_initial_state(s).ok_or_else(|| {
            RestError::new(
                400,
                format!("Invalid initial state {s}; must be one of RUNNING, PAUSED, STOPPED"),
            )
        })?),
        Some(other) => {
            return Err(RestError::new(
                400,
                format!("Invalid initial state {other}"),
            ))
        }
    };
    let (info, _) = h.put_connector(&name, config, false, initial_state).await?;
    Ok(created(&name, info))
}

async fn get_connector(State(h): State<AppState>, Path(name): Path<String>) -> RestResult {
    ok(h.connector_info(&name).await?)
}

async fn delete_connector(State(h): State<AppState>, Path(name): Path<String>) -> RestResult {
    h.delete_connector(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_config(State(h): State<AppState>, Path(name): Path<String>) -> RestResult {
    ok(json!(h.connector_config(&name).await?))
}

async fn put_config(
    State(h): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> RestResult {
    let mut config = config_map(&parse_json(&body)?)?;
    check_name(&name, &mut config)?;
    let (info, was_created) = h.put_connector(&name, config, true, None).await?;
    if was_created {
        Ok(created(&name, info))
    } else {
        ok(info)
    }
}

async fn get_status(State(h): State<AppState>, Path(name): Path<String>) -> RestResult {
    ok(h.connector_status(&name).await?)
}

async fn get_tasks(State(h): State<AppState>, Path(name): Path<String>) -> RestResult {
    ok(h.connector_tasks(&name).await?)
}

async fn patch_config(
    State(h): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> RestResult {
    let patch = parse_json(&body)?;
    let patch = patch.as_object().ok_or_else(|| {
        RestError::new(400, "Connector configuration patch must be a JSON object")
    })?;
    let mut config = h.connector_config(&name).await?;
    for (k, v) in patch {
        match v {
            Json::Null => {
                config.remove(k);
            }
            Json::String(s) => {
                config.insert(k.clone(), s.clone());
            }
            Json::Number(_) | Json::Bool(_) => {
                config.insert(k.clone(), v.to_string());
            }
            other => {
                return Err(RestError::new(
                    400,
                    format!("Configuration value of {k} must be a string, found {other}"),
                ))
            }
        }
    }
    check_name(&name, &mut config)?;
    let (info, _) = h.put_connector(&name, config, true, None).await?;
    ok(info)
}

async fn get_tasks_config(State(h): State<AppState>, Path(name): Path<String>) -> RestResult {
    ok(h.tasks_config(&name).await?)
}

async fn get_task_status(
    State(h): State<AppState>,
    Path((name, task)): Path<(String, String)>,
) -> RestResult {
    let id: usize = task
        .parse()
        .map_err(|_| RestError::new(404, "HTTP 404 Not Found"))?;
    ok(h.task_status(&name, id).await?)
}

async fn restart_task(
    State(h): State<AppState>,
    Path((name, task)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> RestResult {
    let id: usize = task
        .parse()
        .map_err(|_| RestError::new(404, "HTTP 404 Not Found"))?;
    let forwarded =
        query_values(query.as_deref(), "forward").any(|v| v.eq_ignore_ascii_case("false"));
    if forwarded && !h.runs_task(&name, id).await {
        return Err(RestError::new(
            409,
            "Cannot complete request because of a conflicting operation (e.g. worker rebalance)",
        ));
    }
    h.restart_task(&name, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn query_flag(query: Option<&str>, name: &str) -> bool {
    query_values(query, name).any(|v| v.eq_ignore_ascii_case("true"))
}

async fn restart_connector(
    State(h): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> RestResult {
    let request = RestartRequest {
        include_tasks: query_flag(query.as_deref(), "includeTasks"),
        only_failed: query_flag(query.as_deref(), "onlyFailed"),
    };
    match h.restart_connector(&name, request).await? {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(status) => Ok((StatusCode::ACCEPTED, axum::Json(status)).into_response()),
    }
}

async fn pause_connector(State(h): State<AppState>, Path(name): Path<String>) -> RestResult {
    h.set_target_state(&name, TargetState::Paused).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn resume_connector(State(h): State<AppState>, Path(name): Path<String>) -> RestResult {
    h.set_target_state(&name, TargetState::Started).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn stop_connector(State(h): State<AppState>, Path(name): Path<String>) -> RestResult {
    h.set_target_state(&name, TargetState::Stopped).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_topics(State(h): State<AppState>, Path(name): Path<String>) -> RestResult {
    ok(h.active_topics(&name).await?)
}

async fn reset_topics(State(h): State<AppState>, Path(name): Path<String>) -> RestResult {
    h.reset_active_topics(&name).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn get_offsets(State(h): State<AppState>, Path(name): Path<String>) -> RestResult {
    ok(h.get_offsets(&name).await?)
}

async fn alter_offsets(
    State(h): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> RestResult {
    let body = parse_json(&body)?;
    ok(h.alter_offsets(&name, &body).await?)
}

async fn reset_offsets(State(h): State<AppState>, Path(name): Path<String>) -> RestResult {
    ok(h.reset_offsets(&name).await?)
}

async fn plugin_config(State(h): State<AppState>, Path(plugin): Path<String>) -> RestResult {
    let all: Vec<ConfigKey> = match (
        h.plugins().find(&plugin),
        floe_transforms::plugins::find(&plugin),
    ) {
        (Some(connector), _) => framework_keys()
            .into_iter()
            .chain(connector.config_keys())
            .collect(),
        // A transformation or predicate: its own keys only.
        (None, Some(p)) => (p.keys)().into_iter().map(|k| k.key).collect(),
        (None, None) => return Err(RestError::new(404, format!("Unknown plugin {plugin}."))),
    };
    let keys: Vec<Json> = ConfigKey::infos(&all)
        .into_iter()
        .map(|i| json!(i))
        .collect();
    ok(Json::Array(keys))
}

async fn all_loggers(State(h): State<AppState>) -> RestResult {
    ok(h.loggers().all())
}

async fn get_logger(State(h): State<AppState>, Path(logger): Path<String>) -> RestResult {
    h.loggers()
        .get(&logger)
        .map(|l| (StatusCode::OK, axum::Json(l)).into_response())
        .ok_or_else(|| RestError::new(404, format!("Logger {logger} not found.")))
}

async fn set_logger(
    State(h): State<AppState>,
    Path(logger): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> RestResult {
    let body = parse_json(&body)?;
    let level = body.get("level").and_then(Json::as_str).ok_or_else(|| {
        RestError::new(
            400,
            "Desired 'level' parameter was not specified in request.",
        )
    })?;
    let cluster =
        query_values(query.as_deref(), "scope").any(|v| v.eq_ignore_ascii_case("cluster"));
    let affected = h.loggers().set(&logger, level).map_err(|e| match e {
        LoggerError::InvalidLevel(l) => RestError::new(404, format!("invalid log level '{l}'.")),
        LoggerError::Apply(m) => RestError::new(500, m),
    })?;
    if cluster {
        h.set_cluster_logger(&logger, level).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    ok(json!(affected))
}

/// Converters this worker knows, for `connectorsOnly=false`.
const OTHER_PLUGINS: &[(&str, &str)] = &[
    ("io.confluent.connect.avro.AvroConverter", "converter"),
    ("io.confluent.connect.json.JsonSchemaConverter", "converter"),
    (
        "io.confluent.connect.protobuf.ProtobufConverter",
        "converter",
    ),
    ("org.apache.kafka.connect.json.JsonConverter", "converter"),
    (
        "org.apache.kafka.connect.storage.StringConverter",
        "converter",
    ),
    (
        "org.apache.kafka.connect.converters.ByteArrayConverter",
        "converter",
    ),
];

async fn list_plugins(State(h): State<AppState>, RawQuery(query): RawQuery) -> RestResult {
    let connectors_only =
        !query_values(query.as_deref(), "connectorsOnly").any(|v| v.eq_ignore_ascii_case("false"));
    let mut plugins: Vec<Json> = h
        .plugins()
        .connectors()
        .iter()
        .flat_map(|p| {
            std::iter::once(p.class_name())
                .chain(p.other_class_names().iter().copied())
                .map(|class| json!({"class": class, "type": "sink", "version": p.version()}))
                .collect::<Vec<_>>()
        })
        .collect();
    if !connectors_only {
        // Java's order: connectors, transformations, predicates, converters.
        for kind in [
            floe_transforms::PluginKind::Transformation,
            floe_transforms::PluginKind::Predicate,
        ] {
            for p in floe_transforms::plugins::all()
                .iter()
                .filter(|p| p.kind == kind)
            {
                plugins.push(json!({"class": p.class, "type": kind.noun(), "version": p.version}));
            }
        }
        for (class, kind) in OTHER_PLUGINS {
            plugins.push(
                json!({"class": class, "type": kind, "version": super::rest::CONNECT_API_VERSION}),
            );
        }
    }
    ok(Json::Array(plugins))
}

/// Java's `normalizedPluginName`: a trailing `Connector` is ignored.
fn normalized_plugin_name(name: &str) -> &str {
    name.strip_suffix("Connector").unwrap_or(name)
}

async fn validate_config(
    State(h): State<AppState>,
    Path(plugin): Path<String>,
    body: Bytes,
) -> RestResult {
    let mut config = config_map(&parse_json(&body)?)?;
    match config.get("connector.class") {
        Some(included)
            if !normalized_plugin_name(included.trim())
                .ends_with(normalized_plugin_name(&plugin)) =>
        {
            return Err(RestError::new(
                400,
                format!("Included connector type {included} does not match request type {plugin}"),
            ));
        }
        Some(_) => {}
        None => {
            config.insert("connector.class".into(), plugin.clone());
        }
    }
    // Java answers an unknown plugin here with a 500 wrapping the BadRequestException.
    let validation = h.validate_config(&config).map_err(|e| match e {
        HerderError::BadRequest(m) if m.starts_with("Failed to find any class") => RestError::new(
            500,
            format!("org.apache.kafka.connect.runtime.rest.errors.BadRequestException: {m}"),
        ),
        other => other.into(),
    })?;
    ok(validation.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_is_repeatable() {
        assert_eq!(
            expand_values(Some("expand=status&expand=INFO&x=1")),
            vec!["status".to_string(), "info".to_string()]
        );
        assert!(expand_values(None).is_empty());
    }

    #[test]
    fn connector_name_must_match() {
        let mut c = ConfigMap::from([("name".to_string(), "a".to_string())]);
        let err = check_name("b", &mut c).unwrap_err();
        assert_eq!(err.code, StatusCode::BAD_REQUEST);
        assert_eq!(
            err.message,
            "Connector name configuration (a) doesn't match connector name in the URL (b)"
        );
        let mut c = ConfigMap::new();
        check_name("b", &mut c).unwrap();
        assert_eq!(c["name"], "b");
    }
}
