//! A server that keeps working for callers who left: the suite must name
//! the case that shows it, and no other.

mod support;

use std::{pin::Pin, sync::Arc, time::Duration};

use contracts::coreservices::{
    ChatMessage, NumberMessage, PingRequest, PingResponse, StreamNumbersRequest, UploadNumbersResponse,
    core_services_server,
};
use services::coreservices::CoreServices as OurCoreServices;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status, Streaming};

/// The server's workers: every call waits for one, as in a thread-pool
/// server (grpcio's, say).
const WORKERS: usize = 8;

/// The longest a stream paces its values, so the damage wears off: well
/// past the suite's setup of the case and the tests' 2 s watchdog.
const PACING: Duration = Duration::from_secs(6);

/// CoreServices whose paced StreamNumbers keeps its worker, sleeping
/// through every interval, after the client has gone: it honours deadlines,
/// but never notices a cancellation.
struct SleepsThroughCancellation {
    workers: Arc<Semaphore>,
}

type Numbers = Pin<Box<dyn tokio_stream::Stream<Item = Result<NumberMessage, Status>> + Send>>;

#[tonic::async_trait]
impl core_services_server::CoreServices for SleepsThroughCancellation {
    async fn ping(&self, request: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        OurCoreServices.ping(request).await
    }

    type StreamNumbersStream = Numbers;

    async fn stream_numbers(
        &self,
        request: Request<StreamNumbersRequest>,
    ) -> Result<Response<Self::StreamNumbersStream>, Status> {
        let deadline = deadline(&request);
        let StreamNumbersRequest { count, interval_ms } = request.into_inner();
        let workers = self.workers.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            let work = async {
                // The stream's producer holds a worker of its own once the
                // call has its answer's headers (and so has given back the
                // one it was answered on).
                let _worker = workers.acquire_owned().await.expect("never closed");
                for value in 0..count {
                    if value > 0 && interval_ms > 0 {
                        // The bug: no check that anyone still listens.
                        tokio::time::sleep(Duration::from_millis(u64::from(interval_ms))).await;
                    }
                    let sent = tx.send(Ok(NumberMessage { value: i64::from(value) })).await;
                    if sent.is_err() && interval_ms == 0 {
                        break; // Unpaced, it notices the closed stream.
                    }
                }
            };
            // Its deadline, or a few seconds of pacing at most, end the work.
            let limit = deadline.map_or(PACING, |deadline| deadline.min(PACING));
            if tokio::time::timeout(limit, work).await.is_err() && deadline.is_some_and(|d| d <= PACING) {
                let _ = tx.send(Err(Status::deadline_exceeded("deadline passed"))).await;
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn upload_numbers(
        &self,
        request: Request<Streaming<NumberMessage>>,
    ) -> Result<Response<UploadNumbersResponse>, Status> {
        OurCoreServices.upload_numbers(request).await
    }

    type ChatStream = <OurCoreServices as core_services_server::CoreServices>::ChatStream;

    async fn chat(
        &self,
        request: Request<Streaming<ChatMessage>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        OurCoreServices.chat(request).await
    }
}

/// The client's `grpc-timeout`, in the units the suite sends.
fn deadline<T>(request: &Request<T>) -> Option<Duration> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => Duration::from_secs(amount * 60),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_sleeps_through_cancellation_fails_that_case_alone() {
    let workers = Arc::new(Semaphore::new(WORKERS));
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<core_services_server::CoreServicesServer<OurCoreServices>>().await;
    let service =
        core_services_server::CoreServicesServer::new(SleepsThroughCancellation { workers: workers.clone() });
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(contracts::FILE_DESCRIPTOR_SET)
        .with_service_name("coreservices.CoreServices")
        .with_service_name("grpc.health.v1.Health")
        .build_v1()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = tonic::transport::Server::builder()
        // Every call, health's included, holds a worker while it is answered.
        .layer(support::BeforeEachCall::new(move || {
            let workers = workers.clone();
            async move { workers.acquire_owned().await.expect("never closed") }
        }))
        .add_service(health)
        .add_service(reflection)
        .add_service(service);
    tokio::spawn(router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)));
    // A plain tonic server answers an oversized message with OUT_OF_RANGE,
    // which the suite rightly reports; that is not the fault planted here.
    let channel = harness::connect(&url).await.unwrap();
    let ctx = conformance::connect(channel, &Default::default(), support::settings()).await.unwrap();
    let selection = conformance::runner::Selection::new(
        &["*coreservices.CoreServices*".to_owned()],
        &["*/oversized-message".to_owned()],
        &[],
    )
    .unwrap();
    let results = conformance::run(Arc::new(ctx), &selection).await;

    let case = "generic/coreservices.CoreServices/cancellation-frees-the-server";
    let failure = support::verdict(&results, case)
        .failure()
        .unwrap_or_else(|| panic!("the fault is caught by its case: {results:#?}"))
        .clone();
    assert!(failure.actual.contains("got no answer"), "{failure:?}");
    let others: Vec<String> = results
        .iter()
        .filter(|r| r.name != case && r.verdict.failure().is_some())
        .map(|r| r.to_string())
        .collect();
    assert!(others.is_empty(), "no false alarm elsewhere:\n{}", others.join("\n"));
}
