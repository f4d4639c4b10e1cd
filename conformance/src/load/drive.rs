//! Putting a level's load on the server: closed-loop workers or an
//! open-loop dispatcher, both ramping linearly from the level before, and
//! the one call they both make.

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use anyhow::Result;
use bytes::Bytes;
use harness::{CallError, Channel, DirectClient, call::path_of, direct::DirectRequest};
use prost_reflect::{DynamicMessage, MessageDescriptor, ReflectMessage as _, Value};
use smallvec::SmallVec;
use tokio::{sync::Semaphore, task::JoinSet};

use super::{Level, Plan, Shared};

/// What every call of a run needs, encoded once: the requests' bytes and
/// a client per connection.
#[derive(Debug)]
pub(super) struct Prepared {
    clients: Vec<DirectClient>,
    request: DirectRequest,
    /// Each call's request messages, framed for the wire.
    frames: Vec<Vec<Bytes>>,
    output: MessageDescriptor,
    means: Vec<String>,
    max_in_flight: usize,
    message_interval: Duration,
}

impl Prepared {
    pub(super) fn new(plan: &Plan, channels: &[Channel]) -> Result<Prepared> {
        let encode =
            |message: &DynamicMessage| harness::direct::frame(&prost::Message::encode_to_vec(message));
        let clients: Vec<DirectClient> = channels.iter().map(DirectClient::new).collect();
        let request = clients[0].request(&path_of(&plan.method), plan.timeout)?;
        Ok(Prepared {
            clients,
            request,
            frames: plan.calls.iter().map(|call| call.iter().map(encode).collect()).collect(),
            output: plan.method.output(),
            means: plan.means.clone(),
            max_in_flight: plan.max_in_flight.max(1),
            message_interval: plan.message_interval,
        })
    }

    /// Call number `number`, measured from `due`, recorded into `shared`.
    async fn call(&self, number: u64, due: Instant, shared: &Shared) {
        let client = &self.clients[number as usize % self.clients.len()];
        // A stride prime to most call counts, so that neighbouring calls
        // differ even when the calls were given in a meaningful order.
        let frames = &self.frames[(number as usize).wrapping_mul(7919) % self.frames.len()];
        let mut last = due;
        // Most calls answer once or a few times: no allocation for those.
        let mut gaps: SmallVec<[Duration; 4]> = SmallVec::new();
        let mut fields = Vec::new();
        let mut undecodable = None;
        let ending = client
            .call(&self.request, frames, self.message_interval, |body| {
                let now = Instant::now();
                gaps.push(now - last);
                last = now;
                // Responses are decoded only when a field is averaged: the
                // cost would otherwise be the generator's, not the server's.
                if !self.means.is_empty() {
                    match DynamicMessage::decode(self.output.clone(), body) {
                        Ok(message) => fields.extend(numbers(&message, &self.means)),
                        Err(err) => {
                            undecodable.get_or_insert_with(|| err.to_string());
                        }
                    }
                }
            })
            .await;
        let took = due.elapsed();
        let ending = match (ending, undecodable) {
            (Ok(()), Some(err)) => Err(("undecodable response".to_owned(), err)),
            (ending, _) => ending.map_err(|err| ending_of(&err)),
        };
        shared.shards.with(number as usize, |record| record.record(took, &gaps, ending, &fields));
        shared.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// `OK`'s opposite: a status code's name, or what else ended the call, and
/// what was said.
fn ending_of(err: &CallError) -> (String, String) {
    match err {
        CallError::Status(status) => (format!("{:?}", status.code()), status.message().to_owned()),
        CallError::NoAnswer { .. } => ("no answer".to_owned(), err.to_string()),
        CallError::Decode { .. } => ("undecodable response".to_owned(), err.to_string()),
        CallError::Protocol(_) => ("protocol violation".to_owned(), err.to_string()),
    }
}

/// The numeric fields at `paths` in `message`, as far as it has them.
fn numbers(message: &DynamicMessage, paths: &[String]) -> Vec<(String, f64)> {
    paths
        .iter()
        .filter_map(|path| {
            let mut current = message.clone();
            let mut names = path.split('.').peekable();
            while let Some(name) = names.next() {
                let field = current.descriptor().get_field_by_name(name)?;
                if !current.has_field(&field) && names.peek().is_some() {
                    return None;
                }
                let value = current.get_field(&field).into_owned();
                if names.peek().is_none() {
                    return number(&value).map(|number| (path.clone(), number));
                }
                current = value.as_message()?.clone();
            }
            None
        })
        .collect()
}

fn number(value: &Value) -> Option<f64> {
    Some(match *value {
        Value::I32(v) | Value::EnumNumber(v) => f64::from(v),
        Value::I64(v) => v as f64,
        Value::U32(v) => f64::from(v),
        Value::U64(v) => v as f64,
        Value::F32(v) => f64::from(v),
        Value::F64(v) => v,
        _ => return None,
    })
}

/// A level's load over time: a linear ramp from the level before, then
/// the level's own.
#[derive(Debug, Clone, Copy)]
pub(super) struct Schedule {
    pub(super) from: Option<Level>,
    pub(super) to: Level,
    pub(super) ramp: Duration,
}

impl Schedule {
    /// How far through the ramp `elapsed` is, from 0 to 1.
    fn progress(&self, elapsed: Duration) -> f64 {
        if self.ramp.is_zero() { 1.0 } else { (elapsed.as_secs_f64() / self.ramp.as_secs_f64()).min(1.0) }
    }

    /// Calls in flight a closed loop wants `elapsed` into the level.
    fn concurrency(&self, elapsed: Duration) -> usize {
        let Level::Concurrency(to) = self.to else { return 0 };
        let from = match self.from {
            Some(Level::Concurrency(from)) => from as f64,
            _ => 0.0,
        };
        let now = from + (to as f64 - from) * self.progress(elapsed);
        (now.ceil() as usize).max(1)
    }

    /// When an open loop's call number `number` is due, from the level's
    /// start: the time at which the rate, integrated, reaches `number`.
    pub(super) fn due(&self, number: u64) -> Duration {
        let Level::Rate(to) = self.to else { return Duration::ZERO };
        let from = match self.from {
            Some(Level::Rate(from)) => from,
            _ => 0.0,
        };
        let ramp = self.ramp.as_secs_f64();
        let calls = number as f64;
        let ramped = ramp * (from + to) / 2.0;
        let seconds = if ramp == 0.0 || calls >= ramped {
            ramp + (calls - ramped) / to
        } else {
            // calls = from·t + (to − from)·t² / (2·ramp), for t in the ramp.
            let a = (to - from) / (2.0 * ramp);
            if a.abs() < f64::EPSILON {
                calls / from
            } else {
                (-from + (from * from + 4.0 * a * calls).max(0.0).sqrt()) / (2.0 * a)
            }
        };
        Duration::from_secs_f64(seconds.max(0.0))
    }
}

/// Puts the level's load on until the run says stop, or the calls are
/// counted out, and waits for the calls in flight.
pub(super) async fn drive(prepared: Arc<Prepared>, schedule: Schedule, shared: Arc<Shared>) {
    match schedule.to {
        Level::Concurrency(_) => closed(prepared, schedule, shared).await,
        Level::Rate(_) => open(prepared, schedule, shared).await,
    }
}

/// Workers that each make one call at a time. While ramping, a worker
/// whose number is beyond the load wanted waits its turn.
async fn closed(prepared: Arc<Prepared>, schedule: Schedule, shared: Arc<Shared>) {
    let most = match (schedule.from, schedule.to) {
        (Some(Level::Concurrency(from)), Level::Concurrency(to)) => from.max(to),
        (_, Level::Concurrency(to)) => to,
        _ => unreachable!("a closed loop has a concurrency"),
    };
    let most_after_ramp = schedule.concurrency(schedule.ramp);
    let mut workers = JoinSet::new();
    for worker in 0..most {
        let (prepared, shared) = (Arc::clone(&prepared), Arc::clone(&shared));
        workers.spawn(async move {
            // The clock is read only while ramping, not on every call.
            let mut ramped = schedule.ramp.is_zero();
            loop {
                let wanted = if ramped {
                    most_after_ramp
                } else {
                    let elapsed = shared.start.elapsed();
                    ramped = elapsed >= schedule.ramp;
                    schedule.concurrency(elapsed)
                };
                if worker >= wanted {
                    if ramped || shared.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                let Some(number) = shared.next_call() else { break };
                prepared.call(number, Instant::now(), &shared).await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

/// The tokio timer's resolution.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// A dispatcher that starts each call when it is due, each on a task of its
/// own, at most `max_in_flight` at once.
async fn open(prepared: Arc<Prepared>, schedule: Schedule, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(prepared.max_in_flight));
    let mut calls = JoinSet::new();
    'dispatch: while let Some(number) = shared.next_call() {
        let due = shared.start + schedule.due(number);
        // The timer wakes on whole milliseconds, late by up to one: wake a
        // millisecond early instead, and start the call then.
        if due > Instant::now() + TIMER_TICK {
            tokio::time::sleep_until((due - TIMER_TICK).into()).await;
            if shared.stop.load(Ordering::Relaxed) {
                break;
            }
        }
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            // A run that stops while every slot is taken stops dispatching.
            () = until_stopped(&shared) => break 'dispatch,
        };
        let (prepared, shared) = (Arc::clone(&prepared), Arc::clone(&shared));
        calls.spawn(async move {
            let from = measured_from(due, Instant::now());
            prepared.call(number, from, &shared).await;
            drop(slot);
        });
        while calls.try_join_next().is_some() {}
    }
    while calls.join_next().await.is_some() {}
}

/// Where an open-loop call's latency starts: when it was due, or when it
/// started if that was earlier. The generator's lateness counts against the
/// server, as a real client's queue would; its earliness does not count for
/// it.
fn measured_from(due: Instant, started: Instant) -> Instant {
    due.min(started)
}

async fn until_stopped(shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(from: Option<Level>, to: Level, ramp_secs: u64) -> Schedule {
        Schedule { from, to, ramp: Duration::from_secs(ramp_secs) }
    }

    #[test]
    fn an_open_loop_without_a_ramp_is_evenly_spaced() {
        let steady = schedule(None, Level::Rate(100.0), 0);
        assert_eq!(steady.due(0), Duration::ZERO);
        assert_eq!(steady.due(100), Duration::from_secs(1));
        assert_eq!(steady.due(250), Duration::from_millis(2500));
    }

    #[test]
    fn a_ramp_integrates_the_rate() {
        // From nothing to 100/s over 10 s: 500 calls in the ramp, the first
        // quarter of them in its first half.
        let up = schedule(None, Level::Rate(100.0), 10);
        let close = |a: Duration, b: f64| (a.as_secs_f64() - b).abs() < 1e-9;
        assert!(close(up.due(125), 5.0), "{:?}", up.due(125));
        assert!(close(up.due(500), 10.0));
        assert!(close(up.due(600), 11.0));
        // Down from 200/s to 100/s over 2 s: 300 calls in the ramp.
        let down = schedule(Some(Level::Rate(200.0)), Level::Rate(100.0), 2);
        assert!(close(down.due(175), 1.0), "{:?}", down.due(175));
        assert!(close(down.due(300), 2.0));
        // Dues never go backwards.
        let dues: Vec<Duration> = (0..1000).map(|n| up.due(n)).collect();
        assert!(dues.windows(2).all(|pair| pair[0] <= pair[1]));
    }

    #[test]
    fn open_loop_latency_starts_at_the_earlier_of_due_and_started() {
        let due = Instant::now();
        let late = due + Duration::from_millis(3);
        let early = due - Duration::from_millis(1);
        assert_eq!(measured_from(due, late), due);
        assert_eq!(measured_from(due, early), early);
    }

    #[test]
    fn a_closed_loop_ramps_its_workers() {
        let up = schedule(Some(Level::Concurrency(4)), Level::Concurrency(8), 4);
        assert_eq!(up.concurrency(Duration::ZERO), 4);
        assert_eq!(up.concurrency(Duration::from_secs(2)), 6);
        assert_eq!(up.concurrency(Duration::from_secs(9)), 8);
        let first = schedule(None, Level::Concurrency(10), 0);
        assert_eq!(first.concurrency(Duration::ZERO), 10);
    }
}
