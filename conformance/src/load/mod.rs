//! A load generator for any method of any server, from its descriptors.
//!
//! A [`Plan`] names the method, the requests (given, or drawn inside the
//! contract's rules), and the schedule: closed-loop levels of concurrency,
//! each held for a duration or a number of calls. Every call goes through
//! the harness's [`DynamicClient`], so all four RPC patterns, TLS and the
//! run's headers work as in the suite. Each call's latency and, for
//! streams, each response message's latency go into hdrhistogram; every
//! ending is counted by status.
//!
//! `conformance load` is its command line. The inference latency sweep
//! still has its own driver (`latency/load.rs`); moving it onto this engine
//! comes next (see issue 12's notes).

mod recorder;
mod report;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use harness::{CallError, CallOptions, Channel, DynamicClient, arbitrary::Generator, call::path_of};
use proptest::{
    strategy::{Strategy, ValueTree},
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};
use prost_reflect::{DynamicMessage, MethodDescriptor};

pub use recorder::Recorder;
pub use report::{LevelReport, Percentiles, csv, table};

/// What one call sends: the request messages of one call (one for unary
/// and server-streaming methods).
pub type Call = Vec<DynamicMessage>;

/// A load run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The method called.
    pub method: MethodDescriptor,
    /// The calls made, in turn; each worker starts at its own offset.
    pub calls: Vec<Call>,
    /// The concurrency levels, run one after another.
    pub levels: Vec<usize>,
    /// When a level ends.
    pub stop: Stop,
    /// The deadline each call carries, and the harness's watchdog.
    pub timeout: Duration,
}

/// When a level ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After this long.
    After(Duration),
    /// After this many calls, all workers together.
    Count(u64),
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

/// Runs every level of `plan` against `channel`, calling `progress` with
/// each level's index and the calls finished so far, about ten times a
/// second.
pub async fn run(channel: Channel, plan: &Plan, progress: impl Fn(usize, u64)) -> Result<Vec<LevelReport>> {
    if plan.calls.is_empty() {
        bail!("a load run needs at least one call to make");
    }
    let mut reports = Vec::new();
    for (index, &concurrency) in plan.levels.iter().enumerate() {
        let done = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let workers: Vec<_> = (0..concurrency.max(1))
            .map(|worker| {
                let (client, plan, done) = (DynamicClient::new(channel.clone()), plan.clone(), done.clone());
                tokio::spawn(async move { work(client, &plan, worker, started, &done).await })
            })
            .collect();
        let all = futures_util::future::join_all(workers);
        tokio::pin!(all);
        let results = loop {
            tokio::select! {
                results = &mut all => break results,
                _ = tokio::time::sleep(Duration::from_millis(100)) => progress(index, done.load(Ordering::Relaxed)),
            }
        };
        let elapsed = started.elapsed();
        let mut total = Recorder::new();
        for result in results {
            total.merge(&result.context("a load worker panicked")?);
        }
        reports.push(LevelReport::new(concurrency, elapsed, &total));
    }
    Ok(reports)
}

/// One worker's calls, one at a time, until the level ends.
async fn work(
    mut client: DynamicClient,
    plan: &Plan,
    worker: usize,
    started: Instant,
    done: &AtomicU64,
) -> Recorder {
    let mut recorder = Recorder::new();
    let options =
        CallOptions { timeout: Some(plan.timeout), watchdog: plan.timeout * 2, ..Default::default() };
    let path = path_of(&plan.method);
    for turn in 0.. {
        match plan.stop {
            Stop::After(limit) if started.elapsed() >= limit => break,
            Stop::Count(limit) if done.fetch_add(1, Ordering::Relaxed) >= limit => break,
            _ => {}
        }
        let call = &plan.calls[(worker + turn * 7919) % plan.calls.len()];
        let bodies: Vec<Bytes> = call.iter().map(|m| Bytes::from(prost::Message::encode_to_vec(m))).collect();
        let began = Instant::now();
        let mut last = began;
        let mut gaps = Vec::new();
        let ending = match client.raw(&path, bodies, &options, plan.method.output()).await {
            Ok(mut stream) => loop {
                match stream.message().await {
                    Ok(Some(_)) => {
                        let now = Instant::now();
                        gaps.push(now - last);
                        last = now;
                    }
                    Ok(None) => break stream.trailers().await.map(|_| ()),
                    Err(err) => break Err(err),
                }
            },
            Err(err) => Err(err),
        };
        recorder.record(began.elapsed(), &gaps, &ending_name(&ending));
        if matches!(plan.stop, Stop::After(_)) {
            done.fetch_add(1, Ordering::Relaxed);
        }
    }
    recorder
}

/// `OK`, a status code's name, or what else ended the call.
fn ending_name(ending: &Result<(), CallError>) -> String {
    match ending {
        Ok(()) => "OK".to_owned(),
        Err(CallError::Status(status)) => format!("{:?}", status.code()),
        Err(CallError::NoAnswer { .. }) => "no answer".to_owned(),
        Err(CallError::Decode { .. }) => "undecodable response".to_owned(),
        Err(CallError::Protocol(_)) => "protocol violation".to_owned(),
    }
}
