//! Messages as CEL values, and the functions expectations may call.
//!
//! A message is a CEL map from field name to value:
//! - 32- and 64-bit signed integers are `int`; unsigned ones are `uint`;
//!   `float` and `double` are `double`; enums are `int`, their number.
//! - `string` and `bytes` are themselves; `repeated` fields are lists and
//!   `map` fields maps.
//! - A field without presence always has its value (the default when
//!   unset). A field with presence that is absent (a message field, a
//!   proto3 `optional`, an unset oneof member) is left out of the map, so
//!   `has(request.field)` says whether it was set.
//! - `google.protobuf.Timestamp` and `Duration` are CEL timestamps and
//!   durations; the wrapper types (`Int64Value`, ...) are their value.
//!
//! Integer arithmetic fails on overflow, as CEL requires: an expression
//! that overflows is an error, reported as such, never a wrapped number.

use std::{collections::HashMap, sync::Arc};

use cel::{Context, ExecutionError, FunctionContext, Value, extractors::Arguments, objects::Key};
use prost_reflect::{DynamicMessage, MapKey, ReflectMessage, Value as Field};

/// `message` as a CEL map.
pub(super) fn message(message: &DynamicMessage) -> Value {
    match well_known(message) {
        Some(value) => value,
        None => {
            let fields: HashMap<Key, Value> = message
                .descriptor()
                .fields()
                .filter(|f| !f.supports_presence() || message.has_field(f))
                .map(|f| (Key::from(f.name().to_owned()), field(&message.get_field(&f))))
                .collect();
            Value::Map(fields.into())
        }
    }
}

/// A list of messages as a CEL list.
pub(super) fn messages(messages: &[DynamicMessage]) -> Value {
    Value::List(Arc::new(messages.iter().map(message).collect()))
}

fn field(value: &Field) -> Value {
    match value {
        Field::Bool(v) => Value::Bool(*v),
        Field::I32(v) => Value::Int(i64::from(*v)),
        Field::I64(v) => Value::Int(*v),
        Field::U32(v) => Value::UInt(u64::from(*v)),
        Field::U64(v) => Value::UInt(*v),
        Field::F32(v) => Value::Float(f64::from(*v)),
        Field::F64(v) => Value::Float(*v),
        Field::String(v) => Value::String(Arc::new(v.clone())),
        Field::Bytes(v) => Value::Bytes(Arc::new(v.to_vec())),
        Field::EnumNumber(v) => Value::Int(i64::from(*v)),
        Field::Message(m) => message(m),
        Field::List(items) => Value::List(Arc::new(items.iter().map(field).collect())),
        Field::Map(entries) => {
            let map: HashMap<Key, Value> = entries.iter().map(|(k, v)| (key(k), field(v))).collect();
            Value::Map(map.into())
        }
    }
}

fn key(key: &MapKey) -> Key {
    match key {
        MapKey::Bool(v) => Key::Bool(*v),
        MapKey::I32(v) => Key::Int(i64::from(*v)),
        MapKey::I64(v) => Key::Int(*v),
        MapKey::U32(v) => Key::Uint(u64::from(*v)),
        MapKey::U64(v) => Key::Uint(*v),
        MapKey::String(v) => Key::String(Arc::new(v.clone())),
    }
}

/// Timestamps, durations and wrappers, as CEL's own types.
fn well_known(message: &DynamicMessage) -> Option<Value> {
    let desc = message.descriptor();
    let get = |name: &str| desc.get_field_by_name(name).map(|f| message.get_field(&f).into_owned());
    match desc.full_name() {
        "google.protobuf.Timestamp" => {
            let (seconds, nanos) = (get("seconds")?.as_i64()?, get("nanos")?.as_i32()?);
            let time = chrono::DateTime::from_timestamp(seconds, u32::try_from(nanos).ok()?)?;
            Some(Value::Timestamp(time.fixed_offset()))
        }
        "google.protobuf.Duration" => {
            let (seconds, nanos) = (get("seconds")?.as_i64()?, get("nanos")?.as_i32()?);
            Some(Value::Duration(
                chrono::Duration::seconds(seconds) + chrono::Duration::nanoseconds(i64::from(nanos)),
            ))
        }
        name if name.starts_with("google.protobuf.")
            && name.ends_with("Value")
            && desc.fields().len() == 1 =>
        {
            get("value").map(|v| field(&v))
        }
        _ => None,
    }
}

/// The standard CEL functions and macros, and two of ours, which
/// expectations about streams need and CEL lacks: `range(n)`, the list
/// `[0, 1, ..., n-1]`, to index two lists together; and `sum(list)`, the
/// sum of a list of numbers (0 for an empty one), failing on overflow.
pub(super) fn context() -> Context<'static> {
    let mut context = Context::default();
    context.add_function("range", range);
    context.add_function("sum", sum);
    context
}

fn range(ftx: &FunctionContext<'_, '_>, n: i64) -> Result<Value, ExecutionError> {
    if !(0..=10_000_000).contains(&n) {
        return Err(ftx.error(format!("range({n}): n must be in 0..=10000000")));
    }
    Ok(Value::List(Arc::new((0..n).map(Value::Int).collect())))
}

fn sum(ftx: &FunctionContext<'_, '_>, Arguments(args): Arguments) -> Result<Value, ExecutionError> {
    let items: &[Value] = match args.as_slice() {
        [Value::List(items)] => items,
        _ => return Err(ftx.error("sum takes one list")),
    };
    let mut total = Value::Int(0);
    for item in items {
        total = match (&total, item) {
            (Value::Int(a), Value::Int(b)) => {
                Value::Int(a.checked_add(*b).ok_or_else(|| ftx.error("sum overflows int"))?)
            }
            (Value::Int(0), Value::UInt(b)) => Value::UInt(*b),
            (Value::UInt(a), Value::UInt(b)) => {
                Value::UInt(a.checked_add(*b).ok_or_else(|| ftx.error("sum overflows uint"))?)
            }
            (Value::Int(a), Value::Float(b)) => Value::Float(*a as f64 + b),
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            (_, other) => return Err(ftx.error(format!("sum cannot add {other:?} to {total:?}"))),
        };
    }
    Ok(total)
}
