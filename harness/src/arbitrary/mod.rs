//! proptest strategies for any message type, known only by its descriptor.
//!
//! The conformance suite property-tests RPCs of servers it has never seen, so
//! requests cannot come from generated Rust types: [`Generator`] walks a
//! `MessageDescriptor` and builds a strategy for `DynamicMessage`s of that
//! type. Every value it produces encodes without error, and:
//!
//! - **Scalars** mix edge values with uniform ones: for integers zero, ±1 and
//!   the limits of the type (and of narrower types it is often confused
//!   with); for floats ±0, NaN (with and without payload bits), ±infinity,
//!   subnormals and extremes; strings of arbitrary Unicode (empty included)
//!   and bytes (empty included).
//! - **Enums** take their declared values. Open (proto3) enums also take
//!   unknown numbers, which peers must preserve; closed (proto2) enums never
//!   do, because a peer is entitled to move those to unknown fields.
//! - **Presence**: implicit-presence fields always get a value (the default
//!   among them, which means unset). Explicit-presence fields (proto3
//!   `optional`, proto2 `optional`, message fields) are sometimes absent and
//!   sometimes present, including present with their default value. proto2
//!   `required` fields are always set, at every level. A oneof has at most one
//!   member set, and sometimes none.
//! - **Collections**: repeated fields and maps hold `0..=max_repeated`
//!   elements; map keys repeat rarely and the last one wins, as on the wire.
//! - **Nesting** is bounded by `max_depth`, so recursive types terminate: at
//!   the bound, optional and repeated message fields stay empty and oneof
//!   members of message type are not chosen. A `required` message field at
//!   the bound still gets a message, with only its own required fields set,
//!   because the message would not be valid without it.
//!
//! Well-known types are ordinary messages here: a `Timestamp` may carry
//! nanos outside `0..1e9` and an `Any` arbitrary bytes. That is valid binary
//! protobuf, though not valid JSON.
//!
//! Shrinking moves towards simpler messages: fields unset, zero or default
//! values, empty strings, shorter collections. Extensions are never set.

use std::{collections::HashMap, fmt, ops::RangeInclusive, sync::Arc};

use bytes::Bytes;
use proptest::{collection, option, prelude::*, sample, strategy::Union};
use prost_reflect::{
    DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, OneofDescriptor, Syntax, Value,
};

/// Builds a fresh strategy for each request: proptest's `BoxedStrategy` is
/// neither `Send` nor `Sync`, and a [`Generator`] must be both.
type Factory = Arc<dyn Fn() -> BoxedStrategy<Value> + Send + Sync>;

/// A generated field: which one, and its value. `None` leaves it unset.
type Assignment = Option<(FieldDescriptor, Value)>;

/// How deep a required message chain is filled in past `max_depth`; only a
/// schema whose required fields form a cycle (which no finite message can
/// satisfy) ever reaches it.
const REQUIRED_CHAIN_LIMIT: u32 = 32;

/// Strategies for arbitrary messages of any type, with bounds on their size.
#[derive(Clone)]
pub struct Generator {
    max_depth: u32,
    max_repeated: usize,
    max_string_len: usize,
    max_bytes_len: usize,
    overrides: HashMap<String, Factory>,
}

impl Default for Generator {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Generator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut overridden: Vec<&str> = self.overrides.keys().map(String::as_str).collect();
        overridden.sort_unstable();
        f.debug_struct("Generator")
            .field("max_depth", &self.max_depth)
            .field("max_repeated", &self.max_repeated)
            .field("max_string_len", &self.max_string_len)
            .field("max_bytes_len", &self.max_bytes_len)
            .field("overrides", &overridden)
            .finish()
    }
}

impl Generator {
    /// Depth 3, at most 4 elements per collection, strings up to 32 chars and
    /// bytes up to 64: small enough that shrunk counterexamples stay readable.
    pub fn new() -> Self {
        Generator {
            max_depth: 3,
            max_repeated: 4,
            max_string_len: 32,
            max_bytes_len: 64,
            overrides: HashMap::new(),
        }
    }

    /// How many levels of message fields may nest below the generated message,
    /// so that recursive types terminate and counterexamples stay small.
    /// Depth 0 sets no message-typed fields at all, except required ones.
    pub fn max_depth(mut self, depth: u32) -> Self {
        self.max_depth = depth;
        self
    }

    /// The most elements a repeated field, and the most entries a map field, may hold.
    pub fn max_repeated(mut self, n: usize) -> Self {
        self.max_repeated = n;
        self
    }

    /// The most chars (not bytes) in a generated string.
    pub fn max_string_len(mut self, n: usize) -> Self {
        self.max_string_len = n;
        self
    }

    /// The most bytes in a generated `bytes` value.
    pub fn max_bytes_len(mut self, n: usize) -> Self {
        self.max_bytes_len = n;
        self
    }

    /// Per-field override keyed by the field's full name, e.g. "calculator.CubeRequest.number".
    /// The factory is called each time a strategy is built (proptest BoxedStrategy is not Send/Sync).
    ///
    /// Servers often accept only part of a field's range; an override keeps
    /// generated requests inside it. The strategy supplies the field's value
    /// whenever the field is set; whether an explicit-presence field is set
    /// is still up to the generator. For a repeated field it supplies each
    /// element, and for a map field each value. Its values must suit the
    /// field's kind (`Value::I64` for an `int64`, and so on): a mismatch
    /// panics when a message is generated.
    pub fn override_field<S>(
        mut self,
        full_name: &str,
        strategy: impl Fn() -> S + Send + Sync + 'static,
    ) -> Self
    where
        S: Strategy<Value = Value> + 'static,
    {
        self.overrides.insert(full_name.to_owned(), Arc::new(move || strategy().boxed()));
        self
    }

    /// Arbitrary messages of type `desc`.
    pub fn message(&self, desc: &MessageDescriptor) -> BoxedStrategy<DynamicMessage> {
        Builder { generator: self, cache: HashMap::new() }.message(desc, self.max_depth)
    }

    /// Request streams: sequences whose length is drawn from `len`.
    ///
    /// Streams shrink towards the shortest length `len` allows.
    pub fn stream(
        &self,
        desc: &MessageDescriptor,
        len: RangeInclusive<usize>,
    ) -> BoxedStrategy<Vec<DynamicMessage>> {
        collection::vec(self.message(desc), len).boxed()
    }
}

/// Builds the strategy for one top-level type. Strategies for a message
/// type at a given remaining depth are built once and shared, which keeps
/// wide schemas from multiplying into a strategy per path.
struct Builder<'g> {
    generator: &'g Generator,
    cache: HashMap<(String, u32), BoxedStrategy<DynamicMessage>>,
}

impl Builder<'_> {
    fn message(&mut self, desc: &MessageDescriptor, remaining: u32) -> BoxedStrategy<DynamicMessage> {
        let key = (desc.full_name().to_owned(), remaining);
        if let Some(strategy) = self.cache.get(&key) {
            return strategy.clone();
        }

        let mut parts: Vec<BoxedStrategy<Assignment>> = Vec::new();
        for field in desc.fields() {
            match field.containing_oneof() {
                Some(oneof) if !oneof.is_synthetic() => {
                    // One part per oneof, placed at its first member.
                    if oneof.fields().next().is_some_and(|first| first.number() == field.number()) {
                        parts.push(self.oneof(&oneof, remaining));
                    }
                }
                _ => parts.push(self.field(&field, remaining)),
            }
        }

        let desc = desc.clone();
        let strategy = parts
            .prop_map(move |assignments| {
                let mut message = DynamicMessage::new(desc.clone());
                for (field, value) in assignments.into_iter().flatten() {
                    set(&mut message, &field, value);
                }
                message
            })
            .boxed();
        self.cache.insert(key, strategy.clone());
        strategy
    }

    fn oneof(&mut self, oneof: &OneofDescriptor, remaining: u32) -> BoxedStrategy<Assignment> {
        // "None" comes first so that shrinking ends with the oneof unset.
        let mut arms = vec![(1, Just(None).boxed())];
        for field in oneof.fields() {
            if let Some(value) = self.singular(&field, remaining) {
                arms.push((1, assign(&field, value).prop_map(Some).boxed()));
            }
        }
        Union::new_weighted(arms).boxed()
    }

    fn field(&mut self, field: &FieldDescriptor, remaining: u32) -> BoxedStrategy<Assignment> {
        if field.is_map() {
            return assign(field, self.map(field, remaining)).prop_map(Some).boxed();
        }
        if field.is_list() {
            let list = match self.element(field, remaining) {
                Some(element) => {
                    collection::vec(element, 0..=self.generator.max_repeated).prop_map(Value::List).boxed()
                }
                None => Just(Value::List(Vec::new())).boxed(),
            };
            return assign(field, list).prop_map(Some).boxed();
        }

        let value = self.singular(field, remaining);
        if field.is_required() {
            let value = value.unwrap_or_else(|| {
                let Kind::Message(desc) = field.kind() else {
                    unreachable!("only message fields can run out of depth")
                };
                Just(Value::Message(minimal(&desc, REQUIRED_CHAIN_LIMIT))).boxed()
            });
            assign(field, value).prop_map(Some).boxed()
        } else if field.supports_presence() {
            match value {
                Some(value) => option::weighted(0.5, assign(field, value)).boxed(),
                None => Just(None).boxed(),
            }
        } else {
            match value {
                Some(value) => assign(field, value).prop_map(Some).boxed(),
                None => Just(None).boxed(),
            }
        }
    }

    fn map(&mut self, field: &FieldDescriptor, remaining: u32) -> BoxedStrategy<Value> {
        let Kind::Message(entry) = field.kind() else { unreachable!("map fields have entry messages") };
        let Some(value) = self.element(field, remaining) else {
            return Just(Value::Map(HashMap::new())).boxed();
        };
        let key = self.scalar(&entry.map_entry_key_field().kind());
        collection::vec((key, value), 0..=self.generator.max_repeated)
            .prop_map(|entries| {
                Value::Map(
                    entries
                        .into_iter()
                        .map(|(key, value)| {
                            (key.into_map_key().expect("map keys are integers, bools or strings"), value)
                        })
                        .collect(),
                )
            })
            .boxed()
    }

    /// Values for a singular field when it is set, or `None` when it cannot
    /// be set (a message field at the depth bound).
    fn singular(&mut self, field: &FieldDescriptor, remaining: u32) -> Option<BoxedStrategy<Value>> {
        if let Some(factory) = self.generator.overrides.get(field.full_name()) {
            return Some(factory());
        }
        match field.kind() {
            Kind::Message(desc) => self.nested(&desc, remaining),
            kind if field.supports_presence() => {
                // Present-with-default is what implementations most often
                // confuse with absent, so it gets its own arm (which is also
                // where shrinking ends up).
                Some(
                    Union::new_weighted(vec![
                        (1, Just(field.default_value()).boxed()),
                        (5, self.scalar(&kind)),
                    ])
                    .boxed(),
                )
            }
            kind => Some(self.scalar(&kind)),
        }
    }

    /// Values for one element of a repeated field, or one value of a map
    /// field; `None` when they are messages and the depth bound is reached.
    fn element(&mut self, field: &FieldDescriptor, remaining: u32) -> Option<BoxedStrategy<Value>> {
        if let Some(factory) = self.generator.overrides.get(field.full_name()) {
            return Some(factory());
        }
        let kind = match field.kind() {
            Kind::Message(entry) if field.is_map() => entry.map_entry_value_field().kind(),
            kind => kind,
        };
        match kind {
            Kind::Message(desc) => self.nested(&desc, remaining),
            kind => Some(self.scalar(&kind)),
        }
    }

    fn nested(&mut self, desc: &MessageDescriptor, remaining: u32) -> Option<BoxedStrategy<Value>> {
        let below = remaining.checked_sub(1)?;
        Some(self.message(desc, below).prop_map(Value::Message).boxed())
    }

    fn scalar(&self, kind: &Kind) -> BoxedStrategy<Value> {
        use std::{f32, f64};
        match kind {
            Kind::Double => floats(
                &[
                    -0.0,
                    1.0,
                    -1.0,
                    f64::NAN,
                    -f64::NAN,
                    f64::from_bits(0x7ff8_0000_0000_0001),
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::MIN_POSITIVE,
                    -f64::MIN_POSITIVE,
                    f64::from_bits(1),
                    -f64::from_bits(1),
                    f64::from_bits(0x000f_ffff_ffff_ffff),
                    f64::MAX,
                    f64::MIN,
                    f64::EPSILON,
                    f64::from(f32::MAX),
                    9_007_199_254_740_993.0,
                ],
                -1e6..1e6,
                proptest::num::f64::ANY,
            )
            .prop_map(Value::F64)
            .boxed(),
            Kind::Float => floats(
                &[
                    -0.0,
                    1.0,
                    -1.0,
                    f32::NAN,
                    -f32::NAN,
                    f32::from_bits(0x7fc0_0001),
                    f32::INFINITY,
                    f32::NEG_INFINITY,
                    f32::MIN_POSITIVE,
                    -f32::MIN_POSITIVE,
                    f32::from_bits(1),
                    -f32::from_bits(1),
                    f32::from_bits(0x007f_ffff),
                    f32::MAX,
                    f32::MIN,
                    f32::EPSILON,
                    16_777_217.0,
                ],
                -1e6f32..1e6,
                proptest::num::f32::ANY,
            )
            .prop_map(Value::F32)
            .boxed(),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => integers(
                vec![0, -1, 1, i32::MIN, i32::MAX, i32::MIN + 1, i32::MAX - 1, i32::from(i16::MIN)],
                (-1000..=1000).boxed(),
            )
            .prop_map(Value::I32)
            .boxed(),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => integers(
                vec![
                    0,
                    -1,
                    1,
                    i64::MIN,
                    i64::MAX,
                    i64::MIN + 1,
                    i64::MAX - 1,
                    i64::from(i32::MIN),
                    i64::from(i32::MAX),
                    i64::from(u32::MAX),
                    // The edges of what a JSON number (an f64) holds exactly.
                    1 << 53,
                    -(1 << 53),
                    (1 << 53) + 1,
                ],
                (-1000i64..=1000).boxed(),
            )
            .prop_map(Value::I64)
            .boxed(),
            Kind::Uint32 | Kind::Fixed32 => integers(
                vec![0, 1, u32::MAX, u32::MAX - 1, i32::MAX as u32, 1 << 31, 127, 128],
                (0u32..=1000).boxed(),
            )
            .prop_map(Value::U32)
            .boxed(),
            Kind::Uint64 | Kind::Fixed64 => integers(
                vec![
                    0,
                    1,
                    u64::MAX,
                    u64::MAX - 1,
                    i64::MAX as u64,
                    1 << 63,
                    u64::from(u32::MAX),
                    (1 << 53) + 1,
                    127,
                    128,
                ],
                (0u64..=1000).boxed(),
            )
            .prop_map(Value::U64)
            .boxed(),
            Kind::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
            Kind::String => strings(self.generator.max_string_len).prop_map(Value::String).boxed(),
            Kind::Bytes => Union::new_weighted(vec![
                (1, Just(Vec::new()).boxed()),
                (4, collection::vec(any::<u8>(), 0..=self.generator.max_bytes_len).boxed()),
            ])
            .prop_map(|bytes| Value::Bytes(Bytes::from(bytes)))
            .boxed(),
            Kind::Enum(desc) => enums(desc),
            Kind::Message(desc) => {
                unreachable!("message kind {} is not a scalar", desc.full_name())
            }
        }
    }
}

/// Pairs each generated value with its field.
fn assign(field: &FieldDescriptor, value: BoxedStrategy<Value>) -> BoxedStrategy<(FieldDescriptor, Value)> {
    let field = field.clone();
    value.prop_map(move |value| (field.clone(), value)).boxed()
}

fn set(message: &mut DynamicMessage, field: &FieldDescriptor, value: Value) {
    if let Err(error) = message.try_set_field(field, value) {
        panic!("a generated value does not fit {}; check the overrides: {error}", field.full_name());
    }
}

/// A message with only its required fields set, to their defaults.
fn minimal(desc: &MessageDescriptor, budget: u32) -> DynamicMessage {
    let mut message = DynamicMessage::new(desc.clone());
    for field in desc.fields().filter(FieldDescriptor::is_required) {
        let value = match field.kind() {
            Kind::Message(inner) => match budget.checked_sub(1) {
                Some(budget) => Value::Message(minimal(&inner, budget)),
                None => continue,
            },
            _ => field.default_value(),
        };
        message.set_field(&field, value);
    }
    message
}

/// Zero first (where shrinking ends), then edge values, small values and
/// uniform values.
fn integers<T>(edges: Vec<T>, small: BoxedStrategy<T>) -> BoxedStrategy<T>
where
    T: Arbitrary + Clone + fmt::Debug + 'static,
{
    let zero = edges[0].clone();
    Union::new_weighted(vec![
        (1, Just(zero).boxed()),
        (2, sample::select(edges).boxed()),
        (2, small),
        (4, any::<T>().boxed()),
    ])
    .boxed()
}

/// Zero first, then edge values, ordinary magnitudes, and anything at all
/// (normal, subnormal, infinite or NaN).
fn floats<T, R, A>(edges: &[T], ordinary: R, anything: A) -> BoxedStrategy<T>
where
    T: Default + Clone + fmt::Debug + 'static,
    R: Strategy<Value = T> + 'static,
    A: Strategy<Value = T> + 'static,
{
    Union::new_weighted(vec![
        (1, Just(T::default()).boxed()),
        (2, sample::select(edges.to_vec()).boxed()),
        (2, ordinary.boxed()),
        (4, anything.boxed()),
    ])
    .boxed()
}

/// Empty first, then printable ASCII (what real requests mostly hold), then
/// arbitrary Unicode scalar values.
fn strings(max_len: usize) -> BoxedStrategy<String> {
    Union::new_weighted(vec![
        (1, Just(String::new()).boxed()),
        (
            3,
            collection::vec(proptest::char::range(' ', '~'), 0..=max_len).prop_map(String::from_iter).boxed(),
        ),
        (3, collection::vec(any::<char>(), 0..=max_len).prop_map(String::from_iter).boxed()),
    ])
    .boxed()
}

fn enums(desc: &EnumDescriptor) -> BoxedStrategy<Value> {
    let default = desc.default_value().number();
    // The default first, so that shrinking ends there; aliases only once.
    let mut known: Vec<i32> = desc.values().map(|value| value.number()).collect();
    known.sort_by_key(|&number| (number != default, number));
    known.dedup();
    let known = sample::select(known).prop_map(Value::EnumNumber).boxed();
    if is_closed(desc) {
        known
    } else {
        Union::new_weighted(vec![(4, known), (1, any::<i32>().prop_map(Value::EnumNumber).boxed())]).boxed()
    }
}

/// Enums declared in proto2 files are closed: a parser moves numbers they do
/// not declare to unknown fields. (prost-reflect 0.16 reads no editions
/// files, so syntax decides.)
fn is_closed(desc: &EnumDescriptor) -> bool {
    desc.parent_file().syntax() == Syntax::Proto2
}
