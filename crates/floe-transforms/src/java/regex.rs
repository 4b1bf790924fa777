//! Java regular expressions (`Pattern.matches`, `Matcher.replaceFirst`) on the `regex` crate.
//! The common syntax is the same; constructs the crate lacks (look-around, back-references,
//! possessive quantifiers) are refused when the config is checked, never mis-applied.

use regex::Regex;

/// A pattern that must match a whole string, as `Matcher.matches()` requires.
#[derive(Debug, Clone)]
pub struct FullMatch {
    regex: Regex,
    groups: usize,
}

/// Checks a Java pattern; the message says why it cannot be used.
pub fn compile(pattern: &str) -> Result<FullMatch, String> {
    let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| match e {
        regex::Error::Syntax(s) => s
            .lines()
            .last()
            .unwrap_or("invalid pattern")
            .trim()
            .to_string(),
        other => other.to_string(),
    })?;
    let groups = regex.captures_len() - 1;
    Ok(FullMatch { regex, groups })
}

impl FullMatch {
    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// `text` with the whole match replaced by `replacement` (a Java replacement string: `$n`,
    /// `${name}`, `\` escapes), or None when `text` does not match. Errors are Java's (a group
    /// that does not exist, a lone `$`).
    pub fn replace(&self, text: &str, replacement: &str) -> Option<Result<String, String>> {
        let caps = self.regex.captures(text)?;
        Some(self.expand(&caps, replacement))
    }

    fn expand(&self, caps: &regex::Captures<'_>, replacement: &str) -> Result<String, String> {
        let mut out = String::new();
        let chars: Vec<char> = replacement.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '\\' => {
                    i += 1;
                    match chars.get(i) {
                        Some(c) => out.push(*c),
                        None => return Err("character to be escaped is missing".into()),
                    }
                    i += 1;
                }
                '$' => {
                    i += 1;
                    match chars.get(i) {
                        Some('{') => {
                            let end = chars[i..]
                                .iter()
                                .position(|c| *c == '}')
                                .ok_or("named capturing group is missing trailing '}'")?;
                            let name: String = chars[i + 1..i + end].iter().collect();
                            let value = caps
                                .name(&name)
                                .ok_or_else(|| format!("No group with name {{{name}}}"))?;
                            out.push_str(value.as_str());
                            i += end + 1;
                        }
                        Some(c) if c.is_ascii_digit() => {
                            // Java takes more digits only while the group number exists.
                            let mut group = c.to_digit(10).unwrap_or(0) as usize;
                            i += 1;
                            while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                                let longer = group * 10 + d as usize;
                                if longer > self.groups {
                                    break;
                                }
                                group = longer;
                                i += 1;
                            }
                            if group > self.groups {
                                return Err(format!("No group {group}"));
                            }
                            out.push_str(caps.get(group).map(|m| m.as_str()).unwrap_or(""));
                        }
                        _ => return Err("Illegal group reference".into()),
                    }
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_topic_must_match() {
        let r = compile("(.*)pic").unwrap_or_else(|e| panic!("{e}"));
        assert!(r.matches("topic"));
        assert!(!compile("top").map(|r| r.matches("topic")).unwrap_or(true));
        assert_eq!(r.replace("topic", "$1-x"), Some(Ok("to-x".into())));
        assert_eq!(
            compile("top").ok().and_then(|r| r.replace("topic", "x")),
            None
        );
    }

    #[test]
    fn java_replacement_syntax() {
        let r = compile("(?P<a>[a-z]+)-([0-9]+)").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.replace("ab-12", "${a}_$2"), Some(Ok("ab_12".into())));
        // `$21` is group 2 then a literal 1: there is no group 21.
        assert_eq!(r.replace("ab-12", "$21"), Some(Ok("121".into())));
        assert_eq!(r.replace("ab-12", "\\$1"), Some(Ok("$1".into())));
        assert_eq!(r.replace("ab-12", "$3"), Some(Err("No group 3".into())));
        assert!(matches!(r.replace("ab-12", "$x"), Some(Err(_))));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(compile("(").is_err());
        assert!(compile("(?<=a)b").is_err());
    }
}
