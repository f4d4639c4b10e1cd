//! A harness is worth the faults it catches. Each server here has exactly one
//! deliberate bug; each test asserts that the suite reports it as a failure
//! of the right case, with a shrunk counterexample.

mod support;

use std::time::Duration;

use contracts::{
    calculator::{CubeRequest, CubeResponse, calculator_server},
    coreservices::{
        ChatMessage, NumberMessage, PingRequest, PingResponse, StreamNumbersRequest, UploadNumbersResponse,
        core_services_server,
    },
    inference::{InferRequest, InferResponse, ModelInfoRequest, ModelInfoResponse, inference_methods_server},
    streaming::{NumberResponse, StreamRequest, number_streamer_server},
    uploader::{ImageChunk, UploadSummary, uploader_service_server},
};
use services::coreservices::CoreServices as OurCoreServices;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use support::{Boxed, failure_of};

// --- an off-by-one at the end of a stream -----------------------------------

struct DropsLastValue;

#[tonic::async_trait]
impl number_streamer_server::NumberStreamer for DropsLastValue {
    type StreamNumbersStream = Boxed<NumberResponse>;

    async fn stream_numbers(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<Self::StreamNumbersStream>, Status> {
        let StreamRequest { start, end, .. } = request.into_inner();
        if start > end || i128::from(end) - i128::from(start) >= 1_000_000 {
            return Err(Status::invalid_argument("bad range"));
        }
        // The bug: `..` where the contract says `..=`.
        let values: Vec<_> = (start..end).map(|value| Ok(NumberResponse { value })).collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(values))))
    }
}

#[tokio::test]
async fn an_off_by_one_at_the_end_of_a_stream() {
    let url = support::serve(
        |mut s| s.add_service(number_streamer_server::NumberStreamerServer::new(DropsLastValue)),
        &["streaming.NumberStreamer"],
    )
    .await;
    let failure =
        failure_of(&url, "declared/streaming.NumberStreamer/StreamNumbers/expect/whole-range-in-order").await;
    let input = failure.input.expect("a counterexample");
    assert!(input.contains("start") || input.contains("end"), "{input}");
    assert!(failure.reproduce.unwrap().starts_with("buf curl"));
}

// --- a dropped last chunk -----------------------------------------------------

struct DropsLastChunk;

#[tonic::async_trait]
impl uploader_service_server::UploaderService for DropsLastChunk {
    async fn upload_image(
        &self,
        request: Request<Streaming<ImageChunk>>,
    ) -> Result<Response<UploadSummary>, Status> {
        let mut chunks = request.into_inner();
        let mut summary = UploadSummary::default();
        let mut pending: Option<ImageChunk> = None;
        while let Some(chunk) = chunks.message().await? {
            // The bug: each chunk is counted only when the next one arrives.
            if let Some(previous) = pending.replace(chunk) {
                summary.total_chunks += 1;
                summary.total_bytes += previous.data.len() as i64;
            }
        }
        Ok(Response::new(summary))
    }
}

#[tokio::test]
async fn a_dropped_last_chunk() {
    let url = support::serve(
        |mut s| s.add_service(uploader_service_server::UploaderServiceServer::new(DropsLastChunk)),
        &["uploader.UploaderService"],
    )
    .await;
    let failure =
        failure_of(&url, "declared/uploader.UploaderService/UploadImage/expect/counts-chunks-and-bytes")
            .await;
    // Shrunk to the smallest upload that shows it: a single empty chunk.
    let input = failure.input.unwrap();
    assert!(input.starts_with("a stream of 1:"), "{input}");
}

// --- a wrong status code ------------------------------------------------------

struct WrongCode;

#[tonic::async_trait]
impl calculator_server::Calculator for WrongCode {
    async fn cube(&self, request: Request<CubeRequest>) -> Result<Response<CubeResponse>, Status> {
        let number = request.into_inner().number;
        match number.checked_mul(number).and_then(|square| square.checked_mul(number)) {
            Some(result) if number.abs() <= 2_097_151 => Ok(Response::new(CubeResponse { result })),
            // The bug: INVALID_ARGUMENT where the contract says OUT_OF_RANGE.
            _ => Err(Status::invalid_argument("too big")),
        }
    }
}

#[tokio::test]
async fn a_wrong_status_code() {
    let url = support::serve(
        |mut s| s.add_service(calculator_server::CalculatorServer::new(WrongCode)),
        &["calculator.Calculator"],
    )
    .await;
    let failure = failure_of(&url, "declared/calculator.Calculator/Cube/expect/out-of-range").await;
    assert!(failure.expected.starts_with("OUT_OF_RANGE"), "{failure:?}");
    assert!(failure.actual.contains("InvalidArgument"), "{}", failure.actual);
    // Shrunk to just past an edge of the valid range (either sign).
    let input = failure.input.unwrap();
    assert!(input.contains("209715"), "{input}");
}

// --- an ignored deadline -------------------------------------------------------

struct IgnoresDeadline;

#[tonic::async_trait]
impl number_streamer_server::NumberStreamer for IgnoresDeadline {
    type StreamNumbersStream = Boxed<NumberResponse>;

    async fn stream_numbers(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<Self::StreamNumbersStream>, Status> {
        let StreamRequest { start, end, interval_ms } = request.into_inner();
        if start > end || i128::from(end) - i128::from(start) >= 1_000_000 {
            return Err(Status::invalid_argument("bad range"));
        }
        // The bug: grpc-timeout is never looked at, so the stream outlives it.
        let interval = Duration::from_millis(u64::from(interval_ms));
        let values = tokio_stream::iter(start..=end).then(move |value| async move {
            if value != start {
                tokio::time::sleep(interval).await;
            }
            Ok(NumberResponse { value })
        });
        Ok(Response::new(Box::pin(values)))
    }
}

#[tokio::test]
async fn an_ignored_deadline() {
    let url = support::serve(
        |mut s| s.add_service(number_streamer_server::NumberStreamerServer::new(IgnoresDeadline)),
        &["streaming.NumberStreamer"],
    )
    .await;
    let failure = failure_of(&url, "streaming.NumberStreamer/StreamNumbers/deadline-on-slow-stream").await;
    assert_eq!(failure.expected, "DeadlineExceeded");
    assert!(failure.actual.contains("no answer"), "{}", failure.actual);
    assert!(failure.input.unwrap().contains("interval_ms: 60000"));
}

// --- CoreServices faults: overflow, reordering, held replies -------------------

#[derive(Clone, Copy)]
enum CoreFault {
    WrapsOnOverflow,
    ReordersReplies,
    HoldsRepliesUntilHalfClose,
}

struct FaultyCore(CoreFault);

#[tonic::async_trait]
impl core_services_server::CoreServices for FaultyCore {
    async fn ping(&self, request: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        OurCoreServices.ping(request).await
    }

    type StreamNumbersStream = <OurCoreServices as core_services_server::CoreServices>::StreamNumbersStream;

    async fn stream_numbers(
        &self,
        request: Request<StreamNumbersRequest>,
    ) -> Result<Response<Self::StreamNumbersStream>, Status> {
        OurCoreServices.stream_numbers(request).await
    }

    async fn upload_numbers(
        &self,
        request: Request<Streaming<NumberMessage>>,
    ) -> Result<Response<UploadNumbersResponse>, Status> {
        let CoreFault::WrapsOnOverflow = self.0 else { return OurCoreServices.upload_numbers(request).await };
        let mut numbers = request.into_inner();
        let mut summary = UploadNumbersResponse::default();
        while let Some(NumberMessage { value }) = numbers.message().await? {
            // The bug: the sum wraps instead of failing with OUT_OF_RANGE.
            summary.sum = summary.sum.wrapping_add(value);
            (summary.min, summary.max) = if summary.count == 0 {
                (value, value)
            } else {
                (summary.min.min(value), summary.max.max(value))
            };
            summary.count += 1;
        }
        Ok(Response::new(summary))
    }

    type ChatStream = Boxed<ChatMessage>;

    async fn chat(
        &self,
        request: Request<Streaming<ChatMessage>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        let fault = self.0;
        if let CoreFault::WrapsOnOverflow = fault {
            return OurCoreServices.chat(request).await;
        }
        let mut inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut held = Vec::new();
            let mut seq = 0;
            while let Ok(Some(message)) = inbound.message().await {
                held.push(ChatMessage { text: message.text, seq, sender: "server".into() });
                seq += 1;
                // The bugs: replies go out in swapped pairs, or not until the
                // client half-closes.
                if matches!(fault, CoreFault::ReordersReplies) && held.len() == 2 {
                    held.reverse();
                    for reply in held.drain(..) {
                        let _ = tx.send(Ok(reply)).await;
                    }
                }
            }
            for reply in held {
                let _ = tx.send(Ok(reply)).await;
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

async fn serve_core(fault: CoreFault) -> String {
    support::serve(
        move |mut s| s.add_service(core_services_server::CoreServicesServer::new(FaultyCore(fault))),
        &["coreservices.CoreServices"],
    )
    .await
}

#[tokio::test]
async fn a_wrong_sum_on_overflow() {
    let url = serve_core(CoreFault::WrapsOnOverflow).await;
    let failure = failure_of(&url, "coreservices.CoreServices/UploadNumbers/summary").await;
    assert_eq!(failure.expected, "OutOfRange");
    // Shrunk to two numbers whose sum leaves int64.
    let input = failure.input.unwrap();
    assert!(input.contains("#1") && !input.contains("#2"), "{input}");
}

#[tokio::test]
async fn reordered_bidi_replies() {
    let url = serve_core(CoreFault::ReordersReplies).await;
    let failure = failure_of(&url, "declared/coreservices.CoreServices/Chat/expect/echo-in-order").await;
    // Shrunk to the two messages it takes to swap.
    let input = failure.input.unwrap();
    assert!(input.contains("#1") && !input.contains("#2"), "{input}");
}

#[tokio::test]
async fn bidi_replies_held_until_half_close() {
    let url = serve_core(CoreFault::HoldsRepliesUntilHalfClose).await;
    // Each failing input costs a watchdog wait, so shrinking gets far only
    // from small inputs: this fault needs no large ones.
    let settings =
        conformance::context::Settings { sizes: harness::arbitrary::Sizes::SMALL, ..support::settings() };
    let results = support::run(&url, &["coreservices.CoreServices/Chat/lockstep-echo"], settings).await;
    let failure = support::verdict(&results, "coreservices.CoreServices/Chat/lockstep-echo")
        .failure()
        .expect("the planted fault is noticed")
        .clone();
    assert!(failure.actual.contains("no answer"), "{}", failure.actual);
    // One message is enough to show it.
    let input = failure.input.unwrap();
    assert!(!input.contains("#1"), "{input}");
}

// --- inference: boxes left in the model's input coordinates ------------------

/// Our detector, with one fault applied to each response.
struct FaultyDetector {
    engine: std::sync::Arc<services::inference::Engine>,
    fault: fn(&InferRequest, &mut InferResponse),
}

#[tonic::async_trait]
impl inference_methods_server::InferenceMethods for FaultyDetector {
    async fn infer(&self, request: Request<InferRequest>) -> Result<Response<InferResponse>, Status> {
        let request = request.into_inner();
        let mut response = self.engine.infer(&request)?;
        (self.fault)(&request, &mut response);
        Ok(Response::new(response))
    }

    async fn model_info(&self, _: Request<ModelInfoRequest>) -> Result<Response<ModelInfoResponse>, Status> {
        Ok(Response::new(self.engine.info()))
    }
}

async fn serve_detector(fault: fn(&InferRequest, &mut InferResponse)) -> String {
    let engine = tokio::task::spawn_blocking(|| {
        services::inference::Engine::load(&services::inference::InferenceConfig::default())
    })
    .await
    .unwrap()
    .expect("ONNX Runtime is fetched by `cargo xtask onnxruntime`");
    let detector = FaultyDetector { engine: std::sync::Arc::new(engine), fault };
    support::serve(
        |mut s| s.add_service(inference_methods_server::InferenceMethodsServer::new(detector)),
        &["inference.InferenceMethods"],
    )
    .await
}

#[tokio::test]
async fn boxes_not_mapped_back_to_the_image() {
    // The bug: boxes stay in letterbox coordinates, as if every image were
    // 640x640 (and are clipped to the image as the contract says).
    let url = serve_detector(|_, response| {
        let (width, height) = (response.image_width as f32, response.image_height as f32);
        let scale = (640.0 / width).min(640.0 / height);
        let left = ((640.0 - (width * scale).round()) / 2.0 - 0.1).round();
        let top = ((640.0 - (height * scale).round()) / 2.0 - 0.1).round();
        for found in &mut response.boxes {
            found.x1 = (found.x1 * scale + left).min(width);
            found.x2 = (found.x2 * scale + left).min(width);
            found.y1 = (found.y1 * scale + top).min(height);
            found.y2 = (found.y2 * scale + top).min(height);
        }
    })
    .await;
    let failure = failure_of(&url, "inference.InferenceMethods/Infer/finds-every-planted-square").await;
    assert!(failure.input.expect("a counterexample").contains("Scene"));
}

#[tokio::test]
async fn max_detections_ignored() {
    let url = serve_detector(|request, response| {
        // The bug: the first box is repeated past the limit.
        if request.max_detections > 0 && !response.boxes.is_empty() {
            let first = response.boxes[0].clone();
            response.boxes.resize(request.max_detections as usize + 1, first);
        }
    })
    .await;
    let failure = failure_of(&url, "inference.InferenceMethods/Infer/postprocessing-invariants").await;
    assert!(failure.expected.contains("at most"), "{failure:?}");
}
