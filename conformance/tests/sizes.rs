//! Faults that only long inputs show: the suite's inputs must reach them,
//! and shrink to the shortest that still fails.

mod support;

use contracts::coreservices::{
    ChatMessage, NumberMessage, PingRequest, PingResponse, StreamNumbersRequest, UploadNumbersResponse,
    core_services_server,
};
use services::coreservices::CoreServices as OurCoreServices;
use tonic::{Request, Response, Status, Streaming};

#[derive(Clone, Copy)]
enum Fault {
    /// Ping echoes at most 300 bytes of its message, as a fixed buffer would.
    TruncatesLongText,
    /// Chat echoes the 129th message of a stream wrong, as a 128-slot ring
    /// buffer that wraps one too early would.
    GarblesThe129thMessage,
}

struct Faulty(Fault);

#[tonic::async_trait]
impl core_services_server::CoreServices for Faulty {
    async fn ping(&self, request: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        let Fault::TruncatesLongText = self.0 else { return OurCoreServices.ping(request).await };
        let mut message = request.into_inner().message;
        let mut cut = message.len().min(300);
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        Ok(Response::new(PingResponse { message, ..Default::default() }))
    }

    type StreamNumbersStream = <OurCoreServices as core_services_server::CoreServices>::StreamNumbersStream;

    async fn stream_numbers(
        &self,
        request: Request<StreamNumbersRequest>,
    ) -> Result<Response<Self::StreamNumbersStream>, Status> {
        OurCoreServices.stream_numbers(request).await
    }

    async fn upload_numbers(
        &self,
        request: Request<Streaming<NumberMessage>>,
    ) -> Result<Response<UploadNumbersResponse>, Status> {
        OurCoreServices.upload_numbers(request).await
    }

    type ChatStream = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<ChatMessage, Status>> + Send>>;

    async fn chat(
        &self,
        request: Request<Streaming<ChatMessage>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let fault = self.0;
        tokio::spawn(async move {
            let mut seq = 0u64;
            while let Ok(Some(message)) = inbound.message().await {
                let garbled = matches!(fault, Fault::GarblesThe129thMessage) && seq == 128;
                let text = if garbled { format!("{}?", message.text) } else { message.text };
                if tx.send(Ok(ChatMessage { text, seq, sender: "server".into() })).await.is_err() {
                    return;
                }
                seq += 1;
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

async fn failure_of(fault: Fault, case: &str) -> conformance::report::Failure {
    let settings = conformance::context::Settings { inputs: 64, ..support::settings() };
    failure_with(fault, case, settings).await
}

async fn failure_with(
    fault: Fault,
    case: &str,
    settings: conformance::context::Settings,
) -> conformance::report::Failure {
    let url = support::serve(
        move |mut s| s.add_service(core_services_server::CoreServicesServer::new(Faulty(fault))),
        &["coreservices.CoreServices"],
    )
    .await;
    let results = support::run(&url, &[case], settings).await;
    match support::verdict(&results, case).failure() {
        Some(failure) => failure.clone(),
        None => panic!("the planted fault went unnoticed by {case}: {results:#?}"),
    }
}

#[tokio::test]
async fn a_server_that_truncates_long_text() {
    let failure =
        failure_of(Fault::TruncatesLongText, "declared/coreservices.CoreServices/Ping/expect/echo").await;
    assert!(failure.expected.contains("response.message == request.message"), "{failure:?}");
    assert!(failure.actual.starts_with("it is false"), "{failure:?}");
    assert_eq!(failure.note, None, "shrinking finished");
}

/// Shrinking that runs out of time reports the best input found and says
/// so, rather than passing it off as the smallest.
#[tokio::test]
async fn shrinking_cut_short_says_so() {
    let settings = conformance::context::Settings {
        inputs: 64,
        shrink_time: std::time::Duration::ZERO,
        ..support::settings()
    };
    let failure = failure_with(
        Fault::TruncatesLongText,
        "declared/coreservices.CoreServices/Ping/expect/echo",
        settings,
    )
    .await;
    let note = failure.note.expect("a note");
    assert!(note.contains("shrinking stopped at its bound of 0 s (--shrink-secs)"), "{note}");
}

#[tokio::test]
async fn a_server_that_garbles_the_129th_message_of_a_stream() {
    let failure =
        failure_of(Fault::GarblesThe129thMessage, "coreservices.CoreServices/Chat/lockstep-echo").await;
    // Shrunk to exactly the 129 messages it takes.
    let input = failure.input.expect("a counterexample");
    assert!(input.contains("#128:") && !input.contains("#129:"), "{input}");
}
