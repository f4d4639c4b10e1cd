//! Reports message-size violations as RESOURCE_EXHAUSTED.
//!
//! The gRPC spec, grpc-go, grpc-java and grpcio all answer an oversized
//! message with RESOURCE_EXHAUSTED; tonic 0.14 says OUT_OF_RANGE. Clients
//! retry or alert on the code, so the server must say what every other server
//! says. This layer rewrites exactly tonic's size-limit statuses, whether they
//! travel in headers (trailers-only responses) or in trailers (streams), and
//! leaves every other OUT_OF_RANGE alone.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use tonic::Code;

/// Prefixes of the `grpc-message` tonic writes when a size limit is hit.
const TONIC_SIZE_LIMIT_MESSAGES: &[&str] =
    &["Error, decoded message length too large", "Error, encoded message length too large"];

/// Tower layer that installs [`SizeLimitStatus`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SizeLimitStatusLayer;

impl<S> tower_layer::Layer<S> for SizeLimitStatusLayer {
    type Service = SizeLimitStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SizeLimitStatus { inner }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct SizeLimitStatus<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for SizeLimitStatus<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<RewriteTrailers<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            rewrite(response.headers_mut());
            Ok(response.map(|inner| RewriteTrailers { inner }))
        })
    }
}

pin_project_lite::pin_project! {
    /// Response body whose trailers go through [`rewrite`].
    pub(crate) struct RewriteTrailers<B> {
        #[pin]
        inner: B,
    }
}

impl<B: Body> Body for RewriteTrailers<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut poll = self.project().inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &mut poll
            && let Some(trailers) = frame.trailers_mut()
        {
            rewrite(trailers);
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn rewrite(headers: &mut HeaderMap) {
    let is_out_of_range = headers
        .get("grpc-status")
        .is_some_and(|status| status.as_bytes() == (Code::OutOfRange as i32).to_string().as_bytes());
    // `grpc-message` is percent-encoded on the wire (tonic encodes spaces).
    let is_size_limit = headers.get("grpc-message").is_some_and(|message| {
        let message = percent_encoding::percent_decode(message.as_bytes()).decode_utf8_lossy();
        TONIC_SIZE_LIMIT_MESSAGES.iter().any(|prefix| message.starts_with(prefix))
    });
    if is_out_of_range && is_size_limit {
        headers.insert("grpc-status", HeaderValue::from(Code::ResourceExhausted as i32));
    }
}
