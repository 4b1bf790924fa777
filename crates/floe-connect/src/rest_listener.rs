//! The REST API's listener: plain TCP, or TLS with each handshake done off the accept loop (a
//! slow or silent client cannot hold up the others).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::debug;

/// An accepted connection.
pub trait Connection: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Connection for T {}

const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// A listener for `axum::serve`.
pub enum RestListener {
    Plain(TcpListener),
    Tls {
        local: SocketAddr,
        ready: mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    },
}

impl RestListener {
    /// Listens on `tcp`, with TLS when `tls` is set.
    pub fn new(tcp: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) -> std::io::Result<Self> {
        let Some(config) = tls else {
            return Ok(RestListener::Plain(tcp));
        };
        let local = tcp.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        debug!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(RestListener::Tls { local, ready })
    }
}

impl axum::serve::Listener for RestListener {
    type Io = Box<dyn Connection>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self {
            RestListener::Plain(tcp) => {
                let (stream, peer) = axum::serve::Listener::accept(tcp).await;
                let _ = stream.set_nodelay(true);
                (Box::new(stream), peer)
            }
            RestListener::Tls { ready, .. } => match ready.recv().await {
                Some((tls, peer)) => (Box::new(tls), peer),
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        match self {
            RestListener::Plain(tcp) => tcp.local_addr(),
            RestListener::Tls { local, .. } => Ok(*local),
        }
    }
}
