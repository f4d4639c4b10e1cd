//! The suite's own S3 clients, built from nothing but the endpoint and the
//! credentials the suite hands the target: reading back through the
//! uploader's code would let a bug there vouch for itself.

use anyhow::{Context as _, Result};
use aws_sdk_s3::{
    Client,
    config::{Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation, SharedHttpClient},
};

/// S3-compatible servers rarely care about the region, and their users
/// rarely set one.
const DEFAULT_REGION: &str = "us-east-1";

/// A client for `endpoint` with static credentials.
pub(super) fn static_client(endpoint: &str, access_key: &str, secret_key: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .http_client(https_client())
        .endpoint_url(endpoint)
        .region(Region::new(DEFAULT_REGION))
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "conformance"))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    Client::from_conf(config)
}

/// A client for `endpoint` with credentials and region from the standard
/// AWS environment, which the target shares.
pub(super) async fn environment_client(endpoint: &str) -> Client {
    let region = aws_config::meta::region::RegionProviderChain::default_provider()
        .or_else(Region::new(DEFAULT_REGION));
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(region)
        .http_client(https_client())
        .endpoint_url(endpoint)
        .load()
        .await;
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    Client::from_conf(config)
}

/// Creates `bucket` unless it exists (or someone creates it meanwhile).
pub(super) async fn ensure_bucket(client: &Client, bucket: &str) -> Result<()> {
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

/// HTTP, and HTTPS on rustls with ring: the SDK's default client would
/// compile a second TLS stack (aws-lc) for the same job.
fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https()
}
