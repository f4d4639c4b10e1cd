//! gRPC calls written straight onto the `h2` crate, for load.
//!
//! [`DynamicClient`](crate::DynamicClient) goes through tonic's codec and
//! hyper, which spawn a task for every request body and allocate a decode
//! buffer for every response. Measured against the release server on two
//! cores, that costs about 15 µs of client CPU per unary call, where h2load
//! spends about 4 µs: a load generator that costs more than the server it
//! loads ends up measuring itself. A [`DirectClient`] frames requests and
//! reads responses itself, inside the caller's task.
//!
//! It keeps every decision of [`Channel`]: the connection is dialled the
//! same way (h2c, or TLS with ALPN `h2`), the [`crate::Security`]'s headers
//! go on every call, a connection that fails under a call is UNAVAILABLE
//! and the next call reconnects (after a backoff, once a dial has failed:
//! see [`Backoff`]), a stream the server reset keeps the status
//! its reset code means, and the deadline is sent but never enforced: a
//! watchdog at twice it reports [`CallError::NoAnswer`].

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use tonic::{Code, Status};

use crate::{CallError, Channel};

/// One HTTP/2 connection of its own, opened on first use and reopened
/// after it fails.
#[derive(Debug)]
pub struct DirectClient {
    channel: Channel,
    /// The open connection, and which one it is: a call that sees it fail
    /// forgets that one only, not a newer one another call opened.
    open: Mutex<Option<(u64, SendRequest<Bytes>)>>,
    /// Only one call dials at a time; the others wait and share it. After
    /// a failed dial, the next waits a backoff first.
    dialling: tokio::sync::Mutex<Backoff>,
    opened: AtomicU64,
}

/// When to dial again after failed dials: 10 ms after the first, doubling
/// up to a second, as gRPC clients back off (faster at first, since a fault
/// run restarts a server in well under a second).
#[derive(Debug, Default)]
struct Backoff {
    next: Option<std::time::Instant>,
    wait: Duration,
}

impl Backoff {
    fn failed(&mut self) {
        self.wait = (self.wait * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        self.next = Some(std::time::Instant::now() + self.wait);
    }
}

/// What every call of one method sends besides its messages, built once.
#[derive(Debug, Clone)]
pub struct DirectRequest {
    uri: Uri,
    headers: HeaderMap,
    watchdog: Duration,
}

impl DirectClient {
    /// A client that dials `channel`'s server with its security; it shares
    /// no connection with `channel`.
    pub fn new(channel: &Channel) -> DirectClient {
        DirectClient {
            channel: channel.clone(),
            open: Mutex::new(None),
            dialling: tokio::sync::Mutex::new(Backoff::default()),
            opened: AtomicU64::new(0),
        }
    }

    /// The request line and headers of calls to `path` with `timeout`, and
    /// the watchdog (twice the timeout) that bounds each.
    pub fn request(&self, path: &str, timeout: Duration) -> anyhow::Result<DirectRequest> {
        let uri: Uri = format!("{}{path}", self.channel.url()).parse()?;
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/grpc"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        headers.insert("grpc-timeout", HeaderValue::from_str(&format!("{}m", timeout.as_millis().max(1)))?);
        for (name, value) in self.channel.security().headers() {
            headers.append(name, value.clone());
        }
        Ok(DirectRequest { uri, headers, watchdog: timeout * 2 })
    }

    /// One call: sends `frames` (request messages, each made by [`frame`])
    /// `interval` apart (all at once when zero), and hands each response
    /// message's bytes to `on_message` as it arrives. Ends with OK, or how
    /// the call failed.
    pub async fn call(
        &self,
        request: &DirectRequest,
        frames: &[Bytes],
        interval: Duration,
        on_message: impl FnMut(Bytes),
    ) -> Result<(), CallError> {
        match tokio::time::timeout(request.watchdog, self.exchange(request, frames, interval, on_message))
            .await
        {
            Ok(ended) => ended,
            Err(_) => Err(CallError::NoAnswer { after: request.watchdog }),
        }
    }

    async fn exchange(
        &self,
        request: &DirectRequest,
        frames: &[Bytes],
        interval: Duration,
        mut on_message: impl FnMut(Bytes),
    ) -> Result<(), CallError> {
        let (generation, sender) = self.sender().await?;
        let mut sender = match sender.ready().await {
            Ok(sender) => sender,
            Err(err) => return Err(self.failed(generation, &err)),
        };
        let mut head = Request::new(());
        *head.method_mut() = Method::POST;
        *head.uri_mut() = request.uri.clone();
        *head.headers_mut() = request.headers.clone();
        let (response, mut send) =
            sender.send_request(head, frames.is_empty()).map_err(|err| self.failed(generation, &err))?;
        let sending = async move {
            let last = frames.len().saturating_sub(1);
            for (index, frame) in frames.iter().enumerate() {
                if index > 0 && !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
                // A stream the server has ended or reset refuses more data;
                // the response says how the call ended.
                if send.send_data(frame.clone(), index == last).is_err() {
                    break;
                }
            }
        };
        let receiving = async {
            let response = response.await.map_err(|err| self.failed(generation, &err))?;
            let (head, mut body) = response.into_parts();
            // Trailers-Only: the status comes in the headers.
            if let Some(status) = Status::from_header_map(&head.headers) {
                return ended(status);
            }
            if head.status != http::StatusCode::OK {
                return Err(CallError::Status(from_http_status(head.status)));
            }
            // What is left of a message that a DATA frame cut in two.
            let mut buffer = BytesMut::new();
            while let Some(data) = body.data().await {
                let mut data = data.map_err(|err| self.failed(generation, &err))?;
                let _ = body.flow_control().release_capacity(data.len());
                if buffer.is_empty() {
                    // Whole messages are sliced out of the frame, uncopied.
                    while let Some(message) = whole_message(&mut data)? {
                        on_message(message);
                    }
                    buffer.extend_from_slice(&data);
                    continue;
                }
                buffer.extend_from_slice(&data);
                while let Some(message) = next_message(&mut buffer)? {
                    on_message(message);
                }
            }
            if !buffer.is_empty() {
                return Err(CallError::Protocol(format!(
                    "the response ended inside a message, {} bytes into it",
                    buffer.len()
                )));
            }
            let trailers = body.trailers().await.map_err(|err| self.failed(generation, &err))?;
            // OK without building a Status: most calls of a load run.
            if trailers
                .as_ref()
                .and_then(|trailers| trailers.get("grpc-status"))
                .is_some_and(|code| code == "0")
            {
                return Ok(());
            }
            match trailers.as_ref().and_then(Status::from_header_map) {
                Some(status) => ended(status),
                None => Err(CallError::Protocol("the response ended without a grpc-status".to_owned())),
            }
        };
        // The response may end the call while requests are still being
        // paced out: then the rest are not sent.
        tokio::pin!(sending, receiving);
        let mut sent = false;
        loop {
            tokio::select! {
                () = &mut sending, if !sent => sent = true,
                ending = &mut receiving => return ending,
            }
        }
    }

    /// The open connection, dialling one if there is none.
    async fn sender(&self) -> Result<(u64, SendRequest<Bytes>), CallError> {
        if let Some(open) = self.open.lock().expect("not poisoned").clone() {
            return Ok(open);
        }
        let mut backoff = self.dialling.lock().await;
        if let Some(open) = self.open.lock().expect("not poisoned").clone() {
            return Ok(open);
        }
        // A server that is down refuses in microseconds: without a pause,
        // every worker would fail call after call against it.
        if let Some(next) = backoff.next {
            tokio::time::sleep_until(next.into()).await;
        }
        match self.dial().await {
            Ok(sender) => {
                *backoff = Backoff::default();
                let generation = self.opened.fetch_add(1, Ordering::Relaxed);
                *self.open.lock().expect("not poisoned") = Some((generation, sender.clone()));
                Ok((generation, sender))
            }
            Err(err) => {
                backoff.failed();
                Err(CallError::Status(Status::unavailable(format!(
                    "the connection to {} failed: {err}",
                    self.channel.url()
                ))))
            }
        }
    }

    /// A new connection, its HTTP/2 handshake done and its frames driven by
    /// a task of its own.
    async fn dial(&self) -> Result<SendRequest<Bytes>, Box<dyn std::error::Error + Send + Sync>> {
        let stream = self.channel.dial().await?;
        let (sender, connection) = h2::client::Builder::new()
            // As the harness's channel, for the same reasons.
            .initial_window_size(crate::transport::STREAM_WINDOW)
            .initial_connection_window_size(crate::transport::CONNECTION_WINDOW)
            .handshake::<_, Bytes>(stream)
            .await?;
        tokio::spawn(async move {
            // Ends when the server closes the connection; the next call
            // dials again.
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// How an h2 error ends a call. A reset the server sent keeps its code;
    /// anything else means the connection failed, so it is forgotten and
    /// the call is UNAVAILABLE.
    fn failed(&self, generation: u64, err: &h2::Error) -> CallError {
        if err.is_reset() && err.is_remote() && !err.is_go_away() {
            return CallError::Status(from_reset(err.reason().unwrap_or(h2::Reason::INTERNAL_ERROR)));
        }
        let mut open = self.open.lock().expect("not poisoned");
        if open.as_ref().is_some_and(|(current, _)| *current == generation) {
            *open = None;
        }
        CallError::Status(Status::unavailable(format!(
            "the connection to {} failed: {err}",
            self.channel.url()
        )))
    }
}

/// A request message as it goes on the wire: uncompressed, behind gRPC's
/// 5-byte prefix. Framed once, a message can be sent by many calls.
pub fn frame(message: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(message.len()).expect("a gRPC message is under 4 GiB"));
    frame.put_slice(message);
    frame.freeze()
}

/// The next whole message in `buffer`, taken out of it.
fn next_message(buffer: &mut BytesMut) -> Result<Option<Bytes>, CallError> {
    let Some(length) = message_length(buffer)? else { return Ok(None) };
    buffer.advance(5);
    Ok(Some(buffer.split_to(length).freeze()))
}

/// [`next_message`] on a frame's own bytes.
fn whole_message(data: &mut Bytes) -> Result<Option<Bytes>, CallError> {
    let Some(length) = message_length(data)? else { return Ok(None) };
    data.advance(5);
    Ok(Some(data.split_to(length)))
}

/// The length of the message at the start of `bytes`, once all of it is
/// there.
fn message_length(bytes: &[u8]) -> Result<Option<usize>, CallError> {
    if bytes.len() < 5 {
        return Ok(None);
    }
    if bytes[0] != 0 {
        return Err(CallError::Protocol(
            "a compressed response message, though the call accepted no compression".to_owned(),
        ));
    }
    let length = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    Ok((bytes.len() >= 5 + length).then_some(length))
}

fn ended(status: Status) -> Result<(), CallError> {
    match status.code() {
        Code::Ok => Ok(()),
        _ => Err(CallError::Status(status)),
    }
}

/// gRPC's mapping of an HTTP status that came without a grpc-status.
fn from_http_status(status: http::StatusCode) -> Status {
    let code = match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    Status::new(code, format!("HTTP status {status} without a grpc-status"))
}

/// gRPC's mapping of an HTTP/2 reset code.
fn from_reset(reason: h2::Reason) -> Status {
    let code = match reason {
        h2::Reason::REFUSED_STREAM => Code::Unavailable,
        h2::Reason::CANCEL => Code::Cancelled,
        h2::Reason::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
        h2::Reason::INADEQUATE_SECURITY => Code::PermissionDenied,
        _ => Code::Internal,
    };
    Status::new(code, format!("the server reset the stream: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_from_the_stream_whole() {
        let mut buffer = BytesMut::new();
        buffer.extend_from_slice(&[0, 0, 0, 0, 3, b'a', b'b']);
        assert_eq!(next_message(&mut buffer).unwrap(), None);
        buffer.extend_from_slice(&[b'c', 0, 0, 0, 0, 0, 0]);
        assert_eq!(next_message(&mut buffer).unwrap(), Some(Bytes::from_static(b"abc")));
        assert_eq!(next_message(&mut buffer).unwrap(), Some(Bytes::new()));
        assert_eq!(buffer.len(), 1);
        let mut compressed = BytesMut::from(&[1, 0, 0, 0, 0][..]);
        assert!(matches!(next_message(&mut compressed), Err(CallError::Protocol(_))));
        let mut frame = Bytes::from_static(&[0, 0, 0, 0, 1, b'x', 0, 0]);
        assert_eq!(whole_message(&mut frame).unwrap(), Some(Bytes::from_static(b"x")));
        assert_eq!(whole_message(&mut frame).unwrap(), None);
        assert_eq!(&frame[..], &[0, 0]);
    }
}
