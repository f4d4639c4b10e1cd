//! The three places descriptors come from, each ending in one
//! [`DescriptorPool`]: server reflection ([`crate::reflection`]), a
//! descriptor-set file, and the set compiled into the `contracts` crate.

use std::path::Path;

use anyhow::{Context, Result, bail};
use prost::Message;
use prost_reflect::DescriptorPool;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

/// The contracts this toolkit ships, as compiled by `cargo xtask codegen`.
pub fn embedded() -> DescriptorPool {
    DescriptorPool::decode(contracts::FILE_DESCRIPTOR_SET)
        .expect("the committed descriptor set is valid; `cargo xtask codegen --check` guards it")
}

/// Reads a binary `FileDescriptorSet`: `protoc --descriptor_set_out`
/// (`.protoset`), or `buf build -o file.binpb`. A buf image (`.bin`) is a
/// superset of the same message and reads the same way.
pub fn from_file(path: &Path) -> Result<DescriptorPool> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let set = FileDescriptorSet::decode(bytes.as_slice())
        .with_context(|| format!("{} is not a binary FileDescriptorSet", path.display()))?;
    pool_from_files(set.file).with_context(|| {
        format!("{} is an incomplete or invalid descriptor set (were imports included?)", path.display())
    })
}

/// Builds a pool from files in any order. prost-reflect 0.16 panics on
/// `syntax = "editions"` files instead of returning an error; a harness that
/// reads whatever a server sends must report that, not crash.
pub(crate) fn pool_from_files(files: Vec<FileDescriptorProto>) -> Result<DescriptorPool> {
    if let Some(file) = files.iter().find(|f| f.syntax() == "editions") {
        bail!("{} uses protobuf editions, which this harness cannot read yet", file.name());
    }
    let build = std::panic::catch_unwind(move || {
        let mut pool = DescriptorPool::new();
        pool.add_file_descriptor_protos(files).map(|()| pool)
    });
    match build {
        Ok(result) => Ok(result?),
        Err(_) => bail!("the descriptors could not be read (prost-reflect panicked on them)"),
    }
}
