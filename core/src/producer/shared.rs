//! [`ProducerShared`]: what the application's handles and the core share without locks —
//! the buffer-memory account (`buffer_memory`) and the closed flag.
//!
//! Why this is shared state, when every other result of the core leaves as an event: the
//! fast path of a driver's handle reserves a record's memory on the sending thread, so that
//! a send neither waits for a round trip through the loop nor lets senders queue more than
//! `buffer_memory` while the loop is busy; memory is the backpressure, and it must be felt
//! where records are made. A single-threaded embedder never touches it: [`send`] reserves
//! for it inside the core, and the account is plain atomics (no lock, no waker).
//!
//! [`send`]: super::ProducerCore::send
//!
//! A handle reserves a record's estimated size with one compare-and-swap before queueing the
//! record (the fast path). When the account is short, or other senders are already waiting
//! (first come, first served), the record goes to the core's FIFO of waiting senders instead,
//! which admits them as batches complete and memory is released, or fails them after
//! `max_block_ms`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::error::ProduceError;
use super::record::ProducerRecord;
use crate::records::{RecordBatchBuilder, RECORD_BATCH_OVERHEAD};

/// Buffer-memory accounting and flags shared by a producer core and its handles.
#[derive(Debug)]
pub struct ProducerShared {
    total: u64,
    /// Written by every send (one compare-and-swap per record on the sending thread) and by
    /// the core once per completed batch, so it gets a cache line of its own: sharing one
    /// with the flags below (read per record) or with the `Arc`'s counts made both threads
    /// miss on it in turn.
    available: CacheLine<AtomicU64>,
    waiting: AtomicUsize,
    closed: AtomicBool,
    max_request_size: usize,
}

/// A value alone on its cache line (128 bytes: adjacent-line prefetch pairs 64-byte lines
/// on x86).
#[derive(Debug)]
#[repr(align(128))]
struct CacheLine<T>(T);

impl<T> std::ops::Deref for CacheLine<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl ProducerShared {
    /// An account of `buffer_memory` bytes for records up to `max_request_size` bytes.
    pub fn new(buffer_memory: u64, max_request_size: usize) -> Self {
        ProducerShared {
            total: buffer_memory,
            available: CacheLine(AtomicU64::new(buffer_memory)),
            waiting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            max_request_size,
        }
    }

    /// The bytes of buffer memory a record holds while it is in the producer: an upper bound
    /// on its size inside a batch (worst-case varints).
    pub fn record_size(record: &ProducerRecord) -> usize {
        RecordBatchBuilder::record_size_upper_bound(
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        )
    }

    /// Checks a record against `max_request_size` and `buffer_memory` (as Java's
    /// `ensureValidRecordSize`: the record in a batch of its own) and returns the bytes to
    /// reserve for it.
    pub fn check_record(&self, record: &ProducerRecord) -> Result<u64, ProduceError> {
        let size = Self::record_size(record);
        let alone = size.saturating_add(RECORD_BATCH_OVERHEAD);
        if alone > self.max_request_size {
            return Err(ProduceError::RecordTooLarge {
                size: alone,
                max: self.max_request_size,
                setting: "max_request_size",
            });
        }
        if alone as u64 > self.total {
            return Err(ProduceError::RecordTooLarge {
                size: alone,
                max: usize::try_from(self.total).unwrap_or(usize::MAX),
                setting: "buffer_memory",
            });
        }
        Ok(size as u64)
    }

    /// Takes `bytes` from the account if they are free and nobody is waiting for memory
    /// already (waiters are served first, in order). Lock-free.
    pub fn try_reserve(&self, bytes: u64) -> bool {
        if self.waiting.load(Ordering::Acquire) > 0 {
            return false;
        }
        self.reserve_ignoring_waiters(bytes)
    }

    /// Takes `bytes` if they are free, whether or not others wait (the core admitting the
    /// first waiter uses this).
    pub(crate) fn reserve_ignoring_waiters(&self, bytes: u64) -> bool {
        self.available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |free| {
                free.checked_sub(bytes)
            })
            .is_ok()
    }

    /// Gives `bytes` back to the account.
    pub fn release(&self, bytes: u64) {
        let _ = self
            .available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |free| {
                Some(free.saturating_add(bytes).min(self.total))
            });
    }

    /// Bytes free now.
    pub fn available_bytes(&self) -> u64 {
        self.available.load(Ordering::Acquire)
    }

    /// The whole account (`buffer_memory`).
    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    /// Senders waiting for memory in the core's queue.
    pub fn waiting_senders(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    pub(crate) fn set_waiting(&self, n: usize) {
        self.waiting.store(n, Ordering::Release);
    }

    /// Whether `close` has been called: new sends fail with [`ProduceError::Closed`].
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn set_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_and_release_never_exceed_the_total() {
        let s = ProducerShared::new(1000, 10_000);
        assert!(s.try_reserve(600));
        assert!(!s.try_reserve(600));
        assert!(s.try_reserve(400));
        assert_eq!(s.available_bytes(), 0);
        s.release(1000);
        assert_eq!(s.available_bytes(), 1000);
        s.release(5);
        assert_eq!(s.available_bytes(), 1000, "release is capped at the total");
        s.set_waiting(1);
        assert!(!s.try_reserve(1), "waiters go first");
        assert!(s.reserve_ignoring_waiters(1));
    }

    #[test]
    fn oversized_records_name_the_setting() {
        let s = ProducerShared::new(1 << 20, 1000);
        let big = ProducerRecord::new("t").value(vec![0u8; 2000]);
        assert!(matches!(
            s.check_record(&big),
            Err(ProduceError::RecordTooLarge {
                setting: "max_request_size",
                ..
            })
        ));
        let s = ProducerShared::new(500, 1 << 20);
        assert!(matches!(
            s.check_record(&big),
            Err(ProduceError::RecordTooLarge {
                setting: "buffer_memory",
                ..
            })
        ));
        let ok = ProducerRecord::new("t").value(vec![0u8; 100]);
        assert!(s.check_record(&ok).unwrap() >= 100);
    }
}
