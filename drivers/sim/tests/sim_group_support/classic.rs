//! The classic protocol's part of the scenarios: the member's configuration, who owns what,
//! and when the group has settled.

use std::collections::{BTreeMap, BTreeSet};

use kafkit_core::config::{AssignmentStrategy, ConsumerConfig};
use kafkit_core::consumer::MemberState;

use super::*;

/// The classic member's group settings: its assignor and client-side session timers.
pub(super) fn member_config(strategy: AssignmentStrategy) -> ConsumerConfig {
    let mut cc = ConsumerConfig::default();
    cc.session_timeout_ms = SESSION_TIMEOUT_MS;
    cc.heartbeat_interval_ms = HEARTBEAT_INTERVAL_MS;
    cc.partition_assignment_strategy = vec![strategy];
    cc
}

impl Scenario {
    /// No partition owned by two members in one generation (over the whole run), nor by two
    /// members at once among those the coordinator counts.
    pub(super) fn classic_owners(&mut self) -> Result<(), String> {
        let snapshot = self.cluster.borrow().groups().group(GROUP);
        let in_group: BTreeSet<String> = snapshot
            .iter()
            .flat_map(|g| g.members.iter().map(|m| m.member_id.clone()))
            .collect();
        let mut at_once: BTreeMap<i32, usize> = BTreeMap::new();
        for i in 0..self.apps.len() {
            let c = self.sim.client(i);
            if c.is_closed() {
                continue;
            }
            let state = c.group_state();
            let md = c.group_metadata().expect("a group member");
            let owned = c.assignment();
            if state == Some(MemberState::Stable) && md.generation_id >= 0 {
                for t in &owned {
                    let prev = *self
                        .owners
                        .entry((md.generation_id, t.partition))
                        .or_insert(i);
                    if prev != i {
                        return Err(self.fail(format!(
                            "partition {} owned by members {prev} and {i} in generation {}",
                            t.partition, md.generation_id
                        )));
                    }
                }
            }
            if in_group.contains(&md.member_id) {
                for t in &owned {
                    if let Some(other) = at_once.insert(t.partition, i) {
                        return Err(self.fail(format!(
                            "partition {} owned by members {other} and {i} at once, both in \
                             the group",
                            t.partition
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Live members stable in one generation, the coordinator's member list exactly them,
    /// their assignments a partitioning of the topic.
    pub(super) fn classic_settled(&mut self, live: &[usize]) -> bool {
        let mut ids = BTreeSet::new();
        let mut gens = BTreeSet::new();
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
            ids.insert(md.member_id);
            gens.insert(md.generation_id);
            for t in c.assignment() {
                if !all.insert(t) {
                    return false;
                }
            }
        }
        let Some(g) = self.cluster.borrow().groups().group(GROUP) else {
            return false;
        };
        let group_ids: BTreeSet<String> = g.members.iter().map(|m| m.member_id.clone()).collect();
        gens.len() == 1
            && gens.contains(&g.generation_id)
            && group_ids == ids
            && all.len() == PARTITIONS as usize
    }
}
