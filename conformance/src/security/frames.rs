//! HTTP/2 frames written by hand, for requests no client library would
//! send: header names in upper case, control characters in values, header
//! blocks of a megabyte. hyper and h2 refuse to encode these, which is
//! right for a client and useless for a check of what a server does with
//! them.
//!
//! Headers are HPACK literals without indexing and without Huffman coding
//! (RFC 7541 §6.2.2), which every decoder must accept. Nothing the server
//! sends back is decoded beyond frame headers: what matters is whether the
//! request's stream is answered, reset, or the connection goes away.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use harness::transport::Stream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The largest frame payload every peer must accept before it says more.
const MAX_FRAME: usize = 16_384;
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

/// What became of the request's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fate {
    /// The server sent response headers (its status is not decoded).
    Answered,
    /// RST_STREAM, with its error code.
    Reset(u32),
    /// GOAWAY, with its error code.
    GoAway(u32),
    /// The connection closed without either.
    Closed,
    /// Nothing within the limit.
    Hung,
}

impl std::fmt::Display for Fate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fate::Answered => f.write_str("response headers"),
            Fate::Reset(code) => write!(f, "RST_STREAM (error code {code})"),
            Fate::GoAway(code) => write!(f, "GOAWAY (error code {code})"),
            Fate::Closed => f.write_str("the connection closed"),
            Fate::Hung => f.write_str("nothing: the server neither answered nor refused"),
        }
    }
}

/// One request: the pseudo-headers and gRPC's own, then `extra` exactly as
/// given, then one empty gRPC message ending the stream.
pub(super) struct Request<'a> {
    pub(super) scheme: &'a str,
    pub(super) authority: &'a str,
    pub(super) path: &'a str,
    pub(super) extra: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Sends `request` as stream 1 on `stream` and waits up to `limit` for its
/// fate.
pub(super) async fn send(
    stream: Box<dyn Stream>,
    request: &Request<'_>,
    limit: Duration,
) -> std::io::Result<Fate> {
    let mut out = BytesMut::new();
    out.put_slice(PREFACE);
    frame(&mut out, SETTINGS, 0, 0, &[]);
    let mut block = BytesMut::new();
    let fixed: [(&[u8], &[u8]); 6] = [
        (b":method", b"POST"),
        (b":scheme", request.scheme.as_bytes()),
        (b":path", request.path.as_bytes()),
        (b":authority", request.authority.as_bytes()),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
    ];
    for (name, value) in fixed.iter().copied().chain(request.extra.iter().map(|(n, v)| (&n[..], &v[..]))) {
        literal(&mut block, name, value);
    }
    let mut chunks = block.chunks(MAX_FRAME).peekable();
    let mut kind = HEADERS;
    while let Some(chunk) = chunks.next() {
        let flags = if chunks.peek().is_none() { END_HEADERS } else { 0 };
        frame(&mut out, kind, flags, 1, chunk);
        kind = CONTINUATION;
    }
    // An empty message: flag 0, length 0.
    frame(&mut out, DATA, END_STREAM, 1, &[0, 0, 0, 0, 0]);
    // Writing runs beside reading: a server may stop reading a megabyte of
    // headers and answer (or not) while the write is stuck, and the limit
    // must cover both. A failed write is no error of the check's: the
    // server may refuse before reading everything, and what it does then
    // is the answer.
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (acks, mut to_write) = tokio::sync::mpsc::unbounded_channel::<BytesMut>();
    let writing = tokio::spawn(async move {
        if writer.write_all(&out).await.is_err() {
            return;
        }
        while let Some(bytes) = to_write.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let fate = tokio::time::timeout(limit, read_fate(&mut reader, acks)).await.unwrap_or(Ok(Fate::Hung));
    writing.abort();
    fate
}

async fn read_fate(
    stream: &mut tokio::io::ReadHalf<Box<dyn Stream>>,
    acks: tokio::sync::mpsc::UnboundedSender<BytesMut>,
) -> std::io::Result<Fate> {
    loop {
        let mut head = [0u8; 9];
        if read_exact_or_eof(stream, &mut head).await?.is_none() {
            return Ok(Fate::Closed);
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        if read_exact_or_eof(stream, &mut payload).await?.is_none() {
            return Ok(Fate::Closed);
        }
        let code =
            |at: usize| payload.get(at..at + 4).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        match kind {
            HEADERS if stream_id == 1 => return Ok(Fate::Answered),
            RST_STREAM if stream_id == 1 => return Ok(Fate::Reset(code(0))),
            GOAWAY => return Ok(Fate::GoAway(code(4))),
            SETTINGS if flags & ACK == 0 => {
                let mut ack = BytesMut::new();
                frame(&mut ack, SETTINGS, ACK, 0, &[]);
                // A server that has stopped reading shows in what it sends.
                let _ = acks.send(ack);
            }
            _ => {}
        }
    }
}

/// Fills `buf`, or `None` when the stream ends (or is reset) first.
async fn read_exact_or_eof(
    stream: &mut tokio::io::ReadHalf<Box<dyn Stream>>,
    buf: &mut [u8],
) -> std::io::Result<Option<()>> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(Some(())),
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) =>
        {
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

fn frame(out: &mut BytesMut, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.put_slice(&len.to_be_bytes()[1..]);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream);
    out.put_slice(payload);
}

/// A literal header field without indexing, new name, no Huffman.
fn literal(block: &mut BytesMut, name: &[u8], value: &[u8]) {
    block.put_u8(0);
    string(block, name);
    string(block, value);
}

fn string(block: &mut BytesMut, bytes: &[u8]) {
    integer(block, 7, 0, bytes.len());
    block.put_slice(bytes);
}

/// An HPACK integer with an `n`-bit prefix, `high` in the bits above it.
fn integer(block: &mut BytesMut, n: u32, high: u8, value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        block.put_u8(high | value as u8);
        return;
    }
    block.put_u8(high | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        block.put_u8((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    block.put_u8(rest as u8);
}
