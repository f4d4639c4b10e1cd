//! `uploader.FileUploader` against the embedded S3 server, read back with
//! aws-sdk-s3 to prove every byte.

use contracts::uploader::{UploadRequest, UploadResponse, file_uploader_client::FileUploaderClient};
use services::{
    Config,
    s3::{Backend, EmbeddedS3, S3Config},
};
use sha2::{Digest, Sha256};
use tonic::{Code, Status};

use crate::support::{assert_code, start_with};

const BUCKET: &str = "uploads";
const PART: usize = 5 * 1024 * 1024;

struct World {
    _server: services::RunningServer,
    s3: EmbeddedS3,
    client: FileUploaderClient<tonic::transport::Channel>,
}

async fn world() -> World {
    let s3 = EmbeddedS3::start(None).await.unwrap();
    let (access_key, secret_key) = s3.credentials();
    let backend = Backend::Static {
        endpoint: s3.endpoint().to_owned(),
        access_key: access_key.into(),
        secret_key: secret_key.into(),
    };
    let config = Config {
        s3: S3Config { backend, bucket: BUCKET.into(), part_size: PART, parts_in_flight: 2 },
        ..Default::default()
    };
    let (server, channel) = start_with(config).await;
    World { _server: server, s3, client: FileUploaderClient::new(channel) }
}

fn messages(name: &str, chunks: &[&[u8]]) -> Vec<UploadRequest> {
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| UploadRequest {
            filename: if i == 0 { name.into() } else { String::new() },
            chunk: chunk.to_vec().into(),
            expected_sha256: None,
        })
        .collect()
}

async fn upload(world: &mut World, requests: Vec<UploadRequest>) -> Result<UploadResponse, Status> {
    world.client.upload(tokio_stream::iter(requests)).await.map(|r| r.into_inner())
}

async fn read_back(world: &World, key: &str) -> Option<Vec<u8>> {
    let object = world.s3.client().get_object().bucket(BUCKET).key(key).send().await.ok()?;
    Some(object.body.collect().await.unwrap().into_bytes().to_vec())
}

/// Parts of multipart uploads that were neither completed nor aborted.
/// s3s-fs 0.14 does not implement ListMultipartUploads; it keeps each part
/// as `.upload_id-<id>.part-<n>` in its folder until the upload completes
/// or is aborted, so the folder itself is the evidence.
fn unfinished_uploads(world: &World) -> usize {
    std::fs::read_dir(world.s3.data_dir())
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().file_name().to_string_lossy().starts_with(".upload_id-"))
        .count()
}

/// Deterministic bytes that differ at every offset within a part.
fn file(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect()
}

async fn check_stored(world: &mut World, key: &str, bytes: &[u8], chunk: usize) {
    let chunks: Vec<&[u8]> = if bytes.is_empty() { vec![&[]] } else { bytes.chunks(chunk).collect() };
    let response = upload(world, messages(key, &chunks)).await.unwrap();
    assert!(response.success);
    assert_eq!(response.key, key);
    assert_eq!(response.size, bytes.len() as u64);
    assert_eq!(response.sha256_hex, hex::encode(Sha256::digest(bytes)));
    assert_eq!(response.crc32c, crc32c::crc32c(bytes));
    assert!(!response.etag.is_empty());
    assert_eq!(read_back(world, key).await.as_deref(), Some(bytes), "{key}: stored bytes differ");
    assert_eq!(unfinished_uploads(world), 0);
}

#[tokio::test]
async fn stores_files_of_every_size_byte_for_byte() {
    let mut world = world().await;
    for (len, chunk) in [
        (0, 1),
        (1, 1),
        (11, 4),
        (PART - 1, 1 << 20),
        (PART, 777_777),
        (PART + 1, PART),
        (3 * PART + 7, 3 << 20),
    ] {
        check_stored(&mut world, &format!("dir/file-{len}.bin"), &file(len), chunk).await;
    }
}

#[tokio::test]
async fn a_later_message_may_repeat_the_name_and_an_overwrite_replaces() {
    let mut world = world().await;
    let mut requests = messages("same.txt", &[b"one ", b"two"]);
    requests[1].filename = "same.txt".into();
    assert_eq!(upload(&mut world, requests).await.unwrap().size, 7);
    check_stored(&mut world, "same.txt", b"replaced", 3).await;
}

#[tokio::test]
async fn expected_sha256_mismatch_is_data_loss_and_stores_nothing() {
    let mut world = world().await;
    for len in [10, 2 * PART + 3] {
        let bytes = file(len);
        let key = format!("checked-{len}");
        let mut requests = messages(&key, &bytes.chunks(1 << 20).collect::<Vec<_>>());
        requests[0].expected_sha256 = Some(hex::encode(Sha256::digest(b"something else")));
        assert_code(upload(&mut world, requests).await, Code::DataLoss);
        assert_eq!(read_back(&world, &key).await, None, "nothing stored");
        assert_eq!(unfinished_uploads(&world), 0, "no multipart upload left");

        let mut requests = messages(&key, &bytes.chunks(1 << 20).collect::<Vec<_>>());
        requests[0].expected_sha256 = Some(hex::encode(Sha256::digest(&bytes)));
        assert_eq!(upload(&mut world, requests).await.unwrap().size, len as u64);
    }
    let mut requests = messages("x", &[b"x"]);
    requests[0].expected_sha256 = Some("not hex".into());
    assert_code(upload(&mut world, requests).await, Code::InvalidArgument);
}

#[tokio::test]
async fn a_name_change_mid_stream_is_invalid_and_leaves_nothing() {
    let mut world = world().await;
    let big = file(PART + 10);
    let mut requests = messages("first", &big.chunks(1 << 20).collect::<Vec<_>>());
    requests.last_mut().unwrap().filename = "second".into();
    assert_code(upload(&mut world, requests).await, Code::InvalidArgument);
    assert_eq!(read_back(&world, "first").await, None);
    assert_eq!(read_back(&world, "second").await, None);
    assert_eq!(unfinished_uploads(&world), 0);
}

#[tokio::test]
async fn bad_names_and_empty_streams_are_invalid() {
    let mut world = world().await;
    let too_long = "k".repeat(1025);
    let bad = ["", "/abs", "a/../b", "..", "a/./b", ".", "a//b", "0/", "nul\0byte", "bell\x07", "tab\tname"];
    for name in bad.into_iter().chain([too_long.as_str()]) {
        let status = assert_code(upload(&mut world, messages(name, &[b"data"])).await, Code::InvalidArgument);
        assert!(status.message().contains("file name"), "{name:?}: {status:?}");
    }
    assert_code(upload(&mut world, Vec::new()).await, Code::InvalidArgument);
}

#[tokio::test]
async fn unreachable_s3_is_unavailable_and_the_server_still_serves() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let backend = Backend::Static {
        endpoint: format!("http://{closed}"),
        access_key: "a".into(),
        secret_key: "b".into(),
    };
    let config = Config { s3: S3Config { backend, ..Default::default() }, ..Default::default() };
    let (_server, channel) = start_with(config).await;
    let mut client = FileUploaderClient::new(channel.clone());
    let status = assert_code(
        client.upload(tokio_stream::iter(messages("f", &[b"x"]))).await.map(|r| r.into_inner()),
        Code::Unavailable,
    );
    assert!(status.message().contains("S3"), "{status:?}");
    let mut calculator = contracts::calculator::calculator_client::CalculatorClient::new(channel);
    let cube = calculator.cube(contracts::calculator::CubeRequest { number: 2 }).await.unwrap();
    assert_eq!(cube.into_inner().result, 8);
}

#[tokio::test]
async fn a_cancelled_upload_leaves_no_parts_behind() {
    let mut world = world().await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut requests = messages("cancelled.bin", &[&file(1 << 20)]);
    tx.send(requests.remove(0)).await.unwrap();
    let call = tokio::spawn({
        let mut client = world.client.clone();
        async move { client.upload(tokio_stream::wrappers::ReceiverStream::new(rx)).await }
    });
    // More than a part, so a multipart upload is under way.
    for _ in 0..6 {
        tx.send(UploadRequest { chunk: file(1 << 20).into(), ..Default::default() }).await.unwrap();
    }
    wait_for(|| unfinished_uploads(&world) > 0, "a part to be stored").await;
    // The client goes away mid-upload.
    call.abort();
    drop(tx);
    wait_for(|| unfinished_uploads(&world) == 0, "the cancelled upload to be aborted").await;
    assert_eq!(read_back(&world, "cancelled.bin").await, None);
    // The server still takes uploads.
    check_stored(&mut world, "after-cancel", b"fine", 2).await;
}

/// Polls a condition that the server reaches asynchronously (an abort runs
/// after the cancelled call is gone), with a generous bound so that a
/// server that never gets there fails the test rather than hanging it.
async fn wait_for(condition: impl Fn() -> bool, what: &str) {
    for _ in 0..600 {
        if condition() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("gave up waiting for {what}");
}
