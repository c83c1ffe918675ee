//! One client connection on a non-blocking socket: bytes in → (TLS →) requests out to the
//! cluster thread, replies in → (TLS →) bytes out. Driven by an I/O thread ([`super::sockets`]).
//!
//! A request's buffer grows with the bytes received, never to the size its prefix announces
//! up front; the announced size is charged to the shared [`Budget`] first, and a connection
//! whose request does not fit reads nothing more until it does.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use mio::net::TcpStream;

use super::budget::{Budget, Charge};
use super::cluster_thread::Event;
use crate::cluster::FramePool;

/// Stop reading from a connection while more than this many reply bytes wait to be written
/// (the client is not reading): what it sends would only pile up more replies.
const OUT_HIGH_WATER: usize = 4 << 20;

/// The most slices one vectored write is given (Linux's `IOV_MAX`).
const MAX_IOVECS: usize = 1024;

/// A request being received.
struct Partial {
    size: usize,
    buf: Vec<u8>,
    charge: Charge,
}

/// Why a connection must be closed.
pub(crate) type CloseReason = String;

/// One connection's state.
pub(crate) struct Conn {
    pub id: u64,
    pub broker: i32,
    pub peer: SocketAddr,
    pub stream: TcpStream,
    tls: Option<Box<rustls::ServerConnection>>,
    /// The size prefix of the next request, as far as it has arrived.
    head: [u8; 4],
    head_len: usize,
    /// The request whose prefix was admitted, as far as it has arrived.
    frame: Option<Partial>,
    /// Bytes read past the last request, not yet parsed (their charge alongside).
    stash: Vec<u8>,
    stash_charge: Option<Charge>,
    /// The next request does not fit the budget: wait for a release.
    pub waiting_for_memory: bool,
    /// When the unfinished request (prefix or body) began arriving (or was admitted, for a
    /// connection that waited for memory); `None` between requests.
    pub started: Option<Instant>,
    /// The socket may hold unread bytes (edge-triggered readiness: read until `WouldBlock`).
    pub readable: bool,
    /// Replies waiting to be written, the first `out_off` bytes of the front already written.
    out: VecDeque<Bytes>,
    out_off: usize,
    out_bytes: usize,
    /// The cluster closed the connection: close once the replies before it are written.
    pub closing: bool,
}

impl Conn {
    pub(crate) fn new(
        id: u64,
        broker: i32,
        peer: SocketAddr,
        stream: TcpStream,
        tls: Option<Box<rustls::ServerConnection>>,
    ) -> Conn {
        Conn {
            id,
            broker,
            peer,
            stream,
            tls,
            head: [0; 4],
            head_len: 0,
            frame: None,
            stash: Vec::new(),
            stash_charge: None,
            waiting_for_memory: false,
            started: None,
            readable: true,
            out: VecDeque::new(),
            out_off: 0,
            out_bytes: 0,
            closing: false,
        }
    }

    /// Whether reading now could make progress.
    pub(crate) fn wants_read(&self) -> bool {
        !self.closing && self.out_bytes < OUT_HIGH_WATER && (self.readable || self.has_stash())
    }

    fn has_stash(&self) -> bool {
        !self.stash.is_empty() || self.head_len == 4
    }

    /// Reads and parses up to `rounds` socket reads' worth of bytes; requests go to `events`.
    pub(crate) fn pump_read(
        &mut self,
        rounds: usize,
        scratch: &mut [u8],
        ctx: &ReadCtx<'_>,
    ) -> Result<(), CloseReason> {
        // Bytes already read go first.
        if self.has_stash() {
            let stash = std::mem::take(&mut self.stash);
            let used = self.feed(&stash, ctx)?;
            self.keep_stash(stash, used, ctx.budget);
            if self.waiting_for_memory {
                return Ok(());
            }
        }
        for _ in 0..rounds {
            if !self.readable || self.closing || self.out_bytes >= OUT_HIGH_WATER {
                break;
            }
            // Between requests, read only while the budget has room.
            if self.frame.is_none() && !ctx.budget.may_read() {
                self.waiting_for_memory = true;
                break;
            }
            let n = match self.stream.read(scratch) {
                Ok(0) => return Err("closed by the client".into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read failed: {e}")),
            };
            let (plain, eof) = match self.tls.as_mut() {
                None => (None, false),
                Some(tls) => {
                    let mut plain = Vec::new();
                    let eof = tls_receive(tls, &self.stream, &scratch[..n], &mut plain)?;
                    (Some(plain), eof)
                }
            };
            let data = plain.as_deref().unwrap_or(&scratch[..n]);
            let used = self.feed(data, ctx)?;
            if used < data.len() {
                self.stash = data[used..].to_vec();
                self.stash_charge = Some(ctx.budget.read_ahead(self.stash.len()));
            }
            if eof {
                return Err("closed by the client (TLS close_notify)".into());
            }
            if self.waiting_for_memory {
                break;
            }
        }
        Ok(())
    }

    /// Keeps what `feed` left of the stash (charged as it is).
    fn keep_stash(&mut self, mut stash: Vec<u8>, used: usize, budget: &Arc<Budget>) {
        if used == stash.len() {
            self.stash_charge = None;
            return;
        }
        stash.drain(..used);
        stash.shrink_to_fit();
        match self.stash_charge.as_mut() {
            Some(c) => c.shrink_to(stash.len()),
            None => self.stash_charge = Some(budget.read_ahead(stash.len())),
        }
        self.stash = stash;
    }

    /// Parses `data` into requests; returns how much it consumed (less than all when the next
    /// request must wait for memory).
    fn feed(&mut self, data: &[u8], ctx: &ReadCtx<'_>) -> Result<usize, CloseReason> {
        let mut i = 0;
        if self.head_len == 4 && self.frame.is_none() && !self.admit(ctx)? {
            return Ok(0);
        }
        while i < data.len() {
            if let Some(p) = self.frame.as_mut() {
                let take = (p.size - p.buf.len()).min(data.len() - i);
                grow(&mut p.buf, take, p.size);
                p.buf.extend_from_slice(&data[i..i + take]);
                i += take;
                if p.buf.len() == p.size {
                    self.complete(ctx)?;
                }
                continue;
            }
            if self.started.is_none() {
                self.started = Some(ctx.now);
            }
            let take = (4 - self.head_len).min(data.len() - i);
            self.head[self.head_len..self.head_len + take].copy_from_slice(&data[i..i + take]);
            self.head_len += take;
            i += take;
            if self.head_len == 4 && !self.admit(ctx)? {
                return Ok(i);
            }
        }
        Ok(i)
    }

    /// The prefix is whole: charges the request, or waits for memory (`false`).
    fn admit(&mut self, ctx: &ReadCtx<'_>) -> Result<bool, CloseReason> {
        let size = i32::from_be_bytes(self.head);
        if size < 0 || size as usize > ctx.max_frame {
            return Err(format!(
                "bad frame: frame size {size} is outside 0..={}",
                ctx.max_frame
            ));
        }
        let size = size as usize;
        let Some(charge) = ctx.budget.admit(size) else {
            self.waiting_for_memory = true;
            return Ok(false);
        };
        self.waiting_for_memory = false;
        self.head_len = 0;
        // The request-read timeout runs from here: waiting for memory is the broker's doing.
        self.started = Some(ctx.now);
        self.frame = Some(Partial {
            size,
            buf: Vec::new(),
            charge,
        });
        if size == 0 {
            self.complete(ctx)?;
        }
        Ok(true)
    }

    /// Hands the whole request to the cluster thread, its charge with it.
    fn complete(&mut self, ctx: &ReadCtx<'_>) -> Result<(), CloseReason> {
        let p = self.frame.take().expect("a request being received");
        self.started = None;
        let sent = ctx.events.send(Event::Frame {
            broker: self.broker,
            conn: self.id,
            frame: Bytes::from(p.buf),
            charge: p.charge,
        });
        sent.map_err(|_| "shutdown".to_owned())
    }

    /// Queues reply bytes.
    pub(crate) fn queue(&mut self, pieces: Vec<Bytes>) {
        for p in pieces {
            self.out_bytes += p.len();
            self.out.push_back(p);
        }
    }

    /// Writes queued replies until the socket takes no more. `Ok(true)`: everything is written.
    pub(crate) fn flush(&mut self, pool: &FramePool) -> Result<bool, CloseReason> {
        let r = if self.tls.is_some() {
            self.flush_tls(pool)
        } else {
            self.flush_plain(pool)
        };
        match r {
            Ok(done) => Ok(done),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(format!("write failed: {e}")),
        }
    }

    fn flush_plain(&mut self, pool: &FramePool) -> io::Result<bool> {
        while !self.out.is_empty() {
            let mut slices = Vec::with_capacity(self.out.len().min(MAX_IOVECS));
            slices.push(IoSlice::new(&self.out[0][self.out_off..]));
            slices.extend(
                self.out
                    .iter()
                    .skip(1)
                    .take(MAX_IOVECS - 1)
                    .map(|p| IoSlice::new(p)),
            );
            let written = self.stream.write_vectored(&slices);
            drop(slices);
            let n = match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.advance(n, pool);
        }
        Ok(true)
    }

    /// Marks `n` bytes written, giving fully written pieces back to the pool.
    fn advance(&mut self, mut n: usize, pool: &FramePool) {
        self.out_bytes -= n;
        while n > 0 {
            let left = self.out[0].len() - self.out_off;
            if n >= left {
                n -= left;
                self.out_off = 0;
                let piece = self.out.pop_front().expect("a piece");
                pool.give(piece);
            } else {
                self.out_off += n;
                n = 0;
            }
        }
        while self.out.front().is_some_and(|p| p.is_empty()) {
            self.out.pop_front();
        }
    }

    fn flush_tls(&mut self, pool: &FramePool) -> io::Result<bool> {
        loop {
            let tls = self.tls.as_mut().expect("TLS");
            while tls.wants_write() {
                tls.write_tls(&mut self.stream)?;
            }
            let Some(front) = self.out.front() else {
                return Ok(true);
            };
            let n = tls.writer().write(&front[self.out_off..])?;
            if n == 0 && !tls.wants_write() {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "TLS session cannot take more data",
                ));
            }
            self.advance(n, pool);
        }
    }

    /// Closes the socket: a TLS close_notify first when the broker closes it.
    pub(crate) fn shut(&mut self, by_broker: bool) {
        if let (true, Some(tls)) = (by_broker, self.tls.as_mut()) {
            tls.send_close_notify();
            while tls.wants_write() {
                if tls.write_tls(&mut self.stream).is_err() {
                    break;
                }
            }
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// What reading needs from the I/O thread.
pub(crate) struct ReadCtx<'a> {
    pub budget: &'a Arc<Budget>,
    pub events: &'a Sender<Event>,
    pub max_frame: usize,
    pub now: Instant,
}

/// Makes room for `extra` more bytes in a request buffer that ends at `size` bytes: at least
/// doubling (so growth costs O(size) copies) but never past `size`, and never ahead of the
/// bytes actually received by more than the buffer already holds.
fn grow(buf: &mut Vec<u8>, extra: usize, size: usize) {
    let need = buf.len() + extra;
    if need <= buf.capacity() {
        return;
    }
    let target = need.max(buf.capacity().saturating_mul(2)).min(size);
    buf.reserve_exact(target - buf.len());
}

/// Feeds TLS records to rustls, appends the plaintext they held to `plain` and sends what
/// rustls wants sent (handshake messages, alerts). `Ok(true)`: the client closed the TLS
/// session.
fn tls_receive(
    tls: &mut rustls::ServerConnection,
    mut stream: &TcpStream,
    mut data: &[u8],
    plain: &mut Vec<u8>,
) -> Result<bool, CloseReason> {
    let mut eof = false;
    while !data.is_empty() {
        if let Err(e) = tls.read_tls(&mut data) {
            return Err(format!("TLS read failed: {e}"));
        }
        let state = match tls.process_new_packets() {
            Ok(s) => s,
            Err(e) => {
                // Send the alert rustls queued, then give up.
                while tls.wants_write() {
                    if tls.write_tls(&mut stream).is_err() {
                        break;
                    }
                }
                return Err(format!("TLS error: {e}"));
            }
        };
        if state.peer_has_closed() {
            eof = true;
        }
        let want = state.plaintext_bytes_to_read();
        if want > 0 {
            let start = plain.len();
            plain.resize(start + want, 0);
            match tls.reader().read(&mut plain[start..]) {
                Ok(k) => plain.truncate(start + k),
                Err(e) => {
                    plain.truncate(start);
                    if e.kind() != io::ErrorKind::WouldBlock {
                        return Err(format!("TLS read failed: {e}"));
                    }
                }
            }
        }
    }
    // Handshake messages go out now; a full socket leaves them to the next flush.
    while tls.wants_write() {
        match tls.write_tls(&mut stream) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(format!("write failed: {e}")),
        }
    }
    Ok(eof)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_buffers_grow_with_the_bytes_received_up_to_the_announced_size() {
        let size = 100 << 20;
        let mut buf = Vec::new();
        grow(&mut buf, 120, size);
        buf.extend_from_slice(&[0; 120]);
        assert!(buf.capacity() < 4096, "{}", buf.capacity());
        for _ in 0..2000 {
            grow(&mut buf, 64 << 10, size);
            let n = (64 << 10).min(size - buf.len());
            buf.extend_from_slice(&vec![0; n]);
            assert!(buf.capacity() <= size);
            assert!(
                buf.capacity() <= 2 * buf.len(),
                "{} {}",
                buf.capacity(),
                buf.len()
            );
            if buf.len() == size {
                break;
            }
        }
        assert_eq!(buf.len(), size);
    }
}
