//! Properties of generated messages, over every feature of the kitchen-sink schema.

mod support;

use std::collections::{BTreeSet, HashSet};

use harness::{
    arbitrary::Generator,
    compare::{diff, semantically_equal},
    text::{AsText, to_text},
};
use proptest::{
    prelude::*,
    strategy::{Union, ValueTree},
    test_runner::{Config, FileFailurePersistence, TestError, TestRunner},
};
use prost::Message;
use prost_reflect::{DynamicMessage, Kind, ReflectMessage, Syntax, Value};
use support::{descriptor, parse, pool};

fn config(cases: u32) -> Config {
    Config {
        cases,
        max_shrink_iters: 10_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    }
}

/// Messages of every type the kitchen sink declares (the well-known types
/// come in through `kitchen.Everything`).
fn any_kitchen_message() -> impl Strategy<Value = AsText<DynamicMessage>> {
    let generator = Generator::new();
    let types: Vec<_> = pool()
        .all_messages()
        .filter(|desc| desc.package_name().starts_with("kitchen") && !desc.is_map_entry())
        .map(|desc| generator.message(&desc))
        .collect();
    assert!(types.len() >= 6);
    Union::new(types).prop_map(AsText)
}

fn everything() -> impl Strategy<Value = AsText<DynamicMessage>> {
    Generator::new().message(&descriptor("kitchen.Everything")).prop_map(AsText)
}

fn legacy() -> impl Strategy<Value = AsText<DynamicMessage>> {
    Generator::new().message(&descriptor("kitchen.legacy.Legacy")).prop_map(AsText)
}

/// Calls `visit` on `message` and on every message nested in it, however
/// reached: singular fields, list elements, map values.
fn walk(message: &DynamicMessage, visit: &mut impl FnMut(&DynamicMessage)) {
    visit(message);
    for (_, value) in message.fields() {
        for nested in messages_in(value) {
            walk(nested, visit);
        }
    }
}

fn messages_in(value: &Value) -> Vec<&DynamicMessage> {
    match value {
        Value::Message(message) => vec![message],
        Value::List(items) => items.iter().flat_map(messages_in).collect(),
        Value::Map(entries) => entries.values().flat_map(messages_in).collect(),
        _ => Vec::new(),
    }
}

/// How many levels of messages sit below `message`.
fn depth(message: &DynamicMessage) -> u32 {
    message
        .fields()
        .flat_map(|(_, value)| messages_in(value))
        .map(|nested| depth(nested) + 1)
        .max()
        .unwrap_or(0)
}

/// Every value of a field, whatever its cardinality: the value itself, a
/// list's elements, or a map's values.
fn values_of(value: &Value) -> Vec<&Value> {
    match value {
        Value::List(items) => items.iter().collect(),
        Value::Map(entries) => entries.values().collect(),
        value => vec![value],
    }
}

fn sample(strategy: &impl Strategy<Value = DynamicMessage>, count: usize) -> Vec<DynamicMessage> {
    let mut runner = TestRunner::deterministic();
    (0..count).map(|_| strategy.new_tree(&mut runner).unwrap().current()).collect()
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn encodes_and_decodes_to_an_equal_message(message in any_kitchen_message()) {
        let message = message.0;
        let bytes = message.encode_to_vec();
        let decoded = DynamicMessage::decode(message.descriptor(), bytes.as_slice());
        prop_assert!(decoded.is_ok(), "does not decode: {:?}", decoded.err());
        let decoded = decoded.unwrap();
        if let Some(difference) = diff(&message, &decoded) {
            prop_assert!(false, "changed by the round trip: {difference}\ndecoded:\n{}", to_text(&decoded));
        }
    }

    #[test]
    fn generated_messages_equal_themselves(message in any_kitchen_message()) {
        prop_assert!(semantically_equal(&message.0, &message.0));
        prop_assert!(semantically_equal(&message.0, &message.0.clone()));
    }

    #[test]
    fn text_parses_back_to_an_equal_message(message in any_kitchen_message()) {
        let text = to_text(&message.0);
        let parsed = DynamicMessage::parse_text_format(message.0.descriptor(), &text);
        prop_assert!(parsed.is_ok(), "does not parse: {:?}\n{text}", parsed.err());
        let parsed = parsed.unwrap();
        prop_assert_eq!(diff(&message.0, &parsed), None);
    }

    #[test]
    fn oneofs_never_have_two_members_set(message in everything()) {
        let decoded = DynamicMessage::decode(message.0.descriptor(), message.0.encode_to_vec().as_slice()).unwrap();
        for message in [&message.0, &decoded] {
            let mut violations = Vec::new();
            walk(message, &mut |nested| {
                for oneof in nested.descriptor().oneofs() {
                    let set = oneof.fields().filter(|field| nested.has_field(field)).count();
                    if set > 1 {
                        violations.push(oneof.full_name().to_owned());
                    }
                }
            });
            prop_assert!(violations.is_empty(), "{violations:?}");
        }
    }

    #[test]
    fn required_fields_are_always_set(message in legacy()) {
        let mut unset = Vec::new();
        walk(&message.0, &mut |nested| {
            for field in nested.descriptor().fields().filter(|field| field.is_required()) {
                if !nested.has_field(&field) {
                    unset.push(field.full_name().to_owned());
                }
            }
        });
        prop_assert!(unset.is_empty(), "{unset:?}");
    }

    #[test]
    fn closed_enums_take_only_declared_values(message in legacy()) {
        let mut undeclared = Vec::new();
        walk(&message.0, &mut |nested| {
            for (field, value) in nested.fields() {
                let kind = match field.kind() {
                    Kind::Message(entry) if field.is_map() => entry.map_entry_value_field().kind(),
                    kind => kind,
                };
                let Kind::Enum(desc) = kind else { continue };
                assert_eq!(desc.parent_file().syntax(), Syntax::Proto2);
                for value in values_of(value) {
                    let number = value.as_enum_number().unwrap();
                    if desc.get_value(number).is_none() {
                        undeclared.push((field.full_name().to_owned(), number));
                    }
                }
            }
        });
        prop_assert!(undeclared.is_empty(), "{undeclared:?}");
    }

    #[test]
    fn depth_bound_holds_on_recursive_types(
        (bound, node) in (0u32..=4).prop_flat_map(|bound| {
            let generator = Generator::new().max_depth(bound);
            (Just(bound), generator.message(&descriptor("kitchen.Node")).prop_map(AsText))
        })
    ) {
        prop_assert!(depth(&node.0) <= bound, "depth {} over {bound}", depth(&node.0));
    }

    #[test]
    fn overrides_are_honoured(message in Generator::new()
        .override_field("kitchen.Scalars.f_int64", || (-2_097_151i64..=2_097_151).prop_map(Value::I64))
        .override_field("kitchen.Everything.packed_int64", || (0i64..=9).prop_map(Value::I64))
        .override_field("kitchen.Everything.by_fixed64", || Just(Value::I64(-7)))
        .override_field("kitchen.Everything.choice_text", || Just(Value::String("chosen".to_owned())))
        .message(&descriptor("kitchen.Everything"))
        .prop_map(AsText))
    {
        let mut outside = Vec::new();
        walk(&message.0, &mut |nested| {
            for (field, value) in nested.fields() {
                let ok = values_of(value).into_iter().all(|value| match field.full_name() {
                    "kitchen.Scalars.f_int64" => (-2_097_151..=2_097_151).contains(&value.as_i64().unwrap()),
                    "kitchen.Everything.packed_int64" => (0..=9).contains(&value.as_i64().unwrap()),
                    "kitchen.Everything.by_fixed64" => value.as_i64() == Some(-7),
                    "kitchen.Everything.choice_text" => value.as_str() == Some("chosen"),
                    _ => true,
                });
                if !ok {
                    outside.push(field.full_name().to_owned());
                }
            }
        });
        prop_assert!(outside.is_empty(), "{outside:?}");
    }

    #[test]
    fn streams_respect_their_length_range(
        (range, stream) in (0usize..=3, 0usize..=3).prop_flat_map(|(min, extra)| {
            let range = min..=min + extra;
            (Just(range.clone()), Generator::new().stream(&descriptor("kitchen.Node"), range).prop_map(AsText))
        })
    ) {
        prop_assert!(range.contains(&stream.0.len()), "{} messages, outside {range:?}", stream.0.len());
        prop_assert!(stream.0.iter().all(|message| message.descriptor().full_name() == "kitchen.Node"));
    }
}

#[test]
fn generator_is_clone_send_sync_and_debug() {
    fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug + Default>() {}
    assert_traits::<Generator>();
    let generator = Generator::new()
        .max_depth(2)
        .max_repeated(1)
        .override_field("b.B.b", || Just(Value::Bool(true)))
        .override_field("a.A.a", || Just(Value::Bool(false)));
    let debug = format!("{:?}", generator.clone());
    assert_eq!(
        debug,
        r#"Generator { max_depth: 2, sizes: Sizes { max_string_len: 65536, max_bytes_len: 65536, max_repeated: 1, max_stream_len: 256, max_message_bytes: 1048576 }, overrides: ["a.A.a", "b.B.b"] }"#
    );
}

/// Over a fixed sample, every feature the schema offers shows up: each
/// field set, each oneof both unset and set, explicit-presence fields absent,
/// present with their default and present otherwise, the awkward floats,
/// unknown enum numbers, empty and full collections, and the depth bound.
#[test]
fn a_sample_covers_every_feature() {
    let desc = descriptor("kitchen.Everything");
    let messages = sample(&Generator::new().message(&desc), 400);

    let mut seen = HashSet::new();
    for message in &messages {
        walk(message, &mut |nested| {
            let desc = nested.descriptor();
            for field in desc.fields() {
                let name = field.full_name();
                if !nested.has_field(&field) {
                    seen.insert(format!("{name} unset"));
                    continue;
                }
                seen.insert(format!("{name} set"));
                let value = nested.get_field(&field);
                if field.supports_presence() && value.as_ref() == &field.default_value() {
                    seen.insert(format!("{name} set to default"));
                }
                if let Some(items) = value.as_list() {
                    seen.insert(format!("{name} {} elements", items.len()));
                }
                if let Some(entries) = value.as_map() {
                    seen.insert(format!("{name} {} entries", entries.len()));
                }
                for value in values_of(&value) {
                    match value {
                        Value::F64(x) if x.is_nan() => seen.insert("nan".to_owned()),
                        Value::F64(x) if x.is_infinite() => seen.insert(format!("{x}")),
                        Value::F64(x) if *x == 0.0 && x.is_sign_negative() => seen.insert("-0".to_owned()),
                        Value::F64(x) if x.is_subnormal() => seen.insert("subnormal".to_owned()),
                        Value::F32(x) if x.is_nan() => seen.insert("f32 nan".to_owned()),
                        Value::F32(x) if x.is_subnormal() => seen.insert("f32 subnormal".to_owned()),
                        Value::I64(i64::MIN) | Value::I32(i32::MIN) => seen.insert("min".to_owned()),
                        Value::U64(u64::MAX) | Value::U32(u32::MAX) => seen.insert("max".to_owned()),
                        Value::String(s) if s.is_empty() => seen.insert("empty string".to_owned()),
                        Value::String(s) if !s.is_ascii() => seen.insert("unicode".to_owned()),
                        Value::Bytes(b) if b.is_empty() => seen.insert("empty bytes".to_owned()),
                        Value::EnumNumber(n) if matches!(field.kind(), Kind::Enum(e) if e.get_value(*n).is_none()) => {
                            seen.insert("unknown enum".to_owned())
                        }
                        _ => false,
                    };
                }
            }
            for oneof in desc.oneofs().filter(|oneof| !oneof.is_synthetic()) {
                if oneof.fields().all(|field| !nested.has_field(&field)) {
                    seen.insert(format!("{} none", oneof.full_name()));
                }
            }
        });
        seen.insert(format!("depth {}", depth(message)));
    }

    let mut missing = BTreeSet::new();
    for field in desc.fields() {
        let name = field.full_name();
        missing.insert(format!("{name} set"));
        if field.supports_presence() {
            missing.insert(format!("{name} unset"));
        }
        if field.supports_presence() && !matches!(field.kind(), Kind::Message(_)) {
            missing.insert(format!("{name} set to default"));
        }
        if field.is_list() {
            missing.insert(format!("{name} 4 elements"));
        }
        if field.is_map() {
            missing.insert(format!("{name} 1 entries"));
        }
    }
    for feature in [
        "kitchen.Everything.choice none",
        "kitchen.Node.link none",
        "kitchen.Node.only set",
        "kitchen.Node.children 4 elements",
        "kitchen.Node.by_name 1 entries",
        "google.protobuf.Value.struct_value set",
        "nan",
        "inf",
        "-inf",
        "-0",
        "subnormal",
        "f32 nan",
        "f32 subnormal",
        "min",
        "max",
        "empty string",
        "unicode",
        "empty bytes",
        "unknown enum",
        "depth 3",
    ] {
        missing.insert(feature.to_owned());
    }
    missing.retain(|feature| !seen.contains(feature));
    assert!(missing.is_empty(), "never generated: {missing:#?}");
    assert!(!seen.contains("depth 4"));
}

/// proto2 specifics: required fields inside nested messages, optional
/// fields with declared defaults, both presence states.
#[test]
fn a_proto2_sample_covers_defaults_and_nested_required_fields() {
    let messages = sample(&Generator::new().message(&descriptor("kitchen.legacy.Legacy")), 300);
    let mut seen = HashSet::new();
    for message in &messages {
        walk(message, &mut |nested| {
            for field in nested.descriptor().fields() {
                let has = nested.has_field(&field);
                let is_default = has && nested.get_field(&field).as_ref() == &field.default_value();
                seen.insert((field.full_name().to_owned(), has, is_default));
            }
        });
    }
    for name in ["count", "note", "opt_level", "ratio", "limit", "flag", "blob"] {
        let name = format!("kitchen.legacy.Legacy.{name}");
        for state in [(false, false), (true, true), (true, false)] {
            assert!(seen.contains(&(name.clone(), state.0, state.1)), "{name} never {state:?}");
        }
    }
    // Parts nested two levels down still have their required fields.
    assert!(seen.contains(&("kitchen.legacy.Part.sub".to_owned(), true, false)));
}

/// A required message field at the depth bound still gets a message, with
/// its own required fields, so the result stays a valid proto2 message.
#[test]
fn required_messages_survive_a_zero_depth_bound() {
    let messages = sample(&Generator::new().max_depth(0).message(&descriptor("kitchen.legacy.Legacy")), 50);
    for message in messages {
        assert_eq!(depth(&message), 1, "{}", to_text(&message));
        let part = message.get_field_by_name("part").unwrap();
        let minimal = parse("kitchen.legacy.Part", "serial: 0 code: 0 level: LEVEL_LOW");
        assert_eq!(diff(&minimal, part.as_message().unwrap()), None);
    }
}

#[test]
fn limits_bound_collections_and_strings() {
    let generator = Generator::new().max_repeated(2).max_string_len(3).max_bytes_len(1);
    for message in sample(&generator.message(&descriptor("kitchen.Everything")), 100) {
        walk(&message, &mut |nested| {
            for (field, value) in nested.fields() {
                if let Some(items) = value.as_list() {
                    assert!(items.len() <= 2, "{}", field.full_name());
                }
                if let Some(entries) = value.as_map() {
                    assert!(entries.len() <= 2, "{}", field.full_name());
                }
                for value in values_of(value) {
                    if let Some(text) = value.as_str() {
                        assert!(text.chars().count() <= 3, "{}: {text:?}", field.full_name());
                    }
                    if let Some(bytes) = value.as_bytes() {
                        assert!(bytes.len() <= 1, "{}", field.full_name());
                    }
                }
            }
        });
    }
}

/// A failure that depends on one field shrinks to a message holding only
/// that field.
#[test]
fn counterexamples_shrink_to_the_relevant_field() {
    let mut runner = TestRunner::new_with_rng(
        Config { max_shrink_iters: 10_000, failure_persistence: None, ..Config::default() },
        proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let result = runner.run(&everything(), |message| {
        let int = message
            .0
            .get_field_by_name("scalars")
            .and_then(|s| s.as_message()?.get_field_by_name("f_int32").map(|v| v.as_i32().unwrap()));
        prop_assert!(int.is_none_or(|int| int < 100));
        Ok(())
    });
    let Err(TestError::Fail(_, minimal)) = result else { panic!("no counterexample found: {result:?}") };
    let text = to_text(&minimal.0);
    let number: i32 = text
        .strip_prefix("scalars {\n  f_int32: ")
        .and_then(|rest| rest.strip_suffix("\n}"))
        .unwrap_or_else(|| panic!("did not shrink to one field:\n{text}"))
        .parse()
        .unwrap();
    assert!(number >= 100);
}

/// Sizes are mostly small but reach the boundaries where buffers and
/// limits live, and no message outgrows the limit.
#[test]
fn sizes_reach_boundaries_and_stay_under_the_message_limit() {
    let desc = descriptor("kitchen.Everything");
    let limit = 256 * 1024;
    let generator =
        Generator::new().sizes(harness::arbitrary::Sizes { max_message_bytes: limit, ..Default::default() });
    let (mut longest_string, mut longest_bytes, mut longest_list) = (0, 0, 0);
    for message in sample(&generator.message(&desc), 300) {
        assert!(message.encoded_len() <= limit, "{} bytes", message.encoded_len());
        walk(&message, &mut |nested| {
            for (_, value) in nested.fields() {
                if let Some(items) = value.as_list() {
                    longest_list = longest_list.max(items.len());
                }
                for value in values_of(value) {
                    if let Some(text) = value.as_str() {
                        longest_string = longest_string.max(text.chars().count());
                    }
                    if let Some(bytes) = value.as_bytes() {
                        longest_bytes = longest_bytes.max(bytes.len());
                    }
                }
            }
        });
    }
    assert!(longest_string > 1024, "strings reach past 2^10: {longest_string}");
    assert!(longest_bytes > 1024, "bytes reach past 2^10: {longest_bytes}");
    assert!(longest_list > 128, "repeated fields reach past 2^7: {longest_list}");

    let mut runner = TestRunner::deterministic();
    let streams = generator.requests(&descriptor("kitchen.Node"));
    let longest_stream =
        (0..200).map(|_| streams.new_tree(&mut runner).unwrap().current().len()).max().unwrap();
    assert!(longest_stream > 128, "streams reach past 128 messages: {longest_stream}");
}

/// A failure that needs a long string shrinks to the shortest boundary
/// that still fails, not to whatever length was first drawn.
#[test]
fn long_strings_shrink_to_the_smallest_failing_boundary() {
    let mut runner = TestRunner::new_with_rng(
        Config { max_shrink_iters: 10_000, failure_persistence: None, ..Config::default() },
        proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let result = runner.run(&everything(), |message| {
        let mut longest = 0;
        walk(&message.0, &mut |nested| {
            for (_, value) in nested.fields() {
                for value in values_of(value) {
                    longest = longest.max(value.as_str().map_or(0, |text| text.chars().count()));
                }
            }
        });
        prop_assert!(longest <= 300, "a string of {longest} chars");
        Ok(())
    });
    let Err(TestError::Fail(reason, _)) = result else { panic!("no counterexample found: {result:?}") };
    assert!(reason.to_string().contains("a string of 511 chars"), "{reason}");
}
