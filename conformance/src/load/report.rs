//! What one level of load came to: throughput, percentiles of calls and of
//! response messages, and the endings; as a table, CSV or JSON.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::Recorder;

/// Percentiles of a histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// How many values.
    pub count: u64,
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
    /// Calls in flight at once.
    pub concurrency: usize,
    /// How long the level ran.
    pub seconds: f64,
    /// Calls finished, however they ended.
    pub calls: u64,
    /// Calls that ended OK.
    pub ok: u64,
    /// Finished calls per second.
    pub calls_per_second: f64,
    /// Whole calls.
    pub call_latency: Option<Percentiles>,
    /// Each response message (for streams, the gap before it).
    pub message_latency: Option<Percentiles>,
    /// Calls by how they ended.
    pub endings: BTreeMap<String, u64>,
}

impl LevelReport {
    /// The figures of `record`, taken at `concurrency` over `elapsed`.
    pub fn new(concurrency: usize, elapsed: Duration, record: &Recorder) -> LevelReport {
        let calls = record.endings.values().sum();
        let seconds = elapsed.as_secs_f64();
        LevelReport {
            concurrency,
            seconds,
            calls,
            ok: record.endings.get("OK").copied().unwrap_or(0),
            calls_per_second: if seconds > 0.0 { calls as f64 / seconds } else { 0.0 },
            call_latency: Percentiles::of(&record.calls),
            message_latency: Percentiles::of(&record.messages),
            endings: record.endings.clone(),
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
        "{:>11} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>11}  endings\n",
        "concurrency", "calls", "calls/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "msg p99 ms"
    );
    let ms = |us: u64| us as f64 / 1000.0;
    for level in levels {
        let latency = level.call_latency.unwrap_or_default();
        let message = level.message_latency.map_or("-".to_owned(), |m| format!("{:.2}", ms(m.p99_us)));
        let endings: Vec<String> =
            level.endings.iter().map(|(name, count)| format!("{name} {count}")).collect();
        out.push_str(&format!(
            "{:>11} {:>9} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>11}  {}\n",
            level.concurrency,
            level.calls,
            level.calls_per_second,
            ms(latency.p50_us),
            ms(latency.p90_us),
            ms(latency.p99_us),
            ms(latency.max_us),
            message,
            endings.join(", ")
        ));
    }
    out
}

/// The levels as CSV, one row a level, latencies in microseconds.
pub fn csv(levels: &[LevelReport]) -> String {
    let mut out = String::from(
        "concurrency,seconds,calls,ok,calls_per_second,p50_us,p90_us,p95_us,p99_us,max_us,message_p50_us,message_p99_us\n",
    );
    for level in levels {
        let call = level.call_latency;
        let message = level.message_latency;
        let field = |value: Option<u64>| value.map_or(String::new(), |v| v.to_string());
        out.push_str(&format!(
            "{},{:.3},{},{},{:.1},{},{},{},{},{},{},{}\n",
            level.concurrency,
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
        ));
    }
    out
}
