//! Worker configuration: the Kafka Connect worker keys Floe uses, from a properties file
//! overlaid with `CONNECT_*` environment variables.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::config_provider::ConfigProviders;
use crate::error::ConfigError;
use crate::kafka_security::{is_security_key, Security};
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
    /// `http` or `https`, from `listeners`.
    pub rest_scheme: &'static str,
    /// `<advertised host>:<advertised port>`, shown as `worker_id`.
    pub worker_id: String,
    pub offset_flush_interval: Duration,
    pub task_shutdown_timeout: Duration,
    /// `floe.metrics.listener` (a Floe extension): a second `http://host:port` listener that
    /// serves only `GET /metrics`, as a JMX exporter agent's port does for a Java worker.
    pub metrics_listen: Option<(String, u16)>,
    /// `connector.client.config.override.policy`: which `consumer.override.*`,
    /// `producer.override.*` and `admin.override.*` keys a connector may set.
    pub override_policy: OverridePolicy,
}

/// Java's `ConnectorClientConfigOverridePolicy`: which client settings a connector config may
/// override (`consumer.override.*`, `producer.override.*`, `admin.override.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverridePolicy {
    /// Any setting (Java's default since 3.0).
    All,
    /// None at all.
    None,
    /// Only the client's principal: `sasl.jaas.config`, `sasl.mechanism`, `security.protocol`.
    Principal,
}

/// The worker key that chooses the policy.
pub const OVERRIDE_POLICY: &str = "connector.client.config.override.policy";

impl OverridePolicy {
    /// The policy a worker config names: `All`, `None` or `Principal`, or the class of one of
    /// Java's policies.
    pub fn parse(value: &str) -> Option<OverridePolicy> {
        let name = value
            .trim()
            .strip_prefix("org.apache.kafka.connect.connector.policy.")
            .and_then(|class| class.strip_suffix("ConnectorClientConfigOverridePolicy"))
            .unwrap_or(value.trim());
        match name.to_ascii_lowercase().as_str() {
            "all" => Some(OverridePolicy::All),
            "none" => Some(OverridePolicy::None),
            "principal" => Some(OverridePolicy::Principal),
            _ => None,
        }
    }

    /// Java's `policyName()`.
    pub fn name(self) -> &'static str {
        match self {
            OverridePolicy::All => "All",
            OverridePolicy::None => "None",
            OverridePolicy::Principal => "Principal",
        }
    }

    /// Whether a connector may override client setting `key` (without its prefix).
    pub fn allows(self, key: &str) -> bool {
        match self {
            OverridePolicy::All => true,
            OverridePolicy::None => false,
            OverridePolicy::Principal => {
                matches!(
                    key,
                    "sasl.jaas.config" | "sasl.mechanism" | "security.protocol"
                )
            }
        }
    }

    /// Java's message for an override the policy refuses.
    pub fn refusal(self, key: &str) -> String {
        format!(
            "The '{}' policy does not allow '{key}' to be overridden in the connector configuration.",
            self.name()
        )
    }
}

/// The prefixes under which a connector config overrides its clients' settings.
pub const OVERRIDE_PREFIXES: [&str; 3] = [
    "producer.override.",
    "consumer.override.",
    "admin.override.",
];

/// The key of the optional metrics-only listener.
pub const METRICS_LISTENER: &str = "floe.metrics.listener";

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

    /// Builds the config from properties. `${provider:…}` placeholders are resolved with the
    /// worker's own `config.providers`, as Java's worker config resolves them; the Kafka
    /// security settings of every client the worker opens are checked here, so a setting
    /// Floe cannot honour stops the worker at startup.
    pub fn from_props(props: BTreeMap<String, String>) -> Result<WorkerConfig, ConfigError> {
        let providers =
            ConfigProviders::from_worker(&props).map_err(|reason| ConfigError::Security {
                key: "config.providers".into(),
                reason,
            })?;
        let (props, redactor) =
            providers
                .resolve_redacting(&props)
                .map_err(|reason| ConfigError::Security {
                    key: "worker config".into(),
                    reason,
                })?;
        // An error quotes a value as the worker config gave it, never what a placeholder
        // resolved to.
        WorkerConfig::from_resolved(props).map_err(|e| e.redacted(&redactor))
    }

    /// [`from_props`](Self::from_props) once the placeholders are resolved.
    fn from_resolved(props: BTreeMap<String, String>) -> Result<WorkerConfig, ConfigError> {
        check_client_security(&props)?;
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
        let (rest_scheme, listen_host, listen_port) = parse_listener(&listeners)?;
        if let Some(admin) = get("admin.listeners").filter(|a| a.trim() != listeners.trim()) {
            return Err(ConfigError::Invalid {
                key: "admin.listeners".into(),
                value: admin,
                reason: "Floe serves /admin on the REST listener; remove admin.listeners or set it to the value of listeners".into(),
            });
        }
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
        let metrics_listen = match get(METRICS_LISTENER).filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => match parse_listener(&v) {
                Ok(("http", host, port)) => Some((host, port)),
                Ok(_) => {
                    return Err(ConfigError::Invalid {
                        key: METRICS_LISTENER.into(),
                        value: v,
                        reason: "the metrics listener is plain http://host:port (the REST listener serves /metrics over TLS)".into(),
                    })
                }
                Err(e) => {
                    return Err(ConfigError::Invalid {
                        key: METRICS_LISTENER.into(),
                        value: v,
                        reason: e.to_string(),
                    })
                }
            },
        };
        let override_policy = match get(OVERRIDE_POLICY).filter(|v| !v.is_empty()) {
            None => OverridePolicy::All,
            Some(v) => OverridePolicy::parse(&v).ok_or_else(|| ConfigError::Invalid {
                key: OVERRIDE_POLICY.into(),
                value: v.clone(),
                reason: "Expected All, None or Principal (or the class of one of Java's policies)"
                    .into(),
            })?,
        };
        if let Some(advertised) = get("rest.advertised.listener").filter(|v| !v.is_empty()) {
            if !advertised.eq_ignore_ascii_case(rest_scheme) {
                return Err(ConfigError::Invalid {
                    key: "rest.advertised.listener".into(),
                    value: advertised,
                    reason: format!(
                        "the worker has one REST listener, {listeners}: the advertised listener is its protocol, {rest_scheme}"
                    ),
                });
            }
        }
        Ok(WorkerConfig {
            override_policy,
            metrics_listen,
            worker_id: format!("{advertised_host}:{advertised_port}"),
            rest_scheme,
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

    /// An admin client's properties, as Java's worker builds them: the bootstrap servers and
    /// the worker's own security keys, then `admin.*`.
    pub fn admin_props(&self) -> BTreeMap<String, String> {
        let mut props: BTreeMap<String, String> = self
            .props
            .iter()
            .filter(|(k, _)| is_security_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        props.insert("bootstrap.servers".into(), self.bootstrap_servers.clone());
        props.extend(self.with_prefix("admin."));
        props
    }

    /// The URL other workers reach this one at.
    pub fn rest_url(&self) -> String {
        format!("{}://{}/", self.rest_scheme, self.worker_id)
    }

    /// The URL of another worker of the cluster, by its worker id (`host:port`).
    pub fn peer_url(&self, worker_id: &str) -> String {
        format!("{}://{worker_id}/", self.rest_scheme)
    }
}

/// The worker's clients and the properties each is configured from (as in Java: the worker's
/// own clients and admin clients take the un-prefixed keys, task consumers `consumer.*`, DLQ
/// producers `producer.*`, admin clients `admin.*` over the un-prefixed ones).
fn check_client_security(props: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    let unprefixed: BTreeMap<String, String> = props
        .iter()
        .filter(|(k, _)| is_security_key(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut admin = unprefixed.clone();
    admin.extend(strip_prefix(props, "admin."));
    for (prefix, client) in [
        ("", unprefixed),
        ("consumer.", strip_prefix(props, "consumer.")),
        ("producer.", strip_prefix(props, "producer.")),
        ("admin.", admin),
    ] {
        Security::from_props(&client).map_err(|e| ConfigError::Security {
            key: format!("{prefix}{}", e.key),
            reason: e.reason,
        })?;
    }
    Ok(())
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

/// Parses `listeners` (`http://host:port` or `https://host:port`; empty host = all
/// interfaces). Floe serves one listener.
fn parse_listener(listeners: &str) -> Result<(&'static str, String, u16), ConfigError> {
    let entries: Vec<&str> = listeners
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let invalid = |reason: &str| ConfigError::Invalid {
        key: "listeners".into(),
        value: listeners.into(),
        reason: reason.into(),
    };
    let [first] = entries[..] else {
        return Err(invalid(
            "Floe serves exactly one listener (http://host:port or https://host:port)",
        ));
    };
    let (scheme, rest) = first
        .split_once("://")
        .ok_or_else(|| invalid("expected http://host:port or https://host:port"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => "http",
        "https" => "https",
        _ => return Err(invalid("only http:// and https:// listeners are supported")),
    };
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected http://host:port"))?;
    let port = port.parse().map_err(|_| invalid("invalid port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((scheme, host.to_string(), port))
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
        assert_eq!(c.rest_url(), "http://127.0.0.1:18083/");
        assert_eq!(c.offset_flush_interval, Duration::from_secs(1));
        assert_eq!(c.bootstrap_servers, "localhost:9092");
    }

    #[test]
    fn https_listeners_placeholders_and_client_security_are_read() {
        let dir = std::env::temp_dir().join(format!("floe-worker-config-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let secrets = dir.join("secrets.properties");
        let _ = std::fs::write(&secrets, "password=s3cr3t\n");
        let jaas = format!(
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"floe\" password=\"${{file:{}:password}}\";",
            secrets.display()
        );
        let c = WorkerConfig::from_props(props(&[
            ("key.converter", "a"),
            ("value.converter", "b"),
            ("listeners", "https://localhost:8443"),
            ("config.providers", "file"),
            (
                "config.providers.file.class",
                "org.apache.kafka.common.config.provider.FileConfigProvider",
            ),
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.jaas.config", &jaas),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.rest_url(), "https://localhost:8443/");
        assert!(c.props["sasl.jaas.config"].contains("password=\"s3cr3t\""));
        let err = WorkerConfig::from_props(props(&[
            ("key.converter", "a"),
            ("value.converter", "b"),
            ("consumer.security.protocol", "SASL_SSL"),
            ("consumer.sasl.mechanism", "GSSAPI"),
            (
                "consumer.sasl.jaas.config",
                "com.sun.security.auth.module.Krb5LoginModule required password=\"hunter2\";",
            ),
        ]))
        .err()
        .unwrap_or_else(|| panic!("GSSAPI accepted"));
        assert!(err.to_string().contains("consumer.sasl.mechanism"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = WorkerConfig::from_props(props(&[
            ("key.converter", "a"),
            ("value.converter", "b"),
            ("listeners", "http://:8083,https://:8443"),
        ]))
        .err();
        assert!(err.is_some_and(|e| e.to_string().contains("exactly one listener")));
    }

    #[test]
    fn worker_config_errors_quote_placeholders_not_their_values() {
        let dir = std::env::temp_dir().join(format!("floe-worker-redact-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let secrets = dir.join("listener.properties");
        let _ = std::fs::write(&secrets, "l=ftp://s3cret-host:8083\n");
        let placeholder = format!("${{file:{}:l}}", secrets.display());
        let err = WorkerConfig::from_props(props(&[
            ("key.converter", "a"),
            ("value.converter", "b"),
            ("listeners", &placeholder),
            ("config.providers", "file"),
            (
                "config.providers.file.class",
                "org.apache.kafka.common.config.provider.FileConfigProvider",
            ),
        ]))
        .err()
        .unwrap_or_else(|| panic!("an ftp listener was accepted"))
        .to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains(&placeholder), "{err}");
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
