use std::io::{Read, Write};

use super::lz4::xxh32;
use super::*;

fn samples() -> Vec<Vec<u8>> {
    let mut pseudo = Vec::with_capacity(200_000);
    let mut x: u32 = 0x1234_5678;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        pseudo.push(x as u8);
    }
    vec![
        vec![],
        b"a".to_vec(),
        b"hello, kafka".repeat(10),
        b"abcdefghij".repeat(20_000),
        pseudo,
    ]
}

#[test]
fn names_ids_and_parsing() {
    for c in Compression::ALL {
        assert_eq!(Compression::from_id(c.id()), Some(c));
        assert_eq!(
            Compression::from_attributes(0x70 | c.attribute_bits()),
            Some(c)
        );
        assert_eq!(c.name().parse::<Compression>(), Ok(c));
        assert_eq!(c.name().to_uppercase().parse::<Compression>(), Ok(c));
        assert_eq!(c.to_string(), c.name());
    }
    assert_eq!(Compression::from_id(5), None);
    assert!("brotli".parse::<Compression>().is_err());
    assert!(Compression::Gzip.validate_level(0).is_err());
    assert!(Compression::Gzip.validate_level(9).is_ok());
    assert!(Compression::Zstd.validate_level(22).is_ok());
    assert!(Compression::Zstd.validate_level(23).is_err());
}

#[test]
fn round_trip_every_codec() {
    for c in Compression::ALL {
        for input in samples() {
            let mut out = vec![0xAA];
            compress(c, None, &input, &mut out).unwrap();
            assert_eq!(out[0], 0xAA, "compress appends");
            let back = decompress(c, &out[1..], input.len()).unwrap();
            assert_eq!(back, input, "{c} {} bytes", input.len());
            if !input.is_empty() {
                assert_eq!(
                    decompress(c, &out[1..], input.len() - 1),
                    Err(DecodeError::DecompressionLimit {
                        limit: input.len() - 1
                    }),
                    "{c} {} bytes",
                    input.len()
                );
            }
        }
    }
}

#[test]
fn levels() {
    let input = b"abcdefghij".repeat(1000);
    for (c, level) in [
        (Compression::Gzip, 1),
        (Compression::Gzip, 9),
        (Compression::Zstd, 1),
        (Compression::Zstd, 19),
        (Compression::Zstd, -5),
        (Compression::Lz4, 17),
    ] {
        let mut out = Vec::new();
        compress(c, Some(level), &input, &mut out).unwrap();
        assert_eq!(decompress(c, &out, 1 << 20).unwrap(), input);
    }
    assert!(compress(Compression::Gzip, Some(10), b"x", &mut Vec::new()).is_err());
}

#[test]
fn xxh32_known_values() {
    // Reference values of XXH32 with seed 0 (xxHash's own test vectors).
    assert_eq!(xxh32(b"", 0), 0x02CC_5D05);
    assert_eq!(xxh32(b"abc", 0), 0x32D1_53FF);
}

#[test]
fn xxh32_agrees_with_lz4_flex_checksums() {
    // lz4_flex writes header, block and content checksums with its own XXH32; our decoder
    // verifies all three with ours, over inputs that take every code path (<4, <16, >=16).
    for input in samples() {
        let info = lz4_flex::frame::FrameInfo::new()
            .block_checksums(true)
            .content_checksum(true)
            .content_size(Some(input.len() as u64));
        let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(&input).unwrap();
        let framed = enc.finish().unwrap();
        assert_eq!(lz4::decompress(&framed, input.len(), false).unwrap(), input);
    }
}

#[test]
fn lz4_linked_blocks_from_lz4_flex() {
    let input = samples().pop().unwrap().repeat(3);
    let info = lz4_flex::frame::FrameInfo::new().block_mode(lz4_flex::frame::BlockMode::Linked);
    let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    enc.write_all(&input).unwrap();
    let framed = enc.finish().unwrap();
    assert_eq!(lz4::decompress(&framed, input.len(), false).unwrap(), input);
}

#[test]
fn lz4_output_reads_with_lz4_flex_and_matches_kafka_framing() {
    for input in samples() {
        let mut out = Vec::new();
        lz4::compress(&input, false, &mut out);
        // Magic, FLG 0x60 (version 1, independent blocks), BD 0x40 (64 KiB).
        assert_eq!(&out[..6], &[0x04, 0x22, 0x4D, 0x18, 0x60, 0x40]);
        assert_eq!(&out[out.len() - 4..], &[0, 0, 0, 0], "end mark");
        let mut back = Vec::new();
        lz4_flex::frame::FrameDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, input);
    }
}

#[test]
fn lz4_broken_header_checksum() {
    let mut out = Vec::new();
    lz4::compress(b"legacy", true, &mut out);
    assert_eq!(out[6], (xxh32(&out[..6], 0) >> 8) as u8);
    assert!(lz4::decompress(&out, 100, false).is_err());
    assert_eq!(lz4::decompress(&out, 100, true).unwrap(), b"legacy");
    // A correct checksum is accepted in legacy mode too.
    let mut good = Vec::new();
    lz4::compress(b"legacy", false, &mut good);
    assert_eq!(lz4::decompress(&good, 100, true).unwrap(), b"legacy");
}

#[test]
fn snappy_framing_and_raw() {
    let input = b"abcdefghij".repeat(10_000);
    let mut out = Vec::new();
    snappy::compress(&input, &mut out);
    assert_eq!(&out[..16], &snappy::XERIAL_HEADER);
    assert_eq!(snappy::decompress(&out, input.len()).unwrap(), input);
    // Two concatenated streams (the header repeats).
    let mut twice = out.clone();
    twice.extend_from_slice(&out);
    assert_eq!(
        snappy::decompress(&twice, 2 * input.len()).unwrap(),
        input.repeat(2)
    );
    let mut raw = Vec::new();
    snappy::compress_raw(&input, &mut raw);
    assert_eq!(snappy::decompress(&raw, input.len()).unwrap(), input);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let junk: Vec<Vec<u8>> = vec![
        vec![0],
        vec![0xff; 3],
        vec![0x1f, 0x8b, 8, 0, 0, 0],
        vec![
            0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, 0x82, 0xff, 0xff, 0xff, 0x7f,
        ],
        snappy::XERIAL_HEADER
            .to_vec()
            .into_iter()
            .chain([0, 0, 0, 9, 1])
            .collect(),
        vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0],
    ];
    for c in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        for j in &junk {
            let _ = decompress(c, j, 1 << 20);
        }
        // Every prefix of a valid stream.
        let mut out = Vec::new();
        compress(c, None, &b"abcdefghij".repeat(100), &mut out).unwrap();
        for n in 0..out.len() {
            let r = decompress(c, &out[..n], 1 << 20);
            if let Ok(v) = r {
                assert_ne!(v.len(), 1000, "{c}: prefix {n} decoded fully");
            }
        }
    }
}

#[test]
fn read_capped_stops_at_limit() {
    let data = vec![7u8; 10_000];
    assert_eq!(
        read_capped(&data[..], 10_000, 0, "x").unwrap().len(),
        10_000
    );
    assert_eq!(
        read_capped(&data[..], 9_999, 0, "x"),
        Err(DecodeError::DecompressionLimit { limit: 9_999 })
    );
    assert_eq!(read_capped(&data[..0], 0, 0, "x").unwrap().len(), 0);
}
