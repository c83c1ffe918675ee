//! Repeatable instruction counts for record batch encode and decode, for callgrind (timings on
//! a shared machine are noisy; instruction counts are not).
//!
//! Not a criterion benchmark: `main` runs each operation `ROUNDS` times over the same
//! 1,000-record batch as the `records` benchmark, each in its own `#[inline(never)]` function,
//! so callgrind's inclusive cost of that function divided by `ROUNDS * 1000` is the cost per
//! record:
//!
//! ```text
//! cargo bench -p kafkit-core --bench records_instr --no-run
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/deps/records_instr-<hash>
//! callgrind_annotate --inclusive=yes cg.out | grep -A1 '      op_' | grep '=>'
//! ```
//!
//! Read the counts at the call sites in `main` (as that grep does): the compiler merges
//! functions with identical bodies (`op_decode` and `op_decode_no_crc` differ only in their
//! argument), so the per-function totals can lump two of them together.
//!
//! Under `cargo bench` (which passes `--bench`) it runs one round of each and exits.
//!
//! `RECORDS_INSTR=<count>x<value bytes>` (e.g. `110x1000`, `11x10000`) runs the same
//! operations over that batch instead of 1,000 x 100 B (divide by `ROUNDS * count`).

mod common;

use std::hint::black_box;

use bytes::Bytes;
use common::{builder, values};
use kafkit_core::compression::Compression;
use kafkit_core::records::{DecodeOptions, RecordBatch};

const RECORDS: usize = 1_000;
const ROUNDS: usize = 100;

#[inline(never)]
fn op_memcpy(batch: &Bytes, dst: &mut [u8], rounds: usize) {
    for _ in 0..rounds {
        dst.copy_from_slice(black_box(&batch[..]));
        black_box(&dst);
    }
}

#[inline(never)]
fn op_crc32c(batch: &Bytes, rounds: usize) {
    for _ in 0..rounds {
        black_box(crc32c::crc32c(black_box(&batch[21..])));
    }
}

#[inline(never)]
fn op_encode(values: &[Vec<u8>], rounds: usize) {
    for _ in 0..rounds {
        black_box(
            builder(Compression::None, black_box(values))
                .finish()
                .unwrap(),
        );
    }
}

#[inline(never)]
fn op_encode_appends(values: &[Vec<u8>], rounds: usize) {
    for _ in 0..rounds {
        black_box(builder(Compression::None, black_box(values)).len());
    }
}

#[inline(always)]
fn decode(batch: &Bytes, opts: &DecodeOptions, rounds: usize) {
    for _ in 0..rounds {
        let batch = RecordBatch::decode(black_box(batch).clone(), opts).unwrap();
        let mut n = 0;
        for r in batch.records() {
            n += r.unwrap().value.map_or(0, |v| v.len());
        }
        black_box(n);
    }
}

#[inline(always)]
fn decode_refs(batch: &Bytes, opts: &DecodeOptions, rounds: usize) {
    for _ in 0..rounds {
        let batch = RecordBatch::decode(black_box(batch).clone(), opts).unwrap();
        let mut n = 0;
        for r in batch.record_refs() {
            n += r.unwrap().value.map_or(0, <[u8]>::len);
        }
        black_box(n);
    }
}

#[inline(never)]
fn op_decode(batch: &Bytes, opts: &DecodeOptions, rounds: usize) {
    decode(batch, opts, rounds)
}

#[inline(never)]
fn op_decode_no_crc(batch: &Bytes, opts: &DecodeOptions, rounds: usize) {
    decode(batch, opts, rounds)
}

#[inline(never)]
fn op_decode_refs(batch: &Bytes, opts: &DecodeOptions, rounds: usize) {
    decode_refs(batch, opts, rounds)
}

#[inline(never)]
fn op_decode_refs_no_crc(batch: &Bytes, opts: &DecodeOptions, rounds: usize) {
    decode_refs(batch, opts, rounds)
}

fn main() {
    let rounds = if std::env::args().any(|a| a == "--bench") {
        1
    } else {
        ROUNDS
    };
    let (records, size) = std::env::var("RECORDS_INSTR")
        .ok()
        .and_then(|v| {
            let (n, s) = v.split_once('x')?;
            Some((n.parse().ok()?, s.parse().ok()?))
        })
        .unwrap_or((RECORDS, 100));
    let values = values(records, size);
    let batch = builder(Compression::None, &values).finish().unwrap();
    let mut dst = vec![0u8; batch.len()];
    let crc = DecodeOptions::default();
    let no_crc = DecodeOptions {
        check_crcs: false,
        ..crc
    };
    op_memcpy(&batch, &mut dst, rounds);
    op_crc32c(&batch, rounds);
    op_encode(&values, rounds);
    op_encode_appends(&values, rounds);
    op_decode(&batch, &crc, rounds);
    op_decode_no_crc(&batch, &no_crc, rounds);
    op_decode_refs(&batch, &crc, rounds);
    op_decode_refs_no_crc(&batch, &no_crc, rounds);
    println!(
        "ran {rounds} rounds of each operation over {} bytes",
        batch.len()
    );
}
