//! The network layer every client kind is built on: connections, version negotiation,
//! authentication, cluster metadata, request routing, backoff and timeouts — all sans-IO.
//!
//! # The driving contract
//!
//! A client core (today [`NetworkClient`] and the [`LowLevelClient`] over it; later the
//! producer, consumer and admin cores, which all implement [`ClientCore`]) is driven by exactly
//! one driver, which owns the sockets and the clock:
//!
//! 1. Inputs. The driver calls [`ClientCore::handle_connected`] when a connection it was asked
//!    to open is up (TCP connected and, with TLS, the handshake done),
//!    [`ClientCore::handle_data`] with every chunk read from a socket (any size: frames may be
//!    split or batched arbitrarily), [`ClientCore::handle_closed`] when a socket fails, closes,
//!    or cannot be opened, and [`ClientCore::handle_timeout`] when the instant last returned by
//!    [`ClientCore::poll_timeout`] has passed. The application's own calls (send a request,
//!    later produce or subscribe) are inputs too: they only change state and queue output.
//! 2. Outputs. After *every* input the driver drains [`ClientCore::poll_output`] until it
//!    returns `None`, acting on each [`Output`]: open a connection (`Connect`, resolving the
//!    host itself), write bytes in order (`Transmit`), close a socket (`Close`; no
//!    `handle_closed` is expected for it), or hand an event to the application (`Event`).
//!    Then it asks [`ClientCore::poll_timeout`] for the next deadline and sleeps until then or
//!    until the next input.
//! 3. Time. Every input carries `now`, which never goes backwards. The core never reads a
//!    clock: timeouts fire only through `handle_timeout(now)`. In the simulation `now` is
//!    virtual.
//! 4. Randomness comes from the seeded [`Rng`] in the core's configuration, so a run replays
//!    exactly from its seed and its inputs.
//!
//! Connection ids are chosen by the core and never reused within one core.

mod client;
mod cluster;
mod connection;
mod entropy;
mod error;
mod frame;
mod low_level;
mod read_buffer;
mod request_frame;
mod rng;
mod setup;
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
pub use read_buffer::{ReadBuffer, READ_SIZE};
pub use rng::Rng;
pub use setup::{DriverEnv, FileReader, RootsLoader, SetupError};
pub use tls::{client_config as tls_client_config, TlsOptions};
pub use versions::{ApiVersionTable, BrokerVersion};

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
