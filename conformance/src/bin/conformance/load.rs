//! `conformance load`: the load engine (`conformance::load`) on one method,
//! with a progress bar, a table, and CSV, JSON and SVG files; and the
//! fault run, which kills and restarts the target under load.

use std::{path::Path, time::Duration};

use anyhow::{Context as _, Result, bail};
use conformance::{
    context::Settings,
    load::{self, Call, Level, Plan, Stability, Stop},
};
use harness::target::{DEFAULT_STARTUP_TIMEOUT, Target};
use indicatif::{ProgressBar, ProgressStyle};
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor};

use crate::{cli::LoadArgs, errors};

/// Runs the levels and returns how many calls did not end OK.
pub(crate) async fn run(args: LoadArgs) -> Result<u64> {
    if args.print_needs {
        if args.target.is_none() && args.target_cmd.is_none() {
            println!("target");
        }
        return Ok(0);
    }
    if let Some(url) = &args.target {
        errors::check_url("--target", url)?;
    }
    if args.restart_after.is_some() && args.target_cmd.is_none() {
        bail!(
            "--restart-after needs --target-cmd: only a server the run started can be killed and started again"
        );
    }
    let security = args.security.security(args.target.as_deref())?;
    let target = match (&args.target, &args.target_cmd) {
        (Some(url), _) => Target::address(url, security).await?,
        (None, Some(command)) => {
            let defaults = Settings::default();
            let command = crate::fill_in(
                command,
                &[
                    ("max_message_size", defaults.max_message_size.to_string()),
                    ("s3_bucket", "uploads".to_owned()),
                    ("part_size", conformance::context::DEFAULT_PART_SIZE.to_string()),
                ],
            );
            let command = &command;
            let log = std::env::temp_dir().join(format!("conformance-load-{}.log", std::process::id()));
            println!("target log: {}", log.display());
            Target::command_with_env(command, &[], security, DEFAULT_STARTUP_TIMEOUT, &log).await?
        }
        (None, None) => bail!("no target: pass --target URL or --target-cmd 'COMMAND {{addr}}'"),
    };
    let discover = conformance::Discover { descriptors: args.descriptors.clone(), services: None };
    let ctx = conformance::connect(target.channel(), &discover, Default::default()).await?;
    let method = find(&ctx.served, &args.call)?;
    let calls = match (&args.data, &args.data_file) {
        (Some(data), _) => vec![parse_call(&method, data).context("reading --data")?],
        (None, Some(path)) => read_calls(&method, path)?,
        (None, None) => load::drawn_calls(&method, args.inputs.max(1), args.seed)?,
    };
    let plan = plan(&args, method, calls)?;
    println!(
        "load: {} on {}, {} over {} connection(s), {} different calls",
        args.call,
        target.url(),
        plan.levels.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        plan.connections,
        plan.calls.len()
    );
    let channel = target.channel();
    let mut target = Some(target);
    let fault = match (args.restart_after, target.take_if(|_| args.restart_after.is_some())) {
        (Some(after), Some(started)) => {
            let after = Duration::try_from_secs_f64(after)
                .map_err(|_| anyhow::anyhow!("--restart-after must be a number of seconds, not {after}"))?;
            Some(tokio::spawn(restart_after(started, after)))
        }
        _ => None,
    };
    let bar = ProgressBar::new(plan.levels.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] level {pos}/{len}: {wide_msg}")
            .expect("static template"),
    );
    let levels = load::run(channel, &plan, |level, done| {
        bar.set_position(level as u64);
        bar.set_message(format!("{}, {done} calls", plan.levels[level]));
    })
    .await;
    bar.finish_and_clear();
    let target = match fault {
        Some(fault) => {
            let (target, said) = fault.await.context("the restart panicked")??;
            println!("{said}");
            target
        }
        None => target.expect("kept when there is no fault"),
    };
    let levels = levels?;
    println!("{}", load::table(&levels));
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    std::fs::write(args.out.join("load.csv"), load::csv(&levels))?;
    std::fs::write(args.out.join("load.json"), serde_json::to_string_pretty(&levels)?)?;
    std::fs::write(args.out.join("load.svg"), load::svg(&args.call, &levels)?)?;
    println!("written to {}", args.out.display());
    if args.target_cmd.is_some() && !target.stop(Duration::from_secs(10)).await? {
        eprintln!("note: the target command did not exit cleanly on SIGTERM");
    }
    let unavailable: u64 =
        levels.iter().map(|level| level.endings.get("Unavailable").copied().unwrap_or(0)).sum();
    let others = levels.iter().map(load::LevelReport::errors).sum::<u64>() - unavailable;
    if args.restart_after.is_some() {
        // Calls cut off by the restart end UNAVAILABLE, as they should;
        // anything else is how the server failed under the fault.
        println!("fault run: {unavailable} calls UNAVAILABLE, {others} failed otherwise");
        return Ok(others);
    }
    Ok(unavailable + others)
}

/// The schedule the flags describe.
fn plan(args: &LoadArgs, method: MethodDescriptor, calls: Vec<Call>) -> Result<Plan> {
    let levels = match &args.rps {
        Some(rates) => rates.iter().map(|&rate| Level::Rate(rate)).collect(),
        None => args.concurrency.iter().map(|&n| Level::Concurrency(n)).collect(),
    };
    let seconds = |name: &str, value: f64| {
        Duration::try_from_secs_f64(value)
            .map_err(|_| anyhow::anyhow!("{name} must be a number of seconds, not {value}"))
    };
    let stop = match (args.count, args.stable) {
        (Some(count), _) => Stop::Count(count),
        (None, true) => Stop::Stable(Stability {
            window: seconds("--window", args.window)?,
            max_windows: args.max_windows,
        }),
        (None, false) => Stop::After(seconds("--duration", args.duration)?),
    };
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    Ok(Plan {
        ramp: seconds("--ramp", args.ramp)?,
        timeout: Duration::from_secs(args.timeout_secs),
        connections: args.connections,
        max_in_flight: args.max_in_flight,
        means: args.means.clone(),
        message_interval: Duration::from_millis(args.message_interval_ms),
        ..Plan::new(method, calls, levels, stop)
    })
}

/// The fault run: kills the target `after` into the run, as a crash would,
/// starts it again on the same port, and says when it served again.
async fn restart_after(mut target: Target, after: Duration) -> Result<(Target, String)> {
    tokio::time::sleep(after).await;
    target.kill().await?;
    let killed = std::time::Instant::now();
    target.start_again(DEFAULT_STARTUP_TIMEOUT).await?;
    let message = format!(
        "fault: killed the target {after:?} into the run; it served again {:.2} s later",
        killed.elapsed().as_secs_f64()
    );
    Ok((target, message))
}

/// `package.Service/Method` among what the target serves.
fn find(pool: &prost_reflect::DescriptorPool, call: &str) -> Result<MethodDescriptor> {
    let (service, name) = call
        .trim_start_matches('/')
        .split_once('/')
        .with_context(|| format!("--call {call:?} is not package.Service/Method"))?;
    let service = pool.get_service_by_name(service).with_context(|| {
        format!("the target does not serve {service} (or its schema is unknown: see --descriptors)")
    })?;
    let found = service.methods().find(|method| method.name() == name);
    found.with_context(|| format!("{} has no method {name}", service.full_name()))
}

/// One call from JSON: an object, or an array of objects.
fn parse_call(method: &MethodDescriptor, json: &str) -> Result<Call> {
    let value: serde_json::Value = serde_json::from_str(json).context("not JSON")?;
    let messages = match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    if messages.len() != 1 && !method.is_client_streaming() {
        bail!("{} takes one request, not {}", method.full_name(), messages.len());
    }
    messages.into_iter().map(|message| to_message(&method.input(), message)).collect()
}

fn to_message(desc: &MessageDescriptor, value: serde_json::Value) -> Result<DynamicMessage> {
    DynamicMessage::deserialize(desc.clone(), value)
        .with_context(|| format!("not a {} in protobuf's JSON mapping", desc.full_name()))
}

fn read_calls(method: &MethodDescriptor, path: &Path) -> Result<Vec<Call>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let calls: Vec<Call> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            parse_call(method, line).with_context(|| format!("{} line {}", path.display(), number + 1))
        })
        .collect::<Result<_>>()?;
    if calls.is_empty() {
        bail!("{} holds no calls", path.display());
    }
    Ok(calls)
}
