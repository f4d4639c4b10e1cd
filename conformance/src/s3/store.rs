//! A connected S3 server and bucket, as the suite reads it.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
};

use anyhow::{Context as _, Result};
use aws_sdk_s3::{Client, primitives::ByteStream};
use sha2::{Digest, Sha256};

use super::{Availability, S3Kind, S3Options, activity::Activity, client, embedded, minio, moto};

/// How to tell whether an upload was left unfinished.
#[derive(Debug)]
enum UnfinishedProbe {
    /// Ask S3 (ListMultipartUploads).
    List,
    /// s3s-fs 0.14 answers ListMultipartUploads with 501. It keeps one file
    /// per unfinished upload in its root folder; the suite owns that
    /// server, so any such file is a leftover.
    Folder(PathBuf),
}

/// What keeps the server running: dropped with the store.
#[derive(Debug)]
enum Server {
    Embedded(#[allow(dead_code)] embedded::Embedded),
    Process(#[allow(dead_code)] tokio::process::Child),
    Container(#[allow(dead_code)] Box<minio::Container>),
    External,
}

/// An object as read back: its length and digests, computed by the suite
/// from the bytes it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Bytes in the object.
    pub size: u64,
    /// SHA-256 of those bytes.
    pub sha256: [u8; 32],
    /// CRC32C (Castagnoli) of those bytes.
    pub crc32c: u32,
}

impl Stored {
    /// What an object holding exactly `data` reads back as.
    pub fn of(data: &[u8]) -> Stored {
        Stored { size: data.len() as u64, sha256: Sha256::digest(data).into(), crc32c: crc32c::crc32c(data) }
    }
}

impl std::fmt::Display for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes, SHA-256 {}, CRC32C {:08x}", self.size, hex::encode(self.sha256), self.crc32c)
    }
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
    /// Reads without checking S3's stored checksums against the body: the
    /// suite hashes every byte itself, and s3s-fs may pair an object with
    /// a previous version's checksums (see `embedded.rs`).
    pub(super) client: Client,
    unfinished: UnfinishedProbe,
    /// Every request for a key, where the suite serves S3 itself.
    activity: Option<Activity>,
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
        let keys = |access: &str, secret: &str| Some((access.to_owned(), secret.to_owned()));
        let store = match (&options.endpoint, options.kind) {
            (Some(endpoint), _) => {
                Store::new(
                    &format!("endpoint {endpoint}"),
                    endpoint.clone(),
                    &options.bucket,
                    None,
                    UnfinishedProbe::List,
                    Server::External,
                )
                .await
            }
            (None, S3Kind::Embedded) => {
                let activity = Activity::new(&options.bucket);
                let server = embedded::Embedded::start(activity.clone()).await?;
                let mut store = Store::new(
                    "embedded (s3s-fs)",
                    server.endpoint().to_owned(),
                    &options.bucket,
                    keys(embedded::TARGET_KEYS.0, embedded::TARGET_KEYS.1),
                    UnfinishedProbe::Folder(server.data_dir()),
                    Server::Embedded(server),
                )
                .await;
                // The suite reads with keys of its own, so that its reads
                // are never mistaken for the target's activity.
                let (access, secret) = embedded::SUITE_KEYS;
                store.client = client::static_client(&store.endpoint, access, secret);
                store.max_key_bytes = Some(embedded::max_key_bytes(&options.bucket));
                store.activity = Some(activity);
                store
            }
            (None, S3Kind::Moto) => {
                let (endpoint, child) = moto::start(&options.moto_server).await?;
                Store::new(
                    "moto",
                    endpoint,
                    &options.bucket,
                    keys(moto::ACCESS_KEY, moto::SECRET_KEY),
                    UnfinishedProbe::List,
                    Server::Process(child),
                )
                .await
            }
            (None, S3Kind::Minio) => match minio::start().await? {
                Ok((endpoint, container)) => {
                    Store::new(
                        "MinIO",
                        endpoint,
                        &options.bucket,
                        keys(minio::ACCESS_KEY, minio::SECRET_KEY),
                        UnfinishedProbe::List,
                        Server::Container(Box::new(container)),
                    )
                    .await
                }
                Err(reason) => return Ok(Availability::Unavailable(reason)),
            },
        };
        client::ensure_bucket(&store.client, &store.bucket)
            .await
            .with_context(|| format!("on {}", store.endpoint))?;
        Ok(Availability::Ready(Box::new(store)))
    }

    async fn new(
        label: &str,
        endpoint: String,
        bucket: &str,
        credentials: Option<(String, String)>,
        unfinished: UnfinishedProbe,
        server: Server,
    ) -> Store {
        let client = match &credentials {
            Some((access, secret)) => client::static_client(&endpoint, access, secret),
            None => client::environment_client(&endpoint).await,
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Store {
            label: label.to_owned(),
            endpoint,
            bucket: bucket.to_owned(),
            credentials,
            client,
            max_key_bytes: None,
            unfinished,
            activity: None,
            prefix: format!("conformance-{nanos:x}"),
            next_key: AtomicU64::new(0),
            _server: server,
        }
    }

    /// The standard AWS variables that point a target at this server: the
    /// endpoint, and the keys when the suite started the server.
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

    /// The prefix every key of this run starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether S3 has seen anything of `key` yet: a request for it (where
    /// the suite serves S3 and sees every request), else an object or an
    /// unfinished multipart upload under that name.
    pub async fn touched(&self, key: &str) -> Result<bool> {
        if let Some(activity) = &self.activity {
            return Ok(activity.last(key).is_some());
        }
        let exists = self.client.head_object().bucket(&self.bucket).key(key).send().await.is_ok();
        Ok(exists || !self.unfinished_uploads(key).await?.is_empty())
    }

    /// Whether the suite sees every request to this S3 server.
    pub fn sees_requests(&self) -> bool {
        self.activity.is_some()
    }

    /// When S3 last saw a request for `key`, where the suite can tell.
    pub fn last_request(&self, key: &str) -> Option<std::time::Instant> {
        self.activity.as_ref()?.last(key)
    }

    /// Reads `key` back, hashing as it streams; `None` when there is no
    /// such object.
    pub async fn read(&self, key: &str) -> Result<Option<Stored>> {
        let response = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(response) => response,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(err) => return Err(anyhow::Error::new(err)).with_context(|| format!("reading {key:?} back")),
        };
        let mut body = response.body;
        let (mut sha256, mut crc, mut size) = (Sha256::new(), 0u32, 0u64);
        while let Some(bytes) = body.try_next().await.with_context(|| format!("reading {key:?} back"))? {
            sha256.update(&bytes);
            crc = crc32c::crc32c_append(crc, &bytes);
            size += bytes.len() as u64;
        }
        Ok(Some(Stored { size, sha256: sha256.finalize().into(), crc32c: crc }))
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
                    if let Some(id) = embedded::unfinished_upload_id(&name) {
                        found.push(format!("upload {id}"));
                    }
                }
                Ok(found)
            }
        }
    }
}
