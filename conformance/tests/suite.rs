//! The suite through its public API: it passes our services, skips what a
//! target does not serve, and reports as users expect.

mod support;

use conformance::{
    context::{Settings, Uploads},
    report::{CaseResult, Summary, Verdict},
};
use support::{run, run_with, s3, serve, services_on, settings, verdict};

#[tokio::test]
async fn our_services_pass_every_case() {
    let (server, uploads, launcher) = services_on(s3().await).await;
    // The default watchdog, not the tests' short one: passing must not
    // depend on how loaded the machine running the tests is (32 uploads at
    // once through a debug build can be quiet for seconds).
    let settings = Settings { watchdog: Settings::default().watchdog, ..settings() };
    let results = run_with(&server.url(), &[], settings, uploads, Some(launcher)).await;
    let failures: Vec<String> =
        results.iter().filter(|r| r.verdict.failure().is_some()).map(|r| r.to_string()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let summary = Summary::of(&results);
    // The checks of credentials this plaintext, open server does not
    // demand say which flag turns them on (tests/security.rs runs them).
    let (security, rest): (Vec<_>, Vec<_>) = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Skipped { .. }))
        .partition(|r| r.name.starts_with("security/"));
    assert!(
        security.iter().all(|r| matches!(&r.verdict, Verdict::Skipped { reason } if reason.contains("pass --") || reason.contains("plaintext"))),
        "{security:#?}"
    );
    // Otherwise only the 1024-byte key (longer than the embedded S3 can
    // name a file) and the comparison with a reference implementation,
    // which needs one.
    assert_eq!(rest.len(), 2, "every contract is served: {rest:#?}");
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
    // A pass, with how many drawn inputs fell outside the expectation's `when`.
    assert!(matches!(
        verdict(&results, "declared/calculator.Calculator/Cube/expect/exact-cube"),
        Verdict::Passed | Verdict::Measured { .. }
    ));
    for name in [
        "coreservices.CoreServices/Chat/lockstep-echo",
        "streaming.NumberStreamer/StreamNumbers/deadline-on-slow-stream",
        "mensagem.ImagemService/UploadImagem/describes-each-image-in-lockstep",
    ] {
        assert_eq!(verdict(&results, name), &Verdict::Skipped { reason: "not served".into() }, "{name}");
    }
    // Declared cases come from what is served, and only from that.
    assert!(results.iter().any(|r| r.name.starts_with("declared/calculator.")));
    assert!(
        !results
            .iter()
            .any(|r| r.name.starts_with("declared/") && !r.name.starts_with("declared/calculator."))
    );
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

/// A server with only the calculator, for the binary's own tests.
async fn calculator() -> String {
    serve(
        |mut server| server.add_service(services::calculator::Calculator.server()),
        &["calculator.Calculator"],
    )
    .await
}

/// Runs the `conformance` binary with `args` to the end.
async fn conformance(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_conformance")).args(args).output().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_writes_json_junit_and_markdown_and_honours_selection() {
    let url = calculator().await;
    let dir = tempfile::tempdir().unwrap();
    let (json, junit, markdown) =
        (dir.path().join("r.json"), dir.path().join("r.xml"), dir.path().join("r.md"));
    let (json, junit, markdown) =
        (json.to_str().unwrap(), junit.to_str().unwrap(), markdown.to_str().unwrap());
    let output = conformance(&[
        "--target",
        &url,
        "--run",
        "declared/calculator.*",
        "--skip",
        "*out-of-range",
        "--inputs",
        "4",
        "--seed",
        "3",
        "--json",
        json,
        "--junit",
        junit,
        "--markdown",
        markdown,
    ])
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("1 passed, 0 failed, 0 skipped"), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(report["seed"], 3);
    assert_eq!(report["inputs_per_property"], 4);
    assert_eq!(report["results"][0]["name"], "declared/calculator.Calculator/Cube/expect/exact-cube");
    assert!(["passed", "measured"].contains(&report["results"][0]["verdict"].as_str().unwrap()), "{report}");
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(
        xml.contains(r#"<testcase name="declared/calculator.Calculator/Cube/expect/exact-cube""#),
        "{xml}"
    );
    let text = std::fs::read_to_string(markdown).unwrap();
    assert!(text.contains("1 passed, 0 failed, 0 skipped, root seed `3`"), "{text}");
    assert!(text.contains(" | 1 | 0 | 0 |"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unexpected_pass_of_a_known_failing_case_exits_non_zero() {
    let url = calculator().await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("known-failing.txt");
    std::fs::write(&list, "# a comment\ndeclared/calculator.Calculator/Cube/expect/exact-cube\n").unwrap();
    let output = conformance(&[
        "--target",
        &url,
        "--run",
        "declared/calculator.Calculator/Cube/expect/exact-cube",
        "--inputs",
        "2",
        "--known-failing",
        list.to_str().unwrap(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("UNEXPECTED PASS"), "{stdout}");
}

/// Each cause once, and the fix where one is obvious.
#[tokio::test]
async fn unreachable_and_malformed_targets_are_clear_errors() {
    for (target, message) in [
        ("http://127.0.0.1:1", "cannot connect to http://127.0.0.1:1"),
        ("not a url", "--target \"not a url\" is not a URL"),
        ("notaurl", "did you mean http://notaurl?"),
        ("127.0.0.1:50051", "did you mean http://127.0.0.1:50051?"),
        ("grpc://127.0.0.1:50051", "over http:// or https://"),
    ] {
        let output = conformance(&["--target", target]).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(message), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        let words: Vec<&str> = stderr.split(": ").collect();
        let mut unique = words.clone();
        unique.dedup();
        assert_eq!(words, unique, "no cause twice: {stderr}");
    }
}

#[tokio::test]
async fn no_target_says_how_to_name_one() {
    let output = conformance(&[]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--target") && stderr.contains("--target-cmd"), "{stderr}");
}

/// What a launcher must supply, as the suite decides it: our services'
/// launcher supplies the target and, with it, the reference.
#[tokio::test]
async fn the_suite_says_what_a_run_needs() {
    let needs = |args: &'static [&'static str]| async move {
        let mut all = vec!["--print-needs"];
        all.extend(args);
        let output = conformance(&all).await;
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(needs(&[]).await, ["target", "reference", "floor"]);
    assert_eq!(needs(&["--target", "http://127.0.0.1:1"]).await, ["floor"]);
    assert_eq!(needs(&["--target", "http://127.0.0.1:1", "--no-latency"]).await, Vec::<String>::new());
    assert_eq!(needs(&["--run", "calculator.*"]).await, ["target", "reference"]);
    assert_eq!(needs(&["--reference", "http://x:1", "--floor-cmd", "f {image}"]).await, ["target"]);
    let moto = needs(&["--target-cmd", "x {addr}", "--no-latency", "--s3", "moto"]).await;
    assert_eq!(moto, ["moto"]);
    let minio = needs(&["--target-cmd", "x {addr}", "--no-latency", "--s3", "minio"]).await;
    let expected: &[&str] = if conformance::s3::HAS_MINIO { &[] } else { &["feature minio"] };
    assert_eq!(minio, expected);
}

/// Without Docker, MinIO cannot run: the store says why, and every upload
/// case reports that reason as a skip; none passes.
#[tokio::test]
async fn minio_without_docker_is_reported_as_skipped() {
    if std::env::var_os("DOCKER_HOST").is_some() || std::path::Path::new("/var/run/docker.sock").exists() {
        return; // Docker is here: MinIO would run.
    }
    let options = conformance::s3::S3Options {
        kind: conformance::s3::S3Kind::Minio,
        endpoint: None,
        bucket: "uploads".into(),
        moto_server: "moto_server".into(),
    };
    let reason = match conformance::s3::Store::start(&options).await.unwrap() {
        conformance::s3::Availability::Unavailable(reason) => reason,
        conformance::s3::Availability::Ready(_) => panic!("MinIO started without Docker"),
    };
    assert!(reason.contains("Docker"), "{reason}");
    let (server, _, _) = services_on(s3().await).await;
    let uploads = Uploads { store: Err(reason.clone()), ..Uploads::default() };
    let results = run_with(&server.url(), &["uploader.FileUploader/*"], settings(), uploads, None).await;
    let summary = Summary::of(&results);
    assert_eq!((summary.passed, summary.failed, summary.skipped), (0, 0, 17), "{results:#?}");
    assert!(results.iter().all(|r| r.verdict == Verdict::Skipped { reason: reason.clone() }), "{results:#?}");
}

#[tokio::test]
async fn a_target_of_someone_else_needs_its_s3_named() {
    let output = conformance(&["--target", "http://127.0.0.1:1", "--s3", "moto"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--s3-endpoint"), "{stderr}");
}

#[test]
fn rerun_commands_keep_what_shapes_the_run_and_drop_the_rest() {
    let args = ["--s3", "moto", "--run", "x/*", "--seed=4", "--json", "r.json", "--inputs", "8", "--list"];
    assert_eq!(
        conformance::runner::replay_args(args.map(String::from)),
        ["--s3", "moto", "--inputs", "8"].map(String::from)
    );
    // Header values are often credentials: a rerun line never shows them.
    let args =
        ["-H", "authorization: Bearer s3cret", "--header=x-key: k", "-Hx-other: o", "--ca-cert", "ca.pem"];
    assert_eq!(
        conformance::runner::replay_args(args.map(String::from)),
        [
            "-H",
            "authorization: REDACTED",
            "--header=x-key: REDACTED",
            "-Hx-other: REDACTED",
            "--ca-cert",
            "ca.pem"
        ]
        .map(String::from)
    );
}
