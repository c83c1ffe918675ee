//! Response framing: size prefix, response header at the right version, body.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::{BufMut, Bytes, BytesMut};
use kafkit_core::codec::{EncodeError, Writer};
use kafkit_core::protocol::{
    layout_version, response_header_version, ApiKey, FetchResponse, Message, RequestHeader,
    ResponseBody, ResponseHeader,
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
    // Produce v12 and TxnOffsetCommit v5 (KIP-890) are answered in the layout they share
    // with the version before.
    body.encode(&mut buf, layout_version(body.api_key(), version))?;
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

/// Stored batches shorter than this are copied into the frame's own memory rather than
/// handed to the socket as pieces of their own: a piece costs an iovec and a reference.
pub(crate) const COPY_BELOW: usize = 2048;

/// The records of a Fetch response's partitions, in the order the response lists them
/// (topics, then partitions), as the stored batches: the response itself carries empty
/// records for them while it is encoded (see [`encode_fetch_pieces`]).
#[derive(Debug, Default)]
pub(crate) struct FetchRecords(pub(crate) Vec<Vec<Bytes>>);

/// Encodes a Fetch response as pieces whose concatenation is the frame
/// [`encode_response_frame`] makes of the same response with `records` in it: the header,
/// the fixed fields and small batches are written into one allocation of the frame's own
/// (sliced into pieces around the rest), and stored batches of at least [`COPY_BELOW`] bytes
/// go out as they are, uncopied. Written with one vectored write, a large Fetch response then
/// costs the broker the kernel's copy into the socket only.
///
/// Every partition of `response` must have empty records (`Some`), and `records` one list of
/// batches per partition, in order. The generated encoder is used as it is: the response is
/// encoded once with empty records and once with null ones; the two frames differ exactly in
/// the records' length fields (`0` and `-1`, or compact `1` and `0`), which locates them, and
/// the stored batches go after each with its real length.
pub(crate) fn encode_fetch_pieces(
    header: &RequestHeader,
    mut response: FetchResponse,
    records: FetchRecords,
) -> Result<Vec<Bytes>, EncodeError> {
    let invalid = |detail: String| EncodeError::Invalid {
        what: "fetch response frame",
        detail,
    };
    let version = header.request_api_version;
    let compact = version >= 12;
    let partitions = response.responses.iter().map(|t| t.partitions.len()).sum();
    if records.0.len() != partitions {
        return Err(invalid(format!(
            "{} record lists for {partitions} partitions",
            records.0.len()
        )));
    }
    let rh = ResponseHeader {
        correlation_id: header.correlation_id,
        ..Default::default()
    };
    let header_version = response_header_version(ApiKey::Fetch, version);
    let encode = |response: &FetchResponse, buf: &mut Vec<u8>| {
        rh.encode(buf, header_version)?;
        response.encode(buf, version)
    };
    let mut empty = Vec::with_capacity(256 + 128 * partitions);
    encode(&response, &mut empty)?;
    for p in response
        .responses
        .iter_mut()
        .flat_map(|t| t.partitions.iter_mut())
    {
        if p.records.as_ref().is_none_or(|r| !r.is_empty()) {
            return Err(invalid("records to splice in are not empty".into()));
        }
        p.records = None;
    }
    let mut null = Vec::with_capacity(empty.len());
    encode(&response, &mut null)?;
    if null.len() != empty.len() {
        return Err(invalid("empty and null records differ in length".into()));
    }
    let (field, empty_field): (usize, &[u8]) = if compact {
        (1, &[1])
    } else {
        (4, &[0, 0, 0, 0])
    };
    let mut w = Pieces {
        own: BytesMut::with_capacity(4 + empty.len() + 4 * partitions),
        pieces: Vec::new(),
        run_start: 0,
        shared_len: 0,
    };
    w.own.put_i32(0);
    let mut at = 0;
    for batches in records.0 {
        let Some(diff) = empty[at..]
            .iter()
            .zip(&null[at..])
            .position(|(a, b)| a != b)
        else {
            return Err(invalid("fewer record fields than partitions".into()));
        };
        let start = at + diff;
        if empty.get(start..start + field) != Some(empty_field) {
            return Err(invalid(format!("no empty records field at {start}")));
        }
        w.own.put_slice(&empty[at..start]);
        let len: usize = batches.iter().map(Bytes::len).sum();
        w.own.put_len(Some(len), compact, true, "bytes")?;
        for batch in batches {
            if batch.len() < COPY_BELOW {
                w.own.put_slice(&batch);
            } else {
                w.share(batch);
            }
        }
        at = start + field;
    }
    if empty[at..] != null[at..] {
        return Err(invalid("more record fields than partitions".into()));
    }
    w.own.put_slice(&empty[at..]);
    w.end_run();
    let size = i32::try_from(w.own.len() - 4 + w.shared_len)
        .map_err(|_| invalid("larger than 2 GiB".into()))?;
    w.own[..4].copy_from_slice(&size.to_be_bytes());
    let own = w.own.freeze();
    Ok(w.pieces
        .into_iter()
        .map(|p| match p {
            Piece::Own(start, end) => own.slice(start..end),
            Piece::Shared(b) => b,
        })
        .collect())
}

/// A frame being assembled from runs of its own memory and shared stored bytes.
struct Pieces {
    own: BytesMut,
    pieces: Vec<Piece>,
    /// Start of the run of `own` not yet in `pieces`.
    run_start: usize,
    /// Bytes in shared pieces.
    shared_len: usize,
}

/// A piece of a frame.
enum Piece {
    /// A range of the frame's own memory.
    Own(usize, usize),
    /// Stored bytes, as they are.
    Shared(Bytes),
}

impl Pieces {
    /// Ends the current run of own memory.
    fn end_run(&mut self) {
        if self.own.len() > self.run_start {
            self.pieces.push(Piece::Own(self.run_start, self.own.len()));
            self.run_start = self.own.len();
        }
    }

    /// Appends stored bytes as a piece of their own.
    fn share(&mut self, bytes: Bytes) {
        self.end_run();
        self.shared_len += bytes.len();
        self.pieces.push(Piece::Shared(bytes));
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
