//! What every service gets from the server: reflection, health, limits,
//! UNIMPLEMENTED for unknown names, graceful shutdown.

use contracts::coreservices::{PingRequest, core_services_client::CoreServicesClient};
use services::{Config, Shutdown, server::SERVICE_NAMES};
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::support::{assert_code, start, start_with};

const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

async fn list_services(channel: Channel, service: &str) -> Vec<String> {
    crate::support::list_services(channel, service).await.unwrap()
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_exactly_the_served_services() {
    let (_server, channel) = start().await;
    let mut expected: Vec<String> = SERVICE_NAMES
        .iter()
        .copied()
        .chain(["grpc.health.v1.Health", REFLECTION_V1, REFLECTION_V1ALPHA])
        .map(String::from)
        .collect();
    expected.sort();
    for mut listed in [
        list_services(channel.clone(), REFLECTION_V1).await,
        list_services(channel, REFLECTION_V1ALPHA).await,
    ] {
        listed.sort();
        assert_eq!(listed, expected);
    }
}

#[tokio::test]
async fn health_reports_every_service_serving_and_unknown_ones_not_found() {
    let (_server, channel) = start().await;
    let mut health = HealthClient::new(channel);
    for name in std::iter::once("").chain(SERVICE_NAMES.iter().copied()) {
        let response = health.check(HealthCheckRequest { service: name.into() }).await.unwrap().into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "{name:?}");
    }
    assert_code(health.check(HealthCheckRequest { service: "no.Such".into() }).await, Code::NotFound);
}

#[tokio::test]
async fn health_turns_not_serving_when_shutdown_begins() {
    let (server, channel) = start().await;
    let mut health = HealthClient::new(channel);
    let mut watch = health
        .watch(HealthCheckRequest { service: "calculator.Calculator".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);
    let shutdown = tokio::spawn(server.shutdown());
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::NotServing);
    // Hanging up the watch lets the server drain instead of cutting it off.
    drop(watch);
    drop(health);
    assert_eq!(shutdown.await.unwrap().unwrap(), Shutdown::Drained);
}

#[tokio::test]
async fn unknown_services_and_methods_are_unimplemented() {
    let (_server, channel) = start().await;
    let mut grpc = tonic::client::Grpc::new(channel);
    for path in ["/no.Such/Method", "/calculator.Calculator/Square", "/coreservices.CoreServices/ping"] {
        grpc.ready().await.unwrap();
        let codec = tonic_prost::ProstCodec::<PingRequest, PingRequest>::default();
        let result =
            grpc.unary(tonic::Request::new(PingRequest::default()), path.parse().unwrap(), codec).await;
        assert_code(result, Code::Unimplemented);
    }
}

#[tokio::test]
async fn an_oversized_unary_request_is_resource_exhausted_and_the_server_keeps_serving() {
    let config = Config { max_message_size: 1000, ..Default::default() };
    let (_server, channel) = start_with(config).await;
    let mut client = CoreServicesClient::new(channel);
    let status =
        assert_code(client.ping(PingRequest { message: "x".repeat(2000) }).await, Code::ResourceExhausted);
    assert!(status.message().contains("too large"), "{status:?}");
    let echoed =
        client.ping(PingRequest { message: "still here".into() }).await.unwrap().into_inner().message;
    assert_eq!(echoed, "still here");
}

#[tokio::test]
async fn the_default_limit_admits_large_images() {
    let (_server, channel) = start().await;
    let mut client = CoreServicesClient::new(channel).max_decoding_message_size(usize::MAX);
    // Well past gRPC's customary 4 MiB, under our 16 MiB default.
    let message = "y".repeat(12 << 20);
    assert_eq!(
        client.ping(PingRequest { message: message.clone() }).await.unwrap().into_inner().message.len(),
        message.len()
    );
}
