//! The health gate between cases: when the target stops answering a plain
//! call, the run says so once, fails the case after which it happened, and
//! reports the cases after it as not run, instead of failing each with
//! whatever the stuck server makes of it. It checks again before each case,
//! and goes on as soon as the target answers.
//!
//! The case that broke the target fails even if its own check passed: a
//! run whose target stopped answering must never exit as a success.

use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::CallError;

use crate::{
    context::Context,
    report::{Failure, Verdict},
};

/// How long a plain call may take before the target counts as stuck.
const PROBE: Duration = Duration::from_secs(5);

/// After this long without an answer, the gate stops asking: every case
/// left is reported as not run.
const GIVE_UP: Duration = Duration::from_secs(60);

/// Whether the target has stopped answering, and since when.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    closed: Option<(String, Instant)>,
}

impl Gate {
    /// Why the next case cannot run, or `None` when the target answers.
    pub(crate) async fn reason_to_skip(&mut self, ctx: &Context) -> Option<String> {
        let (after, since) = self.closed.as_ref()?;
        let reason = format!("not run: the target stopped answering after {after}");
        if since.elapsed() < GIVE_UP && answers(ctx).await {
            self.closed = None;
            return None;
        }
        Some(reason)
    }

    /// Checks the target after `case`; true when it just stopped answering.
    pub(crate) async fn check_after(&mut self, ctx: &Context, case: &str) -> bool {
        if answers(ctx).await {
            return false;
        }
        self.closed = Some((case.to_owned(), Instant::now()));
        true
    }
}

/// The verdict of the case after which the target stopped answering: a
/// failure, its own if it had one, with a note saying what followed.
pub(crate) fn blame(verdict: Verdict) -> Verdict {
    const STOPPED: &str = "after this case the target stopped answering plain calls";
    match verdict {
        Verdict::Failed(mut failure) => {
            failure.note = Some(match failure.note.take() {
                Some(note) => format!("{note}; {STOPPED}"),
                None => STOPPED.to_owned(),
            });
            Verdict::Failed(failure)
        }
        _ => Verdict::Failed(Failure::new(
            "the target to keep answering plain calls after this case",
            format!("it did not answer one within {PROBE:?} (or the run's watchdog, if shorter)"),
        )),
    }
}

/// Whether the target answers a plain call, with any status of its own:
/// health's `Check("")` where it serves health (which shares the server's
/// workers), else a method no server has.
async fn answers(ctx: &Context) -> bool {
    let limit = ctx.settings.watchdog.min(PROBE);
    if ctx.services.contains("grpc.health.v1.Health") {
        return match tokio::time::timeout(limit, harness::health::status(ctx.channel.clone(), "")).await {
            Ok(Ok(_)) => true,
            Ok(Err(status)) => !harness::transport::connection_failed(&status),
            Err(_) => false,
        };
    }
    let Some(output) = ctx.contracts.all_messages().next() else { return true };
    let options = harness::CallOptions { watchdog: limit, ..Default::default() };
    let outcome =
        match ctx.client().raw("/conformance.Gate/Probe", vec![Bytes::new()], &options, output).await {
            Ok(stream) => stream.collect().await.1.map(|_| ()),
            Err(err) => Err(err),
        };
    !matches!(outcome, Err(CallError::NoAnswer { .. })) && !outcome.is_err_and(|e| e.connection_failed())
}
