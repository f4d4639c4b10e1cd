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
/// Python peers installed; reinstalls when `requirements.txt` changed.
pub fn ensure_python_peers() -> Result<PathBuf> {
    let root = project_root();
    let venv = root.join("tools").join("venv");
    let python = venv.join("bin").join("python");
    let requirements = root.join("conformance/peers/python/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).context("reading the peers' requirements.txt")?;
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
    eprintln!("installing the Python peers' pinned requirements");
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements)
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("pip install -r {} failed", requirements.display());
    }
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}
