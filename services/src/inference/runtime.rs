//! Finding and loading the ONNX Runtime shared library.
//!
//! `ort` is built with `load-dynamic`, so nothing is linked at build time and a
//! machine without the library still builds and runs every other contract.
//! The library is loaded once per process: ONNX Runtime allows one
//! environment per process, and `ort` cannot retry a failed load, so the
//! first outcome, success or failure, is remembered and handed to every later
//! caller.

use std::{
    ffi::CStr,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use anyhow::{Result, anyhow, bail};
use ort::environment::Environment;

/// Where `cargo xtask onnxruntime` puts the library, relative to the
/// repository root. The release is pinned in `tools/onnxruntime.txt`.
pub const DEFAULT_LIBRARY: &str = "tools/onnxruntime/libonnxruntime.so";

/// A loaded ONNX Runtime.
#[derive(Debug, Clone)]
pub struct Runtime {
    environment: Environment,
    library: PathBuf,
    version: String,
}

impl Runtime {
    /// The library's own version string, e.g. "1.31.1".
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The file it was loaded from.
    pub fn library(&self) -> &Path {
        &self.library
    }

    pub(crate) fn environment(&self) -> &Environment {
        &self.environment
    }
}

/// Which library to load: `explicit` (a flag), else `ORT_DYLIB_PATH`, else the
/// project-local copy `cargo xtask` fetches.
pub fn library_path(explicit: Option<&Path>) -> (PathBuf, &'static str) {
    if let Some(path) = explicit {
        return (path.to_owned(), "--ort-lib");
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|path| !path.is_empty()) {
        return (PathBuf::from(path), "ORT_DYLIB_PATH");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("services/ lives in the repository");
    (root.join(DEFAULT_LIBRARY), "the default location")
}

static LOADED: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

/// Loads ONNX Runtime from [`library_path`], or returns the runtime this
/// process already loaded.
pub(super) fn load(explicit: Option<&Path>) -> Result<Runtime> {
    let (path, source) = library_path(explicit);
    // `ort` panics later on a library it failed to open, so it only ever
    // sees a file that exists; a missing one leaves nothing to remember.
    if !path.is_file() {
        bail!("ONNX Runtime library not found at {} (from {source}): {}", path.display(), fix());
    }
    let outcome = LOADED.get_or_init(|| load_from(&path, source).map_err(|err| format!("{err:#}")));
    match outcome {
        Ok(runtime) if same_file(runtime.library(), &path) => Ok(runtime.clone()),
        Ok(runtime) => bail!(
            "ONNX Runtime is already loaded in this process from {}; it cannot also be loaded from {}",
            runtime.library.display(),
            path.display()
        ),
        Err(message) => Err(anyhow!("{message}")),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

fn fix() -> String {
    format!(
        "run `cargo xtask onnxruntime` to fetch the pinned ONNX Runtime into {DEFAULT_LIBRARY}, \
         or point --ort-lib or ORT_DYLIB_PATH at a libonnxruntime.so of version 1.31 or newer"
    )
}

fn load_from(path: &Path, source: &str) -> Result<Runtime> {
    let fix = fix();
    let version = library_version(path).map_err(|err| {
        anyhow!("{} (from {source}) is not a usable ONNX Runtime library: {err:#}; {fix}", path.display())
    })?;
    let environment = ort::init_from(path)
        .map_err(|err| anyhow!("loading ONNX Runtime from {} (from {source}): {err}; {fix}", path.display()))?
        .with_name("services")
        .with_telemetry(false)
        .build()
        .map_err(|err| anyhow!("creating the ONNX Runtime environment: {err}"))?;
    tracing::info!(library = %path.display(), %version, "loaded ONNX Runtime");
    Ok(Runtime { environment, library: path.to_owned(), version })
}

/// The version the library reports itself: `ort::info()` gives only a build
/// string, which need not contain it.
fn library_version(path: &Path) -> Result<String> {
    // SAFETY: opening ONNX Runtime runs only its (side-effect free) static
    // initialisers; `ort` opens the same file next, sharing this handle.
    let library = unsafe { libloading::Library::new(path) }?;
    // SAFETY: the symbol has this signature in every ONNX Runtime release, and
    // the returned struct and string are static and owned by the library,
    // which stays loaded: `ort` keeps its own handle for the process's life.
    unsafe {
        let get_api_base: libloading::Symbol<'_, unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> =
            library.get(b"OrtGetApiBase\0")?;
        let base = get_api_base();
        if base.is_null() {
            bail!("OrtGetApiBase returned null");
        }
        let version = ((*base).GetVersionString)();
        if version.is_null() {
            bail!("GetVersionString returned null");
        }
        Ok(CStr::from_ptr(version).to_string_lossy().into_owned())
    }
}
