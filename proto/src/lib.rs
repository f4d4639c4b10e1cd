//! The seed gRPC contracts, compiled to Rust.
//!
//! Everything under `src/generated/` is written by `cargo xtask codegen` and
//! committed, so depending on this crate needs neither protoc nor a build
//! script. `cargo xtask codegen --check` fails CI when it drifts from the
//! `.proto` files beside this crate.

#[allow(missing_docs, unreachable_pub, rust_2018_idioms, clippy::all)]
mod generated {
    include!("generated/mod.rs");
}

/// Encoded `FileDescriptorSet` of every contract, with imports and source
/// info, so reflection can serve comments and dynamic clients need no files.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("generated/descriptor.bin");

/// Seed 000: image upload over bidirectional streaming.
pub mod mensagem {
    pub use crate::generated::mensagem::*;
}

/// Seed 004: client-streaming image chunks with a summary.
pub mod uploader {
    pub use crate::generated::uploader::*;
}

/// Seed 002: the unary cube calculator.
pub mod calculator {
    pub use crate::generated::calculator::*;
}

/// Seed 002: the server-streaming number range.
pub mod streaming {
    pub use crate::generated::streaming::*;
}

/// Seed 003: one service with all four RPC patterns.
pub mod coreservices {
    pub use crate::generated::coreservices::*;
}

/// Seed 003: image inference with a YOLOv8-format model.
pub mod inference {
    pub use crate::generated::inference::*;
}

/// The suite's method option: expectations in CEL (`conformance.v1.expectation`),
/// which contracts import to state what their methods promise.
pub mod expectations {
    pub use crate::generated::conformance::v1::*;
}
