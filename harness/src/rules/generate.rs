//! Inputs built from the standard rules, so that the valid ones are not
//! left to chance, and boundaries are drawn as often as anything else.
//!
//! Random values rarely land inside a narrow range and almost never on its
//! edge, where servers get things wrong. For each singular field whose
//! rules state an integer range (`const`, `in`, `gt`/`gte`/`lt`/`lte`) or a
//! string or bytes length (`len`, `min_len`, `max_len`), the generator
//! draws from the range itself: its bounds, the values next to them, small
//! values and anything between, shrinking towards the lower bound. The same
//! reading gives, for [`breakers`], the values just outside.
//!
//! Everything else (patterns, formats, repeated and map rules, `required`,
//! CEL) is left to [`super::Rules::check`], which filters what is drawn.

use proptest::{collection, prelude::*, sample, strategy::Union};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};

use super::field_rules;
use crate::arbitrary::{Generator, scalars::integer};

/// What a field's rules allow, as far as this module reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    /// An integer in `lo..=hi`, both within the field's type.
    Range { lo: i128, hi: i128, min: i128, max: i128 },
    /// One of these integers.
    OneOf(Vec<i128>),
    /// A string of this many chars, or bytes of this many bytes.
    Length { lo: usize, hi: Option<usize> },
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
        for field in desc.fields() {
            if let Kind::Message(inner) = field.kind() {
                pending.push(inner);
                continue;
            }
            if field.is_list() || field.is_map() {
                continue;
            }
            if let Some(allowed) = allowed(&field) {
                let kind = field.kind();
                generator = generator.override_field(field.full_name(), move || inside(&allowed, &kind));
            }
        }
    }
    generator
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
    let rules = field_rules(field)?;
    let kind = field.kind();
    let (name, min, max) = match kind {
        Kind::String => ("string", 0, 0),
        Kind::Bytes => ("bytes", 0, 0),
        _ => integer_type(&kind)?,
    };
    if !rules.has_field_by_name(name) {
        return None;
    }
    let typed = rules.get_field_by_name(name)?.as_message()?.clone();
    let get = |key: &str| typed.has_field_by_name(key).then(|| typed.get_field_by_name(key)).flatten();
    if matches!(kind, Kind::String | Kind::Bytes) {
        // Only when length is all they say: a length alone would not meet
        // a pattern or a prefix.
        let set: Vec<String> = typed.fields().map(|(f, _)| f.name().to_owned()).collect();
        if set.iter().any(|name| !matches!(name.as_str(), "len" | "min_len" | "max_len")) {
            return None;
        }
        let len = |key: &str| get(key).and_then(|v| v.as_u64()).map(|v| v as usize);
        return match len("len") {
            Some(exact) => Some(Allowed::Length { lo: exact, hi: Some(exact) }),
            None => {
                let lo = len("min_len").unwrap_or(0);
                let hi = len("max_len");
                (hi.is_none_or(|hi| lo <= hi)).then_some(Allowed::Length { lo, hi })
            }
        };
    }
    let int = |key: &str| get(key).as_deref().and_then(as_integer);
    if let Some(value) = int("const") {
        return Some(Allowed::OneOf(vec![value]));
    }
    if let Some(list) =
        get("in").and_then(|v| v.as_list().map(|l| l.iter().filter_map(as_integer).collect::<Vec<_>>()))
        && !list.is_empty()
    {
        return Some(Allowed::OneOf(list));
    }
    let lo = int("gte").or_else(|| int("gt").map(|v| v + 1)).unwrap_or(min).max(min);
    let hi = int("lte").or_else(|| int("lt").map(|v| v - 1)).unwrap_or(max).min(max);
    // gt above lt means "outside the range", which is not one interval.
    ((lo, hi) != (min, max) && lo <= hi).then_some(Allowed::Range { lo, hi, min, max })
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
