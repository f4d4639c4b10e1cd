//! The bearer-token check, in front of every service: a refused call gets
//! UNAUTHENTICATED before any handler runs, so it does no work at all.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use crate::security::Credentials;

/// Tower layer that installs [`TokenCheck`].
#[derive(Debug, Clone)]
pub(crate) struct TokenLayer(pub(crate) Arc<Credentials>);

impl<S> tower_layer::Layer<S> for TokenLayer {
    type Service = TokenCheck<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TokenCheck { inner, credentials: self.0.clone() }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct TokenCheck<S> {
    inner: S,
    credentials: Arc<Credentials>,
}

impl<S, ReqBody> tower_service::Service<http::Request<ReqBody>> for TokenCheck<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let authorization = request.headers().get(http::header::AUTHORIZATION).map(|value| value.as_bytes());
        if self.credentials.admits(request.uri().path(), authorization) {
            return Box::pin(self.inner.call(request));
        }
        let status = tonic::Status::unauthenticated("missing or wrong bearer token");
        Box::pin(std::future::ready(Ok(status.into_http())))
    }
}
