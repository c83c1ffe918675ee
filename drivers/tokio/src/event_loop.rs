use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use kafkit_core::driver::{CommandReceiver, Handler, SocketOptions};
use kafkit_core::network::{ClientCore, CloseReason, ConnId, Output};
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

/// The generic event loop: drives `core` until every command sender is dropped, handing its
/// events to `handler`. Follows the driving contract of `kafkit_core::network`: drain outputs
/// after every input, sleep until the core's next deadline or the next input.
pub async fn run<C, H>(
    mut core: C,
    mut handler: H,
    mut cmds: CommandReceiver<C, H>,
    socket: SocketOptions,
) where
    C: ClientCore + Send + 'static,
    H: Handler<C>,
{
    let (io_tx, mut io_rx) = mpsc::unbounded_channel();
    let mut conns: HashMap<ConnId, ConnTask> = HashMap::new();
    loop {
        while let Some(out) = core.poll_output() {
            match out {
                Output::Connect { conn, host, port } => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    let task = tokio::spawn(connection(
                        conn,
                        host,
                        port,
                        socket.clone(),
                        rx,
                        io_tx.clone(),
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
                Output::Event(event) => handler.on_event(&mut core, event, Instant::now()),
            }
        }
        let deadline = core.poll_timeout();
        let sleep = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            io = io_rx.recv() => {
                let now = Instant::now();
                match io.expect("the loop holds a sender") {
                    Io::Connected(conn) => core.handle_connected(conn, now),
                    Io::Data(conn, data) => core.handle_data(conn, &data, now),
                    Io::Closed(conn, reason) => {
                        conns.remove(&conn);
                        core.handle_closed(conn, reason, now);
                    }
                }
            }
            cmd = cmds.next() => match cmd {
                Some(f) => f(&mut core, &mut handler, Instant::now()),
                None => break,
            },
            () = sleep => core.handle_timeout(Instant::now()),
        }
    }
    handler.on_shutdown(&mut core);
    for (_, c) in conns {
        close(c);
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
) {
    let stream = match connect(&host, port, &opts).await {
        Ok(s) => s,
        Err(e) => {
            let _ = io.send(Io::Closed(conn, CloseReason::ConnectFailed(e)));
            return;
        }
    };
    let _ = io.send(Io::Connected(conn));
    let (mut rd, mut wr) = stream.into_split();
    let reader = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) => return CloseReason::PeerClosed,
                Ok(n) => {
                    let _ = io.send(Io::Data(conn, Bytes::copy_from_slice(&buf[..n])));
                }
                Err(e) => return CloseReason::Io(e.to_string()),
            }
        }
    };
    let writer = async {
        while let Some(data) = outgoing.recv().await {
            if let Err(e) = wr.write_all(&data).await {
                return Some(CloseReason::Io(e.to_string()));
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
