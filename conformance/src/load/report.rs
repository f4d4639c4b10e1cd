//! What one level of load came to: throughput, percentiles of calls and of
//! response messages, the endings, and the means of chosen response fields;
//! as a table, CSV or JSON.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{Level, Recorder};

/// Percentiles of a histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// How many values.
    pub count: u64,
    /// The mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 95th percentile.
    pub p95_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// The largest value.
    pub max_us: u64,
}

impl Percentiles {
    fn of(histogram: &Histogram<u64>) -> Option<Percentiles> {
        (!histogram.is_empty()).then(|| Percentiles {
            count: histogram.len(),
            mean_us: histogram.mean(),
            p50_us: histogram.value_at_quantile(0.50),
            p90_us: histogram.value_at_quantile(0.90),
            p95_us: histogram.value_at_quantile(0.95),
            p99_us: histogram.value_at_quantile(0.99),
            max_us: histogram.max(),
        })
    }
}

/// One level's figures.
#[derive(Debug, Clone, Serialize)]
pub struct LevelReport {
    /// The load offered.
    pub level: Level,
    /// How long the measured part of the level ran.
    pub seconds: f64,
    /// Calls finished, however they ended.
    pub calls: u64,
    /// Calls that ended OK.
    pub ok: u64,
    /// Finished calls per second.
    pub calls_per_second: f64,
    /// Calls that ended OK, per second.
    pub ok_per_second: f64,
    /// Calls that ended OK. For an open loop, from when each was due.
    pub call_latency: Option<Percentiles>,
    /// Each response message of an OK call (for streams, the gap before it).
    pub message_latency: Option<Percentiles>,
    /// Calls by how they ended.
    pub endings: BTreeMap<String, u64>,
    /// The first call that did not end OK.
    pub first_error: Option<String>,
    /// Under [`super::Stop::Stable`], whether the level became stable.
    pub stable: Option<bool>,
    /// Under [`super::Stop::Stable`], every window's OK calls per second.
    pub window_throughputs: Vec<f64>,
    /// The mean of each averaged response field, over the responses that
    /// had it.
    pub means: BTreeMap<String, f64>,
}

impl LevelReport {
    /// The figures of `record`, taken at `level` over `elapsed`, with the
    /// windows' verdict and throughputs when the level ran in windows.
    pub fn new(
        level: Level,
        elapsed: Duration,
        record: &Recorder,
        windows: Option<(bool, Vec<f64>)>,
    ) -> LevelReport {
        let calls = record.finished();
        let ok = record.endings.get("OK").copied().unwrap_or(0);
        let seconds = elapsed.as_secs_f64();
        let per_second = |count: u64| if seconds > 0.0 { count as f64 / seconds } else { 0.0 };
        let (stable, window_throughputs) = match windows {
            Some((stable, throughputs)) => (Some(stable), throughputs),
            None => (None, Vec::new()),
        };
        LevelReport {
            level,
            seconds,
            calls,
            ok,
            calls_per_second: per_second(calls),
            ok_per_second: per_second(ok),
            call_latency: Percentiles::of(&record.calls),
            message_latency: Percentiles::of(&record.messages),
            endings: record.endings.clone(),
            first_error: record.first_error.clone(),
            stable,
            window_throughputs,
            means: record
                .sums
                .iter()
                .map(|(field, (count, total))| (field.clone(), total / *count as f64))
                .collect(),
        }
    }

    /// Calls that did not end OK.
    pub fn errors(&self) -> u64 {
        self.calls - self.ok
    }
}

/// The levels as a table, in milliseconds.
pub fn table(levels: &[LevelReport]) -> String {
    let mut out = format!(
        "{:>18} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>11}  endings\n",
        "level", "calls", "calls/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "msg p99 ms"
    );
    let ms = |us: u64| us as f64 / 1000.0;
    for level in levels {
        let cell = |value: Option<u64>| value.map_or("-".to_owned(), |us| format!("{:.2}", ms(us)));
        let latency = level.call_latency;
        let endings: Vec<String> =
            level.endings.iter().map(|(name, count)| format!("{name} {count}")).collect();
        let unstable = if level.stable == Some(false) { "  (not stable)" } else { "" };
        out.push_str(&format!(
            "{:>18} {:>9} {:>10.0} {:>8} {:>8} {:>8} {:>8} {:>11}  {}{unstable}\n",
            level.level.to_string(),
            level.calls,
            level.calls_per_second,
            cell(latency.map(|l| l.p50_us)),
            cell(latency.map(|l| l.p90_us)),
            cell(latency.map(|l| l.p99_us)),
            cell(latency.map(|l| l.max_us)),
            cell(level.message_latency.map(|m| m.p99_us)),
            endings.join(", ")
        ));
    }
    for level in levels {
        if let Some(error) = &level.first_error {
            out.push_str(&format!("{}: first failure: {error}\n", level.level));
        }
    }
    out
}

/// The levels as CSV, one row a level, latencies in microseconds.
pub fn csv(levels: &[LevelReport]) -> String {
    let mut out = String::from(
        "concurrency,rate,seconds,calls,ok,calls_per_second,p50_us,p90_us,p95_us,p99_us,max_us,message_p50_us,message_p99_us,stable\n",
    );
    for level in levels {
        let call = level.call_latency;
        let message = level.message_latency;
        let field = |value: Option<u64>| value.map_or(String::new(), |v| v.to_string());
        let (concurrency, rate) = match level.level {
            Level::Concurrency(n) => (n.to_string(), String::new()),
            Level::Rate(rate) => (String::new(), rate.to_string()),
        };
        out.push_str(&format!(
            "{concurrency},{rate},{:.3},{},{},{:.1},{},{},{},{},{},{},{},{}\n",
            level.seconds,
            level.calls,
            level.ok,
            level.calls_per_second,
            field(call.map(|c| c.p50_us)),
            field(call.map(|c| c.p90_us)),
            field(call.map(|c| c.p95_us)),
            field(call.map(|c| c.p99_us)),
            field(call.map(|c| c.max_us)),
            field(message.map(|m| m.p50_us)),
            field(message.map(|m| m.p99_us)),
            level.stable.map_or(String::new(), |stable| stable.to_string()),
        ));
    }
    out
}
