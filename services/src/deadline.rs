//! Server-side deadlines: the client's `grpc-timeout`, enforced by the
//! server with DEADLINE_EXCEEDED, as the gRPC spec, grpc-go and grpcio do.
//!
//! Two places need it. [`CallDeadlineLayer`] bounds a call until its
//! response headers (a unary or client-streaming call until its answer);
//! tonic's own server does this too, but answers CANCELLED "Timeout
//! expired", so the server is served without it (see `connections.rs`).
//! [`bounded`] bounds a response stream, which would otherwise outlive its
//! deadline once its headers are out.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use futures_util::Stream;
use tokio::time::{Instant, Sleep};
use tonic::{Status, metadata::MetadataMap};

/// Boxed response stream, the shape tonic's generated servers want.
pub(crate) type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The instant the client's `grpc-timeout` runs out, if it sent one.
///
/// The header is `1*8DIGIT unit`, with unit one of `H M S m u n`; anything
/// malformed is ignored rather than failing the call, since tonic itself
/// already rejected what it could not parse.
pub(crate) fn from_metadata(metadata: &MetadataMap) -> Option<Instant> {
    let timeout = parse_timeout(metadata.get("grpc-timeout")?.to_str().ok()?)?;
    Instant::now().checked_add(timeout)
}

fn parse_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Boxes `stream`, ending it with DEADLINE_EXCEEDED once `deadline` passes.
pub(crate) fn bounded<T, S>(stream: S, deadline: Option<Instant>) -> ResponseStream<T>
where
    S: Stream<Item = Result<T, Status>> + Send + 'static,
    T: Send + 'static,
{
    match deadline {
        None => Box::pin(stream),
        Some(deadline) => Box::pin(Bounded {
            inner: Some(Box::pin(stream)),
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
        }),
    }
}

struct Bounded<T> {
    /// `None` once the stream has ended, for either reason.
    inner: Option<ResponseStream<T>>,
    sleep: Pin<Box<Sleep>>,
}

impl<T> Stream for Bounded<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        // Poll the inner stream first so that an item that is already
        // available is not lost to a deadline passing at the same instant.
        if let Poll::Ready(item) = inner.as_mut().poll_next(cx) {
            if item.is_none() {
                self.inner = None;
            }
            return Poll::Ready(item);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            // Dropping the inner stream stops whatever work produced it.
            self.inner = None;
            return Poll::Ready(Some(Err(Status::deadline_exceeded(
                "deadline exceeded while streaming the response",
            ))));
        }
        Poll::Pending
    }
}

/// Tower layer that installs [`CallDeadline`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallDeadlineLayer;

impl<S> tower_layer::Layer<S> for CallDeadlineLayer {
    type Service = CallDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallDeadline { inner }
    }
}

/// Ends a call with DEADLINE_EXCEEDED when its deadline passes before the
/// response is ready; dropping the inner future stops the work.
#[derive(Debug, Clone)]
pub(crate) struct CallDeadline<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for CallDeadline<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| parse_timeout(value.to_str().ok()?))
            .and_then(|timeout| Instant::now().checked_add(timeout));
        let response = self.inner.call(request);
        Box::pin(async move {
            let Some(deadline) = deadline else { return response.await };
            match tokio::time::timeout_at(deadline, response).await {
                Ok(response) => response,
                Err(_) => Ok(Status::deadline_exceeded("the deadline passed before the answer was ready")
                    .into_http::<ResBody>()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(value: &str) -> Option<Duration> {
        parse_timeout(value)
    }

    #[test]
    fn parses_every_unit_and_rejects_garbage() {
        assert_eq!(parsed("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parsed("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parsed("4S"), Some(Duration::from_secs(4)));
        assert_eq!(parsed("5m"), Some(Duration::from_millis(5)));
        assert_eq!(parsed("6u"), Some(Duration::from_micros(6)));
        assert_eq!(parsed("7n"), Some(Duration::from_nanos(7)));
        assert_eq!(parsed("99999999S"), Some(Duration::from_secs(99_999_999)));
        for garbage in ["", "S", "5", "5x", "-5S", "+5S", "123456789S", "1.5S"] {
            assert_eq!(parsed(garbage), None, "{garbage:?}");
        }
    }
}
