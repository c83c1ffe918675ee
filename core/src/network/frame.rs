//! Kafka's framing: every request and response is an `int32` size followed by that many bytes.

use bytes::{Buf, Bytes, BytesMut};

/// A frame's size prefix was impossible or above the configured maximum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("frame size {size} is outside 0..={max}")]
pub struct FrameError {
    /// The size the prefix claimed.
    pub size: i64,
    /// The largest frame accepted.
    pub max: usize,
}

/// The frame length a size prefix claims, checked against `max` before anything is allocated.
pub(crate) fn frame_size(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let size = i32::from_be_bytes(prefix);
    if size < 0 || size as usize > max {
        return Err(FrameError {
            size: size as i64,
            max,
        });
    }
    Ok(size as usize)
}

fn prefix(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}

/// Splits a byte stream into frames.
///
/// Bytes go in with [`FrameDecoder::push`] (copied) or [`FrameDecoder::push_bytes`] (kept) in
/// whatever pieces the socket delivered; whole frames come out of [`FrameDecoder::next_frame`]
/// as [`Bytes`] (without the size prefix). A frame that lies whole inside one pushed `Bytes` is
/// sliced out of it without copying; only a frame that spans pieces is assembled (copied) in
/// the decoder's own buffer, which is reserved once for the whole frame. A driver that hands in
/// whole frames (see [`super::ReadBuffer`]) therefore never has its bytes copied here.
///
/// A size above `max_frame` is an error before anything is allocated for it; memory held is
/// bounded by one frame plus one read.
#[derive(Debug)]
pub struct FrameDecoder {
    /// A frame being assembled from pieces, and everything pushed as slices.
    buf: BytesMut,
    /// What is left of the last [`FrameDecoder::push_bytes`], after everything in `buf`;
    /// frames are sliced out of it without copying once `buf` is empty.
    chunk: Bytes,
    max_frame: usize,
}

impl FrameDecoder {
    /// A decoder accepting frames of at most `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            chunk: Bytes::new(),
            max_frame,
        }
    }

    /// Appends bytes read from the socket (copying them).
    pub fn push(&mut self, data: &[u8]) {
        if !self.chunk.is_empty() {
            // Keep the stream's order: what is left of the last chunk comes first.
            let chunk = std::mem::take(&mut self.chunk);
            self.buf.extend_from_slice(&chunk);
        }
        self.buf.extend_from_slice(data);
    }

    /// Appends bytes read from the socket without copying them: frames that lie whole inside
    /// `data` come out of [`FrameDecoder::next_frame`] as slices of it. Drain
    /// [`FrameDecoder::next_frame`] before pushing again, or the rest is copied.
    pub fn push_bytes(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        if !self.chunk.is_empty() {
            let chunk = std::mem::take(&mut self.chunk);
            self.buf.extend_from_slice(&chunk);
        }
        self.chunk = data;
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.chunk.len()
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        if self.buf.is_empty() {
            return self.next_from_chunk();
        }
        // A frame being assembled: top it up from the chunk, copying only what it needs.
        if self.buf.len() < 4 {
            let n = (4 - self.buf.len()).min(self.chunk.len());
            self.buf.extend_from_slice(&self.chunk[..n]);
            self.chunk.advance(n);
            if self.buf.len() < 4 {
                self.release_chunk();
                return Ok(None);
            }
        }
        let size = frame_size(prefix(&self.buf), self.max_frame)?;
        let want = 4 + size;
        if self.buf.len() < want {
            // Reserve the rest of this frame once, rather than growing read by read; the size
            // is already bounded by `max_frame`.
            self.buf.reserve(want - self.buf.len());
            let n = (want - self.buf.len()).min(self.chunk.len());
            self.buf.extend_from_slice(&self.chunk[..n]);
            self.chunk.advance(n);
            if self.buf.len() < want {
                self.release_chunk();
                return Ok(None);
            }
        }
        self.buf.advance(4);
        Ok(Some(self.buf.split_to(size).freeze()))
    }

    /// The zero-copy path: the next frame sliced out of the chunk, or the chunk's tail moved
    /// to `buf` to be assembled with what comes next.
    fn next_from_chunk(&mut self) -> Result<Option<Bytes>, FrameError> {
        if self.chunk.len() >= 4 {
            let size = frame_size(prefix(&self.chunk), self.max_frame)?;
            if self.chunk.len() >= 4 + size {
                self.chunk.advance(4);
                return Ok(Some(self.chunk.split_to(size)));
            }
            // The frame spans chunks: it is assembled in `buf`, the only copy it gets.
            self.buf.reserve(4 + size);
        }
        self.buf.extend_from_slice(&self.chunk);
        self.chunk = Bytes::new();
        Ok(None)
    }

    /// Lets go of an empty chunk's allocation (the frames sliced from it keep it alive as
    /// long as they need it).
    fn release_chunk(&mut self) {
        if self.chunk.is_empty() {
            self.chunk = Bytes::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn many_frames_in_one_read_and_one_frame_in_many_reads() {
        let mut stream = frame(b"hello");
        stream.extend(frame(b""));
        stream.extend(frame(b"world!"));
        let mut d = FrameDecoder::new(100);
        d.push(&stream);
        assert_eq!(d.next_frame().unwrap().unwrap(), &b"hello"[..]);
        assert_eq!(d.next_frame().unwrap().unwrap(), &b""[..]);
        assert_eq!(d.next_frame().unwrap().unwrap(), &b"world!"[..]);
        assert_eq!(d.next_frame().unwrap(), None);

        let mut d = FrameDecoder::new(100);
        for b in &stream {
            d.push(std::slice::from_ref(b));
        }
        let mut got = vec![];
        while let Some(f) = d.next_frame().unwrap() {
            got.push(f);
        }
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn oversized_and_negative_sizes_are_errors() {
        let mut d = FrameDecoder::new(10);
        d.push(&1_000_000_000i32.to_be_bytes());
        assert_eq!(
            d.next_frame(),
            Err(FrameError {
                size: 1_000_000_000,
                max: 10
            })
        );
        let mut d = FrameDecoder::new(10);
        d.push(&(-5i32).to_be_bytes());
        assert!(d.next_frame().is_err());
    }

    fn stream() -> (Vec<u8>, Vec<Vec<u8>>) {
        let bodies: Vec<Vec<u8>> = vec![
            b"hello".to_vec(),
            vec![],
            (0..=255u8).collect(),
            b"x".to_vec(),
            b"world!".to_vec(),
        ];
        let mut s = vec![];
        for b in &bodies {
            s.extend(frame(b));
        }
        (s, bodies)
    }

    fn drain(d: &mut FrameDecoder, got: &mut Vec<Bytes>) {
        while let Some(f) = d.next_frame().unwrap() {
            got.push(f);
        }
    }

    #[test]
    fn push_bytes_split_at_every_pair_of_byte_boundaries() {
        let (s, bodies) = stream();
        for i in 0..=s.len() {
            for j in i..=s.len() {
                let mut d = FrameDecoder::new(1000);
                let mut got = vec![];
                for piece in [&s[..i], &s[i..j], &s[j..]] {
                    d.push_bytes(Bytes::copy_from_slice(piece));
                    drain(&mut d, &mut got);
                }
                assert_eq!(got, bodies, "split at {i} and {j}");
                assert_eq!(d.buffered(), 0);
            }
        }
    }

    #[test]
    fn push_bytes_one_byte_at_a_time_and_mixed_with_push() {
        let (s, bodies) = stream();
        let mut d = FrameDecoder::new(1000);
        let mut got = vec![];
        for (k, b) in s.iter().enumerate() {
            if k % 3 == 0 {
                d.push(std::slice::from_ref(b));
            } else {
                d.push_bytes(Bytes::copy_from_slice(std::slice::from_ref(b)));
            }
            drain(&mut d, &mut got);
        }
        assert_eq!(got, bodies);

        // Pushing again without draining keeps the order.
        let mut d = FrameDecoder::new(1000);
        let (a, b) = s.split_at(7);
        d.push_bytes(Bytes::copy_from_slice(a));
        d.push_bytes(Bytes::copy_from_slice(b));
        let mut got = vec![];
        drain(&mut d, &mut got);
        assert_eq!(got, bodies);
    }

    #[test]
    fn whole_frames_in_one_chunk_are_sliced_without_copying() {
        let (s, bodies) = stream();
        let chunk = Bytes::from(s);
        let range = chunk.as_ptr() as usize..chunk.as_ptr() as usize + chunk.len();
        let mut d = FrameDecoder::new(1000);
        d.push_bytes(chunk.clone());
        let mut got = vec![];
        drain(&mut d, &mut got);
        assert_eq!(got, bodies);
        for f in got.iter().filter(|f| !f.is_empty()) {
            assert!(range.contains(&(f.as_ptr() as usize)), "frame was copied");
        }
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn a_frame_spanning_chunks_is_assembled_and_the_rest_still_sliced() {
        let (s, bodies) = stream();
        // Split inside the third frame (the 256-byte one).
        let cut = frame(b"hello").len() + frame(b"").len() + 100;
        let first = Bytes::copy_from_slice(&s[..cut]);
        let second = Bytes::copy_from_slice(&s[cut..]);
        let range = second.as_ptr() as usize..second.as_ptr() as usize + second.len();
        let mut d = FrameDecoder::new(1000);
        let mut got = vec![];
        d.push_bytes(first);
        drain(&mut d, &mut got);
        assert_eq!(got.len(), 2);
        assert_eq!(d.buffered(), 100);
        d.push_bytes(second);
        drain(&mut d, &mut got);
        assert_eq!(got, bodies);
        // The frames after the spanning one come straight out of the second chunk.
        for f in &got[3..] {
            assert!(range.contains(&(f.as_ptr() as usize)), "frame was copied");
        }
    }

    #[test]
    fn oversize_prefix_in_a_chunk_is_an_error_before_allocating() {
        let mut d = FrameDecoder::new(10);
        let mut bytes = frame(b"ok").to_vec();
        bytes.extend(1_000_000_000i32.to_be_bytes());
        d.push_bytes(Bytes::from(bytes));
        assert_eq!(d.next_frame().unwrap().unwrap(), &b"ok"[..]);
        assert_eq!(
            d.next_frame(),
            Err(FrameError {
                size: 1_000_000_000,
                max: 10
            })
        );
        assert!(d.buf.capacity() < 1000);

        // The same prefix arriving one byte at a time.
        let mut d = FrameDecoder::new(10);
        for b in 1_000_000_000i32.to_be_bytes() {
            d.push_bytes(Bytes::copy_from_slice(&[b]));
            if d.buffered() < 4 {
                assert_eq!(d.next_frame(), Ok(None));
            }
        }
        assert!(d.next_frame().is_err());
        assert!(d.buf.capacity() < 1000);
        let mut d = FrameDecoder::new(10);
        d.push_bytes(Bytes::copy_from_slice(&(-1i32).to_be_bytes()));
        assert!(d.next_frame().is_err());
    }
}
