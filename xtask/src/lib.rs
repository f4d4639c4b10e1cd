//! Library half of `cargo xtask`, split out so its behaviour can be tested
//! through a public API rather than by spawning the binary.

use std::path::{Path, PathBuf};

pub mod codegen;
pub mod run;
pub mod tools;

/// The workspace root, found from this crate's manifest so that xtask works
/// from any current directory.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
