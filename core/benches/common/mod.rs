//! What the benchmarks share: the record values, the batch builder, criterion's settings and
//! the memcpy yardstick row. Each bench target includes it with `mod common;` and uses a part.

#![allow(dead_code)]

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};
use kafkit_core::compression::Compression;
use kafkit_core::records::RecordBatchBuilder;

/// The first record's create time; records are 1 ms apart.
pub const BASE_TS: i64 = 1_700_000_000_000;

/// `n` values of `size` bytes: the record's index, then lowercase text from a fixed xorshift,
/// so the codecs see data that compresses somewhat (about what log lines do), not all zeros.
pub fn values(n: usize, size: usize) -> Vec<Vec<u8>> {
    let mut x: u32 = 0x9E37_79B9;
    (0..n)
        .map(|i| {
            let mut v = format!("{i:08} ").into_bytes();
            while v.len() < size {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                v.push(b"abcdefghijklmnop  "[(x % 18) as usize]);
            }
            v
        })
        .collect()
}

/// A batch builder with every value appended (null keys, no headers), sized up front for
/// values of the first one's length.
pub fn builder(codec: Compression, values: &[Vec<u8>]) -> RecordBatchBuilder {
    let each = values.first().map_or(0, Vec::len) + 16;
    let mut b = RecordBatchBuilder::with_capacity(codec, values.len() * each);
    for (i, v) in values.iter().enumerate() {
        b.append(BASE_TS + i as i64, None, Some(v), &[]).unwrap();
    }
    b
}

/// Criterion kept short (the machine is shared; ratios are taken within a run).
pub fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// The yardstick row: copying `src` into a preallocated buffer.
pub fn bench_memcpy(g: &mut BenchmarkGroup<'_, WallTime>, id: BenchmarkId, src: &[u8]) {
    let mut dst = vec![0u8; src.len()];
    g.bench_function(id, |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(src));
            black_box(&dst);
        })
    });
}
