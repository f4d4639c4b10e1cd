use std::io::Cursor;

use contracts::inference::{
    InferRequest, ModelInfoRequest, inference_methods_client::InferenceMethodsClient,
};
use image::RgbImage;
use services::{
    Config,
    inference::{InferenceConfig, ModelSource},
};
use tonic::{Code, transport::Channel};

use crate::support::{assert_code, start, start_with};

/// A dark `width` × `height` PNG with bright squares `(x, y, side)`.
fn squares_png(width: u32, height: u32, squares: &[(u32, u32, u32)]) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, y| {
        let inside = squares
            .iter()
            .any(|&(sx, sy, side)| (sx..sx + side).contains(&x) && (sy..sy + side).contains(&y));
        if inside { image::Rgb([240, 240, 240]) } else { image::Rgb([20, 20, 20]) }
    });
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn request(image_bytes: Vec<u8>) -> InferRequest {
    InferRequest { image_bytes: image_bytes.into(), ..Default::default() }
}

/// The release `tools/onnxruntime.txt` pins, the one place that names it.
fn pinned_onnxruntime() -> String {
    let pin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/onnxruntime.txt");
    let text = std::fs::read_to_string(pin).unwrap();
    text.lines().find_map(|line| line.strip_prefix("onnxruntime==")).unwrap().to_owned()
}

async fn client() -> (services::RunningServer, InferenceMethodsClient<Channel>) {
    let (server, channel) = start().await;
    (server, InferenceMethodsClient::new(channel))
}

#[tokio::test]
async fn model_info_describes_the_bundled_model() {
    let (_server, mut client) = client().await;
    let info = client.model_info(ModelInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.input_shape, [1, 3, 640, 640]);
    assert_eq!(info.labels, ["defect", "scratch"]);
    assert_eq!(info.execution_provider, "CPUExecutionProvider");
    assert_eq!(info.onnxruntime_version, pinned_onnxruntime());
    assert!(info.has_segmentation);
    assert_eq!(info.model, "bundled");
}

#[tokio::test]
async fn planted_squares_are_found_exactly_when_no_resampling_is_needed() {
    let (_server, mut client) = client().await;
    // Longer side 640: the image is not resampled, so boxes are exact.
    let squares = [(40, 30, 50), (300, 200, 120)];
    let mut asked = request(squares_png(640, 480, &squares));
    asked.return_segmentation = true;
    let response = client.infer(asked).await.unwrap().into_inner();
    assert_eq!((response.image_width, response.image_height), (640, 480));
    let mut found: Vec<_> =
        response.boxes.iter().map(|b| (b.x1, b.y1, b.x2, b.y2, b.label.as_str())).collect();
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(found, [(40.0, 30.0, 90.0, 80.0, "defect"), (300.0, 200.0, 420.0, 320.0, "defect")]);
    assert_eq!(response.defects.len(), 2);
    let small = response.defects.iter().find(|d| d.r#box.as_ref().unwrap().x1 == 40.0).unwrap();
    assert!((small.area_fraction - 2500.0 / (640.0 * 480.0)).abs() < 1e-6);
    let segmentation = response.segmentation.expect("segmentation was asked for");
    assert_eq!((segmentation.width, segmentation.height), (640, 480));
    let total: u32 = segmentation.rle.chunks(2).map(|run| run[1]).sum();
    assert_eq!(total, 640 * 480);
    let labelled: u32 = segmentation.rle.chunks(2).filter(|run| run[0] == 1).map(|run| run[1]).sum();
    let planted = 50 * 50 + 120 * 120;
    assert!(labelled.abs_diff(planted) <= planted / 20, "mask covers {labelled} pixels of {planted}");
    let timing = response.timing.unwrap();
    assert!(timing.inference_us > 0);
}

#[tokio::test]
async fn a_blank_image_has_no_detections() {
    let (_server, mut client) = client().await;
    let response = client.infer(request(squares_png(300, 200, &[]))).await.unwrap().into_inner();
    assert!(response.boxes.is_empty(), "{:?}", response.boxes);
}

#[tokio::test]
async fn bad_images_are_invalid_arguments() {
    let (_server, mut client) = client().await;
    let png = squares_png(64, 64, &[(8, 8, 20)]);
    for (what, bytes) in [
        ("empty", Vec::new()),
        ("not an image", b"hello, world".to_vec()),
        ("truncated", png[..png.len() / 2].to_vec()),
    ] {
        let status = assert_code(client.infer(request(bytes)).await, Code::InvalidArgument);
        assert!(!status.message().is_empty(), "{what}");
    }
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_from_its_header() {
    let (_server, mut client) = client().await;
    // A valid small PNG whose header is rewritten to declare 100000 x 100000
    // pixels: 30 GB decoded, from a file of a few hundred bytes.
    let mut bomb = squares_png(16, 16, &[]);
    bomb[16..24].copy_from_slice(&[100_000u32.to_be_bytes(), 100_000u32.to_be_bytes()].concat());
    let crc = crc32fast::hash(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    let status = assert_code(client.infer(request(bomb)).await, Code::ResourceExhausted);
    assert!(status.message().contains("pixels"), "{status:?}");
}

#[tokio::test]
async fn thresholds_outside_the_unit_interval_are_invalid_arguments() {
    let (_server, mut client) = client().await;
    let png = squares_png(64, 64, &[]);
    for value in [f32::NAN, -0.1, 1.5, f32::INFINITY] {
        let confidence = InferRequest { confidence_threshold: value, ..request(png.clone()) };
        assert_code(client.infer(confidence).await, Code::InvalidArgument);
        let iou = InferRequest { iou_threshold: value, ..request(png.clone()) };
        assert_code(client.infer(iou).await, Code::InvalidArgument);
    }
}

#[tokio::test]
async fn segmentation_from_a_detection_only_model_is_a_failed_precondition() {
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/squares-det.onnx");
    let inference = InferenceConfig { model: ModelSource::File(model), ..Default::default() };
    let (_server, channel) = start_with(Config { inference: Some(inference), ..Default::default() }).await;
    let mut client = InferenceMethodsClient::new(channel);
    assert!(!client.model_info(ModelInfoRequest {}).await.unwrap().into_inner().has_segmentation);
    let png = squares_png(640, 640, &[(100, 100, 40)]);
    let boxes = client.infer(request(png.clone())).await.unwrap().into_inner().boxes;
    assert_eq!(boxes.len(), 1);
    let asked = InferRequest { return_segmentation: true, ..request(png) };
    let status = assert_code(client.infer(asked).await, Code::FailedPrecondition);
    assert!(status.message().contains("mask head"), "{status:?}");
}

#[tokio::test]
async fn a_missing_onnx_runtime_names_the_fix() {
    let inference =
        InferenceConfig { ort_library: Some("/nonexistent/libonnxruntime.so".into()), ..Default::default() };
    let err = services::spawn(Config { inference: Some(inference), ..Default::default() }).await.unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("cargo xtask onnxruntime"), "{message}");
}
