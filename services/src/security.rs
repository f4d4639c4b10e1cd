//! Transport security and a bearer token, both reloadable.
//!
//! TLS (rustls on ring, the one TLS stack in this workspace) is optional;
//! with a client CA, a client without a certificate from that CA is refused
//! at the handshake. The token, when set, is required on every call except
//! health, which stays open so that probes and load balancers need no
//! secret; reflection needs it too unless told otherwise, because a
//! schema is something an attacker maps before attacking.
//!
//! [`Credentials::reload`] (SIGHUP for the `services` binary) rereads the
//! certificate, key, client CA and token. New connections and calls see the
//! new ones; calls in flight keep the connection they were accepted on.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use anyhow::{Context, Result, bail};
use rustls::{
    RootCertStore, ServerConfig,
    crypto::ring::default_provider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_rustls::TlsAcceptor;

/// Where the server's certificate and key are, and the CA its clients'
/// certificates must come from (mTLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates; when set, every client must present a
    /// certificate signed by one of them.
    pub client_ca: Option<PathBuf>,
}

/// How calls are secured. The default is plaintext and open, as before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityConfig {
    /// TLS, when set.
    pub tls: Option<TlsFiles>,
    /// A file holding the bearer token every call must carry
    /// (`authorization: Bearer <token>`); surrounding whitespace is ignored.
    pub token_file: Option<PathBuf>,
    /// Whether reflection is open without the token.
    pub open_reflection: bool,
}

/// The loaded credentials, swapped whole on reload.
pub struct Credentials {
    config: SecurityConfig,
    tls: RwLock<Option<TlsAcceptor>>,
    /// SHA-256 of the token: comparing digests takes the same time whatever
    /// the lengths, and the token itself is not kept.
    token: RwLock<Option<[u8; 32]>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token, not even its digest.
        f.debug_struct("Credentials").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Credentials {
    /// Reads every file `config` names; an unreadable or invalid one is an
    /// error that names it.
    pub fn load(config: &SecurityConfig) -> Result<Arc<Self>> {
        let credentials =
            Credentials { config: config.clone(), tls: RwLock::new(None), token: RwLock::new(None) };
        credentials.reload()?;
        Ok(Arc::new(credentials))
    }

    /// Reads the files again. On error nothing changes, and the server goes
    /// on with what it had.
    pub fn reload(&self) -> Result<()> {
        let tls = self.config.tls.as_ref().map(acceptor).transpose()?;
        let token = self.config.token_file.as_deref().map(read_token).transpose()?;
        *self.tls.write().expect("not poisoned") = tls;
        *self.token.write().expect("not poisoned") = token;
        Ok(())
    }

    /// The TLS acceptor for a new connection; `None` for plaintext.
    pub(crate) fn acceptor(&self) -> Option<TlsAcceptor> {
        self.tls.read().expect("not poisoned").clone()
    }

    /// Whether a call to `path` with this `authorization` header may run.
    pub(crate) fn admits(&self, path: &str, authorization: Option<&[u8]>) -> bool {
        let Some(expected) = *self.token.read().expect("not poisoned") else { return true };
        if path.starts_with("/grpc.health.v1.Health/")
            || (self.config.open_reflection && path.starts_with("/grpc.reflection."))
        {
            return true;
        }
        let Some(token) = authorization.and_then(|value| value.strip_prefix(b"Bearer ")) else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(token).into();
        presented.ct_eq(&expected).into()
    }
}

fn read_token(path: &Path) -> Result<[u8; 32]> {
    let text =
        fs::read_to_string(path).with_context(|| format!("reading the token file {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(Sha256::digest(token.as_bytes()).into())
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading certificates from {}", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor> {
    let chain = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading the private key from {}", files.key.display()))?;
    let provider = Arc::new(default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots.add(cert).with_context(|| format!("adding a client CA from {}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .with_context(|| format!("the client CA {}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).with_context(|| {
        format!("the certificate {} and key {}", files.cert.display(), files.key.display())
    })?;
    // gRPC is HTTP/2 only.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
