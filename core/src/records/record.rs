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

use super::header::{checked_len, read_varint_len, skip_wire_headers, Header, Headers};
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
///
/// The fixed-width prefix is assembled in a stack buffer and appended with one copy, as are
/// the key and value, so a record costs a handful of `memcpy`s rather than a bounds-checked
/// push per byte.
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
    let key_len = key.map_or(Ok(-1), |k| checked_len(k.len(), "record key"))?;
    let value_len = value.map_or(Ok(-1), |v| checked_len(v.len(), "record value"))?;
    let header_count = checked_len(headers.len(), "record headers")?;
    let total = varint_size(body_len) + body;
    out.reserve(total);
    let start = out.len();

    // length (5) + attributes (1) + timestampDelta (10) + offsetDelta (5) + keyLength (5).
    let mut prefix = [0u8; 26];
    let mut w = &mut prefix[..];
    w.put_varint(body_len);
    w.put_i8(0);
    w.put_varlong(timestamp_delta);
    w.put_varint(offset_delta);
    w.put_varint(key_len);
    let used = 26 - w.len();
    out.extend_from_slice(&prefix[..used]);
    if let Some(k) = key {
        out.extend_from_slice(k);
    }
    let mut len_buf = [0u8; 5];
    let mut w = &mut len_buf[..];
    w.put_varint(value_len);
    let used = 5 - w.len();
    out.extend_from_slice(&len_buf[..used]);
    if let Some(v) = value {
        out.extend_from_slice(v);
    }
    out.put_varint(header_count);
    for h in headers {
        if let Err(e) = h.write(out) {
            // Leave the batch as it was before this record.
            out.truncate(start);
            return Err(e);
        }
    }
    Ok(total)
}

/// A record borrowed from its batch's buffer: what [`Record`] holds, without touching any
/// reference count or allocating. Turn it into a [`Record`] with [`RecordRef::to_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The record's absolute offset.
    pub offset: i64,
    /// Its timestamp (see [`Record::timestamp`]).
    pub timestamp: i64,
    /// The key; `None` is null.
    pub key: Option<&'a [u8]>,
    /// The value; `None` is null.
    pub value: Option<&'a [u8]>,
    section: &'a Bytes,
    headers_raw: &'a [u8],
    header_count: u32,
}

impl<'a> RecordRef<'a> {
    /// Number of headers.
    pub fn header_count(&self) -> usize {
        self.header_count as usize
    }

    /// The headers (a zero-copy slice of the batch, parsed when iterated).
    pub fn headers(&self) -> Headers {
        if self.header_count == 0 {
            Headers::new()
        } else {
            Headers::from_wire(self.section.slice_ref(self.headers_raw), self.header_count)
        }
    }

    /// The owned record, its key, value and headers sliced from the batch without copying.
    pub fn to_record(&self) -> Record {
        Record {
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key.map(|k| self.section.slice_ref(k)),
            value: self.value.map(|v| self.section.slice_ref(v)),
            headers: self.headers(),
        }
    }
}

/// Reads varint-length nullable bytes as a slice of `section` (which `r` reads).
#[inline]
fn read_varint_slice<'a>(
    r: &mut Reader,
    section: &'a [u8],
    what: &'static str,
) -> Result<Option<&'a [u8]>, DecodeError> {
    match read_varint_len(r, what)? {
        None => Ok(None),
        Some(n) => {
            let at = r.position();
            r.skip(n)?;
            // `r` reads `section` itself, so the range exists; `get` keeps that unprovable
            // fact from being a panic.
            section
                .get(at..at + n)
                .map(Some)
                .ok_or(DecodeError::Truncated {
                    needed: n,
                    remaining: 0,
                })
        }
    }
}

/// Decodes one record from `r`, a reader over `section` (the batch's records bytes; key,
/// value and headers are returned as slices of it).
#[inline]
pub(crate) fn read_record<'a>(
    r: &mut Reader,
    section: &'a Bytes,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
) -> Result<RecordRef<'a>, DecodeError> {
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
    let key = read_varint_slice(r, section, "record key")?;
    let value = read_varint_slice(r, section, "record value")?;
    let count = r.read_varint()?;
    let (headers_raw, header_count): (&[u8], u32) = match count {
        0 => (&[], 0),
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
            (section.get(hstart..r.position()).unwrap_or(&[]), n as u32)
        }
    };
    let read = r.position() - start;
    if read != len {
        return Err(DecodeError::invalid(
            "record",
            format!("length field says {len} bytes but the record took {read}"),
        ));
    }
    Ok(RecordRef {
        offset: base_offset.wrapping_add(offset_delta as i64),
        timestamp: log_append_time.unwrap_or(base_timestamp.wrapping_add(timestamp_delta)),
        key,
        value,
        section,
        headers_raw,
        header_count,
    })
}
