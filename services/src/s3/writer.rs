//! Streams one object into the bucket as its bytes arrive.
//!
//! Bytes are hashed (SHA-256, CRC32C) on arrival and buffered up to one part.
//! A file that never fills a part is stored with one PutObject when it ends;
//! a larger one becomes a multipart upload with at most `parts_in_flight`
//! parts being sent at once, so memory stays bounded whatever the file size.
//! Every PutObject and UploadPart carries its CRC32C, so an S3 server that
//! checks it rejects bytes corrupted in transit.
//!
//! The writer owns the multipart upload: unless `finish` completes it, it is
//! aborted when the writer is dropped, on an error, a cancelled call or a
//! passed deadline alike, so a failure never leaves an unfinished upload.

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use tonic::Status;

use super::{Bucket, status};
use aws_sdk_s3::{
    primitives::ByteStream,
    types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart},
};

/// What a successful upload stored.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub(crate) size: u64,
    pub(crate) sha256: [u8; 32],
    pub(crate) crc32c: u32,
    pub(crate) etag: String,
}

#[derive(Debug)]
pub(crate) struct ObjectWriter {
    bucket: Bucket,
    key: String,
    buffer: BytesMut,
    size: u64,
    sha256: Sha256,
    crc32c: u32,
    multipart: Option<Multipart>,
}

#[derive(Debug)]
struct Multipart {
    upload_id: String,
    next_part: i32,
    in_flight: JoinSet<Result<CompletedPart, Status>>,
    done: Vec<CompletedPart>,
}

impl ObjectWriter {
    pub(crate) fn new(bucket: Bucket, key: String) -> Self {
        ObjectWriter {
            bucket,
            key,
            buffer: BytesMut::new(),
            size: 0,
            sha256: Sha256::new(),
            crc32c: 0,
            multipart: None,
        }
    }

    /// Takes the next bytes of the file.
    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<(), Status> {
        self.sha256.update(chunk);
        self.crc32c = crc32c::crc32c_append(self.crc32c, chunk);
        self.size += chunk.len() as u64;
        // Each part gets one allocation of exactly the part size: a buffer
        // left to grow would double its capacity past it, and memory per
        // upload is what bounds the server's. (Pages never written, as in
        // a small file's buffer, are never resident.)
        let part_size = self.bucket.part_size;
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.buffer.capacity() == 0 {
                self.buffer = BytesMut::with_capacity(part_size);
            }
            let take = rest.len().min(part_size - self.buffer.len());
            self.buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buffer.len() == part_size {
                let part = std::mem::take(&mut self.buffer).freeze();
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    /// Aborts an unfinished multipart upload and waits until S3 has done so,
    /// so that a client told about a failure finds nothing left behind.
    pub(crate) async fn abort(&mut self) {
        // In a task of its own: the call may be dropped while it waits (the
        // client went away, which is often why there is an abort at all),
        // and the abort must still reach S3.
        if let Some(aborting) = self.start_abort() {
            let _ = tokio::spawn(aborting).await;
        }
    }

    /// Stops the part uploads and returns the AbortMultipartUpload request as
    /// an owned future, for `abort` to await and `Drop` to spawn.
    fn start_abort(&mut self) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let mut multipart = self.multipart.take()?;
        multipart.in_flight.abort_all();
        let request = self
            .bucket
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket.name)
            .key(&self.key)
            .upload_id(&multipart.upload_id);
        let key = self.key.clone();
        Some(async move {
            if let Err(err) = request.send().await {
                tracing::warn!(%key, upload_id = %multipart.upload_id, error = %err, "could not abort a multipart upload");
            }
        })
    }

    /// Stores the object, unless `expected_sha256` says the bytes are not the
    /// ones the client meant to send: then nothing is stored.
    pub(crate) async fn finish(&mut self, expected_sha256: Option<[u8; 32]>) -> Result<Finished, Status> {
        let sha256: [u8; 32] = self.sha256.clone().finalize().into();
        if let Some(expected) = expected_sha256
            && expected != sha256
        {
            return Err(Status::data_loss(format!(
                "the received bytes have SHA-256 {}, not the expected {}; nothing was stored",
                hex::encode(sha256),
                hex::encode(expected)
            )));
        }
        let etag = if self.multipart.is_none() {
            self.put_whole().await?
        } else {
            if !self.buffer.is_empty() {
                let last = self.buffer.split().freeze();
                self.send_part(last).await?;
            }
            self.complete().await?
        };
        Ok(Finished { size: self.size, sha256, crc32c: self.crc32c, etag })
    }

    async fn put_whole(&mut self) -> Result<String, Status> {
        // The whole file is the buffer, so its running CRC32C is the body's.
        let body = self.buffer.split().freeze();
        let _commit = self.bucket.commits.lock(&self.key).await;
        let output = self
            .bucket
            .client
            .put_object()
            .bucket(&self.bucket.name)
            .key(&self.key)
            .checksum_crc32_c(crc32c_base64(self.crc32c))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|err| status("PutObject", err))?;
        Ok(output.e_tag.unwrap_or_default())
    }

    /// Starts the multipart upload in a task of its own. A call cancelled
    /// while S3 creates the upload drops this future before the upload id
    /// is known, and nothing could abort it; the task aborts it instead.
    async fn create_upload(&self) -> Result<String, Status> {
        let create = self
            .bucket
            .client
            .create_multipart_upload()
            .bucket(&self.bucket.name)
            .key(&self.key)
            .checksum_algorithm(ChecksumAlgorithm::Crc32C);
        let abort = self.bucket.client.abort_multipart_upload().bucket(&self.bucket.name).key(&self.key);
        let (created, answer) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let upload_id =
                create.send().await.map_err(|err| status("CreateMultipartUpload", err)).and_then(|created| {
                    created.upload_id.ok_or_else(|| {
                        Status::internal("S3 answered CreateMultipartUpload without an upload id")
                    })
                });
            if let Err(Ok(abandoned)) = created.send(upload_id)
                && let Err(err) = abort.upload_id(&abandoned).send().await
            {
                tracing::warn!(upload_id = %abandoned, error = %err, "could not abort an abandoned multipart upload");
            }
        });
        answer.await.map_err(|_| Status::internal("the task creating the multipart upload failed"))?
    }

    async fn send_part(&mut self, part: Bytes) -> Result<(), Status> {
        if self.multipart.is_none() {
            let upload_id = self.create_upload().await?;
            self.multipart =
                Some(Multipart { upload_id, next_part: 1, in_flight: JoinSet::new(), done: Vec::new() });
        }
        let multipart = self.multipart.as_mut().expect("just created");
        // Bounded: wait for a slot before buffering another part in flight.
        while multipart.in_flight.len() >= self.bucket.parts_in_flight {
            let finished = multipart.in_flight.join_next().await.expect("not empty");
            multipart.done.push(joined(finished)?);
        }
        let number = multipart.next_part;
        multipart.next_part += 1;
        // Once per part: S3 needs it on the UploadPart and again on the
        // CompleteMultipartUpload.
        let checksum = crc32c_base64(crc32c::crc32c(&part));
        let request = self
            .bucket
            .client
            .upload_part()
            .bucket(&self.bucket.name)
            .key(&self.key)
            .upload_id(&multipart.upload_id)
            .part_number(number)
            .checksum_crc32_c(checksum.clone())
            .body(ByteStream::from(part));
        multipart.in_flight.spawn(async move {
            let output = request.send().await.map_err(|err| status("UploadPart", err))?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(output.e_tag)
                .checksum_crc32_c(checksum)
                .build())
        });
        Ok(())
    }

    async fn complete(&mut self) -> Result<String, Status> {
        let multipart = self.multipart.as_mut().expect("multipart upload started");
        while let Some(finished) = multipart.in_flight.join_next().await {
            multipart.done.push(joined(finished)?);
        }
        let mut parts = std::mem::take(&mut multipart.done);
        parts.sort_by_key(|part| part.part_number);
        let upload_id = multipart.upload_id.clone();
        let _commit = self.bucket.commits.lock(&self.key).await;
        let output = self
            .bucket
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket.name)
            .key(&self.key)
            .upload_id(&upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|err| status("CompleteMultipartUpload", err))?;
        // Completed: nothing left for Drop to abort.
        self.multipart = None;
        Ok(output.e_tag.unwrap_or_default())
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        let Some(aborting) = self.start_abort() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(aborting)),
            Err(_) => tracing::warn!(key = %self.key, "no runtime to abort an unfinished multipart upload"),
        }
    }
}

fn joined(
    result: Result<Result<CompletedPart, Status>, tokio::task::JoinError>,
) -> Result<CompletedPart, Status> {
    result.map_err(|err| Status::internal(format!("a part upload task failed: {err}")))?
}

/// S3 wants checksums as base64 of the big-endian value.
fn crc32c_base64(crc32c: u32) -> String {
    BASE64.encode(crc32c.to_be_bytes())
}
