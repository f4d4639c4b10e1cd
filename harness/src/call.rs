//! A client for any method of any service, driven by descriptors.
//!
//! Every pattern goes through one streaming call underneath, so response
//! headers and trailers are always captured separately, and a unary method
//! that answers twice is caught rather than silently truncated.
//!
//! Two clocks matter. `CallOptions::timeout` is the deadline the *server* is
//! told (`grpc-timeout`); a conforming server ends the call with
//! DEADLINE_EXCEEDED itself. `CallOptions::watchdog` is the harness's own
//! limit: when it fires, the error is [`CallError::NoAnswer`], never a status,
//! so a server that ignores its deadline cannot hide behind a client-side one.

use std::{fmt, time::Duration};

use bytes::Bytes;
use http::uri::PathAndQuery;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor};
use std::{future::Future, pin::Pin};

use tokio::{
    sync::mpsc,
    task::JoinHandle,
    time::{Instant, Sleep, sleep_until},
};
use tokio_stream::{Stream, wrappers::UnboundedReceiverStream};
use tonic::{Status, Streaming, client::Grpc, metadata::MetadataMap};

use crate::{codec::RawCodec, transport::Channel};

/// How long the harness gives a whole call by default (the watchdog).
pub const DEFAULT_WATCHDOG: Duration = Duration::from_secs(30);

/// Per-call settings.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// Deadline sent to the server as `grpc-timeout`.
    pub timeout: Option<Duration>,
    /// Request metadata (ASCII and `-bin` entries).
    pub metadata: MetadataMap,
    /// The harness's own limit on the whole call; see the module docs.
    pub watchdog: Duration,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions { timeout: None, metadata: MetadataMap::new(), watchdog: DEFAULT_WATCHDOG }
    }
}

impl CallOptions {
    /// Options with a server deadline.
    pub fn with_timeout(timeout: Duration) -> Self {
        CallOptions { timeout: Some(timeout), ..Default::default() }
    }
}

/// Why a call did not produce what was asked.
#[derive(Debug)]
pub enum CallError {
    /// The server (or the transport) ended the call with this status.
    Status(Status),
    /// A response does not decode as the method's declared output type.
    Decode {
        /// Full name of the expected message type.
        expected_type: String,
        /// What prost-reflect said.
        error: prost::DecodeError,
    },
    /// The server broke the shape of the RPC pattern, e.g. a unary method
    /// answered with zero or two messages.
    Protocol(String),
    /// The watchdog fired: the server neither answered nor ended the call.
    NoAnswer {
        /// The watchdog duration.
        after: Duration,
    },
}

impl CallError {
    /// The status, when the call ended with one.
    pub fn status(&self) -> Option<&Status> {
        match self {
            CallError::Status(status) => Some(status),
            _ => None,
        }
    }

    /// The status code, when the call ended with one.
    pub fn code(&self) -> Option<tonic::Code> {
        self.status().map(Status::code)
    }

    /// Whether the call failed beneath gRPC, not with a status the server
    /// sent: see [`crate::transport::connection_failed`].
    pub fn connection_failed(&self) -> bool {
        self.status().is_some_and(crate::transport::connection_failed)
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Status(status) => write!(f, "status {:?}: {}", status.code(), status.message()),
            CallError::Decode { expected_type, error } => {
                write!(f, "response does not decode as {expected_type}: {error}")
            }
            CallError::Protocol(what) => write!(f, "protocol violation: {what}"),
            CallError::NoAnswer { after } => write!(f, "no answer from the server within {after:?}"),
        }
    }
}

impl std::error::Error for CallError {}

impl From<Status> for CallError {
    fn from(status: Status) -> Self {
        CallError::Status(status)
    }
}

/// A complete single-response call.
#[derive(Debug, Clone)]
pub struct Reply<T> {
    /// Response headers.
    pub headers: MetadataMap,
    /// The one response message.
    pub message: T,
    /// Response trailers (without `grpc-status`, which tonic consumes).
    pub trailers: MetadataMap,
}

/// Calls any method on one channel. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamicClient {
    grpc: Grpc<Channel>,
}

/// Largest response the harness accepts by default. Generous, because the
/// harness must see what a server sends rather than reject it.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

impl DynamicClient {
    /// A client for `url` (`http://host:port`); connects on the first call.
    pub fn connect(url: &str) -> anyhow::Result<Self> {
        Ok(Self::new(Channel::new(url)?))
    }

    /// A client on `channel` that sends messages of any size and accepts
    /// responses up to 64 MiB. Deadlines are sent to the server, never
    /// enforced by the client: see [`crate::transport`].
    pub fn new(channel: Channel) -> Self {
        let grpc =
            Grpc::new(channel).max_decoding_message_size(MAX_RESPONSE).max_encoding_message_size(usize::MAX);
        DynamicClient { grpc }
    }

    /// Unary: one request, exactly one response.
    pub async fn unary(
        &mut self,
        method: &MethodDescriptor,
        request: &DynamicMessage,
        options: &CallOptions,
    ) -> Result<Reply<DynamicMessage>, CallError> {
        let requests = tokio_stream::iter([encode(request)]);
        let stream = self.open(&path_of(method), requests, options, method.output()).await?;
        stream.single().await
    }

    /// Server streaming: one request, a stream of responses.
    pub async fn server_streaming(
        &mut self,
        method: &MethodDescriptor,
        request: &DynamicMessage,
        options: &CallOptions,
    ) -> Result<ResponseStream, CallError> {
        let requests = tokio_stream::iter([encode(request)]);
        self.open(&path_of(method), requests, options, method.output()).await
    }

    /// Client streaming: every request, then exactly one response.
    pub async fn client_streaming(
        &mut self,
        method: &MethodDescriptor,
        requests: &[DynamicMessage],
        options: &CallOptions,
    ) -> Result<Reply<DynamicMessage>, CallError> {
        let requests = tokio_stream::iter(requests.iter().map(encode).collect::<Vec<_>>());
        let stream = self.open(&path_of(method), requests, options, method.output()).await?;
        stream.single().await
    }

    /// Bidirectional streaming, interactively: send, await a reply, send
    /// again. Nothing is awaited before the first send, since some servers
    /// (grpcio) send no response headers before their first reply.
    pub fn bidi(&self, method: &MethodDescriptor, options: &CallOptions) -> BidiCall {
        let path = path_of(method).parse().expect("descriptor names always form a valid path");
        BidiCall::start(self.grpc.clone(), path, options.clone(), method.output())
    }

    /// Any call with raw bodies: for invalid protobuf, unknown methods, and
    /// anything the typed calls cannot express. Responses are decoded as
    /// `output`.
    pub async fn raw(
        &mut self,
        path: &str,
        bodies: Vec<Bytes>,
        options: &CallOptions,
        output: MessageDescriptor,
    ) -> Result<ResponseStream, CallError> {
        self.open(path, tokio_stream::iter(bodies), options, output).await
    }

    async fn open(
        &mut self,
        path: &str,
        requests: impl Stream<Item = Bytes> + Send + 'static,
        options: &CallOptions,
        output: MessageDescriptor,
    ) -> Result<ResponseStream, CallError> {
        // One timer for the whole call, registered once: a fresh timeout
        // around every await would cost a timer-wheel insertion each.
        let mut watchdog = Watchdog::new(options.watchdog);
        let request = build_request(requests, options);
        let path =
            path.parse().map_err(|_| CallError::Protocol(format!("{path:?} is not a valid method path")))?;
        let response = watchdog.guard(start(&mut self.grpc, path, request)).await??;
        let (headers, body, _) = response.into_parts();
        Ok(ResponseStream { headers, body, output, watchdog })
    }
}

/// The harness's limit on a call, shared by every await of it.
#[derive(Debug)]
struct Watchdog {
    sleep: Pin<Box<Sleep>>,
    after: Duration,
}

impl Watchdog {
    fn new(after: Duration) -> Self {
        Watchdog { sleep: Box::pin(sleep_until(Instant::now() + after)), after }
    }

    async fn guard<F: Future>(&mut self, future: F) -> Result<F::Output, CallError> {
        tokio::select! {
            biased;
            output = future => Ok(output),
            () = &mut self.sleep => Err(CallError::NoAnswer { after: self.after }),
        }
    }
}

/// Waits for the connection and starts the call: every pattern, the bidi
/// task included, begins here.
async fn start(
    grpc: &mut Grpc<Channel>,
    path: PathAndQuery,
    request: tonic::Request<impl Stream<Item = Bytes> + Send + 'static>,
) -> Result<tonic::Response<Streaming<Bytes>>, Status> {
    grpc.ready().await.map_err(|err| {
        let mut status = Status::unavailable(format!("channel not ready: {err}"));
        status.set_source(std::sync::Arc::from(err));
        status
    })?;
    grpc.streaming(request, path, RawCodec).await
}

/// `/package.Service/Method`.
pub fn path_of(method: &MethodDescriptor) -> String {
    format!("/{}/{}", method.parent_service().full_name(), method.name())
}

fn encode(message: &DynamicMessage) -> Bytes {
    message.encode_to_vec().into()
}

fn build_request<T>(message: T, options: &CallOptions) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = options.metadata.clone();
    if let Some(timeout) = options.timeout {
        request.set_timeout(timeout);
    }
    request
}

fn decode(output: &MessageDescriptor, body: Bytes) -> Result<DynamicMessage, CallError> {
    DynamicMessage::decode(output.clone(), body)
        .map_err(|error| CallError::Decode { expected_type: output.full_name().to_owned(), error })
}

/// Responses of a call whose requests have all been handed over.
#[derive(Debug)]
pub struct ResponseStream {
    headers: MetadataMap,
    body: Streaming<Bytes>,
    output: MessageDescriptor,
    watchdog: Watchdog,
}

impl ResponseStream {
    /// Response headers.
    pub fn headers(&self) -> &MetadataMap {
        &self.headers
    }

    /// The next response; `Ok(None)` once the server has ended the call with OK.
    pub async fn message(&mut self) -> Result<Option<DynamicMessage>, CallError> {
        match self.raw_message().await? {
            Some(body) => decode(&self.output, body).map(Some),
            None => Ok(None),
        }
    }

    /// The next response body, undecoded.
    pub async fn raw_message(&mut self) -> Result<Option<Bytes>, CallError> {
        self.watchdog.guard(self.body.message()).await?.map_err(CallError::Status)
    }

    /// Trailers, once every message has been read.
    pub async fn trailers(&mut self) -> Result<MetadataMap, CallError> {
        let trailers = self.watchdog.guard(self.body.trailers()).await??;
        Ok(trailers.unwrap_or_default())
    }

    /// Every response until the call ends, and how it ended. Messages that
    /// arrived before an error are kept: a suite needs to see them.
    pub async fn collect(mut self) -> (Vec<DynamicMessage>, Result<MetadataMap, CallError>) {
        let mut messages = Vec::new();
        loop {
            match self.message().await {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => return (messages, self.trailers().await),
                Err(err) => return (messages, Err(err)),
            }
        }
    }

    async fn single(mut self) -> Result<Reply<DynamicMessage>, CallError> {
        let message = self.message().await?.ok_or_else(|| {
            CallError::Protocol("the call ended with OK but without a response message".to_owned())
        })?;
        if self.raw_message().await?.is_some() {
            return Err(CallError::Protocol("a single-response method sent a second message".to_owned()));
        }
        let trailers = self.trailers().await?;
        Ok(Reply { headers: self.headers, message, trailers })
    }
}

enum Event {
    Headers(MetadataMap),
    Message(Bytes),
    End(Result<MetadataMap, Status>),
}

/// An open bidirectional call. Dropping it cancels the call.
#[derive(Debug)]
pub struct BidiCall {
    requests: Option<mpsc::UnboundedSender<Bytes>>,
    events: mpsc::UnboundedReceiver<Event>,
    task: JoinHandle<()>,
    output: MessageDescriptor,
    headers: Option<MetadataMap>,
    trailers: Option<MetadataMap>,
    ended: bool,
    watchdog: Watchdog,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Headers(_) => f.write_str("Headers"),
            Event::Message(body) => write!(f, "Message({} bytes)", body.len()),
            Event::End(result) => write!(f, "End({:?})", result.as_ref().map(|_| ())),
        }
    }
}

impl BidiCall {
    fn start(
        mut grpc: Grpc<Channel>,
        path: PathAndQuery,
        options: CallOptions,
        output: MessageDescriptor,
    ) -> Self {
        let (requests, outgoing) = mpsc::unbounded_channel::<Bytes>();
        let (events_tx, events) = mpsc::unbounded_channel();
        let request = build_request(UnboundedReceiverStream::new(outgoing), &options);
        // The call runs in its own task so that requests flow while the
        // caller has not yet asked for a response.
        let task = tokio::spawn(async move {
            let mut body = match start(&mut grpc, path, request).await {
                Ok(response) => {
                    let (headers, body, _) = response.into_parts();
                    let _ = events_tx.send(Event::Headers(headers));
                    body
                }
                Err(status) => {
                    let _ = events_tx.send(Event::End(Err(status)));
                    return;
                }
            };
            loop {
                match body.message().await {
                    Ok(Some(message)) => {
                        if events_tx.send(Event::Message(message)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {
                        let trailers = body.trailers().await.map(Option::unwrap_or_default);
                        let _ = events_tx.send(Event::End(trailers));
                        return;
                    }
                    Err(status) => {
                        let _ = events_tx.send(Event::End(Err(status)));
                        return;
                    }
                }
            }
        });
        BidiCall {
            requests: Some(requests),
            events,
            task,
            output,
            headers: None,
            trailers: None,
            ended: false,
            watchdog: Watchdog::new(options.watchdog),
        }
    }

    /// Queues one request. Fails once the sending side is closed.
    pub fn send(&mut self, message: &DynamicMessage) -> Result<(), CallError> {
        self.send_raw(encode(message))
    }

    /// Queues one raw request body.
    pub fn send_raw(&mut self, body: Bytes) -> Result<(), CallError> {
        let sender =
            self.requests.as_ref().ok_or_else(|| CallError::Protocol("send after close_send".to_owned()))?;
        // A send into an ended call is not an error of the caller: the
        // outcome shows up in `message`.
        let _ = sender.send(body);
        Ok(())
    }

    /// Half-closes: tells the server no more requests will come.
    pub fn close_send(&mut self) {
        self.requests = None;
    }

    /// The next response; `Ok(None)` once the server has ended the call with OK.
    pub async fn message(&mut self) -> Result<Option<DynamicMessage>, CallError> {
        loop {
            if self.ended {
                return Ok(None);
            }
            let event = self.watchdog.guard(self.events.recv()).await?;
            match event {
                Some(Event::Headers(headers)) => self.headers = Some(headers),
                Some(Event::Message(body)) => return decode(&self.output, body).map(Some),
                Some(Event::End(Ok(trailers))) => {
                    self.ended = true;
                    self.trailers = Some(trailers);
                }
                Some(Event::End(Err(status))) => {
                    self.ended = true;
                    return Err(CallError::Status(status));
                }
                None => {
                    self.ended = true;
                    return Err(CallError::Protocol("the call task ended without a status".to_owned()));
                }
            }
        }
    }

    /// Response headers, once they have arrived.
    pub fn headers(&self) -> Option<&MetadataMap> {
        self.headers.as_ref()
    }

    /// Trailers, once the call has ended with OK.
    pub fn trailers(&self) -> Option<&MetadataMap> {
        self.trailers.as_ref()
    }

    /// Cancels the call now (RST_STREAM with CANCEL on the wire).
    pub fn cancel(self) {}
}

impl Drop for BidiCall {
    fn drop(&mut self) {
        self.task.abort();
    }
}
