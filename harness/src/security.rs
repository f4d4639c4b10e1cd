//! What a client needs to reach a secured server: the certificates it
//! trusts, the certificate it shows, and the headers every call carries
//! (a bearer token, most often).
//!
//! TLS is rustls on ring, the one TLS stack in this workspace. Trust is the
//! user's CA file when given, else the system's store, as grpcurl does; the
//! connection offers only `h2` by ALPN, since gRPC is HTTP/2.

use std::{path::PathBuf, sync::Arc};

use anyhow::{Context as _, Result, bail};
use http::{HeaderMap, HeaderName, HeaderValue};
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::{CryptoProvider, WebPkiSupportedAlgorithms},
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
};

/// The TLS settings a user gives on the command line.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM file of the CA certificates to trust instead of the system's.
    pub ca_cert: Option<PathBuf>,
    /// PEM file of the client's certificate chain, for mTLS.
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client's private key.
    pub client_key: Option<PathBuf>,
    /// Accept any server certificate. Only for trying things out: anyone
    /// on the path can then read and change every call.
    pub insecure: bool,
}

/// A client certificate chain and its key.
#[derive(Debug)]
pub struct Identity {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity { chain: self.chain.clone(), key: self.key.clone_key() }
    }
}

impl Identity {
    /// Reads a chain and a key from PEM files.
    pub fn from_pem_files(cert: &std::path::Path, key: &std::path::Path) -> Result<Identity> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("reading the client certificate {}", cert.display()))?;
        if chain.is_empty() {
            bail!("{} holds no PEM certificate", cert.display());
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading the client key {}", key.display()))?;
        Ok(Identity { chain, key })
    }
}

/// How a connection is secured, and what every call on it carries. Cheap
/// to clone.
#[derive(Clone, Default)]
pub struct Security {
    tls: Option<Arc<Tls>>,
    headers: Arc<HeaderMap>,
}

#[derive(Clone)]
struct Tls {
    options: TlsOptions,
    verifier: Arc<dyn ServerCertVerifier>,
    identity: Option<Identity>,
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values are credentials: only their names are shown.
        f.debug_struct("Security")
            .field("tls", &self.tls.is_some())
            .field("client_certificate", &self.tls.as_ref().is_some_and(|tls| tls.identity.is_some()))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Security {
    /// Plaintext HTTP/2 (h2c), no extra headers.
    pub fn plaintext() -> Security {
        Security::default()
    }

    /// TLS as `options` say.
    pub fn tls(options: &TlsOptions) -> Result<Security> {
        let provider = provider();
        let verifier: Arc<dyn ServerCertVerifier> = if options.insecure {
            Arc::new(AnyServer(provider.signature_verification_algorithms))
        } else {
            let roots = roots(options.ca_cert.as_deref())?;
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .context("building the server certificate verifier")?
        };
        let identity = match (&options.client_cert, &options.client_key) {
            (Some(cert), Some(key)) => Some(Identity::from_pem_files(cert, key)?),
            (None, None) => None,
            _ => bail!("a client certificate needs both --client-cert and --client-key"),
        };
        let config = client_config(&verifier, identity.as_ref())?;
        let tls = Tls { options: options.clone(), verifier, identity, config };
        Ok(Security { tls: Some(Arc::new(tls)), headers: Default::default() })
    }

    /// Adds headers given as `name: value`, as grpcurl's `-H` takes them.
    pub fn with_header_lines(self, lines: &[String]) -> Result<Security> {
        let mut headers = (*self.headers).clone();
        for line in lines {
            let (name, value) =
                line.split_once(':').with_context(|| format!("header {line:?} is not `name: value`"))?;
            let name = HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes())
                .with_context(|| format!("header {line:?} has an invalid name"))?;
            let value = HeaderValue::from_str(value.trim())
                .with_context(|| format!("header {line:?} has an invalid value"))?;
            headers.append(name, value);
        }
        Ok(self.with_headers(headers))
    }

    /// The same, carrying `headers` instead.
    pub fn with_headers(&self, headers: HeaderMap) -> Security {
        Security { tls: self.tls.clone(), headers: Arc::new(headers) }
    }

    /// The headers every call carries.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Whether connections use TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether connections show a client certificate.
    pub fn has_client_certificate(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.identity.is_some())
    }

    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.is_tls() { "https" } else { "http" }
    }

    /// The same trust, showing `identity` (or no certificate at all) instead.
    pub fn with_identity(&self, identity: Option<Identity>) -> Result<Security> {
        let Some(tls) = &self.tls else { bail!("a client certificate needs TLS") };
        let config = client_config(&tls.verifier, identity.as_ref())?;
        let tls = Tls { options: tls.options.clone(), verifier: tls.verifier.clone(), identity, config };
        Ok(Security { tls: Some(Arc::new(tls)), headers: self.headers.clone() })
    }

    /// One line for a run's header: what is trusted and shown, and the
    /// names (never the values) of the headers.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.tls_options() {
            None => parts.push("plaintext (h2c)".to_owned()),
            Some(options) if options.insecure => {
                parts.push("TLS, ANY server certificate accepted".to_owned())
            }
            Some(options) => parts.push(match &options.ca_cert {
                Some(path) => format!("TLS trusting {}", path.display()),
                None => "TLS trusting the system's CAs".to_owned(),
            }),
        }
        if let Some(cert) = self.tls_options().and_then(|options| options.client_cert.as_ref()) {
            parts.push(format!("client certificate {}", cert.display()));
        }
        let names: Vec<&str> = self.headers.keys().map(|name| name.as_str()).collect();
        if !names.is_empty() {
            parts.push(format!("headers {}", names.join(", ")));
        }
        parts.join("; ")
    }

    /// The TLS settings as the user gave them, for commands that reproduce
    /// a call with another client.
    pub fn tls_options(&self) -> Option<&TlsOptions> {
        self.tls.as_ref().map(|tls| &tls.options)
    }

    /// The rustls configuration connections use, if any.
    pub fn client_config(&self) -> Option<Arc<ClientConfig>> {
        self.tls.as_ref().map(|tls| tls.config.clone())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(
    verifier: &Arc<dyn ServerCertVerifier>,
    identity: Option<&Identity>,
) -> Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone());
    let mut config = match identity {
        Some(identity) => builder
            .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
            .context("the client certificate and key do not go together")?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The user's CA file, or the system's trust store.
fn roots(ca_cert: Option<&std::path::Path>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match ca_cert {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .with_context(|| format!("reading the CA certificates {}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                bail!("{} holds no usable CA certificate", path.display());
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                bail!("the system has no trusted CA certificates: pass --ca-cert FILE");
            }
        }
    }
    Ok(roots)
}

/// `--insecure`: any certificate, for any name. Handshake signatures are
/// still checked, so the peer holds the key of the certificate it shows.
#[derive(Debug)]
struct AnyServer(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
