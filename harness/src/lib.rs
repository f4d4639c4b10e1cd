//! Talks to a gRPC server it may never have seen.
//!
//! This crate grows into the descriptor-driven dynamic client (reflection,
//! descriptor sets, proptest strategies). For now it holds what the
//! conformance smoke check needs: connecting, listing the services a
//! descriptor set declares, and asking the standard health service about
//! them.

pub mod descriptors;
pub mod health;

use anyhow::{Context, Result};
use tonic::transport::{Channel, Endpoint};

/// Opens a channel to `url` (`http://host:port`), failing fast with a
/// readable error when nothing answers.
pub async fn connect(url: &str) -> Result<Channel> {
    Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("{url:?} is not a valid endpoint URL"))?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url}"))
}
