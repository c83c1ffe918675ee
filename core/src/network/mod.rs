//! The network layer every client kind is built on: connections, version negotiation,
//! authentication, cluster metadata, request routing, backoff and timeouts — all sans-IO.
//!
//! # The driving contract
//!
//! Every client core — [`NetworkClient`], the [`LowLevelClient`] over it, and the producer,
//! consumer and admin cores — implements [`ClientCore`] and is driven by exactly one driver:
//! a kafkit runtime driver (`kafkit-tokio`, `kafkit-smol`, `kafkit-blocking`, all running the
//! one loop in [`crate::driver::event_loop`]), the simulation, or an application's own event
//! loop. The driver owns the sockets and the clock; the core owns every protocol decision.
//!
//! 1. **Inputs.** [`ClientCore::handle_connected`] when a connection the core asked for is up
//!    (TCP connected; TLS runs *inside* the core, so the driver never does a handshake);
//!    [`ClientCore::handle_bytes`] (or [`ClientCore::handle_data`]) with every chunk read from
//!    a socket, of any size — frames may be split or batched arbitrarily;
//!    [`ClientCore::handle_closed`] when a socket fails, the peer closes it, or it cannot be
//!    opened; [`ClientCore::handle_timeout`] when the instant last returned by
//!    [`ClientCore::poll_timeout`] has passed. The application's commands (send a record,
//!    commit, create a topic) are inputs too: they change state and queue output, and each
//!    takes an [`OpId`](crate::OpId) that the event reporting its outcome carries back.
//! 2. **Outputs.** After *every* input, drain [`ClientCore::poll_output`] until it returns
//!    `None`, acting on each [`Output`] in order:
//!    - `Connect { conn, host, port }`: open a TCP connection and later report it with
//!      `handle_connected` or `handle_closed` (with [`CloseReason::ConnectFailed`]). `host` is
//!      a name: its lookup may block, so resolve it off the thread that drives the core (the
//!      socket drivers resolve on the connection's own task or thread). The core bounds the
//!      whole setup with `socket_connection_setup_timeout_ms` itself.
//!    - `Transmit { conn, data }`: write `data` after everything transmitted on `conn` before,
//!      in order, through a queue of the driver's own. There is no backpressure signal: the
//!      core bounds what it queues (in-flight requests per connection, the producer's buffer
//!      memory, the consumer's fetch budget). The core transmits nothing on a connection
//!      before `handle_connected` for it.
//!    - `Close { conn }`: the core has forgotten the connection; no `handle_closed` is expected
//!      for it. Bytes already queued for it must still be written before the socket closes —
//!      they can be an acks=0 Produce the core already reported as sent, or a LeaveGroup —
//!      within a bound of the driver's choosing (the socket drivers allow
//!      [`CLOSE_LINGER`](crate::driver::event_loop::CLOSE_LINGER), 5 s).
//!    - `Event(e)`: a result or state change for the application (a delivery, a commit, a
//!      rebalance step, a fatal error, closed).
//!
//!    Inputs may be fed while draining (an application reacting to an event by calling the
//!    core again is fine): what they queue comes after the outputs already queued.
//! 3. **Time.** Every input carries `now`, which never goes backwards. The core never reads a
//!    clock: its deadlines fire only through `handle_timeout(now)`. A `handle_timeout` that
//!    comes early, late or when nothing is due is harmless (seeded simulations check this with
//!    `Simulation::with_spurious_timeouts` in kafkit-sim), so a loop may call it whenever it
//!    wakes. Record timestamps need the wall clock, which is an input too: the
//!    producer core refuses records without a timestamp until it has been told the time.
//! 4. **Randomness.** Jitter and other replayable choices come from the seeded [`Rng`]
//!    (`random_seed`, else a seed from the entropy source). Anything an attacker must not
//!    predict (SCRAM nonces) comes from the [`Entropy`] source in [`NetOptions::entropy`]:
//!    the OS's randomness in the socket drivers (`kafkit_os::OsEntropy`), a
//!    [`SeededEntropy`] only in simulations.
//! 5. **Setup.** [`NetOptions::from_config`] builds the options from a configuration and a
//!    [`DriverEnv`]. A PLAINTEXT or SASL_PLAINTEXT client needs only an entropy source there;
//!    TLS needs a rustls crypto provider ([`DriverEnv::with_tls`]) and, for certificate files,
//!    a file reader ([`DriverEnv::with_file_reader`]). `kafkit_os::driver_env()` has all three.
//! 6. **Group consumers.** A group member's protocol (join, sync, heartbeats, commits,
//!    rebalance steps) advances on every input. Liveness is Java's: the member must poll
//!    (`ConsumerCore::take_records`) within `max_poll_interval_ms`, or say that it waits for
//!    records between polls (`ConsumerCore::set_poll_waiting(true)`, Java's long poll);
//!    otherwise it leaves the group. An application calls `take_records` when
//!    `ConsumerEvent::RecordsReady` comes, and runs rebalance callbacks when
//!    `ConsumerEvent::RebalancePending` comes.
//!
//! Connection ids are chosen by the core and never reused within one core.
//!
//! # A loop of your own
//!
//! This is a whole, if naive, driver using only `std`: non-blocking sockets, polled every
//! millisecond. A real one waits for readiness instead (`examples/embed_mio.rs` does, with
//! the `polling` crate); the calls into the core are the same.
//!
//! ```no_run
//! use std::collections::HashMap;
//! use std::io::{ErrorKind, Read, Write};
//! use std::net::TcpStream;
//! use std::time::{Duration, Instant};
//!
//! use kafkit_core::network::{ClientCore, CloseReason, ConnId, Output};
//!
//! /// Drives `core` until `done` says so, handing every event to `on_event`.
//! fn drive<C: ClientCore>(
//!     core: &mut C,
//!     mut on_event: impl FnMut(&mut C, C::Event),
//!     mut done: impl FnMut(&C) -> bool,
//! ) {
//!     // Each connection: its socket and the bytes not yet written to it.
//!     let mut socks: HashMap<ConnId, (TcpStream, Vec<u8>)> = HashMap::new();
//!     let mut buf = vec![0u8; 64 * 1024];
//!     while !done(core) {
//!         let now = Instant::now();
//!         // Outputs, after every input (the previous turn's and the application's).
//!         while let Some(out) = core.poll_output() {
//!             match out {
//!                 Output::Connect { conn, host, port } => {
//!                     // Blocks on the lookup and the connect: fine for a sketch.
//!                     match TcpStream::connect((host.as_str(), port)) {
//!                         Ok(s) => {
//!                             s.set_nonblocking(true).unwrap();
//!                             s.set_nodelay(true).unwrap();
//!                             socks.insert(conn, (s, Vec::new()));
//!                             core.handle_connected(conn, now);
//!                         }
//!                         Err(e) => core.handle_closed(
//!                             conn,
//!                             CloseReason::ConnectFailed(e.to_string()),
//!                             now,
//!                         ),
//!                     }
//!                 }
//!                 Output::Transmit { conn, data } => {
//!                     if let Some((_, pending)) = socks.get_mut(&conn) {
//!                         pending.extend_from_slice(&data);
//!                     }
//!                 }
//!                 Output::Close { conn } => {
//!                     // Write what is queued before the socket goes (best effort here).
//!                     if let Some((mut s, pending)) = socks.remove(&conn) {
//!                         s.set_nonblocking(false).unwrap();
//!                         let _ = s.write_all(&pending);
//!                     }
//!                 }
//!                 Output::Event(event) => on_event(core, event),
//!             }
//!         }
//!         // Sockets: write what is pending, read what arrived.
//!         let mut failed = Vec::new();
//!         for (conn, (s, pending)) in socks.iter_mut() {
//!             while !pending.is_empty() {
//!                 match s.write(pending) {
//!                     Ok(n) => drop(pending.drain(..n)),
//!                     Err(e) if e.kind() == ErrorKind::WouldBlock => break,
//!                     Err(e) => {
//!                         failed.push((*conn, CloseReason::Io(e.to_string())));
//!                         break;
//!                     }
//!                 }
//!             }
//!             match s.read(&mut buf) {
//!                 Ok(0) => failed.push((*conn, CloseReason::PeerClosed)),
//!                 Ok(n) => core.handle_data(*conn, &buf[..n], Instant::now()),
//!                 Err(e) if e.kind() == ErrorKind::WouldBlock => {}
//!                 Err(e) => failed.push((*conn, CloseReason::Io(e.to_string()))),
//!             }
//!         }
//!         for (conn, reason) in failed {
//!             socks.remove(&conn);
//!             core.handle_closed(conn, reason, Instant::now());
//!         }
//!         // Timers: early or spurious calls are harmless, so a coarse check is enough.
//!         if core.poll_timeout().is_some_and(|t| t <= Instant::now()) {
//!             core.handle_timeout(Instant::now());
//!         }
//!         std::thread::sleep(Duration::from_millis(1));
//!     }
//! }
//! ```

mod client;
mod cluster;
mod connection;
mod entropy;
mod error;
mod frame;
mod low_level;
pub mod metrics;
mod read_buffer;
pub mod releases;
mod request_frame;
mod rng;
mod setup;
pub(crate) mod spans;
mod throttle;
mod tls;
mod versions;

use std::time::Instant;

use bytes::Bytes;

pub use client::{CoordinatorKind, NetEvent, NetOptions, NetworkClient, Response, Target};
pub use cluster::{BrokerInfo, ClusterView, PartitionInfo, TopicInfo};
pub use connection::ConnSettings;
pub use entropy::{Entropy, SeededEntropy};
pub use error::{CloseReason, NetError};
pub use frame::{FrameDecoder, FrameError};
pub use low_level::{LowLevelClient, LowLevelEvent};
pub use metrics::NetworkMetrics;
pub use read_buffer::{ReadBuffer, READ_SIZE};
pub use rng::Rng;
pub use setup::{DriverEnv, FileReader, RootsLoader, SetupError};
pub use throttle::BrokerThrottle;
pub use tls::{client_config as tls_client_config, TlsOptions};
pub use versions::{release_name, ApiVersionTable, BrokerVersion};

/// A connection, as the core names it to the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A broker's node id; bootstrap addresses get negative ids (-1, -2, ...) until metadata
/// names the real brokers, as in the Java client.
pub type NodeId = i32;

/// A request, as the core names it to the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// What the core asks of its driver. See the module docs for the contract.
#[derive(Debug)]
pub enum Output<E> {
    /// Open a TCP (and, per configuration, TLS) connection to `host:port` and call
    /// `handle_connected` or `handle_closed` for `conn`.
    Connect {
        /// The id to report back.
        conn: ConnId,
        /// Host name or address; resolution is the driver's job.
        host: String,
        /// Port.
        port: u16,
    },
    /// Write these bytes to the connection, after everything written before. One request
    /// frame may come as several consecutive pieces (a Produce request's record batches are
    /// shared, not copied); a driver should gather queued pieces into one vectored write
    /// ([`crate::driver::Gather`]).
    Transmit {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        data: Bytes,
    },
    /// Close the connection. The core has already forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Something for the application.
    Event(E),
}

impl<E> Output<E> {
    /// The output as the driver sees it, for a core of another event type: `Ok` for a
    /// connection to open, bytes to write or a connection to close (a core built on
    /// another passes these through as they are), `Err` with the event otherwise.
    pub fn for_driver<F>(self) -> Result<Output<F>, E> {
        match self {
            Output::Connect { conn, host, port } => Ok(Output::Connect { conn, host, port }),
            Output::Transmit { conn, data } => Ok(Output::Transmit { conn, data }),
            Output::Close { conn } => Ok(Output::Close { conn }),
            Output::Event(event) => Err(event),
        }
    }
}

/// The surface every client core offers its driver. See the module docs for the contract.
pub trait ClientCore {
    /// What the core reports to the application.
    type Event;

    /// The connection `conn` is established.
    fn handle_connected(&mut self, conn: ConnId, now: Instant);
    /// Bytes were read from `conn`.
    fn handle_data(&mut self, conn: ConnId, data: &[u8], now: Instant);
    /// Bytes were read from `conn`, handed over owned: a core that supports it slices whole
    /// frames out of `data` without copying (drivers read through a [`ReadBuffer`] so that
    /// `data` holds whole frames). The default copies, through [`ClientCore::handle_data`].
    fn handle_bytes(&mut self, conn: ConnId, data: Bytes, now: Instant) {
        self.handle_data(conn, &data, now);
    }
    /// `conn` closed, failed, or could not be opened.
    fn handle_closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant);
    /// The deadline from [`ClientCore::poll_timeout`] passed.
    fn handle_timeout(&mut self, now: Instant);
    /// The next thing for the driver to do; drain after every input.
    #[must_use]
    fn poll_output(&mut self) -> Option<Output<Self::Event>>;
    /// When to call [`ClientCore::handle_timeout`] next, if ever.
    #[must_use]
    fn poll_timeout(&self) -> Option<Instant>;
}
