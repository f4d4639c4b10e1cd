use std::time::{Duration, SystemTime, UNIX_EPOCH};

use contracts::coreservices::{
    ChatMessage, NumberMessage, PingRequest, StreamNumbersRequest, UploadNumbersResponse,
    core_services_client::CoreServicesClient,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, transport::Channel};

use crate::support::{assert_code, start};

async fn client() -> (services::RunningServer, CoreServicesClient<Channel>) {
    let (server, channel) = start().await;
    (server, CoreServicesClient::new(channel))
}

#[tokio::test]
async fn ping_echoes_with_the_server_clock() {
    let (_server, mut client) = client().await;
    for message in ["", "hello", "olá, mundo 🌍", &"x".repeat(100_000)] {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64;
        let response = client.ping(PingRequest { message: message.to_owned() }).await.unwrap().into_inner();
        assert_eq!(response.message, message);
        assert!(response.server_time_unix_nanos >= before, "server clock behind the client's");
    }
}

#[tokio::test]
async fn stream_numbers_emits_exactly_count_values() {
    let (_server, mut client) = client().await;
    for (count, interval_ms) in [(0, 0), (1, 0), (7, 0), (3, 5), (10_000, 0)] {
        let mut stream =
            client.stream_numbers(StreamNumbersRequest { count, interval_ms }).await.unwrap().into_inner();
        let mut values = Vec::new();
        while let Some(message) = stream.message().await.unwrap() {
            values.push(message.value);
        }
        assert_eq!(values, (0..i64::from(count)).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn stream_numbers_honours_the_deadline() {
    let (_server, mut client) = client().await;
    let mut request = Request::new(StreamNumbersRequest { count: 1000, interval_ms: 60_000 });
    request.set_timeout(Duration::from_millis(50));
    let mut stream = client.stream_numbers(request).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().value, 0);
    assert_code(stream.message().await, Code::DeadlineExceeded);
}

async fn upload(
    client: &mut CoreServicesClient<Channel>,
    values: &[i64],
) -> Result<UploadNumbersResponse, tonic::Status> {
    let messages: Vec<_> = values.iter().map(|&value| NumberMessage { value }).collect();
    client.upload_numbers(tokio_stream::iter(messages)).await.map(|r| r.into_inner())
}

#[tokio::test]
async fn upload_numbers_summarises_the_stream() {
    let (_server, mut client) = client().await;
    assert_eq!(
        upload(&mut client, &[]).await.unwrap(),
        UploadNumbersResponse { count: 0, sum: 0, min: 0, max: 0 }
    );
    assert_eq!(
        upload(&mut client, &[-7]).await.unwrap(),
        UploadNumbersResponse { count: 1, sum: -7, min: -7, max: -7 }
    );
    assert_eq!(
        upload(&mut client, &[3, -1, 10, 0, 4]).await.unwrap(),
        UploadNumbersResponse { count: 5, sum: 16, min: -1, max: 10 }
    );
    // Extremes that cancel out do not overflow.
    assert_eq!(
        upload(&mut client, &[i64::MAX, i64::MIN]).await.unwrap(),
        UploadNumbersResponse { count: 2, sum: -1, min: i64::MIN, max: i64::MAX }
    );
}

#[tokio::test]
async fn upload_numbers_reports_sum_overflow() {
    let (_server, mut client) = client().await;
    assert_code(upload(&mut client, &[i64::MAX, 1]).await, Code::OutOfRange);
    assert_code(upload(&mut client, &[i64::MIN, -1]).await, Code::OutOfRange);
    // A prefix that overflows fails even though the whole sum would fit.
    assert_code(upload(&mut client, &[i64::MAX, 1, -1]).await, Code::OutOfRange);
    assert_eq!(upload(&mut client, &[1, 2]).await.unwrap().sum, 3);
}

#[tokio::test]
async fn chat_answers_each_message_before_the_next_is_sent() {
    let (_server, mut client) = client().await;
    let (tx, rx) = mpsc::channel(1);
    // Queue the first message before awaiting the call: some servers send no
    // response headers until they have a reply.
    tx.send(ChatMessage { text: "first".into(), seq: 99, sender: "me".into() }).await.unwrap();
    let mut replies = client.chat(ReceiverStream::new(rx)).await.unwrap().into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    assert_eq!(reply, ChatMessage { text: "first".into(), seq: 0, sender: "server".into() });
    // Lockstep: every later message is sent only once the previous reply is in.
    for (index, text) in ["second", "", "quatro ✓"].into_iter().enumerate() {
        tx.send(ChatMessage { text: text.into(), seq: 0, sender: String::new() }).await.unwrap();
        let reply = replies.message().await.unwrap().unwrap();
        assert_eq!(reply, ChatMessage { text: text.into(), seq: index as u64 + 1, sender: "server".into() });
    }
    drop(tx);
    assert_eq!(replies.message().await.unwrap(), None, "the stream ends after the client half-closes");
}

#[tokio::test]
async fn chat_with_no_messages_ends_cleanly() {
    let (_server, mut client) = client().await;
    let mut replies = client.chat(tokio_stream::empty()).await.unwrap().into_inner();
    assert_eq!(replies.message().await.unwrap(), None);
}
