//! `uploader.FileUploader`: streams a file into S3 (seed 001).

use std::sync::Arc;

use contracts::uploader::{
    UploadRequest, UploadResponse,
    file_uploader_server::{self, FileUploaderServer},
};
use tokio::sync::OnceCell;
use tonic::{Request, Response, Status, Streaming};

use crate::s3::{Bucket, ObjectWriter, S3Config};

/// Longest key S3 accepts, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// Connects to S3 on the first upload, so a server whose S3 is down still
/// starts and serves every other contract; uploads then fail with
/// UNAVAILABLE until S3 answers.
#[derive(Debug, Clone)]
pub struct FileUploader {
    config: S3Config,
    bucket: Arc<OnceCell<Bucket>>,
}

impl FileUploader {
    /// An uploader storing into the bucket `config` describes.
    pub fn new(config: S3Config) -> Self {
        FileUploader { config, bucket: Arc::new(OnceCell::new()) }
    }

    /// Connects now instead of on the first upload (the server does this at
    /// start-up, to log where uploads go).
    pub async fn connect(&self) -> anyhow::Result<()> {
        self.bucket().await.map(|_| ()).map_err(|status| anyhow::anyhow!("{}", status.message()))
    }

    /// The generated server around this implementation.
    pub fn server(self) -> FileUploaderServer<Self> {
        FileUploaderServer::new(self)
    }

    async fn bucket(&self) -> Result<&Bucket, Status> {
        self.bucket
            .get_or_try_init(|| async {
                Bucket::connect(&self.config)
                    .await
                    .map_err(|err| Status::unavailable(format!("cannot reach S3: {err:#}")))
            })
            .await
    }
}

#[tonic::async_trait]
impl file_uploader_server::FileUploader for FileUploader {
    async fn upload(
        &self,
        request: Request<Streaming<UploadRequest>>,
    ) -> Result<Response<UploadResponse>, Status> {
        let mut messages = request.into_inner();
        let first = messages.message().await?.ok_or_else(|| {
            Status::invalid_argument("the stream is empty: the first message must name the file")
        })?;
        validate_key(&first.filename)?;
        let expected_sha256 = first.expected_sha256.as_deref().map(parse_sha256).transpose()?;
        let key = first.filename;
        let bucket = self.bucket().await?.clone();
        if let Some(max) = bucket.max_key_bytes
            && key.len() > max
        {
            return Err(Status::invalid_argument(format!(
                "the file name is {} bytes long; the embedded S3 server (s3s-fs) stores names of at most {max} \
                 bytes. Set AWS_ENDPOINT_URL to store into a real S3, which takes up to {MAX_KEY_BYTES}.",
                key.len()
            )));
        }

        let mut writer = ObjectWriter::new(bucket, key.clone());
        let outcome = async {
            writer.write(&first.chunk).await?;
            while let Some(message) = messages.message().await? {
                if !message.filename.is_empty() && message.filename != key {
                    return Err(Status::invalid_argument(format!(
                        "the file was named {}, but a later message names {}",
                        shown(&key),
                        shown(&message.filename)
                    )));
                }
                writer.write(&message.chunk).await?;
            }
            writer.finish(expected_sha256).await
        }
        .await;
        let finished = match outcome {
            Ok(finished) => finished,
            Err(status) => {
                writer.abort().await;
                return Err(status);
            }
        };
        let sha256_hex = hex::encode(finished.sha256);
        Ok(Response::new(UploadResponse {
            message: format!("Stored {key:?}: {} bytes, SHA-256 {sha256_hex}.", finished.size),
            success: true,
            key,
            size: finished.size,
            sha256_hex,
            crc32c: finished.crc32c,
            etag: finished.etag,
        }))
    }
}

/// Object keys of files, as the contract restricts them.
pub fn validate_key(key: &str) -> Result<(), Status> {
    let problem = if key.is_empty() {
        Some("is empty: the first message must name the file".to_owned())
    } else if key.len() > MAX_KEY_BYTES {
        Some(format!("is {} bytes long; at most {MAX_KEY_BYTES} are allowed", key.len()))
    } else if key.starts_with('/') {
        Some("starts with '/'".to_owned())
    } else if key.ends_with('/') {
        Some("ends with '/', which names a folder, not a file".to_owned())
    } else if let Some(segment) = key.split('/').find(|segment| matches!(*segment, "" | "." | "..")) {
        Some(format!("has a {segment:?} path segment"))
    } else {
        key.chars().find(|c| c.is_control()).map(|c| format!("contains the control character {c:?}"))
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(Status::invalid_argument(format!("the file name {} {problem}", shown(key)))),
    }
}

/// A name as an error message quotes it: at most 64 chars of it. A status
/// message travels in an HTTP/2 header, and one that echoed a name of any
/// length could outgrow the client's header limit, turning a clean
/// INVALID_ARGUMENT into a broken stream.
fn shown(name: &str) -> String {
    const SHOWN: usize = 64;
    match name.char_indices().nth(SHOWN) {
        None => format!("{name:?}"),
        Some((cut, _)) => format!("{:?}... ({} bytes)", &name[..cut], name.len()),
    }
}

/// The contract's form only: `hex` alone would take upper case too, which
/// another implementation may rightly refuse.
fn parse_sha256(hex_digest: &str) -> Result<[u8; 32], Status> {
    let refused = || {
        Status::invalid_argument(format!(
            "expected_sha256 {} is not 64 lowercase hexadecimal characters",
            shown(hex_digest)
        ))
    };
    if !hex_digest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(refused());
    }
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut digest).map_err(|_| refused())?;
    Ok(digest)
}
