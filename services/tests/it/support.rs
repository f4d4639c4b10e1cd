//! Starting a server and connecting to it.

use services::{Config, RunningServer};
use tokio_stream::StreamExt;
use tonic::{Code, Status, transport::Channel};

pub(crate) async fn start() -> (RunningServer, Channel) {
    start_with(Config::default()).await
}

pub(crate) async fn start_with(config: Config) -> (RunningServer, Channel) {
    let server = services::spawn(config).await.expect("server starts");
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .expect("client connects");
    (server, channel)
}

/// Asserts that `result` failed with `code`, printing the whole status when
/// it did not.
#[track_caller]
pub(crate) fn assert_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Err(status) if status.code() == code => status,
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

/// Lists services over either reflection version: v1 and v1alpha share
/// their message layout, so only the method path differs.
pub(crate) async fn list_services(channel: Channel, service: &str) -> Result<Vec<String>, tonic::Status> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, ServerReflectionResponse, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|err| tonic::Status::unavailable(err.to_string()))?;
    let path = format!("/{service}/ServerReflectionInfo").parse().unwrap();
    let codec = tonic_prost::ProstCodec::<ServerReflectionRequest, ServerReflectionResponse>::default();
    let mut responses =
        grpc.streaming(tonic::Request::new(tokio_stream::iter([request])), path, codec).await?.into_inner();
    match responses.next().await.expect("an answer")?.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}
