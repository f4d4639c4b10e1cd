//! A real third-party client, `buf curl`, discovers the contracts through
//! reflection and calls every RPC pattern.
//!
//! Ignored by default because it needs the buf CLI; `cargo xtask test`
//! installs it and runs these with `--include-ignored`.

use std::path::PathBuf;

use tokio::process::Command;

use crate::support::start;

fn buf() -> PathBuf {
    if let Some(path) = std::env::var_os("BUF") {
        return path.into();
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/node_modules/.bin/buf");
    assert!(
        local.exists(),
        "buf not found: run `cargo xtask test`, or `npm install --prefix tools`, or set BUF"
    );
    local
}

/// Runs `buf curl` against `url/method` with `data` (one JSON object per
/// request message) and returns stdout.
async fn buf_curl(url: &str, method: &str, data: &str) -> String {
    let output = Command::new(buf())
        .args(["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--data", data])
        .arg(format!("{url}/{method}"))
        .output()
        .await
        .expect("buf runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "buf curl {method} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// buf prints each response message as pretty JSON; squeezing out the
/// whitespace lets the assertions compare compact text.
fn compact(output: &str) -> String {
    output.split_whitespace().collect()
}

#[tokio::test]
#[ignore = "needs the buf CLI: run `cargo xtask test`"]
async fn buf_curl_lists_every_service_over_reflection() {
    let (server, _channel) = start().await;
    let output = Command::new(buf())
        .args(["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services"])
        .arg(server.url())
        .output()
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&output.stdout);
    for name in services::server::SERVICE_NAMES {
        assert!(listed.lines().any(|line| line == *name), "{name} missing from {listed}");
    }
}

#[tokio::test]
#[ignore = "needs the buf CLI: run `cargo xtask test`"]
async fn buf_curl_calls_every_rpc_pattern() {
    let (server, _channel) = start().await;
    let url = server.url();
    let cases = [
        ("calculator.Calculator/Cube", r#"{"number": 5}"#, r#"{"result":"125"}"#),
        ("coreservices.CoreServices/Ping", r#"{"message": "oi"}"#, r#""message":"oi""#),
        (
            "streaming.NumberStreamer/StreamNumbers",
            r#"{"start": 1, "end": 2}"#,
            r#"{"value":"1"}{"value":"2"}"#,
        ),
        ("coreservices.CoreServices/StreamNumbers", r#"{"count": 2}"#, r#"{}{"value":"1"}"#),
        (
            "coreservices.CoreServices/UploadNumbers",
            r#"{"value": 4} {"value": -1}"#,
            r#"{"count":"2","sum":"3","min":"-1","max":"4"}"#,
        ),
        (
            "coreservices.CoreServices/Chat",
            r#"{"text": "a"} {"text": "b"}"#,
            r#"{"text":"a","sender":"server"}{"text":"b","seq":"1","sender":"server"}"#,
        ),
        (
            "uploader.UploaderService/UploadImage",
            r#"{"data": "AAEC"} {}"#,
            r#"{"totalChunks":2,"totalBytes":"3"}"#,
        ),
        ("mensagem.ImagemService/UploadImagem", r#"{"imagem": "AAECAwQF"}"#, r#""byteCount":"6""#),
    ];
    for (method, data, expected) in cases {
        let output = compact(&buf_curl(&url, method, data).await);
        assert!(output.contains(expected), "{method}: {output} lacks {expected}");
    }
}
