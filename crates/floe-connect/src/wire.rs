//! Requests to a Kafka broker spoken directly with the `kafka-protocol` crate's codecs, for
//! what librdkafka does not offer: group membership with protocol type `connect`, and deleting
//! one partition's committed offset (`OffsetDelete`).

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, FindCoordinatorResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

const FIND_COORDINATOR_VERSION: i16 = 3;

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
) -> Result<Conn, WireError> {
    let mut last = None;
    for addr in bootstrap {
        let mut conn = match Conn::open(addr, client_id).await {
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
        return Conn::open(&coordinator, client_id).await;
    }
    Err(last.unwrap_or_else(|| WireError::Connect {
        addr: String::new(),
        reason: "bootstrap.servers is empty".into(),
    }))
}

/// One connection to a broker, one request at a time.
pub struct Conn {
    addr: String,
    stream: TcpStream,
    client_id: String,
    correlation: i32,
}

impl Conn {
    pub async fn open(addr: &str, client_id: &str) -> Result<Conn, WireError> {
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .map_err(|_| WireError::Connect {
                addr: addr.to_string(),
                reason: "timed out".into(),
            })?
            .map_err(|e| WireError::Connect {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            addr: addr.to_string(),
            stream,
            client_id: client_id.to_string(),
            correlation: 0,
        })
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
        _ => "request",
    }
}
