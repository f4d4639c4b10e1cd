//! `inference.InferenceMethods`: detections that can be predicted, checked
//! against planted squares, the invariants of YOLO postprocessing on
//! arbitrary pictures, every error the contract names, and agreement with a
//! second implementation.
//!
//! The modules follow the themes of the cases: `planted` (pictures whose
//! detections are known in advance, drawn by `scenes`), `invariants` (what
//! postprocessing guarantees for any model and picture), `errors` (every
//! status the contract names) and `agreement` (with `--reference`). This
//! module holds what they share: the client, and box geometry.

mod agreement;
mod errors;
mod invariants;
mod planted;
mod scenes;

use contracts::inference::{
    BoundingBox, InferRequest, InferResponse, ModelInfoRequest, ModelInfoResponse,
    inference_methods_client::InferenceMethodsClient,
};
use harness::transport::Channel;

use self::{
    agreement::agrees_with_reference,
    errors::{bad_images, bad_thresholds, segmentation_needs_mask_head},
    invariants::invariants,
    planted::{blank_images, planted_property},
    scenes::Scene,
};
use super::*;

const SERVICE: &str = "inference.InferenceMethods";

pub(super) fn cases(ctx: &Context) -> Vec<Case> {
    let infer = ctx.contract_method(SERVICE, "Infer");
    let info = ctx.contract_method(SERVICE, "ModelInfo");
    vec![
        case(&info, "describes-the-model", |ctx| async move { verdict(describes_the_model(&ctx).await) }),
        case(&infer, "finds-every-planted-square", |ctx| async move {
            planted_property(ctx, "finds-every-planted-square", false).await
        }),
        case(&infer, "masks-cover-planted-squares", |ctx| async move {
            planted_property(ctx, "masks-cover-planted-squares", true).await
        }),
        case(&infer, "nothing-on-blank-images", |ctx| async move { blank_images(ctx).await }),
        case(&infer, "postprocessing-invariants", |ctx| async move { invariants(ctx).await }),
        case(&infer, "bad-images-are-refused", |ctx| async move { verdict(bad_images(&ctx).await) }),
        case(&infer, "bad-thresholds-are-refused", |ctx| async move { verdict(bad_thresholds(&ctx).await) }),
        case(&infer, "segmentation-needs-a-mask-head", |ctx| async move {
            segmentation_needs_mask_head(ctx).await
        }),
        case(&infer, "agrees-with-the-reference", |ctx| async move { agrees_with_reference(ctx).await }),
    ]
}

fn client(channel: Channel) -> InferenceMethodsClient<Channel> {
    InferenceMethodsClient::new(channel).max_decoding_message_size(64 * 1024 * 1024)
}

async fn model_info(channel: Channel) -> Result<ModelInfoResponse, Failure> {
    client(channel)
        .model_info(ModelInfoRequest {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| Failure::new("ModelInfo to answer", status.to_string()))
}

async fn infer(channel: Channel, request: InferRequest) -> Result<InferResponse, tonic::Status> {
    client(channel).infer(request).await.map(tonic::Response::into_inner)
}

fn request(scene: &Scene) -> InferRequest {
    InferRequest { image_bytes: scene.encode().into(), ..Default::default() }
}

async fn describes_the_model(ctx: &Context) -> Result<(), Failure> {
    let info = model_info(ctx.channel.clone()).await?;
    let shape_ok = matches!(info.input_shape.as_slice(), [1, 3, h, w] if *h > 0 && *w > 0);
    if !shape_ok {
        return Err(Failure::new("input_shape [1, 3, H, W]", format!("{:?}", info.input_shape)));
    }
    if info.labels.is_empty() || info.labels.iter().any(String::is_empty) {
        return Err(Failure::new("a non-empty label for every class", format!("{:?}", info.labels)));
    }
    if !info.execution_provider.ends_with("ExecutionProvider") {
        return Err(Failure::new(
            "an ONNX Runtime provider name such as CPUExecutionProvider",
            format!("{:?}", info.execution_provider),
        ));
    }
    let version_ok =
        info.onnxruntime_version.split('.').take(2).filter(|part| part.parse::<u32>().is_ok()).count() == 2;
    if !version_ok {
        return Err(Failure::new(
            "an ONNX Runtime version like 1.31.1",
            format!("{:?}", info.onnxruntime_version),
        ));
    }
    match info.defect_classes.iter().find(|class| !info.labels.contains(class)) {
        Some(unknown) => {
            Err(Failure::new("defect classes among the labels", format!("{unknown:?} is not a label")))
        }
        None => Ok(()),
    }
}

/// The target's model, when it is the bundled squares model whose
/// detections the planted-square properties predict; otherwise the verdict
/// such a property ends with (skipped, or failed when ModelInfo fails).
async fn bundled_model(ctx: &Context) -> Result<ModelInfoResponse, Verdict> {
    let info = model_info(ctx.channel.clone()).await.map_err(Verdict::Failed)?;
    let bundled =
        info.input_shape == [1, 3, 640, 640] && info.labels == ["defect", "scratch"] && info.has_segmentation;
    if bundled {
        Ok(info)
    } else {
        Err(Verdict::Skipped { reason: "the target does not serve the bundled squares model".to_owned() })
    }
}

fn show_scene(_: &Context, scene: &Scene) -> (String, Option<String>) {
    (format!("{scene:?}"), None)
}

/// The segmentation's class map, checked for shape.
fn class_map(response: &InferResponse, width: u32, height: u32) -> Result<Vec<u32>, Failure> {
    let Some(segmentation) = &response.segmentation else {
        return Err(Failure::new("a segmentation, as return_segmentation asked", "none"));
    };
    if (segmentation.width, segmentation.height) != (width, height) {
        return Err(Failure::new(
            format!("a {width}x{height} segmentation"),
            format!("{}x{}", segmentation.width, segmentation.height),
        ));
    }
    if segmentation.rle.len() % 2 != 0 {
        return Err(Failure::new("(value, length) pairs", format!("{} numbers", segmentation.rle.len())));
    }
    let mut map = Vec::with_capacity((width * height) as usize);
    for run in segmentation.rle.chunks(2) {
        if map.len() + run[1] as usize > (width * height) as usize {
            return Err(Failure::new(format!("runs adding up to {}", width * height), "more"));
        }
        map.extend(std::iter::repeat_n(run[0], run[1] as usize));
    }
    if map.len() != (width * height) as usize {
        return Err(Failure::new(format!("runs adding up to {}", width * height), map.len().to_string()));
    }
    Ok(map)
}

fn corners(found: &BoundingBox) -> [f32; 4] {
    [found.x1, found.y1, found.x2, found.y2]
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let inter = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0) * (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

fn show_box(found: &BoundingBox) -> String {
    format!(
        "{} {:.3} [{:.1}, {:.1}, {:.1}, {:.1}]",
        found.label, found.score, found.x1, found.y1, found.x2, found.y2
    )
}
