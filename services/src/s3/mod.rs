//! The S3 side of `uploader.FileUploader`: where objects go, and how.
//!
//! With no endpoint configured, an S3-compatible server (s3s over a local
//! folder) runs in-process, so a newcomer needs nothing else. Otherwise the
//! standard AWS environment (`AWS_ENDPOINT_URL`, credentials, region,
//! profiles) is read through aws-config.

mod commits;
mod embedded;
mod writer;

use std::{path::PathBuf, sync::Arc};

use anyhow::{Context, Result};
use aws_sdk_s3::{
    Client,
    config::{Credentials, Region, RequestChecksumCalculation, http::HttpResponse},
    error::SdkError,
};
use tonic::Status;

pub use embedded::EmbeddedS3;
pub(crate) use writer::ObjectWriter;

/// Where uploads are stored.
#[derive(Debug, Clone)]
pub enum Backend {
    /// An in-process S3 server over `data_dir` (a fresh temporary folder when
    /// `None`).
    Embedded {
        /// Folder holding the buckets.
        data_dir: Option<PathBuf>,
    },
    /// Whatever the AWS environment names: `AWS_ENDPOINT_URL`, credentials
    /// and region from the environment or a profile.
    Environment {
        /// Overrides `AWS_ENDPOINT_URL`.
        endpoint_url: Option<String>,
    },
    /// An endpoint with static credentials, e.g. a test server.
    Static {
        /// `http://host:port`.
        endpoint: String,
        /// Access key id.
        access_key: String,
        /// Secret access key.
        secret_key: String,
    },
}

/// S3 settings of the server.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Where objects go.
    pub backend: Backend,
    /// Bucket for uploads; created if missing.
    pub bucket: String,
    /// Files up to this size use one PutObject; larger ones a multipart
    /// upload with parts of this size. S3 wants at least 5 MiB per part.
    pub part_size: usize,
    /// Parts uploaded concurrently; with `part_size` it bounds memory per
    /// upload at about `(parts_in_flight + 1) * part_size`.
    pub parts_in_flight: usize,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            backend: Backend::Embedded { data_dir: None },
            bucket: "uploads".to_owned(),
            part_size: 8 * 1024 * 1024,
            parts_in_flight: 4,
        }
    }
}

/// A connected bucket, shared by every upload.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    pub(crate) client: Client,
    pub(crate) name: String,
    pub(crate) part_size: usize,
    pub(crate) parts_in_flight: usize,
    pub(crate) commits: Arc<commits::CommitLocks>,
    /// Longest key the backend can store, when it is shorter than S3's.
    pub(crate) max_key_bytes: Option<usize>,
    /// Keeps the embedded server (and its temporary folder) alive.
    _embedded: Option<Arc<EmbeddedS3>>,
}

impl Bucket {
    /// Connects to the configured backend and creates the bucket if needed.
    pub(crate) async fn connect(config: &S3Config) -> Result<Bucket> {
        let (client, embedded) = match &config.backend {
            Backend::Embedded { data_dir } => {
                let embedded = EmbeddedS3::start(data_dir.clone()).await?;
                tracing::info!(endpoint = %embedded.endpoint(), data_dir = %embedded.data_dir().display(),
                    "no S3 endpoint configured: serving an embedded S3 (s3s-fs)");
                (embedded.client(), Some(Arc::new(embedded)))
            }
            Backend::Static { endpoint, access_key, secret_key } => {
                (static_client(endpoint, access_key, secret_key), None)
            }
            Backend::Environment { endpoint_url } => {
                (environment_client(endpoint_url.as_deref()).await, None)
            }
        };
        let bucket = Bucket {
            client,
            name: config.bucket.clone(),
            part_size: config.part_size.max(5 * 1024 * 1024),
            parts_in_flight: config.parts_in_flight.max(1),
            commits: Arc::default(),
            max_key_bytes: embedded.as_ref().map(|_| embedded::max_key_bytes(&config.bucket)),
            _embedded: embedded,
        };
        ensure_bucket(&bucket.client, &bucket.name).await?;
        Ok(bucket)
    }
}

/// Creates `bucket` unless it exists (or someone creates it meanwhile).
pub async fn ensure_bucket(client: &Client, bucket: &str) -> Result<()> {
    if client.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    match client.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()) =>
        {
            Ok(())
        }
        Err(err) => Err(anyhow::Error::new(err)).with_context(|| format!("creating bucket {bucket}")),
    }
}

/// A client configured by the standard AWS environment (credentials,
/// region, profiles), with `endpoint_url` overriding `AWS_ENDPOINT_URL`.
/// Path-style, and sending only the checksums the caller computes.
pub async fn environment_client(endpoint_url: Option<&str>) -> Client {
    // The loader's own providers (region and credentials, IMDS among them)
    // get the HTTP client through it.
    let mut loader = aws_config::from_env().http_client(https_client());
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let shared = loader.load().await;
    let mut s3 = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
    // S3-compatible servers rarely care about the region, and users of one
    // rarely set it: default to us-east-1.
    if shared.region().is_none() {
        s3 = s3.region(Region::new("us-east-1"));
    }
    Client::from_conf(s3.build())
}

/// A client for an S3 endpoint with static credentials, path-style, sending
/// only the checksums the caller computes (the server's client, and tests').
pub fn static_client(endpoint: &str, access_key: &str, secret_key: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .http_client(https_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "static"))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .build();
    Client::from_conf(config)
}

/// Maps an SDK failure to the status the contract names: S3 that cannot be
/// reached, or that is failing or throttling (5xx, SlowDown), is UNAVAILABLE,
/// which clients may retry; a key S3 itself refuses is INVALID_ARGUMENT;
/// anything else S3 refused (credentials, a missing bucket) is the server's
/// own misconfiguration, INTERNAL, with S3's error code in the message.
pub(crate) fn status<E>(action: &str, err: SdkError<E, HttpResponse>) -> Status
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    const BAD_KEY: &[&str] = &["InvalidArgument", "KeyTooLongError", "InvalidObjectName", "InvalidURI"];
    const TRANSIENT: &[&str] = &["InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"];
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            Status::unavailable(format!("S3 is unreachable ({action}): {}", error_chain(&err)))
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("(no code)");
            let text = format!("S3 refused {action}: {code} {}", service.err().message().unwrap_or_default());
            if BAD_KEY.contains(&code) {
                Status::invalid_argument(text)
            } else if TRANSIENT.contains(&code) || service.raw().status().is_server_error() {
                Status::unavailable(text)
            } else {
                Status::internal(text)
            }
        }
        _ => Status::internal(format!("S3 request failed ({action}): {}", error_chain(&err))),
    }
}

/// HTTP and HTTPS on rustls with ring: the SDK's default client would
/// compile a second TLS stack (aws-lc) for the same job.
fn https_client() -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https()
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
