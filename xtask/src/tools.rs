//! External tools the tests use as real peers, installed into the repository
//! (`tools/node_modules`) from the npm registry, so that a fresh machine needs
//! nothing but cargo and npm.

use std::{path::PathBuf, process::Command};

use anyhow::{Context, Result, bail};

use crate::project_root;

/// Returns the `buf` CLI pinned in `tools/package.json`, installing it on
/// first use.
pub fn ensure_buf() -> Result<PathBuf> {
    let tools = project_root().join("tools");
    let buf = tools.join("node_modules").join(".bin").join("buf");
    if buf.exists() {
        return Ok(buf);
    }
    eprintln!("installing buf into {}", tools.display());
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

/// Returns the Python of `tools/venv`, with the pinned requirements of the
/// Python peers, the S3 servers and the model generator installed;
/// reinstalls when a requirements file changed.
pub fn ensure_venv() -> Result<PathBuf> {
    let root = project_root();
    let venv = root.join("tools").join("venv");
    let python = venv.join("bin").join("python");
    let files = [
        root.join("conformance/peers/python/requirements.txt"),
        root.join("tools/s3-requirements.txt"),
        root.join("models/requirements.txt"),
    ];
    let mut wanted = String::new();
    for file in &files {
        wanted += &std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    }
    let stamp = venv.join("installed-requirements.txt");
    if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return Ok(python);
    }
    if !python.exists() {
        eprintln!("creating {}", venv.display());
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
    eprintln!("installing the pinned Python requirements into {}", venv.display());
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]);
    for file in &files {
        pip.arg("-r").arg(file);
    }
    let status = pip.status().context("running pip")?;
    if !status.success() {
        bail!("pip install of the pinned requirements failed");
    }
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

/// The `moto_server` of `tools/venv`.
pub fn ensure_moto() -> Result<PathBuf> {
    let python = ensure_venv()?;
    Ok(python.with_file_name("moto_server"))
}

/// The ONNX Runtime release the inference service is tested with; the
/// service looks for the library where [`ensure_onnxruntime`] puts it
/// (`services::inference::DEFAULT_LIBRARY`, which must agree).
const ONNXRUNTIME_VERSION: &str = "1.31.1";

/// Returns `tools/onnxruntime/libonnxruntime.so.<version>`, fetching it from
/// the `onnxruntime` wheel on PyPI the first time: PyPI is reachable where
/// ONNX Runtime's own download site may not be, and the wheel carries the
/// same library Python's reference server uses.
pub fn ensure_onnxruntime() -> Result<PathBuf> {
    let folder = project_root().join("tools").join("onnxruntime");
    let library = folder.join(format!("libonnxruntime.so.{ONNXRUNTIME_VERSION}"));
    if library.is_file() {
        return Ok(library);
    }
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        bail!(
            "fetching ONNX Runtime is automated for x86_64 Linux only; download ONNX Runtime \
             {ONNXRUNTIME_VERSION} for this platform and set ORT_DYLIB_PATH to its library"
        );
    }
    eprintln!("fetching ONNX Runtime {ONNXRUNTIME_VERSION} from PyPI into {}", folder.display());
    std::fs::create_dir_all(&folder)?;
    let scratch = tempfile::tempdir()?;
    let python3 = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let status = Command::new(&python3)
        .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps"])
        .args(["--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11"])
        .args(["--implementation", "cp", &format!("onnxruntime=={ONNXRUNTIME_VERSION}"), "--dest"])
        .arg(scratch.path())
        .status()
        .context("running python3 -m pip")?;
    if !status.success() {
        bail!("`pip download onnxruntime=={ONNXRUNTIME_VERSION}` failed");
    }
    // Only the one file is needed; the wheel is a zip, and Python reads zips
    // everywhere `unzip` may be missing.
    let extract = "import sys, zipfile, glob, shutil\n\
        wheel, = glob.glob(sys.argv[1] + '/onnxruntime-*.whl')\n\
        member = 'onnxruntime/capi/libonnxruntime.so.' + sys.argv[2]\n\
        with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(sys.argv[3], 'wb') as dst:\n\
        \x20   shutil.copyfileobj(src, dst)\n";
    let partial = folder.join("libonnxruntime.so.partial");
    let status = Command::new(&python3)
        .args(["-c", extract])
        .arg(scratch.path())
        .arg(ONNXRUNTIME_VERSION)
        .arg(&partial)
        .status()
        .context("running python3")?;
    if !status.success() {
        bail!("extracting the library from the onnxruntime wheel failed");
    }
    // Renamed into place only when whole, so an interrupted fetch is retried.
    std::fs::rename(&partial, &library)?;
    Ok(library)
}
