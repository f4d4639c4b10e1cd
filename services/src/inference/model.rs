//! A YOLOv8-format model loaded into a pool of ONNX Runtime sessions.
//!
//! `ort`'s `Session::run` takes `&mut self`, so one session serves one call
//! at a time. Concurrent calls each take a session from the pool instead of
//! queueing behind a single lock; ONNX Runtime shares nothing mutable between
//! sessions of one environment.

use std::{
    path::PathBuf,
    sync::{Condvar, Mutex},
};

use anyhow::{Context, Result, anyhow, bail, ensure};
use ort::{
    session::{Session, SessionOutputs, builder::GraphOptimizationLevel},
    value::TensorRef,
};

use super::runtime::Runtime;

/// The model bundled with the service: bright squares on a dark background
/// are `defect`s. `models/generate.py` builds it; `models/README.md` says why
/// its detections are predictable.
pub const BUNDLED_MODEL: &[u8] = include_bytes!("../../../models/squares-seg.onnx");

/// Which model to serve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ModelSource {
    /// [`BUNDLED_MODEL`].
    #[default]
    Bundled,
    /// A YOLOv8 ONNX export on disk.
    File(PathBuf),
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSource::Bundled => f.write_str("bundled"),
            ModelSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Device {
    /// ONNX Runtime's CPU provider.
    #[default]
    Cpu,
    /// The CUDA provider on this GPU; needs the `cuda` feature.
    Cuda(i32),
}

impl Device {
    /// ONNX Runtime's name for the provider that runs the model.
    pub fn provider(self) -> &'static str {
        match self {
            Device::Cpu => "CPUExecutionProvider",
            Device::Cuda(_) => "CUDAExecutionProvider",
        }
    }
}

impl std::str::FromStr for Device {
    type Err = String;

    fn from_str(text: &str) -> Result<Device, String> {
        match text {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => match text.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(id)) => Ok(Device::Cuda(id)),
                _ => Err(format!("unknown device {text:?}: expected cpu, cuda or cuda:N")),
            },
        }
    }
}

/// How sessions are created.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionOptions {
    pub(crate) device: Device,
    pub(crate) sessions: usize,
    pub(crate) intra_threads: usize,
}

/// What the rest of the pipeline needs to know about the model's tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// The square input's side, in pixels.
    pub input_size: u32,
    /// Class count.
    pub classes: usize,
    /// Mask coefficients per anchor; 0 without a mask head.
    pub mask_channels: usize,
    /// Anchors per image.
    pub anchors: usize,
    /// Mask prototype height and width; (0, 0) without a mask head.
    pub proto_size: (usize, usize),
}

/// One forward pass's outputs, borrowed from ONNX Runtime while the
/// session is held: copying them out would move 4.6 MB per call.
#[derive(Debug, Clone, Copy)]
pub struct RawOutputs<'a> {
    /// `output0`: `[4 + classes + mask_channels, anchors]`, row-major.
    pub detections: &'a [f32],
    /// `output1`: `[mask_channels, proto height, proto width]`; empty without
    /// a mask head.
    pub protos: &'a [f32],
}

/// A model ready to run, shared by every call.
#[derive(Debug)]
pub struct Model {
    source: ModelSource,
    input_name: String,
    layout: Layout,
    labels: Vec<String>,
    device: Device,
    pool: Pool,
}

impl Model {
    pub(crate) fn load(runtime: &Runtime, source: &ModelSource, options: SessionOptions) -> Result<Model> {
        let bytes = match source {
            ModelSource::Bundled => BUNDLED_MODEL.to_vec(),
            ModelSource::File(path) => {
                std::fs::read(path).with_context(|| format!("reading the model {}", path.display()))?
            }
        };
        let sessions = (0..options.sessions.max(1))
            .map(|_| new_session(runtime, &bytes, options))
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("loading the model {source} on {}", options.device.provider()))?;
        let first = &sessions[0];
        let input = first.inputs().first().ok_or_else(|| anyhow!("the model has no input"))?;
        let input_name = input.name().to_owned();
        let shape: Vec<i64> = input.dtype().tensor_shape().map(|shape| shape.to_vec()).unwrap_or_default();
        let input_size = match shape.as_slice() {
            [_, 3, height, width] if height == width && *height > 0 => *height as u32,
            [_, 3, height, width] if *height <= 0 && *width <= 0 => 640,
            _ => bail!(
                "the model's input {input_name} is {shape:?}; expected a square [1, 3, S, S] image tensor"
            ),
        };
        let output_count = first.outputs().len();
        ensure!(
            matches!(output_count, 1 | 2),
            "the model has {output_count} outputs; a YOLOv8 model has 1 (detect) or 2 (segment)"
        );
        let names = first.metadata().ok().and_then(|metadata| metadata.custom("names"));
        let pool = Pool::new(sessions);
        // Output shapes may be dynamic: one pass on a blank input settles them,
        // and proves the model runs on this device before the first call does.
        let blank = vec![0f32; 3 * (input_size * input_size) as usize];
        let (detection_shape, proto_shape) = pool.with_session(|session| {
            forward(session, &input_name, input_size as usize, &blank, |outputs| {
                let shape_of = |index: usize| -> ort::Result<Vec<i64>> {
                    Ok(outputs[index].try_extract_tensor::<f32>()?.0.to_vec())
                };
                Ok((shape_of(0)?, if output_count == 2 { Some(shape_of(1)?) } else { None }))
            })
        })?;
        let layout = Layout { input_size, ..layout(&detection_shape, proto_shape.as_deref())? };
        let labels = labels(names.as_deref(), layout.classes);
        Ok(Model { source: source.clone(), input_name, layout, labels, device: options.device, pool })
    }

    /// Where the model came from.
    pub fn source(&self) -> &ModelSource {
        &self.source
    }

    /// Tensor sizes.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Class labels, by class id.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The device the sessions run on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Runs one forward pass on a letterboxed `3 × S × S` input and hands its
    /// outputs to `read`. Blocks until a session is free: call it from
    /// blocking threads.
    pub fn run<T>(&self, input: &[f32], read: impl FnOnce(RawOutputs<'_>) -> T) -> Result<T> {
        let size = self.layout.input_size as usize;
        ensure!(
            input.len() == 3 * size * size,
            "the input holds {} values, not 3x{size}x{size}",
            input.len()
        );
        self.pool.with_session(|session| {
            forward(session, &self.input_name, size, input, |outputs| {
                let detections = outputs[0].try_extract_tensor::<f32>()?.1;
                let protos = if outputs.len() > 1 { outputs[1].try_extract_tensor::<f32>()?.1 } else { &[] };
                Ok(read(RawOutputs { detections, protos }))
            })
        })
    }
}

/// One forward pass of `session` on a `3 × size × size` input, its outputs
/// handed to `read` while ONNX Runtime still owns them.
fn forward<T>(
    session: &mut Session,
    input_name: &str,
    size: usize,
    input: &[f32],
    read: impl FnOnce(&SessionOutputs<'_>) -> ort::Result<T>,
) -> ort::Result<T> {
    let input = TensorRef::from_array_view(([1usize, 3, size, size], input))?;
    let outputs = session.run(ort::inputs![input_name => input])?;
    read(&outputs)
}

fn new_session(runtime: &Runtime, bytes: &[u8], options: SessionOptions) -> Result<Session> {
    let build = || -> ort::Result<Session> {
        let builder = Session::builder(runtime.environment())?
            .with_optimization_level(GraphOptimizationLevel::All)?
            .with_intra_threads(options.intra_threads.max(1))?
            .with_inter_threads(1)?
            // Spinning threads make one call a little faster and every other
            // process on the machine, the gRPC runtime included, slower.
            .with_intra_op_spinning(false)?;
        let mut builder = match options.device {
            Device::Cpu => builder,
            Device::Cuda(id) => builder.with_execution_providers([cuda(id)?])?,
        };
        builder.commit_from_memory(bytes)
    };
    build().map_err(|err| anyhow!("{err}"))
}

/// CUDA must fail loudly: ONNX Runtime's default is to fall back to the CPU
/// quietly, and a user who asked for the GPU would never know.
#[cfg(feature = "cuda")]
fn cuda(device_id: i32) -> ort::Result<ort::ep::ExecutionProviderDispatch> {
    Ok(ort::ep::CUDA::default().with_device_id(device_id).build().error_on_failure())
}

#[cfg(not(feature = "cuda"))]
fn cuda(_device_id: i32) -> ort::Result<ort::ep::ExecutionProviderDispatch> {
    Err(ort::Error::new(
        "this build of services has no CUDA support: rebuild it with `--features cuda` (and an onnxruntime-gpu library)",
    ))
}

fn layout(detections: &[i64], protos: Option<&[i64]>) -> Result<Layout> {
    let &[1, channels, anchors] = detections else {
        bail!(
            "output0 is {detections:?}; a YOLOv8 model gives [1, 4 + classes (+ 32 mask coefficients), anchors]"
        );
    };
    let (mask_channels, proto_size) = match protos {
        None => (0, (0, 0)),
        Some(&[1, masks, height, width]) if masks > 0 && height > 0 && width > 0 => {
            (masks as usize, (height as usize, width as usize))
        }
        Some(shape) => bail!("output1 is {shape:?}; a YOLOv8 mask head gives [1, masks, height, width]"),
    };
    let classes = (channels as usize).checked_sub(4 + mask_channels).filter(|&classes| classes > 0);
    let Some(classes) = classes else {
        bail!(
            "output0 has {channels} channels: too few for 4 box values, classes and {mask_channels} mask coefficients"
        );
    };
    Ok(Layout { input_size: 0, classes, mask_channels, anchors: anchors as usize, proto_size })
}

/// Labels from Ultralytics' `names` metadata, a Python dict literal such as
/// `{0: 'defect', 1: 'scratch'}`; `class<k>` for any class it does not name.
pub(crate) fn labels(names: Option<&str>, classes: usize) -> Vec<String> {
    let parsed = names.map(parse_names).unwrap_or_default();
    (0..classes)
        .map(|class| {
            parsed
                .iter()
                .find(|(id, _)| *id == class)
                .map_or_else(|| format!("class{class}"), |(_, label)| label.clone())
        })
        .collect()
}

fn parse_names(text: &str) -> Vec<(usize, String)> {
    let mut names = Vec::new();
    let mut rest = text.trim().trim_start_matches('{').trim_end_matches('}');
    while let Some((key, after)) = rest.split_once(':') {
        let Ok(id) = key.trim().trim_start_matches(',').trim().parse::<usize>() else { break };
        let after = after.trim_start();
        let Some(quote) = after.chars().next().filter(|c| matches!(c, '\'' | '"')) else { break };
        let mut label = String::new();
        let mut chars = after[1..].char_indices();
        let mut end = None;
        while let Some((index, c)) = chars.next() {
            match c {
                '\\' => label.extend(chars.next().map(|(_, escaped)| escaped)),
                c if c == quote => {
                    end = Some(index + 2);
                    break;
                }
                c => label.push(c),
            }
        }
        let Some(end) = end else { break };
        names.push((id, label));
        rest = &after[end..];
    }
    names
}

/// Sessions handed out one call at a time.
#[derive(Debug)]
struct Pool {
    free: Mutex<Vec<Session>>,
    returned: Condvar,
}

impl Pool {
    fn new(sessions: Vec<Session>) -> Pool {
        Pool { free: Mutex::new(sessions), returned: Condvar::new() }
    }

    fn with_session<T, E>(&self, run: impl FnOnce(&mut Session) -> Result<T, E>) -> Result<T>
    where
        E: std::fmt::Display,
    {
        let session = {
            let mut free = self.free.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            loop {
                if let Some(session) = free.pop() {
                    break session;
                }
                free = self.returned.wait(free).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        };
        let mut lent = Lent { pool: self, session: Some(session) };
        run(lent.session.as_mut().expect("lent until dropped")).map_err(|err| anyhow!("ONNX Runtime: {err}"))
    }
}

/// Gives its session back even when the call using it panics, so the pool
/// never shrinks.
struct Lent<'a> {
    pool: &'a Pool,
    session: Option<Session>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.pool.free.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(session);
            self.pool.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_metadata_parses_like_python_literals() {
        assert_eq!(labels(Some("{0: 'defect', 1: 'scratch'}"), 2), ["defect", "scratch"]);
        assert_eq!(labels(Some(r#"{0: "it's", 1: 'a \'b\''}"#), 3), ["it's", "a 'b'", "class2"]);
        assert_eq!(labels(Some("not a dict"), 1), ["class0"]);
        assert_eq!(labels(None, 2), ["class0", "class1"]);
    }
}
