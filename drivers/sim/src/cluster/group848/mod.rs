//! The KIP-848 group coordinator of the simulated broker: consumer-protocol groups served by
//! ConsumerGroupHeartbeat (API 68) and described by ConsumerGroupDescribe (API 69), in the
//! manner of Kafka 4.0's `GroupMetadataManager` and `ConsumerGroup`, in virtual time.
//!
//! # Model
//! - A group has a **group epoch**, bumped whenever what the target assignment depends on
//!   changes (a member joins or goes, a subscription or the server assignor changes, the
//!   subscribed topics' partitions change), and a **target assignment** computed at once by a
//!   server-side assignor ([`assign`]: `uniform`, the default, or `range`, chosen by the most
//!   common `ServerAssignor` of the members), stamped with the **assignment epoch**.
//! - Each member has a **member epoch** and reconciles towards its target one heartbeat at a
//!   time ([`reconcile`], Kafka's `CurrentAssignmentBuilder`): partitions it must give up are
//!   revoked first, with its epoch unchanged; a partition is handed to its new owner only once
//!   the previous owner acknowledged the revocation in a heartbeat, so no partition is ever
//!   owned by two members.
//! - Subscriptions (topic names or a `SubscribedTopicRegex`) are resolved against the
//!   cluster's topics on every heartbeat: a topic created or deleted, or grown, changes the
//!   group's subscription metadata and so bumps the group epoch.
//! - Sessions (`group.consumer.session.timeout.ms`) and revocation deadlines (the member's
//!   rebalance timeout) run on the cluster's clock: see [`ConsumerGroups::poll_timeout`].
//!
//! # Driving contract
//! The cluster model routes ConsumerGroupHeartbeat and ConsumerGroupDescribe here (deciding
//! `NOT_COORDINATOR` is its business), passes the cluster's topics on every call, and asks
//! [`ConsumerGroups::validate_offset_commit`] / [`ConsumerGroups::validate_offset_fetch`]
//! before the classic coordinator stores or reads a consumer group's offsets (committed
//! offsets live in one store, the classic coordinator's, whatever the group's protocol).
//! Every request is answered at once.
//!
//! # Known differences from Kafka
//! - Everything is in memory (no `__consumer_offsets` records, so no load or write errors).
//! - Classic members cannot join a consumer group (Kafka's `group.consumer.migration.policy`
//!   is treated as `upgrade` for empty groups only): a JoinGroup to a consumer group with
//!   members is `INCONSISTENT_GROUP_PROTOCOL`, and a heartbeat to a classic group with members
//!   is `GROUP_ID_NOT_FOUND`. Empty groups change protocol freely, keeping their offsets.
//! - Regular expressions use the `regex` crate's syntax (Kafka uses RE2/J; the common subset
//!   is the same) and are re-evaluated on every heartbeat rather than every
//!   `group.consumer.regex.refresh.interval.ms`.
//! - The uniform assignor is a sticky balancer (keep what one can, give the rest to the least
//!   loaded subscriber, then move partitions from the most to the least loaded) rather than
//!   Kafka's exact algorithm; balance is the same for homogeneous subscriptions (no member has
//!   two partitions more than another). Racks are not considered.
#![forbid(unsafe_code)]

pub mod assign;
mod describe;
mod heartbeat;
pub mod reconcile;
mod timers;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use kafkit_core::codec::Uuid;

pub use heartbeat::Sender;
pub use reconcile::MemberState;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// A topic as the coordinator sees it: its id and partition count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicMeta {
    /// The topic id.
    pub id: Uuid,
    /// Number of partitions.
    pub partitions: i32,
}

/// The cluster's topics by name.
pub type Topics = BTreeMap<String, TopicMeta>;

/// The member epoch of a heartbeat that leaves the group.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// The member epoch of a static member's heartbeat that leaves for now, keeping its
/// assignment until its session expires or its instance id rejoins.
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// The server assignors the coordinator knows, the first one the default.
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// Broker settings of the consumer group coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.session.timeout.ms` (Kafka's default 45000).
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (Kafka's default 5000).
    pub heartbeat_interval_ms: i32,
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        ConsumerGroupConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
        }
    }
}

/// The state of a consumer group, as ListGroups and ConsumerGroupDescribe name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumerGroupState {
    /// No members.
    Empty,
    /// The target assignment is older than the group epoch (never seen from outside here:
    /// the target is computed at once).
    Assigning,
    /// Some member has not reached the target assignment.
    Reconciling,
    /// Every member has its target assignment at the assignment epoch.
    Stable,
}

impl ConsumerGroupState {
    /// Kafka's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// One member of a consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member id.
    pub id: String,
    /// The static instance id.
    pub instance_id: Option<String>,
    /// The rack the member reported.
    pub rack_id: Option<String>,
    /// The client id of its last heartbeat.
    pub client_id: String,
    /// The client's host.
    pub client_host: String,
    /// How long it may take to revoke partitions.
    pub rebalance_timeout_ms: i32,
    /// Subscribed topic names.
    pub subscribed_topic_names: Vec<String>,
    /// Subscribed topic regular expression.
    pub subscribed_topic_regex: Option<String>,
    /// The server assignor it asked for.
    pub server_assignor: Option<String>,
    /// Its epoch (`LEAVE_GROUP_STATIC_MEMBER_EPOCH` once a static member left for now).
    pub member_epoch: i32,
    /// Its epoch before the last change (a heartbeat whose answer was lost may carry it).
    pub previous_member_epoch: i32,
    /// Where it is in its reconciliation.
    pub state: MemberState,
    /// Partitions it owns (as the last answer told it).
    pub assigned: Assignment,
    /// Partitions it still owns but must give up.
    pub pending_revocation: Assignment,
    /// When its session expires.
    pub session_deadline: Instant,
    /// When it must have revoked `pending_revocation` by.
    pub revocation_deadline: Option<Instant>,
}

impl Member {
    /// Whether the member owns (assigned or pending revocation) `topic`-`partition`.
    pub fn owns(&self, topic: Uuid, partition: i32) -> bool {
        let has = |a: &Assignment| a.get(&topic).is_some_and(|p| p.contains(&partition));
        has(&self.assigned) || has(&self.pending_revocation)
    }
}

/// A consumer-protocol group.
#[derive(Clone, Debug)]
pub struct ConsumerGroup {
    /// The group id.
    pub id: String,
    /// The group epoch.
    pub group_epoch: i32,
    /// The epoch of the target assignment.
    pub assignment_epoch: i32,
    /// The assignor that computed the target assignment.
    pub assignor: String,
    /// Members by id.
    pub members: BTreeMap<String, Member>,
    /// The target assignment of each member.
    pub target: BTreeMap<String, Assignment>,
    /// The subscribed topics (name, id, partitions) the target was computed from.
    pub subscription_metadata: Topics,
}

impl ConsumerGroup {
    fn new(id: &str) -> Self {
        ConsumerGroup {
            id: id.to_owned(),
            group_epoch: 0,
            assignment_epoch: 0,
            assignor: ASSIGNORS[0].to_owned(),
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            subscription_metadata: Topics::new(),
        }
    }

    /// The group's state.
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.assignment_epoch < self.group_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .all(|m| m.state == MemberState::Stable && m.member_epoch == self.assignment_epoch)
        {
            ConsumerGroupState::Stable
        } else {
            ConsumerGroupState::Reconciling
        }
    }

    /// The member that owns (assigned or pending revocation) a partition, with its epoch.
    pub fn owner(&self, topic: Uuid, partition: i32) -> Option<(&str, i32)> {
        self.members
            .values()
            .find(|m| m.owns(topic, partition))
            .map(|m| (m.id.as_str(), m.member_epoch))
    }

    /// The member with static instance id `instance`.
    fn static_member(&self, instance: &str) -> Option<&Member> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance))
    }
}

/// The consumer groups of the cluster. See the [module docs](self).
#[derive(Debug, Default)]
pub struct ConsumerGroups {
    config: ConsumerGroupConfig,
    groups: BTreeMap<String, ConsumerGroup>,
    member_seq: u64,
}

impl ConsumerGroups {
    /// A coordinator with no groups.
    pub fn new(config: ConsumerGroupConfig) -> Self {
        ConsumerGroups {
            config,
            groups: BTreeMap::new(),
            member_seq: 0,
        }
    }

    /// The settings this coordinator runs with.
    pub fn config(&self) -> &ConsumerGroupConfig {
        &self.config
    }

    /// Group `id`, if it is a consumer group.
    pub fn group(&self, id: &str) -> Option<&ConsumerGroup> {
        self.groups.get(id)
    }

    /// The ids of all consumer groups, sorted.
    pub fn group_ids(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    /// Whether `id` is a consumer group with members.
    pub fn has_members(&self, id: &str) -> bool {
        self.groups.get(id).is_some_and(|g| !g.members.is_empty())
    }

    /// Forgets group `id` (deleted, or an empty group taken over by a classic member).
    pub fn remove_group(&mut self, id: &str) -> bool {
        self.groups.remove(id).is_some()
    }

    /// A member id for a v0 heartbeat that joins without one (v1 clients choose their own).
    fn next_member_id(&mut self) -> String {
        self.member_seq += 1;
        format!("00000000-0000-4000-8848-{:012x}", self.member_seq)
    }
}
