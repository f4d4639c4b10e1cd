//! The seeds' Go clients (`conformance/peers/go/`, grpc-go) against the
//! Python peer (`conformance/peers/python/`, grpcio): two implementations of
//! the contracts that share nothing with each other or with our services.
//! Seed 000's image sender works in lockstep, which grpcio's bidi streams
//! must serve answer by answer; seed 004's chunk uploader counts empty
//! chunks too.
//!
//! Ignored by default because it needs the Python peers' virtualenv and the
//! Go clients: `cargo xtask test` provides both (`CONFORMANCE_PYTHON`,
//! `GO_PEERS`).

use std::{path::PathBuf, time::Duration};

use harness::target::{DEFAULT_STARTUP_TIMEOUT, Target};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The folder of the Go programs: `GO_PEERS`, else where xtask builds them.
fn go_peers() -> PathBuf {
    if let Some(folder) = std::env::var_os("GO_PEERS") {
        return folder.into();
    }
    let local = root().join("tools/go/bin");
    assert!(
        local.join("imagem-sender").is_file(),
        "the Go clients are not built: run `cargo xtask test`, which builds them (xtask/src/go.rs) and sets \
         GO_PEERS, or set GO_PEERS to a folder holding them"
    );
    local
}

/// The Python peer, started on a free port.
async fn python_peer(log: &std::path::Path) -> Target {
    let python = std::env::var("CONFORMANCE_PYTHON")
        .unwrap_or_else(|_| root().join("tools/venv/bin/python").display().to_string());
    let server = root().join("conformance/peers/python/server.py");
    let command = format!("'{python}' '{}' --addr {{addr}}", server.display());
    Target::command(&command, DEFAULT_STARTUP_TIMEOUT, log).await.expect("the Python peer starts")
}

/// Runs a Go client, which must exit 0, and returns what it printed.
async fn succeeds(program: &str, args: &[&str]) -> String {
    let path = go_peers().join(program);
    let output = tokio::process::Command::new(&path)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", path.display()));
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{program} {args:?} failed ({}):\n{stderr}{stdout}", output.status);
    stdout.into_owned()
}

#[tokio::test]
#[ignore = "needs the Python peers' virtualenv and the Go clients: run `cargo xtask test`"]
async fn the_go_clients_of_seeds_000_and_004_agree_with_the_python_peer() {
    let dir = tempfile::tempdir().unwrap();
    let peer = python_peer(&dir.path().join("peer.log")).await;
    let addr = peer.url().trim_start_matches("http://").to_owned();

    // A PNG, a JPEG and a GIF, bytes that are no image, and an empty one,
    // each answered before the next is sent.
    let said = succeeds("imagem-sender", &["--addr", &addr]).await;
    assert!(said.contains("5 answers"), "{said}");

    // The seed's five 1 KiB chunks, then random lengths with empty ones.
    let said = succeeds("chunk-uploader", &["--addr", &addr, "--seed", "4"]).await;
    assert!(said.contains("5 chunks, 5120 bytes"), "{said}");
    let args = ["--addr", &addr, "--random-sizes", "--chunks", "300", "--chunk-size", "70000", "--seed", "7"];
    succeeds("chunk-uploader", &args).await;

    peer.stop(Duration::from_secs(10)).await.unwrap();
}
