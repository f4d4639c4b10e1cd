//! Unary round-trip time: `CoreServices.Ping` through tonic, beside a raw
//! tokio TCP echo of the same request bytes over the same loopback.
//!
//! The echo is the physical anchor: no gRPC stack can beat it, so the ratio
//! of the two medians is what the gRPC layers cost per call. Both run on each
//! tokio runtime flavour, because cross-thread wake-ups dominate on small
//! virtual machines and a gRPC call has more task hops than an echo.
//!
//! Each sample times a loop of sequential calls inside one `block_on`, the
//! same way for both, so entering the runtime costs nothing per call.

use std::{hint::black_box, time::Instant};

use contracts::coreservices::{PingRequest, core_services_client::CoreServicesClient};
use criterion::{Criterion, criterion_group, criterion_main};
use prost::Message;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    runtime::Runtime,
};

const MESSAGE: &str = "ping";

/// Both flavours, named as they appear in the bench ids.
fn runtimes() -> [(&'static str, Runtime); 2] {
    [
        ("current_thread", tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()),
        (
            "multi_thread",
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap(),
        ),
    ]
}

/// The request as it travels inside the HTTP/2 DATA frame: a 5-byte gRPC
/// message header followed by the protobuf encoding.
fn grpc_framed_request() -> Vec<u8> {
    let body = PingRequest { message: MESSAGE.to_owned() }.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
    framed.extend_from_slice(&body);
    framed
}

fn tonic_ping(c: &mut Criterion) {
    for (flavour, rt) in runtimes() {
        let (server, mut client) = rt.block_on(async {
            let server = services::spawn(services::Config::default()).await.unwrap();
            let client = CoreServicesClient::connect(server.url()).await.unwrap();
            (server, client)
        });
        c.bench_function(&format!("unary_rtt/{flavour}/tonic_ping"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let reply = client.ping(PingRequest { message: MESSAGE.to_owned() }).await.unwrap();
                        black_box(reply);
                    }
                    start.elapsed()
                })
            })
        });
        drop(client);
        rt.block_on(server.shutdown()).unwrap();
    }
}

fn tcp_echo(c: &mut Criterion) {
    let request = grpc_framed_request();
    let len = request.len();
    for (flavour, rt) in runtimes() {
        let mut stream = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                let (mut socket, _) = listener.accept().await.unwrap();
                socket.set_nodelay(true).unwrap();
                let mut buf = vec![0u8; len];
                while socket.read_exact(&mut buf).await.is_ok() {
                    if socket.write_all(&buf).await.is_err() {
                        break;
                    }
                }
            });
            let stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            stream
        });
        let mut reply = vec![0u8; len];
        c.bench_function(&format!("unary_rtt/{flavour}/tcp_echo_same_bytes"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        stream.write_all(&request).await.unwrap();
                        stream.read_exact(&mut reply).await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
    }
}

criterion_group!(benches, tonic_ping, tcp_echo);
criterion_main!(benches);
