//! The chart: p50 (solid) and p99 (dashed) latency against concurrency, one
//! colour per subject.
//!
//! Concurrency doubles from level to level, so the x axis is logarithmic
//! and the levels are evenly spaced. SVG only: it needs no fonts or image
//! codecs, opens in any browser, and diffs as text.

use std::path::Path;

use anyhow::{Context as _, Result, anyhow};
use plotters::prelude::*;

use super::report::Report;
use crate::load::chart::COLOURS;

const SIZE: (u32, u32) = (960, 560);

/// Draws `report` into an SVG file at `path`.
pub(super) fn write_svg(report: &Report, path: &Path) -> Result<()> {
    let svg = svg(report)?;
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))
}

/// The chart as SVG text.
pub(super) fn svg(report: &Report) -> Result<String> {
    let mut svg = String::new();
    draw(report, &mut svg).map_err(|err| anyhow!("drawing the latency chart: {err}"))?;
    Ok(svg)
}

fn draw(report: &Report, svg: &mut String) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let ms = |us: Option<u64>| us.map(|us| us as f64 / 1000.0);
    let highest = report.levels.iter().filter_map(|level| ms(level.p99_us)).fold(0.0, f64::max);
    let top = (highest * 1.15).max(1.0);
    let max_level = report.levels.iter().map(|level| level.concurrency).max().unwrap_or(1).max(1);
    let doublings = (max_level as f64).log2().ceil();

    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("inference.InferenceMethods/Infer latency against concurrency", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(52)
        .y_label_area_size(72)
        .build_cartesian_2d(-0.25..doublings + 0.25, 0.0..top)?;
    chart
        .configure_mesh()
        // One label per doubling: any finer step would need more labels.
        .x_labels(doublings as usize + 2)
        .x_desc("concurrency (requests in flight)")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| format!("{}", 2f64.powf(*x).round()))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;

    for (index, subject) in report.subjects().into_iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let points = |percentile: fn(&super::Level) -> Option<u64>| -> Vec<(f64, f64)> {
            report
                .levels
                .iter()
                .filter(|level| level.subject == subject)
                .filter_map(|level| Some(((level.concurrency as f64).log2(), ms(percentile(level))?)))
                .collect()
        };
        let p50 = points(|level| level.p50_us);
        let p99 = points(|level| level.p99_us);
        chart
            .draw_series(LineSeries::new(p50.iter().copied(), colour.stroke_width(2)))?
            .label(format!("{subject} p50"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(2)));
        chart
            .draw_series(DashedLineSeries::new(p99.iter().copied(), 6, 4, colour.stroke_width(2)))?
            .label(format!("{subject} p99"))
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new([(0, 0), (9, 0)], colour.stroke_width(2))
                    + PathElement::new([(15, 0), (24, 0)], colour.stroke_width(2))
            });
        chart.draw_series(p50.iter().chain(&p99).map(|&point| Circle::new(point, 3, colour.filled())))?;
    }
    crate::load::chart::legend(&mut chart)?;
    root.present()?;
    Ok(())
}
