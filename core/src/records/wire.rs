//! Slice-based varint readers and writers for the record hot paths.
//!
//! [`Reader`](crate::codec::Reader) and [`Writer`](crate::codec::Writer) are general: a reader
//! owns a `Bytes` and every byte goes through a checked `get`, a writer pushes one byte at a
//! time through `BufMut`. Records are small and numerous, so encoding and decoding them goes
//! through these instead: the one- and two-byte varints that dominate record fields are read
//! with two checks, and a record's fixed prefix is assembled in a stack array and appended with
//! one fixed-size copy. They accept and reject exactly what the `Reader` methods do, with the
//! same errors.

use crate::codec::DecodeError;

/// Room for a record's prefix: length (5) + attributes (1) + timestampDelta (10) +
/// offsetDelta (5) + keyLength (5) + valueLength (5) = 31 bytes, rounded up.
pub(crate) const HEAD: usize = 32;

#[inline(always)]
fn truncated() -> DecodeError {
    DecodeError::Truncated {
        needed: 1,
        remaining: 0,
    }
}

/// Reads an unsigned LEB128 varint of at most `BITS` bits (32 or 64: 5 or 10 bytes) at
/// `*pos`, advancing `pos`.
#[inline(always)]
fn get_unsigned<const BITS: u32>(data: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let at = *pos;
    // One bounds check for both bytes; the last byte of the input takes the slow path.
    if let Some(&[b0, b1]) = data.get(at..at + 2) {
        if b0 < 0x80 {
            *pos = at + 1;
            return Ok(b0 as u64);
        }
        if b1 < 0x80 {
            *pos = at + 2;
            return Ok((b0 & 0x7f) as u64 | (b1 as u64) << 7);
        }
    }
    get_unsigned_slow::<BITS>(data, pos)
}

/// Any varint of three bytes or more, and every error, byte by byte.
#[inline(never)]
fn get_unsigned_slow<const BITS: u32>(data: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    // 5 bytes for 32 bits, 10 for 64; the last may carry only the bits left (4 or 1).
    let max = BITS.div_ceil(7);
    let last_max = (1u8 << (BITS - 7 * (max - 1))) - 1;
    let mut value: u64 = 0;
    for i in 0..max {
        let b = *data.get(*pos).ok_or_else(truncated)?;
        *pos += 1;
        if i == max - 1 && b > last_max {
            return Err(DecodeError::VarintOverflow);
        }
        value |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintOverflow)
}

/// Reads a zigzag varint at `*pos`.
#[inline(always)]
pub(crate) fn get_varint(data: &[u8], pos: &mut usize) -> Result<i32, DecodeError> {
    // At most 32 significant bits: the slow path rejects more.
    let v = get_unsigned::<32>(data, pos)? as u32;
    Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
}

/// Reads a zigzag varlong at `*pos`.
#[inline(always)]
pub(crate) fn get_varlong(data: &[u8], pos: &mut usize) -> Result<i64, DecodeError> {
    let v = get_unsigned::<64>(data, pos)?;
    Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
}

/// Reads a varint length of nullable bytes at `*pos`: `None` for -1; below -1 is
/// [`DecodeError::Invalid`], past the end of `data` is [`DecodeError::LengthExceedsInput`].
#[inline(always)]
pub(crate) fn get_len(
    data: &[u8],
    pos: &mut usize,
    what: &'static str,
) -> Result<Option<usize>, DecodeError> {
    let n = get_varint(data, pos)?;
    if n == -1 {
        return Ok(None);
    }
    let remaining = data.len() - *pos;
    match usize::try_from(n) {
        Ok(n) if n <= remaining => Ok(Some(n)),
        Ok(n) => Err(DecodeError::LengthExceedsInput {
            len: n as u64,
            remaining,
        }),
        Err(_) => Err(DecodeError::invalid(what, format!("negative length {n}"))),
    }
}

/// Reads varint-length nullable bytes at `*pos` as a slice of `data`.
#[inline(always)]
pub(crate) fn get_bytes<'a>(
    data: &'a [u8],
    pos: &mut usize,
    what: &'static str,
) -> Result<Option<&'a [u8]>, DecodeError> {
    match get_len(data, pos, what)? {
        None => Ok(None),
        Some(n) => {
            let at = *pos;
            // `get_len` checked `n` against what remains; `get` keeps that from being a panic.
            let b = data.get(at..at + n).ok_or_else(truncated)?;
            *pos = at + n;
            Ok(Some(b))
        }
    }
}

/// Zigzag form of a varint.
#[inline(always)]
pub(crate) fn zigzag32(v: i32) -> u64 {
    ((v << 1) ^ (v >> 31)) as u32 as u64
}

/// Zigzag form of a varlong.
#[inline(always)]
pub(crate) fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Bytes the unsigned varint `v` takes (branch-free: one bit scan and a multiply).
#[inline(always)]
// `div_ceil` compiles to a division and a remainder test here: 13 more instructions per
// encoded record under callgrind than this (the dividend is never near overflow).
#[allow(clippy::manual_div_ceil)]
pub(crate) fn uvarint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize + 6) / 7
}

/// The LEB128 bytes of `v < 2^14`, little-endian in a `u64`, and how many there are.
/// (A branch-free form measured 13 more instructions per encoded record under callgrind.)
#[inline(always)]
pub(crate) fn pack2(v: u64) -> (u64, usize) {
    debug_assert!(v < 0x4000);
    if v < 0x80 {
        (v, 1)
    } else {
        (v & 0x7f | 0x80 | (v >> 7) << 8, 2)
    }
}

/// Appends the first `n <= 8` bytes of `packed` (little-endian) to `out`: one eight-byte
/// store and a truncation when there is room, else exactly `n` bytes.
#[inline(always)]
pub(crate) fn push_packed(out: &mut Vec<u8>, packed: u64, n: usize) {
    let at = out.len();
    let bytes = packed.to_le_bytes();
    if out.capacity() - at >= 8 {
        out.extend_from_slice(&bytes);
        out.truncate(at + n);
    } else {
        out.extend_from_slice(&bytes[..n]);
    }
}

/// Writes `v` as an unsigned LEB128 varint into `buf` at `at`; returns the position after it.
/// The caller leaves room (a varlong takes at most 10 bytes). One- and two-byte values, what
/// record fields mostly are, take no loop. (Writing two bytes unconditionally and advancing by
/// the width measured more instructions per record under callgrind, not fewer.)
#[inline(always)]
pub(crate) fn put_uvarint(buf: &mut [u8; HEAD], at: usize, v: u64) -> usize {
    if v < 0x80 {
        buf[at] = v as u8;
        return at + 1;
    }
    if v < 0x4000 {
        buf[at] = v as u8 | 0x80;
        buf[at + 1] = (v >> 7) as u8;
        return at + 2;
    }
    put_uvarint_loop(buf, at, v)
}

#[inline(never)]
fn put_uvarint_loop(buf: &mut [u8; HEAD], mut at: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        buf[at] = v as u8 | 0x80;
        v >>= 7;
        at += 1;
    }
    buf[at] = v as u8;
    at + 1
}

/// Writes a zigzag varint; see [`put_uvarint`].
#[inline(always)]
pub(crate) fn put_varint(buf: &mut [u8; HEAD], at: usize, v: i32) -> usize {
    put_uvarint(buf, at, zigzag32(v))
}

/// Writes a zigzag varlong; see [`put_uvarint`].
#[inline(always)]
pub(crate) fn put_varlong(buf: &mut [u8; HEAD], at: usize, v: i64) -> usize {
    put_uvarint(buf, at, zigzag64(v))
}

/// Appends up to [`HEAD`] bytes that `fill` writes into a zeroed array (returning how many it
/// wrote) to `out`.
///
/// With room to spare the array is `out`'s own spare capacity: `HEAD` zeros are appended (one
/// fixed-size store), `fill` writes in place, and `out` is truncated back. Filling a stack
/// array and copying it instead makes the copy's wide loads wait on `fill`'s byte stores
/// (a failed store forwarding, which a profile showed as the most expensive instruction of
/// encoding). Without room, it fills a stack array and appends exactly what was written, so
/// `out` never grows past what the caller reserved.
#[inline(always)]
pub(crate) fn push_head(out: &mut Vec<u8>, fill: impl FnOnce(&mut [u8; HEAD]) -> usize) {
    let at = out.len();
    let mut in_place = out.capacity() - at >= HEAD;
    if in_place {
        out.extend_from_slice(&[0u8; HEAD]);
    }
    let mut stack = [0u8; HEAD];
    // One call site for `fill`, so it is inlined.
    let buf = match out[at..].first_chunk_mut::<HEAD>() {
        Some(buf) if in_place => buf,
        _ => {
            in_place = false;
            &mut stack
        }
    };
    let n = fill(buf);
    if in_place {
        out.truncate(at + n);
    } else {
        out.truncate(at);
        out.extend_from_slice(&stack[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Reader, Writer};

    /// The fast readers agree with `Reader` on every input, including errors.
    #[test]
    fn readers_match_reader() {
        let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0x80], vec![0xff; 11]];
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            8191,
            -8192,
            8192,
            1 << 20,
            i32::MAX as i64,
        ]
        .into_iter()
        .chain([i32::MIN as i64, i64::MAX, i64::MIN, 1 << 40])
        {
            let mut b = Vec::new();
            b.put_varlong(v);
            inputs.push(b.clone());
            b.pop();
            inputs.push(b);
        }
        inputs.push(vec![0xff, 0xff, 0xff, 0xff, 0x10]);
        inputs.push(vec![0xff, 0xff, 0xff, 0xff, 0x0f]);
        // The tenth byte of a varlong may carry one bit.
        for last in [0x01, 0x02, 0x81] {
            let mut b = vec![0xff; 9];
            b.push(last);
            inputs.push(b);
        }
        for input in inputs {
            agree(&input, Reader::read_varint, get_varint);
            agree(&input, Reader::read_varlong, get_varlong);
        }
    }

    /// The same result (or error) and, on success, the same position.
    fn agree<T: std::fmt::Debug>(
        input: &[u8],
        read: impl Fn(&mut Reader) -> Result<T, DecodeError>,
        get: impl Fn(&[u8], &mut usize) -> Result<T, DecodeError>,
    ) {
        let mut r = Reader::new(input.to_vec());
        let mut p = 0;
        let a = read(&mut r);
        let b = get(input, &mut p);
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{input:?}");
        if a.is_ok() {
            assert_eq!(r.position(), p);
        }
    }

    #[test]
    fn uvarint_len_matches_writer() {
        for shift in 0..64 {
            for v in [
                1u64 << shift,
                (1u64 << shift) - 1,
                (1u64 << shift) + 1,
                u64::MAX,
            ] {
                let mut want = Vec::new();
                want.put_unsigned_varlong(v);
                assert_eq!(uvarint_len(v), want.len(), "{v}");
            }
        }
    }

    #[test]
    fn writers_match_writer() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i32::MAX as i64,
            i32::MIN as i64,
        ]
        .into_iter()
        .chain([i64::MAX, i64::MIN])
        {
            let mut head = [0u8; HEAD];
            let mut want = Vec::new();
            want.put_varlong(v);
            let n = put_varlong(&mut head, 0, v);
            assert_eq!(&head[..n], &want[..]);
            if let Ok(v) = i32::try_from(v) {
                let mut want = Vec::new();
                want.put_varint(v);
                let n = put_varint(&mut head, 3, v);
                assert_eq!(&head[3..n], &want[..]);
            }
        }
    }
}
