//! Semantic properties of each seed contract, as its `.proto` comments state
//! them. Each suite binds to its contract by fully qualified service name and
//! is skipped, never passed, when the target does not serve it.

mod calculator;
mod coreservices;
mod imagem;
mod streaming;
mod uploader;

use std::{fmt::Debug, sync::Arc, time::Duration};

use harness::{CallError, CallOptions};
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor, Value};

use crate::{
    case::Case,
    context::Context,
    report::{Failure, Verdict},
    reproduce,
};

/// Every contract suite's cases.
pub fn cases(ctx: &Context) -> Vec<Case> {
    [calculator::cases, streaming::cases, coreservices::cases, uploader::cases, imagem::cases]
        .iter()
        .flat_map(|suite| suite(ctx))
        .collect()
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

fn message(desc: &MessageDescriptor, fields: &[(&str, Value)]) -> DynamicMessage {
    let mut message = DynamicMessage::new(desc.clone());
    for (name, value) in fields {
        message.set_field_by_name(name, value.clone());
    }
    message
}

/// A field's value, defaults included; a field the contract lacks reads as
/// its type's default because `message` came from the contract itself.
fn get(message: &DynamicMessage, field: &str) -> Value {
    message.get_field_by_name(field).map(|v| v.into_owned()).unwrap_or(Value::Bool(false))
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
