//! `inference.InferenceMethods` (seed 003): a YOLOv8-format detector on ONNX
//! Runtime, on the CPU or a CUDA GPU.
//!
//! A call runs decode → letterbox → forward pass → NMS (→ masks) on the
//! blocking pool, so the gRPC runtime threads only move bytes. The semantics
//! every implementation shares are in `proto/inference/README.md`.

mod detections;
mod image_input;
mod masks;
mod model;
mod request;
mod runtime;
mod service;

pub use model::{BUNDLED_MODEL, Device, Layout, Model, ModelSource, RawOutputs};
pub use request::{ModelInput, Prepared, prepare};
pub use runtime::{DEFAULT_LIBRARY, Runtime, library_path};
pub use service::{Engine, InferenceConfig, InferenceService};
