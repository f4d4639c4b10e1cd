//! The S3 server behind the upload-integrity suite.
//!
//! The suite never trusts what an uploader says it stored: it reads every
//! object back from S3 and compares length and SHA-256, and it asks S3
//! itself whether a multipart upload was left unfinished. So the suite, not
//! the target, owns the S3 server: it starts one (embedded, moto, MinIO) or
//! is told where one is (`--s3-endpoint`), and hands it to the target
//! through the standard AWS environment.

mod minio;
mod moto;

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
};

use anyhow::{Context as _, Result, bail};
use aws_sdk_s3::{Client, config::ResponseChecksumValidation, primitives::ByteStream};
use sha2::{Digest, Sha256};

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

/// How to tell whether an upload was left unfinished.
#[derive(Debug)]
enum UnfinishedProbe {
    /// Ask S3 (ListMultipartUploads).
    List,
    /// s3s-fs 0.14 answers ListMultipartUploads with 501. It keeps one
    /// `.upload-<id>.json` file per unfinished upload in its root folder,
    /// removed on completion and on abort; the suite owns that server, so
    /// any such file is a leftover.
    Folder(PathBuf),
}

/// How the suite, and the target it hands the server to, sign requests.
#[derive(Debug)]
enum Access {
    /// Keys the suite knows, passed on to the target.
    Keys { access_key: String, secret_key: String },
    /// Whatever the AWS environment holds, which the target shares.
    Environment(Client),
}

impl Access {
    fn keys(access_key: &str, secret_key: &str) -> Access {
        Access::Keys { access_key: access_key.to_owned(), secret_key: secret_key.to_owned() }
    }
}

/// What keeps the server running: dropped with the store.
#[derive(Debug)]
enum Server {
    Embedded(#[allow(dead_code)] services::s3::EmbeddedS3),
    Process(#[allow(dead_code)] tokio::process::Child),
    Container(#[allow(dead_code)] Box<minio::Container>),
    External,
}

/// An object as read back: its length and SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Bytes in the object.
    pub size: u64,
    /// SHA-256 of those bytes.
    pub sha256: [u8; 32],
}

/// A connected S3 server and bucket.
#[derive(Debug)]
pub struct Store {
    /// What it is, for the report: `embedded (s3s-fs)`, `moto`, ...
    pub label: String,
    /// `http://host:port`.
    pub endpoint: String,
    /// The bucket uploads go to.
    pub bucket: String,
    /// Static credentials to hand to the target; `None` when the target
    /// shares the user's AWS environment.
    credentials: Option<(String, String)>,
    client: Client,
    /// The same, without checking response checksums against the body:
    /// for reads that race overwrites (see [`Store::read_racing`]).
    racing_client: Client,
    unfinished: UnfinishedProbe,
    /// Longest key the server can store, when shorter than S3's 1024 bytes.
    pub max_key_bytes: Option<usize>,
    /// Keys of one run share a prefix, so runs against a shared bucket
    /// neither collide nor see each other's leftovers.
    prefix: String,
    next_key: AtomicU64,
    _server: Server,
}

impl Store {
    /// Starts or connects to the S3 server `options` name, and makes sure
    /// the bucket exists.
    pub async fn start(options: &S3Options) -> Result<Availability> {
        let store = match (&options.endpoint, options.kind) {
            (Some(endpoint), _) => Store::external(endpoint, &options.bucket).await,
            (None, S3Kind::Embedded) => {
                let embedded = services::s3::EmbeddedS3::start(None).await?;
                let (access, secret) = embedded.credentials();
                let mut store = Store::new(
                    "embedded (s3s-fs)",
                    embedded.endpoint().to_owned(),
                    &options.bucket,
                    Access::keys(access, secret),
                    UnfinishedProbe::Folder(embedded.data_dir().to_owned()),
                    Server::Embedded(embedded),
                );
                store.max_key_bytes = Some(services::s3::EmbeddedS3::max_key_bytes(&options.bucket));
                store
            }
            (None, S3Kind::Moto) => {
                let (endpoint, child) = moto::start(&options.moto_server).await?;
                Store::new(
                    "moto",
                    endpoint,
                    &options.bucket,
                    Access::keys(moto::ACCESS_KEY, moto::SECRET_KEY),
                    UnfinishedProbe::List,
                    Server::Process(child),
                )
            }
            (None, S3Kind::Minio) => match minio::start().await? {
                Ok((endpoint, container)) => Store::new(
                    "MinIO",
                    endpoint,
                    &options.bucket,
                    Access::keys(minio::ACCESS_KEY, minio::SECRET_KEY),
                    UnfinishedProbe::List,
                    Server::Container(Box::new(container)),
                ),
                Err(reason) => return Ok(Availability::Unavailable(reason)),
            },
        };
        store.ensure_bucket().await?;
        Ok(Availability::Ready(Box::new(store)))
    }

    fn new(
        label: &str,
        endpoint: String,
        bucket: &str,
        access: Access,
        unfinished: UnfinishedProbe,
        server: Server,
    ) -> Store {
        let (credentials, client) = match access {
            Access::Keys { access_key, secret_key } => {
                let client = services::s3::static_client(&endpoint, &access_key, &secret_key);
                (Some((access_key, secret_key)), client)
            }
            Access::Environment(client) => (None, client),
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let racing_client = Client::from_conf(
            client
                .config()
                .to_builder()
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
                .build(),
        );
        Store {
            label: label.to_owned(),
            endpoint,
            bucket: bucket.to_owned(),
            credentials,
            client,
            racing_client,
            max_key_bytes: None,
            unfinished,
            prefix: format!("conformance-{nanos:x}"),
            next_key: AtomicU64::new(0),
            _server: server,
        }
    }

    /// A server the user runs; the AWS environment has its credentials.
    async fn external(endpoint: &str, bucket: &str) -> Store {
        let client = services::s3::environment_client(Some(endpoint)).await;
        Store::new(
            &format!("endpoint {endpoint}"),
            endpoint.to_owned(),
            bucket,
            Access::Environment(client),
            UnfinishedProbe::List,
            Server::External,
        )
    }

    async fn ensure_bucket(&self) -> Result<()> {
        services::s3::ensure_bucket(&self.client, &self.bucket)
            .await
            .with_context(|| format!("on {}", self.endpoint))
    }

    /// What our services need to store into this server.
    pub fn services_backend(&self) -> services::s3::Backend {
        match &self.credentials {
            Some((access, secret)) => services::s3::Backend::Static {
                endpoint: self.endpoint.clone(),
                access_key: access.clone(),
                secret_key: secret.clone(),
            },
            None => services::s3::Backend::Environment { endpoint_url: Some(self.endpoint.clone()) },
        }
    }

    /// The standard AWS variables that point a target command at this server.
    pub fn target_env(&self) -> Vec<(String, String)> {
        let mut env = vec![("AWS_ENDPOINT_URL".to_owned(), self.endpoint.clone())];
        if let Some((access, secret)) = &self.credentials {
            env.push(("AWS_ACCESS_KEY_ID".to_owned(), access.clone()));
            env.push(("AWS_SECRET_ACCESS_KEY".to_owned(), secret.clone()));
            env.push(("AWS_REGION".to_owned(), "us-east-1".to_owned()));
        }
        env
    }

    /// A key no other upload of any run uses: `<run prefix>/<name>/<n>`.
    pub fn fresh_key(&self, name: &str) -> String {
        let n = self.next_key.fetch_add(1, Ordering::Relaxed);
        format!("{}/{name}/{n}", self.prefix)
    }

    /// Reads `key` back, hashing as it streams; `None` when there is no
    /// such object.
    pub async fn read(&self, key: &str) -> Result<Option<Stored>> {
        Self::read_with(&self.client, &self.bucket, key).await
    }

    /// [`Store::read`] for reads that race overwrites of the same key. The
    /// bytes are still hashed and compared by the caller, but the checksum
    /// S3 sends along is not required to match them: s3s-fs may pair a
    /// just-renamed object with the previous version's stored checksum.
    pub async fn read_racing(&self, key: &str) -> Result<Option<Stored>> {
        Self::read_with(&self.racing_client, &self.bucket, key).await
    }

    async fn read_with(client: &Client, bucket: &str, key: &str) -> Result<Option<Stored>> {
        let response = match client.get_object().bucket(bucket).key(key).send().await {
            Ok(response) => response,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(err) => return Err(anyhow::Error::new(err)).with_context(|| format!("reading {key:?} back")),
        };
        let mut body = response.body;
        let (mut hasher, mut size) = (Sha256::new(), 0u64);
        while let Some(bytes) = body.try_next().await.with_context(|| format!("reading {key:?} back"))? {
            hasher.update(&bytes);
            size += bytes.len() as u64;
        }
        Ok(Some(Stored { size, sha256: hasher.finalize().into() }))
    }

    /// Stores `data` at `key` directly, bypassing the target.
    pub async fn put(&self, key: &str, data: Vec<u8>) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(data))
            .send()
            .await
            .with_context(|| format!("storing {key:?} directly"))?;
        Ok(())
    }

    /// Deletes `key`, if it exists: objects a check has verified are not
    /// kept, so a shared bucket does not fill up.
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .with_context(|| format!("deleting {key:?}"))?;
        Ok(())
    }

    /// Multipart uploads under `key_prefix` that were started and neither
    /// completed nor aborted. Where S3 cannot list them (s3s-fs), every
    /// unfinished upload of the server counts, whatever its key.
    pub async fn unfinished_uploads(&self, key_prefix: &str) -> Result<Vec<String>> {
        match &self.unfinished {
            UnfinishedProbe::List => {
                let listed = self
                    .client
                    .list_multipart_uploads()
                    .bucket(&self.bucket)
                    .prefix(key_prefix)
                    .send()
                    .await
                    .context("ListMultipartUploads")?;
                Ok(listed
                    .uploads()
                    .iter()
                    .map(|upload| {
                        format!(
                            "{} (upload {})",
                            upload.key().unwrap_or_default(),
                            upload.upload_id().unwrap_or_default()
                        )
                    })
                    .collect())
            }
            UnfinishedProbe::Folder(root) => {
                let mut found = Vec::new();
                let entries =
                    std::fs::read_dir(root).with_context(|| format!("listing {}", root.display()))?;
                for entry in entries {
                    let name = entry?.file_name().to_string_lossy().into_owned();
                    if let Some(id) =
                        name.strip_prefix(".upload-").and_then(|rest| rest.strip_suffix(".json"))
                    {
                        found.push(format!("upload {id}"));
                    }
                }
                Ok(found)
            }
        }
    }

    /// The prefix every key of this run starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// Fails unless `endpoint` looks like an S3 URL, before anything starts.
pub fn validate_endpoint(endpoint: &str) -> Result<()> {
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        bail!("--s3-endpoint must be an http:// or https:// URL, not {endpoint:?}");
    }
    Ok(())
}
