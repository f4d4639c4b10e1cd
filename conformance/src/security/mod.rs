//! Checks of what a server refuses: calls without credentials or with wrong
//! ones, clients that speak plaintext to a TLS port or show no certificate
//! (or one from another CA), and header blocks no client library would
//! send.
//!
//! A server that takes no credentials rightly answers a call without them,
//! so the credential checks run only when the user says the target demands
//! them (`--expect-auth`, `--expect-client-cert`); otherwise they are listed
//! as skipped, with the flag that turns them on. The header-block checks
//! hold for every server and always run.
//!
//! Every refusal is followed by a call on a fresh connection: a server whose
//! accept loop dies on a bad handshake still serves the connections it
//! already has, so only a new one shows that it survived.

mod credentials;
mod frames;
mod handshake;
mod metadata;

#[cfg(feature = "s3")]
pub(crate) use credentials::without_credentials;

use std::sync::Arc;

use harness::{CallError, Channel, DynamicClient};
use prost_reflect::{MessageDescriptor, MethodDescriptor};

use crate::{
    case::Case,
    context::Context,
    generic::{self, describe},
    report::{Failure, Verdict},
};

/// The suite's name in reports and case names.
const SUITE: &str = "security";

/// Every security case for `ctx`'s target.
pub fn cases(ctx: &Context) -> Vec<Case> {
    let mut cases = Vec::new();
    let methods = ctx
        .served
        .services()
        .filter(|service| ctx.services.contains(service.full_name()))
        .filter(|service| !generic::is_infrastructure(service.full_name()))
        .flat_map(|service| service.methods().collect::<Vec<_>>());
    if ctx.settings.demands.auth {
        cases.extend(methods.flat_map(|method| credentials::cases(&method)));
    } else {
        cases.push(skipped(
            "credentials".to_owned(),
            "pass --expect-auth (with the credentials as --header) when the target demands them",
        ));
    }
    cases.extend(handshake::cases(ctx));
    cases.extend(metadata::cases());
    cases
}

/// A case of this suite, for `service` when it needs one served.
fn case<F, Fut>(name: String, requires: Option<&str>, check: F) -> Case
where
    F: Fn(Arc<Context>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Verdict> + Send + 'static,
{
    Case::new(SUITE, format!("{SUITE}/{name}"), requires, check)
}

/// A stand-in for a case that does not apply, saying what would turn it on.
fn skipped(name: String, reason: &str) -> Case {
    Case::skipped(SUITE, format!("{SUITE}/{name}"), reason.to_owned())
}

/// A new connection with the run's own credentials answers a call with a
/// status of the server's (UNIMPLEMENTED for a method nobody serves): the
/// server survived whatever came before. A fresh connection, because a
/// server whose accept loop has died still serves the ones it has.
async fn keeps_serving(ctx: &Context) -> Result<(), Failure> {
    let fresh = ctx.channel.secured(ctx.channel.security().clone());
    match unknown_method(ctx, fresh).await {
        Err(CallError::Status(status)) if !harness::transport::connection_failed(&status) => Ok(()),
        Ok(()) => Ok(()),
        other => Err(Failure::new(
            "the server to keep serving new connections",
            format!("a call on a new connection got {}", describe(&other)),
        )),
    }
}

/// How a call to a method nobody serves ends on `channel`. Any status the
/// server sends proves it read the call; a refused connection ends with
/// UNAVAILABLE from the client.
async fn unknown_method(ctx: &Context, channel: Channel) -> Result<(), CallError> {
    let output = any_message(ctx);
    let options = generic::plain_options(ctx);
    let path = "/conformance.security.NoSuchService/Method";
    match DynamicClient::new(channel).raw(path, vec![bytes::Bytes::new()], &options, output).await {
        Ok(stream) => stream.collect().await.1.map(|_| ()),
        Err(err) => Err(err),
    }
}

/// Any message type: the checks here look at statuses, not bodies.
fn any_message(ctx: &Context) -> MessageDescriptor {
    ctx.contracts.all_messages().next().expect("the contracts define messages")
}

/// The verdict from a check's outcome.
fn verdict(outcome: Result<(), Failure>) -> Verdict {
    match outcome {
        Ok(()) => Verdict::Passed,
        Err(failure) => Verdict::Failed(failure),
    }
}

/// `service/Method`, as case names spell a method.
fn method_name(method: &MethodDescriptor) -> String {
    format!("{}/{}", method.parent_service().full_name(), method.name())
}
