//! The kitchen-sink schema shared by the generator and comparator tests.

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

/// Built from `tests/data/kitchen_sink/`. After editing the `.proto` files,
/// regenerate it from the workspace root with:
///
/// ```text
/// tools/node_modules/.bin/buf build harness/tests/data/kitchen_sink -o harness/tests/data/kitchen_sink.binpb
/// ```
const KITCHEN_SINK: &[u8] = include_bytes!("../data/kitchen_sink.binpb");

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(KITCHEN_SINK).expect("kitchen_sink.binpb is a valid descriptor set")
});

pub(crate) fn pool() -> DescriptorPool {
    POOL.clone()
}

pub(crate) fn descriptor(full_name: &str) -> MessageDescriptor {
    pool().get_message_by_name(full_name).unwrap_or_else(|| panic!("{full_name} is not in the kitchen sink"))
}

/// A message of type `full_name` written in protobuf text format.
pub(crate) fn parse(full_name: &str, text: &str) -> DynamicMessage {
    DynamicMessage::parse_text_format(descriptor(full_name), text)
        .unwrap_or_else(|error| panic!("bad test message {text:?}: {error}"))
}
