//! Compression codecs for record batches and legacy message sets.
//!
//! Kafka compresses the records section of a batch (magic 2) or the value of a wrapper message
//! (magic 0 and 1) with one of four codecs, named by bits 0-2 of the attributes. This module
//! maps those bits to [`Compression`] and compresses or decompresses whole buffers.
//!
//! Contract:
//! - [`compress`] appends the compressed form of its input to `out` in the exact framing Kafka's
//!   Java client writes (gzip member, xerial-framed snappy, LZ4 frame with independent 64 KiB
//!   blocks, zstd frame), so brokers and other clients read it.
//! - [`decompress`] never produces more than `limit` bytes and never allocates (much) past the
//!   limit, whatever the input claims: output grows in steps as the decoder yields bytes, and
//!   the first byte beyond the limit stops it with [`DecodeError::DecompressionLimit`]. Sizes
//!   declared inside the compressed data are used only to refuse early, never to allocate.
//! - Malformed input is an error ([`DecodeError::Decompression`]), never a panic.
//!
//! Each codec also has its own module with its own knobs (for example
//! [`lz4::decompress`] can accept the broken header checksum of Kafka 0.8-0.9).

use std::fmt;
use std::io::Read;
use std::str::FromStr;

use crate::codec::{DecodeError, EncodeError};

pub mod gzip;
pub mod lz4;
pub mod snappy;
pub mod zstd;

/// A compression codec, as named by bits 0-2 of a batch's or message's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (id 0).
    #[default]
    None,
    /// gzip (id 1).
    Gzip,
    /// Snappy in xerial framing (id 2).
    Snappy,
    /// LZ4 frame format (id 3).
    Lz4,
    /// Zstandard (id 4; record batches of magic 2 only).
    Zstd,
}

/// Mask of the codec bits in batch and message attributes.
pub const COMPRESSION_CODEC_MASK: i16 = 0x07;

impl Compression {
    /// Every codec, in id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec's id (the value of attribute bits 0-2).
    pub const fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec with this id, if there is one.
    pub const fn from_id(id: u8) -> Option<Compression> {
        match id {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The codec named by the low three bits of `attributes`; `None` for ids 5-7.
    pub const fn from_attributes(attributes: i16) -> Option<Compression> {
        Self::from_id((attributes & COMPRESSION_CODEC_MASK) as u8)
    }

    /// The attribute bits for this codec (to be OR-ed into the attributes).
    pub const fn attribute_bits(self) -> i16 {
        self.id() as i16
    }

    /// The name Kafka's `compression.type` uses: `none`, `gzip`, `snappy`, `lz4`, `zstd`.
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// The level used when none is given (the same defaults as Kafka's Java client:
    /// gzip 6, lz4 9, zstd 3); `None` for codecs without levels.
    pub const fn default_level(self) -> Option<i32> {
        match self {
            Compression::Gzip => Some(gzip::DEFAULT_LEVEL),
            Compression::Lz4 => Some(lz4::DEFAULT_LEVEL),
            Compression::Zstd => Some(zstd::DEFAULT_LEVEL),
            Compression::None | Compression::Snappy => None,
        }
    }

    /// Checks that `level` is one this codec accepts (gzip 1..=9, lz4 1..=17, zstd its
    /// library's range; none and snappy take no level, so any value is refused).
    pub fn validate_level(self, level: i32) -> Result<(), EncodeError> {
        let ok = match self {
            Compression::Gzip => (1..=9).contains(&level),
            Compression::Lz4 => (1..=17).contains(&level),
            Compression::Zstd => ::zstd::compression_level_range().contains(&level),
            Compression::None | Compression::Snappy => false,
        };
        if ok {
            Ok(())
        } else {
            Err(EncodeError::Invalid {
                what: "compression level",
                detail: format!("{level} is not a valid level for {self}"),
            })
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an unknown codec name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression type {0:?} (expected none, gzip, snappy, lz4 or zstd)")]
pub struct ParseCompressionError(pub String);

impl FromStr for Compression {
    type Err = ParseCompressionError;

    /// Parses a `compression.type` name, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseCompressionError(s.to_owned()))
    }
}

/// Appends the compressed form of `input` to `out`.
///
/// `level` is the codec's level (`None` for the default; see
/// [`Compression::validate_level`]). LZ4 levels are accepted for configuration compatibility
/// with Kafka but the LZ4 encoder has a single (fast) level. [`Compression::None`] copies.
pub fn compress(
    codec: Compression,
    level: Option<i32>,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if let Some(level) = level {
        if codec != Compression::None && codec != Compression::Snappy {
            codec.validate_level(level)?;
        }
    }
    match codec {
        Compression::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        Compression::Gzip => gzip::compress(input, level.unwrap_or(gzip::DEFAULT_LEVEL), out),
        Compression::Snappy => {
            snappy::compress(input, out);
            Ok(())
        }
        Compression::Lz4 => {
            lz4::compress(input, false, out);
            Ok(())
        }
        Compression::Zstd => zstd::compress(input, level.unwrap_or(zstd::DEFAULT_LEVEL), out),
    }
}

/// Decompresses `input`, producing at most `limit` bytes.
///
/// Output beyond `limit` is [`DecodeError::DecompressionLimit`]; corrupt input is
/// [`DecodeError::Decompression`]. [`Compression::None`] copies (subject to the limit).
pub fn decompress(codec: Compression, input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(DecodeError::DecompressionLimit { limit });
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => gzip::decompress(input, limit),
        Compression::Snappy => snappy::decompress(input, limit),
        Compression::Lz4 => lz4::decompress(input, limit, false),
        Compression::Zstd => zstd::decompress(input, limit),
    }
}

/// Makes room in `out` for `needed` total bytes without letting the capacity pass
/// `limit + 1`: growth doubles (amortised O(1) appends) but is clamped, so a stream that is
/// about to exceed the limit cannot make us reserve twice the limit first.
pub(crate) fn reserve_capped(out: &mut Vec<u8>, needed: usize, limit: usize) {
    if needed <= out.capacity() {
        return;
    }
    let target = needed
        .max(out.capacity().saturating_mul(2))
        .min(limit.saturating_add(1))
        .max(needed);
    out.reserve_exact(target - out.len());
}

/// Reads a decompressing reader to its end into a new buffer of at most `limit` bytes.
///
/// `hint` is a guess of the output size used for the first allocation (clamped to the limit).
/// The buffer is grown by doubling and zero-filled once per growth (no `unsafe`), and reading
/// stops as soon as byte `limit + 1` arrives.
pub(crate) fn read_capped<R: Read>(
    mut reader: R,
    limit: usize,
    hint: usize,
    codec: &'static str,
) -> Result<Vec<u8>, DecodeError> {
    let cap = limit.saturating_add(1);
    let mut buf = vec![0u8; hint.clamp(1024, 1 << 20).min(cap)];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if filled >= cap {
                return Err(DecodeError::DecompressionLimit { limit });
            }
            let new_len = filled.saturating_mul(2).clamp(1024, cap);
            buf.resize(new_len, 0);
        }
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if filled > limit {
                    return Err(DecodeError::DecompressionLimit { limit });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(DecodeError::Decompression {
                    codec,
                    reason: e.to_string(),
                })
            }
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

pub(crate) fn corrupt(codec: &'static str, reason: impl fmt::Display) -> DecodeError {
    DecodeError::Decompression {
        codec,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests;
