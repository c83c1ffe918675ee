//! Micro-benchmarks of record batch encoding and decoding, each measured beside a plain memcpy
//! of the same number of bytes in the same run (the yardstick the performance goal is stated
//! in), and CRC-32C over the same bytes.
//!
//! Three batch sizes of records with 100-byte values: about 16 KiB (Kafka's default
//! `batch.size`), 110,933 bytes (1,000 records, the workload of the earlier figures) and about
//! 1 MiB. Every codec is measured on the 1,000-record batch.
//!
//! Run: `cargo bench -p kafkit-core --bench records`. Kept short (small sample size and
//! measurement time) so the whole run takes about two minutes.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafkit_core::compression::Compression;
use kafkit_core::records::{DecodeOptions, RecordBatch, RecordBatchBuilder};

const VALUE_SIZE: usize = 100;
const BASE_TS: i64 = 1_700_000_000_000;

/// `n` values of 100 bytes: lowercase text from a fixed xorshift, so the codecs see data that
/// compresses somewhat (about what log lines do), not all zeros.
fn values(n: usize) -> Vec<Vec<u8>> {
    let mut x: u32 = 0x9E37_79B9;
    (0..n)
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

fn builder(codec: Compression, values: &[Vec<u8>]) -> RecordBatchBuilder {
    let mut b = RecordBatchBuilder::with_capacity(codec, values.len() * (VALUE_SIZE + 16));
    for (i, v) in values.iter().enumerate() {
        b.append(BASE_TS + i as i64, None, Some(v), &[]).unwrap();
    }
    b
}

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

/// Rows for uncompressed batches of `count` records, in a group of their own with its memcpy.
fn bench_size(c: &mut Criterion, name: &str, count: usize) {
    let values = values(count);
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

    // The yardstick: copying the batch's bytes into a preallocated buffer.
    let mut dst = vec![0u8; size];
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&batch[..]));
            black_box(&dst);
        })
    });
    // CRC-32C over the bytes a batch's CRC covers (all but the first 21).
    g.bench_function("crc32c", |b| {
        b.iter(|| black_box(crc32c::crc32c(black_box(&batch[21..]))))
    });
    // The same CRC by the `crc-fast` crate (folding with carry-less multiplies, AVX-512
    // VPCLMULQDQ where the CPU has it), for comparison only: kafkit uses `crc32c`.
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
    bench_size(c, "records_150x100B", 150);
    bench_size(c, "records_1000x100B", 1_000);
    bench_size(c, "records_9440x100B", 9_440);

    // Every codec on the 1,000-record batch. Throughput is the *uncompressed* batch size, so
    // each row compares directly with that group's memcpy.
    let values = values(1_000);
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
