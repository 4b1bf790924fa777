//! Connector configuration definitions and validation, shaped like Kafka's `ConfigDef` and the
//! REST API's `ConfigInfos`.

use serde::Serialize;
use serde_json::{json, Value as Json};

use crate::plugin::{ConfigMap, Plugins, SinkConnector};

/// Config value types (`ConfigDef.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl ConfigType {
    fn name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }
}

/// Importance (`ConfigDef.Importance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importance {
    High,
    Medium,
    Low,
}

/// One configuration key.
#[derive(Debug, Clone)]
pub struct ConfigKey {
    pub name: &'static str,
    pub config_type: ConfigType,
    /// The default value; None with `required` false is Java's `null` default.
    pub default: Option<&'static str>,
    /// No default at all (`ConfigDef.NO_DEFAULT_VALUE`): the key must be set.
    pub required: bool,
    pub importance: Importance,
    pub documentation: &'static str,
    pub group: Option<&'static str>,
    pub display_name: &'static str,
}

impl ConfigKey {
    /// A key with a default value.
    pub const fn optional(
        name: &'static str,
        config_type: ConfigType,
        default: &'static str,
        importance: Importance,
        documentation: &'static str,
    ) -> ConfigKey {
        ConfigKey::new(
            name,
            config_type,
            Some(default),
            false,
            importance,
            documentation,
        )
    }

    /// A key without a default.
    pub const fn required(
        name: &'static str,
        config_type: ConfigType,
        importance: Importance,
        documentation: &'static str,
    ) -> ConfigKey {
        ConfigKey::new(name, config_type, None, true, importance, documentation)
    }

    /// An optional key whose default is `null` (unset).
    pub const fn nullable(
        name: &'static str,
        config_type: ConfigType,
        importance: Importance,
        documentation: &'static str,
    ) -> ConfigKey {
        ConfigKey::new(name, config_type, None, false, importance, documentation)
    }

    const fn new(
        name: &'static str,
        config_type: ConfigType,
        default: Option<&'static str>,
        required: bool,
        importance: Importance,
        documentation: &'static str,
    ) -> ConfigKey {
        ConfigKey {
            name,
            config_type,
            default,
            required,
            importance,
            documentation,
            group: None,
            display_name: name,
        }
    }

    /// Checks that a given value parses as the key's type.
    pub fn type_error(&self, value: &str) -> Option<String> {
        let v = value.trim();
        let bad = |what: &str| {
            Some(format!(
                "Invalid value {value} for configuration {}: {what}",
                self.name
            ))
        };
        match self.config_type {
            ConfigType::Boolean if !matches!(v.to_ascii_lowercase().as_str(), "true" | "false") => {
                bad("Expected value to be either true or false")
            }
            ConfigType::Int if v.parse::<i32>().is_err() => bad("Not a number of type INT"),
            ConfigType::Long if v.parse::<i64>().is_err() => bad("Not a number of type LONG"),
            ConfigType::Double if v.parse::<f64>().is_err() => bad("Not a number of type DOUBLE"),
            _ => None,
        }
    }

    /// The `ConfigKeyInfo`s of `keys`, each numbered within its group as Java does (`-1` for
    /// keys without a group).
    pub fn infos<'a>(keys: impl IntoIterator<Item = &'a ConfigKey>) -> Vec<ConfigKeyInfo> {
        let mut counters: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        keys.into_iter()
            .map(|k| {
                let n = counters.entry(k.group.unwrap_or("")).or_insert(0);
                *n += 1;
                k.info(*n)
            })
            .collect()
    }

    fn info(&self, order: usize) -> ConfigKeyInfo {
        ConfigKeyInfo {
            name: self.name,
            config_type: self.config_type.name(),
            required: self.required,
            default_value: self.default,
            importance: match self.importance {
                Importance::High => "HIGH",
                Importance::Medium => "MEDIUM",
                Importance::Low => "LOW",
            },
            documentation: self.documentation,
            group: self.group,
            order: if self.group.is_some() {
                order as i32
            } else {
                -1
            },
            width: "NONE",
            display_name: self.display_name,
            dependents: Vec::new(),
        }
    }
}

/// `ConfigKeyInfo` of the REST API.
#[derive(Debug, Serialize)]
pub struct ConfigKeyInfo {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub config_type: &'static str,
    pub required: bool,
    pub default_value: Option<&'static str>,
    pub importance: &'static str,
    pub documentation: &'static str,
    pub group: Option<&'static str>,
    #[serde(rename = "order_in_group")]
    pub order: i32,
    pub width: &'static str,
    pub display_name: &'static str,
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
    let common = |k: ConfigKey, display: &'static str| ConfigKey {
        group: Some(COMMON),
        display_name: display,
        ..k
    };
    let errors = |k: ConfigKey, display: &'static str| ConfigKey {
        group: Some(ERROR_HANDLING),
        display_name: display,
        ..k
    };
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
        ConfigKey { group: Some(TRANSFORMS), display_name: "Transforms", ..ConfigKey::optional("transforms", List, "", Low, "Aliases for the transformations to be applied to records.") },
        ConfigKey { group: Some(PREDICATES), display_name: "Predicates", ..ConfigKey::optional("predicates", List, "", Low, "Aliases for the predicates used by transformations.") },
        common(ConfigKey::optional("config.action.reload", String, "restart", Low, "The action that Connect should take on the connector when changes in external configuration providers result in a change in the connector's configuration properties."), "Reload Action"),
        errors(ConfigKey::optional("errors.retry.timeout", Long, "0", Medium, "The maximum duration in milliseconds that a failed operation will be reattempted."), "Retry Timeout for Errors"),
        errors(ConfigKey::optional("errors.retry.delay.max.ms", Long, "60000", Medium, "The maximum duration in milliseconds between consecutive retry attempts."), "Maximum Delay Between Retries for Errors"),
        errors(ConfigKey::optional("errors.tolerance", String, "none", Medium, "Behavior for tolerating errors during connector operation. 'none' is the default value and signals that any error will result in an immediate connector task failure; 'all' changes the behavior to skip over problematic records."), "Error Tolerance"),
        errors(ConfigKey::optional("errors.log.enable", Boolean, "false", Medium, "If true, write each error and the details of the failed operation and problematic record to the Connect application log."), "Log Errors"),
        errors(ConfigKey::optional("errors.log.include.messages", Boolean, "false", Medium, "Whether to include in the log the Connect record that resulted in a failure."), "Log Error Details"),
        common(ConfigKey::optional("topics", List, "", High, "List of topics to consume, separated by commas"), "Topics"),
        common(ConfigKey::optional("topics.regex", String, "", High, "Regular expression giving topics to consume."), "Topics regex"),
        errors(ConfigKey::optional("errors.deadletterqueue.topic.name", String, "", Medium, "The name of the topic to be used as the dead letter queue (DLQ) for messages that result in an error when processed by this sink connector, or its transformations or converters."), "Dead Letter Queue Topic Name"),
        errors(ConfigKey::optional("errors.deadletterqueue.topic.replication.factor", Int, "3", Medium, "Replication factor used to create the dead letter queue topic when it doesn't already exist."), "Dead Letter Queue Topic Replication Factor"),
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
    groups: Vec<&'static str>,
    results: Vec<KeyResult>,
}

impl Validation {
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

    /// The `ConfigInfos` JSON of the REST API.
    pub fn to_json(&self) -> Json {
        let infos = ConfigKey::infos(self.results.iter().map(|r| &r.key));
        let configs: Vec<Json> = self
            .results
            .iter()
            .zip(infos)
            .map(|(r, info)| {
                json!({
                    "definition": info,
                    "value": {
                        "name": r.key.name,
                        "value": r.value,
                        "recommended_values": recommended(r.key.name),
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

/// Recommended values the Java worker lists: the converters this worker has, for converter keys.
fn recommended(key: &str) -> Vec<&'static str> {
    match key {
        "key.converter" | "value.converter" | "header.converter" => {
            let mut v: Vec<&'static str> = floe_convert::CONVERTER_CLASSES.to_vec();
            if key == "header.converter" {
                v.push("org.apache.kafka.connect.storage.SimpleHeaderConverter");
            }
            v.sort_unstable();
            v
        }
        _ => Vec::new(),
    }
}

/// Validates a sink connector config: framework keys, then the plugin's.
pub fn validate(
    connector: &dyn SinkConnector,
    config: &ConfigMap,
    plugins: &Plugins,
) -> Validation {
    let mut results: Vec<KeyResult> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let plugin_errors = connector.validate(config);
    for key in framework_keys().into_iter().chain(connector.config_keys()) {
        if !seen.insert(key.name) {
            continue;
        }
        let value = config.get(key.name).cloned();
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
                .filter(|(k, _)| k == key.name)
                .map(|(_, e)| e.clone()),
        );
        // Like Java's ConfigValue, an unset key shows its default.
        let value = value.or_else(|| key.default.map(str::to_string));
        results.push(KeyResult { key, value, errors });
    }
    add_framework_errors(&mut results, config, plugins);
    // Plugin errors on keys that have no definition still count.
    for (k, e) in &plugin_errors {
        if !seen.contains(k.as_str()) {
            results.push(KeyResult {
                key: ConfigKey::optional(leak(k), ConfigType::String, "", Importance::Low, ""),
                value: config.get(k).cloned(),
                errors: vec![e.clone()],
            });
        }
    }
    let mut groups: Vec<&'static str> = Vec::new();
    for r in &results {
        if let Some(g) = r.key.group {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    Validation {
        plugin_class: connector.class_name().to_string(),
        groups,
        results,
    }
}

/// Keys named at run time have to live as long as the definitions; they are few and rare.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
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
