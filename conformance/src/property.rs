//! Property checks: proptest generates and shrinks inputs, an async check
//! judges each one against the live target.
//!
//! proptest's runner is synchronous, so it runs on the blocking pool and
//! enters the async check with `Handle::block_on`. Each case derives its RNG
//! seed from the run's `--seed` and its own name, so `--seed S --run NAME`
//! replays exactly the inputs of a failing run.

use std::{
    future::Future,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex},
    time::Instant,
};

use proptest::{
    strategy::Strategy,
    test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner},
};
use tokio::runtime::Handle;

use crate::{
    context::Context,
    report::{Failure, Verdict},
};

/// The seed a case uses, from the run's root seed and the case's name.
pub fn case_seed(root: u64, case: &str) -> [u8; 32] {
    let mut seed = [0u8; 32];
    for (index, chunk) in seed.chunks_mut(8).enumerate() {
        let mut hasher = DefaultHasher::new();
        (root, case, index).hash(&mut hasher);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    seed
}

/// Runs `check` on `ctx.settings.inputs` inputs from `strategy`. On failure,
/// the shrunk input is checked once more for its evidence and rendered with
/// `show` (text format, and a reproduction command when there is one).
pub async fn check<S, V, F, Fut>(
    ctx: Arc<Context>,
    case: &str,
    strategy: impl FnOnce() -> S + Send + 'static,
    show: impl Fn(&Context, &V) -> (String, Option<String>) + Send + 'static,
    check: F,
) -> Verdict
where
    S: Strategy<Value = V>,
    V: Clone + std::fmt::Debug + Send + 'static,
    F: Fn(Arc<Context>, V) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send,
{
    let inputs = ctx.settings.inputs;
    check_n(ctx, case, inputs, strategy, show, check).await
}

/// [`check`] on `inputs` inputs instead of the run's setting: for properties
/// whose every input moves megabytes.
pub async fn check_n<S, V, F, Fut>(
    ctx: Arc<Context>,
    case: &str,
    inputs: u32,
    strategy: impl FnOnce() -> S + Send + 'static,
    show: impl Fn(&Context, &V) -> (String, Option<String>) + Send + 'static,
    check: F,
) -> Verdict
where
    S: Strategy<Value = V>,
    V: Clone + std::fmt::Debug + Send + 'static,
    F: Fn(Arc<Context>, V) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send,
{
    let seed = case_seed(ctx.settings.seed, case);
    let shrink_time = ctx.settings.shrink_time;
    let handle = Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        let config = Config {
            cases: inputs,
            // Wide dynamic messages need room to shrink...
            max_shrink_iters: 10_000,
            // ...but when each failing attempt costs a watchdog wait (a
            // server that never answers), or moves megabytes, shrinking
            // must stop in time; the input found so far is reported.
            max_shrink_time: u32::try_from(shrink_time.as_millis()).unwrap_or(u32::MAX),
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        // Shrinking starts at the first failure; proptest does not say
        // whether it stopped at its time bound, so the case measures.
        let first_failure: Mutex<Option<Instant>> = Mutex::new(None);
        let result = runner.run(&strategy(), |value| {
            handle.block_on(check(ctx.clone(), value)).map_err(|failure| {
                first_failure.lock().expect("not poisoned").get_or_insert_with(Instant::now);
                TestCaseError::fail(failure.actual)
            })
        });
        let bounded = first_failure
            .lock()
            .expect("not poisoned")
            .is_some_and(|started| started.elapsed() >= shrink_time);
        match result {
            Ok(()) => Verdict::Passed,
            Err(TestError::Fail(reason, value)) => {
                let mut failure =
                    handle.block_on(check(ctx.clone(), value.clone())).err().unwrap_or_else(|| {
                        Failure::new(
                            "the same outcome for the same input",
                            format!(
                                "the shrunk input failed ({reason}), then passed when checked again: \
                                 the target is not deterministic"
                            ),
                        )
                    });
                let (input, reproduce) = show(&ctx, &value);
                failure.input = Some(input);
                failure.reproduce = failure.reproduce.or(reproduce);
                if bounded {
                    failure.note = Some(format!(
                        "shrinking stopped at its bound of {} s (--shrink-secs): this is the smallest failing \
                         input found by then, and a smaller one may fail too",
                        shrink_time.as_secs()
                    ));
                }
                Verdict::Failed(failure)
            }
            Err(TestError::Abort(reason)) => {
                Verdict::failed("inputs to test", format!("proptest gave up: {reason}"))
            }
        }
    })
    .await;
    outcome.unwrap_or_else(|err| Verdict::failed("the check to run", format!("the check panicked: {err}")))
}
