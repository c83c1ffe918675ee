//! Record batches, magic 2:
//!
//! ```text
//! offset  field                 covered by CRC
//!  0      baseOffset: int64
//!  8      batchLength: int32    bytes after this field
//! 12      partitionLeaderEpoch: int32
//! 16      magic: int8 (2)
//! 17      crc: uint32           CRC-32C of bytes 21..end
//! 21      attributes: int16     yes; bits 0-2 codec, 3 timestamp type, 4 transactional,
//!                                    5 control, 6 delete horizon set
//! 23      lastOffsetDelta: int32        yes
//! 27      baseTimestamp: int64          yes (the delete horizon when bit 6 is set)
//! 35      maxTimestamp: int64           yes
//! 43      producerId: int64             yes
//! 51      producerEpoch: int16          yes
//! 53      baseSequence: int32           yes
//! 57      recordsCount: int32           yes
//! 61      records (compressed as one block when a codec is set)
//! ```

use bytes::{BufMut, Bytes};

use super::control::ControlRecord;
use super::header::Header;
use super::record::{body_size, read_record, write_record, Record, RecordRef, MIN_RECORD_SIZE};
use super::{
    DecodeOptions, TimestampType, LOG_OVERHEAD, MAGIC_V2, NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP, RECORD_BATCH_OVERHEAD,
};
use crate::codec::{varint_size, DecodeError, EncodeError};
use crate::compression::{self, Compression, COMPRESSION_CODEC_MASK};

const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const MAX_TIMESTAMP_OFFSET: usize = 35;

/// A batch's attributes field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Attributes(pub i16);

impl Attributes {
    /// Bit 3: timestamps are log-append time.
    pub const TIMESTAMP_TYPE: i16 = 0x08;
    /// Bit 4: the batch belongs to a transaction.
    pub const TRANSACTIONAL: i16 = 0x10;
    /// Bit 5: the batch holds control records.
    pub const CONTROL: i16 = 0x20;
    /// Bit 6: `baseTimestamp` holds the delete horizon (set by log compaction).
    pub const DELETE_HORIZON: i16 = 0x40;

    /// The codec, or `None` if bits 0-2 name no codec (5-7).
    pub fn compression(self) -> Option<Compression> {
        Compression::from_attributes(self.0)
    }

    /// The timestamp type.
    pub fn timestamp_type(self) -> TimestampType {
        if self.0 & Self::TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the transactional bit is set.
    pub fn is_transactional(self) -> bool {
        self.0 & Self::TRANSACTIONAL != 0
    }

    /// Whether the control bit is set.
    pub fn is_control(self) -> bool {
        self.0 & Self::CONTROL != 0
    }

    /// Whether the delete-horizon bit is set.
    pub fn has_delete_horizon(self) -> bool {
        self.0 & Self::DELETE_HORIZON != 0
    }
}

/// The fixed 61-byte header of a magic 2 batch, as plain fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchHeader {
    /// Offset of the first record (assigned by the broker; producers write 0).
    pub base_offset: i64,
    /// Bytes after the length field (the batch is `batch_length + 12` bytes long).
    pub batch_length: i32,
    /// Leader epoch of the broker that appended the batch (-1 from producers).
    pub partition_leader_epoch: i32,
    /// Always 2.
    pub magic: i8,
    /// CRC-32C of bytes 21..end.
    pub crc: u32,
    /// Codec and flags.
    pub attributes: Attributes,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp the records' deltas are relative to (or the delete horizon).
    pub base_timestamp: i64,
    /// Largest record timestamp (the log-append time under that timestamp type).
    pub max_timestamp: i64,
    /// Producer id (-1 for non-idempotent producers).
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence number of the first record (-1 without idempotence).
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the 61-byte header at the start of `data` (no CRC check, nothing validated
    /// beyond the magic byte; the records are not looked at).
    pub fn parse(data: &[u8]) -> Result<Self, DecodeError> {
        let head = data
            .get(..RECORD_BATCH_OVERHEAD)
            .ok_or(DecodeError::Truncated {
                needed: RECORD_BATCH_OVERHEAD,
                remaining: data.len(),
            })?;
        let mut at = 0;
        let mut take = |n: usize| {
            let mut b = [0u8; 8];
            b[8 - n..].copy_from_slice(&head[at..at + n]);
            at += n;
            i64::from_be_bytes(b)
        };
        let h = BatchHeader {
            base_offset: take(8),
            batch_length: take(4) as i32,
            partition_leader_epoch: take(4) as i32,
            magic: take(1) as i8,
            crc: take(4) as u32,
            attributes: Attributes(take(2) as i16),
            last_offset_delta: take(4) as i32,
            base_timestamp: take(8),
            max_timestamp: take(8),
            producer_id: take(8),
            producer_epoch: take(2) as i16,
            base_sequence: take(4) as i32,
            record_count: take(4) as i32,
        };
        if h.magic != MAGIC_V2 {
            return Err(DecodeError::invalid(
                "record batch",
                format!("magic {} where 2 was expected", h.magic),
            ));
        }
        Ok(h)
    }

    /// Writes the header into the first 61 bytes of `out` (the CRC as stored in `self`).
    fn write(&self, out: &mut [u8]) {
        let mut w = &mut out[..RECORD_BATCH_OVERHEAD];
        w.put_i64(self.base_offset);
        w.put_i32(self.batch_length);
        w.put_i32(self.partition_leader_epoch);
        w.put_i8(self.magic);
        w.put_u32(self.crc);
        w.put_i16(self.attributes.0);
        w.put_i32(self.last_offset_delta);
        w.put_i64(self.base_timestamp);
        w.put_i64(self.max_timestamp);
        w.put_i64(self.producer_id);
        w.put_i16(self.producer_epoch);
        w.put_i32(self.base_sequence);
        w.put_i32(self.record_count);
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset.wrapping_add(self.last_offset_delta as i64)
    }
}

/// A decoded magic 2 batch.
#[derive(Debug, Clone)]
pub struct RecordBatch {
    header: BatchHeader,
    /// The records section, decompressed if the batch was compressed.
    records: Bytes,
    /// The whole batch as it was on the wire.
    raw: Bytes,
}

impl RecordBatch {
    /// Decodes `data`, which must be exactly one complete batch (strict: a short input is
    /// [`DecodeError::Truncated`], extra bytes are [`DecodeError::TrailingBytes`]).
    pub fn decode(data: Bytes, opts: &DecodeOptions) -> Result<Self, DecodeError> {
        if data.len() < LOG_OVERHEAD {
            return Err(DecodeError::Truncated {
                needed: LOG_OVERHEAD,
                remaining: data.len(),
            });
        }
        let len = i32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        let size = usize::try_from(len)
            .unwrap_or(0)
            .saturating_add(LOG_OVERHEAD);
        if len >= 0 && size < data.len() {
            return Err(DecodeError::TrailingBytes(data.len() - size));
        }
        Self::decode_exact(data, opts)
    }

    /// Decodes a batch whose length field should match `data` exactly.
    pub(crate) fn decode_exact(data: Bytes, opts: &DecodeOptions) -> Result<Self, DecodeError> {
        let header = BatchHeader::parse(&data)?;
        let min = (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32;
        if header.batch_length < min {
            return Err(DecodeError::invalid(
                "record batch",
                format!("length {} is below the minimum {min}", header.batch_length),
            ));
        }
        let size = header.batch_length as usize + LOG_OVERHEAD;
        if size > data.len() {
            return Err(DecodeError::Truncated {
                needed: size,
                remaining: data.len(),
            });
        }
        if size < data.len() {
            return Err(DecodeError::TrailingBytes(data.len() - size));
        }
        if opts.check_crcs {
            let computed = super::crc32c::crc32c(&data[ATTRIBUTES_OFFSET..]);
            if computed != header.crc {
                return Err(DecodeError::CrcMismatch {
                    stored: header.crc,
                    computed,
                });
            }
        }
        let codec = header.attributes.compression().ok_or_else(|| {
            DecodeError::invalid(
                "record batch attributes",
                format!(
                    "unknown compression codec id {}",
                    header.attributes.0 & COMPRESSION_CODEC_MASK
                ),
            )
        })?;
        if header.record_count < 0 {
            return Err(DecodeError::invalid(
                "record batch",
                format!("negative record count {}", header.record_count),
            ));
        }
        let section = data.slice(RECORD_BATCH_OVERHEAD..);
        let records = match codec {
            Compression::None => section,
            codec => Bytes::from(compression::decompress(
                codec,
                &section,
                opts.max_decompressed_size,
            )?),
        };
        if (header.record_count as usize).saturating_mul(MIN_RECORD_SIZE) > records.len() {
            return Err(DecodeError::invalid(
                "record batch",
                format!(
                    "{} records cannot fit in {} bytes",
                    header.record_count,
                    records.len()
                ),
            ));
        }
        Ok(RecordBatch {
            header,
            records,
            raw: data,
        })
    }

    /// The header fields.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The codec the batch was compressed with.
    pub fn compression(&self) -> Compression {
        // Validated at decode time.
        self.header.attributes.compression().unwrap_or_default()
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        self.header.base_offset
    }

    /// Offset of the last record (which compaction may have removed).
    pub fn last_offset(&self) -> i64 {
        self.header.last_offset()
    }

    /// The offset to fetch next: one past the last.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// Number of records.
    pub fn record_count(&self) -> usize {
        self.header.record_count as usize
    }

    /// Whether this is a control batch.
    pub fn is_control(&self) -> bool {
        self.header.attributes.is_control()
    }

    /// Whether this batch is part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.header.attributes.is_transactional()
    }

    /// The timestamp type.
    pub fn timestamp_type(&self) -> TimestampType {
        self.header.attributes.timestamp_type()
    }

    /// The batch exactly as it was on the wire.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The records section after decompression.
    pub fn records_bytes(&self) -> &Bytes {
        &self.records
    }

    /// Iterates the records, decoding each as it is reached.
    pub fn records(&self) -> RecordIter {
        let log_append_time = self.log_append_time();
        RecordIter {
            section: self.records.clone(),
            pos: 0,
            left: self.header.record_count as u32,
            base_offset: self.header.base_offset,
            base_timestamp: self.header.base_timestamp,
            log_append_time,
            failed: false,
        }
    }

    /// Iterates the records as [`RecordRef`]s borrowed from the batch (no per-record
    /// reference counting or allocation).
    pub fn record_refs(&self) -> RecordRefIter<'_> {
        RecordRefIter {
            section: &self.records,
            rest: &self.records,
            left: self.header.record_count as u32,
            base_offset: self.header.base_offset,
            base_timestamp: self.header.base_timestamp,
            log_append_time: self.log_append_time(),
            failed: false,
        }
    }

    fn log_append_time(&self) -> Option<i64> {
        match self.timestamp_type() {
            TimestampType::LogAppendTime => Some(self.header.max_timestamp),
            TimestampType::CreateTime => None,
        }
    }

    /// Decodes all records into a vector.
    pub fn decode_records(&self) -> Result<Vec<Record>, DecodeError> {
        self.records().collect()
    }

    /// The control record of a control batch: `Ok(None)` for a data batch or an empty
    /// control batch (compaction can leave one).
    pub fn control_record(&self) -> Result<Option<ControlRecord>, DecodeError> {
        if !self.is_control() {
            return Ok(None);
        }
        match self.records().next() {
            None => Ok(None),
            Some(rec) => {
                let rec = rec?;
                ControlRecord::parse(rec.key.as_deref(), rec.value.as_ref()).map(Some)
            }
        }
    }
}

/// Iterator over a batch's records as borrowed [`RecordRef`]s: the fastest way to read a
/// batch (no reference counting per record). After the first error it ends.
#[derive(Debug, Clone)]
pub struct RecordRefIter<'a> {
    section: &'a Bytes,
    /// What is left of `section`.
    rest: &'a [u8],
    left: u32,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    failed: bool,
}

impl<'a> Iterator for RecordRefIter<'a> {
    type Item = Result<RecordRef<'a>, DecodeError>;

    // Always inlined into the caller's loop, like `read_record`: returned through memory,
    // the item is written field by field and read back with wide loads, a store-forwarding
    // stall per record.
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.left == 0 {
            let remaining = self.rest.len();
            if remaining == 0 {
                return None;
            }
            self.failed = true;
            return Some(Err(DecodeError::TrailingBytes(remaining)));
        }
        self.left -= 1;
        let rec = read_record(
            self.section,
            &mut self.rest,
            self.base_offset,
            self.base_timestamp,
            self.log_append_time,
        );
        if rec.is_err() {
            self.failed = true;
        }
        Some(rec)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            (0, Some(0))
        } else {
            (0, Some(self.left as usize + 1))
        }
    }
}

/// Iterator over a batch's records, decoding each on demand. After the first error it ends.
#[derive(Debug, Clone)]
pub struct RecordIter {
    section: Bytes,
    pos: usize,
    left: u32,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    failed: bool,
}

impl RecordIter {
    /// The next record borrowed from the batch, as [`RecordRefIter`] yields it: the caller
    /// slices what it keeps itself (the consumer builds its records straight from this,
    /// without an intermediate [`Record`]). After the first error it ends.
    // Always inlined, as `RecordRefIter::next` is.
    #[inline(always)]
    pub(crate) fn next_ref(&mut self) -> Option<Result<RecordRef<'_>, DecodeError>> {
        if self.failed {
            return None;
        }
        let total = self.section.len();
        let mut rest = self.section.get(self.pos..).unwrap_or_default();
        if self.left == 0 {
            let remaining = rest.len();
            if remaining == 0 {
                return None;
            }
            self.failed = true;
            return Some(Err(DecodeError::TrailingBytes(remaining)));
        }
        self.left -= 1;
        let rec = read_record(
            &self.section,
            &mut rest,
            self.base_offset,
            self.base_timestamp,
            self.log_append_time,
        );
        match rec {
            Ok(r) => {
                self.pos = total - rest.len();
                Some(Ok(r))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record, DecodeError>;

    // Always inlined, as `RecordRefIter::next` is.
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        self.next_ref().map(|r| r.map(|r| r.to_record()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            (0, Some(0))
        } else {
            (0, Some(self.left as usize + 1))
        }
    }
}

/// Builds a magic 2 batch, appending records straight into the batch buffer.
///
/// Settings are chosen with the `with_*`-style methods before the first append. The first
/// record's timestamp becomes `baseTimestamp` (as in Kafka's Java producer) unless a delete
/// horizon is set. Offsets are `base_offset + offset delta`; [`append`](Self::append) uses
/// the next delta, [`append_with_offset_delta`](Self::append_with_offset_delta) any larger one.
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    /// 61 bytes reserved for the header, then the uncompressed records.
    buf: Vec<u8>,
    compression: Compression,
    level: Option<i32>,
    flags: i16,
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
    last_offset_delta: i32,
    count: i32,
}

impl RecordBatchBuilder {
    /// An empty batch with the given codec and default settings (base offset 0, no producer
    /// id, create time, not transactional).
    pub fn new(compression: Compression) -> Self {
        Self::with_capacity(compression, 1024)
    }

    /// Like [`new`](Self::new), reserving room for `bytes` of records up front.
    pub fn with_capacity(compression: Compression, bytes: usize) -> Self {
        Self::with_buffer(compression, Vec::new(), bytes)
    }

    /// Like [`with_capacity`](Self::with_capacity), building into `buf` (its contents are
    /// discarded; it grows to room for `bytes` of records if it is smaller). A producer
    /// passes the buffer of a completed batch here instead of allocating a new one.
    pub fn with_buffer(compression: Compression, mut buf: Vec<u8>, bytes: usize) -> Self {
        buf.clear();
        buf.reserve_exact(RECORD_BATCH_OVERHEAD + bytes);
        buf.resize(RECORD_BATCH_OVERHEAD, 0);
        RecordBatchBuilder {
            buf,
            compression,
            level: None,
            flags: 0,
            base_offset: 0,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            base_timestamp: None,
            max_timestamp: i64::MIN,
            last_offset_delta: -1,
            count: 0,
        }
    }

    /// Sets the codec's level (`None`: the codec's default). Checked by
    /// [`finish`](Self::finish).
    pub fn compression_level(mut self, level: Option<i32>) -> Self {
        self.level = level;
        self
    }

    /// The buffer's capacity (for tests of how producers size it).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Grows the buffer, if it is smaller, to room for `bytes` of records in all: at once,
    /// rather than by the doubling appends would do.
    pub(crate) fn reserve_room(&mut self, bytes: usize) {
        let want = RECORD_BATCH_OVERHEAD + bytes;
        if self.buf.capacity() < want {
            self.buf.reserve_exact(want - self.buf.len());
        }
    }

    /// Sets the base offset (producers leave 0; brokers assign it).
    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// Sets the partition leader epoch (producers leave -1).
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Sets the idempotent producer's id, epoch and the first record's sequence number.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch as part of a transaction.
    pub fn transactional(mut self, yes: bool) -> Self {
        self.set_flag(Attributes::TRANSACTIONAL, yes);
        self
    }

    /// Marks the batch as a control batch (append with [`append_control`](Self::append_control)).
    pub fn control(mut self, yes: bool) -> Self {
        self.set_flag(Attributes::CONTROL, yes);
        self
    }

    /// Sets the timestamp type. Under log-append time, readers take every record's timestamp
    /// from `maxTimestamp`, which [`finish`](Self::finish) sets to the largest appended one.
    pub fn timestamp_type(mut self, ty: TimestampType) -> Self {
        self.set_flag(
            Attributes::TIMESTAMP_TYPE,
            ty == TimestampType::LogAppendTime,
        );
        self
    }

    /// Sets the delete horizon (log compaction): `baseTimestamp` becomes `horizon` and bit 6
    /// is set; record timestamps stay exact (their deltas are taken from the horizon).
    pub fn delete_horizon(mut self, horizon: i64) -> Self {
        self.set_flag(Attributes::DELETE_HORIZON, true);
        if self.count == 0 {
            self.base_timestamp = Some(horizon);
        }
        self
    }

    fn set_flag(&mut self, bit: i16, on: bool) {
        if on {
            self.flags |= bit;
        } else {
            self.flags &= !bit;
        }
    }

    /// Number of records appended.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record has been appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the batch so far before compression, header included. A compressed batch
    /// ends up smaller; this is what a producer compares with `batch.size` (as Java's
    /// estimate does for uncompressed batches).
    pub fn size_in_bytes(&self) -> usize {
        self.buf.len()
    }

    /// An upper bound on the bytes one more record with these fields adds (worst-case
    /// varint widths for the deltas), for deciding whether it fits before appending.
    pub fn record_size_upper_bound(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        // Largest timestamp delta (10 bytes) and offset delta (5 bytes) varints.
        let body = body_size(i32::MIN, i64::MIN, key, value, headers);
        body.saturating_add(varint_size(i32::MIN))
    }

    /// The offset delta the next [`append`](Self::append) will use.
    pub fn next_offset_delta(&self) -> i32 {
        self.last_offset_delta.wrapping_add(1)
    }

    /// Appends a record at the next offset; returns its offset delta.
    ///
    /// Inlined (like [`append_with_offset_delta`](Self::append_with_offset_delta)) into the
    /// caller's loop: as a call, its eight words of arguments spill to the stack, and reading
    /// them back stalled on store forwarding for longer than encoding the record took.
    #[inline]
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<i32, EncodeError> {
        let delta = self.next_offset_delta();
        self.append_with_offset_delta(delta, timestamp, key, value, headers)?;
        Ok(delta)
    }

    /// Appends a record at `offset_delta`, which must be larger than the previous one (gaps
    /// are allowed, as in compacted batches).
    #[inline]
    pub fn append_with_offset_delta(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<(), EncodeError> {
        if offset_delta <= self.last_offset_delta || self.count == i32::MAX {
            return Err(bad_offset_delta(offset_delta, self.last_offset_delta));
        }
        let base = *self.base_timestamp.get_or_insert(timestamp);
        write_record(
            &mut self.buf,
            offset_delta,
            timestamp.wrapping_sub(base),
            key,
            value,
            headers,
        )?;
        // `max_timestamp` starts at `i64::MIN` (`finish` writes NO_TIMESTAMP for an empty
        // batch), so the first record's timestamp always replaces it: no branch on `count`.
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self.last_offset_delta = offset_delta;
        self.count += 1;
        Ok(())
    }

    /// Appends a control record (on a builder made with [`control(true)`](Self::control)).
    pub fn append_control(
        &mut self,
        timestamp: i64,
        record: &ControlRecord,
    ) -> Result<i32, EncodeError> {
        let value = record.value();
        self.append(timestamp, Some(&record.key()), value.as_deref(), &[])
    }

    /// The builder's buffer, for reuse by [`with_buffer`](Self::with_buffer) (the batch is
    /// abandoned).
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// Compresses the records if a codec is set, fills in the header and CRC, and returns the
    /// batch.
    pub fn finish(self) -> Result<Bytes, EncodeError> {
        let mut out = match self.compression {
            Compression::None => self.buf,
            codec => {
                let records = &self.buf[RECORD_BATCH_OVERHEAD..];
                let mut out = Vec::with_capacity(RECORD_BATCH_OVERHEAD + records.len() / 2 + 64);
                out.resize(RECORD_BATCH_OVERHEAD, 0);
                compression::compress(codec, self.level, records, &mut out)?;
                out
            }
        };
        let batch_length =
            i32::try_from(out.len() - LOG_OVERHEAD).map_err(|_| EncodeError::TooLong {
                what: "record batch",
                len: out.len(),
                max: i32::MAX as usize,
            })?;
        let header = BatchHeader {
            base_offset: self.base_offset,
            batch_length,
            partition_leader_epoch: self.partition_leader_epoch,
            magic: MAGIC_V2,
            crc: 0,
            attributes: Attributes(self.flags | self.compression.attribute_bits()),
            last_offset_delta: self.last_offset_delta.max(0),
            base_timestamp: self.base_timestamp.unwrap_or(NO_TIMESTAMP),
            max_timestamp: if self.count == 0 {
                NO_TIMESTAMP
            } else {
                self.max_timestamp
            },
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            record_count: self.count,
        };
        header.write(&mut out);
        let crc = super::crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
        out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(Bytes::from(out))
    }
}

#[cold]
fn bad_offset_delta(offset_delta: i32, last: i32) -> EncodeError {
    EncodeError::Invalid {
        what: "record offset delta",
        detail: format!("{offset_delta} does not follow the previous delta {last}"),
    }
}

fn check_v2(batch: &[u8]) -> Result<(), DecodeError> {
    if batch.len() < RECORD_BATCH_OVERHEAD {
        return Err(DecodeError::Truncated {
            needed: RECORD_BATCH_OVERHEAD,
            remaining: batch.len(),
        });
    }
    if batch[MAGIC_OFFSET] as i8 != MAGIC_V2 {
        return Err(DecodeError::invalid(
            "record batch",
            format!("magic {} where 2 was expected", batch[MAGIC_OFFSET] as i8),
        ));
    }
    Ok(())
}

/// Rewrites the base offset of an encoded magic 2 batch in place (what a broker does on
/// append). The field is outside the CRC, so the CRC stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), DecodeError> {
    check_v2(batch)?;
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
    Ok(())
}

/// Rewrites the partition leader epoch of an encoded magic 2 batch in place (outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), DecodeError> {
    check_v2(batch)?;
    batch[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
        .copy_from_slice(&epoch.to_be_bytes());
    Ok(())
}

/// Switches an encoded magic 2 batch to log-append time `timestamp` in place (sets attribute
/// bit 3 and `maxTimestamp`) and recomputes the CRC, as a broker with
/// `message.timestamp.type=LogAppendTime` does.
pub fn set_log_append_time(batch: &mut [u8], timestamp: i64) -> Result<(), DecodeError> {
    check_v2(batch)?;
    let attrs = i16::from_be_bytes([batch[ATTRIBUTES_OFFSET], batch[ATTRIBUTES_OFFSET + 1]])
        | Attributes::TIMESTAMP_TYPE;
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
    batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&timestamp.to_be_bytes());
    let crc = super::crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}
