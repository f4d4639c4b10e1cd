//! The suite's default S3 server: s3s over a temporary folder, in this
//! process, with real SigV4 authentication, on a free loopback port.
//!
//! s3s-fs 0.14 keeps an object's checksums beside it and, on
//! CompleteMultipartUpload, updates only the ETag: an object uploaded in
//! parts over one that was put whole is served with the old object's
//! checksums. The suite does not patch the server for it. It reads without
//! response-checksum validation (see `client.rs`) and judges every byte by
//! its own SHA-256 and CRC32C, which no stored checksum can vouch for.

use std::path::PathBuf;

use anyhow::{Context as _, Result, anyhow};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::{net::TcpListener, task::JoinHandle};

use super::activity::Activity;

/// The keys handed to the target.
pub(super) const TARGET_KEYS: (&str, &str) = ("conformance-target", "conformance-target-secret");
/// The suite's own keys: its reads are not the target's activity.
pub(super) const SUITE_KEYS: (&str, &str) = ("conformance-suite", "conformance-suite-secret");

/// Stops serving, and deletes its folder, when dropped.
#[derive(Debug)]
pub(super) struct Embedded {
    endpoint: String,
    data_dir: tempfile::TempDir,
    task: JoinHandle<()>,
}

impl Embedded {
    /// Serves a fresh temporary folder, noting in `activity` every request
    /// the target makes for a key, as it arrives and as it is answered.
    pub(super) async fn start(activity: Activity) -> Result<Embedded> {
        let data_dir = tempfile::Builder::new().prefix("conformance-s3-").tempdir()?;
        let fs = s3s_fs::FileSystem::new(data_dir.path())
            .map_err(|err| anyhow!("opening {}: {err:?}", data_dir.path().display()))?;
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        let mut auth = s3s::auth::SimpleAuth::from_single(TARGET_KEYS.0, TARGET_KEYS.1);
        auth.register(SUITE_KEYS.0.to_owned(), SUITE_KEYS.1.into());
        builder.set_auth(auth);
        let service = builder.build();

        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the embedded S3 server")?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (service, activity) = (service.clone(), activity.clone());
                let service =
                    hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                        let (service, activity) = (service.clone(), activity.clone());
                        async move {
                            let path = by_target(&request).then(|| request.uri().path().to_owned());
                            if let Some(path) = &path {
                                activity.record(path);
                            }
                            let response = hyper::service::Service::call(&service, request).await;
                            if let Some(path) = &path {
                                activity.record(path);
                            }
                            response
                        }
                    });
                tokio::spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Embedded { endpoint, data_dir, task })
    }

    /// `http://127.0.0.1:PORT`.
    pub(super) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The folder holding the buckets.
    pub(super) fn data_dir(&self) -> PathBuf {
        self.data_dir.path().to_owned()
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether the target signed `request` (SigV4 names the access key in
/// `Authorization: ... Credential=KEY/...`).
fn by_target<B>(request: &hyper::Request<B>) -> bool {
    let credential = format!("Credential={}/", TARGET_KEYS.0);
    request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains(&credential))
}

/// Longest key s3s-fs can store in `bucket`. It keeps each object's
/// metadata in a file named after the base64 of bucket and key (plus an
/// upload id during a multipart upload), and file names stop at 255 bytes:
/// `.bucket-B.object-K.upload-UUID.metadata.json`.
pub(super) fn max_key_bytes(bucket: &str) -> usize {
    const NAME_MAX: usize = 255;
    let fixed = ".bucket-".len() + ".object-".len() + ".upload-".len() + 36 + ".metadata.json".len();
    let base64_len = |bytes: usize| (bytes * 4).div_ceil(3);
    NAME_MAX.saturating_sub(fixed + base64_len(bucket.len())) * 3 / 4
}

/// Whether `name`, a file in the server's folder, is an unfinished
/// multipart upload: s3s-fs keeps one `.upload-<id>.json` per upload,
/// removed on completion and on abort.
pub(super) fn unfinished_upload_id(name: &str) -> Option<&str> {
    name.strip_prefix(".upload-").and_then(|rest| rest.strip_suffix(".json"))
}
