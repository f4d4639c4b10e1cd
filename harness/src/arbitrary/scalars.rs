//! Values of every scalar kind, and the sizes they reach.
//!
//! Sizes are mostly small, because most faults show on small inputs and
//! small counterexamples are readable; but sometimes they sit on a
//! boundary, where buffers, limits and off-by-ones live: 0, 1, and 2^k - 1,
//! 2^k and 2^k + 1 for every k from 7 up to the configured maximum, and the
//! maximum itself. Boundaries are listed in ascending order, so shrinking
//! heads for the smallest one that still fails.

use std::{f32, f64, fmt};

use bytes::Bytes;
use proptest::{collection, prelude::*, sample, strategy::Union};
use prost_reflect::{EnumDescriptor, Kind, Syntax, Value};

/// How large generated values may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// The most chars (not bytes) in a string.
    pub max_string_len: usize,
    /// The most bytes in a `bytes` value.
    pub max_bytes_len: usize,
    /// The most elements in a repeated field, and entries in a map.
    pub max_repeated: usize,
    /// The most messages in a request stream.
    pub max_stream_len: usize,
    /// The most bytes a whole encoded message may take.
    pub max_message_bytes: usize,
}

impl Default for Sizes {
    /// 64 KiB of text and of bytes, 256 elements and stream messages, 1 MiB
    /// per message: far past the small sizes, in seconds per run.
    fn default() -> Self {
        Sizes {
            max_string_len: 64 * 1024,
            max_bytes_len: 64 * 1024,
            max_repeated: 256,
            max_stream_len: 256,
            max_message_bytes: 1024 * 1024,
        }
    }
}

impl Sizes {
    /// Small sizes only: what elements of long lists and streams get, so
    /// that a 256-element list is not 256 long strings.
    pub const SMALL: Sizes = Sizes {
        max_string_len: 32,
        max_bytes_len: 64,
        max_repeated: 4,
        max_stream_len: 4,
        max_message_bytes: 1 << 20,
    };

    /// These sizes, each no larger than `SMALL`'s.
    pub(super) fn small(self) -> Sizes {
        Sizes {
            max_string_len: self.max_string_len.min(Sizes::SMALL.max_string_len),
            max_bytes_len: self.max_bytes_len.min(Sizes::SMALL.max_bytes_len),
            max_repeated: self.max_repeated.min(Sizes::SMALL.max_repeated),
            max_stream_len: self.max_stream_len.min(Sizes::SMALL.max_stream_len),
            max_message_bytes: self.max_message_bytes,
        }
    }
}

/// Where a small size ends: a small string's longest.
const SMALL_LEN: usize = Sizes::SMALL.max_string_len;

/// The boundary sizes up to `max`, ascending: 2^k - 1, 2^k and 2^k + 1 from
/// 2^7, and `max`. Empty when `max` is itself small (`SMALL_LEN` or less).
pub fn boundaries(max: usize) -> Vec<usize> {
    let mut sizes: Vec<usize> = (7..usize::BITS)
        .map(|k| 1usize << k)
        .take_while(|&power| power - 1 <= max)
        .flat_map(|power| [power - 1, power, power + 1])
        .filter(|&size| size <= max)
        .collect();
    if max > SMALL_LEN && !sizes.contains(&max) {
        sizes.push(max);
    }
    sizes
}

/// Collections of up to `max` elements: mostly a few, sometimes any number
/// up to `max`. Both shrink by dropping elements, so a list that fails at
/// its 129th element shrinks to 129 elements.
pub fn collection<T: fmt::Debug + 'static>(element: BoxedStrategy<T>, max: usize) -> BoxedStrategy<Vec<T>> {
    let few = collection::vec(element.clone(), 0..=max.min(Sizes::SMALL.max_repeated));
    if max <= Sizes::SMALL.max_repeated {
        return few.boxed();
    }
    Union::new_weighted(vec![(7, few.boxed()), (1, collection::vec(element, 0..=max).boxed())]).boxed()
}

/// Strings of at most `max` chars. Small ones are drawn char by char, so
/// they shrink to the char that matters; long ones are drawn as a length
/// and a seed, so they shrink by length, fast, to the shortest that fails.
fn strings(max: usize) -> BoxedStrategy<String> {
    let small = max.min(SMALL_LEN);
    let mut arms = vec![
        (1, Just(String::new()).boxed()),
        (3, collection::vec(proptest::char::range(' ', '~'), 0..=small).prop_map(String::from_iter).boxed()),
        (3, collection::vec(any::<char>(), 0..=small).prop_map(String::from_iter).boxed()),
    ];
    let boundaries = boundaries(max);
    if !boundaries.is_empty() {
        let long = (sample::select(boundaries), any::<u64>()).prop_map(|(len, seed)| long_string(len, seed));
        arms.push((2, long.boxed()));
    }
    Union::new_weighted(arms).boxed()
}

/// Byte strings of at most `max` bytes, drawn as [`strings`] are.
fn byte_strings(max: usize) -> BoxedStrategy<Vec<u8>> {
    let mut arms = vec![
        (1, Just(Vec::new()).boxed()),
        (6, collection::vec(any::<u8>(), 0..=max.min(Sizes::SMALL.max_bytes_len)).boxed()),
    ];
    let boundaries = boundaries(max);
    if !boundaries.is_empty() {
        let long = (sample::select(boundaries), any::<u64>()).prop_map(|(len, seed)| long_bytes(len, seed));
        arms.push((2, long.boxed()));
    }
    Union::new_weighted(arms).boxed()
}

/// `len` chars from `seed`: mostly printable ASCII, with two-, three- and
/// four-byte chars mixed in, so that char and byte counts differ.
fn long_string(len: usize, seed: u64) -> String {
    const WIDE: [char; 4] = ['é', 'ж', '中', '🦀'];
    let mut state = seed;
    (0..len)
        .map(|_| {
            let word = splitmix(&mut state);
            if word.is_multiple_of(8) {
                WIDE[(word >> 8) as usize % WIDE.len()]
            } else {
                char::from(b' ' + (word >> 16) as u8 % 95)
            }
        })
        .collect()
}

/// `len` bytes from `seed`.
fn long_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len).map(|_| (splitmix(&mut state) >> 32) as u8).collect()
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A value of scalar `kind`, with strings and bytes sized by `sizes`.
pub(super) fn scalar(kind: &Kind, sizes: &Sizes) -> BoxedStrategy<Value> {
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
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            let mut edges =
                vec![0, -1, 1, i32::MIN, i32::MAX, i32::MIN + 1, i32::MAX - 1, i32::from(i16::MIN)];
            edges.extend(count_edges().map(|n| n as i32));
            integers(edges, (-1000..=1000).boxed()).prop_map(Value::I32).boxed()
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            let mut edges = vec![
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
            ];
            edges.extend(count_edges().map(i64::from));
            integers(edges, (-1000i64..=1000).boxed()).prop_map(Value::I64).boxed()
        }
        Kind::Uint32 | Kind::Fixed32 => {
            let mut edges = vec![0, 1, u32::MAX, u32::MAX - 1, i32::MAX as u32, 1 << 31];
            edges.extend(count_edges());
            integers(edges, (0u32..=1000).boxed()).prop_map(Value::U32).boxed()
        }
        Kind::Uint64 | Kind::Fixed64 => {
            let mut edges = vec![
                0,
                1,
                u64::MAX,
                u64::MAX - 1,
                i64::MAX as u64,
                1 << 63,
                u64::from(u32::MAX),
                (1 << 53) + 1,
            ];
            edges.extend(count_edges().map(u64::from));
            integers(edges, (0u64..=1000).boxed()).prop_map(Value::U64).boxed()
        }
        Kind::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Kind::String => strings(sizes.max_string_len).prop_map(Value::String).boxed(),
        Kind::Bytes => {
            byte_strings(sizes.max_bytes_len).prop_map(|bytes| Value::Bytes(Bytes::from(bytes))).boxed()
        }
        Kind::Enum(desc) => enums(desc),
        Kind::Message(desc) => unreachable!("message kind {} is not a scalar", desc.full_name()),
    }
}

/// `value` as a value of integer `kind`, when it is one and the value fits.
pub fn integer(kind: &Kind, value: i128) -> Option<Value> {
    Some(match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(value.try_into().ok()?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(value.try_into().ok()?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(value.try_into().ok()?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(value.try_into().ok()?),
        _ => return None,
    })
}

/// Numbers that servers use as sizes and counts get wrong at: 2^k - 1, 2^k
/// and 2^k + 1 for k from 7 to 16.
fn count_edges() -> impl Iterator<Item = u32> {
    (7..=16).flat_map(|k| [(1u32 << k) - 1, 1 << k, (1 << k) + 1])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_powers_of_two_and_their_neighbours_up_to_the_maximum() {
        assert_eq!(boundaries(32), Vec::<usize>::new());
        assert_eq!(boundaries(127), [127]);
        assert_eq!(boundaries(200), [127, 128, 129, 200]);
        assert_eq!(boundaries(256), [127, 128, 129, 255, 256]);
        assert_eq!(boundaries(1024).last(), Some(&1024));
        assert!(boundaries(65536).windows(2).all(|pair| pair[0] < pair[1]), "ascending, for shrinking");
    }

    #[test]
    fn long_strings_count_chars_not_bytes() {
        let text = long_string(1000, 7);
        assert_eq!(text.chars().count(), 1000);
        assert!(text.len() > 1000, "some chars take several bytes");
    }
}
