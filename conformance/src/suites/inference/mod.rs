//! `inference.InferenceMethods`: detections that can be predicted, checked
//! against planted squares, the invariants of YOLO postprocessing on
//! arbitrary pictures, every error the contract names, and agreement with a
//! second implementation.
//!
//! The planted-square properties rely on the bundled model's guarantees
//! (`models/README.md`), so they run only when `ModelInfo` says the target
//! serves it; the invariants and errors hold for any model.

mod scenes;

use std::{io::Cursor, path::PathBuf, sync::Arc};

use contracts::inference::{
    BoundingBox, InferRequest, InferResponse, ModelInfoRequest, ModelInfoResponse,
    inference_methods_client::InferenceMethodsClient,
};
use proptest::prelude::*;
use tonic::{Code, transport::Channel};

use self::scenes::Scene;
use super::*;
use crate::launcher::Launched;

const SERVICE: &str = "inference.InferenceMethods";

/// The contract's defaults, which a request's zeros stand for.
const DEFAULT_CONFIDENCE: f32 = 0.25;
const DEFAULT_IOU: f32 = 0.45;
const DEFAULT_MAX_DETECTIONS: usize = 300;

/// A planted square counts as found by a box with at least this IoU.
const FOUND_IOU: f32 = 0.5;
/// Share of a planted square's pixels its mask must cover
/// (`models/README.md` guarantees 75 %).
const MASK_COVERAGE: f64 = 0.75;

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

/// Whether the target serves the bundled squares model, whose detections
/// the planted-square properties predict.
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

/// Planted squares are each found once, by a `defect` box, and nothing
/// else is; with `masks`, the segmentation covers each square.
async fn planted_property(ctx: Arc<Context>, property: &str, masks: bool) -> Verdict {
    if let Err(verdict) = bundled_model(&ctx).await {
        return verdict;
    }
    let name = format!("{SERVICE}/Infer/{property}");
    let cases = ctx.settings.cases.div_ceil(2);
    crate::property::check_n(ctx, &name, cases, scenes::planted, show_scene, move |ctx, scene| async move {
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

async fn blank_images(ctx: Arc<Context>) -> Verdict {
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
    let cases = ctx.settings.cases.div_ceil(4);
    let show = |_: &Context, input: &(Scene, f32)| (format!("{input:?}"), None);
    crate::property::check_n(ctx, &name, cases, strategy, show, |ctx, (scene, confidence)| async move {
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

/// Thresholds as a request carries them: 0 (the default) or a value.
fn threshold() -> impl Strategy<Value = f32> {
    prop_oneof![Just(0.0f32), 0.01f32..=1.0]
}

async fn invariants(ctx: Arc<Context>) -> Verdict {
    let info = match model_info(ctx.channel.clone()).await {
        Ok(info) => info,
        Err(failure) => return Verdict::Failed(failure),
    };
    let strategy =
        || (scenes::arbitrary(), threshold(), threshold(), prop_oneof![Just(0u32), 1u32..=4], any::<bool>());
    let name = format!("{SERVICE}/Infer/postprocessing-invariants");
    let cases = ctx.settings.cases.div_ceil(2);
    let show = |_: &Context, input: &(Scene, f32, f32, u32, bool)| (format!("{input:?}"), None);
    let info = Arc::new(info);
    crate::property::check_n(
        ctx,
        &name,
        cases,
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

/// Every kind of unusable image, and the codes the contract allows for it.
fn unusable_images() -> Vec<(&'static str, Vec<u8>, &'static [Code])> {
    let scene = |encoding| {
        Scene {
            width: 64,
            height: 48,
            rectangles: vec![(8, 8, 20, 20)],
            bright: 240,
            noise: 30,
            seed: 7,
            encoding,
        }
        .encode()
    };
    let half = |bytes: Vec<u8>| bytes[..bytes.len() / 2].to_vec();
    let gif = {
        let mut out = Cursor::new(Vec::new());
        image::RgbImage::new(8, 8).write_to(&mut out, image::ImageFormat::Gif).expect("encoding to memory");
        out.into_inner()
    };
    // A real PNG whose header claims 100000 x 100000 pixels: 30 GB to decode.
    let mut bomb = scene(scenes::Encoding::Png);
    bomb[16..24].copy_from_slice(&[100_000u32.to_be_bytes(), 100_000u32.to_be_bytes()].concat());
    let crc = crc32fast::hash(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    let invalid: &[Code] = &[Code::InvalidArgument];
    vec![
        ("empty", Vec::new(), invalid),
        ("not an image", b"this is not an image".to_vec(), invalid),
        ("a GIF", gif, invalid),
        ("a truncated PNG", half(scene(scenes::Encoding::Png)), invalid),
        ("a truncated JPEG", half(scene(scenes::Encoding::Jpeg)), invalid),
        ("a truncated WebP", half(scene(scenes::Encoding::WebP)), invalid),
        ("a PNG declaring 10^10 pixels", bomb, &[Code::InvalidArgument, Code::ResourceExhausted]),
    ]
}

async fn bad_images(ctx: &Context) -> Result<(), Failure> {
    for (what, bytes, codes) in unusable_images() {
        let request = InferRequest { image_bytes: bytes.into(), ..Default::default() };
        match infer(ctx.channel.clone(), request).await {
            Err(status) if codes.contains(&status.code()) => {}
            Err(status) => return Err(Failure::new(format!("{codes:?} for {what}"), status.to_string())),
            Ok(_) => return Err(Failure::new(format!("{codes:?} for {what}"), "OK")),
        }
    }
    Ok(())
}

async fn bad_thresholds(ctx: &Context) -> Result<(), Failure> {
    let image = Scene {
        width: 32,
        height: 32,
        rectangles: vec![],
        bright: 240,
        noise: 0,
        seed: 0,
        encoding: scenes::Encoding::Png,
    }
    .encode();
    for value in [f32::NAN, -0.1, 1.01, f32::INFINITY, f32::NEG_INFINITY, -0.0001] {
        for field in ["confidence_threshold", "iou_threshold"] {
            let mut request = InferRequest { image_bytes: image.clone().into(), ..Default::default() };
            match field {
                "confidence_threshold" => request.confidence_threshold = value,
                _ => request.iou_threshold = value,
            }
            match infer(ctx.channel.clone(), request).await {
                Err(status) if status.code() == Code::InvalidArgument => {}
                other => {
                    return Err(Failure::new(
                        format!("INVALID_ARGUMENT for {field} = {value}"),
                        other.map(|_| "OK".to_owned()).unwrap_or_else(|status| status.to_string()),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The detection-only twin of the bundled model.
fn detection_only_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/squares-det.onnx")
}

async fn segmentation_needs_mask_head(ctx: Arc<Context>) -> Verdict {
    let info = match model_info(ctx.channel.clone()).await {
        Ok(info) => info,
        Err(failure) => return Verdict::Failed(failure),
    };
    // The target itself, when its model has no mask head; otherwise another
    // instance of it serving the detection-only model.
    let mut relaunched: Option<Launched> = None;
    let channel = if info.has_segmentation {
        let Some(launcher) = &ctx.uploads.launcher else {
            return Verdict::Skipped {
                reason:
                    "the target's model has a mask head, and the suite cannot start the target with another"
                        .to_owned(),
            };
        };
        match launcher.launch_with_model(&detection_only_model()).await {
            Ok(launched) => {
                let url = launched.url();
                relaunched = Some(launched);
                match tonic::transport::Endpoint::from_shared(url).expect("a URL").connect().await {
                    Ok(channel) => channel,
                    Err(err) => {
                        return Verdict::failed("a connection to the relaunched target", err.to_string());
                    }
                }
            }
            Err(err) => {
                return Verdict::failed(
                    "the target to start with --model squares-det.onnx",
                    format!("{err:#}"),
                );
            }
        }
    } else {
        ctx.channel.clone()
    };
    let scene = Scene {
        width: 128,
        height: 128,
        rectangles: vec![(20, 20, 40, 40)],
        bright: 240,
        noise: 0,
        seed: 0,
        encoding: scenes::Encoding::Png,
    };
    let request = InferRequest { return_segmentation: true, ..request(&scene) };
    let outcome = infer(channel, request).await;
    drop(relaunched);
    match outcome {
        Err(status) if status.code() == Code::FailedPrecondition && !status.message().is_empty() => {
            Verdict::Passed
        }
        Err(status) => Verdict::failed("FAILED_PRECONDITION with a message", status.to_string()),
        Ok(_) => Verdict::failed("FAILED_PRECONDITION", "OK"),
    }
}

async fn agrees_with_reference(ctx: Arc<Context>) -> Verdict {
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
    let cases = ctx.settings.cases.div_ceil(2);
    // Pictures whose detections do not hinge on how a decoder or a resizing
    // filter rounds: planted squares at any size, anything lossless that
    // needs no resampling.
    let strategy = || (prop_oneof![scenes::planted(), scenes::arbitrary_exact()], any::<bool>());
    let show = |_: &Context, input: &(Scene, bool)| (format!("{input:?}"), None);
    crate::property::check_n(ctx, &name, cases, strategy, show, move |ctx, (scene, masks)| {
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

fn show_boxes(boxes: &[BoundingBox]) -> String {
    boxes.iter().map(show_box).collect::<Vec<_>>().join("; ")
}
