//! A development broker: the simulated [`Cluster`] served on real TCP sockets, plaintext or
//! TLS, with optional SASL users, so that any Kafka client (kafkit's drivers, librdkafka, the
//! Java client) can talk to it.
//!
//! # Threads
//! The cluster model is sans-IO; this module is its I/O shell, on plain std threads whose
//! number does not depend on the number of connections:
//! - one acceptor per broker, blocking in `accept`;
//! - [`DevBrokerConfig::io_threads`] I/O threads (default 2), each polling its share of the
//!   connections' non-blocking sockets (socket bytes → TLS → requests, replies → TLS →
//!   socket);
//! - one cluster thread that owns the [`Cluster`]. The I/O threads send it connection events
//!   and requests over a channel; it answers through each connection's I/O thread. It sleeps
//!   in `recv_timeout` until [`Cluster::poll_timeout`], then calls
//!   [`Cluster::handle_timeout`] and sends what [`Cluster::take_ready`] holds.
//!
//! # Limits
//! - A request may be at most `cluster.max_request_size` bytes (100 MiB by default); a larger
//!   size prefix closes the connection.
//! - A request's buffer grows with the bytes actually received, not to the size its prefix
//!   announces.
//! - Requests in flight (announced but not yet received in full, or received but not yet
//!   handled by the cluster thread) share a memory budget,
//!   [`DevBrokerConfig::max_in_flight_request_bytes`] (256 MiB by default): a request is
//!   charged its announced size when its prefix arrives, and while the budget is spent the
//!   broker stops reading from every connection that is not in the middle of a request, until
//!   requests are handled. One request is always admitted when none is in flight, so a single
//!   request larger than the budget still goes through.
//! - A connection that has sent part of a request and then nothing for
//!   [`DevBrokerConfig::request_read_timeout`] (30 s by default) since the request began (or
//!   was admitted to the budget) is closed. Idle connections between requests stay open.
//! - A connection whose client does not read its replies stops being read once 4 MiB of
//!   replies wait to be written.
//! - Each partition keeps its newest `cluster.retention_bytes` bytes of batches (64 MiB by
//!   default, see [`DevBrokerConfig::retention_bytes`]); older batches are dropped and the log
//!   start offset advances.
//!
//! The cluster sees real time (`Instant::now()`), and its LogAppendTime clock starts at the
//! real wall clock.
//!
//! # Example
//! ```no_run
//! use kafkit_sim::dev_broker::{DevBroker, DevBrokerConfig};
//!
//! let broker = DevBroker::start(DevBrokerConfig::new(3).partitions(6)).unwrap();
//! println!("bootstrap.servers={}", broker.bootstrap());
//! // ... run clients against it ...
//! broker.shutdown();
//! ```

mod budget;
mod cluster_thread;
mod conn;
mod sockets;
mod tls;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cluster::{Cluster, ClusterConfig, FramePool, SaslUser};

/// The rustls server configuration a TLS listener serves (re-exported, so that callers need
/// no rustls dependency of their own to name it).
pub use rustls::ServerConfig as TlsServerConfig;
pub use tls::{tls_server_config, tls_server_config_from_files};

use budget::Budget;
use cluster_thread::Event;
use sockets::{IoPool, Limits};

/// Called on every connection opened or closed (from the broker's threads).
pub type ConnectionCallback = Arc<dyn Fn(&ConnectionEvent) + Send + Sync>;

/// A client connection came or went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// A client connected to `broker`.
    Opened {
        /// Node id of the broker.
        broker: i32,
        /// The connection's number (unique across the brokers of one [`DevBroker`]).
        conn: u64,
        /// The client's address.
        peer: SocketAddr,
    },
    /// A connection closed.
    Closed {
        /// Node id of the broker.
        broker: i32,
        /// The connection's number.
        conn: u64,
        /// The client's address.
        peer: SocketAddr,
        /// Why: the client went away, the broker closed it (a failed authentication, a bad
        /// request), a TLS error, or shutdown.
        reason: String,
    },
}

impl fmt::Display for ConnectionEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionEvent::Opened { broker, conn, peer } => {
                write!(f, "broker {broker}: connection {conn} from {peer} opened")
            }
            ConnectionEvent::Closed {
                broker,
                conn,
                peer,
                reason,
            } => write!(
                f,
                "broker {broker}: connection {conn} from {peer} closed: {reason}"
            ),
        }
    }
}

/// How a [`DevBroker`] is built.
#[derive(Clone)]
pub struct DevBrokerConfig {
    /// The address to listen on (default `127.0.0.1`); also the host brokers advertise in
    /// Metadata, except that an unspecified address (`0.0.0.0`, `::`) advertises
    /// `127.0.0.1`.
    pub host: String,
    /// The first broker's port; broker `i` listens on `port + i`. 0 (the default) picks free
    /// ports (then not necessarily consecutive).
    pub port: u16,
    /// The cluster model's configuration; `cluster.brokers` is the number of brokers.
    pub cluster: ClusterConfig,
    /// Serve TLS with this configuration (see [`tls_server_config`]); `None`: plaintext.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Told about every connection opened and closed.
    pub on_connection: Option<ConnectionCallback>,
    /// `(host, port)` broker `i` advertises in Metadata instead of its listener, for clients
    /// that reach the brokers through a proxy; one entry per broker. `None`: the listeners.
    pub advertised: Option<Vec<(String, u16)>>,
    /// The memory budget of requests in flight, across all connections (see the module
    /// docs); default 256 MiB.
    pub max_in_flight_request_bytes: usize,
    /// A request not received in full this long after it began closes its connection;
    /// default 30 s.
    pub request_read_timeout: Duration,
    /// Threads serving the connections' sockets; default 2.
    pub io_threads: usize,
}

impl fmt::Debug for DevBrokerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevBrokerConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("cluster", &self.cluster)
            .field("tls", &self.tls.is_some())
            .field("on_connection", &self.on_connection.is_some())
            .field("advertised", &self.advertised)
            .field(
                "max_in_flight_request_bytes",
                &self.max_in_flight_request_bytes,
            )
            .field("request_read_timeout", &self.request_read_timeout)
            .field("io_threads", &self.io_threads)
            .finish()
    }
}

impl Default for DevBrokerConfig {
    fn default() -> Self {
        Self::new(1)
    }
}

impl DevBrokerConfig {
    /// `brokers` brokers on 127.0.0.1, free ports, plaintext without SASL, the cluster
    /// model's defaults otherwise, its clock starting at the real wall clock.
    pub fn new(brokers: usize) -> Self {
        let start_time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        DevBrokerConfig {
            host: "127.0.0.1".to_owned(),
            port: 0,
            cluster: ClusterConfig {
                brokers,
                start_time_ms,
                ..ClusterConfig::default()
            },
            tls: None,
            on_connection: None,
            advertised: None,
            max_in_flight_request_bytes: 256 << 20,
            request_read_timeout: Duration::from_secs(30),
            io_threads: 2,
        }
    }

    /// Brokers advertise `listeners` (one `(host, port)` per broker, by node id) in Metadata
    /// instead of the addresses they listen on: a proxy in front of them keeps clients on
    /// the proxy after their first Metadata.
    pub fn advertise(mut self, listeners: Vec<(String, u16)>) -> Self {
        self.advertised = Some(listeners);
        self
    }

    /// The memory budget of requests in flight (see the module docs).
    pub fn max_in_flight_request_bytes(mut self, bytes: usize) -> Self {
        self.max_in_flight_request_bytes = bytes;
        self
    }

    /// How long a request may take to arrive in full once it began (see the module docs).
    pub fn request_read_timeout(mut self, timeout: Duration) -> Self {
        self.request_read_timeout = timeout;
        self
    }

    /// The number of threads serving the sockets (at least 1).
    pub fn io_threads(mut self, n: usize) -> Self {
        self.io_threads = n;
        self
    }

    /// Each partition keeps its newest `bytes` bytes of record batches (a topic's
    /// `retention.bytes` may lower it); older batches are dropped and the log start offset
    /// advances. Default 64 MiB.
    pub fn retention_bytes(mut self, bytes: u64) -> Self {
        self.cluster.retention_bytes = bytes;
        self
    }

    /// Behaves as Kafka release `name` (`"0.8.0"` ... `"4"`, see
    /// [`Release`](crate::cluster::Release)): its API versions, message format and offset
    /// storage. Default: 4.0.
    pub fn kafka_version(mut self, name: &str) -> Result<Self, crate::cluster::UnknownRelease> {
        crate::cluster::Release::named(name)?.apply(&mut self.cluster);
        Ok(self)
    }

    /// Listen on (and advertise) `host`.
    pub fn host(mut self, host: &str) -> Self {
        self.host = host.to_owned();
        self
    }

    /// The first broker's port (0: free ports).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Partitions of auto-created topics.
    pub fn partitions(mut self, partitions: i32) -> Self {
        self.cluster.default_partitions = partitions;
        self
    }

    /// Adds a SASL user of `mechanism` (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`). With any
    /// SASL user, every connection must authenticate.
    pub fn sasl_user(mut self, mechanism: &str, user: &str, password: &str) -> Self {
        self.cluster
            .sasl_users
            .push(SaslUser::new(mechanism, user, password));
        self
    }

    /// Serves TLS with `config`.
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Calls `f` on every connection opened and closed.
    pub fn on_connection(mut self, f: impl Fn(&ConnectionEvent) + Send + Sync + 'static) -> Self {
        self.on_connection = Some(Arc::new(f));
        self
    }
}

/// Why a [`DevBroker`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevBrokerError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The socket error.
        source: io::Error,
    },
    /// The configuration is unusable (no brokers, a port range past 65535).
    #[error("invalid dev broker configuration: {0}")]
    Config(String),
    /// The TLS certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// A thread could not be spawned.
    #[error("cannot start a thread: {0}")]
    Thread(io::Error),
}

/// State shared by the broker's threads.
pub(crate) struct Shared {
    /// Set once shutdown begins.
    stopping: AtomicBool,
    /// Connections accepted and not yet closed.
    open: AtomicUsize,
    next_conn: AtomicU64,
    on_connection: Option<ConnectionCallback>,
    /// Panics of the cluster model, caught on the cluster thread.
    failures: Mutex<Vec<String>>,
    /// Written response frames, back to the cluster for reuse.
    frame_pool: FramePool,
    /// The memory budget of requests in flight.
    budget: Arc<Budget>,
}

impl Shared {
    fn notify(&self, event: &ConnectionEvent) {
        tracing::debug!(%event, "dev broker");
        if let Some(f) = &self.on_connection {
            f(event);
        }
    }
}

/// Locks `m`, ignoring poisoning (a panicked thread leaves plain data behind).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running development broker: the brokers of one simulated [`Cluster`] on real sockets.
///
/// Dropping it shuts it down (as [`DevBroker::shutdown`] does).
pub struct DevBroker {
    addrs: Vec<SocketAddr>,
    advertised: Vec<(String, u16)>,
    events: Sender<Event>,
    shared: Arc<Shared>,
    acceptors: Vec<JoinHandle<()>>,
    io: Arc<IoPool>,
    cluster_thread: Option<JoinHandle<()>>,
    tls: bool,
}

impl fmt::Debug for DevBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevBroker")
            .field("addrs", &self.addrs)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl DevBroker {
    /// Binds every broker's listener, then starts the cluster (advertising the real
    /// addresses) and the threads.
    pub fn start(config: DevBrokerConfig) -> Result<DevBroker, DevBrokerError> {
        let n = config.cluster.brokers;
        if n == 0 {
            return Err(DevBrokerError::Config(
                "at least one broker is needed".into(),
            ));
        }
        if config.io_threads == 0 {
            return Err(DevBrokerError::Config(
                "at least one I/O thread is needed".into(),
            ));
        }
        if config.request_read_timeout.is_zero() {
            return Err(DevBrokerError::Config(
                "the request read timeout must be above zero".into(),
            ));
        }
        if config.port != 0 && usize::from(config.port) + n - 1 > usize::from(u16::MAX) {
            return Err(DevBrokerError::Config(format!(
                "{n} brokers from port {} run past port 65535",
                config.port
            )));
        }
        let mut listeners = Vec::with_capacity(n);
        let mut addrs = Vec::with_capacity(n);
        for i in 0..n {
            let port = if config.port == 0 {
                0
            } else {
                config.port + i as u16
            };
            let addr = join_host_port(&config.host, port);
            let listener = TcpListener::bind(&addr).map_err(|source| DevBrokerError::Bind {
                addr: addr.clone(),
                source,
            })?;
            let local = listener
                .local_addr()
                .map_err(|source| DevBrokerError::Bind { addr, source })?;
            addrs.push(local);
            listeners.push(listener);
        }
        if let Some(listeners) = &config.advertised {
            if listeners.len() != n {
                return Err(DevBrokerError::Config(format!(
                    "{} advertised listeners for {n} brokers",
                    listeners.len()
                )));
            }
        }
        let advertised: Vec<(String, u16)> = match &config.advertised {
            Some(listeners) => listeners.clone(),
            None => addrs
                .iter()
                .map(|a| {
                    let host = if a.ip().is_unspecified() {
                        "127.0.0.1".to_owned()
                    } else if config.host.parse::<IpAddr>().is_ok() {
                        a.ip().to_string()
                    } else {
                        config.host.clone()
                    };
                    (host, a.port())
                })
                .collect(),
        };

        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
            open: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
            on_connection: config.on_connection.clone(),
            failures: Mutex::new(Vec::new()),
            frame_pool: FramePool::default(),
            budget: Arc::new(Budget::new(config.max_in_flight_request_bytes)),
        });
        let (events, rx) = mpsc::channel();
        let limits = Limits {
            max_frame: config.cluster.max_request_size,
            request_read_timeout: config.request_read_timeout,
        };
        let cluster_listeners = advertised
            .iter()
            .map(|(h, p)| (h.clone(), i32::from(*p)))
            .collect();
        let cluster_config = config.cluster.clone();
        let cluster_shared = shared.clone();
        let cluster_thread = std::thread::Builder::new()
            .name("dev-broker-cluster".into())
            .spawn(move || {
                cluster_thread::run(cluster_config, cluster_listeners, rx, &cluster_shared)
            })
            .map_err(DevBrokerError::Thread)?;
        let io = match IoPool::start(
            config.io_threads,
            &shared,
            &events,
            limits,
            config.tls.clone(),
        ) {
            Ok(io) => Arc::new(io),
            Err(e) => {
                let _ = events.send(Event::Stop);
                let _ = cluster_thread.join();
                return Err(e);
            }
        };

        let mut broker = DevBroker {
            addrs,
            advertised,
            events,
            shared,
            acceptors: Vec::new(),
            io,
            cluster_thread: Some(cluster_thread),
            tls: config.tls.is_some(),
        };
        for (id, listener) in listeners.into_iter().enumerate() {
            let shared = broker.shared.clone();
            let io = broker.io.clone();
            let handle = std::thread::Builder::new()
                .name(format!("dev-broker-accept-{id}"))
                .spawn(move || sockets::accept_loop(listener, id as i32, shared, io))
                .map_err(DevBrokerError::Thread)?;
            broker.acceptors.push(handle);
        }
        Ok(broker)
    }

    /// The bootstrap list, `host:port,host:port,..`, as the brokers advertise themselves.
    pub fn bootstrap(&self) -> String {
        self.advertised
            .iter()
            .map(|(h, p)| join_host_port(h, *p))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The listening socket addresses, by node id.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Whether the listeners speak TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Connections currently open.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Bytes charged to the memory budget of requests in flight now (see the module docs).
    pub fn in_flight_request_bytes(&self) -> usize {
        self.shared.budget.used()
    }

    /// How many times so far a connection had to wait (stop reading) because the memory
    /// budget of requests in flight was spent.
    pub fn memory_waits(&self) -> u64 {
        self.shared.budget.waits()
    }

    /// Panics of the cluster model caught so far (a bug in the model: each closed the
    /// connection whose request caused it). Tests assert this is empty.
    pub fn model_failures(&self) -> Vec<String> {
        lock(&self.shared.failures).clone()
    }

    /// Runs `f` on the cluster thread (to inspect the cluster, crash a broker, install a
    /// hook) and returns its result; what `f` makes the cluster send or close goes out right
    /// after. `None` if the cluster thread is gone (shut down, or it panicked).
    pub fn with_cluster<R, F>(&self, f: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Cluster) -> R + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let shared = self.shared.clone();
        let job: cluster_thread::Job = Box::new(move |c: &mut Cluster| {
            // The panic is recorded before the caller hears of it: left to the cluster
            // thread's own catch, the caller could see `None` (the sender dropped while
            // unwinding) before the failure is in `model_failures`.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(c))) {
                Ok(r) => {
                    let _ = tx.send(Some(r));
                }
                Err(panic) => {
                    cluster_thread::failed(&shared, "running a with_cluster job", &panic);
                    let _ = tx.send(None);
                }
            }
        });
        self.events.send(Event::Run(job)).ok()?;
        rx.recv().ok().flatten()
    }

    /// Stops accepting, closes every connection and stops every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake each acceptor with a connection of our own; it sees `stopping` and quits,
        // dropping its listener.
        for addr in &self.addrs {
            let mut wake = *addr;
            if wake.ip().is_unspecified() {
                wake.set_ip(match wake {
                    SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    SocketAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                });
            }
            let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        }
        for h in self.acceptors.drain(..) {
            let _ = h.join();
        }
        let _ = self.events.send(Event::Stop);
        if let Some(h) = self.cluster_thread.take() {
            let _ = h.join();
        }
        self.io.stop();
    }
}

impl Drop for DevBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `host:port`, bracketing IPv6 literals.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_joins() {
        assert_eq!(join_host_port("127.0.0.1", 9092), "127.0.0.1:9092");
        assert_eq!(join_host_port("::1", 9092), "[::1]:9092");
        assert_eq!(join_host_port("[::1]", 9092), "[::1]:9092");
    }

    #[test]
    fn zero_brokers_is_an_error() {
        let err = DevBroker::start(DevBrokerConfig::new(0)).unwrap_err();
        assert!(matches!(err, DevBrokerError::Config(_)), "{err}");
    }
}
