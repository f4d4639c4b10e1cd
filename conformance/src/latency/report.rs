//! What a sweep found: one [`Level`] per subject and concurrency, and the two
//! comparisons the sweep exists for.
//!
//! Latencies are kept in µs, the histogram's unit, so the files lose
//! nothing; the terminal table and the chart show milliseconds. A level
//! with no successful call has no percentiles (`None`, an empty cell),
//! never a made-up zero.

use std::fmt::Write as _;

use serde::Serialize;

use crate::load::{LevelReport, Stability};

/// The concurrency at which the gRPC subjects' throughputs are compared.
pub const RATIO_CONCURRENCY: usize = 4;

/// One subject at one concurrency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Level {
    /// The subject's name.
    pub subject: String,
    /// `"grpc"` or `"floor"`.
    pub kind: &'static str,
    /// Workers calling at once.
    pub concurrency: usize,
    /// Windows measured (the warm-up not counted).
    pub windows: usize,
    /// Whether the last three windows' throughputs were within 10% of their
    /// mean.
    pub stable: bool,
    /// Every measured window's throughput, in calls per second.
    pub window_throughputs: Vec<f64>,
    /// Successful calls in the kept windows (the last three, or fewer).
    pub requests: u64,
    /// Calls answered with an error in the kept windows.
    pub errors: u64,
    /// The first of those errors.
    pub first_error: Option<String>,
    /// Successful calls per second over the kept windows.
    pub throughput: f64,
    /// Mean latency, µs.
    pub mean_us: Option<f64>,
    /// Median latency, µs.
    pub p50_us: Option<u64>,
    /// 90th percentile latency, µs.
    pub p90_us: Option<u64>,
    /// 95th percentile latency, µs.
    pub p95_us: Option<u64>,
    /// 99th percentile latency, µs.
    pub p99_us: Option<u64>,
    /// The server's mean stage times, for gRPC subjects that report them.
    pub server: Option<ServerBreakdown>,
}

/// The server's mean time per stage, from each response's `timing`, µs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ServerBreakdown {
    /// Decoding the image.
    pub decode_us: f64,
    /// Letterboxing it into the input tensor.
    pub preprocess_us: f64,
    /// The forward pass.
    pub inference_us: f64,
    /// NMS, masks and building the response.
    pub postprocess_us: f64,
}

impl Level {
    /// One level of `subject`, a `kind` subject, at `concurrency`, from
    /// what the load engine measured.
    pub(super) fn new(
        subject: &str,
        kind: &'static str,
        concurrency: usize,
        measured: &LevelReport,
    ) -> Level {
        let latency = measured.call_latency;
        let mean = |field: &str| measured.means.get(field).copied();
        let server = match super::sweep::TIMING.map(mean) {
            [Some(decode_us), Some(preprocess_us), Some(inference_us), Some(postprocess_us)] => {
                Some(ServerBreakdown { decode_us, preprocess_us, inference_us, postprocess_us })
            }
            _ => None,
        };
        Level {
            subject: subject.to_owned(),
            kind,
            concurrency,
            windows: measured.window_throughputs.len(),
            stable: measured.stable.unwrap_or(false),
            window_throughputs: measured.window_throughputs.clone(),
            requests: measured.ok,
            errors: measured.errors(),
            first_error: measured.first_error.clone(),
            throughput: measured.ok_per_second,
            mean_us: latency.map(|l| l.mean_us),
            p50_us: latency.map(|l| l.p50_us),
            p90_us: latency.map(|l| l.p90_us),
            p95_us: latency.map(|l| l.p95_us),
            p99_us: latency.map(|l| l.p99_us),
            server,
        }
    }
}

/// A gRPC subject's cost over the bare forward pass, at concurrency 1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overhead {
    /// The gRPC subject.
    pub subject: String,
    /// The floor it is compared with.
    pub floor: String,
    /// p50(subject) − p50(floor), ms.
    pub p50_overhead_ms: f64,
}

/// The first gRPC subject's throughput over another's, at
/// [`RATIO_CONCURRENCY`]: above 1, the first is faster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThroughputRatio {
    /// The first gRPC subject (ours).
    pub first: String,
    /// The other (e.g. the Python reference).
    pub other: String,
    /// The concurrency compared.
    pub concurrency: usize,
    /// throughput(first) / throughput(other).
    pub ratio: f64,
}

/// The comparisons derived from the levels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// One per gRPC subject, when there is a floor and both have a p50.
    pub overhead_over_floor: Vec<Overhead>,
    /// One per gRPC subject after the first, when both completed calls.
    pub throughput_ratios: Vec<ThroughputRatio>,
}

/// A whole sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The windows it was measured in.
    pub mode: Stability,
    /// Subject by subject, each in increasing concurrency.
    pub levels: Vec<Level>,
    /// The comparisons.
    pub summary: Summary,
}

impl Report {
    /// The report on `levels`, with its summary.
    pub fn new(mode: Stability, levels: Vec<Level>) -> Report {
        let summary = summarize(&levels);
        Report { mode, levels, summary }
    }

    /// The subjects, in the order they were measured.
    pub fn subjects(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for level in &self.levels {
            if !names.contains(&level.subject.as_str()) {
                names.push(&level.subject);
            }
        }
        names
    }

    /// `subject` at `concurrency`.
    pub fn level(&self, subject: &str, concurrency: usize) -> Option<&Level> {
        self.levels.iter().find(|level| level.subject == subject && level.concurrency == concurrency)
    }

    /// Whether every level was stable.
    pub fn all_stable(&self) -> bool {
        self.levels.iter().all(|level| level.stable)
    }

    /// Errors over every level.
    pub fn errors(&self) -> u64 {
        self.levels.iter().map(|level| level.errors).sum()
    }

    /// The terminal table, then the summary and the first error of each
    /// subject that had any.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let header = [
            "subject",
            "concurrency",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p95 ms",
            "p99 ms",
            "stable",
            "errors",
            "decode µs",
            "pre µs",
            "infer µs",
            "post µs",
        ];
        let rows: Vec<[String; 13]> = self.levels.iter().map(row).collect();
        let mut widths = header.map(|title| title.chars().count());
        for cells in &rows {
            for (width, cell) in widths.iter_mut().zip(cells) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut text = String::new();
            for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
                let pad = " ".repeat(width - cell.chars().count());
                // The subject reads left to right; numbers line up right.
                if index == 0 { write!(text, "{cell}{pad}") } else { write!(text, "  {pad}{cell}") }
                    .expect("writing to a String cannot fail");
            }
            text.trim_end().to_owned()
        };
        let header: Vec<String> = header.iter().map(|title| (*title).to_owned()).collect();
        let header = line(&header);
        writeln!(out, "{header}\n{}", "-".repeat(header.chars().count())).unwrap();
        for cells in &rows {
            writeln!(out, "{}", line(cells)).unwrap();
        }
        writeln!(
            out,
            "\nwindows of {} ms, at most {} per level; stable: last 3 windows' throughput within 10% of their mean",
            self.mode.window.as_millis(),
            self.mode.max_windows
        )
        .unwrap();
        for overhead in &self.summary.overhead_over_floor {
            writeln!(
                out,
                "{} over the floor ({}) at concurrency 1: p50 +{:.3} ms",
                overhead.subject, overhead.floor, overhead.p50_overhead_ms
            )
            .unwrap();
        }
        for ratio in &self.summary.throughput_ratios {
            writeln!(
                out,
                "{} / {} throughput at concurrency {}: {:.2}x",
                ratio.first, ratio.other, ratio.concurrency, ratio.ratio
            )
            .unwrap();
        }
        for subject in self.subjects() {
            let failed = self.levels.iter().filter(|level| level.subject == subject);
            if let Some(level) = failed.clone().find(|level| level.first_error.is_some()) {
                let errors: u64 = failed.map(|level| level.errors).sum();
                writeln!(
                    out,
                    "{subject}: {errors} error responses; first: {}",
                    level.first_error.as_deref().unwrap_or_default()
                )
                .unwrap();
            }
        }
        out
    }
}

fn row(level: &Level) -> [String; 13] {
    let ms = |us: Option<u64>| us.map_or_else(|| "-".to_owned(), |us| format!("{:.3}", us as f64 / 1000.0));
    let server = |stage: fn(&ServerBreakdown) -> f64| {
        level.server.as_ref().map_or_else(|| "-".to_owned(), |server| format!("{:.0}", stage(server)))
    };
    [
        level.subject.clone(),
        level.concurrency.to_string(),
        format!("{:.1}", level.throughput),
        ms(level.p50_us),
        ms(level.p90_us),
        ms(level.p95_us),
        ms(level.p99_us),
        if level.stable { "yes" } else { "no" }.to_owned(),
        level.errors.to_string(),
        server(|s| s.decode_us),
        server(|s| s.preprocess_us),
        server(|s| s.inference_us),
        server(|s| s.postprocess_us),
    ]
}

fn summarize(levels: &[Level]) -> Summary {
    let at = |subject: &str, concurrency: usize| {
        levels.iter().find(|level| level.subject == subject && level.concurrency == concurrency)
    };
    let mut grpc: Vec<&str> = Vec::new();
    let mut floor: Option<&str> = None;
    for level in levels {
        if level.kind == "grpc" && !grpc.contains(&level.subject.as_str()) {
            grpc.push(&level.subject);
        } else if level.kind == "floor" && floor.is_none() {
            floor = Some(&level.subject);
        }
    }
    let overhead_over_floor = floor
        .and_then(|floor| Some((floor, at(floor, 1)?.p50_us?)))
        .map(|(floor, floor_p50)| {
            grpc.iter()
                .filter_map(|&subject| {
                    let p50 = at(subject, 1)?.p50_us?;
                    Some(Overhead {
                        subject: subject.to_owned(),
                        floor: floor.to_owned(),
                        p50_overhead_ms: (p50 as f64 - floor_p50 as f64) / 1000.0,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let throughput_ratios = grpc
        .split_first()
        .map(|(&first, others)| {
            others
                .iter()
                .filter_map(|&other| {
                    let first_rps = at(first, RATIO_CONCURRENCY)?.throughput;
                    let other_rps = at(other, RATIO_CONCURRENCY)?.throughput;
                    (first_rps > 0.0 && other_rps > 0.0).then(|| ThroughputRatio {
                        first: first.to_owned(),
                        other: other.to_owned(),
                        concurrency: RATIO_CONCURRENCY,
                        ratio: first_rps / other_rps,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Summary { overhead_over_floor, throughput_ratios }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(subject: &str, kind: &'static str, concurrency: usize, p50_us: u64, throughput: f64) -> Level {
        Level {
            subject: subject.to_owned(),
            kind,
            concurrency,
            windows: 3,
            stable: true,
            window_throughputs: vec![throughput; 3],
            requests: 10,
            errors: 0,
            first_error: None,
            throughput,
            mean_us: Some(p50_us as f64),
            p50_us: Some(p50_us),
            p90_us: Some(p50_us),
            p95_us: Some(p50_us),
            p99_us: Some(p50_us),
            server: None,
        }
    }

    #[test]
    fn summary_compares_grpc_subjects_with_the_floor_and_the_first_with_the_others() {
        let report = Report::new(
            Stability::QUICK,
            vec![
                level("rust", "grpc", 1, 9_000, 110.0),
                level("rust", "grpc", 4, 20_000, 300.0),
                level("python", "grpc", 1, 15_000, 60.0),
                level("python", "grpc", 4, 40_000, 100.0),
                level("floor", "floor", 1, 3_000, 330.0),
            ],
        );
        let overheads: Vec<(&str, f64)> = report
            .summary
            .overhead_over_floor
            .iter()
            .map(|o| (o.subject.as_str(), o.p50_overhead_ms))
            .collect();
        assert_eq!(overheads, [("rust", 6.0), ("python", 12.0)]);
        assert_eq!(report.summary.throughput_ratios.len(), 1);
        let ratio = &report.summary.throughput_ratios[0];
        assert_eq!((ratio.first.as_str(), ratio.other.as_str(), ratio.ratio), ("rust", "python", 3.0));
        let table = report.table();
        assert!(table.contains("rust over the floor (floor) at concurrency 1: p50 +6.000 ms"), "{table}");
        assert!(table.contains("rust / python throughput at concurrency 4: 3.00x"), "{table}");
    }

    #[test]
    fn a_level_without_successes_has_no_percentiles() {
        let measured = LevelReport::new(
            crate::load::Level::Concurrency(1),
            std::time::Duration::from_millis(300),
            &crate::load::Recorder::new(),
            Some((false, vec![0.0])),
        );
        let level = Level::new("broken", "grpc", 1, &measured);
        assert_eq!((level.p50_us, level.mean_us, level.server), (None, None, None));
        let table = Report::new(Stability::QUICK, vec![level]).table();
        assert!(table.lines().nth(2).unwrap().starts_with("broken  "), "{table}");
    }
}
