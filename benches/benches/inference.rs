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
    io::{BufRead, BufReader, Cursor},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use contracts::inference::{InferRequest, inference_methods_client::InferenceMethodsClient};
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, criterion_group, criterion_main, measurement::WallTime,
};
use image::{ImageFormat, Rgb, RgbImage};
use services::inference::{Engine, InferenceConfig};
use tokio::runtime::Runtime;
use tonic::transport::Channel;

/// The same picture as `conformance::latency::sample_image` (benches do not
/// depend on the conformance crate): a 640×640 JPEG, three bright squares
/// and a bar on a dark, noisy background, which the bundled model detects
/// as four boxes.
fn sample_image() -> Vec<u8> {
    const SHAPES: [(u32, u32, u32, u32); 4] =
        [(64, 72, 64, 64), (300, 120, 96, 96), (120, 400, 48, 48), (360, 440, 160, 32)];
    let mut state = 0x9E37_79B9_u32;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 32) as u8
    };
    let mut image = RgbImage::new(640, 640);
    for pixel in image.pixels_mut() {
        *pixel = Rgb([16 + noise(), 16 + noise(), 16 + noise()]);
    }
    for (x, y, width, height) in SHAPES {
        for py in y..y + height {
            for px in x..x + width {
                image.put_pixel(px, py, Rgb([240, 236, 228]));
            }
        }
    }
    let mut jpeg = Cursor::new(Vec::new());
    image.write_to(&mut jpeg, ImageFormat::Jpeg).unwrap();
    jpeg.into_inner()
}

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

    match PythonPeer::start() {
        Ok(peer) => {
            let channel = rt.block_on(harness::connect(&peer.url)).unwrap();
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

/// The grpcio reference server from `conformance/peers/python`, in the
/// pinned venv, stopped when dropped.
struct PythonPeer {
    child: Child,
    url: String,
}

impl PythonPeer {
    fn start() -> Result<PythonPeer, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let python: PathBuf = root.join("tools/venv/bin/python");
        let script = root.join("conformance/peers/python/server.py");
        for needed in [&python, &script] {
            if !needed.exists() {
                return Err(format!("{} is missing (`cargo xtask` installs the venv)", needed.display()));
            }
        }
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| format!("starting {}: {err}", python.display()))?;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let listening = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| line.trim().strip_prefix("listening on ").map(|addr| format!("http://{addr}")));
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        match listening {
            Some(url) => Ok(PythonPeer { child, url }),
            None => {
                let status = child.wait().map_err(|err| err.to_string())?;
                Err(format!("the peer exited ({status}) without printing `listening on`"))
            }
        }
    }
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

criterion_group!(benches, inference);
criterion_main!(benches);
