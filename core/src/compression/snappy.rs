//! Snappy (codec id 2): raw snappy blocks and the xerial framing of snappy-java.
//!
//! Java producers write through snappy-java's `SnappyOutputStream`, which frames the data:
//! an 8-byte magic (`82 'S' 'N' 'A' 'P' 'P' 'Y' 00`), a version and a compatible-version
//! `int32` (both 1), then for each 32 KiB input block an `int32` big-endian length and a raw
//! snappy block. [`compress`] writes exactly that; [`decompress`] reads the framing (also when a
//! header repeats mid-stream, as concatenated streams do) and falls back to one raw snappy
//! block when the input does not start with the magic, as `SnappyInputStream` does.

use snap::raw::{decompress_len, max_compress_len, Decoder, Encoder};

use super::{corrupt, reserve_capped};
use crate::codec::DecodeError;

const CODEC_NAME: &str = "snappy";

/// The xerial stream magic.
pub const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

/// The full 16-byte xerial header snappy-java writes (magic, version 1, compatible version 1).
pub const XERIAL_HEADER: [u8; 16] = [
    0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
];

/// snappy-java's default block size, which Kafka's `SnappyOutputStream` uses.
pub const XERIAL_BLOCK_SIZE: usize = 32 * 1024;

/// Appends `input` to `out` in xerial framing (header, then one length-prefixed raw snappy
/// block per 32 KiB of input).
pub fn compress(input: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&XERIAL_HEADER);
    let mut enc = Encoder::new();
    for block in input.chunks(XERIAL_BLOCK_SIZE) {
        let len_at = out.len();
        out.resize(len_at + 4 + max_compress_len(block.len()), 0);
        // A block of at most 32 KiB always fits the buffer max_compress_len sized for it.
        let n = enc.compress(block, &mut out[len_at + 4..]).unwrap_or(0);
        out[len_at..len_at + 4].copy_from_slice(&(n as u32).to_be_bytes());
        out.truncate(len_at + 4 + n);
    }
}

/// Appends the raw snappy block of `input` (no framing) to `out`.
pub fn compress_raw(input: &[u8], out: &mut Vec<u8>) {
    let at = out.len();
    out.resize(at + max_compress_len(input.len()), 0);
    let n = Encoder::new().compress(input, &mut out[at..]).unwrap_or(0);
    out.truncate(at + n);
}

/// Decompresses xerial-framed or raw snappy `input` into at most `limit` bytes.
pub fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    if input.is_empty() {
        return Ok(out);
    }
    if !input.starts_with(&XERIAL_MAGIC) {
        raw_block_into(input, limit, &mut out)?;
        return Ok(out);
    }
    let mut rest = input;
    while !rest.is_empty() {
        if rest.starts_with(&XERIAL_MAGIC) {
            if rest.len() < XERIAL_HEADER.len() {
                return Err(corrupt(CODEC_NAME, "truncated xerial header"));
            }
            rest = &rest[XERIAL_HEADER.len()..];
            continue;
        }
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(corrupt(CODEC_NAME, "truncated xerial block length"));
        };
        let len = i32::from_be_bytes(*len);
        let len = usize::try_from(len)
            .map_err(|_| corrupt(CODEC_NAME, format!("negative xerial block length {len}")))?;
        if len > tail.len() {
            return Err(corrupt(
                CODEC_NAME,
                format!("xerial block of {len} bytes but {} remain", tail.len()),
            ));
        }
        let (block, tail) = tail.split_at(len);
        raw_block_into(block, limit, &mut out)?;
        rest = tail;
    }
    Ok(out)
}

/// Decompresses one raw snappy block, appending to `out`, which may not pass `limit`.
fn raw_block_into(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let n = decompress_len(block).map_err(|e| corrupt(CODEC_NAME, e))?;
    // The declared length is checked before anything is allocated for it; the decoder
    // then fails if the block does not produce exactly that many bytes.
    let end = out
        .len()
        .checked_add(n)
        .filter(|&end| end <= limit)
        .ok_or(DecodeError::DecompressionLimit { limit })?;
    let start = out.len();
    reserve_capped(out, end, limit);
    out.resize(end, 0);
    let written = Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| corrupt(CODEC_NAME, e))?;
    if written != n {
        return Err(corrupt(
            CODEC_NAME,
            "block shorter than its declared length",
        ));
    }
    Ok(())
}
