//! Every transformation and predicate this worker has, by its Java class name.

use crate::props::{KeySpec, Props};
use crate::{ConfigError, Predicate, Transformation};

/// What a plugin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    Transformation,
    Predicate,
}

impl PluginKind {
    /// The word Java's messages use (`the 'x' transformation`).
    pub fn noun(self) -> &'static str {
        match self {
            PluginKind::Transformation => "transformation",
            PluginKind::Predicate => "predicate",
        }
    }

    /// The Java interface a class must implement.
    pub fn interface(self) -> &'static str {
        match self {
            PluginKind::Transformation => "Transformation",
            PluginKind::Predicate => "Predicate",
        }
    }
}

/// Builds a configured transformation.
pub type BuildTransformation = fn(&Props) -> Result<Box<dyn Transformation>, ConfigError>;
/// Builds a configured predicate.
pub type BuildPredicate = fn(&Props) -> Result<Box<dyn Predicate>, ConfigError>;

/// How a plugin is built.
#[derive(Clone, Copy)]
pub enum Build {
    Transformation(BuildTransformation),
    Predicate(BuildPredicate),
}

/// A transformation or predicate class.
pub struct Plugin {
    /// The Java class name (`…InsertField$Value`).
    pub class: &'static str,
    pub kind: PluginKind,
    /// The version the Java plugin of that name reports.
    pub version: &'static str,
    /// Its own config keys, un-prefixed.
    pub keys: fn() -> Vec<KeySpec>,
    pub build: Build,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("class", &self.class)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// A transformation configured with `props`.
    pub fn transformation(&self, props: &Props) -> Result<Box<dyn Transformation>, ConfigError> {
        match self.build {
            Build::Transformation(build) => build(props),
            Build::Predicate(_) => Err(ConfigError(format!(
                "Class class {} does not implement the Transformation interface",
                self.class
            ))),
        }
    }

    /// A predicate configured with `props`.
    pub fn predicate(&self, props: &Props) -> Result<Box<dyn Predicate>, ConfigError> {
        match self.build {
            Build::Predicate(build) => build(props),
            Build::Transformation(_) => Err(ConfigError(format!(
                "Class class {} does not implement the Predicate interface",
                self.class
            ))),
        }
    }

    /// The simple class name (`RegexRouter`), which Java also accepts when it is unambiguous.
    fn simple_name(&self) -> &'static str {
        self.class.rsplit('.').next().unwrap_or(self.class)
    }
}

/// Every plugin: Kafka's, the Iceberg sink's, Debezium's.
pub fn all() -> &'static [Plugin] {
    static ALL: std::sync::OnceLock<Vec<Plugin>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let mut v = crate::kafka::plugins();
        v.extend(crate::iceberg::plugins());
        v.extend(crate::debezium::plugins());
        v.sort_by_key(|p| p.class);
        v
    })
}

/// The plugin `class` names: its full name, or its simple name when no other plugin has it
/// (`RegexRouter`, `Filter`; never `Value`).
pub fn find(class: &str) -> Option<&'static Plugin> {
    let class = class.trim();
    let all = all();
    if let Some(p) = all.iter().find(|p| p.class == class) {
        return Some(p);
    }
    if class.contains(['.', '$']) {
        return None;
    }
    let mut by_simple = all.iter().filter(|p| p.simple_name() == class);
    match (by_simple.next(), by_simple.next()) {
        (Some(p), None) => Some(p),
        _ => None,
    }
}

/// The concrete `$Key`/`$Value` classes of an abstract one (`…Cast`), Key first.
pub fn variants_of(class: &str) -> Vec<&'static str> {
    let class = class.trim();
    let mut v: Vec<&'static str> = all()
        .iter()
        .filter(|p| {
            p.class
                .strip_prefix(class)
                .is_some_and(|rest| rest.starts_with('$'))
        })
        .map(|p| p.class)
        .collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_are_found_by_name_and_unambiguous_alias() {
        assert!(find("org.apache.kafka.connect.transforms.InsertField$Value").is_some());
        assert_eq!(
            find("RegexRouter").map(|p| p.class),
            Some("org.apache.kafka.connect.transforms.RegexRouter")
        );
        assert!(find("Value").is_none());
        assert!(find("Cast$Value").is_none());
        assert_eq!(
            variants_of("org.apache.kafka.connect.transforms.Cast"),
            vec![
                "org.apache.kafka.connect.transforms.Cast$Key",
                "org.apache.kafka.connect.transforms.Cast$Value"
            ]
        );
    }

    #[test]
    fn every_kafka_built_in_is_there() {
        let names: Vec<&str> = all().iter().map(|p| p.class).collect();
        for t in [
            "Cast$Key",
            "Cast$Value",
            "DropHeaders",
            "ExtractField$Key",
            "ExtractField$Value",
            "Filter",
            "Flatten$Key",
            "Flatten$Value",
            "HeaderFrom$Key",
            "HeaderFrom$Value",
            "HoistField$Key",
            "HoistField$Value",
            "InsertField$Key",
            "InsertField$Value",
            "InsertHeader",
            "MaskField$Key",
            "MaskField$Value",
            "RegexRouter",
            "ReplaceField$Key",
            "ReplaceField$Value",
            "SetSchemaMetadata$Key",
            "SetSchemaMetadata$Value",
            "TimestampConverter$Key",
            "TimestampConverter$Value",
            "TimestampRouter",
            "ValueToKey",
            "predicates.HasHeaderKey",
            "predicates.RecordIsTombstone",
            "predicates.TopicNameMatches",
        ] {
            let class = format!("org.apache.kafka.connect.transforms.{t}");
            assert!(names.contains(&class.as_str()), "{class} missing");
        }
        for t in [
            "org.apache.iceberg.connect.transforms.DebeziumTransform",
            "org.apache.iceberg.connect.transforms.DmsTransform",
            "org.apache.iceberg.connect.transforms.CopyValue",
            "org.apache.iceberg.connect.transforms.JsonToMapTransform",
            "org.apache.iceberg.connect.transforms.KafkaMetadataTransform",
            "io.debezium.transforms.ExtractNewRecordState",
        ] {
            assert!(names.contains(&t), "{t} missing");
        }
    }
}
