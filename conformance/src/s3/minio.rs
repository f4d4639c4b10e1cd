//! MinIO in a container, through testcontainers. Behind the `minio` cargo
//! feature, which `cargo xtask conformance --s3 minio` turns on: the Docker
//! client is a large build that most runs never use.
//!
//! Without a Docker daemon the run goes on and reports the upload cases as
//! skipped, never as passed.

/// MinIO's default root credentials, which the module keeps.
pub(super) const ACCESS_KEY: &str = "minioadmin";
pub(super) const SECRET_KEY: &str = "minioadmin";

#[cfg(feature = "minio")]
pub(super) use with_docker::{Container, start};

#[cfg(feature = "minio")]
mod with_docker {
    use anyhow::Result;
    use testcontainers_modules::{
        minio::MinIO,
        testcontainers::{ContainerAsync, ImageExt, runners::AsyncRunner},
    };

    /// MinIO left Docker Hub in September 2026; its own second registry
    /// still serves the release the module pins, with the same digest.
    const REGISTRY_IMAGE: &str = "quay.io/minio/minio";

    /// The running container; dropping it removes it.
    pub(crate) type Container = ContainerAsync<MinIO>;

    /// `Ok(Err(reason))` when there is no Docker daemon to ask.
    pub(crate) async fn start() -> Result<Result<(String, Container), String>> {
        if !docker_reachable() {
            return Ok(Err("no Docker daemon".to_owned()));
        }
        let container = match MinIO::default().with_name(REGISTRY_IMAGE).start().await {
            Ok(container) => container,
            Err(err) => {
                let text = format!("{err:#}");
                // testcontainers reports a daemon that is not there only
                // as a client error; anything else is a real failure.
                if text.contains("SocketNotFound") || text.contains("Connection refused") {
                    return Ok(Err(format!("no Docker daemon ({text})")));
                }
                return Err(anyhow::anyhow!("starting MinIO: {text}"));
            }
        };
        let host = container.get_host().await?;
        let port = container.get_host_port_ipv4(9000).await?;
        Ok(Ok((format!("http://{host}:{port}"), container)))
    }

    /// Whether a Docker daemon could be listening: `DOCKER_HOST` is set, or
    /// the default socket exists.
    fn docker_reachable() -> bool {
        std::env::var_os("DOCKER_HOST").is_some() || std::path::Path::new("/var/run/docker.sock").exists()
    }
}

/// Stands in for the container type in builds without Docker support.
#[cfg(not(feature = "minio"))]
#[derive(Debug)]
pub(super) enum Container {}

#[cfg(not(feature = "minio"))]
pub(super) async fn start() -> anyhow::Result<Result<(String, Container), String>> {
    Ok(Err("no Docker daemon support in this build: `cargo xtask conformance --s3 minio` builds it \
            (cargo feature `minio`)"
        .to_owned()))
}
