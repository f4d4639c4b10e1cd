//! An S3-compatible server in the same process: s3s over a folder, with real
//! SigV4 authentication, on a free loopback port.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
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
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let service = service.clone();
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

    /// A client with this server's credentials.
    pub fn client(&self) -> aws_sdk_s3::Client {
        super::static_client(&self.endpoint, ACCESS_KEY, SECRET_KEY)
    }
}

impl Drop for EmbeddedS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}
