//! Byte-level vectors of the legacy encoder and an encode-decode round trip.
//!
//! The expected bytes and CRCs below were computed independently of this crate with
//! python3's `zlib.crc32` over `magic..end` of each message, `struct.pack('>qi', offset,
//! size)` for the log header, and a straightforward python xxh32 for the LZ4 header checksums
//! (it gives 0x82 for Kafka's `60 40` descriptor, the value every LZ4 frame Kafka writes
//! carries). The CRC does not cover the offset, so the same message at another offset only
//! differs in its first eight bytes.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::records::{Batch, DecodeOptions, LegacyBatch, RecordSet};

/// Magic 0: key "k", value "v" at offset 0 (CRC 0x1fecd70a).
const V0_KEY_VALUE: &str = "0000000000000000000000101fecd70a0000000000016b0000000176";
/// Magic 0: null key, null value at offset 1 (CRC 0xa7ec6803).
const V0_NULLS: &str = "00000000000000010000000ea7ec68030000ffffffffffffffff";
/// Magic 1: null key, value "abc", timestamp 1700000000000 at offset 0 (CRC 0x1cff7dfc).
const V1_NULL_KEY: &str =
    "0000000000000000000000191cff7dfc01000000018bcfe56800ffffffff00000003616263";
/// Magic 1: key "key", empty value, timestamp 1700000000001 at offset 1 (CRC 0x60374b15).
const V1_EMPTY_VALUE: &str =
    "00000000000000010000001960374b1501000000018bcfe56801000000036b657900000000";

const TS: i64 = 1_700_000_000_000;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `message` (hex) with its offset field replaced.
fn at_offset(message: &str, offset: i64) -> Vec<u8> {
    let mut m = hex(message);
    m[..8].copy_from_slice(&offset.to_be_bytes());
    m
}

/// CRC-32 (IEEE, reflected, polynomial 0xEDB88320) bit by bit: a second implementation to
/// check the wrapper CRCs, whose compressed bodies have no hand-computed vector.
fn crc32_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn two_v0(codec: Compression, base: i64) -> Bytes {
    let mut b = LegacyMessageSetBuilder::new(0, codec)
        .unwrap()
        .base_offset(base);
    b.append(TS, Some(b"k"), Some(b"v")).unwrap();
    b.append(TS, None, None).unwrap();
    b.finish().unwrap()
}

fn two_v1(codec: Compression, base: i64) -> Bytes {
    let mut b = LegacyMessageSetBuilder::new(1, codec)
        .unwrap()
        .base_offset(base);
    b.append(TS, None, Some(b"abc")).unwrap();
    b.append(TS + 1, Some(b"key"), Some(b"")).unwrap();
    b.finish().unwrap()
}

#[test]
fn uncompressed_messages_match_the_hand_computed_bytes() {
    let mut want = hex(V0_KEY_VALUE);
    want.extend(hex(V0_NULLS));
    assert_eq!(&two_v0(Compression::None, 0)[..], &want[..]);

    let mut want = hex(V1_NULL_KEY);
    want.extend(hex(V1_EMPTY_VALUE));
    assert_eq!(&two_v1(Compression::None, 0)[..], &want[..]);

    // Offsets follow the base (the broker assigns the real ones).
    let mut want = at_offset(V0_KEY_VALUE, 40);
    want.extend(at_offset(V0_NULLS, 41));
    assert_eq!(&two_v0(Compression::None, 40)[..], &want[..]);
}

/// The fields of a wrapper message: (offset, crc, magic, attributes, timestamp, value).
fn wrapper_fields(set: &[u8]) -> (i64, u32, i8, i8, i64, Vec<u8>) {
    let offset = i64::from_be_bytes(set[0..8].try_into().unwrap());
    let size = i32::from_be_bytes(set[8..12].try_into().unwrap()) as usize;
    assert_eq!(
        set.len(),
        12 + size,
        "one wrapper message, nothing after it"
    );
    let crc = u32::from_be_bytes(set[12..16].try_into().unwrap());
    assert_eq!(crc, crc32_bitwise(&set[16..]), "wrapper CRC");
    let magic = set[16] as i8;
    let attributes = set[17] as i8;
    let (timestamp, rest) = if magic == 1 {
        (i64::from_be_bytes(set[18..26].try_into().unwrap()), 26)
    } else {
        (NO_TIMESTAMP, 18)
    };
    assert_eq!(&set[rest..rest + 4], &[0xff; 4], "a wrapper has a null key");
    let len = i32::from_be_bytes(set[rest + 4..rest + 8].try_into().unwrap()) as usize;
    assert_eq!(rest + 8 + len, set.len());
    (
        offset,
        crc,
        magic,
        attributes,
        timestamp,
        set[rest + 8..].to_vec(),
    )
}

#[test]
fn compressed_wrappers_hold_the_inner_messages_with_the_offsets_each_magic_expects() {
    for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4] {
        // Magic 0: inner offsets absolute from the base; wrapper at the last offset.
        let set = two_v0(codec, 100);
        let (offset, _, magic, attributes, _, value) = wrapper_fields(&set);
        assert_eq!((offset, magic), (101, 0), "{codec:?}");
        assert_eq!(attributes, codec.attribute_bits() as i8);
        let inner = match codec {
            Compression::Lz4 => lz4::decompress(&value, 1 << 20, true).unwrap(),
            c => compression::decompress(c, &value, 1 << 20).unwrap(),
        };
        let mut want = at_offset(V0_KEY_VALUE, 100);
        want.extend(at_offset(V0_NULLS, 101));
        assert_eq!(inner, want, "{codec:?} magic 0 inner set");

        // Magic 1: inner offsets relative (0, 1); wrapper at the last absolute offset with
        // the largest timestamp (CreateTime: bit 3 clear).
        let set = two_v1(codec, 100);
        let (offset, _, magic, attributes, timestamp, value) = wrapper_fields(&set);
        assert_eq!((offset, magic, timestamp), (101, 1, TS + 1), "{codec:?}");
        assert_eq!(attributes, codec.attribute_bits() as i8);
        let inner = compression::decompress(codec, &value, 1 << 20).unwrap();
        let mut want = hex(V1_NULL_KEY);
        want.extend(hex(V1_EMPTY_VALUE));
        assert_eq!(inner, want, "{codec:?} magic 1 inner set");
    }
}

#[test]
fn lz4_header_checksum_is_broken_for_magic_0_and_correct_for_magic_1() {
    // LZ4 frame magic (little-endian 0x184D2204), FLG 0x60, BD 0x40, then HC: the broken
    // checksum over magic and descriptor is 0x1a, the correct one over the descriptor 0x82.
    let (.., v0) = wrapper_fields(&two_v0(Compression::Lz4, 0));
    assert_eq!(&v0[..7], &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x1a]);
    let (.., v1) = wrapper_fields(&two_v1(Compression::Lz4, 0));
    assert_eq!(&v1[..7], &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82]);
}

#[test]
fn snappy_uses_the_xerial_framing_old_brokers_read() {
    for set in [
        two_v0(Compression::Snappy, 0),
        two_v1(Compression::Snappy, 0),
    ] {
        let (.., value) = wrapper_fields(&set);
        assert_eq!(&value[..16], &compression::snappy::XERIAL_HEADER);
    }
}

#[test]
fn zstd_headers_and_bad_magics_are_refused_with_the_reason() {
    for magic in [0, 1] {
        let e = LegacyMessageSetBuilder::new(magic, Compression::Zstd).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("zstd") && text.contains("magic 2"), "{text}");
        let mut b = LegacyMessageSetBuilder::new(magic, Compression::None).unwrap();
        let e = b
            .append_with_headers(TS, None, Some(b"v"), &[Header::new("h", "x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("headers") && e.contains("0.11"), "{e}");
        assert!(b.is_empty(), "nothing written for the refused record");
        b.append_with_headers(TS, None, Some(b"v"), &[]).unwrap();
        assert_eq!(b.len(), 1);
    }
    assert!(LegacyMessageSetBuilder::new(2, Compression::None).is_err());
}

#[test]
fn size_estimates_are_exact_before_compression() {
    for magic in [0i8, 1] {
        let mut b = LegacyMessageSetBuilder::new(magic, Compression::None).unwrap();
        let mut expected = 0;
        for (k, v) in [
            (Some(&b"key"[..]), Some(&b"value"[..])),
            (None, None),
            (None, Some(&b""[..])),
        ] {
            expected += LegacyMessageSetBuilder::record_size(magic, k, v);
            b.append(TS, k, v).unwrap();
            assert_eq!(b.size_in_bytes(), expected);
        }
        assert_eq!(b.finish().unwrap().len(), expected);
        // Compressed: the inner messages plus the wrapper's own fields.
        let mut b = LegacyMessageSetBuilder::new(magic, Compression::Gzip).unwrap();
        b.append(TS, None, Some(b"v")).unwrap();
        assert_eq!(
            b.size_in_bytes(),
            LegacyMessageSetBuilder::record_size(magic, None, Some(b"v")) + message_overhead(magic)
        );
    }
}

#[test]
fn a_reused_buffer_carries_nothing_over() {
    let mut b = LegacyMessageSetBuilder::new(0, Compression::None).unwrap();
    b.append(TS, Some(b"k"), Some(b"v")).unwrap();
    let buf = b.into_buffer();
    assert!(buf.is_empty() && buf.capacity() > 0);
    let mut b = LegacyMessageSetBuilder::with_buffer(0, Compression::None, buf).unwrap();
    b.append(TS, None, None).unwrap();
    assert_eq!(&b.finish().unwrap()[..], &at_offset(V0_NULLS, 0)[..]);
}

/// A magic `magic` wrapper (gzip) at `offset` whose one inner message is itself a gzip
/// wrapper of `values`, as kafka-python's producer up to 1.2.4 wrote.
fn double_compressed(magic: i8, offset: i64, values: &[&[u8]]) -> (Bytes, Vec<u8>) {
    let mut inner = LegacyMessageSetBuilder::new(magic, Compression::Gzip).unwrap();
    for v in values {
        inner.append(TS, None, Some(v)).unwrap();
    }
    let inner_wrapper = inner.finish().unwrap().to_vec();
    // The inner wrapper as the outer set's only message, at relative offset 0 (magic 1) or
    // at the wrapper's own offset (magic 0).
    let mut inner_set = inner_wrapper.clone();
    let inner_offset = if magic == 1 { 0 } else { offset };
    inner_set[..8].copy_from_slice(&i64::to_be_bytes(inner_offset));
    let (.., inner_value) = wrapper_fields(&inner_wrapper);
    let mut compressed = Vec::new();
    compression::compress(Compression::Gzip, None, &inner_set, &mut compressed).unwrap();
    let mut outer = Vec::new();
    write_message(
        &mut outer,
        magic,
        offset,
        Compression::Gzip.attribute_bits() as i8,
        TS,
        None,
        Some(&compressed),
    )
    .unwrap();
    (Bytes::from(outer), inner_value)
}

#[test]
fn double_compressed_messages_are_handed_out_as_published_or_skipped() {
    for magic in [0, 1] {
        let (outer, inner_value) = double_compressed(magic, 57, &[b"a", b"b"]);
        let keep = DecodeOptions::default();
        let batch = LegacyBatch::decode(outer.clone(), &keep).unwrap();
        let records = batch.records();
        assert_eq!(records.len(), 1, "magic {magic}: one record, as published");
        assert_eq!(records[0].offset, 57);
        assert_eq!(records[0].key, None);
        assert_eq!(records[0].value.as_deref(), Some(&inner_value[..]));
        assert_eq!(batch.last_offset(), 57);

        let skip = DecodeOptions {
            skip_double_compressed: true,
            ..DecodeOptions::default()
        };
        let batch = LegacyBatch::decode(outer, &skip).unwrap();
        assert!(batch.records().is_empty(), "magic {magic}: skipped");
        assert_eq!(batch.last_offset(), 57, "the next fetch starts after it");
    }
}

/// One record for the round trip: (timestamp, key, value).
type Rec = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

fn rec() -> impl Strategy<Value = Rec> {
    (
        0i64..=i64::MAX,
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn encode_then_decode_gives_the_records_back(
        magic in 0i8..=1,
        codec in prop_oneof![
            Just(Compression::None),
            Just(Compression::Gzip),
            Just(Compression::Snappy),
            Just(Compression::Lz4),
        ],
        base in 0i64..1_000_000,
        records in proptest::collection::vec(rec(), 1..30),
    ) {
        let mut b = LegacyMessageSetBuilder::new(magic, codec).unwrap().base_offset(base);
        for (i, (ts, k, v)) in records.iter().enumerate() {
            prop_assert_eq!(b.append(*ts, k.as_deref(), v.as_deref()).unwrap(), base + i as i64);
        }
        let estimate = b.size_in_bytes();
        let set = b.finish().unwrap();
        if codec == Compression::None {
            prop_assert_eq!(set.len(), estimate);
        }
        let mut got = Vec::new();
        let mut reader = RecordSet::new(set, DecodeOptions::default());
        for batch in reader.by_ref() {
            let batch = batch.unwrap();
            prop_assert!(matches!(batch, Batch::Legacy(_)));
            prop_assert_eq!(batch.magic(), magic);
            prop_assert_eq!(batch.compression(), codec);
            got.extend(batch.into_records().unwrap());
        }
        prop_assert_eq!(reader.partial_tail(), 0);
        prop_assert_eq!(got.len(), records.len());
        for (i, (r, (ts, k, v))) in got.iter().zip(&records).enumerate() {
            prop_assert_eq!(r.offset, base + i as i64);
            prop_assert_eq!(r.timestamp, if magic == 0 { NO_TIMESTAMP } else { *ts });
            prop_assert_eq!(r.key.as_deref(), k.as_deref());
            prop_assert_eq!(r.value.as_deref(), v.as_deref());
            prop_assert!(r.headers.is_empty());
        }
    }
}
