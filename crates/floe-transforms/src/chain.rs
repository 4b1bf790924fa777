//! The transformation chain of a connector (`transforms`, `predicates`): built from the
//! connector config as the Java worker builds it, applied stage by stage, and validated key by
//! key for `PUT /connector-plugins/{plugin}/config/validate`.

use std::collections::{BTreeMap, BTreeSet};

use floe_data::config::{parse_list, ConfigKey, ConfigType, Importance};
use floe_data::SinkRecord;

use crate::plugins::{self, Plugin, PluginKind};
use crate::props::{KeySpec, Props};
use crate::{ConfigError, Predicate, TransformError, Transformation};

const TRANSFORMS: &str = "transforms";
const PREDICATES: &str = "predicates";
const PREDICATE: &str = "predicate";
const NEGATE: &str = "negate";

struct Stage {
    class: &'static str,
    transform: Box<dyn Transformation>,
    predicate: Option<Box<dyn Predicate>>,
    negate: bool,
}

/// A connector's transformation chain.
#[derive(Default)]
pub struct Chain {
    stages: Vec<Stage>,
}

/// A stage failed on a record: the transformation's class (what the DLQ and traces name, also
/// when its predicate failed) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {error}")]
pub struct StageError {
    pub class: &'static str,
    pub error: TransformError,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.stages.iter().map(|s| s.class))
            .finish()
    }
}

impl Chain {
    /// The chain a connector config describes (empty without `transforms`). Fails as Java's
    /// worker fails a task at start: a missing or unknown type, a transform whose own config
    /// is unusable, a predicate alias that is not defined.
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<Chain, ConfigError> {
        let mut stages = Vec::new();
        for alias in aliases(config, TRANSFORMS) {
            let prefix = format!("{TRANSFORMS}.{alias}.");
            let plugin = resolve(config, &prefix, PluginKind::Transformation)?;
            let mut props = strip(config, &prefix);
            let predicate_alias = props
                .remove(PREDICATE)
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty());
            let negate = props
                .remove(NEGATE)
                .is_some_and(|n| n.trim().eq_ignore_ascii_case("true"));
            let transform = plugin.transformation(&Props::new(props))?;
            let predicate = match predicate_alias {
                None => None,
                Some(p) => {
                    if !aliases(config, PREDICATES).contains(&p) {
                        return Err(ConfigError(format!(
                            "Unknown configuration '{PREDICATES}.{p}.type'"
                        )));
                    }
                    let prefix = format!("{PREDICATES}.{p}.");
                    let plugin = resolve(config, &prefix, PluginKind::Predicate)?;
                    Some(plugin.predicate(&Props::new(strip(config, &prefix)))?)
                }
            };
            stages.push(Stage {
                class: plugin.class,
                transform,
                predicate,
                negate,
            });
        }
        Ok(Chain { stages })
    }

    /// Whether the chain has no stage.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Runs `record` through every stage; None when a stage dropped it.
    pub fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, StageError> {
        for stage in &self.stages {
            let wrap = |error: TransformError| StageError {
                class: stage.class,
                error,
            };
            if let Some(p) = &stage.predicate {
                if p.test(&record).map_err(wrap)? == stage.negate {
                    continue;
                }
            }
            match stage.transform.apply(record).map_err(wrap)? {
                Some(next) => record = next,
                None => return Ok(None),
            }
        }
        Ok(Some(record))
    }
}

/// The aliases a LIST key names, each once, in order.
fn aliases(config: &BTreeMap<String, String>, key: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    config
        .get(key)
        .map(|v| parse_list(v))
        .unwrap_or_default()
        .into_iter()
        .filter(|a| seen.insert(a.clone()))
        .collect()
}

fn strip(config: &BTreeMap<String, String>, prefix: &str) -> BTreeMap<String, String> {
    config
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
        .collect()
}

/// The plugin `<prefix>type` names, as the task start resolves it.
fn resolve(
    config: &BTreeMap<String, String>,
    prefix: &str,
    kind: PluginKind,
) -> Result<&'static Plugin, ConfigError> {
    let key = format!("{prefix}type");
    let class = config
        .get(&key)
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| crate::props::missing(&key))?;
    type_error(&key, class, kind).map_or_else(
        || plugins::find(class).ok_or_else(|| ConfigError(not_found(&key, class))),
        |e| Err(ConfigError(e)),
    )
}

fn not_found(key: &str, class: &str) -> String {
    format!("Invalid value {class} for configuration {key}: Class {class} could not be found.")
}

/// Why `class` cannot be the `kind` named by `key`, if it cannot.
fn type_error(key: &str, class: &str, kind: PluginKind) -> Option<String> {
    match plugins::find(class) {
        Some(p) if p.kind == kind => None,
        Some(p) => Some(format!(
            "Class class {} does not implement the {} interface",
            p.class,
            kind.interface()
        )),
        None => {
            let variants = plugins::variants_of(class);
            if variants.is_empty() {
                Some(not_found(key, class))
            } else {
                Some(format!(
                    "This class is abstract and cannot be created. Did you mean {}?",
                    variants.join(", ")
                ))
            }
        }
    }
}

/// One key the chain adds to a connector's definition, with its value and errors.
#[derive(Debug, Clone)]
pub struct ChainKey {
    pub key: ConfigKey,
    pub value: Option<String>,
    pub errors: Vec<String>,
}

/// What validation finds in a connector's `transforms` and `predicates`.
#[derive(Debug, Clone, Default)]
pub struct ChainValidation {
    /// Errors of the `transforms` key itself.
    pub transforms_errors: Vec<String>,
    /// Errors of the `predicates` key itself.
    pub predicates_errors: Vec<String>,
    /// The keys of each transform alias, then of each predicate alias.
    pub keys: Vec<ChainKey>,
}

/// Validates the chain as Java's `ConnectorConfig.enrich` and `validate` do: per alias, a
/// `type` key, a `plugin.version` key, and (when the type resolves) the plugin's own keys with
/// `predicate` and `negate`, each checked by its validator.
pub fn validate(config: &BTreeMap<String, String>) -> ChainValidation {
    let mut out = ChainValidation {
        transforms_errors: duplicate_error(config, TRANSFORMS),
        predicates_errors: duplicate_error(config, PREDICATES),
        keys: Vec::new(),
    };
    for (list, kind) in [
        (TRANSFORMS, PluginKind::Transformation),
        (PREDICATES, PluginKind::Predicate),
    ] {
        for alias in aliases(config, list) {
            validate_alias(config, list, &alias, kind, &mut out.keys);
        }
    }
    out
}

fn duplicate_error(config: &BTreeMap<String, String>, key: &str) -> Vec<String> {
    let all = config.get(key).map(|v| parse_list(v)).unwrap_or_default();
    let unique: BTreeSet<&String> = all.iter().collect();
    if unique.len() == all.len() {
        return Vec::new();
    }
    vec![format!(
        "Invalid value [{}] for configuration {key}: Duplicate alias provided.",
        all.join(", ")
    )]
}

fn validate_alias(
    config: &BTreeMap<String, String>,
    list: &str,
    alias: &str,
    kind: PluginKind,
    out: &mut Vec<ChainKey>,
) {
    let prefix = format!("{list}.{alias}.");
    let group = format!(
        "{}: {alias}",
        if kind == PluginKind::Transformation {
            "Transforms"
        } else {
            "Predicates"
        }
    );
    let noun = kind.noun();
    let type_key = format!("{prefix}type");
    let raw_class = config.get(&type_key).map(|c| c.trim().to_string());
    let mut type_errors = Vec::new();
    let plugin = match raw_class.as_deref() {
        None | Some("") => {
            type_errors.push(format!(
                "Missing required configuration \"{type_key}\" which has no default value."
            ));
            None
        }
        Some(class) => match type_error(&type_key, class, kind) {
            Some(e) => {
                type_errors.push(e);
                None
            }
            None => plugins::find(class),
        },
    };
    if kind == PluginKind::Transformation
        && config.contains_key(&format!("{prefix}{NEGATE}"))
        && !config.contains_key(&format!("{prefix}{PREDICATE}"))
    {
        type_errors.push(format!(
            "Config '{prefix}{NEGATE}' was provided but there is no config '{prefix}{PREDICATE}' defining a predicate to be negated."
        ));
    }
    let mut type_key_def = ConfigKey::required("", ConfigType::Class, Importance::High, "")
        .in_group(
            group.clone(),
            format!("{} type for {alias}", capitalised(noun)),
        );
    type_key_def.name = type_key.into();
    type_key_def.documentation = format!("Class for the '{alias}' {noun}.").into();
    type_key_def.order = Some(0);
    // The class as Java resolves it; an abstract class loads, an unknown one does not.
    let shown_class = match (plugin, raw_class.as_deref()) {
        (Some(p), _) => Some(p.class.to_string()),
        (None, Some(c)) if !plugins::variants_of(c).is_empty() => Some(c.to_string()),
        _ => None,
    };
    out.push(ChainKey {
        key: type_key_def,
        value: shown_class,
        errors: type_errors,
    });

    let version_key = format!("{prefix}plugin.version");
    let mut version_def = ConfigKey::nullable("", ConfigType::String, Importance::High, "")
        .in_group(
            group.clone(),
            format!("{} version for {alias}", capitalised(noun)),
        );
    version_def.name = version_key.clone().into();
    version_def.documentation = format!("Version of the '{alias}' {noun}.").into();
    version_def.default = plugin.map(|p| p.version.into());
    version_def.order = Some(1);
    let version_errors = match (plugin, config.get(&version_key).map(|v| v.trim())) {
        (Some(p), Some(v)) if !v.is_empty() && v != p.version => vec![format!(
            "Plugin {} not found that matches the version range [{v},{v}], available versions: [{}]",
            p.class, p.version
        )],
        _ => Vec::new(),
    };
    out.push(ChainKey {
        value: config
            .get(&version_key)
            .cloned()
            .or_else(|| plugin.map(|p| p.version.to_string())),
        key: version_def,
        errors: version_errors,
    });

    let Some(plugin) = plugin else { return };
    let mut specs = (plugin.keys)();
    if kind == PluginKind::Transformation {
        specs.push(KeySpec::new(ConfigKey::nullable(
            PREDICATE,
            ConfigType::String,
            Importance::Medium,
            "The alias of a predicate used to determine whether to apply this transformation.",
        )));
        specs.push(KeySpec::new(ConfigKey::optional(
            NEGATE,
            ConfigType::Boolean,
            "false",
            Importance::Medium,
            "Whether the configured predicate should be negated.",
        )));
    }
    // ConfigDef's order for keys without a group: required first, then by importance, then
    // by name.
    specs.sort_by(|a, b| {
        (!a.key.required, a.key.importance, a.key.name.as_ref()).cmp(&(
            !b.key.required,
            b.key.importance,
            b.key.name.as_ref(),
        ))
    });
    for (i, spec) in specs.into_iter().enumerate() {
        let bare = spec.key.name.to_string();
        let full = format!("{prefix}{bare}");
        let raw = config.get(&full).map(String::as_str);
        let mut errors = Vec::new();
        match raw {
            None if spec.key.required => errors.push(format!(
                "Missing required configuration \"{full}\" which has no default value."
            )),
            Some(v) => {
                let mut prefixed = spec.key.clone();
                prefixed.name = full.clone().into();
                errors.extend(prefixed.type_error(v));
            }
            None => {}
        }
        if let Some(check) = spec.check {
            // An unset key is checked with its default, as ConfigDef parses it.
            errors.extend(check.message(&bare, raw.or(spec.key.default.as_deref())));
        }
        let mut key = spec.key.in_group(group.clone(), bare);
        let value = raw
            .map(str::to_string)
            .or_else(|| key.default.as_ref().map(|d| d.to_string()));
        key.name = full.into();
        key.order = Some(i as i32 + 2);
        out.push(ChainKey { key, value, errors });
    }
}

fn capitalised(noun: &str) -> String {
    let mut c = noun.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_data::Value;

    fn cfg(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn record(topic: &str, value: Value) -> SinkRecord {
        let mut r = SinkRecord::new(topic, 0, 5, Some(1_700_000_000_000));
        r.value = value;
        r
    }

    #[test]
    fn stages_apply_in_order_and_a_null_drops_the_record() {
        let chain = Chain::from_config(&cfg(&[
            ("transforms", "route, drop"),
            (
                "transforms.route.type",
                "org.apache.kafka.connect.transforms.RegexRouter",
            ),
            ("transforms.route.regex", "(.*)-raw"),
            ("transforms.route.replacement", "$1"),
            (
                "transforms.drop.type",
                "org.apache.kafka.connect.transforms.Filter",
            ),
            ("transforms.drop.predicate", "isTomb"),
            ("predicates", "isTomb"),
            (
                "predicates.isTomb.type",
                "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
            ),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        let out = chain
            .apply(record("orders-raw", Value::Int32(1)))
            .unwrap_or_else(|e| panic!("{e}"));
        let out = out.unwrap_or_else(|| panic!("kept"));
        assert_eq!(out.topic, "orders");
        assert_eq!(out.source_topic(), "orders-raw");
        assert_eq!(chain.apply(record("orders-raw", Value::Null)), Ok(None));
    }

    #[test]
    fn negate_inverts_the_predicate() {
        let chain = Chain::from_config(&cfg(&[
            ("transforms", "keepTomb"),
            ("transforms.keepTomb.type", "Filter"),
            ("transforms.keepTomb.predicate", "isTomb"),
            ("transforms.keepTomb.negate", "true"),
            ("predicates", "isTomb"),
            ("predicates.isTomb.type", "RecordIsTombstone"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(chain.apply(record("t", Value::Int32(1))), Ok(None));
        assert!(matches!(chain.apply(record("t", Value::Null)), Ok(Some(_))));
    }

    #[test]
    fn task_start_errors_are_javas() {
        let err = |pairs: &[(&str, &str)]| Chain::from_config(&cfg(pairs)).err().map(|e| e.0);
        assert_eq!(
            err(&[("transforms", "x")]).as_deref(),
            Some(
                "Missing required configuration \"transforms.x.type\" which has no default value."
            )
        );
        assert_eq!(
            err(&[("transforms", "x"), ("transforms.x.type", "com.example.Nope")]).as_deref(),
            Some("Invalid value com.example.Nope for configuration transforms.x.type: Class com.example.Nope could not be found.")
        );
        assert_eq!(
            err(&[
                ("transforms", "x"),
                ("transforms.x.type", "Filter"),
                ("transforms.x.predicate", "nope")
            ])
            .as_deref(),
            Some("Unknown configuration 'predicates.nope.type'")
        );
    }

    #[test]
    fn validation_reports_each_alias_key_with_javas_messages() {
        let v = validate(&cfg(&[
            ("transforms", "c, c, m, a"),
            (
                "transforms.c.type",
                "org.apache.kafka.connect.transforms.Cast$Value",
            ),
            (
                "transforms.m.type",
                "org.apache.kafka.connect.transforms.MaskField$Value",
            ),
            ("transforms.m.fields", ""),
            ("transforms.m.negate", "true"),
            (
                "transforms.a.type",
                "org.apache.kafka.connect.transforms.Cast",
            ),
        ]));
        assert_eq!(
            v.transforms_errors,
            vec!["Invalid value [c, c, m, a] for configuration transforms: Duplicate alias provided."]
        );
        let errors = |name: &str| {
            v.keys
                .iter()
                .find(|k| k.key.name == name)
                .map(|k| k.errors.clone())
                .unwrap_or_else(|| panic!("no key {name}"))
        };
        assert_eq!(
            errors("transforms.c.spec"),
            vec![
                "Missing required configuration \"transforms.c.spec\" which has no default value.",
                "Must specify at least one field to cast."
            ]
        );
        assert_eq!(
            errors("transforms.m.fields"),
            vec!["Invalid value [] for configuration fields: Empty list"]
        );
        assert_eq!(
            errors("transforms.m.type"),
            vec!["Config 'transforms.m.negate' was provided but there is no config 'transforms.m.predicate' defining a predicate to be negated."]
        );
        assert_eq!(
            errors("transforms.a.type"),
            vec!["This class is abstract and cannot be created. Did you mean org.apache.kafka.connect.transforms.Cast$Key, org.apache.kafka.connect.transforms.Cast$Value?"]
        );
        let c_keys: Vec<(String, Option<i32>)> = v
            .keys
            .iter()
            .filter(|k| k.key.group.as_deref() == Some("Transforms: c"))
            .map(|k| (k.key.name.to_string(), k.key.order))
            .collect();
        assert_eq!(
            c_keys,
            vec![
                ("transforms.c.type".to_string(), Some(0)),
                ("transforms.c.plugin.version".to_string(), Some(1)),
                ("transforms.c.spec".to_string(), Some(2)),
                ("transforms.c.negate".to_string(), Some(3)),
                ("transforms.c.predicate".to_string(), Some(4)),
                (
                    "transforms.c.replace.null.with.default".to_string(),
                    Some(5)
                ),
            ]
        );
    }
}
