//! Smoke checks on the standard health service: the server as a whole, each
//! contract the toolkit knows, and every other service the target serves.

use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::{case::Case, context::Context, report::Verdict};

const HEALTH: &str = "grpc.health.v1.Health";

/// One case for the whole server, one per contract (which must report
/// SERVING), and one per other served service (which may also be unknown to
/// health, as the protocol allows); all skipped without a health service.
pub fn cases(ctx: &Context) -> Vec<Case> {
    let mut cases = vec![check("health/server", "", None, false)];
    cases.extend(ctx.contracts.services().map(|service| {
        let name = service.full_name().to_owned();
        check(&format!("health/{name}"), &name, Some(&name), false)
    }));
    let others = ctx.services.iter().filter(|name| {
        ctx.contracts.get_service_by_name(name).is_none()
            && !name.starts_with("grpc.health.")
            && !name.starts_with("grpc.reflection.")
    });
    cases.extend(others.map(|name| check(&format!("health/{name}"), name, Some(name), true)));
    cases
}

/// `Check(service)` must answer SERVING; NOT_FOUND skips the case where
/// `may_be_unknown`.
fn check(case: &str, service: &str, requires: Option<&str>, may_be_unknown: bool) -> Case {
    let service = service.to_owned();
    Case::new("health", case, requires, move |ctx| {
        let service = service.clone();
        async move {
            if !ctx.services.contains(HEALTH) {
                return Verdict::Skipped { reason: "no health service".to_owned() };
            }
            match harness::health::status(ctx.channel.clone(), &service).await {
                Ok(ServingStatus::Serving) => Verdict::Passed,
                Ok(other) => Verdict::failed("SERVING", other.as_str_name()),
                Err(status) if may_be_unknown && status.code() == Code::NotFound => Verdict::Skipped {
                    reason: "health does not report on this service (NOT_FOUND), which the protocol allows"
                        .to_owned(),
                },
                Err(status) => {
                    Verdict::failed("a health answer", format!("{:?}: {}", status.code(), status.message()))
                }
            }
        }
    })
}
