//! The round-robin assignor (Java's `RoundRobinAssignor`, protocol name `roundrobin`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{
    check_unique_members, into_assignments, java_member_order, Assignment, AssignorError,
    ClusterMetadata, GroupMember, PartitionAssignor,
};
use crate::consumer::TopicPartition;

/// Deals every partition of every subscribed topic, sorted by topic then partition, to the
/// members in a circle (Java's member order: static members by `group.instance.id`, then the
/// rest by member id). A member not subscribed to a partition's topic is skipped, and the circle
/// goes on from the member after the one that took the partition.
///
/// With two members C0, C1 and topics t0, t1 of three partitions each: C0 gets t0p0, t0p2,
/// t1p1 and C1 gets t0p1, t1p0, t1p2 (Java's documented example).
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl PartitionAssignor for RoundRobinAssignor {
    fn name(&self) -> &str {
        "roundrobin"
    }

    fn assign(
        &mut self,
        cluster: &ClusterMetadata<'_>,
        members: &[GroupMember],
    ) -> Result<BTreeMap<String, Assignment>, AssignorError> {
        check_unique_members(members)?;
        let mut ordered: Vec<&GroupMember> = members.iter().collect();
        ordered.sort_by(|a, b| java_member_order(a, b));
        let subscribed: Vec<BTreeSet<&str>> = ordered
            .iter()
            .map(|m| m.subscription.topics.iter().map(String::as_str).collect())
            .collect();
        let all_topics: BTreeSet<&str> = subscribed.iter().flatten().copied().collect();

        let mut parts: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        let mut next = 0usize;
        for topic in all_topics {
            let Some(count) = cluster.partitions(topic) else {
                continue;
            };
            let shared: Arc<str> = topic.into();
            for p in 0..count {
                // Some member is subscribed (the topic came from a subscription), so this finds
                // one within a full turn of the circle.
                let Some(offset) = (0..ordered.len())
                    .find(|k| subscribed[(next + k) % ordered.len()].contains(topic))
                else {
                    break;
                };
                let i = (next + offset) % ordered.len();
                parts
                    .entry(ordered[i].member_id.clone())
                    .or_default()
                    .push(TopicPartition::new(shared.clone(), p));
                next = (i + 1) % ordered.len();
            }
        }
        Ok(into_assignments(members, parts))
    }
}
