//! `cargo xtask`: the one entry point for project chores, so that nothing
//! needs a Makefile, shell scripts or a protoc install.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xtask::{codegen, project_root, run};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Project automation for the gRPC contract toolkit")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile every `.proto` under `proto/` into `proto/src/generated/`.
    Codegen {
        /// Regenerate into a scratch folder and fail if the committed files differ.
        #[arg(long)]
        check: bool,
    },
    /// Run the conformance suite; other arguments (`--target URL`, `--run GLOB`,
    /// `--inputs N`, ...) go to the suite: see `cargo xtask conformance -- --help`.
    /// What the run needs and was not given (our services as the target, the
    /// Python reference and floor, moto) is built or installed first.
    Conformance {
        /// Also run the suite against these independent implementations.
        #[arg(long, value_enum, value_delimiter = ',')]
        peers: Vec<run::Peers>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Put load on one method of a target (`conformance load`; arguments go
    /// to it: `--call`, `--concurrency`, `--duration`, ...), our services
    /// when none is named.
    Load {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the criterion benchmarks (arguments after `--` go to criterion).
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build the fuzz targets with coverage instrumentation and run
    /// libFuzzer on each for a bounded time.
    Fuzz {
        /// Only these targets (default: all of them).
        targets: Vec<String>,
        /// Seconds each target runs.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Install test tools, then run every check CI runs.
    Test,
    /// Fetch the ONNX Runtime library the inference service loads into
    /// `tools/onnxruntime/` (other commands do this when they need it).
    Onnxruntime,
    /// Lint the CI files users copy: the workflows and the composite action
    /// (actionlint, with shellcheck on their scripts), docker-compose.yml
    /// and the Dockerfiles (hadolint). `cargo xtask test` runs this too.
    CiFiles,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Codegen { check: false } => codegen::generate(&codegen::Layout::of(&project_root())),
        Command::Codegen { check: true } => codegen::check(&codegen::Layout::of(&project_root())),
        Command::Conformance { peers, args } => run::conformance(&args, &peers),
        Command::Load { args } => run::load(&args),
        Command::Bench { args } => run::bench(&args),
        Command::Fuzz { targets, seconds } => xtask::fuzz::fuzz(&targets, seconds),
        Command::Test => run::test(),
        Command::Onnxruntime => xtask::tools::ensure_onnxruntime().map(|path| println!("{}", path.display())),
        Command::CiFiles => xtask::ci_files::check(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<xtask::Failed>() => {
            ExitCode::from(err.downcast_ref::<xtask::Failed>().map_or(1, |failed| failed.0))
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
