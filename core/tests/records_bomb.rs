//! Decompression bombs: 100 MB of zeros, compressed with each codec, against a 1 MiB limit.
//! Each must fail with `DecompressionLimit` quickly and without allocating much more than the
//! limit. A counting global allocator measures the peak; the tests run inside one `#[test]`
//! so no other test's allocations mix in.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_core::codec::DecodeError;
use kafkit_core::compression::{self, lz4, snappy, Compression};
use kafkit_core::records::{DecodeOptions, RecordBatch, RecordBatchBuilder};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; we only count bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(now, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let now =
                CURRENT.fetch_add(new_size - layout.size(), Relaxed) + new_size - layout.size();
            PEAK.fetch_max(now, Relaxed);
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BOMB: usize = 100 << 20;
const LIMIT: usize = 1 << 20;

/// Runs `f` and returns its result with the bytes allocated at peak beyond what was live
/// before, and the time it took.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, Duration) {
    let base = CURRENT.load(Relaxed);
    PEAK.store(base, Relaxed);
    let start = Instant::now();
    let out = f();
    (out, PEAK.load(Relaxed) - base, start.elapsed())
}

/// 100 MB of zeros in each codec, built from repeated pieces so the test stays fast.
fn bombs() -> Vec<(Compression, Vec<u8>)> {
    let mib = vec![0u8; 1 << 20];

    // gzip: a member of 1 MiB of zeros, 100 times (readers take concatenated members).
    let mut member = Vec::new();
    compression::compress(Compression::Gzip, Some(9), &mib, &mut member).unwrap();
    let gzip = member.repeat(BOMB / mib.len());

    // zstd: one frame of 100 MB with no declared size (so the streaming cap must stop it),
    // and a frame per MiB.
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    for _ in 0..BOMB / mib.len() {
        std::io::Write::write_all(&mut enc, &mib).unwrap();
    }
    let zstd_one = enc.finish().unwrap();
    let mut frame = Vec::new();
    compression::compress(Compression::Zstd, None, &mib, &mut frame).unwrap();
    let zstd_many = frame.repeat(BOMB / mib.len());

    // lz4: one frame whose 64 KiB zero block repeats 1600 times.
    let mut one = Vec::new();
    lz4::compress(&mib[..64 << 10], false, &mut one);
    let (header, block) = (&one[..7], &one[7..one.len() - 4]);
    let mut lz4 = header.to_vec();
    for _ in 0..BOMB / (64 << 10) {
        lz4.extend_from_slice(block);
    }
    lz4.extend_from_slice(&[0, 0, 0, 0]);

    // snappy, xerial: one 32 KiB zero chunk repeated 3200 times.
    let mut one = Vec::new();
    snappy::compress(&mib[..32 << 10], &mut one);
    let mut xerial = one[..16].to_vec();
    for _ in 0..BOMB / (32 << 10) {
        xerial.extend_from_slice(&one[16..]);
    }

    // snappy, raw: one block that declares 100 MB (a literal byte, then 64-byte copies).
    let mut raw = Vec::new();
    let mut n = BOMB as u32;
    while n >= 0x80 {
        raw.push(n as u8 | 0x80);
        n >>= 7;
    }
    raw.push(n as u8);
    raw.extend_from_slice(&[0x00, 0x00]); // literal of length 1: a zero
    for _ in 0..(BOMB - 1) / 64 {
        raw.extend_from_slice(&[(63 << 2) | 0b10, 1, 0]); // copy 64 bytes from offset 1
    }
    raw.extend_from_slice(&[(62 << 2) | 0b10, 1, 0]); // and the last 63

    vec![
        (Compression::Gzip, gzip),
        (Compression::Zstd, zstd_one),
        (Compression::Zstd, zstd_many),
        (Compression::Lz4, lz4),
        (Compression::Snappy, xerial),
        (Compression::Snappy, raw),
    ]
}

#[test]
fn bombs_stop_at_the_limit_without_big_allocations() {
    for (codec, bomb) in bombs() {
        // Sanity: the bomb really is 100 MB of zeros (checked on a small sample for speed
        // would not prove the size, so decode it fully once, uncounted).
        let full = compression::decompress(codec, &bomb, BOMB).unwrap();
        assert_eq!(full.len(), BOMB, "{codec}");
        drop(full);

        let (res, peak, took) = measure(|| compression::decompress(codec, &bomb, LIMIT));
        assert_eq!(
            res.unwrap_err(),
            DecodeError::DecompressionLimit { limit: LIMIT },
            "{codec}"
        );
        eprintln!(
            "{codec}: {} compressed bytes, stopped after {took:?}, peak allocation {peak} bytes",
            bomb.len()
        );
        assert!(
            peak < 3 * LIMIT,
            "{codec}: allocated {peak} bytes for a {LIMIT}-byte limit"
        );
        assert!(took < Duration::from_secs(5), "{codec}: took {took:?}");
    }

    // The same through a record batch: a compressed records section that inflates past the
    // batch limit.
    let mut b = RecordBatchBuilder::new(Compression::Zstd);
    b.append(0, None, Some(&vec![0u8; 4 << 20]), &[]).unwrap();
    let batch = b.finish().unwrap();
    let opts = DecodeOptions {
        max_decompressed_size: LIMIT,
        ..DecodeOptions::default()
    };
    let (res, peak, _) = measure(|| RecordBatch::decode(Bytes::clone(&batch), &opts));
    assert_eq!(
        res.unwrap_err(),
        DecodeError::DecompressionLimit { limit: LIMIT }
    );
    assert!(peak < 3 * LIMIT);
}
