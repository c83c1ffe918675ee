//! [`NetworkClient`]: many connections, one cluster view, and a queue of requests routed to
//! the right broker.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::cluster::{host_port, ClusterView};
use super::connection::{ConnEvent, ConnSettings, Connection, Opening, SetupExchange};
use super::error::{CloseReason, NetError};
use super::metrics::{NetRecorder, NetworkMetrics};
use super::rng::Rng;
use super::tls::TlsSession;
use super::versions::{ApiVersionTable, BrokerVersion, LEGACY_PROBES};
use super::{ConnId, NodeId, Output, RequestId};
use crate::deadline::Deadline;
use crate::protocol::{ApiKey, ErrorCode, MetadataRequest, RequestBody, ResponseBody};

mod conn_events;
mod metadata;
mod routing;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A broker by node id (bootstrap addresses have negative ids).
    Node(NodeId),
    /// The least loaded broker.
    Any,
    /// The leader of a partition (metadata is fetched as needed).
    Leader {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// The controller.
    Controller,
    /// The coordinator of a consumer group or a transactional id (looked up with
    /// FindCoordinator and cached until [`NetworkClient::invalidate_coordinator`]).
    Coordinator {
        /// Group or transaction.
        kind: CoordinatorKind,
        /// The group id or transactional id.
        key: String,
    },
}

/// What a coordinator coordinates (FindCoordinator's `key_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoordinatorKind {
    /// A consumer group (key type 0).
    Group,
    /// A transactional producer (key type 1).
    Transaction,
}

impl CoordinatorKind {
    fn key_type(self) -> i8 {
        match self {
            CoordinatorKind::Group => 0,
            CoordinatorKind::Transaction => 1,
        }
    }
}

#[derive(Debug, Default)]
struct CoordinatorState {
    node: Option<NodeId>,
    lookup: Option<RequestId>,
    not_before: Option<Instant>,
    /// A lookup failure no retry fixes; fails the requests waiting at the next routing pass.
    error: Option<NetError>,
}

/// A decoded response and the version it was exchanged at.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The broker that answered.
    pub node: NodeId,
    /// The negotiated version.
    pub version: i16,
    /// The body.
    pub body: ResponseBody,
}

impl Response {
    /// The body as the response type of request type `R`
    /// (`resp.body_as::<MetadataRequest>()?` is a `MetadataResponse`). Fails with
    /// [`UnexpectedResponse`](crate::protocol::UnexpectedResponse) if the body answers another
    /// API, which the client never hands out for a request of type `R`: it decodes every
    /// response with its request's API.
    pub fn body_as<R: crate::protocol::Request>(
        self,
    ) -> Result<R::Response, crate::protocol::UnexpectedResponse> {
        self.body.into_response::<R>()
    }
}

/// The network layer's settings (derived from the common client configuration).
#[derive(Clone)]
pub struct NetOptions {
    /// `host:port` bootstrap addresses.
    pub bootstrap: Vec<(String, u16)>,
    /// Per-connection settings.
    pub conn: ConnSettings,
    /// First reconnect delay (`reconnect_backoff_ms`).
    pub reconnect_backoff: Duration,
    /// Largest reconnect delay (`reconnect_backoff_max_ms`).
    pub reconnect_backoff_max: Duration,
    /// Delay before retrying a failed metadata refresh (`retry_backoff_ms`).
    pub retry_backoff: Duration,
    /// Metadata is refreshed at least this often (`metadata_max_age_ms`).
    pub metadata_max_age: Duration,
    /// Idle connections close after this (`connections_max_idle_ms`).
    pub connections_max_idle: Duration,
    /// Whether Metadata requests may auto-create topics.
    pub allow_auto_topic_creation: bool,
    /// Before the first metadata, fail requests at once when every bootstrap address failed
    /// in a round (`bootstrap_fail_fast`).
    pub bootstrap_fail_fast: bool,
    /// SASL, if the security protocol uses it.
    pub sasl: Option<Arc<crate::sasl::SaslConfig>>,
    /// TLS, if the security protocol uses it (see [`super::tls::client_config`]).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Seed of the core's generator (jitter, partition choices: everything a seeded run
    /// replays).
    pub seed: u64,
    /// Where security-relevant randomness comes from (SCRAM client nonces): the OS's
    /// randomness in the socket drivers, a [`super::SeededEntropy`] in simulations. Without
    /// one, SCRAM connections fail with a clear error rather than draw predictable nonces.
    pub entropy: Option<Arc<dyn super::Entropy>>,
}

impl std::fmt::Debug for NetOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetOptions")
            .field("bootstrap", &self.bootstrap)
            .field("conn", &self.conn)
            .field("sasl", &self.sasl)
            .field("tls", &self.tls.is_some())
            .field("entropy", &self.entropy.is_some())
            .finish_non_exhaustive()
    }
}

impl NetOptions {
    /// Defaults as the Java client has them, for the given bootstrap addresses.
    pub fn new(bootstrap: Vec<(String, u16)>) -> Self {
        NetOptions {
            bootstrap,
            conn: ConnSettings {
                client_id: Some("kafkit".into()),
                request_timeout: Duration::from_millis(30_000),
                setup_timeout: Duration::from_millis(10_000),
                max_in_flight: 5,
                max_frame: 100 * 1024 * 1024,
                pinned_versions: None,
                pinned_release: None,
                software_name: "kafkit".into(),
                software_version: env!("CARGO_PKG_VERSION").into(),
            },
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(1000),
            retry_backoff: Duration::from_millis(100),
            metadata_max_age: Duration::from_millis(300_000),
            connections_max_idle: Duration::from_millis(540_000),
            allow_auto_topic_creation: true,
            bootstrap_fail_fast: true,
            sasl: None,
            tls: None,
            seed: 0,
            entropy: None,
        }
    }
}

#[derive(Debug)]
struct Pending {
    id: RequestId,
    target: Target,
    body: RequestBody,
    max_version: Option<i16>,
    expect_response: bool,
    deadline: Instant,
    /// How long the request may take, queued plus in flight.
    timeout: Duration,
    internal: bool,
}

#[derive(Debug)]
struct Sent {
    node: NodeId,
    internal: bool,
    /// For the metrics: the API and when the request was written.
    api: ApiKey,
    at: Instant,
}

#[derive(Debug, Default)]
struct NodeState {
    failures: u32,
    next_attempt: Option<Instant>,
    last_error: Option<String>,
    /// Closes on our ApiVersions request in a row: two mean a broker older than 0.10.
    legacy_suspicion: u8,
    probe: Option<usize>,
    /// The table a legacy probe found. Provisional: every connection after one that used it
    /// asks ApiVersions again, so a modern broker that merely dropped two connections is not
    /// taken for 0.9 for good.
    probed: Option<Arc<ApiVersionTable>>,
    /// The versions of the last connection that became ready, for `broker_versions`.
    versions: Option<Arc<ApiVersionTable>>,
    /// An authentication or TLS failure: no retry will succeed by itself, so requests for
    /// this broker fail with it at once while its reconnect backoff runs.
    fatal: Option<NetError>,
    /// The last connection failed before it was set up (refused, unresolvable, timed out,
    /// not Kafka): what `bootstrap_fail_fast` counts. A broker that failed later (a dropped
    /// connection, a bad response) may well work on the next attempt.
    setup_failed: bool,
    /// The broker throttles this connection (KIP-219): nothing is sent to it before then.
    throttled_until: Option<Instant>,
}

#[derive(Debug, Default)]
struct MetadataState {
    topics: BTreeSet<String>,
    all_topics: bool,
    in_flight: Option<RequestId>,
    last_update: Option<Instant>,
    in_flight_full: bool,
    requested: bool,
    not_before: Option<Instant>,
}

/// Connections to every broker the client talks to, the cluster view, and request routing.
///
/// Requests go in with [`NetworkClient::send`] and come out as [`NetEvent::Response`] events;
/// each either gets the broker's decoded response or a [`NetError`] that names the broker, within
/// `request_timeout` of being sent (or of being queued, while no connection is usable).
pub struct NetworkClient {
    opts: NetOptions,
    settings: Arc<ConnSettings>,
    rng: Rng,
    bootstrap: BTreeMap<NodeId, (String, u16)>,
    node_state: HashMap<NodeId, NodeState>,
    conns: BTreeMap<ConnId, Connection>,
    conn_of_node: HashMap<NodeId, ConnId>,
    tls: HashMap<ConnId, TlsSession>,
    hosts: HashMap<ConnId, String>,
    pending: VecDeque<Pending>,
    sent: HashMap<RequestId, Sent>,
    cluster: Arc<ClusterView>,
    meta: MetadataState,
    coordinators: HashMap<(CoordinatorKind, String), CoordinatorState>,
    coordinator_lookups: HashMap<RequestId, (CoordinatorKind, String)>,
    /// Throttling per real broker id, for [`NetworkClient::throttle_stats`].
    throttle: BTreeMap<NodeId, super::BrokerThrottle>,
    out: VecDeque<Output<NetEvent>>,
    next_conn: u64,
    next_request: u64,
    closed: bool,
    metrics: NetRecorder,
}

/// What the network layer reports.
#[derive(Debug)]
// Responses dominate and are moved once, straight to their owner; boxing them would cost an
// allocation per response for nothing.
#[allow(clippy::large_enum_variant)]
pub enum NetEvent {
    /// A request sent with [`NetworkClient::send`] completed.
    Response {
        /// The request.
        id: RequestId,
        /// The response, or why there is none.
        result: Result<Response, NetError>,
    },
    /// The cluster view changed.
    MetadataUpdated(Arc<ClusterView>),
}

impl std::fmt::Debug for NetworkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkClient")
            .field("connections", &self.conns.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl NetworkClient {
    /// A client that will bootstrap from `opts.bootstrap`. Nothing happens until the first
    /// request (or [`NetworkClient::request_metadata`]).
    pub fn new(opts: NetOptions) -> Self {
        let bootstrap = opts
            .bootstrap
            .iter()
            .enumerate()
            .map(|(i, addr)| (-(i as NodeId) - 1, addr.clone()))
            .collect();
        NetworkClient {
            settings: Arc::new(opts.conn.clone()),
            rng: Rng::new(opts.seed),
            opts,
            bootstrap,
            node_state: HashMap::new(),
            conns: BTreeMap::new(),
            conn_of_node: HashMap::new(),
            tls: HashMap::new(),
            hosts: HashMap::new(),
            pending: VecDeque::new(),
            sent: HashMap::new(),
            cluster: Arc::new(ClusterView::default()),
            meta: MetadataState::default(),
            coordinators: HashMap::new(),
            coordinator_lookups: HashMap::new(),
            throttle: BTreeMap::new(),
            out: VecDeque::new(),
            next_conn: 0,
            next_request: 0,
            closed: false,
            metrics: NetRecorder::default(),
        }
    }

    /// A request still queued (no connection yet): its body and version cap, for tests that
    /// check what a client core asked for.
    #[cfg(test)]
    pub(crate) fn queued_request(&self, id: RequestId) -> Option<(&RequestBody, Option<i16>)> {
        let p = self.pending.iter().find(|p| p.id == id)?;
        Some((&p.body, p.max_version))
    }

    /// For tests of the client cores: `key`'s coordinator is `node` and its versions are
    /// `table`, as if the lookup and a connection had happened (none is opened).
    #[cfg(test)]
    pub(crate) fn set_coordinator_for_test(
        &mut self,
        kind: CoordinatorKind,
        key: &str,
        node: NodeId,
        table: ApiVersionTable,
    ) {
        let state = CoordinatorState {
            node: Some(node),
            lookup: None,
            not_before: None,
            error: None,
        };
        self.coordinators.insert((kind, key.to_owned()), state);
        self.node_state.entry(node).or_default().versions = Some(Arc::new(table));
    }

    /// The latest cluster view.
    pub fn cluster(&self) -> &Arc<ClusterView> {
        &self.cluster
    }

    /// The core's seeded generator (shared with the client kinds built on this layer).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// The versions a broker supports and the release they suggest, once a connection to it
    /// has been set up.
    pub fn broker_versions(&self, node: NodeId) -> Option<(BrokerVersion, Arc<ApiVersionTable>)> {
        let versions = |n: NodeId| self.node_state.get(&n).and_then(|s| s.versions.clone());
        // The broker may only be known through its coordinator connection.
        let table = versions(node).or_else(|| versions(coordinator_conn(node)))?;
        Some((table.guess_broker_version(), table))
    }

    /// The version tables of every broker a connection has been set up with so far
    /// (bootstrap and coordinator connections included), in no particular order: what a
    /// client checks to pick a format every broker it has met accepts.
    pub fn known_version_tables(&self) -> impl Iterator<Item = &Arc<ApiVersionTable>> + '_ {
        self.node_state.values().filter_map(|s| s.versions.as_ref())
    }

    /// The version table of a connected broker with the newest finalized features (the
    /// highest features epoch, as Java's `ApiVersions` keeps it), for feature-gated
    /// behaviour such as transaction protocol v2 (`transaction.version` ≥ 2); `None` before
    /// any broker answered ApiVersions.
    pub fn newest_features(&self) -> Option<Arc<ApiVersionTable>> {
        // Ties go to the lowest node id, so the choice does not follow hash order.
        self.node_state
            .iter()
            .filter_map(|(n, s)| Some((*n, s.versions.as_ref()?)))
            .max_by_key(|(n, t)| (t.finalized_features_epoch(), std::cmp::Reverse(*n)))
            .map(|(_, t)| t.clone())
    }

    /// Queues a request; its result arrives as [`NetEvent::Response`] with the returned id.
    /// `max_version` caps the negotiated version. `expect_response` is false only for requests
    /// the broker never answers (acks=0 produce); those complete when written.
    pub fn send(
        &mut self,
        target: Target,
        body: RequestBody,
        max_version: Option<i16>,
        expect_response: bool,
        now: Instant,
    ) -> RequestId {
        let timeout = self.opts.conn.request_timeout;
        self.send_with_timeout(target, body, max_version, expect_response, timeout, now)
    }

    /// [`NetworkClient::send`] with its own timeout instead of `request_timeout_ms`, for
    /// requests the broker may legitimately hold longer (JoinGroup waits for the whole
    /// rebalance; Java gives it the rebalance timeout plus five seconds). The timeout covers
    /// the time queued and in flight, as for every request.
    pub fn send_with_timeout(
        &mut self,
        target: Target,
        body: RequestBody,
        max_version: Option<i16>,
        expect_response: bool,
        timeout: Duration,
        now: Instant,
    ) -> RequestId {
        let id = self.next_request_id();
        if self.closed {
            self.complete(id, false, Err(NetError::Closed), Some(now));
            return id;
        }
        if let Target::Leader { topic, .. } = &target {
            self.add_topic_interest(topic);
        }
        self.pending.push_back(Pending {
            id,
            target,
            body,
            max_version,
            expect_response,
            deadline: now + timeout,
            timeout,
            internal: false,
        });
        self.pump(now);
        id
    }

    fn next_request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// Closes every connection and fails every request with [`NetError::Closed`].
    pub fn close(&mut self) {
        self.closed = true;
        let pending: Vec<_> = self.pending.drain(..).collect();
        for p in pending {
            self.complete(p.id, p.internal, Err(NetError::Closed), None);
        }
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.drop_connection(conn, NetError::Closed, None);
            self.out.push_back(Output::Close { conn });
        }
    }

    fn broker_label(&self, node: NodeId) -> String {
        match self.address_of(node) {
            Some((h, p)) if node < 0 => format!("{} (bootstrap)", host_port(&h, p)),
            Some((h, p)) if is_coordinator_conn(node) => {
                format!(
                    "{} (node {}, coordinator)",
                    host_port(&h, p),
                    i32::MAX - node
                )
            }
            Some((h, p)) => format!("{} (node {node})", host_port(&h, p)),
            None => format!("node {node}"),
        }
    }

    fn address_of(&self, node: NodeId) -> Option<(String, u16)> {
        if node < 0 {
            self.bootstrap.get(&node).cloned()
        } else if is_coordinator_conn(node) {
            self.address_of(i32::MAX - node)
        } else {
            self.cluster
                .brokers
                .get(&node)
                .map(|b| (b.host.clone(), b.port))
        }
    }

    fn connect(&mut self, node: NodeId, now: Instant) -> Option<ConnId> {
        let (host, port) = self.address_of(node)?;
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        let state = self.node_state.entry(node).or_default();
        // The backoff is served; forget it so poll_timeout does not keep reporting it.
        state.next_attempt = None;
        // ApiVersions on every new connection (Java's rule), unless versions are pinned, or a
        // legacy probe found a table and the last ApiVersions attempt was closed on.
        let opening = if let Some(pinned) = &self.settings.pinned_versions {
            Opening::Known(pinned.clone())
        } else if let (Some(probed), true) = (&state.probed, state.legacy_suspicion >= 1) {
            let table = probed.clone();
            state.legacy_suspicion = 0;
            Opening::Known(table)
        } else if state.legacy_suspicion >= 2 {
            let idx = *state.probe.get_or_insert(0);
            match LEGACY_PROBES.get(idx) {
                Some(&(release, api)) => Opening::Probe(release, api),
                None => {
                    let table = Arc::new(
                        ApiVersionTable::for_release(BrokerVersion::new(0, 8, 0))
                            .expect("0.8.0 table"),
                    );
                    state.probe = None;
                    state.probed = Some(table.clone());
                    state.legacy_suspicion = 0;
                    Opening::Known(table)
                }
            }
        } else {
            Opening::Negotiate
        };
        let label = self.broker_label(node);
        let sasl = match self.opts.sasl.clone() {
            None => None,
            Some(config) => {
                // SCRAM's client nonce must be unpredictable: it comes from the driver's
                // entropy source, never from the seeded generator.
                let mut entropy = [0u8; crate::sasl::SCRAM_NONCE_ENTROPY_LEN];
                let drawn = match &self.opts.entropy {
                    Some(source) => {
                        source.fill(&mut entropy);
                        Ok(&entropy[..])
                    }
                    None if matches!(*config, crate::sasl::SaslConfig::Scram { .. }) => Err(
                        "SCRAM needs an entropy source for its nonces (NetOptions::entropy; \
                         the drivers give the OS's randomness)"
                            .to_string(),
                    ),
                    None => Ok(&[][..]),
                };
                match drawn.and_then(|d| config.authenticator(d).map_err(|e| e.to_string())) {
                    Ok(client) => Some(client),
                    Err(e) => {
                        // Without credentials no connection can succeed; report it as a
                        // failed connection so requests fail with the reason.
                        let state = self.node_state.entry(node).or_default();
                        state.last_error = Some(format!("SASL setup: {e}"));
                        return None;
                    }
                }
            }
        };
        tracing::debug!(broker = %label, ?conn, "connecting");
        let span = super::spans::connect(
            &host,
            port,
            real_node(node),
            self.opts.tls.is_some(),
            sasl.as_ref()
                .map(|s| crate::sasl::SaslAuthenticator::mechanism_name(s)),
            self.settings.client_id.as_deref(),
        );
        let mut c = Connection::new(conn, node, label, opening, self.settings.clone(), sasl, now);
        c.span = span;
        self.conns.insert(conn, c);
        self.conn_of_node.insert(node, conn);
        self.hosts.insert(conn, host.clone());
        self.metrics.connection_created(node, now);
        self.out.push_back(Output::Connect { conn, host, port });
        Some(conn)
    }

    /// Routes queued requests to connections that can take them, opening connections as
    /// needed, and starts a metadata refresh when one is due.
    fn pump(&mut self, now: Instant) {
        // A served backoff is no deadline any more (else poll_timeout keeps reporting it).
        self.node_state.values_mut().for_each(|s| {
            s.next_attempt = s.next_attempt.filter(|t| now < *t);
            s.throttled_until = s.throttled_until.filter(|t| now < *t);
        });
        for t in self.throttle.values_mut() {
            t.until = t.until.filter(|t| now < *t);
        }
        if self.closed {
            return;
        }
        self.maybe_refresh_metadata(now);
        let mut waiting = VecDeque::with_capacity(self.pending.len());
        while let Some(p) = self.pending.pop_front() {
            match self.route(&p, now) {
                Route::Wait => waiting.push_back(p),
                Route::Fail(e) => self.complete(p.id, p.internal, Err(e), Some(now)),
                Route::Send(conn) => self.dispatch(conn, p, now),
            }
        }
        self.pending = waiting;
        // A failed lookup has failed everything that was waiting on it; the next request for
        // that key starts a fresh lookup. A served retry backoff has done its job too.
        for entry in self.coordinators.values_mut() {
            entry.error = None;
            if entry.not_before.is_some_and(|t| now >= t) {
                entry.not_before = None;
            }
        }
        // Routing may have found metadata missing (an unknown node or controller): fetch it now.
        if self.meta.requested
            && self.meta.in_flight.is_none()
            && self.meta.not_before.is_none_or(|t| now >= t)
        {
            self.pump(now);
        }
    }

    fn dispatch(&mut self, conn: ConnId, mut p: Pending, now: Instant) {
        let c = self
            .conns
            .get_mut(&conn)
            .expect("routed to a live connection");
        let node = c.node;
        if let RequestBody::FindCoordinator(f) = &mut p.body {
            // One key, written where the negotiated version keeps it: `key` up to v3, the
            // `coordinator_keys` batch from v4.
            let batched = c
                .negotiated(ApiKey::FindCoordinator, p.max_version)
                .is_some_and(|v| v >= 4);
            if batched && f.coordinator_keys.is_empty() && !f.key.is_empty() {
                f.coordinator_keys = vec![std::mem::take(&mut f.key)];
            } else if !batched && f.key.is_empty() && f.coordinator_keys.len() == 1 {
                f.key = f.coordinator_keys.pop().expect("one key");
            }
        }
        if let RequestBody::Metadata(m) = &mut p.body {
            let version = c.negotiated(ApiKey::Metadata, p.max_version);
            // "All topics" is a null array from v1 on but an empty one in v0.
            if m.topics.is_none() && version == Some(0) {
                m.topics = Some(Vec::new());
            }
            // Before v4 the broker's own setting decides auto-creation; the field does not
            // exist, so leave it at its default rather than fail the encode (kafka-python does
            // the same).
            if version.is_some_and(|v| v < 4) {
                m.allow_auto_topic_creation = true;
            }
        }
        match c.send(
            p.id,
            &p.body,
            p.max_version,
            p.expect_response,
            p.timeout,
            now,
        ) {
            Ok(version) => {
                let api = p.body.api_key();
                self.metrics.request_sent(node, api, now);
                if p.expect_response {
                    self.sent.insert(
                        p.id,
                        Sent {
                            node,
                            internal: p.internal,
                            api,
                            at: now,
                        },
                    );
                } else {
                    let result = Ok(Response {
                        node,
                        version,
                        body: empty_response(&p.body),
                    });
                    self.complete(p.id, p.internal, result, Some(now));
                }
            }
            Err(e) => self.complete(p.id, p.internal, Err(e), Some(now)),
        }
        self.flush_conn(conn, now);
    }

    fn flush_conn(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let node = c.node;
        match self.tls.get_mut(&conn) {
            None => {
                while let Some(data) = c.poll_transmit() {
                    self.metrics.bytes_out(node, data.len(), now);
                    self.out.push_back(Output::Transmit { conn, data });
                }
            }
            Some(session) => {
                let mut failed = None;
                while let Some(data) = c.poll_transmit() {
                    if let Err(e) = session.write(&data) {
                        failed = Some(e);
                        break;
                    }
                }
                let data = session.take_outgoing();
                if !data.is_empty() {
                    self.metrics.bytes_out(node, data.len(), now);
                    self.out.push_back(Output::Transmit {
                        conn,
                        data: data.into(),
                    });
                }
                if let Some(e) = failed {
                    let mut events = Vec::new();
                    c.handle_closed(&CloseReason::Tls(e), &mut events);
                    // Events of a closing connection never need another flush.
                    self.handle_conn_events_no_flush(conn, events);
                }
            }
        }
    }

    fn complete(
        &mut self,
        id: RequestId,
        internal: bool,
        result: Result<Response, NetError>,
        now: Option<Instant>,
    ) {
        if internal {
            match self.coordinator_lookups.remove(&id) {
                Some((kind, key)) => self.on_coordinator_response(kind, key, result, now),
                None => self.on_metadata_response(id, result, now),
            }
            return;
        }
        if let Ok(Response {
            body: ResponseBody::Metadata(m),
            ..
        }) = &result
        {
            // Metadata the application asked for is news for routing too; merged, never a
            // full replacement, since the request may have named only some topics.
            let mut view = (*self.cluster).clone();
            view.update(m, false);
            self.cluster = Arc::new(view);
            self.out.push_back(Output::Event(NetEvent::MetadataUpdated(
                self.cluster.clone(),
            )));
        }
        self.out
            .push_back(Output::Event(NetEvent::Response { id, result }));
    }

    /// Java's `NetworkClient.ready(node)`: whether a request to `node` would be written at
    /// once (a connection is set up and below its in-flight limit). If no connection exists
    /// and the node is not backing off, one is opened, so a client that waits for readiness
    /// (the producer, which keeps records in its accumulator until then) gets it.
    pub fn node_ready(&mut self, node: NodeId, now: Instant) -> bool {
        if self.closed {
            return false;
        }
        match self.conn_of_node.get(&node).and_then(|c| self.conns.get(c)) {
            Some(c) => c.can_send() && !self.throttled(node, now),
            None => {
                if !self.backing_off(node, now) {
                    self.connect(node, now);
                }
                false
            }
        }
    }

    /// When `node` may be connected to again, while it is backing off after a failure.
    pub fn node_backoff_until(&self, node: NodeId, now: Instant) -> Option<Instant> {
        self.node_state
            .get(&node)
            .and_then(|s| s.next_attempt)
            .filter(|t| now < *t)
    }

    /// The last connection or request failure seen for `node` (cleared when a connection
    /// to it becomes ready), for error reports.
    pub fn node_last_error(&self, node: NodeId) -> Option<&str> {
        self.node_state.get(&node)?.last_error.as_deref()
    }

    /// The last connection error of every broker (and bootstrap address) that has one, in
    /// node order (each names its broker): what a timeout waiting for metadata should tell
    /// the application.
    pub fn connection_errors(&self) -> Vec<String> {
        let mut nodes: Vec<(&NodeId, &NodeState)> = self
            .node_state
            .iter()
            .filter(|(_, s)| s.last_error.is_some())
            .collect();
        nodes.sort_by_key(|(n, _)| **n);
        nodes
            .into_iter()
            .filter_map(|(n, s)| {
                let e = s.last_error.as_deref()?;
                // Errors from the connection name the broker already; others get its label.
                let label = self.broker_label(*n);
                Some(if e.contains(&label) {
                    e.to_owned()
                } else {
                    format!("{label}: {e}")
                })
            })
            .collect()
    }
}

impl NetworkClient {
    /// The network metrics at `now` (see [`NetworkMetrics`]).
    pub fn metrics(&self, now: Instant) -> NetworkMetrics {
        let mut in_flight: BTreeMap<NodeId, usize> = BTreeMap::new();
        for s in self.sent.values() {
            *in_flight.entry(s.node).or_default() += 1;
        }
        // Setup requests (ApiVersions, SASL) are in flight too, as in Java.
        for c in self.conns.values() {
            let n = c.setup_in_flight().count();
            if n > 0 {
                *in_flight.entry(c.node).or_default() += n;
            }
        }
        let client_id = self.settings.client_id.as_deref().unwrap_or("");
        self.metrics
            .snapshot(client_id, now, &in_flight, self.conns.len())
    }

    /// What the network layer measured, for the client cores' own metrics (commit and
    /// heartbeat latency are those of their APIs).
    pub(crate) fn recorder(&self) -> &NetRecorder {
        &self.metrics
    }
}

enum Route {
    Wait,
    Send(ConnId),
    Fail(NetError),
}

/// The response an unanswered request (acks=0 produce, the only such request) completes with.
fn empty_response(body: &RequestBody) -> ResponseBody {
    debug_assert!(matches!(body, RequestBody::Produce(_)));
    ResponseBody::Produce(Default::default())
}

/// Coordinator traffic (groups, transactions) gets a connection of its own to the
/// coordinator's broker, as in Java (`Integer.MAX_VALUE - id`) and librdkafka: a JoinGroup the
/// broker holds for the whole rebalance must not stall the member's fetches, and a commit,
/// heartbeat or LeaveGroup must not wait behind a Fetch long-polling `fetch_max_wait_ms` (a
/// broker answers one connection's requests in order). That connection is keyed by this
/// synthetic node id; responses still name the real broker.
fn coordinator_conn(node: NodeId) -> NodeId {
    if node >= 0 && !is_coordinator_conn(node) {
        i32::MAX - node
    } else {
        node
    }
}

/// Whether `node` is a synthetic coordinator-connection id (real broker ids stay far below).
fn is_coordinator_conn(node: NodeId) -> bool {
    node >= 1 << 30
}

/// The broker a connection's node id stands for.
fn real_node(node: NodeId) -> NodeId {
    if is_coordinator_conn(node) {
        i32::MAX - node
    } else {
        node
    }
}

impl super::ClientCore for NetworkClient {
    type Event = NetEvent;

    fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        let mut events = Vec::new();
        if let Some(c) = self.conns.get_mut(&conn) {
            match (&self.opts.tls, self.hosts.get(&conn)) {
                (Some(config), Some(host)) => {
                    // TCP is up; the connection proper starts once the TLS handshake is done.
                    match TlsSession::new(config.clone(), host, self.opts.conn.max_frame) {
                        Ok(session) => {
                            self.tls.insert(conn, session);
                        }
                        Err(e) => c.handle_closed(&CloseReason::Tls(e), &mut events),
                    }
                }
                _ => c.handle_connected(now, &mut events),
            }
        }
        self.handle_conn_events(conn, events, now);
        self.pump(now);
    }

    fn handle_data(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        self.handle_read(conn, Read::Slice(data), now);
    }

    fn handle_bytes(&mut self, conn: ConnId, data: Bytes, now: Instant) {
        self.handle_read(conn, Read::Owned(data), now);
    }

    fn handle_closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant) {
        // A connection dropped in the middle of the TLS handshake is a TLS failure (a plaintext
        // listener, a rejected client certificate), whatever the socket said.
        let reason = match (&reason, self.tls.get(&conn)) {
            (CloseReason::PeerClosed | CloseReason::Io(_), Some(s)) if s.is_handshaking() => {
                CloseReason::Tls(format!(
                    "connection closed during the TLS handshake ({reason})"
                ))
            }
            _ => reason,
        };
        let mut events = Vec::new();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.handle_closed(&reason, &mut events);
        }
        // The driver closed it already: drop the Close output handle_conn_events queues.
        self.handle_conn_events(conn, events, now);
        self.out
            .retain(|o| !matches!(o, Output::Close { conn: c } if *c == conn));
        self.pump(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in ids {
            let mut events = Vec::new();
            if let Some(c) = self.conns.get_mut(&conn) {
                c.handle_timeout(now, &mut events);
            }
            if self.tls.get(&conn).is_some_and(|s| s.is_handshaking()) {
                // The setup deadline passed with the TLS handshake unfinished: say so.
                for e in &mut events {
                    if let ConnEvent::Fatal { error, .. } = e {
                        if let NetError::Timeout { broker, after, .. } = error {
                            *error = NetError::Tls {
                                broker: broker.clone(),
                                detail: format!(
                                    "handshake did not complete within {}ms (is this a TLS listener?)",
                                    after.as_millis()
                                ),
                            };
                        }
                    }
                }
            }
            self.handle_conn_events(conn, events, now);
        }
        let (expired, live): (Vec<Pending>, Vec<Pending>) =
            self.pending.drain(..).partition(|p| now >= p.deadline);
        self.pending = live.into();
        for p in expired {
            let error = self.timeout_error(&p);
            self.complete(p.id, p.internal, Err(error), Some(now));
        }
        self.close_idle(now);
        self.pump(now);
    }

    fn poll_output(&mut self) -> Option<Output<NetEvent>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            // Nothing is retried or reconnected after close: a backoff or metadata retry
            // left behind would be a deadline that stays due forever.
            return None;
        }
        let mut next = Deadline::NONE;
        let mut consider = |t: Instant| next.fold(t);
        for c in self.conns.values() {
            if let Some(t) = c.next_deadline() {
                consider(t);
            }
            if c.is_ready() && c.in_flight() == 0 {
                consider(c.last_used + self.opts.connections_max_idle);
            }
        }
        for p in &self.pending {
            consider(p.deadline);
        }
        // A throttle's end, whether or not requests wait here: the producer keeps its batches
        // in its accumulator until `node_ready`, and must be woken to send them.
        for t in self.node_state.values().filter_map(|s| s.throttled_until) {
            consider(t);
        }
        if !self.pending.is_empty() || self.meta.requested {
            // Waiting requests may be unblocked by a backoff ending.
            for s in self.node_state.values() {
                if let Some(t) = s.next_attempt {
                    consider(t);
                }
            }
            // The retry time matters only while no refresh is on its way; reporting it during
            // one would wake the driver again and again for nothing.
            if let (Some(t), None) = (self.meta.not_before, self.meta.in_flight) {
                consider(t);
            }
            for c in self.coordinators.values() {
                if let (Some(t), None) = (c.not_before, c.lookup) {
                    consider(t);
                }
            }
        }
        if let (Some(t), None, false) = (self.meta.last_update, self.meta.in_flight, self.closed) {
            if !self.meta.topics.is_empty() {
                consider(t + self.opts.metadata_max_age);
            }
        }
        next.earliest()
    }
}

/// Bytes read from a connection, borrowed ([`super::ClientCore::handle_data`]) or owned
/// ([`super::ClientCore::handle_bytes`]).
enum Read<'a> {
    Slice(&'a [u8]),
    Owned(Bytes),
}

impl NetworkClient {
    /// The read path: plaintext goes to the connection's frame decoder (owned bytes without a
    /// copy); with TLS, the bytes are ciphertext and go through the session first, whatever
    /// the driver did to frame them.
    fn handle_read(&mut self, conn: ConnId, data: Read<'_>, now: Instant) {
        let mut events = Vec::new();
        if let Some(c) = self.conns.get_mut(&conn) {
            let len = match &data {
                Read::Slice(data) => data.len(),
                Read::Owned(data) => data.len(),
            };
            self.metrics.bytes_in(c.node, len, now);
            match (self.tls.get_mut(&conn), data) {
                (None, Read::Slice(data)) => c.handle_data(data, now, &mut events),
                (None, Read::Owned(data)) => c.handle_bytes(data, now, &mut events),
                (Some(session), data) => {
                    let data = match &data {
                        Read::Slice(data) => data,
                        Read::Owned(data) => &data[..],
                    };
                    let mut plain = Vec::new();
                    match session.feed(data, &mut plain) {
                        Ok(handshake_done) => {
                            if handshake_done {
                                c.handle_connected(now, &mut events);
                            }
                            for frames in plain {
                                c.handle_bytes(frames, now, &mut events);
                            }
                        }
                        Err(e) => c.handle_closed(&CloseReason::Tls(e), &mut events),
                    }
                }
            }
        }
        self.handle_conn_events(conn, events, now);
        self.pump(now);
    }
}
