//! The three checks of a contract's `buf.validate` rules.

use std::sync::Arc;

use harness::{
    CallOptions,
    rules::{self, Broken},
};
use proptest::{prelude::*, strategy::Union};
use prost_reflect::{DynamicMessage, MethodDescriptor};
use tonic::Code;

use super::{Draws, Inputs, declared_property, valid_requests};
use crate::{
    context::Context,
    generic::{describe, exchange, exchange_up_to},
    report::{Failure, Verdict},
};

/// A server deadline far beyond what judging a request takes, so that a
/// slow stream ends instead of holding the check.
fn options(ctx: &Context) -> CallOptions {
    CallOptions {
        timeout: Some(std::time::Duration::from_secs(5)),
        watchdog: ctx.settings.watchdog,
        ..Default::default()
    }
}

/// A valid request never gets INVALID_ARGUMENT. The first response, or the
/// status, says how the server judged it, so nothing more is read.
pub(super) async fn valid_inputs_accepted(ctx: Arc<Context>, method: MethodDescriptor) -> Verdict {
    declared_property(
        ctx,
        method,
        "valid-inputs-accepted",
        "valid inputs",
        all_valid(),
        |ctx, method, requests| async move {
            let (_, outcome) = exchange_up_to(&ctx, &method, &requests, &options(&ctx), 1).await;
            match outcome {
                Err(err) if err.code() == Some(Code::InvalidArgument) => Err(Failure::new(
                    "any outcome but INVALID_ARGUMENT for a request that keeps every rule",
                    err.to_string(),
                )),
                _ => Ok(()),
            }
        },
    )
    .await
}

/// Requests that keep every rule.
fn all_valid() -> Inputs {
    Box::new(|ctx, method, draws| valid_requests(ctx, method, draws, |_| Ok(true)))
}

/// A request stream with exactly one broken rule in one message: built by
/// setting a value just outside a readable rule on a valid message, or
/// drawn at random and kept when the validator finds one broken rule.
fn breaking_requests(
    ctx: &Context,
    method: &MethodDescriptor,
    draws: Arc<Draws>,
) -> BoxedStrategy<Vec<DynamicMessage>> {
    let input = method.input();
    let generator = rules::generate::within_rules(super::generator(ctx, method), &input);
    let mut arms = vec![(1, super::generator(ctx, method).message(&input))];
    let breakers = rules::generate::breakers(&input);
    if !breakers.is_empty() {
        arms.push((2, rules::generate::breaking(generator.message(&input), breakers)));
    }
    let rules = ctx.rules.clone();
    let broken = Union::new_weighted(arms).prop_filter("not exactly one broken rule", move |message| {
        draws.keep(rules.check(message).map(|broken| broken.len() == 1))
    });
    if !method.is_client_streaming() {
        return broken.prop_map(|message| vec![message]).boxed();
    }
    // The broken message goes anywhere in a stream of valid ones.
    let valid = valid_requests(ctx, method, Arc::new(Draws::default()), |_| Ok(true));
    (valid, broken, any::<prop::sample::Index>())
        .prop_map(|(mut requests, broken, at)| {
            requests.insert(at.index(requests.len() + 1), broken);
            requests
        })
        .boxed()
}

/// The one rule a request stream breaks, for reports.
fn broken_rule(ctx: &Context, requests: &[DynamicMessage]) -> Option<(usize, Broken)> {
    requests.iter().enumerate().find_map(|(index, request)| {
        ctx.rules.check(request).ok().and_then(|mut broken| broken.pop()).map(|broken| (index, broken))
    })
}

/// A request that breaks exactly one rule gets INVALID_ARGUMENT.
pub(super) async fn invalid_inputs_refused(ctx: Arc<Context>, method: MethodDescriptor) -> Verdict {
    let inputs: Inputs = Box::new(breaking_requests);
    declared_property(
        ctx,
        method,
        "invalid-inputs-refused",
        "breaking exactly one rule",
        inputs,
        |ctx, method, requests| async move {
            let (_, outcome) = exchange_up_to(&ctx, &method, &requests, &options(&ctx), 1).await;
            if matches!(&outcome, Err(err) if err.code() == Some(Code::InvalidArgument)) {
                return Ok(());
            }
            let rule = match broken_rule(&ctx, &requests) {
                Some((index, broken)) if requests.len() > 1 => format!("{broken} (request #{index})"),
                Some((_, broken)) => broken.to_string(),
                None => "a rule".to_owned(),
            };
            Err(Failure::new(
                format!("INVALID_ARGUMENT for a request that breaks {rule}"),
                describe(&outcome),
            ))
        },
    )
    .await
}

/// Every response to a valid request keeps the rules of its type.
pub(super) async fn responses_satisfy_rules(ctx: Arc<Context>, method: MethodDescriptor) -> Verdict {
    declared_property(
        ctx,
        method,
        "responses-satisfy-rules",
        "valid inputs",
        all_valid(),
        |ctx, method, requests| async move {
            let (responses, _) = exchange(&ctx, &method, &requests, &options(&ctx)).await;
            for (index, response) in responses.iter().enumerate() {
                let broken = ctx
                    .rules
                    .check(response)
                    .map_err(|why| Failure::new("rules that can be evaluated", why))?;
                if let Some(first) = broken.first() {
                    return Err(Failure::new(
                        format!("responses that keep the rules of {}", method.output().full_name()),
                        format!("response #{index} breaks {first}:\n{}", harness::text::to_text(response)),
                    ));
                }
            }
            Ok(())
        },
    )
    .await
}
