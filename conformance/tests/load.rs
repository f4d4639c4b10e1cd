//! The load engine on our services: every RPC pattern, counted to the call,
//! with per-message latency for streams and every ending by status.

mod support;

use std::time::Duration;

use conformance::load::{self, Level, Plan, Stability, Stop};
use prost_reflect::{DynamicMessage, Value};

fn method(
    pool: &prost_reflect::DescriptorPool,
    service: &str,
    name: &str,
) -> prost_reflect::MethodDescriptor {
    pool.get_service_by_name(service).unwrap().methods().find(|m| m.name() == name).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_pattern_is_driven_and_counted() {
    let server = services::spawn(services::Config { inference: None, ..Default::default() }).await.unwrap();
    let channel = harness::connect(&server.url()).await.unwrap();
    let pool = harness::descriptors::embedded();
    for (service, name) in [
        ("calculator.Calculator", "Cube"),
        ("streaming.NumberStreamer", "StreamNumbers"),
        ("coreservices.CoreServices", "UploadNumbers"),
        ("coreservices.CoreServices", "Chat"),
    ] {
        let method = method(&pool, service, name);
        let calls = if name == "StreamNumbers" {
            // Drawn ranges may be a million values long: valid, and far too
            // slow for a test. Twenty values at once instead.
            let mut request = DynamicMessage::new(method.input());
            request.set_field_by_name("start", Value::I64(0));
            request.set_field_by_name("end", Value::I64(19));
            vec![vec![request]]
        } else {
            load::drawn_calls(&method, 16, 3).unwrap()
        };
        let plan = Plan::new(
            method.clone(),
            calls,
            vec![Level::Concurrency(1), Level::Concurrency(4), Level::Rate(200.0)],
            Stop::Count(40),
        );
        let levels = load::run(channel.clone(), &plan, |_, _| {}).await.unwrap();
        assert_eq!(levels.len(), 3);
        for level in &levels {
            assert_eq!(level.calls, 40, "{service}/{name}: {level:?}");
            // Drawn inside the rules; Cube's range is an expectation, not a
            // rule, so some of its calls are rightly OUT_OF_RANGE.
            assert!(level.ok > 0, "{service}/{name}: {level:?}");
            assert!(
                level.endings.keys().all(|ending| ending == "OK" || ending == "OutOfRange"),
                "{service}/{name}: {level:?}"
            );
            assert_eq!(level.call_latency.unwrap().count, level.ok);
            if method.is_server_streaming() {
                assert!(level.message_latency.is_some(), "{service}/{name}");
            }
        }
        let table = load::table(&levels);
        assert!(table.contains("OK "), "{table}");
        assert_eq!(load::csv(&levels).lines().count(), 4);
        assert!(load::svg(service, &levels).unwrap().contains("<svg"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_broken_down_by_status() {
    let server = services::spawn(services::Config { inference: None, ..Default::default() }).await.unwrap();
    let channel = harness::connect(&server.url()).await.unwrap();
    let method = method(&harness::descriptors::embedded(), "calculator.Calculator", "Cube");
    let cube = |number: i64| {
        let mut request = DynamicMessage::new(method.input());
        request.set_field_by_name("number", Value::I64(number));
        vec![request]
    };
    // One call in three is outside the range the contract allows.
    let calls = vec![cube(2), cube(3), cube(i64::MAX)];
    let plan = Plan::new(method.clone(), calls, vec![Level::Concurrency(1)], Stop::Count(30));
    let levels = load::run(channel, &plan, |_, _| {}).await.unwrap();
    assert_eq!(levels[0].endings.get("OK"), Some(&20), "{:?}", levels[0].endings);
    assert_eq!(levels[0].endings.get("OutOfRange"), Some(&10), "{:?}", levels[0].endings);
    let first = levels[0].first_error.as_deref().unwrap();
    assert!(first.starts_with("OutOfRange: "), "{first}");
}

/// Windows until stable, a ramp, several connections and the mean of a
/// response field: the figures are the machine's, so only their shape and
/// the deterministic parts are checked.
#[tokio::test(flavor = "multi_thread")]
async fn windows_ramps_connections_and_means() {
    let server = services::spawn(services::Config { inference: None, ..Default::default() }).await.unwrap();
    let channel = harness::connect(&server.url()).await.unwrap();
    let method = method(&harness::descriptors::embedded(), "calculator.Calculator", "Cube");
    let mut request = DynamicMessage::new(method.input());
    request.set_field_by_name("number", Value::I64(3));
    let stability = Stability { window: Duration::from_millis(50), max_windows: 4 };
    let plan = Plan {
        ramp: Duration::from_millis(100),
        connections: 3,
        means: vec!["result".to_owned(), "absent.field".to_owned()],
        ..Plan::new(
            method,
            vec![vec![request]],
            vec![Level::Concurrency(2), Level::Rate(300.0)],
            Stop::Stable(stability),
        )
    };
    let levels = load::run(channel, &plan, |_, _| {}).await.unwrap();
    for level in &levels {
        assert_eq!(level.errors(), 0, "{level:?}");
        let windows = level.window_throughputs.len();
        assert!((1..=4).contains(&windows), "{level:?}");
        assert_eq!(level.stable, Some(load::is_stable(&level.window_throughputs)), "{level:?}");
        // 3³, on every response; a path the response lacks has no mean.
        assert_eq!(level.means.get("result"), Some(&27.0), "{level:?}");
        assert_eq!(level.means.len(), 1, "{level:?}");
    }
    let table = load::table(&levels);
    assert!(table.contains("concurrency 2") && table.contains("300 calls/s"), "{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_load_command_reads_calls_and_writes_its_reports() {
    let server = services::spawn(services::Config { inference: None, ..Default::default() }).await.unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    // A request stream a line: each line is one UploadNumbers call.
    let calls = dir.path().join("calls.jsonl");
    std::fs::write(&calls, "[{\"value\": \"1\"}, {\"value\": \"2\"}]\n\n[{\"value\": \"-5\"}]\n").unwrap();
    let calls = calls.display().to_string();
    let base = ["load", "--target", &url, "--concurrency", "2", "--count", "20", "--out", &out];
    let (code, stdout, stderr) = support::conformance_binary(
        &[&base[..], &["--call", "coreservices.CoreServices/UploadNumbers", "--data-file", &calls]].concat(),
    )
    .await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("OK 20"), "{stdout}");
    let csv = std::fs::read_to_string(dir.path().join("load.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    let svg = std::fs::read_to_string(dir.path().join("load.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("p99"), "{svg}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("load.json")).unwrap()).unwrap();
    assert_eq!(json[0]["calls"], 20);

    // An open loop, counted; and windows until stable.
    let base_rps = ["load", "--target", &url, "--rps", "100,200", "--count", "30", "--out", &out];
    let cube = ["--call", "calculator.Calculator/Cube", "--data", "{\"number\": \"2\"}"];
    let (code, stdout, stderr) = support::conformance_binary(&[&base_rps[..], &cube[..]].concat()).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("100 calls/s") && stdout.contains("200 calls/s"), "{stdout}");
    assert_eq!(stdout.matches("OK 30").count(), 2, "{stdout}");
    let stable =
        ["load", "--target", &url, "--stable", "--window", "0.05", "--max-windows", "3", "--out", &out];
    let means = ["--mean-of", "result", "--concurrency", "2"];
    let (code, stdout, stderr) =
        support::conformance_binary(&[&stable[..], &cube[..], &means[..]].concat()).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("load.json")).unwrap()).unwrap();
    assert_eq!(json[0]["means"]["result"], 8.0, "{json}");
    assert!(json[0]["stable"].is_boolean(), "{json}");

    // Calls that fail make the run fail, with the breakdown printed.
    let (code, stdout, _) = support::conformance_binary(
        &[
            &base[..],
            &["--call", "calculator.Calculator/Cube", "--data", "{\"number\": \"9223372036854775807\"}"],
        ]
        .concat(),
    )
    .await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("OutOfRange 20"), "{stdout}");

    for (args, message) in [
        (vec!["--call", "calculator.Calculator/Nope"], "has no method Nope"),
        (vec!["--call", "nope.Service/Method"], "does not serve nope.Service"),
        (
            vec!["--call", "calculator.Calculator/Cube", "--data", "{\"number\": \"x\"}"],
            "not a calculator.CubeRequest",
        ),
        (vec!["--call", "calculator.Calculator/Cube", "--data", "[{}, {}]"], "takes one request"),
        (
            vec!["--call", "calculator.Calculator/Cube", "--restart-after", "1"],
            "--restart-after needs --target-cmd",
        ),
    ] {
        let (code, stdout, stderr) = support::conformance_binary(&[&base[..], &args[..]].concat()).await;
        assert_eq!(code, Some(2), "{args:?}: {stdout}\n{stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
}

/// The fault run: the target, started by the run, is killed mid-load and
/// started again. Calls cut off end UNAVAILABLE and are reported apart, the
/// run still passes, and every object in S3 is one whole upload, never part
/// of one.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the services binary: run `cargo xtask test`"]
async fn a_fault_run_restarts_the_target_and_leaves_no_partial_upload() {
    let store = support::s3().await;
    let method = method(&harness::descriptors::embedded(), "uploader.FileUploader", "Upload");
    let dir = tempfile::tempdir().unwrap();
    // Small uploads in one PUT, and uploads past the part size in several
    // parts, each under a key of its own.
    let part = conformance::context::DEFAULT_PART_SIZE;
    let mut expected = Vec::new();
    let mut lines = String::new();
    for (n, size) in [200_000, 300_000, 150_000, part + 70_000, part + 300_000].into_iter().enumerate() {
        let key = store.fresh_key("fault-run");
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + n * 13) as u8).collect();
        let requests: Vec<serde_json::Value> = data
            .chunks(256 * 1024)
            .map(|chunk| {
                let mut request = DynamicMessage::new(method.input());
                request.set_field_by_name("filename", Value::String(key.clone()));
                request.set_field_by_name("chunk", Value::Bytes(chunk.to_vec().into()));
                serde_json::to_value(&request).unwrap()
            })
            .collect();
        lines.push_str(&serde_json::to_string(&requests).unwrap());
        lines.push('\n');
        expected.push((key, conformance::s3::Stored::of(&data)));
    }
    let calls = dir.path().join("uploads.jsonl");
    std::fs::write(&calls, lines).unwrap();
    let services = support::services_binary();
    let command = format!(
        "{} serve --addr {{addr}} --no-inference --bucket {{s3_bucket}} --part-size {{part_size}}",
        services.display()
    );
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(["load", "--target-cmd", &command, "--call", "uploader.FileUploader/Upload"])
        .args(["--data-file", &calls.display().to_string(), "--rps", "6", "--duration", "4"])
        .args(["--restart-after", "1.5", "--out", &dir.path().display().to_string()])
        .envs(store.target_env())
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("fault: killed the target"), "{stdout}");
    assert!(stdout.contains("fault run: ") && stdout.contains("0 failed otherwise"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("load.json")).unwrap()).unwrap();
    let endings = json[0]["endings"].as_object().unwrap();
    assert!(endings.keys().all(|ending| ending == "OK" || ending == "Unavailable"), "{endings:?}");
    assert!(endings.get("OK").is_some_and(|ok| ok.as_u64() > Some(0)), "{endings:?}");
    for (key, whole) in expected {
        if let Some(stored) = store.read(&key).await.unwrap() {
            assert_eq!(stored, whole, "{key} holds part of an upload");
        }
    }
}

/// Paced streams stay open and talk: every request of a Chat stream is
/// answered, one response a request.
#[tokio::test(flavor = "multi_thread")]
async fn paced_streams_exchange_every_message() {
    let server = services::spawn(services::Config { inference: None, ..Default::default() }).await.unwrap();
    let channel = harness::connect(&server.url()).await.unwrap();
    let method = method(&harness::descriptors::embedded(), "coreservices.CoreServices", "Chat");
    let message = |text: &str| {
        let mut request = DynamicMessage::new(method.input());
        request.set_field_by_name("text", Value::String(text.to_owned()));
        request
    };
    let plan = Plan {
        message_interval: Duration::from_millis(20),
        ..Plan::new(
            method.clone(),
            vec![vec![message("um"), message("dois"), message("três")]],
            vec![Level::Concurrency(4)],
            Stop::Count(8),
        )
    };
    let levels = load::run(channel, &plan, |_, _| {}).await.unwrap();
    assert_eq!(levels[0].ok, 8, "{:?}", levels[0]);
    assert_eq!(levels[0].message_latency.unwrap().count, 24, "{:?}", levels[0]);
}
