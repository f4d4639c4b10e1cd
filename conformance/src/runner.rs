//! Runs the selected cases one after another, with a progress bar, and
//! writes the reports.
//!
//! Cases run sequentially: results stay deterministic for a given seed, and
//! the target sees one conversation at a time, which keeps a failure's
//! evidence about that case alone. Between cases, the health gate
//! (`gate.rs`) keeps a target that stopped answering from failing every
//! case after the one that broke it.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::{
    case::Case,
    context::Context,
    gate::{self, Gate},
    report::{CaseResult, Summary, Verdict},
};

/// Which cases run, and which are expected to fail.
#[derive(Debug, Default)]
pub struct Selection {
    run: Option<GlobSet>,
    skip: Option<GlobSet>,
    known_failing: Option<GlobSet>,
}

impl Selection {
    /// `run` globs select (all when empty), `skip` globs deselect, and
    /// `known_failing` globs mark cases whose failure is expected.
    pub fn new(run: &[String], skip: &[String], known_failing: &[String]) -> Result<Self> {
        Ok(Selection { run: globs(run)?, skip: globs(skip)?, known_failing: globs(known_failing)? })
    }

    /// Reads a known-failing file: one case name or glob per line, `#`
    /// comments and blank lines ignored.
    pub fn read_known_failing(path: &Path) -> Result<Vec<String>> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(text
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default().trim())
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect())
    }

    fn selects(&self, name: &str) -> bool {
        self.run.as_ref().is_none_or(|set| set.is_match(name))
            && !self.skip.as_ref().is_some_and(|set| set.is_match(name))
    }

    fn known_failing(&self, name: &str) -> bool {
        self.known_failing.as_ref().is_some_and(|set| set.is_match(name))
    }
}

fn globs(patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(Glob::new(pattern).with_context(|| format!("{pattern:?} is not a valid glob"))?);
    }
    Ok(Some(builder.build()?))
}

/// Runs the selected `cases` against `ctx`, printing failures as they happen.
pub async fn run(ctx: Arc<Context>, cases: &[Case], selection: &Selection) -> Vec<CaseResult> {
    let selected: Vec<&Case> = cases.iter().filter(|case| selection.selects(&case.name)).collect();
    let bar = ProgressBar::new(selected.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}")
            .expect("static template"),
    );
    let mut results = Vec::with_capacity(selected.len());
    let mut gate = Gate::default();
    for case in selected {
        bar.set_message(case.name.clone());
        let started = Instant::now();
        let verdict = match gate.reason_to_skip(&ctx).await {
            Some(reason) => Verdict::Skipped { reason },
            None => {
                let verdict = case.run(ctx.clone()).await;
                if gate.check_after(&ctx, &case.name).await {
                    bar.suspend(|| {
                        println!(
                            "the target stopped answering after {}: the cases after it are reported as not run \
                             until it answers again\n",
                            case.name
                        )
                    });
                    gate::blame(verdict)
                } else {
                    verdict
                }
            }
        };
        let result = CaseResult {
            name: case.name.clone(),
            suite: case.suite.clone(),
            verdict,
            duration: started.elapsed(),
            known_failing: selection.known_failing(&case.name),
        };
        // `suspend`, not `ProgressBar::println`: the latter prints nothing
        // when the bar is hidden, which is exactly the CI case.
        match (&result.verdict, result.known_failing) {
            (Verdict::Failed(_), _) => {
                bar.suspend(|| println!("{result}\n    rerun: {}\n", rerun(&ctx, &case.name)))
            }
            (Verdict::Passed | Verdict::Measured { .. }, true) => {
                bar.suspend(|| println!("UNEXPECTED PASS {} (listed as known-failing)\n", result.name))
            }
            (Verdict::Measured { .. }, false) => bar.suspend(|| println!("{result}")),
            _ => {}
        }
        results.push(result);
        bar.inc(1);
    }
    bar.finish_and_clear();
    results
}

fn rerun(ctx: &Context, name: &str) -> String {
    let args: String = ctx.settings.replay_args.iter().map(|arg| format!(" {}", shell_quote(arg))).collect();
    format!("{}{args} --seed {} --run '{name}'", ctx.settings.command, ctx.settings.seed)
}

/// `arg` as one shell word.
fn shell_quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,@".contains(c)) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The arguments of a run worth repeating in a rerun command: all but those
/// that select cases, seed them, or name report files, and with header
/// values left out.
pub fn replay_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    const DROPPED: &[&str] = &["--run", "--skip", "--seed", "--json", "--junit", "--known-failing"];
    let mut kept = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let flag = arg.split('=').next().unwrap_or_default();
        if arg == "--list" {
            continue;
        }
        // Headers are often credentials: reports name them, never their
        // values.
        if arg == "-H" || arg == "--header" {
            kept.push(arg);
            if let Some(header) = args.next() {
                kept.push(redacted(&header));
            }
            continue;
        }
        if let Some(header) = arg.strip_prefix("--header=") {
            kept.push(format!("--header={}", redacted(header)));
            continue;
        }
        if let Some(header) = arg.strip_prefix("-H") {
            kept.push(format!("-H{}", redacted(header)));
            continue;
        }
        if DROPPED.contains(&flag) {
            if !arg.contains('=') {
                args.next();
            }
            continue;
        }
        kept.push(arg);
    }
    kept
}

/// `name: value` with the value left out.
fn redacted(header: &str) -> String {
    match header.split_once(':') {
        Some((name, _)) => format!("{name}: REDACTED"),
        None => "REDACTED".to_owned(),
    }
}

/// Per-suite counts, then the overall line.
pub fn summary_table(results: &[CaseResult]) -> String {
    let mut suites: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
    for result in results {
        suites.entry(&result.suite).or_default().push(result);
    }
    let width = suites.keys().map(|s| s.len()).max().unwrap_or(5).max(5);
    let mut out = String::new();
    for (suite, results) in &suites {
        let summary = Summary::of(results.iter().copied());
        let time: Duration = results.iter().map(|r| r.duration).sum();
        out.push_str(&format!("{suite:width$}  {summary}  ({:.1}s)\n", time.as_secs_f64()));
    }
    out.push_str(&format!("\n{}", Summary::of(results)));
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    target: &'a str,
    seed: u64,
    inputs_per_property: u32,
    summary: Summary,
    results: &'a [CaseResult],
}

/// Writes the machine-readable report.
pub fn write_json(path: &Path, ctx: &Context, results: &[CaseResult]) -> Result<()> {
    let report = JsonReport {
        target: &ctx.url,
        seed: ctx.settings.seed,
        inputs_per_property: ctx.settings.inputs,
        summary: Summary::of(results),
        results,
    };
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Writes the Markdown report, for a CI job's summary page and pull-request
/// comments.
pub fn write_markdown(path: &Path, ctx: &Context, results: &[CaseResult]) -> Result<()> {
    let text = crate::report::markdown::render(&ctx.url, ctx.settings.seed, results);
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Writes a JUnit XML report, one test suite per conformance suite, for CI
/// systems that render those.
pub fn write_junit(path: &Path, results: &[CaseResult]) -> Result<()> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("conformance");
    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    for result in results {
        let status = match (&result.verdict, result.known_failing) {
            (Verdict::Passed, false) => TestCaseStatus::success(),
            (Verdict::Measured { figures }, false) => {
                let mut status = TestCaseStatus::success();
                status.set_message(figures.as_str());
                status
            }
            (Verdict::Passed | Verdict::Measured { .. }, true) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message("passed, but listed as known-failing");
                status
            }
            (Verdict::Failed(_), true) => {
                let mut status = TestCaseStatus::skipped();
                status.set_message("known failing");
                status
            }
            (Verdict::Failed(failure), false) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(format!("expected {}; actual {}", failure.expected, failure.actual));
                status.set_description(result.to_string());
                status
            }
            (Verdict::Skipped { reason }, _) => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(reason.as_str());
                status
            }
        };
        let mut case = TestCase::new(result.name.as_str(), status);
        case.set_time(result.duration);
        suites
            .entry(&result.suite)
            .or_insert_with(|| TestSuite::new(result.suite.as_str()))
            .add_test_case(case);
    }
    report.add_test_suites(suites.into_values());
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    report.serialize(file).with_context(|| format!("writing {}", path.display()))
}
