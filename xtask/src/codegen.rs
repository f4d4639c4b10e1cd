//! Protoc-free code generation: protox parses the contracts, tonic-prost-build
//! turns the descriptors into Rust.
//!
//! The output is committed. `check` regenerates into a scratch folder and
//! compares, so drift between `.proto` files and generated code fails CI
//! instead of surprising a user.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};

/// Folder names under the proto root that hold no contracts: the generated
/// code, and imports copied in from elsewhere (see [`crate::protovalidate`]).
const SKIPPED_DIRS: &[&str] = &["src", "target", "vendor"];

/// The command a user runs to fix drift; printed by `check`.
pub const FIX_COMMAND: &str = "cargo xtask codegen";

/// Where the contracts are read from and the generated code is written to.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Include root: every `.proto` below it is compiled, named relative to it.
    pub proto_root: PathBuf,
    /// Folder holding the committed generated files.
    pub out_dir: PathBuf,
}

impl Layout {
    /// The layout of this repository.
    pub fn of(project_root: &Path) -> Self {
        let proto_root = project_root.join("proto");
        let out_dir = proto_root.join("src").join("generated");
        Layout { proto_root, out_dir }
    }
}

/// Regenerates the committed files in place.
pub fn generate(layout: &Layout) -> Result<()> {
    fs::create_dir_all(&layout.out_dir).with_context(|| format!("creating {}", layout.out_dir.display()))?;
    let written = generate_into(&layout.proto_root, &layout.out_dir)?;
    // Remove leftovers of contracts that no longer exist.
    for (name, _) in read_dir_files(&layout.out_dir)? {
        if !written.contains(&name) {
            fs::remove_file(layout.out_dir.join(&name))?;
        }
    }
    println!("generated {} files in {}", written.len(), layout.out_dir.display());
    Ok(())
}

/// Fails, with a summary of what differs and the fix command, when the
/// committed files are not what `generate` would write.
pub fn check(layout: &Layout) -> Result<()> {
    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    generate_into(&layout.proto_root, scratch.path())?;
    let expected = read_dir_files(scratch.path())?;
    let actual = read_dir_files(&layout.out_dir).unwrap_or_default();
    let drift = describe_drift(&expected, &actual);
    if drift.is_empty() {
        println!("generated code is up to date ({} files)", expected.len());
        return Ok(());
    }
    bail!(
        "generated code in {} is stale:\n{}\nrun `{FIX_COMMAND}` and commit the result",
        layout.out_dir.display(),
        drift.join("\n")
    )
}

/// Compiles every contract and writes the Rust modules, `mod.rs` and
/// `descriptor.bin` into `out_dir`. Returns the names of the files written.
fn generate_into(proto_root: &Path, out_dir: &Path) -> Result<Vec<String>> {
    let files = find_protos(proto_root)?;
    if files.is_empty() {
        bail!("no .proto files under {}", proto_root.display());
    }
    let validate_root = crate::protovalidate::materialize(proto_root)?;
    let mut compiler = protox::Compiler::new([proto_root, &validate_root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler
        .open_files(&files)
        .map_err(|err| match err.file() {
            Some(file) => anyhow::anyhow!("{}: {err}", proto_root.join(file).display()),
            None => anyhow::anyhow!("{err}"),
        })
        .context("compiling the contracts")?;
    // Rust only for the contracts: their imports (`buf.validate`, the
    // well-known types) come from crates of their own.
    let mut fds = compiler.file_descriptor_set();
    fds.file.retain(|file| files.contains(&file.name().to_owned()));

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Large payloads (images, chunks) are handed through without copying.
        .bytes(".")
        .out_dir(out_dir)
        .include_file("mod.rs")
        .compile_fds(fds)
        .context("generating Rust from the descriptors")?;
    // compile_fds does not write the descriptor set itself. Encoded by
    // protox, not from `fds`: prost_types drop extension options (such as
    // `buf.validate` rules), and reflection serves these bytes as they are.
    fs::write(out_dir.join("descriptor.bin"), compiler.encode_file_descriptor_set())?;

    Ok(read_dir_files(out_dir)?.into_keys().collect())
}

/// Every `.proto` below `root`, relative to it with `/` separators, sorted so
/// the output never depends on directory iteration order.
fn find_protos(root: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if path.is_dir() {
                if !SKIPPED_DIRS.contains(&name) && !name.starts_with('.') {
                    walk(root, &path, out)?;
                }
            } else if path.extension().is_some_and(|ext| ext == "proto") {
                let relative = path.strip_prefix(root)?;
                let parts: Vec<_> = relative.iter().map(|p| p.to_string_lossy()).collect();
                out.push(parts.join("/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort();
    Ok(out)
}

fn read_dir_files(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.insert(name, fs::read(&path)?);
        }
    }
    Ok(files)
}

/// One line per differing file; text files also get a short unified diff.
fn describe_drift(expected: &BTreeMap<String, Vec<u8>>, actual: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    const MAX_DIFF_LINES: usize = 40;
    let mut lines = Vec::new();
    for (name, want) in expected {
        match actual.get(name) {
            None => lines.push(format!("  missing: {name}")),
            Some(have) if have == want => {}
            Some(have) => {
                lines.push(format!("  changed: {name}"));
                if let (Ok(want), Ok(have)) = (std::str::from_utf8(want), std::str::from_utf8(have)) {
                    let diff = similar::TextDiff::from_lines(have, want);
                    let text = diff.unified_diff().context_radius(1).to_string();
                    let total = text.lines().count();
                    for line in text.lines().take(MAX_DIFF_LINES) {
                        lines.push(format!("    {line}"));
                    }
                    if total > MAX_DIFF_LINES {
                        lines.push(format!("    ... {} more diff lines", total - MAX_DIFF_LINES));
                    }
                }
            }
        }
    }
    for name in actual.keys().filter(|name| !expected.contains_key(*name)) {
        lines.push(format!("  unexpected: {name}"));
    }
    lines
}
