//! Zstandard (codec id 4; record batches of magic 2 only).
//!
//! Decoding streams through `zstd`'s reader so the output cap is enforced while decoding.
//! Besides the output cap, the decoder's window (its working memory) is bounded: a frame whose
//! window exceeds `max(limit, 16 MiB)` is refused by libzstd instead of being allocated. The
//! 16 MiB floor keeps frames written at Kafka's usual levels (up to 19, window <= 8 MiB)
//! readable even with a small limit.

use std::io::Write;

use super::{corrupt, read_capped};
use crate::codec::{DecodeError, EncodeError};

const CODEC_NAME: &str = "zstd";

/// Kafka's (and libzstd's) default level.
pub const DEFAULT_LEVEL: i32 = 3;

/// log2 of the smallest window bound the decoder enforces.
const MIN_WINDOW_LOG: u32 = 24;
/// libzstd's own maximum for the target.
const MAX_WINDOW_LOG: u32 = if cfg!(target_pointer_width = "64") {
    31
} else {
    30
};

/// Appends a zstd frame holding `input`, compressed at `level`, to `out`.
pub fn compress(input: &[u8], level: i32, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let fail = |e: std::io::Error| EncodeError::Invalid {
        what: "zstd stream",
        detail: e.to_string(),
    };
    let mut enc = ::zstd::stream::write::Encoder::new(out, level).map_err(fail)?;
    enc.set_pledged_src_size(Some(input.len() as u64))
        .map_err(fail)?;
    enc.include_contentsize(true).map_err(fail)?;
    enc.write_all(input).map_err(fail)?;
    enc.finish().map_err(fail)?;
    Ok(())
}

/// Decompresses zstd `input` (one or more frames) into at most `limit` bytes.
pub fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut hint = input.len().saturating_mul(4);
    // A declared size is used to refuse early and as an allocation hint (clamped to the
    // limit), never trusted: the reader below still stops at the limit.
    if let Ok(Some(declared)) = ::zstd::zstd_safe::get_frame_content_size(input) {
        if declared > limit as u64 {
            return Err(DecodeError::DecompressionLimit { limit });
        }
        hint = declared as usize;
    }
    let mut dec =
        ::zstd::stream::read::Decoder::with_buffer(input).map_err(|e| corrupt(CODEC_NAME, e))?;
    let window_log = (usize::BITS - limit.leading_zeros()).clamp(MIN_WINDOW_LOG, MAX_WINDOW_LOG);
    dec.window_log_max(window_log)
        .map_err(|e| corrupt(CODEC_NAME, e))?;
    read_capped(dec, limit, hint, CODEC_NAME)
}
