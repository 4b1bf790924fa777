//! Kafka's predicates (`org.apache.kafka.connect.transforms.predicates`).

use floe_data::config::{ConfigKey, ConfigType, Importance};
use floe_data::SinkRecord;

use super::{boxed_predicate, VERSION};
use crate::java::regex::{compile, FullMatch};
use crate::plugins::{Build, Plugin, PluginKind};
use crate::props::{Check, KeySpec, Props};
use crate::{ConfigError, Predicate, TransformError};

/// `HasHeaderKey`: the record has a header with this name.
pub struct HasHeaderKey {
    name: String,
}

impl Predicate for HasHeaderKey {
    fn test(&self, record: &SinkRecord) -> Result<bool, TransformError> {
        Ok(record.headers.iter().any(|h| h.key == self.name))
    }
}

/// `RecordIsTombstone`: the value is null.
pub struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn test(&self, record: &SinkRecord) -> Result<bool, TransformError> {
        Ok(record.value.is_null() && record.encoded_value.is_none())
    }
}

/// `TopicNameMatches`: the whole topic name matches the pattern.
pub struct TopicNameMatches {
    pattern: FullMatch,
}

impl Predicate for TopicNameMatches {
    fn test(&self, record: &SinkRecord) -> Result<bool, TransformError> {
        Ok(self.pattern.matches(&record.topic))
    }
}

fn predicate(
    class: &'static str,
    keys: fn() -> Vec<KeySpec>,
    build: crate::plugins::BuildPredicate,
) -> Plugin {
    Plugin {
        class,
        kind: PluginKind::Predicate,
        version: VERSION,
        keys,
        build: Build::Predicate(build),
    }
}

fn has_header_key_keys() -> Vec<KeySpec> {
    vec![KeySpec::checked(
        ConfigKey::required(
            "name",
            ConfigType::String,
            Importance::Medium,
            "The header name.",
        ),
        Check::NonEmptyString,
    )]
}

fn topic_name_matches_keys() -> Vec<KeySpec> {
    vec![KeySpec::checked(
        ConfigKey::required(
            "pattern",
            ConfigType::String,
            Importance::Medium,
            "A Java regular expression for matching against the name of a record's topic.",
        ),
        Check::NonEmptyRegex,
    )]
}

fn topic_name_matches(props: &Props) -> Result<TopicNameMatches, ConfigError> {
    let pattern = props.required_string("pattern")?;
    let compiled = compile(&pattern).map_err(|e| {
        ConfigError(format!(
            "Invalid value {pattern} for configuration pattern: entry must be a Java-compatible regular expression: {e}"
        ))
    })?;
    Ok(TopicNameMatches { pattern: compiled })
}

/// The three predicates.
pub fn plugins() -> Vec<Plugin> {
    vec![
        predicate(
            "org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
            has_header_key_keys,
            |p: &Props| {
                boxed_predicate(p.required_string("name").map(|name| HasHeaderKey { name }))
            },
        ),
        predicate(
            "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
            Vec::new,
            |_| boxed_predicate(Ok(RecordIsTombstone)),
        ),
        predicate(
            "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
            topic_name_matches_keys,
            |p| boxed_predicate(topic_name_matches(p)),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_data::{Header, Value};
    use std::collections::BTreeMap;

    #[test]
    fn predicates_test_records() {
        let mut r = SinkRecord::new("orders-eu", 0, 0, None);
        assert_eq!(RecordIsTombstone.test(&r), Ok(true));
        r.value = Value::Int32(1);
        assert_eq!(RecordIsTombstone.test(&r), Ok(false));
        r.headers.push(Header {
            key: "k".into(),
            schema: None,
            value: Value::Null,
        });
        assert_eq!(HasHeaderKey { name: "k".into() }.test(&r), Ok(true));
        assert_eq!(HasHeaderKey { name: "K".into() }.test(&r), Ok(false));
        let p = |pattern: &str| {
            topic_name_matches(&Props::new(BTreeMap::from([(
                "pattern".to_string(),
                pattern.to_string(),
            )])))
        };
        assert_eq!(p("orders-.*").map(|m| m.test(&r)).ok(), Some(Ok(true)));
        assert_eq!(p("orders").map(|m| m.test(&r)).ok(), Some(Ok(false)));
        assert!(p("(").is_err());
    }
}
