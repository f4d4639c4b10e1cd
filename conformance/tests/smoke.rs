//! The smoke suite through its public API, and the binary's error handling.

use conformance::report::{Summary, Verdict};
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;

#[tokio::test]
async fn our_services_pass() {
    let server = services::spawn(services::Config::default()).await.unwrap();
    let channel = harness::connect(&server.url()).await.unwrap();
    let results = conformance::smoke::run(&channel).await.unwrap();
    assert_eq!(Summary::of(&results), Summary { passed: 5, failed: 0, skipped: 0 }, "{results:#?}");
}

/// A server that knows only the calculator: one pass, one failure (it says
/// NOT_SERVING), and the rest skipped as not served, never passed.
#[tokio::test]
async fn unserved_contracts_are_skipped_and_unhealthy_ones_fail() {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("calculator.Calculator", ServingStatus::Serving).await;
    reporter.set_service_status("streaming.NumberStreamer", ServingStatus::NotServing).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let channel = harness::connect(&url).await.unwrap();
    let results = conformance::smoke::run(&channel).await.unwrap();
    assert_eq!(Summary::of(&results), Summary { passed: 1, failed: 1, skipped: 3 });
    let verdict_of = |name: &str| {
        results.iter().find(|r| r.name == format!("smoke/health/{name}")).map(|r| r.verdict.clone()).unwrap()
    };
    assert_eq!(verdict_of("calculator.Calculator"), Verdict::Passed);
    assert_eq!(
        verdict_of("streaming.NumberStreamer"),
        Verdict::Failed { expected: "SERVING".into(), actual: "NOT_SERVING".into() }
    );
    assert_eq!(verdict_of("uploader.UploaderService"), Verdict::Skipped { reason: "not served".into() });
}

#[test]
fn an_unreachable_target_is_a_clear_error() {
    // Port 1 on loopback: nothing listens there in any sane environment.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(["--target", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot connect to http://127.0.0.1:1"), "{stderr}");
}

#[test]
fn a_malformed_target_is_a_clear_error() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(["--target", "not a url"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a valid endpoint URL"), "{stderr}");
}
