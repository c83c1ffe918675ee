//! A development broker: the simulated [`Cluster`] served on real TCP sockets, plaintext or
//! TLS, with optional SASL users, so that any Kafka client (kafkit's drivers, librdkafka, the
//! Java client) can talk to it.
//!
//! # Threads
//! The cluster model is sans-IO; this module is its I/O shell, on plain std threads:
//! - one acceptor per broker, blocking in `accept`;
//! - per connection, a reader (socket bytes → TLS → frames) and a writer (replies → TLS →
//!   socket);
//! - one cluster thread that owns the [`Cluster`]. Readers send it connection events and
//!   request frames over a channel; it answers through each connection's writer channel. It
//!   sleeps in `recv_timeout` until [`Cluster::poll_timeout`], then calls
//!   [`Cluster::handle_timeout`] and sends what [`Cluster::take_ready`] holds.
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

mod cluster_thread;
mod conn;
mod tls;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cluster::{Cluster, ClusterConfig, FramePool, SaslUser};

/// The rustls server configuration a TLS listener serves (re-exported, so that callers need
/// no rustls dependency of their own to name it).
pub use rustls::ServerConfig as TlsServerConfig;
pub use tls::{tls_server_config, tls_server_config_from_files};

use cluster_thread::Event;

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
        }
    }

    /// Brokers advertise `listeners` (one `(host, port)` per broker, by node id) in Metadata
    /// instead of the addresses they listen on: a proxy in front of them keeps clients on
    /// the proxy after their first Metadata.
    pub fn advertise(mut self, listeners: Vec<(String, u16)>) -> Self {
        self.advertised = Some(listeners);
        self
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
    /// Open sockets, to shut them down on shutdown.
    sockets: Mutex<HashMap<u64, Arc<TcpStream>>>,
    /// Connection threads, joined on shutdown.
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_conn: AtomicU64,
    on_connection: Option<ConnectionCallback>,
    /// Panics of the cluster model, caught on the cluster thread.
    failures: Mutex<Vec<String>>,
    /// Written response frames, back to the cluster for reuse.
    frame_pool: FramePool,
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
            sockets: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
            next_conn: AtomicU64::new(1),
            on_connection: config.on_connection.clone(),
            failures: Mutex::new(Vec::new()),
            frame_pool: FramePool::default(),
        });
        let (events, rx) = mpsc::channel();
        let max_frame = config.cluster.max_request_size;
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

        let mut broker = DevBroker {
            addrs,
            advertised,
            events,
            shared,
            acceptors: Vec::new(),
            cluster_thread: Some(cluster_thread),
            tls: config.tls.is_some(),
        };
        for (id, listener) in listeners.into_iter().enumerate() {
            let ctx = conn::AcceptCtx {
                broker: id as i32,
                shared: broker.shared.clone(),
                events: broker.events.clone(),
                tls: config.tls.clone(),
                max_frame,
            };
            let handle = std::thread::Builder::new()
                .name(format!("dev-broker-accept-{id}"))
                .spawn(move || conn::accept_loop(listener, ctx))
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
        lock(&self.shared.sockets).len()
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
        for s in lock(&self.shared.sockets).values() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        for h in threads {
            let _ = h.join();
        }
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
