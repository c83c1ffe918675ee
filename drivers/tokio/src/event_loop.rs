//! What is tokio's in the event loop: its clock, timer, sockets and tasks, as a
//! [`Runtime`]. The loop itself is [`kafkit_core::driver::run`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use kafkit_core::driver::event_loop::CLOSE_LINGER;
use kafkit_core::driver::{
    CommandReceiver, Connect, Gather, Handler, OpenWriters, Runtime, SocketOptions,
};
use kafkit_core::network::{ClientCore, CloseReason, ReadBuffer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// The tokio [`Runtime`]: one task per connection, tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

impl Runtime for Tokio {
    // One timer lives across turns and is reset only when the core's deadline changes.
    type Timer = Pin<Box<tokio::time::Sleep>>;
    type Conn = JoinHandle<()>;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn timer(&self) -> Self::Timer {
        Box::pin(tokio::time::sleep(Duration::ZERO))
    }

    fn set_timer(&self, timer: &mut Self::Timer, at: Instant) {
        timer.as_mut().reset(at.into());
    }

    fn poll_timer(&self, timer: &mut Self::Timer, cx: &mut Context<'_>) -> Poll<()> {
        timer.as_mut().poll(cx)
    }

    fn connect(&self, start: Connect) -> JoinHandle<()> {
        tokio::spawn(connection(start))
    }

    /// A peer that stops reading cannot hold the task longer than [`CLOSE_LINGER`].
    fn close(&self, mut task: JoinHandle<()>) {
        tokio::spawn(async move {
            if tokio::time::timeout(CLOSE_LINGER, &mut task).await.is_err() {
                task.abort();
            }
        });
    }
}

/// The generic event loop on tokio (see [`kafkit_core::driver::run`]): drives `core` until
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
    kafkit_core::driver::run(Tokio, core, handler, cmds, socket, writers).await
}

async fn connect(host: &str, port: u16, opts: &SocketOptions) -> Result<TcpStream, String> {
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = format!("{host} resolved to no address");
    for addr in addrs {
        let sock = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        };
        let attempt = async {
            let sock = sock?;
            if let Some(size) = opts.send_buffer {
                sock.set_send_buffer_size(size)?;
            }
            if let Some(size) = opts.receive_buffer {
                sock.set_recv_buffer_size(size)?;
            }
            let stream = sock.connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok::<_, std::io::Error>(stream)
        };
        match attempt.await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
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
    let stream = match connect(&host, port, &socket).await {
        Ok(s) => s,
        Err(e) => return io.closed(CloseReason::ConnectFailed(e)),
    };
    // Counted from before the core hears of the connection until this task ends (or is
    // cut off after CLOSE_LINGER): `close` waits for it.
    let _running = writers.enter();
    io.connected();
    let (mut rd, mut wr) = stream.into_split();
    let reader = async {
        // Reads sized per frame on plaintext, handed over as whole frames: the core slices
        // them without copying (see `ReadBuffer`).
        let mut buf = ReadBuffer::with(socket.read_framing);
        loop {
            match rd.read_buf(&mut buf.buf_for_read()).await {
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
    tokio::select! {
        reason = reader => io.closed(reason),
        failed = writer => if let Some(reason) = failed { io.closed(reason) },
    }
}
