//! The chart of a load run: latency against throughput, one point per
//! level, joined in the order the levels ran. perf_analyzer's curve: where
//! it turns upward, the server has stopped absorbing load and started
//! queueing it.

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use super::LevelReport;

const SIZE: (u32, u32) = (960, 560);

/// The chart colours, shared with the inference latency chart: Tableau's first colours: distinct, and all readable on white (plotters'
/// own palette puts a pale yellow third).
pub(crate) const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The chart of `levels` as SVG text, titled `title`: p50, p90 and p99 of
/// OK calls against OK calls per second. SVG needs no fonts or codecs,
/// opens in any browser, and diffs as text.
pub fn svg(title: &str, levels: &[LevelReport]) -> Result<String> {
    let mut svg = String::new();
    draw(title, levels, &mut svg).map_err(|err| anyhow!("drawing the load chart: {err}"))?;
    Ok(svg)
}

fn draw(
    title: &str,
    levels: &[LevelReport],
    svg: &mut String,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let ms = |us: u64| us as f64 / 1000.0;
    let measured: Vec<&LevelReport> = levels.iter().filter(|level| level.call_latency.is_some()).collect();
    let top =
        measured.iter().filter_map(|level| level.call_latency).map(|l| ms(l.p99_us)).fold(0.0, f64::max);
    let right = measured.iter().map(|level| level.ok_per_second).fold(0.0, f64::max);
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(52)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..(right * 1.1).max(1.0), 0.0..(top * 1.15).max(1.0))?;
    chart
        .configure_mesh()
        .x_desc("OK calls per second")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;
    type Percentile = fn(&super::Percentiles) -> u64;
    let percentiles: [(&str, Percentile); 3] =
        [("p50", |l| l.p50_us), ("p90", |l| l.p90_us), ("p99", |l| l.p99_us)];
    for (index, (name, percentile)) in percentiles.into_iter().enumerate() {
        let colour = COLOURS[index];
        let points: Vec<(f64, f64)> = measured
            .iter()
            .filter_map(|level| Some((level.ok_per_second, ms(percentile(&level.call_latency?)))))
            .collect();
        chart
            .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(2)));
        chart.draw_series(points.iter().map(|&point| Circle::new(point, 3, colour.filled())))?;
    }
    // Each level's name beside its p99 point.
    chart.draw_series(measured.iter().filter_map(|level| {
        let p99 = ms(level.call_latency?.p99_us);
        Some(Text::new(level.level.to_string(), (level.ok_per_second, p99), ("sans-serif", 12)))
    }))?;
    legend(&mut chart)?;
    root.present()?;
    Ok(())
}

/// A chart of two f64 axes drawn into SVG text.
pub(crate) type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The legend, boxed in the upper left, as both charts draw it.
pub(crate) fn legend<'b>(chart: &mut Chart<'b, 'b>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
