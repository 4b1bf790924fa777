//! Reading Java key and trust stores into PEM text.
//!
//! * PKCS12 (Java's default since 9): trusted certificates, and a private key with its chain.
//! * PEM: certificates, and a PKCS#8 key (encrypted with `ssl.key.password` or not).
//! * JKS: trusted certificates (the usual truststore). A JKS store holding a private key is an
//!   error naming the `keytool` conversion to PKCS12.
//!
//! The kind is taken from the content when the declared type disagrees with it (Java's JKS
//! type reads PKCS12 files too), so the Java default `JKS` type works on a PKCS12 file.

use openssl::pkcs12::Pkcs12;
use openssl::pkey::PKey;
use openssl::x509::X509;

use crate::TlsError;

/// What a store file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Pkcs12,
    Pem,
    Jks,
}

impl StoreKind {
    /// The kind of `bytes`, guessed from their first bytes; `declared` is used when they do
    /// not say.
    pub fn of(bytes: &[u8], declared: Option<&str>) -> StoreKind {
        if bytes.starts_with(&JKS_MAGIC) {
            return StoreKind::Jks;
        }
        let text_start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map(|i| &bytes[i..])
            .unwrap_or(&[]);
        if text_start.starts_with(b"-----BEGIN") {
            return StoreKind::Pem;
        }
        match declared.map(str::to_ascii_uppercase).as_deref() {
            Some("PEM") => StoreKind::Pem,
            _ => StoreKind::Pkcs12,
        }
    }
}

const JKS_MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];

fn read(key: &str, location: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(location).map_err(|e| TlsError::new(key, format!("cannot read {location}: {e}")))
}

fn pem_of(key: &str, certs: &[X509]) -> Result<String, TlsError> {
    let mut out = String::new();
    for cert in certs {
        let pem = cert
            .to_pem()
            .map_err(|e| TlsError::new(key, format!("cannot write a certificate as PEM: {e}")))?;
        out.push_str(&String::from_utf8_lossy(&pem));
    }
    Ok(out)
}

fn parse_pkcs12(
    key: &str,
    location: &str,
    bytes: &[u8],
    password: Option<&str>,
) -> Result<openssl::pkcs12::ParsedPkcs12_2, TlsError> {
    let store = Pkcs12::from_der(bytes)
        .map_err(|_| TlsError::new(key, format!("{location} is not a PKCS12, PEM or JKS store")))?;
    store.parse2(password.unwrap_or("")).map_err(|_| {
        TlsError::new(
            key,
            format!("cannot open the PKCS12 store {location}: wrong or missing password"),
        )
    })
}

/// The trusted certificates of a truststore, as PEM.
pub fn trusted_pem(
    key: &str,
    location: &str,
    declared: Option<&str>,
    password: Option<&str>,
) -> Result<String, TlsError> {
    let bytes = read(&format!("{key}.location"), location)?;
    let certs = match StoreKind::of(&bytes, declared) {
        StoreKind::Pem => X509::stack_from_pem(&bytes).map_err(|e| {
            TlsError::new(
                key,
                format!("cannot read certificates from {location}: {e}"),
            )
        })?,
        StoreKind::Pkcs12 => {
            let parsed = parse_pkcs12(key, location, &bytes, password)?;
            let mut certs: Vec<X509> = parsed
                .ca
                .map(|stack| stack.into_iter().collect())
                .unwrap_or_default();
            certs.extend(parsed.cert);
            certs
        }
        StoreKind::Jks => jks::trusted_certs(key, location, &bytes, password)?,
    };
    if certs.is_empty() {
        return Err(TlsError::new(
            key,
            format!("{location} holds no certificate"),
        ));
    }
    pem_of(key, &certs)
}

/// The certificate chain and the (unencrypted PKCS#8) private key of a keystore, as PEM.
pub fn identity_pem(
    key: &str,
    location: &str,
    declared: Option<&str>,
    password: Option<&str>,
    key_password: Option<&str>,
) -> Result<(String, String), TlsError> {
    let bytes = read(&format!("{key}.location"), location)?;
    match StoreKind::of(&bytes, declared) {
        StoreKind::Pem => {
            let text = String::from_utf8_lossy(&bytes);
            let certs = X509::stack_from_pem(&bytes).map_err(|e| {
                TlsError::new(key, format!("cannot read certificates from {location}: {e}"))
            })?;
            if certs.is_empty() {
                return Err(TlsError::new(key, format!("{location} holds no certificate")));
            }
            let key_pem = plain_key_pem(&format!("{key}.location"), &text, key_password)?;
            Ok((pem_of(key, &certs)?, key_pem))
        }
        StoreKind::Pkcs12 => {
            // Java opens the key with ssl.key.password, or the store password without it.
            let parsed = parse_pkcs12(key, location, &bytes, password)?;
            let (Some(cert), Some(pkey)) = (parsed.cert, parsed.pkey) else {
                return Err(TlsError::new(
                    key,
                    format!("{location} holds no private key with its certificate"),
                ));
            };
            let mut chain = vec![cert];
            chain.extend(parsed.ca.map(|s| s.into_iter().collect::<Vec<_>>()).unwrap_or_default());
            let key_pem = pkey.private_key_to_pem_pkcs8().map_err(|e| {
                TlsError::new(key, format!("cannot write the private key of {location}: {e}"))
            })?;
            Ok((
                pem_of(key, &chain)?,
                String::from_utf8_lossy(&key_pem).into_owned(),
            ))
        }
        StoreKind::Jks => Err(TlsError::new(
            key,
            format!(
                "{location} is a JKS keystore, whose private keys Floe does not read; convert it with \
                 `keytool -importkeystore -srckeystore {location} -destkeystore {location}.p12 -deststoretype PKCS12` \
                 and set {key}.location to the .p12 file and {key}.type=PKCS12"
            ),
        )),
    }
}

/// A private key given as PEM text (`ssl.keystore.key`), decrypted with `password` when it is
/// encrypted, as unencrypted PKCS#8 PEM.
pub fn plain_key_pem(key: &str, pem: &str, password: Option<&str>) -> Result<String, TlsError> {
    let encrypted = pem.contains("ENCRYPTED");
    let pkey = match (encrypted, password) {
        (true, Some(p)) => PKey::private_key_from_pem_passphrase(pem.as_bytes(), p.as_bytes())
            .map_err(|_| {
                TlsError::new(
                    key,
                    "cannot decrypt the private key: wrong ssl.key.password",
                )
            })?,
        (true, None) => {
            return Err(TlsError::new(
                key,
                "the private key is encrypted and ssl.key.password is not set",
            ))
        }
        (false, _) => PKey::private_key_from_pem(pem.as_bytes())
            .map_err(|e| TlsError::new(key, format!("cannot read the private key: {e}")))?,
    };
    let out = pkey
        .private_key_to_pem_pkcs8()
        .map_err(|e| TlsError::new(key, format!("cannot write the private key: {e}")))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The JKS format: trusted-certificate entries, and the store's integrity digest.
mod jks {
    use openssl::sha::Sha1;
    use openssl::x509::X509;

    use crate::TlsError;

    struct Reader<'a> {
        bytes: &'a [u8],
        at: usize,
    }

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            let end = self.at.checked_add(n)?;
            let out = self.bytes.get(self.at..end)?;
            self.at = end;
            Some(out)
        }
        fn u16(&mut self) -> Option<u16> {
            self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
        }
        fn u32(&mut self) -> Option<u32> {
            self.take(4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }
        fn utf(&mut self) -> Option<&'a [u8]> {
            let n = self.u16()? as usize;
            self.take(n)
        }
    }

    const PRIVATE_KEY: u32 = 1;
    const TRUSTED_CERT: u32 = 2;

    pub fn trusted_certs(
        key: &str,
        location: &str,
        bytes: &[u8],
        password: Option<&str>,
    ) -> Result<Vec<X509>, TlsError> {
        let bad = || TlsError::new(key, format!("{location} is not a readable JKS store"));
        let mut r = Reader { bytes, at: 4 };
        let version = r.u32().ok_or_else(bad)?;
        if version != 1 && version != 2 {
            return Err(bad());
        }
        let count = r.u32().ok_or_else(bad)?;
        let mut certs = Vec::new();
        for _ in 0..count {
            let tag = r.u32().ok_or_else(bad)?;
            r.utf().ok_or_else(bad)?; // alias
            r.take(8).ok_or_else(bad)?; // timestamp
            match tag {
                TRUSTED_CERT => {
                    if version == 2 {
                        r.utf().ok_or_else(bad)?; // certificate type
                    }
                    let n = r.u32().ok_or_else(bad)? as usize;
                    let der = r.take(n).ok_or_else(bad)?;
                    certs.push(X509::from_der(der).map_err(|e| {
                        TlsError::new(
                            key,
                            format!("{location} holds an unreadable certificate: {e}"),
                        )
                    })?);
                }
                PRIVATE_KEY => {
                    // A keystore used as a truststore: its private keys are skipped, their
                    // chains are not trusted (as in Java).
                    let n = r.u32().ok_or_else(bad)? as usize;
                    r.take(n).ok_or_else(bad)?;
                    let chain = r.u32().ok_or_else(bad)?;
                    for _ in 0..chain {
                        if version == 2 {
                            r.utf().ok_or_else(bad)?;
                        }
                        let n = r.u32().ok_or_else(bad)? as usize;
                        r.take(n).ok_or_else(bad)?;
                    }
                }
                _ => return Err(bad()),
            }
        }
        let body_end = r.at;
        let digest = r.take(20).ok_or_else(bad)?;
        if let Some(password) = password {
            let mut sha = Sha1::new();
            for unit in password.encode_utf16() {
                sha.update(&unit.to_be_bytes());
            }
            sha.update(b"Mighty Aphrodite");
            sha.update(&bytes[..body_end]);
            if sha.finish() != digest {
                return Err(TlsError::new(
                    key,
                    format!("cannot open the JKS store {location}: wrong password (its integrity check failed)"),
                ));
            }
        }
        Ok(certs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self_signed, temp_file};

    #[test]
    fn pkcs12_stores_give_their_key_chain_and_trusted_certificates() {
        let (cert, pkey) = self_signed("floe-test");
        let store = Pkcs12::builder()
            .name("floe")
            .pkey(&pkey)
            .cert(&cert)
            .build2("store-pass")
            .and_then(|p| p.to_der())
            .unwrap_or_else(|e| panic!("{e}"));
        let path = temp_file("keystore.p12", &store);
        let location = path.to_string_lossy();
        let (chain, key) = identity_pem(
            "ssl.keystore",
            &location,
            Some("JKS"),
            Some("store-pass"),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(chain.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        let trusted = trusted_pem("ssl.truststore", &location, None, Some("store-pass"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(trusted, chain);
        let wrong = identity_pem("ssl.keystore", &location, None, Some("nope"), None)
            .err()
            .unwrap_or_else(|| panic!("a wrong password was accepted"));
        assert!(
            wrong.to_string().contains("wrong or missing password"),
            "{wrong}"
        );
        assert!(!wrong.to_string().contains("nope"), "{wrong}");
    }

    #[test]
    fn pem_stores_and_encrypted_keys_are_read() {
        let (cert, pkey) = self_signed("floe-pem");
        let cert_pem = String::from_utf8_lossy(&cert.to_pem().unwrap_or_default()).into_owned();
        let encrypted = pkey
            .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"key-pass")
            .unwrap_or_default();
        let encrypted = String::from_utf8_lossy(&encrypted).into_owned();
        let path = temp_file("keystore.pem", format!("{encrypted}{cert_pem}").as_bytes());
        let location = path.to_string_lossy();
        let (chain, key) = identity_pem(
            "ssl.keystore",
            &location,
            Some("PEM"),
            None,
            Some("key-pass"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(chain, cert_pem);
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        let e = plain_key_pem("ssl.keystore.key", &encrypted, None).err();
        assert!(e.is_some_and(|e| e.to_string().contains("ssl.key.password")));
        let e = plain_key_pem("ssl.keystore.key", &encrypted, Some("wrong")).err();
        assert!(e.is_some_and(|e| !e.to_string().contains("wrong\"")));
    }

    /// A JKS truststore written the way `keytool` writes one.
    fn jks(certs: &[&X509], password: &str) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&JKS_MAGIC);
        out.extend_from_slice(&2u32.to_be_bytes());
        out.extend_from_slice(&(certs.len() as u32).to_be_bytes());
        for (i, cert) in certs.iter().enumerate() {
            out.extend_from_slice(&2u32.to_be_bytes());
            let alias = format!("ca{i}");
            out.extend_from_slice(&(alias.len() as u16).to_be_bytes());
            out.extend_from_slice(alias.as_bytes());
            out.extend_from_slice(&0u64.to_be_bytes());
            out.extend_from_slice(&5u16.to_be_bytes());
            out.extend_from_slice(b"X.509");
            let der = cert.to_der().unwrap_or_default();
            out.extend_from_slice(&(der.len() as u32).to_be_bytes());
            out.extend_from_slice(&der);
        }
        let mut sha = openssl::sha::Sha1::new();
        for unit in password.encode_utf16() {
            sha.update(&unit.to_be_bytes());
        }
        sha.update(b"Mighty Aphrodite");
        sha.update(&out);
        out.extend_from_slice(&sha.finish());
        out
    }

    #[test]
    fn jks_truststores_are_read_and_their_integrity_checked() {
        let (a, _) = self_signed("ca-a");
        let (b, _) = self_signed("ca-b");
        let path = temp_file("truststore.jks", &jks(&[&a, &b], "changeit"));
        let location = path.to_string_lossy();
        let pem = trusted_pem("ssl.truststore", &location, None, Some("changeit"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            X509::stack_from_pem(pem.as_bytes()).map(|s| s.len()).ok(),
            Some(2)
        );
        assert!(trusted_pem("ssl.truststore", &location, None, None).is_ok());
        let e = trusted_pem("ssl.truststore", &location, None, Some("wrong")).err();
        assert!(e.is_some_and(|e| e.to_string().contains("wrong password")));
        let e = identity_pem(
            "ssl.keystore",
            &location,
            Some("JKS"),
            Some("changeit"),
            None,
        )
        .err();
        assert!(e.is_some_and(|e| e.to_string().contains("keytool -importkeystore")));
    }

    #[test]
    fn kinds_come_from_the_content_first() {
        assert_eq!(
            StoreKind::of(b"\n-----BEGIN CERT", Some("JKS")),
            StoreKind::Pem
        );
        assert_eq!(
            StoreKind::of(&[0xFE, 0xED, 0xFE, 0xED, 0], Some("PKCS12")),
            StoreKind::Jks
        );
        assert_eq!(StoreKind::of(&[0x30, 0x82], None), StoreKind::Pkcs12);
    }
}
