//! Calls without the run's credentials, and with wrong ones: every method
//! must refuse them before doing anything.
//!
//! The credentials are the `authorization` header when the run carries one,
//! else every `--header`. A wrong credential differs from the right one in
//! its last character only, keeping its length and its scheme (`Bearer `):
//! a server that compares only a prefix, or only the length, lets it
//! through.

use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use prost_reflect::{DynamicMessage, MethodDescriptor};
use tonic::Code;

use super::{case, keeps_serving, method_name, verdict};
use crate::{
    case::Case,
    context::Context,
    generic::{self, describe},
    report::Failure,
};

/// What a refused call may end with.
#[derive(Clone, Copy)]
enum Refusal {
    /// No credentials: UNAUTHENTICATED only.
    Missing,
    /// Wrong credentials: UNAUTHENTICATED or PERMISSION_DENIED.
    Wrong,
}

/// The two checks of `method`, for a target that demands credentials.
pub(super) fn cases(method: &MethodDescriptor) -> Vec<Case> {
    let service = method.parent_service().full_name().to_owned();
    [("refused-without-credentials", Refusal::Missing), ("refused-with-wrong-credentials", Refusal::Wrong)]
        .into_iter()
        .map(|(property, refusal)| {
            let name = format!("{}/{property}", method_name(method));
            let method = method.clone();
            case(name, Some(&service), move |ctx| {
                let method = method.clone();
                async move { verdict(refused(&ctx, &method, refusal).await) }
            })
        })
        .collect()
}

/// The run's headers with the credentials left out, or made wrong.
pub(crate) fn without_credentials(headers: &HeaderMap, refusal_wrong: bool) -> HeaderMap {
    let credentials: Vec<_> = if headers.contains_key(AUTHORIZATION) {
        vec![AUTHORIZATION]
    } else {
        headers.keys().cloned().collect()
    };
    let mut changed = HeaderMap::new();
    for (name, value) in headers {
        if !credentials.contains(name) {
            changed.append(name, value.clone());
        } else if refusal_wrong {
            changed.append(name, wrong(value));
        }
    }
    changed
}

/// `value` with its last character changed.
fn wrong(value: &HeaderValue) -> HeaderValue {
    let mut bytes = value.as_bytes().to_vec();
    match bytes.last_mut() {
        Some(last) => *last = if *last == b'x' { b'y' } else { b'x' },
        None => bytes.push(b'x'),
    }
    HeaderValue::from_bytes(&bytes).expect("a printable ASCII byte keeps a header value valid")
}

async fn refused(ctx: &Context, method: &MethodDescriptor, refusal: Refusal) -> Result<(), Failure> {
    let security = ctx.channel.security();
    let headers = without_credentials(security.headers(), matches!(refusal, Refusal::Wrong));
    let channel = ctx.channel.secured(security.with_headers(headers));
    let client = harness::DynamicClient::new(channel);
    // A default request: a server that skips the check answers it like any
    // other, which is what the check must see.
    let request = DynamicMessage::new(method.input());
    let options = generic::plain_options(ctx);
    let (responses, outcome) = generic::exchange_on(client, method, &[request], &options, 1).await;
    let allowed: &[Code] = match refusal {
        Refusal::Missing => &[Code::Unauthenticated],
        Refusal::Wrong => &[Code::Unauthenticated, Code::PermissionDenied],
    };
    let expected = match refusal {
        Refusal::Missing => "UNAUTHENTICATED, with no response, for a call without credentials",
        Refusal::Wrong => "UNAUTHENTICATED or PERMISSION_DENIED, with no response, for wrong credentials",
    };
    match &outcome {
        Err(err) if err.code().is_some_and(|code| allowed.contains(&code)) && responses.is_empty() => {}
        _ if !responses.is_empty() => {
            return Err(Failure::new(
                expected,
                format!("{} response(s), then {}", responses.len(), describe(&outcome)),
            ));
        }
        _ => return Err(Failure::new(expected, describe(&outcome))),
    }
    keeps_serving(ctx).await
}
