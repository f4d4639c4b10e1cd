//! The record of a window: latencies in hdrhistogram, endings by name, and
//! the sums of chosen response fields.
//!
//! Calls record into [`Shards`], a few locks that concurrent calls rarely
//! share, and the run takes them whole at each window's end, so recording
//! never waits on reporting.

use std::{collections::BTreeMap, sync::Mutex, time::Duration};

use hdrhistogram::Histogram;

/// Latencies in microseconds, from 1 µs to an hour, to 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid")
}

/// What calls took and how they ended.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Calls that ended OK. A failure's latency says how fast the server
    /// refuses, not how fast it serves, so it is only counted.
    pub calls: Histogram<u64>,
    /// Each response message of an OK call: from the call's start, or from
    /// the message before.
    pub messages: Histogram<u64>,
    /// Calls by how they ended: `OK`, a status code, or `no answer`.
    pub endings: BTreeMap<String, u64>,
    /// The first call that did not end OK, as evidence.
    pub first_error: Option<String>,
    /// For each summed response field: how many responses had it, and its
    /// total.
    pub sums: BTreeMap<String, (u64, f64)>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty record.
    pub fn new() -> Recorder {
        Recorder {
            calls: histogram(),
            messages: histogram(),
            endings: BTreeMap::new(),
            first_error: None,
            sums: BTreeMap::new(),
        }
    }

    /// One finished call: how long it took, the gaps before each of its
    /// responses, how it ended (`Ok`, or the ending's name and what was
    /// said), and the response fields to sum.
    pub fn record(
        &mut self,
        call: Duration,
        messages: &[Duration],
        ending: Result<(), (String, String)>,
        fields: &[(String, f64)],
    ) {
        match ending {
            Ok(()) => {
                self.calls.saturating_record(micros(call));
                for gap in messages {
                    self.messages.saturating_record(micros(*gap));
                }
                // Most calls end OK: counted without allocating a name.
                match self.endings.get_mut("OK") {
                    Some(count) => *count += 1,
                    None => {
                        self.endings.insert("OK".to_owned(), 1);
                    }
                }
            }
            Err((name, message)) => {
                if self.first_error.is_none() {
                    self.first_error = Some(format!("{name}: {message}"));
                }
                *self.endings.entry(name).or_default() += 1;
            }
        }
        for (field, value) in fields {
            let sum = self.sums.entry(field.clone()).or_default();
            sum.0 += 1;
            sum.1 += value;
        }
    }

    /// Adds another record.
    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.calls.add(&other.calls);
        let _ = self.messages.add(&other.messages);
        for (ending, count) in &other.endings {
            *self.endings.entry(ending.clone()).or_default() += count;
        }
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        for (field, (count, total)) in &other.sums {
            let sum = self.sums.entry(field.clone()).or_default();
            sum.0 += count;
            sum.1 += total;
        }
    }

    /// Calls finished, however they ended.
    pub fn finished(&self) -> u64 {
        self.endings.values().sum()
    }
}

/// Records that concurrent calls write into, spread over a few locks.
#[derive(Debug)]
pub(super) struct Shards(Vec<Mutex<Recorder>>);

impl Shards {
    pub(super) fn new() -> Shards {
        Shards((0..16).map(|_| Mutex::new(Recorder::new())).collect())
    }

    /// Records into the shard of call number `index`.
    pub(super) fn with(&self, index: usize, record: impl FnOnce(&mut Recorder)) {
        let mut shard = self.0[index % self.0.len()].lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        record(&mut shard);
    }

    /// Everything recorded since the last take, leaving the shards empty.
    pub(super) fn take(&self) -> Recorder {
        let mut all = Recorder::new();
        for shard in &self.0 {
            let taken = std::mem::take(&mut *shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
            all.merge(&taken);
        }
        all
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX).max(1)
}
