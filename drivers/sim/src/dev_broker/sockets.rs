//! Acceptors and I/O threads. An acceptor per broker blocks in `accept` and hands each
//! connection to one of a fixed number of I/O threads (round robin); each I/O thread polls its
//! connections' non-blocking sockets with mio, reads requests, writes replies, and closes
//! connections whose request stalls past the request-read timeout. The number of threads does
//! not grow with the number of connections.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};

use super::cluster_thread::{Event, WriteMsg};
use super::conn::{Conn, ReadCtx};
use super::{lock, ConnectionEvent, DevBrokerError, Shared};

/// The waker's token; connections use their number.
const WAKE: Token = Token(usize::MAX);

/// Socket reads one connection gets per turn, so that one busy client cannot starve others.
const READS_PER_TURN: usize = 16;

/// Bytes asked of the socket per read.
const READ_SIZE: usize = 64 * 1024;

/// What an I/O thread is told.
pub(crate) enum Cmd {
    /// Serve this accepted connection.
    Add {
        id: u64,
        broker: i32,
        peer: SocketAddr,
        stream: mio::net::TcpStream,
    },
    /// From the cluster thread, for one connection.
    Write(u64, WriteMsg),
    /// Close everything and exit.
    Stop,
}

/// How the cluster thread reaches a connection.
pub(crate) struct ConnWriter {
    conn: u64,
    tx: Sender<Cmd>,
    waker: Arc<Waker>,
}

impl ConnWriter {
    /// Queues `msg` for the connection; `Err` if its I/O thread is gone.
    pub(crate) fn send(&self, msg: WriteMsg) -> Result<(), ()> {
        self.tx.send(Cmd::Write(self.conn, msg)).map_err(|_| ())?;
        let _ = self.waker.wake();
        Ok(())
    }
}

/// One I/O thread, seen from outside.
struct IoHandle {
    tx: Sender<Cmd>,
    waker: Arc<Waker>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The I/O threads of a broker.
pub(crate) struct IoPool {
    threads: Vec<IoHandle>,
    next: AtomicUsize,
}

/// Limits every connection obeys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_frame: usize,
    pub request_read_timeout: Duration,
}

impl IoPool {
    /// Starts `n` I/O threads.
    pub(crate) fn start(
        n: usize,
        shared: &Arc<Shared>,
        events: &Sender<Event>,
        limits: Limits,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<IoPool, DevBrokerError> {
        let mut threads = Vec::with_capacity(n);
        for i in 0..n.max(1) {
            let poll = Poll::new().map_err(DevBrokerError::Thread)?;
            let waker =
                Arc::new(Waker::new(poll.registry(), WAKE).map_err(DevBrokerError::Thread)?);
            shared.budget.add_waker(waker.clone());
            let (tx, rx) = mpsc::channel();
            let mut io = IoThread {
                poll,
                rx,
                tx: tx.clone(),
                waker: waker.clone(),
                conns: HashMap::new(),
                shared: shared.clone(),
                events: events.clone(),
                limits,
                tls: tls.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("dev-broker-io-{i}"))
                .spawn(move || io.run())
                .map_err(DevBrokerError::Thread)?;
            threads.push(IoHandle {
                tx,
                waker,
                thread: Mutex::new(Some(thread)),
            });
        }
        Ok(IoPool {
            threads,
            next: AtomicUsize::new(0),
        })
    }

    /// Hands an accepted connection to the next I/O thread.
    fn add(&self, cmd: Cmd) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.threads.len();
        let t = &self.threads[i];
        if t.tx.send(cmd).is_ok() {
            let _ = t.waker.wake();
        }
    }

    /// Closes every connection and joins the threads.
    pub(crate) fn stop(&self) {
        for t in &self.threads {
            let _ = t.tx.send(Cmd::Stop);
            let _ = t.waker.wake();
        }
        for t in &self.threads {
            if let Some(h) = lock(&t.thread).take() {
                let _ = h.join();
            }
        }
    }
}

/// Accepts connections until shutdown.
pub(crate) fn accept_loop(
    listener: TcpListener,
    broker: i32,
    shared: Arc<Shared>,
    io: Arc<IoPool>,
) {
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(broker, error = %e, "dev broker: accept failed");
                // EMFILE and friends: do not spin.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if let Err(e) = stream.set_nonblocking(true) {
            tracing::warn!(broker, %peer, error = %e, "dev broker: connection setup failed");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        shared.open.fetch_add(1, Ordering::SeqCst);
        io.add(Cmd::Add {
            id,
            broker,
            peer,
            stream: mio::net::TcpStream::from_std(stream),
        });
    }
}

struct IoThread {
    poll: Poll,
    rx: Receiver<Cmd>,
    /// For the writers of this thread's connections.
    tx: Sender<Cmd>,
    waker: Arc<Waker>,
    conns: HashMap<u64, Conn>,
    shared: Arc<Shared>,
    events: Sender<Event>,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl IoThread {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut scratch = vec![0u8; READ_SIZE];
        loop {
            let timeout = self.next_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    tracing::error!(error = %e, "dev broker: poll failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let mut woken = false;
            for ev in events.iter() {
                if ev.token() == WAKE {
                    woken = true;
                    continue;
                }
                let id = ev.token().0 as u64;
                if let Some(c) = self.conns.get_mut(&id) {
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        c.readable = true;
                    }
                    if ev.is_writable() || ev.is_write_closed() {
                        self.service_write(id);
                    }
                }
            }
            if woken {
                // Memory may have been released: every waiting connection tries again.
                for c in self.conns.values_mut() {
                    c.waiting_for_memory = false;
                }
            }
            if !self.commands() {
                break;
            }
            self.service_reads(&mut scratch);
            self.expire();
        }
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id, "shutdown".into(), false);
        }
    }

    /// How long to sleep: not at all while some connection can read, else until the next
    /// request-read deadline.
    fn next_timeout(&self) -> Option<Duration> {
        if self
            .conns
            .values()
            .any(|c| c.wants_read() && !c.waiting_for_memory)
        {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        self.conns
            .values()
            .filter(|c| !c.waiting_for_memory)
            .filter_map(|c| c.started)
            .map(|s| (s + self.limits.request_read_timeout).saturating_duration_since(now))
            .min()
    }

    /// Handles queued commands; `false` on stop.
    fn commands(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(Cmd::Add {
                    id,
                    broker,
                    peer,
                    stream,
                }) => self.add(id, broker, peer, stream),
                Ok(Cmd::Write(id, msg)) => {
                    let Some(c) = self.conns.get_mut(&id) else {
                        continue;
                    };
                    match msg {
                        WriteMsg::Data(pieces) => c.queue(pieces),
                        WriteMsg::Close => c.closing = true,
                    }
                    self.service_write(id);
                }
                Ok(Cmd::Stop) | Err(TryRecvError::Disconnected) => return false,
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn add(&mut self, id: u64, broker: i32, peer: SocketAddr, mut stream: mio::net::TcpStream) {
        let tls = match &self.tls {
            None => None,
            Some(config) => match rustls::ServerConnection::new(config.clone()) {
                Ok(c) => Some(Box::new(c)),
                Err(e) => {
                    tracing::warn!(broker, %peer, error = %e, "dev broker: TLS setup failed");
                    self.shared.open.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
            },
        };
        let token = Token(id as usize);
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            tracing::warn!(broker, %peer, error = %e, "dev broker: cannot poll a connection");
            self.shared.open.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        self.shared.notify(&ConnectionEvent::Opened {
            broker,
            conn: id,
            peer,
        });
        // Opened reaches the cluster thread before any request of the connection: both are
        // sent from this thread.
        let writer = ConnWriter {
            conn: id,
            tx: self.tx.clone(),
            waker: self.waker.clone(),
        };
        let _ = self.events.send(Event::Opened {
            broker,
            conn: id,
            peer,
            writer,
        });
        self.conns
            .insert(id, Conn::new(id, broker, peer, stream, tls));
    }

    /// Writes what a connection has queued; closes it when the cluster asked and all is out.
    fn service_write(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        match c.flush(&self.shared.frame_pool) {
            Ok(true) if c.closing => self.close(id, "closed by the broker".into(), true),
            Ok(_) => {}
            Err(reason) => self.close(id, reason, false),
        }
    }

    fn service_reads(&mut self, scratch: &mut [u8]) {
        let now = Instant::now();
        let mut failed = Vec::new();
        for c in self.conns.values_mut() {
            if !c.wants_read() || c.waiting_for_memory {
                continue;
            }
            let ctx = ReadCtx {
                budget: &self.shared.budget,
                events: &self.events,
                max_frame: self.limits.max_frame,
                now,
            };
            if let Err(reason) = c.pump_read(READS_PER_TURN, scratch, &ctx) {
                failed.push((c.id, reason));
            }
        }
        for (id, reason) in failed {
            self.close(id, reason, false);
        }
    }

    /// Closes connections holding a half-received request past the request-read timeout.
    fn expire(&mut self) {
        let now = Instant::now();
        let limit = self.limits.request_read_timeout;
        let late: Vec<u64> = self
            .conns
            .values()
            .filter(|c| !c.waiting_for_memory)
            .filter(|c| c.started.is_some_and(|s| now.duration_since(s) >= limit))
            .map(|c| c.id)
            .collect();
        for id in late {
            let reason = format!(
                "request read timeout: a request was not received in full within {} ms",
                limit.as_millis()
            );
            self.close(id, reason, true);
        }
    }

    /// Closes a connection, tells the cluster thread and the callback.
    fn close(&mut self, id: u64, reason: String, by_broker: bool) {
        let Some(mut c) = self.conns.remove(&id) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut c.stream);
        c.shut(by_broker);
        let _ = self.events.send(Event::Closed {
            broker: c.broker,
            conn: id,
        });
        self.shared.open.fetch_sub(1, Ordering::SeqCst);
        let reason = if self.shared.stopping.load(Ordering::SeqCst) {
            "shutdown".to_owned()
        } else {
            reason
        };
        self.shared.notify(&ConnectionEvent::Closed {
            broker: c.broker,
            conn: id,
            peer: c.peer,
            reason,
        });
    }
}
