//! One worker's record of a level: latencies in hdrhistogram, endings by
//! name. Workers record apart and are merged at the end, so recording
//! takes no lock.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;

/// Latencies in microseconds, from 1 µs to an hour, to 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid")
}

/// What calls took and how they ended.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Whole calls, successful or not.
    pub calls: Histogram<u64>,
    /// Each response message: from the call's start, or the message before.
    pub messages: Histogram<u64>,
    /// Calls by how they ended: `OK`, a status code, or `no answer`.
    pub endings: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty record.
    pub fn new() -> Recorder {
        Recorder { calls: histogram(), messages: histogram(), endings: BTreeMap::new() }
    }

    /// One call: how long it took, the gaps before each of its responses,
    /// and how it ended.
    pub fn record(&mut self, call: Duration, messages: &[Duration], ending: &str) {
        self.calls.saturating_record(micros(call));
        for gap in messages {
            self.messages.saturating_record(micros(*gap));
        }
        *self.endings.entry(ending.to_owned()).or_default() += 1;
    }

    /// Adds another worker's record.
    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.calls.add(&other.calls);
        let _ = self.messages.add(&other.messages);
        for (ending, count) in &other.endings {
            *self.endings.entry(ending.clone()).or_default() += count;
        }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX).max(1)
}
