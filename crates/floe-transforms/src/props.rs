//! A transform's own properties (its `transforms.<alias>.` keys, prefix removed), read with the
//! parsing rules of Java's `ConfigDef`, and the key declarations validation reports.

use std::collections::BTreeMap;

use floe_data::config::{parse_boolean, parse_list, ConfigKey};

use crate::ConfigError;

/// The properties of one transform or predicate, prefix removed.
#[derive(Debug, Clone, Default)]
pub struct Props(BTreeMap<String, String>);

impl Props {
    /// Properties from key/value pairs.
    pub fn new(map: BTreeMap<String, String>) -> Props {
        Props(map)
    }

    /// The raw value of `name`.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A STRING value, trimmed as `ConfigDef` trims it; `default` when unset.
    pub fn string(&self, name: &str, default: Option<&str>) -> Option<String> {
        self.raw(name).or(default).map(|v| v.trim().to_string())
    }

    /// A required STRING value.
    pub fn required_string(&self, name: &str) -> Result<String, ConfigError> {
        self.string(name, None).ok_or_else(|| missing(name))
    }

    /// A LIST value (empty when unset and `default` is empty).
    pub fn list(&self, name: &str) -> Vec<String> {
        self.raw(name).map(parse_list).unwrap_or_default()
    }

    /// A BOOLEAN value.
    pub fn boolean(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.raw(name) {
            None => Ok(default),
            Some(v) => parse_boolean(v).ok_or_else(|| {
                ConfigError(format!(
                    "Invalid value {v} for configuration {name}: Expected value to be either true or false"
                ))
            }),
        }
    }

    /// An INT value, None when unset.
    pub fn int(&self, name: &str) -> Result<Option<i32>, ConfigError> {
        match self.raw(name) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i32>().map(Some).map_err(|_| {
                ConfigError(format!(
                    "Invalid value {v} for configuration {name}: Not a number of type INT"
                ))
            }),
        }
    }

    /// `replace.null.with.default` (KIP-1040), true unless set otherwise.
    pub fn replace_null_with_default(&self) -> Result<bool, ConfigError> {
        self.boolean(REPLACE_NULL_WITH_DEFAULT, true)
    }
}

/// Java's message for a required key that is not set.
pub fn missing(name: &str) -> ConfigError {
    ConfigError(format!(
        "Missing required configuration \"{name}\" which has no default value."
    ))
}

/// The KIP-1040 key many transforms share.
pub const REPLACE_NULL_WITH_DEFAULT: &str = "replace.null.with.default";
/// Its documentation, identical everywhere.
pub const REPLACE_NULL_WITH_DEFAULT_DOC: &str = "Whether to replace fields that have a default value and that are null to the default value. When set to true, the default value is used, otherwise null is used.";

/// What a key's validator checks (Java's `ConfigDef.Validator`s); run by validation on the raw
/// value, `None` when the key is unset.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// `NonEmptyListValidator`.
    NonEmptyList,
    /// `ConfigDef.NonNullValidator`.
    NonNull,
    /// `ConfigDef.NonEmptyString`.
    NonEmptyString,
    /// `ConfigDef.ValidString.in(...)`, case-sensitive.
    OneOf(&'static [&'static str]),
    /// `ConfigDef.CaseInsensitiveValidString.in(...)`.
    OneOfIgnoringCase(&'static [&'static str]),
    /// A valid regular expression.
    Regex,
    /// A non-empty string that is a valid regular expression.
    NonEmptyRegex,
    /// A check of the transform's own.
    Custom(fn(name: &str, value: Option<&str>) -> Option<String>),
}

impl Check {
    /// The validator's message for `value` of key `name` (un-prefixed, as Java's embedded
    /// validators see it), if it is not valid.
    pub fn message(&self, name: &str, value: Option<&str>) -> Option<String> {
        let invalid = |shown: &str, why: String| {
            Some(format!(
                "Invalid value {shown} for configuration {name}: {why}"
            ))
        };
        match *self {
            Check::NonEmptyList => {
                let items = value.map(parse_list);
                match items {
                    None => invalid("null", "Empty list".into()),
                    Some(items) if items.is_empty() => invalid("[]", "Empty list".into()),
                    Some(_) => None,
                }
            }
            Check::NonNull => match value {
                None => invalid("null", "entry must be non null".into()),
                Some(_) => None,
            },
            Check::NonEmptyString => match value.map(str::trim) {
                Some("") => invalid("", "String must be non-empty".into()),
                _ => None,
            },
            Check::OneOf(allowed) => {
                let v = value.map(str::trim);
                if v.is_some_and(|v| allowed.contains(&v)) {
                    None
                } else {
                    invalid(
                        v.unwrap_or("null"),
                        format!("String must be one of: {}", allowed.join(", ")),
                    )
                }
            }
            Check::OneOfIgnoringCase(allowed) => {
                let v = value.map(str::trim);
                if v.is_some_and(|v| allowed.iter().any(|a| a.eq_ignore_ascii_case(v))) {
                    None
                } else {
                    invalid(
                        v.unwrap_or("null"),
                        format!(
                            "String must be one of (case insensitive): {}",
                            allowed.join(", ")
                        ),
                    )
                }
            }
            Check::Regex => regex_message(name, value),
            Check::NonEmptyRegex => match value.map(str::trim) {
                Some("") => invalid("", "String must be non-empty".into()),
                _ => regex_message(name, value),
            },
            Check::Custom(check) => check(name, value),
        }
    }
}

fn regex_message(name: &str, value: Option<&str>) -> Option<String> {
    match value.map(str::trim) {
        None => Some(format!(
            "Invalid value null for configuration {name}: Invalid regex: the pattern is null"
        )),
        Some(v) => crate::java::regex::compile(v)
            .err()
            .map(|e| format!("Invalid value {v} for configuration {name}: Invalid regex: {e}")),
    }
}

/// One key of a transform or predicate: its definition, and its validator if it has one.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub key: ConfigKey,
    pub check: Option<Check>,
}

impl KeySpec {
    /// A key without a validator.
    pub fn new(key: ConfigKey) -> KeySpec {
        KeySpec { key, check: None }
    }

    /// A key with a validator.
    pub fn checked(key: ConfigKey, check: Check) -> KeySpec {
        KeySpec {
            key,
            check: Some(check),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validator_messages_are_javas() {
        assert_eq!(
            Check::NonEmptyList.message("fields", None).as_deref(),
            Some("Invalid value null for configuration fields: Empty list")
        );
        assert_eq!(
            Check::NonEmptyList.message("fields", Some(" ")).as_deref(),
            Some("Invalid value [] for configuration fields: Empty list")
        );
        assert_eq!(
            Check::OneOf(&["move", "copy"])
                .message("operation", None)
                .as_deref(),
            Some(
                "Invalid value null for configuration operation: String must be one of: move, copy"
            )
        );
        assert!(Check::OneOfIgnoringCase(&["V1", "V2"])
            .message("field.syntax.version", Some("v2"))
            .is_none());
        assert_eq!(
            Check::NonEmptyString
                .message("replacement", Some(" "))
                .as_deref(),
            Some("Invalid value  for configuration replacement: String must be non-empty")
        );
        assert!(Check::Regex.message("regex", Some("(")).is_some());
        assert!(Check::Regex.message("regex", Some("a.*")).is_none());
    }

    #[test]
    fn props_parse_as_config_def() {
        let p = Props::new(BTreeMap::from([
            ("d".to_string(), " _ ".to_string()),
            ("l".to_string(), "a, b,".to_string()),
            ("b".to_string(), "TRUE".to_string()),
            ("i".to_string(), "x".to_string()),
        ]));
        assert_eq!(p.string("d", Some(".")).as_deref(), Some("_"));
        assert_eq!(p.string("missing", Some(".")).as_deref(), Some("."));
        assert_eq!(p.list("l"), vec!["a", "b", ""]);
        assert!(p.boolean("b", false).unwrap_or(false));
        assert!(p.int("i").is_err());
        assert_eq!(
            p.required_string("nope").err().map(|e| e.0).as_deref(),
            Some("Missing required configuration \"nope\" which has no default value.")
        );
    }
}
