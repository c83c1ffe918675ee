//! The rebalance steps: what must happen in order around a rebalance (an auto-commit, the
//! listener's callbacks, the revocation, the new assignment, JoinGroup, LeaveGroup, the end
//! of a close), when a rejoin starts, and how a step that waits (a commit, a callback the
//! application runs) holds the queue.

use std::collections::BTreeSet;

use super::offset_commit::CommitKind;
use super::offset_fetch::{OffsetFetchOp, AWAITING_COMMITTED};
use super::{consumed_positions, CommitKey, Generation, GroupCtx, GroupMember, MemberState, Req};
use crate::consumer::assignor::RebalanceProtocol;
use crate::consumer::group::listener::{RebalanceCall, RebalanceKind, RebalanceOutcome};
use crate::consumer::record::TopicPartition;
use crate::consumer::subscription_state::Reset;
use crate::network::{ClusterView, NetError, Response, Target};
use crate::protocol::{MetadataRequest, RequestBody};

/// One thing that must happen in order around a rebalance (see the [module docs](super)).
#[derive(Debug)]
pub(super) enum Step {
    /// A synchronous commit of the consumed positions when auto-commit is on (Java's
    /// `maybeAutoCommitOffsetsSync` before a revocation and on close).
    AutoCommit,
    Call(RebalanceKind, BTreeSet<TopicPartition>),
    Revoke(BTreeSet<TopicPartition>),
    Assign(BTreeSet<TopicPartition>),
    Join,
    Leave(&'static str),
    /// The consumer protocol's reconciliation is done: report the new assignment.
    Reconciled,
    /// Close completes once commits in flight are done.
    FinishClose,
}

/// What holds the step queue.
#[derive(Debug)]
pub(super) enum Blocker {
    /// The commit with this key.
    Commit(CommitKey),
    /// The listener callback with this sequence number ([`RebalanceCall::seq`]).
    Callback(u64),
}

impl GroupMember {
    pub(super) fn queue_leave_steps(&mut self, reason: &'static str) {
        let owned = self.owned.clone();
        if !owned.is_empty() {
            let kind = if self.generation_valid() && self.fatal.is_none() {
                RebalanceKind::Revoked
            } else {
                RebalanceKind::Lost
            };
            self.steps.push_back(Step::Call(kind, owned.clone()));
            self.steps.push_back(Step::Revoke(owned));
        }
        self.steps.push_back(Step::Leave(reason));
    }

    /// The application finished callback `seq`; applies what the listener asked for.
    pub fn complete_call(&mut self, seq: u64, outcome: RebalanceOutcome, ctx: &mut GroupCtx<'_>) {
        if !matches!(self.blocked, Some(Blocker::Callback(s)) if s == seq) {
            return;
        }
        self.blocked = None;
        let kind = self.pending_call.take().map(|c| c.kind);
        for (tp, offset) in outcome.seeks {
            if ctx.subs.seek(&tp, offset, None).is_err() {
                tracing::warn!(partition = %tp, "a rebalance listener sought an unassigned partition");
            }
        }
        if matches!(kind, Some(RebalanceKind::Revoked | RebalanceKind::Lost)) {
            // The partitions leave the assignment right after their callback, before the
            // listener's commit goes out (Java's onJoinPrepare: assignFromSubscribed after
            // the listener's commitSync returned). Otherwise their records would flow again
            // while the commit waits, and newer positions could be committed before the
            // listener's commit lands and moves the committed offsets back.
            if let Some(Step::Revoke(_)) = self.steps.front() {
                let Some(Step::Revoke(partitions)) = self.steps.pop_front() else {
                    unreachable!("checked")
                };
                self.apply_revoke(&partitions, ctx);
            }
        }
        if !outcome.commit.is_empty() {
            let deadline = ctx.now + self.cfg.api_timeout;
            let key = self.start_commit(
                None,
                CommitKind::Step { report: true },
                outcome.commit,
                Some(deadline),
                ctx,
            );
            self.blocked = Some(Blocker::Commit(key));
        }
        self.poll(ctx, false);
    }

    pub(super) fn maybe_start_rejoin(&mut self) {
        if !self.rejoin_needed
            || self.fatal.is_some()
            || self.closing.is_some()
            || !self.subscribed.is_active()
            || !self.heartbeat.has_polled()
            || !self.steps.is_empty()
            || self.blocked.is_some()
            || !matches!(self.state, MemberState::Unjoined | MemberState::Stable)
        {
            return;
        }
        let Some(topics) = self.topics_now() else {
            return; // a pattern not matched yet
        };
        self.rejoin_needed = false;
        if self.generation_valid() && self.cfg.auto_commit.is_some() && !self.owned.is_empty() {
            self.steps.push_back(Step::AutoCommit);
        }
        let revoked: BTreeSet<TopicPartition> = if !self.generation_valid() {
            self.owned.clone()
        } else {
            match self.protocol {
                RebalanceProtocol::Eager => self.owned.clone(),
                // Cooperative: keep what is still subscribed (KIP-429).
                RebalanceProtocol::Cooperative => self
                    .owned
                    .iter()
                    .filter(|tp| !topics.contains(&*tp.topic))
                    .cloned()
                    .collect(),
            }
        };
        if !revoked.is_empty() {
            let kind = if self.generation_valid() {
                RebalanceKind::Revoked
            } else {
                RebalanceKind::Lost
            };
            self.steps.push_back(Step::Call(kind, revoked.clone()));
            self.steps.push_back(Step::Revoke(revoked));
        }
        self.steps.push_back(Step::Join);
    }

    pub(super) fn run_steps(&mut self, ctx: &mut GroupCtx<'_>) {
        // Partitions with a revocation queued stop yielding records at once, before the
        // auto-commit and the callback that precede the revocation (Java's
        // markPendingRevocation): the positions those commit are then the final ones.
        for step in &self.steps {
            if let Step::Revoke(partitions) = step {
                ctx.subs.mark_pending_revocation(partitions);
            }
        }
        loop {
            if self.blocked.is_some() {
                return;
            }
            let Some(step) = self.steps.pop_front() else {
                return;
            };
            match step {
                Step::AutoCommit => {
                    if self.cfg.auto_commit.is_none() || self.fatal.is_some() {
                        continue;
                    }
                    if self.subscribed.is_active() && !self.generation_valid() {
                        continue;
                    }
                    let offsets = consumed_positions(ctx.subs);
                    if offsets.is_empty() {
                        continue;
                    }
                    let deadline = self
                        .closing
                        .unwrap_or(ctx.now + self.cfg.api_timeout)
                        .min(ctx.now + self.cfg.api_timeout);
                    let key = self.start_commit(
                        None,
                        CommitKind::Step { report: false },
                        offsets,
                        Some(deadline),
                        ctx,
                    );
                    self.blocked = Some(Blocker::Commit(key));
                }
                Step::Call(kind, partitions) => {
                    if partitions.is_empty() && kind != RebalanceKind::Assigned {
                        continue;
                    }
                    tracing::debug!(group = %self.cfg.group_id, ?kind, partitions = partitions.len(), "rebalance callback");
                    if !self.callbacks_enabled {
                        continue;
                    }
                    self.next_seq += 1;
                    let seq = self.next_seq;
                    self.pending_call = Some(RebalanceCall {
                        seq,
                        kind,
                        partitions,
                        assignment: ctx.subs.assignment(),
                        positions: consumed_positions(ctx.subs),
                        group: self.metadata(),
                    });
                    self.blocked = Some(Blocker::Callback(seq));
                }
                Step::Revoke(partitions) => self.apply_revoke(&partitions, ctx),
                Step::Assign(partitions) => self.apply_assignment(partitions, ctx),
                Step::Join if self.cp.is_some() => self.cp_start_join(ctx),
                Step::Join => self.send_join(ctx),
                Step::Leave(reason) if self.cp.is_some() => self.cp_leave(ctx, reason),
                Step::Reconciled => self.cp_reconciled(ctx.now),
                Step::Leave(reason) => {
                    self.send_leave(ctx, reason);
                    self.generation = Generation::NONE;
                    self.member_id.clear();
                    self.is_leader = false;
                    self.heartbeat.stop();
                    self.enter(MemberState::Unjoined);
                    let owned = std::mem::take(&mut self.owned);
                    self.apply_revoke(&owned, ctx);
                }
                Step::FinishClose => {
                    let leaving = self.requests.values().any(|r| matches!(r, Req::Leave));
                    if (leaving
                        || self
                            .commits
                            .values()
                            .any(|c| c.request.is_some() || c.kind == CommitKind::User))
                        && self.closing.is_some_and(|t| ctx.now < t)
                    {
                        // Commits and LeaveGroup in flight finish first (Java waits for
                        // requests to the coordinator on close).
                        self.steps.push_front(Step::FinishClose);
                        return;
                    }
                    self.close_done = true;
                    return;
                }
            }
        }
    }

    /// Takes `partitions` out of the assignment (their buffered data is dropped) and out of
    /// every commit not sent yet or sent again later.
    pub(super) fn apply_revoke(
        &mut self,
        partitions: &BTreeSet<TopicPartition>,
        ctx: &mut GroupCtx<'_>,
    ) {
        for tp in partitions {
            self.owned.remove(tp);
        }
        ctx.subs.assign(self.owned.clone());
        self.assignment_changed = true;
        for op in self.commits.values_mut() {
            op.withheld.extend(
                op.offsets
                    .keys()
                    .filter(|tp| partitions.contains(*tp))
                    .cloned(),
            );
        }
    }

    pub(super) fn apply_assignment(
        &mut self,
        partitions: BTreeSet<TopicPartition>,
        ctx: &mut GroupCtx<'_>,
    ) {
        let added: Vec<TopicPartition> = partitions
            .iter()
            .filter(|tp| !self.owned.contains(*tp))
            .cloned()
            .collect();
        self.owned = partitions;
        for tp in &self.owned {
            ctx.net.add_topic_interest(&tp.topic);
        }
        ctx.subs.assign(self.owned.clone());
        self.assignment_changed = true;
        let mut lookup = Vec::new();
        for tp in added {
            // The partition starts from its committed offset: hold it until OffsetFetch
            // answers (or fall back to auto_offset_reset when there is none).
            if let Ok(s) = ctx.subs.get_mut(&tp) {
                s.error = None;
                s.position = None;
                s.reset = Some(Reset {
                    timestamp: AWAITING_COMMITTED,
                    in_flight: true,
                    retry_at: None,
                });
                lookup.push(tp);
            }
        }
        if !lookup.is_empty() {
            self.last_offset_fetch = self.last_offset_fetch.next();
            self.offset_fetches.insert(
                self.last_offset_fetch,
                OffsetFetchOp {
                    op: None,
                    partitions: lookup,
                    deadline: None,
                    retry_at: None,
                    request: None,
                },
            );
        }
    }

    /// Looks the pattern's matches up again when the refresh is due (full metadata).
    pub(super) fn maybe_refresh_pattern(&mut self, ctx: &mut GroupCtx<'_>) {
        if !self.subscribed.is_pattern() || self.pattern_in_flight || self.closing.is_some() {
            return;
        }
        if self.pattern_refresh_at.is_some_and(|t| ctx.now >= t) {
            let body = RequestBody::Metadata(MetadataRequest {
                topics: None,
                allow_auto_topic_creation: false,
                ..Default::default()
            });
            let id = ctx.net.send(Target::Any, body, None, true, ctx.now);
            self.requests.insert(id, Req::PatternMetadata);
            self.pattern_in_flight = true;
            self.pattern_refresh_at = None;
        }
    }

    /// The full metadata of a pattern refresh: a changed match rejoins.
    pub(super) fn on_pattern_metadata(
        &mut self,
        result: Result<Response, NetError>,
        ctx: &mut GroupCtx<'_>,
    ) {
        self.pattern_in_flight = false;
        let Ok(Ok(m)) = result.map(Response::body_as::<MetadataRequest>) else {
            self.pattern_refresh_at = Some(ctx.now + self.cfg.retry_backoff);
            return;
        };
        self.pattern_refresh_at = Some(ctx.now + self.cfg.metadata_max_age);
        let mut view = ClusterView::default();
        view.update(&m, true);
        if self
            .subscribed
            .update_matches(&view, self.cfg.exclude_internal)
        {
            if let Some(topics) = self.topics_now() {
                tracing::debug!(group = %self.cfg.group_id, topics = topics.len(), "pattern subscription matched");
                for t in &topics {
                    ctx.net.add_topic_interest(t);
                }
            }
            self.check_subscription_change();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;

    #[test]
    fn eager_rebalance_revokes_everything_before_joining() {
        let mut t = T::new(|_| {});
        t.join_as_follower(&[0, 1]);
        t.heartbeat_response(ErrorCode::REBALANCE_IN_PROGRESS);
        t.poll(true);
        let call = t.g.pending_call().cloned().unwrap();
        assert_eq!(call.kind, RebalanceKind::Revoked);
        assert_eq!(call.partitions, tps(&[0, 1]));
        assert!(
            t.pending(|r| matches!(r, Req::Join)).is_none(),
            "JoinGroup waits for the callback"
        );
        t.complete();
        assert!(t.pending(|r| matches!(r, Req::Join)).is_some());
        assert!(t.subs.assignment().is_empty());
        assert_eq!(t.g.member_id, "m-1", "the member id is kept");
    }

    #[test]
    fn cooperative_revokes_only_what_moved_and_rejoins() {
        let mut t = T::new(|c| {
            c.partition_assignment_strategy =
                vec![crate::config::AssignmentStrategy::CooperativeSticky]
        });
        assert_eq!(t.g.protocol(), RebalanceProtocol::Cooperative);
        t.poll(true);
        t.join_response(ErrorCode::NONE, "m-1", "other");
        t.sync_response(&[0, 1, 2]);
        t.complete();
        t.heartbeat_response(ErrorCode::REBALANCE_IN_PROGRESS);
        t.poll(true);
        assert!(
            t.g.pending_call().is_none(),
            "nothing revoked before joining"
        );
        assert_eq!(t.subs.assignment(), tps(&[0, 1, 2]), "kept while rejoining");
        t.join_response(ErrorCode::NONE, "m-1", "other");
        t.sync_response(&[0, 2]);
        let revoked = t.complete();
        assert_eq!(revoked.kind, RebalanceKind::Revoked);
        assert_eq!(revoked.partitions, tps(&[1]));
        let assigned = t.complete();
        assert_eq!(assigned.kind, RebalanceKind::Assigned);
        assert!(assigned.partitions.is_empty());
        assert_eq!(t.subs.assignment(), tps(&[0, 2]));
        t.poll(true);
        assert!(
            t.pending(|r| matches!(r, Req::Join)).is_some(),
            "rejoins at once after revoking"
        );
    }

    fn offset_commit_ok(offsets: &[(i32, i64)]) -> ResponseBody {
        use crate::protocol::offset_commit::response::{
            OffsetCommitResponsePartition, OffsetCommitResponseTopic,
        };
        ResponseBody::OffsetCommit(crate::protocol::OffsetCommitResponse {
            topics: vec![OffsetCommitResponseTopic {
                name: "t".into(),
                partitions: offsets
                    .iter()
                    .map(|&(p, _)| OffsetCommitResponsePartition {
                        partition_index: p,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    fn commit_request_of(t: &T, id: RequestId) -> CommitKey {
        match t.g.requests.get(&id) {
            Some(Req::Commit(op)) => *op,
            other => panic!("not a commit: {other:?}"),
        }
    }

    /// B2 (notes/group-bugs.md): eager revocation takes the partitions out of the
    /// assignment right after on_partitions_revoked, before the listener's commit lands;
    /// they stop yielding records from the start of the rebalance; a commit asked for before
    /// the revocation and not sent yet leaves them out.
    #[test]
    fn eager_revocation_takes_effect_right_after_the_callback() {
        // A long backoff keeps the refused commit below waiting across the revocation.
        let mut t = T::new(|c| c.common.retry_backoff_ms = 5_000);
        t.join_as_follower(&[0, 1]);
        for tp in tps(&[0, 1]) {
            t.subs.seek(&tp, 5, None).unwrap();
            assert!(t.subs.get(&tp).unwrap().is_fetchable(t.now));
        }
        // A sync commit the coordinator refuses for now: it waits for its retry.
        let user = OpId(7);
        let key = {
            let mut ctx = GroupCtx {
                net: &mut t.net,
                subs: &mut t.subs,
                now: t.now,
            };
            let offsets = [(TopicPartition::new("t", 0), OffsetAndMetadata::new(3))].into();
            t.g.commit(user, Some(offsets), Some(Duration::from_secs(30)), &mut ctx)
        };
        let id = t.pending(|r| matches!(r, Req::Commit(_))).expect("sent");
        t.respond(
            id,
            ResponseBody::OffsetCommit(crate::protocol::OffsetCommitResponse {
                topics: vec![
                    crate::protocol::offset_commit::response::OffsetCommitResponseTopic {
                        name: "t".into(),
                        partitions: vec![
                        crate::protocol::offset_commit::response::OffsetCommitResponsePartition {
                            partition_index: 0,
                            error_code: ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.0,
                            ..Default::default()
                        },
                    ],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
        );
        assert!(t.g.commits[&key].retry_at.is_some(), "waits to retry");

        t.heartbeat_response(ErrorCode::REBALANCE_IN_PROGRESS);
        t.poll(true);
        let call = t.g.pending_call().cloned().expect("revocation callback");
        assert_eq!(call.kind, RebalanceKind::Revoked);
        for tp in tps(&[0, 1]) {
            let s = t.subs.get(&tp).unwrap();
            assert!(
                s.pending_revocation && !s.is_fetchable(t.now),
                "no records of {tp}"
            );
        }
        let mut ctx = GroupCtx {
            net: &mut t.net,
            subs: &mut t.subs,
            now: t.now,
        };
        let outcome = RebalanceOutcome {
            commit: call.positions.clone(),
            ..Default::default()
        };
        t.g.complete_call(call.seq, outcome, &mut ctx);
        assert!(
            t.subs.assignment().is_empty(),
            "revoked before the listener's commit lands"
        );
        assert!(
            t.pending(|r| matches!(r, Req::Join)).is_none(),
            "JoinGroup waits"
        );
        let listener = t
            .pending(|r| matches!(r, Req::Commit(_)))
            .expect("the listener's commit");
        assert_ne!(commit_request_of(&t, listener), key);

        // The older commit's retry must not land after the listener's: it is dropped.
        t.now += Duration::from_secs(6);
        t.poll(true);
        assert!(!t.g.commits.contains_key(&key));
        let failed = t.g.events.iter().any(
            |e| matches!(e, ConsumerEvent::Commit { op, result: Err(_), .. } if *op == Some(user)),
        );
        assert!(failed, "{:?}", t.g.events);
        let commits: Vec<_> =
            t.g.requests
                .values()
                .filter(|r| matches!(r, Req::Commit(_)))
                .collect();
        assert_eq!(commits.len(), 1, "only the listener's commit: {commits:?}");

        t.respond(listener, offset_commit_ok(&[(0, 5), (1, 5)]));
        assert!(t.pending(|r| matches!(r, Req::Join)).is_some());
        assert!(t.subs.assignment().is_empty());
    }

    /// The same class as B1: a pattern refresh left due after unsubscribing (or while
    /// closing) is skipped by poll, so it must not be reported either.
    #[test]
    fn a_pattern_refresh_poll_skips_is_not_a_deadline() {
        let mut t = T::new(|_| {});
        {
            let mut ctx = GroupCtx {
                net: &mut t.net,
                subs: &mut t.subs,
                now: t.now,
            };
            t.g.subscribe(Subscribed::pattern("t.*").unwrap(), &mut ctx);
            t.g.unsubscribe(&mut ctx);
        }
        // The refresh sent while subscribed answers after the unsubscribe and schedules the
        // next one.
        let md = t
            .pending(|r| matches!(r, Req::PatternMetadata))
            .expect("pattern metadata");
        t.respond(md, ResponseBody::Metadata(MetadataResponse::default()));
        t.now += Duration::from_secs(3_600);
        t.poll(false);
        assert!(t.g.poll_timeout().is_none_or(|d| d > t.now));
    }
}
