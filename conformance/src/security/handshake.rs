//! Clients the TLS handshake must turn away: one speaking plaintext to the
//! TLS port, and, where the target demands client certificates, one
//! without a certificate and one whose certificate another CA signed.
//!
//! "Turned away" means the call never reaches the server's gRPC layer: the
//! client sees the connection fail (UNAVAILABLE), never a status the server
//! sent, and within the watchdog, never a hang. With TLS 1.3 a server
//! rejects a client certificate after the client has finished its side of
//! the handshake, so the refusal shows on the first call, not on connect.

use harness::{CallError, security::Identity};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tonic::Code;

use super::{case, keeps_serving, skipped, unknown_method, verdict};
use crate::{case::Case, context::Context, generic::describe, report::Failure};

pub(super) fn cases(ctx: &Context) -> Vec<Case> {
    let security = ctx.channel.security();
    let mut cases = Vec::new();
    let name = "tls/plaintext-client-refused".to_owned();
    if security.is_tls() {
        cases.push(case(name, None, |ctx| async move {
            let plaintext = ctx.channel.secured(harness::Security::plaintext());
            verdict(turned_away(&ctx, plaintext, "a plaintext client on the TLS port").await)
        }));
    } else {
        cases.push(skipped(name, "the target is plaintext (an https:// target, or --tls, turns this on)"));
    }
    let checks: [(&str, &str, IdentityFn); 2] = [
        ("tls/client-without-certificate-refused", "a client without a certificate", || Ok(None)),
        (
            "tls/client-certificate-from-another-ca-refused",
            "a client whose certificate another CA signed",
            || foreign_identity().map(Some),
        ),
    ];
    if !ctx.settings.demands.client_certificate {
        cases.push(skipped(
            "tls/client-certificates".to_owned(),
            "pass --expect-client-cert (with --client-cert and --client-key) when the target demands client certificates",
        ));
        return cases;
    }
    for (name, who, identity) in checks {
        let name = name.to_owned();
        cases.push(case(name, None, move |ctx| async move {
            let outcome = async {
                let identity = identity().map_err(|err| Failure::new("a client certificate to show", err))?;
                let security = ctx
                    .channel
                    .security()
                    .with_identity(identity)
                    .map_err(|err| Failure::new("TLS settings", format!("{err:#}")))?;
                turned_away(&ctx, ctx.channel.secured(security), who).await
            };
            verdict(outcome.await)
        }));
    }
    cases
}

/// The certificate a check shows, if any.
type IdentityFn = fn() -> Result<Option<Identity>, String>;

/// A call on `channel` must fail at the connection, and the server must
/// serve new connections afterwards.
async fn turned_away(ctx: &Context, channel: harness::Channel, who: &str) -> Result<(), Failure> {
    let outcome = unknown_method(ctx, channel).await;
    match &outcome {
        Err(CallError::Status(status)) if status.code() == Code::Unavailable => {}
        Err(CallError::NoAnswer { .. }) => {
            return Err(Failure::new(
                format!("{who} turned away at the connection"),
                format!("the connection hung: {}", describe(&outcome)),
            ));
        }
        _ => {
            return Err(Failure::new(
                format!("{who} turned away at the connection"),
                format!("the server answered the call: {}", describe(&outcome)),
            ));
        }
    }
    keeps_serving(ctx).await
}

/// A client certificate from a CA made up on the spot, which no target
/// can trust.
fn foreign_identity() -> Result<Identity, String> {
    let fail = |err: rcgen::Error| format!("making a certificate: {err}");
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "conformance foreign CA");
    let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(fail)?).map_err(fail)?;
    let key = KeyPair::generate().map_err(fail)?;
    let mut leaf = CertificateParams::new(vec!["conformance-client".to_owned()]).map_err(fail)?;
    leaf.distinguished_name.push(rcgen::DnType::CommonName, "conformance client");
    let cert = leaf.signed_by(&key, &issuer).map_err(fail)?;
    Ok(Identity {
        chain: vec![CertificateDer::from(cert.der().to_vec()), CertificateDer::from(issuer.der().to_vec())],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}
