//! Micro-benchmarks of record batch encoding and decoding, measured beside a plain memcpy of
//! the same number of bytes in the same run (the yardstick the performance goal is stated
//! in), and CRC-32C throughput.
//!
//! Run: `cargo bench -p kafkit-core --bench records`. Kept short (small sample size and
//! measurement time) so the whole run takes well under two minutes.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafkit_core::compression::Compression;
use kafkit_core::records::{DecodeOptions, RecordBatch, RecordBatchBuilder};

const RECORDS: usize = 1_000;
const VALUE_SIZE: usize = 100;
const BASE_TS: i64 = 1_700_000_000_000;

/// 1,000 values of 100 bytes: lowercase text from a fixed xorshift, so the codecs see data
/// that compresses somewhat (about what log lines do), not all zeros.
fn values() -> Vec<Vec<u8>> {
    let mut x: u32 = 0x9E37_79B9;
    (0..RECORDS)
        .map(|i| {
            let mut v = format!("{i:08} ").into_bytes();
            while v.len() < VALUE_SIZE {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                v.push(b"abcdefghijklmnop  "[(x % 18) as usize]);
            }
            v
        })
        .collect()
}

fn encode(codec: Compression, values: &[Vec<u8>]) -> Bytes {
    let mut b = RecordBatchBuilder::with_capacity(codec, RECORDS * (VALUE_SIZE + 16));
    for (i, v) in values.iter().enumerate() {
        b.append(BASE_TS + i as i64, None, Some(v), &[]).unwrap();
    }
    b.finish().unwrap()
}

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

fn bench_records(c: &mut Criterion) {
    let values = values();
    let uncompressed = encode(Compression::None, &values);
    let size = uncompressed.len();
    let opts = DecodeOptions::default();

    let mut g = c.benchmark_group("records_1000x100B");
    g.throughput(Throughput::Bytes(size as u64));

    // The yardstick: copying the uncompressed batch's bytes into a preallocated buffer.
    let mut dst = vec![0u8; size];
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&uncompressed[..]));
            black_box(&dst);
        })
    });

    for codec in Compression::ALL {
        let batch = encode(codec, &values);
        eprintln!(
            "{codec}: batch of {} bytes ({} uncompressed)",
            batch.len(),
            size
        );
        g.bench_with_input(BenchmarkId::new("encode", codec), &values, |b, v| {
            b.iter(|| black_box(encode(codec, v)))
        });
        g.bench_with_input(BenchmarkId::new("decode", codec), &batch, |b, batch| {
            b.iter(|| black_box(decode(batch, &opts)))
        });
    }
    let no_crc = DecodeOptions {
        check_crcs: false,
        ..opts
    };
    g.bench_function("decode_no_crc/none", |b| {
        b.iter(|| black_box(decode(&uncompressed, &no_crc)))
    });
    g.bench_function("decode_refs/none", |b| {
        b.iter(|| black_box(decode_refs(&uncompressed, &opts)))
    });
    g.bench_function("decode_refs_no_crc/none", |b| {
        b.iter(|| black_box(decode_refs(&uncompressed, &no_crc)))
    });
    g.finish();

    let mut g = c.benchmark_group("crc32c");
    let buf = vec![0x5Au8; 1 << 20];
    g.throughput(Throughput::Bytes(buf.len() as u64));
    g.bench_function("1MiB", |b| {
        b.iter(|| black_box(crc32c::crc32c(black_box(&buf))))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_records
}
criterion_main!(benches);
