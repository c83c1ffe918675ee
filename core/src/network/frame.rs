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

/// Splits a byte stream into frames.
///
/// Bytes go in with [`FrameDecoder::push`] in whatever pieces the socket delivered; whole frames
/// come out of [`FrameDecoder::next_frame`] as zero-copy [`Bytes`] (without the size prefix).
/// A size above `max_frame` is an error before anything is allocated for it; memory held is
/// bounded by one frame plus one read.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_frame: usize,
}

impl FrameDecoder {
    /// A decoder accepting frames of at most `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            max_frame,
        }
    }

    /// Appends bytes read from the socket.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let size = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if size < 0 || size as usize > self.max_frame {
            return Err(FrameError {
                size: size as i64,
                max: self.max_frame,
            });
        }
        let size = size as usize;
        if self.buf.len() < 4 + size {
            // Reserve the rest of this frame once, rather than growing read by read; the size
            // is already bounded by `max_frame`.
            self.buf.reserve(4 + size - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(4);
        Ok(Some(self.buf.split_to(size).freeze()))
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
}
