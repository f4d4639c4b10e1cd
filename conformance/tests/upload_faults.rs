//! Uploaders with one careless shortcut each: the upload suite must catch
//! every one, whatever the uploader's own timing.

mod support;

use std::time::Duration;

use aws_sdk_s3::{primitives::ByteStream, types::CompletedMultipartUpload, types::CompletedPart};
use conformance::report::Failure;
use contracts::uploader::{UploadRequest, UploadResponse, file_uploader_server};
use tonic::{Request, Response, Status, Streaming};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shortcut {
    /// Stores whatever arrived when the client goes away, as a worker that
    /// outlives its call would: the partial object appears a moment after
    /// the call ends.
    StoresWhatArrived,
    /// Never compares `expected_sha256`.
    IgnoresExpectedSha256,
    /// Compares `expected_sha256` without regard to case.
    TakesUpperCaseSha256,
    /// Lets later messages name another file.
    IgnoresRenames,
    /// Demands a bearer token, but looks at it only once the file is
    /// stored, as a check placed after the work instead of before it.
    ChecksTokenAfterStoring,
}

const TOKEN: &str = "upload-token";

/// Buffers the whole file, then one PutObject: fine for small files, and
/// correct except for its one shortcut.
struct NaiveUploader {
    shortcut: Shortcut,
    s3: aws_sdk_s3::Client,
}

async fn put(s3: &aws_sdk_s3::Client, key: &str, data: Vec<u8>) -> Result<(), Status> {
    s3.put_object()
        .bucket("uploads")
        .key(key)
        .body(data.into())
        .send()
        .await
        .map(|_| ())
        .map_err(|err| Status::unavailable(err.to_string()))
}

/// What a [`NaiveUploader`] has received, stored 100 ms after the call is
/// dropped unless disarmed: the server's runtime drops a handler whose
/// client went away, and a sloppy one leaves work behind that way.
struct Leftover {
    key: String,
    data: Vec<u8>,
    s3: Option<aws_sdk_s3::Client>,
}

impl Drop for Leftover {
    fn drop(&mut self) {
        if let Some(s3) = self.s3.take() {
            let (key, data) = (std::mem::take(&mut self.key), std::mem::take(&mut self.data));
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = put(&s3, &key, data).await;
            });
        }
    }
}

fn valid(key: &str) -> bool {
    !(key.is_empty()
        || key.starts_with('/')
        || key.split('/').any(|s| s == "..")
        || key.len() > 1024
        || key.chars().any(char::is_control))
}

#[tonic::async_trait]
impl file_uploader_server::FileUploader for NaiveUploader {
    async fn upload(
        &self,
        request: Request<Streaming<UploadRequest>>,
    ) -> Result<Response<UploadResponse>, Status> {
        use sha2::Digest;
        let authorized =
            request.metadata().get("authorization").is_some_and(|v| v == &format!("Bearer {TOKEN}"));
        let mut messages = request.into_inner();
        let first = messages.message().await?.ok_or_else(|| Status::invalid_argument("empty stream"))?;
        let key = first.filename.clone();
        if !valid(&key) {
            return Err(Status::invalid_argument("bad name"));
        }
        let armed = (self.shortcut == Shortcut::StoresWhatArrived).then(|| self.s3.clone());
        let mut leftover = Leftover { key: key.clone(), data: first.chunk.to_vec(), s3: armed };
        while let Some(message) = messages.message().await? {
            if !message.filename.is_empty()
                && message.filename != key
                && self.shortcut != Shortcut::IgnoresRenames
            {
                leftover.s3 = None;
                return Err(Status::invalid_argument("renamed"));
            }
            leftover.data.extend_from_slice(&message.chunk);
        }
        leftover.s3 = None;
        let data = std::mem::take(&mut leftover.data);
        let sha256_hex = hex::encode(sha2::Sha256::digest(&data));
        if let Some(mut expected) = first.expected_sha256 {
            if self.shortcut == Shortcut::TakesUpperCaseSha256 {
                expected.make_ascii_lowercase();
            }
            if expected.len() != 64 || !expected.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(Status::invalid_argument("malformed expected_sha256"));
            }
            if expected != sha256_hex && self.shortcut != Shortcut::IgnoresExpectedSha256 {
                return Err(Status::data_loss("mismatch"));
            }
        }
        let (size, crc32c) = (data.len() as u64, crc32c::crc32c(&data));
        if self.shortcut == Shortcut::StoresWhatArrived {
            // A worker that outlives its call: a client that goes away as
            // the stream ends still gets what arrived stored.
            let (s3, key) = (self.s3.clone(), key.clone());
            tokio::spawn(async move { put(&s3, &key, data).await })
                .await
                .map_err(|err| Status::internal(err.to_string()))??;
        } else {
            put(&self.s3, &key, data).await?;
        }
        if self.shortcut == Shortcut::ChecksTokenAfterStoring && !authorized {
            return Err(Status::unauthenticated("no valid token"));
        }
        Ok(Response::new(UploadResponse {
            message: "stored".into(),
            success: true,
            key,
            size,
            sha256_hex,
            crc32c,
            etag: String::new(),
        }))
    }
}

/// Streams into a multipart upload, but starts it only once two minimum
/// parts (10 MiB) have arrived, and never aborts it when the client goes
/// away. Cancelling it early finds nothing to clean up; only a fault timed
/// by what S3 sees lands on the upload it leaks.
struct LateMultipartUploader {
    s3: aws_sdk_s3::Client,
}

const PART: usize = 5 * 1024 * 1024;

#[tonic::async_trait]
impl file_uploader_server::FileUploader for LateMultipartUploader {
    async fn upload(
        &self,
        request: Request<Streaming<UploadRequest>>,
    ) -> Result<Response<UploadResponse>, Status> {
        let failed = |err: &dyn std::fmt::Display| Status::unavailable(err.to_string());
        let mut messages = request.into_inner();
        let first = messages.message().await?.ok_or_else(|| Status::invalid_argument("empty stream"))?;
        let key = first.filename.clone();
        if !valid(&key) {
            return Err(Status::invalid_argument("bad name"));
        }
        let (mut buffer, mut size) = (first.chunk.to_vec(), first.chunk.len() as u64);
        let mut upload: Option<(String, Vec<CompletedPart>)> = None;
        loop {
            let message = messages.message().await?;
            if let Some(message) = &message {
                if !message.filename.is_empty() && message.filename != key {
                    return Err(Status::invalid_argument("renamed"));
                }
                buffer.extend_from_slice(&message.chunk);
                size += message.chunk.len() as u64;
            }
            if upload.is_none() && buffer.len() >= 2 * PART {
                let created = self.s3.create_multipart_upload().bucket("uploads").key(&key).send().await;
                let id = created.map_err(|err| failed(&err))?.upload_id().unwrap_or_default().to_owned();
                upload = Some((id, Vec::new()));
            }
            if let Some((id, parts)) = &mut upload {
                while buffer.len() >= PART || (message.is_none() && !buffer.is_empty()) {
                    let body: Vec<u8> = buffer.drain(..buffer.len().min(PART)).collect();
                    let number = parts.len() as i32 + 1;
                    let uploaded = self
                        .s3
                        .upload_part()
                        .bucket("uploads")
                        .key(&key)
                        .upload_id(id.as_str())
                        .part_number(number)
                        .body(ByteStream::from(body))
                        .send()
                        .await
                        .map_err(|err| failed(&err))?;
                    parts
                        .push(CompletedPart::builder().part_number(number).set_e_tag(uploaded.e_tag).build());
                }
            }
            if message.is_none() {
                break;
            }
        }
        match upload {
            Some((id, parts)) => {
                let parts = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
                self.s3
                    .complete_multipart_upload()
                    .bucket("uploads")
                    .key(&key)
                    .upload_id(id)
                    .multipart_upload(parts)
                    .send()
                    .await
                    .map_err(|err| failed(&err))?;
            }
            None => put(&self.s3, &key, buffer).await?,
        }
        Ok(Response::new(UploadResponse { success: true, key, size, ..Default::default() }))
    }
}

async fn failure_of<S>(uploader: impl FnOnce(aws_sdk_s3::Client) -> S, case: &str) -> Failure
where
    S: file_uploader_server::FileUploader,
{
    failure_with(uploader, case, harness::Security::plaintext(), support::settings()).await
}

/// [`failure_of`], reaching the uploader as `security` says.
async fn failure_with<S>(
    uploader: impl FnOnce(aws_sdk_s3::Client) -> S,
    case: &str,
    security: harness::Security,
    settings: conformance::context::Settings,
) -> Failure
where
    S: file_uploader_server::FileUploader,
{
    let store = support::s3().await;
    let services::s3::Backend::Static { endpoint, access_key, secret_key } = support::backend(&store) else {
        unreachable!("the embedded store has static credentials")
    };
    let server = file_uploader_server::FileUploaderServer::new(uploader(services::s3::static_client(
        &endpoint,
        &access_key,
        &secret_key,
    )));
    let url = support::serve(|mut s| s.add_service(server), &["uploader.FileUploader"]).await;
    let uploads = conformance::context::Uploads { store: Ok(store), ..Default::default() };
    let results = support::run_secured(&url, security, &[case], settings, uploads, None).await;
    match support::verdict(&results, case).failure() {
        Some(failure) => failure.clone(),
        None => panic!("the planted fault went unnoticed by {case}: {results:#?}"),
    }
}

async fn naive_failure(shortcut: Shortcut, case: &str) -> Failure {
    failure_of(|s3| NaiveUploader { shortcut, s3 }, case).await
}

/// The partial object appears 100 ms after the call ends: "nothing stored"
/// must hold after the call, not just at the first instant.
#[tokio::test]
async fn an_uploader_that_stores_a_cancelled_upload_a_moment_later() {
    let failure =
        naive_failure(Shortcut::StoresWhatArrived, "uploader.FileUploader/Upload/cancel-at-random-offset")
            .await;
    assert!(failure.expected.contains("no object"), "{failure:?}");
    assert!(failure.actual.contains("after the call ended"), "{failure:?}");
    assert!(failure.input.unwrap().contains("cancelled at"));
}

#[tokio::test]
async fn an_uploader_that_ignores_expected_sha256() {
    let failure = naive_failure(
        Shortcut::IgnoresExpectedSha256,
        "uploader.FileUploader/Upload/expected-sha256-mismatch",
    )
    .await;
    assert!(failure.expected.contains("DataLoss"), "{failure:?}");
}

#[tokio::test]
async fn an_uploader_that_takes_an_upper_case_sha256() {
    let failure = naive_failure(
        Shortcut::TakesUpperCaseSha256,
        "uploader.FileUploader/Upload/expected-sha256-malformed",
    )
    .await;
    assert!(failure.expected.starts_with("upper case: InvalidArgument"), "{failure:?}");
    assert!(failure.actual.starts_with("OK"), "{failure:?}");
}

#[tokio::test]
async fn an_uploader_that_lets_a_stream_rename_its_file() {
    let failure =
        naive_failure(Shortcut::IgnoresRenames, "uploader.FileUploader/Upload/name-change-mid-stream").await;
    assert!(failure.expected.contains("InvalidArgument"), "{failure:?}");
}

/// The fault lands on the upload once S3 shows it, however late the
/// uploader starts it: the leaked multipart upload is found.
#[tokio::test]
async fn an_uploader_that_starts_late_and_never_aborts() {
    let failure =
        failure_of(|s3| LateMultipartUploader { s3 }, "uploader.FileUploader/Upload/cancel-at-random-offset")
            .await;
    assert!(failure.expected.contains("no unfinished multipart upload"), "{failure:?}");
    assert!(failure.input.unwrap().contains("once S3 shows the upload"));
}

/// The token is checked, but only after the file is in S3: the call is
/// refused, and the object is there all the same.
#[tokio::test]
async fn an_uploader_that_checks_the_token_after_storing() {
    let security = harness::Security::plaintext()
        .with_header_lines(&[format!("authorization: Bearer {TOKEN}")])
        .unwrap();
    let demands = conformance::context::Demands { auth: true, client_certificate: false };
    let settings = conformance::context::Settings { demands, ..support::settings() };
    let failure = failure_with(
        |s3| NaiveUploader { shortcut: Shortcut::ChecksTokenAfterStoring, s3 },
        "security/uploader.FileUploader/Upload/refused-upload-stores-nothing",
        security,
        settings,
    )
    .await;
    assert!(failure.expected.contains("no object"), "{failure:?}");
}
