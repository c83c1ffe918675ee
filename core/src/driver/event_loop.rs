//! The one event loop every socket driver runs: [`run`], generic over a small [`Runtime`]
//! trait that supplies what differs between runtimes (a clock, a timer, starting and closing a
//! connection). The connection table, draining the core after every input, input batching,
//! shutdown and close-after-flush live here, once; tokio, smol and the blocking driver each
//! implement [`Runtime`] in about a hundred lines.
//!
//! The loop follows the driving contract of [`crate::network`]: it drains
//! [`ClientCore::poll_output`] after every input, sleeps until the earlier of the core's and
//! the handler's deadline ([`next_deadline`]) or the next input, and after an input wakes it
//! takes what is already queued (I/O and commands, up to [`BATCH`]) before sleeping again,
//! with the time read once for the batch.

use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_channel::mpsc::{self, TryRecvError};
use futures_core::Stream;

use super::{next_deadline, CommandReceiver, Handler, OpenWriters, SocketOptions};
use crate::network::{ClientCore, CloseReason, ConnId, Output};

/// How many inputs already queued one loop turn takes before it sleeps again.
pub const BATCH: usize = 64;

/// How long a connection the core closed may take to write what the core queued before the
/// close (an acks=0 request the core already reported as sent, a LeaveGroup) before the
/// runtime cuts it off.
pub const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// What differs between runtimes. The loop owns one value of it.
pub trait Runtime: Send + 'static {
    /// A timer that can be set to an instant again and again.
    type Timer: Send;
    /// A running connection, as [`Runtime::connect`] started it.
    type Conn: Send;

    /// The current time (the loop reads the clock through this, never directly).
    fn now(&self) -> Instant;

    /// A timer that is not set.
    fn timer(&self) -> Self::Timer;

    /// Sets `timer` to fire at `at` (replacing what it was set to).
    fn set_timer(&self, timer: &mut Self::Timer, at: Instant);

    /// Whether `timer` has fired since it was last set. The loop polls a timer only while it
    /// is set, and sets it again before polling after it fired.
    fn poll_timer(&self, timer: &mut Self::Timer, cx: &mut Context<'_>) -> Poll<()>;

    /// Starts a connection: resolve `start.host` (the runtime may block a thread of its own on
    /// the lookup, never the loop), connect with `start.socket`'s options, count the
    /// connection's writer in `start.writers` from before reporting it up
    /// ([`OpenWriters::enter`]) until it ends, report [`IoSender::connected`] (or
    /// [`IoSender::closed`] with [`CloseReason::ConnectFailed`]), then hand every read chunk to
    /// [`IoSender::data`] and write every piece from [`Outgoing`] in order. When
    /// [`Outgoing`] ends (the core closed the connection), write what is queued and end the
    /// connection without reporting; when the socket fails or the peer closes, report
    /// [`IoSender::closed`].
    fn connect(&self, start: Connect) -> Self::Conn;

    /// The core closed `conn` and its [`Outgoing`] has ended: let it finish writing, but
    /// for no longer than [`CLOSE_LINGER`].
    fn close(&self, conn: Self::Conn);
}

/// What a connection reports to the loop.
#[derive(Debug)]
enum Io {
    Connected(ConnId),
    Data(ConnId, Bytes),
    Closed(ConnId, CloseReason),
}

/// A connection's way to report to the loop. Reports after the loop stopped go nowhere.
#[derive(Debug, Clone)]
pub struct IoSender {
    conn: ConnId,
    tx: mpsc::UnboundedSender<Io>,
}

impl IoSender {
    /// The connection is up (TCP connected; TLS runs inside the core).
    pub fn connected(&self) {
        let _ = self.tx.unbounded_send(Io::Connected(self.conn));
    }

    /// Bytes were read. Returns `false` once the loop has stopped (the reader may end).
    pub fn data(&self, data: Bytes) -> bool {
        self.tx.unbounded_send(Io::Data(self.conn, data)).is_ok()
    }

    /// The connection failed, the peer closed it, or it could not be opened.
    pub fn closed(&self, reason: CloseReason) {
        let _ = self.tx.unbounded_send(Io::Closed(self.conn, reason));
    }
}

/// The bytes the core asks to write on one connection, in order. Ends when the core closed
/// the connection (or the loop stopped).
#[derive(Debug)]
pub struct Outgoing(mpsc::UnboundedReceiver<Bytes>);

impl Outgoing {
    /// The next piece, waiting for it; `None` once the connection is closed and everything
    /// queued before the close was taken.
    pub async fn recv(&mut self) -> Option<Bytes> {
        poll_fn(|cx| Pin::new(&mut self.0).poll_next(cx)).await
    }

    /// The next piece if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Bytes> {
        self.0.try_recv().ok()
    }
}

/// Everything a runtime needs to start one connection.
#[derive(Debug)]
pub struct Connect {
    /// The host to resolve.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Socket options (buffer sizes, connect timeout, read framing).
    pub socket: SocketOptions,
    /// What to write.
    pub outgoing: Outgoing,
    /// Where to report.
    pub io: IoSender,
    /// The count the connection's writer is kept in while it runs.
    pub writers: OpenWriters,
}

/// A connection in the loop's table: the writer's queue and the runtime's connection.
struct Entry<K> {
    tx: mpsc::UnboundedSender<Bytes>,
    conn: K,
}

/// What woke the loop.
enum Wake<F> {
    Io(Io),
    Command(F),
    Stopped,
    Timer,
}

/// Drives `core` on `rt` until every command sender is dropped, handing its events to
/// `handler`; then runs [`Handler::on_shutdown`] and closes the remaining connections
/// gracefully (each within [`CLOSE_LINGER`]).
///
/// Each connection's writer is counted in `writers` while it runs; give the handles' command
/// sender the same count ([`CommandSender::with_writers`](super::CommandSender::with_writers))
/// so that `close` waits for what is still being written.
pub async fn run<R, C, H>(
    rt: R,
    mut core: C,
    mut handler: H,
    mut cmds: CommandReceiver<C, H>,
    socket: SocketOptions,
    writers: OpenWriters,
) where
    R: Runtime,
    C: ClientCore,
    H: Handler<C>,
{
    let (io_tx, mut io_rx) = mpsc::unbounded();
    let mut table = Table {
        rt,
        conns: HashMap::new(),
        socket,
        writers,
        io_tx,
    };
    let mut timer = table.rt.timer();
    // The deadline `timer` is set to; `None` when nothing is due (the timer is not polled).
    let mut armed: Option<Instant> = None;
    let mut now = table.rt.now();
    'outer: loop {
        table.drain(&mut core, &mut handler, now);
        let deadline = next_deadline(&core, &handler);
        if deadline != armed {
            if let Some(at) = deadline {
                table.rt.set_timer(&mut timer, at);
            }
            armed = deadline;
        }
        let rt = &table.rt;
        // I/O first, then commands, then the timer: responses free memory and complete work
        // that commands may be waiting for.
        let woke = poll_fn(|cx| {
            if let Poll::Ready(Some(io)) = Pin::new(&mut io_rx).poll_next(cx) {
                return Poll::Ready(Wake::Io(io));
            }
            match Pin::new(&mut cmds).poll_next(cx) {
                Poll::Ready(Some(f)) => return Poll::Ready(Wake::Command(f)),
                Poll::Ready(None) => return Poll::Ready(Wake::Stopped),
                Poll::Pending => {}
            }
            if armed.is_some() && rt.poll_timer(&mut timer, cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
            Poll::Pending
        })
        .await;
        now = table.rt.now();
        match woke {
            Wake::Io(io) => table.handle_io(&mut core, io, now),
            Wake::Command(f) => f(&mut core, &mut handler, now),
            Wake::Stopped => break,
            Wake::Timer => {
                // Set again next turn even if the same deadline is named again.
                armed = None;
                if core.poll_timeout().is_some_and(|t| t <= now) {
                    core.handle_timeout(now);
                }
                handler.handle_timeout(&mut core, now);
                continue;
            }
        }
        // Take what is already queued before sleeping again, draining outputs after each.
        for _ in 0..BATCH {
            if let Ok(io) = io_rx.try_recv() {
                table.drain(&mut core, &mut handler, now);
                table.handle_io(&mut core, io, now);
                continue;
            }
            match cmds.try_recv() {
                Ok(f) => {
                    table.drain(&mut core, &mut handler, now);
                    f(&mut core, &mut handler, now);
                }
                Err(TryRecvError::Closed) => break 'outer,
                Err(TryRecvError::Empty) => break,
            }
        }
    }
    handler.on_shutdown(&mut core);
    // What the shutdown queued (a last Close, say) is carried out before the connections go.
    table.drain_io_only(&mut core);
    for (_, entry) in table.conns.drain() {
        drop(entry.tx);
        table.rt.close(entry.conn);
    }
}

/// The loop's connections and what it needs to start more.
struct Table<R: Runtime> {
    rt: R,
    conns: HashMap<ConnId, Entry<R::Conn>>,
    socket: SocketOptions,
    writers: OpenWriters,
    io_tx: mpsc::UnboundedSender<Io>,
}

impl<R: Runtime> Table<R> {
    /// Carries out everything the core asks for, until it has nothing more.
    fn drain<C: ClientCore, H: Handler<C>>(&mut self, core: &mut C, handler: &mut H, now: Instant) {
        while let Some(out) = core.poll_output() {
            if let Some(event) = self.act(out) {
                handler.on_event(core, event, now);
            }
        }
    }

    /// [`Table::drain`] after the handler is gone: events are dropped.
    fn drain_io_only<C: ClientCore>(&mut self, core: &mut C) {
        while let Some(out) = core.poll_output() {
            let _ = self.act(out);
        }
    }

    /// Carries out one output; an event is handed back for the handler.
    fn act<E>(&mut self, out: Output<E>) -> Option<E> {
        match out {
            Output::Connect { conn, host, port } => {
                let (tx, rx) = mpsc::unbounded();
                let start = Connect {
                    host,
                    port,
                    socket: self.socket.clone(),
                    outgoing: Outgoing(rx),
                    io: IoSender {
                        conn,
                        tx: self.io_tx.clone(),
                    },
                    writers: self.writers.clone(),
                };
                let conn_handle = self.rt.connect(start);
                self.conns.insert(
                    conn,
                    Entry {
                        tx,
                        conn: conn_handle,
                    },
                );
            }
            Output::Transmit { conn, data } => {
                if let Some(entry) = self.conns.get(&conn) {
                    let _ = entry.tx.unbounded_send(data);
                }
            }
            Output::Close { conn } => {
                if let Some(entry) = self.conns.remove(&conn) {
                    // Ending the queue lets the writer finish what is queued, then close.
                    drop(entry.tx);
                    self.rt.close(entry.conn);
                }
            }
            Output::Event(event) => return Some(event),
        }
        None
    }

    fn handle_io<C: ClientCore>(&mut self, core: &mut C, io: Io, now: Instant) {
        match io {
            // A connection the core gave up on meanwhile ends by itself: its queue is closed.
            Io::Connected(conn) => {
                if self.conns.contains_key(&conn) {
                    core.handle_connected(conn, now);
                }
            }
            Io::Data(conn, data) => {
                if self.conns.contains_key(&conn) {
                    core.handle_bytes(conn, data, now);
                }
            }
            Io::Closed(conn, reason) => {
                if let Some(entry) = self.conns.remove(&conn) {
                    drop(entry.tx);
                    self.rt.close(entry.conn);
                    core.handle_closed(conn, reason, now);
                }
            }
        }
    }
}
