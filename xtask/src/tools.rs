//! External tools the tests and the suite use as real peers, installed into
//! the repository (`tools/`) from the package registries, so that a fresh
//! machine needs nothing but cargo, Python and npm. Each says what it is
//! doing: a first run downloads for a minute or two.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::{project_root, step};

/// Returns the `buf` CLI pinned in `tools/package.json`, installing it on
/// first use.
pub fn ensure_buf() -> Result<PathBuf> {
    let tools = project_root().join("tools");
    let buf = tools.join("node_modules").join(".bin").join("buf");
    if buf.exists() {
        return Ok(buf);
    }
    step(&format!("installing buf from npm into {}", tools.display()));
    // Not `npm ci`: the lock cannot list buf's binaries for platforms that a
    // registry mirror may not carry, and `ci` rejects such a lock. `install
    // --no-save` still takes the pinned versions and integrity from it.
    let status = Command::new("npm")
        .args(["install", "--no-save", "--no-audit", "--no-fund", "--prefix"])
        .arg(&tools)
        .status()
        .context("running npm: is Node.js installed?")?;
    if !status.success() || !buf.exists() {
        bail!("`npm install --prefix tools` failed; buf is needed for lint and interop tests");
    }
    Ok(buf)
}

/// Returns the grpc-js peer's `server.js`, with the packages its lock pins
/// installed (`npm ci`) on first use and whenever the lock changes.
pub fn ensure_grpc_js_peer() -> Result<PathBuf> {
    let folder = project_root().join("conformance/peers/independent/node");
    let lock = std::fs::read(folder.join("package-lock.json")).context("reading the grpc-js peer's lock")?;
    let stamp = folder.join("node_modules").join(".installed-lock.json");
    if std::fs::read(&stamp).is_ok_and(|installed| installed == lock) {
        return Ok(folder.join("server.js"));
    }
    step(&format!("installing the grpc-js peer's packages from npm into {}", folder.display()));
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(&folder)
        .status()
        .context("running npm: is Node.js installed?")?;
    if !status.success() {
        bail!("`npm ci --prefix {}` failed (its output is above)", folder.display());
    }
    std::fs::write(stamp, lock)?;
    Ok(folder.join("server.js"))
}

/// Sets of Python packages, each pinned in its own requirements file and
/// installed into `tools/venv` only when something needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirements {
    /// The Python peers: grpcio, onnxruntime, numpy, Pillow. The reference
    /// and the latency floor of a default run.
    Peers,
    /// moto, a second S3 implementation (`--s3 moto`).
    Moto,
    /// What `models/generate.py` needs to rebuild the bundled models.
    Models,
    /// grpcio's admin services, for `conformance/peers/independent/`.
    Independent,
    /// actionlint, shellcheck and hadolint: the static checks of the CI
    /// files users copy (`ci_files.rs`).
    CiFiles,
}

impl Requirements {
    /// The requirements file, and those it includes.
    fn files(self) -> Vec<PathBuf> {
        let root = project_root();
        match self {
            Requirements::Peers => vec![
                root.join("conformance/peers/python/requirements.txt"),
                root.join("tools/onnxruntime.txt"),
            ],
            Requirements::Moto => vec![root.join("tools/s3-requirements.txt")],
            Requirements::Models => vec![root.join("models/requirements.txt")],
            Requirements::Independent => vec![root.join("conformance/peers/independent/requirements.txt")],
            Requirements::CiFiles => vec![root.join("tools/ci-requirements.txt")],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Requirements::Peers => "peers",
            Requirements::Moto => "moto",
            Requirements::Models => "models",
            Requirements::Independent => "independent",
            Requirements::CiFiles => "ci-files",
        }
    }
}

/// Returns the Python of `tools/venv`, with the pinned packages of every
/// set in `sets` installed; reinstalls a set whose files changed.
pub fn ensure_venv(sets: &[Requirements]) -> Result<PathBuf> {
    let venv = project_root().join("tools").join("venv");
    let python = venv.join("bin").join("python");
    let mut missing = Vec::new();
    for &set in sets {
        let mut wanted = String::new();
        for file in set.files() {
            wanted +=
                &std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        }
        let stamp = venv.join(format!("installed-{}.txt", set.name()));
        if !(python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted)) {
            missing.push((set, stamp, wanted));
        }
    }
    if missing.is_empty() {
        return Ok(python);
    }
    if !python.exists() {
        step(&format!("creating the Python environment {}", venv.display()));
        let python3 = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
        let status = Command::new(python3)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("running python3 -m venv")?;
        if !status.success() {
            bail!("`python3 -m venv {}` failed (on Debian: apt-get install python3-venv)", venv.display());
        }
    }
    let names: Vec<&str> = missing.iter().map(|(set, ..)| set.name()).collect();
    step(&format!("installing the pinned Python packages ({}) into {}", names.join(", "), venv.display()));
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "on"]);
    for (set, ..) in &missing {
        pip.arg("-r").arg(&set.files()[0]);
    }
    let status = pip.status().context("running pip")?;
    if !status.success() {
        bail!("pip could not install the pinned Python packages (its output is above)");
    }
    for (_, stamp, wanted) in missing {
        std::fs::write(stamp, wanted)?;
    }
    Ok(python)
}

/// The `moto_server` of `tools/venv`.
pub fn ensure_moto() -> Result<PathBuf> {
    let python = ensure_venv(&[Requirements::Moto])?;
    Ok(python.with_file_name("moto_server"))
}

/// The ONNX Runtime release everything here uses, from the one file that
/// pins it.
pub fn onnxruntime_version() -> Result<String> {
    let pin = project_root().join("tools/onnxruntime.txt");
    let text = std::fs::read_to_string(&pin).with_context(|| format!("reading {}", pin.display()))?;
    text.lines()
        .find_map(|line| line.trim().strip_prefix("onnxruntime=="))
        .map(str::to_owned)
        .with_context(|| format!("{} pins no onnxruntime==VERSION", pin.display()))
}

/// Returns `tools/onnxruntime/libonnxruntime.so`, where the services look
/// for it, fetching it from the `onnxruntime` wheel on PyPI when it is
/// missing or another version than the pin: PyPI is reachable where ONNX
/// Runtime's own download site may not be, and the wheel carries the same
/// library the Python peers use.
pub fn ensure_onnxruntime() -> Result<PathBuf> {
    let version = onnxruntime_version()?;
    let folder = project_root().join("tools").join("onnxruntime");
    let library = folder.join("libonnxruntime.so");
    let stamp = folder.join("VERSION");
    if library.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|v| v.trim() == version) {
        return Ok(library);
    }
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        bail!(
            "fetching ONNX Runtime is automated for x86_64 Linux only; download ONNX Runtime \
             {version} for this platform and set ORT_DYLIB_PATH to its library"
        );
    }
    step(&format!("fetching ONNX Runtime {version} from its PyPI wheel into {}", folder.display()));
    std::fs::create_dir_all(&folder)?;
    let scratch = tempfile::tempdir()?;
    let python3 = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let status = Command::new(&python3)
        .args(["-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "--progress-bar", "on"])
        .args(["--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11"])
        .args(["--implementation", "cp", &format!("onnxruntime=={version}"), "--dest"])
        .arg(scratch.path())
        .status()
        .context("running python3 -m pip")?;
    if !status.success() {
        bail!("`pip download onnxruntime=={version}` failed");
    }
    extract_library(scratch.path(), &version, &folder.join("libonnxruntime.so.partial"))?;
    // Renamed into place only when whole, so an interrupted fetch is retried.
    std::fs::rename(folder.join("libonnxruntime.so.partial"), &library)?;
    std::fs::write(stamp, &version)?;
    Ok(library)
}

/// Copies the one file needed out of the wheel, a zip: Python reads zips
/// everywhere `unzip` may be missing.
fn extract_library(wheels: &Path, version: &str, to: &Path) -> Result<()> {
    let extract = "import sys, zipfile, glob, shutil\n\
        wheel, = glob.glob(sys.argv[1] + '/onnxruntime-*.whl')\n\
        member = 'onnxruntime/capi/libonnxruntime.so.' + sys.argv[2]\n\
        with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(sys.argv[3], 'wb') as dst:\n\
        \x20   shutil.copyfileobj(src, dst)\n";
    let python3 = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let status = Command::new(&python3)
        .args(["-c", extract])
        .arg(wheels)
        .arg(version)
        .arg(to)
        .status()
        .context("running python3")?;
    if !status.success() {
        bail!("extracting the library from the onnxruntime wheel failed");
    }
    Ok(())
}
