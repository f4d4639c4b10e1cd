//! A contract's `buf.validate` rules, read from its descriptors: inputs
//! drawn within them keep them, the bounds they state are drawn, values
//! just outside break exactly the rule they aim at, and a rule that cannot
//! be evaluated is the contract's error, not the message's.

use harness::{
    arbitrary::Generator,
    rules::{self, Rules, generate},
};
use proptest::{
    strategy::{Strategy, ValueTree},
    test_runner::TestRunner,
};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};

const ORDERS: &str = r#"
syntax = "proto3";
package test.v1;
import "buf/validate/validate.proto";

enum Kind {
  KIND_UNSPECIFIED = 0;
  KIND_RETAIL = 1;
  KIND_WHOLESALE = 2;
}

message Order {
  int32 quantity = 1 [(buf.validate.field).int32 = {gte: 1, lte: 100}];
  uint64 id = 2 [(buf.validate.field).uint64.gt = 1000];
  sint64 delta = 3 [(buf.validate.field).sint64 = {in: [-5, 0, 5]}];
  string sku = 4 [(buf.validate.field).string.pattern = "^[A-Z]{3}-[0-9]{4}$"];
  string code = 5 [(buf.validate.field).string = {min_len: 2, max_len: 4}];
  string reference = 6 [(buf.validate.field).string = {prefix: "ord-", suffix: ".v1"}];
  string email = 7 [(buf.validate.field).string.email = true];
  string host = 8 [(buf.validate.field).string.hostname = true];
  string address = 9 [(buf.validate.field).string.ipv4 = true];
  string token = 10 [(buf.validate.field).string.uuid = true];
  bytes tag = 11 [(buf.validate.field).bytes.len = 4];
  Kind kind = 12 [(buf.validate.field).enum.defined_only = true];
  Note note = 13 [(buf.validate.field).required = true];
  repeated int32 sizes = 14 [(buf.validate.field).repeated = {
    min_items: 2
    max_items: 6
    items: {int32: {gte: 10, lte: 20}}
  }];
  map<string, uint32> stock = 15 [(buf.validate.field).map = {
    min_pairs: 1
    values: {uint32: {lte: 9}}
  }];
  oneof payment {
    option (buf.validate.oneof).required = true;
    string card = 16;
    string invoice = 17;
  }
}

message Note {
  string text = 1;
}

message Plain {
  int32 n = 1;
}

message Broken {
  option (buf.validate.message).cel = {id: "nonsense", expression: "this.n + 'text'"};
  int32 n = 1;
}
"#;

/// The pool of `ORDERS`, with `validate.proto` taken from the contracts'
/// descriptor set, which carries it with its options.
fn pool() -> DescriptorPool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("test/v1")).unwrap();
    std::fs::write(dir.path().join("test/v1/orders.proto"), ORDERS).unwrap();
    let mut resolver = protox::file::ChainFileResolver::new();
    resolver.add(protox::file::IncludeFileResolver::new(dir.path().to_owned()));
    resolver.add(protox::file::DescriptorSetFileResolver::decode(contracts::FILE_DESCRIPTOR_SET).unwrap());
    resolver.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler.open_file("test/v1/orders.proto").unwrap();
    DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).unwrap()
}

fn message(pool: &DescriptorPool, name: &str) -> MessageDescriptor {
    pool.get_message_by_name(&format!("test.v1.{name}")).unwrap()
}

fn draw(strategy: impl Strategy<Value = DynamicMessage>, n: usize) -> Vec<DynamicMessage> {
    let mut runner = TestRunner::deterministic();
    (0..n).map(|_| strategy.new_tree(&mut runner).unwrap().current()).collect()
}

#[test]
fn inputs_drawn_within_the_rules_keep_them() {
    let pool = pool();
    let order = message(&pool, "Order");
    let rules = Rules::default();
    for drawn in draw(generate::within_rules(Generator::new(), &order).message(&order), 300) {
        let broken = rules.check(&drawn).unwrap();
        assert!(broken.is_empty(), "{broken:?} in {drawn:?}");
    }
}

#[test]
fn the_bounds_a_rule_states_are_drawn() {
    let pool = pool();
    let order = message(&pool, "Order");
    let quantities: Vec<Value> = draw(generate::within_rules(Generator::new(), &order).message(&order), 300)
        .iter()
        .map(|m| m.get_field_by_name("quantity").unwrap().into_owned())
        .collect();
    for bound in [1, 2, 99, 100] {
        assert!(quantities.contains(&Value::I32(bound)), "{bound} never drawn");
    }
}

#[test]
fn values_just_outside_break_exactly_the_rule_they_aim_at() {
    let pool = pool();
    let order = message(&pool, "Order");
    let rules = Rules::default();
    let valid = draw(generate::within_rules(Generator::new(), &order).message(&order), 1).remove(0);
    let breakers = generate::breakers(&order);
    let fields: Vec<&str> = breakers.iter().map(|(field, _)| field.name()).collect();
    for name in ["quantity", "id", "delta", "code", "tag", "kind"] {
        assert!(fields.contains(&name), "no breaker for {name}: {fields:?}");
    }
    for (field, value) in breakers {
        let mut message = valid.clone();
        message.set_field(&field, value.clone());
        let broken = rules.check(&message).unwrap();
        assert_eq!(broken.len(), 1, "{value:?} in {}: {broken:?}", field.name());
        assert_eq!(broken[0].field_path, field.name());
    }
}

#[test]
fn which_messages_carry_rules() {
    let pool = pool();
    assert!(rules::has_rules(&message(&pool, "Order")));
    assert!(rules::has_rules(&message(&pool, "Broken")));
    assert!(!rules::has_rules(&message(&pool, "Plain")));
    assert!(!rules::has_rules(&message(&pool, "Note")));
}

#[test]
fn a_rule_that_cannot_be_evaluated_is_the_contracts_error() {
    let pool = pool();
    let broken = DynamicMessage::new(message(&pool, "Broken"));
    let error = Rules::default().check(&broken).unwrap_err();
    assert!(error.contains("test.v1.Broken"), "{error}");
}

#[test]
fn the_numbers_an_expression_names() {
    let sources = ["request.number >= -2097151 && request.number <= 2097151", "size(x) < 10u"];
    assert_eq!(rules::literals(sources), [10, 2097151]);
    let pool = DescriptorPool::decode(contracts::FILE_DESCRIPTOR_SET).unwrap();
    let range = pool.get_message_by_name("streaming.StreamRequest").unwrap();
    assert!(rules::literals(rules::cel_expressions(&range).iter().map(String::as_str)).contains(&999999));
}
