use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::Instant;

use bytes::Bytes;
use kafkit_core::driver::{
    CommandReceiver, Gather, Handler, OpenWriters, SocketOptions, TryRecvError,
};
use kafkit_core::network::{ClientCore, CloseReason, ConnId, Output, ReadBuffer};
use socket2::{Domain, Socket, Type};

/// What wakes the loop thread.
#[derive(Debug)]
pub enum Msg {
    /// A command was queued, or the last handle was dropped.
    Wake,
    /// A connection is up.
    Connected(ConnId, TcpStream),
    /// Bytes arrived.
    Data(ConnId, Bytes),
    /// A connection ended.
    Closed(ConnId, CloseReason),
}

struct Conn {
    writer: Option<mpsc::Sender<Bytes>>,
    stream: Option<TcpStream>,
}

/// The generic event loop on the calling thread: drives `core` until every command sender is
/// dropped, handing its events to `handler`. I/O threads report on `tx`/`rx`; commands are
/// announced by [`Msg::Wake`] and drained from `cmds`. Each connection's writer thread is
/// counted in `writers` while it runs (give the handles' command sender the same count, so
/// that `close` waits for them: [`kafkit_core::driver::CommandSender::settle`]).
pub fn run<C, H>(
    mut core: C,
    mut handler: H,
    mut cmds: CommandReceiver<C, H>,
    rx: mpsc::Receiver<Msg>,
    tx: mpsc::Sender<Msg>,
    socket: SocketOptions,
    writers: OpenWriters,
) where
    C: ClientCore,
    H: Handler<C>,
{
    let mut conns: HashMap<ConnId, Conn> = HashMap::new();
    let mut now = Instant::now();
    'outer: loop {
        drain(&mut core, &mut handler, &mut conns, &socket, &tx, now);
        let first = match kafkit_core::driver::next_deadline(&core, &handler) {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(msg) => Some(msg),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(msg) => Some(msg),
                Err(_) => break,
            },
        };
        now = Instant::now();
        let Some(first) = first else {
            if core.poll_timeout().is_some_and(|t| t <= now) {
                core.handle_timeout(now);
            }
            handler.handle_timeout(&mut core, now);
            continue;
        };
        // Take what is already queued (up to BATCH) before waiting again, with the time read
        // once for the batch and outputs drained after each input.
        let mut next = Some(first);
        for _ in 0..BATCH {
            let msg = match next.take() {
                Some(msg) => msg,
                None => match rx.try_recv() {
                    Ok(msg) => {
                        drain(&mut core, &mut handler, &mut conns, &socket, &tx, now);
                        msg
                    }
                    Err(_) => break,
                },
            };
            match msg {
                Msg::Wake => loop {
                    match cmds.try_recv() {
                        Ok(f) => f(&mut core, &mut handler, now),
                        Err(TryRecvError::Closed) => break 'outer,
                        Err(TryRecvError::Empty) => break,
                    }
                    drain(&mut core, &mut handler, &mut conns, &socket, &tx, now);
                },
                Msg::Connected(conn, stream) => match conns.get_mut(&conn) {
                    // The core gave up on this connection meanwhile.
                    None => {
                        let _ = stream.shutdown(Shutdown::Both);
                    }
                    Some(c) => match start_io(conn, &stream, &tx, socket.read_framing, &writers) {
                        Ok(writer) => {
                            c.writer = Some(writer);
                            c.stream = Some(stream);
                            core.handle_connected(conn, now);
                        }
                        Err(e) => {
                            conns.remove(&conn);
                            core.handle_closed(conn, CloseReason::Io(e.to_string()), now);
                        }
                    },
                },
                Msg::Data(conn, data) => core.handle_bytes(conn, data, now),
                Msg::Closed(conn, reason) => {
                    if let Some(c) = conns.remove(&conn) {
                        close(c);
                        core.handle_closed(conn, reason, now);
                    }
                }
            }
        }
    }
    handler.on_shutdown(&mut core);
    for (_, c) in conns {
        close(c);
    }
}

/// How many queued messages one loop turn takes before it waits on the channel again.
const BATCH: usize = 64;

/// Carries out everything the core asks for, until it has nothing more.
fn drain<C, H>(
    core: &mut C,
    handler: &mut H,
    conns: &mut HashMap<ConnId, Conn>,
    socket: &SocketOptions,
    tx: &mpsc::Sender<Msg>,
    now: Instant,
) where
    C: ClientCore,
    H: Handler<C>,
{
    while let Some(out) = core.poll_output() {
        match out {
            Output::Connect { conn, host, port } => {
                conns.insert(
                    conn,
                    Conn {
                        writer: None,
                        stream: None,
                    },
                );
                let tx = tx.clone();
                let socket = socket.clone();
                std::thread::spawn(move || {
                    let msg = match connect(&host, port, &socket) {
                        Ok(stream) => Msg::Connected(conn, stream),
                        Err(e) => Msg::Closed(conn, CloseReason::ConnectFailed(e)),
                    };
                    let _ = tx.send(msg);
                });
            }
            Output::Transmit { conn, data } => {
                if let Some(w) = conns.get(&conn).and_then(|c| c.writer.as_ref()) {
                    let _ = w.send(data);
                }
            }
            Output::Close { conn } => {
                if let Some(c) = conns.remove(&conn) {
                    close(c);
                }
            }
            Output::Event(event) => handler.on_event(core, event, now),
        }
    }
}

/// How long a closed connection may take to write what the core queued before it.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// Closes gracefully: the writer thread writes what is still queued (an acks=0 request the
/// core already reported as sent, a LeaveGroup) and then shuts the socket down, which ends
/// the reader thread. A peer that stops reading cannot hold it longer than [`CLOSE_LINGER`].
fn close(c: Conn) {
    match (c.stream, c.writer) {
        (Some(s), Some(writer)) => {
            let _ = s.set_write_timeout(Some(CLOSE_LINGER));
            drop(writer);
        }
        (Some(s), None) => {
            let _ = s.shutdown(Shutdown::Both);
        }
        _ => {}
    }
}

fn start_io(
    conn: ConnId,
    stream: &TcpStream,
    tx: &mpsc::Sender<Msg>,
    read_framing: Option<usize>,
    writers: &OpenWriters,
) -> std::io::Result<mpsc::Sender<Bytes>> {
    let mut reader = stream.try_clone()?;
    let mut writer = stream.try_clone()?;
    let (wtx, wrx) = mpsc::channel::<Bytes>();
    let rtx = tx.clone();
    std::thread::spawn(move || {
        // Reads sized per frame on plaintext, handed over as whole frames: the core slices
        // them without copying (see `ReadBuffer`).
        let mut buf = ReadBuffer::with(read_framing);
        let reason = loop {
            match reader.read(buf.spare()) {
                Ok(0) => break CloseReason::PeerClosed,
                Ok(n) => {
                    buf.did_read(n);
                    if let Some(data) = buf.take() {
                        if rtx.send(Msg::Data(conn, data)).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => break CloseReason::Io(e.to_string()),
            }
        };
        let _ = rtx.send(Msg::Closed(conn, reason));
    });
    let wtx_report = tx.clone();
    // Counted from before the core hears of the connection until the thread ends.
    let running = writers.enter();
    std::thread::spawn(move || {
        let _running = running;
        // Every piece already queued goes out in one vectored write (see `Gather`).
        let mut out = Gather::new();
        'pieces: while let Ok(piece) = wrx.recv() {
            out.push(piece);
            out.take_queued(|| wrx.try_recv().ok());
            while !out.is_empty() {
                let (slices, n) = out.io_slices();
                let written = writer.write_vectored(&slices[..n]);
                if let Err(e) = out.written(written) {
                    let _ = wtx_report.send(Msg::Closed(conn, CloseReason::Io(e.to_string())));
                    break 'pieces;
                }
            }
        }
        // The loop dropped the channel (a close) or a write failed: end the connection, which
        // also unblocks the reader thread.
        let _ = writer.shutdown(Shutdown::Both);
    });
    Ok(wtx)
}

fn connect(host: &str, port: u16, opts: &SocketOptions) -> Result<TcpStream, String> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = format!("{host} resolved to no address");
    for addr in addrs {
        let attempt = || -> std::io::Result<TcpStream> {
            let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
            if let Some(size) = opts.send_buffer {
                sock.set_send_buffer_size(size as usize)?;
            }
            if let Some(size) = opts.receive_buffer {
                sock.set_recv_buffer_size(size as usize)?;
            }
            sock.set_nodelay(true)?;
            sock.connect_timeout(&addr.into(), opts.connect_timeout)?;
            Ok(sock.into())
        };
        match attempt() {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}
