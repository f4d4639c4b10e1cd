//! The Python peers behind TLS, a client CA and a token, as `services
//! serve` is: the same flags mean the same thing in both implementations.

use std::{path::Path, process::Stdio, time::Duration};

use contracts::calculator::{CubeRequest, calculator_client::CalculatorClient};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::{
    Code, Request,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate for `name` signed by `ca`, and its key, as PEM.
fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, name: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_owned()]).unwrap().signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

async fn cube(channel: Channel, token: Option<&str>) -> Result<i64, tonic::Status> {
    let mut request = Request::new(CubeRequest { number: 3 });
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    CalculatorClient::new(channel).cube(request).await.map(|r| r.into_inner().result)
}

#[tokio::test]
#[ignore = "needs the Python peers' virtualenv: run `cargo xtask test`"]
async fn the_python_peers_take_the_same_tls_client_ca_and_token_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (servers, clients) = (ca("server CA"), ca("client CA"));
    let (cert, key) = leaf(&servers, "localhost");
    let python = std::env::var("CONFORMANCE_PYTHON")
        .unwrap_or_else(|_| root().join("tools/venv/bin/python").display().to_string());
    let mut child = tokio::process::Command::new(python)
        .arg(root().join("conformance/peers/python/server.py"))
        .args(["--addr", "127.0.0.1:0"])
        .args(["--tls-cert", &write(dir.path(), "cert.pem", &cert)])
        .args(["--tls-key", &write(dir.path(), "key.pem", &key)])
        .args(["--tls-client-ca", &write(dir.path(), "clients.pem", &clients.pem())])
        .args(["--auth-token-file", &write(dir.path(), "token", "s3cret\n")])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("the peer prints its address");
    let port = line.rsplit(':').next().unwrap().to_owned();

    let connect = |identity: Option<(String, String)>| {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(servers.pem()))
            .domain_name("localhost");
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        let endpoint = Endpoint::from_shared(format!("https://localhost:{port}"))
            .unwrap()
            .timeout(Duration::from_secs(30))
            .tls_config(tls)
            .unwrap();
        async move { endpoint.connect().await }
    };
    let channel = connect(Some(leaf(&clients, "client"))).await.unwrap();
    assert_eq!(cube(channel.clone(), Some("s3cret")).await.unwrap(), 27);
    for token in [None, Some("wrong")] {
        assert_eq!(
            cube(channel.clone(), token).await.unwrap_err().code(),
            Code::Unauthenticated,
            "{token:?}"
        );
    }
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await;
    assert!(health.is_ok(), "health stays open: {health:?}");

    // Without a client certificate, or with one from another CA: refused.
    for identity in [None, Some(leaf(&ca("another CA"), "client"))] {
        let outcome = match connect(identity).await {
            Ok(channel) => cube(channel, Some("s3cret")).await.map_err(|s| s.code()),
            Err(_) => Err(Code::Unavailable),
        };
        assert!(outcome.is_err(), "{outcome:?}");
    }
    child.kill().await.unwrap();
}
