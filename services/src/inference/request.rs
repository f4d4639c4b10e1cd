//! Everything a call does before the forward pass: thresholds, the request
//! checks, decoding under the pixel limit, and the letterbox. Apart from
//! the model so that it can be driven (and fuzzed) without one.

use std::time::Instant;

use contracts::inference::InferRequest;
use tonic::Status;

use super::{
    detections::Thresholds,
    image_input::{self, Letterbox},
};

/// What the model takes, as far as checking a request needs to know.
#[derive(Debug, Clone, Copy)]
pub struct ModelInput<'a> {
    /// The side of the square input, in pixels.
    pub size: u32,
    /// Images declaring more pixels are refused before decoding.
    pub max_pixels: u64,
    /// Whether the model has a mask head (segmentation).
    pub mask_head: bool,
    /// The model's name, for the error a segmentation request gets
    /// without a mask head.
    pub model: &'a str,
}

/// A request ready for the forward pass.
#[derive(Debug)]
pub struct Prepared {
    pub(super) thresholds: Thresholds,
    pub(super) input: Vec<f32>,
    pub(super) placement: Letterbox,
    pub(super) size: (u32, u32),
    pub(super) started: Instant,
    pub(super) decoded: Instant,
    pub(super) preprocessed: Instant,
}

impl Prepared {
    /// The model's input tensor, CHW, in `[0, 1]`.
    pub fn input(&self) -> &[f32] {
        &self.input
    }

    /// The decoded image's width and height.
    pub fn size(&self) -> (u32, u32) {
        self.size
    }
}

/// Checks `request` in the order the Python reference checks it, so that
/// both answer a request with several faults with the same code, then
/// decodes and letterboxes its image.
pub fn prepare(request: &InferRequest, model: &ModelInput<'_>) -> Result<Prepared, Status> {
    let thresholds = thresholds(request)?;
    if request.image_bytes.is_empty() {
        return Err(Status::invalid_argument("image_bytes is empty"));
    }
    if request.return_segmentation && !model.mask_head {
        return Err(Status::failed_precondition(format!(
            "return_segmentation needs a model with a mask head; {} is a detection-only model",
            model.model
        )));
    }
    let started = Instant::now();
    let image = image_input::decode(&request.image_bytes, model.max_pixels)?;
    let decoded = Instant::now();
    let size = (image.width(), image.height());
    let mut input = Vec::new();
    let placement = image_input::letterbox(&image, model.size, &mut input);
    Ok(Prepared { thresholds, input, placement, size, started, decoded, preprocessed: Instant::now() })
}

fn thresholds(request: &InferRequest) -> Result<Thresholds, Status> {
    let fraction = |name: &str, value: f32, default: f32| {
        if value.is_nan() || !(0.0..=1.0).contains(&value) {
            Err(Status::invalid_argument(format!(
                "{name} is {value}; it must be in [0, 1] (0 means {default})"
            )))
        } else if value == 0.0 {
            Ok(default)
        } else {
            Ok(value)
        }
    };
    Ok(Thresholds {
        confidence: fraction("confidence_threshold", request.confidence_threshold, 0.25)?,
        iou: fraction("iou_threshold", request.iou_threshold, 0.45)?,
        max_detections: match request.max_detections {
            0 => 300,
            n => n as usize,
        },
    })
}
