//! The rebalance listener (Java's `ConsumerRebalanceListener`) and how its callbacks run.
//!
//! # Where callbacks run
//! As in Java, callbacks run inside the application's poll, on the application's task or
//! thread, never on the driver's event loop: when the group reaches a point where Java calls
//! the listener, [`ConsumerCore`](crate::consumer::ConsumerCore) stops there and offers a
//! [`RebalanceCall`] ([`ConsumerCore::pending_rebalance`](crate::consumer::ConsumerCore::pending_rebalance));
//! the handle's poll takes it, runs the listener, and hands back what the listener asked for
//! ([`ConsumerCore::complete_rebalance`](crate::consumer::ConsumerCore::complete_rebalance));
//! only then does the group go on (send JoinGroup after a revocation, fetch after an
//! assignment). Heartbeats go on meanwhile, so a slow callback only has to finish within the
//! rebalance timeout (`max_poll_interval_ms`), as in Java.
//!
//! # Committing inside a callback
//! A callback cannot await a commit (the listener is a plain trait, the same for async and
//! blocking drivers, and a nested `block_on` would deadlock a current-thread runtime). Instead
//! the [`RebalanceContext`] records commits: [`RebalanceContext::commit_sync`] asks for a
//! synchronous commit that the core performs as soon as the callback returns and *before* the
//! rebalance goes on (before JoinGroup for a revocation), retrying retriable errors up to
//! `default_api_timeout_ms`. Its failure is logged and returned by the poll in progress, as
//! Java's poll rethrows what a listener threw. Positions in the context are the consumed
//! positions at the time of the call (nothing is consumed while the callback runs).

use std::collections::{BTreeMap, BTreeSet};

use super::{OffsetAndMetadata, Offsets};
use crate::consumer::record::TopicPartition;

/// Which callback a [`RebalanceCall`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceKind {
    /// `on_partitions_revoked`: the partitions go to other members; commit now.
    Revoked,
    /// `on_partitions_assigned`: the partitions were added to this member.
    Assigned,
    /// `on_partitions_lost`: the member lost its generation (session timeout, fencing, poll
    /// timeout); the partitions may already belong to others, so commits would fail.
    Lost,
}

/// The group membership of a consumer (Java's `ConsumerGroupMetadata`), as transactional
/// producers need it (`send_offsets_to_transaction`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMetadata {
    /// The group.
    pub group_id: String,
    /// The generation, -1 outside a generation.
    pub generation_id: i32,
    /// The member id the coordinator gave, empty before the first join.
    pub member_id: String,
    /// The static instance id, if configured.
    pub group_instance_id: Option<String>,
}

/// A listener callback the core waits for (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct RebalanceCall {
    /// Identifies the call for [`ConsumerCore::complete_rebalance`](crate::consumer::ConsumerCore::complete_rebalance).
    pub seq: u64,
    /// Which callback.
    pub kind: RebalanceKind,
    /// The partitions the callback is about.
    pub partitions: BTreeSet<TopicPartition>,
    /// The partitions assigned when the call was made.
    pub assignment: BTreeSet<TopicPartition>,
    /// Consumed positions of the assigned partitions that have one.
    pub positions: BTreeMap<TopicPartition, OffsetAndMetadata>,
    /// The membership at the time of the call.
    pub group: GroupMetadata,
}

/// What a listener asked for during a callback, applied by the core before the rebalance
/// goes on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RebalanceOutcome {
    /// Offsets to commit synchronously (empty: none).
    pub commit: Offsets,
    /// Positions to set (partitions must be assigned after the callback).
    pub seeks: BTreeMap<TopicPartition, i64>,
}

/// What a callback can see and ask for.
#[derive(Debug)]
pub struct RebalanceContext<'a> {
    call: &'a RebalanceCall,
    outcome: RebalanceOutcome,
}

impl<'a> RebalanceContext<'a> {
    /// A context for `call`.
    pub fn new(call: &'a RebalanceCall) -> Self {
        RebalanceContext {
            call,
            outcome: RebalanceOutcome::default(),
        }
    }

    /// The consumed position of an assigned partition (the offset of the next record the
    /// application would get).
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.call.positions.get(tp).map(|o| o.offset)
    }

    /// The assignment when the callback was made (before a revocation takes effect, after
    /// an assignment did).
    pub fn assignment(&self) -> &BTreeSet<TopicPartition> {
        &self.call.assignment
    }

    /// The membership (generation, member id).
    pub fn group_metadata(&self) -> &GroupMetadata {
        &self.call.group
    }

    /// Commits synchronously once the callback returns and before the rebalance goes on:
    /// `offsets`, or with `None` the consumed positions of every assigned partition (Java's
    /// `commitSync()` in `onPartitionsRevoked`). Several calls add up.
    pub fn commit_sync(&mut self, offsets: Option<Offsets>) {
        match offsets {
            Some(o) => self.outcome.commit.extend(o),
            None => self.outcome.commit.extend(
                self.call
                    .positions
                    .iter()
                    .map(|(tp, o)| (tp.clone(), o.clone())),
            ),
        }
    }

    /// Sets the position of a partition once the callback returns (in
    /// `on_partitions_assigned`: start from offsets kept outside Kafka).
    pub fn seek(&mut self, tp: TopicPartition, offset: i64) {
        self.outcome.seeks.insert(tp, offset);
    }

    /// What the callback asked for.
    pub fn into_outcome(self) -> RebalanceOutcome {
        self.outcome
    }
}

/// Reacts to partitions moving in and out of this member (Java's
/// `ConsumerRebalanceListener`). Callbacks run inside the application's poll (see the
/// [module docs](self)); every method has an empty default.
pub trait RebalanceListener: Send {
    /// Partitions are about to be taken away (eager: all of them before every rebalance;
    /// cooperative: only those moving to another member). The place to commit.
    fn on_partitions_revoked(
        &mut self,
        partitions: &BTreeSet<TopicPartition>,
        ctx: &mut RebalanceContext<'_>,
    ) {
        let _ = (partitions, ctx);
    }

    /// Partitions were added (called after every rebalance, even with none added, as Java
    /// does).
    fn on_partitions_assigned(
        &mut self,
        partitions: &BTreeSet<TopicPartition>,
        ctx: &mut RebalanceContext<'_>,
    ) {
        let _ = (partitions, ctx);
    }

    /// The member lost its partitions without a chance to commit (its generation is gone).
    /// Defaults to [`on_partitions_revoked`](Self::on_partitions_revoked), as in Java.
    fn on_partitions_lost(
        &mut self,
        partitions: &BTreeSet<TopicPartition>,
        ctx: &mut RebalanceContext<'_>,
    ) {
        self.on_partitions_revoked(partitions, ctx);
    }
}

/// Runs the callback `call` names on `listener` and returns what it asked for.
pub fn run_listener(
    listener: &mut dyn RebalanceListener,
    call: &RebalanceCall,
) -> RebalanceOutcome {
    let mut ctx = RebalanceContext::new(call);
    match call.kind {
        RebalanceKind::Revoked => listener.on_partitions_revoked(&call.partitions, &mut ctx),
        RebalanceKind::Assigned => listener.on_partitions_assigned(&call.partitions, &mut ctx),
        RebalanceKind::Lost => listener.on_partitions_lost(&call.partitions, &mut ctx),
    }
    ctx.into_outcome()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Committer(Vec<RebalanceKind>);
    impl RebalanceListener for Committer {
        fn on_partitions_revoked(
            &mut self,
            _: &BTreeSet<TopicPartition>,
            ctx: &mut RebalanceContext<'_>,
        ) {
            self.0.push(RebalanceKind::Revoked);
            ctx.commit_sync(None);
        }
        fn on_partitions_assigned(
            &mut self,
            p: &BTreeSet<TopicPartition>,
            ctx: &mut RebalanceContext<'_>,
        ) {
            self.0.push(RebalanceKind::Assigned);
            for tp in p {
                ctx.seek(tp.clone(), 100);
            }
        }
    }

    #[test]
    fn callbacks_record_commits_and_seeks_and_lost_defaults_to_revoked() {
        let tp = TopicPartition::new("t", 0);
        let mut call = RebalanceCall {
            seq: 1,
            kind: RebalanceKind::Revoked,
            partitions: [tp.clone()].into(),
            assignment: [tp.clone()].into(),
            positions: [(tp.clone(), OffsetAndMetadata::new(7))].into(),
            group: GroupMetadata::default(),
        };
        let mut l = Committer(Vec::new());
        let out = run_listener(&mut l, &call);
        assert_eq!(out.commit[&tp].offset, 7);
        call.kind = RebalanceKind::Lost;
        run_listener(&mut l, &call);
        call.kind = RebalanceKind::Assigned;
        let out = run_listener(&mut l, &call);
        assert_eq!(out.seeks[&tp], 100);
        assert!(out.commit.is_empty());
        assert_eq!(
            l.0,
            vec![
                RebalanceKind::Revoked,
                RebalanceKind::Revoked,
                RebalanceKind::Assigned
            ]
        );
    }
}
