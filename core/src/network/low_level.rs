//! The protocol-level client: send any request to a chosen broker and get its decoded
//! response — what kafka-python's `KafkaClient` offers for probing and experiments.
//!
//! # Contract
//!
//! * Driving: [`LowLevelClient`] implements [`ClientCore`]; drive it as the module docs of
//!   [`crate::network`] say.
//! * Ids in, events out: [`LowLevelClient::send`] and [`LowLevelClient::check_version`] take
//!   an [`OpId`] the application chooses; each completes with exactly one
//!   [`LowLevelEvent::Response`] carrying that id (the core never interprets ids: one given
//!   twice is reported twice). The network layer's own [`RequestId`]s stay inside.
//! * Closing: [`LowLevelClient::close`] is graceful: requests sent afterwards fail at once
//!   with [`NetError::Closed`]; requests in progress go on until they complete or the close
//!   timeout passes, when the rest fail with [`NetError::Closed`]; then the connections close
//!   and [`LowLevelEvent::Closed`] is emitted, once. [`LowLevelClient::abort`] does all of
//!   that at once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{NetEvent, NetOptions, NetworkClient, Response, Target};
use super::cluster::ClusterView;
use super::error::NetError;
use super::versions::{ApiVersionTable, BrokerVersion};
use super::{ClientCore, CloseReason, ConnId, NodeId, Output, RequestId};
use crate::deadline::Deadline;
use crate::protocol::{MetadataRequest, RequestBody};
use crate::OpId;

/// What the [`LowLevelClient`] reports.
#[derive(Debug)]
// Responses dominate and are moved once, straight to the application; boxing them would cost
// an allocation per response for nothing.
#[allow(clippy::large_enum_variant)]
pub enum LowLevelEvent {
    /// A request sent with [`LowLevelClient::send`] (or a version check) completed.
    Response {
        /// The id the request was given.
        id: OpId,
        /// The response, or why there is none.
        result: Result<Response, NetError>,
    },
    /// The cluster view changed.
    MetadataUpdated(Arc<ClusterView>),
    /// The client has closed: every request has completed and the connections are closed.
    /// Emitted once, after the last [`LowLevelEvent::Response`].
    Closed,
}

use crate::lifecycle::Lifecycle as State;

/// A client that sends generated requests as they are, to the broker the caller picks, and
/// reports each decoded response. Versions are negotiated per broker; the body must be valid
/// at the negotiated version (or capped with `max_version`). See the module docs for the
/// contract.
#[derive(Debug)]
pub struct LowLevelClient {
    net: NetworkClient,
    /// The application's id of every request in progress.
    ops: HashMap<RequestId, OpId>,
    out: VecDeque<Output<LowLevelEvent>>,
    state: State,
}

impl LowLevelClient {
    /// A client over a fresh network layer.
    pub fn new(opts: NetOptions) -> Self {
        LowLevelClient {
            net: NetworkClient::new(opts),
            ops: HashMap::new(),
            out: VecDeque::new(),
            state: State::Open,
        }
    }

    /// Sends `body` to `target`; the response arrives as [`LowLevelEvent::Response`] with
    /// id `op`. A Produce request with `acks` 0, which the broker never answers, completes
    /// once written, with an empty Produce response. After [`LowLevelClient::close`] it fails
    /// at once with [`NetError::Closed`].
    pub fn send(
        &mut self,
        op: OpId,
        target: Target,
        body: impl Into<RequestBody>,
        max_version: Option<i16>,
        now: Instant,
    ) {
        if self.state != State::Open {
            self.out.push_back(Output::Event(LowLevelEvent::Response {
                id: op,
                result: Err(NetError::Closed),
            }));
            return;
        }
        let body = body.into();
        let expect_response = !matches!(&body, RequestBody::Produce(p) if p.acks == 0);
        let id = self
            .net
            .send(target, body, max_version, expect_response, now);
        self.ops.insert(id, op);
        self.drain_net();
    }

    /// Starts a broker version check: connects to the least loaded broker and asks it for
    /// metadata; the response arrives as [`LowLevelEvent::Response`] with id `op`. Then
    /// [`LowLevelClient::broker_versions`] of its node gives the broker's version guess and
    /// its API table.
    pub fn check_version(&mut self, op: OpId, now: Instant) {
        let body = RequestBody::Metadata(MetadataRequest {
            topics: Some(Vec::new()),
            allow_auto_topic_creation: false,
            ..Default::default()
        });
        self.send(op, Target::Any, body, None, now);
    }

    /// The version guess and API table of a broker connected to before.
    pub fn broker_versions(&self, node: NodeId) -> Option<(BrokerVersion, Arc<ApiVersionTable>)> {
        self.net.broker_versions(node)
    }

    /// The network layer underneath (cluster view, metadata control). Requests sent through
    /// it directly are not reported by this client.
    pub fn network(&mut self) -> &mut NetworkClient {
        &mut self.net
    }

    /// Requests in progress.
    pub fn requests_in_progress(&self) -> usize {
        self.ops.len()
    }

    /// Whether the client has closed ([`LowLevelEvent::Closed`] was emitted).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Closes gracefully: requests sent from now on fail at once with [`NetError::Closed`];
    /// requests in progress go on until they complete or `timeout` has passed, when the rest
    /// fail with [`NetError::Closed`]; then the connections close and
    /// [`LowLevelEvent::Closed`] is emitted. With nothing in progress that happens now.
    /// Calling it again only brings the deadline forward.
    pub fn close(&mut self, timeout: Duration, now: Instant) {
        if self.state.close(timeout, now) {
            self.settle_close(now);
        }
    }

    /// Closes at once: every request in progress fails with [`NetError::Closed`], the
    /// connections close and [`LowLevelEvent::Closed`] is emitted (unless it already was).
    pub fn abort(&mut self) {
        if self.state != State::Closed {
            self.finish_close();
        }
    }

    fn settle_close(&mut self, now: Instant) {
        if self.state.close_is_due(self.ops.is_empty(), now) {
            self.finish_close();
        }
    }

    fn finish_close(&mut self) {
        self.state = State::Closed;
        // The network layer fails every request it holds with `Closed`; they are reported
        // under their ids before `Closed` itself.
        self.net.close();
        self.drain_net();
        for (_, id) in self.ops.drain() {
            // Not reachable through today's network layer, which completes every request on
            // close; kept so that no request can go unreported.
            self.out.push_back(Output::Event(LowLevelEvent::Response {
                id,
                result: Err(NetError::Closed),
            }));
        }
        self.out.push_back(Output::Event(LowLevelEvent::Closed));
    }

    /// Moves the network layer's output into ours, naming responses by their [`OpId`].
    fn drain_net(&mut self) {
        while let Some(o) = self.net.poll_output() {
            let o = match o {
                Output::Event(NetEvent::Response { id, result }) => {
                    // Requests sent through `network()` directly have no op: not ours to report.
                    let Some(id) = self.ops.remove(&id) else {
                        continue;
                    };
                    Output::Event(LowLevelEvent::Response { id, result })
                }
                Output::Event(NetEvent::MetadataUpdated(view)) => {
                    Output::Event(LowLevelEvent::MetadataUpdated(view))
                }
                o => match o.for_driver() {
                    Ok(o) => o,
                    Err(_) => continue,
                },
            };
            self.out.push_back(o);
        }
    }

    /// Drains after an input and ends a graceful close if it is done.
    fn after_input(&mut self, now: Instant) {
        self.drain_net();
        self.settle_close(now);
    }
}

impl ClientCore for LowLevelClient {
    type Event = LowLevelEvent;

    fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        self.net.handle_connected(conn, now);
        self.after_input(now);
    }
    fn handle_data(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        self.net.handle_data(conn, data, now);
        self.after_input(now);
    }
    fn handle_bytes(&mut self, conn: ConnId, data: bytes::Bytes, now: Instant) {
        self.net.handle_bytes(conn, data, now);
        self.after_input(now);
    }
    fn handle_closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant) {
        self.net.handle_closed(conn, reason, now);
        self.after_input(now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.net.handle_timeout(now);
        self.after_input(now);
    }
    fn poll_output(&mut self) -> Option<Output<LowLevelEvent>> {
        // Calls on `network()` queue output there without passing through an input of ours.
        self.drain_net();
        self.out.pop_front()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Open => self.net.poll_timeout(),
            State::Closing { deadline } => Deadline::from(self.net.poll_timeout())
                .with(deadline)
                .earliest(),
            State::Closed => None,
        }
    }
}
