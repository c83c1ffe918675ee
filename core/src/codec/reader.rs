use bytes::Bytes;

use super::{DecodeError, RawTaggedField, Uuid};

/// A cursor over an input buffer that decodes Kafka wire primitives.
///
/// Every method checks its length against [`Reader::remaining`] first and returns
/// [`DecodeError`] on short or malformed input; no method panics. Byte fields come back as
/// [`Bytes`] slices of the input (no copy).
#[derive(Debug, Clone)]
pub struct Reader {
    data: Bytes,
    pos: usize,
}

type Result<T> = std::result::Result<T, DecodeError>;

macro_rules! read_be {
    ($name:ident, $ty:ty) => {
        #[doc = concat!("Reads a big-endian `", stringify!($ty), "`.")]
        #[inline]
        pub fn $name(&mut self) -> Result<$ty> {
            const N: usize = std::mem::size_of::<$ty>();
            let bytes = self.take_array::<N>()?;
            Ok(<$ty>::from_be_bytes(bytes))
        }
    };
}

impl Reader {
    /// A reader over the whole of `data`.
    pub fn new(data: impl Into<Bytes>) -> Self {
        Reader {
            data: data.into(),
            pos: 0,
        }
    }

    /// Bytes not yet read.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Whether everything has been read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Bytes read so far.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unread bytes, without consuming them.
    #[inline]
    pub fn peek_rest(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    /// Errors with [`DecodeError::TrailingBytes`] unless the input is used up.
    pub fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    #[inline]
    fn ensure(&self, needed: usize) -> Result<()> {
        if needed > self.remaining() {
            Err(DecodeError::Truncated {
                needed,
                remaining: self.remaining(),
            })
        } else {
            Ok(())
        }
    }

    #[inline]
    fn take_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.ensure(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.data[self.pos..self.pos + N]);
        self.pos += N;
        Ok(out)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.ensure(n)?;
        self.pos += n;
        Ok(())
    }

    /// Takes the next `n` bytes as a zero-copy slice.
    #[inline]
    pub fn read_slice(&mut self, n: usize) -> Result<Bytes> {
        self.ensure(n)?;
        let out = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// Takes the next `n` bytes as a new reader, advancing this one past them.
    pub fn sub_reader(&mut self, n: usize) -> Result<Reader> {
        Ok(Reader::new(self.read_slice(n)?))
    }

    /// Takes the next `n` bytes as a borrowed slice.
    #[inline]
    pub fn read_raw(&mut self, n: usize) -> Result<&[u8]> {
        self.ensure(n)?;
        let start = self.pos;
        self.pos += n;
        Ok(&self.data[start..start + n])
    }

    read_be!(read_i8, i8);
    read_be!(read_i16, i16);
    read_be!(read_i32, i32);
    read_be!(read_i64, i64);
    read_be!(read_u16, u16);
    read_be!(read_u32, u32);
    read_be!(read_f64, f64);

    /// Reads a boolean: any non-zero byte is true, as Kafka's Java reader treats it.
    #[inline]
    pub fn read_bool(&mut self) -> Result<bool> {
        Ok(self.read_i8()? != 0)
    }

    /// Reads a 16-byte UUID.
    pub fn read_uuid(&mut self) -> Result<Uuid> {
        Ok(Uuid(self.take_array::<16>()?))
    }

    /// Reads an unsigned LEB128 varint of at most 32 bits (5 bytes).
    #[inline]
    pub fn read_unsigned_varint(&mut self) -> Result<u32> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = *self.data.get(self.pos).ok_or(DecodeError::Truncated {
                needed: 1,
                remaining: 0,
            })?;
            self.pos += 1;
            if i == 4 && b > 0x0f {
                return Err(DecodeError::VarintOverflow);
            }
            value |= ((b & 0x7f) as u32) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    /// Reads an unsigned LEB128 varint of at most 64 bits (10 bytes).
    #[inline]
    pub fn read_unsigned_varlong(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = *self.data.get(self.pos).ok_or(DecodeError::Truncated {
                needed: 1,
                remaining: 0,
            })?;
            self.pos += 1;
            if i == 9 && b > 0x01 {
                return Err(DecodeError::VarintOverflow);
            }
            value |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    /// Reads a zigzag-encoded signed 32-bit varint (record fields).
    #[inline]
    pub fn read_varint(&mut self) -> Result<i32> {
        let v = self.read_unsigned_varint()?;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    /// Reads a zigzag-encoded signed 64-bit varlong (record fields).
    #[inline]
    pub fn read_varlong(&mut self) -> Result<i64> {
        let v = self.read_unsigned_varlong()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// Reads a length prefix: `i16`/`i32` in classic form, unsigned varint minus one in compact
    /// form. `None` is null (-1, or 0 compact). A length below -1 is an error.
    #[inline]
    fn read_len(&mut self, compact: bool, wide: bool) -> Result<Option<usize>> {
        let len: i64 = if compact {
            self.read_unsigned_varint()? as i64 - 1
        } else if wide {
            self.read_i32()? as i64
        } else {
            self.read_i16()? as i64
        };
        match len {
            -1 => Ok(None),
            n if n < -1 => Err(DecodeError::NegativeLength(n)),
            n => Ok(Some(n as usize)),
        }
    }

    /// Checks a byte length against the remaining input.
    #[inline]
    fn check_byte_len(&self, len: usize) -> Result<()> {
        if len > self.remaining() {
            Err(DecodeError::LengthExceedsInput {
                len: len as u64,
                remaining: self.remaining(),
            })
        } else {
            Ok(())
        }
    }

    fn string_of(&mut self, len: usize) -> Result<String> {
        self.check_byte_len(len)?;
        let raw = &self.data[self.pos..self.pos + len];
        let s = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
        let s = s.to_owned();
        self.pos += len;
        Ok(s)
    }

    /// Reads a nullable string (`i16` length, or compact).
    pub fn read_nullable_string(&mut self, compact: bool) -> Result<Option<String>> {
        match self.read_len(compact, false)? {
            None => Ok(None),
            Some(len) => self.string_of(len).map(Some),
        }
    }

    /// Reads a non-nullable string; null is [`DecodeError::UnexpectedNull`].
    pub fn read_string(&mut self, compact: bool) -> Result<String> {
        self.read_nullable_string(compact)?
            .ok_or(DecodeError::UnexpectedNull("string"))
    }

    /// Reads nullable bytes (`i32` length, or compact) as a zero-copy slice.
    pub fn read_nullable_bytes(&mut self, compact: bool) -> Result<Option<Bytes>> {
        match self.read_len(compact, true)? {
            None => Ok(None),
            Some(len) => {
                self.check_byte_len(len)?;
                self.read_slice(len).map(Some)
            }
        }
    }

    /// Reads non-nullable bytes; null is [`DecodeError::UnexpectedNull`].
    pub fn read_bytes(&mut self, compact: bool) -> Result<Bytes> {
        self.read_nullable_bytes(compact)?
            .ok_or(DecodeError::UnexpectedNull("bytes"))
    }

    /// Reads a nullable array length (`i32`, or compact) and checks it against the remaining
    /// input: each element takes at least `min_elem_size` bytes (an element that can be empty
    /// on the wire still counts as one byte here, so a claimed count can never exceed the
    /// input's length and a decoder loop over it is bounded by the input).
    #[inline]
    pub fn read_nullable_array_len(
        &mut self,
        compact: bool,
        min_elem_size: usize,
    ) -> Result<Option<usize>> {
        match self.read_len(compact, true)? {
            None => Ok(None),
            Some(len) => {
                let per = min_elem_size.max(1) as u64;
                if (len as u64).saturating_mul(per) > self.remaining() as u64 {
                    return Err(DecodeError::LengthExceedsInput {
                        len: len as u64,
                        remaining: self.remaining(),
                    });
                }
                Ok(Some(len))
            }
        }
    }

    /// Reads a non-nullable array length; null is [`DecodeError::UnexpectedNull`].
    #[inline]
    pub fn read_array_len(&mut self, compact: bool, min_elem_size: usize) -> Result<usize> {
        self.read_nullable_array_len(compact, min_elem_size)?
            .ok_or(DecodeError::UnexpectedNull("array"))
    }

    /// Reads a tagged-field section, calling `known(tag, reader)` for each field. The callback
    /// gets a reader over exactly that field's bytes and returns `Ok(true)` if it decoded the
    /// field; fields it does not know (`Ok(false)`) are returned so they can be re-encoded.
    /// Fields must fully consume their bytes when known.
    pub fn read_tagged_fields(
        &mut self,
        mut known: impl FnMut(u32, &mut Reader) -> Result<bool>,
    ) -> Result<Vec<RawTaggedField>> {
        let count = self.read_unsigned_varint()? as usize;
        // Each field takes at least two bytes (tag and size).
        if count.saturating_mul(2) > self.remaining() {
            return Err(DecodeError::LengthExceedsInput {
                len: count as u64,
                remaining: self.remaining(),
            });
        }
        let mut unknown = Vec::new();
        let mut last_tag: Option<u32> = None;
        for _ in 0..count {
            let tag = self.read_unsigned_varint()?;
            if let Some(prev) = last_tag {
                if tag <= prev {
                    return Err(DecodeError::invalid(
                        "tagged fields",
                        format!("tag {tag} after tag {prev}: tags must be strictly increasing"),
                    ));
                }
            }
            last_tag = Some(tag);
            let size = self.read_unsigned_varint()? as usize;
            self.check_byte_len(size)?;
            let mut field = self.sub_reader(size)?;
            if known(tag, &mut field)? {
                field.finish()?;
            } else {
                unknown.push(RawTaggedField {
                    tag,
                    data: field.data.slice(field.pos..),
                });
            }
        }
        Ok(unknown)
    }
}
