//! The conformance suite behind `cargo xtask conformance`.
//!
//! Every check produces a [`Verdict`] rather than panicking, so one run reports
//! every case. Today the suite holds the smoke check (every contract is served
//! and healthy); the property-based suites of the harness issue plug in here.

pub mod report;
pub mod smoke;
