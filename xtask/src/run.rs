//! The cargo invocations behind `cargo xtask conformance|bench|test`.

use std::{ffi::OsStr, process::Command};

use anyhow::{Context, Result, bail};

use crate::{codegen, project_root, tools};

/// Independent implementations the suite can also run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Peers {
    /// Python grpcio servers in `conformance/peers/python/`.
    Python,
}

/// Runs the conformance suite with the user's arguments: against our
/// services (or the user's `--target`), then against each requested peer.
///
/// `--s3 moto` gets moto from the pinned virtualenv; `--s3 minio` builds the
/// suite with its Docker support. Our services are compared with the Python
/// reference of the inference contract unless the user names a target or a
/// reference.
pub fn conformance(args: &[String], peers: &[Peers]) -> Result<()> {
    tools::ensure_onnxruntime()?;
    let names = |prefix: &str| args.iter().any(|arg| arg.starts_with(prefix));
    // Only our services are compared with the reference: the peers' runs
    // below would compare the Python reference with itself.
    let reference = if names("--target") || names("--reference") {
        Vec::new()
    } else {
        vec!["--reference-cmd".to_owned(), python_peer_command()?]
    };
    let s3 = s3_kind(args);
    let moto = if s3 == Some("moto") { Some(tools::ensure_moto()?) } else { None };
    let env: Vec<(&str, &OsStr)> = moto.iter().map(|path| ("MOTO_SERVER", path.as_os_str())).collect();
    let features: &[&str] = if s3 == Some("minio") { &["--features", "minio"] } else { &[] };
    let suite = |extra: &[String]| {
        let fixed = ["run", "--quiet", "--package", "conformance"].iter().chain(features).chain(&["--"]);
        cargo(fixed.map(OsStr::new).chain(extra.iter().chain(args).map(OsStr::new)), &env)
    };
    suite(&reference)?;
    for peer in peers {
        match peer {
            Peers::Python => {
                let command = python_peer_command()?;
                eprintln!("\n==> conformance against the Python peers");
                suite(&["--target-cmd".to_owned(), command])?;
            }
        }
    }
    Ok(())
}

/// The command that starts the Python peers on `{addr}`.
fn python_peer_command() -> Result<String> {
    let python = tools::ensure_venv()?;
    let server = project_root().join("conformance/peers/python/server.py");
    Ok(format!("{} {} --addr {{addr}}", python.display(), server.display()))
}

/// The value of `--s3` among the suite's arguments.
fn s3_kind(args: &[String]) -> Option<&str> {
    args.iter().enumerate().find_map(|(index, arg)| match arg.strip_prefix("--s3") {
        Some("") => args.get(index + 1).map(String::as_str),
        Some(value) => value.strip_prefix('='),
        None => None,
    })
}

/// Runs the criterion benchmarks with the user's arguments.
pub fn bench(args: &[String]) -> Result<()> {
    tools::ensure_onnxruntime()?;
    // `upload_memory` measures the server binary in its own process.
    cargo(["build", "--release", "--package", "services"].map(OsStr::new), &[])?;
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

    step("rustfmt");
    cargo(["fmt", "--all", "--check"].map(OsStr::new), &[])?;

    step("codegen drift");
    codegen::check(&codegen::Layout::of(&project_root()))?;

    step("bundled models are reproducible");
    models_check()?;

    step("buf lint");
    let status = Command::new(&buf)
        .arg("lint")
        .current_dir(project_root().join("proto"))
        .status()
        .context("running buf")?;
    if !status.success() {
        bail!("buf lint failed");
    }

    step("clippy");
    cargo(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"].map(OsStr::new), &[])?;
    // MinIO support is opt-in (a Docker client is a large build); keep it
    // compiling all the same.
    cargo(
        ["clippy", "--package", "conformance", "--features", "minio", "--", "-D", "warnings"].map(OsStr::new),
        &[],
    )?;
    // Likewise the CUDA execution provider: CI has no GPU to run it on.
    cargo(
        ["clippy", "--package", "services", "--features", "cuda", "--", "-D", "warnings"].map(OsStr::new),
        &[],
    )?;

    step("tests");
    // Ignored tests are the ones that need the tools installed above.
    cargo(["test", "--workspace", "--", "--include-ignored"].map(OsStr::new), &[("BUF", buf.as_os_str())])?;

    step("conformance: reference services, then the Python peers");
    conformance(&[], &[Peers::Python])?;

    step("conformance: upload integrity against moto, a second S3 implementation");
    conformance(&["--s3".into(), "moto".into(), "--run".into(), "uploader.FileUploader/*".into()], &[])
}

/// Regenerates the bundled models into a scratch folder and fails if they
/// differ from the committed ones by a single byte.
fn models_check() -> Result<()> {
    let python = tools::ensure_venv()?;
    let scratch = tempfile::tempdir()?;
    let models = project_root().join("models");
    let status = Command::new(&python)
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

fn step(name: &str) {
    eprintln!("\n==> {name}");
}

fn cargo<'a>(args: impl IntoIterator<Item = &'a OsStr>, env: &[(&str, &OsStr)]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args).current_dir(project_root());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let status = cmd.status().context("running cargo")?;
    if !status.success() {
        bail!("`{cmd:?}` failed with {status}");
    }
    Ok(())
}
