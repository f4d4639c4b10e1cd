//! One 640×640 JPEG through `inference.InferenceMethods`, layer by layer:
//! the bare ONNX Runtime forward pass, the whole pipeline in process
//! (decode, letterbox, forward pass, NMS), the Rust service over loopback
//! gRPC, and the Python reference over the same loopback.
//!
//! The bare session is the floor: nothing serving this model can beat it.
//! Each layer's distance from the one below is what that layer costs:
//! pipeline − floor is image handling and postprocessing, grpc_rust −
//! pipeline is gRPC and the hop to the blocking pool, and grpc_python −
//! grpc_rust is the other implementation. The latency suite
//! (`conformance::latency`) measures the same subjects under concurrency;
//! this bench is the sequential, statistically careful view of one call.
//!
//! Calls are sequential: a call takes milliseconds, so each sample times a
//! loop of calls inside one `block_on`, as the other gRPC benches do, and
//! sampling is flat (criterion's advice for long iterations).

use std::{
    hint::black_box,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use conformance::latency::sample_image;
use contracts::inference::{InferRequest, inference_methods_client::InferenceMethodsClient};
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, criterion_group, criterion_main, measurement::WallTime,
};
use harness::Channel;
use harness::target::{DEFAULT_STARTUP_TIMEOUT, Target};
use services::inference::{Engine, InferenceConfig};
use tokio::runtime::Runtime;

fn inference(c: &mut Criterion) {
    let image = sample_image();
    let engine = match Engine::load(&InferenceConfig::default()) {
        Ok(engine) => Arc::new(engine),
        Err(err) => {
            println!("note: skipping inference_640_jpeg, no ONNX Runtime: {err:#}");
            return;
        }
    };
    let input = engine.input_tensor(&image).unwrap();
    let request = InferRequest { image_bytes: image.into(), ..Default::default() };
    // Two workers: the server's calls hop to the blocking pool anyway, and
    // a second worker keeps the client from queueing behind the server.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    let mut group = c.benchmark_group("inference_640_jpeg");
    group.sampling_mode(SamplingMode::Flat).sample_size(30);

    group.bench_function("bare_session", |b| {
        b.iter_custom(|iters| {
            off_main_thread(iters, || {
                engine.model().run(black_box(&input), |outputs| black_box(outputs.detections.len())).unwrap()
            })
        })
    });
    group.bench_function("pipeline_in_process", |b| {
        b.iter_custom(|iters| off_main_thread(iters, || black_box(engine.infer(&request).unwrap())))
    });

    let (server, channel) = rt.block_on(async {
        let server = services::spawn(services::Config::default()).await.unwrap();
        let channel = harness::connect(&server.url()).await.unwrap();
        (server, channel)
    });
    bench_grpc(&mut group, &rt, "grpc_rust", channel, &request);
    rt.block_on(server.shutdown()).unwrap();

    match python_peer(&rt) {
        Ok(peer) => {
            let channel = peer.channel();
            let ready = rt.block_on(InferenceMethodsClient::new(channel.clone()).infer(request.clone()));
            match ready {
                Ok(_) => bench_grpc(&mut group, &rt, "grpc_python", channel, &request),
                Err(status) => println!("note: skipping grpc_python, its Infer answered {status}"),
            }
        }
        Err(reason) => println!("note: skipping grpc_python: {reason}"),
    }
    group.finish();
}

/// Times `iters` calls of `call` on a thread of its own, as the server's
/// blocking pool runs them. On the main thread, glibc's main heap gives each
/// call's megabytes back to the kernel and faults them in again: the
/// pipeline measured 11.4 ms there against 5.4 ms on a thread (5.6 ms on the
/// main thread with `MALLOC_TRIM_THRESHOLD_` and `MALLOC_MMAP_THRESHOLD_`
/// fixed), a cost the server never pays.
fn off_main_thread<T>(iters: u64, call: impl Fn() -> T + Sync) -> Duration {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(call());
                }
                start.elapsed()
            })
            .join()
            .unwrap()
    })
}

fn bench_grpc(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    name: &str,
    channel: Channel,
    request: &InferRequest,
) {
    let mut client = InferenceMethodsClient::new(channel);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(client.infer(request.clone()).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
}

/// The grpcio reference from `conformance/peers/python`, in the
/// pinned venv, stopped when dropped.
fn python_peer(rt: &Runtime) -> Result<Target, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let python = root.join("tools/venv/bin/python");
    let script = root.join("conformance/peers/python/server.py");
    for needed in [&python, &script] {
        if !needed.exists() {
            return Err(format!("{} is missing (`cargo xtask` installs the venv)", needed.display()));
        }
    }
    let command = format!("{} {} --addr {{addr}}", python.display(), script.display());
    let log = std::env::temp_dir().join(format!("bench-python-peer-{}.log", std::process::id()));
    rt.block_on(Target::command(&command, DEFAULT_STARTUP_TIMEOUT, &log)).map_err(|err| format!("{err:#}"))
}

criterion_group!(benches, inference);
criterion_main!(benches);
