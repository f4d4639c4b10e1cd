//! `cargo xtask fuzz`: builds the fuzz targets with coverage instrumentation
//! and runs libFuzzer on each for a bounded time.
//!
//! No cargo-fuzz and no nightly: the instrumentation cargo-fuzz asks rustc
//! for (SanitizerCoverage's counters, PC table and comparison tracing) is
//! stable codegen; only its sanitizers are not, and the targets do without
//! them (safe Rust, with debug assertions on). Building for an explicit
//! `--target` keeps the flags off build scripts and puts the instrumented
//! build in a folder of its own (`target/<host>/debug`), so the ordinary
//! build is never invalidated.
//!
//! Each run starts from the committed seeds (`fuzz/corpus/<target>`) and the
//! regressions (`fuzz/regressions/<target>`), and grows a working corpus in
//! `target/fuzz/corpus/<target>`, which later runs start from too.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{Failed, project_root, step};

/// Every target, and the longest input it is given: images and descriptor
/// sets need room, names and single messages do not.
pub const TARGETS: &[(&str, usize)] = &[
    ("imagem_describe", 64 * 1024),
    ("inference_request", 64 * 1024),
    ("upload_key", 4096),
    ("descriptors", 64 * 1024),
    ("renderers", 4096),
];

const RUSTFLAGS: &[&str] = &[
    "--cfg fuzzing",
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];

/// What one bounded run did, from libFuzzer's final statistics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Inputs run.
    pub executions: u64,
    /// Inputs per second, on average.
    pub per_second: u64,
    /// Inputs added to the working corpus for new coverage.
    pub new_inputs: u64,
    /// Coverage counters hit, at the end.
    pub coverage: u64,
    /// Peak memory of the fuzzing process.
    pub peak_rss_mb: u64,
}

/// Builds the targets, then fuzzes `only` (every target when empty) for
/// `seconds` each; fails on the first crash, naming the input that caused it.
pub fn fuzz(only: &[String], seconds: u64) -> Result<()> {
    let root = project_root();
    for name in only {
        if !TARGETS.iter().any(|(target, _)| target == name) {
            let names: Vec<&str> = TARGETS.iter().map(|(target, _)| *target).collect();
            bail!("no fuzz target {name:?}; the targets are {}", names.join(", "));
        }
    }
    let host = host_triple()?;
    step("fuzz: building the targets with coverage instrumentation");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--package", "fuzz", "--bins", "--target", &host])
        .env("RUSTFLAGS", RUSTFLAGS.join(" "))
        .current_dir(&root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        return Err(Failed::from(status).into());
    }
    let bin = root.join("target").join(&host).join("debug");
    let mut table = vec![format!(
        "{:<20} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "target", "executions", "per second", "new inputs", "coverage", "RSS MB"
    )];
    for &(name, max_len) in TARGETS {
        if !only.is_empty() && !only.iter().any(|wanted| wanted == name) {
            continue;
        }
        step(&format!("fuzz: {name} for {seconds} s"));
        let stats = run(&root, &bin.join(name), name, max_len, seconds)?;
        table.push(format!(
            "{name:<20} {:>12} {:>10} {:>10} {:>10} {:>8}",
            stats.executions, stats.per_second, stats.new_inputs, stats.coverage, stats.peak_rss_mb
        ));
    }
    println!("\n{}", table.join("\n"));
    Ok(())
}

fn run(root: &Path, binary: &Path, name: &str, max_len: usize, seconds: u64) -> Result<Stats> {
    let work = root.join("target/fuzz");
    let corpus = work.join("corpus").join(name);
    let artifacts = work.join("artifacts").join(name);
    std::fs::create_dir_all(&corpus)?;
    std::fs::create_dir_all(&artifacts)?;
    let mut command = Command::new(binary);
    command
        .arg(format!("-max_total_time={seconds}"))
        // A single input that runs this long is a hang worth reporting.
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg(format!("-max_len={max_len}"))
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&corpus);
    for folder in ["corpus", "regressions"] {
        let seeds = root.join("fuzz").join(folder).join(name);
        if seeds.is_dir() {
            command.arg(seeds);
        }
    }
    let output = command.output().with_context(|| format!("running {}", binary.display()))?;
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        eprintln!("{}", tail.join("\n"));
        let found = newest_file(&artifacts)
            .map_or_else(|| artifacts.display().to_string(), |p| p.display().to_string());
        bail!(
            "fuzz target {name} failed on {found}: reproduce with `{} {found}`, then copy the input into \
             fuzz/regressions/{name}/ so that `cargo test -p fuzz` keeps it fixed",
            binary.display()
        );
    }
    Ok(stats(&log))
}

/// libFuzzer's `stat::` lines and its last coverage figure.
pub fn stats(log: &str) -> Stats {
    let stat = |key: &str| {
        log.lines()
            .find_map(|line| line.strip_prefix(&format!("stat::{key}:")))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    let coverage = log
        .lines()
        .rev()
        .find_map(|line| line.split(" cov: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    Stats {
        executions: stat("number_of_executed_units"),
        per_second: stat("average_exec_per_sec"),
        new_inputs: stat("new_units_added"),
        coverage,
        peak_rss_mb: stat("peak_rss_mb"),
    }
}

fn newest_file(folder: &Path) -> Option<PathBuf> {
    std::fs::read_dir(folder)
        .ok()?
        .filter_map(|entry| entry.ok())
        .max_by_key(|entry| entry.metadata().and_then(|m| m.modified()).ok())
        .map(|entry| entry.path())
}

fn host_triple() -> Result<String> {
    let output = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host")
}
