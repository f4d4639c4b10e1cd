//! `services upload`: seed 001's client. Streams a local file to
//! `uploader.FileUploader` and checks the server's digest against its own.

use std::{path::PathBuf, time::Instant};

use anyhow::{Context, Result, bail};
use contracts::uploader::{UploadRequest, file_uploader_client::FileUploaderClient};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio::{io::AsyncReadExt, sync::oneshot};

/// What to upload, and where.
#[derive(Debug, clap::Args)]
pub(crate) struct UploadArgs {
    /// The file to upload.
    file: PathBuf,
    /// Server to upload to.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Object key; the file's name by default.
    #[arg(long)]
    key: Option<String>,
    /// Bytes per message, e.g. `1MiB`.
    #[arg(long, default_value = "1MiB", value_parser = crate::parse_size)]
    chunk_size: usize,
    /// Hash the file before sending and let the server refuse to store it
    /// (DATA_LOSS) if what arrives differs. Reads the file twice.
    #[arg(long)]
    verify_first: bool,
}

pub(crate) async fn run(args: UploadArgs) -> Result<()> {
    let key = match &args.key {
        Some(key) => key.clone(),
        None => args
            .file
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("{} has no usable file name; pass --key", args.file.display()))?
            .to_owned(),
    };
    let size = tokio::fs::metadata(&args.file)
        .await
        .with_context(|| format!("reading {}", args.file.display()))?
        .len();
    let expected_sha256 =
        if args.verify_first { Some(hex::encode(hash_file(&args.file).await?)) } else { None };

    let channel = tonic::transport::Endpoint::from_shared(args.server.clone())
        .with_context(|| format!("{:?} is not a URL", args.server))?
        .connect()
        .await
        .with_context(|| format!("connecting to {}", args.server))?;
    let mut client = FileUploaderClient::new(channel);

    let progress = ProgressBar::new(size).with_style(
        ProgressStyle::with_template(
            "{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .expect("the template is valid"),
    );
    let (sent, sent_rx) = tokio::sync::oneshot::channel();
    let (failed, failed_rx) = tokio::sync::oneshot::channel();
    let reader = Reader { path: args.file.clone(), chunk_size: args.chunk_size, progress: progress.clone() };
    let chunks = reader.chunks(key, expected_sha256, sent, failed);
    let started = Instant::now();
    // A read error must cancel the call: ending the stream would tell the
    // server the file is complete, and it would store a truncated copy.
    let response = tokio::select! {
        response = client.upload(chunks) => response,
        Ok(err) = failed_rx => {
            progress.abandon();
            return Err(err.context("upload cancelled, nothing was stored"));
        }
    };
    progress.finish_and_clear();
    let response = response
        .map_err(|status| {
            anyhow::anyhow!("the server refused the upload: {:?}: {}", status.code(), status.message())
        })?
        .into_inner();
    let local: ([u8; 32], u64) =
        sent_rx.await.context("the file reader stopped before the end of the file")?;

    println!("{}", response.message);
    println!(
        "key {}  size {}  sha256 {}  crc32c {:08x}  etag {}  in {:.1}s",
        response.key,
        response.size,
        response.sha256_hex,
        response.crc32c,
        response.etag,
        started.elapsed().as_secs_f64()
    );
    if !response.success {
        bail!("the server answered success=false");
    }
    if response.sha256_hex != hex::encode(local.0) || response.size != local.1 {
        bail!(
            "the server stored something else: it reports {} bytes with SHA-256 {}, the file has {} bytes with SHA-256 {}",
            response.size,
            response.sha256_hex,
            local.1,
            hex::encode(local.0)
        );
    }
    Ok(())
}

/// Reads the file into upload messages as the transport asks for them, so
/// memory stays at a few chunks whatever the file size.
struct Reader {
    path: PathBuf,
    chunk_size: usize,
    progress: ProgressBar,
}

impl Reader {
    /// The messages. Once the file has ended, `sent` gets the SHA-256 and
    /// length of what was sent; if reading fails, `failed` gets why, and the
    /// stream stays open so that the caller can cancel the call.
    fn chunks(
        self,
        key: String,
        expected_sha256: Option<String>,
        sent: oneshot::Sender<([u8; 32], u64)>,
        failed: oneshot::Sender<anyhow::Error>,
    ) -> impl futures_util::Stream<Item = UploadRequest> {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            let outcome = async {
                let mut file = tokio::fs::File::open(&self.path)
                    .await
                    .with_context(|| format!("opening {}", self.path.display()))?;
                let (mut hasher, mut total, mut first) = (Sha256::new(), 0u64, true);
                loop {
                    let chunk = self.read_chunk(&mut file).await?;
                    // An empty file still sends one message: it names the file.
                    if chunk.is_empty() && !first {
                        break;
                    }
                    let last = chunk.len() < self.chunk_size;
                    hasher.update(&chunk);
                    total += chunk.len() as u64;
                    self.progress.inc(chunk.len() as u64);
                    let message = UploadRequest {
                        filename: if first { key.clone() } else { String::new() },
                        chunk: chunk.into(),
                        expected_sha256: if first { expected_sha256.clone() } else { None },
                    };
                    first = false;
                    if tx.send(message).await.is_err() {
                        bail!("the upload ended before the file was sent");
                    }
                    if last {
                        break;
                    }
                }
                Ok((hasher.finalize().into(), total))
            }
            .await;
            match outcome {
                Ok(digest) => {
                    let _ = sent.send(digest);
                }
                Err(err) => {
                    let _ = failed.send(err);
                    tx.closed().await;
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }

    /// Up to `chunk_size` bytes; fewer only at the end of the file.
    async fn read_chunk(&self, file: &mut tokio::fs::File) -> Result<Vec<u8>> {
        let mut chunk = vec![0u8; self.chunk_size];
        let mut filled = 0;
        while filled < self.chunk_size {
            let read = file
                .read(&mut chunk[filled..])
                .await
                .with_context(|| format!("reading {}", self.path.display()))?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        chunk.truncate(filled);
        Ok(chunk)
    }
}

async fn hash_file(path: &std::path::Path) -> Result<[u8; 32]> {
    let mut file =
        tokio::fs::File::open(path).await.with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buffer[..read]);
    }
}
