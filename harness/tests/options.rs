//! Extension options (a contract's `buf.validate` rules, or any custom
//! option) survive every way descriptors reach the harness: a descriptor-set
//! file and server reflection. Decoded through `prost_types`, they would be
//! dropped without a word, and every rule with them.

use harness::{descriptors, reflection};
use prost_reflect::{DescriptorPool, Value};

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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(reflection)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let reflected = reflection::fetch(harness::connect(&url).await.unwrap()).await.unwrap();
    assert!(reflected.services.iter().any(|name| name == "rules.v1.Bounds"), "{:?}", reflected.services);
    assert_eq!(at_most(&reflected.pool), Some(Value::I64(10)));
}
