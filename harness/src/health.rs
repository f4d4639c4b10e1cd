//! The standard `grpc.health.v1.Health` service, seen from a client.

use tonic::Status;

use crate::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The status `service` reports; NOT_FOUND from the server means the server
/// does not know the service.
pub async fn status(channel: Channel, service: &str) -> Result<ServingStatus, Status> {
    let response =
        HealthClient::new(channel).check(HealthCheckRequest { service: service.to_owned() }).await?;
    Ok(response.into_inner().status())
}
