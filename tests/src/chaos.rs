//! A seeded TCP chaos proxy for the fault suites (`tests/tests/chaos_*.rs`).
//!
//! One [`ChaosProxy`] listens on one port per broker and forwards each accepted connection to
//! that broker. While it forwards, it hurts the connection the way real networks and crashing
//! brokers do:
//!
//! - **cuts**: after a lifetime drawn from [`Faults::cut_after_ms`] the connection is closed on
//!   both sides, either with a reset (`SO_LINGER` 0, so the client reads `ECONNRESET`) or with
//!   an orderly FIN (the client reads end-of-stream);
//! - **dropped responses**: a whole response frame read from the broker is thrown away and
//!   the connection is cut, as when a broker dies after appending but before answering: the
//!   request took effect and its acknowledgement is lost;
//! - **delays**: every response frame waits a time drawn from [`Faults::delay_ms`];
//! - **stalls**: now and then a response frame is held for [`Faults::stall_ms`] while the
//!   connection stays open (a slow or paused broker).
//!
//! Requests are forwarded as bytes; responses are forwarded frame by frame (the 4-byte length
//! prefix is read) so that a fault always falls between or instead of whole responses. Every
//! decision comes from a generator seeded with [`ChaosProxy::seed`] and the connection's index,
//! so a failing run names the seed to replay; the interleaving with the OS scheduler still
//! varies between runs.
//!
//! The brokers must advertise the proxy's ports, or clients leave the proxy after their first
//! Metadata: bind the proxy first ([`ChaosProxy::bind`]), start the brokers advertising
//! [`ChaosProxy::advertised`], then [`ChaosProxy::start`] it towards the brokers' listeners.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a blocked read wakes to look at the connection's deadline and the proxy's stop
/// flag. Short enough that a cut lands within a few milliseconds of its time.
const TICK: Duration = Duration::from_millis(10);

/// The largest response frame forwarded; a bigger length prefix means the stream is not Kafka
/// (the connection is cut instead of buffering it).
const MAX_FRAME: usize = 128 << 20;

/// What the proxy does to connections. Ranges are inclusive `(low, high)` in milliseconds;
/// probabilities are per response frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Each connection is cut after a lifetime drawn from this range; `None`: never.
    pub cut_after_ms: Option<(u64, u64)>,
    /// The share of cuts (and of the cuts after a dropped response) that are resets; the
    /// others are FINs.
    pub reset_ratio: f64,
    /// The chance that a response frame is dropped (and its connection cut).
    pub drop_probability: f64,
    /// Every response frame waits this long first.
    pub delay_ms: (u64, u64),
    /// The chance that a response frame is held for [`Faults::stall_ms`].
    pub stall_probability: f64,
    /// How long a stalled response frame is held.
    pub stall_ms: (u64, u64),
}

impl Faults {
    /// No faults: a plain forwarding proxy.
    pub fn none() -> Faults {
        Faults {
            cut_after_ms: None,
            reset_ratio: 0.5,
            drop_probability: 0.0,
            delay_ms: (0, 0),
            stall_probability: 0.0,
            stall_ms: (0, 0),
        }
    }

    /// The rough network: cuts every 30 ms to 2 s (half resets), 2% of responses
    /// dropped, up to 5 ms of delay on each response, and 1% of responses stalled for
    /// 100–600 ms.
    pub fn rough() -> Faults {
        Faults {
            cut_after_ms: Some((30, 2_000)),
            reset_ratio: 0.5,
            drop_probability: 0.02,
            delay_ms: (0, 5),
            stall_probability: 0.01,
            stall_ms: (100, 600),
        }
    }
}

/// What the proxy did, counted over every connection so far.
#[derive(Debug, Default)]
pub struct ChaosStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections cut with a reset.
    pub resets: AtomicU64,
    /// Connections cut with a FIN.
    pub fins: AtomicU64,
    /// Response frames dropped (each also cut its connection, counted above).
    pub dropped: AtomicU64,
    /// Response frames held for a stall.
    pub stalls: AtomicU64,
    /// Response frames forwarded.
    pub responses: AtomicU64,
}

/// A copy of [`ChaosStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChaosFigures {
    /// Connections accepted.
    pub connections: u64,
    /// Connections cut (resets and FINs, including those after a dropped response).
    pub cuts: u64,
    /// Of which resets.
    pub resets: u64,
    /// Response frames dropped.
    pub dropped: u64,
    /// Response frames stalled.
    pub stalls: u64,
    /// Response frames forwarded.
    pub responses: u64,
}

impl ChaosStats {
    fn figures(&self) -> ChaosFigures {
        let resets = self.resets.load(Ordering::Relaxed);
        let fins = self.fins.load(Ordering::Relaxed);
        ChaosFigures {
            connections: self.connections.load(Ordering::Relaxed),
            cuts: resets + fins,
            resets,
            dropped: self.dropped.load(Ordering::Relaxed),
            stalls: self.stalls.load(Ordering::Relaxed),
            responses: self.responses.load(Ordering::Relaxed),
        }
    }
}

/// splitmix64: small, seedable and good enough to spread fault decisions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether an event of probability `p` happens.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// Uniform in the inclusive range.
    pub fn between(&mut self, (low, high): (u64, u64)) -> u64 {
        if high <= low {
            return low;
        }
        low + self.next_u64() % (high - low + 1)
    }
}

/// The proxy's listeners, bound but not yet forwarding.
#[derive(Debug)]
pub struct BoundProxy {
    listeners: Vec<TcpListener>,
}

impl BoundProxy {
    /// `(host, port)` of each listener, by broker, to have the brokers advertise.
    pub fn advertised(&self) -> Vec<(String, u16)> {
        self.listeners
            .iter()
            .map(|l| {
                let a = l.local_addr().expect("a bound listener has an address");
                (a.ip().to_string(), a.port())
            })
            .collect()
    }

    /// Starts forwarding listener `i` to `upstreams[i]` with `faults`, seeded with `seed`.
    pub fn start(self, upstreams: Vec<SocketAddr>, faults: Faults, seed: u64) -> ChaosProxy {
        assert_eq!(
            upstreams.len(),
            self.listeners.len(),
            "one upstream per proxy listener"
        );
        let shared = Arc::new(Shared {
            faults: Mutex::new(faults),
            stats: ChaosStats::default(),
            stop: AtomicBool::new(false),
            seed,
            next_conn: AtomicU64::new(0),
            conns: Mutex::new(Vec::new()),
        });
        let addrs = self
            .listeners
            .iter()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
            .collect();
        let acceptors = self
            .listeners
            .into_iter()
            .zip(upstreams)
            .map(|(listener, upstream)| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name("chaos-accept".into())
                    .spawn(move || accept_loop(listener, upstream, &shared))
                    .expect("spawning the proxy's accept thread")
            })
            .collect();
        ChaosProxy {
            addrs,
            shared,
            acceptors,
        }
    }
}

struct Shared {
    faults: Mutex<Faults>,
    stats: ChaosStats,
    stop: AtomicBool,
    seed: u64,
    next_conn: AtomicU64,
    /// Every connection's pump threads, joined on drop.
    conns: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn faults(&self) -> Faults {
        self.faults.lock().expect("faults lock").clone()
    }
}

/// A running chaos proxy; stops (and closes every connection) when dropped.
pub struct ChaosProxy {
    addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    acceptors: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for ChaosProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosProxy")
            .field("addrs", &self.addrs)
            .field("seed", &self.shared.seed)
            .finish_non_exhaustive()
    }
}

impl ChaosProxy {
    /// Binds `n` listeners on 127.0.0.1 (free ports).
    pub fn bind(n: usize) -> io::Result<BoundProxy> {
        let listeners = (0..n)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(BoundProxy { listeners })
    }

    /// Binds `listen` (an address a broker already advertises).
    pub fn bind_at(listen: &str) -> io::Result<BoundProxy> {
        Ok(BoundProxy {
            listeners: vec![TcpListener::bind(listen)?],
        })
    }

    /// The listening addresses, by broker.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// `host:port,...` of the listeners.
    pub fn bootstrap(&self) -> String {
        self.addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The seed fault decisions are drawn from.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// Replaces the faults for connections accepted from now on and for the responses still
    /// to come on open ones (an open connection keeps the cut time it was given).
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults.lock().expect("faults lock") = faults;
    }

    /// What the proxy did so far.
    pub fn figures(&self) -> ChaosFigures {
        self.shared.stats.figures()
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for a in self.acceptors.drain(..) {
            let _ = a.join();
        }
        let conns = std::mem::take(&mut *self.shared.conns.lock().expect("conns lock"));
        for c in conns {
            let _ = c.join();
        }
    }
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: &Arc<Shared>) {
    // Non-blocking so that the stop flag is seen without a wake-up connection.
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let shared2 = shared.clone();
                let handle = std::thread::Builder::new()
                    .name("chaos-conn".into())
                    .spawn(move || serve(client, upstream, &shared2));
                if let Ok(h) = handle {
                    let mut conns = shared.conns.lock().expect("conns lock");
                    conns.retain(|h| !h.is_finished());
                    conns.push(h);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(TICK),
            Err(_) => std::thread::sleep(TICK),
        }
    }
}

/// A connection's state, shared by its two pumps.
const OPEN: u8 = 0;
const CUT_FIN: u8 = 1;
const CUT_RESET: u8 = 2;
/// One side closed on its own (the client or the broker); the other pump ends too.
const ENDED: u8 = 3;

struct Conn {
    state: AtomicU8,
    deadline: Option<Instant>,
    stop: Arc<Shared>,
}

impl Conn {
    /// The state, after applying the deadline and the proxy's stop flag.
    fn check(&self, rng: &Mutex<Rng>, reset_ratio: f64) -> u8 {
        let s = self.state.load(Ordering::SeqCst);
        if s != OPEN {
            return s;
        }
        if self.stop.stop.load(Ordering::SeqCst) {
            self.end(ENDED);
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            let kind = if rng.lock().expect("rng lock").chance(reset_ratio) {
                CUT_RESET
            } else {
                CUT_FIN
            };
            self.end(kind);
        }
        self.state.load(Ordering::SeqCst)
    }

    /// Moves to `kind` unless already ended; counts a cut once.
    fn end(&self, kind: u8) {
        if self
            .state
            .compare_exchange(OPEN, kind, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            match kind {
                CUT_RESET => self.stop.stats.resets.fetch_add(1, Ordering::Relaxed),
                CUT_FIN => self.stop.stats.fins.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
        }
    }
}

fn serve(client: TcpStream, upstream: SocketAddr, shared: &Arc<Shared>) {
    shared.stats.connections.fetch_add(1, Ordering::Relaxed);
    let index = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let mut rng = Rng::new(shared.seed ^ index.wrapping_mul(0xA24B_AED4_963E_E407));
    let faults = shared.faults();
    let Ok(broker) = TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) else {
        // The broker is down: the client sees its connection reset, as it would have seen
        // the broker refuse it.
        let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
        return;
    };
    let deadline = faults
        .cut_after_ms
        .map(|r| Instant::now() + Duration::from_millis(rng.between(r)));
    let conn = Arc::new(Conn {
        state: AtomicU8::new(OPEN),
        deadline,
        stop: shared.clone(),
    });
    let rng = Arc::new(Mutex::new(rng));
    for s in [&client, &broker] {
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(TICK));
    }
    let (Ok(client2), Ok(broker2)) = (client.try_clone(), broker.try_clone()) else {
        return;
    };
    let requests = {
        let (conn, rng) = (conn.clone(), rng.clone());
        let reset_ratio = faults.reset_ratio;
        std::thread::Builder::new()
            .name("chaos-requests".into())
            .spawn(move || pump_requests(client2, broker2, &conn, &rng, reset_ratio))
    };
    pump_responses(&broker, &client, &conn, &rng, shared);
    if let Ok(r) = requests {
        let _ = r.join();
    }
    // Both pumps have stopped; the last handles of each socket close here.
    if conn.state.load(Ordering::SeqCst) == CUT_RESET {
        let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
    } else {
        let _ = client.shutdown(Shutdown::Both);
    }
    let _ = broker.shutdown(Shutdown::Both);
}

/// Copies the client's bytes to the broker until either side closes or the connection is cut.
fn pump_requests(
    mut client: TcpStream,
    mut broker: TcpStream,
    conn: &Conn,
    rng: &Mutex<Rng>,
    reset_ratio: f64,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if conn.check(rng, reset_ratio) != OPEN {
            return;
        }
        match client.read(&mut buf) {
            Ok(0) => {
                // The client closed: pass the FIN on and let the responses drain.
                let _ = broker.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if broker.write_all(&buf[..n]).is_err() {
                    conn.end(ENDED);
                    return;
                }
            }
            Err(e) if is_tick(&e) => {}
            Err(_) => {
                conn.end(ENDED);
                return;
            }
        }
    }
}

/// Forwards the broker's response frames to the client, applying the faults to each.
fn pump_responses(
    broker: &TcpStream,
    client: &TcpStream,
    conn: &Conn,
    rng: &Mutex<Rng>,
    shared: &Shared,
) {
    let mut broker = broker;
    let mut client = client;
    let mut frame = Vec::new();
    loop {
        let faults = shared.faults();
        let mut len = [0u8; 4];
        if !read_full(&mut broker, &mut len, conn, rng, faults.reset_ratio) {
            return;
        }
        let n = i32::from_be_bytes(len);
        let Ok(n) = usize::try_from(n) else {
            conn.end(ENDED);
            return;
        };
        if n > MAX_FRAME {
            conn.end(ENDED);
            return;
        }
        frame.clear();
        frame.extend_from_slice(&len);
        frame.resize(4 + n, 0);
        if !read_full(&mut broker, &mut frame[4..], conn, rng, faults.reset_ratio) {
            return;
        }
        let (drop_it, reset, delay, stall) = {
            let mut r = rng.lock().expect("rng lock");
            let drop_it = r.chance(faults.drop_probability);
            let reset = r.chance(faults.reset_ratio);
            let delay = r.between(faults.delay_ms);
            let stall = r
                .chance(faults.stall_probability)
                .then(|| r.between(faults.stall_ms));
            (drop_it, reset, delay, stall)
        };
        if drop_it {
            shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            conn.end(if reset { CUT_RESET } else { CUT_FIN });
            return;
        }
        let mut hold = Duration::from_millis(delay);
        if let Some(ms) = stall {
            shared.stats.stalls.fetch_add(1, Ordering::Relaxed);
            hold += Duration::from_millis(ms);
        }
        if !wait(hold, conn, rng, faults.reset_ratio) {
            return;
        }
        if client.write_all(&frame).is_err() {
            conn.end(ENDED);
            return;
        }
        shared.stats.responses.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads exactly `buf.len()` bytes; `false` when the connection ended or was cut first.
fn read_full(
    r: &mut &TcpStream,
    buf: &mut [u8],
    conn: &Conn,
    rng: &Mutex<Rng>,
    reset_ratio: f64,
) -> bool {
    let mut at = 0;
    while at < buf.len() {
        if conn.check(rng, reset_ratio) != OPEN {
            return false;
        }
        match r.read(&mut buf[at..]) {
            Ok(0) => {
                conn.end(ENDED);
                return false;
            }
            Ok(n) => at += n,
            Err(e) if is_tick(&e) => {}
            Err(_) => {
                conn.end(ENDED);
                return false;
            }
        }
    }
    true
}

/// Sleeps `d` in ticks; `false` when the connection was cut meanwhile.
fn wait(d: Duration, conn: &Conn, rng: &Mutex<Rng>, reset_ratio: f64) -> bool {
    let until = Instant::now() + d;
    loop {
        if conn.check(rng, reset_ratio) != OPEN {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(TICK));
    }
}

fn is_tick(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_seeded_and_in_range() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            let x = a.between((30, 2_000));
            assert_eq!(x, b.between((30, 2_000)));
            assert!((30..=2_000).contains(&x));
            let u = a.unit();
            assert_eq!(u, b.unit());
            assert!((0.0..1.0).contains(&u));
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    /// An echo "broker" answering each 4-byte-length frame with itself.
    fn echo_broker() -> (SocketAddr, JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        });
        (addr, h)
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn forwards_frames_without_faults() {
        let (addr, broker) = echo_broker();
        let proxy = ChaosProxy::bind(1)
            .unwrap()
            .start(vec![addr], Faults::none(), 1);
        let mut c = TcpStream::connect(proxy.addresses()[0]).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        for body in [&b"hello"[..], b"", b"world!"] {
            c.write_all(&frame(body)).unwrap();
            let mut got = vec![0u8; 4 + body.len()];
            c.read_exact(&mut got).unwrap();
            assert_eq!(got, frame(body));
        }
        drop(c);
        broker.join().unwrap();
        let f = proxy.figures();
        assert_eq!((f.connections, f.responses, f.cuts), (1, 3, 0));
    }

    #[test]
    fn a_dropped_response_cuts_the_connection_with_a_reset() {
        let (addr, broker) = echo_broker();
        let faults = Faults {
            drop_probability: 1.0,
            reset_ratio: 1.0,
            ..Faults::none()
        };
        let proxy = ChaosProxy::bind(1).unwrap().start(vec![addr], faults, 2);
        let mut c = TcpStream::connect(proxy.addresses()[0]).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(&frame(b"lost")).unwrap();
        let mut buf = [0u8; 16];
        let err = c.read(&mut buf).expect_err("the connection is reset");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
        broker.join().unwrap();
        let f = proxy.figures();
        assert_eq!((f.dropped, f.resets, f.responses), (1, 1, 0));
    }

    #[test]
    fn a_cut_with_fin_ends_the_stream() {
        let (addr, broker) = echo_broker();
        let faults = Faults {
            cut_after_ms: Some((0, 0)),
            reset_ratio: 0.0,
            ..Faults::none()
        };
        let proxy = ChaosProxy::bind(1).unwrap().start(vec![addr], faults, 3);
        let mut c = TcpStream::connect(proxy.addresses()[0]).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(c.read(&mut buf).expect("an orderly end of stream"), 0);
        broker.join().unwrap();
        assert_eq!(proxy.figures().cuts, 1);
    }
}
