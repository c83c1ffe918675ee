//! Micro-benchmarks of each codec on its own: `compression::compress` and
//! `compression::decompress` of the records section of a 1,000-record batch (110,872 bytes of
//! records with 100-byte text values), beside a memcpy of the same bytes in the same run.
//! Throughput is always the *uncompressed* size, so rows compare with the memcpy row.
//!
//! Run: `cargo bench -p kafkit-core --bench compression`.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafkit_core::compression::{self, Compression};
use kafkit_core::records::RECORD_BATCH_OVERHEAD;

/// The records section of a batch of 1,000 records with 100-byte values (the same data as
/// the `records` benchmark).
fn records_section() -> Vec<u8> {
    let values = common::values(1_000, 100);
    common::builder(Compression::None, &values)
        .finish()
        .unwrap()[RECORD_BATCH_OVERHEAD..]
        .to_vec()
}

fn bench_codecs(c: &mut Criterion) {
    let input = records_section();
    let mut g = c.benchmark_group("codec_110872B");
    g.throughput(Throughput::Bytes(input.len() as u64));
    common::bench_memcpy(&mut g, BenchmarkId::from_parameter("memcpy"), &input);
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

criterion_group! {
    name = benches;
    config = common::config();
    targets = bench_codecs
}
criterion_main!(benches);
