//! Header blocks no client library would send: malformed names and values,
//! and a block of a megabyte. The server may refuse them (RST_STREAM,
//! GOAWAY, closing the connection) or answer; what it must not do is hang,
//! or stop serving. Servers differ in what they accept (grpc-go takes
//! header lists up to 16 MiB, gRPC Core stops at 16 KiB), so accepting is
//! no fault.
//!
//! Each request carries the run's own headers, so that a server demanding
//! credentials reads it as far as its handlers would.

use std::sync::Arc;

use super::{case, frames, keeps_serving, verdict};
use crate::{case::Case, context::Context, generic, report::Failure};

/// Malformed by RFC 9113 §8.2.1 (upper case, control characters) or by
/// gRPC's metadata rules (non-ASCII in a text value, a `-bin` value that is
/// not base64).
const MALFORMED: &[(&str, &[u8], &[u8])] = &[
    ("an upper-case header name", b"X-Conformance-Upper", b"value"),
    ("a NUL byte in a value", b"x-conformance-nul", b"a\0b"),
    ("CR LF in a value", b"x-conformance-crlf", b"a\r\nx-injected: 1"),
    ("non-ASCII bytes in a text value", b"x-conformance-utf8", "caf\u{e9}".as_bytes()),
    ("a -bin value that is not base64", b"x-conformance-bin", b"!!not base64!!"),
];

/// Header values of 16 KiB, 64 of them.
const HUGE_HEADERS: usize = 64;
const HUGE_VALUE: usize = 16 * 1024;

pub(super) fn cases() -> Vec<Case> {
    vec![
        case("metadata/malformed-headers-survived".to_owned(), None, |ctx| async move {
            verdict(malformed(ctx).await)
        }),
        case("metadata/huge-header-block-survived".to_owned(), None, |ctx| async move {
            let extra = (0..HUGE_HEADERS)
                .map(|i| (format!("x-conformance-padding-{i}").into_bytes(), vec![b'a'; HUGE_VALUE]))
                .collect();
            verdict(survives(&ctx, "a 1 MiB header block", extra).await)
        }),
    ]
}

async fn malformed(ctx: Arc<Context>) -> Result<(), Failure> {
    for (what, name, value) in MALFORMED {
        survives(&ctx, what, vec![(name.to_vec(), value.to_vec())]).await?;
    }
    Ok(())
}

/// One request with `extra` headers on a new connection: it must be refused
/// or answered, and new connections served afterwards.
async fn survives(ctx: &Context, what: &str, extra: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), Failure> {
    let channel = &ctx.channel;
    let stream =
        channel.dial().await.map_err(|err| Failure::new("a connection to the target", err.to_string()))?;
    let url = channel.url();
    let authority = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let path = first_method(ctx);
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = channel
        .security()
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().as_bytes().to_vec(), value.as_bytes().to_vec()))
        .collect();
    headers.extend(extra);
    let request =
        frames::Request { scheme: channel.security().scheme(), authority, path: &path, extra: headers };
    let fate = frames::send(stream, &request, ctx.settings.watchdog)
        .await
        .map_err(|err| Failure::new(format!("{what} to be sent"), err.to_string()))?;
    if fate == frames::Fate::Hung {
        return Err(Failure::new(format!("a refusal or an answer for {what}"), fate.to_string()));
    }
    keeps_serving(ctx).await.map_err(|failure| Failure {
        expected: format!("{} after {what} ({fate})", failure.expected),
        ..failure
    })
}

/// The path of a method the target serves, so that its handlers see the
/// headers; a method nobody serves when it serves none.
fn first_method(ctx: &Context) -> String {
    ctx.served
        .services()
        .filter(|service| ctx.services.contains(service.full_name()))
        .filter(|service| !generic::is_infrastructure(service.full_name()))
        .flat_map(|service| service.methods().collect::<Vec<_>>())
        .next()
        .map_or_else(
            || "/conformance.security.NoSuchService/Method".to_owned(),
            |m| harness::call::path_of(&m),
        )
}
