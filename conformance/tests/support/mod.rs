//! Serving a set of services with reflection, and running the suite on it.
//!
//! The servers here are fixtures: our services, or faulty ones planted for
//! a test, served in this process. The suite under test reaches them over
//! the network only, as it reaches any target.

#![allow(dead_code, unreachable_pub)]

pub mod pki;

use std::{sync::Arc, time::Duration};

use conformance::{
    context::{Settings, Uploads},
    launcher::{Change, Launched, Launcher},
    report::{CaseResult, Verdict},
    runner::Selection,
    s3::{Availability, S3Kind, S3Options, Store},
};
use futures_util::FutureExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::server::Router;

/// The workspace's root.
pub fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the `conformance` binary with `args`: its exit code, stdout and
/// stderr.
pub async fn conformance_binary(args: &[&str]) -> (Option<i32>, String, String) {
    let output =
        tokio::process::Command::new(env!("CARGO_BIN_EXE_conformance")).args(args).output().await.unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

/// Settings for tests: fewer inputs and a short watchdog, so a fault that
/// makes the harness wait costs seconds, not minutes.
pub fn settings() -> Settings {
    Settings { inputs: 24, seed: 7, watchdog: Duration::from_secs(2), ..Settings::default() }
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

/// A response stream of a planted server.
pub type Boxed<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, tonic::Status>> + Send>>;

/// Runs `case` against the faulty server at `url` and returns its failure.
pub async fn failure_of(url: &str, case: &str) -> conformance::report::Failure {
    let results = run(url, &[case], settings()).await;
    match verdict(&results, case).failure() {
        Some(failure) => failure.clone(),
        None => panic!("the planted fault went unnoticed by {case}: {results:#?}"),
    }
}

/// Runs the cases matching `run` against `url`.
pub async fn run(url: &str, run: &[&str], settings: Settings) -> Vec<CaseResult> {
    run_with(url, run, settings, Uploads::default(), None).await
}

/// Runs the cases matching `run` against `url`, uploads going to `uploads`,
/// with `launcher` to start the target again.
pub async fn run_with(
    url: &str,
    run: &[&str],
    settings: Settings,
    uploads: Uploads,
    launcher: Option<Launcher>,
) -> Vec<CaseResult> {
    run_secured(url, harness::Security::plaintext(), run, settings, uploads, launcher).await
}

/// [`run_with`], reaching the target as `security` says.
pub async fn run_secured(
    url: &str,
    security: harness::Security,
    run: &[&str],
    settings: Settings,
    uploads: Uploads,
    launcher: Option<Launcher>,
) -> Vec<CaseResult> {
    let channel = harness::connect_with(url, security).await.unwrap();
    let mut ctx = conformance::connect(channel, &Default::default(), settings).await.unwrap();
    ctx.uploads = uploads;
    ctx.launcher = launcher;
    let run: Vec<String> = run.iter().map(|s| s.to_string()).collect();
    conformance::run(Arc::new(ctx), &Selection::new(&run, &[], &[]).unwrap()).await
}

/// Our services' binary, beside this test's in the workspace's debug
/// build; `cargo test --workspace` (and so `cargo xtask test`) builds it.
pub fn services_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/<test> → target/debug/services
    let binary = exe.parent().and_then(|deps| deps.parent()).unwrap().join("services");
    assert!(binary.exists(), "{} is missing: build it with `cargo build -p services`", binary.display());
    binary
}

/// The suite's embedded S3 server, as a run starts it.
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

/// How a target is told to store into `store`: the standard AWS variables
/// the suite hands a target command, as our services' backend.
pub fn backend(store: &Store) -> services::s3::Backend {
    let env: std::collections::HashMap<String, String> = store.target_env().into_iter().collect();
    services::s3::Backend::Static {
        endpoint: env["AWS_ENDPOINT_URL"].clone(),
        access_key: env["AWS_ACCESS_KEY_ID"].clone(),
        secret_key: env["AWS_SECRET_ACCESS_KEY"].clone(),
    }
}

/// Our services storing into `store`, what the suite needs to know of the
/// uploads, and a launcher that starts them again with a change.
pub async fn services_on(store: Arc<Store>) -> (services::RunningServer, Uploads, Launcher) {
    let mut config = services::Config::default();
    config.s3.backend = backend(&store);
    let server = services::spawn(config.clone()).await.unwrap();
    let uploads = Uploads { store: Ok(store), ..Uploads::default() };
    let launch = move |change: Change| {
        let mut config = config.clone();
        async move {
            match change {
                Change::S3(s3) => {
                    config.s3.backend = services::s3::Backend::Static {
                        endpoint: s3.url,
                        access_key: s3.access_key,
                        secret_key: s3.secret_key,
                    }
                }
                Change::Model(model) => {
                    let mut inference = config.inference.clone().unwrap_or_default();
                    inference.model = services::inference::ModelSource::File(model);
                    config.inference = Some(inference);
                }
            }
            let server = services::spawn(config).await?;
            let channel = harness::connect(&server.url()).await?;
            Ok(Launched::new(server.url(), channel, server))
        }
        .boxed()
    };
    (server, uploads, Launcher::Custom(Arc::new(launch)))
}

/// The verdict of the case called `name`.
pub fn verdict<'a>(results: &'a [CaseResult], name: &str) -> &'a Verdict {
    &results
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no case {name} in {results:#?}"))
        .verdict
}

/// A tower layer for planted servers: `before` runs ahead of every call, of
/// every service, and what it returns is held until the call is answered
/// (a worker of a pool, say, or a lock that is never given back).
pub struct BeforeEachCall<G>(Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, G> + Send + Sync>);

// By hand: a derive would ask for `G: Clone`, and a permit is not.
impl<G> Clone for BeforeEachCall<G> {
    fn clone(&self) -> Self {
        BeforeEachCall(self.0.clone())
    }
}

impl<S: Clone, G> Clone for BeforeEach<S, G> {
    fn clone(&self) -> Self {
        BeforeEach { inner: self.inner.clone(), before: self.before.clone() }
    }
}

impl<G> BeforeEachCall<G> {
    pub fn new<F, Fut>(before: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = G> + Send + 'static,
    {
        BeforeEachCall(Arc::new(move || before().boxed()))
    }
}

impl<S, G> tower_layer::Layer<S> for BeforeEachCall<G> {
    type Service = BeforeEach<S, G>;

    fn layer(&self, inner: S) -> BeforeEach<S, G> {
        BeforeEach { inner, before: self.0.clone() }
    }
}

/// The service [`BeforeEachCall`] wraps around another.
pub struct BeforeEach<S, G> {
    inner: S,
    before: Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, G> + Send + Sync>,
}

impl<S, G, B> tower_service::Service<http::Request<B>> for BeforeEach<S, G>
where
    S: tower_service::Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    G: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures_util::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (mut inner, before) = (self.inner.clone(), (self.before)());
        async move {
            let _held = before.await;
            inner.call(request).await
        }
        .boxed()
    }
}
