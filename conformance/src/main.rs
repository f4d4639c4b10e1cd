//! `conformance`: runs the suite against our services or any gRPC server.

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use conformance::{
    context::{Settings, Uploads},
    launcher::Launcher,
    report::Summary,
    runner::{self, Selection},
    s3::{Availability, S3Kind, S3Options, Store},
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
    /// S3 server for the upload-integrity suite, started by the suite and
    /// handed to the target (AWS_ENDPOINT_URL and credentials).
    #[arg(long, value_enum, default_value = "embedded")]
    s3: S3Kind,
    /// An S3 server you run instead, with credentials and region from the
    /// AWS environment; the target must store into it too.
    #[arg(long, value_name = "URL", conflicts_with = "s3")]
    s3_endpoint: Option<String>,
    /// Bucket the target stores uploads in.
    #[arg(long, default_value = "uploads")]
    s3_bucket: String,
    /// The target's multipart part size in bytes; upload sizes straddle it.
    #[arg(long, default_value_t = services::s3::S3Config::default().part_size)]
    part_size: usize,
    /// The moto server program, for `--s3 moto`.
    #[arg(long, env = "MOTO_SERVER", default_value = "moto_server")]
    moto_server: PathBuf,
    /// Also upload 1 GiB and check that the server's memory stays flat
    /// (measured for a --target-cmd).
    #[arg(long)]
    large: bool,
    /// A second implementation of `inference.InferenceMethods` serving the
    /// same model, which the target's detections must agree with.
    #[arg(long, value_name = "URL", conflicts_with = "reference_cmd")]
    reference: Option<String>,
    /// Shell command that starts the reference (`{port}` or `{addr}` as for
    /// --target-cmd); stopped when the run ends.
    #[arg(long, value_name = "COMMAND")]
    reference_cmd: Option<String>,
    /// The full inference latency sweep (2 s windows until stable, up to 10
    /// per level) instead of the short one every whole run does.
    #[arg(long)]
    latency: bool,
    /// No inference latency sweep.
    #[arg(long, conflicts_with = "latency")]
    no_latency: bool,
    /// Where the latency sweep writes latency.csv, latency.json and latency.svg.
    #[arg(long, value_name = "DIR", default_value = "target/conformance/latency")]
    latency_out: PathBuf,
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
        replay_args: runner::replay_args(std::env::args().skip(1)),
    };

    let store = start_s3(&cli).await?;
    let mut uploads = Uploads {
        store: match store {
            Availability::Ready(store) => Ok(Arc::from(store)),
            Availability::Unavailable(reason) => Err(reason),
        },
        part_size: cli.part_size,
        large: cli.large,
        ..Uploads::default()
    };
    let mut in_process = None;
    let target = match (&cli.target, &cli.target_cmd) {
        (Some(url), _) => Target::address(url).await?,
        (None, Some(command)) => {
            let log = std::env::temp_dir().join(format!("conformance-target-{}.log", std::process::id()));
            println!("target log: {}", log.display());
            let env = uploads.store.as_ref().map(|store| store.target_env()).unwrap_or_default();
            uploads.launcher = Some(Launcher::Command(command.clone()));
            let target = Target::command_with_env(command, &env, DEFAULT_STARTUP_TIMEOUT, &log).await?;
            uploads.target_process_group = target.process_group();
            target
        }
        (None, None) => {
            let mut config =
                services::Config { max_message_size: cli.max_message_size, ..Default::default() };
            config.s3.bucket = cli.s3_bucket.clone();
            config.s3.part_size = cli.part_size;
            if let Ok(store) = &uploads.store {
                config.s3.backend = store.services_backend();
            }
            uploads.launcher = Some(Launcher::InProcess(Box::new(config.clone())));
            let server = services::spawn(config).await.context("starting the reference services")?;
            let target = Target::address(&server.url()).await?;
            in_process = Some(server);
            target
        }
    };
    let label = if in_process.is_some() { " (reference services, in-process)" } else { "" };
    println!("target: {}{label}\nseed: {seed}  cases per property: {}", target.url(), cli.cases);
    match &uploads.store {
        Ok(store) => {
            println!("S3 for uploads: {} at {}, bucket {}", store.label, store.endpoint, store.bucket)
        }
        Err(reason) => println!("S3 for uploads: none ({reason})"),
    }

    let reference = match (&cli.reference, &cli.reference_cmd) {
        (Some(url), _) => Some(Target::address(url).await?),
        (None, Some(command)) => {
            let log = std::env::temp_dir().join(format!("conformance-reference-{}.log", std::process::id()));
            println!("reference log: {}", log.display());
            Some(Target::command(command, DEFAULT_STARTUP_TIMEOUT, &log).await?)
        }
        (None, None) => None,
    };
    if let Some(reference) = &reference {
        println!("reference: {}", reference.url());
    }

    let mut ctx =
        conformance::connect(target.url(), target.channel(), cli.descriptors.as_deref(), settings).await?;
    ctx.uploads = uploads;
    ctx.reference = reference.as_ref().map(|reference| conformance::context::Reference {
        label: "the reference".to_owned(),
        url: reference.url().to_owned(),
        channel: reference.channel(),
    });
    let ctx = Arc::new(ctx);
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
    let mut summary = Summary::of(&results);
    // A run narrowed with --run is about those cases; a whole run, or one
    // that asks for it, also measures.
    let wants_latency = cli.latency || (cli.run.is_empty() && !cli.no_latency);
    if wants_latency && ctx.services.contains(LATENCY_SERVICE) {
        let label = if in_process.is_some() { "services (in-process)" } else { "target" };
        let errors = latency(&cli, target.channel(), label, reference.as_ref().map(Target::channel)).await?;
        if errors > 0 {
            summary.failed += 1;
        }
    }
    if cli.target_cmd.is_some() && !target.stop(std::time::Duration::from_secs(10)).await? {
        eprintln!("note: the target command did not exit cleanly on SIGTERM");
    }
    if let Some(reference) = reference
        && cli.reference_cmd.is_some()
        && !reference.stop(std::time::Duration::from_secs(10)).await?
    {
        eprintln!("note: the reference command did not exit cleanly on SIGTERM");
    }
    Ok(summary)
}

const LATENCY_SERVICE: &str = "inference.InferenceMethods";

/// The perf_analyzer-style sweep: the target, the reference when there is
/// one, and the bare ONNX Runtime session of the bundled model as the floor.
/// Returns how many calls failed.
async fn latency(
    cli: &Cli,
    target: tonic::transport::Channel,
    label: &str,
    reference: Option<tonic::transport::Channel>,
) -> Result<u64> {
    use conformance::latency::{self, Options, Subject, SubjectKind};
    let mut subjects = vec![Subject { name: label.to_owned(), kind: SubjectKind::Grpc(target) }];
    if let Some(reference) = reference {
        subjects.push(Subject { name: "reference".to_owned(), kind: SubjectKind::Grpc(reference) });
    }
    let floor = tokio::task::spawn_blocking(|| {
        services::inference::Engine::load(&services::inference::InferenceConfig::default())
    })
    .await?;
    match floor {
        Ok(engine) => subjects.push(Subject {
            name: "ort session (floor)".to_owned(),
            kind: SubjectKind::Floor(Arc::new(engine)),
        }),
        Err(err) => println!("latency: no floor, the bare session could not be loaded here: {err:#}"),
    }
    let options = Options { full: cli.latency, ..Options::new(&cli.latency_out) };
    let mode = if cli.latency { "full" } else { "short (--latency for the full sweep)" };
    println!("\ninference latency, {mode}:");
    let report = latency::sweep(&subjects, &options).await?;
    println!("{}", report.table());
    println!("written to {}", cli.latency_out.display());
    Ok(report.errors())
}

/// The S3 server the upload suite reads back from. A `--target` someone
/// else runs stores wherever it was configured to: only `--s3-endpoint` can
/// say where that is.
async fn start_s3(cli: &Cli) -> Result<Availability> {
    let options = S3Options {
        kind: cli.s3,
        endpoint: cli.s3_endpoint.clone(),
        bucket: cli.s3_bucket.clone(),
        moto_server: cli.moto_server.clone(),
    };
    if let Some(endpoint) = &options.endpoint {
        conformance::s3::validate_endpoint(endpoint)?;
    } else if cli.target.is_some() {
        if cli.s3 != S3Kind::Embedded {
            bail!(
                "--s3 starts a server for a target the suite starts; for --target, name its S3 with --s3-endpoint"
            );
        }
        return Ok(Availability::Unavailable(
            "the target's S3 is unknown: pass --s3-endpoint to read uploads back".to_owned(),
        ));
    }
    Store::start(&options).await.context("starting S3 for the upload suite")
}

/// A seed from the clock: different every run, printed so it can be replayed.
fn rand_seed() -> u64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
}
