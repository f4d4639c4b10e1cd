//! Checks a contract states itself: its `buf.validate` rules and its
//! `conformance.v1.expectation` options. Nothing here knows any contract:
//! every case below comes from a served method's descriptors, so a user's
//! own contract gets them with no code written.
//!
//! - `valid-inputs-accepted`: a request that keeps its type's rules never
//!   gets INVALID_ARGUMENT (other codes the contract defines are fine).
//! - `invalid-inputs-refused`: a request that breaks exactly one rule gets
//!   INVALID_ARGUMENT.
//! - `responses-satisfy-rules`: every response keeps its type's rules.
//! - `expect/<name>`: each expectation, on valid inputs where its `when`
//!   holds.

mod cel;
mod expectations;
mod validity;

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use harness::{
    CallOptions,
    arbitrary::Generator,
    rules::{self, Rules},
};
use proptest::strategy::{BoxedStrategy, Strategy};
use prost_reflect::{DynamicMessage, MethodDescriptor};

use self::expectations::{Call, Expectation, Outcome};
use crate::{
    case::Case,
    context::Context,
    generic::{exchange_up_to, is_infrastructure},
    property,
    report::{Failure, Verdict},
    reproduce,
};

const SUITE: &str = "declared";

/// Responses an expectation's call may return before it is judged as a
/// stream that does not end.
const MAX_RESPONSES: usize = 100_000;

/// Every declared case for the methods `ctx` says the target serves.
pub fn cases(ctx: &Context) -> Vec<Case> {
    let mut cases = Vec::new();
    for service in ctx.served.services().filter(|s| ctx.services.contains(s.full_name())) {
        let name = service.full_name().to_owned();
        if is_infrastructure(&name) {
            continue;
        }
        for method in service.methods() {
            let base = format!("{SUITE}/{name}/{}", method.name());
            if rules::has_rules(&method.input()) {
                let (valid, invalid) = (method.clone(), method.clone());
                cases.push(Case::new(
                    SUITE,
                    format!("{base}/valid-inputs-accepted"),
                    Some(&name),
                    move |ctx| validity::valid_inputs_accepted(ctx, valid.clone()),
                ));
                cases.push(Case::new(
                    SUITE,
                    format!("{base}/invalid-inputs-refused"),
                    Some(&name),
                    move |ctx| validity::invalid_inputs_refused(ctx, invalid.clone()),
                ));
            }
            if rules::has_rules(&method.output()) {
                let method = method.clone();
                cases.push(Case::new(
                    SUITE,
                    format!("{base}/responses-satisfy-rules"),
                    Some(&name),
                    move |ctx| validity::responses_satisfy_rules(ctx, method.clone()),
                ));
            }
            match expectations::of(&method) {
                Ok(list) => {
                    for expectation in list {
                        let method = method.clone();
                        let case = format!("{base}/expect/{}", expectation.name);
                        cases.push(Case::new(SUITE, case, Some(&name), move |ctx| {
                            expect(ctx, method.clone(), expectation.clone())
                        }));
                    }
                }
                Err(why) => {
                    cases.push(Case::new(SUITE, format!("{base}/expectations"), Some(&name), move |_| {
                        std::future::ready(Verdict::failed(
                            "expectations the suite can evaluate",
                            why.clone(),
                        ))
                    }))
                }
            }
        }
    }
    cases
}

/// How many inputs were drawn and how many kept, for the report.
#[derive(Debug, Default)]
struct Draws {
    drawn: AtomicU64,
    kept: AtomicU64,
    /// Why the last rejected input was rejected, when that was an error
    /// rather than a rule or a `when` that did not hold.
    error: std::sync::Mutex<Option<String>>,
}

impl Draws {
    fn keep(&self, kept: Result<bool, String>) -> bool {
        self.drawn.fetch_add(1, Ordering::Relaxed);
        match kept {
            Ok(true) => {
                self.kept.fetch_add(1, Ordering::Relaxed);
                true
            }
            Ok(false) => false,
            Err(why) => {
                *self.error.lock().expect("not poisoned") = Some(why);
                false
            }
        }
    }

    /// `verdict`, with the draws in it: how many inputs were rejected when
    /// it passed, and why there were too few when proptest gave up.
    fn report(&self, verdict: Verdict, wanted: &str) -> Verdict {
        let (drawn, kept) = (self.drawn.load(Ordering::Relaxed), self.kept.load(Ordering::Relaxed));
        let rejected = drawn - kept;
        match verdict {
            Verdict::Passed if rejected > 0 => Verdict::Measured {
                figures: format!("{rejected} of {drawn} drawn inputs were rejected: they were not {wanted}"),
            },
            Verdict::Failed(failure) if failure.actual.starts_with("proptest gave up") => {
                let error = self.error.lock().expect("not poisoned").clone();
                let mut actual = format!("only {kept} of {drawn} drawn inputs were {wanted}");
                if let Some(error) = error {
                    actual.push_str(&format!("; the last rejection was an error: {error}"));
                }
                Verdict::Failed(Failure::new(format!("enough inputs that are {wanted}"), actual))
            }
            other => other,
        }
    }
}

/// Requests for `method` that keep their type's rules: drawn from what the
/// rules allow where the generator can read them, and filtered by the
/// validator for the rest. `also` is a further filter (an expectation's
/// `when`).
fn valid_requests(
    ctx: &Context,
    method: &MethodDescriptor,
    draws: Arc<Draws>,
    also: impl Fn(&[DynamicMessage]) -> Result<bool, String> + 'static,
) -> BoxedStrategy<Vec<DynamicMessage>> {
    let input = method.input();
    let generator = rules::generate::within_rules(generator(ctx, method), &input);
    let drawn = generator.call(method);
    let rules = ctx.rules.clone();
    drawn
        .prop_filter("not a valid input", move |requests| {
            draws.keep(
                all_valid(&rules, requests).and_then(|valid| if valid { also(requests) } else { Ok(false) }),
            )
        })
        .boxed()
}

/// The generator for `method`'s requests: the run's sizes, and the numbers
/// the method's expectations and its input's rules name.
fn generator(ctx: &Context, method: &MethodDescriptor) -> Generator {
    let mut sources = rules::cel_expressions(&method.input());
    for expectation in expectations::of(method).unwrap_or_default() {
        sources.extend(expectation.when.map(|when| when.source));
        if let Outcome::Expect(expect) = expectation.outcome {
            sources.push(expect.source);
        }
    }
    Generator::new().sizes(ctx.settings.sizes).literals(rules::literals(sources.iter().map(String::as_str)))
}

fn all_valid(rules: &Rules, requests: &[DynamicMessage]) -> Result<bool, String> {
    for request in requests {
        if !rules.check(request)?.is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The options of a call whose whole answer is judged: no deadline sent,
/// and the run's watchdog, so a server that never ends is reported.
fn whole_call(ctx: &Context) -> CallOptions {
    CallOptions { watchdog: ctx.settings.watchdog, ..Default::default() }
}

fn show(ctx: &Context, method: &MethodDescriptor, requests: &[DynamicMessage]) -> (String, Option<String>) {
    let text = match method.is_client_streaming() {
        true => format!("a stream of {}:\n{}", requests.len(), reproduce::text(requests)),
        false => reproduce::text(requests),
    };
    (text, Some(reproduce::buf_curl(ctx, method, requests)))
}

/// The inputs of one declared property: drawn for a method, counting what
/// is rejected in `Draws`.
type Inputs =
    Box<dyn FnOnce(&Context, &MethodDescriptor, Arc<Draws>) -> BoxedStrategy<Vec<DynamicMessage>> + Send>;

/// Runs `check` on inputs from `inputs` as the case
/// `declared/<method>/<property>`, and reports how many drawn inputs were
/// not `wanted`.
async fn declared_property<F, Fut>(
    ctx: Arc<Context>,
    method: MethodDescriptor,
    property: &str,
    wanted: &str,
    inputs: Inputs,
    check: F,
) -> Verdict
where
    F: Fn(Arc<Context>, MethodDescriptor, Vec<DynamicMessage>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), Failure>> + Send,
{
    let draws = Arc::new(Draws::default());
    let name = format!("{SUITE}/{}/{property}", method.full_name());
    let (shown, drawn, counted, at) = (method.clone(), method.clone(), draws.clone(), ctx.clone());
    let verdict = property::check(
        ctx,
        &name,
        move || inputs(&at, &drawn, counted),
        move |ctx, requests: &Vec<DynamicMessage>| show(ctx, &shown, requests),
        move |ctx, requests| check(ctx, method.clone(), requests),
    )
    .await;
    draws.report(verdict, wanted)
}

async fn expect(ctx: Arc<Context>, method: MethodDescriptor, expectation: Expectation) -> Verdict {
    let wanted = match &expectation.when {
        Some(when) => format!("valid inputs where `{}` holds", when.source),
        None => "valid inputs".to_owned(),
    };
    let when = expectation.when.clone();
    let inputs: Inputs = Box::new(move |ctx, method, draws| {
        let filter_method = method.clone();
        valid_requests(ctx, method, draws, move |requests| match &when {
            Some(when) => Call { method: &filter_method, requests, ended: None }.holds(when),
            None => Ok(true),
        })
    });
    let property = format!("expect/{}", expectation.name);
    declared_property(ctx, method, &property, &wanted, inputs, move |ctx, method, requests| {
        let expectation = expectation.clone();
        async move {
            let (responses, outcome) =
                exchange_up_to(&ctx, &method, &requests, &whole_call(&ctx), MAX_RESPONSES).await;
            let call = Call { method: &method, requests: &requests, ended: Some((&responses, &outcome)) };
            judge(&expectation, &call, &outcome)
        }
    })
    .await
}

/// Whether one call meets `expectation`.
fn judge(
    expectation: &Expectation,
    call: &Call<'_>,
    outcome: &Result<(), harness::CallError>,
) -> Result<(), Failure> {
    match &expectation.outcome {
        Outcome::Code(code) => {
            let actual = outcome.as_ref().err().map_or(Some(tonic::Code::Ok), harness::CallError::code);
            if actual == Some(*code) {
                return Ok(());
            }
            Err(Failure::new(
                format!("{} (expectation `{}`)", expectations::code_name(*code), expectation.name),
                crate::generic::describe(outcome),
            ))
        }
        Outcome::Expect(expression) => {
            let expected = format!("`{}` (expectation `{}`)", expression.source, expectation.name);
            let judges_status = expression.uses("status");
            if outcome.is_err() && !judges_status {
                return Err(Failure::new(
                    format!("OK, and then {expected}"),
                    crate::generic::describe(outcome),
                ));
            }
            match call.holds(expression) {
                Ok(true) => Ok(()),
                Ok(false) => {
                    Err(Failure::new(expected, format!("it is false, with\n{}", call.shown(expression))))
                }
                Err(error) => Err(Failure::new(
                    expected,
                    format!("it cannot be evaluated: {error}, with\n{}", call.shown(expression)),
                )),
            }
        }
    }
}
