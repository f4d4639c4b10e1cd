//! Health as the protocol defines it: the server as a whole (the empty
//! service name) and each served contract must report SERVING.

mod support;

use conformance::report::Verdict;
use tonic_health::ServingStatus;

/// A calculator whose health reports `name` as `status`, everything else
/// SERVING.
async fn serve_with_health(name: &str, status: ServingStatus) -> String {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("calculator.Calculator", ServingStatus::Serving).await;
    reporter.set_service_status(name, status).await;
    support::serve(
        |mut s| s.add_service(health).add_service(services::calculator::Calculator.server()),
        &["calculator.Calculator", "grpc.health.v1.Health"],
    )
    .await
}

#[tokio::test]
async fn a_server_that_reports_itself_not_serving_fails_health_server_alone() {
    let url = serve_with_health("", ServingStatus::NotServing).await;
    let results = support::run(&url, &["health/*"], support::settings()).await;
    let failure = support::verdict(&results, "health/server").failure().expect("the planted fault is caught");
    assert_eq!(failure.actual, "NOT_SERVING");
    assert_eq!(support::verdict(&results, "health/calculator.Calculator"), &Verdict::Passed);
}

#[tokio::test]
async fn a_contract_reported_not_serving_fails_its_health_case_alone() {
    let url = serve_with_health("calculator.Calculator", ServingStatus::NotServing).await;
    let results = support::run(&url, &["health/*"], support::settings()).await;
    let failure = support::verdict(&results, "health/calculator.Calculator")
        .failure()
        .expect("the planted fault is caught");
    assert_eq!(failure.actual, "NOT_SERVING");
    assert_eq!(support::verdict(&results, "health/server"), &Verdict::Passed);
}
