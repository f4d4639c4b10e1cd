//! Faults that only a contract's own declarations catch: each server has
//! one bug against a `buf.validate` rule or a `conformance.v1.expectation`
//! of its `.proto`, and no Rust property of the suite knows that contract's
//! semantics.

mod support;

use contracts::{
    calculator::{CubeRequest, CubeResponse, calculator_server},
    mensagem::{ImageFormat, ImagemRequest, ImagemResposta, imagem_service_server},
    streaming::{NumberResponse, StreamRequest, number_streamer_server},
};
use sha2::Digest;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use support::{Boxed, failure_of};

// --- Cube: the range its expectations state ---------------------------------

/// Cubes with a limit of its own.
struct Cube(fn(i64) -> Result<i64, Status>);

#[tonic::async_trait]
impl calculator_server::Calculator for Cube {
    async fn cube(&self, request: Request<CubeRequest>) -> Result<Response<CubeResponse>, Status> {
        (self.0)(request.into_inner().number).map(|result| Response::new(CubeResponse { result }))
    }
}

async fn serve_cube(cube: fn(i64) -> Result<i64, Status>) -> String {
    support::serve(
        |mut s| s.add_service(calculator_server::CalculatorServer::new(Cube(cube))),
        &["calculator.Calculator"],
    )
    .await
}

#[tokio::test]
async fn a_server_that_accepts_an_out_of_range_number() {
    // The bug: no range check, so the cube wraps.
    let url = serve_cube(|n| Ok(n.wrapping_mul(n).wrapping_mul(n))).await;
    let failure = failure_of(&url, "declared/calculator.Calculator/Cube/expect/out-of-range").await;
    assert!(failure.expected.starts_with("OUT_OF_RANGE"), "{failure:?}");
    assert_eq!(failure.actual, "OK");
    // Shrunk to just past an edge of the range the `when` states.
    let input = failure.input.unwrap();
    assert!(input.contains("2097152"), "{input}");
}

#[tokio::test]
async fn a_server_that_refuses_a_valid_boundary_value() {
    // The bug: `<` where the contract says `<=`.
    let url = serve_cube(|n| match n.abs() < 2_097_151 {
        true => Ok(n * n * n),
        false => Err(Status::out_of_range("too big")),
    })
    .await;
    let failure = failure_of(&url, "declared/calculator.Calculator/Cube/expect/exact-cube").await;
    assert!(failure.actual.contains("OutOfRange") || failure.actual.contains("OUT_OF_RANGE"), "{failure:?}");
    // Random numbers never land on the boundary; the number the contract
    // names is drawn on purpose.
    let input = failure.input.unwrap();
    assert!(input.contains("2097151"), "{input}");
}

// --- NumberStreamer: a rule on the request --------------------------------------

struct AcceptsReversedRanges;

#[tonic::async_trait]
impl number_streamer_server::NumberStreamer for AcceptsReversedRanges {
    type StreamNumbersStream = Boxed<NumberResponse>;

    async fn stream_numbers(
        &self,
        request: Request<StreamRequest>,
    ) -> Result<Response<Self::StreamNumbersStream>, Status> {
        let StreamRequest { start, end, .. } = request.into_inner();
        if i128::from(end) - i128::from(start) >= 1_000_000 {
            return Err(Status::invalid_argument("too many values"));
        }
        // The bug: a reversed range is an empty stream, not INVALID_ARGUMENT.
        let values: Vec<_> = (start..=end).map(|value| Ok(NumberResponse { value })).collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(values))))
    }
}

#[tokio::test]
async fn a_server_that_accepts_a_request_breaking_a_rule() {
    let url = support::serve(
        |mut s| s.add_service(number_streamer_server::NumberStreamerServer::new(AcceptsReversedRanges)),
        &["streaming.NumberStreamer"],
    )
    .await;
    let failure =
        failure_of(&url, "declared/streaming.NumberStreamer/StreamNumbers/invalid-inputs-refused").await;
    // The report names the rule the counterexample breaks.
    assert!(failure.expected.contains("start_not_after_end"), "{failure:?}");
    assert_eq!(failure.actual, "OK");
}

// --- ImagemService: rules on the response ---------------------------------------

struct UppercaseDigest;

#[tonic::async_trait]
impl imagem_service_server::ImagemService for UppercaseDigest {
    type UploadImagemStream = Boxed<ImagemResposta>;

    async fn upload_imagem(
        &self,
        request: Request<Streaming<ImagemRequest>>,
    ) -> Result<Response<Self::UploadImagemStream>, Status> {
        let mut next = 0u64;
        let replies = request.into_inner().map(move |request| {
            let index = next;
            next += 1;
            let imagem = request?.imagem;
            Ok(ImagemResposta {
                mensagem: "bytes".into(),
                byte_count: imagem.len() as u64,
                // The bug: the contract's rule says lowercase hex.
                sha256_hex: hex::encode_upper(sha2::Sha256::digest(&imagem)),
                format: ImageFormat::Unknown.into(),
                width: None,
                height: None,
                index,
            })
        });
        Ok(Response::new(Box::pin(replies)))
    }
}

#[tokio::test]
async fn a_server_whose_responses_break_their_own_rules() {
    let url = support::serve(
        |mut s| s.add_service(imagem_service_server::ImagemServiceServer::new(UppercaseDigest)),
        &["mensagem.ImagemService"],
    )
    .await;
    let failure =
        failure_of(&url, "declared/mensagem.ImagemService/UploadImagem/responses-satisfy-rules").await;
    assert!(
        failure.actual.contains("string.pattern") && failure.actual.contains("sha256_hex"),
        "{failure:?}"
    );
    // One image is enough to show it.
    let input = failure.input.unwrap();
    assert!(input.starts_with("a stream of 1:"), "{input}");
}

// --- rules from a descriptor set, where there is no reflection ----------------

#[tokio::test]
async fn rules_come_from_a_descriptor_set_when_there_is_no_reflection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tonic::transport::Server::builder()
        .add_service(number_streamer_server::NumberStreamerServer::new(AcceptsReversedRanges));
    tokio::spawn(server.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)));
    // The user's schema, as `buf build -o` writes it: the contract with its
    // imports, validate.proto among them.
    let descriptors = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(descriptors.path(), contracts::FILE_DESCRIPTOR_SET).unwrap();
    let discover = conformance::Discover {
        descriptors: Some(descriptors.path().to_owned()),
        services: Some(vec!["streaming.NumberStreamer".to_owned()]),
    };
    let channel = harness::connect(&url).await.unwrap();
    let ctx = conformance::connect(channel, &discover, support::settings()).await.unwrap();
    assert!(
        matches!(
            ctx.discovery.schema_of("streaming.NumberStreamer"),
            Some(harness::discovery::Schema::File(_))
        ),
        "{}",
        ctx.discovery.report()
    );
    let case = "declared/streaming.NumberStreamer/StreamNumbers/invalid-inputs-refused";
    let selection = conformance::runner::Selection::new(&[case.to_owned()], &[], &[]).unwrap();
    let results = conformance::run(std::sync::Arc::new(ctx), &selection).await;
    let failure = support::verdict(&results, case).failure().expect("the planted fault is noticed").clone();
    assert!(failure.expected.contains("start_not_after_end"), "{failure:?}");
}
