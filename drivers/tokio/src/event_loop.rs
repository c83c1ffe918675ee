use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use kafkit_core::driver::{
    CommandReceiver, Gather, Handler, OpenWriters, SocketOptions, TryRecvError,
};
use kafkit_core::network::{ClientCore, CloseReason, ConnId, Output, ReadBuffer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

enum Io {
    Connected(ConnId),
    Data(ConnId, Bytes),
    Closed(ConnId, CloseReason),
}

struct ConnTask {
    tx: mpsc::UnboundedSender<Bytes>,
    task: JoinHandle<()>,
}

/// How many inputs already queued one loop turn takes before it sleeps in `select!` again.
const BATCH: usize = 64;

/// The generic event loop: drives `core` until every command sender is dropped, handing its
/// events to `handler`. Follows the driving contract of `kafkit_core::network`: drain outputs
/// after every input, sleep until the core's next deadline or the next input.
///
/// One timer lives across turns and is reset only when the core's deadline changes; after an
/// input wakes the loop, what is already queued (I/O and commands, up to [`BATCH`]) is taken
/// without going back to `select!`, with the time read once for the batch.
///
/// Each connection's task is counted in `writers` from the moment it is connected until it
/// ends; give the handles' command sender the same count
/// ([`CommandSender::with_writers`](kafkit_core::driver::CommandSender::with_writers)) so that
/// `close` waits for what is still being written.
pub async fn run<C, H>(
    mut core: C,
    mut handler: H,
    mut cmds: CommandReceiver<C, H>,
    socket: SocketOptions,
    writers: OpenWriters,
) where
    C: ClientCore + Send + 'static,
    H: Handler<C>,
{
    let (io_tx, mut io_rx) = mpsc::unbounded_channel();
    let spawn = Spawn {
        socket,
        writers,
        io_tx,
    };
    let mut conns: HashMap<ConnId, ConnTask> = HashMap::new();
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    // The deadline `sleep` is set to; `None` when the core has none (the branch is disabled).
    let mut armed: Option<Instant> = None;
    let mut now = Instant::now();
    'outer: loop {
        drain(&mut core, &mut handler, &mut conns, &spawn, now);
        let deadline = kafkit_core::driver::next_deadline(&core, &handler);
        if deadline != armed {
            if let Some(at) = deadline {
                sleep.as_mut().reset(at.into());
            }
            armed = deadline;
        }
        tokio::select! {
            biased;
            io = io_rx.recv() => {
                now = Instant::now();
                handle_io(&mut core, &mut conns, io.expect("the loop holds a sender"), now);
            }
            cmd = cmds.next() => match cmd {
                Some(f) => {
                    now = Instant::now();
                    f(&mut core, &mut handler, now);
                }
                None => break,
            },
            () = &mut sleep, if armed.is_some() => {
                // Re-armed next turn even if the core names the same deadline again.
                armed = None;
                now = Instant::now();
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
                drain(&mut core, &mut handler, &mut conns, &spawn, now);
                handle_io(&mut core, &mut conns, io, now);
                continue;
            }
            match cmds.try_recv() {
                Ok(f) => {
                    drain(&mut core, &mut handler, &mut conns, &spawn, now);
                    f(&mut core, &mut handler, now);
                }
                Err(TryRecvError::Closed) => break 'outer,
                Err(TryRecvError::Empty) => break,
            }
        }
    }
    handler.on_shutdown(&mut core);
    for (_, c) in conns {
        close(c);
    }
}

/// What a new connection's task is started with.
struct Spawn {
    socket: SocketOptions,
    writers: OpenWriters,
    io_tx: mpsc::UnboundedSender<Io>,
}

/// Carries out everything the core asks for, until it has nothing more.
fn drain<C, H>(
    core: &mut C,
    handler: &mut H,
    conns: &mut HashMap<ConnId, ConnTask>,
    spawn: &Spawn,
    now: Instant,
) where
    C: ClientCore + Send + 'static,
    H: Handler<C>,
{
    while let Some(out) = core.poll_output() {
        match out {
            Output::Connect { conn, host, port } => {
                let (tx, rx) = mpsc::unbounded_channel();
                let task = tokio::spawn(connection(
                    conn,
                    host,
                    port,
                    spawn.socket.clone(),
                    rx,
                    spawn.io_tx.clone(),
                    spawn.writers.clone(),
                ));
                conns.insert(conn, ConnTask { tx, task });
            }
            Output::Transmit { conn, data } => {
                if let Some(c) = conns.get(&conn) {
                    let _ = c.tx.send(data);
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

fn handle_io<C: ClientCore>(
    core: &mut C,
    conns: &mut HashMap<ConnId, ConnTask>,
    io: Io,
    now: Instant,
) {
    match io {
        Io::Connected(conn) => core.handle_connected(conn, now),
        Io::Data(conn, data) => core.handle_bytes(conn, data, now),
        Io::Closed(conn, reason) => {
            conns.remove(&conn);
            core.handle_closed(conn, reason, now);
        }
    }
}

/// How long a closed connection may take to write what the core queued before it.
const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// Closes gracefully: dropping the sender lets the writer write what is still queued (an
/// acks=0 request the core already reported as sent, a LeaveGroup) and end the connection;
/// a peer that stops reading cannot hold the task longer than [`CLOSE_LINGER`].
fn close(c: ConnTask) {
    let ConnTask { tx, mut task } = c;
    drop(tx);
    tokio::spawn(async move {
        if tokio::time::timeout(CLOSE_LINGER, &mut task).await.is_err() {
            task.abort();
        }
    });
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

async fn connection(
    conn: ConnId,
    host: String,
    port: u16,
    opts: SocketOptions,
    mut outgoing: mpsc::UnboundedReceiver<Bytes>,
    io: mpsc::UnboundedSender<Io>,
    writers: OpenWriters,
) {
    let stream = match connect(&host, port, &opts).await {
        Ok(s) => s,
        Err(e) => {
            let _ = io.send(Io::Closed(conn, CloseReason::ConnectFailed(e)));
            return;
        }
    };
    // Counted from before the core hears of the connection until this task ends (or is
    // cut off after CLOSE_LINGER): `close` waits for it.
    let _running = writers.enter();
    let _ = io.send(Io::Connected(conn));
    let (mut rd, mut wr) = stream.into_split();
    let reader = async {
        // Reads sized per frame on plaintext, handed over as whole frames: the core slices
        // them without copying (see `ReadBuffer`).
        let mut buf = ReadBuffer::with(opts.read_framing);
        loop {
            match rd.read_buf(&mut buf.buf_for_read()).await {
                Ok(0) => return CloseReason::PeerClosed,
                Ok(n) => {
                    buf.did_read(n);
                    if let Some(data) = buf.take() {
                        let _ = io.send(Io::Data(conn, data));
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
            out.take_queued(|| outgoing.try_recv().ok());
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
        reason = reader => { let _ = io.send(Io::Closed(conn, reason)); }
        failed = writer => if let Some(reason) = failed { let _ = io.send(Io::Closed(conn, reason)); },
    }
}
