//! Reading a record set: batches of any magic laid end to end, as in a Fetch response.

use bytes::Bytes;

use super::batch::{RecordBatch, RecordIter};
use super::legacy::{LegacyBatch, MIN_MESSAGE_SIZE};
use super::record::Record;
use super::{
    DecodeOptions, TimestampType, LOG_OVERHEAD, MAGIC_V0, MAGIC_V1, MAGIC_V2, NO_PRODUCER_ID,
};
use crate::codec::DecodeError;
use crate::compression::Compression;

/// Offset of the magic byte in every format.
const MAGIC_OFFSET: usize = 16;

/// One batch of a record set: a magic 2 record batch or a magic 0/1 (wrapper) message.
#[derive(Debug, Clone)]
pub enum Batch {
    /// A magic 2 record batch.
    V2(RecordBatch),
    /// A magic 0 or 1 message with its records.
    Legacy(LegacyBatch),
}

impl Batch {
    /// The magic byte.
    pub fn magic(&self) -> i8 {
        match self {
            Batch::V2(_) => MAGIC_V2,
            Batch::Legacy(b) => b.magic(),
        }
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        match self {
            Batch::V2(b) => b.base_offset(),
            Batch::Legacy(b) => b.base_offset(),
        }
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        match self {
            Batch::V2(b) => b.last_offset(),
            Batch::Legacy(b) => b.last_offset(),
        }
    }

    /// The offset after this batch (where the next fetch starts).
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// The codec.
    pub fn compression(&self) -> Compression {
        match self {
            Batch::V2(b) => b.compression(),
            Batch::Legacy(b) => b.compression(),
        }
    }

    /// The timestamp type.
    pub fn timestamp_type(&self) -> TimestampType {
        match self {
            Batch::V2(b) => b.timestamp_type(),
            Batch::Legacy(b) => b.timestamp_type(),
        }
    }

    /// Whether this is a control batch (never for legacy messages).
    pub fn is_control(&self) -> bool {
        matches!(self, Batch::V2(b) if b.is_control())
    }

    /// Whether the batch is transactional (never for legacy messages).
    pub fn is_transactional(&self) -> bool {
        matches!(self, Batch::V2(b) if b.is_transactional())
    }

    /// The producer id ([`NO_PRODUCER_ID`] for legacy messages).
    pub fn producer_id(&self) -> i64 {
        match self {
            Batch::V2(b) => b.header().producer_id,
            Batch::Legacy(_) => NO_PRODUCER_ID,
        }
    }

    /// The batch exactly as it was on the wire.
    pub fn raw(&self) -> &Bytes {
        match self {
            Batch::V2(b) => b.raw(),
            Batch::Legacy(b) => b.raw(),
        }
    }

    /// Iterates the records.
    pub fn records(&self) -> BatchRecords<'_> {
        match self {
            Batch::V2(b) => BatchRecords::V2(b.records()),
            Batch::Legacy(b) => BatchRecords::Legacy(b.records().iter()),
        }
    }

    /// All records in a vector.
    pub fn into_records(self) -> Result<Vec<Record>, DecodeError> {
        match self {
            Batch::V2(b) => b.decode_records(),
            Batch::Legacy(b) => Ok(b.into_records()),
        }
    }
}

/// Iterator over a [`Batch`]'s records.
#[derive(Debug, Clone)]
pub enum BatchRecords<'a> {
    /// Records of a magic 2 batch, decoded as they are reached.
    V2(RecordIter),
    /// Records of a legacy message, already decoded.
    Legacy(std::slice::Iter<'a, Record>),
}

impl Iterator for BatchRecords<'_> {
    type Item = Result<Record, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            BatchRecords::V2(it) => it.next(),
            BatchRecords::Legacy(it) => it.next().cloned().map(Ok),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            BatchRecords::V2(it) => it.size_hint(),
            BatchRecords::Legacy(it) => it.size_hint(),
        }
    }
}

/// Reads the batches of a record set one at a time.
///
/// A truncated final batch ends the iteration without an error (the broker cuts responses at
/// its byte limit); [`partial_tail`](Self::partial_tail) then says how many bytes it had.
/// Any other problem yields one error, after which the iterator ends.
#[derive(Debug, Clone)]
pub struct RecordSet {
    data: Bytes,
    pos: usize,
    opts: DecodeOptions,
    done: bool,
    partial: usize,
}

impl RecordSet {
    /// A reader over `data` (the `records` bytes of a fetched partition).
    pub fn new(data: Bytes, opts: DecodeOptions) -> Self {
        RecordSet {
            data,
            pos: 0,
            opts,
            done: false,
            partial: 0,
        }
    }

    /// Bytes of the truncated batch the set ended with (0 if it ended cleanly or iteration
    /// has not reached the end). A non-zero value with no complete batch read means the
    /// first batch is larger than the fetch size allowed.
    pub fn partial_tail(&self) -> usize {
        self.partial
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn read_next(&mut self) -> Result<Option<Batch>, DecodeError> {
        let rest = &self.data[self.pos..];
        if rest.len() < LOG_OVERHEAD {
            self.partial = rest.len();
            return Ok(None);
        }
        let len = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l >= MIN_MESSAGE_SIZE)
            .ok_or_else(|| {
                DecodeError::invalid(
                    "record set",
                    format!("batch length {len} is below the minimum {MIN_MESSAGE_SIZE}"),
                )
            })?;
        let size = len + LOG_OVERHEAD;
        if size > rest.len() {
            self.partial = rest.len();
            return Ok(None);
        }
        let magic = rest[MAGIC_OFFSET] as i8;
        let slice = self.data.slice(self.pos..self.pos + size);
        let batch = match magic {
            MAGIC_V2 => Batch::V2(RecordBatch::decode_exact(slice, &self.opts)?),
            MAGIC_V0 | MAGIC_V1 => Batch::Legacy(LegacyBatch::decode(slice, &self.opts)?),
            other => {
                return Err(DecodeError::invalid(
                    "record set",
                    format!("unknown magic {other}"),
                ))
            }
        };
        self.pos += size;
        Ok(Some(batch))
    }
}

impl Iterator for RecordSet {
    type Item = Result<Batch, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_next() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
