//! Acceptors and connections: a reader thread (socket → TLS → frames → cluster thread) and a
//! writer thread (cluster thread → TLS → socket) per connection.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kafkit_core::network::FrameDecoder;

use super::cluster_thread::{Event, WriteMsg};
use super::{lock, ConnectionEvent, Shared};
use crate::cluster::FramePool;

/// What an acceptor needs.
pub(crate) struct AcceptCtx {
    pub broker: i32,
    pub shared: Arc<Shared>,
    pub events: Sender<Event>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub max_frame: usize,
}

/// Accepts connections until shutdown.
pub(crate) fn accept_loop(listener: TcpListener, ctx: AcceptCtx) {
    loop {
        let accepted = listener.accept();
        if ctx.shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(broker = ctx.broker, error = %e, "dev broker: accept failed");
                // EMFILE and friends: do not spin.
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
        };
        if let Err(e) = start_connection(&ctx, stream, peer) {
            tracing::warn!(broker = ctx.broker, %peer, error = %e, "dev broker: connection setup failed");
        }
        lock(&ctx.shared.threads).retain(|h| !h.is_finished());
    }
}

/// The transport of one connection.
enum Transport {
    Plain,
    Tls(Box<Mutex<rustls::ServerConnection>>),
}

/// A connection, shared by its reader and writer.
struct Conn {
    stream: Arc<TcpStream>,
    transport: Transport,
    /// The broker closed it (the reader's EOF is then not the client's doing).
    closed_by_broker: AtomicBool,
}

fn start_connection(ctx: &AcceptCtx, stream: TcpStream, peer: SocketAddr) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let transport = match &ctx.tls {
        None => Transport::Plain,
        Some(config) => match rustls::ServerConnection::new(config.clone()) {
            Ok(c) => Transport::Tls(Box::new(Mutex::new(c))),
            Err(e) => return Err(io::Error::other(e)),
        },
    };
    let conn_id = ctx.shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let stream = Arc::new(stream);
    let conn = Arc::new(Conn {
        stream: stream.clone(),
        transport,
        closed_by_broker: AtomicBool::new(false),
    });
    let (writer_tx, writer_rx) = mpsc::channel();
    lock(&ctx.shared.sockets).insert(conn_id, stream);
    ctx.shared.notify(&ConnectionEvent::Opened {
        broker: ctx.broker,
        conn: conn_id,
        peer,
    });
    // Opened goes out before the reader can send a frame for this connection.
    if ctx
        .events
        .send(Event::Opened {
            broker: ctx.broker,
            conn: conn_id,
            peer,
            writer: writer_tx,
        })
        .is_err()
    {
        lock(&ctx.shared.sockets).remove(&conn_id);
        let _ = conn.stream.shutdown(Shutdown::Both);
        return Ok(());
    }
    let reader = Reader {
        broker: ctx.broker,
        conn_id,
        peer,
        conn,
        events: ctx.events.clone(),
        shared: ctx.shared.clone(),
        max_frame: ctx.max_frame,
    };
    let handle = std::thread::Builder::new()
        .name(format!("dev-broker-conn-{conn_id}"))
        .spawn(move || reader.run(writer_rx));
    match handle {
        Ok(h) => {
            lock(&ctx.shared.threads).push(h);
            Ok(())
        }
        Err(e) => {
            let _ = ctx.events.send(Event::Closed {
                broker: ctx.broker,
                conn: conn_id,
            });
            lock(&ctx.shared.sockets).remove(&conn_id);
            Err(e)
        }
    }
}

/// The reading side of a connection; it starts the writing side and joins it at the end.
struct Reader {
    broker: i32,
    conn_id: u64,
    peer: SocketAddr,
    conn: Arc<Conn>,
    events: Sender<Event>,
    shared: Arc<Shared>,
    max_frame: usize,
}

impl Reader {
    fn run(self, writer_rx: Receiver<WriteMsg>) {
        let writer_conn = self.conn.clone();
        let pool = self.shared.frame_pool.clone();
        let writer = std::thread::Builder::new()
            .name(format!("dev-broker-write-{}", self.conn_id))
            .spawn(move || write_loop(&writer_conn, writer_rx, &pool));
        let reason = match writer {
            Ok(_) => self.read_loop(),
            Err(ref e) => format!("cannot start the writer thread: {e}"),
        };
        let _ = self.conn.stream.shutdown(Shutdown::Both);
        let _ = self.events.send(Event::Closed {
            broker: self.broker,
            conn: self.conn_id,
        });
        if let Ok(w) = writer {
            // The cluster thread drops the writer's channel on `Closed` (or at shutdown).
            let _ = w.join();
        }
        lock(&self.shared.sockets).remove(&self.conn_id);
        let reason = if self.shared.stopping.load(Ordering::SeqCst) {
            "shutdown".to_owned()
        } else if self.conn.closed_by_broker.load(Ordering::SeqCst) {
            "closed by the broker".to_owned()
        } else {
            reason
        };
        self.shared.notify(&ConnectionEvent::Closed {
            broker: self.broker,
            conn: self.conn_id,
            peer: self.peer,
            reason,
        });
    }

    /// Reads until the connection ends; returns why it ended.
    fn read_loop(&self) -> String {
        let mut decoder = FrameDecoder::new(self.max_frame);
        let mut buf = vec![0u8; 64 * 1024];
        let mut plain = Vec::new();
        loop {
            let n = match (&*self.conn.stream).read(&mut buf) {
                Ok(0) => return "closed by the client".to_owned(),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return format!("read failed: {e}"),
            };
            let eof = match &self.conn.transport {
                Transport::Plain => {
                    decoder.push(&buf[..n]);
                    false
                }
                Transport::Tls(tls) => {
                    plain.clear();
                    match tls_receive(tls, &self.conn.stream, &buf[..n], &mut plain) {
                        Ok(eof) => {
                            decoder.push(&plain);
                            eof
                        }
                        Err(e) => return e,
                    }
                }
            };
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => {
                        let sent = self.events.send(Event::Frame {
                            broker: self.broker,
                            conn: self.conn_id,
                            frame,
                        });
                        if sent.is_err() {
                            return "shutdown".to_owned();
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return format!("bad frame: {e}"),
                }
            }
            if eof {
                return "closed by the client (TLS close_notify)".to_owned();
            }
        }
    }
}

/// Feeds TLS records to rustls, appends the plaintext they held to `plain` and sends what
/// rustls wants sent (handshake messages, alerts). `Ok(true)`: the client closed the TLS
/// session. `Err`: a TLS or socket error, described.
fn tls_receive(
    tls: &Mutex<rustls::ServerConnection>,
    stream: &TcpStream,
    mut data: &[u8],
    plain: &mut Vec<u8>,
) -> Result<bool, String> {
    let mut tls = lock(tls);
    let mut eof = false;
    while !data.is_empty() {
        if let Err(e) = tls.read_tls(&mut data) {
            return Err(format!("TLS read failed: {e}"));
        }
        let state = match tls.process_new_packets() {
            Ok(s) => s,
            Err(e) => {
                // Send the alert rustls queued, then give up.
                let _ = tls_flush(&mut tls, stream);
                return Err(format!("TLS error: {e}"));
            }
        };
        let mut want = state.plaintext_bytes_to_read();
        if state.peer_has_closed() {
            eof = true;
        }
        while want > 0 {
            let start = plain.len();
            plain.resize(start + want, 0);
            match tls.reader().read(&mut plain[start..]) {
                Ok(k) => {
                    plain.truncate(start + k);
                    if k == 0 {
                        break;
                    }
                    want -= k.min(want);
                }
                Err(e) => {
                    plain.truncate(start);
                    if e.kind() != io::ErrorKind::WouldBlock {
                        return Err(format!("TLS read failed: {e}"));
                    }
                    break;
                }
            }
        }
    }
    tls_flush(&mut tls, stream).map_err(|e| format!("write failed: {e}"))?;
    Ok(eof)
}

/// Writes every TLS record rustls has ready.
fn tls_flush(tls: &mut rustls::ServerConnection, mut stream: &TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        tls.write_tls(&mut stream)?;
    }
    Ok(())
}

/// Sends `data` on the connection.
fn send(conn: &Conn, data: &[u8]) -> io::Result<()> {
    match &conn.transport {
        Transport::Plain => (&*conn.stream).write_all(data),
        Transport::Tls(tls) => {
            let mut tls = lock(tls);
            let mut rest = data;
            while !rest.is_empty() {
                let n = tls.writer().write(rest)?;
                tls_flush(&mut tls, &conn.stream)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "TLS session cannot take more data",
                    ));
                }
                rest = &rest[n..];
            }
            Ok(())
        }
    }
}

/// Sends `pieces` on the connection, in order: with vectored writes on a plain socket (the
/// stored batches a Fetch response refers to go from the log to the kernel), piece by piece
/// through TLS.
fn send_pieces(conn: &Conn, pieces: &[Bytes]) -> io::Result<()> {
    match &conn.transport {
        Transport::Plain => write_all_vectored(&*conn.stream, pieces),
        Transport::Tls(_) => pieces.iter().try_for_each(|p| send(conn, p)),
    }
}

/// The most slices one vectored write is given (Linux's `IOV_MAX`).
const MAX_IOVECS: usize = 1024;

/// Writes every byte of `pieces`, in order, with vectored writes.
fn write_all_vectored(mut out: impl Write, pieces: &[Bytes]) -> io::Result<()> {
    // The first piece not written in full, and how much of it is.
    let (mut first, mut offset) = (0, 0);
    let mut slices = Vec::with_capacity(pieces.len().min(MAX_IOVECS));
    while first < pieces.len() {
        if offset == pieces[first].len() {
            first += 1;
            offset = 0;
            continue;
        }
        let end = pieces.len().min(first + MAX_IOVECS);
        slices.clear();
        slices.push(IoSlice::new(&pieces[first][offset..]));
        slices.extend(pieces[first + 1..end].iter().map(|p| IoSlice::new(p)));
        let mut n = match out.write_vectored(&slices) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the socket took no bytes",
                ))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while n > 0 {
            let left = pieces[first].len() - offset;
            if n >= left {
                n -= left;
                first += 1;
                offset = 0;
            } else {
                offset += n;
                n = 0;
            }
        }
    }
    Ok(())
}

/// Writes what the cluster thread sends until it says close or goes away; then shuts the
/// socket down (which ends the reader).
fn write_loop(conn: &Conn, rx: Receiver<WriteMsg>, pool: &FramePool) {
    while let Ok(msg) = rx.recv() {
        match msg {
            WriteMsg::Data(pieces) => {
                if send_pieces(conn, &pieces).is_err() {
                    break;
                }
                for piece in pieces {
                    pool.give(piece);
                }
            }
            WriteMsg::Close => {
                conn.closed_by_broker.store(true, Ordering::SeqCst);
                if let Transport::Tls(tls) = &conn.transport {
                    let mut tls = lock(tls);
                    tls.send_close_notify();
                    let _ = tls_flush(&mut tls, &conn.stream);
                }
                break;
            }
        }
    }
    let _ = conn.stream.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `max` bytes per write, from at most 3 slices.
    struct Trickle {
        out: Vec<u8>,
        max: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(5) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let mut n = 0;
            for b in bufs.iter().take(3) {
                let k = b.len().min(self.max - n);
                self.out.extend_from_slice(&b[..k]);
                n += k;
            }
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn vectored_writes_send_every_piece_in_order_across_short_writes() {
        let pieces: Vec<Bytes> = (0..2500u32)
            .map(|i| Bytes::from(vec![(i % 251) as u8; (i % 7) as usize * 3]))
            .collect();
        let want: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
        for max in [1, 5, 64, 1 << 20] {
            let mut t = Trickle {
                out: Vec::new(),
                max,
                calls: 0,
            };
            write_all_vectored(&mut t, &pieces).unwrap();
            assert_eq!(t.out, want, "max {max}");
        }
        let mut full = Trickle {
            out: Vec::new(),
            max: 0,
            calls: 0,
        };
        let err = write_all_vectored(&mut full, &pieces).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WriteZero);
    }
}
