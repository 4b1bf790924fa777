//! Requests to a Kafka broker spoken directly with the `kafka-protocol` crate's codecs, for
//! what librdkafka does not offer: group membership with protocol type `connect`, and deleting
//! one partition's committed offset (`OffsetDelete`). Connections speak TLS and authenticate
//! with SASL (PLAIN, SCRAM) as the worker's `security.protocol` says.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, FindCoordinatorResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use crate::kafka_security::{Sasl, Security};
use crate::sasl::Exchange;

const FIND_COORDINATOR_VERSION: i16 = 3;
const SASL_HANDSHAKE_VERSION: i16 = 1;
const SASL_AUTHENTICATE_VERSION: i16 = 2;

/// A byte stream to a broker: plain TCP or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// A failure talking to a broker.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("cannot reach broker {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("{api} request to {addr} failed: {reason}")]
    Io {
        api: &'static str,
        addr: String,
        reason: String,
    },
    #[error("cannot authenticate to broker {addr}: {reason}")]
    Auth { addr: String, reason: String },
    #[error("{api} answered error code {code} for group {group}")]
    Kafka {
        api: &'static str,
        group: String,
        code: i16,
    },
}

/// Connects to the coordinator of `group`, asking the bootstrap brokers in turn.
pub async fn find_coordinator(
    bootstrap: &[String],
    group: &str,
    client_id: &str,
    security: &Security,
) -> Result<Conn, WireError> {
    let mut last = None;
    for addr in bootstrap {
        let mut conn = match Conn::open(addr, client_id, security).await {
            Ok(c) => c,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        let mut request = FindCoordinatorRequest::default();
        request.key = StrBytes::from_string(group.to_string());
        request.key_type = 0;
        let response: FindCoordinatorResponse = match conn
            .call(ApiKey::FindCoordinator, FIND_COORDINATOR_VERSION, &request)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        if response.error_code != 0 {
            last = Some(WireError::Kafka {
                api: "FindCoordinator",
                group: group.to_string(),
                code: response.error_code,
            });
            continue;
        }
        let coordinator = format!("{}:{}", response.host.as_str(), response.port);
        debug!(%coordinator, group, "found the group coordinator");
        return Conn::open(&coordinator, client_id, security).await;
    }
    Err(last.unwrap_or_else(|| WireError::Connect {
        addr: String::new(),
        reason: "bootstrap.servers is empty".into(),
    }))
}

/// One connection to a broker, one request at a time.
pub struct Conn {
    addr: String,
    stream: Box<dyn Stream>,
    client_id: String,
    correlation: i32,
}

impl Conn {
    /// Connects to `addr`, with TLS and SASL as `security` says.
    pub async fn open(addr: &str, client_id: &str, security: &Security) -> Result<Conn, WireError> {
        let tcp = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .map_err(|_| WireError::Connect {
                addr: addr.to_string(),
                reason: "timed out".into(),
            })?
            .map_err(|e| WireError::Connect {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = match &security.tls {
            None => Box::new(tcp),
            Some(material) => {
                let auth = |reason: String| WireError::Auth {
                    addr: addr.to_string(),
                    reason,
                };
                let config = material
                    .client_config("ssl")
                    .map_err(|e| auth(e.to_string()))?;
                let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = rustls_pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| auth(format!("{host} is not a server name: {e}")))?;
                let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
                let tls =
                    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
                        .await
                        .map_err(|_| auth("the TLS handshake timed out".into()))?
                        .map_err(|e| auth(format!("TLS handshake failed: {e}")))?;
                Box::new(tls)
            }
        };
        let mut conn = Conn {
            addr: addr.to_string(),
            stream,
            client_id: client_id.to_string(),
            correlation: 0,
        };
        if let Some(sasl) = &security.sasl {
            conn.authenticate(sasl).await?;
        }
        Ok(conn)
    }

    /// SaslHandshake, then SaslAuthenticate rounds until the mechanism is done.
    async fn authenticate(&mut self, sasl: &Sasl) -> Result<(), WireError> {
        let addr = self.addr.clone();
        let auth = |reason: String| WireError::Auth {
            addr: addr.clone(),
            reason,
        };
        let mut handshake = SaslHandshakeRequest::default();
        handshake.mechanism = StrBytes::from_static_str(sasl.mechanism.name());
        let answer: SaslHandshakeResponse = self
            .call(ApiKey::SaslHandshake, SASL_HANDSHAKE_VERSION, &handshake)
            .await?;
        if answer.error_code != 0 {
            let offered: Vec<&str> = answer.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(auth(format!(
                "the broker does not accept {} (error code {}); it offers {}",
                sasl.mechanism.name(),
                answer.error_code,
                offered.join(", ")
            )));
        }
        let (mut exchange, mut message) = Exchange::start(sasl).map_err(|e| auth(e.to_string()))?;
        loop {
            let mut request = SaslAuthenticateRequest::default();
            request.auth_bytes = Bytes::from(message);
            let answer: SaslAuthenticateResponse = self
                .call(
                    ApiKey::SaslAuthenticate,
                    SASL_AUTHENTICATE_VERSION,
                    &request,
                )
                .await?;
            if answer.error_code != 0 {
                let why = answer
                    .error_message
                    .as_ref()
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default();
                return Err(auth(format!(
                    "{} refused (error code {}): {why}",
                    sasl.mechanism.name(),
                    answer.error_code
                )));
            }
            match exchange
                .step(&answer.auth_bytes)
                .map_err(|e| auth(e.to_string()))?
            {
                Some(next) => message = next,
                None => return Ok(()),
            }
        }
    }

    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<Resp, WireError> {
        let api = api_name(key);
        let io = |reason: String| WireError::Io {
            api,
            addr: self.addr.clone(),
            reason,
        };
        self.correlation = self.correlation.wrapping_add(1);
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(StrBytes::from_string(self.client_id.clone()));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, key.request_header_version(version))
            .map_err(|e| io(e.to_string()))?;
        request
            .encode(&mut body, version)
            .map_err(|e| io(e.to_string()))?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        // Join waits up to the rebalance timeout; everything else answers quickly.
        let limit = Duration::from_secs(if key == ApiKey::JoinGroup { 360 } else { 30 });
        let exchange = async {
            self.stream.write_all(&frame).await?;
            let size = self.stream.read_i32().await?;
            let mut buf = vec![0u8; size.max(0) as usize];
            self.stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        let buf = tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| io("timed out".into()))?
            .map_err(|e| io(e.to_string()))?;
        let mut bytes = Bytes::from(buf);
        let header = ResponseHeader::decode(&mut bytes, key.response_header_version(version))
            .map_err(|e| io(e.to_string()))?;
        if header.correlation_id != self.correlation {
            return Err(io(format!(
                "answer to request {} arrived for request {}",
                header.correlation_id, self.correlation
            )));
        }
        let response = Resp::decode(&mut bytes, version).map_err(|e| io(e.to_string()))?;
        if bytes.has_remaining() {
            debug!(api, left = bytes.remaining(), "response had trailing bytes");
        }
        Ok(response)
    }
}

fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::SaslHandshake => "SaslHandshake",
        ApiKey::SaslAuthenticate => "SaslAuthenticate",
        _ => "request",
    }
}
