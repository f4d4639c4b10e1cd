//! The latency suite for `inference.InferenceMethods`, after NVIDIA's
//! perf_analyzer: a concurrency sweep per server, each level measured in
//! windows until its throughput is stable, beside the bare ONNX Runtime
//! session as the floor no server can beat.
//!
//! Conformance says whether a server is right; this says what being a
//! server costs. The floor ([`SubjectKind::Floor`]) runs only the forward
//! pass, so `p50(server) − p50(floor)` is everything else: gRPC, decoding,
//! letterboxing, NMS. The server-side `timing` of each response splits that
//! remainder further. The floor is a process of its own ([`Floor`]), so the
//! suite links no inference runtime.
//!
//! The sweep is one use of the load engine ([`crate::load`]): a gRPC
//! subject is a closed loop of Infer calls measured in windows until stable
//! (`sweep`), with the server's `timing` fields averaged; a floor measures
//! its own windows, which the engine's stability criterion judges the same
//! way. `report` turns each level into numbers, and `output` and `plot`
//! write them down.

mod floor;
mod output;
mod plot;
mod report;
mod sample;
mod sweep;

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context as _, Result};
use harness::transport::Channel;

use crate::load::Stability;

pub use floor::Floor;
pub use output::{CSV, JSON, SVG};
pub use report::{Level, Overhead, RATIO_CONCURRENCY, Report, ServerBreakdown, Summary, ThroughputRatio};
pub use sample::sample_image;
pub use sweep::LEVELS;

/// One thing whose latency is measured.
#[derive(Debug, Clone)]
pub struct Subject {
    /// How it appears in the table, the files and the chart's legend.
    pub name: String,
    /// What is called.
    pub kind: SubjectKind,
}

/// How a [`Subject`] is called.
#[derive(Debug, Clone)]
pub enum SubjectKind {
    /// A gRPC server of inference.InferenceMethods.
    Grpc(Channel),
    /// A bare inference session in a process of its own: the floor.
    Floor(Arc<Floor>),
}

impl SubjectKind {
    /// `"grpc"` or `"floor"`, as the files name the kind.
    pub fn label(&self) -> &'static str {
        match self {
            SubjectKind::Grpc(_) => "grpc",
            SubjectKind::Floor(_) => "floor",
        }
    }
}

/// What a sweep does and where it writes.
#[derive(Debug, Clone)]
pub struct Options {
    /// perf_analyzer's own settings (2 s windows, up to 10 per level) rather
    /// than the short default (300 ms windows, up to 3).
    pub full: bool,
    /// Where `latency.csv`, `latency.json` and `latency.svg` go; created if
    /// missing.
    pub out_dir: PathBuf,
    /// The encoded image every request carries.
    pub image: Vec<u8>,
    /// Overrides the mode's window length; tests use a few milliseconds.
    pub window: Option<Duration>,
}

impl Options {
    /// The short mode on [`sample_image`], writing into `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>) -> Options {
        Options { full: false, out_dir: out_dir.into(), image: sample_image(), window: None }
    }

    /// The window length and window limit these options mean.
    pub fn stability(&self) -> Stability {
        let stability = if self.full { Stability::PERF_ANALYZER } else { Stability::QUICK };
        Stability { window: self.window.unwrap_or(stability.window), ..stability }
    }
}

/// Sweeps every subject over [`LEVELS`], writes `latency.csv`,
/// `latency.json` and `latency.svg` into `options.out_dir`, and returns the
/// report. Error responses are counted, never fatal; only a setup failure
/// (an image the floor cannot decode, an unwritable folder) ends the sweep.
pub async fn sweep(subjects: &[Subject], options: &Options) -> Result<Report> {
    let stability = options.stability();
    let mut levels = Vec::new();
    for subject in subjects {
        for &concurrency in LEVELS {
            levels.push(
                sweep::measure(&subject.name, &subject.kind, &options.image, concurrency, stability).await?,
            );
        }
    }
    let report = Report::new(stability, levels);
    std::fs::create_dir_all(&options.out_dir)
        .with_context(|| format!("creating {}", options.out_dir.display()))?;
    output::write_csv(&report, &options.out_dir.join(CSV))?;
    output::write_json(&report, &options.out_dir.join(JSON))?;
    plot::write_svg(&report, &options.out_dir.join(SVG))?;
    Ok(report)
}
