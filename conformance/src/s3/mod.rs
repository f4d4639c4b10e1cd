//! The S3 server behind the upload-integrity suite.
//!
//! The suite never trusts what an uploader says it stored: it reads every
//! object back from S3 and compares length, SHA-256 and CRC32C, and it asks
//! S3 itself whether a multipart upload was left unfinished. So the suite,
//! not the target, owns the S3 server: it starts one (embedded, moto, MinIO)
//! or is told where one is (`--s3-endpoint`), hands it to the target through
//! the standard AWS environment, and reads it with clients of its own.

mod activity;
mod checks;
mod client;
mod embedded;
mod minio;
mod moto;
mod store;

use std::path::PathBuf;

use anyhow::{Result, bail};

pub use checks::Settle;
pub use store::{Store, Stored};

/// S3 servers the suite can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum S3Kind {
    /// s3s-fs in-process, over a temporary folder.
    Embedded,
    /// moto in server mode: a second, independent S3 implementation.
    Moto,
    /// MinIO in a container, through testcontainers; needs Docker.
    Minio,
}

/// Where the suite's S3 comes from, as the command line says.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// The server to start, when `endpoint` is not given.
    pub kind: S3Kind,
    /// An S3 server someone else runs; credentials and region come from the
    /// AWS environment.
    pub endpoint: Option<String>,
    /// The bucket uploads go to.
    pub bucket: String,
    /// The `moto_server` program.
    pub moto_server: PathBuf,
}

/// The S3 server of a run, or why there is none.
#[derive(Debug)]
pub enum Availability {
    /// Ready to be read back from.
    Ready(Box<Store>),
    /// The upload-integrity cases report this reason and are skipped.
    Unavailable(String),
}

/// Whether this build can start MinIO (cargo feature `minio`).
pub const HAS_MINIO: bool = cfg!(feature = "minio");

/// Fails unless `endpoint` looks like an S3 URL, before anything starts.
pub fn validate_endpoint(endpoint: &str) -> Result<()> {
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        bail!("--s3-endpoint must be an http:// or https:// URL, not {endpoint:?}");
    }
    Ok(())
}
