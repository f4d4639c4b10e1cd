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
/// Python peers and of the S3 servers installed; reinstalls when a
/// requirements file changed.
pub fn ensure_venv() -> Result<PathBuf> {
    let root = project_root();
    let venv = root.join("tools").join("venv");
    let python = venv.join("bin").join("python");
    let files =
        [root.join("conformance/peers/python/requirements.txt"), root.join("tools/s3-requirements.txt")];
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
