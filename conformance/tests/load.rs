//! The load engine on our services: every RPC pattern, counted to the call,
//! with per-message latency for streams and every ending by status.

mod support;

use std::time::Duration;

use conformance::load::{self, Plan, Stop};
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
        let plan = Plan {
            method: method.clone(),
            calls,
            levels: vec![1, 4],
            stop: Stop::Count(40),
            timeout: Duration::from_secs(10),
        };
        let levels = load::run(channel.clone(), &plan, |_, _| {}).await.unwrap();
        assert_eq!(levels.len(), 2);
        for level in &levels {
            assert_eq!(level.calls, 40, "{service}/{name}: {level:?}");
            // Drawn inside the rules; Cube's range is an expectation, not a
            // rule, so some of its calls are rightly OUT_OF_RANGE.
            assert!(level.ok > 0, "{service}/{name}: {level:?}");
            assert!(
                level.endings.keys().all(|ending| ending == "OK" || ending == "OutOfRange"),
                "{service}/{name}: {level:?}"
            );
            assert_eq!(level.call_latency.unwrap().count, 40);
            if method.is_server_streaming() {
                assert!(level.message_latency.is_some(), "{service}/{name}");
            }
        }
        let table = load::table(&levels);
        assert!(table.contains("OK "), "{table}");
        assert_eq!(load::csv(&levels).lines().count(), 3);
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
    let plan = Plan {
        method: method.clone(),
        calls,
        levels: vec![1],
        stop: Stop::Count(30),
        timeout: Duration::from_secs(10),
    };
    let levels = load::run(channel, &plan, |_, _| {}).await.unwrap();
    assert_eq!(levels[0].endings.get("OK"), Some(&20), "{:?}", levels[0].endings);
    assert_eq!(levels[0].endings.get("OutOfRange"), Some(&10), "{:?}", levels[0].endings);
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
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("load.json")).unwrap()).unwrap();
    assert_eq!(json[0]["calls"], 20);

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
    ] {
        let (code, stdout, stderr) = support::conformance_binary(&[&base[..], &args[..]].concat()).await;
        assert_eq!(code, Some(2), "{args:?}: {stdout}\n{stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
}
