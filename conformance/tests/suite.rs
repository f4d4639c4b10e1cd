//! The suite through its public API: it passes our services, skips what a
//! target does not serve, and reports as users expect.

mod support;

use conformance::report::{CaseResult, Summary, Verdict};
use support::{run, run_with, s3, serve, services_on, settings, verdict};

#[tokio::test]
async fn our_services_pass_every_case() {
    let (server, uploads) = services_on(s3().await).await;
    let results = run_with(&server.url(), &[], settings(), uploads).await;
    let failures: Vec<String> =
        results.iter().filter(|r| r.verdict.failure().is_some()).map(|r| r.to_string()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let summary = Summary::of(&results);
    // Only the 1024-byte key (longer than the embedded S3 can name a file)
    // and the comparison with a reference implementation, which needs one.
    assert_eq!(summary.skipped, 2, "every contract is served: {results:#?}");
    assert!(matches!(
        verdict(&results, "uploader.FileUploader/Upload/longest-name"),
        Verdict::Skipped { reason } if reason.contains("at most 128 bytes")
    ));
    assert!(matches!(
        verdict(&results, "inference.InferenceMethods/Infer/agrees-with-the-reference"),
        Verdict::Skipped { reason } if reason.contains("--reference-cmd")
    ));
    assert!(summary.passed > 60, "{summary}");
}

/// A server with only the calculator: its suite runs, every other contract
/// suite is skipped as not served, never passed.
#[tokio::test]
async fn contracts_that_are_not_served_are_skipped() {
    let url = serve(
        |mut server| server.add_service(services::calculator::Calculator.server()),
        &["calculator.Calculator"],
    )
    .await;
    let results = run(&url, &[], settings()).await;
    assert_eq!(verdict(&results, "calculator.Calculator/Cube/cube-in-range"), &Verdict::Passed);
    for name in [
        "coreservices.CoreServices/Chat/lockstep-echo",
        "uploader.UploaderService/UploadImage/summary",
        "streaming.NumberStreamer/StreamNumbers/inclusive-range",
        "mensagem.ImagemService/UploadImagem/describes-each-image-in-lockstep",
    ] {
        assert_eq!(verdict(&results, name), &Verdict::Skipped { reason: "not served".into() }, "{name}");
    }
    // Generic checks cover exactly what is served.
    assert!(results.iter().any(|r| r.name == "generic/calculator.Calculator/Cube/arbitrary-requests"));
    assert!(!results.iter().any(|r| r.name.starts_with("generic/coreservices")));
}

#[test]
fn a_known_failing_case_that_passes_fails_the_run() {
    let case = |verdict, known_failing| CaseResult {
        name: "x".into(),
        suite: "s".into(),
        verdict,
        duration: Default::default(),
        known_failing,
    };
    let failed = Verdict::failed("a", "b");
    assert_eq!(Summary::of(&[case(failed.clone(), true)]), Summary { passed: 0, failed: 0, skipped: 0 });
    assert_eq!(Summary::of(&[case(Verdict::Passed, true)]), Summary { passed: 0, failed: 1, skipped: 0 });
    assert_eq!(Summary::of(&[case(failed, false)]), Summary { passed: 0, failed: 1, skipped: 0 });
}

fn conformance() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_conformance"))
}

#[test]
fn the_binary_writes_json_and_junit_and_honours_selection() {
    let dir = tempfile::tempdir().unwrap();
    let (json, junit) = (dir.path().join("r.json"), dir.path().join("r.xml"));
    let output = conformance()
        .args(["--run", "calculator.*", "--skip", "*out-of-range", "--cases", "4", "--seed", "3", "--json"])
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("1 passed, 0 failed, 0 skipped"), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["seed"], 3);
    assert_eq!(report["results"][0]["name"], "calculator.Calculator/Cube/cube-in-range");
    assert_eq!(report["results"][0]["verdict"], "passed");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"<testcase name="calculator.Calculator/Cube/cube-in-range""#), "{xml}");
}

#[test]
fn an_unexpected_pass_of_a_known_failing_case_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("known-failing.txt");
    std::fs::write(&list, "# a comment\ncalculator.Calculator/Cube/cube-in-range\n").unwrap();
    let output = conformance()
        .args(["--run", "calculator.Calculator/Cube/cube-in-range", "--cases", "2", "--known-failing"])
        .arg(&list)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("UNEXPECTED PASS"), "{stdout}");
}

#[test]
fn unreachable_and_malformed_targets_are_clear_errors() {
    for (target, message) in [
        ("http://127.0.0.1:1", "cannot connect to http://127.0.0.1:1"),
        ("not a url", "not a valid endpoint URL"),
    ] {
        let output = conformance().args(["--target", target]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(message), "{stderr}");
    }
}

/// Without Docker, MinIO cannot run: every upload case says why and is
/// skipped; none passes.
#[test]
fn minio_without_docker_is_reported_as_skipped() {
    let output = conformance()
        .args(["--s3", "minio", "--run", "uploader.FileUploader/*", "--cases", "1"])
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("S3 for uploads: none (no Docker daemon"), "{stdout}");
    assert!(stdout.contains(" 0 passed, 0 failed, 16 skipped"), "{stdout}");
}

#[test]
fn a_target_of_someone_else_needs_its_s3_named() {
    let output = conformance().args(["--target", "http://127.0.0.1:1", "--s3", "moto"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--s3-endpoint"), "{stderr}");
}

#[test]
fn rerun_commands_keep_what_shapes_the_run_and_drop_the_rest() {
    let args = ["--s3", "moto", "--run", "x/*", "--seed=4", "--json", "r.json", "--cases", "8", "--list"];
    assert_eq!(
        conformance::runner::replay_args(args.map(String::from)),
        ["--s3", "moto", "--cases", "8"].map(String::from)
    );
}
