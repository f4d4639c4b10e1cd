//! Certificates made at test time: no private key is committed.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A CA that signs leaf certificates.
pub struct Ca(CertifiedIssuer<'static, KeyPair>);

/// A leaf certificate and its key, as PEM.
pub struct Leaf {
    pub cert: String,
    pub key: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    pub fn pem(&self) -> String {
        self.0.pem()
    }

    /// A certificate for `names` (host names or IP addresses).
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = CertificateParams::new(names).unwrap().signed_by(&key, &self.0).unwrap();
        Leaf { cert: cert.pem(), key: key.serialize_pem() }
    }
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Everything a TLS server with client certificates and a client of it
/// need, as files in one folder.
pub struct Files {
    pub dir: tempfile::TempDir,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub server_ca: PathBuf,
    pub client_ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Files {
    /// A server certificate for 127.0.0.1 and localhost, and a client
    /// certificate from a CA of its own.
    pub fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let (servers, clients) = (Ca::new("server CA"), Ca::new("client CA"));
        let server = servers.leaf(&["127.0.0.1", "localhost"]);
        let client = clients.leaf(&["client"]);
        Files {
            server_cert: write(dir.path(), "server.pem", &server.cert),
            server_key: write(dir.path(), "server.key", &server.key),
            server_ca: write(dir.path(), "server-ca.pem", &servers.pem()),
            client_ca: write(dir.path(), "client-ca.pem", &clients.pem()),
            client_cert: write(dir.path(), "client.pem", &client.cert),
            client_key: write(dir.path(), "client.key", &client.key),
            dir,
        }
    }

    /// TLS trusting the server's CA, showing the client certificate.
    pub fn tls(&self) -> harness::Security {
        harness::Security::tls(&harness::TlsOptions {
            ca_cert: Some(self.server_ca.clone()),
            client_cert: Some(self.client_cert.clone()),
            client_key: Some(self.client_key.clone()),
            insecure: false,
        })
        .unwrap()
    }

    /// What the suite is given to reach the server: [`Files::tls`], and
    /// `token` as a bearer header.
    pub fn security(&self, token: &str) -> harness::Security {
        self.tls().with_header_lines(&[format!("authorization: Bearer {token}")]).unwrap()
    }
}
