//! Peak memory of the `services` server process while FileUploader streams
//! 64 MiB and then 1 GiB into its embedded S3: the figure must be flat in
//! the file size. Not a criterion benchmark: it measures one number per
//! size, the kernel's high-water mark of the server's resident set.
//!
//! Needs the release `services` binary beside this one; `cargo xtask
//! bench` builds it.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    time::Instant,
};

use bytes::Bytes;
use contracts::uploader::{UploadRequest, file_uploader_client::FileUploaderClient};
use tonic::transport::Endpoint;

const CHUNK: usize = 1024 * 1024;

fn main() {
    // `cargo bench` passes `--bench`; criterion-style filters are ignored.
    let binary = services_binary();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    println!("server peak RSS while uploading (release build of {}):", binary.display());
    println!("{:>10}  {:>10}  {:>14}  {:>12}", "file", "seconds", "MiB/s", "peak RSS");
    for size in [64usize << 20, 1 << 30] {
        let data_dir = tempfile_dir();
        let mut server = Command::new(&binary)
            // Uploads alone: ONNX Runtime and its sessions would add a
            // fixed ~40 MiB that says nothing about upload memory.
            .args(["serve", "--no-inference", "--addr", "127.0.0.1:0", "--s3-data-dir"])
            .arg(&data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("starting {}: {err}", binary.display()));
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr =
            line.trim().strip_prefix("listening on ").expect("the server prints its address").to_owned();
        let idle = peak_rss(server.id());
        let started = Instant::now();
        runtime.block_on(upload(&format!("http://{addr}"), size));
        let seconds = started.elapsed().as_secs_f64();
        let peak = peak_rss(server.id());
        let _ = server.kill();
        let _ = server.wait();
        let _ = std::fs::remove_dir_all(&data_dir);
        println!(
            "{:>7} MiB  {seconds:>10.2}  {:>14.0}  {:>8.1} MiB  (idle {:.1} MiB)",
            size >> 20,
            (size >> 20) as f64 / seconds,
            peak as f64 / 1048576.0,
            idle as f64 / 1048576.0
        );
    }
}

async fn upload(url: &str, size: usize) {
    let channel = Endpoint::from_shared(url.to_owned()).unwrap().connect().await.unwrap();
    let chunk = Bytes::from((0..CHUNK).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
    let messages = (0..size / CHUNK).map(move |index| UploadRequest {
        filename: if index == 0 { "memory/probe".to_owned() } else { String::new() },
        chunk: chunk.clone(),
        expected_sha256: None,
    });
    let response =
        FileUploaderClient::new(channel).upload(tokio_stream::iter(messages)).await.unwrap().into_inner();
    assert_eq!(response.size as usize, size, "{}", response.message);
}

/// `VmHWM` of `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    harness::memory::peak_rss(pid).expect("/proc/PID/status has VmHWM on Linux")
}

fn services_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/release/deps/upload_memory-HASH → target/release/services
    let binary = exe.parent().and_then(|deps| deps.parent()).unwrap().join("services");
    if !binary.exists() {
        panic!(
            "{} is missing: run `cargo build --release -p services` (cargo xtask bench does)",
            binary.display()
        );
    }
    binary
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("upload-memory-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}
