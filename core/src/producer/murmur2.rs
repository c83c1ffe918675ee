//! Kafka's murmur2 hash, bit for bit as the Java client's `Utils.murmur2`.
//!
//! The Java client (and librdkafka's `murmur2` partitioners) place a keyed record on
//! `to_positive(murmur2(key)) % num_partitions`; reproducing the hash exactly is what makes a
//! kafkit producer put a key on the same partition as every other Kafka client.

const SEED: u32 = 0x9747_b28c;
const M: u32 = 0x5bd1_e995;
const R: u32 = 24;

/// The 32-bit murmur2 hash of `data`, exactly as Java's `org.apache.kafka.common.utils.Utils.murmur2`.
///
/// Seed `0x9747b28c`, `m = 0x5bd1e995`, `r = 24`; the body reads little-endian 4-byte blocks, the
/// 1–3 byte tail is mixed with the same fall-through as Java's `switch`, then the final mixes
/// `h ^= h >>> 13; h *= m; h ^= h >>> 15`. All arithmetic wraps as Java `int` arithmetic does; the
/// result is reinterpreted as a signed `i32`, so it may be negative. Never panics.
pub fn murmur2(data: &[u8]) -> i32 {
    let length = data.len();
    // Java computes `seed ^ length` with an `int` length; `as u32` keeps the same low bits.
    let mut h: u32 = SEED ^ (length as u32);
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    // Java's switch falls through: case 3 -> case 2 -> case 1 (which multiplies).
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: clears the sign bit (`x & 0x7fffffff`).
///
/// Not `abs`: `to_positive(i32::MIN)` is `0`, and a negative value maps to a non-negative one
/// with the same low 31 bits. This is the function Kafka applies before `% num_partitions`.
pub fn to_positive(x: i32) -> i32 {
    x & 0x7fff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_utils_test_vectors() {
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn to_positive_clears_sign_bit() {
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(5), 5);
    }
}
