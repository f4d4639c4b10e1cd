//! UNAVAILABLE that a server sends is an answer: its own backend may be
//! down. Only a connection that fails under a call counts as a server that
//! dropped it. A server that answers every call with UNAVAILABLE must pass
//! the generic checks, and the gate must not take it for a dead one.

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
