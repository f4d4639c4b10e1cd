//! The dynamic caller and descriptor sources against our services,
//! over real loopback gRPC.

use std::time::Duration;

use bytes::Bytes;
use harness::{CallError, CallOptions, DynamicClient, descriptors, reflection};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, Value};
use tonic::{Code, metadata::MetadataValue};

/// Serves `router` on a free port; its URL.
async fn serve(router: tonic::transport::server::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)));
    url
}

async fn start() -> (services::RunningServer, DynamicClient, DescriptorPool) {
    let server = services::spawn(services::Config::default()).await.unwrap();
    let client = DynamicClient::connect(&server.url()).unwrap();
    (server, client, descriptors::embedded())
}

fn method(pool: &DescriptorPool, service: &str, name: &str) -> MethodDescriptor {
    pool.get_service_by_name(service).unwrap().methods().find(|m| m.name() == name).unwrap()
}

fn message(desc: prost_reflect::MessageDescriptor, fields: &[(&str, Value)]) -> DynamicMessage {
    let mut message = DynamicMessage::new(desc);
    for (name, value) in fields {
        message.set_field_by_name(name, value.clone());
    }
    message
}

fn field(message: &DynamicMessage, name: &str) -> Value {
    message.get_field_by_name(name).unwrap().into_owned()
}

#[tokio::test]
async fn reflection_v1_yields_every_contract() {
    let (server, _, _) = start().await;
    let reflected = reflection::fetch(harness::connect(&server.url()).await.unwrap()).await.unwrap();
    assert_eq!(reflected.version, reflection::Version::V1);
    for name in services::server::SERVICE_NAMES {
        assert!(reflected.services.iter().any(|s| s == name), "{name} not listed");
        assert!(reflected.pool.get_service_by_name(name).is_some(), "{name} not described");
    }
    // Comments travel with the descriptors.
    let cube = method(&reflected.pool, "calculator.Calculator", "Cube");
    let comments = cube.parent_file().file_descriptor_proto().source_code_info.clone().unwrap_or_default();
    assert!(comments.location.iter().any(|l| l.leading_comments().contains("OUT_OF_RANGE")));
}

/// Python grpcio serves only v1alpha: the client must fall back to it.
#[tokio::test]
async fn reflection_falls_back_to_v1alpha() {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(contracts::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .unwrap();
    let url = serve(tonic::transport::Server::builder().add_service(reflection)).await;
    let reflected = reflection::fetch(harness::connect(&url).await.unwrap()).await.unwrap();
    assert_eq!(reflected.version, reflection::Version::V1Alpha);
    assert!(reflected.pool.get_service_by_name("coreservices.CoreServices").is_some());
}

#[tokio::test]
async fn a_descriptor_set_file_loads_like_the_embedded_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contracts.protoset");
    std::fs::write(&path, contracts::FILE_DESCRIPTOR_SET).unwrap();
    let pool = descriptors::from_file(&path).unwrap();
    for name in services::server::SERVICE_NAMES {
        assert!(pool.get_service_by_name(name).is_some());
    }
    std::fs::write(&path, b"not a descriptor set").unwrap();
    let err = format!("{:#}", descriptors::from_file(&path).unwrap_err());
    assert!(err.contains("not a binary FileDescriptorSet"), "{err}");
    let err = format!("{:#}", descriptors::from_file(&dir.path().join("missing")).unwrap_err());
    assert!(err.contains("reading"), "{err}");
}

#[tokio::test]
async fn unary_with_metadata_headers_and_errors() {
    let (_server, mut client, pool) = start().await;
    let cube = method(&pool, "calculator.Calculator", "Cube");
    let mut options = CallOptions::default();
    options.metadata.insert("x-ascii", MetadataValue::from_static("hello"));
    options.metadata.insert_bin("x-trace-bin", MetadataValue::from_bytes(&[0, 159, 255]));
    let reply =
        client.unary(&cube, &message(cube.input(), &[("number", Value::I64(-4))]), &options).await.unwrap();
    assert_eq!(field(&reply.message, "result"), Value::I64(-64));
    assert_eq!(reply.headers.get("content-type").unwrap(), "application/grpc");

    let err = client
        .unary(&cube, &message(cube.input(), &[("number", Value::I64(1 << 30))]), &options)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::OutOfRange), "{err}");
}

#[tokio::test]
async fn server_streaming_collects_every_message() {
    let (_server, mut client, pool) = start().await;
    let stream_numbers = method(&pool, "streaming.NumberStreamer", "StreamNumbers");
    let request = message(stream_numbers.input(), &[("start", Value::I64(-2)), ("end", Value::I64(2))]);
    let stream = client.server_streaming(&stream_numbers, &request, &CallOptions::default()).await.unwrap();
    let (messages, end) = stream.collect().await;
    end.unwrap();
    let values: Vec<_> = messages.iter().map(|m| field(m, "value")).collect();
    assert_eq!(values, [-2, -1, 0, 1, 2].map(Value::I64));
}

#[tokio::test]
async fn the_server_deadline_is_distinct_from_the_watchdog() {
    let (_server, mut client, pool) = start().await;
    let stream_numbers = method(&pool, "coreservices.CoreServices", "StreamNumbers");
    let slow =
        message(stream_numbers.input(), &[("count", Value::U32(10)), ("interval_ms", Value::U32(60_000))]);

    // The server enforces the deadline it is told.
    let stream = client
        .server_streaming(&stream_numbers, &slow, &CallOptions::with_timeout(Duration::from_millis(20)))
        .await
        .unwrap();
    let (messages, end) = stream.collect().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(end.unwrap_err().code(), Some(Code::DeadlineExceeded));

    // Without a deadline, only the harness's watchdog ends the wait, and it
    // says so rather than inventing a status.
    let options = CallOptions { watchdog: Duration::from_millis(200), ..Default::default() };
    let (_, end) = client.server_streaming(&stream_numbers, &slow, &options).await.unwrap().collect().await;
    assert!(matches!(end, Err(CallError::NoAnswer { .. })), "{end:?}");
}

#[tokio::test]
async fn client_streaming_sends_every_message() {
    let (_server, mut client, pool) = start().await;
    let upload = method(&pool, "coreservices.CoreServices", "UploadNumbers");
    let numbers: Vec<_> =
        [5, -3, 9].iter().map(|&v| message(upload.input(), &[("value", Value::I64(v))])).collect();
    let reply = client.client_streaming(&upload, &numbers, &CallOptions::default()).await.unwrap();
    assert_eq!(field(&reply.message, "count"), Value::U64(3));
    assert_eq!(field(&reply.message, "sum"), Value::I64(11));
    let empty = client.client_streaming(&upload, &[], &CallOptions::default()).await.unwrap();
    assert_eq!(field(&empty.message, "count"), Value::U64(0));
}

#[tokio::test]
async fn bidi_works_in_lockstep_and_can_be_cancelled() {
    let (_server, client, pool) = start().await;
    let chat = method(&pool, "coreservices.CoreServices", "Chat");
    let mut call = client.bidi(&chat, &CallOptions::default());
    for (index, text) in ["um", "dois", "três"].into_iter().enumerate() {
        call.send(&message(chat.input(), &[("text", Value::String(text.into()))])).unwrap();
        let reply = call.message().await.unwrap().unwrap();
        assert_eq!(field(&reply, "text"), Value::String(text.into()));
        assert_eq!(field(&reply, "seq"), Value::U64(index as u64));
    }
    assert!(call.headers().is_some());
    call.close_send();
    assert!(call.message().await.unwrap().is_none());
    assert!(call.trailers().is_some());

    // Cancelled right after the first reply; the server keeps serving.
    let mut call = client.bidi(&chat, &CallOptions::default());
    call.send(&message(chat.input(), &[("text", Value::String("x".into()))])).unwrap();
    call.message().await.unwrap().unwrap();
    call.cancel();
    let mut again = client.bidi(&chat, &CallOptions::default());
    again.send(&message(chat.input(), &[])).unwrap();
    assert!(again.message().await.unwrap().is_some());
}

#[tokio::test]
async fn raw_bodies_reach_unknown_methods_and_invalid_protobuf_gets_a_status() {
    let (_server, mut client, pool) = start().await;
    let ping = method(&pool, "coreservices.CoreServices", "Ping");
    let options = CallOptions::default();
    let unknown = client.raw("/no.Such/Thing", vec![Bytes::new()], &options, ping.output()).await;
    let end = match unknown {
        Ok(stream) => stream.collect().await.1.map(|_| ()),
        Err(err) => Err(err),
    };
    assert_eq!(end.unwrap_err().code(), Some(Code::Unimplemented));

    // 0xFF is a field key with wire type 7: never valid protobuf.
    let garbage = Bytes::from_static(&[0xff, 0xff, 0xff]);
    let end =
        match client.raw("/coreservices.CoreServices/Ping", vec![garbage], &options, ping.output()).await {
            Ok(stream) => stream.collect().await.1.map(|_| ()),
            Err(err) => Err(err),
        };
    assert!(end.unwrap_err().status().is_some(), "invalid protobuf must end with a status");
}

#[tokio::test]
async fn a_response_of_the_wrong_type_is_a_decode_error() {
    let (_server, mut client, pool) = start().await;
    // Ask Ping, but decode the answer as a message whose field 1 is an int64:
    // the string "abc" on field 1 is a length-delimited value, not a varint.
    let ping = method(&pool, "coreservices.CoreServices", "Ping");
    let number = pool.get_message_by_name("coreservices.NumberMessage").unwrap();
    let request = message(ping.input(), &[("message", Value::String("abc".into()))]);
    let stream = client
        .raw(
            "/coreservices.CoreServices/Ping",
            vec![request.encode_to_vec().into()],
            &CallOptions::default(),
            number,
        )
        .await
        .unwrap();
    let (_, end) = stream.collect().await;
    assert!(matches!(end, Err(CallError::Decode { .. })), "{end:?}");
}

#[tokio::test]
async fn a_command_target_must_place_its_port() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("target.log");
    let err = harness::target::Target::command("sleep 100", Duration::from_secs(5), &log).await.unwrap_err();
    assert!(err.to_string().contains("{port}"), "{err}");
    let err =
        harness::target::Target::command("echo starting; exit 3 # {port}", Duration::from_secs(60), &log)
            .await
            .unwrap_err();
    assert!(err.to_string().contains("exited"), "{err}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "starting\n", "the command's output goes to the log");
}

#[test]
fn an_editions_descriptor_is_an_error_not_a_crash() {
    let file = prost_types::FileDescriptorProto {
        name: Some("new.proto".into()),
        syntax: Some("editions".into()),
        ..Default::default()
    };
    let set = prost_types::FileDescriptorSet { file: vec![file] };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("editions.binpb");
    std::fs::write(&path, set.encode_to_vec()).unwrap();
    let err = format!("{:#}", descriptors::from_file(&path).unwrap_err());
    assert!(err.contains("editions"), "{err}");
}

// --- extension options ---------------------------------------------------
//
// Extension options (a contract's `buf.validate` rules, or any custom
// option) survive every way descriptors reach the harness. Decoded through
// `prost_types`, they would be dropped without a word, and every rule with
// them.

/// Two files, so that reflection must fetch the one with the extension by
/// name, as an import.
const OPTIONS: &str = r#"
syntax = "proto3";
package rules.v1;
import "google/protobuf/descriptor.proto";
extend google.protobuf.FieldOptions {
  optional int64 at_most = 50001;
}
"#;

const BOUNDED: &str = r#"
syntax = "proto3";
package rules.v1;
import "rules/v1/options.proto";
message Bounded {
  int64 n = 1 [(rules.v1.at_most) = 10];
}
service Bounds {
  rpc Check(Bounded) returns (Bounded);
}
"#;

/// The contract above, compiled as `buf build` or `protoc
/// --descriptor_set_out --include_imports` would.
fn encoded_set() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules/v1")).unwrap();
    std::fs::write(dir.path().join("rules/v1/options.proto"), OPTIONS).unwrap();
    std::fs::write(dir.path().join("rules/v1/bounded.proto"), BOUNDED).unwrap();
    let mut compiler = protox::Compiler::new([dir.path()]).unwrap();
    compiler.include_imports(true);
    compiler.open_file("rules/v1/bounded.proto").unwrap();
    compiler.encode_file_descriptor_set()
}

/// The option on `Bounded.n`, read through `pool`'s own extension.
fn at_most(pool: &DescriptorPool) -> Option<Value> {
    let extension = pool.get_extension_by_name("rules.v1.at_most").expect("the extension is in the pool");
    let field = pool.get_message_by_name("rules.v1.Bounded").unwrap().get_field_by_name("n").unwrap();
    let options = field.options();
    options.has_extension(&extension).then(|| options.get_extension(&extension).into_owned())
}

#[test]
fn options_survive_a_descriptor_set_file() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), encoded_set()).unwrap();
    let pool = descriptors::from_file(file.path()).unwrap();
    assert_eq!(at_most(&pool), Some(Value::I64(10)));
}

#[tokio::test]
async fn options_survive_reflection() {
    let set: &'static [u8] = Box::leak(encoded_set().into_boxed_slice());
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(set)
        .build_v1()
        .unwrap();
    let url = serve(tonic::transport::Server::builder().add_service(reflection)).await;

    let reflected = reflection::fetch(harness::connect(&url).await.unwrap()).await.unwrap();
    assert!(reflected.services.iter().any(|name| name == "rules.v1.Bounds"), "{:?}", reflected.services);
    assert_eq!(at_most(&reflected.pool), Some(Value::I64(10)));
}

/// A status the server sent, even UNAVAILABLE, is an answer; a connection
/// that was refused or closed before any answer is a failure beneath gRPC.
#[tokio::test]
async fn unavailable_from_the_server_is_told_apart_from_a_failed_connection() {
    struct BackendDown;
    #[tonic::async_trait]
    impl contracts::calculator::calculator_server::Calculator for BackendDown {
        async fn cube(
            &self,
            _: tonic::Request<contracts::calculator::CubeRequest>,
        ) -> Result<tonic::Response<contracts::calculator::CubeResponse>, tonic::Status> {
            Err(tonic::Status::unavailable("the backend is down"))
        }
    }
    let pool = descriptors::embedded();
    let cube = method(&pool, "calculator.Calculator", "Cube");
    let request = DynamicMessage::new(cube.input());
    let options = CallOptions::default();

    let url = serve(
        tonic::transport::Server::builder()
            .add_service(contracts::calculator::calculator_server::CalculatorServer::new(BackendDown)),
    )
    .await;
    let err = DynamicClient::connect(&url).unwrap().unary(&cube, &request, &options).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::Unavailable), "{err}");
    assert!(!err.connection_failed(), "{err}");

    // Nothing listens on a port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let refused = format!("http://127.0.0.1:{port}");
    let err = DynamicClient::connect(&refused).unwrap().unary(&cube, &request, &options).await.unwrap_err();
    assert!(err.connection_failed(), "{err}");

    // A listener that closes every connection as soon as it accepts it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closing = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let err = DynamicClient::connect(&closing).unwrap().unary(&cube, &request, &options).await.unwrap_err();
    assert!(err.connection_failed(), "{err}");
}
