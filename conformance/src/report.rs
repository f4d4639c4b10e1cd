//! Named results with evidence, printed the way CI log readers expect.

use std::fmt;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The target behaved as the contract says.
    Passed,
    /// It did not; the strings say what was expected and what happened.
    Failed {
        /// What the contract requires.
        expected: String,
        /// What the target did.
        actual: String,
    },
    /// The target does not serve the contract under test. Never a pass.
    Skipped {
        /// Why the check did not run.
        reason: String,
    },
}

/// One named check and its verdict.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Stable name, e.g. `smoke/health/calculator.Calculator`.
    pub name: String,
    /// What happened.
    pub verdict: Verdict,
}

impl fmt::Display for CaseResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Verdict::Passed => write!(f, "PASS {}", self.name),
            Verdict::Failed { expected, actual } => {
                write!(f, "FAIL {}\n     expected: {expected}\n     actual:   {actual}", self.name)
            }
            Verdict::Skipped { reason } => write!(f, "SKIP {} ({reason})", self.name),
        }
    }
}

/// Counts by verdict.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Cases that did not run.
    pub skipped: usize,
}

impl Summary {
    /// Tallies `results`.
    pub fn of(results: &[CaseResult]) -> Self {
        let mut summary = Summary::default();
        for result in results {
            match result.verdict {
                Verdict::Passed => summary.passed += 1,
                Verdict::Failed { .. } => summary.failed += 1,
                Verdict::Skipped { .. } => summary.skipped += 1,
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
