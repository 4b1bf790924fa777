//! Worker configuration: the Kafka Connect worker keys Floe uses, from a properties file
//! overlaid with `CONNECT_*` environment variables.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::error::ConfigError;
use crate::properties::{connect_env_properties, parse_properties};

/// The configuration of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Every property, as given.
    pub props: BTreeMap<String, String>,
    pub bootstrap_servers: String,
    pub key_converter: String,
    pub value_converter: String,
    /// Host and port the REST API listens on.
    pub listen_host: String,
    pub listen_port: u16,
    /// `<advertised host>:<advertised port>`, shown as `worker_id`.
    pub worker_id: String,
    pub offset_flush_interval: Duration,
    pub task_shutdown_timeout: Duration,
}

impl WorkerConfig {
    /// Reads a worker properties file and overlays `CONNECT_*` variables from `env`.
    pub fn load<I>(path: &Path, env: I) -> Result<WorkerConfig, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut props = parse_properties(&text);
        props.extend(connect_env_properties(env));
        WorkerConfig::from_props(props)
    }

    /// Builds the config from properties.
    pub fn from_props(props: BTreeMap<String, String>) -> Result<WorkerConfig, ConfigError> {
        let get = |k: &str| props.get(k).map(|s| s.trim().to_string());
        let required = |k: &str| {
            get(k)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConfigError::Missing { key: k.to_string() })
        };
        let key_converter = required("key.converter")?;
        let value_converter = required("value.converter")?;
        let bootstrap_servers = get("bootstrap.servers").unwrap_or_else(|| "localhost:9092".into());
        let listeners = get("listeners").unwrap_or_else(|| "http://:8083".into());
        let (listen_host, listen_port) = parse_listener(&listeners)?;
        let advertised_host = get("rest.advertised.host.name")
            .filter(|h| !h.is_empty())
            .or_else(|| {
                (!listen_host.is_empty() && listen_host != "0.0.0.0").then(|| listen_host.clone())
            })
            .unwrap_or_else(local_hostname);
        let advertised_port = match get("rest.advertised.port") {
            Some(p) if !p.is_empty() => parse_num::<u16>("rest.advertised.port", &p)?,
            _ => listen_port,
        };
        let offset_flush_interval = Duration::from_millis(match get("offset.flush.interval.ms") {
            Some(v) => parse_num::<u64>("offset.flush.interval.ms", &v)?,
            None => 60_000,
        });
        let task_shutdown_timeout =
            Duration::from_millis(match get("task.shutdown.graceful.timeout.ms") {
                Some(v) => parse_num::<u64>("task.shutdown.graceful.timeout.ms", &v)?,
                None => 5_000,
            });
        Ok(WorkerConfig {
            worker_id: format!("{advertised_host}:{advertised_port}"),
            props,
            bootstrap_servers,
            key_converter,
            value_converter,
            listen_host,
            listen_port,
            offset_flush_interval,
            task_shutdown_timeout,
        })
    }

    /// How long a task instance being replaced (a restart, a reconfiguration) may take to
    /// stop before it is abandoned: the graceful timeout plus time for a commit in flight, as
    /// nobody waits on it but its successor.
    pub fn restart_stop_limit(&self) -> Duration {
        self.task_shutdown_timeout + Duration::from_secs(30)
    }

    /// Properties under `prefix`, with the prefix removed.
    pub fn with_prefix(&self, prefix: &str) -> BTreeMap<String, String> {
        strip_prefix(&self.props, prefix)
    }
}

/// A `LIST` config value (`topics`, `iceberg.tables`): comma-separated, trimmed, no empties.
pub fn list_value(props: &BTreeMap<String, String>, key: &str) -> Vec<String> {
    props
        .get(key)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Properties under `prefix`, with the prefix removed.
pub fn strip_prefix(props: &BTreeMap<String, String>, prefix: &str) -> BTreeMap<String, String> {
    props
        .range(prefix.to_string()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k[prefix.len()..].to_string(), v.clone()))
        .collect()
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
    v.trim().parse().map_err(|_| ConfigError::Invalid {
        key: key.to_string(),
        value: v.to_string(),
        reason: "Not a number".to_string(),
    })
}

/// Parses the first entry of `listeners` (`http://host:port`; empty host = all interfaces).
fn parse_listener(listeners: &str) -> Result<(String, u16), ConfigError> {
    let first = listeners.split(',').next().unwrap_or("").trim();
    let invalid = |reason: &str| ConfigError::Invalid {
        key: "listeners".into(),
        value: listeners.into(),
        reason: reason.into(),
    };
    let rest = first
        .strip_prefix("http://")
        .or_else(|| first.strip_prefix("HTTP://"))
        .ok_or_else(|| invalid("only http:// listeners are supported"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected http://host:port"))?;
    let port = port.parse().map_err(|_| invalid("invalid port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}

fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
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
    fn reads_listeners_and_advertised_id() {
        let c = WorkerConfig::from_props(props(&[
            ("key.converter", "a"),
            ("value.converter", "b"),
            ("listeners", "http://127.0.0.1:18083"),
            ("offset.flush.interval.ms", "1000"),
        ]))
        .unwrap();
        assert_eq!(c.listen_host, "127.0.0.1");
        assert_eq!(c.listen_port, 18083);
        assert_eq!(c.worker_id, "127.0.0.1:18083");
        assert_eq!(c.offset_flush_interval, Duration::from_secs(1));
        assert_eq!(c.bootstrap_servers, "localhost:9092");
    }

    #[test]
    fn converters_are_required() {
        let err = WorkerConfig::from_props(props(&[("key.converter", "a")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Missing required configuration \"value.converter\" which has no default value."
        );
    }

    #[test]
    fn strips_prefixes() {
        let p = props(&[
            ("consumer.max.poll.records", "5"),
            ("consumerx", "1"),
            ("producer.acks", "all"),
        ]);
        assert_eq!(
            strip_prefix(&p, "consumer."),
            props(&[("max.poll.records", "5")])
        );
    }
}
