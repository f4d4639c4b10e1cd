//! The latency suite end to end, in its short mode with tiny windows: our
//! services beside the bare ONNX Runtime floor of the Python peers. It
//! checks the shape of what comes out, not the numbers, which belong to the
//! machine.

use std::{path::PathBuf, sync::Arc, time::Duration};

use conformance::latency::{self, Floor, LEVELS, Options, Subject, SubjectKind};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python floor, from the virtualenv `cargo xtask` installs.
fn python_floor() -> String {
    let python = std::env::var("CONFORMANCE_PYTHON")
        .unwrap_or_else(|_| root().join("tools/venv/bin/python").display().to_string());
    let script = root().join("conformance/peers/python/floor.py");
    format!("{python} {} --image {{image}}", script.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python peers' virtualenv: run `cargo xtask test`"]
async fn a_short_sweep_reports_every_level_and_writes_its_files() {
    let server = services::spawn(services::Config::default()).await.unwrap();
    let channel = harness::connect(&server.url()).await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let options =
        Options { window: Some(Duration::from_millis(40)), ..Options::new(out.path().join("latency")) };
    let log = out.path().join("floor.log");
    let floor = Floor::start(&python_floor(), &options.image, &log).await.unwrap();
    assert!(floor.description.contains("onnxruntime"), "{}", floor.description);
    let subjects = [
        Subject { name: "rust".to_owned(), kind: SubjectKind::Grpc(channel) },
        Subject { name: "floor".to_owned(), kind: SubjectKind::Floor(Arc::new(floor)) },
    ];

    let report = latency::sweep(&subjects, &options).await.unwrap();
    let table = report.table();
    println!("{table}");

    assert_eq!(report.subjects(), ["rust", "floor"]);
    assert_eq!(report.levels.len(), 2 * LEVELS.len(), "{table}");
    for subject in ["rust", "floor"] {
        for &concurrency in LEVELS {
            let level =
                report.level(subject, concurrency).unwrap_or_else(|| panic!("{subject} x{concurrency}"));
            assert_eq!(level.errors, 0, "{table}");
            assert!(level.requests > 0 && level.p50_us.is_some() && level.throughput > 0.0, "{table}");
            assert!(level.p50_us <= level.p99_us, "{table}");
            assert_eq!(level.server.is_some(), subject == "rust", "only gRPC answers carry timing: {table}");
        }
    }
    assert_eq!(report.summary.overhead_over_floor.len(), 1, "{table}");
    for file in ["latency.csv", "latency.json", "latency.svg"] {
        let path = options.out_dir.join(file);
        let metadata = std::fs::metadata(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        assert!(metadata.len() > 0, "{} is empty", path.display());
    }
    let csv = std::fs::read_to_string(options.out_dir.join("latency.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * LEVELS.len(), "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(options.out_dir.join("latency.json")).unwrap())
            .unwrap();
    assert_eq!(json["levels"].as_array().unwrap().len(), 2 * LEVELS.len());
    let svg = std::fs::read_to_string(options.out_dir.join("latency.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("rust p50") && svg.contains("floor p99"), "{svg}");

    server.shutdown().await.unwrap();
}

/// A floor that cannot start, or answers nonsense, is a clear error, not a
/// hang or a panic.
#[tokio::test]
async fn a_broken_floor_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("floor.log");
    for (command, message) in [
        ("true", "{image}"),
        ("exit 3 {image}", "the floor exited"),
        ("echo 'not json' {image}", "the floor answered \"not json"),
    ] {
        let err = Floor::start(command, b"image", &log).await.expect_err(command);
        let text = format!("{err:#}");
        assert!(text.contains(message), "{command}: {text}");
    }
}
