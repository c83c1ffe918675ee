//! The sticky assignors: `sticky` (Java's `StickyAssignor`, KIP-54 and KIP-341, eager) and
//! `cooperative-sticky` (Java's `CooperativeStickyAssignor`, KIP-429), which share one engine.
//!
//! # The engine
//! 1. Previous ownership: each member claims the partitions it held, with the generation it
//!    held them in. A claim counts only for a partition that exists and whose topic the member
//!    still subscribes to. When several members claim a partition, the highest generation wins
//!    and a tie at that generation leaves it unowned (Java's rule: two members of one
//!    generation cannot both own it, so neither is believed).
//! 2. When every member subscribes to the same topics (the common case), quotas are exact:
//!    with P partitions and M members, `P % M` members get `P / M + 1` and the rest `P / M`.
//!    The larger quotas go to the members that owned the most, each member keeps
//!    `min(owned, quota)` of its partitions, and the rest are dealt in order to the members
//!    below quota. That keeps the most partitions in place that any balanced assignment can,
//!    in O(P log P).
//! 3. Otherwise (members subscribe to different topics) every valid claim is kept, the
//!    unowned partitions go, those with the fewest possible takers first, to the least loaded
//!    member that can take them, and then partitions move one at a time from a member to one
//!    that has at least two fewer and can take them (partitions a member did not own before
//!    move first), until no such move is left: Java's notion of balanced for unequal
//!    subscriptions. Every move lowers the sum of squared counts, so it ends.
//!
//! # Cooperative
//! `cooperative-sticky` then withholds every partition newly assigned to a member while
//! another member still claims to own it: the owner's assignment lacks it, so it revokes it and
//! rejoins, and the follow-up rebalance (where nobody owns it) assigns it. So no partition
//! ever has two owners, even for a moment.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    check_unique_members, into_assignments, Assignment, AssignorError, ClusterMetadata,
    GroupMember, PartitionAssignor, RebalanceProtocol, Subscription,
};
use crate::codec::{Reader, Writer};
use crate::consumer::TopicPartition;
use crate::protocol::support::read_array;

/// Java's `AbstractStickyAssignor.DEFAULT_GENERATION`: no generation known.
const DEFAULT_GENERATION: i32 = -1;

/// The eager sticky assignor (protocol name `sticky`).
///
/// Balanced (partition counts differ by at most one where subscriptions allow) and keeping as
/// many partitions with their previous owner as balance permits. Eager members revoke
/// everything before they rejoin, so, like Java, it carries each member's last assignment and
/// generation in the subscription's user data (Java's `StickyAssignorUserData` schema, version
/// 1: the partitions by topic, then the generation) and reads it back from every member,
/// including older Java and librdkafka members. A member that sends owned partitions (protocol
/// version 1+) is taken at its word instead.
#[derive(Debug, Clone)]
pub struct StickyAssignor {
    /// This member's last assignment and its generation, for the next subscription.
    last: Option<(Vec<TopicPartition>, i32)>,
}

impl StickyAssignor {
    /// A sticky assignor with no previous assignment.
    pub fn new() -> Self {
        StickyAssignor { last: None }
    }
}

impl Default for StickyAssignor {
    fn default() -> Self {
        Self::new()
    }
}

impl PartitionAssignor for StickyAssignor {
    fn name(&self) -> &str {
        "sticky"
    }

    fn subscription_user_data(&self, _topics: &BTreeSet<String>) -> Option<Bytes> {
        let (partitions, generation) = self.last.as_ref()?;
        encode_sticky_user_data(partitions, Some(*generation))
    }

    fn assign(
        &mut self,
        cluster: &ClusterMetadata<'_>,
        members: &[GroupMember],
    ) -> Result<BTreeMap<String, Assignment>, AssignorError> {
        let claims = members
            .iter()
            .map(|m| sticky_claim(&m.subscription))
            .collect();
        let parts = Engine::new(cluster, members, claims)?.assign();
        Ok(into_assignments(members, parts))
    }

    fn on_assignment(&mut self, assignment: &Assignment, generation_id: i32) {
        self.last = Some((assignment.partitions.clone(), generation_id));
    }
}

/// The cooperative sticky assignor (protocol name `cooperative-sticky`, KIP-429).
///
/// The same balance and stickiness as [`StickyAssignor`], but partitions that move between
/// members are withheld from the new owner for one generation (see the module docs). Supports
/// the cooperative protocol and, for groups with eager-only members, the eager one. Owned
/// partitions come from the subscription (version 1+) and the generation from version 2+;
/// for older subscriptions the generation is the `int32` Java puts in the user data, which this
/// assignor writes too.
#[derive(Debug, Clone)]
pub struct CooperativeStickyAssignor {
    generation: i32,
}

impl CooperativeStickyAssignor {
    /// A cooperative sticky assignor that has not been assigned yet.
    pub fn new() -> Self {
        CooperativeStickyAssignor {
            generation: DEFAULT_GENERATION,
        }
    }
}

impl Default for CooperativeStickyAssignor {
    fn default() -> Self {
        Self::new()
    }
}

impl PartitionAssignor for CooperativeStickyAssignor {
    fn name(&self) -> &str {
        "cooperative-sticky"
    }

    fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
        vec![RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]
    }

    fn subscription_user_data(&self, _topics: &BTreeSet<String>) -> Option<Bytes> {
        // Java always sends it, -1 before the first assignment.
        Some(Bytes::copy_from_slice(&self.generation.to_be_bytes()))
    }

    fn assign(
        &mut self,
        cluster: &ClusterMetadata<'_>,
        members: &[GroupMember],
    ) -> Result<BTreeMap<String, Assignment>, AssignorError> {
        let claims = members
            .iter()
            .map(|m| cooperative_claim(&m.subscription))
            .collect();
        let engine = Engine::new(cluster, members, claims)?;
        let assigned = engine.assign_indexed();
        let parts = engine.withhold_moving(assigned);
        Ok(into_assignments(members, engine.to_named(parts)))
    }

    fn on_assignment(&mut self, _assignment: &Assignment, generation_id: i32) {
        self.generation = generation_id;
    }
}

/// Encodes Java's `StickyAssignorUserData` (version 1 with a generation, else version 0):
/// `[topic: string, partitions: [int32]]` then `generation: int32`, no version prefix.
/// `None` if a topic name is too long for the wire (then the member simply sends no history).
pub(crate) fn encode_sticky_user_data(
    partitions: &[TopicPartition],
    generation: Option<i32>,
) -> Option<Bytes> {
    let groups = super::group_by_topic(partitions);
    let mut buf = BytesMut::new();
    buf.put_i32(i32::try_from(groups.len()).ok()?);
    for (topic, ps) in groups {
        buf.put_string(topic, false).ok()?;
        buf.put_i32(i32::try_from(ps.len()).ok()?);
        for p in ps {
            buf.put_i32(p);
        }
    }
    if let Some(g) = generation {
        buf.put_i32(g);
    }
    Some(buf.freeze())
}

/// Decodes `StickyAssignorUserData`: version 1 (with the generation) if it parses, else
/// version 0 (partitions only). Trailing bytes are ignored, as Java's schema reader does.
/// `None` if neither parses.
pub(crate) fn decode_sticky_user_data(data: &Bytes) -> Option<(Vec<TopicPartition>, Option<i32>)> {
    let mut r = Reader::new(data.clone());
    let groups = read_array(&mut r, false, 6, |r| {
        let topic = r.read_string(false)?;
        let partitions = read_array(r, false, 4, Reader::read_i32)?;
        Ok((topic, partitions))
    })
    .ok()?;
    // Version 1 adds the generation; its absence means version 0.
    let generation = r.read_i32().ok();
    Some((super::flatten(groups), generation))
}

/// What one member claims to have owned, and in which generation.
#[derive(Debug, Clone, Default)]
struct Claim {
    partitions: Vec<TopicPartition>,
    generation: i32,
}

/// Claims for eager `sticky`: owned partitions when the member sent them (kafkit members on
/// protocol version 1+ may), else the history in the user data (what Java and librdkafka send).
fn sticky_claim(sub: &Subscription) -> Claim {
    let from_user_data = sub.user_data.as_ref().and_then(decode_sticky_user_data);
    if !sub.owned_partitions.is_empty() {
        let generation = if sub.generation_id >= 0 {
            sub.generation_id
        } else {
            from_user_data
                .and_then(|(_, g)| g)
                .unwrap_or(DEFAULT_GENERATION)
        };
        return Claim {
            partitions: sub.owned_partitions.clone(),
            generation,
        };
    }
    match from_user_data {
        Some((partitions, generation)) => Claim {
            partitions,
            generation: generation.unwrap_or(DEFAULT_GENERATION),
        },
        None => Claim {
            partitions: Vec::new(),
            generation: DEFAULT_GENERATION,
        },
    }
}

/// Claims for `cooperative-sticky`: owned partitions from the subscription; the generation
/// from it (version 2+) or else from the user data's `int32` (Java's
/// `CooperativeStickyAssignorUserData`), -1 when neither has one.
fn cooperative_claim(sub: &Subscription) -> Claim {
    let generation = if sub.generation_id >= 0 {
        sub.generation_id
    } else {
        sub.user_data
            .as_ref()
            .and_then(|d| d.get(..4))
            .map_or(DEFAULT_GENERATION, |b| {
                i32::from_be_bytes([b[0], b[1], b[2], b[3]])
            })
    };
    Claim {
        partitions: sub.owned_partitions.clone(),
        generation,
    }
}

/// The shared engine, on dense indices: members `0..M` in member-id order, partitions `0..P`
/// in (topic, partition) order.
struct Engine {
    /// Member ids in order.
    member_ids: Vec<String>,
    /// Topic names in order, with the first partition index of each.
    topics: Vec<(Arc<str>, usize)>,
    /// Topic index by name.
    topic_index: BTreeMap<Arc<str>, usize>,
    /// The topic index of every partition.
    partition_topic: Vec<usize>,
    /// Members subscribed to each topic, in order.
    topic_members: Vec<Vec<usize>>,
    /// Each member's subscribed topics (existing ones), sorted.
    member_topics: Vec<Vec<usize>>,
    /// Each member's claimed partitions (raw: as sent, for the cooperative withholding).
    raw_claims: Vec<Vec<usize>>,
    /// The previous owner of each partition, after claims are checked and conflicts resolved.
    owner: Vec<Option<usize>>,
}

impl Engine {
    fn new(
        cluster: &ClusterMetadata<'_>,
        members: &[GroupMember],
        claims: Vec<Claim>,
    ) -> Result<Self, AssignorError> {
        check_unique_members(members)?;
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by(|&a, &b| members[a].member_id.cmp(&members[b].member_id));

        // Every existing topic someone subscribes to, in order.
        let names: BTreeSet<&str> = members
            .iter()
            .flat_map(|m| m.subscription.topics.iter().map(String::as_str))
            .filter(|t| cluster.partitions(t).is_some())
            .collect();
        let mut topics = Vec::with_capacity(names.len());
        let mut topic_index = BTreeMap::new();
        let mut partition_topic = Vec::new();
        for name in names {
            let count = cluster.partitions(name).unwrap_or(0) as usize;
            let name: Arc<str> = name.into();
            topic_index.insert(name.clone(), topics.len());
            partition_topic.resize(partition_topic.len() + count, topics.len());
            topics.push((name, partition_topic.len() - count));
        }

        let mut topic_members = vec![Vec::new(); topics.len()];
        let mut member_topics = Vec::with_capacity(order.len());
        for (mi, &input) in order.iter().enumerate() {
            let ts: BTreeSet<usize> = members[input]
                .subscription
                .topics
                .iter()
                .filter_map(|t| topic_index.get(t.as_str()).copied())
                .collect();
            for &t in &ts {
                topic_members[t].push(mi);
            }
            member_topics.push(ts.into_iter().collect::<Vec<_>>());
        }

        let mut engine = Engine {
            member_ids: order
                .iter()
                .map(|&i| members[i].member_id.clone())
                .collect(),
            topics,
            topic_index,
            partition_topic,
            topic_members,
            member_topics,
            raw_claims: Vec::new(),
            owner: Vec::new(),
        };
        engine.resolve_claims(&order, claims);
        Ok(engine)
    }

    fn partition_count(&self) -> usize {
        self.partition_topic.len()
    }

    /// The partition index of `tp`, if it exists.
    fn index_of(&self, tp: &TopicPartition) -> Option<usize> {
        let &t = self.topic_index.get(&*tp.topic)?;
        let (_, base) = self.topics[t];
        let end = self
            .topics
            .get(t + 1)
            .map_or(self.partition_count(), |&(_, b)| b);
        let p = usize::try_from(tp.partition).ok()?;
        (base + p < end).then_some(base + p)
    }

    fn subscribes(&self, member: usize, topic: usize) -> bool {
        self.member_topics[member].binary_search(&topic).is_ok()
    }

    /// Fills `raw_claims` and `owner`: the highest generation wins a partition; a tie at the
    /// highest generation leaves it unowned.
    fn resolve_claims(&mut self, order: &[usize], mut claims: Vec<Claim>) {
        // (generation, member, contested) of the best claim so far, per partition.
        let mut best: Vec<Option<(i32, usize, bool)>> = vec![None; self.partition_count()];
        let mut raw_claims = Vec::with_capacity(order.len());
        for (mi, &input) in order.iter().enumerate() {
            let claim = std::mem::take(&mut claims[input]);
            let mut ps: Vec<usize> = claim
                .partitions
                .iter()
                .filter_map(|tp| self.index_of(tp))
                .collect();
            ps.sort_unstable();
            ps.dedup();
            for &p in &ps {
                if !self.subscribes(mi, self.partition_topic[p]) {
                    continue;
                }
                let g = claim.generation;
                best[p] = match best[p] {
                    None => Some((g, mi, false)),
                    Some((bg, _, _)) if g > bg => Some((g, mi, false)),
                    Some((bg, bm, _)) if g == bg => Some((bg, bm, true)),
                    keep => keep,
                };
            }
            raw_claims.push(ps);
        }
        self.raw_claims = raw_claims;
        self.owner = best
            .into_iter()
            .map(|b| match b {
                Some((_, m, false)) => Some(m),
                _ => None,
            })
            .collect();
    }

    fn assign(&self) -> BTreeMap<String, Vec<TopicPartition>> {
        self.to_named(self.assign_indexed())
    }

    /// The full balanced, sticky assignment: partition indices per member, sorted.
    fn assign_indexed(&self) -> Vec<Vec<usize>> {
        let m = self.member_ids.len();
        if m == 0 {
            return Vec::new();
        }
        let all_equal = self.member_topics.windows(2).all(|w| w[0] == w[1]);
        let mut out = if all_equal {
            self.assign_equal()
        } else {
            self.assign_general()
        };
        for ps in &mut out {
            ps.sort_unstable();
        }
        out
    }

    /// Every member subscribes to the same topics: exact quotas (see the module docs).
    fn assign_equal(&self) -> Vec<Vec<usize>> {
        let m = self.member_ids.len();
        let p_total = self.partition_count();
        let mut owned: Vec<Vec<usize>> = vec![Vec::new(); m];
        for (p, o) in self.owner.iter().enumerate() {
            if let Some(o) = *o {
                owned[o].push(p);
            }
        }
        let min_quota = p_total / m;
        let extra = p_total % m;
        // The `extra` larger quotas go to the members that owned the most: each of those keeps
        // one more partition than it could with the smaller quota.
        let mut rank: Vec<usize> = (0..m).collect();
        rank.sort_by(|&a, &b| owned[b].len().cmp(&owned[a].len()).then(a.cmp(&b)));
        let mut quota = vec![min_quota; m];
        for &mi in rank.iter().take(extra) {
            quota[mi] += 1;
        }

        let mut taken = vec![false; p_total];
        let mut out: Vec<Vec<usize>> = owned
            .into_iter()
            .zip(&quota)
            .map(|(mut ps, &q)| {
                ps.truncate(q);
                for &p in &ps {
                    taken[p] = true;
                }
                ps
            })
            .collect();
        // Deal the rest in turn to the members below quota, as Java fills them.
        let mut below: VecDeque<usize> = (0..m).filter(|&i| out[i].len() < quota[i]).collect();
        for (p, _) in taken.iter().enumerate().filter(|(_, &t)| !t) {
            // Quotas add up to the partition count, so someone is below quota.
            let Some(mi) = below.pop_front() else { break };
            out[mi].push(p);
            if out[mi].len() < quota[mi] {
                below.push_back(mi);
            }
        }
        out
    }

    /// Members subscribe to different topics: keep, fill, then balance by single moves.
    fn assign_general(&self) -> Vec<Vec<usize>> {
        let m = self.member_ids.len();
        let p_total = self.partition_count();
        let mut holder: Vec<Option<usize>> = self.owner.clone();
        let mut count = vec![0usize; m];
        for h in holder.iter().flatten() {
            count[*h] += 1;
        }

        // The least loaded member (then the first) that can take a partition of `topic`,
        // other than `except`.
        let least_loaded = |count: &[usize], topic: usize, except: Option<usize>| {
            self.topic_members[topic]
                .iter()
                .copied()
                .filter(|&c| Some(c) != except)
                .min_by_key(|&c| (count[c], c))
        };

        // Partitions with the fewest possible takers first, so they are not crowded out.
        let mut unowned: Vec<usize> = (0..p_total).filter(|&p| holder[p].is_none()).collect();
        unowned.sort_by_key(|&p| (self.topic_members[self.partition_topic[p]].len(), p));
        for p in unowned {
            if let Some(c) = least_loaded(&count, self.partition_topic[p], None) {
                holder[p] = Some(c);
                count[c] += 1;
            }
        }

        // Balance: move a partition to a member with at least two fewer that can take it.
        // Partitions their holder did not own before move first, to keep ownership.
        loop {
            let mut moved = false;
            for keep_owned in [false, true] {
                for (p, slot) in holder.iter_mut().enumerate() {
                    let Some(a) = *slot else { continue };
                    if (self.owner[p] == Some(a)) != keep_owned {
                        continue;
                    }
                    let Some(b) = least_loaded(&count, self.partition_topic[p], Some(a)) else {
                        continue;
                    };
                    if count[b] + 1 < count[a] {
                        *slot = Some(b);
                        count[a] -= 1;
                        count[b] += 1;
                        moved = true;
                    }
                }
            }
            if !moved {
                break;
            }
        }

        let mut out = vec![Vec::new(); m];
        for (p, h) in holder.iter().enumerate() {
            if let Some(h) = *h {
                out[h].push(p);
            }
        }
        out
    }

    /// KIP-429: drops from each member the partitions it is newly given while another member
    /// still claims them, so they are revoked before anyone else gets them. A partition the
    /// member itself claims stays (if another claims it too, that one revokes it now: the
    /// double claim was there before this assignment and this one does not add to it).
    fn withhold_moving(&self, mut assigned: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
        let mut claimants: Vec<Vec<usize>> = vec![Vec::new(); self.partition_count()];
        for (mi, ps) in self.raw_claims.iter().enumerate() {
            for &p in ps {
                claimants[p].push(mi);
            }
        }
        for (mi, ps) in assigned.iter_mut().enumerate() {
            ps.retain(|&p| claimants[p].is_empty() || claimants[p].contains(&mi));
        }
        assigned
    }

    fn to_named(&self, assigned: Vec<Vec<usize>>) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut out = BTreeMap::new();
        for (mi, ps) in assigned.into_iter().enumerate() {
            let tps = ps
                .into_iter()
                .map(|p| {
                    let (name, base) = &self.topics[self.partition_topic[p]];
                    TopicPartition::new(name.clone(), (p - base) as i32)
                })
                .collect();
            out.insert(self.member_ids[mi].clone(), tps);
        }
        out
    }
}
