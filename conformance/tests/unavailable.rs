//! UNAVAILABLE that a server sends is an answer: its own backend may be
//! down. Only a connection that fails under a call counts as a server that
//! dropped it. A server that answers every call with UNAVAILABLE must pass
//! the generic checks, and the gate must not take it for a dead one; one
//! that drops its connection under a call must fail them.

mod support;

use conformance::report::Verdict;
use contracts::calculator::{CubeRequest, CubeResponse, calculator_server};
use tonic::{Request, Response, Status};

struct BackendDown;

#[tonic::async_trait]
impl calculator_server::Calculator for BackendDown {
    async fn cube(&self, _: Request<CubeRequest>) -> Result<Response<CubeResponse>, Status> {
        Err(Status::unavailable("the backend is down"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_answers_unavailable_is_not_a_dropped_connection() {
    let url = support::serve(
        |mut server| server.add_service(calculator_server::CalculatorServer::new(BackendDown)),
        &["calculator.Calculator"],
    )
    .await;
    let cases = [
        "generic/calculator.Calculator/Cube/arbitrary-requests",
        "generic/calculator.Calculator/Cube/invalid-protobuf",
    ];
    let results = support::run(&url, &cases, support::settings()).await;
    for case in cases {
        assert_eq!(support::verdict(&results, case), &Verdict::Passed, "{case}: {results:#?}");
    }
}

/// The planted fault: a calculator that drops its whole connection on any
/// request but the default one (an empty body), which it answers OK, as it
/// does a call of any other method, with UNIMPLEMENTED. It serves no
/// reflection: the run names its services.
async fn drops_the_connection_on_a_number() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(socket).await else { return };
                let (dropping, mut drop_now) = tokio::sync::mpsc::channel::<()>(1);
                // `accept` drives the connection: it must keep running while
                // each call is answered on a task of its own.
                loop {
                    tokio::select! {
                        next = connection.accept() => match next {
                            Some(Ok((request, respond))) => {
                                tokio::spawn(answer(request, respond, dropping.clone()));
                            }
                            _ => return,
                        },
                        // The bug: the whole connection goes, mid-call.
                        _ = drop_now.recv() => return,
                    }
                }
            });
        }
    });
    url
}

async fn answer(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<bytes::Bytes>,
    dropping: tokio::sync::mpsc::Sender<()>,
) {
    let cube = request.uri().path() == "/calculator.Calculator/Cube";
    let mut body = request.into_body();
    let mut received = 0;
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        received += chunk.len();
    }
    if cube && received > 5 {
        let _ = dropping.send(()).await;
        return;
    }
    let response = http::Response::builder().header("content-type", "application/grpc").body(()).unwrap();
    let Ok(mut stream) = respond.send_response(response, false) else { return };
    let mut trailers = http::HeaderMap::new();
    if cube {
        let _ = stream.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), false);
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    } else {
        trailers.insert("grpc-status", http::HeaderValue::from_static("12"));
    }
    let _ = stream.send_trailers(trailers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_drops_the_connection_mid_call_fails_arbitrary_requests() {
    let url = drops_the_connection_on_a_number().await;
    let channel = harness::connect(&url).await.unwrap();
    let discover = conformance::Discover {
        services: Some(vec!["calculator.Calculator".to_owned()]),
        ..Default::default()
    };
    let ctx = conformance::connect(channel, &discover, support::settings()).await.unwrap();
    let case = "generic/calculator.Calculator/Cube/arbitrary-requests";
    let selection = conformance::runner::Selection::new(&[case.to_owned()], &[], &[]).unwrap();
    let results = conformance::run(std::sync::Arc::new(ctx), &selection).await;
    let failure =
        support::verdict(&results, case).failure().unwrap_or_else(|| panic!("unnoticed: {results:#?}"));
    assert!(failure.actual.contains("the connection dropped"), "{failure:?}");
}
