//! `floe`: a Kafka Connect-compatible worker that streams Kafka topics into Apache Iceberg.
//!
//! ```text
//! floe standalone <worker.properties> [connector.json|connector.properties …]
//! floe distributed <worker.properties>
//! floe table compact|expire-snapshots <connector.json> <namespace.table> [--dry-run] [--json] …
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use floe_connect::distributed::DistributedHerder;
use floe_connect::kafka_config::client_config;
use floe_connect::loggers::{ApplyFilter, Loggers};
use floe_connect::plugin::{ConfigMap, Plugins};
use floe_connect::properties::parse_properties;
use floe_connect::rest_listener::RestListener;
use floe_connect::rest_security::RestSecurity;
use floe_connect::{rest, ConnectApi, Herder, WorkerConfig};
use floe_iceberg::IcebergSinkConnector;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tracing::{error, info};

mod table_cmd;

/// mimalloc rather than the system allocator: records are decoded into many small values, and
/// glibc's arenas made that a fifth of the CPU (with lock waits between runtime threads). It
/// also replaces `malloc` for the C code (the `override` feature), so librdkafka's allocation
/// per fetched message is as cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: its position in mimalloc's `mi_option_t` (mimalloc.h).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// Freed memory goes back to the system after this many ms (mimalloc's default is 1000): with
/// several tasks, memory freed but kept was most of a worker's peak RSS, and returning it
/// sooner cost no measurable CPU (docs/performance.md).
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// Sets mimalloc's purge delay unless `MIMALLOC_PURGE_DELAY` chose one.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` takes an option number and a value, and may be called at any
        // time from any thread.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
    }
}

const USAGE: &str = "usage: floe standalone <worker.properties> [connector.json|connector.properties ...]\n       floe distributed <worker.properties>\n       floe table compact <connector.json|connector.properties> <namespace.table> [--dry-run] [--json] [--target-file-size-bytes N]\n       floe table expire-snapshots <connector.json|connector.properties> <namespace.table> [--dry-run] [--json] [--older-than-ms N] [--retain-last N]\n\nEnvironment: CONNECT_* variables override worker properties (Confluent image convention);\nFLOE_LOG sets the log filter (default info), FLOE_LOG_FORMAT=json logs JSON lines.";

fn main() -> Result<()> {
    tune_allocator();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("standalone") if args.len() >= 2 => {
            let (root, apply) = init_logging();
            run_worker(standalone(
                PathBuf::from(&args[1]),
                args[2..].iter().map(PathBuf::from).collect(),
                Loggers::new(&root, Some(apply)),
            ))
        }
        Some("distributed") if args.len() == 2 => {
            let (root, apply) = init_logging();
            run_worker(distributed(
                PathBuf::from(&args[1]),
                Loggers::new(&root, Some(apply)),
            ))
        }
        Some("table") => {
            init_logging();
            run_worker(table_cmd::run(&args[1..]))
        }
        Some("--version" | "version") => {
            println!("floe {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

/// Runs a worker on a multi-threaded runtime. Once the worker has stopped, the runtime gets a
/// moment for what is left (a lookup of the cluster id, say) and is then left behind: nothing
/// still running can keep the process from exiting.
fn run_worker(worker: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(worker);
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Sets up logging; returns the root level and a way to change the filter at run time.
fn init_logging() -> (String, ApplyFilter) {
    use tracing_subscriber::prelude::*;
    let spec = std::env::var("FLOE_LOG").unwrap_or_else(|_| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&spec)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let json = std::env::var("FLOE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init();
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi),
            )
            .init();
    }
    let apply: ApplyFilter = std::sync::Arc::new(move |directives: &str| {
        let filter =
            tracing_subscriber::EnvFilter::try_new(directives).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    });
    let root = spec
        .split(',')
        .find(|d| !d.contains('='))
        .unwrap_or("info")
        .to_string();
    (root, apply)
}

async fn standalone(
    worker_file: PathBuf,
    connector_files: Vec<PathBuf>,
    loggers: Loggers,
) -> Result<()> {
    let worker = load_worker(&worker_file)?;
    let security = rest_security(&worker)?;
    let listener = bind(&worker, &security).await?;
    let herder = Arc::new(Herder::new(worker.clone(), plugins()).with_loggers(loggers));
    let server = serve(listener, herder.clone(), &security);
    serve_metrics(&worker, herder.clone()).await?;
    let cluster_herder = herder.clone();
    find_cluster_id(&worker, move |id| cluster_herder.set_cluster_id(id));

    for file in &connector_files {
        let (name, config) = read_connector_file(file)?;
        herder
            .put_connector(&name, config, false, None)
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot start connector {name} from {}: {e}", file.display())
            })?;
    }
    herder.set_ready();
    info!("worker started");

    until_stopped(server).await;
    info!("stopping connectors");
    herder.shutdown().await;
    info!("worker stopped");
    Ok(())
}

async fn distributed(worker_file: PathBuf, loggers: Loggers) -> Result<()> {
    let worker = load_worker(&worker_file)?;
    let security = rest_security(&worker)?;
    let listener = bind(&worker, &security).await?;
    let herder = DistributedHerder::start(worker.clone(), plugins(), loggers)
        .await
        .context("cannot start the distributed worker")?;
    let server = serve(listener, herder.clone(), &security);
    serve_metrics(&worker, herder.clone()).await?;
    let cluster_herder = herder.clone();
    find_cluster_id(&worker, move |id| cluster_herder.set_cluster_id(id));
    until_stopped(server).await;
    info!("handing over connectors and leaving the cluster");
    herder.shutdown().await;
    info!("worker stopped");
    Ok(())
}

fn load_worker(path: &Path) -> Result<Arc<WorkerConfig>> {
    Ok(Arc::new(
        WorkerConfig::load(path, std::env::vars())
            .with_context(|| format!("invalid worker config {}", path.display()))?,
    ))
}

fn plugins() -> Plugins {
    let mut plugins = Plugins::default();
    plugins.register(Arc::new(IcebergSinkConnector));
    plugins
}

/// The REST API's TLS and authentication; also sets up the client for requests to other
/// workers.
fn rest_security(worker: &WorkerConfig) -> Result<RestSecurity> {
    let kafka_opts = std::env::var("KAFKA_OPTS").ok();
    let security = RestSecurity::from_worker(worker, kafka_opts.as_deref())
        .context("invalid REST API security settings")?;
    floe_connect::rest_security::configure_http(&security)
        .context("invalid REST API security settings")?;
    Ok(security)
}

async fn bind(worker: &WorkerConfig, security: &RestSecurity) -> Result<RestListener> {
    let addr = listen_addr(worker);
    let tcp = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let listener = RestListener::new(tcp, security.tls.clone())
        .with_context(|| format!("cannot listen on {addr}"))?;
    info!(
        listen = %addr,
        worker_id = %worker.worker_id,
        scheme = worker.rest_scheme,
        basic_auth = security.basic_auth.is_some(),
        "REST API listening"
    );
    Ok(listener)
}

/// Serves the REST API until SIGTERM/SIGINT; a second signal ends the process at once.
fn serve(
    listener: RestListener,
    api: Arc<dyn ConnectApi>,
    security: &RestSecurity,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    let app = rest::secured_router(api, security.basic_auth.clone());
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                shutdown_signal().await;
                info!("stopping (a second SIGTERM or SIGINT exits at once)");
                tokio::spawn(async {
                    shutdown_signal().await;
                    error!("second signal: exiting without waiting for tasks");
                    std::process::exit(130);
                });
            })
            .await
    })
}

/// Serves `GET /metrics` on `floe.metrics.listener`, when it is set, until the process ends.
async fn serve_metrics(worker: &WorkerConfig, api: Arc<dyn ConnectApi>) -> Result<()> {
    let Some((host, port)) = &worker.metrics_listen else {
        return Ok(());
    };
    let addr = format!("{}:{port}", if host.is_empty() { "0.0.0.0" } else { host });
    let tcp = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (floe.metrics.listener)"))?;
    info!(listen = %addr, "metrics listening");
    let app = rest::metrics_router(api);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(tcp, app).await {
            error!(error = %e, "metrics listener failed");
        }
    });
    Ok(())
}

async fn until_stopped(server: tokio::task::JoinHandle<std::io::Result<()>>) {
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => error!(error = %e, "REST server failed"),
        Err(e) => error!(error = %e, "REST server task failed"),
    }
}

/// Looks up the Kafka cluster id (for `GET /`) off the async runtime.
fn find_cluster_id(worker: &WorkerConfig, set: impl FnOnce(Option<String>) + Send + 'static) {
    let props = floe_connect::distributed::internal_client_props(worker);
    tokio::task::spawn_blocking(move || set(fetch_cluster_id(&props)));
}

fn listen_addr(worker: &WorkerConfig) -> String {
    format!(
        "{}:{}",
        if worker.listen_host.is_empty() {
            "0.0.0.0"
        } else {
            &worker.listen_host
        },
        worker.listen_port
    )
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn fetch_cluster_id(props: &BTreeMap<String, String>) -> Option<String> {
    let consumer: BaseConsumer = client_config(props).ok()?.create().ok()?;
    consumer.client().fetch_cluster_id(Duration::from_secs(10))
}

/// Reads a connector file: JSON shaped like a POST body (`{"name", "config"}`), a flat JSON
/// config, or Java properties.
fn read_connector_file(path: &Path) -> Result<(String, ConfigMap)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let config: ConfigMap = if text.trim_start().starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        let obj = json.get("config").unwrap_or(&json);
        let mut config = BTreeMap::new();
        for (k, v) in obj.as_object().into_iter().flatten() {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            config.insert(k.clone(), value);
        }
        if let Some(name) = json.get("name").and_then(|n| n.as_str()) {
            config
                .entry("name".to_string())
                .or_insert_with(|| name.to_string());
        }
        config
    } else {
        parse_properties(&text)
    };
    let Some(name) = config
        .get("name")
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
    else {
        bail!("connector file {} has no name", path.display());
    };
    Ok((name, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // SAFETY: as in `tune_allocator`; `mi_option_get` only reads an option.
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(get(), 1000, "mimalloc's default purge delay");
        }
        tune_allocator();
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(get(), PURGE_DELAY_MS);
        }
    }
}
