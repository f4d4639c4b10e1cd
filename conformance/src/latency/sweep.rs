//! One concurrency level of one subject, measured by the load engine's
//! windows: the engine itself for a gRPC server, the floor process's own
//! windows for the floor.

use std::time::Duration;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use contracts::inference::InferRequest;
use prost::Message as _;
use prost_reflect::DynamicMessage;

use super::{SubjectKind, floor::Floor, report::Level};
use crate::load::{self, LevelReport, Plan, Recorder, Stability, Stop};

/// The concurrency levels every subject is swept over.
pub const LEVELS: &[usize] = &[1, 2, 4, 8];

/// The response fields in which a server accounts for its time.
pub(super) const TIMING: [&str; 4] =
    ["timing.decode_us", "timing.preprocess_us", "timing.inference_us", "timing.postprocess_us"];

/// Measures `kind` at `concurrency` with `image`.
pub(super) async fn measure(
    subject: &str,
    kind: &SubjectKind,
    image: &[u8],
    concurrency: usize,
    stability: Stability,
) -> Result<Level> {
    let report = match kind {
        SubjectKind::Grpc(channel) => {
            let plan = Plan {
                means: TIMING.map(str::to_owned).to_vec(),
                ..Plan::new(
                    infer_method()?,
                    vec![vec![infer_request(image)?]],
                    vec![load::Level::Concurrency(concurrency)],
                    Stop::Stable(stability),
                )
            };
            let mut levels = load::run(channel.clone(), &plan, |_, _| {}).await?;
            levels.pop().context("the load engine reported no level")?
        }
        SubjectKind::Floor(floor) => {
            let windows = load::until_stable(stability, true, async || {
                Ok(floor_window(floor, concurrency, stability.window).await)
            })
            .await?;
            LevelReport::new(
                load::Level::Concurrency(concurrency),
                windows.elapsed,
                &windows.kept,
                Some((windows.stable, windows.throughputs)),
            )
        }
    };
    Ok(Level::new(subject, kind.label(), concurrency, &report))
}

fn infer_method() -> Result<prost_reflect::MethodDescriptor> {
    let pool = harness::descriptors::embedded();
    let service = pool.get_service_by_name("inference.InferenceMethods").context("no inference contract")?;
    let method = service.methods().find(|method| method.name() == "Infer");
    method.context("inference.InferenceMethods has no Infer")
}

/// An Infer request for `image` with default thresholds.
fn infer_request(image: &[u8]) -> Result<DynamicMessage> {
    let request = InferRequest { image_bytes: Bytes::copy_from_slice(image), ..Default::default() };
    let input = infer_method()?.input();
    Ok(DynamicMessage::decode(input, request.encode_to_vec().as_slice())?)
}

/// A window the floor process measured, recorded as the engine records. A
/// floor that fails is one failed call of the window's length.
async fn floor_window(floor: &Floor, concurrency: usize, length: Duration) -> (Recorder, Duration) {
    let mut record = Recorder::new();
    match floor.window(concurrency, length).await {
        Ok(measured) => {
            for latency in measured.latencies_us {
                record.record(Duration::from_micros(latency), &[], Ok(()), &[]);
            }
            let message = measured.first_error.unwrap_or_default();
            for _ in 0..measured.errors {
                record.record(Duration::ZERO, &[], Err(("error".to_owned(), message.clone())), &[]);
            }
            (record, Duration::from_micros(measured.elapsed_us))
        }
        Err(err) => {
            record.record(Duration::ZERO, &[], Err(("error".to_owned(), format!("{err:#}"))), &[]);
            (record, length)
        }
    }
}
