//! Kafka wire primitives: the reader and writer every message, record batch and frame is
//! built from.
//!
//! Contract of the reader ([`Reader`]): every read checks the bytes it needs against what
//! remains and returns a [`DecodeError`] instead of panicking; a length prefix is checked against
//! the remaining input *before* anything is allocated, so a 10-byte input claiming a 2 GiB string
//! is an error, not an allocation. Byte fields are sliced out of the input [`bytes::Bytes`]
//! without copying.
//!
//! The writer side ([`Writer`]) is an extension trait over [`bytes::BufMut`]; it cannot fail
//! except for values the wire cannot carry (a string longer than `i16::MAX` bytes), which
//! return an [`EncodeError`].

mod error;
mod reader;
mod writer;

pub use error::{DecodeError, EncodeError};
pub use reader::Reader;
pub use writer::{compact_len_size, unsigned_varint_size, varint_size, varlong_size, Writer};

/// A tagged field the decoder did not recognise, kept so that re-encoding a message preserves
/// it byte for byte (flexible versions only).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawTaggedField {
    /// The field's tag.
    pub tag: u32,
    /// The field's raw bytes.
    pub data: bytes::Bytes,
}

/// A 128-bit UUID as Kafka writes it (big-endian, 16 bytes). The all-zero value is Kafka's
/// `Uuid.ZERO_UUID`, meaning "no id".
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID Kafka uses for "unset".
    pub const ZERO: Uuid = Uuid([0; 16]);

    /// The id as one big-endian integer.
    pub fn as_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    /// Builds an id from a big-endian integer.
    pub fn from_u128(v: u128) -> Self {
        Uuid(v.to_be_bytes())
    }
}

impl std::fmt::Debug for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for Uuid {
    /// Kafka prints topic ids as URL-safe base64 without padding; we do the same so ids in
    /// our logs match the broker's.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use base64::Engine as _;
        f.write_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0))
    }
}

#[cfg(test)]
mod tests;
