//! Response framing: size prefix, response header at the right version, body.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::{BufMut, Bytes, BytesMut};
use kafkit_core::codec::EncodeError;
use kafkit_core::protocol::{
    response_header_version, Message, RequestHeader, ResponseBody, ResponseHeader,
};

/// Encodes `body` as the response to the request with `header`: 4-byte size, response
/// header (v0 or v1 as the API and version call for), body at the request's version.
pub(crate) fn encode_response_frame(
    header: &RequestHeader,
    body: &ResponseBody,
    pool: &FramePool,
) -> Result<Bytes, EncodeError> {
    let version = header.request_api_version;
    let mut buf = pool.take(size_hint(body));
    buf.put_i32(0);
    let rh = ResponseHeader {
        correlation_id: header.correlation_id,
        ..Default::default()
    };
    rh.encode(&mut buf, response_header_version(body.api_key(), version))?;
    body.encode(&mut buf, version)?;
    let size = i32::try_from(buf.len() - 4).map_err(|_| EncodeError::Invalid {
        what: "response frame",
        detail: "larger than 2 GiB".into(),
    })?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// Room for the frame of `body`: a Fetch response is sized from its records (tens of MB at
/// a time while a consumer catches up), so it is written once into memory of the right size
/// instead of being regrown (and copied, and page-faulted) from a few bytes; the per-partition
/// allowance is generous, and any other response starts small.
fn size_hint(body: &ResponseBody) -> usize {
    match body {
        ResponseBody::Fetch(f) => f.responses.iter().fold(256, |acc, t| {
            t.partitions
                .iter()
                .fold(acc + 64 + t.topic.len(), |acc, p| {
                    acc + 96 + p.records.as_ref().map_or(0, |r| r.len())
                })
        }),
        _ => 64,
    }
}

/// A raw frame (legacy SASL token): size prefix and bytes.
pub(crate) fn raw_frame(data: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + data.len());
    buf.put_i32(data.len() as i32);
    buf.put_slice(data);
    buf.freeze()
}

/// Large response frames, handed back by whoever wrote them to the socket once nothing else
/// refers to them, for the next large response; also the buffers a Fetch response gathers a
/// partition's batches into, handed back once the frame is encoded. A Fetch response of tens
/// of MB in freshly allocated memory costs a page fault per 4 KiB (profiled: half the dev
/// broker's CPU while a consumer reads 10 KB records); memory already touched does not. Only
/// buffers of at least [`FramePool::MIN`] are kept, at most [`FramePool::MAX_FRAMES`] of them
/// and [`FramePool::MAX_BYTES`] in all. Without anyone handing frames back (the simulation) it
/// stays empty and every frame is allocated.
#[derive(Debug, Clone, Default)]
pub struct FramePool(Arc<Mutex<Vec<BytesMut>>>);

impl FramePool {
    /// Smaller frames are allocated each time: they are cheap, and many.
    pub const MIN: usize = 64 * 1024;
    /// The most buffers kept: a frame, and a partition's gathered batches for each of up to
    /// a dozen partitions, per response in flight. At the default `max_partition_fetch_bytes`
    /// of 1 MiB that is some 16 MiB; frames can be up to `fetch_max_bytes` each.
    pub const MAX_FRAMES: usize = 16;
    /// The most bytes kept, all buffers together.
    pub const MAX_BYTES: usize = 256 << 20;

    /// Empty room for at least `size` bytes: the smallest kept buffer that fits, else new.
    pub(crate) fn take(&self, size: usize) -> BytesMut {
        if size >= Self::MIN {
            let mut frames = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            let fit = (0..frames.len())
                .filter(|&i| frames[i].capacity() >= size)
                .min_by_key(|&i| frames[i].capacity());
            if let Some(i) = fit {
                return frames.swap_remove(i);
            }
        }
        BytesMut::with_capacity(size)
    }

    /// Hands back a frame that has been written. It is kept if nothing else refers to it
    /// and it is large; when the pool is full it replaces the smallest kept frame if larger.
    pub fn give(&self, frame: Bytes) {
        if frame.len() < Self::MIN {
            return;
        }
        let Ok(mut frame) = frame.try_into_mut() else {
            return;
        };
        frame.clear();
        let mut frames = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let kept: usize = frames.iter().map(BytesMut::capacity).sum();
        if frames.len() < Self::MAX_FRAMES && kept + frame.capacity() <= Self::MAX_BYTES {
            frames.push(frame);
        } else if let Some(smallest) = frames.iter_mut().min_by_key(|f| f.capacity()) {
            if smallest.capacity() < frame.capacity()
                && kept - smallest.capacity() + frame.capacity() <= Self::MAX_BYTES
            {
                *smallest = frame;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_frames_written_are_reused_and_small_or_shared_ones_are_not() {
        let pool = FramePool::default();
        let mut big = pool.take(100_000);
        big.extend_from_slice(&[7; 100_000]);
        let big = big.freeze();
        let ptr = big.as_ptr();
        pool.give(big);
        // The same memory serves the next large frame that fits, emptied.
        let again = pool.take(90_000);
        assert_eq!((again.as_ptr(), again.len()), (ptr, 0));
        assert!(pool.take(90_000).as_ptr() != ptr);
        // Shared or small frames are not kept.
        let shared = Bytes::from(vec![1u8; 100_000]);
        let other = shared.clone();
        pool.give(shared);
        pool.give(Bytes::from(vec![1u8; 100]));
        assert!(pool.0.lock().unwrap().is_empty());
        drop(other);
        // At most MAX_FRAMES, the largest kept.
        for n in 0..=FramePool::MAX_FRAMES {
            pool.give(Bytes::from(vec![0u8; FramePool::MIN + n * 1000]));
        }
        let kept = pool.0.lock().unwrap();
        assert_eq!(kept.len(), FramePool::MAX_FRAMES);
        assert!(kept.iter().all(|f| f.capacity() >= FramePool::MIN + 1000));
    }
}
