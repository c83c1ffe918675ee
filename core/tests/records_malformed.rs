//! Truncated and corrupted input: every decoder answers with an error (or, for a set's final
//! batch, a partial tail), never a panic.

use bytes::Bytes;
use kafkit_core::codec::DecodeError;
use kafkit_core::compression::Compression;
use kafkit_core::records::{
    DecodeOptions, Header, LegacyBatch, LegacyMessageSetBuilder, RecordBatch, RecordBatchBuilder,
    RecordSet,
};
use proptest::prelude::*;

fn v2_batch(codec: Compression) -> Bytes {
    let mut b = RecordBatchBuilder::new(codec).producer(7, 1, 0);
    for i in 0..3u8 {
        b.append(
            1_000 + i as i64,
            Some(&[i; 3]),
            Some(&[i; 40]),
            &[Header::new("h", vec![i; 2]), Header::null("n")],
        )
        .unwrap();
    }
    b.finish().unwrap()
}

fn legacy_set(magic: i8, codec: Compression) -> Bytes {
    let mut b = LegacyMessageSetBuilder::new(magic, codec).unwrap();
    for i in 0..3u8 {
        b.append(1_000, Some(&[i; 3]), Some(&[i; 40])).unwrap();
    }
    b.finish().unwrap()
}

fn no_crc() -> DecodeOptions {
    DecodeOptions {
        check_crcs: false,
        ..DecodeOptions::default()
    }
}

/// Reads everything a set yields, records included, and returns (batches, records, error?).
fn drain(data: Bytes, opts: DecodeOptions) -> (usize, usize, bool) {
    let (mut batches, mut records, mut failed) = (0, 0, false);
    for b in RecordSet::new(data, opts) {
        match b {
            Ok(b) => {
                batches += 1;
                for r in b.records() {
                    match r {
                        Ok(r) => {
                            records += 1;
                            let _ = r.headers.to_vec();
                        }
                        Err(_) => failed = true,
                    }
                }
            }
            Err(_) => failed = true,
        }
    }
    (batches, records, failed)
}

#[test]
fn every_strict_prefix_of_a_v2_batch() {
    for codec in Compression::ALL {
        let full = v2_batch(codec);
        for n in 0..full.len() {
            let prefix = full.slice(..n);
            assert!(
                RecordBatch::decode(prefix.clone(), &DecodeOptions::default()).is_err(),
                "{codec}: strict decoder accepted a {n}-byte prefix"
            );
            // As the last batch of a set, a prefix is a partial batch: no batch, no error.
            let mut set = RecordSet::new(prefix, DecodeOptions::default());
            assert!(set.next().is_none(), "{codec}: prefix {n}");
            assert_eq!(set.partial_tail(), n);
            // After a complete batch, the same.
            let mut two = full.to_vec();
            two.extend_from_slice(&full[..n]);
            let mut set = RecordSet::new(Bytes::from(two), DecodeOptions::default());
            assert!(set.next().unwrap().is_ok());
            assert!(set.next().is_none());
            assert_eq!(set.partial_tail(), n);
        }
        // Trailing bytes after a single batch are an error for the strict decoder.
        let mut long = full.to_vec();
        long.push(0);
        assert_eq!(
            RecordBatch::decode(Bytes::from(long), &DecodeOptions::default()).unwrap_err(),
            DecodeError::TrailingBytes(1)
        );
    }
}

#[test]
fn every_strict_prefix_of_a_legacy_message() {
    for magic in [0, 1] {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::None,
        ] {
            let set = legacy_set(magic, codec);
            // The first top-level message of the set.
            let len = i32::from_be_bytes(set[8..12].try_into().unwrap()) as usize + 12;
            let msg = set.slice(..len);
            assert!(LegacyBatch::decode(msg.clone(), &DecodeOptions::default()).is_ok());
            for n in 0..len {
                assert!(
                    LegacyBatch::decode(msg.slice(..n), &DecodeOptions::default()).is_err(),
                    "magic {magic} {codec}: prefix {n}"
                );
                assert_eq!(
                    drain(msg.slice(..n), DecodeOptions::default()),
                    (0, 0, false)
                );
            }
        }
    }
}

#[test]
fn every_flipped_byte_of_a_v2_batch() {
    for codec in Compression::ALL {
        let full = v2_batch(codec);
        for i in 0..full.len() {
            let mut bad = full.to_vec();
            bad[i] ^= 0x5A;
            let res = RecordBatch::decode(Bytes::from(bad.clone()), &DecodeOptions::default());
            // baseOffset (0..8) and partitionLeaderEpoch (12..16) are outside the CRC.
            if (0..8).contains(&i) || (12..16).contains(&i) {
                assert!(res.is_ok(), "{codec}: byte {i}");
            } else {
                assert!(res.is_err(), "{codec}: flipped byte {i} went unnoticed");
            }
            // The set reader reports it as an error too, unless the length grew past the end
            // (indistinguishable from a partial batch).
            let (batches, _, failed) = drain(Bytes::from(bad.clone()), DecodeOptions::default());
            if !(0..8).contains(&i) && !(12..16).contains(&i) && !(8..12).contains(&i) {
                assert!(failed && batches == 0, "{codec}: byte {i}");
            }
            // Without CRC checks nothing panics, whatever the decoders make of it.
            let _ = drain(Bytes::from(bad), no_crc());
        }
    }
}

#[test]
fn every_flipped_byte_of_a_legacy_message() {
    for magic in [0, 1] {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Lz4,
            Compression::Snappy,
        ] {
            let set = legacy_set(magic, codec);
            for i in 0..set.len() {
                let mut bad = set.to_vec();
                bad[i] ^= 0xA5;
                let _ = drain(Bytes::from(bad.clone()), no_crc());
                if i >= 16 && codec != Compression::None {
                    // Inside the wrapper's CRC.
                    let (_, _, failed) = drain(Bytes::from(bad), DecodeOptions::default());
                    assert!(failed, "magic {magic} {codec}: byte {i}");
                }
            }
        }
    }
}

#[test]
fn corruption_mid_set_stops_the_set() {
    let a = v2_batch(Compression::None);
    let mut set = a.to_vec();
    set[30] ^= 1; // inside the first batch's CRC range
    set.extend_from_slice(&a);
    let mut rs = RecordSet::new(Bytes::from(set), DecodeOptions::default());
    assert!(matches!(
        rs.next(),
        Some(Err(DecodeError::CrcMismatch { .. }))
    ));
    assert!(rs.next().is_none());
}

/// Re-seals a modified v2 batch: fixes its length and CRC.
fn reseal(mut b: Vec<u8>) -> Bytes {
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

#[test]
fn structurally_bad_batches_with_valid_crcs() {
    let good = v2_batch(Compression::None).to_vec();
    let opts = DecodeOptions::default();

    // Unknown codec id 5 in the attributes.
    let mut b = good.clone();
    b[22] = 5;
    assert!(matches!(
        RecordBatch::decode(reseal(b), &opts),
        Err(DecodeError::Invalid { .. })
    ));

    // Unknown magic.
    let mut b = good.clone();
    b[16] = 3;
    assert!(RecordBatch::decode(reseal(b.clone()), &opts).is_err());
    assert!(matches!(drain(reseal(b), opts), (0, 0, true)));

    // Negative record count, and more records than the bytes can hold.
    for count in [-1i32, 1000] {
        let mut b = good.clone();
        b[57..61].copy_from_slice(&count.to_be_bytes());
        assert!(RecordBatch::decode(reseal(b), &opts).is_err());
    }

    // Fewer records declared than present: the leftovers are trailing bytes.
    let mut b = good.clone();
    b[57..61].copy_from_slice(&2i32.to_be_bytes());
    let batch = RecordBatch::decode(reseal(b), &opts).unwrap();
    let res: Result<Vec<_>, _> = batch.records().collect();
    assert!(matches!(res, Err(DecodeError::TrailingBytes(_))));

    // One more record declared than present.
    let mut b = good.clone();
    b.truncate(b.len() - 1);
    let batch = RecordBatch::decode(reseal(b), &opts).unwrap();
    assert!(batch.decode_records().is_err());

    // A record whose length field disagrees with its contents.
    let mut b = good.clone();
    b[61] += 2;
    let batch = RecordBatch::decode(reseal(b), &opts).unwrap();
    assert!(batch.decode_records().is_err());

    // A header key that is not UTF-8: the first record's first header key byte.
    let mut b = good;
    let key_at = b.iter().position(|&c| c == b'h').unwrap();
    b[key_at] = 0xFF;
    let batch = RecordBatch::decode(reseal(b), &opts).unwrap();
    assert!(matches!(
        batch.decode_records(),
        Err(DecodeError::InvalidUtf8)
    ));

    // A batch length below the header size.
    let mut b = v2_batch(Compression::None).to_vec();
    b[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert!(RecordBatch::decode(Bytes::from(b.clone()), &opts).is_err());
    assert!(matches!(drain(Bytes::from(b), opts), (0, 0, true)));

    // A negative length in a set.
    let mut b = v2_batch(Compression::None).to_vec();
    b[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(matches!(drain(Bytes::from(b), opts), (0, 0, true)));
}

#[test]
fn decompression_limit_applies_to_batches() {
    let mut b = RecordBatchBuilder::new(Compression::Gzip);
    b.append(0, None, Some(&[0u8; 100_000]), &[]).unwrap();
    let raw = b.finish().unwrap();
    let small = DecodeOptions {
        max_decompressed_size: 50_000,
        ..DecodeOptions::default()
    };
    assert_eq!(
        RecordBatch::decode(raw.clone(), &small).unwrap_err(),
        DecodeError::DecompressionLimit { limit: 50_000 }
    );
    assert!(RecordBatch::decode(raw, &DecodeOptions::default()).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let data = Bytes::from(data);
        let _ = drain(data.clone(), no_crc());
        let _ = drain(data.clone(), DecodeOptions::default());
        let _ = RecordBatch::decode(data.clone(), &no_crc());
        let _ = LegacyBatch::decode(data.clone(), &no_crc());
        for c in Compression::ALL {
            let _ = kafkit_core::compression::decompress(c, &data, 1 << 16);
        }
    }

    #[test]
    fn mutated_batches_never_panic(
        which in 0usize..9,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut data = match which {
            0..=4 => v2_batch(Compression::ALL[which]).to_vec(),
            5 => legacy_set(0, Compression::Gzip).to_vec(),
            6 => legacy_set(1, Compression::Lz4).to_vec(),
            7 => legacy_set(1, Compression::Snappy).to_vec(),
            _ => legacy_set(0, Compression::None).to_vec(),
        };
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        let data = Bytes::from(data);
        let _ = drain(data.clone(), no_crc());
        let _ = RecordBatch::decode(data.clone(), &no_crc()).map(|b| b.decode_records());
        let _ = LegacyBatch::decode(data, &no_crc());
    }
}
