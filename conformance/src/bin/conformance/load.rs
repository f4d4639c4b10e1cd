//! `conformance load`: the load engine (`conformance::load`) on one method,
//! with a progress bar, a table, and CSV and JSON files.

use std::{path::Path, time::Duration};

use anyhow::{Context as _, Result, bail};
use conformance::{
    context::Settings,
    load::{self, Call, Plan, Stop},
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
    let stop = match args.count {
        Some(count) => Stop::Count(count),
        None => Stop::After(Duration::from_secs_f64(args.duration)),
    };
    let plan = Plan {
        method,
        calls,
        levels: args.concurrency.clone(),
        stop,
        timeout: Duration::from_secs(args.timeout_secs),
    };
    println!(
        "load: {} on {}, levels {:?}, {} different calls",
        args.call,
        target.url(),
        plan.levels,
        plan.calls.len()
    );
    let bar = ProgressBar::new(plan.levels.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] level {pos}/{len}: {wide_msg}")
            .expect("static template"),
    );
    let levels = load::run(target.channel(), &plan, |level, done| {
        bar.set_position(level as u64);
        bar.set_message(format!("concurrency {}, {done} calls", plan.levels[level]));
    })
    .await?;
    bar.finish_and_clear();
    println!("{}", load::table(&levels));
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    std::fs::write(args.out.join("load.csv"), load::csv(&levels))?;
    std::fs::write(args.out.join("load.json"), serde_json::to_string_pretty(&levels)?)?;
    println!("written to {}", args.out.display());
    if args.target_cmd.is_some() && !target.stop(Duration::from_secs(10)).await? {
        eprintln!("note: the target command did not exit cleanly on SIGTERM");
    }
    Ok(levels.iter().map(load::LevelReport::errors).sum())
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
