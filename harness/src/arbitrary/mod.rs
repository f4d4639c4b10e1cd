//! proptest strategies for any message type, known only by its descriptor.
//!
//! The conformance suite property-tests RPCs of servers it has never seen, so
//! requests cannot come from generated Rust types: [`Generator`] walks a
//! `MessageDescriptor` and builds a strategy for `DynamicMessage`s of that
//! type. Every value it produces encodes without error, and:
//!
//! - **Scalars** mix edge values with uniform ones: for integers zero, ±1,
//!   the limits of the type (and of narrower types it is often confused
//!   with) and the counts servers get wrong (2^k and 2^k ± 1); for floats
//!   ±0, NaN (with and without payload bits), ±infinity, subnormals and
//!   extremes; strings of arbitrary Unicode (empty included) and bytes
//!   (empty included).
//! - **Sizes** ([`Sizes`]) are mostly small and sometimes on a boundary up
//!   to a maximum (see [`scalars`]): strings and bytes up to 64 KiB,
//!   repeated fields and maps up to 256 elements, whole messages up to
//!   1 MiB by default. Elements of repeated fields and maps are drawn small,
//!   so that a 256-element list is not 256 long strings.
//! - **Enums** take their declared values. Open (proto3) enums also take
//!   unknown numbers, which peers must preserve; closed (proto2) enums never
//!   do, because a peer is entitled to move those to unknown fields.
//! - **Presence**: implicit-presence fields always get a value (the default
//!   among them, which means unset). Explicit-presence fields (proto3
//!   `optional`, proto2 `optional`, message fields) are sometimes absent and
//!   sometimes present, including present with their default value. proto2
//!   `required` fields are always set, at every level. A oneof has at most one
//!   member set, and sometimes none.
//! - **Collections**: repeated fields and maps hold up to `max_repeated`
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
//! values, empty strings, shorter collections, smaller boundaries. Extensions
//! are never set.

pub mod scalars;

use std::{collections::HashMap, fmt, ops::RangeInclusive, sync::Arc};

use proptest::{collection, option, prelude::*, strategy::Union};
use prost::Message as _;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, OneofDescriptor, Value,
};

pub use self::scalars::Sizes;

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
    sizes: Sizes,
    overrides: HashMap<String, Factory>,
    literals: Vec<i128>,
    always_set: std::collections::HashSet<String>,
    lengths: HashMap<String, RangeInclusive<usize>>,
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
            .field("sizes", &self.sizes)
            .field("overrides", &overridden)
            .finish()
    }
}

impl Generator {
    /// Depth 3 and the default [`Sizes`]: mostly small values, sometimes a
    /// boundary up to 64 KiB, 256 elements, 1 MiB a message.
    pub fn new() -> Self {
        Generator {
            max_depth: 3,
            sizes: Sizes::default(),
            overrides: HashMap::new(),
            literals: Vec::new(),
            always_set: Default::default(),
            lengths: HashMap::new(),
        }
    }

    /// How large values may grow.
    pub fn sizes(mut self, sizes: Sizes) -> Self {
        self.sizes = sizes;
        self
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
        self.sizes.max_repeated = n;
        self
    }

    /// The most chars (not bytes) in a generated string.
    pub fn max_string_len(mut self, n: usize) -> Self {
        self.sizes.max_string_len = n;
        self
    }

    /// The most bytes in a generated `bytes` value.
    pub fn max_bytes_len(mut self, n: usize) -> Self {
        self.sizes.max_bytes_len = n;
        self
    }

    /// Integers the contract itself names (in its rules and expectations),
    /// which integer fields then draw often, with their neighbours and
    /// their negations: a boundary a contract states is where a server is
    /// most likely to be off by one, and random values never land on it.
    pub fn literals(mut self, literals: impl IntoIterator<Item = i128>) -> Self {
        let mut values: Vec<i128> =
            literals.into_iter().flat_map(|n| [n, n - 1, n + 1, -n, -n - 1, -n + 1]).collect();
        values.sort_unstable();
        values.dedup();
        self.literals = values;
        self
    }

    /// Sets the explicit-presence field `full_name` in every message, as a
    /// proto2 `required` field is, or one member of the oneof `full_name`:
    /// for a contract's rule that says it must be present.
    pub fn always_set(mut self, full_name: &str) -> Self {
        self.always_set.insert(full_name.to_owned());
        self
    }

    /// How many elements the repeated field, or entries the map field,
    /// `full_name` holds: mostly a few past the least, sometimes anything
    /// in `len`. For a contract's rule on its size.
    pub fn collection_len(mut self, full_name: &str, len: RangeInclusive<usize>) -> Self {
        self.lengths.insert(full_name.to_owned(), len);
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

    /// Arbitrary messages of type `desc`, no larger encoded than
    /// `max_message_bytes`.
    pub fn message(&self, desc: &MessageDescriptor) -> BoxedStrategy<DynamicMessage> {
        let limit = self.sizes.max_message_bytes;
        Builder { generator: self, cache: HashMap::new() }
            .message(desc, self.max_depth, false)
            .prop_filter("larger than the message size limit", move |message| message.encoded_len() <= limit)
            .boxed()
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

    /// Streams of `element`s with the lengths of [`Generator::requests`]:
    /// mostly a few, sometimes up to `max_stream_len`.
    pub fn stream_of<T: fmt::Debug + 'static>(&self, element: BoxedStrategy<T>) -> BoxedStrategy<Vec<T>> {
        scalars::collection(element, self.sizes.max_stream_len)
    }

    /// Request streams of any length up to `max_stream_len`: mostly a few
    /// messages of any size, sometimes a long stream of small messages.
    /// Shrinking drops messages one by one, so a stream that fails at its
    /// 129th message shrinks to 129 messages.
    pub fn requests(&self, desc: &MessageDescriptor) -> BoxedStrategy<Vec<DynamicMessage>> {
        let short = self.stream(desc, 0..=self.sizes.max_stream_len.min(Sizes::SMALL.max_stream_len));
        if self.sizes.max_stream_len <= Sizes::SMALL.max_stream_len {
            return short;
        }
        let small = self.clone().sizes(self.sizes.small());
        let long = collection::vec(small.message(desc), 0..=self.sizes.max_stream_len);
        Union::new_weighted(vec![(7, short), (1, long.boxed())]).boxed()
    }

    /// The requests of one call of `method`: a stream ([`Generator::requests`])
    /// where the client streams, else exactly one message.
    pub fn call(&self, method: &MethodDescriptor) -> BoxedStrategy<Vec<DynamicMessage>> {
        if method.is_client_streaming() {
            self.requests(&method.input())
        } else {
            self.stream(&method.input(), 1..=1)
        }
    }
}

/// Builds the strategy for one top-level type. Strategies for a message
/// type at a given remaining depth are built once and shared, which keeps
/// wide schemas from multiplying into a strategy per path.
struct Builder<'g> {
    generator: &'g Generator,
    /// Strategies by type, remaining depth, and whether they are drawn
    /// small (inside a collection).
    cache: HashMap<(String, u32, bool), BoxedStrategy<DynamicMessage>>,
}

impl Builder<'_> {
    fn sizes(&self, small: bool) -> Sizes {
        if small { self.generator.sizes.small() } else { self.generator.sizes }
    }

    fn message(
        &mut self,
        desc: &MessageDescriptor,
        remaining: u32,
        small: bool,
    ) -> BoxedStrategy<DynamicMessage> {
        let key = (desc.full_name().to_owned(), remaining, small);
        if let Some(strategy) = self.cache.get(&key) {
            return strategy.clone();
        }

        let mut parts: Vec<BoxedStrategy<Assignment>> = Vec::new();
        for field in desc.fields() {
            match field.containing_oneof() {
                Some(oneof) if !oneof.is_synthetic() => {
                    // One part per oneof, placed at its first member.
                    if oneof.fields().next().is_some_and(|first| first.number() == field.number()) {
                        parts.push(self.oneof(&oneof, remaining, small));
                    }
                }
                _ => parts.push(self.field(&field, remaining, small)),
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

    fn oneof(&mut self, oneof: &OneofDescriptor, remaining: u32, small: bool) -> BoxedStrategy<Assignment> {
        let mut members = Vec::new();
        for field in oneof.fields() {
            if let Some(value) = self.singular(&field, remaining, small) {
                members.push((1, assign(&field, value).prop_map(Some).boxed()));
            }
        }
        // "None" comes first so that shrinking ends with the oneof unset,
        // unless a member must be set and one can be.
        let mut arms = Vec::new();
        if members.is_empty() || !self.generator.always_set.contains(oneof.full_name()) {
            arms.push((1, Just(None).boxed()));
        }
        arms.extend(members);
        Union::new_weighted(arms).boxed()
    }

    fn field(&mut self, field: &FieldDescriptor, remaining: u32, small: bool) -> BoxedStrategy<Assignment> {
        if field.is_map() {
            return assign(field, self.map(field, remaining, small)).prop_map(Some).boxed();
        }
        if field.is_list() {
            let list = match self.element(field, remaining) {
                Some(element) => self.collection(field, element, small).prop_map(Value::List).boxed(),
                None => Just(Value::List(Vec::new())).boxed(),
            };
            return assign(field, list).prop_map(Some).boxed();
        }

        let value = self.singular(field, remaining, small);
        if field.is_required() || self.generator.always_set.contains(field.full_name()) {
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

    /// The elements of `field`, as many as its length bounds say.
    fn collection<T: fmt::Debug + 'static>(
        &self,
        field: &FieldDescriptor,
        element: BoxedStrategy<T>,
        small: bool,
    ) -> BoxedStrategy<Vec<T>> {
        match self.generator.lengths.get(field.full_name()) {
            Some(len) => {
                let (lo, hi) = (*len.start(), *len.end());
                let few = collection::vec(element.clone(), lo..=hi.min(lo + Sizes::SMALL.max_repeated));
                Union::new_weighted(vec![(3, few.boxed()), (1, collection::vec(element, lo..=hi).boxed())])
                    .boxed()
            }
            None => scalars::collection(element, self.sizes(small).max_repeated),
        }
    }

    fn map(&mut self, field: &FieldDescriptor, remaining: u32, small: bool) -> BoxedStrategy<Value> {
        let Kind::Message(entry) = field.kind() else { unreachable!("map fields have entry messages") };
        let Some(value) = self.element(field, remaining) else {
            return Just(Value::Map(HashMap::new())).boxed();
        };
        let key = scalars::scalar(&entry.map_entry_key_field().kind(), &self.sizes(true));
        self.collection(field, (key, value).boxed(), small)
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
    fn singular(
        &mut self,
        field: &FieldDescriptor,
        remaining: u32,
        small: bool,
    ) -> Option<BoxedStrategy<Value>> {
        if let Some(factory) = self.generator.overrides.get(field.full_name()) {
            return Some(factory());
        }
        match field.kind() {
            Kind::Message(desc) => self.nested(&desc, remaining, small),
            kind if field.supports_presence() => {
                // Present-with-default is what implementations most often
                // confuse with absent, so it gets its own arm (which is also
                // where shrinking ends up).
                Some(
                    Union::new_weighted(vec![
                        (1, Just(field.default_value()).boxed()),
                        (5, self.scalar(&kind, small)),
                    ])
                    .boxed(),
                )
            }
            kind => Some(self.scalar(&kind, small)),
        }
    }

    /// A scalar of `kind`, integers drawing the generator's literals a
    /// quarter of the time.
    fn scalar(&self, kind: &Kind, small: bool) -> BoxedStrategy<Value> {
        let drawn = scalars::scalar(kind, &self.sizes(small));
        let fitting: Vec<Value> =
            self.generator.literals.iter().filter_map(|n| scalars::integer(kind, *n)).collect();
        if fitting.is_empty() {
            return drawn;
        }
        Union::new_weighted(vec![(3, drawn), (1, proptest::sample::select(fitting).boxed())]).boxed()
    }

    /// Values for one element of a repeated field, or one value of a map
    /// field, drawn small; `None` when they are messages and the depth bound
    /// is reached.
    fn element(&mut self, field: &FieldDescriptor, remaining: u32) -> Option<BoxedStrategy<Value>> {
        if let Some(factory) = self.generator.overrides.get(field.full_name()) {
            return Some(factory());
        }
        let kind = match field.kind() {
            Kind::Message(entry) if field.is_map() => entry.map_entry_value_field().kind(),
            kind => kind,
        };
        match kind {
            Kind::Message(desc) => self.nested(&desc, remaining, true),
            kind => Some(self.scalar(&kind, true)),
        }
    }

    fn nested(
        &mut self,
        desc: &MessageDescriptor,
        remaining: u32,
        small: bool,
    ) -> Option<BoxedStrategy<Value>> {
        let below = remaining.checked_sub(1)?;
        Some(self.message(desc, below, small).prop_map(Value::Message).boxed())
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
