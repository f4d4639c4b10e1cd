//! Serving a set of services with reflection, and running the suite on it.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use std::sync::Arc;

use conformance::{
    context::{Settings, Uploads},
    launcher::Launcher,
    report::{CaseResult, Verdict},
    runner::Selection,
    s3::{Availability, S3Kind, S3Options, Store},
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
    run_with(url, run, settings, Uploads::default()).await
}

/// Runs the cases matching `run` against `url`, uploads going to `uploads`.
pub async fn run_with(url: &str, run: &[&str], settings: Settings, uploads: Uploads) -> Vec<CaseResult> {
    let channel = harness::connect(url).await.unwrap();
    let mut ctx = conformance::connect(url, channel, None, settings).await.unwrap();
    ctx.uploads = uploads;
    let run: Vec<String> = run.iter().map(|s| s.to_string()).collect();
    conformance::run(std::sync::Arc::new(ctx), &Selection::new(&run, &[], &[]).unwrap()).await
}

/// An embedded S3 server for the upload suite.
pub async fn s3() -> Arc<Store> {
    let options = S3Options {
        kind: S3Kind::Embedded,
        endpoint: None,
        bucket: "uploads".into(),
        moto_server: "moto_server".into(),
    };
    match Store::start(&options).await.unwrap() {
        Availability::Ready(store) => Arc::from(store),
        Availability::Unavailable(reason) => panic!("the embedded S3 is always available: {reason}"),
    }
}

/// Our services storing into `store`, and what the suite needs to know.
pub async fn services_on(store: Arc<Store>) -> (services::RunningServer, Uploads) {
    let mut config = services::Config::default();
    config.s3.backend = store.services_backend();
    let server = services::spawn(config.clone()).await.unwrap();
    let uploads = Uploads {
        store: Ok(store),
        launcher: Some(Launcher::InProcess(Box::new(config))),
        ..Uploads::default()
    };
    (server, uploads)
}

/// The verdict of the case called `name`.
pub fn verdict<'a>(results: &'a [CaseResult], name: &str) -> &'a Verdict {
    &results
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no case {name} in {results:#?}"))
        .verdict
}
