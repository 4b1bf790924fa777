//! Java `.properties` files and the `CONNECT_*` environment convention of the Confluent images.

use std::collections::BTreeMap;

/// Parses the text of a Java properties file (`key=value`, `key: value`, `key value`,
/// `#`/`!` comments, backslash line continuations and escapes).
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if logical.is_empty() && (trimmed.is_empty() || trimmed.starts_with(['#', '!'])) {
            continue;
        }
        let (content, continues) = strip_continuation(trimmed);
        logical.push_str(content);
        if continues {
            continue;
        }
        let (key, value) = split_key_value(&logical);
        out.insert(unescape(&key), unescape(&value));
        logical.clear();
    }
    if !logical.is_empty() {
        let (key, value) = split_key_value(&logical);
        out.insert(unescape(&key), unescape(&value));
    }
    out
}

/// Returns the line without a trailing unescaped backslash, and whether there was one.
fn strip_continuation(line: &str) -> (&str, bool) {
    let trailing = line.chars().rev().take_while(|c| *c == '\\').count();
    if trailing % 2 == 1 {
        (&line[..line.len() - 1], true)
    } else {
        (line, false)
    }
}

fn split_key_value(line: &str) -> (String, String) {
    let mut key = String::new();
    let mut chars = line.char_indices().peekable();
    let mut value_start = line.len();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                key.push(c);
                if let Some((_, n)) = chars.next() {
                    key.push(n);
                }
            }
            '=' | ':' => {
                value_start = i + 1;
                break;
            }
            c if c.is_whitespace() => {
                // Whitespace ends the key; an `=` or `:` may still follow.
                let rest = line[i..].trim_start();
                let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
                return (key, rest.trim_start().to_string());
            }
            c => key.push(c),
        }
    }
    (
        key,
        line[value_start.min(line.len())..].trim_start().to_string(),
    )
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Maps `CONNECT_*` environment variables to worker properties the way the Confluent
/// `cp-kafka-connect` image does: strip the prefix, lower-case, `___`→`-`, `__`→`_`, `_`→`.`.
pub fn connect_env_properties<I>(vars: I) -> BTreeMap<String, String>
where
    I: IntoIterator<Item = (String, String)>,
{
    let mut out = BTreeMap::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("CONNECT_") else {
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        out.insert(env_name_to_property(rest), value);
    }
    out
}

fn env_name_to_property(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let mut out = String::with_capacity(lower.len());
    let bytes = lower.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let run = bytes[i..].iter().take_while(|b| **b == b'_').count();
            match run {
                1 => out.push('.'),
                2 => out.push('_'),
                3 => out.push('-'),
                n => {
                    // Longer runs: consume greedily in units of three, then the rest.
                    let mut left = n;
                    while left >= 3 {
                        out.push('-');
                        left -= 3;
                    }
                    match left {
                        2 => out.push('_'),
                        1 => out.push('.'),
                        _ => {}
                    }
                }
            }
            i += run;
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_java_properties() {
        let text = "# comment\n! other\nbootstrap.servers=localhost:9092\nkey.converter : org.apache.kafka.connect.storage.StringConverter\nlisteners http://:8083\nlong=a,\\\n    b\nescaped=tab\\there\\u0041\nempty=\n";
        let p = parse_properties(text);
        assert_eq!(p["bootstrap.servers"], "localhost:9092");
        assert_eq!(
            p["key.converter"],
            "org.apache.kafka.connect.storage.StringConverter"
        );
        assert_eq!(p["listeners"], "http://:8083");
        assert_eq!(p["long"], "a,b");
        assert_eq!(p["escaped"], "tab\thereA");
        assert_eq!(p["empty"], "");
        assert_eq!(p.len(), 6);
    }

    #[test]
    fn maps_connect_env_vars_like_the_confluent_image() {
        let vars = vec![
            (
                "CONNECT_BOOTSTRAP_SERVERS".to_string(),
                "b:9092".to_string(),
            ),
            (
                "CONNECT_VALUE_CONVERTER_SCHEMA_REGISTRY_URL".to_string(),
                "http://sr".to_string(),
            ),
            ("CONNECT_A__B".to_string(), "x".to_string()),
            ("CONNECT_A___B".to_string(), "y".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let p = connect_env_properties(vars);
        assert_eq!(p["bootstrap.servers"], "b:9092");
        assert_eq!(p["value.converter.schema.registry.url"], "http://sr");
        assert_eq!(p["a_b"], "x");
        assert_eq!(p["a-b"], "y");
        assert_eq!(p.len(), 4);
    }
}
