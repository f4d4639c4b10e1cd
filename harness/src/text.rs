//! Protobuf text format, for counterexamples and failure reports.
//!
//! [`to_text`] is deterministic, which the derived `Debug` of prost-reflect
//! is not (map entries come from a `HashMap`): fields appear in number
//! order, map entries sorted by key, non-printable characters escaped, and
//! unknown fields are left out, as the comparator ignores them. The output
//! parses back with `DynamicMessage::parse_text_format`.

use std::{
    collections::BTreeMap,
    fmt::{self, Write as _},
};

use prost_reflect::{DynamicMessage, Kind, MapKey, ReflectMessage, Value};

/// Protobuf text format, multi-line, as printed in counterexamples.
///
/// An empty message prints as an empty string; there is no trailing newline.
pub fn to_text(message: &DynamicMessage) -> String {
    let mut writer = Writer::new(true);
    writer.fields(message);
    writer.out
}

/// Shows its contents in protobuf text format through `Debug`.
///
/// proptest reports failing inputs with `Debug`, and the derived `Debug` of
/// `DynamicMessage` dumps whole descriptors, burying the values. Wrap
/// generated values in it (`strategy.prop_map(AsText)`) to get readable
/// counterexamples.
#[derive(Clone, PartialEq)]
pub struct AsText<T>(pub T);

impl fmt::Debug for AsText<DynamicMessage> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_as_text(f, &self.0)
    }
}

impl fmt::Debug for AsText<Vec<DynamicMessage>> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} messages", self.0.len())?;
        for (index, message) in self.0.iter().enumerate() {
            write!(f, "\n[{index}] ")?;
            debug_as_text(f, message)?;
        }
        Ok(())
    }
}

/// `Type {` and the text, indented, then `}`: the type name matters when a
/// counterexample mixes message types.
fn debug_as_text(f: &mut fmt::Formatter<'_>, message: &DynamicMessage) -> fmt::Result {
    write!(f, "{} {{", message.descriptor().full_name())?;
    let text = to_text(message);
    if !text.is_empty() {
        for line in text.lines() {
            write!(f, "\n  {line}")?;
        }
        f.write_char('\n')?;
    }
    f.write_char('}')
}

/// A value on one line, as a [`crate::compare::Difference`] shows it.
pub(crate) fn one_line(value: &Value, kind: &Kind) -> String {
    let mut writer = Writer::new(false);
    writer.value(value, kind);
    writer.out
}

/// Text-format output, either multi-line (counterexamples) or on one line
/// (values inside a [`Difference`]).
struct Writer {
    out: String,
    pretty: bool,
    depth: usize,
    /// Nothing has been written in the current block yet.
    first: bool,
}

impl Writer {
    fn new(pretty: bool) -> Self {
        Writer { out: String::new(), pretty, depth: 0, first: true }
    }

    fn fields(&mut self, message: &DynamicMessage) {
        for (field, value) in message.fields() {
            let name = match field.kind() {
                Kind::Message(group) if field.is_group() => group.name().to_owned(),
                _ => field.name().to_owned(),
            };
            self.field(&name, value, &field.kind(), field.is_map());
        }
        for (extension, value) in message.extensions() {
            let name = format!("[{}]", extension.full_name());
            self.field(&name, value, &extension.kind(), extension.is_map());
        }
    }

    fn field(&mut self, name: &str, value: &Value, kind: &Kind, is_map: bool) {
        match (value, kind) {
            (Value::List(items), _) => {
                for item in items {
                    self.field(name, item, kind, false);
                }
            }
            (Value::Map(entries), Kind::Message(entry)) if is_map => {
                let value_kind = entry.map_entry_value_field().kind();
                let sorted: BTreeMap<&MapKey, &Value> = entries.iter().collect();
                for (key, value) in sorted {
                    self.start_field();
                    self.out.push_str(name);
                    self.out.push(' ');
                    self.block(|writer| {
                        writer.start_field();
                        writer.out.push_str("key: ");
                        write_map_key(&mut writer.out, key);
                        writer.start_field();
                        writer.out.push_str("value");
                        writer.value_after_name(value, &value_kind);
                    });
                }
            }
            _ => {
                self.start_field();
                self.out.push_str(name);
                self.value_after_name(value, kind);
            }
        }
    }

    fn value_after_name(&mut self, value: &Value, kind: &Kind) {
        self.out.push_str(if matches!(value, Value::Message(_)) { " " } else { ": " });
        self.value(value, kind);
    }

    fn value(&mut self, value: &Value, kind: &Kind) {
        match value {
            Value::Bool(value) => self.out.push_str(if *value { "true" } else { "false" }),
            Value::I32(value) => self.display(value),
            Value::I64(value) => self.display(value),
            Value::U32(value) => self.display(value),
            Value::U64(value) => self.display(value),
            Value::F32(value) => write_float(&mut self.out, *value),
            Value::F64(value) => write_float(&mut self.out, *value),
            Value::String(value) => write_string(&mut self.out, value),
            Value::Bytes(value) => write_bytes(&mut self.out, value),
            Value::EnumNumber(number) => match kind.as_enum().and_then(|desc| desc.get_value(*number)) {
                Some(known) => self.out.push_str(known.name()),
                None => self.display(number),
            },
            Value::Message(message) => self.block(|writer| writer.fields(message)),
            Value::List(items) => {
                self.out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        self.out.push_str(", ");
                    }
                    self.value(item, kind);
                }
                self.out.push(']');
            }
            Value::Map(entries) => {
                let sorted: BTreeMap<&MapKey, &Value> = entries.iter().collect();
                self.out.push('[');
                for (index, (key, value)) in sorted.into_iter().enumerate() {
                    if index > 0 {
                        self.out.push_str(", ");
                    }
                    self.out.push_str("{key: ");
                    write_map_key(&mut self.out, key);
                    self.out.push_str(" value");
                    self.value_after_name(value, kind);
                    self.out.push('}');
                }
                self.out.push(']');
            }
        }
    }

    fn display(&mut self, value: &impl fmt::Display) {
        write!(self.out, "{value}").expect("writing to a String cannot fail");
    }

    fn start_field(&mut self) {
        if self.first {
            self.first = false;
            if self.pretty && self.depth > 0 {
                self.newline();
            }
        } else if self.pretty {
            self.newline();
        } else {
            self.out.push(' ');
        }
    }

    fn newline(&mut self) {
        self.out.push('\n');
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn block(&mut self, body: impl FnOnce(&mut Self)) {
        self.out.push('{');
        self.depth += 1;
        self.first = true;
        body(self);
        let empty = self.first;
        self.depth -= 1;
        self.first = false;
        if !empty && self.pretty {
            self.newline();
        }
        self.out.push('}');
    }
}

/// Writes a float so that text-format parsers read back the same value:
/// `Debug` gives the shortest round-tripping digits (switching to exponent
/// form for very large or small magnitudes instead of printing hundreds of
/// digits), and the special values use text format's spelling.
fn write_float<F: Copy + Into<f64> + fmt::Debug>(out: &mut String, value: F) {
    let wide: f64 = value.into();
    if wide.is_nan() {
        out.push_str("nan");
    } else if wide.is_infinite() {
        out.push_str(if wide > 0.0 { "inf" } else { "-inf" });
    } else {
        write!(out, "{value:?}").expect("writing to a String cannot fail");
    }
}

pub(crate) fn write_map_key(out: &mut String, key: &MapKey) {
    let result = match key {
        MapKey::Bool(key) => write!(out, "{key}"),
        MapKey::I32(key) => write!(out, "{key}"),
        MapKey::I64(key) => write!(out, "{key}"),
        MapKey::U32(key) => write!(out, "{key}"),
        MapKey::U64(key) => write!(out, "{key}"),
        MapKey::String(key) => {
            write_string(out, key);
            Ok(())
        }
    };
    result.expect("writing to a String cannot fail");
}

/// Quotes a string, keeping printable Unicode as it is (counterexamples in
/// other scripts stay readable) and escaping what a terminal would hide or
/// mangle: control characters, and characters Rust's `escape_debug` deems
/// non-printable or combining.
fn write_string(out: &mut String, value: &str) {
    out.push('"');
    for ch in value.chars() {
        let result = match ch {
            '"' => write!(out, "\\\""),
            '\\' => write!(out, "\\\\"),
            '\n' => write!(out, "\\n"),
            '\r' => write!(out, "\\r"),
            '\t' => write!(out, "\\t"),
            '\0'..='\x1f' | '\x7f' => write!(out, "\\{:03o}", u32::from(ch)),
            ' '..='~' => write!(out, "{ch}"),
            _ if ch.escape_debug().next() != Some('\\') => write!(out, "{ch}"),
            _ if u32::from(ch) <= 0xffff => write!(out, "\\u{:04x}", u32::from(ch)),
            _ => write!(out, "\\U{:08x}", u32::from(ch)),
        };
        result.expect("writing to a String cannot fail");
    }
    out.push('"');
}

/// Quotes bytes: printable ASCII as it is, everything else as three-digit
/// octal escapes, so a following digit is never read as part of the escape.
fn write_bytes(out: &mut String, value: &[u8]) {
    out.push('"');
    for &byte in value {
        let result = match byte {
            b'"' => write!(out, "\\\""),
            b'\\' => write!(out, "\\\\"),
            b'\n' => write!(out, "\\n"),
            b'\r' => write!(out, "\\r"),
            b'\t' => write!(out, "\\t"),
            b' '..=b'~' => write!(out, "{}", char::from(byte)),
            _ => write!(out, "\\{byte:03o}"),
        };
        result.expect("writing to a String cannot fail");
    }
    out.push('"');
}
