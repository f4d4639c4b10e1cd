use std::time::Duration;

use contracts::streaming::{StreamRequest, number_streamer_client::NumberStreamerClient};
use tonic::{Code, Request};

use crate::support::{assert_code, start, start_with};

async fn collect(
    client: &mut NumberStreamerClient<tonic::transport::Channel>,
    request: StreamRequest,
) -> Vec<i64> {
    let mut stream = client.stream_numbers(request).await.unwrap().into_inner();
    let mut values = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        values.push(message.value);
    }
    values
}

#[tokio::test]
async fn emits_the_inclusive_range_in_order() {
    let (_server, channel) = start().await;
    let mut client = NumberStreamerClient::new(channel);
    for (start, end) in [(1, 10), (0, 0), (-5, 3), (i64::MAX - 2, i64::MAX), (i64::MIN, i64::MIN + 1)] {
        let values = collect(&mut client, StreamRequest { start, end, interval_ms: 0 }).await;
        assert_eq!(values, (start..=end).collect::<Vec<_>>(), "{start}..={end}");
    }
    let paced = collect(&mut client, StreamRequest { start: 1, end: 3, interval_ms: 5 }).await;
    assert_eq!(paced, [1, 2, 3]);
}

#[tokio::test]
async fn streams_the_largest_allowed_range() {
    let (_server, channel) = start().await;
    let mut client = NumberStreamerClient::new(channel);
    let values = collect(&mut client, StreamRequest { start: -500_000, end: 499_999, interval_ms: 0 }).await;
    assert_eq!(values.len(), 1_000_000);
    assert!(values.windows(2).all(|pair| pair[1] == pair[0] + 1));
}

#[tokio::test]
async fn rejects_reversed_and_oversized_ranges() {
    let (_server, channel) = start().await;
    let mut client = NumberStreamerClient::new(channel);
    for (start, end) in [(2, 1), (i64::MAX, i64::MIN), (0, 1_000_000), (i64::MIN, i64::MAX)] {
        let request = StreamRequest { start, end, interval_ms: 0 };
        assert_code(client.stream_numbers(request).await, Code::InvalidArgument);
    }
}

#[tokio::test]
async fn a_passed_deadline_ends_a_slow_stream() {
    let (_server, channel) = start().await;
    let mut client = NumberStreamerClient::new(channel);
    let mut request = Request::new(StreamRequest { start: 0, end: 100, interval_ms: 60_000 });
    request.set_timeout(Duration::from_millis(50));
    let mut stream = client.stream_numbers(request).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().value, 0);
    assert_code(stream.message().await, Code::DeadlineExceeded);
}

#[tokio::test]
async fn a_cancelled_stream_stops_on_the_server() {
    let config = services::Config { shutdown_timeout: Duration::from_secs(60), ..Default::default() };
    let (server, channel) = start_with(config).await;
    let mut client = NumberStreamerClient::new(channel.clone());
    let mut stream = client
        .stream_numbers(StreamRequest { start: 0, end: 100, interval_ms: 60_000 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().value, 0);
    drop(stream);
    drop(client);
    drop(channel);
    // A graceful shutdown waits for every in-flight call. It can only finish
    // (rather than be cut off at the timeout) if the server dropped the
    // cancelled stream.
    let outcome = server.shutdown().await.unwrap();
    assert_eq!(outcome, services::Shutdown::Drained);
}
