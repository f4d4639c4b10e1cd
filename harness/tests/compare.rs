//! The comparator's policy and its text rendering, on the kitchen-sink schema.

mod support;

use harness::{
    compare::{Difference, diff, semantically_equal},
    text::{AsText, to_text},
};
use prost::Message;
use prost_reflect::{DynamicMessage, Value};
use support::{descriptor, parse};

fn difference(path: &str, expected: &str, actual: &str) -> Option<Difference> {
    Some(Difference { path: path.to_owned(), expected: expected.to_owned(), actual: actual.to_owned() })
}

fn with_field(full_name: &str, field: &str, value: Value) -> DynamicMessage {
    let mut message = DynamicMessage::new(descriptor(full_name));
    message.set_field_by_name(field, value);
    message
}

#[test]
fn positive_and_negative_zero_are_equal() {
    for (field, zero, negative_zero) in
        [("f_double", Value::F64(0.0), Value::F64(-0.0)), ("f_float", Value::F32(0.0), Value::F32(-0.0))]
    {
        let unset = DynamicMessage::new(descriptor("kitchen.Scalars"));
        let positive = with_field("kitchen.Scalars", field, zero);
        let negative = with_field("kitchen.Scalars", field, negative_zero);
        assert!(semantically_equal(&positive, &negative), "{field}");
        assert!(semantically_equal(&unset, &negative), "{field}");
    }
    // Explicit presence: both present, so only the values are compared.
    let positive = with_field("kitchen.Everything", "opt_double", Value::F64(0.0));
    let negative = with_field("kitchen.Everything", "opt_double", Value::F64(-0.0));
    assert_eq!(diff(&positive, &negative), None);
}

#[test]
fn nans_are_equal_whatever_their_bits() {
    let nans =
        [f64::NAN, -f64::NAN, f64::from_bits(0x7ff8_0000_0000_0001), f64::from_bits(0xfff0_0000_dead_beef)];
    for a in nans {
        for b in nans {
            let a = with_field("kitchen.Scalars", "f_double", Value::F64(a));
            let b = with_field("kitchen.Scalars", "f_double", Value::F64(b));
            assert!(semantically_equal(&a, &b));
        }
    }
    let nan = with_field("kitchen.Scalars", "f_float", Value::F32(f32::from_bits(0x7fc0_0001)));
    let one = with_field("kitchen.Scalars", "f_float", Value::F32(1.0));
    assert_eq!(diff(&nan, &one), difference("f_float", "nan", "1.0"));
    let infinity = with_field("kitchen.Scalars", "f_double", Value::F64(f64::INFINITY));
    let negative_infinity = with_field("kitchen.Scalars", "f_double", Value::F64(f64::NEG_INFINITY));
    assert_eq!(diff(&infinity, &negative_infinity), difference("f_double", "inf", "-inf"));
}

#[test]
fn unset_implicit_fields_equal_their_defaults() {
    let unset = DynamicMessage::new(descriptor("kitchen.Scalars"));
    let mut defaults = unset.clone();
    for field in descriptor("kitchen.Scalars").fields() {
        defaults.set_field(&field, field.default_value());
    }
    assert!(semantically_equal(&unset, &defaults));
    assert!(semantically_equal(&defaults, &unset));

    let seven = with_field("kitchen.Scalars", "f_sint64", Value::I64(7));
    assert_eq!(diff(&unset, &seven), difference("f_sint64", "0", "7"));
    let empty_list = with_field("kitchen.Everything", "strings", Value::List(Vec::new()));
    assert!(semantically_equal(&empty_list, &DynamicMessage::new(descriptor("kitchen.Everything"))));
}

#[test]
fn explicit_presence_tells_absent_from_default() {
    let everything = DynamicMessage::new(descriptor("kitchen.Everything"));
    let zero = with_field("kitchen.Everything", "opt_int32", Value::I32(0));
    assert_eq!(diff(&everything, &zero), difference("opt_int32", "<unset>", "0"));
    assert_eq!(diff(&zero, &everything), difference("opt_int32", "0", "<unset>"));

    let empty_inner = parse("kitchen.Everything", "inner {}");
    assert_eq!(diff(&everything, &empty_inner), difference("inner", "<unset>", "{}"));

    // A oneof member set to its default is still a choice.
    let choice = parse("kitchen.Everything", "choice_int: 0");
    assert_eq!(diff(&everything, &choice), difference("choice_int", "<unset>", "0"));
    let other_choice = parse("kitchen.Everything", r#"choice_text: "0""#);
    assert_eq!(diff(&choice, &other_choice), difference("choice_int", "0", "<unset>"));

    // proto2: absent is not the same as set to the declared default.
    let legacy = parse("kitchen.legacy.Legacy", "id: 1");
    let with_default = parse("kitchen.legacy.Legacy", "id: 1 count: 7");
    assert_eq!(diff(&legacy, &with_default), difference("count", "<unset>", "7"));
    let level = parse("kitchen.legacy.Legacy", "id: 1 opt_level: LEVEL_HIGH");
    assert_eq!(diff(&level, &legacy), difference("opt_level", "LEVEL_HIGH", "<unset>"));
}

#[test]
fn map_entry_order_does_not_matter() {
    let forwards = parse(
        "kitchen.Everything",
        r#"by_int32 { key: 1 value: "a" } by_int32 { key: 2 value: "b" } by_bool { key: true value: "t" }
           by_bool { key: false value: "f" } by_string { key: "x" value { f_int32: 1 } } by_string { key: "y" }"#,
    );
    let backwards = parse(
        "kitchen.Everything",
        r#"by_string { key: "y" } by_string { key: "x" value { f_int32: 1 } } by_bool { key: false value: "f" }
           by_bool { key: true value: "t" } by_int32 { key: 2 value: "b" } by_int32 { key: 1 value: "a" }"#,
    );
    assert_eq!(diff(&forwards, &backwards), None);
    // On the wire too: the encodings differ, the meaning does not.
    let decoded =
        DynamicMessage::decode(descriptor("kitchen.Everything"), backwards.encode_to_vec().as_slice())
            .unwrap();
    assert!(semantically_equal(&forwards, &decoded));

    let missing = parse("kitchen.Everything", r#"by_int32 { key: 1 value: "a" }"#);
    assert_eq!(diff(&missing, &forwards), difference("by_int32[2]", "<missing>", r#""b""#));
}

#[test]
fn repeated_fields_compare_in_order() {
    let one_two = parse("kitchen.Everything", "packed_int32: [1, 2]");
    let two_one = parse("kitchen.Everything", "packed_int32: [2, 1]");
    assert_eq!(diff(&one_two, &two_one), difference("packed_int32[0]", "1", "2"));
    let one = parse("kitchen.Everything", "packed_int32: 1");
    assert_eq!(diff(&one_two, &one), difference("packed_int32[1]", "2", "<missing>"));
    assert_eq!(diff(&one, &one_two), difference("packed_int32[1]", "<missing>", "2"));
}

#[test]
fn differences_name_nested_repeated_and_map_paths() {
    let expected = parse(
        "kitchen.Everything",
        r#"inner { name: "a" weight: 1 }
           items { name: "first" } items { name: "second" } items { name: "third" }
           by_string { key: "k" value { f_int32: 1 } }
           node { children {} children { by_name { key: "x" value { value: 5 } } } }"#,
    );

    let mut actual = expected.clone();
    actual
        .get_field_by_name_mut("inner")
        .unwrap()
        .as_message_mut()
        .unwrap()
        .set_field_by_name("weight", Value::I64(2));
    assert_eq!(diff(&expected, &actual), difference("inner.weight", "1", "2"));

    let mut actual = expected.clone();
    actual.get_field_by_name_mut("items").unwrap().as_list_mut().unwrap()[2]
        .as_message_mut()
        .unwrap()
        .set_field_by_name("name", Value::String("3rd".to_owned()));
    assert_eq!(diff(&expected, &actual), difference("items[2].name", r#""third""#, r#""3rd""#));

    let changed_map =
        parse("kitchen.Everything", &to_text(&expected).replace("f_int32: 1", "f_int32: 1\n f_bool: true"));
    assert_eq!(diff(&expected, &changed_map), difference(r#"by_string["k"].f_bool"#, "false", "true"));

    let deep = parse("kitchen.Everything", &to_text(&expected).replace("value: 5", "value: 6"));
    assert_eq!(diff(&expected, &deep), difference(r#"node.children[1].by_name["x"].value"#, "5", "6"));
}

#[test]
fn messages_of_different_types_differ_at_the_root() {
    let scalars = DynamicMessage::new(descriptor("kitchen.Scalars"));
    let node = DynamicMessage::new(descriptor("kitchen.Node"));
    assert_eq!(diff(&scalars, &node), difference("", "a kitchen.Scalars message", "a kitchen.Node message"));
    assert_eq!(
        diff(&scalars, &node).unwrap().to_string(),
        "the message: expected a kitchen.Scalars message, got a kitchen.Node message"
    );
}

#[test]
fn recursive_types_do_not_overflow() {
    // Absent fields are never descended into, so empty self-recursive
    // messages compare in constant stack.
    let empty = DynamicMessage::new(descriptor("kitchen.Node"));
    assert!(semantically_equal(&empty, &empty.clone()));

    let chain = |depth: usize, bottom: i32| {
        parse("kitchen.Node", &format!("{}value: {bottom}{}", "next { ".repeat(depth), " }".repeat(depth)))
    };
    assert!(semantically_equal(&chain(60, 1), &chain(60, 1)));
    let path = format!("{}value", "next.".repeat(60));
    assert_eq!(diff(&chain(60, 1), &chain(60, 2)), difference(&path, "1", "2"));
    assert_eq!(diff(&chain(3, 1), &chain(4, 1)), difference("next.next.next.value", "1", "0"));
    assert!(to_text(&chain(60, 1)).lines().count() > 100);
}

#[test]
fn unknown_fields_are_ignored() {
    let known = parse("kitchen.Scalars", "f_int32: 5");
    let mut bytes = known.encode_to_vec();
    bytes.extend_from_slice(&[0xf8, 0x06, 0x01]); // field 111, varint 1
    let with_unknown = DynamicMessage::decode(descriptor("kitchen.Scalars"), bytes.as_slice()).unwrap();
    assert_eq!(with_unknown.unknown_fields().count(), 1);
    assert!(semantically_equal(&known, &with_unknown));
    assert_eq!(to_text(&with_unknown), "f_int32: 5");
}

#[test]
fn text_is_multiline_sorted_and_parses_back() {
    let mut message = parse(
        "kitchen.Everything",
        r#"scalars { f_string: "tab\there \"q\" é\u0301\u202e" f_bytes: "\000\377a1" f_color: COLOR_RED f_double: -0.0 }
           by_int32 { key: 2 value: "b" } by_int32 { key: -1 value: "a" }
           packed_color: [COLOR_INFRARED, 42]
           opt_double: -0.0
           opt_float: inf
           by_uint64 { key: 1 value: nan }
           by_string { key: "s" }
           choice_inner {}"#,
    );
    message.set_field_by_name(
        "packed_double",
        Value::List(vec![Value::F64(1e300), Value::F64(f64::from_bits(1))]),
    );
    let text = to_text(&message);
    let expected = r#"scalars {
  f_string: "tab\there \"q\" é\u0301\u202e"
  f_bytes: "\000\377a1"
  f_color: COLOR_RED
}
packed_double: 1e300
packed_double: 5e-324
packed_color: COLOR_INFRARED
packed_color: 42
by_int32 {
  key: -1
  value: "a"
}
by_int32 {
  key: 2
  value: "b"
}
by_uint64 {
  key: 1
  value: nan
}
by_string {
  key: "s"
  value {}
}
choice_inner {}
opt_double: -0.0
opt_float: inf"#;
    assert_eq!(text, expected);

    let parsed = parse("kitchen.Everything", &text);
    assert_eq!(diff(&message, &parsed), None);
    assert_eq!(to_text(&parsed), text);
    assert_eq!(to_text(&DynamicMessage::new(descriptor("kitchen.Everything"))), "");
}

#[test]
fn as_text_debugs_as_text_format() {
    let message = parse("kitchen.Node", "value: 1 next { value: 2 }");
    assert_eq!(
        format!("{:?}", AsText(message.clone())),
        "kitchen.Node {\n  value: 1\n  next {\n    value: 2\n  }\n}"
    );
    let stream = AsText(vec![message, DynamicMessage::new(descriptor("kitchen.Node"))]);
    assert_eq!(
        format!("{stream:?}"),
        "2 messages\n[0] kitchen.Node {\n  value: 1\n  next {\n    value: 2\n  }\n}\n[1] kitchen.Node {}"
    );
}

/// Reflection and a compiled-in contract give two pools with the same
/// types; messages from them compare by field number, and a field only one
/// schema knows counts as unset on the other side.
#[test]
fn types_from_different_pools_compare_by_field_number() {
    let mut files = support::pool().file_descriptor_protos().cloned().collect::<Vec<_>>();
    let sink = files.iter_mut().find(|file| file.name() == "kitchen/sink.proto").unwrap();
    let scalars = sink.message_type.iter_mut().find(|message| message.name() == "Scalars").unwrap();
    scalars.field.retain(|field| field.name() != "f_int32");
    let older = prost_reflect::DescriptorPool::from_file_descriptor_set(prost_types::FileDescriptorSet {
        file: files,
    })
    .unwrap()
    .get_message_by_name("kitchen.Scalars")
    .unwrap();

    let current = parse("kitchen.Scalars", r#"f_string: "x" f_int32: 5"#);
    let from_older = DynamicMessage::decode(older.clone(), current.encode_to_vec().as_slice()).unwrap();
    assert_eq!(diff(&current, &from_older), difference("f_int32", "5", "0"));

    let mut same = DynamicMessage::new(older);
    same.set_field_by_name("f_string", Value::String("x".to_owned()));
    assert_eq!(diff(&parse("kitchen.Scalars", r#"f_string: "x""#), &same), None);
}
