//! `conformance`: runs the suite against any gRPC server.

mod cli;
mod errors;
mod load;

use std::{process::ExitCode, sync::Arc, time::Instant};

use anyhow::Result;
use clap::Parser;
use conformance::{
    context::Settings,
    launcher::Launcher,
    report::Summary,
    runner::{self, Selection},
};
use harness::target::{DEFAULT_STARTUP_TIMEOUT, Target};

use crate::cli::Cli;

/// mimalloc rather than glibc's malloc: `conformance load` allocates on
/// every call, and the generator's own cost is what its ceiling measures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(cli::Command::Load(args)) = cli.command {
        // The generator's threads are a load setting, as h2load's -t is:
        // one thread leaves the other cores to a server on the same host.
        let runtime = match args.threads {
            Some(1) => tokio::runtime::Builder::new_current_thread().enable_all().build(),
            Some(threads) => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads.max(1))
                .enable_all()
                .build(),
            None => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        };
        let runtime = runtime.expect("building the async runtime");
        return runtime.block_on(exit_with(async { load::run(args).await.map(|errors| errors == 0) }));
    }
    if cli.print_needs {
        for need in cli.needs() {
            println!("{need}");
        }
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build();
    let runtime = runtime.expect("building the async runtime");
    runtime.block_on(exit_with(async { run(cli).await.map(|summary| summary.failed == 0) }))
}

/// 0 when `outcome` passed, 1 when it ran and something failed, 2 when it
/// could not run, 130 on Ctrl-C. Dropping `outcome` drops its target, which
/// kills a started server.
async fn exit_with(outcome: impl std::future::Future<Output = Result<bool>>) -> ExitCode {
    tokio::select! {
        outcome = outcome => match outcome {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(err) => {
                eprintln!("error: {}", errors::describe(&err));
                ExitCode::from(2)
            }
        },
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
        inputs: cli.inputs,
        seed,
        max_message_size: cli.max_message_size,
        sizes: cli.sizes(),
        watchdog: std::time::Duration::from_secs(cli.watchdog_secs),
        shrink_time: std::time::Duration::from_secs(cli.shrink_secs),
        replay_args: runner::replay_args(std::env::args().skip(1)),
        command: std::env::var("CONFORMANCE_COMMAND").unwrap_or_else(|_| "conformance".to_owned()),
        demands: conformance::context::Demands {
            auth: cli.expect_auth,
            client_certificate: cli.expect_client_cert,
        },
    };
    if let Some(url) = &cli.target {
        errors::check_url("--target", url)?;
    }
    let security = cli.security.security(cli.target.as_deref())?;
    if cli.expect_auth && cli.security.headers.is_empty() {
        anyhow::bail!("--expect-auth needs the credentials the target expects, as --header 'name: value'");
    }

    #[cfg(feature = "s3")]
    let uploads = s3::start(&cli).await?;
    // The S3 variables the target stores by, and the run's values for the
    // target command's placeholders.
    #[allow(unused_mut)]
    let (mut env, mut values) = (Vec::new(), vec![("max_message_size", cli.max_message_size.to_string())]);
    #[cfg(feature = "s3")]
    {
        if let Ok(store) = &uploads.store {
            env = store.target_env();
        }
        values.push(("s3_bucket", cli.s3.bucket.clone()));
        values.push(("part_size", cli.s3.part_size.to_string()));
    }

    let (target, launcher) = match (&cli.target, &cli.target_cmd) {
        (Some(url), _) => (Target::address(url, security.clone()).await?, None),
        (None, Some(command)) => {
            let command = fill_in(command, &values);
            let log = std::env::temp_dir().join(format!("conformance-target-{}.log", std::process::id()));
            println!("target log: {}", log.display());
            let target =
                Target::command_with_env(&command, &env, security.clone(), DEFAULT_STARTUP_TIMEOUT, &log)
                    .await?;
            (target, Some(Launcher::Command { command, env, security: security.clone() }))
        }
        (None, None) => anyhow::bail!(
            "no target: pass --target URL (a server you run) or --target-cmd 'COMMAND {{addr}}' (one the \
             suite starts); `cargo xtask conformance` supplies our services"
        ),
    };
    let started_by = cli.target_cmd.as_deref().map(|command| format!(", started by `{command}`"));
    println!("target: {}{}", target.url(), started_by.unwrap_or_default());
    println!("connection: {}", security.describe());
    println!("seed: {seed}  inputs per property: {}", cli.inputs);
    #[cfg(feature = "s3")]
    match &uploads.store {
        Ok(store) => {
            println!("S3 for uploads: {} at {}, bucket {}", store.label, store.endpoint, store.bucket)
        }
        Err(reason) => println!("S3 for uploads: none ({reason})"),
    }
    #[cfg(feature = "images")]
    let reference = images::start_reference(&cli).await?;

    let discover = conformance::Discover {
        descriptors: cli.descriptors.clone(),
        services: (!cli.services.is_empty()).then(|| cli.services.clone()),
    };
    let mut ctx = conformance::connect(target.channel(), &discover, settings).await?;
    println!("{}", ctx.discovery.report());
    ctx.target_process_group = target.process_group();
    ctx.launcher = launcher;
    #[cfg(feature = "s3")]
    {
        ctx.uploads = uploads;
    }
    #[cfg(feature = "images")]
    {
        ctx.reference = reference.as_ref().map(images::reference);
    }
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
    if let Some(path) = &cli.markdown {
        runner::write_markdown(path, &ctx, &results)?;
    }
    #[allow(unused_mut)]
    let mut summary = Summary::of(&results);
    #[cfg(feature = "images")]
    if cli.wants_latency() && ctx.services.contains(images::LATENCY_SERVICE) {
        let errors = images::latency(&cli, target.channel(), reference.as_ref().map(Target::channel)).await?;
        if errors > 0 {
            summary.failed += 1;
        }
    }
    if cli.target_cmd.is_some() && !target.stop(std::time::Duration::from_secs(10)).await? {
        eprintln!("note: the target command did not exit cleanly on SIGTERM");
    }
    #[cfg(feature = "images")]
    images::stop_reference(&cli, reference).await?;
    Ok(summary)
}

/// `command` with each `{name}` of `values` replaced; `{port}` and `{addr}`
/// are left for the harness, which picks the port.
pub(crate) fn fill_in(command: &str, values: &[(&str, String)]) -> String {
    values.iter().fold(command.to_owned(), |line, (name, value)| line.replace(&format!("{{{name}}}"), value))
}

/// A seed from the clock: different every run, printed so it can be replayed.
fn rand_seed() -> u64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
}

#[cfg(feature = "s3")]
mod s3 {
    use std::sync::Arc;

    use anyhow::{Context as _, Result, bail};
    use conformance::{
        context::Uploads,
        s3::{Availability, S3Kind, S3Options, Store},
    };

    use crate::cli::Cli;

    /// The S3 server the upload suite reads back from. A `--target` someone
    /// else runs stores wherever it was configured to: only `--s3-endpoint`
    /// can say where that is.
    pub(crate) async fn start(cli: &Cli) -> Result<Uploads> {
        let args = &cli.s3;
        let options = S3Options {
            kind: args.kind,
            endpoint: args.endpoint.clone(),
            bucket: args.bucket.clone(),
            moto_server: args.moto_server.clone().unwrap_or_else(|| "moto_server".into()),
        };
        let availability = if let Some(endpoint) = &options.endpoint {
            conformance::s3::validate_endpoint(endpoint)?;
            Store::start(&options).await.context("connecting to S3 for the upload suite")?
        } else if cli.target.is_some() {
            if args.kind != S3Kind::Embedded {
                bail!(
                    "--s3 starts a server for a target the suite starts; for --target, name its S3 with --s3-endpoint"
                );
            }
            Availability::Unavailable(
                "the target's S3 is unknown: pass --s3-endpoint to read uploads back".to_owned(),
            )
        } else {
            Store::start(&options).await.context("starting S3 for the upload suite")?
        };
        Ok(Uploads {
            store: match availability {
                Availability::Ready(store) => Ok(Arc::from(store)),
                Availability::Unavailable(reason) => Err(reason),
            },
            part_size: args.part_size,
            large: args.large,
            settle: std::time::Duration::from_millis(args.settle_ms),
        })
    }
}

#[cfg(feature = "images")]
mod images {
    use std::sync::Arc;

    use anyhow::Result;
    use conformance::{
        context::Reference,
        latency::{self, Floor, Options, Subject, SubjectKind},
    };
    use harness::target::{DEFAULT_STARTUP_TIMEOUT, Target};
    use harness::transport::Channel;

    use crate::{cli::Cli, errors};

    /// The service whose latency is swept.
    pub(crate) const LATENCY_SERVICE: &str = "inference.InferenceMethods";

    /// The reference, started or connected to.
    pub(crate) async fn start_reference(cli: &Cli) -> Result<Option<Target>> {
        let reference = match (&cli.images.reference, &cli.images.reference_cmd) {
            (Some(url), _) => {
                errors::check_url("--reference", url)?;
                // The reference is ours to reach, not the target's: plaintext
                // unless its URL says otherwise, and then with the same trust.
                let security = match url.starts_with("https://") {
                    true => cli.security.security(Some(url))?,
                    false => harness::Security::plaintext(),
                };
                Some(Target::address(url, security).await?)
            }
            (None, Some(command)) => {
                let log =
                    std::env::temp_dir().join(format!("conformance-reference-{}.log", std::process::id()));
                println!("reference log: {}", log.display());
                Some(Target::command(command, DEFAULT_STARTUP_TIMEOUT, &log).await?)
            }
            (None, None) => None,
        };
        if let Some(reference) = &reference {
            println!("reference: {}", reference.url());
        }
        Ok(reference)
    }

    pub(crate) fn reference(target: &Target) -> Reference {
        Reference {
            label: "the reference".to_owned(),
            url: target.url().to_owned(),
            channel: target.channel(),
        }
    }

    pub(crate) async fn stop_reference(cli: &Cli, reference: Option<Target>) -> Result<()> {
        if let Some(reference) = reference
            && cli.images.reference_cmd.is_some()
            && !reference.stop(std::time::Duration::from_secs(10)).await?
        {
            eprintln!("note: the reference command did not exit cleanly on SIGTERM");
        }
        Ok(())
    }

    /// The perf_analyzer-style sweep: the target, the reference when there
    /// is one, and the floor when there is a --floor-cmd. Returns how many
    /// calls failed.
    pub(crate) async fn latency(cli: &Cli, target: Channel, reference: Option<Channel>) -> Result<u64> {
        let args = &cli.images;
        let mut subjects = vec![Subject { name: "target".to_owned(), kind: SubjectKind::Grpc(target) }];
        if let Some(reference) = reference {
            subjects.push(Subject { name: "reference".to_owned(), kind: SubjectKind::Grpc(reference) });
        }
        let options = Options { full: args.latency, ..Options::new(&args.latency_out) };
        match &args.floor_cmd {
            Some(command) => {
                let log = std::env::temp_dir().join(format!("conformance-floor-{}.log", std::process::id()));
                match Floor::start(command, &options.image, &log).await {
                    Ok(floor) => {
                        println!("latency floor: {}", floor.description);
                        subjects.push(Subject {
                            name: "floor".to_owned(),
                            kind: SubjectKind::Floor(Arc::new(floor)),
                        });
                    }
                    Err(err) => println!("latency: no floor: {}", errors::describe(&err)),
                }
            }
            None => {
                println!("latency: no floor (--floor-cmd runs a bare inference session beside the servers)")
            }
        }
        let mode = if args.latency { "full" } else { "short (--latency for the full sweep)" };
        println!("\ninference latency, {mode}:");
        let report = latency::sweep(&subjects, &options).await?;
        println!("{}", report.table());
        println!("written to {}", args.latency_out.display());
        Ok(report.errors())
    }
}
