//! An in-memory Kafka cluster that speaks the real wire protocol through kafkit's generated
//! codec: the server side of the simulation (and, served over TCP, a development broker).
//!
//! # Driving it
//! The cluster owns no sockets, threads, clocks or entropy: time is the `now` passed to each
//! call (virtual in the simulation) and every random choice comes from
//! [`ClusterConfig::seed`].
//!
//! - [`Cluster::connection_opened`] when a client connects to a broker (false: refused,
//!   the broker is down), [`Cluster::connection_closed`] when it goes away.
//! - [`Cluster::handle_frame`] for each request frame (without its size prefix): the reply
//!   holds the response frames to send now (with size prefix) and whether to close.
//! - Requests may complete later (a Fetch waiting for `min_bytes`, an `acks=all` Produce
//!   waiting for replication, a group join waiting for the rebalance, a hook's delay):
//!   call [`Cluster::handle_timeout`] at [`Cluster::poll_timeout`], then drain
//!   [`Cluster::take_ready`] (or [`Cluster::take_ready_for`] one broker) for frames and
//!   closes produced outside a request — including those of fault hooks such as
//!   [`Cluster::crash_broker`].
//!
//! Requests on one connection are handled one at a time in order, as Kafka does: while one
//! waits, later frames on that connection queue behind it.
//!
//! # What closes a connection
//! As with Kafka: a frame that does not decode, an API or version the cluster does not
//! advertise, any request other than ApiVersions/SaslHandshake/SaslAuthenticate before SASL
//! authentication completes, a failed authentication (after its error response), and an
//! `acks=0` produce that failed.
//!
//! # Transactions
//! The cluster is also a transaction coordinator ([`txn`]): transactional producers of any
//! client (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn) get
//! COMMIT/ABORT markers in their partitions, `read_committed` fetches stop at the last stable
//! offset with the aborted transactions listed, and open transactions time out on the
//! cluster's clock.
//!
//! # Fault hooks
//! [`Cluster::crash_broker`], [`Cluster::restart_broker`], [`Cluster::move_leader`] and
//! per-API [`Cluster::set_hook`] (drop, delay or answer requests), and quota throttling
//! ([`Cluster::set_throttle`]).

pub mod config;
pub mod endpoint;
pub mod group;
pub mod group848;
pub mod hooks;
pub mod log;
pub mod topics;
pub mod txn;

mod admin;
mod configs;
mod downconvert;
mod faults;
mod fetch;
mod find_coordinator;
mod group848_routing;
mod group_admin;
mod group_members;
mod group_offsets;
mod group_routing;
mod metadata;
mod offsets;
mod produce;
pub mod releases;
mod replication;
mod requests;
mod sasl;
mod versions;
mod wire;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use kafkit_core::codec::Uuid;
use kafkit_core::network::Rng;
use kafkit_core::protocol::{ApiKey, FetchResponse, RequestBody, RequestHeader, ResponseBody};

pub use config::{ClusterConfig, SaslUser};
pub use endpoint::{serve_cluster, ClusterEndpoint};
pub use hooks::{Hook, HookAction};
pub use log::{PartitionLog, StoredBatch};
pub use releases::{Release, UnknownRelease};
pub use topics::Topic;
pub(crate) use wire::FramePool;

use fetch::{FetchSessions, FetchWait};
use produce::ProduceWait;
use sasl::{SaslState, SaslUsers};

/// Identifies a client connection to one broker (the caller's connection number).
pub type ConnKey = u64;

/// Something to do on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnOutput {
    /// Send this frame (size prefix included), or the next piece of one (the dev broker's
    /// Fetch responses).
    Send(Bytes),
    /// Close the connection (after sending what came before).
    Close,
}

/// What to do after a request frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct FrameReply {
    /// Response frames to send, in order, size prefix included (the dev broker's cluster
    /// sends a Fetch response as several consecutive pieces of one frame).
    pub frames: Vec<Bytes>,
    /// Close the connection after sending them.
    pub close: bool,
}

/// A broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Node id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, if any.
    pub rack: Option<String>,
    /// Whether the broker is up.
    pub alive: bool,
}

/// A request in progress on a muted connection.
enum Waiting {
    /// A fetch waiting for `min_bytes` or `max_wait`.
    Fetch(Box<FetchWait>),
    /// An `acks=all` produce waiting for the ISR to copy its batches.
    Produce(Box<ProduceWait>),
    /// A request a hook delayed, handled when the delay ends.
    Delay(Box<Delayed>),
    /// A group request the group coordinator parked (JoinGroup, SyncGroup).
    Group,
}

/// A request held back by a hook's [`HookAction::Delay`].
struct Delayed {
    header: RequestHeader,
    body: RequestBody,
    until: Instant,
}

impl Waiting {
    fn deadline(&self) -> Option<Instant> {
        match self {
            Waiting::Fetch(f) => Some(f.deadline),
            Waiting::Produce(p) => Some(p.deadline),
            Waiting::Delay(d) => Some(d.until),
            Waiting::Group => None,
        }
    }
}

/// What changed since [`Cluster::settle`] last finished, as parked fetches see it. A parked
/// fetch reads only its own partitions, so while none of them changed (no append, no high
/// watermark move, no leader or broker change, no deletion) it would be found not ready again:
/// settling skips it rather than reading every parked fetch's partitions after each append
/// (most of a simulated hour's cluster time, BENCHMARKS.md).
#[derive(Debug, Default)]
struct Changes {
    /// A change that any fetch may see (a broker crashed or restarted, a leader moved,
    /// records or a topic were deleted, a transaction ended): every parked fetch is read.
    all: bool,
    /// Partitions appended to or whose high watermark moved, by topic id.
    partitions: Vec<(Uuid, i32)>,
}

/// Per-connection state.
struct Conn {
    /// The client's address as group APIs report it (`/host`).
    client_host: String,
    sasl: SaslState,
    waiting: Option<Waiting>,
    queue: VecDeque<Bytes>,
}

/// The request being handled.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub broker: i32,
    pub conn: ConnKey,
    pub header: RequestHeader,
    pub version: i16,
    pub now: Instant,
}

/// What a handler decided.
enum Outcome {
    /// Respond with this body.
    Reply(ResponseBody),
    /// Respond with this Fetch response, whose records are empty, with these stored batches
    /// spliced in as its records (see [`Cluster::set_spliced_fetches`]).
    ReplyFetchPieces(FetchResponse, wire::FetchRecords),
    /// No response (`acks=0`, a dropped request).
    NoReply,
    /// Respond later.
    Wait(Waiting),
    /// Send this raw frame (legacy SASL tokens), size prefix included.
    Raw(Bytes),
    /// Respond, then close the connection.
    ReplyThenClose(ResponseBody),
    /// Close the connection without a response.
    Close(String),
}

/// A pending follower catch-up: at its time, the followers of the partition copy the
/// leader's log up to `leo`.
#[derive(Debug, Clone)]
struct Replication {
    topic: String,
    partition: i32,
    leo: i64,
}

/// The simulated cluster.
pub struct Cluster {
    config: ClusterConfig,
    versions: BTreeMap<ApiKey, (i16, i16)>,
    brokers: Vec<Broker>,
    topics: BTreeMap<String, Topic>,
    topic_names: HashMap<Uuid, String>,
    conns: HashMap<(i32, ConnKey), Conn>,
    sessions: FetchSessions,
    outbox: BTreeMap<i32, VecDeque<(ConnKey, ConnOutput)>>,
    hooks: HashMap<ApiKey, Hook>,
    rng: Rng,
    start: Instant,
    sasl_users: SaslUsers,
    replication: BTreeMap<(Instant, u64), Replication>,
    next_seq: u64,
    next_producer_id: i64,
    txns: txn::TxnCoordinator,
    broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
    groups: group::GroupCoordinator,
    groups848: group848::ConsumerGroups,
    /// Something changed that parked requests may be waiting for: the next settling round
    /// reaches every parked request.
    wake: bool,
    /// What changed since settling last finished, for parked fetches (see [`Changes`]).
    changes: Changes,
    /// Large response frames handed back after they were written (the dev broker's writers).
    frame_pool: wire::FramePool,
    /// Fetch responses come as pieces that refer to the stored batches (the dev broker).
    spliced_fetches: bool,
    /// Quota throttling per broker ([`Cluster::set_throttle`]).
    throttles: BTreeMap<i32, Vec<faults::Throttle>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("brokers", &self.brokers)
            .field("topics", &self.topics.keys().collect::<Vec<_>>())
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Takes large response frames from `pool` (where the dev broker's writers hand them
    /// back).
    pub(crate) fn set_frame_pool(&mut self, pool: FramePool) {
        self.frame_pool = pool;
    }

    /// Answers Fetch requests with frames in pieces (the dev broker, which writes them with
    /// one vectored write): the response's own bytes, then the stored batches themselves
    /// rather than a copy, and so on. The pieces of a frame are consecutive entries of
    /// `FrameReply::frames` or consecutive `ConnOutput::Send`s; their concatenation is the
    /// frame the cluster sends otherwise, byte for byte.
    pub(crate) fn set_spliced_fetches(&mut self, on: bool) {
        self.spliced_fetches = on;
    }

    /// A cluster whose brokers listen at `broker-<i>:<9092 + i>` (the simulation's
    /// addresses), starting at `now`.
    pub fn new(config: ClusterConfig, now: Instant) -> Self {
        let listeners = (0..config.brokers)
            .map(|i| (format!("broker-{i}"), 9092 + i as i32))
            .collect();
        Self::with_listeners(config, listeners, now)
    }

    /// A cluster with one broker per listener `(host, port)` (node ids in order from 0),
    /// starting at `now`. `config.brokers` is ignored in favour of the listener count.
    pub fn with_listeners(
        mut config: ClusterConfig,
        listeners: Vec<(String, i32)>,
        now: Instant,
    ) -> Self {
        config.brokers = listeners.len();
        let mut rng = Rng::new(config.seed ^ 0xC1u64.rotate_left(56));
        let sasl_users = SaslUsers::new(&config.sasl_users, &mut rng);
        let brokers = listeners
            .into_iter()
            .enumerate()
            .map(|(i, (host, port))| Broker {
                id: i as i32,
                host,
                port,
                rack: None,
                alive: true,
            })
            .collect();
        let groups = group::GroupCoordinator::new(group::GroupConfig {
            group_min_session_timeout_ms: config.group_min_session_timeout_ms,
            group_max_session_timeout_ms: config.group_max_session_timeout_ms,
            group_initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
        });
        let groups848 = group848::ConsumerGroups::new(group848::ConsumerGroupConfig {
            session_timeout_ms: config.group_consumer_session_timeout_ms,
            heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
        });
        Cluster {
            groups,
            groups848,
            versions: config.version_table(),
            config,
            brokers,
            topics: BTreeMap::new(),
            topic_names: HashMap::new(),
            conns: HashMap::new(),
            sessions: FetchSessions::default(),
            outbox: BTreeMap::new(),
            hooks: HashMap::new(),
            rng,
            start: now,
            sasl_users,
            replication: BTreeMap::new(),
            next_seq: 0,
            next_producer_id: 1000,
            txns: txn::TxnCoordinator::default(),
            broker_configs: BTreeMap::new(),
            wake: false,
            changes: Changes::default(),
            frame_pool: wire::FramePool::default(),
            spliced_fetches: false,
            throttles: BTreeMap::new(),
        }
    }

    /// The configuration the cluster was built with.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// The brokers, by node id.
    pub fn brokers(&self) -> &[Broker] {
        &self.brokers
    }

    /// The version ranges every broker advertises.
    pub fn api_versions(&self) -> &BTreeMap<ApiKey, (i16, i16)> {
        &self.versions
    }

    /// The topic `name`, if it exists.
    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.get(name)
    }

    /// Names of all topics.
    pub fn topic_names(&self) -> impl Iterator<Item = &str> {
        self.topics.keys().map(String::as_str)
    }

    /// Partition `partition` of `topic`, if it exists.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionLog> {
        self.topics.get(topic)?.partition(partition)
    }

    /// Installs a hook for every request of `api` (replacing any earlier one).
    pub fn set_hook(&mut self, api: ApiKey, hook: Hook) {
        self.hooks.insert(api, hook);
    }

    /// Removes the hook of `api`.
    pub fn clear_hook(&mut self, api: ApiKey) {
        self.hooks.remove(&api);
    }

    /// Milliseconds since the epoch at `now` (the configured start time plus virtual time).
    pub fn wall_ms(&self, now: Instant) -> i64 {
        self.config.start_time_ms + now.saturating_duration_since(self.start).as_millis() as i64
    }

    fn is_alive(&self, broker: i32) -> bool {
        usize::try_from(broker)
            .ok()
            .and_then(|i| self.brokers.get(i))
            .is_some_and(|b| b.alive)
    }

    fn broker(&self, id: i32) -> Option<&Broker> {
        usize::try_from(id).ok().and_then(|i| self.brokers.get(i))
    }

    /// A client connected to `broker` from `client_host` (as group APIs report it, e.g.
    /// `/127.0.0.1`). Returns false if the broker is down: refuse the connection.
    pub fn connection_opened(&mut self, broker: i32, conn: ConnKey, client_host: &str) -> bool {
        if !self.is_alive(broker) {
            return false;
        }
        let sasl = self.sasl_users.initial_state();
        self.conns.insert(
            (broker, conn),
            Conn {
                client_host: client_host.to_owned(),
                sasl,
                waiting: None,
                queue: VecDeque::new(),
            },
        );
        true
    }

    /// The client closed `conn` (or the caller closed it after a close request): forgets its
    /// state and any request it had in progress.
    pub fn connection_closed(&mut self, broker: i32, conn: ConnKey) {
        self.conns.remove(&(broker, conn));
        self.groups.connection_closed(broker, conn);
        self.outbox_drop_conn(broker, conn);
    }

    fn outbox_drop_conn(&mut self, broker: i32, conn: ConnKey) {
        if let Some(q) = self.outbox.get_mut(&broker) {
            q.retain(|(c, _)| *c != conn);
        }
    }
}
