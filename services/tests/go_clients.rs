//! The seeds' clients, written in Go (`conformance/peers/go/`) on grpc-go,
//! against our services: seed 000's image sender, seed 001's file uploader
//! and seed 004's chunk uploader. Each client checks every answer against
//! its contract and exits non-zero when one breaks it; the file uploads are
//! also read back from S3 here. Two deliberately broken servers show that
//! the clients do catch a broken contract.
//!
//! Ignored by default because they need the Go programs, which Debian's Go
//! packages build: `cargo xtask test` builds them (xtask/src/go.rs) and
//! passes their folder as `GO_PEERS`.

use std::{net::SocketAddr, path::PathBuf, process::Output};

use contracts::{
    mensagem::{
        ImagemRequest, ImagemResposta,
        imagem_service_server::{ImagemService, ImagemServiceServer},
    },
    uploader::{
        ImageChunk, UploadSummary,
        uploader_service_server::{UploaderService, UploaderServiceServer},
    },
};
use services::{
    Config, RunningServer,
    s3::{Backend, EmbeddedS3, S3Config},
};
use sha2::{Digest, Sha256};
use tokio_stream::{Stream, wrappers::TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

const BUCKET: &str = "uploads";
const PART: usize = 5 * 1024 * 1024;

/// The folder of the Go programs: `GO_PEERS`, else where xtask builds them.
fn go_peers() -> PathBuf {
    if let Some(folder) = std::env::var_os("GO_PEERS") {
        return folder.into();
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/go/bin");
    assert!(
        local.join("imagem-sender").is_file(),
        "the Go clients are not built: run `cargo xtask test`, which builds them (xtask/src/go.rs) and sets \
         GO_PEERS, or set GO_PEERS to a folder holding them"
    );
    local
}

/// Runs a Go program with `args` and returns its output, whatever its exit
/// status.
async fn run(program: &str, args: &[&str]) -> Output {
    let path = go_peers().join(program);
    tokio::process::Command::new(&path)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", path.display()))
}

/// Runs a Go client that must exit 0, and returns what it printed.
async fn succeeds(program: &str, args: &[&str]) -> String {
    let output = run(program, args).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{program} {args:?} failed ({}):\n{stderr}{stdout}", output.status);
    stdout.into_owned()
}

/// Runs a Go client that must exit 1, the status of a broken contract, and
/// returns what it said on stderr.
async fn fails(program: &str, args: &[&str]) -> String {
    let output = run(program, args).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{program} {args:?} should have failed:\n{stderr}{stdout}");
    stderr.into_owned()
}

/// Our services, without inference (which needs ONNX Runtime and has no Go
/// client), storing uploads in `s3` when given.
async fn our_services(s3: Option<&EmbeddedS3>) -> RunningServer {
    let mut config = Config { inference: None, ..Default::default() };
    if let Some(s3) = s3 {
        let (access_key, secret_key) = s3.credentials();
        let backend = Backend::Static {
            endpoint: s3.endpoint().to_owned(),
            access_key: access_key.into(),
            secret_key: secret_key.into(),
        };
        config.s3 = S3Config { backend, bucket: BUCKET.into(), part_size: PART, parts_in_flight: 2 };
    }
    services::spawn(config).await.expect("our services start")
}

fn host_port(server: &RunningServer) -> String {
    server.addr().to_string()
}

#[tokio::test]
#[ignore = "needs the Go clients: run `cargo xtask test`"]
async fn seed_000_client_gets_one_answer_per_image_in_lockstep() {
    let server = our_services(None).await;
    let addr = host_port(&server);
    // The built-in set: a PNG, a JPEG and a GIF that decode, six bytes that
    // are no image, and an empty message.
    let said = succeeds("imagem-sender", &["--addr", &addr]).await;
    assert!(said.contains("5 answers"), "{said}");

    // Files of the user's, among them a PNG cut short: it keeps its format
    // but must be answered without dimensions.
    let dir = tempfile::tempdir().unwrap();
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(64, 9, |x, y| image::Rgb([x as u8, y as u8, 7]))
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let png = png.into_inner();
    let whole = dir.path().join("whole.png");
    let cut = dir.path().join("cut.png");
    std::fs::write(&whole, &png).unwrap();
    std::fs::write(&cut, &png[..png.len() - 20]).unwrap();
    let files = [whole.to_str().unwrap(), cut.to_str().unwrap()];
    let said = succeeds("imagem-sender", &["--addr", &addr, files[0], files[1], files[0]]).await;
    assert!(said.contains("3 answers"), "{said}");
}

#[tokio::test]
#[ignore = "needs the Go clients: run `cargo xtask test`"]
async fn seed_004_client_counts_every_chunk_and_byte() {
    let server = our_services(None).await;
    let addr = host_port(&server);
    // The seed's own shape: five chunks of 1 KiB.
    let said = succeeds("chunk-uploader", &["--addr", &addr, "--seed", "4"]).await;
    assert!(said.contains("5 chunks, 5120 bytes"), "{said}");
    // Random lengths from 0 up, so empty chunks count too.
    let args = ["--random-sizes", "--chunks", "300", "--chunk-size", "70000", "--seed", "7"];
    succeeds("chunk-uploader", &[&["--addr", addr.as_str()][..], &args].concat()).await;
    // An empty stream is valid and answers 0 and 0.
    let said = succeeds("chunk-uploader", &["--addr", &addr, "--chunks", "0"]).await;
    assert!(said.contains("0 chunks, 0 bytes"), "{said}");
}

#[tokio::test]
#[ignore = "needs the Go clients: run `cargo xtask test`"]
async fn seed_001_client_stores_files_that_read_back_whole() {
    let s3 = EmbeddedS3::start(None).await.unwrap();
    let server = our_services(Some(&s3)).await;
    let addr = host_port(&server);
    let dir = tempfile::tempdir().unwrap();
    // Empty, one PutObject, and a multipart upload of three parts whose
    // chunks straddle the part boundaries.
    for (key, size, chunk) in
        [("go/empty", 0, 1024), ("go/small.bin", 1000, 333), ("go/large.bin", 2 * PART + 7, 1_000_003)]
    {
        let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect();
        let file = dir.path().join(key.replace('/', "_"));
        std::fs::write(&file, &bytes).unwrap();
        let chunk = chunk.to_string();
        let args =
            ["--addr", &addr, "--key", key, "--chunk-size", &chunk, "--send-sha256", file.to_str().unwrap()];
        let said = succeeds("file-uploader", &args).await;
        assert!(said.contains(&hex::encode(Sha256::digest(&bytes))), "{said}");
        let stored = read_back(&s3, key).await.unwrap_or_else(|| panic!("{key} was not stored"));
        assert!(stored == bytes, "{key}: S3 holds {} bytes that differ from the {size} sent", stored.len());
    }
}

#[tokio::test]
#[ignore = "needs the Go clients: run `cargo xtask test`"]
async fn seed_001_client_sees_refusals_and_nothing_is_stored() {
    let s3 = EmbeddedS3::start(None).await.unwrap();
    let server = our_services(Some(&s3)).await;
    let addr = host_port(&server);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file.bin");
    std::fs::write(&file, vec![5u8; PART + 1]).unwrap();
    let file = file.to_str().unwrap();
    let wrong = "0".repeat(64);
    for (key, extra, code) in [
        ("refused/../x", &[][..], "INVALID_ARGUMENT"),
        ("refused/sha256", &["--sha256", wrong.as_str()][..], "DATA_LOSS"),
    ] {
        let args = [&["--addr", addr.as_str(), "--key", key, "--expect", code], extra, &[file]].concat();
        let said = succeeds("file-uploader", &args).await;
        assert!(said.contains("as expected"), "{said}");
        assert!(read_back(&s3, key).await.is_none(), "{key} was stored after {code}");
    }
    // And a client that expected the wrong outcome says so.
    let said =
        fails("file-uploader", &["--addr", &addr, "--key", "fine", "--expect", "DATA_LOSS", file]).await;
    assert!(said.contains("succeeded") && said.contains("DATA_LOSS was expected"), "{said}");
}

async fn read_back(s3: &EmbeddedS3, key: &str) -> Option<Vec<u8>> {
    let object = s3.client().get_object().bucket(BUCKET).key(key).send().await.ok()?;
    Some(object.body.collect().await.unwrap().into_bytes().to_vec())
}

/// Seed 000's own server: it answers only once the client has sent every
/// image, where the contract wants each answer as soon as its image is in.
#[derive(Debug)]
struct AnswersAtTheEnd;

#[tonic::async_trait]
impl ImagemService for AnswersAtTheEnd {
    type UploadImagemStream = std::pin::Pin<Box<dyn Stream<Item = Result<ImagemResposta, Status>> + Send>>;

    async fn upload_imagem(
        &self,
        request: Request<Streaming<ImagemRequest>>,
    ) -> Result<Response<Self::UploadImagemStream>, Status> {
        let mut images = request.into_inner();
        let mut answers = Vec::new();
        while let Some(image) = images.message().await? {
            let bytes = image.imagem;
            answers.push(Ok(ImagemResposta {
                mensagem: "Imagem recebida com sucesso!".into(),
                byte_count: bytes.len() as u64,
                sha256_hex: hex::encode(Sha256::digest(&bytes)),
                index: answers.len() as u64,
                ..Default::default()
            }));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(answers))))
    }
}

/// A summary that forgets empty chunks, which the contract counts.
#[derive(Debug)]
struct SkipsEmptyChunks;

#[tonic::async_trait]
impl UploaderService for SkipsEmptyChunks {
    async fn upload_image(
        &self,
        request: Request<Streaming<ImageChunk>>,
    ) -> Result<Response<UploadSummary>, Status> {
        let (mut total_chunks, mut total_bytes) = (0, 0);
        let mut chunks = request.into_inner();
        while let Some(chunk) = chunks.message().await? {
            if !chunk.data.is_empty() {
                total_chunks += 1;
                total_bytes += chunk.data.len() as i64;
            }
        }
        Ok(Response::new(UploadSummary { total_chunks, total_bytes }))
    }
}

/// Serves the broken services on a free port, for as long as the test runs.
async fn broken_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = tonic::transport::Server::builder()
        .add_service(ImagemServiceServer::new(AnswersAtTheEnd))
        .add_service(UploaderServiceServer::new(SkipsEmptyChunks));
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    addr
}

#[tokio::test]
#[ignore = "needs the Go clients: run `cargo xtask test`"]
async fn the_clients_catch_servers_that_break_the_contract() {
    let addr = broken_server().await.to_string();
    let said = fails("imagem-sender", &["--addr", &addr, "--timeout", "2s"]).await;
    assert!(said.contains("not after the client half-closes"), "{said}");
    let said = fails("chunk-uploader", &["--addr", &addr, "--chunks", "5", "--chunk-size", "0"]).await;
    assert!(said.contains("empty ones included"), "{said}");
}
