//! The client side of SASL PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802, RFC 7677), for
//! the connections `wire.rs` opens itself. Messages are built and checked here; the Kafka
//! framing (SaslHandshake, SaslAuthenticate) is in `wire.rs`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

use crate::kafka_security::{Mechanism, Sasl};

/// Why an exchange failed; never holds the password or a proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SASL {mechanism} authentication failed: {reason}")]
pub struct SaslError {
    pub mechanism: &'static str,
    pub reason: String,
}

/// One authentication, message by message.
pub enum Exchange {
    Plain,
    Scram(Scram),
}

impl Exchange {
    /// Starts an exchange; returns it with the first message to send.
    pub fn start(sasl: &Sasl) -> Result<(Exchange, Vec<u8>), SaslError> {
        match sasl.mechanism {
            Mechanism::Plain => {
                let mut msg = Vec::with_capacity(sasl.username.len() + sasl.password.len() + 2);
                msg.push(0);
                msg.extend_from_slice(sasl.username.as_bytes());
                msg.push(0);
                msg.extend_from_slice(sasl.password.as_bytes());
                Ok((Exchange::Plain, msg))
            }
            mechanism => {
                let mut nonce = [0u8; 24];
                openssl::rand::rand_bytes(&mut nonce).map_err(|e| SaslError {
                    mechanism: mechanism.name(),
                    reason: format!("cannot make a nonce: {e}"),
                })?;
                let (scram, first) = Scram::start(sasl, &STANDARD.encode(nonce));
                Ok((Exchange::Scram(scram), first))
            }
        }
    }

    /// The answer to the server's message `challenge`; None when the exchange is complete.
    pub fn step(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        match self {
            Exchange::Plain => Ok(None),
            Exchange::Scram(s) => s.step(challenge),
        }
    }
}

enum ScramState {
    SentFirst,
    SentFinal { server_signature: Vec<u8> },
    Done,
}

/// A SCRAM exchange (without channel binding, as Kafka's).
pub struct Scram {
    mechanism: Mechanism,
    password: String,
    client_first_bare: String,
    client_nonce: String,
    state: ScramState,
}

impl Scram {
    fn digest(&self) -> MessageDigest {
        match self.mechanism {
            Mechanism::ScramSha512 => MessageDigest::sha512(),
            _ => MessageDigest::sha256(),
        }
    }

    fn fail(&self, reason: impl Into<String>) -> SaslError {
        SaslError {
            mechanism: self.mechanism.name(),
            reason: reason.into(),
        }
    }

    /// Starts with a chosen client nonce; returns the client-first message.
    pub fn start(sasl: &Sasl, nonce: &str) -> (Scram, Vec<u8>) {
        let user = sasl.username.replace('=', "=3D").replace(',', "=2C");
        let client_first_bare = format!("n={user},r={nonce}");
        let first = format!("n,,{client_first_bare}").into_bytes();
        (
            Scram {
                mechanism: sasl.mechanism,
                password: sasl.password.clone(),
                client_first_bare,
                client_nonce: nonce.to_string(),
                state: ScramState::SentFirst,
            },
            first,
        )
    }

    fn hmac(&self, key: &[u8], data: &[u8]) -> Result<Vec<u8>, SaslError> {
        let key = PKey::hmac(key).map_err(|e| self.fail(e.to_string()))?;
        let mut signer = Signer::new(self.digest(), &key).map_err(|e| self.fail(e.to_string()))?;
        signer.update(data).map_err(|e| self.fail(e.to_string()))?;
        signer.sign_to_vec().map_err(|e| self.fail(e.to_string()))
    }

    pub fn step(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        let text = std::str::from_utf8(challenge)
            .map_err(|_| self.fail("the server's message is not UTF-8"))?;
        let attr = |name: char| {
            text.split(',')
                .find_map(|part| part.strip_prefix(name).and_then(|p| p.strip_prefix('=')))
        };
        if let Some(e) = attr('e') {
            self.state = ScramState::Done;
            return Err(self.fail(format!("the broker answered {e}")));
        }
        match std::mem::replace(&mut self.state, ScramState::Done) {
            ScramState::SentFirst => {
                let nonce = attr('r').ok_or_else(|| self.fail("the server sent no nonce"))?;
                if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len()
                {
                    return Err(self.fail("the server's nonce does not extend the client's"));
                }
                let salt = attr('s')
                    .and_then(|s| STANDARD.decode(s).ok())
                    .ok_or_else(|| self.fail("the server sent no readable salt"))?;
                let iterations: usize =
                    attr('i')
                        .and_then(|i| i.parse().ok())
                        .filter(|i| *i > 0)
                        .ok_or_else(|| self.fail("the server sent no iteration count"))?;
                let size = self.digest().size();
                let mut salted = vec![0u8; size];
                openssl::pkcs5::pbkdf2_hmac(
                    self.password.as_bytes(),
                    &salt,
                    iterations,
                    self.digest(),
                    &mut salted,
                )
                .map_err(|e| self.fail(e.to_string()))?;
                let client_key = self.hmac(&salted, b"Client Key")?;
                let stored_key = openssl::hash::hash(self.digest(), &client_key)
                    .map_err(|e| self.fail(e.to_string()))?;
                let without_proof = format!("c=biws,r={nonce}");
                let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
                let signature = self.hmac(&stored_key, auth_message.as_bytes())?;
                let proof: Vec<u8> = client_key
                    .iter()
                    .zip(signature.iter())
                    .map(|(a, b)| a ^ b)
                    .collect();
                let server_key = self.hmac(&salted, b"Server Key")?;
                let server_signature = self.hmac(&server_key, auth_message.as_bytes())?;
                self.state = ScramState::SentFinal { server_signature };
                Ok(Some(
                    format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes(),
                ))
            }
            ScramState::SentFinal { server_signature } => {
                let verifier = attr('v')
                    .and_then(|v| STANDARD.decode(v).ok())
                    .ok_or_else(|| self.fail("the server sent no signature"))?;
                if verifier.len() != server_signature.len()
                    || !openssl::memcmp::eq(&verifier, &server_signature)
                {
                    return Err(self.fail("the server's signature is wrong (not the broker holding these credentials)"));
                }
                Ok(None)
            }
            ScramState::Done => {
                Err(self.fail("the server sent a message after the exchange ended"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl(mechanism: Mechanism, user: &str, password: &str) -> Sasl {
        Sasl {
            mechanism,
            username: user.into(),
            password: password.into(),
        }
    }

    /// The SCRAM-SHA-256 example of RFC 7677, section 3.
    #[test]
    fn scram_sha_256_follows_rfc_7677() {
        let (mut s, first) = Scram::start(
            &sasl(Mechanism::ScramSha256, "user", "pencil"),
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let answer = s
            .step(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            answer.as_deref(),
            Some(&b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="[..])
        );
        assert_eq!(
            s.step(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Ok(None)
        );
    }

    #[test]
    fn a_wrong_server_signature_or_an_error_fails_without_the_password() {
        let (mut s, _) = Scram::start(
            &sasl(Mechanism::ScramSha256, "user", "pencil"),
            "rOprNGfwEbeRWgbNEkqO",
        );
        let _ = s.step(b"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        let e = s
            .step(b"v=AAAA")
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert!(e.reason.contains("signature"), "{e}");
        let (mut s, _) = Scram::start(&sasl(Mechanism::ScramSha512, "u,=", "pencil"), "abc");
        assert_eq!(s.client_first_bare, "n=u=2C=3D,r=abc");
        let e = s
            .step(b"e=invalid-proof")
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert!(e.to_string().contains("invalid-proof") && !e.to_string().contains("pencil"));
        let (mut s, _) = Scram::start(&sasl(Mechanism::ScramSha512, "u", "p"), "abc");
        assert!(
            s.step(b"r=zzz,s=AAAA,i=1").is_err(),
            "a nonce not extending ours"
        );
    }

    #[test]
    fn plain_sends_user_and_password_once() {
        let (mut e, first) = Exchange::start(&sasl(Mechanism::Plain, "floe", "secret"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first, b"\0floe\0secret");
        assert_eq!(e.step(b""), Ok(None));
    }
}
