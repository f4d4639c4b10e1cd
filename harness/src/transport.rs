//! An HTTP/2 connection for the dynamic caller, without tonic's client-side
//! deadline.
//!
//! tonic's `Channel` reads `grpc-timeout` from each request and gives up by
//! itself, with CANCELLED "Timeout expired", if response headers have not
//! arrived by then. A conformance harness must see what the *server* does
//! with its deadline, so here the deadline is only sent, never enforced; the
//! harness's own watchdog (see `call.rs`) bounds every wait instead.
//!
//! The connection is opened on first use and reopened when the server has
//! closed it, so one hostile case cannot poison the ones after it. It is
//! plaintext (h2c) for `http://` and TLS for `https://`, and adds the
//! [`Security`]'s headers to every call that does not set them itself.
//!
//! Everything the harness and the suite send goes through this one type:
//! reflection, health, the generated clients and the dynamic caller, so TLS
//! and headers hold for all of them.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use anyhow::{Context as _, Result};
use http::{Request, Response, Uri, uri::Authority};
use hyper::{
    body::Incoming,
    client::conn::http2::{self, SendRequest},
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Mutex;

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::security::Security;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Cheap to clone; clones share the connection.
#[derive(Clone, Debug)]
pub struct Channel {
    authority: Authority,
    security: Security,
    connection: Arc<Mutex<Option<SendRequest<tonic::body::Body>>>>,
}

impl Channel {
    /// A plaintext channel to `url` (`http://host:port`); nothing is
    /// dialled until the first call.
    pub fn new(url: &str) -> Result<Self> {
        Self::with_security(url, Security::plaintext())
    }

    /// A channel to `url` secured as `security` says: `https://` needs TLS
    /// settings, and `http://` must not have them.
    pub fn with_security(url: &str, security: Security) -> Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("{url:?} is not a valid URL"))?;
        match (uri.scheme_str(), security.is_tls()) {
            (Some("http"), false) | (Some("https"), true) => {}
            (Some("http"), true) => {
                anyhow::bail!("{url} is plaintext, but TLS settings were given: use https://")
            }
            (Some("https"), false) => anyhow::bail!("{url} needs TLS settings"),
            _ => anyhow::bail!("{url}: a target URL is http://host:port (h2c) or https://host:port (TLS)"),
        }
        let authority = uri.authority().cloned().with_context(|| format!("{url} has no host:port"))?;
        if authority.port_u16().is_none() {
            anyhow::bail!("{url} has no port");
        }
        Ok(Channel { authority, security, connection: Arc::new(Mutex::new(None)) })
    }

    /// A new channel to the same server, with its own connection, secured
    /// as `security` says (the security checks call without credentials).
    pub fn secured(&self, security: Security) -> Channel {
        Channel { authority: self.authority.clone(), security, connection: Arc::new(Mutex::new(None)) }
    }

    /// How this channel is secured.
    pub fn security(&self) -> &Security {
        &self.security
    }

    /// `http://host:port` or `https://host:port`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.security.scheme(), self.authority)
    }

    /// Dials now, so that a wrong address or a refused handshake is reported
    /// before anything else runs.
    pub async fn ready(&self) -> Result<()> {
        let sender = self.connect().await.map_err(|err| anyhow::anyhow!("{err}"))?;
        *self.connection.lock().expect("not poisoned") = Some(sender);
        Ok(())
    }

    /// The live connection, or a new one. Failing to connect is UNAVAILABLE,
    /// as in every gRPC client, and not a status the server sent.
    async fn sender(&self) -> Result<SendRequest<tonic::body::Body>, BoxError> {
        // A plain mutex held only to clone: the common path never awaits.
        if let Some(sender) = self.connection.lock().expect("not poisoned").as_ref()
            && !sender.is_closed()
        {
            return Ok(sender.clone());
        }
        // Two calls may race to reconnect; the later connection wins the
        // slot, and the earlier one serves its own call and then closes.
        let sender = self.connect().await.map_err(|err| {
            let mut status =
                tonic::Status::unavailable(format!("cannot connect to {}: {err}", self.authority));
            status.set_source(Arc::from(err));
            Box::new(status) as BoxError
        })?;
        *self.connection.lock().expect("not poisoned") = Some(sender.clone());
        Ok(sender)
    }

    async fn connect(&self) -> Result<SendRequest<tonic::body::Body>, BoxError> {
        handshake(self.dial().await?).await
    }

    /// A byte stream to the server, through TLS when the channel has it,
    /// before any HTTP/2: for checks that write frames no client library
    /// would send.
    pub async fn dial(&self) -> Result<Box<dyn Stream>, BoxError> {
        let stream = TcpStream::connect(self.authority.as_str()).await?;
        stream.set_nodelay(true)?;
        match self.security.client_config() {
            None => Ok(Box::new(stream)),
            Some(config) => {
                let host = self.authority.host().trim_start_matches('[').trim_end_matches(']');
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())?;
                let stream = TlsConnector::from(config)
                    .connect(name, stream)
                    .await
                    .map_err(|err| format!("TLS handshake failed: {err}"))?;
                Ok(Box::new(stream))
            }
        }
    }
}

/// A connection's bytes, plaintext or TLS.
pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Stream for S {}

/// A stream's receive window: a 4 MiB message (the largest chunk the
/// contracts send) crosses without waiting for a WINDOW_UPDATE.
pub(crate) const STREAM_WINDOW: u32 = 4 * 1024 * 1024;

/// The connection's receive window: HTTP/2's largest. h2 lets DATA frames
/// of under 256 bytes that wait unread use up a budget of half this window,
/// each charged 256 bytes less its length, and past it closes the connection
/// with ENHANCE_YOUR_CALM. A server that writes every message in a frame of
/// its own (grpc-go does) faster than the harness reads is legal, so the
/// budget (about 1 GiB) must outlast a whole stream window of the smallest
/// frames, 5-byte empty messages (about 200 MiB), several times over.
pub(crate) const CONNECTION_WINDOW: u32 = (1 << 31) - 1;

async fn handshake(stream: Box<dyn Stream>) -> Result<SendRequest<tonic::body::Body>, BoxError> {
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake(TokioIo::new(stream))
        .await?;
    tokio::spawn(async move {
        // Ends when the server closes the connection; the next call
        // reconnects.
        let _ = connection.await;
    });
    Ok(sender)
}

impl tower_service::Service<Request<tonic::body::Body>> for Channel {
    type Response = Response<Incoming>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<tonic::body::Body>) -> Self::Future {
        let channel = self.clone();
        Box::pin(async move {
            // tonic's client builds a path-only URI; HTTP/2 wants the origin.
            let path = request.uri().path_and_query().cloned();
            let mut parts = http::uri::Parts::default();
            parts.scheme = Some(if channel.security.is_tls() {
                http::uri::Scheme::HTTPS
            } else {
                http::uri::Scheme::HTTP
            });
            parts.authority = Some(channel.authority.clone());
            parts.path_and_query = path;
            *request.uri_mut() = Uri::from_parts(parts)?;
            // The call's own metadata wins over the channel's headers.
            let mut added = http::HeaderMap::new();
            for (name, value) in channel.security.headers() {
                if !request.headers().contains_key(name) {
                    added.append(name, value.clone());
                }
            }
            request.headers_mut().extend(added);
            // No `ready()`: for HTTP/2 it only says the connection is open,
            // which `sender()` has just checked.
            let mut sender = channel.sender().await?;
            sender.send_request(request).await.map_err(|err| unsent(&channel.authority, err))
        })
    }
}

/// A call that got no response headers. A stream the server reset keeps
/// the status its reset code means; a connection that failed or closed
/// under the call is UNAVAILABLE, as every gRPC client reports it, so that
/// checks can tell a refused connection from a status the server sent.
fn unsent(authority: &Authority, err: hyper::Error) -> BoxError {
    let reset_by_server = std::error::Error::source(&err)
        .and_then(|source| source.downcast_ref::<h2::Error>())
        .is_some_and(|h2| h2.is_reset() && h2.is_remote() && !h2.is_go_away());
    let status = tonic::Status::from_error(Box::new(err));
    if reset_by_server {
        return Box::new(status);
    }
    let message = format!("the connection to {authority} failed: {}", status.message());
    let mut unavailable = tonic::Status::unavailable(message);
    unavailable.set_source(Arc::new(status));
    Box::new(unavailable)
}

/// Whether `status` reports a call that failed beneath gRPC (a connection
/// refused, closed, reset or broken as HTTP/2) rather than a status the
/// server chose. Both read as UNAVAILABLE, as in every gRPC client, but a
/// server may rightly answer UNAVAILABLE itself (its own backend is down),
/// and that is an answer, not a fault. A status read from `grpc-status`
/// never has a source; tonic and this transport attach the error beneath
/// to every status they make up.
pub fn connection_failed(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable && std::error::Error::source(status).is_some()
}
