//! Pictures whose detections are known in advance: planted squares are
//! each found once, and masked, and blank pictures give nothing. These rely
//! on the bundled model's guarantees (`models/README.md`), so they run only
//! when `ModelInfo` says the target serves it.

use std::sync::Arc;

use contracts::inference::{InferRequest, InferResponse};
use proptest::prelude::*;

use super::{
    Context, Failure, SERVICE, Verdict, bundled_model, class_map, corners, infer, iou, request,
    scenes::{self, Scene},
    show_box, show_scene,
};

/// A planted square counts as found by a box with at least this IoU.
const FOUND_IOU: f32 = 0.5;
/// Share of a planted square's pixels its mask must cover
/// (`models/README.md` guarantees 75 %).
const MASK_COVERAGE: f64 = 0.75;

/// Planted squares are each found once, by a `defect` box, and nothing
/// else is; with `masks`, the segmentation covers each square.
pub(super) async fn planted_property(ctx: Arc<Context>, property: &str, masks: bool) -> Verdict {
    if let Err(verdict) = bundled_model(&ctx).await {
        return verdict;
    }
    let name = format!("{SERVICE}/Infer/{property}");
    let inputs = ctx.settings.inputs.div_ceil(2);
    crate::property::check_n(ctx, &name, inputs, scenes::planted, show_scene, move |ctx, scene| async move {
        let mut request = request(&scene);
        request.return_segmentation = masks;
        let response = infer(ctx.channel.clone(), request)
            .await
            .map_err(|status| Failure::new("a response", status.to_string()))?;
        check_planted(&scene, &response)?;
        if masks {
            check_masks(&scene, &response)?;
        }
        Ok(())
    })
    .await
}

fn check_planted(scene: &Scene, response: &InferResponse) -> Result<(), Failure> {
    let squares = scene.squares();
    for square in &squares {
        let best = response
            .boxes
            .iter()
            .map(|found| (iou(&corners(found), &square.corners()), found))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match best {
            Some((overlap, found)) if overlap >= FOUND_IOU && found.label == "defect" => {}
            Some((overlap, found)) => {
                return Err(Failure::new(
                    format!("a defect box on the square {square:?} with IoU >= {FOUND_IOU}"),
                    format!("the best box is {} with IoU {overlap:.3}", show_box(found)),
                ));
            }
            None => return Err(Failure::new(format!("a box on the square {square:?}"), "no boxes")),
        }
    }
    if let Some(extra) = response
        .boxes
        .iter()
        .find(|found| squares.iter().all(|square| iou(&corners(found), &square.corners()) < FOUND_IOU))
    {
        return Err(Failure::new("boxes only on the planted squares", format!("also {}", show_box(extra))));
    }
    if response.defects.len() != squares.len() {
        return Err(Failure::new(
            format!("{} defects", squares.len()),
            format!("{} defects", response.defects.len()),
        ));
    }
    Ok(())
}

fn check_masks(scene: &Scene, response: &InferResponse) -> Result<(), Failure> {
    let map = class_map(response, scene.width, scene.height)?;
    for square in scene.squares() {
        let mut covered = 0u64;
        for y in square.y..square.y + square.side {
            for x in square.x..square.x + square.side {
                covered += u64::from(map[(y * scene.width + x) as usize] == 1);
            }
        }
        let coverage = covered as f64 / f64::from(square.side * square.side);
        if coverage < MASK_COVERAGE {
            return Err(Failure::new(
                format!("class 0 on at least {:.0}% of the square {square:?}", MASK_COVERAGE * 100.0),
                format!("{:.1}%", coverage * 100.0),
            ));
        }
    }
    Ok(())
}

pub(super) async fn blank_images(ctx: Arc<Context>) -> Verdict {
    if let Err(verdict) = bundled_model(&ctx).await {
        return verdict;
    }
    let strategy = || {
        (scenes::planted(), 0.01f32..=1.0).prop_map(|(mut scene, confidence)| {
            scene.rectangles.clear();
            (scene, confidence)
        })
    };
    let name = format!("{SERVICE}/Infer/nothing-on-blank-images");
    let inputs = ctx.settings.inputs.div_ceil(4);
    let show = |_: &Context, input: &(Scene, f32)| (format!("{input:?}"), None);
    crate::property::check_n(ctx, &name, inputs, strategy, show, |ctx, (scene, confidence)| async move {
        let request = InferRequest { confidence_threshold: confidence, ..request(&scene) };
        let response = infer(ctx.channel.clone(), request)
            .await
            .map_err(|status| Failure::new("a response", status.to_string()))?;
        match response.boxes.first() {
            None => Ok(()),
            Some(found) => Err(Failure::new("no boxes on a blank image", show_box(found))),
        }
    })
    .await
}
