//! The report as files: CSV for spreadsheets and plotting scripts, JSON for
//! tools. Both hold the same levels; only JSON also holds the summary and
//! each window's throughput.

use std::{fmt::Write as _, path::Path};

use anyhow::{Context as _, Result};

use super::report::Report;

/// One row per subject and concurrency.
pub const CSV: &str = "latency.csv";
/// The whole [`Report`].
pub const JSON: &str = "latency.json";
/// p50 and p99 against concurrency.
pub const SVG: &str = "latency.svg";

const CSV_HEADER: &str = "subject,kind,concurrency,windows,stable,requests,errors,throughput_rps,\
                          mean_us,p50_us,p90_us,p95_us,p99_us,\
                          server_decode_us,server_preprocess_us,server_inference_us,server_postprocess_us,\
                          first_error";

/// Writes [`Report::levels`] as CSV to `path`.
pub(super) fn write_csv(report: &Report, path: &Path) -> Result<()> {
    std::fs::write(path, csv(report)).with_context(|| format!("writing {}", path.display()))
}

/// Writes the whole report as pretty JSON to `path`.
pub(super) fn write_json(report: &Report, path: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(report).context("serializing the latency report")?;
    std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
}

/// The CSV text: RFC 4180, with empty cells where a level has no value.
pub(super) fn csv(report: &Report) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for level in &report.levels {
        let optional = |value: Option<String>| value.unwrap_or_default();
        let server = |stage: fn(&super::ServerBreakdown) -> f64| {
            optional(level.server.as_ref().map(|server| format!("{:.1}", stage(server))))
        };
        let cells = [
            field(&level.subject),
            level.kind.to_owned(),
            level.concurrency.to_string(),
            level.windows.to_string(),
            level.stable.to_string(),
            level.requests.to_string(),
            level.errors.to_string(),
            format!("{:.3}", level.throughput),
            optional(level.mean_us.map(|us| format!("{us:.1}"))),
            optional(level.p50_us.map(|us| us.to_string())),
            optional(level.p90_us.map(|us| us.to_string())),
            optional(level.p95_us.map(|us| us.to_string())),
            optional(level.p99_us.map(|us| us.to_string())),
            server(|s| s.decode_us),
            server(|s| s.preprocess_us),
            server(|s| s.inference_us),
            server(|s| s.postprocess_us),
            field(level.first_error.as_deref().unwrap_or_default()),
        ];
        writeln!(out, "{}", cells.join(",")).expect("writing to a String cannot fail");
    }
    out
}

/// A text cell, quoted when it holds a comma, a quote or a line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_they_must_be() {
        assert_eq!(field("rust"), "rust");
        assert_eq!(field("Unavailable: a, b"), "\"Unavailable: a, b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
