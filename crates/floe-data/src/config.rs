//! Configuration definitions, shaped like Kafka's `ConfigDef`: what every pluggable piece
//! (connector, transformation, predicate) declares about its keys, and the parsing rules the
//! Java worker applies to their values.

use std::borrow::Cow;

/// Config value types (`ConfigDef.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Short,
    Int,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl ConfigType {
    /// The name the REST API shows (`BOOLEAN`, `STRING`, …).
    pub fn name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Short => "SHORT",
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Importance {
    High,
    Medium,
    Low,
}

impl Importance {
    /// The name the REST API shows.
    pub fn name(self) -> &'static str {
        match self {
            Importance::High => "HIGH",
            Importance::Medium => "MEDIUM",
            Importance::Low => "LOW",
        }
    }
}

/// Text of a config definition: fixed for a plugin's own keys, built for keys named after an
/// alias (`transforms.<alias>.type`).
pub type Text = Cow<'static, str>;

/// One configuration key.
#[derive(Debug, Clone)]
pub struct ConfigKey {
    pub name: Text,
    pub config_type: ConfigType,
    /// The default value; None with `required` false is Java's `null` default.
    pub default: Option<Text>,
    /// No default at all (`ConfigDef.NO_DEFAULT_VALUE`): the key must be set.
    pub required: bool,
    pub importance: Importance,
    pub documentation: Text,
    pub group: Option<Text>,
    pub display_name: Text,
    /// The position within its group, when the definition fixes it (Java numbers the keys of
    /// a group in order otherwise).
    pub order: Option<i32>,
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
            Some(Cow::Borrowed(default)),
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
        default: Option<Text>,
        required: bool,
        importance: Importance,
        documentation: &'static str,
    ) -> ConfigKey {
        ConfigKey {
            name: Cow::Borrowed(name),
            config_type,
            default,
            required,
            importance,
            documentation: Cow::Borrowed(documentation),
            group: None,
            display_name: Cow::Borrowed(name),
            order: None,
        }
    }

    /// The key in `group`, shown as `display_name`.
    pub fn in_group(mut self, group: impl Into<Text>, display_name: impl Into<Text>) -> ConfigKey {
        self.group = Some(group.into());
        self.display_name = display_name.into();
        self
    }

    /// Checks that a given value parses as the key's type (Java's `ConfigDef.parseType`).
    pub fn type_error(&self, value: &str) -> Option<String> {
        let v = value.trim();
        let bad = |what: &str| {
            Some(format!(
                "Invalid value {value} for configuration {}: {what}",
                self.name
            ))
        };
        match self.config_type {
            ConfigType::Boolean if parse_boolean(v).is_none() => {
                bad("Expected value to be either true or false")
            }
            ConfigType::Short if v.parse::<i16>().is_err() => bad("Not a number of type SHORT"),
            ConfigType::Int if v.parse::<i32>().is_err() => bad("Not a number of type INT"),
            ConfigType::Long if v.parse::<i64>().is_err() => bad("Not a number of type LONG"),
            ConfigType::Double if v.parse::<f64>().is_err() => bad("Not a number of type DOUBLE"),
            _ => None,
        }
    }
}

/// A BOOLEAN value as `ConfigDef` reads it: `true`/`false` in any case, trimmed.
/// Whether a config key holds a secret by its name (passwords, JAAS configs, tokens, S3 and
/// OAuth2 secrets, registry user info, private keys). Such values are never shown: the
/// validate answer shows `[hidden]`, as Java shows PASSWORD values.
pub fn is_secret_key(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "credential",
        "jaas.config",
        "user.info",
        "ssl.keystore.key",
        "private-key",
        "private.key",
        "sas-key",
        "account-key",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// How a secret value is shown.
pub const HIDDEN: &str = "[hidden]";

pub fn parse_boolean(value: &str) -> Option<bool> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A LIST value as `ConfigDef` reads it: trimmed; empty → no items; otherwise split on commas
/// with the spaces around them, keeping empty items (`"a,"` → `["a", ""]`).
pub fn parse_list(value: &str) -> Vec<String> {
    let v = value.trim();
    if v.is_empty() {
        return Vec::new();
    }
    v.split(',').map(|item| item.trim().to_string()).collect()
}

/// Java's `String.split(sep)` for a one-character separator: trailing empty parts are dropped.
pub fn java_split(value: &str, sep: char) -> Vec<&str> {
    let mut parts: Vec<&str> = value.split(sep).collect();
    while parts.len() > 1 && parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    if parts.len() == 1 && parts[0].is_empty() && !value.is_empty() {
        // Every part was empty (`":"`): Java returns an empty array.
        parts.clear();
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_known_by_name() {
        for k in [
            "iceberg.catalog.s3.secret-access-key",
            "consumer.override.sasl.jaas.config",
            "value.converter.basic.auth.user.info",
            "iceberg.catalog.credential",
            "iceberg.catalog.token",
            "iceberg.catalog.jdbc.password",
            "ssl.keystore.key",
            "iceberg.catalog.adls.account-key",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "iceberg.catalog.s3.access-key-id",
            "topics",
            "iceberg.tables",
            "ssl.keystore.location",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn lists_split_as_config_def_does() {
        assert_eq!(parse_list(""), Vec::<String>::new());
        assert_eq!(parse_list("  "), Vec::<String>::new());
        assert_eq!(parse_list("a, b"), vec!["a", "b"]);
        assert_eq!(parse_list(" a ,b , c "), vec!["a", "b", "c"]);
        assert_eq!(parse_list("a,"), vec!["a", ""]);
        assert_eq!(parse_list("a,,b"), vec!["a", "", "b"]);
    }

    #[test]
    fn java_split_drops_trailing_empties() {
        assert_eq!(java_split("foo:", ':'), vec!["foo"]);
        assert_eq!(java_split(":int8", ':'), vec!["", "int8"]);
        assert_eq!(java_split("a::b", ':'), vec!["a", "", "b"]);
        assert_eq!(java_split("a:b", ':'), vec!["a", "b"]);
        assert_eq!(java_split("", ':'), vec![""]);
        assert_eq!(java_split(":", ':'), Vec::<&str>::new());
    }

    #[test]
    fn booleans_and_numbers_are_checked() {
        let k = ConfigKey::optional("x", ConfigType::Short, "3", Importance::Low, "");
        assert_eq!(
            k.type_error("70000").as_deref(),
            Some("Invalid value 70000 for configuration x: Not a number of type SHORT")
        );
        assert!(k.type_error(" 7 ").is_none());
        assert_eq!(parse_boolean(" TRUE "), Some(true));
        assert_eq!(parse_boolean("yes"), None);
    }
}
