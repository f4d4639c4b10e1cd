//! The README's walk-through: a contract nobody on this project wrote
//! (`conformance/examples/inventory/`), served by a deliberately buggy
//! Python server, tested with no Rust written. Exactly its three bugs fail,
//! each through a line of its `.proto`, and everything else passes.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
#[ignore = "needs the Python peers' virtualenv and validate.proto: run `cargo xtask test`"]
fn the_example_contract_fails_exactly_where_its_server_is_buggy() {
    let python = std::env::var("CONFORMANCE_PYTHON")
        .unwrap_or_else(|_| root().join("tools/venv/bin/python").display().to_string());
    let server = root().join("conformance/examples/inventory/server.py");
    let json = tempfile::NamedTempFile::new().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(["--target-cmd", &format!("{python} {} --addr {{addr}}", server.display())])
        .args(["--run", "declared/**", "--seed", "1", "--json"])
        .arg(json.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(json.path()).unwrap()).unwrap();
    let mut failed: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "failed")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    failed.sort_unstable();
    let case = "declared/shop.v1.InventoryService";
    assert_eq!(
        failed,
        [
            format!("{case}/Countdown/expect/counts-down-to-zero"),
            format!("{case}/Reserve/expect/reserves-what-was-asked"),
            format!("{case}/Reserve/responses-satisfy-rules"),
            format!("{case}/Reserve/valid-inputs-accepted"),
        ],
        "{stdout}"
    );
    // The boundary the rule states, the rule the response breaks, and the
    // zero the countdown never reaches.
    assert!(stdout.contains("quantity: 100"), "{stdout}");
    assert!(stdout.contains("breaks rule `int32.gte` at `remaining`"), "{stdout}");
    assert!(stdout.contains("responses (0):"), "{stdout}");
    // Requests that break a rule are refused, as the contract says.
    assert!(stdout.contains(&format!("PASS {case}/Reserve/invalid-inputs-refused")), "{stdout}");
}
