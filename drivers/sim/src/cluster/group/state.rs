//! A group's state (Kafka's `GroupMetadata`): its members, generation, chosen protocol,
//! pending members, timers and committed offsets.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use kafkit_core::codec::Reader;
use kafkit_core::protocol::join_group::response::JoinGroupResponseMember;
use kafkit_core::protocol::{ConsumerProtocolSubscription, ErrorCode, Message};

use super::member::Member;
use super::offsets::CommittedOffset;
use super::{ClientRef, GroupSnapshot, MemberSnapshot};

/// The protocol type of Kafka consumers; only such groups have subscriptions the coordinator
/// can read.
pub(super) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The state of a classic group, as Kafka names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupState {
    /// No members (offsets may still be committed, by generation -1).
    Empty,
    /// A rebalance started: waiting for members to (re)join.
    PreparingRebalance,
    /// Everyone joined: waiting for the leader's assignment.
    CompletingRebalance,
    /// Assignment done; members heartbeat.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// The name Kafka gives the state (`"PreparingRebalance"`), as in DescribeGroups and
    /// ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

impl std::fmt::Display for GroupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The pending completion of the join phase (Kafka's `DelayedJoin` in the rebalance
/// purgatory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum JoinTimer {
    /// `InitialDelayedJoin`: the first rebalance of an empty group waits for more members and
    /// never completes early.
    Initial {
        deadline: Instant,
        configured_delay_ms: i32,
        delay_ms: i32,
        remaining_ms: i32,
    },
    /// `DelayedJoin`: completes when every member rejoined, or at the rebalance timeout.
    Normal { deadline: Instant },
}

impl JoinTimer {
    pub(super) fn deadline(&self) -> Instant {
        match *self {
            JoinTimer::Initial { deadline, .. } | JoinTimer::Normal { deadline } => deadline,
        }
    }
}

/// One group.
#[derive(Clone, Debug)]
pub(super) struct Group {
    pub(super) id: String,
    pub(super) state: GroupState,
    pub(super) generation: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol_name: Option<String>,
    pub(super) leader: Option<String>,
    /// Members in join order.
    pub(super) members: Vec<Member>,
    /// Member ids handed out with `MEMBER_ID_REQUIRED`, not yet rejoined, with the deadline
    /// at which they are forgotten.
    pub(super) pending_members: BTreeMap<String, Instant>,
    /// Members that have not sent SyncGroup since the join phase completed.
    pub(super) pending_sync: BTreeSet<String>,
    pub(super) join_timer: Option<JoinTimer>,
    /// Kafka's `DelayedSync`: the deadline for `pending_sync` members and its generation.
    pub(super) sync_timer: Option<(Instant, i32)>,
    /// A member joined during the initial delay (which is then extended).
    pub(super) new_member_added: bool,
    /// Topics the members subscribe to, `None` when unknown (read at each generation).
    pub(super) subscribed_topics: Option<BTreeSet<String>>,
    /// Committed offsets by `(topic, partition)`.
    pub(super) offsets: BTreeMap<(String, i32), CommittedOffset>,
}

impl Group {
    pub(super) fn new(id: &str) -> Self {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: Vec::new(),
            pending_members: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            join_timer: None,
            sync_timer: None,
            new_member_added: false,
            subscribed_topics: None,
            offsets: BTreeMap::new(),
        }
    }

    pub(super) fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub(super) fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    pub(super) fn has_member(&self, id: &str) -> bool {
        self.member(id).is_some()
    }

    pub(super) fn is_leader(&self, id: &str) -> bool {
        self.leader.as_deref() == Some(id)
    }

    /// The member id currently bound to static instance `instance_id`.
    pub(super) fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
            .map(|m| m.id.as_str())
    }

    /// Kafka's `validateCurrentMember`: a static instance id must be known
    /// (`UNKNOWN_MEMBER_ID`) and bound to `member_id` (`FENCED_INSTANCE_ID`); the member must
    /// exist (`UNKNOWN_MEMBER_ID`).
    pub(super) fn validate_current_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Option<ErrorCode> {
        if let Some(instance) = instance_id {
            match self.static_member_id(instance) {
                Some(bound) if bound != member_id => return Some(ErrorCode::FENCED_INSTANCE_ID),
                Some(_) => {}
                None => return Some(ErrorCode::UNKNOWN_MEMBER_ID),
            }
        }
        if self.has_member(member_id) {
            None
        } else {
            Some(ErrorCode::UNKNOWN_MEMBER_ID)
        }
    }

    /// How many members list protocol `name`.
    fn support_count(&self, name: &str) -> usize {
        self.members.iter().filter(|m| m.supports(name)).count()
    }

    /// Kafka's `supportsProtocols`: whether a member of `protocol_type` listing `protocols`
    /// could join.
    pub(super) fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, bytes::Bytes)],
    ) -> bool {
        if self.state == GroupState::Empty {
            !protocol_type.is_empty() && !protocols.is_empty()
        } else {
            self.protocol_type.as_deref() == Some(protocol_type)
                && protocols
                    .iter()
                    .any(|(n, _)| self.support_count(n) == self.members.len())
        }
    }

    /// The protocols every member lists.
    fn candidate_protocols(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for m in &self.members {
            for (n, _) in &m.protocols {
                if self.support_count(n) == self.members.len() {
                    names.insert(n.clone());
                }
            }
        }
        names
    }

    /// Kafka's `selectProtocol`: each member votes for its most preferred candidate; most votes
    /// wins, ties going to the earliest member's vote. `None` without members.
    pub(super) fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        // Votes in order of first appearance (join order), for a deterministic tie-break.
        let mut votes: Vec<(&str, usize)> = Vec::new();
        for vote in self.members.iter().filter_map(|m| m.vote(&candidates)) {
            match votes.iter_mut().find(|(n, _)| *n == vote) {
                Some((_, count)) => *count += 1,
                None => votes.push((vote, 1)),
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in votes {
            if best.is_none_or(|(_, c)| count > c) {
                best = Some((name, count));
            }
        }
        best.map(|(n, _)| n.to_string())
    }

    /// Kafka's `rebalanceTimeoutMs`: the largest of the members'.
    pub(super) fn rebalance_timeout_ms(&self) -> i32 {
        self.members
            .iter()
            .map(|m| m.rebalance_timeout_ms)
            .fold(0, i32::max)
    }

    /// Kafka's `hasAllMembersJoined`: every member has a parked JoinGroup and no member id
    /// handed out with `MEMBER_ID_REQUIRED` is outstanding.
    pub(super) fn has_all_members_joined(&self) -> bool {
        self.members.iter().all(Member::is_awaiting_join) && self.pending_members.is_empty()
    }

    /// Kafka's `canRebalance`.
    pub(super) fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        )
    }

    /// Kafka's `GroupMetadata.add`.
    pub(super) fn add_member(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        self.pending_members.remove(&member.id);
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        self.members.push(member);
    }

    /// Kafka's `GroupMetadata.remove`: the member goes (its parked requests are dropped), a
    /// new leader is picked if it led.
    pub(super) fn remove_member(&mut self, id: &str) -> Option<Member> {
        let removed = self
            .members
            .iter()
            .position(|m| m.id == id)
            .map(|i| self.members.remove(i));
        if self.is_leader(id) {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        self.pending_members.remove(id);
        self.remove_pending_sync(id);
        removed
    }

    /// A member sent its SyncGroup (or left): once nobody is pending, the sync deadline goes.
    pub(super) fn remove_pending_sync(&mut self, id: &str) {
        self.pending_sync.remove(id);
        if self.pending_sync.is_empty() {
            self.sync_timer = None;
        }
    }

    /// The member list the leader receives: every member with its metadata for the chosen
    /// protocol.
    pub(super) fn current_member_metadata(&self) -> Vec<JoinGroupResponseMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .iter()
            .map(|m| JoinGroupResponseMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol),
                ..Default::default()
            })
            .collect()
    }

    /// Kafka's `initNextGeneration`.
    pub(super) fn init_next_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.state = GroupState::Empty;
        } else {
            self.protocol_name = self.select_protocol();
            self.state = GroupState::CompletingRebalance;
        }
        self.subscribed_topics = self.compute_subscribed_topics();
        self.pending_sync.clear();
        self.sync_timer = None;
    }

    /// Kafka's `computeSubscribedTopics`: the union of the members' consumer subscriptions
    /// (read as version 0, the prefix of every version), `None` if one cannot be read or the
    /// group is not a consumer group.
    fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for m in &self.members {
            let mut r = Reader::new(m.metadata(protocol));
            r.read_i16().ok()?;
            let sub = ConsumerProtocolSubscription::decode(&mut r, 0).ok()?;
            topics.extend(sub.topics);
        }
        Some(topics)
    }

    /// Kafka's `isSubscribedToTopic`: unknown subscriptions count as subscribed.
    pub(super) fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        self.subscribed_topics
            .as_ref()
            .is_none_or(|topics| topics.contains(topic))
    }

    /// Drops the parked requests of a closed connection.
    pub(super) fn forget_connection(&mut self, on_conn: &dyn Fn(&ClientRef) -> bool) {
        for m in &mut self.members {
            for waiter in [&mut m.awaiting_join, &mut m.awaiting_sync]
                .into_iter()
                .flatten()
            {
                if waiter.client.as_ref().is_some_and(on_conn) {
                    waiter.client = None;
                }
            }
        }
    }

    pub(super) fn snapshot(&self) -> GroupSnapshot {
        GroupSnapshot {
            state: self.state,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone(),
            members: self
                .members
                .iter()
                .map(|m| MemberSnapshot {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    assignment: m.assignment.clone(),
                    awaiting_join: m.is_awaiting_join(),
                    awaiting_sync: m.is_awaiting_sync(),
                })
                .collect(),
        }
    }
}
