//! Record headers: an owned [`Header`] for building records, and [`Headers`], which holds a
//! decoded record's headers as the wire bytes they came in (parsed only when looked at) or as
//! an owned list.

use std::fmt;

use bytes::{BufMut, Bytes};

use super::wire;
use crate::codec::{varint_size, DecodeError, EncodeError, Reader, Writer};

/// One record header: a UTF-8 key and nullable bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header's key.
    pub key: String,
    /// The header's value; `None` is null.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// A header whose value is null.
    pub fn null(key: impl Into<String>) -> Self {
        Header {
            key: key.into(),
            value: None,
        }
    }

    /// Bytes this header takes inside a record.
    pub(crate) fn encoded_size(&self) -> usize {
        let vlen = self.value.as_ref().map_or(-1, |v| v.len() as i32);
        varint_size(self.key.len() as i32)
            + self.key.len()
            + varint_size(vlen)
            + vlen.max(0) as usize
    }

    pub(crate) fn write<B: BufMut>(&self, out: &mut B) -> Result<(), EncodeError> {
        let klen = checked_len(self.key.len(), "header key")?;
        out.put_varint(klen);
        out.put_slice(self.key.as_bytes());
        put_varint_bytes(out, self.value.as_deref(), "header value")
    }
}

/// A length as the `i32` a varint-prefixed field carries.
pub(crate) fn checked_len(len: usize, what: &'static str) -> Result<i32, EncodeError> {
    i32::try_from(len).map_err(|_| EncodeError::TooLong {
        what,
        len,
        max: i32::MAX as usize,
    })
}

/// Writes varint-length nullable bytes (-1 is null).
pub(crate) fn put_varint_bytes<B: BufMut>(
    out: &mut B,
    b: Option<&[u8]>,
    what: &'static str,
) -> Result<(), EncodeError> {
    match b {
        None => out.put_varint(-1),
        Some(b) => {
            out.put_varint(checked_len(b.len(), what)?);
            out.put_slice(b);
        }
    }
    Ok(())
}

/// Reads a varint length of nullable bytes: `None` for -1; below -1 or past the input is an
/// error.
#[inline]
pub(crate) fn read_varint_len(
    r: &mut Reader,
    what: &'static str,
) -> Result<Option<usize>, DecodeError> {
    let n = r.read_varint()?;
    if n == -1 {
        return Ok(None);
    }
    let n = usize::try_from(n)
        .map_err(|_| DecodeError::invalid(what, format!("negative length {n}")))?;
    if n > r.remaining() {
        return Err(DecodeError::LengthExceedsInput {
            len: n as u64,
            remaining: r.remaining(),
        });
    }
    Ok(Some(n))
}

/// Reads varint-length nullable bytes as a zero-copy slice.
#[inline]
pub(crate) fn read_varint_bytes(
    r: &mut Reader,
    what: &'static str,
) -> Result<Option<Bytes>, DecodeError> {
    match read_varint_len(r, what)? {
        None => Ok(None),
        Some(n) => r.read_slice(n).map(Some),
    }
}

/// Checks `count` headers on the wire at `*pos` of `data` (lengths, UTF-8 keys) and skips
/// past them.
pub(crate) fn skip_wire_headers(
    data: &[u8],
    pos: &mut usize,
    count: usize,
) -> Result<(), DecodeError> {
    for _ in 0..count {
        let key = wire::get_bytes(data, pos, "header key")?
            .ok_or(DecodeError::UnexpectedNull("header key"))?;
        std::str::from_utf8(key).map_err(|_| DecodeError::InvalidUtf8)?;
        wire::get_bytes(data, pos, "header value")?;
    }
    Ok(())
}

/// The headers of a record.
///
/// Decoded records keep their headers as the wire bytes (a zero-copy slice of the batch) and
/// the count; those bytes were validated when the record was decoded, so iterating cannot
/// fail. Records built by hand hold a list. Equality compares the headers, not the form.
#[derive(Clone, Default)]
pub struct Headers {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    Wire { raw: Bytes, count: u32 },
    Owned(Vec<Header>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Owned(Vec::new())
    }
}

impl Headers {
    /// No headers.
    pub const fn new() -> Self {
        Headers {
            repr: Repr::Owned(Vec::new()),
        }
    }

    /// Headers held as validated wire bytes (the caller has run [`skip_wire_headers`] over
    /// exactly `raw`).
    pub(crate) fn from_wire(raw: Bytes, count: u32) -> Self {
        Headers {
            repr: Repr::Wire { raw, count },
        }
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Wire { count, .. } => *count as usize,
            Repr::Owned(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The headers in order. For decoded records each item is parsed as it is reached (the
    /// key is copied into a `String`; the value is a zero-copy slice).
    pub fn iter(&self) -> HeaderIter<'_> {
        match &self.repr {
            Repr::Wire { raw, count } => HeaderIter(IterRepr::Wire {
                reader: Reader::new(raw.clone()),
                left: *count,
            }),
            Repr::Owned(v) => HeaderIter(IterRepr::Owned(v.iter())),
        }
    }

    /// The value of the first header named `key` (`Some(None)` if that header is null),
    /// found without allocating.
    pub fn get(&self, key: &str) -> Option<Option<Bytes>> {
        match &self.repr {
            Repr::Owned(v) => v.iter().find(|h| h.key == key).map(|h| h.value.clone()),
            Repr::Wire { raw, count } => {
                let mut r = Reader::new(raw.clone());
                for _ in 0..*count {
                    let klen = read_varint_len(&mut r, "header key").ok()??;
                    let matches = r.read_raw(klen).ok()? == key.as_bytes();
                    let value = match read_varint_len(&mut r, "header value").ok()? {
                        None => None,
                        Some(n) if matches => Some(r.read_slice(n).ok()?),
                        Some(n) => {
                            r.skip(n).ok()?;
                            None
                        }
                    };
                    if matches {
                        return Some(value);
                    }
                }
                None
            }
        }
    }

    /// Appends a header (turning wire-held headers into a list first).
    pub fn push(&mut self, header: Header) {
        if let Repr::Wire { .. } = self.repr {
            self.repr = Repr::Owned(self.iter().collect());
        }
        if let Repr::Owned(v) = &mut self.repr {
            v.push(header);
        }
    }

    /// The headers as an owned list.
    pub fn to_vec(&self) -> Vec<Header> {
        match &self.repr {
            Repr::Owned(v) => v.clone(),
            Repr::Wire { .. } => self.iter().collect(),
        }
    }
}

impl From<Vec<Header>> for Headers {
    fn from(v: Vec<Header>) -> Self {
        Headers {
            repr: Repr::Owned(v),
        }
    }
}

impl FromIterator<Header> for Headers {
    fn from_iter<I: IntoIterator<Item = Header>>(iter: I) -> Self {
        Headers::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = Header;
    type IntoIter = HeaderIter<'a>;
    fn into_iter(self) -> HeaderIter<'a> {
        self.iter()
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over [`Headers`], yielding owned [`Header`]s.
pub struct HeaderIter<'a>(IterRepr<'a>);

enum IterRepr<'a> {
    Wire { reader: Reader, left: u32 },
    Owned(std::slice::Iter<'a, Header>),
}

impl Iterator for HeaderIter<'_> {
    type Item = Header;

    fn next(&mut self) -> Option<Header> {
        match &mut self.0 {
            IterRepr::Owned(it) => it.next().cloned(),
            IterRepr::Wire { reader, left } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                // The bytes were validated at decode time; should they somehow not parse,
                // iteration just ends.
                let parsed = (|| {
                    let klen = read_varint_len(reader, "header key")?
                        .ok_or(DecodeError::UnexpectedNull("header key"))?;
                    let key = std::str::from_utf8(reader.read_raw(klen)?)
                        .map_err(|_| DecodeError::InvalidUtf8)?
                        .to_owned();
                    let value = read_varint_bytes(reader, "header value")?;
                    Ok::<_, DecodeError>(Header { key, value })
                })();
                match parsed {
                    Ok(h) => Some(h),
                    Err(_) => {
                        *left = 0;
                        None
                    }
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterRepr::Owned(it) => it.size_hint(),
            IterRepr::Wire { left, .. } => (0, Some(*left as usize)),
        }
    }
}
