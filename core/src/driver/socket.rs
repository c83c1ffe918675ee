use std::time::Duration;

use crate::config::CommonConfig;

/// What a driver applies to every socket it opens, from the client configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    /// `send_buffer_bytes` (`None`: the OS default).
    pub send_buffer: Option<u32>,
    /// `receive_buffer_bytes` (`None`: the OS default).
    pub receive_buffer: Option<u32>,
    /// The longest a blocking connect may hold its thread
    /// (`socket_connection_setup_timeout_max_ms`); the core enforces its own setup timeout
    /// regardless.
    pub connect_timeout: Duration,
    /// `Some(max_response_size)` when the stream carries Kafka frames in the clear
    /// (`PLAINTEXT`, `SASL_PLAINTEXT`): the driver may then size its reads per frame and hand
    /// the core whole frames ([`crate::network::ReadBuffer::with`]). `None` with TLS, whose
    /// ciphertext the driver cannot frame.
    pub read_framing: Option<usize>,
}

impl SocketOptions {
    /// The socket settings of a configuration.
    pub fn from_config(config: &CommonConfig) -> Self {
        SocketOptions {
            send_buffer: config.send_buffer_bytes,
            receive_buffer: config.receive_buffer_bytes,
            connect_timeout: Duration::from_millis(config.socket_connection_setup_timeout_max_ms),
            read_framing: (!config.security_protocol.uses_tls())
                .then_some(config.max_response_size as usize),
        }
    }
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions::from_config(&CommonConfig::default())
    }
}

/// Most pieces one vectored write takes (well under every platform's `IOV_MAX`).
pub const GATHER_MAX_PIECES: usize = 64;

/// Bytes after which no further piece is gathered for the same write.
const GATHER_MAX_BYTES: usize = 4 * 1024 * 1024;

/// The outgoing pieces a connection's writer has taken from the core's queue and not yet
/// written, for one vectored write at a time.
///
/// The core hands a request frame to the driver as one or more pieces
/// ([`crate::network::Output::Transmit`]; a Produce request's record batches are pieces of
/// their own, shared rather than copied). A writer takes every piece already queued (up to
/// [`GATHER_MAX_PIECES`] and a few MiB), writes them with one `write_vectored`, and calls
/// [`Gather::advance`] with what the socket took, until [`Gather::is_empty`]; so more pieces
/// never mean more system calls. Order is kept: pieces go out exactly as they were pushed.
#[derive(Debug, Default)]
pub struct Gather {
    pieces: std::collections::VecDeque<bytes::Bytes>,
    bytes: usize,
}

impl Gather {
    /// An empty gather.
    pub fn new() -> Self {
        Gather::default()
    }

    /// Takes pieces from `next` (a channel's `try_recv`) while it has some and the bounds
    /// allow.
    pub fn take_queued(&mut self, mut next: impl FnMut() -> Option<bytes::Bytes>) {
        while self.wants_more() {
            match next() {
                Some(piece) => self.push(piece),
                None => return,
            }
        }
    }

    /// Accounts for the result of a write of [`Gather::io_slices`]: drops what was written;
    /// a write that took nothing is [`std::io::ErrorKind::WriteZero`] (as `write_all`
    /// reports it), `Interrupted` is nothing written, any other error is returned.
    pub fn written(&mut self, result: std::io::Result<usize>) -> std::io::Result<()> {
        match result {
            Ok(0) => Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                self.advance(n);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether another queued piece should be taken before writing.
    pub fn wants_more(&self) -> bool {
        self.pieces.len() < GATHER_MAX_PIECES && self.bytes < GATHER_MAX_BYTES
    }

    /// Adds the next piece of the stream (empty pieces are dropped).
    pub fn push(&mut self, piece: bytes::Bytes) {
        if !piece.is_empty() {
            self.bytes += piece.len();
            self.pieces.push_back(piece);
        }
    }

    /// Nothing is left to write.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Bytes left to write.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// The pieces left, in order, as slices for one vectored write: the first `n` of the
    /// returned array, `n` being the second value (at most [`GATHER_MAX_PIECES`]).
    pub fn io_slices(&self) -> ([std::io::IoSlice<'_>; GATHER_MAX_PIECES], usize) {
        let mut slices = [std::io::IoSlice::new(&[]); GATHER_MAX_PIECES];
        let mut n = 0;
        for (slot, piece) in slices.iter_mut().zip(&self.pieces) {
            *slot = std::io::IoSlice::new(piece);
            n += 1;
        }
        (slices, n)
    }

    /// Drops the first `written` bytes (what a write reported it took).
    pub fn advance(&mut self, mut written: usize) {
        debug_assert!(written <= self.bytes);
        self.bytes -= written.min(self.bytes);
        while written > 0 {
            let Some(front) = self.pieces.front_mut() else {
                return;
            };
            if written < front.len() {
                bytes::Buf::advance(front, written);
                return;
            }
            written -= front.len();
            self.pieces.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use bytes::Bytes;

    use super::*;

    /// A sink that takes at most `limit` bytes per write, across slices.
    struct Trickle {
        out: Vec<u8>,
        limit: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.write_vectored(&[std::io::IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
            self.calls += 1;
            let mut took = 0;
            for b in bufs {
                let n = b.len().min(self.limit - took);
                self.out.extend_from_slice(&b[..n]);
                took += n;
                if took == self.limit {
                    break;
                }
            }
            Ok(took)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn drain(g: &mut Gather, sink: &mut Trickle) {
        while !g.is_empty() {
            let (slices, n) = g.io_slices();
            let wrote = sink.write_vectored(&slices[..n]).unwrap();
            g.advance(wrote);
        }
    }

    #[test]
    fn partial_writes_resume_mid_piece_and_keep_the_order() {
        let pieces: Vec<Bytes> = (0..10u8)
            .map(|i| Bytes::from(vec![i; 1 + 37 * i as usize]))
            .collect();
        let want: Vec<u8> = pieces.iter().flat_map(|p| p.to_vec()).collect();
        for limit in [1, 7, 100, 1000, 1 << 20] {
            let mut g = Gather::new();
            for p in &pieces {
                g.push(p.clone());
                g.push(Bytes::new());
            }
            assert_eq!(g.len(), want.len());
            let mut sink = Trickle {
                out: Vec::new(),
                limit,
                calls: 0,
            };
            drain(&mut g, &mut sink);
            assert_eq!(sink.out, want, "limit {limit}");
            assert_eq!(g.len(), 0);
            if limit >= want.len() {
                assert_eq!(sink.calls, 1, "everything in one vectored write");
            }
        }
    }

    #[test]
    fn write_results_are_accounted_like_write_all() {
        let mut g = Gather::new();
        g.take_queued({
            let mut left = vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cde")];
            move || left.pop()
        });
        assert_eq!(g.len(), 5);
        let interrupted = std::io::Error::from(std::io::ErrorKind::Interrupted);
        assert!(g.written(Err(interrupted)).is_ok());
        assert_eq!(g.len(), 5, "an interrupted write wrote nothing");
        let zero = g.written(Ok(0)).unwrap_err();
        assert_eq!(zero.kind(), std::io::ErrorKind::WriteZero);
        assert!(g.written(Ok(4)).is_ok());
        let (slices, n) = g.io_slices();
        assert_eq!(
            (n, &*slices[0]),
            (1, &b"b"[..]),
            "cde then ab, minus 4 bytes"
        );
        let refused = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(
            g.written(Err(refused)).unwrap_err().kind(),
            std::io::ErrorKind::BrokenPipe
        );
    }

    #[test]
    fn stops_gathering_at_the_piece_bound_and_writes_the_rest_after() {
        let mut g = Gather::new();
        let mut pushed = 0;
        while g.wants_more() {
            g.push(Bytes::from(vec![pushed as u8; 3]));
            pushed += 1;
        }
        assert_eq!(pushed, GATHER_MAX_PIECES);
        g.push(Bytes::from_static(b"late"));
        let mut sink = Trickle {
            out: Vec::new(),
            limit: usize::MAX / 2,
            calls: 0,
        };
        drain(&mut g, &mut sink);
        assert_eq!(sink.calls, 2, "64 slices, then the one left");
        assert!(sink.out.ends_with(b"late"));
        assert_eq!(sink.out.len(), 3 * GATHER_MAX_PIECES + 4);
    }
}
