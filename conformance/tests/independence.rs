//! The suite is an independent oracle: it never links the services it
//! judges, nor their inference runtime, nor (in a slim build) any S3
//! server. `cargo tree` is the judge, as a user's `cargo install` would see
//! the graph.

use std::process::Command;

/// The packages `conformance` depends on, normal dependencies only, with
/// `features` as cargo flags.
fn dependencies(features: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--package",
            "conformance",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .args(features)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo tree");
    assert!(output.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn assert_absent(features: &[&str], forbidden: &[&str]) {
    let found = dependencies(features);
    for name in forbidden {
        assert!(!found.iter().any(|package| package == name), "conformance {features:?} depends on {name}");
    }
}

#[test]
fn the_suite_links_neither_our_services_nor_onnx_runtime() {
    assert_absent(&[], &["services", "ort", "ort-sys"]);
    assert_absent(&["--features", "minio"], &["services", "ort", "ort-sys"]);
}

#[test]
fn a_slim_build_links_no_s3_server_and_no_image_codecs() {
    assert_absent(&["--no-default-features"], &["services", "ort", "s3s", "s3s-fs", "aws-sdk-s3", "image"]);
}

#[test]
fn one_tls_stack() {
    assert_absent(&["--features", "minio"], &["aws-lc-rs", "aws-lc-sys"]);
}
