//! Partition assignors of the classic consumer group protocol, and the consumer protocol codec.
//!
//! The group leader runs a [`PartitionAssignor`] over every member's [`Subscription`] and sends
//! each member its [`Assignment`] in SyncGroup. The four built-in assignors are kafkit's versions
//! of Java's, under Java's protocol names so that kafkit, Java and librdkafka members can share a
//! group (any of them may be the leader):
//!
//! - [`RangeAssignor`] (`range`): per topic, consecutive ranges of partitions.
//! - [`RoundRobinAssignor`] (`roundrobin`): every partition dealt to members in turn.
//! - [`StickyAssignor`] (`sticky`, KIP-54/KIP-341): balanced, keeping what members held;
//!   eager rebalancing.
//! - [`CooperativeStickyAssignor`] (`cooperative-sticky`, KIP-429): the same, with
//!   incremental cooperative rebalancing.
//!
//! Every assignor is deterministic: the same members and metadata give the same assignment
//! (ordered maps and sorted vectors, no randomness), whatever order the members come in.
//!
//! The codec functions read and write the `ConsumerProtocolSubscription` and
//! `ConsumerProtocolAssignment` payloads (a big-endian `int16` version, then the body) carried
//! as JoinGroup member metadata and SyncGroup assignments, versions 0 to 3. Like Java, a
//! decoder reads a newer version's known prefix and ignores what follows, so members running a
//! newer protocol version can still be understood.

mod range;
mod round_robin;
mod sticky;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

pub use self::range::RangeAssignor;
pub use self::round_robin::RoundRobinAssignor;
pub use self::sticky::{CooperativeStickyAssignor, StickyAssignor};
use super::TopicPartition;
use crate::codec::{DecodeError, EncodeError, Reader};
use crate::config::AssignmentStrategy;
use crate::protocol::generated::consumer_protocol_assignment as wire_assignment;
use crate::protocol::generated::consumer_protocol_subscription as wire_subscription;
use crate::protocol::Message;

/// The highest consumer protocol version this build knows (subscription and assignment).
pub const CONSUMER_PROTOCOL_VERSION: i16 = 3;

/// What a member sends in JoinGroup: the consumer protocol subscription (versions 0-3).
#[derive(Clone, Debug, PartialEq)]
pub struct Subscription {
    /// The topics the member subscribes to (kafkit writes them sorted and unique).
    pub topics: Vec<String>,
    /// Assignor-specific data (Java's `subscriptionUserData`).
    pub user_data: Option<Bytes>,
    /// The partitions the member owns now (version 1+; KIP-429).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation in which the member got `owned_partitions` (version 2+); -1 when unknown.
    pub generation_id: i32,
    /// The member's rack, `client.rack` (version 3+; KIP-881).
    pub rack_id: Option<String>,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription {
            topics: Vec::new(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
}

/// What a member receives in SyncGroup.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Assignment {
    /// The partitions assigned to the member (the assignors return them sorted).
    pub partitions: Vec<TopicPartition>,
    /// Assignor-specific data (none of the built-in assignors sends any).
    pub user_data: Option<Bytes>,
}

/// One group member as the leader sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupMember {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its `group.instance.id` when it is a static member (KIP-345).
    pub group_instance_id: Option<String>,
    /// Its decoded subscription.
    pub subscription: Subscription,
}

/// A rebalance protocol an assignor supports (KIP-429).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RebalanceProtocol {
    /// Every member revokes everything before it rejoins.
    Eager,
    /// Members keep their partitions through the rebalance and revoke only those that move.
    Cooperative,
}

/// What the leader knows of the cluster when it assigns.
#[derive(Clone, Copy, Debug)]
pub struct ClusterMetadata<'a> {
    /// Partition counts of the subscribed topics that exist. Topics missing here are skipped,
    /// as Java skips topics without metadata.
    pub partitions_per_topic: &'a BTreeMap<String, i32>,
    /// Racks of each partition's replicas (KIP-881), when known. The built-in assignors accept
    /// it but do not yet use it: they assign as Java does without rack information.
    pub partition_racks: Option<&'a BTreeMap<TopicPartition, Vec<String>>>,
}

impl<'a> ClusterMetadata<'a> {
    /// Metadata with partition counts only.
    pub fn new(partitions_per_topic: &'a BTreeMap<String, i32>) -> Self {
        ClusterMetadata {
            partitions_per_topic,
            partition_racks: None,
        }
    }

    /// The partition count of `topic`, if it exists (a negative count reads as zero).
    pub(crate) fn partitions(&self, topic: &str) -> Option<i32> {
        self.partitions_per_topic.get(topic).map(|&n| n.max(0))
    }
}

/// Why an assignor could not assign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssignorError {
    /// Two members had the same member id.
    #[error("member id {0:?} appears more than once")]
    DuplicateMember(String),
    /// An internal consistency check failed; the assignment would have been invalid.
    #[error("assignor {assignor}: internal error: {detail}")]
    Internal {
        /// The assignor's protocol name.
        assignor: &'static str,
        /// What went wrong.
        detail: String,
    },
}

/// A partition assignment strategy (Java's `ConsumerPartitionAssignor`).
///
/// Deterministic: the same inputs give the same output, whatever the order of `members`.
/// Every member of `members` gets an entry in the result, possibly empty.
pub trait PartitionAssignor: Send {
    /// The protocol name advertised in JoinGroup: `range`, `roundrobin`, `sticky`,
    /// `cooperative-sticky`.
    fn name(&self) -> &str;

    /// The rebalance protocols this assignor supports, preferred first.
    fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
        vec![RebalanceProtocol::Eager]
    }

    /// The user data to put in this member's subscription.
    fn subscription_user_data(&self, _topics: &BTreeSet<String>) -> Option<Bytes> {
        None
    }

    /// Assigns the partitions of the subscribed topics to `members` (run by the leader).
    fn assign(
        &mut self,
        cluster: &ClusterMetadata<'_>,
        members: &[GroupMember],
    ) -> Result<BTreeMap<String, Assignment>, AssignorError>;

    /// Called on every member when it receives its assignment for `generation_id`.
    fn on_assignment(&mut self, _assignment: &Assignment, _generation_id: i32) {}
}

/// The built-in assignor for `strategy`.
pub fn built_in(strategy: AssignmentStrategy) -> Box<dyn PartitionAssignor> {
    match strategy {
        AssignmentStrategy::Range => Box::new(RangeAssignor),
        AssignmentStrategy::RoundRobin => Box::new(RoundRobinAssignor),
        AssignmentStrategy::Sticky => Box::new(StickyAssignor::new()),
        AssignmentStrategy::CooperativeSticky => Box::new(CooperativeStickyAssignor::new()),
    }
}

/// Java's member order for range and round-robin (`MemberInfo.compareTo`): static members
/// first, by `group.instance.id`, then dynamic members by member id. Ordering static members
/// by their stable instance id keeps their assignment across restarts, which give them a new
/// member id.
pub(crate) fn java_member_order(a: &GroupMember, b: &GroupMember) -> Ordering {
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y).then_with(|| a.member_id.cmp(&b.member_id)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    }
}

/// Errors on a repeated member id; every assignor calls it first.
pub(crate) fn check_unique_members(members: &[GroupMember]) -> Result<(), AssignorError> {
    let mut seen = BTreeSet::new();
    for m in members {
        if !seen.insert(m.member_id.as_str()) {
            return Err(AssignorError::DuplicateMember(m.member_id.clone()));
        }
    }
    Ok(())
}

/// Turns per-member partition lists into sorted [`Assignment`]s, one per member.
pub(crate) fn into_assignments(
    members: &[GroupMember],
    mut parts: BTreeMap<String, Vec<TopicPartition>>,
) -> BTreeMap<String, Assignment> {
    members
        .iter()
        .map(|m| {
            let mut partitions = parts.remove(&m.member_id).unwrap_or_default();
            partitions.sort();
            (
                m.member_id.clone(),
                Assignment {
                    partitions,
                    user_data: None,
                },
            )
        })
        .collect()
}

/// Clamps a requested version into 0..=3: Java writes the highest version both sides know,
/// and a request above what this build knows means "the newest we have".
fn clamp_version(version: i16) -> i16 {
    version.clamp(0, CONSUMER_PROTOCOL_VERSION)
}

/// Groups partitions by topic, topics sorted and partitions in ascending order, as the wire
/// format's per-topic arrays need.
fn group_by_topic(partitions: &[TopicPartition]) -> BTreeMap<&str, Vec<i32>> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    for ps in by_topic.values_mut() {
        ps.sort_unstable();
        ps.dedup();
    }
    by_topic
}

/// Flattens per-topic partition arrays, sharing one `Arc<str>` per topic.
fn flatten(groups: impl IntoIterator<Item = (String, Vec<i32>)>) -> Vec<TopicPartition> {
    let mut out = Vec::new();
    for (topic, partitions) in groups {
        let topic: Arc<str> = topic.into();
        out.extend(
            partitions
                .into_iter()
                .map(|p| TopicPartition::new(topic.clone(), p)),
        );
    }
    out
}

/// Reads the `int16` version header. A negative version is an error (Java: "Unsupported
/// subscription version"); one newer than this build reads as the newest known, whose fields
/// are a prefix of the newer version's.
fn read_version(r: &mut Reader, what: &'static str) -> Result<i16, DecodeError> {
    let version = r.read_i16()?;
    if version < 0 {
        return Err(DecodeError::invalid(
            what,
            format!("negative consumer protocol version {version}"),
        ));
    }
    Ok(version.min(CONSUMER_PROTOCOL_VERSION))
}

/// Writes a subscription as JoinGroup member metadata at `version` (clamped into 0..=3).
///
/// Fields the version lacks are dropped, as Java drops them: owned partitions below 1, the
/// generation below 2, the rack below 3. Owned partitions are grouped by topic, sorted.
/// Fails only for values the wire cannot carry (a string longer than 32767 bytes).
pub fn encode_subscription(sub: &Subscription, version: i16) -> Result<Bytes, EncodeError> {
    let version = clamp_version(version);
    let msg = wire_subscription::ConsumerProtocolSubscription {
        topics: sub.topics.clone(),
        user_data: sub.user_data.clone(),
        owned_partitions: group_by_topic(&sub.owned_partitions)
            .into_iter()
            .map(|(topic, partitions)| wire_subscription::TopicPartition {
                topic: topic.to_owned(),
                partitions,
                unknown_tagged_fields: Vec::new(),
            })
            .collect(),
        generation_id: sub.generation_id,
        rack_id: sub.rack_id.clone(),
        unknown_tagged_fields: Vec::new(),
    };
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    msg.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// Reads JoinGroup member metadata written at any consumer protocol version.
///
/// Versions above 3 are read as version 3 and bytes after the known fields are ignored, as
/// Java does; a negative version or a truncated body is an error.
pub fn decode_subscription(data: &[u8]) -> Result<Subscription, DecodeError> {
    let mut r = Reader::new(Bytes::copy_from_slice(data));
    let version = read_version(&mut r, "consumer protocol subscription")?;
    let msg = wire_subscription::ConsumerProtocolSubscription::decode(&mut r, version)?;
    Ok(Subscription {
        topics: msg.topics,
        user_data: msg.user_data,
        owned_partitions: flatten(
            msg.owned_partitions
                .into_iter()
                .map(|t| (t.topic, t.partitions)),
        ),
        generation_id: if version >= 2 { msg.generation_id } else { -1 },
        rack_id: msg.rack_id,
    })
}

/// Writes an assignment as a SyncGroup member assignment at `version` (clamped into 0..=3;
/// the body is the same at every version). Partitions are grouped by topic, sorted.
pub fn encode_assignment(a: &Assignment, version: i16) -> Result<Bytes, EncodeError> {
    let version = clamp_version(version);
    let msg = wire_assignment::ConsumerProtocolAssignment {
        assigned_partitions: group_by_topic(&a.partitions)
            .into_iter()
            .map(|(topic, partitions)| wire_assignment::TopicPartition {
                topic: topic.to_owned(),
                partitions,
                unknown_tagged_fields: Vec::new(),
            })
            .collect(),
        user_data: a.user_data.clone(),
        unknown_tagged_fields: Vec::new(),
    };
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    msg.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// Reads a SyncGroup member assignment written at any consumer protocol version (newer
/// versions read as version 3, trailing bytes ignored, as Java does).
///
/// An empty input is an empty assignment: the coordinator sends zero bytes to members the
/// leader gave nothing, and Java treats that as no partitions.
pub fn decode_assignment(data: &[u8]) -> Result<Assignment, DecodeError> {
    if data.is_empty() {
        return Ok(Assignment::default());
    }
    let mut r = Reader::new(Bytes::copy_from_slice(data));
    let version = read_version(&mut r, "consumer protocol assignment")?;
    let msg = wire_assignment::ConsumerProtocolAssignment::decode(&mut r, version)?;
    Ok(Assignment {
        partitions: flatten(
            msg.assigned_partitions
                .into_iter()
                .map(|t| (t.topic, t.partitions)),
        ),
        user_data: msg.user_data,
    })
}

#[cfg(test)]
mod tests;
