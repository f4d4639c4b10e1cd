//! One measurement window: `c` workers, each calling back to back until the
//! window closes.
//!
//! This is perf_analyzer's concurrency mode: a closed loop with exactly `c`
//! requests outstanding, so throughput is what the subject sustains at that
//! load, not what a client chose to offer. A call that starts before the
//! window closes is waited for and counted, and the window's length is
//! measured until the last worker returns, so throughput is never inflated
//! by calls cut off at the edge.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use contracts::inference::{InferRequest, Timing, inference_methods_client::InferenceMethodsClient};
use harness::transport::Channel;
use hdrhistogram::Histogram;
use tokio::task::JoinSet;

use super::{SubjectKind, floor::Floor};

/// The slowest latency kept apart from the others, in µs; slower calls
/// count as this. A minute is far beyond any sane inference call.
const MAX_LATENCY_US: u64 = 60_000_000;

/// Significant digits the histogram keeps: 0.1% resolution.
const PRECISION: u8 = 3;

/// A subject, ready to be called many times with the same input.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    target: Target,
}

// One per subject, built once: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Target {
    Grpc {
        client: InferenceMethodsClient<Channel>,
        request: InferRequest,
    },
    /// A floor process, which runs its windows itself (see `floor.rs`).
    Floor(Arc<Floor>),
}

impl Caller {
    /// Prepares `kind` to be called with `image`: an Infer request with
    /// default thresholds. A floor was given the image when it started.
    pub(super) fn new(kind: &SubjectKind, image: &[u8]) -> Caller {
        let target = match kind {
            SubjectKind::Grpc(channel) => Target::Grpc {
                client: InferenceMethodsClient::new(channel.clone()),
                request: InferRequest { image_bytes: Bytes::copy_from_slice(image), ..Default::default() },
            },
            SubjectKind::Floor(floor) => Target::Floor(Arc::clone(floor)),
        };
        Caller { target }
    }

    /// Whether responses carry the server's `timing`.
    pub(super) fn is_grpc(&self) -> bool {
        matches!(self.target, Target::Grpc { .. })
    }
}

/// The server's own account of where its time went, summed over calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct ServerSums {
    /// Responses that carried a `timing`.
    pub(super) calls: u64,
    /// Sum of `decode_us`.
    pub(super) decode_us: u64,
    /// Sum of `preprocess_us`.
    pub(super) preprocess_us: u64,
    /// Sum of `inference_us`.
    pub(super) inference_us: u64,
    /// Sum of `postprocess_us`.
    pub(super) postprocess_us: u64,
}

impl ServerSums {
    fn add(&mut self, timing: &Timing) {
        self.calls += 1;
        self.decode_us += timing.decode_us;
        self.preprocess_us += timing.preprocess_us;
        self.inference_us += timing.inference_us;
        self.postprocess_us += timing.postprocess_us;
    }

    fn merge(&mut self, other: &ServerSums) {
        self.calls += other.calls;
        self.decode_us += other.decode_us;
        self.preprocess_us += other.preprocess_us;
        self.inference_us += other.inference_us;
        self.postprocess_us += other.postprocess_us;
    }
}

/// What one window (or several, merged) produced.
#[derive(Debug, Clone)]
pub(super) struct Window {
    /// Latencies of successful calls, in µs.
    pub(super) latencies: Histogram<u64>,
    /// Calls answered with an error.
    pub(super) errors: u64,
    /// The first error, as evidence in the report.
    pub(super) first_error: Option<String>,
    /// From the window's start until its last call returned.
    pub(super) elapsed: Duration,
    /// The server's timing, for gRPC subjects.
    pub(super) server: ServerSums,
}

impl Window {
    /// A window with nothing in it.
    pub(super) fn empty() -> Window {
        Window {
            latencies: Histogram::new_with_bounds(1, MAX_LATENCY_US, PRECISION)
                .expect("the bounds are valid"),
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            server: ServerSums::default(),
        }
    }

    /// Successful calls.
    pub(super) fn completed(&self) -> u64 {
        self.latencies.len()
    }

    /// Successful calls per second.
    pub(super) fn throughput(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 { self.completed() as f64 / seconds } else { 0.0 }
    }

    /// Adds `other`'s calls and time to this window's.
    pub(super) fn merge(&mut self, other: &Window) {
        self.latencies.add(&other.latencies).expect("histograms with the same bounds always add");
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        self.elapsed += other.elapsed;
        self.server.merge(&other.server);
    }

    fn success(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latencies.saturating_record(micros);
    }

    fn error(&mut self, message: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message);
        }
    }
}

/// Runs `concurrency` workers against `caller` for `length`, then waits for
/// the calls still in flight.
pub(super) async fn window(caller: &Caller, concurrency: usize, length: Duration) -> Window {
    let (client, request) = match &caller.target {
        Target::Grpc { client, request } => (client, request),
        Target::Floor(floor) => return floor_window(floor, concurrency, length).await,
    };
    let started = Instant::now();
    let closes = started + length;
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        workers.spawn(grpc_worker(client.clone(), request.clone(), closes));
    }
    let mut window = Window::empty();
    while let Some(joined) = workers.join_next().await {
        match joined {
            // A worker's tally has no elapsed time of its own: the window's
            // is measured once, below, across all of them.
            Ok(worker) => window.merge(&worker),
            Err(err) => window.error(format!("a load worker failed: {err}")),
        }
    }
    window.elapsed = started.elapsed();
    window
}

async fn grpc_worker(
    mut client: InferenceMethodsClient<Channel>,
    request: InferRequest,
    closes: Instant,
) -> Window {
    let mut tally = Window::empty();
    while Instant::now() < closes {
        let sent = Instant::now();
        match client.infer(request.clone()).await {
            Ok(response) => {
                tally.success(sent.elapsed());
                if let Some(timing) = &response.get_ref().timing {
                    tally.server.add(timing);
                }
            }
            Err(status) => tally.error(format!("{:?}: {}", status.code(), status.message())),
        }
    }
    tally
}

/// A window the floor process measured, in the same terms.
async fn floor_window(floor: &Floor, concurrency: usize, length: Duration) -> Window {
    let mut window = Window::empty();
    match floor.window(concurrency, length).await {
        Ok(measured) => {
            for latency in measured.latencies_us {
                window.latencies.saturating_record(latency.max(1));
            }
            window.errors = measured.errors;
            window.first_error = measured.first_error;
            window.elapsed = Duration::from_micros(measured.elapsed_us);
        }
        Err(err) => {
            window.error(format!("{err:#}"));
            window.elapsed = length;
        }
    }
    window
}
