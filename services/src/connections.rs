//! Accepting connections and serving gRPC on them, with hyper directly.
//!
//! tonic's own `Server` wraps every call in its grpc-timeout handling, which
//! answers an expired deadline with CANCELLED instead of DEADLINE_EXCEEDED,
//! and no layer of ours can sit outside it. Serving tonic's routes with
//! hyper lets [`crate::deadline::CallDeadlineLayer`] take that job, and
//! keeps what the transport did: HTTP/2 with prior knowledge, TCP_NODELAY on
//! every accepted socket (without it a response's trailers wait in Nagle's
//! buffer for the client's delayed ACK, 40 ms on every large-request call),
//! large flow-control windows, and graceful shutdown.

use std::{future::Future, time::Duration};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;

use crate::security::Credentials;

/// HTTP/2 receive windows. hyper's server default (1 MiB each) cannot hold a
/// whole 1 MiB chunk plus framing, so the client stalls once per chunk waiting
/// for WINDOW_UPDATE: client-stream uploads ran at about 0.6 GiB/s with it and
/// 1.7 GiB/s with these (BENCHMARKS.md).
const STREAM_WINDOW: u32 = 4 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;

/// A connection's byte stream: TCP, or TLS over TCP.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// How serving ended.
pub(crate) enum Ended {
    /// Every connection finished after the stop signal.
    Drained,
    /// Connections were still open when `grace` ran out; they were cut off.
    CutOff,
}

/// Serves `service` on `listener` until `stop` resolves, then lets calls in
/// flight finish for up to `grace`.
pub(crate) async fn serve<S, B>(
    listener: TcpListener,
    credentials: std::sync::Arc<Credentials>,
    service: S,
    stop: impl Future<Output = ()>,
    grace: Duration,
) -> Ended
where
    S: tower_service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<B>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new()).http2_only();
    builder
        .http2()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    let graceful = GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let (builder, service, watcher) = (builder.clone(), service.clone(), graceful.watcher());
        // The acceptor of this moment: a reload changes the next
        // connection's, never this one's.
        let acceptor = credentials.acceptor();
        connections.spawn(async move {
            // The handshake runs in the connection's task, so a client that
            // stalls it holds up no one else; one that fails it (plaintext on
            // a TLS port, no client certificate under mTLS) is dropped.
            let io: Box<dyn Io> = match acceptor {
                None => Box::new(stream),
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => Box::new(tls),
                    Err(err) => {
                        tracing::debug!(error = %err, "TLS handshake failed");
                        return;
                    }
                },
            };
            let connection =
                builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service)).into_owned();
            let _ = watcher.watch(connection).await;
        });
        // Reap finished connections, so a long-running server keeps none.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => Ended::Drained,
        Err(_) => {
            connections.abort_all();
            Ended::CutOff
        }
    }
}
