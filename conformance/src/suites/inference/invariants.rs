//! The invariants of YOLO postprocessing, on arbitrary pictures with
//! arbitrary thresholds: they hold for any model.

use std::sync::Arc;

use contracts::inference::{BoundingBox, InferRequest, InferResponse, ModelInfoResponse};
use proptest::prelude::*;

use super::{
    Context, Failure, SERVICE, Verdict, class_map, corners, expect_eq, infer, iou, model_info, request,
    scenes::{self, Scene},
    show_box,
};

/// The contract's defaults, which a request's zeros stand for.
const DEFAULT_CONFIDENCE: f32 = 0.25;
const DEFAULT_IOU: f32 = 0.45;
const DEFAULT_MAX_DETECTIONS: usize = 300;

/// Thresholds as a request carries them: 0 (the default) or a value.
fn threshold() -> impl Strategy<Value = f32> {
    prop_oneof![Just(0.0f32), 0.01f32..=1.0]
}

pub(super) async fn invariants(ctx: Arc<Context>) -> Verdict {
    let info = match model_info(ctx.channel.clone()).await {
        Ok(info) => info,
        Err(failure) => return Verdict::Failed(failure),
    };
    let strategy =
        || (scenes::arbitrary(), threshold(), threshold(), prop_oneof![Just(0u32), 1u32..=4], any::<bool>());
    let name = format!("{SERVICE}/Infer/postprocessing-invariants");
    let inputs = ctx.settings.inputs.div_ceil(2);
    let show = |_: &Context, input: &(Scene, f32, f32, u32, bool)| (format!("{input:?}"), None);
    let info = Arc::new(info);
    crate::property::check_n(
        ctx,
        &name,
        inputs,
        strategy,
        show,
        move |ctx, (scene, confidence, overlap, max, masks)| {
            let info = info.clone();
            async move {
                let request = InferRequest {
                    confidence_threshold: confidence,
                    iou_threshold: overlap,
                    max_detections: max,
                    return_segmentation: masks && info.has_segmentation,
                    ..request(&scene)
                };
                let response = infer(ctx.channel.clone(), request.clone())
                    .await
                    .map_err(|status| Failure::new("a response", status.to_string()))?;
                check_invariants(&info, &scene, &request, &response)?;
                let again = infer(ctx.channel.clone(), request)
                    .await
                    .map_err(|status| Failure::new("a response to the same request", status.to_string()))?;
                let strip = |response: &InferResponse| InferResponse { timing: None, ..response.clone() };
                if strip(&again) != strip(&response) {
                    return Err(Failure::new(
                        "the same response to the same request",
                        format!("{:?}\nthen\n{:?}", strip(&response).boxes, strip(&again).boxes),
                    ));
                }
                Ok(())
            }
        },
    )
    .await
}

fn check_invariants(
    info: &ModelInfoResponse,
    scene: &Scene,
    request: &InferRequest,
    response: &InferResponse,
) -> Result<(), Failure> {
    let (width, height) = (scene.width as f32, scene.height as f32);
    expect_eq(
        "(image_width, image_height)",
        (scene.width, scene.height),
        (response.image_width, response.image_height),
    )?;
    let confidence =
        if request.confidence_threshold == 0.0 { DEFAULT_CONFIDENCE } else { request.confidence_threshold };
    let threshold = if request.iou_threshold == 0.0 { DEFAULT_IOU } else { request.iou_threshold };
    let max =
        if request.max_detections == 0 { DEFAULT_MAX_DETECTIONS } else { request.max_detections as usize };
    if response.boxes.len() > max {
        return Err(Failure::new(format!("at most {max} boxes"), response.boxes.len().to_string()));
    }
    for found in &response.boxes {
        let inside = 0.0 <= found.x1
            && found.x1 <= found.x2
            && found.x2 <= width
            && 0.0 <= found.y1
            && found.y1 <= found.y2
            && found.y2 <= height;
        if !inside {
            return Err(Failure::new(format!("boxes within the {width}x{height} image"), show_box(found)));
        }
        if !(found.score >= confidence && found.score <= 1.0) {
            return Err(Failure::new(format!("scores in [{confidence}, 1]"), show_box(found)));
        }
        if info.labels.get(found.class_id as usize) != Some(&found.label) {
            return Err(Failure::new("the label ModelInfo gives the class", show_box(found)));
        }
    }
    if let Some(pair) = response.boxes.windows(2).find(|pair| pair[0].score < pair[1].score) {
        return Err(Failure::new(
            "scores in descending order",
            format!("{} before {}", show_box(&pair[0]), show_box(&pair[1])),
        ));
    }
    for (index, a) in response.boxes.iter().enumerate() {
        for b in &response.boxes[index + 1..] {
            // Clipping to the image can only shrink boxes; a hair of slack
            // absorbs float rounding in the mapping back to image pixels.
            if a.class_id == b.class_id && iou(&corners(a), &corners(b)) > threshold + 1e-3 {
                return Err(Failure::new(
                    format!("no two boxes of one class overlapping above IoU {threshold}"),
                    format!(
                        "{} and {} overlap {:.3}",
                        show_box(a),
                        show_box(b),
                        iou(&corners(a), &corners(b))
                    ),
                ));
            }
        }
    }
    let expected_defects: Vec<&BoundingBox> =
        response.boxes.iter().filter(|found| info.defect_classes.contains(&found.label)).collect();
    let defects: Vec<&BoundingBox> =
        response.defects.iter().filter_map(|defect| defect.r#box.as_ref()).collect();
    if defects != expected_defects || response.defects.iter().any(|defect| defect.r#box.is_none()) {
        return Err(Failure::new(
            "defects: the boxes of defect classes, in order",
            format!("{} defects", defects.len()),
        ));
    }
    for defect in &response.defects {
        let found = defect.r#box.as_ref().expect("checked above");
        let area = (found.x2 - found.x1) * (found.y2 - found.y1) / (width * height);
        if defect.kind != found.label || (defect.area_fraction - area).abs() > 1e-4 {
            return Err(Failure::new(
                format!("kind {:?} and area_fraction {area}", found.label),
                format!("{:?} and {}", defect.kind, defect.area_fraction),
            ));
        }
    }
    if request.return_segmentation {
        let map = class_map(response, scene.width, scene.height)?;
        let classes = info.labels.len() as u32;
        if let Some(value) = map.iter().find(|&&value| value > classes) {
            return Err(Failure::new(format!("class map values in 0..={classes}"), value.to_string()));
        }
        // A pixel belongs to a detection only inside its box.
        for (index, &value) in map.iter().enumerate() {
            if value == 0 {
                continue;
            }
            let (x, y) =
                ((index as u32 % scene.width) as f32 + 0.5, (index as u32 / scene.width) as f32 + 0.5);
            let inside = response.boxes.iter().any(|found| {
                found.class_id + 1 == value && found.x1 <= x && x < found.x2 && found.y1 <= y && y < found.y2
            });
            if !inside {
                return Err(Failure::new(
                    "masked pixels only inside a box of their class",
                    format!("pixel ({}, {}) has value {value}", x - 0.5, y - 0.5),
                ));
            }
        }
    } else if response.segmentation.is_some() {
        return Err(Failure::new("no segmentation unless asked for", "a segmentation"));
    }
    Ok(())
}
