//! Named results with evidence, printed the way CI log readers expect.

pub mod markdown;

use std::{fmt, time::Duration};

use serde::Serialize;

/// Why a case failed, with everything needed to reproduce it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// What the contract requires.
    pub expected: String,
    /// What the target did.
    pub actual: String,
    /// The (shrunk) input, in protobuf text format, when there is one.
    pub input: Option<String>,
    /// A shell command that replays the input against the target.
    pub reproduce: Option<String>,
    /// What a reader should know about the evidence, e.g. that shrinking
    /// stopped at its time bound.
    pub note: Option<String>,
}

impl Failure {
    /// A failure without a specific input.
    pub fn new(expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Failure { expected: expected.into(), actual: actual.into(), input: None, reproduce: None, note: None }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The target behaved as the contract says.
    Passed,
    /// It did, and the check measured how well: figures for the report.
    Measured {
        /// What was measured, in words and units.
        figures: String,
    },
    /// It did not.
    Failed(Failure),
    /// The check did not run, e.g. the target does not serve the contract.
    /// Never counted as a pass.
    Skipped {
        /// Why the check did not run.
        reason: String,
    },
}

impl Verdict {
    /// Shorthand for a failure without a specific input.
    pub fn failed(expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Verdict::Failed(Failure::new(expected, actual))
    }

    /// The failure, if this is one.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Verdict::Failed(failure) => Some(failure),
            _ => None,
        }
    }
}

/// One named check and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Stable name, e.g. `declared/calculator.Calculator/Cube/expect/exact-cube`.
    pub name: String,
    /// The suite the case belongs to: a service name, or `generic`.
    pub suite: String,
    /// What happened.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Wall time the case took.
    #[serde(serialize_with = "as_secs")]
    pub duration: Duration,
    /// Set when the case is listed as known-failing: a failure is then
    /// expected, and a pass is reported as a failure of the list.
    pub known_failing: bool,
}

fn as_secs<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

impl fmt::Display for CaseResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Verdict::Passed => write!(f, "PASS {}", self.name),
            Verdict::Measured { figures } => write!(f, "PASS {} ({figures})", self.name),
            Verdict::Skipped { reason } => write!(f, "SKIP {} ({reason})", self.name),
            Verdict::Failed(failure) => {
                let label = if self.known_failing { "XFAIL" } else { "FAIL" };
                writeln!(f, "{label} {}", self.name)?;
                writeln!(f, "    expected: {}", failure.expected)?;
                // Evidence that spans lines (an expectation's variables)
                // stays inside the failure's block.
                write!(f, "    actual:   {}", failure.actual.replace('\n', "\n      "))?;
                if let Some(input) = &failure.input {
                    write!(f, "\n    input (shrunk):")?;
                    for line in input.lines() {
                        write!(f, "\n      {line}")?;
                    }
                }
                if let Some(note) = &failure.note {
                    write!(f, "\n    note: {note}")?;
                }
                if let Some(command) = &failure.reproduce {
                    write!(f, "\n    reproduce: {command}")?;
                }
                Ok(())
            }
        }
    }
}

/// Counts by verdict.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed (known-failing ones excluded).
    pub failed: usize,
    /// Cases that did not run.
    pub skipped: usize,
}

impl Summary {
    /// Tallies `results`. A known-failing case that failed counts as
    /// neither passed nor failed; one that passed counts as failed, because
    /// the list is then wrong.
    pub fn of<'a>(results: impl IntoIterator<Item = &'a CaseResult>) -> Self {
        let mut summary = Summary::default();
        for result in results {
            match (&result.verdict, result.known_failing) {
                (Verdict::Passed | Verdict::Measured { .. }, false) => summary.passed += 1,
                (Verdict::Passed | Verdict::Measured { .. }, true) => summary.failed += 1,
                (Verdict::Failed(_), false) => summary.failed += 1,
                (Verdict::Failed(_), true) => {}
                (Verdict::Skipped { .. }, _) => summary.skipped += 1,
            }
        }
        summary
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed, {} skipped", self.passed, self.failed, self.skipped)
    }
}
