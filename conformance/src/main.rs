//! `conformance`: runs the suite against our services or any address.

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use conformance::report::Summary;

#[derive(Parser)]
#[command(name = "conformance", about = "Conformance suite for the seed gRPC contracts")]
struct Cli {
    /// Server to test, e.g. `http://127.0.0.1:50051`. Without it, the
    /// reference services are started in-process on a free port.
    #[arg(long)]
    target: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(summary) if summary.failed == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<Summary> {
    let in_process;
    let url = match cli.target {
        Some(url) => url,
        None => {
            in_process = services::spawn(services::Config::default()).await?;
            in_process.url()
        }
    };
    println!("target: {url}");
    let channel = harness::connect(&url).await?;
    let results = conformance::smoke::run(&channel).await?;
    for result in &results {
        println!("{result}");
    }
    let summary = Summary::of(&results);
    println!("\n{summary}");
    Ok(summary)
}
