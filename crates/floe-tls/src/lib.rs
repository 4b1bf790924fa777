//! TLS for Floe's connections, configured with Java's `ssl.*` keys: Kafka clients, the REST
//! API's HTTPS listener and the calls between workers, the Schema Registry and the catalogs.
//!
//! [`Material::from_java`] reads the keys under a prefix (`""`, `listeners.https.`,
//! `schema.registry.`) into PEM text; [`Material::client_config`] and
//! [`Material::server_config`] build rustls configurations from it. Nothing here formats a
//! password or a key into an error or a `Debug` output.

use std::collections::BTreeMap;
use std::sync::Arc;

pub mod stores;
mod verify;

/// Why TLS settings cannot be used: the key at fault and the reason, never a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct TlsError {
    pub key: String,
    pub reason: String,
}

impl TlsError {
    pub fn new(key: &str, reason: impl Into<String>) -> TlsError {
        TlsError {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

/// Whether a server asks its clients for certificates (`ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    #[default]
    None,
    Requested,
    Required,
}

/// TLS material and choices, read from Java keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Material {
    /// Trusted CA certificates (PEM); None: the system's.
    pub ca_pem: Option<String>,
    /// The own certificate chain and unencrypted PKCS#8 key (PEM), for mutual TLS or serving.
    pub chain_pem: Option<String>,
    pub key_pem: Option<String>,
    /// Whether a server's name is checked against its certificate
    /// (`ssl.endpoint.identification.algorithm=https`, Java's default).
    pub verify_hostname: bool,
    pub client_auth: ClientAuth,
    /// Only TLS 1.3 (`ssl.enabled.protocols=TLSv1.3`).
    pub tls13_only: bool,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("custom_ca", &self.ca_pem.is_some())
            .field("own_certificate", &self.chain_pem.is_some())
            .field("verify_hostname", &self.verify_hostname)
            .field("client_auth", &self.client_auth)
            .field("tls13_only", &self.tls13_only)
            .finish()
    }
}

/// Java SSL keys that choose a JVM implementation of the same thing (a key manager factory,
/// a random generator, a security provider); Floe's TLS does the same with its own, so they
/// are accepted and have no effect.
pub const JVM_IMPLEMENTATION_KEYS: &[&str] = &[
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation",
    "ssl.provider",
];

/// Every Java SSL key Floe reads (without prefix).
pub const SSL_KEYS: &[&str] = &[
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.type",
    "ssl.truststore.certificates",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.keystore.type",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "ssl.client.auth",
    "ssl.protocol",
    "ssl.enabled.protocols",
    "ssl.cipher.suites",
    "ssl.engine.factory.class",
];

/// The JVM-wide stores a Java worker is given through `KAFKA_OPTS`
/// (`-Djavax.net.ssl.trustStore=…`, `trustStorePassword`, `trustStoreType`, `keyStore`,
/// `keyStorePassword`, `keyStoreType`), as `ssl.*` keys; empty when none is given. Java's
/// HTTP clients (the REST catalog's, the registry's) use them when nothing more specific is
/// configured, and so does Floe.
pub fn jvm_default_keys(kafka_opts: Option<&str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for arg in kafka_opts.unwrap_or("").split_whitespace() {
        let Some((name, value)) = arg
            .strip_prefix("-Djavax.net.ssl.")
            .and_then(|a| a.split_once('='))
        else {
            continue;
        };
        let key = match name {
            "trustStore" => "ssl.truststore.location",
            "trustStorePassword" => "ssl.truststore.password",
            "trustStoreType" => "ssl.truststore.type",
            "keyStore" => "ssl.keystore.location",
            "keyStorePassword" => "ssl.keystore.password",
            "keyStoreType" => "ssl.keystore.type",
            _ => continue,
        };
        out.insert(key.to_string(), value.trim_matches('"').to_string());
    }
    out
}

/// Whether `key` (without prefix) is a Java SSL key.
pub fn is_ssl_key(key: &str) -> bool {
    key.starts_with("ssl.")
}

impl Material {
    /// Reads the `ssl.*` keys found under `prefix` in `props`.
    pub fn from_java(props: &BTreeMap<String, String>, prefix: &str) -> Result<Material, TlsError> {
        let name = |k: &str| format!("{prefix}{k}");
        let get = |k: &str| {
            props
                .get(&name(k))
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        for key in props.keys().filter_map(|k| k.strip_prefix(prefix)) {
            if key.starts_with("ssl.")
                && !SSL_KEYS.contains(&key)
                && !JVM_IMPLEMENTATION_KEYS.contains(&key)
            {
                return Err(TlsError::new(&name(key), "unknown SSL setting"));
            }
        }
        if get("ssl.engine.factory.class").is_some() {
            return Err(TlsError::new(
                &name("ssl.engine.factory.class"),
                "a Java SSL engine factory cannot be loaded by Floe; configure the stores with ssl.truststore.* and ssl.keystore.*",
            ));
        }
        if get("ssl.cipher.suites").is_some() {
            return Err(TlsError::new(
                &name("ssl.cipher.suites"),
                "choosing cipher suites is not supported; Floe offers the TLS 1.2 and 1.3 suites considered safe",
            ));
        }
        let tls13_only =
            check_protocols(get("ssl.protocol"), get("ssl.enabled.protocols"), prefix)?;
        for store in ["ssl.truststore.type", "ssl.keystore.type"] {
            if let Some(t) = get(store) {
                if !matches!(t.to_ascii_uppercase().as_str(), "JKS" | "PKCS12" | "PEM") {
                    return Err(TlsError::new(
                        &name(store),
                        format!("store type {t} is not supported (JKS, PKCS12 or PEM)"),
                    ));
                }
            }
        }
        let verify_hostname = match props.get(&name("ssl.endpoint.identification.algorithm")) {
            None => true,
            Some(v) if v.trim().is_empty() => false,
            Some(v) if v.trim().eq_ignore_ascii_case("https") => true,
            Some(v) => {
                return Err(TlsError::new(
                    &name("ssl.endpoint.identification.algorithm"),
                    format!(
                        "{} is not an algorithm (https, or empty to skip the check)",
                        v.trim()
                    ),
                ))
            }
        };
        let client_auth = match get("ssl.client.auth")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("none") => ClientAuth::None,
            Some("requested") => ClientAuth::Requested,
            Some("required") => ClientAuth::Required,
            Some(other) => {
                return Err(TlsError::new(
                    &name("ssl.client.auth"),
                    format!("{other} is not one of required, requested, none"),
                ))
            }
        };
        let ca_pem = match (
            get("ssl.truststore.certificates"),
            get("ssl.truststore.location"),
        ) {
            (Some(pem), _) => Some(pem.to_string()),
            (None, Some(location)) => Some(stores::trusted_pem(
                &name("ssl.truststore"),
                location,
                get("ssl.truststore.type"),
                get("ssl.truststore.password"),
            )?),
            (None, None) => None,
        };
        let key_password = get("ssl.key.password");
        let (chain_pem, key_pem) =
            match (
                get("ssl.keystore.certificate.chain"),
                get("ssl.keystore.key"),
                get("ssl.keystore.location"),
            ) {
                (Some(chain), Some(key), _) => (
                    Some(chain.to_string()),
                    Some(stores::plain_key_pem(
                        &name("ssl.keystore.key"),
                        key,
                        key_password,
                    )?),
                ),
                (Some(_), None, _) | (None, Some(_), _) => return Err(TlsError::new(
                    &name("ssl.keystore.key"),
                    "a PEM keystore needs both ssl.keystore.key and ssl.keystore.certificate.chain",
                )),
                (None, None, Some(location)) => {
                    let (chain, key) = stores::identity_pem(
                        &name("ssl.keystore"),
                        location,
                        get("ssl.keystore.type"),
                        get("ssl.keystore.password"),
                        key_password,
                    )?;
                    (Some(chain), Some(key))
                }
                (None, None, None) => (None, None),
            };
        Ok(Material {
            ca_pem,
            chain_pem,
            key_pem,
            verify_hostname,
            client_auth,
            tls13_only,
        })
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn versions(&self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        if self.tls13_only {
            &TLS13_ONLY
        } else {
            rustls::ALL_VERSIONS
        }
    }

    fn roots(&self, key: &str) -> Result<rustls::RootCertStore, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_pem {
            Some(pem) => {
                for cert in certificates(key, pem)? {
                    roots.add(cert).map_err(|e| {
                        TlsError::new(key, format!("cannot trust a certificate: {e}"))
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    let _ = roots.add(cert);
                }
            }
        }
        Ok(roots)
    }

    fn identity(
        &self,
        key: &str,
    ) -> Result<
        Option<(
            Vec<rustls_pki_types::CertificateDer<'static>>,
            rustls_pki_types::PrivateKeyDer<'static>,
        )>,
        TlsError,
    > {
        let (Some(chain), Some(pkey)) = (&self.chain_pem, &self.key_pem) else {
            return Ok(None);
        };
        use rustls_pki_types::pem::PemObject;
        let private = rustls_pki_types::PrivateKeyDer::from_pem_slice(pkey.as_bytes())
            .map_err(|e| TlsError::new(key, format!("cannot read the private key: {e}")))?;
        Ok(Some((certificates(key, chain)?, private)))
    }

    /// A client configuration: the trusted CAs (or the system's), the own certificate for
    /// mutual TLS, and the host-name check as configured.
    pub fn client_config(&self, key: &str) -> Result<rustls::ClientConfig, TlsError> {
        let provider = Material::provider();
        let roots = Arc::new(self.roots(key)?);
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(self.versions())
            .map_err(|e| TlsError::new(key, e.to_string()))?;
        let verifier = verify::ServerVerifier::new(roots, provider, self.verify_hostname)
            .map_err(|e| TlsError::new(key, e))?;
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier));
        match self.identity(key)? {
            Some((chain, private)) => builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| TlsError::new(key, format!("cannot use the client certificate: {e}"))),
            None => Ok(builder.with_no_client_auth()),
        }
    }

    /// A server configuration: the own certificate, and client certificates checked against
    /// the trusted CAs as `ssl.client.auth` asks.
    pub fn server_config(&self, key: &str) -> Result<rustls::ServerConfig, TlsError> {
        let provider = Material::provider();
        let Some((chain, private)) = self.identity(key)? else {
            return Err(TlsError::new(
                key,
                "an HTTPS listener needs a keystore (ssl.keystore.location, or ssl.keystore.key and ssl.keystore.certificate.chain)",
            ));
        };
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(self.versions())
            .map_err(|e| TlsError::new(key, e.to_string()))?;
        let builder = match self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            auth => {
                let roots = Arc::new(self.roots(key)?);
                let verifier =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider);
                let verifier = if auth == ClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier.build().map_err(|e| {
                    TlsError::new(key, format!("cannot check client certificates: {e}"))
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        builder
            .with_single_cert(chain, private)
            .map_err(|e| TlsError::new(key, format!("cannot use the server certificate: {e}")))
    }

    /// The own certificate chain followed by the key, as one PEM text (the form HTTP clients
    /// take for mutual TLS).
    pub fn identity_pem(&self) -> Option<String> {
        match (&self.chain_pem, &self.key_pem) {
            (Some(chain), Some(key)) => Some(format!("{key}\n{chain}")),
            _ => None,
        }
    }
}

fn check_protocols(
    protocol: Option<&str>,
    enabled: Option<&str>,
    prefix: &str,
) -> Result<bool, TlsError> {
    if let Some(p) = protocol {
        if !matches!(p, "TLSv1.2" | "TLSv1.3" | "TLS") {
            return Err(TlsError::new(
                &format!("{prefix}ssl.protocol"),
                format!("{p} is not supported (TLSv1.2 or TLSv1.3)"),
            ));
        }
    }
    let Some(list) = enabled else {
        return Ok(false);
    };
    let versions: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    for v in &versions {
        if !matches!(*v, "TLSv1.2" | "TLSv1.3") {
            return Err(TlsError::new(
                &format!("{prefix}ssl.enabled.protocols"),
                format!("{v} is not supported (TLSv1.2, TLSv1.3)"),
            ));
        }
    }
    Ok(versions == ["TLSv1.3"])
}

fn certificates(
    key: &str,
    pem: &str,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, TlsError> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::new(key, format!("cannot read a certificate: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::new(key, "no certificate found"));
    }
    Ok(certs)
}

#[cfg(test)]
pub(crate) mod testing {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::{PKey, Private};
    use openssl::rsa::Rsa;
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509NameBuilder, X509};

    /// A self-signed CA certificate valid for `localhost`.
    pub fn self_signed(cn: &str) -> (X509, PKey<Private>) {
        let build = || -> Result<(X509, PKey<Private>), openssl::error::ErrorStack> {
            let pkey = PKey::from_rsa(Rsa::generate(2048)?)?;
            let mut name = X509NameBuilder::new()?;
            name.append_entry_by_text("CN", cn)?;
            let name = name.build();
            let mut b = X509::builder()?;
            b.set_version(2)?;
            let serial = BigNum::from_u32(1)?.to_asn1_integer()?;
            b.set_serial_number(&serial)?;
            b.set_subject_name(&name)?;
            b.set_issuer_name(&name)?;
            b.set_pubkey(&pkey)?;
            let not_before = Asn1Time::days_from_now(0)?;
            b.set_not_before(&not_before)?;
            let not_after = Asn1Time::days_from_now(30)?;
            b.set_not_after(&not_after)?;
            b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
            let san = SubjectAlternativeName::new()
                .dns("localhost")
                .ip("127.0.0.1")
                .build(&b.x509v3_context(None, None))?;
            b.append_extension(san)?;
            b.sign(&pkey, MessageDigest::sha256())?;
            Ok((b.build(), pkey))
        };
        build().unwrap_or_else(|e| panic!("cannot make a test certificate: {e}"))
    }

    pub fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "floe-tls-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testing::self_signed;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pem_keys_under_a_prefix_make_client_and_server_configs() {
        let (cert, pkey) = self_signed("localhost");
        let cert_pem = String::from_utf8_lossy(&cert.to_pem().unwrap_or_default()).into_owned();
        let key_pem = String::from_utf8_lossy(&pkey.private_key_to_pem_pkcs8().unwrap_or_default())
            .into_owned();
        let p = props(&[
            ("listeners.https.ssl.keystore.type", "PEM"),
            ("listeners.https.ssl.keystore.key", &key_pem),
            ("listeners.https.ssl.keystore.certificate.chain", &cert_pem),
            ("listeners.https.ssl.truststore.type", "PEM"),
            ("listeners.https.ssl.truststore.certificates", &cert_pem),
            ("listeners.https.ssl.client.auth", "required"),
            ("ssl.keystore.location", "/not/read/under/another/prefix"),
        ]);
        let m = Material::from_java(&p, "listeners.https.").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.client_auth, ClientAuth::Required);
        assert!(m.verify_hostname);
        assert!(m.server_config("listeners.https").is_ok());
        assert!(m.client_config("listeners.https").is_ok());
        assert!(!format!("{m:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn settings_floe_cannot_honour_are_errors() {
        for (key, value, word) in [
            (
                "ssl.cipher.suites",
                "TLS_AES_128_GCM_SHA256",
                "cipher suites",
            ),
            ("ssl.enabled.protocols", "TLSv1.1", "TLSv1.1"),
            ("ssl.protocol", "SSLv3", "SSLv3"),
            ("ssl.engine.factory.class", "x.Y", "engine factory"),
            ("ssl.truststore.type", "BCFKS", "BCFKS"),
            ("ssl.endpoint.identification.algorithm", "ldaps", "ldaps"),
            ("ssl.keystore.typo", "x", "unknown"),
        ] {
            let e = Material::from_java(&props(&[(key, value)]), "")
                .err()
                .unwrap_or_else(|| panic!("{key}={value} accepted"));
            assert_eq!(e.key, key);
            assert!(e.reason.contains(word), "{e}");
        }
        let m = Material::from_java(
            &props(&[
                ("ssl.endpoint.identification.algorithm", ""),
                ("ssl.enabled.protocols", "TLSv1.3"),
                ("ssl.secure.random.implementation", "SHA1PRNG"),
            ]),
            "",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!m.verify_hostname && m.tls13_only);
    }

    #[test]
    fn jvm_stores_come_from_kafka_opts() {
        let keys = jvm_default_keys(Some(
            "-Xmx1g -Djavax.net.ssl.trustStore=/etc/ts.p12 -Djavax.net.ssl.trustStorePassword=pw -Dother=1",
        ));
        assert_eq!(keys.len(), 2);
        assert_eq!(keys["ssl.truststore.location"], "/etc/ts.p12");
        assert!(jvm_default_keys(None).is_empty());
    }

    #[test]
    fn half_a_pem_keystore_is_an_error() {
        let e = Material::from_java(&props(&[("ssl.keystore.key", "x")]), "").err();
        assert!(e.is_some_and(|e| e.reason.contains("ssl.keystore.certificate.chain")));
    }
}
