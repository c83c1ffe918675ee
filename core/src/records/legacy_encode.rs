//! Writing legacy message sets, magic 0 (Kafka 0.8-0.9) and magic 1 (Kafka 0.10), for
//! brokers that predate record batches (the layout is in `legacy.rs`).
//!
//! What a producer writes, as Java's 0.10 client wrote it:
//! - uncompressed, one message per record at offsets `base, base + 1, ...` (the broker
//!   assigns the real offsets);
//! - compressed, one *wrapper* message whose value is the compressed set of the records'
//!   messages. The wrapper's offset is that of the last record; the inner offsets are
//!   relative (0, 1, ...) under magic 1 and absolute from `base` under magic 0 (brokers
//!   re-number magic 0 sets themselves). Under magic 1 the wrapper carries the largest inner
//!   timestamp, with the CreateTime type.
//! - gzip as a gzip stream, snappy in snappy-java's xerial framing (what Kafka's
//!   `SnappyOutputStream` wrote and every old broker reads), lz4 as an LZ4 frame whose header
//!   checksum is the one each magic expects: magic 0 the broken one of Kafka 0.8-0.9
//!   (computed over the frame magic too, KAFKA-3160), magic 1 the correct one. zstd does not
//!   exist before magic 2.
//! - no headers: they came with magic 2 (Kafka 0.11), so a record with headers is refused
//!   ([`check_no_headers`]) rather than silently stripped.

use bytes::{BufMut, Bytes};

use super::header::Header;
use super::{LOG_OVERHEAD, MAGIC_V0, MAGIC_V1, NO_TIMESTAMP};
use crate::codec::{EncodeError, Writer};
use crate::compression::{self, lz4, Compression};

/// A message's bytes after `offset` and `messageSize` apart from key and value: CRC, magic,
/// attributes and the two length fields (magic 0).
const MESSAGE_OVERHEAD_V0: usize = 4 + 1 + 1 + 4 + 4;
/// Magic 1 adds the timestamp.
const MESSAGE_OVERHEAD_V1: usize = MESSAGE_OVERHEAD_V0 + 8;

/// The bytes of a message's fixed fields, log overhead included (`offset`, `messageSize`,
/// CRC, magic, attributes, timestamp for magic 1, and the key and value lengths).
pub(crate) fn message_overhead(magic: i8) -> usize {
    LOG_OVERHEAD
        + if magic == MAGIC_V0 {
            MESSAGE_OVERHEAD_V0
        } else {
            MESSAGE_OVERHEAD_V1
        }
}

/// Refuses headers under a legacy magic: message formats 0 and 1 have no place for them.
pub fn check_no_headers(magic: i8, headers: &[Header]) -> Result<(), EncodeError> {
    if headers.is_empty() {
        return Ok(());
    }
    Err(EncodeError::Invalid {
        what: "record headers",
        detail: format!(
            "a record with headers cannot be written as a magic {magic} message: headers \
             need record batches (magic 2, Kafka 0.11 or later)"
        ),
    })
}

/// Appends one message to `out`; on error `out` is left as it was.
#[allow(clippy::too_many_arguments)]
fn write_message(
    out: &mut Vec<u8>,
    magic: i8,
    offset: i64,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_i64(offset);
    out.put_i32(0);
    out.put_u32(0);
    out.put_i8(magic);
    out.put_i8(attributes);
    if magic == MAGIC_V1 {
        out.put_i64(timestamp);
    }
    let res = out
        .put_nullable_byte_field(key, false)
        .and_then(|_| out.put_nullable_byte_field(value, false));
    let size = out.len() - start - LOG_OVERHEAD;
    let size = res.and_then(|_| {
        i32::try_from(size).map_err(|_| EncodeError::TooLong {
            what: "message",
            len: size,
            max: i32::MAX as usize,
        })
    });
    let size = match size {
        Ok(s) => s,
        Err(e) => {
            out.truncate(start);
            return Err(e);
        }
    };
    out[start + 8..start + 12].copy_from_slice(&size.to_be_bytes());
    // The CRC covers magic to the end of the message.
    let crc = crc32fast::hash(&out[start + 16..]);
    out[start + 12..start + 16].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Builds a magic 0 or 1 message set for brokers that predate record batches.
///
/// Uncompressed, each record becomes one message at `base_offset + i`. With a codec the
/// messages go into one wrapper message at the last offset, with relative inner offsets for
/// magic 1 and absolute ones for magic 0, and (magic 1) the largest inner timestamp. LZ4 under
/// magic 0 is written with the broken header checksum Kafka 0.8-0.9 expects there.
///
/// ```
/// use kafkit_core::compression::Compression;
/// use kafkit_core::records::{DecodeOptions, LegacyMessageSetBuilder, RecordSet};
///
/// let mut b = LegacyMessageSetBuilder::new(1, Compression::Gzip)?;
/// b.append(1_700_000_000_000, Some(b"k"), Some(b"v"))?;
/// b.append(1_700_000_000_001, None, None)?; // null key, tombstone
/// let set = b.finish()?;
/// let records: Vec<_> = RecordSet::new(set, DecodeOptions::default())
///     .map(|batch| batch.unwrap().into_records().unwrap())
///     .flatten()
///     .collect();
/// assert_eq!(records[1].offset, 1);
/// assert_eq!(records[1].value, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct LegacyMessageSetBuilder {
    magic: i8,
    compression: Compression,
    level: Option<i32>,
    base_offset: i64,
    buf: Vec<u8>,
    count: i64,
    max_timestamp: i64,
}

impl LegacyMessageSetBuilder {
    /// A builder for `magic` (0 or 1) and `compression` (zstd needs magic 2).
    pub fn new(magic: i8, compression: Compression) -> Result<Self, EncodeError> {
        Self::with_buffer(magic, compression, Vec::new())
    }

    /// Like [`new`](Self::new), writing into `buf` (cleared first), e.g. a buffer kept from
    /// an earlier set, instead of a new allocation.
    pub fn with_buffer(
        magic: i8,
        compression: Compression,
        mut buf: Vec<u8>,
    ) -> Result<Self, EncodeError> {
        if magic != MAGIC_V0 && magic != MAGIC_V1 {
            return Err(EncodeError::Invalid {
                what: "message magic",
                detail: format!("{magic} is not a legacy magic (0 or 1)"),
            });
        }
        if compression == Compression::Zstd {
            return Err(EncodeError::Invalid {
                what: "message compression",
                detail: format!(
                    "zstd cannot be written as a magic {magic} message: it needs record \
                     batches (magic 2) and Kafka 2.1 or later"
                ),
            });
        }
        buf.clear();
        Ok(LegacyMessageSetBuilder {
            magic,
            compression,
            level: None,
            base_offset: 0,
            buf,
            count: 0,
            max_timestamp: NO_TIMESTAMP,
        })
    }

    /// Sets the codec's level (`None`: default).
    pub fn compression_level(mut self, level: Option<i32>) -> Self {
        self.level = level;
        self
    }

    /// Sets the offset of the first record (producers leave 0).
    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// The magic being written.
    pub fn magic(&self) -> i8 {
        self.magic
    }

    /// Number of records appended.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record has been appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the set so far before compression; with a codec the wrapper message's own
    /// fields are counted too. A compressed set ends up smaller; this is what a producer
    /// compares with `batch.size`, as for record batches.
    pub fn size_in_bytes(&self) -> usize {
        if self.compression == Compression::None {
            self.buf.len()
        } else {
            self.buf.len() + message_overhead(self.magic)
        }
    }

    /// The bytes one more message with this key and value adds (exact before compression).
    pub fn record_size(magic: i8, key: Option<&[u8]>, value: Option<&[u8]>) -> usize {
        message_overhead(magic)
            .saturating_add(key.map_or(0, <[u8]>::len))
            .saturating_add(value.map_or(0, <[u8]>::len))
    }

    /// Appends a record (the timestamp is dropped under magic 0); returns its offset.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<i64, EncodeError> {
        let absolute = self.base_offset.wrapping_add(self.count);
        let offset = if self.compression != Compression::None && self.magic == MAGIC_V1 {
            self.count
        } else {
            absolute
        };
        write_message(&mut self.buf, self.magic, offset, 0, timestamp, key, value)?;
        if self.count == 0 || timestamp > self.max_timestamp {
            self.max_timestamp = timestamp;
        }
        self.count += 1;
        Ok(absolute)
    }

    /// Appends a record with headers: refused unless `headers` is empty (see
    /// [`check_no_headers`]).
    pub fn append_with_headers(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<i64, EncodeError> {
        check_no_headers(self.magic, headers)?;
        self.append(timestamp, key, value)
    }

    /// The builder's buffer, for reuse (what was written is discarded).
    pub fn into_buffer(mut self) -> Vec<u8> {
        self.buf.clear();
        self.buf
    }

    /// The message set: the messages themselves, or one wrapper message (empty if nothing
    /// was appended).
    pub fn finish(self) -> Result<Bytes, EncodeError> {
        if self.compression == Compression::None || self.count == 0 {
            return Ok(Bytes::from(self.buf));
        }
        let mut compressed = Vec::with_capacity(self.buf.len() / 2 + 64);
        match self.compression {
            Compression::Lz4 => {
                if let Some(level) = self.level {
                    Compression::Lz4.validate_level(level)?;
                }
                lz4::compress(&self.buf, self.magic == MAGIC_V0, &mut compressed);
            }
            // Snappy is written in the xerial framing (`compression::snappy::compress`),
            // which is what 0.8-0.10 brokers, using snappy-java's stream, read.
            c => compression::compress(c, self.level, &self.buf, &mut compressed)?,
        }
        // The wrapper is written into the records' buffer, whose contents are compressed
        // away by now: one allocation serves both.
        let mut out = self.buf;
        out.clear();
        out.reserve(compressed.len() + message_overhead(self.magic));
        let last = self.base_offset.wrapping_add(self.count - 1);
        write_message(
            &mut out,
            self.magic,
            last,
            self.compression.attribute_bits() as i8,
            self.max_timestamp,
            None,
            Some(&compressed),
        )?;
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
#[path = "legacy_encode_tests.rs"]
mod tests;
