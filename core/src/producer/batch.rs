//! [`ProducerBatch`]: one record batch on its way to a partition — the records appended so
//! far (or the finished bytes), who to tell about each record, and the batch's delivery state
//! (attempts, backoff, deadline, idempotence stamp).
//!
//! A batch is written in the format the producer expects its broker to take
//! ([`BatchSettings::magic`]): a record batch (magic 2) for Kafka 0.11 and later, or a legacy
//! message set (magic 1 for Produce v2, Kafka 0.10; magic 0 for Produce v0-v1, Kafka 0.8-0.9).
//! The format is decided when the batch opens, from the brokers known then, as Java's
//! accumulator does; a batch that meets a broker wanting another format when it is sent (a
//! leader moved to an older or newer broker) is rewritten for it
//! ([`ProducerBatch::payload`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::EncodeError;
use crate::compression::Compression;
use crate::records::{
    check_no_headers, DecodeOptions, Header, LegacyMessageSetBuilder, Record, RecordBatchBuilder,
    RecordSet, MAGIC_V0, MAGIC_V1, MAGIC_V2, RECORD_BATCH_OVERHEAD,
};
use crate::OpId;

/// Byte offsets of the producer fields in a magic 2 batch header (see `records::batch`).
const PRODUCER_ID_OFFSET: usize = 43;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
/// The most record slots a new batch reserves up front (see [`ProducerBatch::append`]).
const MAX_PRESIZED_THUNKS: usize = 512;
/// How much more a record takes as a legacy message than the record-batch bound the core
/// sizes records by (`RecordBatchBuilder::record_size_upper_bound`, at least 24 bytes of
/// fields besides key, value and headers): a magic 1 message has 34 plus the 12 of its log
/// header. Added to that bound when filling a legacy set, so `batch_size` still holds.
const LEGACY_RECORD_SLACK: usize = 22;

/// The message format (magic) of the Produce version a broker speaks: record batches from
/// v3 (Kafka 0.11), magic 1 with v2 (Kafka 0.10), magic 0 before.
pub(crate) fn magic_for_produce_version(version: i16) -> i8 {
    match version {
        v if v >= 3 => MAGIC_V2,
        2 => MAGIC_V1,
        _ => MAGIC_V0,
    }
}

/// What a batch is being written with.
#[derive(Debug)]
enum Builder {
    V2(RecordBatchBuilder),
    Legacy(LegacyMessageSetBuilder),
}

impl Builder {
    fn is_empty(&self) -> bool {
        match self {
            Builder::V2(b) => b.is_empty(),
            Builder::Legacy(b) => b.is_empty(),
        }
    }

    fn size_in_bytes(&self) -> usize {
        match self {
            Builder::V2(b) => b.size_in_bytes(),
            Builder::Legacy(b) => b.size_in_bytes(),
        }
    }

    fn into_buffer(self) -> Vec<u8> {
        match self {
            Builder::V2(b) => b.into_buffer(),
            Builder::Legacy(b) => b.into_buffer(),
        }
    }
}

/// A record's completion: the application's id for it (`None`: fire and forget, not
/// reported) and what its [`RecordMetadata`](super::RecordMetadata) needs besides the
/// broker's answer.
#[derive(Debug)]
pub(crate) struct Thunk {
    pub(crate) op: Option<OpId>,
    pub(crate) timestamp: i64,
    pub(crate) key_size: i32,
    pub(crate) value_size: i32,
    /// The flush generation the record was accepted in (see the core's flush tracking).
    pub(crate) gen: u64,
}

/// The idempotent producer's fields written into a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) base_sequence: i32,
}

/// How batches are built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    /// Batches of a transactional producer carry the transactional bit.
    pub(crate) transactional: bool,
    pub(crate) batch_size: usize,
    pub(crate) compression: Compression,
    pub(crate) level: Option<i32>,
    pub(crate) delivery_timeout: Duration,
    /// The format new batches are written in: [`MAGIC_V2`] (record batches), or a legacy
    /// magic (0 or 1) for brokers before 0.11.
    pub(crate) magic: i8,
}

/// One batch for one partition.
#[derive(Debug)]
pub(crate) struct ProducerBatch {
    pub(crate) id: u64,
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    builder: Option<Builder>,
    payload: Option<Bytes>,
    /// The format of `payload`.
    payload_magic: i8,
    pub(crate) thunks: Vec<Thunk>,
    /// Buffer memory held by the records, released when the batch completes.
    pub(crate) reserved: u64,
    pub(crate) created: Instant,
    pub(crate) deadline: Instant,
    /// Sends so far.
    pub(crate) attempts: u32,
    /// Not to be sent again before this (retry backoff).
    pub(crate) retry_at: Option<Instant>,
    /// No more appends (full, drained, or split from a larger batch).
    pub(crate) closed: bool,
    /// The producer id, epoch and sequence the batch carries (idempotence), once drained.
    pub(crate) stamp: Option<Stamp>,
    /// The last error a send attempt met, for the delivery-timeout report.
    pub(crate) last_error: Option<String>,
    /// Size before compression (for the compression-rate metric).
    pub(crate) uncompressed_size: usize,
    /// The buffer was sized for the first record alone (see [`ProducerBatch::for_one`]): a
    /// second record grows it to the usual room first.
    sized_for_one: bool,
    /// Opened by [`ProducerBatch::for_one`].
    opened_for_one: bool,
    settings: BatchSettings,
}

impl ProducerBatch {
    pub(crate) fn new(
        id: u64,
        topic: Arc<str>,
        partition: i32,
        settings: BatchSettings,
        now: Instant,
    ) -> Self {
        Self::with_buffer(id, topic, partition, settings, now, Vec::new())
    }

    /// Whether a batch opened by a record of `upper_bound` bytes is made with
    /// [`for_one`](Self::for_one): when a batch of `batch_size` has no room for two such
    /// records (record batches only; the legacy builders size their buffers as they go).
    pub(crate) fn is_for_one(settings: &BatchSettings, upper_bound: usize) -> bool {
        let two = RECORD_BATCH_OVERHEAD.saturating_add(upper_bound.saturating_mul(2));
        settings.magic == MAGIC_V2 && two > settings.batch_size
    }

    /// A batch opened by a record of `upper_bound` bytes of which a batch of `batch_size`
    /// has no room for two ([`is_for_one`](Self::is_for_one)), built into `buf` (grown to
    /// that record's size if it is smaller).
    ///
    /// A record over half of `batch_size` leaves no room for a second of its size, so its
    /// batch usually holds it alone, and a buffer of `batch_size` would hold its size in
    /// records and the rest of the allocation besides. The producer keeps up to
    /// `buffer_memory` of records in batches: with 10 KB records and 16 KiB batches that was
    /// about 3,300 buffers of 16 KiB (54 MB of heap) for 32 MiB of records, and the
    /// benchmark's produce worker peaked at 60.5 MB of RSS (47 MB with buffers of the
    /// records' size; BENCHMARKS.md, task M). So such a batch gets a buffer of its first
    /// record's size (the accumulator keeps these for reuse as it keeps the usual ones). A
    /// record over `batch_size` (which travels alone, as in Java) gets its size at once
    /// instead of growing the usual buffer by doubling.
    pub(crate) fn for_one(
        id: u64,
        topic: Arc<str>,
        partition: i32,
        settings: BatchSettings,
        now: Instant,
        buf: Vec<u8>,
        upper_bound: usize,
    ) -> Self {
        let mut b = Self::with_room(id, topic, partition, settings, now, buf, upper_bound);
        b.sized_for_one = true;
        b.opened_for_one = true;
        b
    }

    /// Whether [`take_buffer`](Self::take_buffer) gives back a buffer that
    /// [`for_one`](Self::for_one) sized (to keep for the next such batch): opened by it and
    /// not compressed (a compressed batch's bytes are a buffer of the codec's output).
    pub(crate) fn has_sized_buffer(&self) -> bool {
        self.opened_for_one && self.settings.compression == Compression::None
    }

    /// Like [`new`](Self::new), building into `buf` (a completed batch's buffer, see
    /// [`take_buffer`](Self::take_buffer)) instead of a new allocation.
    pub(crate) fn with_buffer(
        id: u64,
        topic: Arc<str>,
        partition: i32,
        settings: BatchSettings,
        now: Instant,
        buf: Vec<u8>,
    ) -> Self {
        let room = Self::buffer_room(&settings);
        Self::with_room(id, topic, partition, settings, now, buf, room)
    }

    /// Like [`with_buffer`](Self::with_buffer), with room for `room` bytes of records (magic
    /// 2; the legacy builders grow as they go).
    fn with_room(
        id: u64,
        topic: Arc<str>,
        partition: i32,
        settings: BatchSettings,
        now: Instant,
        buf: Vec<u8>,
        room: usize,
    ) -> Self {
        let builder = match settings.magic {
            MAGIC_V0 | MAGIC_V1 => {
                LegacyMessageSetBuilder::with_buffer(settings.magic, settings.compression, buf)
                    .map(|b| Builder::Legacy(b.compression_level(settings.level)))
                    // Only zstd is refused, and the core never picks a legacy format for
                    // it (it fails such records with the broker's version instead); were
                    // it to, the batch's rewrite when sent would fail with the reason.
                    .unwrap_or_else(|_| Builder::V2(RecordBatchBuilder::new(settings.compression)))
            }
            _ => Builder::V2(
                RecordBatchBuilder::with_buffer(settings.compression, buf, room)
                    .compression_level(settings.level),
            ),
        };
        ProducerBatch {
            id,
            topic,
            partition,
            builder: Some(builder),
            payload: None,
            payload_magic: MAGIC_V2,
            thunks: Vec::new(),
            reserved: 0,
            created: now,
            deadline: now + settings.delivery_timeout,
            attempts: 0,
            retry_at: None,
            closed: false,
            stamp: None,
            last_error: None,
            uncompressed_size: RECORD_BATCH_OVERHEAD,
            sized_for_one: false,
            opened_for_one: false,
            settings,
        }
    }

    /// Bytes of records a new batch's buffer has room for.
    fn buffer_room(settings: &BatchSettings) -> usize {
        settings.batch_size.min(1 << 20)
    }

    /// The capacity of a new batch's buffer: buffers of this capacity are the ones worth
    /// keeping for reuse.
    pub(crate) fn buffer_capacity(settings: &BatchSettings) -> usize {
        RECORD_BATCH_OVERHEAD + Self::buffer_room(settings)
    }

    /// The batch's buffer, if nothing else holds it: the builder's (a batch never sent), or
    /// the finished bytes' when no other `Bytes` refers to them (the request that carried
    /// them is gone). `None` while anything may still read the bytes, so a reused buffer
    /// can never change bytes someone else sees. Call only when the batch is done.
    pub(crate) fn take_buffer(&mut self) -> Option<Vec<u8>> {
        if let Some(builder) = self.builder.take() {
            return Some(builder.into_buffer());
        }
        let payload = self.payload.take()?;
        // Unique: this takes the allocation back. `Vec::from(Bytes)` would move the contents
        // to the start of the allocation (a memmove of the whole batch, onto itself here);
        // emptied first, nothing is moved.
        let mut buf = payload.try_into_mut().ok()?;
        buf.clear();
        Some(Vec::from(buf))
    }

    /// Records in the batch.
    pub(crate) fn record_count(&self) -> usize {
        self.thunks.len()
    }

    /// Whether one more record of `upper_bound` bytes fits (an empty batch takes any record:
    /// a record larger than `batch_size` travels alone, as in Java).
    pub(crate) fn has_room_for(&self, upper_bound: usize) -> bool {
        let slack = match &self.builder {
            Some(Builder::Legacy(_)) => LEGACY_RECORD_SLACK,
            _ => 0,
        };
        match &self.builder {
            Some(b) if !self.closed => {
                b.is_empty() || b.size_in_bytes() + upper_bound + slack <= self.settings.batch_size
            }
            _ => false,
        }
    }

    /// Full: no further record can be appended, or it reached `batch_size`.
    pub(crate) fn is_full(&self) -> bool {
        self.closed
            || self
                .builder
                .as_ref()
                .is_none_or(|b| b.size_in_bytes() >= self.settings.batch_size)
    }

    /// Appends a record (the caller checked [`Self::has_room_for`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        reserved: u64,
        op: Option<OpId>,
        gen: u64,
    ) -> Result<(), EncodeError> {
        match self.builder.as_mut() {
            Some(Builder::V2(b)) => {
                if self.sized_for_one && !b.is_empty() {
                    // A smaller record after the first (`has_room_for` let it in): the usual
                    // room at once, so the records that may follow do not double it past
                    // `batch_size`.
                    b.reserve_room(Self::buffer_room(&self.settings));
                    self.sized_for_one = false;
                }
                b.append(timestamp, key, value, headers)?;
                self.uncompressed_size = b.size_in_bytes();
            }
            Some(Builder::Legacy(b)) => {
                b.append_with_headers(timestamp, key, value, headers)?;
                self.uncompressed_size = b.size_in_bytes();
            }
            None => {
                return Err(EncodeError::Invalid {
                    what: "record batch",
                    detail: "append to a finished batch".into(),
                })
            }
        }
        self.reserved += reserved;
        if self.thunks.capacity() == 0 {
            // Room for as many records like this first one as fit in `batch_size` (bounded),
            // rather than growing by doubling.
            let per_record = 8 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len);
            let estimate = self.settings.batch_size / per_record;
            self.thunks
                .reserve_exact(estimate.clamp(1, MAX_PRESIZED_THUNKS));
        }
        self.thunks.push(Thunk {
            op,
            timestamp,
            key_size: key.map_or(-1, |k| k.len() as i32),
            value_size: value.map_or(-1, |v| v.len() as i32),
            gen,
        });
        Ok(())
    }

    /// The batch's bytes in format `magic` (the one its broker takes), carrying `stamp`
    /// (magic 2 only). The builder is finished on first use; a batch whose stamp changes (a
    /// new epoch after a reset) is rewritten in place, CRC included, and one that must go in
    /// another format than it was written in is rewritten in that format (a record with
    /// headers, or zstd, cannot become a legacy message: that is the error).
    pub(crate) fn payload(
        &mut self,
        stamp: Option<Stamp>,
        magic: i8,
    ) -> Result<Bytes, EncodeError> {
        self.closed = true;
        match self.builder.take() {
            Some(Builder::V2(builder)) => {
                let builder = builder.transactional(self.settings.transactional);
                let builder = match stamp {
                    Some(s) => builder.producer(s.producer_id, s.epoch, s.base_sequence),
                    None => builder,
                };
                self.payload = Some(builder.finish()?);
                self.payload_magic = MAGIC_V2;
                self.stamp = stamp;
            }
            Some(Builder::Legacy(builder)) => {
                self.payload_magic = builder.magic();
                self.payload = Some(builder.finish()?);
                self.stamp = None;
            }
            None => {}
        }
        if magic != self.payload_magic {
            let bytes = self.rewrite(magic, stamp)?;
            self.payload = Some(bytes);
            self.payload_magic = magic;
            self.stamp = stamp.filter(|_| magic == MAGIC_V2);
        }
        let payload = self.payload.clone().unwrap_or_default();
        if magic != MAGIC_V2 || stamp == self.stamp {
            return Ok(payload);
        }
        let mut bytes = payload.to_vec();
        if let Some(s) = stamp {
            if bytes.len() >= RECORD_BATCH_OVERHEAD {
                let mut at = PRODUCER_ID_OFFSET;
                for chunk in [
                    &s.producer_id.to_be_bytes()[..],
                    &s.epoch.to_be_bytes()[..],
                    &s.base_sequence.to_be_bytes()[..],
                ] {
                    bytes[at..at + chunk.len()].copy_from_slice(chunk);
                    at += chunk.len();
                }
                let crc = crate::records::crc32c::crc32c(&bytes[ATTRIBUTES_OFFSET..]);
                bytes[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
            }
        }
        let bytes = Bytes::from(bytes);
        self.payload = Some(bytes.clone());
        self.stamp = stamp;
        Ok(bytes)
    }

    /// The records of the finished payload, read back (any format).
    fn read_back(&self) -> Option<Vec<Record>> {
        let payload = self.payload.clone()?;
        let mut set = RecordSet::new(payload, DecodeOptions::default());
        let mut records = Vec::with_capacity(self.thunks.len());
        for batch in set.by_ref() {
            records.extend(batch.ok()?.into_records().ok()?);
        }
        (set.partial_tail() == 0 && records.len() == self.thunks.len()).then_some(records)
    }

    /// The finished payload written again in format `magic` (rare: only when a batch meets
    /// a broker that takes another format than the one it was opened for). Timestamps come
    /// from the records' thunks, so a magic 0 batch that becomes magic 1 or 2 keeps them.
    fn rewrite(&self, magic: i8, stamp: Option<Stamp>) -> Result<Bytes, EncodeError> {
        let records = self.read_back().ok_or_else(|| EncodeError::Invalid {
            what: "record batch",
            detail: "the batch's bytes do not read back for rewriting in another format".into(),
        })?;
        let s = &self.settings;
        let stamps = self.thunks.iter().map(|t| t.timestamp);
        if magic == MAGIC_V2 {
            let mut b = RecordBatchBuilder::new(s.compression)
                .compression_level(s.level)
                .transactional(s.transactional);
            if let Some(st) = stamp {
                b = b.producer(st.producer_id, st.epoch, st.base_sequence);
            }
            for (r, ts) in records.iter().zip(stamps) {
                b.append(
                    ts,
                    r.key.as_deref(),
                    r.value.as_deref(),
                    &r.headers.to_vec(),
                )?;
            }
            return b.finish();
        }
        let mut b = LegacyMessageSetBuilder::new(magic, s.compression)?.compression_level(s.level);
        for (r, ts) in records.iter().zip(stamps) {
            check_no_headers(magic, &r.headers.to_vec())?;
            b.append(ts, r.key.as_deref(), r.value.as_deref())?;
        }
        b.finish()
    }

    /// Size on the wire once finished (the estimate while still open).
    pub(crate) fn size_in_bytes(&self) -> usize {
        match (&self.payload, &self.builder) {
            (Some(p), _) => p.len(),
            (None, Some(b)) => b.size_in_bytes(),
            (None, None) => RECORD_BATCH_OVERHEAD,
        }
    }

    /// The format of the bytes last sent (or to be written, while still open).
    pub(crate) fn magic(&self) -> i8 {
        match &self.builder {
            Some(Builder::V2(_)) => MAGIC_V2,
            Some(Builder::Legacy(b)) => b.magic(),
            None => self.payload_magic,
        }
    }

    /// Splits a batch the broker refused as too large into batches of at most `limit`
    /// bytes each (one record at least), keeping record order and each record's op.
    /// The caller passes at most half the batch's size so that every split makes progress.
    /// The new batches carry no stamp: they get sequences when drained. Records that cannot
    /// be appended again come back as thunks for the caller to fail (they were encoded here
    /// once, so that would be a bug); `Err` gives the batch back, its records untouched, if
    /// its bytes cannot be read back.
    pub(crate) fn split(
        mut self,
        next_id: &mut u64,
        limit: usize,
    ) -> Result<(Vec<ProducerBatch>, Vec<Thunk>), Box<ProducerBatch>> {
        self.settings.batch_size = limit;
        // The parts are written in the format the broker just refused as too large.
        self.settings.magic = self.payload_magic;
        let Some(records) = self.read_back() else {
            return Err(Box::new(self));
        };
        let per_record = self.reserved / records.len().max(1) as u64;
        let mut out: Vec<ProducerBatch> = Vec::new();
        let mut lost = Vec::new();
        let thunks = std::mem::take(&mut self.thunks);
        let mut left = self.reserved;
        for (rec, thunk) in records.into_iter().zip(thunks) {
            let headers = rec.headers.to_vec();
            let bound = RecordBatchBuilder::record_size_upper_bound(
                rec.key.as_deref(),
                rec.value.as_deref(),
                &headers,
            );
            if out.last().is_none_or(|b| !b.has_room_for(bound)) {
                if let Some(b) = out.last_mut() {
                    b.closed = true;
                }
                *next_id += 1;
                let mut b = ProducerBatch::new(
                    *next_id,
                    self.topic.clone(),
                    self.partition,
                    self.settings,
                    self.created,
                );
                b.deadline = self.deadline;
                b.attempts = self.attempts;
                b.last_error = self.last_error.clone();
                out.push(b);
            }
            let b = out.last_mut().expect("pushed above");
            let share = per_record.min(left);
            // The thunk's timestamp: a magic 0 message has none of its own.
            if b.append(
                thunk.timestamp,
                rec.key.as_deref(),
                rec.value.as_deref(),
                &headers,
                share,
                thunk.op,
                thunk.gen,
            )
            .is_ok()
            {
                left -= share;
            } else {
                lost.push(thunk);
            }
        }
        if let Some(b) = out.last_mut() {
            // What is left over (rounding, and the share of any record lost above) stays
            // with the last part, so the memory returns when it completes.
            b.reserved += left;
            b.closed = true;
        }
        Ok((out, lost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::RecordBatch;

    fn settings(batch_size: usize) -> BatchSettings {
        BatchSettings {
            transactional: false,
            batch_size,
            compression: Compression::None,
            level: None,
            delivery_timeout: Duration::from_secs(120),
            magic: MAGIC_V2,
        }
    }

    #[test]
    fn restamping_rewrites_producer_fields_and_crc() {
        let now = Instant::now();
        let mut b = ProducerBatch::new(1, "t".into(), 0, settings(1000), now);
        b.append(1, Some(b"k"), Some(b"v"), &[], 10, None, 0)
            .unwrap();
        let first = Stamp {
            producer_id: 7,
            epoch: 0,
            base_sequence: 5,
        };
        let p1 = b.payload(Some(first), MAGIC_V2).unwrap();
        let h1 = RecordBatch::decode(p1, &DecodeOptions::default()).unwrap();
        assert_eq!(h1.header().base_sequence, 5);
        let second = Stamp {
            producer_id: 7,
            epoch: 1,
            base_sequence: 0,
        };
        let p2 = b.payload(Some(second), MAGIC_V2).unwrap();
        let h2 = RecordBatch::decode(p2, &DecodeOptions::default()).expect("CRC still valid");
        assert_eq!(h2.header().producer_epoch, 1);
        assert_eq!(h2.header().base_sequence, 0);
        assert_eq!(h2.header().producer_id, 7);
    }

    #[test]
    fn buffer_is_reused_only_when_nothing_else_holds_the_bytes() {
        let now = Instant::now();
        let s = settings(1000);
        let mut b = ProducerBatch::new(1, "t".into(), 0, s, now);
        b.append(1, Some(b"k"), Some(b"first"), &[], 10, None, 0)
            .unwrap();
        let sent = b.payload(None, MAGIC_V2).unwrap();
        let want = sent.clone();
        // A request (or transmit) still holds the bytes: no reuse, and they stay intact.
        assert!(b.take_buffer().is_none());
        assert_eq!(sent, want);
        drop((sent, want));

        let mut b = ProducerBatch::new(2, "t".into(), 0, s, now);
        b.append(1, Some(b"k"), Some(b"first"), &[], 10, None, 0)
            .unwrap();
        b.payload(None, MAGIC_V2).unwrap();
        let buf = b.take_buffer().expect("unique once the request is gone");
        assert_eq!(buf.capacity(), ProducerBatch::buffer_capacity(&s));
        let ptr = buf.as_ptr();

        // A batch built into the reused buffer encodes only its own records.
        let mut c = ProducerBatch::with_buffer(3, "t".into(), 0, s, now, buf);
        c.append(7, None, Some(b"second"), &[], 10, None, 0)
            .unwrap();
        let bytes = c.payload(None, MAGIC_V2).unwrap();
        assert_eq!(bytes.as_ptr(), ptr, "no new allocation");
        let records = RecordBatch::decode(bytes, &DecodeOptions::default())
            .unwrap()
            .decode_records()
            .unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].timestamp, 7);
        assert_eq!(records[0].value.as_deref(), Some(&b"second"[..]));

        // A batch never sent gives its builder's buffer back.
        let mut d = ProducerBatch::new(4, "t".into(), 0, s, now);
        d.append(1, None, Some(b"x"), &[], 10, None, 0).unwrap();
        assert_eq!(
            d.take_buffer().map(|b| b.capacity()),
            Some(ProducerBatch::buffer_capacity(&s))
        );
    }

    /// The capacity of a batch's buffer while it is open.
    fn open_capacity(b: &ProducerBatch) -> usize {
        match &b.builder {
            Some(Builder::V2(builder)) => builder.capacity(),
            _ => panic!("an open record batch"),
        }
    }

    #[test]
    fn a_record_over_half_the_batch_size_gets_a_buffer_of_its_size() {
        let now = Instant::now();
        let s = settings(16384);
        let big = vec![b'x'; 10_000];
        let bound = RecordBatchBuilder::record_size_upper_bound(None, Some(&big), &[]);
        // Two of these do not fit in 16 KiB: a buffer for the one.
        assert!(ProducerBatch::is_for_one(&s, bound));
        let mut b = ProducerBatch::for_one(1, "t".into(), 0, s, now, Vec::new(), bound);
        assert_eq!(open_capacity(&b), RECORD_BATCH_OVERHEAD + bound);
        b.append(1, None, Some(&big), &[], bound as u64, None, 0)
            .unwrap();
        assert_eq!(
            open_capacity(&b),
            RECORD_BATCH_OVERHEAD + bound,
            "no growth"
        );
        // A small record after it grows the buffer to the usual room once, not by doubling.
        assert!(b.has_room_for(100));
        b.append(2, None, Some(&[7; 80]), &[], 100, None, 0)
            .unwrap();
        assert_eq!(open_capacity(&b), ProducerBatch::buffer_capacity(&s));
        let records = RecordBatch::decode(b.payload(None, MAGIC_V2).unwrap(), &Default::default())
            .unwrap()
            .decode_records()
            .unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].value.as_deref(), Some(&big[..]));
        assert_eq!(records[1].value.as_deref(), Some(&[7; 80][..]));

        // A record of which two fit takes the usual buffer (pooled ones have its capacity).
        let small = RecordBatchBuilder::record_size_upper_bound(None, Some(&[0; 8000]), &[]);
        assert!(!ProducerBatch::is_for_one(&s, small));
        // A record over batch_size gets its own size at once.
        let huge = RecordBatchBuilder::record_size_upper_bound(None, Some(&[0; 100_000]), &[]);
        assert!(ProducerBatch::is_for_one(&s, huge));
        let h = ProducerBatch::for_one(3, "t".into(), 0, s, now, Vec::new(), huge);
        assert_eq!(open_capacity(&h), RECORD_BATCH_OVERHEAD + huge);
        // A kept buffer with room enough is used as it is.
        let kept = Vec::with_capacity(RECORD_BATCH_OVERHEAD + bound + 100);
        let ptr = kept.as_ptr();
        let mut k = ProducerBatch::for_one(5, "t".into(), 0, s, now, kept, bound);
        k.append(1, None, Some(&big), &[], bound as u64, None, 0)
            .unwrap();
        assert_eq!(k.payload(None, MAGIC_V2).unwrap().as_ptr(), ptr);
        // Legacy formats are left as they were.
        let legacy = BatchSettings {
            magic: MAGIC_V1,
            ..s
        };
        assert!(!ProducerBatch::is_for_one(&legacy, bound));
    }

    #[test]
    fn split_keeps_order_and_deliveries() {
        let now = Instant::now();
        let mut b = ProducerBatch::new(1, "t".into(), 3, settings(1 << 20), now);
        for i in 0..10u8 {
            b.append(
                i as i64,
                None,
                Some(&[i; 100]),
                &[],
                150,
                Some(OpId(u64::from(i))),
                0,
            )
            .unwrap();
        }
        b.payload(None, MAGIC_V2).unwrap();
        let mut id = 1;
        let (parts, lost) = b.split(&mut id, 400).ok().unwrap();
        assert!(lost.is_empty());
        let mut ops = Vec::new();
        assert!(parts.len() >= 3, "{}", parts.len());
        let mut values = Vec::new();
        let mut reserved = 0;
        for mut p in parts {
            assert!(p.size_in_bytes() <= 400);
            reserved += p.reserved;
            ops.extend(p.thunks.iter().map(|t| t.op));
            let bytes = p.payload(None, MAGIC_V2).unwrap();
            for r in RecordBatch::decode(bytes, &DecodeOptions::default())
                .unwrap()
                .records()
            {
                let r = r.unwrap();
                values.push((r.timestamp, r.value.unwrap()[0]));
            }
        }
        assert_eq!(reserved, 1500, "memory follows the records");
        let want: Vec<(i64, u8)> = (0..10u8).map(|i| (i as i64, i)).collect();
        assert_eq!(values, want);
        let want: Vec<Option<OpId>> = (0..10).map(|i| Some(OpId(i))).collect();
        assert_eq!(ops, want, "each record keeps its op, in order");
    }

    #[test]
    fn a_batch_is_rewritten_for_a_broker_taking_another_format() {
        let now = Instant::now();
        let legacy = BatchSettings {
            magic: MAGIC_V0,
            compression: Compression::Gzip,
            ..settings(1000)
        };
        // Opened as magic 0 (timestamps not stored), sent to a broker taking batches.
        let mut b = ProducerBatch::new(1, "t".into(), 0, legacy, now);
        b.append(11, Some(b"k"), Some(b"a"), &[], 10, None, 0)
            .unwrap();
        b.append(12, None, None, &[], 10, None, 0).unwrap();
        assert_eq!(b.magic(), MAGIC_V0);
        let stamp = Stamp {
            producer_id: 3,
            epoch: 1,
            base_sequence: 9,
        };
        let v2 = b.payload(Some(stamp), MAGIC_V2).unwrap();
        let batch = RecordBatch::decode(v2, &DecodeOptions::default()).unwrap();
        assert_eq!(batch.header().base_sequence, 9);
        let records = batch.decode_records().unwrap();
        let got: Vec<_> = records
            .iter()
            .map(|r| (r.timestamp, r.key.clone(), r.value.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    11,
                    Some(Bytes::from_static(b"k")),
                    Some(Bytes::from_static(b"a"))
                ),
                (12, None, None)
            ],
            "timestamps come back from the records' own"
        );
        // And back to magic 1 for a 0.10 broker (the leader moved again).
        let v1 = b.payload(None, MAGIC_V1).unwrap();
        assert_eq!(v1[16], 1);
        assert_eq!(b.read_back().unwrap()[1].timestamp, 12);

        // A record batch with headers cannot become a legacy message.
        let mut h = ProducerBatch::new(2, "t".into(), 0, settings(1000), now);
        h.append(1, None, Some(b"v"), &[Header::new("h", "x")], 10, None, 0)
            .unwrap();
        let e = h.payload(None, MAGIC_V1).unwrap_err().to_string();
        assert!(e.contains("headers"), "{e}");
    }

    #[test]
    fn a_legacy_batch_refuses_headers_and_keeps_batch_size() {
        let now = Instant::now();
        let legacy = BatchSettings {
            magic: MAGIC_V1,
            ..settings(300)
        };
        let mut b = ProducerBatch::new(1, "t".into(), 0, legacy, now);
        assert!(b
            .append(1, None, Some(b"v"), &[Header::new("h", "x")], 10, None, 0)
            .is_err());
        assert_eq!(b.record_count(), 0);
        let bound = RecordBatchBuilder::record_size_upper_bound(None, Some(&[7; 20]), &[]);
        let mut n = 0;
        while b.has_room_for(bound) {
            b.append(1, None, Some(&[7; 20]), &[], bound as u64, None, 0)
                .unwrap();
            n += 1;
        }
        assert!(n > 1);
        assert!(b.payload(None, MAGIC_V1).unwrap().len() <= 300);
    }
}
