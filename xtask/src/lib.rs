//! Library half of `cargo xtask`, split out so its behaviour can be tested
//! through a public API rather than by spawning the binary.

use std::path::{Path, PathBuf};

pub mod ci_files;
pub mod codegen;
pub mod fuzz;
pub mod go;
pub mod protovalidate;
pub mod run;
pub mod tools;

/// A command xtask ran failed and has already said why; xtask exits with
/// its status and adds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed(pub u8);

impl From<std::process::ExitStatus> for Failed {
    fn from(status: std::process::ExitStatus) -> Self {
        // A command killed by a signal has no code: report plain failure.
        Failed(status.code().and_then(|code| u8::try_from(code).ok()).filter(|&code| code != 0).unwrap_or(1))
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a command failed with exit status {}", self.0)
    }
}

impl std::error::Error for Failed {}

/// Announces a step of a long command, so a first run that downloads and
/// builds for minutes says what it is doing.
pub fn step(what: &str) {
    eprintln!("\n==> {what}");
}

/// The workspace root, found from this crate's manifest so that xtask works
/// from any current directory.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
