//! CRC-32C (Castagnoli), the checksum of every magic 2 record batch.
//!
//! [`crc32c`] and [`crc32c_append`] compute exactly what the `crc32c` crate's functions of the
//! same names do (reflected polynomial `0x82F63B78`, initial value and final xor `!0`). On
//! x86_64 they pick one of three ways at run time (`is_x86_feature_detected!`, cached by std):
//!
//! - under [`FOLD_MIN`] bytes, with SSE4.2: the `crc32` instruction, 8 bytes at a time (the
//!   crate's own dispatch costs more than that at these lengths);
//! - [`FOLD_MIN`] bytes or more, with AVX-512F and VPCLMULQDQ: the input is folded with
//!   carry-less multiplies, 256 bytes per step in four 512-bit accumulators (each four
//!   independent 128-bit lanes), then down to one 128-bit lane, whose CRC and that of the
//!   last 0-15 bytes the `crc32` instruction computes;
//! - otherwise the `crc32c` crate (three interleaved `crc32` streams on x86_64, the CRC
//!   instructions on aarch64), which is also what every other architecture uses.
//!
//! There is no 128-bit PCLMULQDQ path for CPUs without AVX-512: on the machine measured,
//! folding four 128-bit lanes ran at half the crate's speed (a carry-less multiply issues
//! every other cycle there, whatever its width), and on CPUs that issue one per cycle it can
//! at best match the crate's three `crc32` streams (see BENCHMARKS.md).
//!
//! The AVX-512 intrinsics are stable since Rust 1.89, which is why the workspace's
//! `rust-version` is 1.89.
//!
//! # Folding
//! In the bit-reflected form a CRC works in, a 128-bit lane loaded little-endian is a
//! polynomial of degree < 128 whose highest-degree coefficients are its low 64 bits (`H`) and
//! lowest its high 64 bits (`L`), `H·x^64 + L`. Moving it `D` bits further down the message
//! (onto the lane that starts `D` bits later) multiplies it by `x^D`, and modulo the CRC
//! polynomial `P` that is `H·(x^(D+32) mod P) + L·(x^(D-32) mod P)` times `x^32`: two 64 x 32
//! bit carry-less multiplies whose xor (at most 127 bits) is xored into the later lane. The
//! 32-bit remainders are stored bit-reflected and shifted left by one (a carry-less multiply
//! of two reflected values yields the product shifted by one bit), so `x^(D±32) mod P` is
//! stored as `reflected << 1`; the unit tests recompute every constant from scratch. Once the
//! message is folded into one 128-bit lane `S`, the CRC so far is `S·x^32 mod P`, which is
//! exactly what the `crc32` instruction computes over the lane's 16 bytes from a zero state.
//!
//! This is the crate's one module with `unsafe` code (see `lib.rs`): the calls into the
//! functions compiled for the detected features, and the unaligned vector loads from
//! fixed-size chunks of the input.

/// Inputs at least this long are folded with carry-less multiplies on x86_64 CPUs with
/// AVX-512 and VPCLMULQDQ (or handed to the `crc32c` crate without them); shorter ones run the
/// `crc32` instruction 8 bytes at a time. Where the two measured equal on an AVX-512 CPU (see
/// BENCHMARKS.md).
pub const FOLD_MIN: usize = 192;

/// CRC-32C of `data`: the `crc32c` crate's `crc32c` (`crc32c(b"123456789") == 0xE3069283`).
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_append(0, data)
}

/// CRC-32C of the bytes `crc` was computed over followed by `data`: the `crc32c` crate's
/// `crc32c_append` (`crc32c_append(crc32c(a), b) == crc32c(a ++ b)`, and `crc` 0 starts a
/// new checksum).
#[inline]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if let Some(crc) = x86::crc32c_append(crc, data) {
        return crc;
    }
    ::crc32c::crc32c_append(crc, data)
}

/// The reflected CRC-32C polynomial (`x^32` mod P, bit 31 the coefficient of `x^0`).
#[cfg(test)]
const POLY: u32 = 0x82F6_3B78;

/// The folding constants for a distance of `D` bits: `[x^(D+32) mod P, x^(D-32) mod P]`, each
/// bit-reflected and shifted left by one (see the module documentation). The first multiplies
/// a lane's low 64 bits, the second its high 64 bits.
#[cfg(any(test, target_arch = "x86_64"))]
mod k {
    pub const D128: [u64; 2] = [0x0_f20c_0dfe, 0x1_4cd0_0bd6];
    pub const D256: [u64; 2] = [0x1_384a_a63a, 0x0_ba4f_c28e];
    pub const D384: [u64; 2] = [0x0_1c29_1d04, 0x1_d82c_63da];
    pub const D512: [u64; 2] = [0x0_740e_ef02, 0x0_9e4a_ddf8];
    pub const D1024: [u64; 2] = [0x0_6992_cea2, 0x0_0d3b_6092];
    pub const D1536: [u64; 2] = [0x0_a87a_b8a8, 0x0_ab7a_ff2a];
    pub const D2048: [u64; 2] = [0x0_dcb1_7aa4, 0x0_b9e0_2b86];
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use core::arch::x86_64::*;

    use super::{k, FOLD_MIN};

    /// `crc32c_append` on this CPU, or `None` when the `crc32c` crate is to be used instead:
    /// without SSE4.2, and for inputs of [`FOLD_MIN`] bytes or more without AVX-512 and
    /// VPCLMULQDQ.
    #[inline]
    pub(super) fn crc32c_append(crc: u32, data: &[u8]) -> Option<u32> {
        if !is_x86_feature_detected!("sse4.2") {
            return None;
        }
        let state = !crc;
        let state = if data.len() < FOLD_MIN {
            // SAFETY: SSE4.2, the one feature `crc32_sse42` is compiled for, was detected.
            unsafe { crc32_sse42(state, data) }
        } else if is_x86_feature_detected!("pclmulqdq")
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("vpclmulqdq")
        {
            // SAFETY: every feature `fold_avx512` is compiled for (AVX-512F, VPCLMULQDQ,
            // PCLMULQDQ, SSE4.2) was detected.
            unsafe { fold_avx512(state, data) }
        } else {
            return None;
        };
        Some(!state)
    }

    /// The CRC state (not inverted) after `data`, from `state`, by the `crc32` instruction.
    #[target_feature(enable = "sse4.2")]
    pub(super) fn crc32_sse42(state: u32, data: &[u8]) -> u32 {
        let (words, tail) = data.as_chunks::<8>();
        let mut wide = u64::from(state);
        for w in words {
            wide = _mm_crc32_u64(wide, u64::from_le_bytes(*w));
        }
        // The instruction leaves the upper half zero.
        let mut state = wide as u32;
        for &b in tail {
            state = _mm_crc32_u8(state, b);
        }
        state
    }

    /// The 16 bytes of `b` as a vector.
    #[inline(always)]
    fn load128(b: &[u8; 16]) -> __m128i {
        // SAFETY: `b` is 16 readable bytes and `_mm_loadu_si128` has no alignment
        // requirement; it needs only SSE2, which every x86_64 CPU has.
        unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
    }

    /// The 64 bytes of `b` as a vector.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load512(b: &[u8; 64]) -> __m512i {
        // SAFETY: `b` is 64 readable bytes and `_mm512_loadu_si512` has no alignment
        // requirement; AVX-512F is enabled for this function, so it only runs where the CPU
        // has it.
        unsafe { _mm512_loadu_si512(b.as_ptr().cast()) }
    }

    /// The constants for one distance, low lane first.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn k128(k: [u64; 2]) -> __m128i {
        _mm_set_epi64x(k[1] as i64, k[0] as i64)
    }

    /// `x` moved onto the lane `k`'s distance later, xored with `y` (the lane there).
    #[inline]
    #[target_feature(enable = "pclmulqdq")]
    fn fold128(x: __m128i, k: __m128i, y: __m128i) -> __m128i {
        let lo = _mm_clmulepi64_si128::<0x00>(x, k);
        let hi = _mm_clmulepi64_si128::<0x11>(x, k);
        _mm_xor_si128(_mm_xor_si128(lo, hi), y)
    }

    /// The same for each of the four 128-bit lanes of 512-bit vectors.
    #[inline]
    #[target_feature(enable = "avx512f,vpclmulqdq")]
    fn fold512(x: __m512i, k: __m512i, y: __m512i) -> __m512i {
        let lo = _mm512_clmulepi64_epi128::<0x00>(x, k);
        let hi = _mm512_clmulepi64_epi128::<0x11>(x, k);
        _mm512_ternarylogic_epi64::<0x96>(lo, hi, y)
    }

    /// [`k128`] in each 128-bit lane.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn k512(k: [u64; 2]) -> __m512i {
        _mm512_broadcast_i32x4(k128(k))
    }

    /// The end of the fold: `v` is the message so far folded into 128 bits, `rest` (under
    /// 64 bytes) the bytes after it. Returns the CRC state after `rest`.
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse4.2")]
    fn finish(mut v: __m128i, rest: &[u8]) -> u32 {
        let (lanes, tail) = rest.as_chunks::<16>();
        let k = k128(k::D128);
        for lane in lanes {
            v = fold128(v, k, load128(lane));
        }
        // The CRC state of the folded message is the CRC of its 16 bytes from state 0.
        let lo = _mm_cvtsi128_si64(v) as u64;
        let hi = _mm_extract_epi64::<1>(v) as u64;
        let state = _mm_crc32_u64(_mm_crc32_u64(0, lo), hi) as u32;
        crc32_sse42(state, tail)
    }

    /// The CRC state after `data` from `state`, folding four 512-bit accumulators.
    #[target_feature(enable = "avx512f,vpclmulqdq,pclmulqdq,sse4.2")]
    pub(super) fn fold_avx512(state: u32, data: &[u8]) -> u32 {
        let (blocks, rest) = data.as_chunks::<64>();
        let Some((first, mut blocks)) = blocks.split_first() else {
            return crc32_sse42(state, data);
        };
        // The state so far is xored into the message's first 32 bits.
        let init = _mm512_zextsi128_si512(_mm_cvtsi32_si128(state as i32));
        let mut x0 = _mm512_xor_si512(load512(first), init);
        if let [b1, b2, b3, more @ ..] = blocks {
            let mut x1 = load512(b1);
            let mut x2 = load512(b2);
            let mut x3 = load512(b3);
            let (groups, tail) = more.as_chunks::<4>();
            let k = k512(k::D2048);
            for [b0, b1, b2, b3] in groups {
                x0 = fold512(x0, k, load512(b0));
                x1 = fold512(x1, k, load512(b1));
                x2 = fold512(x2, k, load512(b2));
                x3 = fold512(x3, k, load512(b3));
            }
            let x = fold512(x0, k512(k::D1536), x3);
            let y = fold512(x1, k512(k::D1024), x);
            x0 = fold512(x2, k512(k::D512), y);
            blocks = tail;
        }
        let k = k512(k::D512);
        for block in blocks {
            x0 = fold512(x0, k, load512(block));
        }
        // The four lanes of the last 64 bytes into one.
        let l0 = _mm512_castsi512_si128(x0);
        let l1 = _mm512_extracti32x4_epi32::<1>(x0);
        let l2 = _mm512_extracti32x4_epi32::<2>(x0);
        let l3 = _mm512_extracti32x4_epi32::<3>(x0);
        let v = fold128(l0, k128(k::D384), l3);
        let v = fold128(l1, k128(k::D256), v);
        let v = fold128(l2, k128(k::D128), v);
        finish(v, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `x^n mod P` in the reflected form (bit 31 the coefficient of `x^0`), by shifting one
    /// bit at a time: multiplying by `x` is a right shift, and the `x^32` that falls out of
    /// bit 0 is replaced by `P`'s lower terms.
    const fn xpow_mod(n: u32) -> u32 {
        let mut v = 1 << 31;
        let mut i = 0;
        while i < n {
            v = if v & 1 != 0 { (v >> 1) ^ POLY } else { v >> 1 };
            i += 1;
        }
        v
    }

    /// The pair of folding constants for a distance of `d` bits.
    fn fold_constants(d: u32) -> [u64; 2] {
        [
            u64::from(xpow_mod(d + 32)) << 1,
            u64::from(xpow_mod(d - 32)) << 1,
        ]
    }

    #[test]
    fn xpow_mod_matches_the_crc_of_a_single_bit() {
        // The state after a message of `n` bytes whose first bit is 1 and the rest 0, from
        // state 0, is M·x^32 mod P with M = x^(8n-1).
        assert_eq!(xpow_mod(32), POLY);
        for n in 1..300u32 {
            let mut msg = vec![0u8; n as usize];
            msg[0] = 1;
            let state = !::crc32c::crc32c_append(!0, &msg);
            assert_eq!(xpow_mod(8 * n + 31), state, "n = {n}");
        }
    }

    #[test]
    fn every_folding_constant_is_derived() {
        for (d, constants) in [
            (128, k::D128),
            (256, k::D256),
            (384, k::D384),
            (512, k::D512),
            (1024, k::D1024),
            (1536, k::D1536),
            (2048, k::D2048),
        ] {
            assert_eq!(constants, fold_constants(d), "distance {d}");
        }
    }

    #[test]
    fn known_vectors() {
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        assert_eq!(crc32c_append(crc32c(b"1234"), b"56789"), 0xE306_9283);
    }

    fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect()
    }

    /// Each x86_64 tier forced on every length up to 1 KiB and a few start alignments, from
    /// an arbitrary prior CRC (the dispatching function and longer inputs are tested in
    /// `tests/crc32c.rs`).
    #[cfg(target_arch = "x86_64")]
    #[test]
    #[allow(unsafe_code)]
    fn every_x86_tier_matches_the_crate() {
        let buf = random_bytes(1024 + 64, 0x1234_5678_9abc_def1);
        let sse42 = is_x86_feature_detected!("sse4.2");
        let avx512 = sse42
            && is_x86_feature_detected!("pclmulqdq")
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("vpclmulqdq");
        for start in [0, 1, 7, 13, 32, 63] {
            for len in 0..=1024 {
                let data = &buf[start..start + len];
                let prior = 0x1D0F_5A17_u32.wrapping_mul(len as u32 + 1);
                let want = ::crc32c::crc32c_append(prior, data);
                if sse42 {
                    // SAFETY: SSE4.2 was detected.
                    let got = !unsafe { x86::crc32_sse42(!prior, data) };
                    assert_eq!(got, want, "sse4.2, start {start}, len {len}");
                }
                if avx512 {
                    // SAFETY: AVX-512F, VPCLMULQDQ, PCLMULQDQ and SSE4.2 were detected.
                    let got = !unsafe { x86::fold_avx512(!prior, data) };
                    assert_eq!(got, want, "avx512, start {start}, len {len}");
                }
            }
        }
        eprintln!("x86 tiers tested: sse4.2 {sse42}, avx512 {avx512}");
    }
}
