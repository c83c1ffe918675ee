//! Micro-benchmarks of record batch encoding and decoding, each measured beside a plain memcpy
//! of the same number of bytes in the same run (the yardstick the performance goal is stated
//! in), and CRC-32C over the same bytes (the `crc32c` crate, `crc-fast` and kafkit's own
//! `records::crc32c`; the `crc32c_sizes` group compares the three alone at 1 KB to 1 MiB).
//!
//! Uncompressed batches of records with 100-byte, 1,000-byte and 10,000-byte values (the sizes
//! `kafkit bench` produces), each at about three batch sizes: Kafka's default `batch.size`
//! (16 KiB; one 10 KB record is all it holds), about 110 KB and about 1 MiB. Every codec is
//! measured on the 1,000 x 100 B batch.
//!
//! Run: `cargo bench -p kafkit-core --bench records`. Kept short (small sample size and
//! measurement time): the whole run takes about five minutes.

mod common;

use std::hint::black_box;

use bytes::Bytes;
use common::{bench_memcpy, builder, values};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafkit_core::compression::Compression;
use kafkit_core::records::crc32c::crc32c as kafkit_crc32c;
use kafkit_core::records::{DecodeOptions, RecordBatch};

/// The whole encode: appends, then `finish` (header, compression, CRC-32C).
fn encode(codec: Compression, values: &[Vec<u8>]) -> Bytes {
    builder(codec, values).finish().unwrap()
}

/// Decoding into owned records: each key and value is a `Bytes` slice of the batch (one
/// reference-count increment and decrement per record).
fn decode(batch: &Bytes, opts: &DecodeOptions) -> usize {
    let batch = RecordBatch::decode(batch.clone(), opts).unwrap();
    let mut n = 0;
    for r in batch.records() {
        let r = r.unwrap();
        n += r.value.map_or(0, |v| v.len());
    }
    n
}

/// Decoding through borrowed records: no reference counting per record.
fn decode_refs(batch: &Bytes, opts: &DecodeOptions) -> usize {
    let batch = RecordBatch::decode(batch.clone(), opts).unwrap();
    let mut n = 0;
    for r in batch.record_refs() {
        n += r.unwrap().value.map_or(0, <[u8]>::len);
    }
    n
}

/// Rows for an uncompressed batch of `count` records with `size`-byte values, in a group of
/// their own with its memcpy.
fn bench_size(c: &mut Criterion, count: usize, size: usize) {
    let name = format!("records_{count}x{size}B");
    let values = values(count, size);
    let batch = encode(Compression::None, &values);
    let size = batch.len();
    eprintln!("{name}: {count} records, batch of {size} bytes");
    let opts = DecodeOptions::default();
    let no_crc = DecodeOptions {
        check_crcs: false,
        ..opts
    };

    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(size as u64));
    bench_memcpy(&mut g, BenchmarkId::from_parameter("memcpy"), &batch);
    // CRC-32C over the bytes a batch's CRC covers (all but the first 21), by the `crc32c`
    // crate (what kafkit used before `records::crc32c`).
    g.bench_function("crc32c", |b| {
        b.iter(|| black_box(crc32c::crc32c(black_box(&batch[21..]))))
    });
    // The same CRC by the `crc-fast` crate (folding with carry-less multiplies, AVX-512
    // VPCLMULQDQ where the CPU has it), for comparison only.
    assert_eq!(
        crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &batch[21..]) as u32,
        crc32c::crc32c(&batch[21..])
    );
    g.bench_function("crc32c_crc_fast", |b| {
        b.iter(|| {
            black_box(crc_fast::checksum(
                crc_fast::CrcAlgorithm::Crc32Iscsi,
                black_box(&batch[21..]),
            ))
        })
    });
    // kafkit's own (`records::crc32c`), what encode and decode now use.
    g.bench_function("crc32c_kafkit", |b| {
        b.iter(|| black_box(kafkit_crc32c(black_box(&batch[21..]))))
    });
    g.bench_function("encode/none", |b| {
        b.iter(|| black_box(encode(Compression::None, black_box(&values))))
    });
    // Encoding without `finish`: the appends alone (no header, no CRC).
    g.bench_function("encode_appends/none", |b| {
        b.iter(|| black_box(builder(Compression::None, black_box(&values)).len()))
    });
    g.bench_function("decode/none", |b| {
        b.iter(|| black_box(decode(&batch, &opts)))
    });
    g.bench_function("decode_no_crc/none", |b| {
        b.iter(|| black_box(decode(&batch, &no_crc)))
    });
    g.bench_function("decode_refs/none", |b| {
        b.iter(|| black_box(decode_refs(&batch, &opts)))
    });
    g.bench_function("decode_refs_no_crc/none", |b| {
        b.iter(|| black_box(decode_refs(&batch, &no_crc)))
    });
    g.finish();
}

fn bench_records(c: &mut Criterion) {
    // (records, value bytes): about 16 KiB, 110 KB and 1 MiB batches per value size.
    for (count, size) in [
        (150, 100),
        (1_000, 100),
        (9_440, 100),
        (16, 1_000),
        (110, 1_000),
        (1_040, 1_000),
        (1, 10_000),
        (11, 10_000),
        (105, 10_000),
    ] {
        bench_size(c, count, size);
    }

    // Every codec on the 1,000-record batch. Throughput is the *uncompressed* batch size, so
    // each row compares directly with that group's memcpy.
    let values = values(1_000, 100);
    let size = encode(Compression::None, &values).len();
    let opts = DecodeOptions::default();
    let mut g = c.benchmark_group("records_1000x100B_codecs");
    g.throughput(Throughput::Bytes(size as u64));
    for codec in Compression::ALL {
        if codec == Compression::None {
            continue;
        }
        let batch = encode(codec, &values);
        eprintln!(
            "{codec}: batch of {} bytes ({size} uncompressed)",
            batch.len()
        );
        g.bench_with_input(BenchmarkId::new("encode", codec), &values, |b, v| {
            b.iter(|| black_box(encode(codec, v)))
        });
        g.bench_with_input(BenchmarkId::new("decode", codec), &batch, |b, batch| {
            b.iter(|| black_box(decode(batch, &opts)))
        });
    }
    g.finish();

    bench_crc32c(c);
}

/// CRC-32C alone at about 1 KB, 16 KiB, 110 KB and 1 MiB of pseudo-random bytes: memcpy, the
/// `crc32c` crate, `crc-fast` and kafkit's own `records::crc32c`.
fn bench_crc32c(c: &mut Criterion) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let buf: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    let mut g = c.benchmark_group("crc32c_sizes");
    for len in [1_000, 16 << 10, 110_912, 1 << 20] {
        let data = &buf[..len];
        let crate_crc = crc32c::crc32c(data);
        assert_eq!(kafkit_crc32c(data), crate_crc);
        assert_eq!(
            crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32,
            crate_crc
        );
        g.throughput(Throughput::Bytes(len as u64));
        bench_memcpy(&mut g, BenchmarkId::new("memcpy", len), data);
        g.bench_with_input(BenchmarkId::new("crc32c_crate", len), data, |b, d| {
            b.iter(|| black_box(crc32c::crc32c(black_box(d))))
        });
        g.bench_with_input(BenchmarkId::new("crc_fast", len), data, |b, d| {
            b.iter(|| {
                black_box(crc_fast::checksum(
                    crc_fast::CrcAlgorithm::Crc32Iscsi,
                    black_box(d),
                ))
            })
        });
        g.bench_with_input(BenchmarkId::new("kafkit", len), data, |b, d| {
            b.iter(|| black_box(kafkit_crc32c(black_box(d))))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench_records
}
criterion_main!(benches);
