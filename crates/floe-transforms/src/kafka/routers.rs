//! The topic routers: `RegexRouter` and `TimestampRouter`. The record keeps the partition and
//! offset it was read at (`SinkRecord::original_topic`), whatever its new topic.

use floe_data::config::{ConfigKey, ConfigType, Importance};
use floe_data::SinkRecord;

use crate::java::date_format::DateFormat;
use crate::java::regex::{compile, FullMatch};
use crate::props::{Check, KeySpec, Props};
use crate::{ConfigError, TransformError, Transformation};

/// Gives a record a new topic, remembering the one it was read from.
pub fn reroute(record: &mut SinkRecord, topic: String) {
    if topic == record.topic {
        return;
    }
    let old = std::mem::replace(&mut record.topic, topic);
    if record.original_topic.is_none() {
        record.original_topic = Some(old);
    }
}

/// RegexRouter's keys.
pub fn regex_router_keys() -> Vec<KeySpec> {
    vec![
        KeySpec::checked(
            ConfigKey::required(
                "regex",
                ConfigType::String,
                Importance::High,
                "Regular expression to use for matching.",
            ),
            Check::Regex,
        ),
        KeySpec::new(ConfigKey::required(
            "replacement",
            ConfigType::String,
            Importance::High,
            "Replacement string.",
        )),
    ]
}

/// `RegexRouter`: a topic the whole regex matches becomes the replacement.
pub struct RegexRouter {
    regex: FullMatch,
    replacement: String,
}

impl RegexRouter {
    pub fn new(props: &Props) -> Result<RegexRouter, ConfigError> {
        let pattern = props.required_string("regex")?;
        let regex = compile(&pattern).map_err(|e| {
            ConfigError(format!(
                "Invalid value {pattern} for configuration regex: Invalid regex: {e}"
            ))
        })?;
        Ok(RegexRouter {
            regex,
            replacement: props.required_string("replacement")?,
        })
    }
}

impl Transformation for RegexRouter {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        if let Some(topic) = self.regex.replace(&record.topic, &self.replacement) {
            let topic = topic.map_err(|e| TransformError {
                exception_class: if e.starts_with("No group ") && !e.contains('{') {
                    "java.lang.IndexOutOfBoundsException"
                } else {
                    "java.lang.IllegalArgumentException"
                },
                message: e,
            })?;
            reroute(&mut record, topic);
        }
        Ok(Some(record))
    }
}

/// TimestampRouter's keys.
pub fn timestamp_router_keys() -> Vec<KeySpec> {
    vec![
        KeySpec::new(ConfigKey::optional("topic.format", ConfigType::String, "${topic}-${timestamp}", Importance::High, "Format string which can contain <code>${topic}</code> and <code>${timestamp}</code> as placeholders for the topic and timestamp, respectively.")),
        KeySpec::new(ConfigKey::optional("timestamp.format", ConfigType::String, "yyyyMMdd", Importance::High, "Format string for the timestamp that is compatible with <code>java.text.SimpleDateFormat</code>.")),
    ]
}

/// `TimestampRouter`: the topic becomes `topic.format` with the topic and the record's
/// timestamp (UTC) filled in.
pub struct TimestampRouter {
    topic_format: String,
    /// Java creates the format on first use, so a bad pattern fails the first record.
    timestamp_format: Result<DateFormat, String>,
}

impl TimestampRouter {
    pub fn new(props: &Props) -> Result<TimestampRouter, ConfigError> {
        let pattern = props
            .string("timestamp.format", Some("yyyyMMdd"))
            .unwrap_or_default();
        Ok(TimestampRouter {
            topic_format: props
                .string("topic.format", Some("${topic}-${timestamp}"))
                .unwrap_or_default(),
            timestamp_format: DateFormat::new(&pattern),
        })
    }
}

impl Transformation for TimestampRouter {
    fn apply(&self, mut record: SinkRecord) -> Result<Option<SinkRecord>, TransformError> {
        let format = self
            .timestamp_format
            .as_ref()
            .map_err(|e| TransformError::illegal_argument(e.clone()))?;
        let Some(ts) = record.timestamp else {
            return Err(TransformError::data(format!(
                "Timestamp missing on record: SinkRecord{{kafkaOffset={}, timestampType=NoTimestampType}} ConnectRecord{{topic='{}', kafkaPartition={}}}",
                record.offset, record.topic, record.partition
            )));
        };
        let topic = self
            .topic_format
            .replace("${topic}", &record.topic)
            .replace("${timestamp}", &format.format(ts));
        reroute(&mut record, topic);
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn props(pairs: &[(&str, &str)]) -> Props {
        Props::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    #[test]
    fn regex_router_renames_whole_matches_only() {
        let t = RegexRouter::new(&props(&[("regex", "(.*)pic"), ("replacement", "$1-x")]))
            .unwrap_or_else(|e| panic!("{e}"));
        let r = t
            .apply(SinkRecord::new("topic", 3, 9, None))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        assert_eq!(
            (r.topic.as_str(), r.source_topic(), r.partition),
            ("to-x", "topic", 3)
        );
        let t = RegexRouter::new(&props(&[("regex", "top"), ("replacement", "x")]))
            .unwrap_or_else(|e| panic!("{e}"));
        let r = t
            .apply(SinkRecord::new("topic", 0, 0, None))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        assert_eq!((r.topic.as_str(), r.original_topic), ("topic", None));
        let t = RegexRouter::new(&props(&[("regex", "(.*)"), ("replacement", "$2")]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.apply(SinkRecord::new("t", 0, 0, None))
                .err()
                .map(|e| e.message),
            Some("No group 2".into())
        );
    }

    #[test]
    fn timestamp_router_formats_in_utc() {
        let t = TimestampRouter::new(&props(&[
            ("topic.format", "${topic}_${timestamp}_${topic}"),
            ("timestamp.format", "YYYY-ww HH"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        let r = t
            .apply(SinkRecord::new("topic", 0, 0, Some(1_700_000_000_000)))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        assert_eq!(r.topic, "topic_2023-46 22_topic");
        let t = TimestampRouter::new(&props(&[])).unwrap_or_else(|e| panic!("{e}"));
        let r = t
            .apply(SinkRecord::new("events", 0, 0, Some(1_700_000_000_000)))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("record"));
        assert_eq!(r.topic, "events-20231114");
        assert!(t.apply(SinkRecord::new("events", 0, 0, None)).is_err());
    }
}
