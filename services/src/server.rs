//! One port serving every contract, reflection (v1 and v1alpha) and health,
//! with graceful shutdown.
//!
//! Shutdown runs in three steps so that load balancers and clients can react:
//! every health status flips to NOT_SERVING (watchers see it at once), the
//! server stops accepting calls and drains in-flight ones, and whatever is
//! still running after [`Config::shutdown_timeout`] is cut off.

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::{Context, Result};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::server::NamedService;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    auth::TokenLayer,
    calculator::Calculator,
    connections,
    coreservices::CoreServices,
    deadline::CallDeadlineLayer,
    fileuploader::FileUploader,
    imagem::ImagemService,
    inference::{Engine, InferenceConfig, InferenceService},
    limits::SizeLimitStatusLayer,
    s3::S3Config,
    security::{Credentials, SecurityConfig},
    streaming::NumberStreamer,
    uploader::UploaderService,
};

/// Settings shared by the `services` binary and the in-process server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest message accepted or sent, in bytes. Bigger ones fail with
    /// RESOURCE_EXHAUSTED. Images in seed 003 need well over gRPC's usual
    /// 4 MiB.
    pub max_message_size: usize,
    /// How long in-flight calls may run after shutdown begins.
    pub shutdown_timeout: Duration,
    /// Where `uploader.FileUploader` stores files.
    pub s3: S3Config,
    /// The detector behind `inference.InferenceMethods`; `None` serves every
    /// other contract without it, on a machine with no ONNX Runtime.
    pub inference: Option<InferenceConfig>,
    /// TLS, mTLS and the bearer token; plaintext and open by default.
    pub security: SecurityConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_size: 16 * 1024 * 1024,
            shutdown_timeout: Duration::from_secs(10),
            s3: S3Config::default(),
            inference: Some(InferenceConfig::default()),
            security: SecurityConfig::default(),
        }
    }
}

/// Fully qualified names of the contracts this server implements, as health
/// and reflection name them.
pub const SERVICE_NAMES: &[&str] = &[
    <contracts::calculator::calculator_server::CalculatorServer<Calculator> as NamedService>::NAME,
    <contracts::coreservices::core_services_server::CoreServicesServer<CoreServices> as NamedService>::NAME,
    <contracts::mensagem::imagem_service_server::ImagemServiceServer<ImagemService> as NamedService>::NAME,
    <contracts::streaming::number_streamer_server::NumberStreamerServer<NumberStreamer> as NamedService>::NAME,
    <contracts::uploader::uploader_service_server::UploaderServiceServer<UploaderService> as NamedService>::NAME,
    <contracts::uploader::file_uploader_server::FileUploaderServer<FileUploader> as NamedService>::NAME,
    INFERENCE,
];

const INFERENCE: &str = <contracts::inference::inference_methods_server::InferenceMethodsServer<
    InferenceService,
> as NamedService>::NAME;

/// The contracts a server with `config` serves.
pub fn served_names(config: &Config) -> Vec<&'static str> {
    SERVICE_NAMES.iter().copied().filter(|&name| name != INFERENCE || config.inference.is_some()).collect()
}

/// The standard services every port also offers.
const INFRASTRUCTURE: &[&str] = &[
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// How a graceful shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Every in-flight call finished within the timeout.
    Drained,
    /// Calls were still running at [`Config::shutdown_timeout`] and were cut off.
    CutOff,
}

/// Serves every contract on `listener` until `shutdown` resolves, then shuts
/// down as described in the module documentation.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<Shutdown> {
    let credentials = Credentials::load(&config.security)?;
    serve_with(listener, config, credentials, shutdown).await
}

/// [`serve`], with credentials the caller keeps, to reload them.
pub async fn serve_with(
    listener: TcpListener,
    config: Config,
    credentials: std::sync::Arc<Credentials>,
    shutdown: impl Future<Output = ()>,
) -> Result<Shutdown> {
    let inference = prepare(&config).await?;
    serve_loaded(listener, config, inference, credentials, shutdown).await
}

/// Loading fails loudly (no ONNX Runtime, a bad model, no CUDA): a server
/// that quietly lacked a contract would fail every caller instead.
async fn load_inference(config: &Config) -> Result<Option<Engine>> {
    let Some(settings) = config.inference.clone() else { return Ok(None) };
    let engine = tokio::task::spawn_blocking(move || Engine::load(&settings))
        .await
        .context("loading the inference model panicked")?
        .context("inference.InferenceMethods")?;
    Ok(Some(engine))
}

/// What a server does before it takes its first call: loads the model, and
/// compiles the contracts' rules, which a first call would otherwise pay for
/// out of its deadline.
async fn prepare(config: &Config) -> Result<Option<Engine>> {
    let inference = load_inference(config).await?;
    prepare_rules().await?;
    Ok(inference)
}

async fn prepare_rules() -> Result<()> {
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(crate::rules::prepare)
        .await
        .context("compiling the contracts' rules panicked")?;
    tracing::debug!(elapsed = ?started.elapsed(), "compiled the contracts' rules");
    Ok(())
}

async fn serve_loaded(
    listener: TcpListener,
    config: Config,
    inference: Option<Engine>,
    credentials: std::sync::Arc<Credentials>,
    shutdown: impl Future<Output = ()>,
) -> Result<Shutdown> {
    let served = served_names(&config);
    let uploader = FileUploader::new(config.s3.clone());
    if let Err(err) = uploader.connect().await {
        // Everything else still works; uploads fail with UNAVAILABLE until S3 answers.
        tracing::warn!(error = %err, "S3 is not reachable yet");
    }
    let (reporter, health) = tonic_health::server::health_reporter();
    set_all(&reporter, &served, ServingStatus::Serving).await;

    // Both reflection versions describe the same files, each other included,
    // so a client of either version sees every service the port serves. They
    // list only what is served: the descriptor set may also hold contracts
    // this server does not implement, and clients take the list at its word.
    let reflection = || {
        let builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(contracts::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET);
        served.iter().chain(INFRASTRUCTURE).fold(builder, |builder, name| builder.with_service_name(*name))
    };
    let reflection_v1 = reflection().build_v1().context("building reflection v1")?;
    let reflection_v1alpha = reflection().build_v1alpha().context("building reflection v1alpha")?;

    let limit = config.max_message_size;
    macro_rules! limited {
        ($server:expr) => {
            $server.max_decoding_message_size(limit).max_encoding_message_size(limit)
        };
    }
    let mut routes = tonic::service::Routes::new(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(limited!(Calculator.server()))
        .add_service(limited!(CoreServices.server()))
        .add_service(limited!(ImagemService.server()))
        .add_service(limited!(NumberStreamer.server()))
        .add_service(limited!(UploaderService.server()))
        .add_service(limited!(uploader.server()));
    if let Some(engine) = inference {
        routes = routes.add_service(limited!(InferenceService::new(std::sync::Arc::new(engine)).server()));
    }
    use tower_layer::Layer as _;
    let service = SizeLimitStatusLayer
        .layer(CallDeadlineLayer.layer(TokenLayer(credentials.clone()).layer(routes.prepare())));

    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let (begin, begun) = oneshot::channel::<()>();
    let grace = config.shutdown_timeout;
    let mut serving = tokio::spawn(connections::serve(
        listener,
        credentials,
        service,
        async {
            let _ = stopped.await;
            let _ = begin.send(());
        },
        grace,
    ));
    tracing::info!(%addr, services = ?served, "serving");

    tokio::select! {
        ended = &mut serving => {
            // The accept loop ended on its own: only a panic does that.
            ended.context("server task panicked")?;
            return Ok(Shutdown::Drained);
        }
        () = shutdown => {}
    }

    tracing::info!("shutting down: health is NOT_SERVING, draining calls");
    set_all(&reporter, &served, ServingStatus::NotServing).await;
    let _ = stop.send(());
    let _ = begun.await;
    let outcome = match serving.await.context("server task panicked")? {
        connections::Ended::Drained => Shutdown::Drained,
        connections::Ended::CutOff => {
            tracing::warn!(timeout = ?grace, "calls still running at the shutdown timeout; they were cut off");
            Shutdown::CutOff
        }
    };
    tracing::info!(?outcome, "stopped");
    Ok(outcome)
}

async fn set_all(reporter: &HealthReporter, served: &[&str], status: ServingStatus) {
    // "" is the whole server's health, by the health protocol's convention.
    for name in std::iter::once("").chain(served.iter().copied()) {
        reporter.set_service_status(name, status).await;
    }
}

/// A server started by [`spawn`]; dropping it stops the server abruptly, while
/// [`RunningServer::shutdown`] stops it gracefully.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    tls: bool,
    credentials: std::sync::Arc<Credentials>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<Shutdown>>,
}

impl RunningServer {
    /// The bound address, with the port the OS picked.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` (or, with TLS, `https://`) URL of the server, as gRPC
    /// clients want it.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Rereads the certificate, key, client CA and token, as SIGHUP does for
    /// the `services` binary.
    pub fn reload(&self) -> Result<()> {
        self.credentials.reload()
    }

    /// Begins a graceful shutdown and waits until it has finished.
    pub async fn shutdown(mut self) -> Result<Shutdown> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.context("server task panicked")?
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if self.stop.is_some() {
            self.task.abort();
        }
    }
}

/// Starts the server on `127.0.0.1` with a port the OS picks, in the current
/// tokio runtime, and returns once it accepts connections.
pub async fn spawn(config: Config) -> Result<RunningServer> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.context("binding 127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let inference = prepare(&config).await?;
    let credentials = Credentials::load(&config.security)?;
    let tls = config.security.tls.is_some();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_loaded(listener, config, inference, credentials.clone(), async {
        let _ = stopped.await;
    }));
    Ok(RunningServer { addr, tls, credentials, stop: Some(stop), task })
}
