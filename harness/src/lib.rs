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
pub mod discovery;
pub mod health;
pub mod memory;
pub mod reflection;
pub mod rules;
pub mod target;
pub mod text;
pub mod transport;

pub use call::{BidiCall, CallError, CallOptions, DynamicClient, Reply, ResponseStream};

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
