use bytes::BufMut;

use super::{EncodeError, RawTaggedField, Uuid};

type Result<T> = std::result::Result<T, EncodeError>;

/// Bytes an unsigned varint of `v` takes.
#[inline]
pub const fn unsigned_varint_size(v: u32) -> usize {
    match v {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0x0fff_ffff => 4,
        _ => 5,
    }
}

/// Bytes a zigzag varint of `v` takes.
#[inline]
pub const fn varint_size(v: i32) -> usize {
    unsigned_varint_size(((v << 1) ^ (v >> 31)) as u32)
}

/// Bytes a zigzag varlong of `v` takes.
#[inline]
pub const fn varlong_size(v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while z >= 0x80 {
        z >>= 7;
        n += 1;
    }
    n
}

/// Bytes a compact length prefix (`len + 1` as an unsigned varint) takes.
#[inline]
pub const fn compact_len_size(len: usize) -> usize {
    unsigned_varint_size((len + 1) as u32)
}

/// Kafka wire primitives on any [`BufMut`] (`BytesMut`, `Vec<u8>`).
pub trait Writer: BufMut {
    /// Writes a boolean as one byte.
    #[inline]
    fn put_bool(&mut self, v: bool) {
        self.put_u8(v as u8);
    }

    /// Writes a 16-byte UUID.
    #[inline]
    fn put_uuid(&mut self, v: &Uuid) {
        self.put_slice(&v.0);
    }

    /// Writes an unsigned LEB128 varint.
    #[inline]
    fn put_unsigned_varint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.put_u8(v as u8);
    }

    /// Writes an unsigned LEB128 varlong.
    #[inline]
    fn put_unsigned_varlong(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.put_u8(v as u8);
    }

    /// Writes a zigzag-encoded signed varint.
    #[inline]
    fn put_varint(&mut self, v: i32) {
        self.put_unsigned_varint(((v << 1) ^ (v >> 31)) as u32);
    }

    /// Writes a zigzag-encoded signed varlong.
    #[inline]
    fn put_varlong(&mut self, v: i64) {
        self.put_unsigned_varlong(((v << 1) ^ (v >> 63)) as u64);
    }

    /// Writes a length prefix (`None` is null): `i16` or `i32` classic, or compact.
    #[inline]
    fn put_len(
        &mut self,
        len: Option<usize>,
        compact: bool,
        wide: bool,
        what: &'static str,
    ) -> Result<()> {
        let max = if compact {
            u32::MAX as usize - 1
        } else if wide {
            i32::MAX as usize
        } else {
            i16::MAX as usize
        };
        match len {
            Some(n) if n > max => Err(EncodeError::TooLong { what, len: n, max }),
            Some(n) if compact => {
                self.put_unsigned_varint(n as u32 + 1);
                Ok(())
            }
            Some(n) if wide => {
                self.put_i32(n as i32);
                Ok(())
            }
            Some(n) => {
                self.put_i16(n as i16);
                Ok(())
            }
            None if compact => {
                self.put_unsigned_varint(0);
                Ok(())
            }
            None if wide => {
                self.put_i32(-1);
                Ok(())
            }
            None => {
                self.put_i16(-1);
                Ok(())
            }
        }
    }

    /// Writes a string (`i16` length, or compact).
    #[inline]
    fn put_string(&mut self, s: &str, compact: bool) -> Result<()> {
        self.put_len(Some(s.len()), compact, false, "string")?;
        self.put_slice(s.as_bytes());
        Ok(())
    }

    /// Writes a nullable string.
    #[inline]
    fn put_nullable_string(&mut self, s: Option<&str>, compact: bool) -> Result<()> {
        match s {
            Some(s) => self.put_string(s, compact),
            None => self.put_len(None, compact, false, "string"),
        }
    }

    /// Writes bytes (`i32` length, or compact).
    #[inline]
    fn put_byte_field(&mut self, b: &[u8], compact: bool) -> Result<()> {
        self.put_len(Some(b.len()), compact, true, "bytes")?;
        self.put_slice(b);
        Ok(())
    }

    /// Writes nullable bytes.
    #[inline]
    fn put_nullable_byte_field(&mut self, b: Option<&[u8]>, compact: bool) -> Result<()> {
        match b {
            Some(b) => self.put_byte_field(b, compact),
            None => self.put_len(None, compact, true, "bytes"),
        }
    }

    /// Writes an array length (`i32`, or compact); `None` is a null array.
    #[inline]
    fn put_array_len(&mut self, len: Option<usize>, compact: bool) -> Result<()> {
        self.put_len(len, compact, true, "array")
    }

    /// Writes tagged fields that are already encoded, merging `known` (tag, bytes) with the
    /// preserved `unknown` ones in ascending tag order, as the wire requires.
    fn put_tagged_fields(&mut self, known: &[(u32, Vec<u8>)], unknown: &[RawTaggedField]) {
        self.put_unsigned_varint((known.len() + unknown.len()) as u32);
        let (mut i, mut j) = (0, 0);
        while i < known.len() || j < unknown.len() {
            let take_known = j >= unknown.len() || (i < known.len() && known[i].0 < unknown[j].tag);
            let (tag, data): (u32, &[u8]) = if take_known {
                i += 1;
                (known[i - 1].0, &known[i - 1].1)
            } else {
                j += 1;
                (unknown[j - 1].tag, &unknown[j - 1].data)
            };
            self.put_unsigned_varint(tag);
            self.put_unsigned_varint(data.len() as u32);
            self.put_slice(data);
        }
    }
}

impl<B: BufMut + ?Sized> Writer for B {}
