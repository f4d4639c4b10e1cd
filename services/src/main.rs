//! `services`: our server for every seed contract, and seed 001's
//! upload client.

mod upload_command;

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use services::Config;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "services", version, about = "Our gRPC server for the seed contracts")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every contract, reflection and health on one port until SIGINT or SIGTERM.
    Serve(Box<ServeArgs>),
    /// Upload a file to `uploader.FileUploader`, with a progress bar, and
    /// check that the server stored exactly its bytes.
    Upload(upload_command::UploadArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: SocketAddr,
    /// Largest message accepted or sent, e.g. `16MiB`, `512KiB` or a byte count.
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    max_message_size: usize,
    /// Seconds in-flight calls may run after a shutdown signal.
    #[arg(long, default_value_t = 10)]
    shutdown_timeout_secs: u64,
    /// S3 bucket for FileUploader; created if missing.
    #[arg(long, default_value = "uploads")]
    bucket: String,
    /// Folder for the embedded S3 server, used when `AWS_ENDPOINT_URL` is
    /// not set (a temporary folder by default).
    #[arg(long, value_name = "DIR")]
    s3_data_dir: Option<std::path::PathBuf>,
    /// Multipart part size for uploads, e.g. `8MiB` (at least 5 MiB).
    #[arg(long, default_value = "8MiB", value_parser = parse_size)]
    part_size: usize,
    #[command(flatten)]
    inference: InferenceArgs,
    #[command(flatten)]
    security: SecurityArgs,
}

/// TLS and authentication; SIGHUP rereads every file named here.
#[derive(clap::Args)]
#[command(next_help_heading = "Security")]
struct SecurityArgs {
    /// PEM certificate chain: serve TLS (with `--tls-key`).
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// PEM CA certificates: require a client certificate signed by one (mTLS).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_client_ca: Option<std::path::PathBuf>,
    /// A file holding the bearer token every call must carry
    /// (`authorization: Bearer TOKEN`). Health stays open for probes.
    #[arg(long, value_name = "PATH")]
    auth_token_file: Option<std::path::PathBuf>,
    /// Let reflection answer without the token (by default it needs it, as
    /// a schema is what an attacker maps first).
    #[arg(long)]
    open_reflection: bool,
}

impl SecurityArgs {
    fn config(self) -> services::security::SecurityConfig {
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => {
                Some(services::security::TlsFiles { cert, key, client_ca: self.tls_client_ca })
            }
            _ => None,
        };
        services::security::SecurityConfig {
            tls,
            token_file: self.auth_token_file,
            open_reflection: self.open_reflection,
        }
    }
}

/// `inference.InferenceMethods` settings.
#[derive(clap::Args)]
#[command(next_help_heading = "Inference")]
struct InferenceArgs {
    /// A YOLOv8 ONNX export (detect or segment) to serve instead of the
    /// bundled squares model.
    #[arg(long, value_name = "PATH")]
    model: Option<std::path::PathBuf>,
    /// The ONNX Runtime library (libonnxruntime.so, 1.31 or newer). Default:
    /// `ORT_DYLIB_PATH`, then the copy `cargo xtask onnxruntime` fetches.
    #[arg(long, value_name = "PATH")]
    ort_lib: Option<std::path::PathBuf>,
    /// Where the model runs: `cpu`, `cuda` or `cuda:N` (needs the `cuda`
    /// feature and an onnxruntime-gpu library).
    #[arg(long, default_value = "cpu")]
    device: services::inference::Device,
    /// ONNX Runtime sessions, i.e. forward passes that can run at once.
    /// Default: one per core.
    #[arg(long)]
    sessions: Option<usize>,
    /// Threads each forward pass may use.
    #[arg(long, default_value_t = 1)]
    intra_threads: usize,
    /// A class label reported in `defects` (repeatable). Default: `defect`
    /// and `scratch`.
    #[arg(long = "defect-class", value_name = "LABEL")]
    defect_classes: Vec<String>,
    /// Images whose header declares more pixels are refused.
    #[arg(long, default_value_t = 40_000_000)]
    max_pixels: u64,
    /// Serve every other contract without inference, e.g. on a machine
    /// without ONNX Runtime.
    #[arg(long)]
    no_inference: bool,
}

impl InferenceArgs {
    fn config(self) -> Option<services::inference::InferenceConfig> {
        if self.no_inference {
            return None;
        }
        let defaults = services::inference::InferenceConfig::default();
        Some(services::inference::InferenceConfig {
            model: self
                .model
                .map_or(services::inference::ModelSource::Bundled, services::inference::ModelSource::File),
            ort_library: self.ort_lib,
            device: self.device,
            sessions: self.sessions.unwrap_or(defaults.sessions),
            intra_threads: self.intra_threads,
            defect_classes: if self.defect_classes.is_empty() {
                defaults.defect_classes
            } else {
                self.defect_classes
            },
            max_pixels: self.max_pixels,
        })
    }
}

fn main() -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let outcome = match Cli::parse().command {
        Command::Serve(args) => serve(*args),
        Command::Upload(args) => {
            tokio::runtime::Runtime::new()?.block_on(upload_command::run(args)).map(|()| ExitCode::SUCCESS)
        }
    };
    // One line a user can act on, not a backtrace.
    Ok(outcome.unwrap_or_else(|err| {
        eprintln!("error: {err:#}");
        ExitCode::FAILURE
    }))
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    let ServeArgs {
        addr,
        max_message_size,
        shutdown_timeout_secs,
        bucket,
        s3_data_dir,
        part_size,
        inference,
        security,
    } = args;
    // The standard AWS convention: an endpoint in the environment means a
    // real S3; without one, an embedded server stands in.
    let backend = if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        services::s3::Backend::Environment { endpoint_url: None }
    } else {
        services::s3::Backend::Embedded { data_dir: s3_data_dir }
    };
    bounded_allocations(part_size);
    let config = Config {
        max_message_size,
        shutdown_timeout: Duration::from_secs(shutdown_timeout_secs),
        s3: services::s3::S3Config { backend, bucket, part_size, ..Default::default() },
        inference: inference.config(),
        security: security.config(),
    };
    tokio::runtime::Runtime::new()?.block_on(async move {
        let shutdown = shutdown_signal()?;
        let credentials = services::security::Credentials::load(&config.security)?;
        reload_on_hangup(credentials.clone())?;
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        // Scripts that pass port 0 read the real address from this line.
        println!("listening on {}", listener.local_addr()?);
        services::serve_with(listener, config, credentials, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Rereads the certificate, key, client CA and token on every SIGHUP. A
/// reload that fails keeps what was loaded, and says why.
fn reload_on_hangup(credentials: std::sync::Arc<services::security::Credentials>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match credentials.reload() {
                Ok(()) => tracing::info!("reloaded the TLS certificate and the token"),
                Err(err) => tracing::error!("reload failed, keeping the previous credentials: {err:#}"),
            }
        }
    });
    Ok(())
}

/// Upload parts are 8 MiB buffers, allocated and freed all the time. glibc
/// serves allocations that large with mmap, until the first is freed: then
/// it raises its threshold and serves them from per-thread heaps, which
/// fragment and keep growing (peak RSS 84 MiB instead of 55 MiB over a
/// 1 GiB upload). A threshold fixed at the part size keeps every part
/// mmapped and memory flat in file size.
///
/// Below it, buffers stay on the heap: an inference call allocates a 5 MB
/// input tensor, and ONNX Runtime 6.5 MB intermediates, every time. Mapped
/// and unmapped per call (a 1 MiB threshold), or trimmed off the heap top
/// after each call (glibc's 128 KiB default once the threshold is fixed),
/// every page faults in afresh: calls took 11 ms instead of 6.
fn bounded_allocations(part_size: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; it is called once,
    // before any other thread exists.
    unsafe {
        let threshold = i32::try_from(part_size).unwrap_or(i32::MAX);
        libc::mallopt(libc::M_MMAP_THRESHOLD, threshold);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM. The handlers are
/// installed here, not when the future is first polled: a supervisor may
/// signal the moment it reads "listening on", and a signal that arrives
/// before the handlers exist kills the process instead of draining it.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("received SIGINT"),
                _ = terminate.recv() => tracing::info!("received SIGTERM"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("received Ctrl-C");
        })
    }
}

/// Parses `16MiB`, `512KiB`, `1GiB`, `4MB` or a plain byte count.
pub(crate) fn parse_size(text: &str) -> Result<usize> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let amount: usize = digits.parse().with_context(|| format!("{text:?} does not start with a number"))?;
    let multiplier: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => bail!("unknown size unit {other:?}; use B, KiB, MiB or GiB"),
    };
    let size = amount.checked_mul(multiplier).context("size too large")?;
    if size == 0 {
        bail!("the message size limit must be at least 1 byte");
    }
    // gRPC frames carry a 32-bit length.
    if size > u32::MAX as usize {
        bail!("the message size limit must be below 4 GiB (gRPC frame lengths are 32-bit)");
    }
    Ok(size)
}
