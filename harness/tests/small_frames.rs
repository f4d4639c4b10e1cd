//! A server may put every message of a stream in a DATA frame of its own
//! (grpc-go does), and send them faster than the harness reads them. That is
//! legal HTTP/2 and legal gRPC: the harness must read every message, never
//! turn the connection away as a flood of small frames.

use std::time::Duration;

use bytes::Bytes;
use harness::{CallOptions, DynamicClient, descriptors};
use http::{HeaderMap, HeaderValue, Response};

/// How many empty messages the server streams, each in a DATA frame of its
/// own: 250 KB in all, within one stream's flow-control window, so they all
/// arrive while the reader is not reading.
const MESSAGES: usize = 50_000;

/// A bare h2 server that answers one call with `MESSAGES` empty gRPC
/// messages, one DATA frame each, then OK. Its URL.
async fn one_frame_per_message() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut connection = h2::server::handshake(socket).await.unwrap();
        let (_request, mut respond) = connection.accept().await.unwrap().unwrap();
        tokio::spawn(async move {
            let response = Response::builder().header("content-type", "application/grpc").body(()).unwrap();
            let mut stream = respond.send_response(response, false).unwrap();
            for _ in 0..MESSAGES {
                stream.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), false).unwrap();
            }
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            stream.send_trailers(trailers).unwrap();
        });
        // Drives the connection until the client goes.
        while connection.accept().await.is_some() {}
    });
    url
}

#[tokio::test]
async fn a_message_per_data_frame_is_read_in_full_however_slowly() {
    let url = one_frame_per_message().await;
    let pool = descriptors::embedded();
    let method = pool
        .get_service_by_name("coreservices.CoreServices")
        .unwrap()
        .methods()
        .find(|m| m.name() == "StreamNumbers")
        .unwrap();
    let request = prost_reflect::DynamicMessage::new(method.input());
    let mut client = DynamicClient::connect(&url).unwrap();
    let mut stream = client.server_streaming(&method, &request, &CallOptions::default()).await.unwrap();
    assert!(stream.message().await.unwrap().is_some());
    // A slow reader: the server's frames pile up unread meanwhile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rest, ending) = stream.collect().await;
    ending.unwrap();
    assert_eq!(rest.len() + 1, MESSAGES);
}
