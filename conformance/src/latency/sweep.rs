//! One concurrency level: warm up, then measure windows until throughput is
//! stable.
//!
//! perf_analyzer's criterion: a level is stable when the throughputs of its
//! last three windows are all within 10% of their mean. A short run may stop
//! before that holds; the level then says so (`stable: false`) instead of
//! failing, because a quick look on a busy laptop is still worth having, as
//! long as nobody mistakes it for a settled number.

use std::time::Duration;

use serde::Serialize;

use super::{
    load::{self, Caller, Window},
    report::Level,
};

/// The concurrency levels every subject is swept over.
pub const LEVELS: &[usize] = &[1, 2, 4, 8];

/// Windows compared by the stability criterion.
const STABLE_WINDOWS: usize = 3;

/// How far each of those windows' throughput may stray from their mean.
const STABLE_TOLERANCE: f64 = 0.10;

/// How long each window lasts and how many a level may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mode {
    /// One window's length; a warm-up window of the same length comes first.
    #[serde(rename = "window_ms", serialize_with = "as_millis")]
    pub window: Duration,
    /// Windows measured at most before a level is reported unstable.
    pub max_windows: usize,
}

impl Mode {
    /// perf_analyzer's defaults.
    pub const FULL: Mode = Mode { window: Duration::from_secs(2), max_windows: 10 };

    /// A quick look: one chance at stability after three short windows.
    pub const SHORT: Mode = Mode { window: Duration::from_millis(300), max_windows: STABLE_WINDOWS };
}

fn as_millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_millis() as u64)
}

/// Measures `caller` at `concurrency` and reports the last windows, those
/// the stability criterion judged.
pub(super) async fn measure(subject: &str, caller: &Caller, concurrency: usize, mode: Mode) -> Level {
    // Warm-up: connections, session pools and caches settle, and the level's
    // own queueing reaches steady state before anything is kept.
    load::window(caller, concurrency, mode.window).await;
    let mut windows: Vec<Window> = Vec::new();
    let mut throughputs: Vec<f64> = Vec::new();
    while windows.len() < mode.max_windows.max(1) {
        let window = load::window(caller, concurrency, mode.window).await;
        throughputs.push(window.throughput());
        windows.push(window);
        if is_stable(&throughputs) {
            break;
        }
    }
    let stable = is_stable(&throughputs);
    let mut kept = Window::empty();
    for window in &windows[windows.len().saturating_sub(STABLE_WINDOWS)..] {
        kept.merge(window);
    }
    Level::new(subject, caller.is_grpc(), concurrency, &kept, stable, throughputs)
}

/// perf_analyzer's criterion on the last [`STABLE_WINDOWS`] throughputs. A
/// level that completed nothing is never stable: zero throughput is a
/// failure to measure, not a measurement.
pub(super) fn is_stable(throughputs: &[f64]) -> bool {
    let Some(last) = throughputs.len().checked_sub(STABLE_WINDOWS).map(|from| &throughputs[from..]) else {
        return false;
    };
    let mean = last.iter().sum::<f64>() / last.len() as f64;
    mean > 0.0 && last.iter().all(|t| (t - mean).abs() <= STABLE_TOLERANCE * mean)
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
