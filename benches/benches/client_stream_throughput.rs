//! Client-streaming throughput: `UploaderService.UploadImage` with 64 KiB and
//! 1 MiB chunks, in bytes per second, beside a raw TCP bulk transfer of the
//! same bytes (the loopback's own ceiling).

use std::{hint::black_box, time::Instant};

use bytes::Bytes;
use contracts::uploader::{ImageChunk, uploader_service_client::UploaderServiceClient};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    runtime::Runtime,
};
use tonic::transport::Endpoint;

/// Bytes uploaded per iteration: enough for many HTTP/2 windows.
const TOTAL: usize = 64 * 1024 * 1024;
const CHUNK_SIZES: &[(usize, &str)] = &[(64 * 1024, "64KiB"), (1024 * 1024, "1MiB")];

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn grpc_upload(c: &mut Criterion) {
    let rt = runtime();
    let (server, channel) = rt.block_on(async {
        let server = services::spawn(services::Config::default()).await.unwrap();
        // Upload speed is governed by the server's receive windows, so the
        // client keeps tonic's defaults, as users' clients do.
        let channel = Endpoint::from_shared(server.url()).unwrap().connect().await.unwrap();
        (server, channel)
    });
    let mut group = c.benchmark_group("client_stream");
    group.throughput(Throughput::Bytes(TOTAL as u64)).sample_size(20);
    for &(size, label) in CHUNK_SIZES {
        // One shared buffer: cloning `Bytes` is a reference count, so the
        // bench measures the transport, not the allocator.
        let chunk = Bytes::from(vec![0xA5u8; size]);
        let count = TOTAL / size;
        let mut client = UploaderServiceClient::new(channel.clone());
        group.bench_function(BenchmarkId::new("grpc_upload_image", label), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let chunk = chunk.clone();
                        let chunks = (0..count).map(move |_| ImageChunk { data: chunk.clone() });
                        let summary =
                            client.upload_image(tokio_stream::iter(chunks)).await.unwrap().into_inner();
                        assert_eq!(summary.total_bytes as usize, TOTAL);
                        black_box(summary);
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
    drop(channel);
    rt.block_on(server.shutdown()).unwrap();
}

fn tcp_bulk(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("client_stream");
    group.throughput(Throughput::Bytes(TOTAL as u64)).sample_size(20);
    for &(size, label) in CHUNK_SIZES {
        let chunk = vec![0xA5u8; size];
        let count = TOTAL / size;
        let mut stream = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            // Reads TOTAL bytes, then acknowledges with one byte: the same
            // shape as a client stream answered by a summary.
            tokio::spawn(async move {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 1024 * 1024];
                'outer: loop {
                    let mut left = TOTAL;
                    while left > 0 {
                        match socket.read(&mut buf[..left.min(1024 * 1024)]).await {
                            Ok(0) | Err(_) => break 'outer,
                            Ok(n) => left -= n,
                        }
                    }
                    if socket.write_all(&[1]).await.is_err() {
                        break;
                    }
                }
            });
            TcpStream::connect(addr).await.unwrap()
        });
        group.bench_function(BenchmarkId::new("tcp_bulk_same_bytes", label), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        for _ in 0..count {
                            stream.write_all(&chunk).await.unwrap();
                        }
                        let mut ack = [0u8];
                        stream.read_exact(&mut ack).await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, grpc_upload, tcp_bulk);
criterion_main!(benches);
