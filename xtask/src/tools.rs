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
