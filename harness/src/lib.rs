//! Talks to any gRPC server from its descriptors.
//!
//! Descriptors come from server reflection, a descriptor-set file, or the
//! `contracts` crate; all three become one `prost_reflect::DescriptorPool`.
//! From there the dynamic caller drives all four RPC patterns, proptest
//! strategies generate arbitrary requests, and the comparator decides whether
//! two messages mean the same thing.

pub mod arbitrary;
pub mod call;
pub mod codec;
pub mod compare;
pub mod descriptors;
pub mod direct;
pub mod discovery;
pub mod health;
pub mod memory;
pub mod reflection;
pub mod rules;
pub mod security;
pub mod target;
pub mod text;
pub mod transport;

pub use call::{BidiCall, CallError, CallOptions, DynamicClient, Reply, ResponseStream};
pub use direct::DirectClient;
pub use security::{Security, TlsOptions};
pub use transport::Channel;

use anyhow::{Context, Result};

/// Opens a plaintext channel to `url` (`http://host:port`), failing fast
/// with a readable error when nothing answers.
pub async fn connect(url: &str) -> Result<Channel> {
    connect_with(url, Security::plaintext()).await
}

/// Opens a channel to `url` secured as `security` says, failing fast when
/// nothing answers or the TLS handshake is refused.
pub async fn connect_with(url: &str, security: Security) -> Result<Channel> {
    let channel = Channel::with_security(url, security)?;
    channel.ready().await.with_context(|| format!("cannot connect to {url}"))?;
    Ok(channel)
}
