//! KIP-848's consumer protocol's part of the scenarios: the member's configuration, who owns
//! what (the client's assignment at its member epoch, checked against the coordinator's
//! record of the member), and when the group has settled.

use std::collections::{BTreeMap, BTreeSet};

use kafkit_core::codec::Uuid;
use kafkit_core::config::{ConsumerConfig, GroupProtocol};
use kafkit_core::consumer::MemberState;
use kafkit_sim::cluster::group848;

use super::*;

/// The regular expression of the regex scenarios (the coordinator evaluates it).
pub(super) const PATTERN: &str = "ev[a-z]+";

/// The consumer protocol member's group settings: the protocol, the server assignor and the
/// static instance id. Session timeout and heartbeat interval are the broker's.
pub(super) fn member_config(assignor: &str, instance: Option<String>) -> ConsumerConfig {
    let mut cc = ConsumerConfig::default();
    cc.group_protocol = GroupProtocol::Consumer;
    cc.group_remote_assignor = Some(assignor.to_owned());
    cc.group_instance_id = instance;
    cc
}

impl Scenario {
    fn topic_id(&self) -> Uuid {
        self.cluster.borrow().topic(TOPIC).expect("the topic").id
    }

    /// The partitions of the topic in `a`.
    fn partitions(a: &group848::Assignment, topic: Uuid) -> BTreeSet<i32> {
        a.get(&topic).cloned().unwrap_or_default()
    }

    /// The coordinator never has a partition owned (assigned or pending revocation) by two
    /// members; a member it counts owns no partition the coordinator does not have it
    /// owning; no partition is owned by two members at once among those it counts.
    pub(super) fn consumer_owners(&mut self) -> Result<(), String> {
        let topic = self.topic_id();
        let group = self
            .cluster
            .borrow()
            .consumer_groups()
            .group(GROUP)
            .cloned();
        let members = group.map(|g| g.members).unwrap_or_default();
        let mut by_coordinator: BTreeMap<i32, &str> = BTreeMap::new();
        for m in members.values() {
            let owns = Self::partitions(&m.assigned, topic)
                .into_iter()
                .chain(Self::partitions(&m.pending_revocation, topic));
            for p in owns {
                if let Some(other) = by_coordinator.insert(p, &m.id) {
                    return Err(self.fail(format!(
                        "the coordinator has partition {p} owned by members {other} and {}",
                        m.id
                    )));
                }
            }
        }
        let mut at_once: BTreeMap<i32, usize> = BTreeMap::new();
        for i in 0..self.apps.len() {
            let c = self.sim.client(i);
            if c.is_closed() {
                continue;
            }
            let md = c.group_metadata().expect("a group member");
            let Some(m) = members.get(&md.member_id) else {
                continue; // not in the group (yet, or any more: a zombie)
            };
            let owned: BTreeSet<i32> = c.assignment().iter().map(|t| t.partition).collect();
            let allowed: BTreeSet<i32> = Self::partitions(&m.assigned, topic)
                .into_iter()
                .chain(Self::partitions(&m.pending_revocation, topic))
                .collect();
            if !owned.is_subset(&allowed) {
                return Err(self.fail(format!(
                    "member {i} (epoch {}) owns {owned:?}, but the coordinator has it (epoch \
                     {}) owning only {allowed:?}",
                    md.generation_id, m.member_epoch
                )));
            }
            for p in owned {
                if let Some(other) = at_once.insert(p, i) {
                    return Err(self.fail(format!(
                        "partition {p} owned by members {other} and {i} at once, both in the \
                         group"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Every live member stable at the coordinator's assignment epoch with its target
    /// assignment, callbacks done; the coordinator's members exactly the live ones, the group
    /// stable there; the assignments a partitioning of the topic.
    pub(super) fn consumer_settled(&mut self, live: &[usize]) -> bool {
        let topic = self.topic_id();
        let Some(g) = self
            .cluster
            .borrow()
            .consumer_groups()
            .group(GROUP)
            .cloned()
        else {
            return false;
        };
        if g.state() != group848::ConsumerGroupState::Stable {
            return false;
        }
        let mut ids = BTreeSet::new();
        let mut all = BTreeSet::new();
        for &i in live {
            let c = self.sim.client(i);
            if c.group_state() != Some(MemberState::Stable)
                || c.pending_rebalance().is_some()
                || !c.group_settled()
            {
                return false;
            }
            let md = c.group_metadata().expect("member");
            let Some(m) = g.members.get(&md.member_id) else {
                return false;
            };
            let owned: BTreeSet<i32> = c.assignment().iter().map(|t| t.partition).collect();
            let target = g
                .target
                .get(&m.id)
                .map(|a| Self::partitions(a, topic))
                .unwrap_or_default();
            if md.generation_id != g.assignment_epoch
                || m.member_epoch != g.assignment_epoch
                || owned != target
                || owned != Self::partitions(&m.assigned, topic)
            {
                return false;
            }
            ids.insert(md.member_id);
            for p in owned {
                if !all.insert(p) {
                    return false;
                }
            }
        }
        let group_ids: BTreeSet<String> = g.members.keys().cloned().collect();
        group_ids == ids && all.len() == PARTITIONS as usize
    }
}
