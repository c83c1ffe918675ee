//! gzip (codec id 1), as Java's `GZIPOutputStream`/`GZIPInputStream` write and read it.
//!
//! Decoding accepts concatenated gzip members (Java's reader does too).

use std::io::Write;

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::read_capped;
use crate::codec::{DecodeError, EncodeError};

const CODEC_NAME: &str = "gzip";

/// Java's `Deflater.DEFAULT_COMPRESSION` resolves to level 6.
pub const DEFAULT_LEVEL: i32 = 6;

/// Appends a gzip member holding `input`, compressed at `level` (1..=9), to `out`.
pub fn compress(input: &[u8], level: i32, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let level = u32::try_from(level.clamp(1, 9)).unwrap_or(6);
    let mut enc = GzEncoder::new(out, flate2::Compression::new(level));
    // Writing into a Vec cannot fail; map anyway rather than unwrap.
    enc.write_all(input)
        .and_then(|_| enc.try_finish())
        .map_err(|e| EncodeError::Invalid {
            what: "gzip stream",
            detail: e.to_string(),
        })
}

/// Decompresses gzip `input` into at most `limit` bytes.
pub fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    read_capped(
        MultiGzDecoder::new(input),
        limit,
        input.len().saturating_mul(4),
        CODEC_NAME,
    )
}
