//! The `services` binary as a user runs it.

use std::process::Stdio;

use contracts::calculator::{CubeRequest, calculator_client::CalculatorClient};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

fn services() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_services"));
    command.env("RUST_LOG", "info").kill_on_drop(true);
    command
}

/// Starts `services serve` on a free port and returns it with its address.
async fn serve(extra: &[&str]) -> (Child, String) {
    let mut child = services()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("the server prints its address");
    let addr = line.strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, format!("http://{addr}"))
}

#[tokio::test]
async fn serves_until_sigterm_then_exits_cleanly() {
    let (mut child, url) = serve(&[]).await;
    let mut client = CalculatorClient::connect(url).await.unwrap();
    assert_eq!(client.cube(CubeRequest { number: 3 }).await.unwrap().into_inner().result, 27);

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(killed.success());
    let status = child.wait().await.unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[tokio::test]
async fn accepts_a_message_size_with_units() {
    let (mut child, url) = serve(&["--max-message-size", "1KiB"]).await;
    let mut client =
        contracts::coreservices::core_services_client::CoreServicesClient::connect(url).await.unwrap();
    let request = contracts::coreservices::PingRequest { message: "z".repeat(2048) };
    let status = client.ping(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    child.kill().await.unwrap();
}

async fn fails_with(args: &[&str], expected: &str) {
    let output = services().args(args).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{args:?} should fail");
    assert!(stderr.contains(expected), "{args:?}: stderr {stderr:?} lacks {expected:?}");
}

#[tokio::test]
async fn bad_arguments_get_clear_messages() {
    fails_with(&["serve", "--max-message-size", "12XB"], "unknown size unit").await;
    fails_with(&["serve", "--max-message-size", "0"], "at least 1 byte").await;
    fails_with(&["serve", "--max-message-size", "8GiB"], "below 4 GiB").await;
    fails_with(&["serve", "--addr", "not-an-address"], "invalid socket address").await;
}

#[tokio::test]
async fn a_taken_port_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    fails_with(&["serve", "--addr", &addr], &format!("cannot listen on {addr}")).await;
}

/// Seed 001's client: uploads a file, and the server's data folder then
/// holds exactly its bytes.
#[tokio::test]
async fn upload_stores_a_file_byte_for_byte() {
    let data_dir = tempfile::tempdir().unwrap();
    let (_server, url) = serve(&["--s3-data-dir", data_dir.path().to_str().unwrap()]).await;
    let file = data_dir.path().join("input.bin");
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();

    let output = services()
        .args([
            "upload",
            "--server",
            &url,
            "--key",
            "docs/input.bin",
            "--chunk-size",
            "64KiB",
            "--verify-first",
        ])
        .arg(&file)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("size 3000000"), "{stdout}");
    let stored = std::fs::read(data_dir.path().join("uploads/docs/input.bin")).unwrap();
    assert!(stored == bytes, "the stored object differs from the file");
}

#[tokio::test]
async fn upload_failures_are_clear_messages() {
    let (_server, url) = serve(&[]).await;
    for (args, expected) in [
        (vec!["upload", "--server", &url, "/no/such/file"], "reading /no/such/file"),
        (vec!["upload", "--server", &url, "--key", "../escape", "Cargo.toml"], "InvalidArgument"),
    ] {
        let output = services().args(&args).output().await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[tokio::test]
async fn sighup_rereads_the_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "first").unwrap();
    let (mut child, url) = serve(&["--no-inference", "--auth-token-file", token.to_str().unwrap()]).await;
    let call = |token: &'static str| {
        let url = url.clone();
        async move {
            let mut request = tonic::Request::new(CubeRequest { number: 2 });
            request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
            CalculatorClient::connect(url).await.unwrap().cube(request).await.map(|r| r.into_inner().result)
        }
    };
    assert_eq!(call("first").await.unwrap(), 8);
    std::fs::write(&token, "second").unwrap();
    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().await.unwrap().success());
    // The reload happens on the server's own time: ask until it has.
    let mut refused = call("first").await;
    while refused.is_ok() {
        tokio::task::yield_now().await;
        refused = call("first").await;
    }
    assert_eq!(refused.unwrap_err().code(), tonic::Code::Unauthenticated);
    assert_eq!(call("second").await.unwrap(), 8);
    child.kill().await.unwrap();
}

#[tokio::test]
async fn unreadable_credentials_are_a_clear_error() {
    let output = services()
        .args(["serve", "--addr", "127.0.0.1:0", "--no-inference", "--tls-cert", "/nonexistent/cert.pem"])
        .args(["--tls-key", "/nonexistent/key.pem"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("error: reading certificates from /nonexistent/cert.pem"), "{stderr}");
    let output = services().args(["serve", "--tls-cert", "cert.pem"]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("--tls-key"), "{stderr}");
}
