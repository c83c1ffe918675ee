//! LZ4 (codec id 3) in the LZ4 frame format, as Kafka uses it.
//!
//! The frame is parsed here and each block is decompressed with `lz4_flex::block`, for two
//! reasons: the output can then be capped block by block (no decoder-side buffer larger than
//! the limit), and the header checksum can be checked our own way. Kafka 0.8-0.9 computed the
//! frame descriptor's header checksum (HC) over the magic number as well as the descriptor;
//! messages of magic 0 still carry that wrong byte, so [`decompress`] accepts it when asked
//! (Java skips the check for magic 0, librdkafka fixes the framing up the same way).
//!
//! [`compress`] writes what Kafka's `KafkaLZ4BlockOutputStream` writes: FLG `0x60` (version 1,
//! independent blocks, no checksums, no content size), BD `0x40` (64 KiB blocks), the HC,
//! blocks that are stored uncompressed when compression does not shrink them, and the end
//! mark. Decoding also accepts linked blocks, block and content checksums, a content size and
//! skippable frames, which other LZ4 writers may produce.

use lz4_flex::block::{
    compress_into, decompress_into, decompress_into_with_dict, get_maximum_output_size,
    DecompressError,
};

use super::{corrupt, reserve_capped};
use crate::codec::DecodeError;

const CODEC_NAME: &str = "lz4";

/// The level Kafka's Java client defaults to. The encoder here has a single level, so the
/// value is only checked, not used.
pub const DEFAULT_LEVEL: i32 = 9;

/// The LZ4 frame magic number (little-endian on the wire).
pub const FRAME_MAGIC: u32 = 0x184D_2204;
const SKIPPABLE_MAGIC_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

const FLG_VERSION_MASK: u8 = 0xC0;
const FLG_VERSION_1: u8 = 0x40;
const FLG_INDEPENDENT: u8 = 0x20;
const FLG_BLOCK_CHECKSUM: u8 = 0x10;
const FLG_CONTENT_SIZE: u8 = 0x08;
const FLG_CONTENT_CHECKSUM: u8 = 0x04;
const FLG_RESERVED: u8 = 0x02;
const FLG_DICT_ID: u8 = 0x01;
const BD_RESERVED: u8 = 0x8F;

/// Block size Kafka writes.
const BLOCK_SIZE: usize = 64 * 1024;
/// BD byte for 64 KiB blocks.
const BD_64KB: u8 = 0x40;
/// History a linked block may refer back into.
const WINDOW: usize = 64 * 1024;
const UNCOMPRESSED_BIT: u32 = 0x8000_0000;

/// The one-byte header checksum of a frame descriptor.
fn header_checksum(descriptor: &[u8]) -> u8 {
    (xxh32(descriptor, 0) >> 8) as u8
}

/// Appends an LZ4 frame holding `input` to `out`.
///
/// With `broken_header_checksum` the HC byte is computed over the magic number too, as Kafka
/// 0.8-0.9 (and Java and librdkafka ever since, for magic 0 messages) wrote it; only the
/// legacy magic 0 encoder sets it.
pub fn compress(input: &[u8], broken_header_checksum: bool, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
    out.extend_from_slice(&[FLG_VERSION_1 | FLG_INDEPENDENT, BD_64KB]);
    let hc = if broken_header_checksum {
        header_checksum(&out[start..])
    } else {
        header_checksum(&out[start + 4..])
    };
    out.push(hc);
    for block in input.chunks(BLOCK_SIZE) {
        let len_at = out.len();
        out.resize(len_at + 4 + get_maximum_output_size(block.len()), 0);
        match compress_into(block, &mut out[len_at + 4..]) {
            Ok(n) if n < block.len() => {
                out[len_at..len_at + 4].copy_from_slice(&(n as u32).to_le_bytes());
                out.truncate(len_at + 4 + n);
            }
            // Incompressible (or, impossibly, too big for the buffer sized for it): store.
            _ => {
                out.truncate(len_at);
                let tagged = block.len() as u32 | UNCOMPRESSED_BIT;
                out.extend_from_slice(&tagged.to_le_bytes());
                out.extend_from_slice(block);
            }
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
}

fn take<'a>(rest: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
    if rest.len() < n {
        return Err(corrupt(
            CODEC_NAME,
            format!("truncated {what}: needed {n} bytes, {} remain", rest.len()),
        ));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn take_u32(rest: &mut &[u8], what: &str) -> Result<u32, DecodeError> {
    let b = take(rest, 4, what)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decompresses one or more LZ4 frames into at most `limit` bytes.
///
/// With `accept_broken_header_checksum` (for magic 0 messages) a header checksum computed
/// over the magic number as well is accepted besides the correct one.
pub fn decompress(
    input: &[u8],
    limit: usize,
    accept_broken_header_checksum: bool,
) -> Result<Vec<u8>, DecodeError> {
    let mut out: Vec<u8> = Vec::new();
    let mut rest = input;
    let mut dict: Vec<u8> = Vec::new();
    if input.is_empty() {
        return Err(corrupt(CODEC_NAME, "empty input"));
    }
    while !rest.is_empty() {
        let frame_start = rest;
        let magic = take_u32(&mut rest, "frame magic")?;
        if magic & SKIPPABLE_MAGIC_MASK == SKIPPABLE_MAGIC {
            let n = take_u32(&mut rest, "skippable frame size")? as usize;
            take(&mut rest, n, "skippable frame")?;
            continue;
        }
        if magic != FRAME_MAGIC {
            return Err(corrupt(
                CODEC_NAME,
                format!("bad frame magic {magic:#010x}"),
            ));
        }
        let fd = take(&mut rest, 2, "frame descriptor")?;
        let (flg, bd) = (fd[0], fd[1]);
        if flg & FLG_VERSION_MASK != FLG_VERSION_1 {
            return Err(corrupt(
                CODEC_NAME,
                format!("unsupported frame version in FLG {flg:#04x}"),
            ));
        }
        if flg & FLG_RESERVED != 0 || bd & BD_RESERVED != 0 {
            return Err(corrupt(CODEC_NAME, "reserved descriptor bits set"));
        }
        if flg & FLG_DICT_ID != 0 {
            return Err(corrupt(
                CODEC_NAME,
                "frames with a dictionary id are not supported",
            ));
        }
        let block_max = match (bd >> 4) & 0x7 {
            4 => 64 << 10,
            5 => 256 << 10,
            6 => 1 << 20,
            7 => 4 << 20,
            n => return Err(corrupt(CODEC_NAME, format!("bad block size id {n}"))),
        };
        let content_size = if flg & FLG_CONTENT_SIZE != 0 {
            let b = take(&mut rest, 8, "content size")?;
            Some(u64::from_le_bytes([
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
            ]))
        } else {
            None
        };
        let desc_len = frame_start.len() - rest.len();
        let hc = take(&mut rest, 1, "header checksum")?[0];
        let good = header_checksum(&frame_start[4..desc_len]);
        if hc != good
            && !(accept_broken_header_checksum && hc == header_checksum(&frame_start[..desc_len]))
        {
            return Err(corrupt(
                CODEC_NAME,
                format!("header checksum {hc:#04x}, expected {good:#04x}"),
            ));
        }
        if let Some(cs) = content_size {
            // A frame that says it is larger than the limit is refused before decoding it.
            if cs > (limit - out.len()) as u64 {
                return Err(DecodeError::DecompressionLimit { limit });
            }
        }
        let linked = flg & FLG_INDEPENDENT == 0;
        let frame_out_start = out.len();
        loop {
            let tag = take_u32(&mut rest, "block size")?;
            if tag == 0 {
                break;
            }
            let size = (tag & !UNCOMPRESSED_BIT) as usize;
            if size > block_max {
                return Err(corrupt(
                    CODEC_NAME,
                    format!("block of {size} bytes exceeds the frame's {block_max}"),
                ));
            }
            let data = take(&mut rest, size, "block")?;
            if flg & FLG_BLOCK_CHECKSUM != 0 {
                let sum = take_u32(&mut rest, "block checksum")?;
                if sum != xxh32(data, 0) {
                    return Err(corrupt(CODEC_NAME, "block checksum mismatch"));
                }
            }
            let start = out.len();
            let avail = limit - start;
            if tag & UNCOMPRESSED_BIT != 0 {
                if size > avail {
                    return Err(DecodeError::DecompressionLimit { limit });
                }
                out.extend_from_slice(data);
                continue;
            }
            // One byte past the limit lets "output too small" tell a block that would exceed
            // the limit apart from one that merely fills it.
            let room = block_max.min(avail.saturating_add(1));
            reserve_capped(&mut out, start + room, limit);
            out.resize(start + room, 0);
            let result = if linked && start > frame_out_start {
                dict.clear();
                dict.extend_from_slice(
                    &out[start.saturating_sub(WINDOW).max(frame_out_start)..start],
                );
                decompress_into_with_dict(data, &mut out[start..], &dict)
            } else {
                decompress_into(data, &mut out[start..])
            };
            match result {
                Ok(n) if n <= avail => out.truncate(start + n),
                Ok(_) => return Err(DecodeError::DecompressionLimit { limit }),
                Err(DecompressError::OutputTooSmall { .. }) if room <= avail => {
                    return Err(corrupt(
                        CODEC_NAME,
                        "block larger than the frame's block size",
                    ))
                }
                Err(DecompressError::OutputTooSmall { .. }) => {
                    return Err(DecodeError::DecompressionLimit { limit })
                }
                Err(e) => return Err(corrupt(CODEC_NAME, e)),
            }
        }
        if flg & FLG_CONTENT_CHECKSUM != 0 {
            let sum = take_u32(&mut rest, "content checksum")?;
            if sum != xxh32(&out[frame_out_start..], 0) {
                return Err(corrupt(CODEC_NAME, "content checksum mismatch"));
            }
        }
        if let Some(cs) = content_size {
            if cs != (out.len() - frame_out_start) as u64 {
                return Err(corrupt(CODEC_NAME, "content size mismatch"));
            }
        }
    }
    Ok(out)
}

/// XXH32, the hash the LZ4 frame format uses for its checksums.
pub fn xxh32(data: &[u8], seed: u32) -> u32 {
    const P1: u32 = 2_654_435_761;
    const P2: u32 = 2_246_822_519;
    const P3: u32 = 3_266_489_917;
    const P4: u32 = 668_265_263;
    const P5: u32 = 374_761_393;
    #[inline]
    fn round(acc: u32, lane: u32) -> u32 {
        acc.wrapping_add(lane.wrapping_mul(P2))
            .rotate_left(13)
            .wrapping_mul(P1)
    }
    #[inline]
    fn le(b: &[u8]) -> u32 {
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    let mut chunks = data.chunks_exact(16);
    let mut h = if data.len() >= 16 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        for c in &mut chunks {
            for (i, acc) in v.iter_mut().enumerate() {
                *acc = round(*acc, le(&c[i * 4..]));
            }
        }
        v[0].rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18))
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(data.len() as u32);
    let tail = chunks.remainder();
    let mut words = tail.chunks_exact(4);
    for w in &mut words {
        h = h
            .wrapping_add(le(w).wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &b in words.remainder() {
        h = h
            .wrapping_add((b as u32).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^= h >> 16;
    h
}
