//! A scripted, in-memory Kafka broker and a harness that drives the sans-IO network core
//! against it with a virtual clock.
//!
//! The [`Harness`] owns the client core, the clock and the fake brokers. It follows the driving
//! contract of `kafkit_core::network`: after every input it drains `poll_output`, acting on
//! each output (opening "sockets" to fake brokers, handing them the bytes the core transmits,
//! forgetting closed ones, recording events), and time moves only through
//! [`Harness::advance`], which calls `handle_timeout` at every deadline the core reports.
//!
//! A fake [`Broker`] splits the bytes it receives into frames, decodes each request with
//! `decode_request_frame` and answers with responses it encodes itself (response header at
//! `response_header_version`, then the body). Its default behaviour covers ApiVersions,
//! Metadata (from the harness's [`ClusterSpec`]), SASL (PLAIN and SCRAM, framed or legacy raw
//! tokens) and a few simple APIs; a per-broker [`Hook`] scripts anything else: silence,
//! a close, raw bytes, a response at another version.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_core::network::{
    ClientCore, CloseReason, ClusterView, ConnId, LowLevelClient, LowLevelEvent, NetError,
    NetOptions, Output, Response, Target,
};
use kafkit_core::protocol::{
    self, ApiKey, ApiVersionsResponse, FindCoordinatorResponse, ListGroupsResponse, Message,
    MetadataRequest, MetadataResponse, RequestBody, RequestHeader, ResponseBody, ResponseHeader,
    SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafkit_core::sasl::{verify_plain, ScramCredential, ScramMechanism, ScramServer, Secret};
use kafkit_core::OpId;

/// What a broker saw: one decoded request.
#[derive(Debug, Clone)]
pub struct Received {
    /// The connection it came on.
    pub conn: ConnId,
    /// When it arrived (virtual time).
    pub at: Instant,
    /// The request header.
    pub header: RequestHeader,
    /// The request body.
    pub body: RequestBody,
    /// The frame as sent (without the size prefix).
    pub raw: Bytes,
}

impl Received {
    /// The API of the request.
    pub fn api(&self) -> ApiKey {
        self.body.api_key()
    }
    /// The version the request was sent at.
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
}

/// How a broker answers one request.
pub enum Reply {
    /// Whatever the broker does by default (a hook returns this to pass).
    Default,
    /// This body, at the request's version, with its correlation id.
    Body(ResponseBody),
    /// This body encoded at another version (UNSUPPORTED_VERSION answers use v0).
    BodyAt(i16, ResponseBody),
    /// These bytes, as they are, on the stream (size prefixes included, if any).
    Bytes(Vec<u8>),
    /// No answer at all.
    Silence,
    /// The broker closes the connection.
    Close,
}

/// A per-broker script: sees every request first and may answer it.
pub type Hook = Box<dyn FnMut(&Received) -> Reply>;

/// SASL as a broker enables it.
#[derive(Clone, Default)]
pub struct SaslSpec {
    /// Mechanisms enabled, by Kafka name.
    pub mechanisms: Vec<String>,
    /// PLAIN users and passwords.
    pub plain: HashMap<String, Secret>,
    /// SCRAM users and their credentials (per mechanism).
    pub scram: Vec<(String, ScramCredential)>,
}

impl SaslSpec {
    /// A broker with PLAIN and one user.
    pub fn plain(user: &str, password: &str) -> Self {
        SaslSpec {
            mechanisms: vec!["PLAIN".into()],
            plain: HashMap::from([(user.to_owned(), Secret::new(password))]),
            scram: Vec::new(),
        }
    }

    /// A broker with one SCRAM mechanism and one user.
    pub fn scram(mechanism: ScramMechanism, user: &str, password: &str) -> Self {
        let credential =
            ScramCredential::from_password(mechanism, password, b"fake-broker-salt", 4096)
                .expect("credential");
        SaslSpec {
            mechanisms: vec![credential.mechanism_name().to_owned()],
            plain: HashMap::new(),
            scram: vec![(user.to_owned(), credential)],
        }
    }
}

/// One fake broker.
pub struct Broker {
    /// Node id as metadata reports it (negative: not listed in metadata).
    pub node_id: i32,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `(api_key, min, max)` the broker supports; `None` for a broker older than 0.10,
    /// which closes the connection on ApiVersions.
    pub versions: Option<Vec<(i16, i16, i16)>>,
    /// Connection attempts fail with this error.
    pub refuse: Option<String>,
    /// How long a connection attempt takes to succeed or fail.
    pub connect_delay: Duration,
    /// How long the broker takes to answer (and to close, when it closes).
    pub response_delay: Duration,
    /// SASL, if the broker requires it.
    pub sasl: Option<SaslSpec>,
    /// TLS, if the broker's listener uses it.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The script consulted before the default behaviour.
    pub hook: Option<Hook>,
    /// Every request received, in order.
    pub received: Vec<Received>,
    /// Legacy (SaslHandshake v0) SASL tokens received as bare frames.
    pub raw_tokens: Vec<Vec<u8>>,
    /// Connections accepted.
    pub accepted: usize,
    /// TLS errors the broker's side saw.
    pub tls_errors: Vec<String>,
}

impl Broker {
    /// A modern broker supporting every version this build does.
    pub fn new(node_id: i32, host: &str, port: u16) -> Self {
        Broker {
            node_id,
            host: host.to_owned(),
            port,
            versions: Some(all_versions()),
            refuse: None,
            connect_delay: Duration::ZERO,
            response_delay: Duration::ZERO,
            sasl: None,
            tls: None,
            hook: None,
            received: Vec::new(),
            raw_tokens: Vec::new(),
            accepted: 0,
            tls_errors: Vec::new(),
        }
    }

    /// Replaces the version table.
    pub fn with_versions(mut self, versions: Vec<(i16, i16, i16)>) -> Self {
        self.versions = Some(versions);
        self
    }

    /// Changes one API's range in the table.
    pub fn with_range(mut self, api: ApiKey, min: i16, max: i16) -> Self {
        let table = self.versions.as_mut().expect("a broker with ApiVersions");
        table.retain(|(k, _, _)| *k != api.as_i16());
        table.push((api.as_i16(), min, max));
        table.sort();
        self
    }

    /// Removes an API from the table.
    pub fn without(mut self, api: ApiKey) -> Self {
        let table = self.versions.as_mut().expect("a broker with ApiVersions");
        table.retain(|(k, _, _)| *k != api.as_i16());
        self
    }

    /// A broker older than 0.10: no ApiVersions.
    pub fn legacy(mut self) -> Self {
        self.versions = None;
        self
    }

    /// Connection attempts fail.
    pub fn refusing(mut self, error: &str) -> Self {
        self.refuse = Some(error.to_owned());
        self
    }

    /// Connection attempts take this long.
    pub fn with_connect_delay(mut self, d: Duration) -> Self {
        self.connect_delay = d;
        self
    }

    /// Answers take this long.
    pub fn with_response_delay(mut self, d: Duration) -> Self {
        self.response_delay = d;
        self
    }

    /// Requires SASL.
    pub fn with_sasl(mut self, sasl: SaslSpec) -> Self {
        self.sasl = Some(sasl);
        self
    }

    /// Serves TLS.
    pub fn with_tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Installs a script.
    pub fn with_hook(mut self, hook: impl FnMut(&Received) -> Reply + 'static) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The APIs received, in order.
    pub fn apis(&self) -> Vec<ApiKey> {
        self.received.iter().map(|r| r.api()).collect()
    }

    /// The requests of one API received.
    pub fn of(&self, api: ApiKey) -> Vec<&Received> {
        self.received.iter().filter(|r| r.api() == api).collect()
    }
}

/// Every API this build knows at every version it speaks.
pub fn all_versions() -> Vec<(i16, i16, i16)> {
    ApiKey::ALL
        .iter()
        .map(|api| {
            let (min, max) = api.request_versions();
            (api.as_i16(), min, max)
        })
        .collect()
}

/// Topics as the fake cluster has them.
#[derive(Debug, Clone, Default)]
pub struct ClusterSpec {
    /// The controller's node id.
    pub controller: i32,
    /// The topics.
    pub topics: Vec<TopicSpec>,
}

/// One topic: the leader of each partition.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    /// Name.
    pub name: String,
    /// Leader node id per partition.
    pub leaders: Vec<i32>,
}

/// Events and outputs observed, with their virtual times.
#[derive(Debug, Clone)]
pub struct ConnectRecord {
    /// When the core asked.
    pub at: Instant,
    /// The connection id.
    pub conn: ConnId,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// How the harness hands a broker's bytes to the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Each answer in one `handle_data` call.
    Whole,
    /// One byte per `handle_data` call.
    Bytewise,
    /// Every answer ready for a connection in one `handle_data` call.
    Coalesced,
}

enum Action {
    Connected(ConnId),
    Refused(ConnId, String),
    Data(ConnId, Vec<u8>),
    PeerClosed(ConnId),
}

impl Action {
    fn conn(&self) -> ConnId {
        match self {
            Action::Connected(c)
            | Action::Refused(c, _)
            | Action::Data(c, _)
            | Action::PeerClosed(c) => *c,
        }
    }
}

/// The broker side of one connection.
struct ServerConn {
    broker: usize,
    inbuf: Vec<u8>,
    tls: Option<rustls::ServerConnection>,
    /// The mechanism SaslHandshake chose.
    mechanism: Option<String>,
    /// SaslHandshake v0: tokens follow as bare frames.
    raw_sasl: bool,
    scram: Option<ScramServer>,
    authenticated: bool,
    /// The broker closed it; further input is ignored.
    closing: bool,
}

/// The client core, a virtual clock and fake brokers.
pub struct Harness {
    /// The core under test.
    pub client: LowLevelClient,
    /// The first instant.
    pub start: Instant,
    /// The current instant.
    pub now: Instant,
    /// The fake brokers.
    pub brokers: Vec<Broker>,
    /// What Metadata reports.
    pub cluster: ClusterSpec,
    /// How answers reach the core.
    pub delivery: Delivery,
    /// Every `Output::Connect`.
    pub connects: Vec<ConnectRecord>,
    /// Every `Output::Close`, with its time.
    pub closes: Vec<(Instant, ConnId)>,
    /// Completed requests: when, and how.
    pub results: BTreeMap<OpId, (Instant, Result<Response, NetError>)>,
    /// When the `Closed` event came, if it did.
    pub closed_at: Option<Instant>,
    /// The last op id handed out by `next_op`.
    last_op: u64,
    /// `MetadataUpdated` events.
    pub metadata_updates: Vec<(Instant, Arc<ClusterView>)>,
    /// Every `Output::Transmit`, as the core wrote it.
    pub transmits: Vec<(ConnId, Bytes)>,
    /// `handle_timeout` calls made.
    pub timeouts_handled: u64,
    /// `handle_data` calls made.
    pub data_calls: u64,
    /// The most wakeups in a row at an instant not after the current one (a busy loop
    /// shows up here).
    pub max_spins: u32,
    /// The harness panics when wakeups in a row at a past instant reach this.
    pub spin_limit: u32,
    spins: u32,
    conns: BTreeMap<ConnId, ServerConn>,
    /// Connections the harness reported closed (no `Close` output is expected for them).
    reported_closed: std::collections::HashSet<ConnId>,
    scheduled: Vec<(Instant, u64, Action)>,
    seq: u64,
}

/// The options the tests start from: Java's defaults, a fixed seed, and seeded entropy (so
/// SCRAM nonces replay too).
pub fn options(bootstrap: &[(&str, u16)]) -> NetOptions {
    let mut opts = NetOptions::new(
        bootstrap
            .iter()
            .map(|(h, p)| ((*h).to_owned(), *p))
            .collect(),
    );
    opts.seed = 7;
    opts.entropy = Some(std::sync::Arc::new(
        kafkit_core::network::SeededEntropy::new(7),
    ));
    opts
}

/// Three brokers `b0:9092`, `b1:9092`, `b2:9092` (nodes 0, 1, 2), controller 1, and topic `t`
/// with partitions led by nodes 0, 1 and 2.
pub fn three_brokers() -> (Vec<Broker>, ClusterSpec) {
    let brokers = (0..3)
        .map(|n| Broker::new(n, &format!("b{n}"), 9092))
        .collect();
    let cluster = ClusterSpec {
        controller: 1,
        topics: vec![TopicSpec {
            name: "t".into(),
            leaders: vec![0, 1, 2],
        }],
    };
    (brokers, cluster)
}

/// Wraps a payload in a 4-byte size prefix.
pub fn framed(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// A whole response frame: size, header (at the header version `api` and `version` call
/// for), body.
pub fn response_frame(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseBody,
) -> Vec<u8> {
    let mut buf = Vec::new();
    ResponseHeader {
        correlation_id,
        ..Default::default()
    }
    .encode(&mut buf, protocol::response_header_version(api, version))
    .expect("response header");
    body.encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("fake broker cannot encode {api:?} v{version}: {e}"));
    framed(&buf)
}

impl Harness {
    /// A harness over a fresh `LowLevelClient`.
    pub fn new(opts: NetOptions, brokers: Vec<Broker>, cluster: ClusterSpec) -> Self {
        let start = Instant::now();
        Harness {
            client: LowLevelClient::new(opts),
            start,
            now: start,
            brokers,
            cluster,
            delivery: Delivery::Whole,
            connects: Vec::new(),
            closes: Vec::new(),
            results: BTreeMap::new(),
            closed_at: None,
            last_op: 0,
            metadata_updates: Vec::new(),
            transmits: Vec::new(),
            timeouts_handled: 0,
            data_calls: 0,
            max_spins: 0,
            spin_limit: 100,
            spins: 0,
            conns: BTreeMap::new(),
            reported_closed: Default::default(),
            scheduled: Vec::new(),
            seq: 0,
        }
    }

    /// Virtual time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The broker with this node id.
    pub fn broker(&mut self, node_id: i32) -> &mut Broker {
        self.brokers
            .iter_mut()
            .find(|b| b.node_id == node_id)
            .unwrap_or_else(|| panic!("no broker {node_id}"))
    }

    /// A fresh id for a request.
    pub fn next_op(&mut self) -> OpId {
        self.last_op += 1;
        OpId(self.last_op)
    }

    /// Sends a request with `LowLevelClient::send` and drives.
    pub fn send(&mut self, target: Target, body: impl Into<RequestBody>) -> OpId {
        let id = self.next_op();
        self.client.send(id, target, body, None, self.now);
        self.drive();
        id
    }

    /// Delivers bytes to the core on `conn` as if the broker had sent them, and drives.
    pub fn inject(&mut self, conn: ConnId, data: &[u8]) {
        self.schedule(self.now, Action::Data(conn, data.to_vec()));
        self.drive();
    }

    /// The core's next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.client.poll_timeout()
    }

    /// The result of a request, once it completed.
    pub fn result(&self, id: OpId) -> Option<&Result<Response, NetError>> {
        self.results.get(&id).map(|(_, r)| r)
    }

    /// Drives until `id` completes, moving time forward through the core's deadlines, for at
    /// most `limit` of virtual time. Panics if it does not complete.
    pub fn wait_for(&mut self, id: OpId, limit: Duration) -> Result<Response, NetError> {
        let end = self.now + limit;
        loop {
            self.drive();
            if let Some((_, r)) = self.results.get(&id) {
                return r.clone();
            }
            let Some(next) = self.next_wakeup() else {
                panic!("request {id:?} stalled: no deadline and nothing in flight");
            };
            if next > end {
                panic!(
                    "request {id:?} did not complete within {limit:?} (next wakeup at +{:?})",
                    next - self.start
                );
            }
            self.step_to(next);
        }
    }

    /// The response of a request that must succeed.
    pub fn expect_ok(&mut self, id: OpId) -> Response {
        match self.wait_for(id, Duration::from_secs(60)) {
            Ok(r) => r,
            Err(e) => panic!("request {id:?} failed: {e}"),
        }
    }

    /// The error of a request that must fail.
    pub fn expect_err(&mut self, id: OpId, limit: Duration) -> NetError {
        match self.wait_for(id, limit) {
            Ok(r) => panic!("request {id:?} succeeded unexpectedly: {r:?}"),
            Err(e) => e,
        }
    }

    /// When the harness must next act: the core's deadline or a scheduled delivery.
    fn next_wakeup(&self) -> Option<Instant> {
        let core = self.client.poll_timeout();
        let net = self.scheduled.iter().map(|(t, _, _)| *t).min();
        match (core, net) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves to `t` (never backwards) and fires what is due. Counts wakeups that do not move
    /// time forward: a core that keeps reporting a deadline already past spins its driver.
    fn step_to(&mut self, t: Instant) {
        if t <= self.now {
            self.spins += 1;
            self.max_spins = self.max_spins.max(self.spins);
            assert!(
                self.spins < self.spin_limit,
                "busy loop: poll_timeout keeps returning +{:?} while now is +{:?}",
                t - self.start,
                self.now - self.start
            );
        } else {
            self.spins = 0;
            self.now = t;
        }
        if self.client.poll_timeout().is_some_and(|d| d <= self.now) {
            self.timeouts_handled += 1;
            self.client.handle_timeout(self.now);
        }
        self.drive();
    }

    /// Jumps the clock forward by `d`, calling `handle_timeout` at every deadline the core
    /// reports on the way and delivering scheduled network events in time order.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        self.advance_to(target);
    }

    /// Like [`Harness::advance`], to an instant.
    pub fn advance_to(&mut self, target: Instant) {
        loop {
            self.drive();
            let Some(next) = self.next_wakeup() else {
                break;
            };
            if next > target {
                break;
            }
            self.step_to(next);
        }
        self.now = self.now.max(target);
        self.drive();
    }

    /// Drains outputs and delivers due network events until nothing moves.
    pub fn drive(&mut self) {
        let mut rounds = 0u32;
        loop {
            rounds += 1;
            assert!(
                rounds < 100_000,
                "livelock: the core and the brokers keep exchanging messages at +{:?}",
                self.now - self.start
            );
            let mut progressed = false;
            while let Some(out) = self.client.poll_output() {
                progressed = true;
                self.on_output(out);
            }
            if self.apply_due() {
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    fn drain(&mut self) {
        while let Some(out) = self.client.poll_output() {
            self.on_output(out);
        }
    }

    fn schedule(&mut self, at: Instant, action: Action) {
        self.seq += 1;
        self.scheduled.push((at, self.seq, action));
    }

    /// Applies the earliest due action (merging data per the delivery mode).
    fn apply_due(&mut self) -> bool {
        let now = self.now;
        let Some(idx) = self
            .scheduled
            .iter()
            .enumerate()
            .filter(|(_, (t, _, _))| *t <= now)
            .min_by_key(|(_, (t, s, _))| (*t, *s))
            .map(|(i, _)| i)
        else {
            return false;
        };
        let (_, _, action) = self.scheduled.remove(idx);
        match action {
            Action::Connected(conn) => self.client.handle_connected(conn, now),
            Action::Refused(conn, error) => {
                self.conns.remove(&conn);
                self.reported_closed.insert(conn);
                self.client
                    .handle_closed(conn, CloseReason::ConnectFailed(error), now)
            }
            Action::PeerClosed(conn) => {
                self.conns.remove(&conn);
                self.reported_closed.insert(conn);
                self.client
                    .handle_closed(conn, CloseReason::PeerClosed, now)
            }
            Action::Data(conn, mut data) => match self.delivery {
                Delivery::Whole => {
                    self.data_calls += 1;
                    self.client.handle_data(conn, &data, now);
                }
                Delivery::Coalesced => {
                    // Everything else due for this connection, up to its next non-data event.
                    loop {
                        let next = self
                            .scheduled
                            .iter()
                            .enumerate()
                            .filter(|(_, (t, _, a))| *t <= now && a.conn() == conn)
                            .min_by_key(|(_, (t, s, _))| (*t, *s))
                            .map(|(i, _)| i);
                        match next {
                            Some(i) if matches!(self.scheduled[i].2, Action::Data(..)) => {
                                if let (_, _, Action::Data(_, more)) = self.scheduled.remove(i) {
                                    data.extend(more);
                                }
                            }
                            _ => break,
                        }
                    }
                    self.data_calls += 1;
                    self.client.handle_data(conn, &data, now);
                }
                Delivery::Bytewise => {
                    for b in data {
                        self.data_calls += 1;
                        self.client.handle_data(conn, &[b], now);
                        // Drain after every input, as the contract asks.
                        self.drain();
                    }
                }
            },
        }
        true
    }

    fn on_output(&mut self, out: Output<LowLevelEvent>) {
        let now = self.now;
        match out {
            Output::Connect { conn, host, port } => {
                self.connects.push(ConnectRecord {
                    at: now,
                    conn,
                    host: host.clone(),
                    port,
                });
                assert!(
                    !self.conns.contains_key(&conn),
                    "connection id {conn:?} reused"
                );
                let found = self
                    .brokers
                    .iter()
                    .position(|b| b.host == host && b.port == port);
                match found {
                    None => self.schedule(now, Action::Refused(conn, "no such host".into())),
                    Some(i) => {
                        let b = &mut self.brokers[i];
                        let at = now + b.connect_delay;
                        if let Some(error) = b.refuse.clone() {
                            self.schedule(at, Action::Refused(conn, error));
                        } else {
                            b.accepted += 1;
                            let tls = b.tls.clone().map(|config| {
                                rustls::ServerConnection::new(config).expect("server TLS")
                            });
                            self.conns.insert(
                                conn,
                                ServerConn {
                                    broker: i,
                                    inbuf: Vec::new(),
                                    tls,
                                    mechanism: None,
                                    raw_sasl: false,
                                    scram: None,
                                    authenticated: false,
                                    closing: false,
                                },
                            );
                            self.schedule(at, Action::Connected(conn));
                        }
                    }
                }
            }
            Output::Transmit { conn, data } => {
                self.on_transmit(conn, &data);
                self.transmits.push((conn, data));
            }
            Output::Close { conn } => {
                assert!(
                    !self.reported_closed.contains(&conn),
                    "Close for {conn:?}, which the driver reported closed"
                );
                assert!(
                    !self.closes.iter().any(|(_, c)| *c == conn),
                    "{conn:?} closed twice"
                );
                self.closes.push((now, conn));
                self.conns.remove(&conn);
                // The socket is gone: whatever was on its way is lost.
                self.scheduled.retain(|(_, _, a)| a.conn() != conn);
            }
            Output::Event(LowLevelEvent::Response { id, result }) => {
                // After Closed only refusals: every request in progress completed before it.
                assert!(
                    self.closed_at.is_none() || result == Err(NetError::Closed),
                    "request {id:?} completed after Closed with {result:?}"
                );
                let previous = self.results.insert(id, (now, result));
                assert!(previous.is_none(), "request {id:?} completed twice");
            }
            Output::Event(LowLevelEvent::MetadataUpdated(view)) => {
                self.metadata_updates.push((now, view));
            }
            Output::Event(LowLevelEvent::Closed) => {
                assert!(self.closed_at.is_none(), "Closed reported twice");
                self.closed_at = Some(now);
            }
        }
    }

    fn on_transmit(&mut self, conn: ConnId, data: &[u8]) {
        let now = self.now;
        let Some(sc) = self.conns.get_mut(&conn) else {
            panic!("transmit on a connection the broker does not have: {conn:?}");
        };
        assert!(
            !self
                .scheduled
                .iter()
                .any(|(_, _, a)| matches!(a, Action::Connected(c) if *c == conn)),
            "transmit on {conn:?} before it was connected"
        );
        if sc.closing {
            return;
        }
        let mut out: Vec<u8> = Vec::new();
        let mut close = false;
        // TLS: decrypt into the frame buffer; reply bytes are encrypted below.
        if let Some(tls) = sc.tls.as_mut() {
            let mut input = data;
            while !input.is_empty() {
                match tls.read_tls(&mut input) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => panic!("server read_tls: {e}"),
                }
                if let Err(e) = tls.process_new_packets() {
                    self.brokers[sc.broker].tls_errors.push(e.to_string());
                    close = true;
                    break;
                }
                let mut buf = [0u8; 4096];
                loop {
                    match tls.reader().read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => sc.inbuf.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("server TLS read: {e}"),
                    }
                }
            }
        } else {
            sc.inbuf.extend_from_slice(data);
        }
        // Frames.
        let view = brokers_view(&self.brokers);
        let mut plain_out = Vec::new();
        while !close && sc.inbuf.len() >= 4 {
            let size = i32::from_be_bytes(sc.inbuf[..4].try_into().unwrap());
            assert!(size >= 0, "client sent a negative frame size");
            let size = size as usize;
            if sc.inbuf.len() < 4 + size {
                break;
            }
            let frame: Vec<u8> = sc.inbuf.drain(..4 + size).skip(4).collect();
            let broker = &mut self.brokers[sc.broker];
            let (reply, answering) = if sc.raw_sasl && !sc.authenticated {
                broker.raw_tokens.push(frame.clone());
                match sasl_token(broker, sc, &frame) {
                    Ok(token) => (Reply::Bytes(framed(&token)), None),
                    // A 0.10.0 broker just drops the connection.
                    Err(_) => (Reply::Close, None),
                }
            } else {
                let raw = Bytes::from(frame);
                let (header, body) = protocol::decode_request_frame(raw.clone())
                    .unwrap_or_else(|e| panic!("the core sent an undecodable request: {e}"));
                let req = Received {
                    conn,
                    at: now,
                    header,
                    body,
                    raw,
                };
                broker.received.push(req.clone());
                let mut reply = match broker.hook.as_mut() {
                    Some(hook) => hook(&req),
                    None => Reply::Default,
                };
                if matches!(reply, Reply::Default) {
                    reply = default_reply(broker, sc, &self.cluster, &view, &req);
                }
                (
                    reply,
                    Some((req.api(), req.version(), req.header.correlation_id)),
                )
            };
            match reply {
                Reply::Default => unreachable!(),
                Reply::Silence => {}
                Reply::Close => close = true,
                Reply::Bytes(b) => plain_out.extend(b),
                Reply::Body(body) => {
                    let (api, version, correlation_id) = answering.expect("a request");
                    plain_out.extend(response_frame(api, version, correlation_id, &body));
                }
                Reply::BodyAt(version, body) => {
                    let (api, _, correlation_id) = answering.expect("a request");
                    plain_out.extend(response_frame(api, version, correlation_id, &body));
                }
            }
        }
        let sc = self.conns.get_mut(&conn).expect("still there");
        match sc.tls.as_mut() {
            Some(tls) => {
                // rustls buffers a limited amount of unsent ciphertext: a large answer is
                // written in pieces, each drained before the next.
                let mut rest = &plain_out[..];
                while !rest.is_empty() {
                    let n = tls.writer().write(rest).expect("server TLS write");
                    rest = &rest[n..];
                    while tls.wants_write() {
                        tls.write_tls(&mut out).expect("server write_tls");
                    }
                }
                while tls.wants_write() {
                    tls.write_tls(&mut out).expect("server write_tls");
                }
            }
            None => out = plain_out,
        }
        if close {
            sc.closing = true;
        }
        let at = now + self.brokers[sc.broker].response_delay;
        if !out.is_empty() {
            self.schedule(at, Action::Data(conn, out));
        }
        if close {
            self.schedule(at, Action::PeerClosed(conn));
        }
    }
}

fn brokers_view(brokers: &[Broker]) -> Vec<(i32, String, u16)> {
    brokers
        .iter()
        .filter(|b| b.node_id >= 0)
        .map(|b| (b.node_id, b.host.clone(), b.port))
        .collect()
}

/// What a broker does without a script.
fn default_reply(
    broker: &mut Broker,
    sc: &mut ServerConn,
    cluster: &ClusterSpec,
    brokers: &[(i32, String, u16)],
    req: &Received,
) -> Reply {
    let api = req.api();
    let version = req.version();
    let sasl_api = matches!(
        api,
        ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
    );
    if broker.sasl.is_some() && !sc.authenticated && !sasl_api {
        // Kafka closes a connection that skips authentication.
        return Reply::Close;
    }
    match &req.body {
        RequestBody::ApiVersions(_) => {
            let Some(table) = &broker.versions else {
                // Before 0.10 the broker does not know the API and drops the connection.
                return Reply::Close;
            };
            let own = table
                .iter()
                .find(|(k, _, _)| *k == ApiKey::ApiVersions.as_i16())
                .copied()
                .unwrap_or((18, 0, 0));
            let entry = |&(api_key, min_version, max_version): &(i16, i16, i16)| {
                protocol::api_versions::response::ApiVersion {
                    api_key,
                    min_version,
                    max_version,
                    ..Default::default()
                }
            };
            if version > own.2 {
                // KIP-511: an unknown ApiVersions version is answered in v0 with the broker's
                // own ApiVersions range.
                return Reply::BodyAt(
                    0,
                    ResponseBody::ApiVersions(ApiVersionsResponse {
                        error_code: 35,
                        api_keys: vec![entry(&own)],
                        ..Default::default()
                    }),
                );
            }
            Reply::Body(ResponseBody::ApiVersions(ApiVersionsResponse {
                api_keys: table.iter().map(entry).collect(),
                ..Default::default()
            }))
        }
        RequestBody::Metadata(m) => Reply::Body(ResponseBody::Metadata(metadata(
            cluster, brokers, m, version,
        ))),
        RequestBody::SaslHandshake(h) => {
            let enabled = broker
                .sasl
                .as_ref()
                .map(|s| s.mechanisms.clone())
                .unwrap_or_default();
            let ok = enabled.contains(&h.mechanism);
            if ok {
                sc.mechanism = Some(h.mechanism.clone());
                sc.raw_sasl = version == 0;
            }
            Reply::Body(ResponseBody::SaslHandshake(SaslHandshakeResponse {
                error_code: if ok { 0 } else { 33 },
                mechanisms: enabled,
                ..Default::default()
            }))
        }
        RequestBody::SaslAuthenticate(a) => match sasl_token(broker, sc, &a.auth_bytes) {
            Ok(token) => Reply::Body(ResponseBody::SaslAuthenticate(SaslAuthenticateResponse {
                auth_bytes: token.into(),
                ..Default::default()
            })),
            Err(message) => Reply::Body(ResponseBody::SaslAuthenticate(SaslAuthenticateResponse {
                error_code: 58,
                error_message: Some(message),
                ..Default::default()
            })),
        },
        RequestBody::ListGroups(_) => {
            Reply::Body(ResponseBody::ListGroups(ListGroupsResponse::default()))
        }
        RequestBody::FindCoordinator(_) => Reply::Body(ResponseBody::FindCoordinator(
            FindCoordinatorResponse::default(),
        )),
        other => panic!(
            "fake broker {} has no default answer to {:?}: script it with a hook",
            broker.node_id,
            other.api_key()
        ),
    }
}

/// One SASL token through the broker's verifier: the answer, or the failure message.
fn sasl_token(broker: &Broker, sc: &mut ServerConn, token: &[u8]) -> Result<Vec<u8>, String> {
    let spec = broker.sasl.as_ref().ok_or("SASL is not enabled")?;
    let mechanism = sc.mechanism.clone().ok_or("no SaslHandshake")?;
    match mechanism.as_str() {
        "PLAIN" => {
            verify_plain(token, |user| spec.plain.get(user)).map_err(|e| e.to_string())?;
            sc.authenticated = true;
            Ok(Vec::new())
        }
        "SCRAM-SHA-256" | "SCRAM-SHA-512" => {
            let m = if mechanism == "SCRAM-SHA-256" {
                ScramMechanism::Sha256
            } else {
                ScramMechanism::Sha512
            };
            match sc.scram.take() {
                None => {
                    let mut server = ScramServer::new(m);
                    let out = server
                        .handle_client_first(token, "fakebrokernonce", |first| {
                            spec.scram
                                .iter()
                                .find(|(u, c)| {
                                    u == first.username() && c.mechanism_name() == mechanism
                                })
                                .map(|(_, c)| c.clone())
                        })
                        .map_err(|e| e.to_string())?;
                    sc.scram = Some(server);
                    Ok(out)
                }
                Some(mut server) => {
                    let out = server
                        .handle_client_final(token)
                        .map_err(|e| e.to_string())?;
                    sc.authenticated = server.is_complete();
                    Ok(out)
                }
            }
        }
        other => Err(format!("mechanism {other} not enabled")),
    }
}

/// The Metadata response of the fake cluster.
pub fn metadata(
    cluster: &ClusterSpec,
    brokers: &[(i32, String, u16)],
    req: &MetadataRequest,
    version: i16,
) -> MetadataResponse {
    use protocol::metadata::response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    let topic = |name: &str| match cluster.topics.iter().find(|t| t.name == name) {
        Some(t) => MetadataResponseTopic {
            name: Some(t.name.clone()),
            partitions: t
                .leaders
                .iter()
                .enumerate()
                .map(|(i, &leader)| MetadataResponsePartition {
                    partition_index: i as i32,
                    leader_id: leader,
                    replica_nodes: vec![leader],
                    isr_nodes: vec![leader],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        },
        None => MetadataResponseTopic {
            error_code: 3,
            name: Some(name.to_owned()),
            ..Default::default()
        },
    };
    let names: Vec<String> = match &req.topics {
        None => cluster.topics.iter().map(|t| t.name.clone()).collect(),
        Some(list) if list.is_empty() && version == 0 => {
            cluster.topics.iter().map(|t| t.name.clone()).collect()
        }
        Some(list) => list.iter().filter_map(|t| t.name.clone()).collect(),
    };
    MetadataResponse {
        brokers: brokers
            .iter()
            .map(|(node_id, host, port)| MetadataResponseBroker {
                node_id: *node_id,
                host: host.clone(),
                port: i32::from(*port),
                ..Default::default()
            })
            .collect(),
        cluster_id: (version >= 2).then(|| "fake-cluster".to_owned()),
        controller_id: if version >= 1 { cluster.controller } else { -1 },
        topics: names.iter().map(|n| topic(n)).collect(),
        ..Default::default()
    }
}

/// A small deterministic generator for garbage.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
