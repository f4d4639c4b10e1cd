//! Reading encoded `FileDescriptorSet`s.

use anyhow::{Context, Result};
use prost::Message;
use prost_types::FileDescriptorSet;

/// Fully qualified names (`package.Service`) of every service declared in an
/// encoded descriptor set, sorted.
pub fn service_names(encoded: &[u8]) -> Result<Vec<String>> {
    let set = FileDescriptorSet::decode(encoded).context("not an encoded FileDescriptorSet")?;
    let mut names: Vec<String> = set
        .file
        .iter()
        .flat_map(|file| {
            let package = file.package().to_owned();
            file.service.iter().map(move |service| match package.as_str() {
                "" => service.name().to_owned(),
                package => format!("{package}.{}", service.name()),
            })
        })
        .collect();
    names.sort();
    Ok(names)
}
