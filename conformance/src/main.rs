//! `conformance`: runs the suite against our services or any gRPC server.

use std::{path::PathBuf, process::ExitCode, time::Instant};

use anyhow::{Context as _, Result};
use clap::Parser;
use conformance::{
    context::Settings,
    report::Summary,
    runner::{self, Selection},
};
use harness::target::{DEFAULT_STARTUP_TIMEOUT, Target};

#[derive(Parser)]
#[command(
    name = "conformance",
    about = "Property-tests a gRPC server against the seed contracts and gRPC's own rules",
    after_help = "Without --target or --target-cmd, the reference services start in-process.\n\
                  Exit status: 0 when nothing failed, 1 when a case failed, 2 when the run could not start."
)]
struct Cli {
    /// Server to test, e.g. `http://127.0.0.1:50051`.
    #[arg(long, conflicts_with = "target_cmd")]
    target: Option<String>,
    /// Shell command that starts the server; `{port}` or `{addr}` marks where
    /// the port goes. It is stopped when the run ends.
    #[arg(long, value_name = "COMMAND")]
    target_cmd: Option<String>,
    /// Descriptor set (protoset or `buf build -o` output) for targets without
    /// reflection.
    #[arg(long, value_name = "FILE")]
    descriptors: Option<PathBuf>,
    /// Run only cases whose name matches one of these globs.
    #[arg(long, value_name = "GLOB")]
    run: Vec<String>,
    /// Skip cases whose name matches one of these globs.
    #[arg(long, value_name = "GLOB")]
    skip: Vec<String>,
    /// Inputs per property.
    #[arg(long, default_value_t = Settings::default().cases)]
    cases: u32,
    /// Root seed; a failure prints the one that reproduces it. Random when absent.
    #[arg(long)]
    seed: Option<u64>,
    /// File listing cases (names or globs) expected to fail; one that passes fails the run.
    #[arg(long, value_name = "FILE")]
    known_failing: Option<PathBuf>,
    /// The target's message size limit in bytes, for the oversized-message check.
    #[arg(long, default_value_t = Settings::default().max_message_size)]
    max_message_size: usize,
    /// Seconds the harness waits for any one step of a call before reporting
    /// that the server never answered.
    #[arg(long, default_value_t = Settings::default().watchdog.as_secs())]
    watchdog_secs: u64,
    /// Write a JSON report here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// List the cases that would run, and exit.
    #[arg(long)]
    list: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tokio::select! {
        outcome = run(cli) => match outcome {
            Ok(summary) if summary.failed == 0 => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::from(2)
            }
        },
        // Dropping `run` drops the target, which kills a started server.
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted");
            ExitCode::from(130)
        }
    }
}

async fn run(cli: Cli) -> Result<Summary> {
    let known_failing = match &cli.known_failing {
        Some(path) => Selection::read_known_failing(path)?,
        None => Vec::new(),
    };
    let selection = Selection::new(&cli.run, &cli.skip, &known_failing)?;
    let seed = cli.seed.unwrap_or_else(rand_seed);
    let settings = Settings {
        cases: cli.cases,
        seed,
        max_message_size: cli.max_message_size,
        watchdog: std::time::Duration::from_secs(cli.watchdog_secs),
    };

    let mut in_process = None;
    let target = match (&cli.target, &cli.target_cmd) {
        (Some(url), _) => Target::address(url).await?,
        (None, Some(command)) => {
            let log = std::env::temp_dir().join(format!("conformance-target-{}.log", std::process::id()));
            println!("target log: {}", log.display());
            Target::command(command, DEFAULT_STARTUP_TIMEOUT, &log).await?
        }
        (None, None) => {
            let config = services::Config { max_message_size: cli.max_message_size, ..Default::default() };
            let server = services::spawn(config).await.context("starting the reference services")?;
            let target = Target::address(&server.url()).await?;
            in_process = Some(server);
            target
        }
    };
    let label = if in_process.is_some() { " (reference services, in-process)" } else { "" };
    println!("target: {}{label}\nseed: {seed}  cases per property: {}", target.url(), cli.cases);

    let ctx = std::sync::Arc::new(
        conformance::connect(target.url(), target.channel(), cli.descriptors.as_deref(), settings).await?,
    );
    if cli.list {
        for case in conformance::all_cases(&ctx) {
            println!("{}", case.name);
        }
        return Ok(Summary::default());
    }
    let started = Instant::now();
    let results = conformance::run(ctx.clone(), &selection).await;
    println!("{}  in {:.1}s", runner::summary_table(&results), started.elapsed().as_secs_f64());
    if let Some(path) = &cli.json {
        runner::write_json(path, &ctx, &results)?;
    }
    if let Some(path) = &cli.junit {
        runner::write_junit(path, &results)?;
    }
    if cli.target_cmd.is_some() && !target.stop(std::time::Duration::from_secs(10)).await? {
        eprintln!("note: the target command did not exit cleanly on SIGTERM");
    }
    Ok(Summary::of(&results))
}

/// A seed from the clock: different every run, printed so it can be replayed.
fn rand_seed() -> u64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
}
