//! A contract's own `buf.validate` rules: which messages carry them, whether
//! a message keeps them, and inputs built to keep or to break them.
//!
//! Rules arrive as extension options (`buf.validate.field`, `.message`,
//! `.oneof`) in the descriptors, so they are only as good as the pool:
//! a pool without `buf/validate/validate.proto` has no extension to decode
//! them with, and sees no rules at all. Reflection, descriptor sets and the
//! contracts crate all carry that file when a contract imports it.
//!
//! Judging is prost-protovalidate's, which claims protovalidate's upstream
//! conformance suite; [`generate`] builds inputs from the standard rules it
//! can read, and leaves every other rule to filtering by [`Rules::check`].

pub mod generate;

use std::{collections::HashSet, fmt, panic::AssertUnwindSafe};

use prost_protovalidate::{Error, Validator};
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, ReflectMessage};

/// The extensions rules live in, by where they attach.
const FIELD_RULES: &str = "buf.validate.field";
const MESSAGE_RULES: &str = "buf.validate.message";
const ONEOF_RULES: &str = "buf.validate.oneof";

/// One rule a message breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The rule's id: `int64.gte`, `string.pattern`, or a CEL rule's own id.
    pub rule_id: String,
    /// Where in the message: `start`, `items[2].name`; empty for a rule on
    /// the message as a whole.
    pub field_path: String,
    /// The rule's own explanation.
    pub message: String,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field_path.as_str() {
            "" => write!(f, "rule `{}` on the message: {}", self.rule_id, self.message),
            path => write!(f, "rule `{}` at `{path}`: {}", self.rule_id, self.message),
        }
    }
}

/// Judges messages by their types' rules. Compiled rules are cached, so
/// one `Rules` serves a whole run.
pub struct Rules {
    validator: Validator,
}

impl Default for Rules {
    fn default() -> Self {
        Rules { validator: Validator::new() }
    }
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rules")
    }
}

impl Rules {
    /// Every rule `message` breaks; empty when it keeps them all. `Err` when
    /// the rules themselves cannot be evaluated (a CEL expression that does
    /// not compile, or fails at run time): that is the contract's defect,
    /// not the message's.
    pub fn check(&self, message: &DynamicMessage) -> Result<Vec<Broken>, String> {
        // The CEL interpreter has unfinished corners that panic rather than
        // fail; a rule that reaches one must not take the run down.
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.validator.validate(message)))
            .map_err(|panic| {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                format!("evaluating the rules of {} panicked: {why}", message.descriptor().full_name())
            })?;
        match outcome {
            Ok(()) => Ok(Vec::new()),
            Err(Error::Validation(error)) => Ok(error
                .violations()
                .iter()
                .map(|violation| Broken {
                    rule_id: violation.rule_id().to_owned(),
                    field_path: violation.field_path(),
                    message: violation.message().to_owned(),
                })
                .collect()),
            Err(other) => {
                Err(format!("the rules of {} cannot be evaluated: {other}", message.descriptor().full_name()))
            }
        }
    }
}

/// Whether `desc`, or any message it holds, carries a rule.
pub fn has_rules(desc: &MessageDescriptor) -> bool {
    fn walk(desc: &MessageDescriptor, seen: &mut HashSet<String>) -> bool {
        if !seen.insert(desc.full_name().to_owned()) {
            return false;
        }
        if message_rules(desc).is_some() || desc.oneofs().any(|oneof| oneof_rules(&oneof).is_some()) {
            return true;
        }
        desc.fields().any(|field| {
            field_rules(&field).is_some()
                || matches!(field.kind(), Kind::Message(inner) if walk(&inner, seen))
        })
    }
    walk(desc, &mut HashSet::new())
}

/// The rules in extension `name` of `options`, when they are set; `None`
/// too when `pool` lacks `validate.proto`, and so knows of no rules.
fn rules_in(pool: &DescriptorPool, options: &DynamicMessage, name: &str) -> Option<DynamicMessage> {
    let ext = pool.get_extension_by_name(name)?;
    if !options.has_extension(&ext) {
        return None;
    }
    options.get_extension(&ext).as_message().cloned()
}

/// The `buf.validate.message` rules of a message, when it has any.
fn message_rules(desc: &MessageDescriptor) -> Option<DynamicMessage> {
    rules_in(desc.parent_pool(), &desc.options(), MESSAGE_RULES)
}

/// The `buf.validate.oneof` rules of a oneof, when it has any.
fn oneof_rules(oneof: &prost_reflect::OneofDescriptor) -> Option<DynamicMessage> {
    rules_in(oneof.parent_message().parent_pool(), &oneof.options(), ONEOF_RULES)
}

/// The `buf.validate.field` rules of a field, when it has any.
fn field_rules(field: &prost_reflect::FieldDescriptor) -> Option<DynamicMessage> {
    rules_in(field.parent_pool(), &field.options(), FIELD_RULES)
}

/// The CEL expressions of `desc`'s own message rules, whose numbers
/// [`literals`] can read.
pub fn cel_expressions(desc: &MessageDescriptor) -> Vec<String> {
    let Some(list) =
        message_rules(desc).and_then(|rules| rules.get_field_by_name("cel").map(|v| v.into_owned()))
    else {
        return Vec::new();
    };
    list.as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|rule| rule.as_message()?.get_field_by_name("expression")?.as_str().map(str::to_owned))
        .collect()
}

/// The integer literals in `sources` (CEL or any text): runs of decimal
/// digits, with a `u` suffix or not.
pub fn literals<'a>(sources: impl IntoIterator<Item = &'a str>) -> Vec<i128> {
    let mut out = Vec::new();
    for source in sources {
        let mut digits = String::new();
        for c in source.chars().chain(std::iter::once(' ')) {
            if c.is_ascii_digit() {
                digits.push(c);
            } else if !digits.is_empty() {
                out.extend(digits.parse::<i128>().ok());
                digits.clear();
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}
