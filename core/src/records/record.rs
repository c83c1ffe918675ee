//! One record, and the magic 2 record encoding inside a batch:
//!
//! ```text
//! length: varint            bytes after this field
//! attributes: int8          unused, 0
//! timestampDelta: varlong   timestamp - batch baseTimestamp
//! offsetDelta: varint       offset - batch baseOffset
//! keyLength: varint, key    -1 is null
//! valueLength: varint, value
//! headerCount: varint, then per header: keyLength: varint, key (UTF-8),
//!                                      valueLength: varint, value (-1 is null)
//! ```

use bytes::{BufMut, Bytes};

use super::header::{
    checked_len, put_varint_bytes, read_varint_bytes, skip_wire_headers, Header, Headers,
};
use crate::codec::{varint_size, varlong_size, DecodeError, EncodeError, Reader, Writer};

/// A record as the application sees it, whatever the batch format it came in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The record's absolute offset in its partition.
    pub offset: i64,
    /// Its timestamp in milliseconds since the epoch (the batch's `maxTimestamp` under
    /// log-append time; [`NO_TIMESTAMP`](super::NO_TIMESTAMP) for magic 0).
    pub timestamp: i64,
    /// The key; `None` is null.
    pub key: Option<Bytes>,
    /// The value; `None` is null (a tombstone).
    pub value: Option<Bytes>,
    /// The headers (always empty for magic 0 and 1).
    pub headers: Headers,
}

/// The smallest record on the wire: one byte each for length, attributes, timestamp delta,
/// offset delta, key length, value length and header count.
pub(crate) const MIN_RECORD_SIZE: usize = 7;

#[inline]
fn nullable_size(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_size(b.len() as i32) + b.len(),
    }
}

/// Size of a record's body (everything after its length varint). Saturates rather than
/// overflows; [`write_record`] refuses sizes the wire cannot carry.
#[inline]
pub(crate) fn body_size(
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let mut n = 1 + varlong_size(timestamp_delta) + varint_size(offset_delta);
    n = n
        .saturating_add(nullable_size(key))
        .saturating_add(nullable_size(value))
        .saturating_add(varint_size(headers.len() as i32));
    for h in headers {
        n = n.saturating_add(h.encoded_size());
    }
    n
}

/// Appends one record (length prefix included); returns the bytes written.
#[inline]
pub(crate) fn write_record(
    out: &mut Vec<u8>,
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> Result<usize, EncodeError> {
    let body = body_size(offset_delta, timestamp_delta, key, value, headers);
    let body_len = checked_len(body, "record")?;
    checked_len(headers.len(), "record headers")?;
    let total = varint_size(body_len) + body;
    out.reserve(total);
    let start = out.len();
    out.put_varint(body_len);
    out.put_i8(0);
    out.put_varlong(timestamp_delta);
    out.put_varint(offset_delta);
    let res = (|| {
        put_varint_bytes(out, key, "record key")?;
        put_varint_bytes(out, value, "record value")?;
        out.put_varint(headers.len() as i32);
        for h in headers {
            h.write(out)?;
        }
        Ok(())
    })();
    if let Err(e) = res {
        // Leave the batch as it was before this record.
        out.truncate(start);
        return Err(e);
    }
    Ok(total)
}

/// Decodes one record from `r`, a reader over `section` (the batch's records bytes, needed to
/// slice the header bytes without copying).
#[inline]
pub(crate) fn read_record(
    r: &mut Reader,
    section: &Bytes,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
) -> Result<Record, DecodeError> {
    let len = r.read_varint()?;
    let len = usize::try_from(len)
        .map_err(|_| DecodeError::invalid("record", format!("negative length {len}")))?;
    if len > r.remaining() {
        return Err(DecodeError::LengthExceedsInput {
            len: len as u64,
            remaining: r.remaining(),
        });
    }
    let start = r.position();
    let _attributes = r.read_i8()?;
    let timestamp_delta = r.read_varlong()?;
    let offset_delta = r.read_varint()?;
    let key = read_varint_bytes(r, "record key")?;
    let value = read_varint_bytes(r, "record value")?;
    let count = r.read_varint()?;
    let headers = match count {
        0 => Headers::new(),
        n if n < 0 => {
            return Err(DecodeError::invalid(
                "record",
                format!("negative header count {n}"),
            ))
        }
        n => {
            let n = n as usize;
            // Each header takes at least two bytes.
            if n.saturating_mul(2) > r.remaining() {
                return Err(DecodeError::LengthExceedsInput {
                    len: n as u64,
                    remaining: r.remaining(),
                });
            }
            let hstart = r.position();
            skip_wire_headers(r, n)?;
            Headers::from_wire(section.slice(hstart..r.position()), n as u32)
        }
    };
    let read = r.position() - start;
    if read != len {
        return Err(DecodeError::invalid(
            "record",
            format!("length field says {len} bytes but the record took {read}"),
        ));
    }
    Ok(Record {
        offset: base_offset.wrapping_add(offset_delta as i64),
        timestamp: log_append_time.unwrap_or(base_timestamp.wrapping_add(timestamp_delta)),
        key,
        value,
        headers,
    })
}
