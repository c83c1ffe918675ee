//! Where a driver reads a connection's bytes into: reads sized to the frame that is arriving,
//! handed to the core as whole frames, so the core slices them without copying.
//!
//! This is a sans-IO helper for drivers; it never touches a socket. A reader loop goes:
//!
//! ```text
//! loop {
//!     n = socket.read(rb.spare())?          // or tokio's read_buf(rb.buf_for_read())
//!     if n == 0 { closed }
//!     rb.did_read(n);
//!     if let Some(bytes) = rb.take() { core.handle_bytes(conn, bytes, now) }
//! }
//! ```

use bytes::buf::Limit;
use bytes::{BufMut, Bytes, BytesMut};

use super::frame::frame_size;

/// The smallest room a read gets, and all it gets while no frame size is known.
pub const READ_SIZE: usize = 64 * 1024;

/// At most this many earlier allocations are kept per connection for reuse. A consumer holds
/// one or two Fetch responses while it reads them and a third is arriving; more would only
/// hold memory.
const RETAINED: usize = 4;

/// Bytes of allocations kept per connection for reuse, at most: what an idle connection can
/// hold on to beyond the frames the application still refers to.
const RETAINED_BYTES: usize = 64 << 20;

/// An allocation this buffer made, kept to be reused once nothing else refers to it.
#[derive(Debug)]
struct Retained {
    /// The first bytes handed out from it, which start at the start of the allocation: once
    /// this is the only reference left (every frame sliced from the allocation was dropped,
    /// and `ReadBuffer::buf` has moved on), it turns back into a `BytesMut` over the whole
    /// allocation without a copy.
    head: Bytes,
    capacity: usize,
}

/// A connection's read buffer. See the module docs.
///
/// *Framed* (a plaintext stream of Kafka frames): once a frame's 4-byte size prefix has
/// arrived, the buffer makes room for the whole rest of that frame, so a large response lands
/// in one allocation however many reads it takes, and [`ReadBuffer::take`] hands out only
/// whole frames. The core's [`super::FrameDecoder`] then slices them without copying. A prefix
/// that is negative or above `max_frame` gets nothing allocated for it: the buffer stops
/// framing and hands out the bytes as they come, and the core's decoder reports the error.
///
/// *Unframed* ([`ReadBuffer::unframed`], for TLS, whose ciphertext has no Kafka frames to
/// find): every read is handed out as it is, in at most [`READ_SIZE`] bytes of room.
///
/// Memory held is bounded by one frame (at most `max_frame`) plus one read, plus (framed) up
/// to [`RETAINED`] earlier allocations of at most [`RETAINED_BYTES`] together, kept for reuse.
///
/// *Reuse* (framed): a frame's allocation is made on the reader's thread and freed wherever
/// the application drops the last record sliced from it; glibc then keeps the freed chunk in
/// the reader thread's arena, so a consumer's peak RSS grew by a few frames, and every fresh
/// multi-megabyte allocation is page-faulted (and zeroed by the kernel) again. So the buffer
/// keeps a handle to each allocation it made and, when it needs room, takes back one that no
/// `Bytes` refers to any more ([`Bytes::is_unique`]). At the start of a frame it takes the
/// largest such allocation, so a large frame usually lands in it without the copy of the
/// first read that a fresh allocation of the frame's exact size needs.
#[derive(Debug)]
pub struct ReadBuffer {
    /// `[0, filled)` is data read and not yet taken; `[filled, len)` is zeroed room that
    /// [`ReadBuffer::spare`] already handed out once (kept so it is not zeroed again).
    buf: BytesMut,
    filled: usize,
    /// Whole frames end here (an offset into the data), and the next frame starts here.
    scanned: usize,
    /// The end of the frame that starts at `scanned`, once its prefix has arrived.
    pending_end: Option<usize>,
    /// `Some(max_frame)` while framing.
    framing: Option<usize>,
    /// Whether `buf` starts at the start of its allocation, which was made (or taken back) with
    /// `capacity` bytes: the next [`ReadBuffer::take`] hands out that allocation's head.
    head_of: Option<usize>,
    /// Earlier allocations kept for reuse (framed only).
    retained: Vec<Retained>,
}

impl ReadBuffer {
    /// A buffer for a plaintext stream of frames of at most `max_frame` bytes.
    pub fn framed(max_frame: usize) -> Self {
        Self::with(Some(max_frame))
    }

    /// A buffer that hands out every read as it is (TLS).
    pub fn unframed() -> Self {
        Self::with(None)
    }

    /// [`ReadBuffer::framed`] with `Some(max_frame)`, else [`ReadBuffer::unframed`]; takes
    /// `SocketOptions::read_framing` as it is.
    pub fn with(framing: Option<usize>) -> Self {
        ReadBuffer {
            buf: BytesMut::new(),
            filled: 0,
            scanned: 0,
            pending_end: None,
            framing,
            head_of: None,
            retained: Vec::new(),
        }
    }

    /// Whether reads are still sized and handed out per frame.
    pub fn is_framing(&self) -> bool {
        self.framing.is_some()
    }

    /// Bytes read and not yet taken.
    pub fn len(&self) -> usize {
        self.filled
    }

    /// Whether nothing is waiting to be taken.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// How much room the next read gets: the rest of the pending frame, and at least
    /// [`READ_SIZE`].
    fn room(&self) -> usize {
        match self.pending_end {
            Some(end) => end.saturating_sub(self.filled).max(READ_SIZE),
            None => READ_SIZE,
        }
    }

    /// A new allocation of exactly the data plus `room` (`BytesMut::reserve` may double,
    /// and a read into the surplus would pin the frame before it), or a retained one with at
    /// least that room; copies what is not yet taken, which is at most one read when a
    /// frame's size becomes known.
    ///
    /// Bytes of a reused allocation that [`ReadBuffer::spare`] would have to zero are kept as
    /// they are (they were initialised when the allocation was last used): `buf`'s length
    /// past `filled` is room already initialised.
    fn make_room(&mut self, room: usize) {
        let need = self.filled + room;
        // At the start of a frame its size is unknown: the largest allocation makes it most
        // likely that the frame fits without moving its first read.
        let largest = self.filled == 0 && self.pending_end.is_none();
        let (mut fresh, capacity) = match self.reuse(need, largest) {
            Some(reused) => reused,
            None => (BytesMut::with_capacity(need), need),
        };
        if fresh.len() >= self.filled {
            fresh[..self.filled].copy_from_slice(&self.buf[..self.filled]);
        } else {
            fresh.clear();
            fresh.extend_from_slice(&self.buf[..self.filled]);
        }
        self.buf = fresh;
        self.head_of = self.framing.is_some().then_some(capacity);
    }

    /// A retained allocation with room for `need` bytes that nothing refers to any more (the
    /// smallest such, or the largest if `largest`), as a `BytesMut` whose length is its
    /// initialised part, and its capacity.
    fn reuse(&mut self, need: usize, largest: bool) -> Option<(BytesMut, usize)> {
        let free = self
            .retained
            .iter()
            .enumerate()
            .filter(|(_, r)| r.capacity >= need && r.head.is_unique());
        let (i, _) = if largest {
            free.max_by_key(|(_, r)| r.capacity)?
        } else {
            free.min_by_key(|(_, r)| r.capacity)?
        };
        let r = self.retained.swap_remove(i);
        // `is_unique` above was the only reference, and only this buffer could clone it, so
        // this does not fail; if it did, the allocation is simply not reused.
        let m = r.head.try_into_mut().ok()?;
        // `head` was the first bytes of the allocation, so `m` spans all of it, and its
        // length (`head`'s) is the part known to be initialised.
        Some((m, r.capacity))
    }

    /// Keeps `head` (the first bytes handed out from an allocation of `capacity` bytes) for
    /// reuse, within [`RETAINED`] and [`RETAINED_BYTES`]; the smallest allocations go first.
    fn retain(&mut self, head: &Bytes, capacity: usize) {
        if capacity > RETAINED_BYTES {
            return;
        }
        let mut held: usize = self.retained.iter().map(|r| r.capacity).sum();
        while self.retained.len() >= RETAINED || held + capacity > RETAINED_BYTES {
            let Some((i, smallest)) = self
                .retained
                .iter()
                .enumerate()
                .min_by_key(|(_, r)| r.capacity)
            else {
                break;
            };
            if smallest.capacity > capacity {
                // Everything kept is larger: keep that rather than this.
                return;
            }
            held -= smallest.capacity;
            self.retained.swap_remove(i);
        }
        self.retained.push(Retained {
            head: head.clone(),
            capacity,
        });
    }

    /// The buffer to append the next read to, with room made and the read limited to it (for
    /// readers that fill a `BufMut`, like tokio's `read_buf`). Call [`ReadBuffer::did_read`]
    /// with the number of bytes appended.
    pub fn buf_for_read(&mut self) -> Limit<&mut BytesMut> {
        self.buf.truncate(self.filled);
        let room = self.room();
        if self.buf.capacity() - self.filled < room {
            self.make_room(room);
            // A reused allocation comes with initialised bytes past `filled`; the read appends.
            self.buf.truncate(self.filled);
        }
        (&mut self.buf).limit(room)
    }

    /// Zeroed room for the next read (for readers that need an initialised slice, like
    /// `std::io::Read`). Call [`ReadBuffer::did_read`] with the number of bytes read into it.
    /// Room handed out and not used is kept, so it is zeroed only once.
    pub fn spare(&mut self) -> &mut [u8] {
        let room = self.room();
        if self.buf.len() - self.filled < room {
            self.buf.truncate(self.filled);
            if self.buf.capacity() - self.filled < room {
                self.make_room(room);
            }
            self.buf.resize(self.filled + room, 0);
        }
        &mut self.buf[self.filled..self.filled + room]
    }

    /// `n` bytes were read into the room from [`ReadBuffer::buf_for_read`] or
    /// [`ReadBuffer::spare`].
    pub fn did_read(&mut self, n: usize) {
        self.filled += n;
        debug_assert!(self.filled <= self.buf.len());
        let Some(max) = self.framing else { return };
        loop {
            let end = match self.pending_end {
                Some(end) => end,
                None => {
                    if self.filled - self.scanned < 4 {
                        return;
                    }
                    let p = &self.buf[self.scanned..self.scanned + 4];
                    match frame_size([p[0], p[1], p[2], p[3]], max) {
                        Ok(size) => {
                            let end = self.scanned + 4 + size;
                            self.pending_end = Some(end);
                            end
                        }
                        Err(_) => {
                            // Not a stream we can frame: hand out bytes as they come and let
                            // the core's decoder report it. Nothing is allocated for the size.
                            self.framing = None;
                            self.pending_end = None;
                            self.head_of = None;
                            self.retained.clear();
                            return;
                        }
                    }
                }
            };
            if end > self.filled {
                return;
            }
            self.scanned = end;
            self.pending_end = None;
        }
    }

    /// What is ready for the core: every whole frame read so far (framed), or everything read
    /// (unframed); `None` if nothing is.
    pub fn take(&mut self) -> Option<Bytes> {
        let n = if self.framing.is_some() {
            self.scanned
        } else {
            self.filled
        };
        if n == 0 {
            return None;
        }
        let out = self.buf.split_to(n).freeze();
        if let Some(capacity) = self.head_of.take() {
            self.retain(&out, capacity);
        }
        self.filled -= n;
        self.scanned = self.scanned.saturating_sub(n);
        self.pending_end = self.pending_end.map(|end| end - n);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::FrameDecoder;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    fn stream() -> (Vec<u8>, Vec<Vec<u8>>) {
        let bodies: Vec<Vec<u8>> = vec![
            b"hello".to_vec(),
            vec![],
            (0..=255u8).collect(),
            b"x".to_vec(),
            vec![7; 3 * READ_SIZE + 5],
            b"world!".to_vec(),
        ];
        let mut s = vec![];
        for b in &bodies {
            s.extend(frame(b));
        }
        (s, bodies)
    }

    /// Reads `s` through a `ReadBuffer` in pieces of `piece` bytes (capped by the room
    /// offered), using the slice or the `BytesMut` interface, into a decoder; returns the
    /// frames and how many chunks the core was handed.
    fn run(s: &[u8], piece: usize, rb: &mut ReadBuffer, slices: bool) -> (Vec<Bytes>, usize) {
        let mut d = FrameDecoder::new(1 << 20);
        let mut got = vec![];
        let mut chunks = 0;
        let mut at = 0;
        while at < s.len() {
            let n = if slices {
                let room = rb.spare();
                let n = piece.min(room.len()).min(s.len() - at);
                room[..n].copy_from_slice(&s[at..at + n]);
                n
            } else {
                let mut buf = rb.buf_for_read();
                let n = piece.min(buf.remaining_mut()).min(s.len() - at);
                buf.put_slice(&s[at..at + n]);
                n
            };
            assert!(n > 0, "no room offered");
            at += n;
            rb.did_read(n);
            if let Some(b) = rb.take() {
                chunks += 1;
                d.push_bytes(b);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
        }
        assert_eq!(d.buffered(), 0);
        (got, chunks)
    }

    #[test]
    fn frames_come_out_whole_whatever_the_read_sizes() {
        let (s, bodies) = stream();
        for slices in [true, false] {
            for piece in [1, 2, 3, 4, 5, 7, 100, 4096, READ_SIZE, usize::MAX] {
                let mut rb = ReadBuffer::framed(1 << 20);
                let (got, _) = run(&s, piece, &mut rb, slices);
                assert_eq!(got, bodies, "piece {piece} slices {slices}");
                assert!(rb.is_empty());
                assert!(rb.is_framing());
            }
        }
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let (s, bodies) = stream();
        // Small frames only (the large one would make this quadratic test slow).
        let cut = frame(b"hello").len() + frame(b"").len() + frame(&[0; 256]).len() + 5;
        let s = &s[..cut];
        for i in 0..=s.len() {
            let mut rb = ReadBuffer::framed(1000);
            let mut d = FrameDecoder::new(1000);
            let mut got = vec![];
            for piece in [&s[..i], &s[i..]] {
                let room = rb.spare();
                room[..piece.len()].copy_from_slice(piece);
                rb.did_read(piece.len());
                if let Some(b) = rb.take() {
                    // Only whole frames are handed out.
                    let mut check = FrameDecoder::new(1000);
                    check.push_bytes(b.clone());
                    while check.next_frame().unwrap().is_some() {}
                    assert_eq!(check.buffered(), 0, "a partial frame was handed out");
                    d.push_bytes(b);
                    while let Some(f) = d.next_frame().unwrap() {
                        got.push(f);
                    }
                }
            }
            assert_eq!(got, bodies[..4], "split at {i}");
        }
    }

    #[test]
    fn a_large_frame_lands_in_one_allocation_and_is_not_copied() {
        let body: Vec<u8> = (0..3 * READ_SIZE + 17).map(|i| i as u8).collect();
        let mut s = frame(&body);
        s.extend(frame(b"next"));
        for slices in [true, false] {
            let mut rb = ReadBuffer::framed(1 << 20);
            let mut d = FrameDecoder::new(1 << 20);
            let mut at = 0;
            let mut got = vec![];
            while at < s.len() {
                let n = if slices {
                    let room = rb.spare();
                    let n = room.len().min(4096).min(s.len() - at);
                    room[..n].copy_from_slice(&s[at..at + n]);
                    n
                } else {
                    let mut buf = rb.buf_for_read();
                    let n = buf.remaining_mut().min(4096).min(s.len() - at);
                    buf.put_slice(&s[at..at + n]);
                    n
                };
                at += n;
                rb.did_read(n);
                if let Some(b) = rb.take() {
                    let range = b.as_ptr() as usize..b.as_ptr() as usize + b.len();
                    d.push_bytes(b);
                    while let Some(f) = d.next_frame().unwrap() {
                        assert!(range.contains(&(f.as_ptr() as usize)), "frame was copied");
                        got.push(f);
                    }
                }
            }
            assert_eq!(got, vec![&body[..], b"next"]);
        }
    }

    #[test]
    fn room_is_bounded_by_the_pending_frame_plus_one_read() {
        let mut rb = ReadBuffer::framed(10 * READ_SIZE);
        assert_eq!(rb.spare().len(), READ_SIZE);
        let size = 5 * READ_SIZE as i32;
        rb.spare()[..4].copy_from_slice(&size.to_be_bytes());
        rb.did_read(4);
        assert!(rb.take().is_none());
        // Room for the rest of the frame, no more.
        assert_eq!(rb.spare().len(), 5 * READ_SIZE);
        assert_eq!(rb.buf_for_read().remaining_mut(), 5 * READ_SIZE);
        // One allocation for the frame, not a doubled one.
        assert!(rb.buf_for_read().get_ref().capacity() <= 5 * READ_SIZE + 4);
    }

    /// Feeds `s` through `rb` in reads of at most `piece` bytes and returns the frames.
    fn read_all(rb: &mut ReadBuffer, s: &[u8], piece: usize, slices: bool) -> Vec<Bytes> {
        run(s, piece, rb, slices).0
    }

    #[test]
    fn allocations_are_reused_once_no_frame_refers_to_them() {
        let big: Vec<u8> = (0..4 * READ_SIZE + 3).map(|i| (i % 251) as u8).collect();
        for slices in [true, false] {
            let mut rb = ReadBuffer::framed(1 << 24);
            let first = read_all(&mut rb, &frame(&big), 10_000, slices);
            assert_eq!(first, vec![&big[..]]);
            let at = first[0].as_ptr();
            // Held: the next frame must not land in (or overwrite) the same allocation.
            let other: Vec<u8> = big.iter().map(|b| b ^ 0xff).collect();
            let second = read_all(&mut rb, &frame(&other), 10_000, slices);
            assert_eq!(second, vec![&other[..]]);
            assert_ne!(second[0].as_ptr(), at);
            assert_eq!(first, vec![&big[..]], "a held frame was overwritten");
            // Dropped: its allocation comes back, the first read included (no copy of it).
            drop(first);
            let third = read_all(&mut rb, &frame(&big), 10_000, slices);
            assert_eq!(third, vec![&big[..]]);
            assert_eq!(third[0].as_ptr(), at, "slices {slices}");
            assert!(rb.retained.len() <= RETAINED);
        }
    }

    #[test]
    fn reuse_keeps_small_frames_and_partial_reads_intact() {
        // Many frames of mixed sizes, read in odd pieces, with some frames dropped and some
        // held: every frame comes out as sent, whatever allocation it landed in.
        let mut bodies = vec![];
        let mut s = vec![];
        for i in 0..40usize {
            let len = [3, 70_000, 0, 300_000, 17, 150_000][i % 6] + i;
            let body: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
            s.extend(frame(&body));
            bodies.push(body);
        }
        for slices in [true, false] {
            for piece in [1000, 40_000, READ_SIZE + 1, usize::MAX] {
                let mut rb = ReadBuffer::framed(1 << 24);
                let mut held = vec![];
                let mut next = 0;
                for (k, chunk) in s.chunks(s.len() / 5 + 1).enumerate() {
                    // A frame split between two chunks comes out with the second.
                    for f in read_all(&mut rb, chunk, piece, slices) {
                        assert_eq!(f, bodies[next], "frame {next}");
                        if k % 2 == 0 {
                            held.push((next, f));
                        }
                        next += 1;
                    }
                }
                assert_eq!(next, bodies.len());
                // Held frames were not overwritten by later reads into reused allocations.
                for (i, f) in &held {
                    assert_eq!(f, &bodies[*i], "held frame {i}");
                }
                assert!(rb.retained.len() <= RETAINED);
                let bytes: usize = rb.retained.iter().map(|r| r.capacity).sum();
                assert!(bytes <= RETAINED_BYTES);
            }
        }
    }

    #[test]
    fn oversize_prefix_allocates_nothing_and_hands_bytes_to_the_decoder() {
        for bad in [1_000_000_000i32, -1] {
            let mut rb = ReadBuffer::framed(1000);
            let mut bytes = frame(b"ok");
            bytes.extend(bad.to_be_bytes());
            bytes.extend([0; 10]);
            let room = rb.spare();
            room[..bytes.len()].copy_from_slice(&bytes);
            rb.did_read(bytes.len());
            assert!(!rb.is_framing());
            assert!(rb.spare().len() <= READ_SIZE);
            let b = rb.take().unwrap();
            assert_eq!(b.len(), bytes.len());
            let mut d = FrameDecoder::new(1000);
            d.push_bytes(b);
            assert_eq!(d.next_frame().unwrap().unwrap(), &b"ok"[..]);
            assert!(d.next_frame().is_err());
        }
    }

    #[test]
    fn unframed_hands_out_every_read_as_it_is() {
        // A TLS record header read as a size prefix would claim ~370 MB.
        let tls = [0x16, 0x03, 0x03, 0x00, 0x7a, 1, 2, 3];
        {
            let mut rb = ReadBuffer::unframed();
            for (i, b) in tls.iter().enumerate() {
                let room = rb.spare();
                assert!(room.len() <= READ_SIZE);
                room[0] = *b;
                rb.did_read(1);
                assert_eq!(rb.take().unwrap(), &tls[i..=i]);
            }
        }
        let mut rb = ReadBuffer::unframed();
        let mut buf = rb.buf_for_read();
        assert_eq!(buf.remaining_mut(), READ_SIZE);
        buf.put_slice(&tls);
        rb.did_read(tls.len());
        assert_eq!(rb.take().unwrap(), &tls[..]);
        assert!(rb.take().is_none());
    }

    #[test]
    fn sockets_frame_reads_only_without_tls() {
        use crate::config::{CommonConfig, SecurityProtocol};
        use crate::driver::SocketOptions;
        for (protocol, framed) in [
            (SecurityProtocol::Plaintext, true),
            (SecurityProtocol::SaslPlaintext, true),
            (SecurityProtocol::Ssl, false),
            (SecurityProtocol::SaslSsl, false),
        ] {
            let mut config = CommonConfig::default();
            config.security_protocol = protocol;
            config.max_response_size = 12345;
            let framing = SocketOptions::from_config(&config).read_framing;
            assert_eq!(framing, framed.then_some(12345), "{protocol:?}");
            assert_eq!(ReadBuffer::with(framing).is_framing(), framed);
        }
    }
}
