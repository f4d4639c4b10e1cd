//! `buf/validate/validate.proto`, which contracts import to state their rules.
//!
//! The file ships inside the `prost-protovalidate-types` crate the harness
//! already depends on, so the repository carries no copy of its own: cargo
//! metadata says where the crate is, and [`materialize`] copies the file to
//! a git-ignored folder below `proto/`. There it is one include root for
//! protox, a second module for `buf lint` (which has no network to fetch it
//! from the BSR), and a `sys.path` entry for the Python peers.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

/// The crate that ships the file.
const CRATE: &str = "prost-protovalidate-types";
/// The file, relative to an include root.
pub const FILE: &str = "buf/validate/validate.proto";
/// Where [`materialize`] puts the include root, relative to `proto/`; the
/// codegen walk and `buf.yaml` both name it.
pub const INCLUDE_DIR: &str = "vendor/protovalidate";

/// Copies `validate.proto` below `proto_root` (only when it changed) and
/// returns the include root that holds it.
pub fn materialize(proto_root: &Path) -> Result<PathBuf> {
    let source = crate_dir()?.join("proto").join(FILE);
    let bytes = fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
    let include = proto_root.join(INCLUDE_DIR);
    let target = include.join(FILE);
    if fs::read(&target).ok().as_deref() != Some(&bytes[..]) {
        fs::create_dir_all(target.parent().expect("FILE has a folder"))?;
        fs::write(&target, &bytes).with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(include)
}

/// The crate's folder, from the workspace's resolved dependency graph.
fn crate_dir() -> Result<PathBuf> {
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["metadata", "--format-version", "1"])
        .current_dir(crate::project_root())
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading cargo metadata")?;
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|package| package["name"] == CRATE)
        .and_then(|package| package["manifest_path"].as_str())
        .with_context(|| format!("{CRATE} is not in the dependency graph; the harness depends on it"))?;
    Ok(Path::new(manifest).parent().expect("a manifest lives in a folder").to_path_buf())
}
