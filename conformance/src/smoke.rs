//! Smoke check: every contract the toolkit knows is served and healthy.

use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::report::{CaseResult, Verdict};

/// Asks the target's health service about each contract in our descriptor
/// set. A service the target does not know is *skipped (not served)*.
pub async fn run(channel: &Channel) -> anyhow::Result<Vec<CaseResult>> {
    let names = harness::descriptors::service_names(contracts::FILE_DESCRIPTOR_SET)?;
    let mut results = Vec::with_capacity(names.len());
    for name in names {
        let verdict = match harness::health::status(channel.clone(), &name).await {
            Ok(ServingStatus::Serving) => Verdict::Passed,
            Ok(other) => {
                Verdict::Failed { expected: "SERVING".to_owned(), actual: other.as_str_name().to_owned() }
            }
            Err(status) if status.code() == tonic::Code::NotFound => {
                Verdict::Skipped { reason: "not served".to_owned() }
            }
            Err(status) => Verdict::Failed {
                expected: "a health check answer".to_owned(),
                actual: format!("{:?}: {}", status.code(), status.message()),
            },
        };
        results.push(CaseResult { name: format!("smoke/health/{name}"), verdict });
    }
    Ok(results)
}
