//! Inputs built from the standard rules, so that the valid ones are not
//! left to chance, and boundaries are drawn as often as anything else.
//!
//! Random values rarely land inside a narrow range and almost never on its
//! edge, where servers get things wrong. Where the rules state an integer
//! range (`const`, `in`, `gt`/`gte`/`lt`/`lte`), a string or bytes length
//! (`len`, `min_len`, `max_len`), a string `pattern` (drawn from the regular
//! expression), `prefix`/`suffix`/`contains`, a string format (`uuid`,
//! `email`, `hostname`, `ip`, `uri`, ...) or enum values (`const`, `in`,
//! `defined_only`), the generator draws from what they allow: bounds, the
//! values next to them, small values and anything between, shrinking
//! towards the lower bound. The same holds for the elements of a repeated
//! field (`items`) and the values of a map (`values`), whose sizes follow
//! `min_items`/`max_items` and `min_pairs`/`max_pairs`; `required` fields
//! and oneofs are always set. The same reading gives, for [`breakers`], the
//! values just outside.
//!
//! Everything else (`not_in`, `unique`, map keys, CEL) is left to
//! [`super::Rules::check`], which filters what is drawn.

use std::ops::RangeInclusive;

use proptest::{collection, prelude::*, sample, strategy::Union};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};

use super::{field_rules, oneof_rules};
use crate::arbitrary::{Generator, Sizes, scalars::integer};

/// What a field's rules allow, as far as this module reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    /// An integer in `lo..=hi`, both within the field's type.
    Range { lo: i128, hi: i128, min: i128, max: i128 },
    /// One of these integers.
    OneOf(Vec<i128>),
    /// A string of this many chars, or bytes of this many bytes.
    Length { lo: usize, hi: Option<usize> },
    /// A string matching this regular expression (anchors removed).
    Pattern(String),
    /// One of these enum numbers.
    Enum(Vec<i128>),
}

/// `generator`, drawing every field of `desc` (and of the messages it
/// holds) that has readable rules from what those rules allow.
pub fn within_rules(mut generator: Generator, desc: &MessageDescriptor) -> Generator {
    let mut seen = std::collections::HashSet::new();
    let mut pending = vec![desc.clone()];
    while let Some(desc) = pending.pop() {
        if !seen.insert(desc.full_name().to_owned()) {
            continue;
        }
        for oneof in desc.oneofs().filter(|oneof| !oneof.is_synthetic()) {
            if oneof_rules(&oneof).is_some_and(|rules| flag(&rules, "required")) {
                generator = generator.always_set(oneof.full_name());
            }
        }
        for field in desc.fields() {
            let name = field.full_name().to_owned();
            let rules = field_rules(&field);
            // What the elements (or a map's values) are, and their rules.
            let (kind, element_rules) = if field.is_map() {
                let Kind::Message(entry) = field.kind() else {
                    unreachable!("map fields have entry messages")
                };
                let map = rules.as_ref().and_then(|rules| sub(rules, "map"));
                if let Some(len) = map.as_ref().and_then(|map| counts(map, "min_pairs", "max_pairs")) {
                    generator = generator.collection_len(&name, len);
                }
                (entry.map_entry_value_field().kind(), map.and_then(|map| sub(&map, "values")))
            } else if field.is_list() {
                let repeated = rules.as_ref().and_then(|rules| sub(rules, "repeated"));
                if let Some(len) = repeated.as_ref().and_then(|r| counts(r, "min_items", "max_items")) {
                    generator = generator.collection_len(&name, len);
                }
                (field.kind(), repeated.and_then(|repeated| sub(&repeated, "items")))
            } else {
                if (field.supports_presence() || matches!(field.kind(), Kind::Message(_)))
                    && rules.as_ref().is_some_and(|rules| flag(rules, "required"))
                {
                    generator = generator.always_set(&name);
                }
                (field.kind(), rules)
            };
            if let Kind::Message(inner) = &kind {
                pending.push(inner.clone());
            } else if let Some(allowed) = element_rules.and_then(|rules| allowed_by(&rules, &kind)) {
                generator = generator.override_field(&name, move || inside(&allowed, &kind));
            }
        }
    }
    generator
}

/// The message-typed field `name` of `message`, when it is set.
fn sub(message: &DynamicMessage, name: &str) -> Option<DynamicMessage> {
    message.has_field_by_name(name).then(|| message.get_field_by_name(name)?.as_message().cloned()).flatten()
}

fn flag(message: &DynamicMessage, name: &str) -> bool {
    message.get_field_by_name(name).and_then(|v| v.as_bool()).unwrap_or(false)
}

/// A size range from a minimum and a maximum rule, when either is set.
fn counts(rules: &DynamicMessage, min: &str, max: &str) -> Option<RangeInclusive<usize>> {
    let get = |key: &str| {
        rules
            .has_field_by_name(key)
            .then(|| rules.get_field_by_name(key)?.as_u64())
            .flatten()
            .map(|n| n as usize)
    };
    let (lo, hi) = (get(min), get(max));
    if lo.is_none() && hi.is_none() {
        return None;
    }
    let lo = lo.unwrap_or(0);
    let hi = hi.unwrap_or(lo + Sizes::SMALL.max_repeated);
    (lo <= hi).then_some(lo..=hi)
}

/// For each top-level field of `desc` with readable rules, values that
/// break them: just past each bound, the type's extremes, a length one
/// short or one over. Setting one of them on a valid message breaks
/// (at least) that field's rule.
pub fn breakers(desc: &MessageDescriptor) -> Vec<(FieldDescriptor, Value)> {
    let mut out = Vec::new();
    for field in desc.fields().filter(|f| !f.is_list() && !f.is_map()) {
        let Some(allowed) = allowed(&field) else { continue };
        let kind = field.kind();
        let values: Vec<Value> = match allowed {
            Allowed::Range { lo, hi, min, max } => [lo - 1, min, hi + 1, max]
                .into_iter()
                .filter(|v| (min..=max).contains(v) && !(lo..=hi).contains(v))
                .filter_map(|v| integer(&kind, v))
                .collect(),
            Allowed::OneOf(list) => {
                let above = list.iter().max().map(|m| m + 1);
                let below = list.iter().min().map(|m| m - 1);
                [above, below]
                    .into_iter()
                    .flatten()
                    .filter(|v| !list.contains(v))
                    .filter_map(|v| integer(&kind, v))
                    .collect()
            }
            // What breaks a pattern depends on it; drawing at random and
            // filtering finds it.
            Allowed::Pattern(_) => Vec::new(),
            Allowed::Enum(list) => {
                let outside = list.iter().max().map_or(1, |m| m + 1);
                i32::try_from(outside).map(|n| vec![Value::EnumNumber(n)]).unwrap_or_default()
            }
            Allowed::Length { lo, hi } => {
                let lengths = [lo.checked_sub(1), hi.map(|h| h + 1)];
                lengths.into_iter().flatten().map(|len| of_length(&kind, len)).collect()
            }
        };
        let mut unique: Vec<Value> = Vec::new();
        for value in values {
            if !unique.contains(&value) {
                unique.push(value);
            }
        }
        out.extend(unique.into_iter().map(|value| (field.clone(), value)));
    }
    out
}

/// Messages from `valid` with one of `breakers` set.
pub fn breaking(
    valid: BoxedStrategy<DynamicMessage>,
    breakers: Vec<(FieldDescriptor, Value)>,
) -> BoxedStrategy<DynamicMessage> {
    (valid, sample::select(breakers))
        .prop_map(|(mut message, (field, value))| {
            message.set_field(&field, value);
            message
        })
        .boxed()
}

/// What `field`'s rules allow, when they say it in a way read here.
fn allowed(field: &FieldDescriptor) -> Option<Allowed> {
    allowed_by(&field_rules(field)?, &field.kind())
}

/// What `rules` (a `FieldRules`) allow a value of `kind`.
fn allowed_by(rules: &DynamicMessage, kind: &Kind) -> Option<Allowed> {
    let kind = kind.clone();
    let (name, min, max) = match &kind {
        Kind::String => ("string", 0, 0),
        Kind::Bytes => ("bytes", 0, 0),
        Kind::Enum(_) => ("enum", 0, 0),
        _ => integer_type(&kind)?,
    };
    if !rules.has_field_by_name(name) {
        return None;
    }
    let typed = rules.get_field_by_name(name)?.as_message()?.clone();
    let get = |key: &str| typed.has_field_by_name(key).then(|| typed.get_field_by_name(key)).flatten();
    let set: Vec<String> = typed.fields().map(|(f, _)| f.name().to_owned()).collect();
    let int = |key: &str| get(key).as_deref().and_then(as_integer);
    let list = |key: &str| {
        get(key).and_then(|v| v.as_list().map(|l| l.iter().filter_map(as_integer).collect::<Vec<_>>()))
    };
    match &kind {
        Kind::String | Kind::Bytes
            if set.iter().all(|k| matches!(k.as_str(), "len" | "min_len" | "max_len")) =>
        {
            let len = |key: &str| get(key).and_then(|v| v.as_u64()).map(|v| v as usize);
            match len("len") {
                Some(exact) => Some(Allowed::Length { lo: exact, hi: Some(exact) }),
                None => {
                    let lo = len("min_len").unwrap_or(0);
                    let hi = len("max_len");
                    (hi.is_none_or(|hi| lo <= hi)).then_some(Allowed::Length { lo, hi })
                }
            }
        }
        Kind::String => {
            // A regular expression for what the rules say; lengths and
            // anything else are left to filtering. Unless proptest cannot
            // draw from it (look-arounds, say).
            let text = |key: &str| get(key).and_then(|v| v.as_str().map(str::to_owned));
            let flag = |key: &str| get(key).and_then(|v| v.as_bool()).unwrap_or(false);
            let pattern = match text("pattern") {
                Some(pattern) => unanchored(&pattern),
                None => match FORMATS.iter().find(|(key, _)| flag(key)) {
                    Some((_, regex)) => (*regex).to_owned(),
                    None if ["prefix", "suffix", "contains"].iter().any(|k| set.iter().any(|s| s == k)) => {
                        let part = |key: &str| text(key).map(|t| literal(&t)).unwrap_or_default();
                        format!(
                            "{}[ -~]{{0,12}}{}[ -~]{{0,12}}{}",
                            part("prefix"),
                            part("contains"),
                            part("suffix")
                        )
                    }
                    None => return None,
                },
            };
            proptest::string::string_regex(&pattern).is_ok().then_some(Allowed::Pattern(pattern))
        }
        Kind::Bytes => None,
        Kind::Enum(desc) => {
            let values = match (int("const"), list("in")) {
                (Some(value), _) => vec![value],
                (None, Some(list)) if !list.is_empty() => list,
                _ if get("defined_only").and_then(|v| v.as_bool()) == Some(true) => {
                    desc.values().map(|v| i128::from(v.number())).collect()
                }
                _ => return None,
            };
            Some(Allowed::Enum(values))
        }
        _ => {
            if let Some(value) = int("const") {
                return Some(Allowed::OneOf(vec![value]));
            }
            if let Some(list) = list("in")
                && !list.is_empty()
            {
                return Some(Allowed::OneOf(list));
            }
            let lo = int("gte").or_else(|| int("gt").map(|v| v + 1)).unwrap_or(min).max(min);
            let hi = int("lte").or_else(|| int("lt").map(|v| v - 1)).unwrap_or(max).min(max);
            // gt above lt means "outside the range", which is not one interval.
            ((lo, hi) != (min, max) && lo <= hi).then_some(Allowed::Range { lo, hi, min, max })
        }
    }
}

/// Regular expressions for the string formats, drawing plain examples of
/// each: what a server must accept, not the format's every corner.
const FORMATS: &[(&str, &str)] = &[
    ("uuid", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    ("tuuid", "[0-9a-f]{32}"),
    ("email", "[a-z][a-z0-9]{0,7}@[a-z]{1,8}[.](com|org|net)"),
    ("hostname", "[a-z][a-z0-9]{0,7}([.][a-z][a-z0-9]{0,7}){0,2}"),
    ("ip", "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])([.](25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}"),
    (
        "ipv4",
        "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])([.](25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}",
    ),
    ("ipv6", "[0-9a-f]{1,4}(:[0-9a-f]{1,4}){7}"),
    ("uri", "https://[a-z]{1,8}[.](com|org)(/[a-z0-9]{1,8}){0,3}"),
    ("uri_ref", "/[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,3}"),
];

/// A regular expression matching exactly `text`: letters and digits as
/// they are, everything else by its code point.
fn literal(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_string() } else { format!("\\x{{{:X}}}", u32::from(c)) })
        .collect()
}

/// `pattern` without a leading `^` and a trailing `$`, which proptest's
/// regex strategies cannot draw; what they draw then matches either way.
fn unanchored(pattern: &str) -> String {
    let pattern = pattern.strip_prefix('^').unwrap_or(pattern);
    match pattern.strip_suffix('$') {
        Some(inner) if !inner.ends_with('\\') => inner.to_owned(),
        _ => pattern.to_owned(),
    }
}

/// The rules' name for an integer kind, and the kind's bounds.
fn integer_type(kind: &Kind) -> Option<(&'static str, i128, i128)> {
    let (i32_min, i32_max) = (i128::from(i32::MIN), i128::from(i32::MAX));
    let (i64_min, i64_max) = (i128::from(i64::MIN), i128::from(i64::MAX));
    Some(match kind {
        Kind::Int32 => ("int32", i32_min, i32_max),
        Kind::Sint32 => ("sint32", i32_min, i32_max),
        Kind::Sfixed32 => ("sfixed32", i32_min, i32_max),
        Kind::Int64 => ("int64", i64_min, i64_max),
        Kind::Sint64 => ("sint64", i64_min, i64_max),
        Kind::Sfixed64 => ("sfixed64", i64_min, i64_max),
        Kind::Uint32 => ("uint32", 0, i128::from(u32::MAX)),
        Kind::Fixed32 => ("fixed32", 0, i128::from(u32::MAX)),
        Kind::Uint64 => ("uint64", 0, i128::from(u64::MAX)),
        Kind::Fixed64 => ("fixed64", 0, i128::from(u64::MAX)),
        _ => return None,
    })
}

fn as_integer(value: &Value) -> Option<i128> {
    match value {
        Value::I32(v) => Some(i128::from(*v)),
        Value::I64(v) => Some(i128::from(*v)),
        Value::U32(v) => Some(i128::from(*v)),
        Value::U64(v) => Some(i128::from(*v)),
        _ => None,
    }
}

/// A string of `len` printable chars, or `len` bytes.
fn of_length(kind: &Kind, len: usize) -> Value {
    match kind {
        Kind::Bytes => Value::Bytes(vec![b'x'; len].into()),
        _ => Value::String("x".repeat(len)),
    }
}

/// Values `allowed` allows, for a field of `kind`.
fn inside(allowed: &Allowed, kind: &Kind) -> BoxedStrategy<Value> {
    match allowed {
        Allowed::Enum(list) => {
            let values: Vec<Value> =
                list.iter().filter_map(|n| i32::try_from(*n).ok()).map(Value::EnumNumber).collect();
            sample::select(values).boxed()
        }
        Allowed::Pattern(pattern) => proptest::string::string_regex(pattern)
            .expect("checked when read")
            .prop_map(Value::String)
            .boxed(),
        Allowed::OneOf(list) => {
            let values: Vec<Value> = list.iter().filter_map(|v| integer(kind, *v)).collect();
            sample::select(values).boxed()
        }
        Allowed::Range { lo, hi, .. } => {
            let (lo, hi) = (*lo, *hi);
            let mut edges = vec![lo, lo + 1, hi - 1, hi, 0, 1, -1];
            edges.retain(|v| (lo..=hi).contains(v));
            edges.dedup();
            let near_lo = lo..=hi.min(lo.saturating_add(1000));
            let mut arms =
                vec![(2, sample::select(edges).boxed()), (2, near_lo.boxed()), (3, (lo..=hi).boxed())];
            if lo <= 1000 && hi >= -1000 {
                arms.push((2, (lo.max(-1000)..=hi.min(1000)).boxed()));
            }
            let kind = kind.clone();
            Union::new_weighted(arms)
                .prop_map(move |v| integer(&kind, v).expect("drawn within the type's bounds"))
                .boxed()
        }
        Allowed::Length { lo, hi } => {
            let (lo, hi) = (*lo, hi.unwrap_or(lo + 32));
            let lengths = Union::new_weighted(vec![
                (2, sample::select(vec![lo, hi]).boxed()),
                (3, (lo..=hi.min(lo + 32)).boxed()),
                (1, (lo..=hi).boxed()),
            ]);
            match kind {
                Kind::Bytes => lengths
                    .prop_flat_map(|len| collection::vec(any::<u8>(), len))
                    .prop_map(|bytes| Value::Bytes(bytes.into()))
                    .boxed(),
                _ => lengths
                    .prop_flat_map(|len| collection::vec(any::<char>(), len))
                    .prop_map(|chars| Value::String(chars.into_iter().collect()))
                    .boxed(),
            }
        }
    }
}
