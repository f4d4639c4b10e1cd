//! An S3-compatible server in the same process: s3s over a folder, with real
//! SigV4 authentication, on a free loopback port.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::{net::TcpListener, task::JoinHandle};

const ACCESS_KEY: &str = "embedded-access-key";
const SECRET_KEY: &str = "embedded-secret-key";

/// Stops serving when dropped.
#[derive(Debug)]
pub struct EmbeddedS3 {
    endpoint: String,
    data_dir: PathBuf,
    task: JoinHandle<()>,
    /// Set when the folder is ours to delete.
    _temp: Option<tempfile::TempDir>,
}

impl EmbeddedS3 {
    /// Serves `data_dir` (created if missing), or a fresh temporary folder.
    pub async fn start(data_dir: Option<PathBuf>) -> Result<EmbeddedS3> {
        let (data_dir, temp) = match data_dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::Builder::new().prefix("embedded-s3-").tempdir()?;
                (temp.path().to_owned(), Some(temp))
            }
        };
        // s3s-fs canonicalizes its root, so it must exist first.
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let fs = s3s_fs::FileSystem::new(&data_dir)
            .map_err(|err| anyhow!("opening {}: {err:?}", data_dir.display()))?;
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();

        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the embedded S3 server")?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let root = fs_root(&data_dir)?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (service, root) = (service.clone(), root.clone());
                let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                    let (service, root) = (service.clone(), root.clone());
                    async move {
                        if let Some(stale) = checksums_replaced_by(&root, &request) {
                            let _ = tokio::fs::remove_file(stale).await;
                        }
                        hyper::service::Service::call(&service, request).await
                    }
                });
                tokio::spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(EmbeddedS3 { endpoint, data_dir, task, _temp: temp })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The folder holding the buckets.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The access key and secret this server accepts.
    pub fn credentials(&self) -> (&'static str, &'static str) {
        (ACCESS_KEY, SECRET_KEY)
    }

    /// Longest key this server can store in `bucket` (see [`max_key_bytes`]).
    pub fn max_key_bytes(bucket: &str) -> usize {
        max_key_bytes(bucket)
    }

    /// A client with this server's credentials.
    pub fn client(&self) -> aws_sdk_s3::Client {
        super::static_client(&self.endpoint, ACCESS_KEY, SECRET_KEY)
    }
}

/// s3s-fs 0.14 keeps an object's checksums in `.bucket-B.object-K.internal.json`
/// and rewrites that file on PutObject, but CompleteMultipartUpload only
/// updates the ETag in it. An object uploaded in parts over one that was
/// put whole would be served with the old object's checksums, and every
/// checked read of it would fail. So before a CompleteMultipartUpload
/// (`POST /bucket/key?uploadId=...`), the file goes: the old object is then
/// served without checksums for a moment, which readers accept.
fn checksums_replaced_by(root: &Path, request: &hyper::Request<Incoming>) -> Option<PathBuf> {
    use base64::Engine as _;
    if request.method() != hyper::Method::POST || !request.uri().query()?.contains("uploadId=") {
        return None;
    }
    let path = request.uri().path().strip_prefix('/')?;
    let (bucket, key) = path.split_once('/')?;
    let decode =
        |text: &str| percent_encoding::percent_decode_str(text).decode_utf8().ok().map(|s| s.into_owned());
    let encode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
    let (bucket, key) = (decode(bucket)?, decode(key)?);
    Some(root.join(format!(".bucket-{}.object-{}.internal.json", encode(&bucket), encode(&key))))
}

/// The folder as s3s-fs resolves it.
fn fs_root(data_dir: &Path) -> Result<PathBuf> {
    data_dir.canonicalize().with_context(|| format!("resolving {}", data_dir.display()))
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

impl Drop for EmbeddedS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}
