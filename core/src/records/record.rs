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

use bytes::Bytes;

use super::header::{checked_len, skip_wire_headers, Header, Headers};
use super::wire;
use crate::codec::{varint_size, varlong_size, DecodeError, EncodeError, Writer};

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
/// Everything before the key (and, for a null key, before the value) is written in place with
/// [`wire`](super::wire)'s writers after one fixed-size store of zeros; the key and the value
/// are one `memcpy` each. Nothing goes through `BufMut` a byte at a time except headers.
#[inline]
pub(crate) fn write_record(
    out: &mut Vec<u8>,
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> Result<usize, EncodeError> {
    if headers.is_empty() {
        return write_record_no_headers(out, offset_delta, timestamp_delta, key, value);
    }
    let body = body_size(offset_delta, timestamp_delta, key, value, headers);
    let body_len = checked_len(body, "record")?;
    let key_len = match key {
        None => -1,
        Some(k) => checked_len(k.len(), "record key")?,
    };
    let value_len = match value {
        None => -1,
        Some(v) => checked_len(v.len(), "record value")?,
    };
    let header_count = checked_len(headers.len(), "record headers")?;
    let total = varint_size(body_len) + body;
    out.reserve(total);
    let start = out.len();

    // Everything up to the key length; for a null key, the value length too.
    let prefix = |head: &mut [u8; wire::HEAD]| {
        let mut n = wire::put_varint(head, 0, body_len);
        // head[n] is the attributes byte, already 0.
        n = wire::put_varlong(head, n + 1, timestamp_delta);
        n = wire::put_varint(head, n, offset_delta);
        n = wire::put_varint(head, n, key_len);
        if key.is_none() {
            n = wire::put_varint(head, n, value_len);
        }
        n
    };
    wire::push_head(out, prefix);
    if let Some(k) = key {
        out.extend_from_slice(k);
        wire::push_head(out, |head| wire::put_varint(head, 0, value_len));
    }
    if let Some(v) = value {
        out.extend_from_slice(v);
    }
    if headers.is_empty() {
        out.push(0);
    } else {
        out.put_varint(header_count);
        for h in headers {
            if let Err(e) = h.write(out) {
                // Leave the batch as it was before this record.
                out.truncate(start);
                return Err(e);
            }
        }
    }
    debug_assert_eq!(out.len() - start, total);
    Ok(total)
}

/// [`write_record`] for a record without headers (the common case): the same bytes, with
/// every size computed once and without a branch per varint byte.
#[inline(always)]
fn write_record_no_headers(
    out: &mut Vec<u8>,
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<usize, EncodeError> {
    let key_len = key.map_or(0, <[u8]>::len);
    let value_len = value.map_or(0, <[u8]>::len);
    let ts = wire::zigzag64(timestamp_delta);
    let off = wire::zigzag32(offset_delta);
    // The zigzag forms of the lengths (null is -1, whose zigzag form is 1). A slice is at most
    // `isize::MAX` bytes, so the shift cannot overflow; lengths past `i32::MAX` take the
    // general path below, which reports them.
    let zkey = if key.is_some() {
        (key_len as u64) << 1
    } else {
        1
    };
    let zvalue = if value.is_some() {
        (value_len as u64) << 1
    } else {
        1
    };
    if (ts | off | zkey | zvalue) < 0x4000 {
        // Every varint takes one or two bytes (the record is then shorter than 16 KiB, and
        // its length varint is checked below): the sizes come from packing them, and the
        // bytes before the key (for a null key, before the value) are assembled in two
        // registers and stored with one sixteen-byte write, with no per-byte stores or
        // bounds checks.
        let (ts, ts_n) = wire::pack2(ts);
        let (off, off_n) = wire::pack2(off);
        let (zkey, zkey_n) = wire::pack2(zkey);
        let (zvalue, zvalue_n) = wire::pack2(zvalue);
        // attributes + header count (0) take one byte each.
        let body = 2 + ts_n + off_n + zkey_n + zvalue_n + key_len + value_len;
        let zbody = (body as u64) << 1;
        if zbody < 0x4000 {
            let (a, a_n) = wire::pack2(zbody);
            let total = a_n + body;
            // Length, attributes (0: skipped), timestamp delta, offset delta: at most 7 bytes.
            let mut n = a_n + 1;
            let mut lo = a | ts << (8 * n);
            n += ts_n;
            lo |= off << (8 * n);
            n += off_n;
            // Then the key length, and for a null key the value length: at most 3 bytes,
            // the part past the eighth byte in `hi` (`n` is 4 to 7 here).
            let (b, b_n) = if key.is_none() {
                (zkey | zvalue << (8 * zkey_n), zkey_n + zvalue_n)
            } else {
                (zkey, zkey_n)
            };
            lo |= b << (8 * n);
            let hi = b >> (64 - 8 * n);
            n += b_n;
            let at = out.len();
            if out.capacity() - at >= 16 {
                out.extend_from_slice(&(lo as u128 | (hi as u128) << 64).to_le_bytes());
                out.truncate(at + n);
            } else {
                push_head_exact(out, lo, hi, n, total);
            }
            if let Some(k) = key {
                out.extend_from_slice(k);
                wire::push_packed(out, zvalue, zvalue_n);
            }
            if let Some(v) = value {
                out.extend_from_slice(v);
            }
            out.push(0);
            return Ok(total);
        }
    }
    let zkey = match key {
        Some(_) => wire::zigzag32(checked_len(key_len, "record key")?),
        None => 1,
    };
    let zvalue = match value {
        Some(_) => wire::zigzag32(checked_len(value_len, "record value")?),
        None => 1,
    };
    // attributes + header count (0) take one byte each; the lengths fit in i32, so this sum
    // cannot overflow a 64-bit usize (and saturates on 32-bit targets).
    let body = (2
        + wire::uvarint_len(ts)
        + wire::uvarint_len(off)
        + wire::uvarint_len(zkey)
        + wire::uvarint_len(zvalue))
    .saturating_add(key_len)
    .saturating_add(value_len);
    let zbody = wire::zigzag32(checked_len(body, "record")?);
    let total = wire::uvarint_len(zbody) + body;
    out.reserve(total);
    wire::push_head(out, |head| {
        let mut n = wire::put_uvarint(head, 0, zbody);
        // head[n] is the attributes byte, already 0.
        n = wire::put_uvarint(head, n + 1, ts);
        n = wire::put_uvarint(head, n, off);
        n = wire::put_uvarint(head, n, zkey);
        if key.is_none() {
            n = wire::put_uvarint(head, n, zvalue);
        }
        n
    });
    if let Some(k) = key {
        out.extend_from_slice(k);
        wire::push_head(out, |head| wire::put_uvarint(head, 0, zvalue));
    }
    if let Some(v) = value {
        out.extend_from_slice(v);
    }
    out.push(0);
    Ok(total)
}

/// The head of [`write_record_no_headers`]'s fast path without 16 bytes of room: exactly `n`
/// bytes (of `lo` then `hi`, little-endian) after reserving `total`, so the buffer never grows
/// past what the caller reserved. Out of line, so the hot path keeps `lo` and `hi` in
/// registers.
#[cold]
#[inline(never)]
fn push_head_exact(out: &mut Vec<u8>, lo: u64, hi: u64, n: usize, total: usize) {
    out.reserve(total);
    let head = (lo as u128 | (hi as u128) << 64).to_le_bytes();
    out.extend_from_slice(&head[..n]);
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
    ///
    /// Inlined into the caller's loop (as `RecordIter::next` is): as a call, the 120-byte
    /// `Record` is returned through memory and copied again.
    #[inline]
    pub fn to_record(&self) -> Record {
        Record {
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key_bytes(),
            value: self.value_bytes(),
            headers: self.headers(),
        }
    }

    /// The key as a zero-copy slice of the batch.
    #[inline(always)]
    pub(crate) fn key_bytes(&self) -> Option<Bytes> {
        self.key.map(|k| slice_of(self.section, k))
    }

    /// The value as a zero-copy slice of the batch.
    #[inline(always)]
    pub(crate) fn value_bytes(&self) -> Option<Bytes> {
        self.value.map(|v| slice_of(self.section, v))
    }
}

/// `part` (a slice of `section`) as a `Bytes` sharing `section`'s buffer: what
/// `Bytes::slice_ref` returns, from the offset, without its pointer checks (`slice` checks the
/// range, so a `part` from elsewhere would panic there, not read out of bounds).
#[inline(always)]
fn slice_of(section: &Bytes, part: &[u8]) -> Bytes {
    let start = (part.as_ptr() as usize).wrapping_sub(section.as_ptr() as usize);
    section.slice(start..start.wrapping_add(part.len()))
}

/// What [`read_plain_record`] read.
struct PlainRecord<'a> {
    /// What follows the record.
    tail: &'a [u8],
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

/// One byte of `w` at `at`, which the callers keep below 16 (the mask makes that a fact the
/// compiler needs no bounds check for).
#[inline(always)]
fn window_byte(w: &[u8; 16], at: usize) -> u32 {
    w[at & 15] as u32
}

/// An unsigned varint of one or two bytes from the window (still in zigzag form); `None` for
/// a longer one.
#[inline(always)]
fn window_uvarint(w: &[u8; 16], at: &mut usize) -> Option<u32> {
    let b0 = window_byte(w, *at);
    if b0 < 0x80 {
        *at += 1;
        return Some(b0);
    }
    let b1 = window_byte(w, *at + 1);
    if b1 >= 0x80 {
        return None;
    }
    *at += 2;
    Some(b0 & 0x7f | b1 << 7)
}

/// The signed value of a zigzag varint.
#[inline(always)]
fn unzigzag(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

/// The signed value of a zigzag varlong (of at most 32 bits here).
#[inline(always)]
fn unzigzag64(v: u32) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// The fast path of [`read_record`]: a record without headers whose length, timestamp delta,
/// offset delta, key length and value length are varints of one or two bytes, at the start
/// of `rest` with at least 16 bytes left. Everything up to the value length (the key length
/// too, for a null key) is read from one 16-byte window without a bounds check per byte;
/// the key and value are then checked once against the record's end, which is checked once
/// against `rest`. `None` for anything else, valid or not, and the general path then decodes
/// the record from the same position; on success the result is what the general path
/// returns (the same checks pass: the record fits in `rest`, no length is below -1, the key
/// and the value fit, the header count is 0 and the fields fill exactly the record's length).
#[inline(always)]
fn read_plain_record(rest: &[u8]) -> Option<PlainRecord<'_>> {
    let w = rest.first_chunk::<16>()?;
    // At most 2 + 1 + 2 + 2 + 2 + 2 = 11 bytes of the window are read.
    let mut p = 0;
    let zlen = window_uvarint(w, &mut p)?;
    // An odd zigzag value is negative: the general path reports it.
    if zlen & 1 != 0 {
        return None;
    }
    let size = p + (zlen >> 1) as usize;
    p += 1; // attributes
    let zts = window_uvarint(w, &mut p)?;
    let zoff = window_uvarint(w, &mut p)?;
    let zkey = window_uvarint(w, &mut p)?;
    // Everything before the header count, which must be the record's last byte, and 0.
    let (record, tail) = rest.split_at_checked(size)?;
    let (&count, body) = record.split_last()?;
    if count != 0 {
        return None;
    }
    let (key, zvalue, q) = if zkey == 1 {
        // Null key: the value length is in the window too.
        let zvalue = window_uvarint(w, &mut p)?;
        (None, zvalue, p)
    } else {
        if zkey & 1 != 0 {
            return None;
        }
        let kend = p + (zkey >> 1) as usize;
        let key = body.get(p..kend)?;
        // The value length right after the key: one or two bytes of `rest` (the header
        // count follows it, so two bytes are there whenever the record is well formed).
        let &[b0, b1] = rest.get(kend..kend + 2)?.first_chunk::<2>()?;
        let (zvalue, n) = if b0 < 0x80 {
            (b0 as u32, 1)
        } else if b1 < 0x80 {
            ((b0 & 0x7f) as u32 | (b1 as u32) << 7, 2)
        } else {
            return None;
        };
        (Some(key), zvalue, kend + n)
    };
    // The value is the rest of the body.
    let value = body.get(q..)?;
    let value = if zvalue == 1 {
        if !value.is_empty() {
            return None;
        }
        None
    } else {
        if zvalue & 1 != 0 || value.len() != (zvalue >> 1) as usize {
            return None;
        }
        Some(value)
    };
    Some(PlainRecord {
        tail,
        timestamp_delta: unzigzag64(zts),
        offset_delta: unzigzag(zoff),
        key,
        value,
    })
}

/// Decodes one record at the start of `rest`, a suffix of `section` (the batch's records
/// bytes; key, value and headers are returned as slices of it), advancing `rest` past it.
///
/// Always inlined: returned through memory, the record (a large struct written field by field
/// and read back with wide loads) stalls on store forwarding, which a profile showed costing
/// more than the parsing.
#[inline(always)]
pub(crate) fn read_record<'a>(
    section: &'a Bytes,
    rest: &mut &'a [u8],
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
) -> Result<RecordRef<'a>, DecodeError> {
    let data: &'a [u8] = rest;
    if let Some(plain) = read_plain_record(data) {
        *rest = plain.tail;
        return Ok(RecordRef {
            offset: base_offset.wrapping_add(plain.offset_delta as i64),
            timestamp: log_append_time
                .unwrap_or(base_timestamp.wrapping_add(plain.timestamp_delta)),
            key: plain.key,
            value: plain.value,
            section,
            headers_raw: &[],
            header_count: 0,
        });
    }
    read_record_general(section, rest, base_offset, base_timestamp, log_append_time)
}

/// The general path of [`read_record`]: any record, and every error.
#[inline(always)]
fn read_record_general<'a>(
    section: &'a Bytes,
    rest: &mut &'a [u8],
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
) -> Result<RecordRef<'a>, DecodeError> {
    let data: &'a [u8] = rest;
    // A local position (kept in a register), written back only on success: after an error
    // the iterator stops, so where `rest` starts no longer matters.
    let mut p = 0;
    let pos = &mut p;
    let len = wire::get_varint(data, pos)?;
    let len = usize::try_from(len)
        .map_err(|_| DecodeError::invalid("record", format!("negative length {len}")))?;
    let start = *pos;
    if len > data.len() - start {
        return Err(DecodeError::LengthExceedsInput {
            len: len as u64,
            remaining: data.len() - start,
        });
    }
    // The attributes byte (unused).
    if start >= data.len() {
        return Err(DecodeError::Truncated {
            needed: 1,
            remaining: 0,
        });
    }
    *pos = start + 1;
    let timestamp_delta = wire::get_varlong(data, pos)?;
    let offset_delta = wire::get_varint(data, pos)?;
    let key = wire::get_bytes(data, pos, "record key")?;
    let value = wire::get_bytes(data, pos, "record value")?;
    let count = wire::get_varint(data, pos)?;
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
            let remaining = data.len() - *pos;
            // Each header takes at least two bytes.
            if n.saturating_mul(2) > remaining {
                return Err(DecodeError::LengthExceedsInput {
                    len: n as u64,
                    remaining,
                });
            }
            let hstart = *pos;
            skip_wire_headers(data, pos, n)?;
            (data.get(hstart..*pos).unwrap_or(&[]), n as u32)
        }
    };
    let read = *pos - start;
    if read != len {
        return Err(record_length_mismatch(len, read));
    }
    *rest = data.get(p..).unwrap_or_default();
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

#[cold]
fn record_length_mismatch(len: usize, read: usize) -> DecodeError {
    DecodeError::invalid(
        "record",
        format!("length field says {len} bytes but the record took {read}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::header::Header;

    /// The record the slow, obvious way: through `Writer` one field at a time.
    fn reference(offset_delta: i32, ts: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
        let mut body = vec![0u8];
        body.put_varlong(ts);
        body.put_varint(offset_delta);
        for field in [key, value] {
            match field {
                None => body.put_varint(-1),
                Some(b) => {
                    body.put_varint(b.len() as i32);
                    body.extend_from_slice(b);
                }
            }
        }
        body.put_varint(0);
        let mut out = Vec::new();
        out.put_varint(body.len() as i32);
        out.extend_from_slice(&body);
        out
    }

    /// Every width of every varint (one, two and more bytes) through the encoder's and the
    /// decoder's fast and general paths, with room to spare in the buffer and without.
    #[test]
    fn fast_paths_match_the_reference_encoding_and_decode_back() {
        let blob: Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let sizes = [
            None,
            Some(0),
            Some(1),
            Some(63),
            Some(64),
            Some(100),
            Some(8191),
        ];
        let sizes = sizes.into_iter().chain([Some(8192), Some(20_000)]);
        let deltas = [
            0i64,
            1,
            -1,
            63,
            64,
            -65,
            8191,
            8192,
            -8193,
            1 << 40,
            i64::MIN,
        ];
        let mut checked = 0;
        for value_len in sizes {
            let value = value_len.map(|n| &blob[..n]);
            for key_len in [None, Some(0), Some(63), Some(64), Some(9_000)] {
                let key = key_len.map(|n| &blob[blob.len() - n..]);
                for &ts in &deltas {
                    for &off in &deltas {
                        let off = off.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
                        let want = reference(off, ts, key, value);
                        for spare in [0, 64] {
                            let mut out = Vec::with_capacity(3 + want.len() + spare);
                            out.extend_from_slice(b"pre");
                            let cap = out.capacity();
                            let n = write_record(&mut out, off, ts, key, value, &[]).unwrap();
                            assert_eq!(n, want.len());
                            assert_eq!(&out[3..], &want[..], "off {off} ts {ts}");
                            assert_eq!(out.capacity(), cap, "the buffer grew");

                            let section = Bytes::from(out);
                            let mut rest = &section[3..];
                            let r = read_record(&section, &mut rest, 100, 5, None).unwrap();
                            assert!(rest.is_empty());
                            assert_eq!(r.offset, 100i64.wrapping_add(off as i64));
                            assert_eq!(r.timestamp, 5i64.wrapping_add(ts));
                            assert_eq!((r.key, r.value), (key, value));
                            assert_eq!(r.header_count(), 0);
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 10_000);
    }

    /// `read_record` (fast path first) against the general path alone on the same input:
    /// the same record or the same error, and on success the same bytes consumed.
    fn agree_with_general_path(section: &Bytes, from: usize) {
        let mut fast_rest = &section[from..];
        let mut general_rest = &section[from..];
        let fast = read_record(section, &mut fast_rest, 1000, 77, None);
        let general = read_record_general(section, &mut general_rest, 1000, 77, None);
        match (&fast, &general) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "{:?}", &section[from..]);
                assert_eq!(a.headers(), b.headers());
                assert_eq!(fast_rest.len(), general_rest.len());
                // Slices of the input, not copies.
                if let (Some(x), Some(y)) = (a.value, b.value) {
                    assert_eq!(x.as_ptr(), y.as_ptr());
                }
            }
            _ => assert_eq!(
                format!("{fast:?}"),
                format!("{general:?}"),
                "{:?}",
                &section[from..]
            ),
        }
    }

    /// Random records (every varint width, null and present keys and values, headers
    /// sometimes), each then truncated, extended and mutated at random bytes: the fast path
    /// never disagrees with the general one.
    #[test]
    fn fast_decoding_path_agrees_with_the_general_path_on_random_input() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let blob: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 253) as u8).collect();
        let pick_len = |r: u64| -> Option<usize> {
            match r % 8 {
                0 => None,
                1 => Some(0),
                2 => Some((r >> 8) as usize % 64),
                3 => Some(64 + (r >> 8) as usize % 64),
                4 => Some(100),
                5 => Some((r >> 8) as usize % 8192),
                6 => Some(8192 + (r >> 8) as usize % 20_000),
                _ => Some((r >> 8) as usize % 16),
            }
        };
        let pick_delta = |r: u64| -> i64 {
            match r % 6 {
                0 => 0,
                1 => (r >> 8) as i64 % 64 - 32,
                2 => (r >> 8) as i64 % 16_384 - 8192,
                3 => (r >> 8) as i64 % 1_000_000,
                4 => (r >> 3) as i64,
                _ => -((r >> 3) as i64),
            }
        };
        for round in 0..20_000 {
            let key = pick_len(next()).map(|n| &blob[..n]);
            let value = pick_len(next()).map(|n| &blob[blob.len() - n..]);
            let ts = pick_delta(next());
            let off = pick_delta(next()) as i32;
            let headers = if next() % 8 == 0 {
                vec![Header::new("h", Bytes::from_static(b"v"))]
            } else {
                vec![]
            };
            let mut out = vec![0xAA; 3];
            write_record(&mut out, off, ts, key, value, &headers).unwrap();
            // Something after the record (another record's bytes, or nothing).
            let tail = (next() % 24) as usize;
            out.extend_from_slice(&blob[..tail]);
            let section = Bytes::from(out.clone());
            agree_with_general_path(&section, 3);
            if round % 4 == 0 {
                // Every truncation of short records; a few of long ones.
                let step = 1 + out.len() / 64;
                for n in (3..out.len()).step_by(step) {
                    agree_with_general_path(&Bytes::from(out[..n].to_vec()), 3);
                }
            }
            // Random byte mutations, mostly in the first 16 bytes of the record, and the
            // record's last byte (its header count).
            for _ in 0..8 {
                let mut m = out.clone();
                let r = next();
                let at = match r % 4 {
                    0 => 3 + (r >> 8) as usize % (m.len() - 3),
                    1 => m.len() - 1 - tail,
                    _ => 3 + (r >> 8) as usize % 16.min(m.len() - 3),
                };
                let at = at.min(m.len() - 1);
                m[at] = (r >> 32) as u8;
                agree_with_general_path(&Bytes::from(m), 3);
            }
        }
    }

    /// A record the fast decoding path would take, broken in each way that path checks, is
    /// rejected (by the general path, which then decodes it): an error, never a panic or a
    /// wrong record.
    #[test]
    fn fast_decoding_path_rejects_what_the_general_path_rejects() {
        let good = reference(3, 7, None, Some(&[b'x'; 30]));
        let decode = |b: Vec<u8>| {
            let section = Bytes::from(b);
            let mut rest = &section[..];
            read_record(&section, &mut rest, 0, 0, None)
                .map(|r| (r.value.map(<[u8]>::len), section.len() - rest.len()))
        };
        assert_eq!(decode(good.clone()).unwrap(), (Some(30), good.len()));
        // Length one too long or too short; value length past the record; a header count.
        let mut b = good.clone();
        b[0] += 2;
        assert!(decode(b).is_err());
        let mut b = good.clone();
        b[0] -= 2;
        assert!(decode(b).is_err());
        let mut b = good.clone();
        b[5] += 2;
        assert!(decode(b).is_err());
        let mut b = good.clone();
        *b.last_mut().unwrap() = 2;
        assert!(decode(b).is_err());
        // Negative key length below -1.
        let mut b = good.clone();
        b[4] = 3;
        assert!(decode(b).is_err());
        // Truncated anywhere.
        for n in 0..good.len() {
            assert!(decode(good[..n].to_vec()).is_err(), "{n}");
        }
    }
}
