//! Kafka client security with the Java client's keys, for librdkafka and for Floe's own
//! connections (`wire.rs`): `security.protocol`, `sasl.mechanism`, `sasl.jaas.config`,
//! `ssl.truststore.*`, `ssl.keystore.*`, `ssl.key.password`,
//! `ssl.endpoint.identification.algorithm`. Stores are read in PKCS12 and PEM (a JKS store is
//! an error naming the `keytool` conversion); an unsupported mechanism (GSSAPI, OAUTHBEARER,
//! AWS_MSK_IAM) is an error at startup, never a silent fallback. Nothing here logs a value.

use std::collections::BTreeMap;

use floe_tls::Material;

/// Why a security configuration cannot be used; names the key, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct SecurityError {
    pub key: String,
    pub reason: String,
}

fn error(key: &str, reason: impl Into<String>) -> SecurityError {
    SecurityError {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// The security protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl Protocol {
    pub fn tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }
    pub fn sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

/// The SASL mechanisms Floe speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Sasl {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Sasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A client's security settings, read from Java keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    pub protocol: Protocol,
    pub sasl: Option<Sasl>,
    pub tls: Option<Material>,
}

impl Security {
    /// Reads the security keys of `props` (a client's properties, prefixes removed).
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<Security, SecurityError> {
        let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let protocol = match get("security.protocol").map(str::to_ascii_uppercase).as_deref() {
            None | Some("PLAINTEXT") => Protocol::Plaintext,
            Some("SSL") => Protocol::Ssl,
            Some("SASL_PLAINTEXT") => Protocol::SaslPlaintext,
            Some("SASL_SSL") => Protocol::SaslSsl,
            Some(other) => {
                return Err(error(
                    "security.protocol",
                    format!("unknown security protocol {other} (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)"),
                ))
            }
        };
        let sasl = if protocol.sasl() {
            Some(sasl(props)?)
        } else {
            None
        };
        let tls = if protocol.tls() {
            Some(tls(props)?)
        } else {
            None
        };
        Ok(Security {
            protocol,
            sasl,
            tls,
        })
    }

    /// The librdkafka properties that say the same (to replace the Java ones).
    pub fn librdkafka(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let protocol = match self.protocol {
            Protocol::Plaintext => "plaintext",
            Protocol::Ssl => "ssl",
            Protocol::SaslPlaintext => "sasl_plaintext",
            Protocol::SaslSsl => "sasl_ssl",
        };
        out.insert("security.protocol".into(), protocol.into());
        if let Some(s) = &self.sasl {
            out.insert("sasl.mechanisms".into(), s.mechanism.name().into());
            out.insert("sasl.username".into(), s.username.clone());
            out.insert("sasl.password".into(), s.password.clone());
        }
        if let Some(t) = &self.tls {
            if let Some(ca) = &t.ca_pem {
                out.insert("ssl.ca.pem".into(), ca.clone());
            }
            if let (Some(cert), Some(key)) = (&t.chain_pem, &t.key_pem) {
                out.insert("ssl.certificate.pem".into(), cert.clone());
                out.insert("ssl.key.pem".into(), key.clone());
            }
            out.insert(
                "ssl.endpoint.identification.algorithm".into(),
                if t.verify_hostname { "https" } else { "none" }.into(),
            );
        }
        out
    }
}

/// The Java keys this module reads (they are replaced by librdkafka's).
pub fn is_security_key(key: &str) -> bool {
    key == "security.protocol" || key.starts_with("sasl.") || key.starts_with("ssl.")
}

fn sasl(props: &BTreeMap<String, String>) -> Result<Sasl, SecurityError> {
    let mechanism_name = props
        .get("sasl.mechanism")
        .map(|m| m.trim().to_ascii_uppercase())
        .unwrap_or_else(|| "GSSAPI".into());
    let mechanism = match mechanism_name.as_str() {
        "PLAIN" => Mechanism::Plain,
        "SCRAM-SHA-256" => Mechanism::ScramSha256,
        "SCRAM-SHA-512" => Mechanism::ScramSha512,
        "GSSAPI" => {
            return Err(error(
                "sasl.mechanism",
                "GSSAPI (Kerberos, Java's default when sasl.mechanism is unset) is not supported by Floe; use PLAIN or SCRAM-SHA-256/512",
            ))
        }
        other => {
            return Err(error(
                "sasl.mechanism",
                format!("{other} is not supported by Floe (OAUTHBEARER, AWS_MSK_IAM and other mechanisms need login modules Floe does not have); use PLAIN or SCRAM-SHA-256/512"),
            ))
        }
    };
    for class_key in [
        "sasl.client.callback.handler.class",
        "sasl.login.callback.handler.class",
        "sasl.login.class",
    ] {
        if props.get(class_key).is_some_and(|v| !v.trim().is_empty()) {
            return Err(error(
                class_key,
                "Java login and callback classes cannot be loaded by Floe; PLAIN and SCRAM need only sasl.jaas.config",
            ));
        }
    }
    let jaas = props.get("sasl.jaas.config").ok_or_else(|| {
        error(
            "sasl.jaas.config",
            "missing: SASL needs the login module with a username and a password",
        )
    })?;
    let (module, options) = parse_jaas(jaas)?;
    let expected = match mechanism {
        Mechanism::Plain => "org.apache.kafka.common.security.plain.PlainLoginModule",
        _ => "org.apache.kafka.common.security.scram.ScramLoginModule",
    };
    if module != expected {
        return Err(error(
            "sasl.jaas.config",
            format!("{mechanism_name} needs {expected}, not {module}"),
        ));
    }
    let option = |name: &str| {
        options
            .get(name)
            .cloned()
            .ok_or_else(|| error("sasl.jaas.config", format!("{module} has no {name} option")))
    };
    Ok(Sasl {
        mechanism,
        username: option("username")?,
        password: option("password")?,
    })
}

/// Parses a JAAS configuration entry: `<LoginModule class> <flag> key="value" …;`.
pub fn parse_jaas(text: &str) -> Result<(String, BTreeMap<String, String>), SecurityError> {
    let bad = |why: &str| error("sasl.jaas.config", format!("cannot read it: {why}"));
    let text = text.trim().trim_end_matches(';').trim();
    let mut rest = text;
    let module_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let module = rest[..module_end].to_string();
    rest = rest[module_end..].trim_start();
    let flag_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let flag = &rest[..flag_end];
    if !matches!(flag, "required" | "requisite" | "sufficient" | "optional") {
        return Err(bad(
            "expected a control flag (required) after the login module",
        ));
    }
    rest = rest[flag_end..].trim_start();
    let mut options = BTreeMap::new();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| bad("expected key=value"))?;
        let key = rest[..eq].trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            out.push(next);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => out.push(c),
                }
            }
            let end = end.ok_or_else(|| bad("an unterminated quoted value"))?;
            value = out;
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value = rest[..end].to_string();
            rest = rest[end..].trim_start();
        }
        options.insert(key, value);
    }
    Ok((module, options))
}

fn tls(props: &BTreeMap<String, String>) -> Result<Material, SecurityError> {
    let material = Material::from_java(props, "").map_err(|e| error(&e.key, e.reason))?;
    if material.tls13_only {
        return Err(error(
            "ssl.enabled.protocols",
            "the Kafka client cannot be limited to TLSv1.3; use TLSv1.2,TLSv1.3",
        ));
    }
    if material.client_auth != floe_tls::ClientAuth::None {
        return Err(error(
            "ssl.client.auth",
            "is a broker setting, not a client one",
        ));
    }
    Ok(material)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn jaas_configs_are_read_as_java_reads_them() {
        let (module, options) = parse_jaas(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="floe" password="p\"w d";"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            module,
            "org.apache.kafka.common.security.scram.ScramLoginModule"
        );
        assert_eq!(options["username"], "floe");
        assert_eq!(options["password"], "p\"w d");
        assert!(parse_jaas("org.x.Module username=\"a\";").is_err());
    }

    #[test]
    fn sasl_settings_become_librdkafkas() {
        let s = Security::from_props(&props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.jaas.config", r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p";"#),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        let r = s.librdkafka();
        assert_eq!(r["security.protocol"], "sasl_plaintext");
        assert_eq!(r["sasl.mechanisms"], "SCRAM-SHA-512");
        assert_eq!(
            (r["sasl.username"].as_str(), r["sasl.password"].as_str()),
            ("u", "p")
        );
        assert!(!format!("{s:?}").contains("\"p\""), "{s:?}");
    }

    #[test]
    fn unsupported_mechanisms_are_errors_not_fallbacks() {
        for (mechanism, word) in [
            (None, "GSSAPI"),
            (Some("AWS_MSK_IAM"), "AWS_MSK_IAM"),
            (Some("OAUTHBEARER"), "OAUTHBEARER"),
        ] {
            let mut p = props(&[("security.protocol", "SASL_SSL")]);
            if let Some(m) = mechanism {
                p.insert("sasl.mechanism".into(), m.into());
            }
            let e = Security::from_props(&p)
                .err()
                .unwrap_or_else(|| panic!("{word} accepted"));
            assert_eq!(e.key, "sasl.mechanism");
            assert!(e.reason.contains(word), "{e}");
        }
        let e = Security::from_props(&props(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.jaas.config", r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p";"#),
        ]))
        .err();
        assert!(e.is_some_and(|e| e.reason.contains("PlainLoginModule")));
    }

    #[test]
    fn plaintext_needs_nothing_and_hostname_checks_follow_the_algorithm() {
        let s = Security::from_props(&props(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.protocol, Protocol::Plaintext);
        let s = Security::from_props(&props(&[
            ("security.protocol", "SSL"),
            ("ssl.truststore.type", "PEM"),
            (
                "ssl.truststore.certificates",
                "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----",
            ),
            ("ssl.endpoint.identification.algorithm", ""),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        let tls = s.tls.unwrap_or_default();
        assert!(!tls.verify_hostname && tls.ca_pem.is_some());
        let r = Security::from_props(&props(&[
            ("security.protocol", "SSL"),
            ("ssl.endpoint.identification.algorithm", ""),
        ]))
        .map(|s| s.librdkafka())
        .unwrap_or_default();
        assert_eq!(r["ssl.endpoint.identification.algorithm"], "none");
    }
}
