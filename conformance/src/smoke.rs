//! Smoke check: each contract the toolkit knows reports SERVING on the
//! standard health service.

use tonic_health::pb::health_check_response::ServingStatus;

use crate::{case::Case, context::Context, report::Verdict};

const HEALTH: &str = "grpc.health.v1.Health";

/// One case per contract; skipped when the target serves no health service
/// or not the contract.
pub fn cases(ctx: &Context) -> Vec<Case> {
    ctx.contracts
        .services()
        .map(|service| {
            let name = service.full_name().to_owned();
            let checked = name.clone();
            Case::new("health", format!("health/{name}"), Some(&name), move |ctx| {
                let name = checked.clone();
                async move {
                    if !ctx.services.contains(HEALTH) {
                        return Verdict::Skipped { reason: "no health service".to_owned() };
                    }
                    match harness::health::status(ctx.channel.clone(), &name).await {
                        Ok(ServingStatus::Serving) => Verdict::Passed,
                        Ok(other) => Verdict::failed("SERVING", other.as_str_name()),
                        Err(status) => Verdict::failed(
                            "a health answer",
                            format!("{:?}: {}", status.code(), status.message()),
                        ),
                    }
                }
            })
        })
        .collect()
}
