//! What is the blocking driver's in the event loop, as a [`Runtime`]: std sockets with a
//! reader thread and a writer thread per connection, and a loop thread that runs the generic
//! loop ([`kafkit_core::driver::run`]) under a small executor of its own, which parks the
//! thread until a connection or a handle wakes it or the loop's deadline comes.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Instant;

use kafkit_core::driver::event_loop::CLOSE_LINGER;
use kafkit_core::driver::{
    command_queue, CommandReceiver, CommandSender, Connect, Gather, Handler, OpenWriters, Runtime,
    SocketOptions,
};
use kafkit_core::network::{ClientCore, CloseReason, ReadBuffer};

/// The loop's one timer, shared by the runtime (which sets and polls it) and the executor
/// (which parks the thread until it is due).
#[derive(Debug, Default)]
struct TimerState {
    /// What the timer is set to.
    at: Option<Instant>,
    /// Set when the last poll found the timer not yet due: the executor parks until then.
    /// Taken by the executor after every poll, so a timer the loop stopped polling (nothing
    /// due any more) never wakes it.
    waiting: Option<Instant>,
}

#[derive(Debug, Clone, Default)]
struct SharedTimer(Arc<Mutex<TimerState>>);

impl SharedTimer {
    fn lock(&self) -> MutexGuard<'_, TimerState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The blocking [`Runtime`].
#[derive(Debug, Default)]
pub struct Blocking {
    timer: SharedTimer,
}

/// A connection's threads, as the loop holds them.
#[derive(Debug, Default)]
pub struct ConnThreads {
    /// A handle on the socket once connected, to bound the writer's last writes at close.
    stream: Mutex<Option<TcpStream>>,
    /// The loop closed the connection.
    closed: AtomicBool,
}

impl ConnThreads {
    fn stream(&self) -> MutexGuard<'_, Option<TcpStream>> {
        self.stream.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A peer that stops reading cannot hold the writer longer than [`CLOSE_LINGER`].
    fn bound_writes(stream: &TcpStream) {
        let _ = stream.set_write_timeout(Some(CLOSE_LINGER));
    }
}

impl Runtime for Blocking {
    type Timer = ();
    type Conn = Arc<ConnThreads>;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn timer(&self) {}

    fn set_timer(&self, _: &mut (), at: Instant) {
        self.timer.lock().at = Some(at);
    }

    fn poll_timer(&self, _: &mut (), _cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.timer.lock();
        match state.at {
            Some(at) if at <= Instant::now() => {
                state.at = None;
                Poll::Ready(())
            }
            Some(at) => {
                state.waiting = Some(at);
                Poll::Pending
            }
            None => Poll::Pending,
        }
    }

    fn connect(&self, start: Connect) -> Arc<ConnThreads> {
        let threads = Arc::new(ConnThreads::default());
        let mine = threads.clone();
        let io = start.io.clone();
        let spawned = std::thread::Builder::new()
            .name("kafkit-conn".into())
            .spawn(move || connection(start, &mine));
        if let Err(e) = spawned {
            io.closed(CloseReason::ConnectFailed(format!(
                "cannot start a connection thread: {e}"
            )));
        }
        threads
    }

    fn close(&self, conn: Arc<ConnThreads>) {
        conn.closed.store(true, Ordering::SeqCst);
        if let Some(stream) = conn.stream().as_ref() {
            ConnThreads::bound_writes(stream);
        }
    }
}

/// Runs the generic event loop (see [`kafkit_core::driver::run`]) on the calling thread until
/// every command sender is dropped.
pub fn run<C, H>(
    core: C,
    handler: H,
    cmds: CommandReceiver<C, H>,
    socket: SocketOptions,
    writers: OpenWriters,
) where
    C: ClientCore,
    H: Handler<C>,
{
    let rt = Blocking::default();
    let timer = rt.timer.clone();
    block_on(
        kafkit_core::driver::run(rt, core, handler, cmds, socket, writers),
        &timer,
    );
}

/// Starts the loop of `core` on a thread of its own named `name` and returns its command
/// sender, counting connection writers in `writers`.
pub(crate) fn spawn_loop<C, H>(
    name: &str,
    core: C,
    handler: H,
    socket: SocketOptions,
    writers: OpenWriters,
) -> CommandSender<C, H>
where
    C: ClientCore + Send + 'static,
    H: Handler<C>,
{
    let (tx, rx) = command_queue();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || run(core, handler, rx, socket, writers))
        .unwrap_or_else(|e| panic!("spawning the {name} thread: {e}"));
    tx
}

/// Wakes the loop thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `fut` on this thread until it completes, parking in between until a waker fires or
/// the timer the last poll waited for is due. Spurious unparks only cost a poll.
fn block_on(fut: impl Future<Output = ()>, timer: &SharedTimer) {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    while fut.as_mut().poll(&mut cx).is_pending() {
        let waiting = timer.lock().waiting.take();
        match waiting {
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                if !left.is_zero() {
                    std::thread::park_timeout(left);
                }
            }
            None => std::thread::park(),
        }
    }
}

/// One connection: connects (resolving the name on this thread), starts a reader thread and
/// writes on this one until the loop closes the connection or a write fails.
fn connection(start: Connect, threads: &ConnThreads) {
    let Connect {
        host,
        port,
        socket,
        mut outgoing,
        io,
        writers,
    } = start;
    let stream = match kafkit_os::connect_std(&host, port, &socket) {
        Ok(stream) => stream,
        Err(e) => return io.closed(CloseReason::ConnectFailed(e)),
    };
    let (mut reader, handle) = match (stream.try_clone(), stream.try_clone()) {
        (Ok(reader), Ok(handle)) => (reader, handle),
        (Err(e), _) | (_, Err(e)) => return io.closed(CloseReason::Io(e.to_string())),
    };
    {
        let mut slot = threads.stream();
        if threads.closed.load(Ordering::SeqCst) {
            ConnThreads::bound_writes(&handle);
        }
        *slot = Some(handle);
    }
    // Counted from before the core hears of the connection until the writer is done.
    let _running = writers.enter();
    io.connected();
    let reader_io = io.clone();
    let read_framing = socket.read_framing;
    let spawned = std::thread::Builder::new()
        .name("kafkit-conn-read".into())
        .spawn(move || {
            // Reads sized per frame on plaintext, handed over as whole frames: the core
            // slices them without copying (see `ReadBuffer`).
            let mut buf = ReadBuffer::with(read_framing);
            let reason = loop {
                match reader.read(buf.spare()) {
                    Ok(0) => break CloseReason::PeerClosed,
                    Ok(n) => {
                        buf.did_read(n);
                        if let Some(data) = buf.take() {
                            if !reader_io.data(data) {
                                return;
                            }
                        }
                    }
                    Err(e) => break CloseReason::Io(e.to_string()),
                }
            };
            reader_io.closed(reason);
        });
    if let Err(e) = spawned {
        let _ = stream.shutdown(Shutdown::Both);
        return io.closed(CloseReason::Io(format!(
            "cannot start a reader thread: {e}"
        )));
    }
    let mut writer = stream;
    // Every piece already queued goes out in one vectored write (see `Gather`).
    let mut out = Gather::new();
    'pieces: while let Some(piece) = futures_executor::block_on(outgoing.recv()) {
        out.push(piece);
        out.take_queued(|| outgoing.try_recv());
        while !out.is_empty() {
            let (slices, n) = out.io_slices();
            let written = writer.write_vectored(&slices[..n]);
            if let Err(e) = out.written(written) {
                io.closed(CloseReason::Io(e.to_string()));
                break 'pieces;
            }
        }
    }
    // The loop closed the connection (its queue ended) or a write failed: end the connection,
    // which also ends the reader thread.
    let _ = writer.shutdown(Shutdown::Both);
}
