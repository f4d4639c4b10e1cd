//! TLS, mTLS and the bearer token, from the outside: what a client that
//! has the credentials gets, and what one that lacks them does not.

use std::{path::Path, time::Duration};

use contracts::{
    calculator::{CubeRequest, calculator_client::CalculatorClient},
    streaming::{StreamRequest, number_streamer_client::NumberStreamerClient},
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use services::security::{SecurityConfig, TlsFiles};
use tonic::{
    Code, Request,
    metadata::MetadataValue,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

/// A CA, and a certificate it signed for `names`, as PEM.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        Pki { ca: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
    }

    fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A leaf certificate and its key, as PEM.
    fn leaf(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = CertificateParams::new(names).unwrap().signed_by(&key, &self.ca).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A server with `security` (and no inference), and its URL.
async fn start(security: SecurityConfig) -> services::RunningServer {
    let config = services::Config { inference: None, security, ..Default::default() };
    services::spawn(config).await.unwrap()
}

async fn connect(server: &services::RunningServer, tls: Option<ClientTlsConfig>) -> Result<Channel, String> {
    let url = server.url().replace("127.0.0.1", "localhost");
    let mut endpoint = Endpoint::from_shared(url).unwrap().timeout(Duration::from_secs(10));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).unwrap();
    }
    endpoint.connect().await.map_err(|err| format!("{err:?}"))
}

async fn cube(channel: Channel, token: Option<&str>) -> Result<i64, tonic::Status> {
    let mut request = Request::new(CubeRequest { number: 3 });
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", MetadataValue::try_from(format!("Bearer {token}")).unwrap());
    }
    CalculatorClient::new(channel).cube(request).await.map(|r| r.into_inner().result)
}

#[tokio::test]
async fn tls_serves_a_client_that_trusts_the_ca_and_drops_a_plaintext_one() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("test CA");
    let (cert, key) = pki.leaf(&["localhost"]);
    let tls = TlsFiles {
        cert: write(dir.path(), "cert.pem", &cert),
        key: write(dir.path(), "key.pem", &key),
        client_ca: None,
    };
    let server = start(SecurityConfig { tls: Some(tls), ..Default::default() }).await;
    assert!(server.url().starts_with("https://"));

    let trusted =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pki.ca_pem())).domain_name("localhost");
    assert_eq!(cube(connect(&server, Some(trusted)).await.unwrap(), None).await.unwrap(), 27);

    // Plaintext HTTP/2 on the TLS port: the handshake fails, the call fails
    // cleanly, and the server keeps serving.
    let plain =
        Endpoint::from_shared(format!("http://{}", server.addr())).unwrap().timeout(Duration::from_secs(10));
    let outcome = match plain.connect().await {
        Ok(channel) => cube(channel, None).await.map_err(|s| s.code()),
        Err(_) => Err(Code::Unavailable),
    };
    assert!(outcome.is_err(), "{outcome:?}");
    let other = Pki::new("another CA");
    let untrusting =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(other.ca_pem())).domain_name("localhost");
    assert!(
        connect(&server, Some(untrusting)).await.is_err(),
        "a client that does not trust the server's CA"
    );
    let trusted =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pki.ca_pem())).domain_name("localhost");
    assert_eq!(cube(connect(&server, Some(trusted)).await.unwrap(), None).await.unwrap(), 27);
}

#[tokio::test]
async fn mtls_refuses_clients_without_a_certificate_from_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let servers = Pki::new("server CA");
    let clients = Pki::new("client CA");
    let strangers = Pki::new("another CA");
    let (cert, key) = servers.leaf(&["localhost"]);
    let tls = TlsFiles {
        cert: write(dir.path(), "cert.pem", &cert),
        key: write(dir.path(), "key.pem", &key),
        client_ca: Some(write(dir.path(), "clients.pem", &clients.ca_pem())),
    };
    let server = start(SecurityConfig { tls: Some(tls), ..Default::default() }).await;
    let client = |identity: Option<(String, String)>| {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(servers.ca_pem()))
            .domain_name("localhost");
        match identity {
            Some((cert, key)) => tls.identity(Identity::from_pem(cert, key)),
            None => tls,
        }
    };
    // Refused at the handshake, or on the first call (TLS 1.3 reports a
    // client certificate the server rejects after the client's side is done).
    for identity in [None, Some(strangers.leaf(&["client"]))] {
        let outcome = match connect(&server, Some(client(identity))).await {
            Ok(channel) => cube(channel, None).await.map_err(|s| s.code()),
            Err(_) => Err(Code::Unavailable),
        };
        assert!(outcome.is_err(), "{outcome:?}");
    }
    let channel = connect(&server, Some(client(Some(clients.leaf(&["client"]))))).await.unwrap();
    assert_eq!(cube(channel, None).await.unwrap(), 27);
}

#[tokio::test]
async fn the_token_is_required_except_by_health_and_compared_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = write(dir.path(), "token", "s3cret-token\n");
    let server = start(SecurityConfig { token_file: Some(token_file), ..Default::default() }).await;
    let channel = connect(&server, None).await.unwrap();
    for token in [None, Some("wrong"), Some("s3cret-tokenX"), Some("s3cret")] {
        let status = cube(channel.clone(), token).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{token:?}");
    }
    assert_eq!(cube(channel.clone(), Some("s3cret-token")).await.unwrap(), 27);

    // Health stays open for probes; reflection needs the token by default.
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await;
    assert!(health.is_ok(), "{health:?}");
    let listed = crate::support::list_services(channel.clone(), "grpc.reflection.v1.ServerReflection").await;
    assert!(listed.is_err(), "reflection answered without the token: {listed:?}");
}

#[tokio::test]
async fn open_reflection_answers_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = write(dir.path(), "token", "s3cret-token");
    let server =
        start(SecurityConfig { token_file: Some(token_file), open_reflection: true, ..Default::default() })
            .await;
    let channel = connect(&server, None).await.unwrap();
    let listed =
        crate::support::list_services(channel.clone(), "grpc.reflection.v1.ServerReflection").await.unwrap();
    assert!(listed.iter().any(|name| name == "calculator.Calculator"), "{listed:?}");
    assert_eq!(cube(channel, None).await.unwrap_err().code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_reload_swaps_the_token_and_keeps_calls_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = write(dir.path(), "token", "first");
    let server = start(SecurityConfig { token_file: Some(token_file.clone()), ..Default::default() }).await;
    let channel = connect(&server, None).await.unwrap();

    // A paced stream, admitted with the first token, still running.
    let mut request = Request::new(StreamRequest { start: 0, end: 3, interval_ms: 200 });
    request.metadata_mut().insert("authorization", MetadataValue::from_static("Bearer first"));
    let mut stream =
        NumberStreamerClient::new(channel.clone()).stream_numbers(request).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().value, 0);

    std::fs::write(&token_file, "second").unwrap();
    server.reload().unwrap();
    assert_eq!(cube(channel.clone(), Some("first")).await.unwrap_err().code(), Code::Unauthenticated);
    assert_eq!(cube(channel.clone(), Some("second")).await.unwrap(), 27);
    let mut values = vec![0];
    while let Some(message) = stream.message().await.unwrap() {
        values.push(message.value);
    }
    assert_eq!(values, [0, 1, 2, 3], "the call in flight ran to its end");

    // A reload that fails keeps what was loaded.
    std::fs::write(&token_file, "   ").unwrap();
    assert!(server.reload().is_err());
    assert_eq!(cube(channel, Some("second")).await.unwrap(), 27);
}
