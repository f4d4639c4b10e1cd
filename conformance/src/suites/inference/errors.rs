//! Every error the contract names: unusable images, bad thresholds, and a
//! segmentation asked of a model without a mask head.

use std::{io::Cursor, path::PathBuf, sync::Arc};

use contracts::inference::InferRequest;
use tonic::Code;

use super::{
    Context, Failure, Verdict, infer, model_info, request,
    scenes::{self, Scene},
};
use crate::launcher::Change;

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

pub(super) async fn bad_images(ctx: &Context) -> Result<(), Failure> {
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

pub(super) async fn bad_thresholds(ctx: &Context) -> Result<(), Failure> {
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

pub(super) async fn segmentation_needs_mask_head(ctx: Arc<Context>) -> Verdict {
    let info = match model_info(ctx.channel.clone()).await {
        Ok(info) => info,
        Err(failure) => return Verdict::Failed(failure),
    };
    // The target itself, when its model has no mask head; otherwise another
    // instance of it serving the detection-only model.
    let relaunched = if info.has_segmentation {
        let Some(launcher) = &ctx.launcher else {
            return Verdict::Skipped {
                reason:
                    "the target's model has a mask head, and the suite cannot start the target with another"
                        .to_owned(),
            };
        };
        match launcher.launch(Change::Model(detection_only_model())).await {
            Ok(launched) => Some(launched),
            Err(err) => {
                return Verdict::failed(
                    "the target to start with --model squares-det.onnx",
                    format!("{err:#}"),
                );
            }
        }
    } else {
        None
    };
    let channel = relaunched.as_ref().map_or_else(|| ctx.channel.clone(), |launched| launched.channel());
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
