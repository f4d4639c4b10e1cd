//! The command line, and what a run needs that it was not given.

use std::path::PathBuf;

use clap::Parser;
use conformance::context::Settings;
use harness::arbitrary::Sizes;

#[derive(Parser)]
#[command(
    name = "conformance",
    version,
    about = "Property-tests a gRPC server against its contracts and gRPC's own rules",
    after_help = "The target is --target (a server you run) or --target-cmd (one the suite starts and stops).\n\
                  `cargo xtask conformance` supplies our services when you name neither.\n\
                  Exit status: 0 when nothing failed, 1 when a case failed, 2 when the run could not start.",
    args_conflicts_with_subcommands = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Server to test, e.g. `http://127.0.0.1:50051`.
    #[arg(long, value_name = "URL", conflicts_with = "target_cmd")]
    pub(crate) target: Option<String>,
    /// Shell command that starts the server; `{port}` or `{addr}` marks where
    /// the port goes, and `{max_message_size}`, `{s3_bucket}` and
    /// `{part_size}` take this run's values. It is stopped when the run ends.
    #[arg(long, value_name = "COMMAND", env = "CONFORMANCE_TARGET_CMD")]
    pub(crate) target_cmd: Option<String>,
    /// Descriptor set (protoset or `buf build -o` output) for the services
    /// the target's reflection cannot describe, or a target without any.
    #[arg(long, value_name = "FILE")]
    pub(crate) descriptors: Option<PathBuf>,
    /// The services the target serves, when it cannot say itself (no
    /// reflection, and no health or probe answer tells); replaces discovery.
    #[arg(long, value_name = "SERVICE", value_delimiter = ',')]
    pub(crate) services: Vec<String>,
    /// Run only cases whose name matches one of these globs.
    #[arg(long, value_name = "GLOB")]
    pub(crate) run: Vec<String>,
    /// Skip cases whose name matches one of these globs.
    #[arg(long, value_name = "GLOB")]
    pub(crate) skip: Vec<String>,
    /// Inputs each property tries.
    #[arg(long, alias = "cases", value_name = "N", default_value_t = Settings::default().inputs)]
    pub(crate) inputs: u32,
    /// Root seed; a failure prints the one that reproduces it. Random when absent.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// File listing cases (names or globs) expected to fail; one that passes fails the run.
    #[arg(long, value_name = "FILE")]
    pub(crate) known_failing: Option<PathBuf>,
    /// The target's message size limit in bytes, for the oversized-message
    /// check; generated requests stay under it.
    #[arg(long, value_name = "BYTES", default_value_t = Settings::default().max_message_size)]
    pub(crate) max_message_size: usize,
    /// The longest string a generated request holds, in chars. Sizes are
    /// mostly small and sometimes on a boundary (2^k and 2^k ± 1) up to this.
    #[arg(long, value_name = "CHARS", default_value_t = Sizes::default().max_string_len)]
    pub(crate) max_string_len: usize,
    /// The longest `bytes` value a generated request holds.
    #[arg(long, value_name = "BYTES", default_value_t = Sizes::default().max_bytes_len)]
    pub(crate) max_bytes_len: usize,
    /// The most messages in a generated request stream, and elements in a
    /// repeated field.
    #[arg(long, value_name = "N", default_value_t = Sizes::default().max_stream_len)]
    pub(crate) max_stream_len: usize,
    /// Seconds the harness gives a whole call before reporting that the
    /// server never answered (and an upload without progress before calling
    /// it stalled).
    #[arg(long, value_name = "SECS", default_value_t = Settings::default().watchdog.as_secs())]
    pub(crate) watchdog_secs: u64,
    /// Seconds one case may spend shrinking a failure; the report says when
    /// the bound cut shrinking short.
    #[arg(long, value_name = "SECS", default_value_t = Settings::default().shrink_time.as_secs())]
    pub(crate) shrink_secs: u64,
    /// Write a JSON report here.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
    /// Write a Markdown report here: counts per suite, then each failure
    /// with its evidence (for `$GITHUB_STEP_SUMMARY` or a pull-request comment).
    #[arg(long, value_name = "FILE")]
    pub(crate) markdown: Option<PathBuf>,
    /// List the cases that would run, and exit.
    #[arg(long)]
    pub(crate) list: bool,
    #[command(flatten)]
    pub(crate) security: SecurityArgs,
    /// The target refuses calls without the credentials in the --header
    /// values: check that every method refuses a call without them, or with
    /// a wrong one, and does no work for it.
    #[arg(long, help_heading = "Security")]
    pub(crate) expect_auth: bool,
    /// The target requires a client certificate (mTLS): check that it
    /// refuses a client without one, or with one from another CA.
    #[arg(long, requires = "client_cert", help_heading = "Security")]
    pub(crate) expect_client_cert: bool,
    #[cfg(feature = "s3")]
    #[command(flatten)]
    pub(crate) s3: S3Args,
    #[cfg(feature = "images")]
    #[command(flatten)]
    pub(crate) images: ImagesArgs,
    /// Print what this run needs that it was not given, one need a line,
    /// and exit: `target`, `reference`, `floor`, `moto`, `feature minio`.
    /// `cargo xtask conformance` supplies them.
    #[arg(long, hide = true)]
    pub(crate) print_needs: bool,
}

/// How the target is reached.
#[derive(clap::Args)]
#[command(next_help_heading = "Security")]
pub(crate) struct SecurityArgs {
    /// The target speaks TLS. Implied by an https:// --target and by the
    /// TLS flags below; a --target-cmd needs it (or one of them) to be
    /// reached over TLS.
    #[arg(long)]
    pub(crate) tls: bool,
    /// PEM file of the CA certificates to trust instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// PEM file of the client certificate chain to show (mTLS).
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub(crate) client_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub(crate) client_key: Option<PathBuf>,
    /// Accept any server certificate. Anyone on the path can then read and
    /// change every call: for trying things out only.
    #[arg(long, conflicts_with = "ca_cert")]
    pub(crate) insecure: bool,
    /// A header every call carries, as `name: value` (e.g.
    /// `authorization: Bearer TOKEN`); repeatable.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
}

/// What else the binary does.
#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Put load on one method of a target and measure it: calls per second,
    /// latency percentiles of calls and of response messages, and every
    /// ending by status.
    Load(LoadArgs),
}

/// `conformance load`.
#[derive(clap::Args)]
pub(crate) struct LoadArgs {
    /// Server to load, e.g. `http://127.0.0.1:50051`.
    #[arg(long, value_name = "URL", conflicts_with = "target_cmd")]
    pub(crate) target: Option<String>,
    /// Shell command that starts the server (`{port}` or `{addr}` as for the
    /// suite, and `{max_message_size}`, `{s3_bucket}`, `{part_size}` at their
    /// defaults); stopped when the run ends.
    #[arg(long, value_name = "COMMAND", env = "CONFORMANCE_TARGET_CMD")]
    pub(crate) target_cmd: Option<String>,
    /// Descriptor set for a target whose reflection cannot describe the method.
    #[arg(long, value_name = "FILE")]
    pub(crate) descriptors: Option<PathBuf>,
    /// The method, as `package.Service/Method`.
    #[arg(long, value_name = "METHOD")]
    pub(crate) call: String,
    /// One call's requests as JSON: an object, or an array of objects for a
    /// request stream. Without --data or --data-file, calls are drawn inside
    /// the contract's `buf.validate` rules.
    #[arg(long, value_name = "JSON", conflicts_with = "data_file")]
    pub(crate) data: Option<String>,
    /// A file of calls, one a line, each as --data takes it; used in turn.
    #[arg(long, value_name = "FILE")]
    pub(crate) data_file: Option<PathBuf>,
    /// How many different calls to draw when no data is given.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub(crate) inputs: usize,
    /// Seed of the drawn calls.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Closed loop: calls in flight at once, one level after another.
    #[arg(long, value_name = "N,N,...", value_delimiter = ',', default_value = "1,4,16")]
    pub(crate) concurrency: Vec<usize>,
    /// Open loop: calls started a second, one level after another, whether
    /// or not earlier calls have ended. Latency counts from when each call
    /// was due, so a server that falls behind shows its queue.
    #[arg(long, value_name = "N,N,...", value_delimiter = ',', conflicts_with = "concurrency")]
    pub(crate) rps: Option<Vec<f64>>,
    /// Seconds each level takes to reach its load from the level before,
    /// linearly; calls made while ramping are not reported.
    #[arg(long, value_name = "SECS", default_value_t = 0.0, conflicts_with = "count")]
    pub(crate) ramp: f64,
    /// Seconds each level is measured.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, conflicts_with_all = ["count", "stable"])]
    pub(crate) duration: f64,
    /// Calls each level makes, instead of a duration.
    #[arg(long, value_name = "N", conflicts_with = "stable")]
    pub(crate) count: Option<u64>,
    /// Measure each level in windows until the OK calls per second of the
    /// last three are within 10% of their mean, as perf_analyzer does.
    #[arg(long)]
    pub(crate) stable: bool,
    /// With --stable, each window's length in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 2.0, requires = "stable")]
    pub(crate) window: f64,
    /// With --stable, the windows a level may take before it is reported
    /// unstable.
    #[arg(long, value_name = "N", default_value_t = 10, requires = "stable")]
    pub(crate) max_windows: usize,
    /// HTTP/2 connections to spread the calls over.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) connections: usize,
    /// With --rps, the most calls in flight; a call due beyond it waits,
    /// and the wait counts in its latency.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub(crate) max_in_flight: usize,
    /// Threads the generator runs on; default: one per core. With 1,
    /// everything runs on one thread, as h2load -t 1 does, and the other
    /// cores are left to a server on the same host.
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,
    /// For client and bidi streams, milliseconds between one request
    /// message and the next, so that streams stay open and talk (the call's
    /// --timeout-secs must cover the whole stream).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub(crate) message_interval_ms: u64,
    /// A numeric response field (`timing.decode_us`) whose mean to report:
    /// the server's own account of its time. Repeatable.
    #[arg(long = "mean-of", value_name = "FIELD")]
    pub(crate) means: Vec<String>,
    /// The deadline every call carries, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub(crate) timeout_secs: u64,
    /// A fault run: this many seconds into the run, kill the --target-cmd
    /// server (SIGKILL, as a crash would) and start it again on the same
    /// port. Calls cut off end UNAVAILABLE and are reported apart; only
    /// other failures fail the run.
    #[arg(long, value_name = "SECS")]
    pub(crate) restart_after: Option<f64>,
    /// Where load.csv, load.json and load.svg go.
    #[arg(long, value_name = "DIR", default_value = "target/conformance/load")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) security: SecurityArgs,
    /// Print what this run needs that it was not given (`target`), and exit.
    #[arg(long, hide = true)]
    pub(crate) print_needs: bool,
}

impl SecurityArgs {
    /// Whether the target is reached over TLS.
    pub(crate) fn wants_tls(&self, target: Option<&str>) -> bool {
        self.tls
            || self.ca_cert.is_some()
            || self.client_cert.is_some()
            || self.insecure
            || target.is_some_and(|url| url.starts_with("https://"))
    }

    /// The connection settings the flags describe; `--insecure` says
    /// loudly what it gives up.
    pub(crate) fn security(&self, target: Option<&str>) -> anyhow::Result<harness::Security> {
        if self.insecure {
            eprintln!(
                "WARNING: --insecure: the target's certificate is not checked. Anyone between here and the \
                 target can read and change every call, credentials included."
            );
        }
        let security = if self.wants_tls(target) {
            harness::Security::tls(&harness::TlsOptions {
                ca_cert: self.ca_cert.clone(),
                client_cert: self.client_cert.clone(),
                client_key: self.client_key.clone(),
                insecure: self.insecure,
            })?
        } else {
            harness::Security::plaintext()
        };
        security.with_header_lines(&self.headers)
    }
}

/// The upload-integrity suite (cargo feature `s3`).
#[cfg(feature = "s3")]
#[derive(clap::Args)]
#[command(next_help_heading = "Upload integrity")]
pub(crate) struct S3Args {
    /// S3 server for the upload-integrity suite, started by the suite and
    /// handed to the target (AWS_ENDPOINT_URL and credentials).
    #[arg(long = "s3", value_enum, default_value = "embedded")]
    pub(crate) kind: conformance::s3::S3Kind,
    /// An S3 server you run instead, with credentials and region from the
    /// AWS environment; the target must store into it too.
    #[arg(long = "s3-endpoint", value_name = "URL", conflicts_with = "kind")]
    pub(crate) endpoint: Option<String>,
    /// Bucket the target stores uploads in.
    #[arg(long = "s3-bucket", default_value = "uploads")]
    pub(crate) bucket: String,
    /// The target's multipart part size in bytes; upload sizes straddle it.
    #[arg(long, value_name = "BYTES", default_value_t = conformance::context::DEFAULT_PART_SIZE)]
    pub(crate) part_size: usize,
    /// The moto server program, for `--s3 moto` (default: `moto_server` on
    /// the PATH).
    #[arg(long, value_name = "PROGRAM", env = "MOTO_SERVER")]
    pub(crate) moto_server: Option<PathBuf>,
    /// Also upload 1 GiB and check that the server's memory stays flat
    /// (measured for a --target-cmd).
    #[arg(long)]
    pub(crate) large: bool,
    /// Milliseconds S3 must be quiet about a key before the suite takes it
    /// that the target has finished with it: after a failed upload, "nothing
    /// stored" must hold that long (and at most the watchdog's time).
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub(crate) settle_ms: u64,
}

/// The picture suites and the inference latency sweep (cargo feature `images`).
#[cfg(feature = "images")]
#[derive(clap::Args)]
#[command(next_help_heading = "Inference")]
pub(crate) struct ImagesArgs {
    /// The reference: a second implementation of `inference.InferenceMethods`
    /// serving the same model, which the target's detections must agree with.
    #[arg(long, value_name = "URL", conflicts_with = "reference_cmd")]
    pub(crate) reference: Option<String>,
    /// Shell command that starts the reference (`{port}` or `{addr}` as for
    /// --target-cmd); stopped when the run ends.
    #[arg(long, value_name = "COMMAND", env = "CONFORMANCE_REFERENCE_CMD")]
    pub(crate) reference_cmd: Option<String>,
    /// Shell command of the latency floor, a bare inference session with
    /// `{image}` where the image path goes; it speaks the floor protocol
    /// (README, "Inference"). Without it the sweep has no floor.
    #[arg(long, value_name = "COMMAND", env = "CONFORMANCE_FLOOR_CMD")]
    pub(crate) floor_cmd: Option<String>,
    /// The full inference latency sweep (2 s windows until stable, up to 10
    /// per level) instead of the short one every whole run does.
    #[arg(long)]
    pub(crate) latency: bool,
    /// No inference latency sweep.
    #[arg(long, conflicts_with = "latency")]
    pub(crate) no_latency: bool,
    /// Where the latency sweep writes latency.csv, latency.json and latency.svg.
    #[arg(long, value_name = "DIR", default_value = "target/conformance/latency")]
    pub(crate) latency_out: PathBuf,
}

impl Cli {
    /// How large generated requests grow: the flags, and whole messages of
    /// at most 1 MiB and never over the target's limit (less room for the
    /// gRPC frame and a little slack).
    pub(crate) fn sizes(&self) -> Sizes {
        Sizes {
            max_string_len: self.max_string_len,
            max_bytes_len: self.max_bytes_len,
            max_repeated: self.max_stream_len,
            max_stream_len: self.max_stream_len,
            max_message_bytes: Sizes::default()
                .max_message_bytes
                .min(self.max_message_size.saturating_sub(1024)),
        }
    }

    /// What this run needs and was not given, for whoever launches the
    /// suite (`cargo xtask conformance`) to supply. The policy is the
    /// suite's: a launcher that supplies the target (its own services)
    /// supplies the implementation they are compared with too.
    pub(crate) fn needs(&self) -> Vec<&'static str> {
        let mut needs = Vec::new();
        let no_target = self.target.is_none() && self.target_cmd.is_none();
        if no_target {
            needs.push("target");
        }
        #[cfg(feature = "images")]
        {
            let images = &self.images;
            if no_target && images.reference.is_none() && images.reference_cmd.is_none() {
                needs.push("reference");
            }
            if self.wants_latency() && images.floor_cmd.is_none() {
                needs.push("floor");
            }
        }
        #[cfg(feature = "s3")]
        {
            use conformance::s3::{HAS_MINIO, S3Kind};
            let s3 = &self.s3;
            if s3.endpoint.is_none() && s3.kind == S3Kind::Moto && s3.moto_server.is_none() {
                needs.push("moto");
            }
            if s3.endpoint.is_none() && s3.kind == S3Kind::Minio && !HAS_MINIO {
                needs.push("feature minio");
            }
        }
        needs
    }

    /// Whether the latency sweep runs: always when asked for, and in a
    /// whole run unless turned off. A run narrowed with --run is about
    /// those cases.
    #[cfg(feature = "images")]
    pub(crate) fn wants_latency(&self) -> bool {
        self.images.latency || (self.run.is_empty() && !self.images.no_latency && !self.list)
    }
}
