//! What is smol's in the event loop: async-io's clock, timer and sockets and smol's tasks, as
//! a [`Runtime`]. The loop itself is [`kafkit_core::driver::run`].

use std::future::Future;
use std::net::TcpStream;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::{Async, Timer};
use futures_util::{select, FutureExt};
use kafkit_core::driver::event_loop::CLOSE_LINGER;
use kafkit_core::driver::{
    CommandReceiver, Connect, Gather, Handler, OpenWriters, Runtime, SocketOptions,
};
use kafkit_core::network::{ClientCore, CloseReason, ReadBuffer};
use smol::io::{AsyncReadExt, AsyncWriteExt};

/// The smol [`Runtime`]: one task per connection on smol's executor, async-io's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Smol;

impl Runtime for Smol {
    type Timer = Timer;
    type Conn = smol::Task<()>;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn timer(&self) -> Timer {
        Timer::never()
    }

    fn set_timer(&self, timer: &mut Timer, at: Instant) {
        timer.set_at(at);
    }

    fn poll_timer(&self, timer: &mut Timer, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(timer).poll(cx).map(|_| ())
    }

    fn connect(&self, start: Connect) -> smol::Task<()> {
        smol::spawn(connection(start))
    }

    /// A peer that stops reading cannot hold the task longer than [`CLOSE_LINGER`] (dropping
    /// a smol task cancels it).
    fn close(&self, task: smol::Task<()>) {
        smol::spawn(async move {
            smol::future::or(task, async {
                Timer::after(CLOSE_LINGER).await;
            })
            .await;
        })
        .detach();
    }
}

/// The generic event loop on smol (see [`kafkit_core::driver::run`]): drives `core` until
/// every command sender is dropped, handing its events to `handler`. Spawn it as a task.
pub async fn run<C, H>(
    core: C,
    handler: H,
    cmds: CommandReceiver<C, H>,
    socket: SocketOptions,
    writers: OpenWriters,
) where
    C: ClientCore,
    H: Handler<C>,
{
    kafkit_core::driver::run(Smol, core, handler, cmds, socket, writers).await
}

/// Resolves and connects on smol's blocking-thread pool (see [`kafkit_os::connect_std`]);
/// the core bounds the wait with its own setup timeout.
async fn connect(
    host: String,
    port: u16,
    opts: &SocketOptions,
) -> Result<Async<TcpStream>, String> {
    let opts = opts.clone();
    let stream = smol::unblock(move || kafkit_os::connect_std(&host, port, &opts)).await?;
    Async::new(stream).map_err(|e| e.to_string())
}

async fn connection(start: Connect) {
    let Connect {
        host,
        port,
        socket,
        mut outgoing,
        io,
        writers,
    } = start;
    let stream = match connect(host, port, &socket).await {
        Ok(s) => s,
        Err(e) => return io.closed(CloseReason::ConnectFailed(e)),
    };
    // Counted from before the core hears of the connection until this task ends (or is
    // cut off after CLOSE_LINGER): `close` waits for it.
    let _running = writers.enter();
    io.connected();
    // `&Async<TcpStream>` reads and writes, so both halves borrow the one stream.
    let (mut rd, mut wr) = (&stream, &stream);
    let reader = async {
        // Reads sized per frame on plaintext, handed over as whole frames: the core slices
        // them without copying (see `ReadBuffer`).
        let mut buf = ReadBuffer::with(socket.read_framing);
        loop {
            match rd.read(buf.spare()).await {
                Ok(0) => return CloseReason::PeerClosed,
                Ok(n) => {
                    buf.did_read(n);
                    if let Some(data) = buf.take() {
                        io.data(data);
                    }
                }
                Err(e) => return CloseReason::Io(e.to_string()),
            }
        }
    };
    let writer = async {
        // Every piece already queued goes out in one vectored write (see `Gather`).
        let mut out = Gather::new();
        while let Some(piece) = outgoing.recv().await {
            out.push(piece);
            out.take_queued(|| outgoing.try_recv());
            while !out.is_empty() {
                let written = {
                    let (slices, n) = out.io_slices();
                    wr.write_vectored(&slices[..n]).await
                };
                if let Err(e) = out.written(written) {
                    return Some(CloseReason::Io(e.to_string()));
                }
            }
        }
        // The core dropped the connection: nothing to report.
        None
    };
    select! {
        reason = reader.fuse() => io.closed(reason),
        failed = writer.fuse() => if let Some(reason) = failed { io.closed(reason) },
    }
}
