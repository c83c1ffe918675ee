//! The protocol-level client: send any request to a chosen broker and get its decoded
//! response — what kafka-python's `KafkaClient` offers for probing and experiments.

use std::sync::Arc;
use std::time::Instant;

use super::client::{NetEvent, NetOptions, NetworkClient, Target};
use super::versions::{ApiVersionTable, BrokerVersion};
use super::{ClientCore, CloseReason, ConnId, NodeId, Output, RequestId};
use crate::protocol::{MetadataRequest, RequestBody};

/// Events of the [`LowLevelClient`]: the network layer's own.
pub type LowLevelEvent = NetEvent;

/// A client that sends generated requests as they are, to the broker the caller picks, and
/// reports each decoded response. Versions are negotiated per broker; the body must be valid
/// at the negotiated version (or capped with `max_version`).
#[derive(Debug)]
pub struct LowLevelClient {
    net: NetworkClient,
}

impl LowLevelClient {
    /// A client over a fresh network layer.
    pub fn new(opts: NetOptions) -> Self {
        LowLevelClient {
            net: NetworkClient::new(opts),
        }
    }

    /// Sends `body` to `target`; the response arrives as [`NetEvent::Response`] with this id.
    pub fn send(
        &mut self,
        target: Target,
        body: impl Into<RequestBody>,
        max_version: Option<i16>,
        now: Instant,
    ) -> RequestId {
        self.net.send(target, body.into(), max_version, true, now)
    }

    /// Starts a broker version check: connects to the least loaded broker and asks it for
    /// metadata. When the response arrives, [`LowLevelClient::broker_versions`] of its node
    /// gives the broker's version guess and its API table.
    pub fn check_version(&mut self, now: Instant) -> RequestId {
        let body = RequestBody::Metadata(MetadataRequest {
            topics: Some(Vec::new()),
            allow_auto_topic_creation: false,
            ..Default::default()
        });
        self.net.send(Target::Any, body, None, true, now)
    }

    /// The version guess and API table of a broker connected to before.
    pub fn broker_versions(&self, node: NodeId) -> Option<(BrokerVersion, Arc<ApiVersionTable>)> {
        self.net.broker_versions(node)
    }

    /// The network layer underneath (cluster view, metadata control).
    pub fn network(&mut self) -> &mut NetworkClient {
        &mut self.net
    }

    /// Closes every connection and fails what is outstanding.
    pub fn close(&mut self) {
        self.net.close();
    }
}

impl ClientCore for LowLevelClient {
    type Event = NetEvent;

    fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        self.net.handle_connected(conn, now)
    }
    fn handle_data(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        self.net.handle_data(conn, data, now)
    }
    fn handle_bytes(&mut self, conn: ConnId, data: bytes::Bytes, now: Instant) {
        self.net.handle_bytes(conn, data, now)
    }
    fn handle_closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant) {
        self.net.handle_closed(conn, reason, now)
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.net.handle_timeout(now)
    }
    fn poll_output(&mut self) -> Option<Output<NetEvent>> {
        self.net.poll_output()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.net.poll_timeout()
    }
}
