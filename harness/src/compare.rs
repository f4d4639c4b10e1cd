//! Deciding whether two messages mean the same thing.
//!
//! Two correct implementations of one contract may encode the same meaning
//! in different bytes: Rust prost and Python upb, for instance, disagree on
//! whether `-0.0` is worth sending. So responses are compared by meaning,
//! never by bytes, under this policy:
//!
//! - **Implicit presence** (proto3 scalars, strings, bytes and enums declared
//!   without `optional`): an unset field equals its default value, because
//!   the wire cannot tell them apart.
//! - **Explicit presence** (proto3 `optional`, proto2 `optional` and
//!   `required`, singular message fields, oneof members): absent and present
//!   differ, even when the present value is the default. This includes a
//!   proto2 field with `[default = 7]` that is absent on one side and set to
//!   7 on the other, and an absent message field against an empty one: prost
//!   and upb both preserve message presence, so a peer that loses it has
//!   changed what the message says. For a oneof this means the set member
//!   must be the same one.
//! - **Floating point**: `+0.0` equals `-0.0` (prost drops `-0.0` from
//!   implicit-presence fields, upb encodes it). Every NaN equals every other
//!   NaN, whatever its sign or payload bits: no protobuf runtime promises to
//!   keep payloads, and a value that comes back as some NaN has kept its
//!   meaning. Everything else compares with `==`.
//! - **Repeated fields** compare element by element, in order.
//! - **Maps** compare as sets of key → value pairs: entry order is not part
//!   of the wire contract.
//! - **Unknown fields** are ignored: a peer may keep or drop them. Extensions
//!   the pool knows are compared like fields.
//! - **Types**: messages of different full names always differ, reported at
//!   the empty path. Messages whose types share a full name but come from
//!   different pools (reflection against a compiled-in contract) are compared
//!   field by field, by number; a field that only one side's schema declares
//!   counts as unset on the other side.
//!
//! Absent fields are never descended into, so self-recursive types cost only
//! as much stack as the messages are deep.
//!
//! A [`Difference`] names the first place where the messages differ, visiting
//! fields depth-first in field-number order, with paths such as
//! `items[2].name`, `labels["k"]`, `inner.value` or `[pkg.extension]`, and
//! shows both values in one-line text format (see [`crate::text`]).

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet},
    fmt::{self, Write as _},
};

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage, Value};

use crate::text::{one_line, write_map_key};

/// Where two messages differ first (depth-first, field-number order), for failure reports.
///
/// `expected` and `actual` are one-line text-format renderings of the two
/// values; `<unset>` stands for an absent field and `<missing>` for a list
/// element or map entry that one side lacks.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// Field path from the top-level message, empty when the messages
    /// themselves are of different types.
    pub path: String,
    /// The expected side's value at `path`.
    pub expected: String,
    /// The actual side's value at `path`.
    pub actual: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() { "the message" } else { &self.path };
        write!(f, "{path}: expected {}, got {}", self.expected, self.actual)
    }
}

/// Returns the first difference between `expected` and `actual` under the
/// module's comparison policy, or `None` when they mean the same thing.
pub fn diff(expected: &DynamicMessage, actual: &DynamicMessage) -> Option<Difference> {
    diff_messages(expected, actual, &mut String::new())
}

/// Whether `a` and `b` mean the same thing under the module's comparison policy.
pub fn semantically_equal(a: &DynamicMessage, b: &DynamicMessage) -> bool {
    diff(a, b).is_none()
}
fn diff_messages(
    expected: &DynamicMessage,
    actual: &DynamicMessage,
    path: &mut String,
) -> Option<Difference> {
    let (expected_type, actual_type) = (expected.descriptor(), actual.descriptor());
    if expected_type.full_name() != actual_type.full_name() {
        return Some(Difference {
            path: path.clone(),
            expected: format!("a {} message", expected_type.full_name()),
            actual: format!("a {} message", actual_type.full_name()),
        });
    }

    let numbers: BTreeSet<u32> =
        expected_type.fields().chain(actual_type.fields()).map(|field| field.number()).collect();
    for number in numbers {
        let expected_field = expected_type.get_field(number);
        let actual_field = actual_type.get_field(number);
        let Some(field) = expected_field.as_ref().or(actual_field.as_ref()) else { continue };
        let mark = push_name(path, field.name());
        let kind = element_kind(field.kind(), field.is_map());
        // A field that only one side's schema declares reads as unset on the
        // other side, where its data (if any) is an unknown field.
        let found = diff_slots(
            slot(expected, expected_field.as_ref().unwrap_or(field)),
            slot(actual, actual_field.as_ref().unwrap_or(field)),
            &kind,
            path,
        );
        path.truncate(mark);
        if found.is_some() {
            return found;
        }
    }

    let expected_extensions: BTreeMap<u32, _> =
        expected.extensions().map(|(e, v)| (e.number(), (e, v))).collect();
    let actual_extensions: BTreeMap<u32, _> =
        actual.extensions().map(|(e, v)| (e.number(), (e, v))).collect();
    let numbers: BTreeSet<u32> =
        expected_extensions.keys().chain(actual_extensions.keys()).copied().collect();
    for number in numbers {
        let (expected_value, actual_value) =
            (expected_extensions.get(&number), actual_extensions.get(&number));
        let Some((extension, _)) = expected_value.or(actual_value) else { continue };
        let mark = push_name(path, &format!("[{}]", extension.full_name()));
        let kind = element_kind(extension.kind(), extension.is_map());
        let found = diff_slots(
            expected_value.map(|(_, value)| Cow::Borrowed(*value)),
            actual_value.map(|(_, value)| Cow::Borrowed(*value)),
            &kind,
            path,
        );
        path.truncate(mark);
        if found.is_some() {
            return found;
        }
    }
    None
}

/// A field's value as the comparator sees it: `None` when the field is
/// absent in a way that matters (explicit presence), otherwise the value,
/// defaults included.
fn slot<'a>(message: &'a DynamicMessage, field: &FieldDescriptor) -> Option<Cow<'a, Value>> {
    if field.supports_presence() && !message.has_field(field) { None } else { Some(message.get_field(field)) }
}

/// The kind of a field's elements: a map's values, a list's items, or the
/// field's own kind.
fn element_kind(kind: Kind, is_map: bool) -> Kind {
    match (&kind, is_map) {
        (Kind::Message(entry), true) => entry.map_entry_value_field().kind(),
        _ => kind,
    }
}

fn diff_slots(
    expected: Option<Cow<'_, Value>>,
    actual: Option<Cow<'_, Value>>,
    kind: &Kind,
    path: &mut String,
) -> Option<Difference> {
    match (expected, actual) {
        (None, None) => None,
        (Some(expected), Some(actual)) => diff_values(&expected, &actual, kind, path),
        (expected, actual) => Some(Difference {
            path: path.clone(),
            expected: expected.map_or_else(|| "<unset>".to_owned(), |value| one_line(&value, kind)),
            actual: actual.map_or_else(|| "<unset>".to_owned(), |value| one_line(&value, kind)),
        }),
    }
}

fn diff_values(expected: &Value, actual: &Value, kind: &Kind, path: &mut String) -> Option<Difference> {
    let differs = match (expected, actual) {
        (Value::Message(expected), Value::Message(actual)) => return diff_messages(expected, actual, path),
        (Value::List(expected), Value::List(actual)) => {
            for index in 0..expected.len().max(actual.len()) {
                let mark = path.len();
                write!(path, "[{index}]").expect("writing to a String cannot fail");
                let found = diff_elements(expected.get(index), actual.get(index), kind, path);
                path.truncate(mark);
                if found.is_some() {
                    return found;
                }
            }
            return None;
        }
        (Value::Map(expected), Value::Map(actual)) => {
            let keys: BTreeSet<&MapKey> = expected.keys().chain(actual.keys()).collect();
            for key in keys {
                let mark = path.len();
                path.push('[');
                write_map_key(path, key);
                path.push(']');
                let found = diff_elements(expected.get(key), actual.get(key), kind, path);
                path.truncate(mark);
                if found.is_some() {
                    return found;
                }
            }
            return None;
        }
        (Value::F64(expected), Value::F64(actual)) => !floats_equal(*expected, *actual),
        (Value::F32(expected), Value::F32(actual)) => !floats_equal(f64::from(*expected), f64::from(*actual)),
        (expected, actual) => expected != actual,
    };
    differs.then(|| Difference {
        path: path.clone(),
        expected: one_line(expected, kind),
        actual: one_line(actual, kind),
    })
}

fn diff_elements(
    expected: Option<&Value>,
    actual: Option<&Value>,
    kind: &Kind,
    path: &mut String,
) -> Option<Difference> {
    match (expected, actual) {
        (Some(expected), Some(actual)) => diff_values(expected, actual, kind, path),
        (None, None) => None,
        (expected, actual) => Some(Difference {
            path: path.clone(),
            expected: expected.map_or_else(|| "<missing>".to_owned(), |value| one_line(value, kind)),
            actual: actual.map_or_else(|| "<missing>".to_owned(), |value| one_line(value, kind)),
        }),
    }
}

fn floats_equal(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Appends a path segment, returning the length to truncate back to.
fn push_name(path: &mut String, name: &str) -> usize {
    let mark = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
    mark
}
