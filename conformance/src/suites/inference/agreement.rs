//! Agreement with a second implementation serving the same model
//! (`--reference`), within the tolerance `proto/inference/README.md`
//! documents.

use std::sync::Arc;

use contracts::inference::{BoundingBox, InferRequest, InferResponse};
use proptest::prelude::*;

use super::{
    Context, Failure, SERVICE, Verdict, bundled_model, class_map, corners, infer, model_info, request,
    scenes::{self, Scene},
    show_box,
};

pub(super) async fn agrees_with_reference(ctx: Arc<Context>) -> Verdict {
    let Some(reference) = ctx.reference.clone() else {
        return Verdict::Skipped {
            reason: "no reference implementation to compare with (--reference-cmd)".to_owned(),
        };
    };
    let ours = match bundled_model(&ctx).await {
        Ok(info) => info,
        Err(verdict) => return verdict,
    };
    let theirs = match model_info(reference.channel.clone()).await {
        Ok(info) => info,
        Err(failure) => return Verdict::Failed(failure),
    };
    if theirs.labels != ours.labels || theirs.input_shape != ours.input_shape {
        return Verdict::Skipped { reason: "the reference serves another model".to_owned() };
    }
    let name = format!("{SERVICE}/Infer/agrees-with-the-reference");
    let inputs = ctx.settings.inputs.div_ceil(2);
    // Pictures whose detections do not hinge on how a decoder or a resizing
    // filter rounds: planted squares at any size, anything lossless that
    // needs no resampling.
    let strategy = || (prop_oneof![scenes::planted(), scenes::arbitrary_exact()], any::<bool>());
    let show = |_: &Context, input: &(Scene, bool)| (format!("{input:?}"), None);
    crate::property::check_n(ctx, &name, inputs, strategy, show, move |ctx, (scene, masks)| {
        let reference = reference.clone();
        async move {
            let request = InferRequest { return_segmentation: masks, ..request(&scene) };
            let ours = infer(ctx.channel.clone(), request.clone()).await;
            let theirs = infer(reference.channel.clone(), request).await;
            match (ours, theirs) {
                (Ok(ours), Ok(theirs)) => agree(&scene, &ours, &theirs, &reference.label),
                (Err(ours), Err(theirs)) if ours.code() == theirs.code() => Ok(()),
                (ours, theirs) => Err(Failure::new(
                    format!("the same outcome as {}", reference.label),
                    format!(
                        "{:?} here, {:?} there",
                        ours.map(|_| "OK").map_err(|s| s.code()),
                        theirs.map(|_| "OK").map_err(|s| s.code())
                    ),
                )),
            }
        }
    })
    .await
}

/// The tolerance `proto/inference/README.md` documents: same boxes and
/// classes, scores within 0.01, corners within 1 px + 1 % of the longer side
/// (0.01 px when nothing was resampled), class maps differing on at most
/// 2 % of pixels.
fn agree(scene: &Scene, ours: &InferResponse, theirs: &InferResponse, label: &str) -> Result<(), Failure> {
    let exact = scene.width.max(scene.height) == 640;
    let tolerance = if exact { 0.01 } else { 1.0 + 0.01 * scene.width.max(scene.height) as f32 };
    let order = |response: &InferResponse| {
        let mut boxes = response.boxes.clone();
        boxes.sort_by(|a, b| {
            b.score.total_cmp(&a.score).then(a.x1.total_cmp(&b.x1)).then(a.y1.total_cmp(&b.y1))
        });
        boxes
    };
    let (mine, other) = (order(ours), order(theirs));
    let differ = || {
        Failure::new(
            format!("the boxes {label} returns, within {tolerance} px"),
            format!("here: {}\n{label}: {}", show_boxes(&mine), show_boxes(&other)),
        )
    };
    if mine.len() != other.len() {
        return Err(differ());
    }
    for (a, b) in mine.iter().zip(&other) {
        let close = corners(a).iter().zip(corners(b)).all(|(p, q)| (p - q).abs() <= tolerance);
        if a.class_id != b.class_id || (a.score - b.score).abs() > 0.01 || !close {
            return Err(differ());
        }
    }
    if ours.segmentation.is_some() {
        let (a, b) =
            (class_map(ours, scene.width, scene.height)?, class_map(theirs, scene.width, scene.height)?);
        let differing = a.iter().zip(&b).filter(|(p, q)| p != q).count();
        if differing as f64 > 0.02 * a.len() as f64 {
            return Err(Failure::new(
                format!("class maps like {label}'s, differing on at most 2% of pixels"),
                format!("{differing} of {} pixels differ", a.len()),
            ));
        }
    }
    Ok(())
}

fn show_boxes(boxes: &[BoundingBox]) -> String {
    boxes.iter().map(show_box).collect::<Vec<_>>().join("; ")
}
