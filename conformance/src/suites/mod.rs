//! Semantic properties of each seed contract, as its `.proto` comments state
//! them. Each suite binds to its contract by fully qualified service name and
//! is skipped, never passed, when the target does not serve it.

mod coreservices;
#[cfg(feature = "s3")]
mod fileuploader;
#[cfg(feature = "images")]
mod imagem;
#[cfg(feature = "images")]
mod inference;
mod streaming;

use std::{fmt::Debug, sync::Arc, time::Duration};

use harness::{CallError, CallOptions, arbitrary::Generator};
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor, ReflectMessage, Value};

use crate::{
    case::Case,
    context::Context,
    report::{Failure, Verdict},
    reproduce,
};

/// Every contract suite's cases.
pub fn cases(ctx: &Context) -> Vec<Case> {
    let mut cases: Vec<Case> =
        [streaming::cases, coreservices::cases].iter().flat_map(|suite| suite(ctx)).collect();
    #[cfg(feature = "s3")]
    cases.extend(fileuploader::cases(ctx));
    #[cfg(not(feature = "s3"))]
    cases.push(compiled_out(ctx, ("uploader.FileUploader", "Upload"), "upload-integrity", "s3"));
    #[cfg(feature = "images")]
    cases.extend(imagem::cases(ctx).into_iter().chain(inference::cases(ctx)));
    #[cfg(not(feature = "images"))]
    cases.extend([
        compiled_out(ctx, ("mensagem.ImagemService", "UploadImagem"), "images", "images"),
        compiled_out(ctx, ("inference.InferenceMethods", "Infer"), "images", "images"),
    ]);
    cases
}

/// Stands for a suite this build left out, so that a slim build reports it
/// as skipped, with the way back, rather than as if it did not exist.
#[cfg(not(all(feature = "s3", feature = "images")))]
fn compiled_out(ctx: &Context, (service, method): (&str, &str), property: &str, feature: &str) -> Case {
    let reason = format!("this build has no such suite: rebuild with the cargo feature `{feature}`");
    case(&ctx.contract_method(service, method), property, move |_| {
        let reason = reason.clone();
        async move { Verdict::Skipped { reason } }
    })
}

fn options(ctx: &Context) -> CallOptions {
    CallOptions { watchdog: ctx.settings.watchdog, ..Default::default() }
}

/// A case named `<service>/<method>/<property>` in the service's suite.
fn case<F, Fut>(method: &MethodDescriptor, property: &str, check: F) -> Case
where
    F: Fn(Arc<Context>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Verdict> + Send + 'static,
{
    let service = method.parent_service().full_name().to_owned();
    Case::new(&service, format!("{service}/{}/{property}", method.name()), Some(&service), check)
}

/// A property of `method`: request lists from `strategy` (given a generator
/// sized by the run's settings, and the method's input type), rendered as
/// text and a `buf curl` line, judged by `check`.
fn property_case<S, F, Fut>(
    method: &MethodDescriptor,
    property: &str,
    strategy: impl Fn(&Generator, MessageDescriptor) -> S + Clone + Send + Sync + 'static,
    check: F,
) -> Case
where
    S: proptest::strategy::Strategy<Value = Vec<DynamicMessage>> + 'static,
    F: Fn(Arc<Context>, MethodDescriptor, Vec<DynamicMessage>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), Failure>> + Send + 'static,
{
    let name = format!("{}/{}/{property}", method.parent_service().full_name(), method.name());
    let shared = method.clone();
    case(method, property, move |ctx| {
        let (method, strategy, check, name) = (shared.clone(), strategy.clone(), check.clone(), name.clone());
        async move {
            let input = method.input();
            let shown = show(&method);
            let generator = Generator::new().sizes(ctx.settings.sizes);
            crate::property::check(
                ctx,
                &name,
                move || strategy(&generator, input),
                shown,
                move |ctx, requests| check(ctx, method.clone(), requests),
            )
            .await
        }
    })
}

fn message(desc: &MessageDescriptor, fields: &[(&str, Value)]) -> DynamicMessage {
    let mut message = DynamicMessage::new(desc.clone());
    for (name, value) in fields {
        message.set_field_by_name(name, value.clone());
    }
    message
}

/// A field's value, defaults included. Every message here is of a type from
/// our own contracts, so an unknown field name is a bug in the suite, and
/// says so instead of reading as some unrelated value.
fn get(message: &DynamicMessage, field: &str) -> Value {
    match message.get_field_by_name(field) {
        Some(value) => value.into_owned(),
        None => panic!("{} has no field {field:?}", message.descriptor().full_name()),
    }
}

fn expect_eq<T: PartialEq + Debug>(what: &str, expected: T, actual: T) -> Result<(), Failure> {
    if expected == actual {
        Ok(())
    } else {
        Err(Failure::new(format!("{what} = {expected:?}"), format!("{what} = {actual:?}")))
    }
}

fn expect_code(expected: tonic::Code, outcome: Result<(), CallError>) -> Result<(), Failure> {
    match outcome {
        Err(err) if err.code() == Some(expected) => Ok(()),
        Err(err) => Err(Failure::new(format!("{expected:?}"), err.to_string())),
        Ok(()) => Err(Failure::new(format!("{expected:?}"), "OK")),
    }
}

fn call_failed(err: CallError) -> Failure {
    Failure::new("a successful call", err.to_string())
}

/// How a property renders its input: text format plus a `buf curl` line.
fn show(
    method: &MethodDescriptor,
) -> impl Fn(&Context, &Vec<DynamicMessage>) -> (String, Option<String>) + use<> {
    let method = method.clone();
    move |ctx, requests| (reproduce::text(requests), Some(reproduce::buf_curl(ctx, &method, requests)))
}

fn verdict(result: Result<(), Failure>) -> Verdict {
    match result {
        Ok(()) => Verdict::Passed,
        Err(failure) => Verdict::Failed(failure),
    }
}

/// Lockstep: each request is sent only once the reply to the previous one is
/// in, so a server that holds replies until half-close never gets past the
/// first. Each reply is judged by `check(index, request, reply)`; then the
/// client half-closes and the call must end with OK and nothing more.
async fn lockstep(
    ctx: &Context,
    method: &MethodDescriptor,
    requests: &[DynamicMessage],
    check: impl Fn(usize, &DynamicMessage, &DynamicMessage) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let mut call = ctx.client().bidi(method, &options(ctx));
    for (index, request) in requests.iter().enumerate() {
        call.send(request).map_err(call_failed)?;
        let reply = call
            .message()
            .await
            .map_err(|err| {
                Failure::new(format!("reply #{index} before the next request is sent"), err.to_string())
            })?
            .ok_or_else(|| Failure::new(format!("reply #{index}"), "the call ended"))?;
        check(index, request, &reply)?;
    }
    call.close_send();
    match call.message().await {
        Ok(None) => Ok(()),
        Ok(Some(extra)) => Err(Failure::new("exactly one reply per request", harness::text::to_text(&extra))),
        Err(err) => Err(call_failed(err)),
    }
}

/// A slow stream with a 1 ms deadline must end with DEADLINE_EXCEEDED sent
/// by the server, not linger until the harness gives up.
async fn deadline_on_slow_stream(
    ctx: Arc<Context>,
    method: MethodDescriptor,
    slow: DynamicMessage,
) -> Verdict {
    let options = CallOptions {
        timeout: Some(Duration::from_millis(1)),
        watchdog: ctx.settings.watchdog,
        ..Default::default()
    };
    let outcome = match ctx.client().server_streaming(&method, &slow, &options).await {
        Ok(stream) => stream.collect().await.1.map(|_| ()),
        Err(err) => Err(err),
    };
    let mut verdict = expect_code(tonic::Code::DeadlineExceeded, outcome);
    if let Err(failure) = &mut verdict {
        failure.input = Some(reproduce::text(std::slice::from_ref(&slow)));
    }
    self::verdict(verdict)
}
