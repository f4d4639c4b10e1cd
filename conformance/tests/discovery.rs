//! Discovery on servers that cannot say everything about themselves: the
//! suite tests what they serve, takes each schema from where it can, and
//! raises no false alarm about what they do not serve.

mod support;

use std::pin::Pin;

use conformance::{Discover, report::Verdict};
use contracts::calculator::calculator_server::CalculatorServer;
use prost::Message;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tonic_reflection::pb::v1::{
    ErrorResponse, FileDescriptorResponse, ListServiceResponse, ServerReflectionRequest,
    ServerReflectionResponse, ServiceResponse,
    server_reflection_request::MessageRequest,
    server_reflection_response::MessageResponse,
    server_reflection_server::{ServerReflection, ServerReflectionServer},
};

/// Reflection as a grpcio server on a custom descriptor pool answers it:
/// it lists `listed`, but describes only `described`.
struct PartialReflection {
    listed: Vec<&'static str>,
    described: Vec<&'static str>,
}

type Answers = Pin<Box<dyn Stream<Item = Result<ServerReflectionResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ServerReflection for PartialReflection {
    type ServerReflectionInfoStream = Answers;

    async fn server_reflection_info(
        &self,
        request: Request<Streaming<ServerReflectionRequest>>,
    ) -> Result<Response<Answers>, Status> {
        let pool = harness::descriptors::embedded();
        let (listed, described) = (self.listed.clone(), self.described.clone());
        let answers = request.into_inner().map(move |request| {
            let request = request?;
            let answer = match request.message_request.clone() {
                Some(MessageRequest::ListServices(_)) => {
                    MessageResponse::ListServicesResponse(ListServiceResponse {
                        service: listed
                            .iter()
                            .map(|name| ServiceResponse { name: (*name).to_owned() })
                            .collect(),
                    })
                }
                Some(MessageRequest::FileContainingSymbol(symbol))
                    if described.contains(&symbol.as_str()) =>
                {
                    let file = pool.get_service_by_name(&symbol).expect("a contract service").parent_file();
                    let mut files = vec![file.file_descriptor_proto().encode_to_vec()];
                    files.extend(file.dependencies().map(|d| d.file_descriptor_proto().encode_to_vec()));
                    MessageResponse::FileDescriptorResponse(FileDescriptorResponse {
                        file_descriptor_proto: files,
                    })
                }
                _ => MessageResponse::ErrorResponse(ErrorResponse {
                    error_code: tonic::Code::NotFound as i32,
                    error_message: "symbol not found".to_owned(),
                }),
            };
            Ok(ServerReflectionResponse {
                valid_host: String::new(),
                original_request: Some(request),
                message_response: Some(answer),
            })
        });
        Ok(Response::new(Box::pin(answers)))
    }
}

/// Serves the calculator and the number streamer, with `reflection`.
async fn serve(reflection: PartialReflection) -> String {
    serve_with(reflection, true).await
}

/// Serves the calculator, and the number streamer if `streamer`.
async fn serve_with(reflection: PartialReflection, streamer: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = tonic::transport::Server::builder()
        .add_service(CalculatorServer::new(services::calculator::Calculator))
        .add_optional_service(streamer.then(|| services::streaming::NumberStreamer.server()))
        .add_service(ServerReflectionServer::new(reflection));
    tokio::spawn(router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)));
    url
}

async fn run(
    url: &str,
    discover: &Discover,
) -> (conformance::context::Context, Vec<conformance::report::CaseResult>) {
    let channel = harness::connect(url).await.unwrap();
    let ctx = conformance::connect(channel, discover, support::settings()).await.unwrap();
    // A plain tonic server answers an oversized message with OUT_OF_RANGE,
    // which the suite rightly reports; that is not what these tests are about.
    let selection =
        conformance::runner::Selection::new(&[], &["*/oversized-message".to_owned()], &[]).unwrap();
    let results = conformance::run(std::sync::Arc::new(ctx.clone()), &selection).await;
    (ctx, results)
}

fn failures(results: &[conformance::report::CaseResult]) -> Vec<String> {
    results.iter().filter(|r| r.verdict.failure().is_some()).map(|r| r.to_string()).collect()
}

/// The planted fault: reflection lists the number streamer but cannot
/// describe it. The suite takes its schema from the contracts and tests it,
/// and assumes nothing about the contracts the server never listed.
#[tokio::test]
async fn a_listed_service_reflection_cannot_describe_is_tested_from_the_contracts() {
    let url = serve(PartialReflection {
        listed: vec!["calculator.Calculator", "streaming.NumberStreamer"],
        described: vec!["calculator.Calculator"],
    })
    .await;
    let (ctx, results) = run(&url, &Discover::default()).await;
    let report = ctx.discovery.report();
    assert!(
        report.contains("streaming.NumberStreamer") && report.contains("schema from the contracts"),
        "{report}"
    );
    assert!(report.contains("symbol not found"), "the report says why reflection failed: {report}");
    assert_eq!(failures(&results), Vec::<String>::new());
    let verdict =
        |name| &results.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no {name}")).verdict;
    assert_eq!(
        verdict("generic/streaming.NumberStreamer/StreamNumbers/arbitrary-requests"),
        &Verdict::Passed
    );
    assert!(matches!(
        verdict("declared/streaming.NumberStreamer/StreamNumbers/expect/whole-range-in-order"),
        Verdict::Passed | Verdict::Measured { .. }
    ));
    assert_eq!(
        verdict("coreservices.CoreServices/Chat/lockstep-echo"),
        &Verdict::Skipped { reason: "not served".into() }
    );
    assert!(
        !results
            .iter()
            .any(|r| r.name.starts_with("generic/coreservices.")
                || r.name.starts_with("declared/coreservices.")),
        "never listed, never assumed"
    );
}

/// A listed service that nothing describes is skipped with the reason;
/// nothing else suffers.
#[tokio::test]
async fn a_service_with_no_schema_anywhere_is_skipped_with_the_reason() {
    let url = serve(PartialReflection {
        listed: vec!["calculator.Calculator", "acme.Unknown"],
        described: vec!["calculator.Calculator"],
    })
    .await;
    let (_, results) = run(&url, &Discover::default()).await;
    assert_eq!(failures(&results), Vec::<String>::new());
    let skipped = results.iter().find(|r| r.name == "generic/acme.Unknown/methods").expect("a case for it");
    assert!(
        matches!(&skipped.verdict, Verdict::Skipped { reason } if reason.contains("the contracts do not define it")),
        "{skipped:?}"
    );
}

/// Without any reflection, health says what is served; what nothing can
/// tell is left to `--services`, never assumed.
#[tokio::test]
async fn without_reflection_the_server_must_say_what_it_serves() {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<CalculatorServer<services::calculator::Calculator>>().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(CalculatorServer::new(services::calculator::Calculator))
        .add_service(services::streaming::NumberStreamer.server());
    tokio::spawn(router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)));

    let (ctx, results) = run(&url, &Discover::default()).await;
    assert_eq!(failures(&results), Vec::<String>::new());
    assert!(ctx.services.contains("calculator.Calculator"), "health lists it");
    // tonic refuses an unknown method and an unknown service alike, and
    // health does not list the streamer: nothing tells whether it is served.
    assert!(ctx.discovery.undetermined.contains(&"streaming.NumberStreamer".to_owned()));
    let skipped = results.iter().find(|r| r.name == "generic/streaming.NumberStreamer/methods").unwrap();
    assert!(matches!(&skipped.verdict, Verdict::Skipped { reason } if reason.contains("--services")));

    let named =
        Discover { services: Some(vec!["streaming.NumberStreamer".to_owned()]), ..Default::default() };
    let (ctx, results) = run(&url, &named).await;
    assert_eq!(ctx.services.iter().collect::<Vec<_>>(), ["streaming.NumberStreamer"]);
    assert_eq!(failures(&results), Vec::<String>::new());
    assert!(
        results
            .iter()
            .any(|r| r.name == "declared/streaming.NumberStreamer/StreamNumbers/expect/whole-range-in-order"
                && matches!(r.verdict, Verdict::Passed | Verdict::Measured { .. }))
    );
}

/// Reflection that lists a service the server does not serve (as a server
/// whose reflection lists every service of a package does): the suite says
/// so in one case per method, instead of odd answers in every other check.
#[tokio::test]
async fn a_listed_service_that_is_not_served_is_reported_once() {
    let url = serve_with(
        PartialReflection {
            listed: vec!["calculator.Calculator", "streaming.NumberStreamer"],
            described: vec!["calculator.Calculator", "streaming.NumberStreamer"],
        },
        false,
    )
    .await;
    let (_, results) = run(&url, &Discover::default()).await;
    let verdict = |name: String| support::verdict(&results, &name).clone();
    let implemented = verdict("generic/streaming.NumberStreamer/StreamNumbers/implemented".to_owned());
    assert!(implemented.failure().is_some_and(|f| f.actual.contains("Unimplemented")), "{implemented:?}");
    for check in ["arbitrary-requests", "invalid-protobuf"] {
        let name = format!("generic/streaming.NumberStreamer/StreamNumbers/{check}");
        let skipped = verdict(name.clone());
        assert!(
            matches!(&skipped, Verdict::Skipped { reason } if reason.contains("/implemented")),
            "{name}: {skipped:?}"
        );
    }
    let generic_failures: Vec<String> = results
        .iter()
        .filter(|r| r.name.starts_with("generic/") && r.verdict.failure().is_some())
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(generic_failures, ["generic/streaming.NumberStreamer/StreamNumbers/implemented"]);
}
