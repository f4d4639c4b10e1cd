//! Servers with one security mistake each, as they are made in practice: a
//! service left out of the token check, a token checked for presence only,
//! client certificates made optional or not verified, an accept loop that
//! dies on a bad handshake, and servers that stop serving after odd
//! headers. The security checks must report each one.

mod support;

use std::sync::Arc;

use conformance::{
    context::{Demands, Settings},
    report::Failure,
};
use contracts::calculator::{
    CubeRequest, CubeResponse,
    calculator_server::{Calculator, CalculatorServer},
};
use futures_util::stream;
use rustls::{
    DistinguishedName, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject},
    server::{
        WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
};
use tokio::{net::TcpListener, sync::Notify};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, service::Interceptor, transport::Server};

use support::{pki, run_secured, verdict};

const TOKEN: &str = "the-right-token";

struct Cube;

#[tonic::async_trait]
impl Calculator for Cube {
    async fn cube(&self, request: Request<CubeRequest>) -> Result<Response<CubeResponse>, Status> {
        let number = request.into_inner().number;
        Ok(Response::new(CubeResponse { result: number.saturating_pow(3) }))
    }
}

fn reflection()
-> tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(contracts::FILE_DESCRIPTOR_SET)
        .with_service_name("calculator.Calculator")
        .build_v1()
        .unwrap()
}

fn settings(demands: Demands) -> Settings {
    Settings { demands, ..support::settings() }
}

/// Runs `case` and returns its failure, after checking that `passing` (the
/// checks the fault does not touch) pass.
async fn failure_of(
    url: &str,
    security: harness::Security,
    demands: Demands,
    case: &str,
    passing: &[&str],
) -> Failure {
    let mut run = vec![case];
    run.extend(passing);
    let results = run_secured(url, security, &run, settings(demands), Default::default(), None).await;
    for name in passing {
        assert!(
            matches!(verdict(&results, name), conformance::report::Verdict::Passed),
            "{name} is not what the fault breaks: {results:#?}"
        );
    }
    match verdict(&results, case).failure() {
        Some(failure) => failure.clone(),
        None => panic!("the planted fault went unnoticed by {case}: {results:#?}"),
    }
}

fn bearer() -> harness::Security {
    harness::Security::plaintext().with_header_lines(&[format!("authorization: Bearer {TOKEN}")]).unwrap()
}

const AUTH: Demands = Demands { auth: true, client_certificate: false };

// --- a service left out of the token check ------------------------------------

fn checks_token(request: Request<()>) -> Result<Request<()>, Status> {
    match request.metadata().get("authorization").and_then(|v| v.to_str().ok()) {
        Some(value) if value == format!("Bearer {TOKEN}") => Ok(request),
        _ => Err(Status::unauthenticated("no valid token")),
    }
}

async fn serve_plaintext(router: tonic::transport::server::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    url
}

#[tokio::test]
async fn a_service_left_out_of_the_token_check() {
    // The bug: reflection is guarded, the calculator was added without it.
    let router = Server::builder()
        .add_service(tonic::service::interceptor::InterceptedService::new(reflection(), checks_token))
        .add_service(CalculatorServer::new(Cube));
    let url = serve_plaintext(router).await;
    let failure = failure_of(
        &url,
        bearer(),
        AUTH,
        "security/calculator.Calculator/Cube/refused-without-credentials",
        &[],
    )
    .await;
    assert!(failure.actual.contains("response"), "{failure:?}");
}

#[tokio::test]
async fn a_token_checked_for_presence_only() {
    // The bug: any value of the header will do.
    let present = |request: Request<()>| match request.metadata().get("authorization") {
        Some(_) => Ok(request),
        None => Err(Status::unauthenticated("no token")),
    };
    let router = Server::builder()
        .add_service(tonic::service::interceptor::InterceptedService::new(reflection(), present))
        .add_service(CalculatorServer::with_interceptor(Cube, present));
    let url = serve_plaintext(router).await;
    failure_of(
        &url,
        bearer(),
        AUTH,
        "security/calculator.Calculator/Cube/refused-with-wrong-credentials",
        &["security/calculator.Calculator/Cube/refused-without-credentials"],
    )
    .await;
}

// --- TLS servers with one mistake ---------------------------------------------

/// How the planted TLS server's accept loop treats a failed handshake.
#[derive(Clone, Copy, PartialEq)]
enum OnHandshakeError {
    Skip,
    /// The bug: the loop ends, and with it the server's listening.
    Stop,
}

/// Serves the calculator over TLS with `files`' server certificate and
/// `verifier` for client certificates; every handshake in the accept loop.
async fn serve_tls(
    files: &pki::Files,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    on_error: OnHandshakeError,
) -> String {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&files.server_cert).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(&files.server_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap();
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let incoming = stream::unfold((listener, acceptor), move |(listener, acceptor)| async move {
        loop {
            let (tcp, _) = listener.accept().await.ok()?;
            match acceptor.accept(tcp).await {
                Ok(tls) => return Some((Ok::<_, std::io::Error>(tls), (listener, acceptor))),
                Err(_) if on_error == OnHandshakeError::Stop => return None,
                Err(_) => continue,
            }
        }
    });
    let router = Server::builder().add_service(reflection()).add_service(CalculatorServer::new(Cube));
    tokio::spawn(router.serve_with_incoming(incoming));
    url
}

fn client_roots(files: &pki::Files) -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&files.client_ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(roots)
}

fn mtls() -> Demands {
    Demands { auth: false, client_certificate: true }
}

#[tokio::test]
async fn client_certificates_made_optional() {
    let files = pki::Files::new();
    // The bug: a client without a certificate is let in.
    let verifier =
        WebPkiClientVerifier::builder(client_roots(&files)).allow_unauthenticated().build().unwrap();
    let url = serve_tls(&files, Some(verifier), OnHandshakeError::Skip).await;
    failure_of(
        &url,
        files.tls(),
        mtls(),
        "security/tls/client-without-certificate-refused",
        &["security/tls/client-certificate-from-another-ca-refused", "security/tls/plaintext-client-refused"],
    )
    .await;
}

/// Takes any client certificate at all.
#[derive(Debug)]
struct AnyClient(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for AnyClient {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[tokio::test]
async fn client_certificates_from_any_ca() {
    let files = pki::Files::new();
    // The bug: a certificate is required, but never checked against the CA.
    let strict = WebPkiClientVerifier::builder(client_roots(&files)).build().unwrap();
    let url = serve_tls(&files, Some(Arc::new(AnyClient(strict))), OnHandshakeError::Skip).await;
    failure_of(
        &url,
        files.tls(),
        mtls(),
        "security/tls/client-certificate-from-another-ca-refused",
        &["security/tls/client-without-certificate-refused"],
    )
    .await;
}

#[tokio::test]
async fn an_accept_loop_that_dies_on_a_plaintext_client() {
    let files = pki::Files::new();
    let url = serve_tls(&files, None, OnHandshakeError::Stop).await;
    let security = harness::Security::tls(&harness::TlsOptions {
        ca_cert: Some(files.server_ca.clone()),
        ..Default::default()
    })
    .unwrap();
    let failure =
        failure_of(&url, security, Demands::default(), "security/tls/plaintext-client-refused", &[]).await;
    assert!(failure.expected.contains("keep serving"), "{failure:?}");
}

// --- servers that stop after odd headers ----------------------------------------

/// Stops the whole server when `trips` says a call's headers are fatal, as
/// a crash would.
#[derive(Clone)]
struct Tripwire {
    stop: Arc<Notify>,
    trips: fn(&http::HeaderMap) -> bool,
}

impl Interceptor for Tripwire {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let headers = request.metadata().clone().into_headers();
        if (self.trips)(&headers) {
            self.stop.notify_one();
            return Err(Status::internal("crashed"));
        }
        Ok(request)
    }
}

async fn serve_with_tripwire(trips: fn(&http::HeaderMap) -> bool) -> String {
    let stop = Arc::new(Notify::new());
    let tripwire = Tripwire { stop: stop.clone(), trips };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = Server::builder()
        // Large enough that the header block reaches the handler at all.
        .http2_max_header_list_size(4 * 1024 * 1024)
        .add_service(reflection())
        .add_service(CalculatorServer::with_interceptor(Cube, tripwire));
    tokio::spawn(router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
        stop.notified().await;
    }));
    url
}

#[tokio::test]
async fn a_server_that_stops_on_non_ascii_metadata() {
    let url = serve_with_tripwire(|headers| headers.values().any(|value| value.to_str().is_err())).await;
    let failure = failure_of(
        &url,
        harness::Security::plaintext(),
        Demands::default(),
        "security/metadata/malformed-headers-survived",
        &[],
    )
    .await;
    assert!(failure.expected.contains("non-ASCII"), "{failure:?}");
}

#[tokio::test]
async fn a_server_that_stops_on_a_huge_header_block() {
    let url = serve_with_tripwire(|headers| {
        headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum::<usize>() > 256 * 1024
    })
    .await;
    failure_of(
        &url,
        harness::Security::plaintext(),
        Demands::default(),
        "security/metadata/huge-header-block-survived",
        &["security/metadata/malformed-headers-survived"],
    )
    .await;
}

#[tokio::test]
async fn without_the_flags_the_credential_checks_say_how_to_turn_them_on() {
    let url =
        serve_plaintext(Server::builder().add_service(reflection()).add_service(CalculatorServer::new(Cube)))
            .await;
    let results = run_secured(
        &url,
        harness::Security::plaintext(),
        &["security/*"],
        support::settings(),
        Default::default(),
        None,
    )
    .await;
    for name in
        ["security/credentials", "security/tls/client-certificates", "security/tls/plaintext-client-refused"]
    {
        assert!(
            matches!(verdict(&results, name), conformance::report::Verdict::Skipped { reason } if reason.contains("--")),
            "{name}: {results:#?}"
        );
    }
    assert!(matches!(
        verdict(&results, "security/metadata/huge-header-block-survived"),
        conformance::report::Verdict::Passed
    ));
}
