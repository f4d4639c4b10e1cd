//! Serving a set of services with reflection, and running the suite on it.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use conformance::{
    context::Settings,
    report::{CaseResult, Verdict},
    runner::Selection,
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::server::Router;

/// Settings for tests: fewer cases and a short watchdog, so a fault that
/// makes the harness wait costs seconds, not minutes.
pub fn settings() -> Settings {
    Settings { cases: 24, seed: 7, watchdog: Duration::from_secs(2), ..Settings::default() }
}

/// Starts `router` on a free port, with reflection listing only `served`.
pub async fn serve(router: impl FnOnce(tonic::transport::Server) -> Router, served: &[&str]) -> String {
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(contracts::FILE_DESCRIPTOR_SET);
    for name in served {
        reflection = reflection.with_service_name(*name);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = router(tonic::transport::Server::builder()).add_service(reflection.build_v1().unwrap());
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    url
}

/// Runs the cases matching `run` against `url`.
pub async fn run(url: &str, run: &[&str], settings: Settings) -> Vec<CaseResult> {
    let channel = harness::connect(url).await.unwrap();
    let ctx = conformance::connect(url, channel, None, settings).await.unwrap();
    let run: Vec<String> = run.iter().map(|s| s.to_string()).collect();
    conformance::run(std::sync::Arc::new(ctx), &Selection::new(&run, &[], &[]).unwrap()).await
}

/// The verdict of the case called `name`.
pub fn verdict<'a>(results: &'a [CaseResult], name: &str) -> &'a Verdict {
    &results
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no case {name} in {results:#?}"))
        .verdict
}
