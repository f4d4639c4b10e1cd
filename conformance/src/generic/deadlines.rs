//! Deadlines and cancellation: what the server does when a client stops
//! waiting, and that stopping frees what the call held.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::future::join_all;
use harness::{CallError, CallOptions, arbitrary::Generator};
use proptest::{
    strategy::{Strategy, ValueTree},
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};
use prost_reflect::{DynamicMessage, MethodDescriptor, ServiceDescriptor};
use tonic::Code;

use super::{code_of, describe, keeps_serving, plain_call, plain_options, with_and_without};
use crate::{context::Context, report::Verdict};

/// Calls put in flight on each method before they are all cancelled.
const IN_FLIGHT: usize = 16;
/// Plain calls made at once after the cancellations: more than a typical
/// worker pool holds (grpcio's default is 10 threads per server, a Go or
/// Java server's pools are often sized to a few dozen).
const BURST: usize = 64;
/// How long an in-flight call may take to show its first response before it
/// is cancelled anyway: whatever it does then is in flight.
const FIRST_RESPONSE: Duration = Duration::from_millis(200);
/// How long the case waits, after a failure, for the server to answer again.
const RECOVERY: Duration = Duration::from_secs(60);

/// Judged against the same call without the short deadline: see
/// `with_and_without`.
pub(super) async fn deadline_1ms(ctx: Arc<Context>, method: MethodDescriptor) -> Verdict {
    let hurried = CallOptions { timeout: Some(Duration::from_millis(1)), ..plain_options(&ctx) };
    let (baseline, outcome) = with_and_without(&ctx, &method, &hurried).await;
    if code_of(&outcome) == code_of(&baseline) || code_of(&outcome) == Some(Some(Code::DeadlineExceeded)) {
        Verdict::Passed
    } else {
        Verdict::failed(
            format!(
                "DEADLINE_EXCEEDED from the server, or the outcome without a deadline ({})",
                describe(&baseline)
            ),
            describe(&outcome),
        )
    }
}

pub(super) async fn cancel(
    ctx: Arc<Context>,
    method: MethodDescriptor,
    after_first_response: bool,
) -> Verdict {
    let options = CallOptions { watchdog: Duration::from_millis(500), ..Default::default() };
    let mut call = ctx.client().bidi(&method, &options);
    if call.send(&DynamicMessage::new(method.input())).is_ok() && !method.is_client_streaming() {
        call.close_send();
    }
    if after_first_response {
        // The first response, or the end of the call, or nothing for half a
        // second (a stream that waits for more input): all fine here.
        let _ = call.message().await;
    }
    call.cancel();
    match keeps_serving(&ctx, &method).await {
        Ok(()) => Verdict::Passed,
        Err(failure) => Verdict::Failed(failure),
    }
}

/// Cancelled calls free what they held. On each of the service's methods
/// in turn, `IN_FLIGHT` calls with arbitrary requests are put in flight
/// (streams opened and read to their first response, client streams
/// waiting for more input), then all are cancelled at once; then `BURST` plain calls at once
/// must all end, with any status, within the watchdog. A server that keeps
/// working for callers who left (sleeping through a paced stream, waiting
/// on a stream that will never continue) runs out of workers here, and
/// this case says so, rather than whatever case runs next.
pub(super) async fn cancellation_frees_the_server(ctx: Arc<Context>, service: ServiceDescriptor) -> Verdict {
    let methods: Vec<MethodDescriptor> = service.methods().collect();
    let name = format!("generic/{}/cancellation-frees-the-server", service.full_name());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &crate::property::case_seed(ctx.settings.seed, &name)),
    );
    let generator = Generator::new().sizes(harness::arbitrary::Sizes::SMALL);
    // One method at a time, those whose requests end first: a client
    // stream left waiting holds its worker in a thread-pool server, and
    // opened first, such streams would keep the other methods' calls from
    // ever starting, so there would be nothing of theirs to cancel.
    let mut ordered = methods.clone();
    ordered.sort_by_key(MethodDescriptor::is_client_streaming);
    let waves: Vec<(MethodDescriptor, Vec<DynamicMessage>)> = ordered
        .into_iter()
        .map(|method| {
            let strategy = generator.message(&method.input());
            let requests = (0..IN_FLIGHT)
                .filter_map(|_| strategy.new_tree(&mut runner).ok().map(|tree| tree.current()))
                .collect();
            (method, requests)
        })
        .collect();
    drop(runner);
    let mut held = Vec::new();
    for (method, requests) in waves {
        let calls = requests.into_iter().map(|request| in_flight(&ctx, method.clone(), request));
        held.extend(join_all(calls).await);
    }
    let cancelled = held.len();
    drop(held);

    let outcomes = burst(&ctx, &methods).await;
    let unanswered =
        outcomes.iter().filter(|outcome| matches!(outcome, Err(CallError::NoAnswer { .. }))).count();
    let unavailable =
        outcomes.iter().filter(|outcome| code_of(outcome) == Some(Some(Code::Unavailable))).count();
    if unanswered == 0 && unavailable == 0 {
        return Verdict::Passed;
    }
    let example = outcomes
        .iter()
        .find_map(|outcome| outcome.as_ref().err())
        .map_or_else(String::new, ToString::to_string);
    // The damage is this case's: it waits for the server to heal, so that
    // the cases after it judge a server that answers again.
    let started = Instant::now();
    let healed = loop {
        if started.elapsed() >= RECOVERY {
            break format!("it still did not answer them all {RECOVERY:?} later");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        if burst(&ctx, &methods)
            .await
            .iter()
            .all(|outcome| !matches!(outcome, Err(CallError::NoAnswer { .. })))
        {
            break format!("it answered them all again {:.0?} later", started.elapsed());
        }
    };
    Verdict::failed(
        format!(
            "all {BURST} plain calls answered within {:?} after {cancelled} in-flight calls were cancelled",
            ctx.settings.watchdog
        ),
        format!(
            "{unanswered} got no answer and {unavailable} got UNAVAILABLE ({example}): the server still works for \
             callers who left; {healed}"
        ),
    )
}

/// `BURST` plain calls at once on `methods`, and how each ended.
async fn burst(ctx: &Context, methods: &[MethodDescriptor]) -> Vec<Result<(), CallError>> {
    join_all((0..BURST).map(|index| plain_call(ctx, &methods[index % methods.len()]))).await
}

/// A call kept open until dropped; dropping it cancels it.
enum InFlight {
    Stream(#[allow(dead_code)] harness::ResponseStream),
    Bidi(#[allow(dead_code)] harness::BidiCall),
    Done,
}

/// Puts one call of `method` with `request` in flight: a response stream
/// read to its first message (or `FIRST_RESPONSE`), or a request stream
/// with one message and no half-close.
async fn in_flight(ctx: &Context, method: MethodDescriptor, request: DynamicMessage) -> InFlight {
    let options = CallOptions { watchdog: ctx.settings.watchdog, ..Default::default() };
    if method.is_client_streaming() {
        let mut call = ctx.client().bidi(&method, &options);
        if call.send(&request).is_err() {
            return InFlight::Done;
        }
        let _ = tokio::time::timeout(FIRST_RESPONSE, call.message()).await;
        return InFlight::Bidi(call);
    }
    match ctx.client().server_streaming(&method, &request, &options).await {
        Ok(mut stream) => {
            let _ = tokio::time::timeout(FIRST_RESPONSE, stream.message()).await;
            InFlight::Stream(stream)
        }
        Err(_) => InFlight::Done,
    }
}
