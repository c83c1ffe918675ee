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
//! # Fault hooks
//! [`Cluster::crash_broker`], [`Cluster::restart_broker`], [`Cluster::move_leader`] and
//! per-API [`Cluster::set_hook`] (drop, delay or answer requests).

pub mod config;
pub mod endpoint;
pub mod group;
pub mod hooks;
pub mod log;
pub mod topics;

mod admin;
mod configs;
mod coordinator;
mod faults;
mod fetch;
mod metadata;
mod offsets;
mod produce;
mod sasl;
mod versions;
mod wire;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use kafkit_core::codec::Uuid;
use kafkit_core::network::Rng;
use kafkit_core::protocol::{
    self, ApiKey, FetchResponse, RequestBody, RequestHeader, ResponseBody,
};

pub use config::{ClusterConfig, SaslUser};
pub use endpoint::{serve_cluster, ClusterEndpoint};
pub use hooks::{Hook, HookAction};
pub use log::{PartitionLog, StoredBatch};
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
    transactional_ids: HashMap<String, (i64, i16)>,
    broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
    groups: group::GroupCoordinator,
    /// Something changed that parked requests may be waiting for.
    wake: bool,
    /// Large response frames handed back after they were written (the dev broker's writers).
    frame_pool: wire::FramePool,
    /// Fetch responses come as pieces that refer to the stored batches (the dev broker).
    spliced_fetches: bool,
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
        Cluster {
            groups,
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
            transactional_ids: HashMap::new(),
            broker_configs: BTreeMap::new(),
            wake: false,
            frame_pool: wire::FramePool::default(),
            spliced_fetches: false,
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

    /// Handles one request frame (without its 4-byte size prefix) that arrived on `conn` of
    /// `broker`.
    pub fn handle_frame(
        &mut self,
        broker: i32,
        conn: ConnKey,
        frame: Bytes,
        now: Instant,
    ) -> FrameReply {
        self.advance(now);
        let key = (broker, conn);
        if !self.is_alive(broker) {
            self.conns.remove(&key);
            return FrameReply {
                frames: Vec::new(),
                close: true,
            };
        }
        if !self.conns.contains_key(&key) {
            let _ = self.connection_opened(broker, conn, "/127.0.0.1");
        }
        let Some(c) = self.conns.get_mut(&key) else {
            return FrameReply {
                frames: Vec::new(),
                close: true,
            };
        };
        c.queue.push_back(frame);
        let mut out = Vec::new();
        self.pump(key, now, &mut out);
        self.settle(now);
        // Answers this connection got while settling (a parked request completed at once)
        // come after what the request itself produced.
        if let Some(q) = self.outbox.get_mut(&broker) {
            let mut rest = VecDeque::new();
            for (c, o) in q.drain(..) {
                if c == conn {
                    out.push(o);
                } else {
                    rest.push_back((c, o));
                }
            }
            *q = rest;
        }
        let mut reply = FrameReply::default();
        for o in out {
            match o {
                ConnOutput::Send(b) => reply.frames.push(b),
                ConnOutput::Close => {
                    reply.close = true;
                    break;
                }
            }
        }
        reply
    }

    /// The next instant at which [`Cluster::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let waits = self
            .conns
            .values()
            .filter_map(|c| c.waiting.as_ref().and_then(Waiting::deadline));
        let repl = self.replication.keys().next().map(|(t, _)| *t);
        waits.chain(repl).chain(self.groups.poll_timeout()).min()
    }

    /// Completes what is due at `now`: replication, fetch and produce waits, delays.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.groups.handle_timeout(now);
        self.settle(now);
    }

    /// Frames and closes produced outside [`Cluster::handle_frame`], for every broker.
    pub fn take_ready(&mut self) -> Vec<(i32, ConnKey, ConnOutput)> {
        let mut all = Vec::new();
        for (b, q) in std::mem::take(&mut self.outbox) {
            all.extend(q.into_iter().map(|(c, o)| (b, c, o)));
        }
        all
    }

    /// Frames and closes produced outside [`Cluster::handle_frame`] for `broker`'s
    /// connections.
    pub fn take_ready_for(&mut self, broker: i32) -> Vec<(ConnKey, ConnOutput)> {
        self.outbox
            .remove(&broker)
            .map(Vec::from)
            .unwrap_or_default()
    }

    /// Applies replication due at `now`.
    fn advance(&mut self, now: Instant) {
        while let Some(entry) = self.replication.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let r = entry.remove();
            self.replicate(&r.topic, r.partition, Some(r.leo));
        }
    }

    /// Followers of a partition copy the leader's log up to `leo` (all of it for `None`);
    /// ISR and high watermark follow.
    fn replicate(&mut self, topic: &str, partition: i32, leo: Option<i64>) {
        let alive: Vec<bool> = self.brokers.iter().map(|b| b.alive).collect();
        let is_alive =
            |b: i32| usize::try_from(b).ok().and_then(|i| alive.get(i)).copied() == Some(true);
        let Some(p) = self
            .topics
            .get_mut(topic)
            .and_then(|t| t.partition_mut(partition))
        else {
            return;
        };
        if p.leader < 0 {
            return;
        }
        let leo = leo.unwrap_or(p.log_end_offset());
        for r in p.replicas.clone() {
            if r != p.leader && is_alive(r) {
                p.set_follower_leo(r, leo);
            }
        }
        if p.update_isr_and_hw(&is_alive) {
            self.wake = true;
        }
    }

    /// After the leader of a partition appended up to `leo`: replicate now or schedule it.
    fn after_append(&mut self, topic: &str, partition: i32, leo: i64, now: Instant) {
        if self.config.replication_delay.is_zero() {
            self.replicate(topic, partition, Some(leo));
        } else {
            let alive: Vec<bool> = self.brokers.iter().map(|b| b.alive).collect();
            if let Some(p) = self
                .topics
                .get_mut(topic)
                .and_then(|t| t.partition_mut(partition))
            {
                // The leader alone may already be the whole ISR.
                let is_alive = |b: i32| {
                    usize::try_from(b).ok().and_then(|i| alive.get(i)).copied() == Some(true)
                };
                if p.update_isr_and_hw(&is_alive) {
                    self.wake = true;
                }
            }
            self.schedule_replication(topic, partition, leo, now);
        }
        self.wake = true;
    }

    fn schedule_replication(&mut self, topic: &str, partition: i32, leo: i64, now: Instant) {
        self.next_seq += 1;
        self.replication.insert(
            (now + self.config.replication_delay, self.next_seq),
            Replication {
                topic: topic.to_owned(),
                partition,
                leo,
            },
        );
    }

    /// Completes parked requests whose condition or deadline has come, until nothing changes.
    fn settle(&mut self, now: Instant) {
        for _ in 0..1000 {
            if self.groups.poll_timeout().is_some_and(|t| t <= now) {
                self.groups.handle_timeout(now);
            }
            self.drain_group_completions(now);
            let due: Vec<(i32, ConnKey)> = {
                let mut keys: Vec<(i32, ConnKey)> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| match &c.waiting {
                        None => false,
                        Some(w) => w.deadline().is_some_and(|d| d <= now) || self.wake,
                    })
                    .map(|(k, _)| *k)
                    .collect();
                keys.sort_unstable();
                keys
            };
            self.wake = false;
            let mut progressed = false;
            for key in due {
                if self.try_complete(key, now) {
                    progressed = true;
                }
            }
            if !progressed && !self.wake {
                return;
            }
        }
        tracing::warn!("cluster: parked requests did not settle");
    }

    /// Completes the request parked on `key` if it is ready; then handles the requests
    /// queued behind it. Outputs go to the outbox.
    fn try_complete(&mut self, key: (i32, ConnKey), now: Instant) -> bool {
        let Some(conn) = self.conns.get_mut(&key) else {
            return false;
        };
        let Some(waiting) = conn.waiting.take() else {
            return false;
        };
        let expired = waiting.deadline().is_some_and(|d| d <= now);
        let result = match waiting {
            Waiting::Fetch(f) => self.complete_fetch(key, f, expired, now),
            Waiting::Produce(p) => self.complete_produce(p, expired),
            Waiting::Group => Err(Waiting::Group),
            Waiting::Delay(d) => {
                if d.until > now {
                    Err(Waiting::Delay(d))
                } else {
                    let Delayed { header, body, .. } = *d;
                    let ctx = Ctx {
                        broker: key.0,
                        conn: key.1,
                        version: header.request_api_version,
                        header,
                        now,
                    };
                    let outcome = self.dispatch(&ctx, body);
                    Ok((ctx.header, outcome))
                }
            }
        };
        match result {
            Err(still) => {
                if let Some(conn) = self.conns.get_mut(&key) {
                    conn.waiting = Some(still);
                }
                false
            }
            Ok((header, outcome)) => {
                let mut out = Vec::new();
                let stop = self.emit(key, &header, outcome, &mut out);
                if !stop {
                    self.pump(key, now, &mut out);
                }
                let q = self.outbox.entry(key.0).or_default();
                q.extend(out.into_iter().map(|o| (key.1, o)));
                true
            }
        }
    }

    /// Handles queued frames of `key` until one waits or the queue is empty.
    fn pump(&mut self, key: (i32, ConnKey), now: Instant, out: &mut Vec<ConnOutput>) {
        loop {
            let Some(conn) = self.conns.get_mut(&key) else {
                return;
            };
            if conn.waiting.is_some() {
                return;
            }
            let Some(frame) = conn.queue.pop_front() else {
                return;
            };
            let (header, outcome) = self.process(key, frame, now);
            if self.emit(key, &header, outcome, out) {
                return;
            }
        }
    }

    /// Turns an outcome into outputs; returns true if the connection closed or now waits.
    fn emit(
        &mut self,
        key: (i32, ConnKey),
        header: &RequestHeader,
        outcome: Outcome,
        out: &mut Vec<ConnOutput>,
    ) -> bool {
        match outcome {
            Outcome::NoReply => false,
            Outcome::Raw(frame) => {
                out.push(ConnOutput::Send(frame));
                false
            }
            Outcome::Reply(body) => {
                let api = body.api_key();
                let encoded = wire::encode_response_frame(header, &body, &self.frame_pool);
                if let ResponseBody::Fetch(f) = body {
                    // Records gathered from several batches were copied into pooled memory
                    // (fetch_response): back to the pool now that they are in the frame.
                    let records = f.responses.into_iter().flat_map(|t| t.partitions);
                    for r in records.filter_map(|p| p.records) {
                        self.frame_pool.give(r);
                    }
                }
                match encoded {
                    Ok(frame) => {
                        out.push(ConnOutput::Send(frame));
                        false
                    }
                    Err(e) => {
                        tracing::warn!(?api, version = header.request_api_version, error = %e, "cluster: cannot encode response; closing");
                        self.close_conn(key, out);
                        true
                    }
                }
            }
            Outcome::ReplyFetchPieces(response, records) => {
                match wire::encode_fetch_pieces(header, response, records) {
                    Ok(pieces) => {
                        out.extend(pieces.into_iter().map(ConnOutput::Send));
                        false
                    }
                    Err(e) => {
                        tracing::warn!(api = ?ApiKey::Fetch, version = header.request_api_version, error = %e, "cluster: cannot encode response; closing");
                        self.close_conn(key, out);
                        true
                    }
                }
            }
            Outcome::ReplyThenClose(body) => {
                if let Ok(frame) = wire::encode_response_frame(header, &body, &self.frame_pool) {
                    out.push(ConnOutput::Send(frame));
                }
                self.close_conn(key, out);
                true
            }
            Outcome::Close(why) => {
                tracing::debug!(broker = key.0, conn = key.1, %why, "cluster: closing connection");
                self.close_conn(key, out);
                true
            }
            Outcome::Wait(w) => {
                if let Some(conn) = self.conns.get_mut(&key) {
                    conn.waiting = Some(w);
                }
                true
            }
        }
    }

    fn close_conn(&mut self, key: (i32, ConnKey), out: &mut Vec<ConnOutput>) {
        out.push(ConnOutput::Close);
        self.conns.remove(&key);
        self.groups.connection_closed(key.0, key.1);
    }

    /// Decodes and checks one frame, then dispatches it. `Err` is an outcome decided before
    /// a header could be read.
    fn process(
        &mut self,
        key: (i32, ConnKey),
        frame: Bytes,
        now: Instant,
    ) -> (RequestHeader, Outcome) {
        if self
            .conns
            .get(&key)
            .is_some_and(|c| c.sasl.expects_raw_token())
        {
            return (
                RequestHeader::default(),
                self.sasl_raw_token(key, &frame, now),
            );
        }
        if frame.len() < 8 {
            return (
                RequestHeader::default(),
                Outcome::Close("frame shorter than a request header".into()),
            );
        }
        let api_key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if api_key == ApiKey::ApiVersions.as_i16() {
            if let Some(&(_, max)) = self.versions.get(&ApiKey::ApiVersions) {
                if version > max {
                    let header = RequestHeader {
                        request_api_key: api_key,
                        request_api_version: 0,
                        correlation_id,
                        ..Default::default()
                    };
                    let body = self.api_versions_unsupported();
                    return (header, Outcome::Reply(body));
                }
            }
        }
        let (header, body) = match protocol::decode_request_frame_lenient(frame) {
            Ok((header, body, trailing)) => {
                if trailing > 0 {
                    tracing::debug!(
                        api = ?body.api_key(),
                        trailing,
                        "cluster: ignoring bytes after the request body, as Kafka does"
                    );
                }
                (header, body)
            }
            Err(e) => {
                return (
                    RequestHeader::default(),
                    Outcome::Close(format!("undecodable request: {e}")),
                )
            }
        };
        let api = body.api_key();
        match self.versions.get(&api) {
            Some(&(min, max)) if (min..=max).contains(&version) => {}
            _ => {
                return (
                    RequestHeader::default(),
                    Outcome::Close(format!("{} v{version} is not supported", api.name())),
                )
            }
        }
        let authenticated = self
            .conns
            .get(&key)
            .is_some_and(|c| c.sasl.is_authenticated());
        if !authenticated
            && !matches!(
                api,
                ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
            )
        {
            return (
                RequestHeader::default(),
                Outcome::Close(format!("{} before SASL authentication", api.name())),
            );
        }
        if let Some(hook) = self.hooks.get_mut(&api) {
            match hook(&header, &body) {
                HookAction::Pass => {}
                HookAction::Drop => return (header, Outcome::NoReply),
                HookAction::Delay(d) => {
                    let w = Waiting::Delay(Box::new(Delayed {
                        header: header.clone(),
                        body,
                        until: now + d,
                    }));
                    return (header, Outcome::Wait(w));
                }
                HookAction::Respond(resp) => {
                    if resp.api_key() != api {
                        return (
                            header,
                            Outcome::Close("hook answered with another API's response".into()),
                        );
                    }
                    return (header, Outcome::Reply(resp));
                }
            }
        }
        let ctx = Ctx {
            broker: key.0,
            conn: key.1,
            version,
            header,
            now,
        };
        let outcome = self.dispatch(&ctx, body);
        (ctx.header, outcome)
    }

    /// Routes a decoded, admitted request to its handler.
    fn dispatch(&mut self, ctx: &Ctx, body: RequestBody) -> Outcome {
        match body {
            RequestBody::ApiVersions(r) => self.handle_api_versions(ctx, r),
            RequestBody::Metadata(r) => self.handle_metadata(ctx, r),
            RequestBody::Produce(r) => self.handle_produce(ctx, r),
            RequestBody::Fetch(r) => self.handle_fetch(ctx, r),
            RequestBody::ListOffsets(r) => self.handle_list_offsets(ctx, r),
            RequestBody::InitProducerId(r) => self.handle_init_producer_id(ctx, r),
            RequestBody::OffsetForLeaderEpoch(r) => self.handle_offset_for_leader_epoch(ctx, r),
            RequestBody::CreateTopics(r) => self.handle_create_topics(ctx, r),
            RequestBody::DeleteTopics(r) => self.handle_delete_topics(ctx, r),
            RequestBody::CreatePartitions(r) => self.handle_create_partitions(ctx, r),
            RequestBody::DeleteRecords(r) => self.handle_delete_records(ctx, r),
            RequestBody::DescribeConfigs(r) => self.handle_describe_configs(ctx, r),
            RequestBody::AlterConfigs(r) => self.handle_alter_configs(ctx, r),
            RequestBody::IncrementalAlterConfigs(r) => {
                self.handle_incremental_alter_configs(ctx, r)
            }
            RequestBody::DescribeCluster(r) => self.handle_describe_cluster(ctx, r),
            RequestBody::SaslHandshake(r) => self.handle_sasl_handshake(ctx, r),
            RequestBody::SaslAuthenticate(r) => self.handle_sasl_authenticate(ctx, r),
            RequestBody::FindCoordinator(r) => self.handle_find_coordinator(ctx, r),
            body if group::GroupCoordinator::handles(body.api_key()) => {
                self.handle_group_request(ctx, body)
            }
            other => Outcome::Close(format!("{} is not implemented", other.api_key().name())),
        }
    }
}
