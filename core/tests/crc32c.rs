//! `records::crc32c` against the `crc32c` crate it replaces: every length to 4 KiB at every
//! start alignment within a cache line, random lengths to 4 MiB, and appends over random
//! splits. On a CPU with AVX-512 and VPCLMULQDQ these cover each way the function computes
//! (the `crc32` instruction under `FOLD_MIN` bytes, the 512-bit fold from there on, with every
//! remainder of 0-255 bytes after the 256-byte steps); the unit tests in the module also force
//! each one directly.

use kafkit_core::records::crc32c::{crc32c, crc32c_append, FOLD_MIN};

/// A deterministic xorshift64 stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() >> 32) as u8).collect()
    }
}

#[test]
fn known_vectors() {
    assert_eq!(crc32c(b""), 0);
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c_append(0, b"123456789"), 0xE306_9283);
    assert_eq!(crc32c_append(crc32c(b"12345"), b"6789"), 0xE306_9283);
    // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of 0xFF, ascending and descending.
    assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
    let ascending: Vec<u8> = (0..32).collect();
    assert_eq!(crc32c(&ascending), 0x46DD_794E);
    let descending: Vec<u8> = (0..32).rev().collect();
    assert_eq!(crc32c(&descending), 0x113F_DB5C);
}

#[test]
fn every_length_to_4_kib_at_every_alignment() {
    let buf = Rng(0x9E37_79B9_7F4A_7C15).bytes(4096 + 64);
    for start in 0..64 {
        for len in 0..=4096 {
            let data = &buf[start..start + len];
            assert_eq!(
                crc32c(data),
                crc32c::crc32c(data),
                "start {start}, len {len}"
            );
        }
    }
}

#[test]
fn every_length_to_1_kib_from_a_prior_crc() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let buf = rng.bytes(1024 + 64);
    for len in 0..=1024 {
        let start = rng.below(64);
        let prior = rng.next() as u32;
        let data = &buf[start..start + len];
        assert_eq!(
            crc32c_append(prior, data),
            crc32c::crc32c_append(prior, data),
            "start {start}, len {len}, prior {prior:#x}"
        );
    }
}

#[test]
fn random_lengths_to_4_mib() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let buf = rng.bytes((4 << 20) + 64);
    let mut lengths = vec![4 << 20, 1 << 20, (1 << 20) + 1, 110_933 - 21, 16_583 - 21];
    lengths.extend((0..40).map(|_| 4097 + rng.below((4 << 20) - 4097)));
    for len in lengths {
        let start = rng.below(64);
        let data = &buf[start..start + len];
        assert_eq!(
            crc32c(data),
            crc32c::crc32c(data),
            "start {start}, len {len}"
        );
    }
}

#[test]
fn appends_over_random_splits_equal_the_whole() {
    let mut rng = Rng(0xBF58_476D_1CE4_E5B9);
    for _ in 0..200 {
        let len = rng.below(70_000);
        let data = rng.bytes(len);
        let whole = crc32c(&data);
        let mut cuts: Vec<usize> = (0..rng.below(6)).map(|_| rng.below(len + 1)).collect();
        cuts.sort_unstable();
        let mut crc = 0;
        let mut at = 0;
        for cut in cuts.into_iter().chain([len]) {
            crc = crc32c_append(crc, &data[at..cut]);
            at = cut;
        }
        assert_eq!(crc, whole, "len {len}");
    }
    // Every split point of a buffer a few steps long, across FOLD_MIN on both sides.
    let data = Rng(7).bytes(3 * 256 + FOLD_MIN + 17);
    let whole = crc32c::crc32c(&data);
    for cut in 0..=data.len() {
        let crc = crc32c_append(crc32c(&data[..cut]), &data[cut..]);
        assert_eq!(crc, whole, "cut {cut}");
    }
}

#[test]
fn every_single_bit_flip_changes_the_crc() {
    let mut data = Rng(11).bytes(1500);
    let clean = crc32c(&data);
    for bit in 0..data.len() * 8 {
        data[bit / 8] ^= 1 << (bit % 8);
        let flipped = crc32c(&data);
        assert_ne!(flipped, clean, "bit {bit}");
        assert_eq!(flipped, crc32c::crc32c(&data), "bit {bit}");
        data[bit / 8] ^= 1 << (bit % 8);
    }
}
