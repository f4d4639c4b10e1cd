//! FileUploader → S3 throughput beside a direct aws-sdk-s3 multipart upload
//! of the same bytes to the same S3 server: what the gRPC hop, hashing and
//! the service's own bookkeeping cost over talking to S3 yourself.
//!
//! Both sides use 8 MiB parts, 4 in flight, and send CRC32C with every
//! part. The server is the embedded s3s-fs, writing to a temporary folder.

use std::{hint::black_box, time::Instant};

use aws_sdk_s3::{
    primitives::ByteStream,
    types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart},
};
use base64::Engine as _;
use bytes::Bytes;
use contracts::uploader::{UploadRequest, file_uploader_client::FileUploaderClient};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use services::s3::{Backend, EmbeddedS3, S3Config};
use tokio::runtime::Runtime;
use tonic::transport::Endpoint;

const TOTAL: usize = 64 * 1024 * 1024;
const CHUNK: usize = 1024 * 1024;
const PART: usize = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 4;

fn content() -> Bytes {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..TOTAL / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect::<Vec<u8>>()
        .into()
}

fn s3_upload(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let data = content();
    let (s3, client, server, channel) = rt.block_on(async {
        let s3 = EmbeddedS3::start(None).await.unwrap();
        let (access_key, secret_key) = s3.credentials();
        let s3_config = S3Config {
            backend: Backend::Static {
                endpoint: s3.endpoint().to_owned(),
                access_key: access_key.to_owned(),
                secret_key: secret_key.to_owned(),
            },
            part_size: PART,
            parts_in_flight: PARTS_IN_FLIGHT,
            ..S3Config::default()
        };
        let config = services::Config { s3: s3_config, ..Default::default() };
        let server = services::spawn(config).await.unwrap();
        // Upload speed is governed by the server's receive windows, so the
        // client keeps tonic's defaults, as users' clients do.
        let channel = Endpoint::from_shared(server.url()).unwrap().connect().await.unwrap();
        let client = s3.client();
        services::s3::ensure_bucket(&client, "uploads").await.unwrap();
        (s3, client, server, channel)
    });

    let mut group = c.benchmark_group("s3_upload_64MiB");
    group.throughput(Throughput::Bytes(TOTAL as u64)).sample_size(10);
    group.bench_function("file_uploader_grpc", |b| {
        let mut uploader = FileUploaderClient::new(channel.clone());
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let data = data.clone();
                    let messages = (0..TOTAL / CHUNK).map(move |index| UploadRequest {
                        filename: if index == 0 { "bench/grpc".to_owned() } else { String::new() },
                        chunk: data.slice(index * CHUNK..(index + 1) * CHUNK),
                        expected_sha256: None,
                    });
                    let response = uploader.upload(tokio_stream::iter(messages)).await.unwrap().into_inner();
                    assert_eq!(response.size as usize, TOTAL);
                    black_box(response);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("aws_sdk_multipart_direct", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(direct_multipart(&client, &data).await);
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    drop((server, s3));
}

/// What a careful client would write against S3 directly.
async fn direct_multipart(client: &aws_sdk_s3::Client, data: &Bytes) -> String {
    let key = "bench/direct";
    let created = client
        .create_multipart_upload()
        .bucket("uploads")
        .key(key)
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .send()
        .await
        .unwrap();
    let upload_id = created.upload_id.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    let mut parts = Vec::new();
    for (index, part) in data.chunks(PART).enumerate() {
        while tasks.len() >= PARTS_IN_FLIGHT {
            parts.push(tasks.join_next().await.unwrap().unwrap());
        }
        let number = index as i32 + 1;
        let checksum = base64::engine::general_purpose::STANDARD.encode(crc32c::crc32c(part).to_be_bytes());
        let request = client
            .upload_part()
            .bucket("uploads")
            .key(key)
            .upload_id(&upload_id)
            .part_number(number)
            .checksum_crc32_c(checksum.clone())
            .body(ByteStream::from(data.slice_ref(part)));
        tasks.spawn(async move {
            let output = request.send().await.unwrap();
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(output.e_tag)
                .checksum_crc32_c(checksum)
                .build()
        });
    }
    while let Some(part) = tasks.join_next().await {
        parts.push(part.unwrap());
    }
    parts.sort_by_key(|part| part.part_number);
    let done = client
        .complete_multipart_upload()
        .bucket("uploads")
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .unwrap();
    done.e_tag.unwrap_or_default()
}

criterion_group!(benches, s3_upload);
criterion_main!(benches);
