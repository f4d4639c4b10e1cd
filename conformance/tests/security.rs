//! The suite over TLS, with a client certificate and a bearer token: every
//! kind of case still runs, and the security checks pass on servers that
//! demand credentials, ours and the Python peers.

mod support;

use conformance::{
    context::{Demands, Settings},
    report::{CaseResult, Verdict},
};
use harness::target::{DEFAULT_STARTUP_TIMEOUT, Target};
use services::security::{SecurityConfig, TlsFiles};
use support::{pki, run_secured, s3};

const TOKEN: &str = "s3cret-token";

/// One kind of each case, and every security check.
const SELECTION: &[&str] = &[
    "security/*",
    "health/*",
    "generic/calculator.Calculator/*",
    "generic/coreservices.CoreServices/Chat/*",
    "declared/calculator.Calculator/*",
    "declared/streaming.NumberStreamer/*",
    "coreservices.CoreServices/*",
    "uploader.FileUploader/Upload/round-trip",
];

fn settings() -> Settings {
    Settings { demands: Demands { auth: true, client_certificate: true }, ..support::settings() }
}

fn assert_all_pass(results: &[CaseResult]) {
    let failures: Vec<String> =
        results.iter().filter(|r| r.verdict.failure().is_some()).map(|r| r.to_string()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let security: Vec<&CaseResult> = results.iter().filter(|r| r.name.starts_with("security/")).collect();
    let skipped: Vec<String> = security
        .iter()
        .filter(|r| matches!(&r.verdict, Verdict::Skipped { reason } if reason != "not served"))
        .map(|r| r.to_string())
        .collect();
    assert!(skipped.is_empty(), "every security check applies here: {skipped:#?}");
    assert!(security.len() > 10, "{security:#?}");
}

#[tokio::test]
async fn our_services_pass_over_tls_with_client_certificates_and_a_token() {
    let files = pki::Files::new();
    let store = s3().await;
    let uploads = conformance::context::Uploads { store: Ok(store.clone()), ..Default::default() };
    let server = secured_services(&files, Some(&store)).await;
    assert!(server.url().starts_with("https://"));
    let results =
        run_secured(&server.url(), files.security(TOKEN), SELECTION, settings(), uploads, None).await;
    assert_all_pass(&results);
    assert!(matches!(
        support::verdict(&results, "security/uploader.FileUploader/Upload/refused-upload-stores-nothing"),
        Verdict::Passed
    ));
}

#[tokio::test]
#[ignore = "needs the Python peers' virtualenv: run `cargo xtask test`"]
async fn the_python_peers_pass_over_tls_with_client_certificates_and_a_token() {
    let files = pki::Files::new();
    let python = std::env::var("CONFORMANCE_PYTHON")
        .unwrap_or_else(|_| support::root().join("tools/venv/bin/python").display().to_string());
    let server = support::root().join("conformance/peers/python/server.py");
    let token = pki::write(files.dir.path(), "token", TOKEN);
    let command = format!(
        "'{python}' '{}' --addr {{addr}} --tls-cert '{}' --tls-key '{}' --tls-client-ca '{}' --auth-token-file '{}'",
        server.display(),
        files.server_cert.display(),
        files.server_key.display(),
        files.client_ca.display(),
        token.display(),
    );
    let log = files.dir.path().join("peer.log");
    let target =
        Target::command_with_env(&command, &[], files.security(TOKEN), DEFAULT_STARTUP_TIMEOUT, &log)
            .await
            .unwrap();
    let results =
        run_secured(target.url(), files.security(TOKEN), SELECTION, settings(), Default::default(), None)
            .await;
    assert_all_pass(&results);
    target.stop(std::time::Duration::from_secs(10)).await.unwrap();
}

/// Our services with TLS, client certificates and a token, in this process.
async fn secured_services(
    files: &pki::Files,
    store: Option<&conformance::s3::Store>,
) -> services::RunningServer {
    let mut config = services::Config { inference: None, ..Default::default() };
    if let Some(store) = store {
        config.s3.backend = support::backend(store);
    }
    config.security = SecurityConfig {
        tls: Some(TlsFiles {
            cert: files.server_cert.clone(),
            key: files.server_key.clone(),
            client_ca: Some(files.client_ca.clone()),
        }),
        token_file: Some(pki::write(files.dir.path(), "token", TOKEN)),
        open_reflection: false,
    };
    services::spawn(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_takes_certificates_headers_and_the_demands() {
    let files = pki::Files::new();
    let server = secured_services(&files, None).await;
    let url = server.url();
    let header = format!("authorization: Bearer {TOKEN}");
    let path = |p: &std::path::Path| p.display().to_string();
    let (ca, cert, key) = (path(&files.server_ca), path(&files.client_cert), path(&files.client_key));
    let mut args = vec!["--target", &url, "--ca-cert", &ca, "--client-cert", &cert, "--client-key", &key];
    args.extend([
        "-H",
        &header,
        "--expect-auth",
        "--expect-client-cert",
        "--run",
        "security/*",
        "--run",
        "health/*",
    ]);
    args.extend(["--inputs", "4", "--no-latency"]);
    let (code, stdout, stderr) = support::conformance_binary(&args).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("target: https://"), "{stdout}");

    // Trusting any certificate works, and says loudly what it gives up.
    let insecure = ["--target", &url, "--insecure", "--client-cert", &cert, "--client-key", &key];
    let (code, stdout, stderr) = support::conformance_binary(
        &[&insecure[..], &["-H", &header, "--run", "health/*", "--no-latency"]].concat(),
    )
    .await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("WARNING: --insecure"), "{stderr}");

    // Mistakes are one clear line each.
    let no_ca = url.clone();
    let plaintext = url.replace("https://", "http://");
    for (args, message) in [
        (vec!["--target", &no_ca, "-H", &header], "TLS handshake failed"),
        (vec!["--target", &plaintext, "--ca-cert", &ca], "is plaintext, but TLS settings were given"),
        (vec!["--target", &url, "--ca-cert", &ca, "--expect-auth"], "--expect-auth needs the credentials"),
        (vec!["--target", &url, "--ca-cert", &ca, "-H", "no colon"], "is not `name: value`"),
    ] {
        let (code, stdout, stderr) = support::conformance_binary(&args).await;
        assert_eq!(code, Some(2), "{args:?}: {stdout}\n{stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
}

/// A failure's `buf curl` line reaches a TLS target with the run's CA and
/// client certificate, and never shows a header's value.
#[tokio::test]
#[ignore = "needs the buf CLI: run `cargo xtask test`"]
async fn reproduced_buf_curl_lines_carry_the_tls_settings() {
    let files = pki::Files::new();
    let mut config = services::Config { inference: None, ..Default::default() };
    config.security.tls = Some(TlsFiles {
        cert: files.server_cert.clone(),
        key: files.server_key.clone(),
        client_ca: Some(files.client_ca.clone()),
    });
    let server = services::spawn(config).await.unwrap();
    let security = files.security("not-a-secret");
    let channel = harness::connect_with(&server.url(), security).await.unwrap();
    let ctx = conformance::connect(channel, &Default::default(), support::settings()).await.unwrap();
    let method = ctx.contract_method("calculator.Calculator", "Cube");
    let mut request = prost_reflect::DynamicMessage::new(method.input());
    request.set_field_by_name("number", prost_reflect::Value::I64(3));
    let line = conformance::reproduce::buf_curl(&ctx, &method, &[request]);
    assert!(!line.contains("not-a-secret"), "{line}");
    assert!(line.contains("authorization: REDACTED"), "{line}");
    let buf = std::env::var("BUF")
        .unwrap_or_else(|_| support::root().join("tools/node_modules/.bin/buf").display().to_string());
    let line = line.replacen("buf ", &format!("'{buf}' "), 1);
    let output = tokio::process::Command::new("sh").args(["-c", &line]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{line}\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("\"result\": \"27\""), "{stdout}");
}

/// The load engine's own HTTP/2 client keeps the run's TLS, client
/// certificate and headers: with them every call is served, without the
/// token every call is refused.
#[tokio::test(flavor = "multi_thread")]
async fn load_runs_over_tls_with_a_client_certificate_and_a_token() {
    use conformance::load::{self, Level, Plan, Stop};
    let files = pki::Files::new();
    let server = secured_services(&files, None).await;
    let pool = harness::descriptors::embedded();
    let method = pool.get_service_by_name("calculator.Calculator").unwrap().methods().next().unwrap();
    let mut request = prost_reflect::DynamicMessage::new(method.input());
    request.set_field_by_name("number", prost_reflect::Value::I64(2));
    let plan = Plan {
        connections: 2,
        ..Plan::new(method, vec![vec![request]], vec![Level::Concurrency(2)], Stop::Count(20))
    };
    for (security, expected) in [(files.security(TOKEN), "OK"), (files.tls(), "Unauthenticated")] {
        let channel = harness::connect_with(&server.url(), security).await.unwrap();
        let levels = load::run(channel, &plan, |_, _| {}).await.unwrap();
        assert_eq!(levels[0].endings.get(expected), Some(&20), "{:?}", levels[0]);
    }
}
