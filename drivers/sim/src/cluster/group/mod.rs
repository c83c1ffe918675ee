//! The classic group coordinator of the simulated broker: Kafka's `GroupCoordinator` (the
//! JoinGroup/SyncGroup protocol of Kafka 2.x–3.x) and the committed-offset store, in virtual
//! time.
//!
//! # Driving contract
//! The cluster model owns one [`GroupCoordinator`] per coordinator broker and routes the group
//! APIs to it (deciding `NOT_COORDINATOR` is the cluster model's business):
//! - [`GroupCoordinator::handle`] answers a request at once ([`GroupReply::Now`]) or parks it
//!   ([`GroupReply::Deferred`]): a JoinGroup waits for the rebalance, a follower's SyncGroup for
//!   the leader's assignment.
//! - Parked requests are answered later, by timers or by other members' requests; collect them
//!   with [`GroupCoordinator::take_completed`] after every call that changes state (`handle`,
//!   `handle_timeout`).
//! - Call [`GroupCoordinator::handle_timeout`] when [`GroupCoordinator::poll_timeout`] is due.
//!   `handle` also fires whatever is due at its `now` first, so a late timer call cannot
//!   reorder events. Time never goes backwards.
//! - [`GroupCoordinator::connection_closed`] drops parked requests of a closed connection. As
//!   in Kafka, a member whose JoinGroup was parked still counts as having joined; only its
//!   answer is lost.
//!
//! Only the ten group APIs listed at [`GroupCoordinator::handles`] may be passed to `handle`.
//!
//! Everything is deterministic: members are kept in join order, groups and offsets in
//! `BTreeMap`s, member ids come from a counter, and time only from the `now` arguments.
//!
//! Where Kafka's behaviour changed over 2.x–3.x, this follows the latest classic coordinator
//! (3.x): heartbeats in CompletingRebalance succeed, members that do not send SyncGroup within
//! the rebalance timeout are removed, a restarted static leader learns it leads from JoinGroup
//! v9 (`skip_assignment`), generation -1 commits to an empty group pass whatever member id they
//! carry.
//!
//! # Known differences from Kafka
//! - Group and offset state live in memory only (no `__consumer_offsets` log, so no load or
//!   storage errors, no offset retention or expiry of empty groups).
//! - Ties in protocol selection (equal votes) go to the protocol preferred by the member that
//!   joined first, where Kafka's choice depends on hash-map order.
//! - A member id Kafka would draw from `UUID.randomUUID` is `<client id or instance id>-<uuid
//!   built from a counter>`.
//! - The rebalance retry armed when no member rejoined waits at least 1 ms, so a zero rebalance
//!   timeout cannot spin at one instant.
//! - When a static member is replaced while its SyncGroup is still expected, the expectation
//!   moves to the new member id (Kafka keeps the old id pending, which later forces a
//!   rebalance).
//! - Group max size and group instance id validation are not modelled. Transactional offsets
//!   are held by the transaction coordinator (`../txn`) until their transaction commits.
#![forbid(unsafe_code)]

mod admin;
mod join;
mod leave;
mod member;
mod offsets;
mod rebalance;
mod state;
mod sync;
mod timers;

use std::collections::BTreeMap;
use std::time::Instant;

use kafkit_core::codec::Uuid;
use kafkit_core::protocol::{ApiKey, RequestBody, ResponseBody};

pub use offsets::CommittedOffset;
pub use state::GroupState;

use state::Group;

/// Kafka's `offset.metadata.max.bytes` default: longer commit metadata is
/// `OFFSET_METADATA_TOO_LARGE`.
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;

/// Kafka's `GroupCoordinator.NewMemberJoinTimeoutMs`: how long a new member's first JoinGroup
/// may stay parked before the member is dropped.
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i32 = 300_000;

/// Broker settings of the group coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`: smaller session timeouts are `INVALID_SESSION_TIMEOUT`.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: larger session timeouts are `INVALID_SESSION_TIMEOUT`.
    pub group_max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group waits
    /// for more members.
    pub group_initial_rebalance_delay_ms: i32,
}

impl Default for GroupConfig {
    /// Kafka's defaults: 6000, 1800000 and 3000 ms.
    fn default() -> Self {
        GroupConfig {
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 3_000,
        }
    }
}

/// Who sent a request, and so where its answer goes and at which version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientRef {
    /// The broker the request arrived at.
    pub broker: i32,
    /// The connection on that broker.
    pub conn: u64,
    /// The request header's correlation id.
    pub correlation_id: i32,
    /// The request's API version; the response is built for the same version.
    pub api_version: i16,
    /// The request header's client id.
    pub client_id: String,
    /// The client's host, as DescribeGroups reports it.
    pub client_host: String,
}

/// The coordinator's answer to one request.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // the interface the cluster model calls
pub enum GroupReply {
    /// The response, to be sent now.
    Now(ResponseBody),
    /// The request is parked; its response will come out of
    /// [`GroupCoordinator::take_completed`] (or never, if its connection closes first).
    Deferred,
}

/// What the coordinator needs to know about the cluster's topics.
pub trait TopicView {
    /// Whether `topic` exists and has partition `partition`.
    fn partition_exists(&self, topic: &str, partition: i32) -> bool;
    /// The id of `topic`, if it exists.
    fn topic_id(&self, topic: &str) -> Option<Uuid>;
    /// The name of the topic with id `id`, if it exists.
    fn topic_name(&self, id: Uuid) -> Option<String>;
}

/// Responses produced while handling something, in the order they were produced.
pub(crate) type Outbox = Vec<(ClientRef, ResponseBody)>;

/// The classic group coordinator of one simulated broker: groups, their members and
/// rebalances, and committed offsets. See the [module docs](self) for the driving contract.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: GroupConfig,
    groups: BTreeMap<String, Group>,
    completed: Outbox,
    member_seq: u64,
}

impl GroupCoordinator {
    /// A coordinator with no groups.
    pub fn new(config: GroupConfig) -> Self {
        GroupCoordinator {
            config,
            groups: BTreeMap::new(),
            completed: Vec::new(),
            member_seq: 0,
        }
    }

    /// The settings this coordinator runs with.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Whether [`handle`](Self::handle) accepts requests of `api`: JoinGroup, SyncGroup,
    /// Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, OffsetDelete, ListGroups,
    /// DescribeGroups and DeleteGroups.
    pub fn handles(api: ApiKey) -> bool {
        matches!(
            api,
            ApiKey::JoinGroup
                | ApiKey::SyncGroup
                | ApiKey::Heartbeat
                | ApiKey::LeaveGroup
                | ApiKey::OffsetCommit
                | ApiKey::OffsetFetch
                | ApiKey::OffsetDelete
                | ApiKey::ListGroups
                | ApiKey::DescribeGroups
                | ApiKey::DeleteGroups
        )
    }

    /// Handles one group request from `client` at `now`, answering at `client.api_version`.
    ///
    /// Timers due at `now` fire first. Requests of APIs that [`handles`](Self::handles) rejects
    /// are a caller bug: no response of the right type can be built for them generically, so
    /// they are logged and answered with [`GroupReply::Deferred`] that never completes.
    pub fn handle(
        &mut self,
        client: ClientRef,
        body: RequestBody,
        topics: &dyn TopicView,
        now: Instant,
    ) -> GroupReply {
        self.handle_timeout(now);
        let version = client.api_version;
        let reply = match body {
            RequestBody::JoinGroup(req) => self.join_group(&client, req, now),
            RequestBody::SyncGroup(req) => self.sync_group(&client, req, now),
            RequestBody::Heartbeat(req) => Some(self.heartbeat(version, req, now)),
            RequestBody::LeaveGroup(req) => Some(self.leave_group(version, req, now)),
            RequestBody::OffsetCommit(req) => Some(self.offset_commit(version, req, topics, now)),
            RequestBody::OffsetFetch(req) => Some(self.offset_fetch(version, req)),
            RequestBody::OffsetDelete(req) => Some(self.offset_delete(version, req, topics)),
            RequestBody::ListGroups(req) => Some(self.list_groups(version, req)),
            RequestBody::DescribeGroups(req) => Some(self.describe_groups(version, req)),
            RequestBody::DeleteGroups(req) => Some(self.delete_groups(version, req)),
            other => {
                tracing::error!(
                    api = ?other.api_key(),
                    "group coordinator given a request it does not handle; it will not be answered"
                );
                None
            }
        };
        match reply {
            Some(body) => GroupReply::Now(body),
            // A parked request may have been answered by its own arrival (the last member to
            // join, the leader's SyncGroup): hand that answer back directly.
            None => match self.completed.iter().position(|(c, _)| *c == client) {
                Some(i) => GroupReply::Now(self.completed.remove(i).1),
                None => GroupReply::Deferred,
            },
        }
    }

    /// Parked requests answered since the last call, in the order they were answered.
    #[must_use]
    pub fn take_completed(&mut self) -> Vec<(ClientRef, ResponseBody)> {
        std::mem::take(&mut self.completed)
    }

    /// Drops the parked requests of connection `conn` on `broker`, and answers to them not yet
    /// taken: nobody is there to read them. Group membership is unchanged (Kafka does not
    /// notice disconnects either; a member goes when its session expires or it leaves).
    pub fn connection_closed(&mut self, broker: i32, conn: u64) {
        let on_conn = |c: &ClientRef| c.broker == broker && c.conn == conn;
        for group in self.groups.values_mut() {
            group.forget_connection(&on_conn);
        }
        self.completed.retain(|(c, _)| !on_conn(c));
    }

    /// The state of group `group_id`, `None` if there is no such group.
    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.get(group_id).map(|g| g.state)
    }

    /// A snapshot of group `group_id` (for tests and simulation invariants).
    pub fn group(&self, group_id: &str) -> Option<GroupSnapshot> {
        self.groups.get(group_id).map(Group::snapshot)
    }

    /// The ids of all groups, sorted.
    pub fn group_ids(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    /// The offset group `group_id` committed for `topic`-`partition`, if any.
    pub fn committed_offset(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
    ) -> Option<&CommittedOffset> {
        self.groups
            .get(group_id)?
            .offsets
            .get(&(topic.to_string(), partition))
    }

    /// Forgets the committed offsets of `topic` in every group, as Kafka does when a topic is
    /// deleted; empty groups left without offsets disappear.
    pub fn topic_deleted(&mut self, topic: &str) {
        for group in self.groups.values_mut() {
            group.offsets.retain(|(t, _), _| t != topic);
        }
        self.groups
            .retain(|_, g| !(g.state == GroupState::Empty && g.offsets.is_empty()));
    }

    /// A fresh member id: `prefix-` and a UUID-shaped string drawn from a counter.
    fn next_member_id(&mut self, prefix: &str) -> String {
        self.member_seq += 1;
        format!("{prefix}-00000000-0000-4000-8000-{:012x}", self.member_seq)
    }
}

/// A read-only view of one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSnapshot {
    /// The group's state.
    pub state: GroupState,
    /// The current generation.
    pub generation_id: i32,
    /// The protocol type of its members (`"consumer"`), if it ever had members.
    pub protocol_type: Option<String>,
    /// The protocol chosen for the current generation.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: Option<String>,
    /// The members, in join order.
    pub members: Vec<MemberSnapshot>,
}

/// A read-only view of one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSnapshot {
    /// The member id.
    pub member_id: String,
    /// The static instance id.
    pub group_instance_id: Option<String>,
    /// The client id it joined with.
    pub client_id: String,
    /// Its assignment in the current generation (empty until the leader's SyncGroup).
    pub assignment: bytes::Bytes,
    /// Whether its JoinGroup is parked.
    pub awaiting_join: bool,
    /// Whether its SyncGroup is parked.
    pub awaiting_sync: bool,
}
