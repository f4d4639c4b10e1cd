//! A load generator for any method of any server, from its descriptors.
//!
//! A [`Plan`] names the method, the requests (given, or drawn inside the
//! contract's rules), and the schedule: levels of load, each either a
//! closed loop (a number of calls in flight) or an open loop (a rate of
//! calls started, whether or not earlier ones have ended), each reached by
//! a linear ramp from the level before and then held for a duration, a
//! number of calls, or until its throughput is stable. Every call goes
//! through the harness's [`DirectClient`](harness::DirectClient), which
//! writes gRPC onto HTTP/2 with as little client work per call as it can,
//! so that the generator's own cost stays small beside the server's; TLS
//! and the run's headers apply as in the suite, in all four RPC patterns.
//!
//! Measuring follows NVIDIA's perf_analyzer: with [`Stop::Stable`], a level
//! runs in windows until the successful calls per second of its last three
//! windows are within 10% of their mean, and reports those three windows.
//! An open loop measures each call from the moment it was due, not the
//! moment it was sent, so a server that falls behind cannot hide its queue
//! by slowing the generator down (what wrk2 calls coordinated omission).
//! The timer wakes on whole milliseconds, so calls start up to a millisecond
//! early, and one that started early is measured from when it started.
//!
//! `conformance load` is its command line, and the inference latency sweep
//! ([`crate::latency`]) one of its uses.

pub(crate) mod chart;
mod drive;
mod recorder;
mod report;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use harness::{Channel, arbitrary::Generator};
use proptest::{
    strategy::{Strategy, ValueTree},
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};
use prost_reflect::{DynamicMessage, MethodDescriptor};
use serde::Serialize;

pub use chart::svg;
pub use recorder::Recorder;
pub use report::{LevelReport, Percentiles, csv, table};

use recorder::Shards;

/// What one call sends: the request messages of one call (one for unary
/// and server-streaming methods).
pub type Call = Vec<DynamicMessage>;

/// A load run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The method called.
    pub method: MethodDescriptor,
    /// The calls made, in turn.
    pub calls: Vec<Call>,
    /// The levels of load, run one after another.
    pub levels: Vec<Level>,
    /// When a level ends.
    pub stop: Stop,
    /// How long each level takes to reach its load from the level before
    /// (from nothing, for the first). Calls made while ramping are not
    /// reported, except under [`Stop::Count`], which counts every call.
    pub ramp: Duration,
    /// The deadline each call carries, and the harness's watchdog.
    pub timeout: Duration,
    /// HTTP/2 connections the calls are spread over. One is what most
    /// clients use; more, what a fleet of clients looks like to a server.
    pub connections: usize,
    /// An open loop's limit on calls in flight. A call due while the limit
    /// is reached waits, and the wait counts in its latency.
    pub max_in_flight: usize,
    /// For client and bidi streams, the pause between one request message
    /// and the next: streams that stay open and talk, rather than send
    /// everything at once.
    pub message_interval: Duration,
    /// Numeric response fields, as dotted paths (`timing.decode_us`),
    /// whose mean each level reports: a server's own account of its time.
    pub means: Vec<String>,
}

impl Plan {
    /// A plan with one connection, no ramp, at most 10,000 calls in flight,
    /// request streams sent at once, and no fields averaged.
    pub fn new(method: MethodDescriptor, calls: Vec<Call>, levels: Vec<Level>, stop: Stop) -> Plan {
        Plan {
            method,
            calls,
            levels,
            stop,
            ramp: Duration::ZERO,
            timeout: Duration::from_secs(10),
            connections: 1,
            max_in_flight: 10_000,
            message_interval: Duration::ZERO,
            means: Vec::new(),
        }
    }
}

/// How much load a level offers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// A closed loop: this many calls in flight, each started as one ends.
    /// What the server sustains, not what a client chose to offer.
    Concurrency(usize),
    /// An open loop: calls started at this many a second, as real clients
    /// arrive. What a server does when it cannot keep up shows here.
    Rate(f64),
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Level::Concurrency(n) => write!(f, "concurrency {n}"),
            Level::Rate(rate) => write!(f, "{rate} calls/s"),
        }
    }
}

/// When a level ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After this long.
    After(Duration),
    /// After this many calls.
    Count(u64),
    /// When its throughput is stable, by perf_analyzer's criterion.
    Stable(Stability),
}

/// perf_analyzer's windows: one warm-up window (unless the level ramps,
/// which warms it up), then windows until the last [`STABLE_WINDOWS`] are
/// stable; see [`until_stable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stability {
    /// One window's length.
    #[serde(rename = "window_ms", serialize_with = "as_millis")]
    pub window: Duration,
    /// Windows measured at most before a level is reported unstable.
    pub max_windows: usize,
}

impl Stability {
    /// perf_analyzer's own settings: 2 s windows, up to 10 a level.
    pub const PERF_ANALYZER: Stability = Stability { window: Duration::from_secs(2), max_windows: 10 };

    /// A quick look: one chance at stability after three short windows.
    pub const QUICK: Stability =
        Stability { window: Duration::from_millis(300), max_windows: STABLE_WINDOWS };
}

fn as_millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_millis() as u64)
}

/// Windows the stability criterion compares.
pub const STABLE_WINDOWS: usize = 3;

/// How far each of those windows' throughput may stray from their mean.
pub const STABLE_TOLERANCE: f64 = 0.10;

/// perf_analyzer's criterion on the last [`STABLE_WINDOWS`] throughputs.
/// A level that completed nothing is never stable: zero throughput is a
/// failure to measure, not a measurement.
pub fn is_stable(throughputs: &[f64]) -> bool {
    let Some(last) = throughputs.len().checked_sub(STABLE_WINDOWS).map(|from| &throughputs[from..]) else {
        return false;
    };
    let mean = last.iter().sum::<f64>() / last.len() as f64;
    mean > 0.0 && last.iter().all(|t| (t - mean).abs() <= STABLE_TOLERANCE * mean)
}

/// `count` calls drawn inside the input type's `buf.validate` rules, with
/// `seed`: load made of inputs the server should accept.
pub fn drawn_calls(method: &MethodDescriptor, count: usize, seed: u64) -> Result<Vec<Call>> {
    let input = method.input();
    let generator = harness::rules::generate::within_rules(Generator::new(), &input);
    let rules = harness::rules::Rules::default();
    let strategy = generator.call(method);
    let seed = crate::property::case_seed(seed, &format!("load/{}", method.full_name()));
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let mut calls = Vec::with_capacity(count);
    let mut attempts = 0;
    while calls.len() < count {
        attempts += 1;
        if attempts > count * 100 {
            bail!(
                "fewer than 1 in 100 drawn {} keep its rules: give the requests with --data",
                input.full_name()
            );
        }
        let Ok(tree) = strategy.new_tree(&mut runner) else { continue };
        let call = tree.current();
        if call.iter().all(|message| rules.check(message).is_ok_and(|broken| broken.is_empty())) {
            calls.push(call);
        }
    }
    Ok(calls)
}

/// What the driver of a level and the run that watches it share.
#[derive(Debug)]
struct Shared {
    shards: Shards,
    /// Calls begun, all connections together: a call takes its number here.
    begun: AtomicU64,
    /// Calls finished.
    done: AtomicU64,
    /// Set when the level's time is up; calls in flight are waited for.
    stop: AtomicBool,
    /// Under [`Stop::Count`], how many calls the level makes.
    limit: Option<u64>,
    /// When the level, its ramp included, began.
    start: Instant,
}

impl Shared {
    /// The next call's number, or `None` once the level is over.
    fn next_call(&self) -> Option<u64> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let number = self.begun.fetch_add(1, Ordering::Relaxed);
        self.limit.is_none_or(|limit| number < limit).then_some(number)
    }
}

/// Runs every level of `plan` against `channel`, calling `progress` with
/// each level's index and the calls finished so far, about ten times a
/// second.
pub async fn run(channel: Channel, plan: &Plan, progress: impl Fn(usize, u64)) -> Result<Vec<LevelReport>> {
    if plan.calls.is_empty() {
        bail!("a load run needs at least one call to make");
    }
    for level in &plan.levels {
        match *level {
            Level::Concurrency(0) => bail!("a level needs at least one call in flight"),
            Level::Rate(rate) if !(rate > 0.0 && rate.is_finite()) => {
                bail!("a rate must be a positive number of calls a second, not {rate}")
            }
            _ => {}
        }
    }
    let channels: Vec<Channel> = std::iter::once(channel.clone())
        .chain((1..plan.connections).map(|_| channel.secured(channel.security().clone())))
        .collect();
    let prepared = Arc::new(drive::Prepared::new(plan, &channels)?);
    let mut reports = Vec::new();
    for index in 0..plan.levels.len() {
        let from = index.checked_sub(1).map(|before| plan.levels[before]);
        let report = level(&prepared, plan, from, plan.levels[index], |done| progress(index, done)).await?;
        reports.push(report);
    }
    Ok(reports)
}

/// One level: its ramp, then its measurement.
async fn level(
    prepared: &Arc<drive::Prepared>,
    plan: &Plan,
    from: Option<Level>,
    level: Level,
    progress: impl Fn(u64),
) -> Result<LevelReport> {
    let limit = match plan.stop {
        Stop::Count(count) => Some(count),
        _ => None,
    };
    let shared = Arc::new(Shared {
        shards: Shards::new(),
        begun: AtomicU64::new(0),
        done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        limit,
        start: Instant::now(),
    });
    let schedule = drive::Schedule { from, to: level, ramp: plan.ramp };
    let mut driver = tokio::spawn(drive::drive(Arc::clone(prepared), schedule, Arc::clone(&shared)));
    let tick = || progress(shared.done.load(Ordering::Relaxed));

    if let Stop::Count(_) = plan.stop {
        let measured = Instant::now();
        wait_for(&mut driver, None, &tick).await?;
        return Ok(LevelReport::new(level, measured.elapsed(), &shared.shards.take(), None));
    }
    wait_for(&mut driver, Some(plan.ramp), &tick).await?;
    shared.shards.take();
    let (record, elapsed, windows) = match plan.stop {
        Stop::After(length) => {
            let measured = Instant::now();
            wait_for(&mut driver, Some(length), &tick).await?;
            shared.stop.store(true, Ordering::Relaxed);
            wait_for(&mut driver, None, &tick).await?;
            (shared.shards.take(), measured.elapsed(), None)
        }
        Stop::Stable(stability) => {
            let windows = until_stable(stability, plan.ramp.is_zero(), async || {
                let measured = Instant::now();
                wait_for(&mut driver, Some(stability.window), &tick).await?;
                Ok((shared.shards.take(), measured.elapsed()))
            })
            .await?;
            shared.stop.store(true, Ordering::Relaxed);
            wait_for(&mut driver, None, &tick).await?;
            (windows.kept, windows.elapsed, Some((windows.stable, windows.throughputs)))
        }
        Stop::Count(_) => unreachable!("handled above"),
    };
    Ok(LevelReport::new(level, elapsed, &record, windows))
}

/// What a level measured in windows kept: the last [`STABLE_WINDOWS`].
#[derive(Debug)]
pub struct Windows {
    /// The kept windows' calls, merged.
    pub kept: Recorder,
    /// The kept windows' length, together.
    pub elapsed: Duration,
    /// Whether the criterion held when measuring stopped.
    pub stable: bool,
    /// Every measured window's OK calls per second.
    pub throughputs: Vec<f64>,
}

/// perf_analyzer's measurement of one level: a warm-up window (when
/// `warm_up`), then windows from `window` until the last
/// [`STABLE_WINDOWS`] are stable or `stability.max_windows` have been
/// measured. A level that is still unstable says so rather than failing: a
/// quick look on a busy laptop is worth having, as long as nobody mistakes
/// it for a settled number.
pub async fn until_stable(
    stability: Stability,
    warm_up: bool,
    mut window: impl AsyncFnMut() -> Result<(Recorder, Duration)>,
) -> Result<Windows> {
    if warm_up {
        window().await?;
    }
    let mut windows: Vec<(Recorder, Duration)> = Vec::new();
    let mut throughputs = Vec::new();
    while windows.len() < stability.max_windows.max(1) && !is_stable(&throughputs) {
        let (record, elapsed) = window().await?;
        let ok = record.endings.get("OK").copied().unwrap_or(0);
        throughputs.push(if elapsed.is_zero() { 0.0 } else { ok as f64 / elapsed.as_secs_f64() });
        windows.push((record, elapsed));
    }
    let mut kept = Recorder::new();
    let mut elapsed = Duration::ZERO;
    for (record, length) in &windows[windows.len().saturating_sub(STABLE_WINDOWS)..] {
        kept.merge(record);
        elapsed += *length;
    }
    Ok(Windows { kept, elapsed, stable: is_stable(&throughputs), throughputs })
}

/// Waits `length`, or until the driver ends when `None`, ticking the
/// progress about ten times a second. A driver that ends early has failed.
async fn wait_for(
    driver: &mut tokio::task::JoinHandle<()>,
    length: Option<Duration>,
    tick: &impl Fn(),
) -> Result<()> {
    let until = length.map(|length| tokio::time::Instant::now() + length);
    loop {
        let now = tokio::time::Instant::now();
        let step = match until {
            Some(until) if until <= now => return Ok(()),
            Some(until) => (until - now).min(Duration::from_millis(100)),
            None => Duration::from_millis(100),
        };
        tokio::select! {
            joined = &mut *driver => {
                joined.context("the load driver panicked")?;
                tick();
                if length.is_some() {
                    bail!("the load driver stopped before its level was over");
                }
                return Ok(());
            }
            () = tokio::time::sleep(step) => tick(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stability_needs_three_windows_within_ten_percent_of_their_mean() {
        let check = |throughputs: &[f64], expected: bool| {
            assert_eq!(is_stable(throughputs), expected, "{throughputs:?}");
        };
        check(&[], false);
        check(&[100.0, 100.0], false);
        check(&[100.0, 100.0, 100.0], true);
        check(&[100.0, 109.0, 91.0], true);
        check(&[100.0, 100.0, 125.0], false);
        // Only the last three count.
        check(&[10.0, 500.0, 100.0, 104.0, 98.0], true);
        check(&[0.0, 0.0, 0.0], false);
    }
}
