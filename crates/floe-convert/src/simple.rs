use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use floe_data::{Schema, SchemaRef, SchemaType, Value};

use crate::{ConfigError, ConvertError, Converter, SchemaAndValue};

pub(crate) const STRING_CLASS: &str = "org.apache.kafka.connect.storage.StringConverter";
pub(crate) const BYTE_ARRAY_CLASS: &str = "org.apache.kafka.connect.converters.ByteArrayConverter";

static OPTIONAL_STRING: LazyLock<SchemaRef> =
    LazyLock::new(|| Arc::new(Schema::new(SchemaType::String).optional()));
static OPTIONAL_BYTES: LazyLock<SchemaRef> =
    LazyLock::new(|| Arc::new(Schema::new(SchemaType::Bytes).optional()));

/// `org.apache.kafka.connect.storage.StringConverter`: UTF-8 text as an optional string.
#[derive(Debug, Default)]
pub struct StringConverter;

impl StringConverter {
    /// Accepts `converter.encoding`; only UTF-8 is supported.
    pub fn configure(props: &BTreeMap<String, String>) -> Result<StringConverter, ConfigError> {
        for key in ["converter.encoding", "encoding"] {
            if let Some(enc) = props.get(key) {
                let normalized = enc.to_ascii_uppercase().replace('-', "");
                if normalized != "UTF8" {
                    return Err(ConfigError::InvalidValue {
                        key: key.to_string(),
                        value: enc.clone(),
                        reason: "only UTF-8 is supported".to_string(),
                    });
                }
            }
        }
        Ok(StringConverter)
    }
}

impl Converter for StringConverter {
    fn to_connect(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<SchemaAndValue, ConvertError> {
        let value = match bytes {
            None => Value::Null,
            Some(b) => Value::String(
                String::from_utf8(b.to_vec())
                    .map_err(|e| ConvertError::Serialization(format!("invalid UTF-8: {e}")))?,
            ),
        };
        Ok(SchemaAndValue {
            schema: Some(OPTIONAL_STRING.clone()),
            value,
        })
    }

    fn class_name(&self) -> &'static str {
        STRING_CLASS
    }
}

/// `org.apache.kafka.connect.converters.ByteArrayConverter`: bytes passed through.
#[derive(Debug, Default)]
pub struct ByteArrayConverter;

impl Converter for ByteArrayConverter {
    fn to_connect(
        &self,
        _topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<SchemaAndValue, ConvertError> {
        Ok(SchemaAndValue {
            schema: Some(OPTIONAL_BYTES.clone()),
            value: bytes.map_or(Value::Null, |b| Value::Bytes(b.to_vec())),
        })
    }

    fn class_name(&self) -> &'static str {
        BYTE_ARRAY_CLASS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_converter_reads_utf8_and_nulls() {
        let c = StringConverter;
        assert_eq!(
            c.to_connect("t", Some(b"k1")).unwrap().value,
            Value::String("k1".into())
        );
        assert_eq!(c.to_connect("t", None).unwrap().value, Value::Null);
        assert!(c.to_connect("t", Some(&[0xff, 0xfe])).is_err());
    }

    #[test]
    fn string_converter_rejects_other_encodings() {
        let props = BTreeMap::from([("converter.encoding".to_string(), "latin1".to_string())]);
        assert!(StringConverter::configure(&props).is_err());
    }
}
