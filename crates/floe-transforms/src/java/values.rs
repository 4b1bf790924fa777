//! Connect's `org.apache.kafka.connect.data.Values`: the text form of dates (`dateFormatFor`)
//! and `parseString`, which InsertHeader uses to type its literal.

use std::sync::Arc;

use floe_data::{logical, Schema, SchemaRef, SchemaType, Value};

use super::date_format::DateFormat;
use super::number::parse_big_decimal;

const DATE: &str = "yyyy-MM-dd";
const TIME: &str = "HH:mm:ss.SSS'Z'";
const TIMESTAMP: &str = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'";
const DAY_MS: i64 = 86_400_000;

/// `Values.dateFormatFor(date).format(date)`: a time within the first day, a date at midnight,
/// a timestamp otherwise.
pub fn date_text(millis: i64) -> String {
    let pattern = if millis < DAY_MS {
        TIME
    } else if millis % DAY_MS == 0 {
        DATE
    } else {
        TIMESTAMP
    };
    DateFormat::new(pattern)
        .map(|f| f.format(millis))
        .unwrap_or_default()
}

/// `Values.parseString(text)`: the schema and value a literal stands for; `(None, Null)` for
/// `null`. Numbers take the smallest integer type that holds them, fractions FLOAT32 (or
/// FLOAT64, else a decimal); `yyyy-MM-dd`, `HH:mm:ss.SSS'Z'` and their combination become Date,
/// Time and Timestamp; only the first token of a number or date counts (`12,5` is 12).
/// Arrays and maps stay strings (Java types them; no Floe sink reads header types).
pub fn parse_string(text: &str) -> (Option<SchemaRef>, Value) {
    let primitive = |t: SchemaType| Some(Arc::new(Schema::new(t)));
    match text {
        "" => return (primitive(SchemaType::String), Value::String(String::new())),
        "null" => return (None, Value::Null),
        "true" => return (primitive(SchemaType::Boolean), Value::Boolean(true)),
        "false" => return (primitive(SchemaType::Boolean), Value::Boolean(false)),
        _ => {}
    }
    let first = text.trim_start();
    if first.starts_with(|c: char| c.is_ascii_digit()) {
        if let Some(parsed) = temporal(first) {
            return parsed;
        }
    }
    if first.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '-') {
        let token: &str = first
            .split([':', ',', '{', '}', '[', ']', '"'])
            .next()
            .unwrap_or(first)
            .trim();
        if let Some(parsed) = number(token) {
            return parsed;
        }
    }
    (
        primitive(SchemaType::String),
        Value::String(text.to_string()),
    )
}

fn temporal(text: &str) -> Option<(Option<SchemaRef>, Value)> {
    let candidates = [
        (TIMESTAMP, 24, logical::TIMESTAMP, SchemaType::Int64),
        (TIME, 13, logical::TIME, SchemaType::Int32),
        (DATE, 10, logical::DATE, SchemaType::Int32),
    ];
    for (pattern, len, name, t) in candidates {
        if text.chars().count() < len {
            continue;
        }
        let head: String = text.chars().take(len).collect();
        let rest = &text[head.len()..];
        if !rest.is_empty() && !rest.starts_with([',', ']', '}', ' ']) {
            continue;
        }
        let Some(ms) = DateFormat::new(pattern).ok().and_then(|f| f.parse(&head)) else {
            continue;
        };
        let mut schema = Schema::new(t).named(name);
        schema.version = Some(1);
        let value = match name {
            logical::TIMESTAMP => Value::Timestamp(ms),
            logical::TIME => Value::Time(ms.rem_euclid(DAY_MS) as i32),
            _ => Value::Date(ms.div_euclid(DAY_MS) as i32),
        };
        return Some((Some(Arc::new(schema)), value));
    }
    None
}

fn number(token: &str) -> Option<(Option<SchemaRef>, Value)> {
    let (unscaled, scale) = parse_big_decimal(token)?;
    let primitive = |t: SchemaType| Some(Arc::new(Schema::new(t)));
    // Integral when no fraction remains (`1.0` and `1e3` are integers too).
    let integral = if scale <= 0 {
        10i128
            .checked_pow((-scale) as u32)
            .and_then(|p| unscaled.checked_mul(p))
    } else {
        let p = 10i128.checked_pow(scale as u32)?;
        (unscaled % p == 0).then_some(unscaled / p)
    };
    if let Some(n) = integral.and_then(|n| i64::try_from(n).ok()) {
        return Some(if let Ok(v) = i8::try_from(n) {
            (primitive(SchemaType::Int8), Value::Int8(v))
        } else if let Ok(v) = i16::try_from(n) {
            (primitive(SchemaType::Int16), Value::Int16(v))
        } else if let Ok(v) = i32::try_from(n) {
            (primitive(SchemaType::Int32), Value::Int32(v))
        } else {
            (primitive(SchemaType::Int64), Value::Int64(n))
        });
    }
    let as_f64: f64 = token.parse().ok()?;
    if scale != 0 && (as_f64 as f32).is_finite() {
        return Some((
            primitive(SchemaType::Float32),
            Value::Float32(as_f64 as f32),
        ));
    }
    if scale != 0 && as_f64.is_finite() {
        return Some((primitive(SchemaType::Float64), Value::Float64(as_f64)));
    }
    let scale = scale.max(0);
    Some((
        Some(Arc::new(Schema::decimal(scale))),
        Value::Decimal { unscaled, scale },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> (Option<SchemaType>, Value) {
        let (s, v) = parse_string(text);
        (s.map(|s| s.schema_type), v)
    }

    #[test]
    fn literals_are_typed_as_values_parse_string_types_them() {
        assert_eq!(kind("12,5"), (Some(SchemaType::Int8), Value::Int8(12)));
        assert_eq!(
            kind("hello"),
            (Some(SchemaType::String), Value::String("hello".into()))
        );
        assert_eq!(kind("null"), (None, Value::Null));
        assert_eq!(
            kind("true"),
            (Some(SchemaType::Boolean), Value::Boolean(true))
        );
        assert_eq!(
            kind("TRUE"),
            (Some(SchemaType::String), Value::String("TRUE".into()))
        );
        assert_eq!(kind("1000"), (Some(SchemaType::Int16), Value::Int16(1000)));
        assert_eq!(
            kind("2.75"),
            (Some(SchemaType::Float32), Value::Float32(2.75))
        );
        assert_eq!(kind("1e3"), (Some(SchemaType::Int16), Value::Int16(1000)));
        assert_eq!(kind("1.0"), (Some(SchemaType::Int8), Value::Int8(1)));
        assert_eq!(
            kind("9999999999"),
            (Some(SchemaType::Int64), Value::Int64(9_999_999_999))
        );
        assert_eq!(kind("-5"), (Some(SchemaType::Int8), Value::Int8(-5)));
        assert_eq!(kind("1:2"), (Some(SchemaType::Int8), Value::Int8(1)));
        assert_eq!(
            kind("2024-01-15"),
            (Some(SchemaType::Int32), Value::Date(19737))
        );
        assert_eq!(
            kind("2024-01-15T12:30:45.123Z"),
            (Some(SchemaType::Int64), Value::Timestamp(1_705_321_845_123))
        );
        assert_eq!(
            kind("12:30:45.123Z"),
            (Some(SchemaType::Int32), Value::Time(45_045_123))
        );
        assert_eq!(
            kind("abc def"),
            (Some(SchemaType::String), Value::String("abc def".into()))
        );
    }

    #[test]
    fn dates_print_as_values_prints_them() {
        assert_eq!(date_text(5000), "00:00:05.000Z");
        assert_eq!(date_text(2 * DAY_MS), "1970-01-03");
        assert_eq!(date_text(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
