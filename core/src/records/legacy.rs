//! Legacy message sets, magic 0 (Kafka 0.8-0.9) and magic 1 (Kafka 0.10):
//!
//! ```text
//! offset: int64
//! messageSize: int32        bytes after this field
//! crc: uint32               CRC-32 (IEEE) of magic..end
//! magic: int8               0 or 1
//! attributes: int8          bits 0-2 codec; bit 3 timestamp type (magic 1)
//! timestamp: int64          magic 1 only
//! key: int32 length, bytes  -1 is null
//! value: int32 length, bytes
//! ```
//!
//! A compressed message is a *wrapper*: its value is a compressed message set of the same
//! magic. In magic 1 the inner offsets are relative (0, 1, ...) and the wrapper's offset is
//! that of the last inner message, so `absolute = wrapper offset - last inner offset + inner
//! offset`; in magic 0 inner offsets are absolute. Under log-append time (magic 1) every
//! inner message takes the wrapper's timestamp. Inner messages must have the wrapper's magic,
//! as Java requires.
//!
//! An inner message should not itself be compressed, but kafka-python's producer up to 1.2.4
//! wrote such *double-compressed* sets. As kafka-python's consumer does, such an inner message
//! is handed out as it was published, one record at its one offset whose value is still
//! compressed, or, with [`DecodeOptions::skip_double_compressed`]
//! (`skip_double_compressed_messages`), left out (logged at debug level).
//!
//! Writing these sets is `legacy_encode.rs`.

use bytes::Bytes;

use super::record::Record;
use super::{DecodeOptions, TimestampType, MAGIC_V0, MAGIC_V1, NO_TIMESTAMP};
use crate::codec::{DecodeError, Reader};
use crate::compression::{self, lz4, Compression, COMPRESSION_CODEC_MASK};

const TIMESTAMP_TYPE_BIT: i8 = 0x08;

/// Smallest `messageSize`: CRC, magic, attributes, and the two length fields.
const MIN_MESSAGE_SIZE_V0: usize = 4 + 1 + 1 + 4 + 4;
/// Magic 1 adds the timestamp.
const MIN_MESSAGE_SIZE_V1: usize = MIN_MESSAGE_SIZE_V0 + 8;

/// The smallest `messageSize` any magic 0/1 message has (used by the set reader).
pub(crate) const MIN_MESSAGE_SIZE: usize = MIN_MESSAGE_SIZE_V0;

/// One message, fields as on the wire.
struct Message {
    offset: i64,
    crc: u32,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

fn read_bytes_i32(r: &mut Reader) -> Result<Option<Bytes>, DecodeError> {
    r.read_nullable_bytes(false)
}

/// Parses one message from the start of `r` (strictly: its size field must fit).
fn read_message(r: &mut Reader, check_crc: bool) -> Result<Message, DecodeError> {
    let offset = r.read_i64()?;
    let size = r.read_i32()?;
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s >= MIN_MESSAGE_SIZE_V0)
        .ok_or_else(|| {
            DecodeError::invalid("message", format!("size {size} is below the minimum"))
        })?;
    let mut m = r.sub_reader(size)?;
    let crc = m.read_u32()?;
    if check_crc {
        let computed = crc32fast::hash(m.peek_rest());
        if computed != crc {
            return Err(DecodeError::CrcMismatch {
                stored: crc,
                computed,
            });
        }
    }
    let magic = m.read_i8()?;
    let attributes = m.read_i8()?;
    let timestamp = match magic {
        MAGIC_V0 => NO_TIMESTAMP,
        MAGIC_V1 => {
            if size < MIN_MESSAGE_SIZE_V1 {
                return Err(DecodeError::invalid(
                    "message",
                    format!("size {size} is below the magic 1 minimum"),
                ));
            }
            m.read_i64()?
        }
        other => {
            return Err(DecodeError::invalid(
                "message",
                format!("magic {other} where 0 or 1 was expected"),
            ))
        }
    };
    let key = read_bytes_i32(&mut m)?;
    let value = read_bytes_i32(&mut m)?;
    m.finish()?;
    Ok(Message {
        offset,
        crc,
        magic,
        attributes,
        timestamp,
        key,
        value,
    })
}

fn codec_of(attributes: i8, magic: i8) -> Result<Compression, DecodeError> {
    match Compression::from_attributes(attributes as i16) {
        Some(Compression::Zstd) | None => Err(DecodeError::invalid(
            "message attributes",
            format!(
                "compression codec id {} is not valid for magic {magic}",
                attributes as i16 & COMPRESSION_CODEC_MASK
            ),
        )),
        Some(c) => Ok(c),
    }
}

/// One top-level message of magic 0 or 1, with its records: the message itself if it is
/// uncompressed, or a wrapper's inner messages.
#[derive(Debug, Clone)]
pub struct LegacyBatch {
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    crc: u32,
    records: Vec<Record>,
    raw: Bytes,
}

impl LegacyBatch {
    /// Decodes `data`, which must be exactly one complete message (strict).
    pub fn decode(data: Bytes, opts: &DecodeOptions) -> Result<Self, DecodeError> {
        let raw = data.clone();
        let mut r = Reader::new(data);
        let msg = read_message(&mut r, opts.check_crcs)?;
        r.finish()?;
        let codec = codec_of(msg.attributes, msg.magic)?;
        let log_append = msg.magic == MAGIC_V1 && msg.attributes & TIMESTAMP_TYPE_BIT != 0;
        let records = if codec == Compression::None {
            vec![Record {
                offset: msg.offset,
                timestamp: msg.timestamp,
                key: msg.key,
                value: msg.value,
                headers: Default::default(),
            }]
        } else {
            let compressed = msg
                .value
                .as_ref()
                .ok_or(DecodeError::UnexpectedNull("compressed message value"))?;
            let limit = opts.max_decompressed_size;
            // Kafka 0.8-0.9 wrote a wrong LZ4 header checksum; magic 0 is where it lives.
            let inner = match codec {
                Compression::Lz4 => lz4::decompress(compressed, limit, msg.magic == MAGIC_V0)?,
                c => compression::decompress(c, compressed, limit)?,
            };
            let mut r = Reader::new(inner);
            let mut inner = Vec::new();
            while !r.is_empty() {
                let m = read_message(&mut r, opts.check_crcs)?;
                if m.magic != msg.magic {
                    return Err(DecodeError::invalid(
                        "compressed message",
                        format!("inner magic {} in a magic {} wrapper", m.magic, msg.magic),
                    ));
                }
                inner.push(m);
            }
            let Some(last) = inner.last() else {
                return Err(DecodeError::invalid(
                    "compressed message",
                    "wrapper holds no messages",
                ));
            };
            let shift = if msg.magic == MAGIC_V1 {
                msg.offset.wrapping_sub(last.offset)
            } else {
                0
            };
            let mut kept = Vec::with_capacity(inner.len());
            for m in inner {
                // Validated: an unknown codec is an error, as for the wrapper.
                if codec_of(m.attributes, m.magic)? != Compression::None {
                    let offset = m.offset.wrapping_add(shift);
                    if opts.skip_double_compressed {
                        tracing::debug!(
                            wrapper = msg.offset,
                            offset,
                            "skipping a double-compressed message \
                             (skip_double_compressed_messages)"
                        );
                        continue;
                    }
                    tracing::debug!(
                        wrapper = msg.offset,
                        offset,
                        "a double-compressed message: handed out with its value still \
                         compressed, as it was published"
                    );
                }
                kept.push(m);
            }
            kept.into_iter()
                .map(|m| Record {
                    offset: m.offset.wrapping_add(shift),
                    timestamp: if log_append {
                        msg.timestamp
                    } else {
                        m.timestamp
                    },
                    key: m.key,
                    value: m.value,
                    headers: Default::default(),
                })
                .collect()
        };
        Ok(LegacyBatch {
            offset: msg.offset,
            magic: msg.magic,
            attributes: msg.attributes,
            timestamp: msg.timestamp,
            crc: msg.crc,
            records,
            raw,
        })
    }

    /// The message's magic (0 or 1).
    pub fn magic(&self) -> i8 {
        self.magic
    }

    /// The (wrapper) message's offset, which is that of its last record.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The (wrapper) message's attributes byte.
    pub fn attributes(&self) -> i8 {
        self.attributes
    }

    /// The (wrapper) message's timestamp ([`NO_TIMESTAMP`] for magic 0).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The stored CRC.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// The codec (validated at decode time).
    pub fn compression(&self) -> Compression {
        Compression::from_attributes(self.attributes as i16).unwrap_or_default()
    }

    /// The timestamp type (always create time for magic 0).
    pub fn timestamp_type(&self) -> TimestampType {
        if self.magic == MAGIC_V1 && self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        self.records.first().map_or(self.offset, |r| r.offset)
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.offset
    }

    /// The records, with absolute offsets.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The records, consuming the batch.
    pub fn into_records(self) -> Vec<Record> {
        self.records
    }

    /// The message exactly as it was on the wire.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }
}
