//! The range assignor (Java's `RangeAssignor`, protocol name `range`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{
    check_unique_members, into_assignments, java_member_order, Assignment, AssignorError,
    ClusterMetadata, GroupMember, PartitionAssignor,
};
use crate::consumer::TopicPartition;

/// Assigns each topic on its own: the members subscribed to it, in Java's member order (static
/// members by `group.instance.id`, then the rest by member id), get consecutive ranges of its
/// partitions, and the first `partitions % members` of them one partition more.
///
/// With two members C0, C1 and topics t0, t1 of three partitions each: C0 gets t0p0, t0p1,
/// t1p0, t1p1 and C1 gets t0p2, t1p2 (Java's documented example). Topics without metadata are
/// skipped.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl PartitionAssignor for RangeAssignor {
    fn name(&self) -> &str {
        "range"
    }

    fn assign(
        &mut self,
        cluster: &ClusterMetadata<'_>,
        members: &[GroupMember],
    ) -> Result<BTreeMap<String, Assignment>, AssignorError> {
        check_unique_members(members)?;
        let mut ordered: Vec<&GroupMember> = members.iter().collect();
        ordered.sort_by(|a, b| java_member_order(a, b));

        // topic -> its subscribers in member order (a member listing a topic twice counts once).
        let mut subscribers: BTreeMap<&str, Vec<&GroupMember>> = BTreeMap::new();
        for m in &ordered {
            for topic in &m.subscription.topics {
                let list = subscribers.entry(topic.as_str()).or_default();
                if !list.iter().any(|x| x.member_id == m.member_id) {
                    list.push(m);
                }
            }
        }

        let mut parts: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        for (topic, subs) in subscribers {
            let Some(count) = cluster.partitions(topic) else {
                continue;
            };
            let topic: Arc<str> = topic.into();
            let n = count as usize;
            let per_member = n / subs.len();
            let extra = n % subs.len();
            for (i, m) in subs.iter().enumerate() {
                let start = per_member * i + i.min(extra);
                let len = per_member + usize::from(i < extra);
                parts.entry(m.member_id.clone()).or_default().extend(
                    (start..start + len).map(|p| TopicPartition::new(topic.clone(), p as i32)),
                );
            }
        }
        Ok(into_assignments(members, parts))
    }
}
