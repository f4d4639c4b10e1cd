//! The three places descriptors come from, each ending in one
//! [`DescriptorPool`]: server reflection ([`crate::reflection`]), a
//! descriptor-set file, and the set compiled into the `contracts` crate.

use std::path::Path;

use anyhow::{Context, Result, bail};
use prost::Message;
use prost_reflect::{DescriptorPool, FileDescriptor};
use prost_types::FileDescriptorProto;

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
    from_bytes(&bytes).with_context(|| format!("reading the descriptor set {}", path.display()))
}

/// [`from_file`], from the file's bytes.
pub fn from_bytes(bytes: &[u8]) -> Result<DescriptorPool> {
    let set = RawSet::decode(bytes).context("not a binary FileDescriptorSet")?;
    let files = set.file.into_iter().map(File::decode).collect::<Result<Vec<_>>>()?;
    pool_from_files(files).context("an incomplete or invalid descriptor set (were imports included?)")
}

/// One `.proto` file's descriptor as it came, encoded: what decoding it into
/// `prost_types` would lose, extension options such as `buf.validate`
/// rules, stays in it.
#[derive(Debug, Clone)]
pub struct File {
    /// Its name, e.g. `calculator/calculator.proto`.
    pub name: String,
    /// The names of the files it imports.
    pub dependencies: Vec<String>,
    syntax: String,
    encoded: Vec<u8>,
}

impl File {
    /// Reads an encoded `FileDescriptorProto`, keeping the bytes.
    pub fn decode(encoded: Vec<u8>) -> Result<File> {
        let file =
            FileDescriptorProto::decode(encoded.as_slice()).context("undecodable FileDescriptorProto")?;
        Ok(File {
            name: file.name().to_owned(),
            dependencies: file.dependency.clone(),
            syntax: file.syntax().to_owned(),
            encoded,
        })
    }

    /// A file of a pool, with its options whole.
    pub fn of(file: &FileDescriptor) -> File {
        let proto = file.file_descriptor_proto();
        File {
            name: proto.name().to_owned(),
            dependencies: proto.dependency.clone(),
            syntax: proto.syntax().to_owned(),
            encoded: file.encode_to_vec(),
        }
    }
}

/// A `FileDescriptorSet` whose files stay encoded.
#[derive(Clone, PartialEq, prost::Message)]
struct RawSet {
    #[prost(bytes = "vec", repeated, tag = "1")]
    file: Vec<Vec<u8>>,
}

/// Builds a pool from files in any order, extension options included.
pub fn pool_from_files(files: Vec<File>) -> Result<DescriptorPool> {
    extend(&DescriptorPool::new(), files)
}

/// `pool` with `files` added, in any order and extension options included;
/// files it already has, by name, are skipped. `pool` itself is left alone,
/// also when the files do not fit. prost-reflect 0.16 panics on
/// `syntax = "editions"` files instead of returning an error; a harness that
/// reads whatever a server sends must report that, not crash.
pub(crate) fn extend(pool: &DescriptorPool, files: Vec<File>) -> Result<DescriptorPool> {
    if let Some(file) = files.iter().find(|f| f.syntax == "editions") {
        bail!("{} uses protobuf editions, which this harness cannot read yet", file.name);
    }
    let set = RawSet { file: files.into_iter().map(|file| file.encoded).collect() }.encode_to_vec();
    let mut grown = pool.clone();
    let build =
        std::panic::catch_unwind(move || grown.decode_file_descriptor_set(set.as_slice()).map(|()| grown));
    match build {
        Ok(result) => Ok(result?),
        Err(_) => bail!("the descriptors could not be read (prost-reflect panicked on them)"),
    }
}
