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
//! closed it, so one hostile case cannot poison the ones after it.

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

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Cheap to clone; clones share the connection.
#[derive(Clone, Debug)]
pub struct RawChannel {
    authority: Authority,
    connection: Arc<Mutex<Option<SendRequest<tonic::body::Body>>>>,
}

impl RawChannel {
    /// A channel to `url` (`http://host:port`); nothing is dialled until the
    /// first call.
    pub fn new(url: &str) -> Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("{url:?} is not a valid URL"))?;
        if uri.scheme_str() != Some("http") {
            anyhow::bail!("{url}: only plaintext http:// (h2c) targets are supported");
        }
        let authority = uri.authority().cloned().with_context(|| format!("{url} has no host:port"))?;
        Ok(RawChannel { authority, connection: Arc::new(Mutex::new(None)) })
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
            Box::new(tonic::Status::unavailable(format!("cannot connect to {}: {err}", self.authority)))
                as BoxError
        })?;
        *self.connection.lock().expect("not poisoned") = Some(sender.clone());
        Ok(sender)
    }

    async fn connect(&self) -> Result<SendRequest<tonic::body::Body>, BoxError> {
        let stream = TcpStream::connect(self.authority.as_str()).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            // Large uploads: a 4 MiB message (the largest chunk the
            // contracts send) crosses without waiting for a WINDOW_UPDATE.
            .initial_stream_window_size(4 * 1024 * 1024)
            .initial_connection_window_size(8 * 1024 * 1024)
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            // Ends when the server closes the connection; the next call
            // reconnects.
            let _ = connection.await;
        });
        Ok(sender)
    }
}

impl tower_service::Service<Request<tonic::body::Body>> for RawChannel {
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
            parts.scheme = Some(http::uri::Scheme::HTTP);
            parts.authority = Some(channel.authority.clone());
            parts.path_and_query = path;
            *request.uri_mut() = Uri::from_parts(parts)?;
            // No `ready()`: for HTTP/2 it only says the connection is open,
            // which `sender()` has just checked.
            let mut sender = channel.sender().await?;
            Ok(sender.send_request(request).await?)
        })
    }
}
