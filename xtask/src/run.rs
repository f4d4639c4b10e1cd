//! The cargo invocations behind `cargo xtask conformance|bench|test`.
//!
//! What a conformance run needs is the suite's decision, not xtask's: xtask
//! asks the built suite (`--print-needs`) and supplies each need from this
//! repository. Our services are the target when the user names none, the
//! Python peers the reference and the latency floor, moto and MinIO come
//! from `tools/` and a cargo feature. The suite gets them through the
//! environment variables its flags read, so the user's own arguments, and
//! the rerun lines the suite prints, stay as the user wrote them.
//!
//! The suite and our services are built in one cargo invocation, before the
//! suite can be asked anything: built apart, the dependencies they share
//! (the AWS SDK above all) would compile twice, once per feature set.

use std::{
    ffi::{OsStr, OsString},
    path::PathBuf,
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{
    Failed, codegen, project_root, step,
    tools::{self, Requirements},
};

/// Independent implementations the suite can also run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Peers {
    /// Python grpcio servers of our contracts, in `conformance/peers/python/`.
    Python,
    /// A grpc-go server of our contracts (inference aside), built from
    /// Debian's Go packages: `conformance/peers/go/`.
    Go,
    /// grpcio's own admin services (Channelz, CSDS) with health and
    /// reflection, as they come from PyPI: `conformance/peers/independent/`.
    Grpcio,
    /// A `@grpc/grpc-js` server of a contract the suite has never seen:
    /// `conformance/peers/independent/node/`.
    GrpcJs,
}

impl Peers {
    /// What the run's progress line calls it.
    fn label(self) -> &'static str {
        match self {
            Peers::Python => "the Python peers",
            Peers::Go => "the Go peer",
            Peers::Grpcio => "grpcio's admin services",
            Peers::GrpcJs => "the grpc-js server",
        }
    }

    /// The `--target-cmd` that starts it.
    fn command(self) -> Result<String> {
        let root = project_root();
        Ok(match self {
            Peers::Python => python_script("server.py", "--addr {addr}")?,
            Peers::Go => crate::go::server_command()?,
            Peers::Grpcio => {
                let python = tools::ensure_venv(&[Requirements::Independent])?;
                let script = root.join("conformance/peers/independent/grpcio_admin.py");
                format!(
                    "{} {} --addr {{addr}} --max-message-size {{max_message_size}} --shutdown-grace 2",
                    python.display(),
                    script.display()
                )
            }
            Peers::GrpcJs => format!(
                "node {} --addr {{addr}} --max-message-size {{max_message_size}} --shutdown-grace 2",
                tools::ensure_grpc_js_peer()?.display()
            ),
        })
    }
}

/// Runs the conformance suite with the user's arguments: against our
/// services (or the user's target), then against each requested peer.
pub fn conformance(args: &[String], peers: &[Peers]) -> Result<()> {
    step("building the conformance suite and our services");
    let mut features = Vec::new();
    cargo(build(&features), &[])?;
    // The Python peers compile the contracts, which import it, when they start.
    crate::protovalidate::materialize(&project_root().join("proto"))?;
    let mut runs = vec![("the target you named", args.to_vec())];
    for peer in peers {
        let mut with_peer = vec!["--target-cmd".to_owned(), peer.command()?];
        with_peer.extend_from_slice(args);
        runs.push((peer.label(), with_peer));
    }
    for (what, args) in runs {
        let needs = needs(&args)?;
        if needs.iter().any(|need| need == "feature minio") && features.is_empty() {
            step("building the conformance suite with MinIO support (cargo feature `minio`)");
            features.push("conformance/minio");
            cargo(build(&features), &[])?;
        }
        let env = supply(&needs)?;
        let label = if needs.iter().any(|need| need == "target") { "our services" } else { what };
        step(&format!("running the conformance suite against {label}"));
        let status = Command::new(binary("conformance"))
            .args(&args)
            .envs(env)
            .env("CONFORMANCE_COMMAND", "cargo xtask conformance --")
            .current_dir(project_root())
            .status()
            .context("running the conformance suite")?;
        if !status.success() {
            return Err(Failed::from(status).into());
        }
    }
    Ok(())
}

/// `conformance load` with the user's arguments, against our services when
/// they name no target.
pub fn load(args: &[String]) -> Result<()> {
    step("building the conformance suite and our services");
    cargo(build(&[]), &[])?;
    let mut asked = vec!["load".to_owned()];
    asked.extend_from_slice(args);
    let env = supply(&needs(&asked)?)?;
    step("putting load on the target");
    let status = Command::new(binary("conformance"))
        .args(&asked)
        .envs(env)
        .current_dir(project_root())
        .status()
        .context("running conformance load")?;
    if !status.success() {
        return Err(Failed::from(status).into());
    }
    Ok(())
}

fn build(features: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> =
        ["build", "--package", "conformance", "--package", "services"].map(OsString::from).into();
    if !features.is_empty() {
        args.extend(["--features".into(), features.join(",").into()]);
    }
    args
}

/// What the suite says a run with `args` needs and was not given.
fn needs(args: &[String]) -> Result<Vec<String>> {
    // A subcommand's own flags follow its name.
    let (command, rest) = match args.first().map(String::as_str) {
        Some("load") => (&args[..1], &args[1..]),
        _ => (&args[..0], args),
    };
    let output = Command::new(binary("conformance"))
        .args(command)
        .arg("--print-needs")
        .args(rest)
        .current_dir(project_root())
        .output()
        .context("asking the conformance suite what the run needs")?;
    if !output.status.success() {
        // A bad argument: the suite says which, as it would for the run.
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        return Err(Failed::from(output.status).into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect())
}

/// The environment that supplies `needs` from this repository.
fn supply(needs: &[String]) -> Result<Vec<(&'static str, OsString)>> {
    let mut env = Vec::new();
    for need in needs {
        match need.as_str() {
            "target" => {
                let library = tools::ensure_onnxruntime()?;
                let command = format!(
                    "{} serve --addr {{addr}} --max-message-size {{max_message_size}} --bucket {{s3_bucket}} \
                     --part-size {{part_size}} --ort-lib {}",
                    binary("services").display(),
                    library.display()
                );
                env.push(("CONFORMANCE_TARGET_CMD", command.into()));
            }
            "reference" => {
                env.push(("CONFORMANCE_REFERENCE_CMD", python_script("server.py", "--addr {addr}")?.into()))
            }
            "floor" => {
                env.push(("CONFORMANCE_FLOOR_CMD", python_script("floor.py", "--image {image}")?.into()))
            }
            "moto" => env.push(("MOTO_SERVER", tools::ensure_moto()?.into())),
            "feature minio" => {}
            other => bail!("the conformance suite needs {other:?}, which this xtask cannot supply"),
        }
    }
    Ok(env)
}

/// `python conformance/peers/python/<script> <args>`, in the peers' venv.
fn python_script(script: &str, args: &str) -> Result<String> {
    let python = tools::ensure_venv(&[Requirements::Peers])?;
    let path = project_root().join("conformance/peers/python").join(script);
    Ok(format!("{} {} {args}", python.display(), path.display()))
}

/// A binary of this workspace's debug build.
fn binary(name: &str) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| project_root().join("target"), PathBuf::from);
    target.join("debug").join(name)
}

/// Runs the criterion benchmarks with the user's arguments.
pub fn bench(args: &[String]) -> Result<()> {
    tools::ensure_onnxruntime()?;
    tools::ensure_venv(&[Requirements::Peers])?;
    step("building the release server (upload_memory measures it in its own process)");
    cargo(["build", "--release", "--package", "services"].map(OsStr::new), &[])?;
    step("running the benchmarks");
    cargo(
        ["bench", "--package", "benches", "--"]
            .into_iter()
            .map(OsStr::new)
            .chain(args.iter().map(OsStr::new)),
        &[],
    )
}

/// Every check CI runs, in order of increasing cost, stopping at the first
/// failure.
pub fn test() -> Result<()> {
    let buf = tools::ensure_buf()?;
    tools::ensure_onnxruntime()?;
    let python = tools::ensure_venv(&[
        Requirements::Peers,
        Requirements::Models,
        Requirements::Moto,
        Requirements::Independent,
        Requirements::CiFiles,
    ])?;
    let go_peers = crate::go::ensure_go_peers()?;

    step("rustfmt");
    cargo(["fmt", "--all", "--check"].map(OsStr::new), &[])?;

    step("codegen drift");
    codegen::check(&codegen::Layout::of(&project_root()))?;

    step("bundled models are reproducible");
    models_check(&python)?;

    step("buf lint");
    crate::protovalidate::materialize(&project_root().join("proto"))?;
    let status = Command::new(&buf)
        .arg("lint")
        .current_dir(project_root().join("proto"))
        .status()
        .context("running buf")?;
    if !status.success() {
        bail!("buf lint failed");
    }

    // Nothing here can run a workflow or a container: lint them instead.
    crate::ci_files::check()?;

    step("clippy");
    cargo(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"].map(OsStr::new), &[])?;
    // The slim suite, MinIO support (a Docker client is a large build) and
    // the CUDA execution provider are off by default; keep them compiling.
    for args in [
        &["clippy", "--package", "conformance", "--no-default-features", "--", "-D", "warnings"][..],
        &["clippy", "--package", "conformance", "--features", "minio", "--", "-D", "warnings"],
        &["clippy", "--package", "services", "--features", "cuda", "--", "-D", "warnings"],
    ] {
        cargo(args.iter().map(OsStr::new), &[])?;
    }

    step("tests");
    // Ignored tests are the ones that need the tools installed above.
    cargo(
        ["test", "--workspace", "--", "--include-ignored"].map(OsStr::new),
        &[
            ("BUF", buf.as_os_str()),
            ("CONFORMANCE_PYTHON", python.as_os_str()),
            ("GO_PEERS", go_peers.as_os_str()),
        ],
    )?;

    // A bounded run of each target: the seeds and regressions are replayed
    // by the tests above; this looks for new crashes.
    crate::fuzz::fuzz(&[], 60)?;

    step("conformance: our services, the Python and Go peers, then servers nobody on this project wrote");
    conformance(&[], &[Peers::Python, Peers::Go, Peers::Grpcio, Peers::GrpcJs])?;

    step("conformance: upload integrity against moto, a second S3 implementation");
    conformance(&["--s3".into(), "moto".into(), "--run".into(), "uploader.FileUploader/*".into()], &[])
}

/// Regenerates the bundled models into a scratch folder and fails if they
/// differ from the committed ones by a single byte.
fn models_check(python: &std::path::Path) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let models = project_root().join("models");
    let status = Command::new(python)
        .arg(models.join("generate.py"))
        .arg("--out")
        .arg(scratch.path())
        .status()
        .context("running models/generate.py")?;
    if !status.success() {
        bail!("models/generate.py failed");
    }
    for name in ["squares-seg.onnx", "squares-det.onnx"] {
        let committed = std::fs::read(models.join(name)).with_context(|| format!("reading models/{name}"))?;
        let fresh = std::fs::read(scratch.path().join(name))
            .with_context(|| format!("models/generate.py did not write {name}"))?;
        if committed != fresh {
            bail!("models/{name} differs from what models/generate.py builds: run it and commit the result");
        }
    }
    Ok(())
}

/// Runs cargo, whose progress and errors the user sees as they happen; a
/// failure ends xtask with cargo's status and nothing more to say.
fn cargo<I, S>(args: I, env: &[(&str, &OsStr)]) -> Result<()>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args).current_dir(project_root());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let status = cmd.status().context("running cargo")?;
    if !status.success() {
        return Err(Failed::from(status).into());
    }
    Ok(())
}
