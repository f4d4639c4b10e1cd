//! The harness's descriptor-driven caller against tonic's generated client,
//! on the same unary `CoreServices.Ping` over the same connection. The
//! difference is what dynamic messages cost: building a `DynamicMessage`,
//! encoding it through prost-reflect, and decoding the reply by descriptor.

use std::{hint::black_box, time::Instant};

use contracts::coreservices::{PingRequest, core_services_client::CoreServicesClient};
use criterion::{Criterion, criterion_group, criterion_main};
use harness::{CallOptions, DynamicClient};
use prost_reflect::{DynamicMessage, Value};

const MESSAGE: &str = "ping";

fn dynamic_vs_generated(c: &mut Criterion) {
    // current_thread: the quieter flavour in unary_rtt, so the small
    // difference between the two clients is not lost in wake-up noise.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (server, channel) = rt.block_on(async {
        let server = services::spawn(services::Config::default()).await.unwrap();
        let channel = harness::connect(&server.url()).await.unwrap();
        (server, channel)
    });
    let ping = harness::descriptors::embedded()
        .get_service_by_name("coreservices.CoreServices")
        .and_then(|s| s.methods().find(|m| m.name() == "Ping"))
        .unwrap();

    let mut group = c.benchmark_group("unary_ping");
    let mut generated = CoreServicesClient::new(channel.clone());
    group.bench_function("generated_client", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let reply = generated.ping(PingRequest { message: MESSAGE.to_owned() }).await.unwrap();
                    black_box(reply);
                }
                start.elapsed()
            })
        })
    });
    let mut dynamic = DynamicClient::connect(&server.url()).unwrap();
    let options = CallOptions::default();
    group.bench_function("dynamic_caller", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut request = DynamicMessage::new(ping.input());
                    request.set_field_by_name("message", Value::String(MESSAGE.to_owned()));
                    let reply = dynamic.unary(&ping, &request, &options).await.unwrap();
                    black_box(reply);
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    rt.block_on(server.shutdown()).unwrap();
}

criterion_group!(benches, dynamic_vs_generated);
criterion_main!(benches);
