//! One group member (Kafka's `MemberMetadata`) and the parked requests it may have.

use std::collections::BTreeSet;
use std::time::Instant;

use bytes::Bytes;
use kafkit_core::protocol::join_group::request::JoinGroupRequestProtocol;

use super::ClientRef;

/// A parked request: where its answer goes, or `None` once its connection closed (the member
/// still counts as waiting, as in Kafka, but the answer is dropped).
#[derive(Clone, Debug)]
pub(super) struct Waiter {
    pub(super) client: Option<ClientRef>,
}

impl Waiter {
    pub(super) fn new(client: &ClientRef) -> Self {
        Waiter {
            client: Some(client.clone()),
        }
    }
}

/// A member of a group.
#[derive(Clone, Debug)]
pub(super) struct Member {
    pub(super) id: String,
    pub(super) instance_id: Option<String>,
    pub(super) client_id: String,
    pub(super) client_host: String,
    pub(super) rebalance_timeout_ms: i32,
    pub(super) session_timeout_ms: i32,
    pub(super) protocol_type: String,
    /// `(name, metadata)` in the member's order of preference.
    pub(super) protocols: Vec<(String, Bytes)>,
    /// The assignment of the current generation (empty until the leader's SyncGroup).
    pub(super) assignment: Bytes,
    pub(super) awaiting_join: Option<Waiter>,
    pub(super) awaiting_sync: Option<Waiter>,
    /// Joined but not yet through its first completed rebalance.
    pub(super) is_new: bool,
    /// When the member's session (or a new member's join) expires, if a check is scheduled.
    pub(super) heartbeat_deadline: Option<Instant>,
}

impl Member {
    /// Whether the member lists protocol `name`.
    pub(super) fn supports(&self, name: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == name)
    }

    /// The member's metadata for protocol `name` (empty if it does not list it).
    pub(super) fn metadata(&self, name: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// Whether `protocols` are exactly the member's (names, metadata and order).
    pub(super) fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    /// The member's most preferred protocol among `candidates`.
    pub(super) fn vote<'a>(&'a self, candidates: &BTreeSet<String>) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .find(|n| candidates.contains(*n))
    }

    /// Whether the member has a parked JoinGroup.
    pub(super) fn is_awaiting_join(&self) -> bool {
        self.awaiting_join.is_some()
    }

    /// Whether the member has a parked SyncGroup.
    pub(super) fn is_awaiting_sync(&self) -> bool {
        self.awaiting_sync.is_some()
    }

    /// Kafka's `hasSatisfiedHeartbeat` at the moment the session check fires: a new member
    /// must have completed its join; a member waiting on a rebalance is excused.
    pub(super) fn excused_from_heartbeat(&self) -> bool {
        !self.is_new && (self.is_awaiting_join() || self.is_awaiting_sync())
    }
}

/// The protocols of a JoinGroup as `(name, metadata)` in preference order; a repeated name
/// keeps its first entry (Kafka keys the protocols by name).
pub(super) fn protocols_of(protocols: &[JoinGroupRequestProtocol]) -> Vec<(String, Bytes)> {
    let mut out: Vec<(String, Bytes)> = Vec::with_capacity(protocols.len());
    for p in protocols {
        if !out.iter().any(|(n, _)| *n == p.name) {
            out.push((p.name.clone(), p.metadata.clone()));
        }
    }
    out
}
