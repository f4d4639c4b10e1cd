//! A target that stops answering mid-run: the case after which it stopped
//! fails, the cases after it are reported as not run, and none passes.

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use conformance::{context::Settings, report::Verdict, runner::Selection};
use contracts::calculator::{CubeRequest, CubeResponse, calculator_server};
use tonic::{Request, Response, Status};

/// A calculator that wedges the whole server, for good, on the first number
/// whose cube overflows: from then on no call, of any service, is answered.
struct WedgesOnOverflow {
    wedged: Arc<AtomicBool>,
}

#[tonic::async_trait]
impl calculator_server::Calculator for WedgesOnOverflow {
    async fn cube(&self, request: Request<CubeRequest>) -> Result<Response<CubeResponse>, Status> {
        let number = request.into_inner().number;
        if number.checked_mul(number).and_then(|square| square.checked_mul(number)).is_none() {
            // The bug: a lock taken and never given back.
            self.wedged.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        Ok(Response::new(CubeResponse { result: number * number * number }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_case_after_which_the_target_stops_answering_fails_and_the_rest_do_not_run() {
    let wedged = Arc::new(AtomicBool::new(false));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(contracts::FILE_DESCRIPTOR_SET)
        .with_service_name("calculator.Calculator")
        .build_v1()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = tonic::transport::Server::builder()
        // Every call, of every service, waits forever once it is wedged.
        .layer(support::BeforeEachCall::new({
            let wedged = wedged.clone();
            move || {
                let wedged = wedged.load(Ordering::SeqCst);
                async move {
                    if wedged {
                        std::future::pending::<()>().await;
                    }
                }
            }
        }))
        .add_service(reflection)
        .add_service(calculator_server::CalculatorServer::new(WedgesOnOverflow { wedged }));
    tokio::spawn(router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)));

    // The cancellation case would wedge it too, then wait a minute for it to
    // heal; shrinking would spend its bound on calls that never end.
    let settings = Settings { shrink_time: Duration::from_secs(1), ..support::settings() };
    let channel = harness::connect(&url).await.unwrap();
    let ctx = conformance::connect(channel, &Default::default(), settings).await.unwrap();
    let selection = Selection::new(
        &["*calculator.Calculator*".to_owned()],
        &["*/cancellation-frees-the-server".to_owned()],
        &[],
    )
    .unwrap();
    let results = conformance::run(Arc::new(ctx), &selection).await;

    let broke = results
        .iter()
        .position(|r| r.verdict.failure().is_some())
        .unwrap_or_else(|| panic!("the wedge is reported: {results:#?}"));
    let culprit = &results[broke];
    let failure = culprit.verdict.failure().unwrap();
    assert!(
        failure.note.as_deref().is_some_and(|note| note.contains("stopped answering"))
            || failure.expected.contains("keep answering"),
        "{culprit}"
    );
    let after = &results[broke + 1..];
    assert!(!after.is_empty(), "the wedge comes before the last case: {results:#?}");
    for result in after {
        match &result.verdict {
            Verdict::Skipped { reason } => {
                assert!(reason.contains(&format!("stopped answering after {}", culprit.name)), "{reason}")
            }
            other => panic!("{} after the wedge: {other:?}", result.name),
        }
    }
}
