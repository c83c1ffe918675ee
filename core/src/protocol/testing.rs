//! Random messages for round-trip tests and fuzzing (feature `fuzzing`).
//!
//! Every generated struct has a `random(rng, version)` builder producing a value valid at that
//! version: fields absent from the version keep their default, non-nullable ones are `Some`,
//! strings include empty and non-ASCII ones, arrays are short, known tagged fields are set at
//! random and flexible versions carry a few unknown tagged fields with tags above the known ones.

use bytes::Bytes;

use super::Message;
use crate::codec::{RawTaggedField, Reader, Uuid};

pub use super::generated::visit::visit_all;

/// A small deterministic generator (SplitMix64): the same seed gives the same messages.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
    depth: u32,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng {
            state: seed,
            depth: 0,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A random boolean.
    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// Integers favour the edges (0, -1, MIN, MAX) a quarter of the time.
    fn int(&mut self, min: i64, max: i64) -> i64 {
        match self.below(8) {
            0 => 0,
            1 => min,
            2 => max,
            3 if min < 0 => -1,
            _ => {
                let span = (max as i128 - min as i128 + 1) as u128;
                (min as i128 + (self.next_u64() as u128 % span) as i128) as i64
            }
        }
    }

    /// A random `i8`.
    pub fn i8(&mut self) -> i8 {
        self.int(i8::MIN.into(), i8::MAX.into()) as i8
    }
    /// A random `i16`.
    pub fn i16(&mut self) -> i16 {
        self.int(i16::MIN.into(), i16::MAX.into()) as i16
    }
    /// A random `u16`.
    pub fn u16(&mut self) -> u16 {
        self.int(0, u16::MAX.into()) as u16
    }
    /// A random `i32`.
    pub fn i32(&mut self) -> i32 {
        self.int(i32::MIN.into(), i32::MAX.into()) as i32
    }
    /// A random `i64`.
    pub fn i64(&mut self) -> i64 {
        self.int(i64::MIN, i64::MAX)
    }

    /// A random finite `f64` (NaN would not compare equal to itself).
    pub fn f64(&mut self) -> f64 {
        match self.below(4) {
            0 => 0.0,
            1 => -1.5,
            _ => {
                let v = f64::from_bits(self.next_u64());
                if v.is_finite() {
                    v
                } else {
                    1e300
                }
            }
        }
    }

    /// A random UUID (sometimes the zero one).
    pub fn uuid(&mut self) -> Uuid {
        if self.below(4) == 0 {
            Uuid::ZERO
        } else {
            Uuid::from_u128(((self.next_u64() as u128) << 64) | self.next_u64() as u128)
        }
    }

    /// A short string: empty, ASCII, or with multi-byte characters.
    pub fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "a", "topic", "-", "_", ".", "é", "日本", "🦀", " ", "0", "\u{0}",
        ];
        let n = match self.below(4) {
            0 => 0,
            _ => self.below(6) as usize + 1,
        };
        (0..n)
            .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
            .collect()
    }

    /// Short random bytes.
    pub fn bytes(&mut self) -> Bytes {
        let n = match self.below(4) {
            0 => 0,
            _ => self.below(24) as usize + 1,
        };
        (0..n)
            .map(|_| self.next_u64() as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    /// `None` a quarter of the time, else `Some(f(self))`.
    pub fn option<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        if self.below(4) == 0 {
            None
        } else {
            Some(f(self))
        }
    }

    /// A vector of up to three elements (fewer when nested deep, so values stay small).
    pub fn vec<T>(&mut self, mut f: impl FnMut(&mut Self) -> T) -> Vec<T> {
        let max = if self.depth >= 3 { 1 } else { 4 };
        let n = self.below(max) as usize;
        self.depth += 1;
        let v = (0..n).map(|_| f(self)).collect();
        self.depth -= 1;
        v
    }

    /// Zero to two unknown tagged fields with increasing tags from `first_free` up.
    pub fn unknown_tagged_fields(&mut self, first_free: u32) -> Vec<RawTaggedField> {
        let n = match self.below(4) {
            0 | 1 => 0,
            2 => 1,
            _ => 2,
        };
        let mut tag = first_free;
        (0..n)
            .map(|_| {
                let span = if self.bool() { 3 } else { 200 };
                tag += self.below(span) as u32;
                let f = RawTaggedField {
                    tag,
                    data: self.bytes(),
                };
                tag += 1;
                f
            })
            .collect()
    }
}

/// Something done once per message type; see [`visit_all`].
pub trait MessageVisitor {
    /// Called with the random builder of one top-level message type `M`.
    fn visit<M: Message>(&mut self, random: fn(&mut Rng, i16) -> M) -> Result<(), String>;
}

/// For every message in [`ALL_MESSAGES`](super::ALL_MESSAGES) and each of its versions: builds a
/// random value from `seed`, encodes, decodes (which must use exactly the encoded bytes),
/// compares, and re-encodes to the same bytes. Returns how many (message, version) pairs were
/// checked, or a description of the first failure.
pub fn roundtrip_all(seed: u64) -> Result<usize, String> {
    struct RoundTrip {
        rng: Rng,
        checked: usize,
    }
    impl MessageVisitor for RoundTrip {
        fn visit<M: Message>(&mut self, random: fn(&mut Rng, i16) -> M) -> Result<(), String> {
            self.checked += check_roundtrip(&mut self.rng, random)?;
            Ok(())
        }
    }
    let mut v = RoundTrip {
        rng: Rng::new(seed),
        checked: 0,
    };
    visit_all(&mut v)?;
    Ok(v.checked)
}

/// For every version of `M`: builds a random value, encodes it, decodes it (which must consume
/// exactly the encoded bytes), compares, and re-encodes to the same bytes. Returns the number of
/// versions checked.
pub fn check_roundtrip<M: Message>(
    rng: &mut Rng,
    random: fn(&mut Rng, i16) -> M,
) -> Result<usize, String> {
    let (lo, hi) = M::VERSIONS;
    for version in lo..=hi {
        let value = random(rng, version);
        let fail = |what: String| format!("{} v{version}: {what}\nvalue: {value:#?}", M::NAME);
        let mut buf = Vec::new();
        value
            .encode(&mut buf, version)
            .map_err(|e| fail(format!("encode failed: {e}")))?;
        let mut r = Reader::new(Bytes::from(buf.clone()));
        let back = M::decode(&mut r, version).map_err(|e| fail(format!("decode failed: {e}")))?;
        if !r.is_empty() {
            return Err(fail(format!(
                "decode left {} of {} bytes",
                r.remaining(),
                buf.len()
            )));
        }
        if back != value {
            return Err(fail(format!("decoded value differs: {back:#?}")));
        }
        let mut again = Vec::new();
        back.encode(&mut again, version)
            .map_err(|e| fail(format!("re-encode failed: {e}")))?;
        if again != buf {
            return Err(fail("re-encoding gave different bytes".into()));
        }
    }
    Ok((hi - lo + 1) as usize)
}
