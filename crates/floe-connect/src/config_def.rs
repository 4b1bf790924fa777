//! Connector configuration definitions and validation, shaped like Kafka's `ConfigDef` and the
//! REST API's `ConfigInfos`.

use serde::Serialize;
use serde_json::{json, Value as Json};

use crate::config_provider::Redactor;
use crate::plugin::{ConfigMap, Plugins, SinkConnector};

pub use floe_data::config::{ConfigKey, ConfigType, Importance, Text, HIDDEN};

/// The REST API's view of config definitions.
pub trait KeyInfos {
    /// The `ConfigKeyInfo`s of `keys`, each numbered within its group as Java does (`-1` for
    /// keys without a group) unless its definition fixes its position.
    fn infos<'a>(keys: impl IntoIterator<Item = &'a ConfigKey>) -> Vec<ConfigKeyInfo>;
}

impl KeyInfos for ConfigKey {
    fn infos<'a>(keys: impl IntoIterator<Item = &'a ConfigKey>) -> Vec<ConfigKeyInfo> {
        let mut counters: std::collections::HashMap<&str, i32> = std::collections::HashMap::new();
        keys.into_iter()
            .map(|k| {
                let n = counters
                    .entry(k.group.as_deref().unwrap_or(""))
                    .or_insert(0);
                *n += 1;
                let order = match (&k.group, k.order) {
                    (None, _) => -1,
                    (Some(_), Some(fixed)) => fixed,
                    (Some(_), None) => *n,
                };
                ConfigKeyInfo {
                    name: k.name.clone(),
                    config_type: k.config_type.name(),
                    required: k.required,
                    default_value: k.default.clone(),
                    importance: k.importance.name(),
                    documentation: k.documentation.clone(),
                    group: k.group.clone(),
                    order,
                    width: "NONE",
                    display_name: k.display_name.clone(),
                    dependents: Vec::new(),
                }
            })
            .collect()
    }
}

/// `ConfigKeyInfo` of the REST API.
#[derive(Debug, Serialize)]
pub struct ConfigKeyInfo {
    pub name: Text,
    #[serde(rename = "type")]
    pub config_type: &'static str,
    pub required: bool,
    pub default_value: Option<Text>,
    pub importance: &'static str,
    pub documentation: Text,
    pub group: Option<Text>,
    #[serde(rename = "order_in_group")]
    pub order: i32,
    pub width: &'static str,
    pub display_name: Text,
    pub dependents: Vec<String>,
}

const COMMON: &str = "Common";
const TRANSFORMS: &str = "Transforms";
const PREDICATES: &str = "Predicates";
const ERROR_HANDLING: &str = "Error Handling";

/// The framework keys of every sink connector (`SinkConnectorConfig`).
pub fn framework_keys() -> Vec<ConfigKey> {
    use ConfigType::*;
    use Importance::*;
    let common = |k: ConfigKey, display: &'static str| k.in_group(COMMON, display);
    let errors = |k: ConfigKey, display: &'static str| k.in_group(ERROR_HANDLING, display);
    vec![
        common(ConfigKey::required("name", String, High, "Globally unique name to use for this connector."), "Connector name"),
        common(ConfigKey::required("connector.class", String, High, "Name or alias of the class for this connector. Must be a subclass of org.apache.kafka.connect.connector.Connector."), "Connector class"),
        common(ConfigKey::optional("connector.plugin.version", String, "", Medium, "Version of the connector."), "Connector version"),
        common(ConfigKey::optional("tasks.max", Int, "1", High, "Maximum number of tasks to use for this connector."), "Tasks max"),
        common(ConfigKey::optional("tasks.max.enforce", Boolean, "true", Low, "(Deprecated) Whether to enforce that the tasks.max property is respected by the connector."), "Enforce tasks max"),
        common(ConfigKey::optional("key.converter", Class, "", Low, "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka."), "Key converter class"),
        common(ConfigKey::optional("key.converter.plugin.version", String, "", Low, "Version of the key converter."), "Key converter version"),
        common(ConfigKey::optional("value.converter", Class, "", Low, "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka."), "Value converter class"),
        common(ConfigKey::optional("value.converter.plugin.version", String, "", Low, "Version of the value converter."), "Value converter version"),
        common(ConfigKey::optional("header.converter", Class, "", Low, "HeaderConverter class used to convert between Kafka Connect format and the serialized form that is written to Kafka."), "Header converter class"),
        common(ConfigKey::optional("header.converter.plugin.version", String, "", Low, "Version of the header converter."), "Header converter version"),
        // Java numbers these two on from the Common group (its counter is shared).
        ConfigKey { order: Some(12), ..ConfigKey::optional("transforms", List, "", Low, "Aliases for the transformations to be applied to records.").in_group(TRANSFORMS, "Transforms") },
        ConfigKey { order: Some(13), ..ConfigKey::optional("predicates", List, "", Low, "Aliases for the predicates used by transformations.").in_group(PREDICATES, "Predicates") },
        common(ConfigKey::optional("config.action.reload", String, "restart", Low, "The action that Connect should take on the connector when changes in external configuration providers result in a change in the connector's configuration properties."), "Reload Action"),
        errors(ConfigKey::optional("errors.retry.timeout", Long, "0", Medium, "The maximum duration in milliseconds that a failed operation will be reattempted."), "Retry Timeout for Errors"),
        errors(ConfigKey::optional("errors.retry.delay.max.ms", Long, "60000", Medium, "The maximum duration in milliseconds between consecutive retry attempts."), "Maximum Delay Between Retries for Errors"),
        errors(ConfigKey::optional("errors.tolerance", String, "none", Medium, "Behavior for tolerating errors during connector operation. 'none' is the default value and signals that any error will result in an immediate connector task failure; 'all' changes the behavior to skip over problematic records."), "Error Tolerance"),
        errors(ConfigKey::optional("errors.log.enable", Boolean, "false", Medium, "If true, write each error and the details of the failed operation and problematic record to the Connect application log."), "Log Errors"),
        errors(ConfigKey::optional("errors.log.include.messages", Boolean, "false", Medium, "Whether to include in the log the Connect record that resulted in a failure."), "Log Error Details"),
        common(ConfigKey::optional("topics", List, "", High, "List of topics to consume, separated by commas"), "Topics"),
        common(ConfigKey::optional("topics.regex", String, "", High, "Regular expression giving topics to consume."), "Topics regex"),
        errors(ConfigKey::optional("errors.deadletterqueue.topic.name", String, "", Medium, "The name of the topic to be used as the dead letter queue (DLQ) for messages that result in an error when processed by this sink connector, or its transformations or converters."), "Dead Letter Queue Topic Name"),
        errors(ConfigKey::optional("errors.deadletterqueue.topic.replication.factor", Short, "3", Medium, "Replication factor used to create the dead letter queue topic when it doesn't already exist."), "Dead Letter Queue Topic Replication Factor"),
        errors(ConfigKey::optional("errors.deadletterqueue.context.headers.enable", Boolean, "false", Medium, "If true, add headers containing error context to the messages written to the dead letter queue."), "Enable Error Context Headers"),
    ]
}

/// The validation result of one key.
#[derive(Debug)]
struct KeyResult {
    key: ConfigKey,
    value: Option<String>,
    errors: Vec<String>,
}

/// A validated connector config: everything the `validate` endpoint reports.
#[derive(Debug)]
pub struct Validation {
    plugin_class: String,
    groups: Vec<String>,
    results: Vec<KeyResult>,
}

impl Validation {
    /// Adds a key no definition holds — a client override (`consumer.override.*`, …), as
    /// Java's validation adds those under the worker's override policy — with its errors.
    pub fn push_client_override(&mut self, name: &str, value: &str, errors: Vec<String>) {
        let mut key = ConfigKey::nullable("", ConfigType::String, Importance::Low, "");
        key.name = std::borrow::Cow::Owned(name.to_string());
        key.display_name = key.name.clone();
        self.results.push(KeyResult {
            key,
            value: Some(value.to_string()),
            errors,
        });
    }

    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.results.iter().map(|r| r.errors.len()).sum()
    }

    /// Every error message, in key order.
    pub fn errors(&self) -> impl Iterator<Item = &str> {
        self.results
            .iter()
            .flat_map(|r| r.errors.iter().map(String::as_str))
    }

    /// Shows what the caller gave rather than what config providers resolved it to: a value
    /// that came from a `${provider:…}` placeholder is shown as the placeholder, and errors
    /// quote the placeholder instead of the resolved text (`redactor`, from the resolution of
    /// `raw` into `resolved`). PASSWORD keys and keys named as secrets (`is_secret_key`) are
    /// shown as `[hidden]`, their values cut out of errors too.
    pub fn hide_secrets(&mut self, raw: &ConfigMap, resolved: &ConfigMap, redactor: &Redactor) {
        let mut redactor = redactor.clone();
        let password_keys: Vec<String> = self
            .results
            .iter()
            .filter(|r| r.key.config_type == ConfigType::Password)
            .map(|r| r.key.name.to_string())
            .collect();
        for (k, v) in resolved {
            if !(floe_data::config::is_secret_key(k) || password_keys.iter().any(|p| p == k)) {
                continue;
            }
            redactor.hide(v);
            if let Some(given) = raw.get(k).filter(|given| *given != v) {
                redactor.hide(given);
            }
        }
        for r in &mut self.results {
            let secret = r.key.config_type == ConfigType::Password
                || floe_data::config::is_secret_key(&r.key.name);
            if let Some(value) = &mut r.value {
                if secret {
                    if !value.is_empty() {
                        *value = HIDDEN.to_string();
                    }
                } else if let Some(given) = raw.get(r.key.name.as_ref()) {
                    if resolved.get(r.key.name.as_ref()) != Some(given) {
                        *value = given.clone();
                    }
                }
            }
            for e in &mut r.errors {
                *e = redactor.redact(e);
            }
        }
    }

    /// The `ConfigInfos` JSON of the REST API.
    pub fn to_json(&self) -> Json {
        let infos = ConfigKey::infos(self.results.iter().map(|r| &r.key));
        let configs: Vec<Json> = self
            .results
            .iter()
            .zip(infos)
            .map(|(r, info)| {
                let secret = r.key.config_type == ConfigType::Password
                    || floe_data::config::is_secret_key(&r.key.name);
                let value = match &r.value {
                    Some(v) if secret && !v.is_empty() => Some(HIDDEN.to_string()),
                    other => other.clone(),
                };
                json!({
                    "definition": info,
                    "value": {
                        "name": r.key.name,
                        "value": value,
                        "recommended_values": recommended(&r.key),
                        "errors": r.errors,
                        "visible": true,
                    }
                })
            })
            .collect();
        json!({
            "name": self.plugin_class,
            "error_count": self.error_count(),
            "groups": self.groups,
            "configs": configs,
        })
    }

    /// The message of the 400 answer to an invalid create or update.
    pub fn invalid_config_message(&self) -> String {
        let mut msg = format!(
            "Connector configuration is invalid and contains the following {} error(s):",
            self.error_count()
        );
        for e in self.errors() {
            msg.push('\n');
            msg.push_str(e);
        }
        msg.push_str("\nYou can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`");
        msg
    }
}

/// A value as the validate answer shows it: a LIST as its parsed items joined by commas.
fn shown(key: &ConfigKey, value: String) -> String {
    match key.config_type {
        ConfigType::List => floe_data::config::parse_list(&value).join(","),
        _ => value,
    }
}

/// Recommended values the Java worker lists: the converters this worker has for converter
/// keys, the transformations and predicates it has for their `type` keys.
fn recommended(key: &ConfigKey) -> Vec<&'static str> {
    let group = key.group.as_deref().unwrap_or("");
    let plugin_kind = match key.config_type {
        ConfigType::Class if group.starts_with("Transforms: ") => {
            Some(floe_transforms::PluginKind::Transformation)
        }
        ConfigType::Class if group.starts_with("Predicates: ") => {
            Some(floe_transforms::PluginKind::Predicate)
        }
        _ => None,
    };
    if let Some(kind) = plugin_kind {
        return floe_transforms::plugins::all()
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.class)
            .collect();
    }
    match key.name.as_ref() {
        "key.converter" | "value.converter" | "header.converter" => {
            let mut v: Vec<&'static str> = floe_convert::CONVERTER_CLASSES.to_vec();
            if key.name == "header.converter" {
                v.push("org.apache.kafka.connect.storage.SimpleHeaderConverter");
            }
            v.sort_unstable();
            v
        }
        _ => Vec::new(),
    }
}

/// Validates a sink connector config: framework keys, the keys of its transforms and
/// predicates, then the plugin's.
pub fn validate(
    connector: &dyn SinkConnector,
    config: &ConfigMap,
    plugins: &Plugins,
) -> Validation {
    let mut results: Vec<KeyResult> = Vec::new();
    let mut seen: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let plugin_errors = connector.validate(config);
    let chain = floe_transforms::chain::validate(config);
    let framework = framework_keys();
    let framework_count = framework.len();
    for key in framework.into_iter().chain(connector.config_keys()) {
        if !seen.insert(key.name.to_string()) {
            continue;
        }
        let value = config.get(key.name.as_ref()).cloned();
        let mut errors = Vec::new();
        match value.as_deref() {
            None | Some("") if key.required => errors.push(format!(
                "Missing required configuration \"{}\" which has no default value.",
                key.name
            )),
            Some(v) => errors.extend(key.type_error(v)),
            None => {}
        }
        errors.extend(
            plugin_errors
                .iter()
                .filter(|(k, _)| *k == key.name)
                .map(|(_, e)| e.clone()),
        );
        match key.name.as_ref() {
            "transforms" => errors.extend(chain.transforms_errors.iter().cloned()),
            "predicates" => errors.extend(chain.predicates_errors.iter().cloned()),
            _ => {}
        }
        // Like Java's ConfigValue, an unset key shows its default, and a list its parsed items.
        let value = value
            .or_else(|| key.default.as_ref().map(|d| d.to_string()))
            .map(|v| shown(&key, v));
        results.push(KeyResult { key, value, errors });
        if results.len() == framework_count {
            // Java lists the keys of each transform and predicate alias after the framework's.
            for k in &chain.keys {
                seen.insert(k.key.name.to_string());
            }
            results.extend(chain.keys.iter().cloned().map(|k| KeyResult {
                key: k.key,
                value: k.value,
                errors: k.errors,
            }));
        }
    }
    add_framework_errors(&mut results, config, plugins);
    // Plugin errors on keys that have no definition still count.
    for (k, e) in &plugin_errors {
        if !seen.contains(k.as_str()) {
            let mut key = ConfigKey::optional("", ConfigType::String, "", Importance::Low, "");
            key.name = k.clone().into();
            results.push(KeyResult {
                key,
                value: config.get(k).cloned(),
                errors: vec![e.clone()],
            });
        }
    }
    let mut groups: Vec<String> = Vec::new();
    for r in &results {
        if let Some(g) = &r.key.group {
            if !groups.iter().any(|known| known == g) {
                groups.push(g.to_string());
            }
        }
    }
    Validation {
        plugin_class: connector.class_name().to_string(),
        groups,
        results,
    }
}

fn add_framework_errors(results: &mut [KeyResult], config: &ConfigMap, _plugins: &Plugins) {
    let non_empty = |k: &str| config.get(k).is_some_and(|v| !v.trim().is_empty());
    let mut push = |key: &str, msg: String| {
        if let Some(r) = results.iter_mut().find(|r| r.key.name == key) {
            r.errors.push(msg);
        }
    };
    let has_topics = non_empty("topics");
    let has_regex = non_empty("topics.regex");
    if has_topics && has_regex {
        let msg =
            "topics and topics.regex are mutually exclusive options, but both are set.".to_string();
        push("topics", msg.clone());
        push("topics.regex", msg);
    } else if !has_topics && !has_regex {
        let msg = "Must configure one of topics or topics.regex".to_string();
        push("topics", msg.clone());
        push("topics.regex", msg);
    }
    if let Some(regex) = config.get("topics.regex").filter(|v| !v.trim().is_empty()) {
        if let Err(e) = regex::Regex::new(regex) {
            push(
                "topics.regex",
                format!("Invalid value {regex} for configuration topics.regex: {e}"),
            );
        }
    }
    if let Some(v) = config.get("tasks.max") {
        if let Ok(n) = v.trim().parse::<i32>() {
            if n < 1 {
                push(
                    "tasks.max",
                    format!(
                        "Invalid value {n} for configuration tasks.max: Value must be at least 1"
                    ),
                );
            }
        }
    }
    if let Some(v) = config.get("errors.tolerance") {
        if !matches!(v.trim().to_ascii_lowercase().as_str(), "none" | "all") {
            push(
                "errors.tolerance",
                format!("Invalid value {v} for configuration errors.tolerance: String must be one of: none, all"),
            );
        }
    }
    if let Some(dlq) = config
        .get("errors.deadletterqueue.topic.name")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        let topics = config.get("topics").cloned().unwrap_or_default();
        if topics.split(',').any(|t| t.trim() == dlq) {
            push(
                "errors.deadletterqueue.topic.name",
                format!("The DLQ topic '{dlq}' may not be included in the list of topics ('topics={topics}') consumed by the connector"),
            );
        }
    }
    for key in ["key.converter", "value.converter"] {
        if let Some(class) = config.get(key).filter(|v| !v.trim().is_empty()) {
            if !floe_convert::CONVERTER_CLASSES.contains(&class.trim()) {
                push(
                    key,
                    format!("Invalid value {class} for configuration {key}: Class {class} could not be found."),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::SinkTask;

    struct Sink;

    impl SinkConnector for Sink {
        fn class_name(&self) -> &'static str {
            "test.Sink"
        }
        fn version(&self) -> &'static str {
            "1"
        }
        fn config_keys(&self) -> Vec<ConfigKey> {
            vec![ConfigKey::nullable(
                "sink.key",
                ConfigType::String,
                Importance::High,
                "",
            )]
        }
        fn validate(&self, _config: &ConfigMap) -> Vec<(String, String)> {
            Vec::new()
        }
        fn task_configs(&self, _config: &ConfigMap, _max: usize) -> Vec<ConfigMap> {
            Vec::new()
        }
        fn task_class(&self) -> &'static str {
            "test.Task"
        }
        fn create_task(&self) -> Box<dyn SinkTask> {
            unimplemented!("validation creates no task")
        }
    }

    fn config(pairs: &[(&str, &str)]) -> ConfigMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn transform_keys_come_after_the_framework_keys_in_their_groups() {
        let v = validate(
            &Sink,
            &config(&[
                ("name", "x"),
                ("connector.class", "test.Sink"),
                ("topics", "a, b"),
                ("transforms", "c"),
                (
                    "transforms.c.type",
                    "org.apache.kafka.connect.transforms.Cast$Value",
                ),
            ]),
            &Plugins::default(),
        );
        let json = v.to_json();
        let names: Vec<&str> = json["configs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["definition"]["name"].as_str())
            .collect();
        let at = |n: &str| names.iter().position(|x| *x == n);
        assert!(at("errors.deadletterqueue.context.headers.enable") < at("transforms.c.type"));
        assert!(at("transforms.c.spec") < at("sink.key"));
        assert_eq!(
            json["groups"].as_array().map(|g| g.len()),
            Some(5),
            "{}",
            json["groups"]
        );
        assert_eq!(v.error_count(), 2, "{:?}", v.errors().collect::<Vec<_>>());
        let topics = json["configs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["definition"]["name"] == "topics")
            .map(|c| c["value"]["value"].clone());
        assert_eq!(topics, Some(serde_json::json!("a,b")));
    }

    #[test]
    fn the_dlq_replication_factor_is_a_short() {
        let v = validate(
            &Sink,
            &config(&[
                ("name", "x"),
                ("connector.class", "test.Sink"),
                ("topics", "a"),
                ("errors.deadletterqueue.topic.replication.factor", "40000"),
            ]),
            &Plugins::default(),
        );
        assert_eq!(
            v.errors().collect::<Vec<_>>(),
            vec!["Invalid value 40000 for configuration errors.deadletterqueue.topic.replication.factor: Not a number of type SHORT"]
        );
    }

    #[test]
    fn errors_quote_the_placeholder_not_the_resolved_value() {
        let dir = std::env::temp_dir().join(format!("floe-config-def-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), "s3cret\n").unwrap();
        std::fs::write(dir.join("n"), "s3cret2 ").unwrap();
        let pw = format!("${{directory:{}:pw}}", dir.display());
        let n = format!("${{directory:{}:n}}", dir.display());
        let providers = crate::config_provider::ConfigProviders::from_worker(
            &std::collections::BTreeMap::from([
                ("config.providers".to_string(), "directory".to_string()),
                (
                    "config.providers.directory.class".to_string(),
                    "org.apache.kafka.common.config.provider.DirectoryConfigProvider".to_string(),
                ),
            ]),
        )
        .unwrap();
        let raw = config(&[
            ("name", "x"),
            ("connector.class", "test.Sink"),
            ("topics", "a"),
            ("errors.tolerance", &pw),
            ("tasks.max", &n),
            ("sink.key", &format!("{pw}-x")),
        ]);
        let (resolved, redactor) = providers.resolve_redacting(&raw).unwrap();
        let mut v = validate(&Sink, &resolved, &Plugins::default());
        assert!(v.invalid_config_message().contains("s3cret"));
        v.hide_secrets(&raw, &resolved, &redactor);
        let message = v.invalid_config_message();
        assert!(!message.contains("s3cret"), "{message}");
        assert!(
            message.contains(&format!(
                "Invalid value {pw} for configuration errors.tolerance: String must be one of: none, all"
            )),
            "{message}"
        );
        assert!(
            message.contains(&format!(
                "Invalid value {n} for configuration tasks.max: Not a number of type INT"
            )),
            "{message}"
        );
        let answer = v.to_json().to_string();
        assert!(!answer.contains("s3cret"), "{answer}");
        let shown = |key: &str| {
            v.to_json()["configs"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["definition"]["name"] == key)
                .map(|c| c["value"]["value"].clone())
        };
        assert_eq!(shown("errors.tolerance"), Some(serde_json::json!(pw)));
        assert_eq!(
            shown("sink.key"),
            Some(serde_json::json!(format!("{pw}-x")))
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
