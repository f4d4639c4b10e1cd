//! The gRPC face of the detector: request checks, the pipeline, timing.

use std::{path::PathBuf, sync::Arc, time::Instant};

use anyhow::Result;
use contracts::inference::{
    BoundingBox, Defect, InferRequest, InferResponse, ModelInfoRequest, ModelInfoResponse, Segmentation,
    Timing,
    inference_methods_server::{self, InferenceMethodsServer},
};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use super::{
    detections, image_input, masks,
    model::{Device, Model, ModelSource, SessionOptions},
    request::{self, ModelInput, Prepared},
    runtime::{self, Runtime},
};

/// How the detector is set up.
#[derive(Debug, Clone)]
pub struct InferenceConfig {
    /// The model to serve.
    pub model: ModelSource,
    /// The ONNX Runtime library; `None` means `ORT_DYLIB_PATH`, then the
    /// copy `cargo xtask` fetches.
    pub ort_library: Option<PathBuf>,
    /// Where the model runs.
    pub device: Device,
    /// ONNX Runtime sessions, so that this many calls run at once.
    pub sessions: usize,
    /// Threads each session may use for one forward pass.
    pub intra_threads: usize,
    /// Labels reported as defects.
    pub defect_classes: Vec<String>,
    /// Images declaring more pixels are refused before decoding.
    pub max_pixels: u64,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        InferenceConfig {
            model: ModelSource::Bundled,
            ort_library: None,
            device: Device::Cpu,
            // One session per core, each single-threaded: concurrent calls
            // then scale with cores instead of contending for one thread pool.
            sessions: cores,
            intra_threads: 1,
            defect_classes: vec!["defect".to_owned(), "scratch".to_owned()],
            max_pixels: 40_000_000,
        }
    }
}

/// The loaded model and everything a call needs, usable without gRPC: the
/// inference bench times [`Engine::model`] alone as the floor under the
/// service's latency.
#[derive(Debug)]
pub struct Engine {
    runtime: Runtime,
    model: Model,
    config: InferenceConfig,
}

impl Engine {
    /// Loads ONNX Runtime and the model; fails with a message naming the fix
    /// when either is missing.
    pub fn load(config: &InferenceConfig) -> Result<Engine> {
        let runtime = runtime::load(config.ort_library.as_deref())?;
        let options = SessionOptions {
            device: config.device,
            sessions: config.sessions,
            intra_threads: config.intra_threads,
        };
        let model = Model::load(&runtime, &config.model, options)?;
        tracing::info!(
            model = %config.model,
            provider = config.device.provider(),
            sessions = config.sessions,
            labels = ?model.labels(),
            "inference model loaded"
        );
        Ok(Engine { runtime, model, config: config.clone() })
    }

    /// The model, for running forward passes directly.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The loaded runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The model's input for `image_bytes`, decoded and letterboxed as
    /// [`Engine::infer`] does it: what [`Model::run`] takes.
    pub fn input_tensor(&self, image_bytes: &[u8]) -> Result<Vec<f32>, Status> {
        let image = image_input::decode(image_bytes, self.config.max_pixels)?;
        let mut input = Vec::new();
        image_input::letterbox(&image, self.model.layout().input_size, &mut input);
        Ok(input)
    }

    /// The whole pipeline for one request. Blocking: decode and the forward
    /// pass take milliseconds.
    pub fn infer(&self, request: &InferRequest) -> Result<InferResponse, Status> {
        let layout = self.model.layout();
        let source = self.model.source().to_string();
        let model = ModelInput {
            size: layout.input_size,
            max_pixels: self.config.max_pixels,
            mask_head: layout.mask_channels > 0,
            model: &source,
        };
        let Prepared { thresholds, input, placement, size, started, decoded, preprocessed } =
            request::prepare(request, &model)?;
        // Postprocessing reads the outputs in place, holding the session for
        // the few hundred microseconds it takes.
        let mut inferred = preprocessed;
        let (kept, segmentation) = self
            .model
            .run(&input, |outputs| {
                inferred = Instant::now();
                let kept = detections::detect(outputs.detections, layout, thresholds, &placement, size);
                let segmentation = request.return_segmentation.then(|| Segmentation {
                    width: size.0,
                    height: size.1,
                    rle: masks::segmentation(
                        outputs.detections,
                        outputs.protos,
                        layout,
                        &placement,
                        &kept,
                        size,
                    ),
                });
                (kept, segmentation)
            })
            .map_err(|err| Status::internal(format!("{err:#}")))?;
        drop(input);
        let labels = self.model.labels();
        let boxes: Vec<BoundingBox> = kept
            .iter()
            .map(|detection| {
                let [x1, y1, x2, y2] = detection.corners;
                BoundingBox {
                    x1,
                    y1,
                    x2,
                    y2,
                    score: detection.score,
                    class_id: detection.class as u32,
                    label: labels[detection.class].clone(),
                }
            })
            .collect();
        let image_area = f64::from(size.0) * f64::from(size.1);
        let defects = boxes
            .iter()
            .filter(|found| self.config.defect_classes.contains(&found.label))
            .map(|found| Defect {
                kind: found.label.clone(),
                score: found.score,
                r#box: Some(found.clone()),
                area_fraction: (f64::from(found.x2 - found.x1) * f64::from(found.y2 - found.y1) / image_area)
                    as f32,
            })
            .collect();
        let finished = Instant::now();
        let micros = |from: Instant, to: Instant| to.duration_since(from).as_micros() as u64;
        Ok(InferResponse {
            boxes,
            defects,
            segmentation,
            image_width: size.0,
            image_height: size.1,
            timing: Some(Timing {
                decode_us: micros(started, decoded),
                preprocess_us: micros(decoded, preprocessed),
                inference_us: micros(preprocessed, inferred),
                postprocess_us: micros(inferred, finished),
            }),
            extra: [
                ("model".to_owned(), self.model.source().to_string()),
                ("execution_provider".to_owned(), self.model.device().provider().to_owned()),
            ]
            .into(),
        })
    }

    /// What `ModelInfo` answers.
    pub fn info(&self) -> ModelInfoResponse {
        let layout = self.model.layout();
        let size = i64::from(layout.input_size);
        ModelInfoResponse {
            input_shape: vec![1, 3, size, size],
            labels: self.model.labels().to_vec(),
            execution_provider: self.model.device().provider().to_owned(),
            onnxruntime_version: self.runtime.version().to_owned(),
            has_segmentation: layout.mask_channels > 0,
            defect_classes: self.config.defect_classes.clone(),
            model: self.model.source().to_string(),
        }
    }
}

/// The gRPC service around an [`Engine`].
#[derive(Debug, Clone)]
pub struct InferenceService {
    engine: Arc<Engine>,
    /// Calls past the pipeline's entrance. Each holds a decoded image and a
    /// 5 MB input tensor, so a burst of calls must wait here rather than all
    /// decode at once on the blocking pool.
    admitted: Arc<Semaphore>,
}

impl InferenceService {
    /// Serves `engine`.
    pub fn new(engine: Arc<Engine>) -> InferenceService {
        let admitted = Arc::new(Semaphore::new(engine.config.sessions.max(1) * 2));
        InferenceService { engine, admitted }
    }

    /// The generated server around this implementation.
    pub fn server(self) -> InferenceMethodsServer<Self> {
        InferenceMethodsServer::new(self)
    }
}

#[tonic::async_trait]
impl inference_methods_server::InferenceMethods for InferenceService {
    async fn infer(&self, request: Request<InferRequest>) -> Result<Response<InferResponse>, Status> {
        let _permit = self.admitted.acquire().await.map_err(|_| Status::unavailable("shutting down"))?;
        let engine = Arc::clone(&self.engine);
        let request = request.into_inner();
        tokio::task::spawn_blocking(move || engine.infer(&request))
            .await
            .map_err(|err| Status::internal(format!("inference failed: {err}")))?
            .map(Response::new)
    }

    async fn model_info(&self, _: Request<ModelInfoRequest>) -> Result<Response<ModelInfoResponse>, Status> {
        Ok(Response::new(self.engine.info()))
    }
}
