//! Checks that hold for every method of every gRPC server, whatever its
//! contract: robustness to arbitrary valid input, garbage, oversized
//! messages, metadata, deadlines and cancellation.
//!
//! Reflection and health are infrastructure rather than the user's contract,
//! and health's `Watch` never ends by design, so their methods are not
//! exercised here; they are used to check that the server keeps serving.
//! Deadlines and cancellation are in `deadlines.rs`.

mod deadlines;

use std::{sync::Arc, time::Duration};

use bytes::{BufMut, Bytes, BytesMut};
use harness::{
    CallError, CallOptions,
    arbitrary::{Generator, Sizes},
    call::path_of,
};
use proptest::strategy::Strategy;
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor};
use tonic::{
    Code,
    metadata::{MetadataMap, MetadataValue},
};

use crate::{
    case::Case,
    context::Context,
    property,
    report::{Failure, Verdict},
    reproduce,
};

/// Server deadline for arbitrary requests: any slow stream they start ends
/// quickly, with DEADLINE_EXCEEDED, which is a legitimate outcome.
const ARBITRARY_DEADLINE: Duration = Duration::from_millis(20);
/// Responses read from an arbitrary call before it is cancelled.
const MAX_RESPONSES: usize = 64;
const INFRASTRUCTURE: &[&str] = &["grpc.health.v1.", "grpc.reflection."];

pub(crate) fn is_infrastructure(service: &str) -> bool {
    INFRASTRUCTURE.iter().any(|prefix| service.starts_with(prefix))
}

/// Every generic case for the methods `ctx` says the target serves.
pub fn cases(ctx: &Context) -> Vec<Case> {
    let mut cases = vec![Case::new("generic", "generic/unknown-service", None, |ctx| async move {
        unimplemented(&ctx, "/conformance.NoSuchService/Method").await
    })];
    for service in &ctx.discovery.served {
        if let Err(why) = &service.schema
            && !is_infrastructure(&service.name)
        {
            let reason = format!("no schema for {}: {why}", service.name);
            cases.push(Case::skipped("generic", format!("generic/{}/methods", service.name), reason));
        }
    }
    for name in &ctx.discovery.undetermined {
        let reason = format!(
            "without reflection, the target gives no sign whether it serves {name}: name the served services with --services"
        );
        cases.push(Case::skipped("generic", format!("generic/{name}/methods"), reason));
    }
    for service in ctx.served.services().filter(|s| ctx.services.contains(s.full_name())) {
        let name = service.full_name().to_owned();
        if is_infrastructure(&name) {
            continue;
        }
        let path = format!("/{name}/NoSuchMethodInConformance");
        cases.push(Case::new("generic", format!("generic/{name}/unknown-method"), Some(&name), move |ctx| {
            let path = path.clone();
            async move { unimplemented(&ctx, &path).await }
        }));
        let frees = service.clone();
        cases.push(Case::new(
            "generic",
            format!("generic/{name}/cancellation-frees-the-server"),
            Some(&name),
            move |ctx| deadlines::cancellation_frees_the_server(ctx, frees.clone()),
        ));
        for method in service.methods() {
            let base = format!("generic/{name}/{}", method.name());
            let checks: [(&str, Check); 8] = [
                ("implemented", |ctx, m| Box::pin(implemented(ctx, m))),
                ("arbitrary-requests", |ctx, m| Box::pin(arbitrary_requests(ctx, m))),
                ("invalid-protobuf", |ctx, m| Box::pin(invalid_protobuf(ctx, m))),
                ("oversized-message", |ctx, m| Box::pin(oversized_message(ctx, m))),
                ("metadata", |ctx, m| Box::pin(metadata(ctx, m))),
                ("deadline-1ms", |ctx, m| Box::pin(deadlines::deadline_1ms(ctx, m))),
                ("cancel-at-start", |ctx, m| Box::pin(deadlines::cancel(ctx, m, false))),
                ("cancel-after-first-response", |ctx, m| Box::pin(deadlines::cancel(ctx, m, true))),
            ];
            for (property, check) in checks {
                let method = method.clone();
                cases.push(Case::new("generic", format!("{base}/{property}"), Some(&name), move |ctx| {
                    check(ctx, method.clone())
                }));
            }
        }
    }
    cases
}

type Check = fn(Arc<Context>, MethodDescriptor) -> crate::case::CaseFuture;

async fn unimplemented(ctx: &Context, path: &str) -> Verdict {
    // UNIMPLEMENTED carries no message, so any type serves to decode with.
    let Some(output) = ctx.contracts.all_messages().next() else {
        return Verdict::failed("a message type to decode with", "none in the contracts");
    };
    match raw_outcome(ctx, path, output, Bytes::new()).await {
        Err(err) if err.code() == Some(Code::Unimplemented) => Verdict::Passed,
        other => Verdict::failed(format!("UNIMPLEMENTED for {path}"), describe(&other)),
    }
}

/// Sends `requests` the way the method's pattern wants and returns the
/// responses and how the call ended, stopping after `MAX_RESPONSES`.
pub(crate) async fn exchange(
    ctx: &Context,
    method: &MethodDescriptor,
    requests: &[DynamicMessage],
    options: &CallOptions,
) -> (Vec<DynamicMessage>, Result<(), CallError>) {
    exchange_up_to(ctx, method, requests, options, MAX_RESPONSES).await
}

/// [`exchange`], stopping after `max_responses`: the call is cancelled
/// then, and counts as OK.
pub(crate) async fn exchange_up_to(
    ctx: &Context,
    method: &MethodDescriptor,
    requests: &[DynamicMessage],
    options: &CallOptions,
    max_responses: usize,
) -> (Vec<DynamicMessage>, Result<(), CallError>) {
    exchange_on(ctx.client(), method, requests, options, max_responses).await
}

/// [`exchange_up_to`] on `client`'s connection rather than the run's.
pub(crate) async fn exchange_on(
    mut client: harness::DynamicClient,
    method: &MethodDescriptor,
    requests: &[DynamicMessage],
    options: &CallOptions,
    max_responses: usize,
) -> (Vec<DynamicMessage>, Result<(), CallError>) {
    let opened = match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, _) => match requests.first() {
            Some(request) => client.server_streaming(method, request, options).await,
            None => return (Vec::new(), Ok(())),
        },
        (true, _) => {
            let bodies = requests.iter().map(|m| Bytes::from(prost::Message::encode_to_vec(m))).collect();
            client.raw(&path_of(method), bodies, options, method.output()).await
        }
    };
    let mut stream = match opened {
        Ok(stream) => stream,
        Err(err) => return (Vec::new(), Err(err)),
    };
    let mut responses = Vec::new();
    loop {
        if responses.len() == max_responses {
            // Enough seen; dropping the stream cancels the call.
            return (responses, Ok(()));
        }
        match stream.message().await {
            Ok(Some(message)) => responses.push(message),
            Ok(None) => return (responses, stream.trailers().await.map(|_| ())),
            Err(err) => return (responses, Err(err)),
        }
    }
}

/// Why an outcome breaks the generic contract, if it does.
fn violation(outcome: &Result<(), CallError>) -> Option<String> {
    match outcome {
        Ok(()) => None,
        Err(CallError::Status(status)) => match status.code() {
            Code::Unknown | Code::Internal | Code::DataLoss => Some(format!(
                "{:?}, which a valid request must never get: {}",
                status.code(),
                status.message()
            )),
            // A server may answer UNAVAILABLE itself (its backend is down);
            // only a connection that failed under the call is a fault.
            Code::Unavailable if harness::transport::connection_failed(status) => {
                Some(format!("UNAVAILABLE: the connection dropped ({})", status.message()))
            }
            _ => None,
        },
        Err(other) => Some(other.to_string()),
    }
}

/// A 5 s server deadline, far beyond what any plain call needs, and the
/// run's watchdog.
pub(crate) fn plain_options(ctx: &Context) -> CallOptions {
    CallOptions {
        timeout: Some(Duration::from_secs(5)),
        watchdog: ctx.settings.watchdog,
        ..Default::default()
    }
}

/// The status code an outcome ended with; `None` for OK.
fn code_of(outcome: &Result<(), CallError>) -> Option<Option<Code>> {
    outcome.as_ref().err().map(CallError::code)
}

/// How a default request with `options` ends.
async fn default_call(
    ctx: &Context,
    method: &MethodDescriptor,
    options: &CallOptions,
) -> Result<(), CallError> {
    exchange(ctx, method, &[DynamicMessage::new(method.input())], options).await.1
}

/// How a plain call, a default request with `plain_options`, ends.
async fn plain_call(ctx: &Context, method: &MethodDescriptor) -> Result<(), CallError> {
    default_call(ctx, method, &plain_options(ctx)).await
}

/// Whether a call ended with UNIMPLEMENTED.
fn is_unimplemented(outcome: &Result<(), CallError>) -> bool {
    code_of(outcome) == Some(Some(Code::Unimplemented))
}

/// A plain call, then the same request with `variant`: some defaults are
/// legitimately invalid for a contract, so checks judge the variant against
/// this baseline rather than against OK.
async fn with_and_without(
    ctx: &Context,
    method: &MethodDescriptor,
    variant: &CallOptions,
) -> (Result<(), CallError>, Result<(), CallError>) {
    (plain_call(ctx, method).await, default_call(ctx, method, variant).await)
}

/// How a call ended, for reports.
pub(crate) fn describe(outcome: &Result<(), CallError>) -> String {
    match outcome {
        Ok(()) => "OK".to_owned(),
        Err(err) => err.to_string(),
    }
}

fn requests_strategy(
    method: &MethodDescriptor,
    sizes: Sizes,
) -> impl Strategy<Value = Vec<DynamicMessage>> + use<> {
    Generator::new().sizes(sizes).call(method)
}

/// A method the server lists answers a plain call with something other
/// than UNIMPLEMENTED: reflection that lists what is not served (as some
/// servers' reflection lists every service of a package) is a defect of its
/// own, reported here rather than as odd answers in every other check.
async fn implemented(ctx: Arc<Context>, method: MethodDescriptor) -> Verdict {
    let outcome = plain_call(&ctx, &method).await;
    if is_unimplemented(&outcome) {
        Verdict::failed(
            "an answer other than UNIMPLEMENTED from a method the server lists",
            describe(&outcome),
        )
    } else {
        Verdict::Passed
    }
}

/// The verdict of a check that needs the method implemented, when a plain
/// call says it is not: skipped, pointing at the case that reports it.
async fn unless_unimplemented(ctx: &Context, method: &MethodDescriptor) -> Option<Verdict> {
    is_unimplemented(&plain_call(ctx, method).await).then(|| Verdict::Skipped {
        reason: format!(
            "the method answers UNIMPLEMENTED to a plain call (see generic/{}/{}/implemented)",
            method.parent_service().full_name(),
            method.name()
        ),
    })
}

async fn arbitrary_requests(ctx: Arc<Context>, method: MethodDescriptor) -> Verdict {
    if let Some(verdict) = unless_unimplemented(&ctx, &method).await {
        return verdict;
    }
    let name = format!("{}/arbitrary-requests", path_of(&method));
    let shown = method.clone();
    let strategy_method = method.clone();
    let sizes = ctx.settings.sizes;
    property::check(
        ctx,
        &name,
        move || requests_strategy(&strategy_method, sizes),
        move |ctx, requests: &Vec<DynamicMessage>| {
            (reproduce::text(requests), Some(reproduce::buf_curl(ctx, &shown, requests)))
        },
        move |ctx, requests| {
            let method = method.clone();
            async move {
                let options =
                    CallOptions { timeout: Some(ARBITRARY_DEADLINE), watchdog: ctx.settings.watchdog, ..Default::default() };
                let (_, outcome) = exchange(&ctx, &method, &requests, &options).await;
                match violation(&outcome) {
                    None => Ok(()),
                    Some(actual) => Err(Failure::new(
                        "any status but UNKNOWN, INTERNAL or DATA_LOSS, on a live connection, with responses of the declared type",
                        actual,
                    )),
                }
            }
        },
    )
    .await
}

/// After a hostile call, the server must still answer a plain one.
async fn keeps_serving(ctx: &Context, method: &MethodDescriptor) -> Result<(), Failure> {
    let outcome = plain_call(ctx, method).await;
    match &outcome {
        Err(err) if err.connection_failed() => Err(Failure::new(
            "the server to keep serving",
            format!("a follow-up call failed: {}", describe(&outcome)),
        )),
        Err(CallError::NoAnswer { .. }) => Err(Failure::new(
            "the server to keep serving",
            format!("a follow-up call got {}", describe(&outcome)),
        )),
        _ => Ok(()),
    }
}

/// A length-delimited field 1000 holding `len` zero bytes: valid protobuf
/// (an unknown field) of any size, for any message type.
fn padding(len: usize) -> Bytes {
    let mut body = BytesMut::with_capacity(len + 16);
    put_varint(&mut body, (1000 << 3) | 2);
    put_varint(&mut body, len as u64);
    body.put_bytes(0, len);
    body.freeze()
}

fn put_varint(buf: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// One raw body to `path`, read to the end of the call.
async fn raw_outcome(
    ctx: &Context,
    path: &str,
    output: MessageDescriptor,
    body: Bytes,
) -> Result<(), CallError> {
    match ctx.client().raw(path, vec![body], &plain_options(ctx), output).await {
        Ok(stream) => stream.collect().await.1.map(|_| ()),
        Err(err) => Err(err),
    }
}

async fn invalid_protobuf(ctx: Arc<Context>, method: MethodDescriptor) -> Verdict {
    if let Some(verdict) = unless_unimplemented(&ctx, &method).await {
        return verdict;
    }
    // A field key with wire type 7, which does not exist: no message type
    // can decode this.
    let garbage = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let outcome = raw_outcome(&ctx, &path_of(&method), method.output(), garbage).await;
    let verdict = match &outcome {
        Err(CallError::Status(status)) if !harness::transport::connection_failed(status) => Ok(()),
        other => Err(Failure::new("an error status for a body that is not protobuf", describe(other))),
    };
    match verdict.and(keeps_serving(&ctx, &method).await) {
        Ok(()) => Verdict::Passed,
        Err(failure) => Verdict::Failed(failure),
    }
}

async fn oversized_message(ctx: Arc<Context>, method: MethodDescriptor) -> Verdict {
    if let Some(verdict) = unless_unimplemented(&ctx, &method).await {
        return verdict;
    }
    let outcome =
        raw_outcome(&ctx, &path_of(&method), method.output(), padding(ctx.settings.max_message_size + 1))
            .await;
    let verdict = match &outcome {
        Err(err) if err.code() == Some(Code::ResourceExhausted) => Ok(()),
        other => Err(Failure::new(
            format!("RESOURCE_EXHAUSTED for a message over the {}-byte limit", ctx.settings.max_message_size),
            describe(other),
        )),
    };
    match verdict.and(keeps_serving(&ctx, &method).await) {
        Ok(()) => Verdict::Passed,
        Err(failure) => Verdict::Failed(failure),
    }
}

async fn metadata(ctx: Arc<Context>, method: MethodDescriptor) -> Verdict {
    let with_metadata = CallOptions { metadata: custom_metadata(), ..plain_options(&ctx) };
    let (baseline, outcome) = with_and_without(&ctx, &method, &with_metadata).await;
    if code_of(&baseline) == code_of(&outcome) {
        Verdict::Passed
    } else {
        Verdict::failed(
            format!("the same outcome as without custom metadata ({})", describe(&baseline)),
            describe(&outcome),
        )
    }
}

fn custom_metadata() -> MetadataMap {
    let mut metadata = MetadataMap::new();
    metadata.insert("x-conformance-ascii", MetadataValue::from_static("plain ascii, with spaces"));
    metadata.insert_bin("x-conformance-bin", MetadataValue::from_bytes(&[0, 1, 127, 128, 255]));
    metadata
}
