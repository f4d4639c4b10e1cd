//! The latency suite end to end, in its short mode with tiny windows: our
//! in-process services beside the bare ONNX Runtime floor. It checks the
//! shape of what comes out, not the numbers, which belong to the machine.

use std::{sync::Arc, time::Duration};

use conformance::latency::{self, LEVELS, Options, Subject, SubjectKind};
use services::inference::{Engine, InferenceConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_sweep_reports_every_level_and_writes_its_files() {
    let server = services::spawn(services::Config::default()).await.unwrap();
    let channel = harness::connect(&server.url()).await.unwrap();
    let engine = Arc::new(Engine::load(&InferenceConfig::default()).unwrap());
    let subjects = [
        Subject { name: "rust".to_owned(), kind: SubjectKind::Grpc(channel) },
        Subject { name: "floor".to_owned(), kind: SubjectKind::Floor(engine) },
    ];
    let out = tempfile::tempdir().unwrap();
    let options =
        Options { window: Some(Duration::from_millis(40)), ..Options::new(out.path().join("latency")) };

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
