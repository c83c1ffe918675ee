//! Micro-benchmarks of each codec on its own: `compression::compress` and
//! `compression::decompress` of the records section of a 1,000-record batch (110,872 bytes of
//! records with 100-byte text values), beside a memcpy of the same bytes in the same run.
//! Throughput is always the *uncompressed* size, so rows compare with the memcpy row.
//!
//! Run: `cargo bench -p kafkit-core --bench compression`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafkit_core::compression::{self, Compression};
use kafkit_core::records::{RecordBatchBuilder, RECORD_BATCH_OVERHEAD};

/// The records section of a batch of 1,000 records with 100-byte values (the same data as
/// the `records` benchmark).
fn records_section() -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9;
    let mut b = RecordBatchBuilder::with_capacity(Compression::None, 1_000 * 116);
    for i in 0..1_000 {
        let mut v = format!("{i:08} ").into_bytes();
        while v.len() < 100 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            v.push(b"abcdefghijklmnop  "[(x % 18) as usize]);
        }
        b.append(1_700_000_000_000 + i, None, Some(&v), &[])
            .unwrap();
    }
    b.finish().unwrap()[RECORD_BATCH_OVERHEAD..].to_vec()
}

fn bench_codecs(c: &mut Criterion) {
    let input = records_section();
    let mut g = c.benchmark_group("codec_110872B");
    g.throughput(Throughput::Bytes(input.len() as u64));
    let mut dst = vec![0u8; input.len()];
    g.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&input[..]));
            black_box(&dst);
        })
    });
    for codec in Compression::ALL {
        if codec == Compression::None {
            continue;
        }
        let mut compressed = Vec::new();
        compression::compress(codec, None, &input, &mut compressed).unwrap();
        eprintln!(
            "{codec}: {} bytes compress to {} ({:.1}%)",
            input.len(),
            compressed.len(),
            100.0 * compressed.len() as f64 / input.len() as f64
        );
        let mut out = Vec::with_capacity(input.len() + 1024);
        g.bench_with_input(BenchmarkId::new("compress", codec), &input, |b, input| {
            b.iter(|| {
                out.clear();
                compression::compress(codec, None, black_box(input), &mut out).unwrap();
                black_box(out.len())
            })
        });
        g.bench_with_input(
            BenchmarkId::new("decompress", codec),
            &compressed,
            |b, compressed| {
                b.iter(|| {
                    black_box(
                        compression::decompress(codec, black_box(compressed), 1 << 24)
                            .unwrap()
                            .len(),
                    )
                })
            },
        );
    }
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
    targets = bench_codecs
}
criterion_main!(benches);
