//! OffsetCommit: the offsets a group stores ([`OffsetAndMetadata`]), the application's
//! commits, the periodic auto-commit and the commits of rebalance steps, how OffsetCommit
//! errors are classified and which commits are retried (Java's `ConsumerCoordinator` and its
//! `OffsetCommitResponseHandler` are the reference).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::rebalance::Blocker;
use super::{
    consumed_positions, group_error, CommitKey, Generation, GroupCtx, GroupMember, MemberState,
    Outcome, Req,
};
use crate::consumer::error::ConsumerError;
use crate::consumer::record::TopicPartition;
use crate::consumer::{ConsumerEvent, OpId};
use crate::network::{NetError, RequestId, Response};
use crate::protocol::offset_commit::request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use crate::protocol::{ErrorCode, OffsetCommitRequest, OffsetCommitResponse, RequestBody};

/// Highest OffsetCommit version sent by classic members: v9 carries a KIP-848 member epoch,
/// which they have no use for.
pub(crate) const MAX_COMMIT_VERSION: i16 = 8;

/// Highest OffsetCommit version sent by consumer protocol members: the coordinator refuses
/// their commits below v9 (the version whose generation field is the member epoch).
pub(crate) const MAX_COMMIT_VERSION_CONSUMER_PROTOCOL: i16 = 9;

/// An offset to commit, or one that was committed (Java's `OffsetAndMetadata`): the offset of
/// the next record to consume, the leader epoch of the record before it (if known) and
/// free-form metadata.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OffsetAndMetadata {
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, if known (OffsetCommit v6+).
    pub leader_epoch: Option<i32>,
    /// Application metadata stored with the offset (empty by default).
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// An offset without leader epoch or metadata.
    pub fn new(offset: i64) -> Self {
        OffsetAndMetadata {
            offset,
            leader_epoch: None,
            metadata: String::new(),
        }
    }

    /// The same offset with `metadata`.
    pub fn with_metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// The same offset with a leader epoch.
    pub fn with_leader_epoch(mut self, epoch: Option<i32>) -> Self {
        self.leader_epoch = epoch;
        self
    }
}

/// Offsets by partition.
pub type Offsets = BTreeMap<TopicPartition, OffsetAndMetadata>;

/// kafka-python's `default_offset_commit_callback`: logs a failed commit (with `tracing`).
/// The handles run it for an async commit given no callback of its own; the core itself
/// never runs callbacks (it reports every commit as a
/// [`ConsumerEvent::Commit`](crate::consumer::ConsumerEvent::Commit)).
pub fn default_offset_commit_callback(offsets: &Offsets, result: Result<(), ConsumerError>) {
    if let Err(error) = result {
        tracing::warn!(%error, partitions = offsets.len(), "offset commit failed");
    }
}

/// Who asked for a commit: decides retries and what else happens with a failure. Every
/// commit's result is a [`ConsumerEvent::Commit`](crate::consumer::ConsumerEvent::Commit),
/// with the application's op for its own commits and none for the core's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CommitKind {
    /// The application (`commit_sync` / `commit_async`, with an op).
    User,
    /// The periodic auto-commit: errors are also logged (as Java's auto-commit does).
    Auto,
    /// A blocking step of the group (auto-commit before a revocation or on close, or the
    /// listener's commit): the step waits for it; `report` puts a failure in the next poll
    /// (the listener's commits), otherwise it is logged (auto-commits, as Java).
    Step {
        /// Whether a failure is returned by the next poll.
        report: bool,
    },
}

/// One commit in progress.
#[derive(Debug)]
pub(crate) struct CommitOp {
    /// The group's own name for the commit (unique, unlike application ops).
    pub key: CommitKey,
    /// The application's op (`None` for the core's own commits).
    pub op: Option<OpId>,
    pub kind: CommitKind,
    pub offsets: Offsets,
    /// Sync commits retry retriable errors until this deadline; async ones never retry.
    pub deadline: Option<Instant>,
    pub retry_at: Option<Instant>,
    pub request: Option<RequestId>,
    /// Partitions revoked from the member after the commit was asked for: they are left out
    /// of any later (re)send, so that the revocation callback's commit stays the last one for
    /// them in the generation and committed offsets never move backwards.
    pub withheld: BTreeSet<TopicPartition>,
    /// The partitions the last request left out (withheld when it was sent): the commit did
    /// not do all it was asked to, and its answer does not cover them.
    pub left_out: BTreeSet<TopicPartition>,
    /// The `commit` span, from the call until the outcome.
    pub span: tracing::Span,
}

/// The OffsetCommit request for `offsets` on behalf of `generation`/`member_id` (-1 and ""
/// for a consumer that assigns partitions itself).
pub(crate) fn commit_request(
    group_id: &str,
    generation: Generation,
    member_id: &str,
    instance_id: Option<&str>,
    offsets: &Offsets,
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (tp, o) in offsets {
        if topics.last().is_none_or(|t| t.name != *tp.topic) {
            topics.push(OffsetCommitRequestTopic {
                name: tp.topic.to_string(),
                ..Default::default()
            });
        }
        let t = topics.last_mut().expect("pushed");
        t.partitions.push(OffsetCommitRequestPartition {
            partition_index: tp.partition,
            committed_offset: o.offset,
            committed_leader_epoch: o.leader_epoch.unwrap_or(-1),
            commit_timestamp: -1,
            committed_metadata: Some(o.metadata.clone()),
            ..Default::default()
        });
    }
    OffsetCommitRequest {
        group_id: group_id.to_owned(),
        generation_id_or_member_epoch: generation.0,
        member_id: member_id.to_owned(),
        group_instance_id: instance_id.map(str::to_owned),
        retention_time_ms: -1,
        topics,
        ..Default::default()
    }
}

/// Classifies an OffsetCommit response (Java's `OffsetCommitResponseHandler`): the first
/// partition error decides.
pub(crate) fn commit_outcome(resp: &OffsetCommitResponse, offsets: &Offsets) -> Outcome<()> {
    let mut missing: Vec<&TopicPartition> = offsets.keys().collect();
    for t in &resp.topics {
        for p in &t.partitions {
            missing.retain(|tp| !(*tp.topic == *t.name && tp.partition == p.partition_index));
            let code = p.error();
            if code.is_ok() {
                continue;
            }
            let tp = TopicPartition::new(t.name.as_str(), p.partition_index);
            let err = |detail: &str| group_error(code, format!("commit of {tp}: {detail}"));
            return match code {
                ErrorCode::COORDINATOR_NOT_AVAILABLE
                | ErrorCode::NOT_COORDINATOR
                | ErrorCode::REQUEST_TIMED_OUT => Outcome::Retry {
                    coordinator: true,
                    error: err("the coordinator moved"),
                },
                // The consumer protocol: the epoch moved on since the commit was built; it
                // goes out again with the latest (Java retries it, sync commits only).
                ErrorCode::STALE_MEMBER_EPOCH => Outcome::Retry {
                    coordinator: false,
                    error: err("stale member epoch"),
                },
                ErrorCode::COORDINATOR_LOAD_IN_PROGRESS | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
                    Outcome::Retry {
                        coordinator: false,
                        error: err("retriable"),
                    }
                }
                ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION => {
                    Outcome::ResetGeneration(err(
                        "the group rebalanced and assigned the partitions to another member \
                         (the poll loop took longer than max_poll_interval_ms?)",
                    ))
                }
                ErrorCode::REBALANCE_IN_PROGRESS => {
                    Outcome::Rebalancing(err("the group is rebalancing; poll to rejoin"))
                }
                ErrorCode::FENCED_INSTANCE_ID => {
                    Outcome::Fenced(err("another consumer uses this group_instance_id"))
                }
                c if c.is_retriable() => Outcome::Retry {
                    coordinator: false,
                    error: err("retriable"),
                },
                _ => Outcome::Fail(err("refused")),
            };
        }
    }
    if let Some(tp) = missing.first() {
        return Outcome::Fail(group_error(
            ErrorCode::UNKNOWN_SERVER_ERROR,
            format!("the commit response left out {tp}"),
        ));
    }
    Outcome::Done(())
}

impl GroupMember {
    /// Commits `offsets` (None: the consumed positions) for the application's `op`; the
    /// result arrives as [`ConsumerEvent::Commit`]. Sync commits retry retriable errors until
    /// `timeout`. Returns the commit's key.
    pub fn commit(
        &mut self,
        op: OpId,
        offsets: Option<Offsets>,
        timeout: Option<Duration>,
        ctx: &mut GroupCtx<'_>,
    ) -> CommitKey {
        let offsets = offsets.unwrap_or_else(|| consumed_positions(ctx.subs));
        let key = self.start_commit(
            Some(op),
            CommitKind::User,
            offsets,
            timeout.map(|t| ctx.now + t),
            ctx,
        );
        self.poll(ctx, false);
        key
    }

    /// Starts a commit and returns its key (callers only start the core's own commits with
    /// offsets to commit: an empty commit finishes at once).
    pub(super) fn start_commit(
        &mut self,
        op: Option<OpId>,
        kind: CommitKind,
        offsets: Offsets,
        deadline: Option<Instant>,
        ctx: &mut GroupCtx<'_>,
    ) -> CommitKey {
        self.last_commit = self.last_commit.next();
        let key = self.last_commit;
        let offsets_len = offsets.len();
        if offsets.is_empty() {
            self.finish_commit(
                CommitOp {
                    key,
                    op,
                    kind,
                    offsets,
                    deadline,
                    retry_at: None,
                    request: None,
                    withheld: BTreeSet::new(),
                    left_out: BTreeSet::new(),
                    span: tracing::Span::none(),
                },
                Ok(()),
                ctx.now,
            );
            return key;
        }
        self.commits.insert(
            key,
            CommitOp {
                key,
                op,
                kind,
                offsets,
                deadline,
                retry_at: None,
                request: None,
                withheld: BTreeSet::new(),
                left_out: BTreeSet::new(),
                span: crate::network::spans::commit(&self.cfg.group_id, offsets_len),
            },
        );
        key
    }

    pub(super) fn send_commits(&mut self, ctx: &mut GroupCtx<'_>) {
        let now = ctx.now;
        let due: Vec<CommitKey> = self
            .commits
            .values()
            .filter(|c| c.request.is_none() && c.retry_at.is_none_or(|t| now >= t))
            .map(|c| c.key)
            .collect();
        for id in due {
            let managed = self.subscribed.is_active();
            if let Some(e) = &self.fatal {
                let e = e.clone();
                let op = self.commits.remove(&id).expect("listed");
                self.finish_commit(op, Err(e), now);
                continue;
            }
            // A subscribed member commits as a member of a stable generation (a commit
            // during a rebalance would be refused, or worse, overwrite the new owner's).
            // With the consumer protocol a member commits with its epoch at any time (the
            // coordinator checks the epoch; the revocation's auto-commit runs while
            // reconciling).
            let usable = !managed
                || (self.generation_valid()
                    && (self.cp.is_some()
                        || matches!(self.state, MemberState::Stable | MemberState::Unjoined)));
            if !usable {
                let op = self.commits.remove(&id).expect("listed");
                let e = group_error(
                    ErrorCode::REBALANCE_IN_PROGRESS,
                    "cannot commit while the group is rebalancing; poll to complete the rebalance",
                );
                self.finish_commit(op, Err(e), now);
                continue;
            }
            let (generation, member) = if managed {
                (self.generation, self.member_id.as_str())
            } else {
                (Generation::NONE, "")
            };
            let op = &self.commits[&id];
            let sendable: Offsets = op
                .offsets
                .iter()
                .filter(|(tp, _)| !op.withheld.contains(*tp))
                .map(|(tp, o)| (tp.clone(), o.clone()))
                .collect();
            let left_out: BTreeSet<TopicPartition> = op
                .withheld
                .iter()
                .filter(|tp| op.offsets.contains_key(*tp))
                .cloned()
                .collect();
            if sendable.is_empty() {
                let op = self.commits.remove(&id).expect("listed");
                self.finish_commit(op, Err(revoked_before_sent()), now);
                continue;
            }
            let body = commit_request(
                &self.cfg.group_id,
                generation,
                member,
                self.cfg.instance_id.as_deref().filter(|_| managed),
                &sendable,
            );
            let rid = ctx.net.send(
                self.target(),
                RequestBody::OffsetCommit(body),
                Some(if self.cp.is_some() {
                    MAX_COMMIT_VERSION_CONSUMER_PROTOCOL
                } else {
                    MAX_COMMIT_VERSION
                }),
                true,
                now,
            );
            self.requests.insert(rid, Req::Commit(id));
            if let Some(op) = self.commits.get_mut(&id) {
                op.request = Some(rid);
                op.retry_at = None;
                op.left_out = left_out;
            }
        }
    }

    pub(super) fn finish_commit(
        &mut self,
        op: CommitOp,
        result: Result<(), ConsumerError>,
        _now: Instant,
    ) {
        // Committed only in part: the revoked partitions were left out.
        let result = result.and_then(|()| {
            if !op.left_out.is_empty() {
                Err(revoked_before_sent())
            } else {
                Ok(())
            }
        });
        if let Err(e) = &result {
            crate::network::spans::record_error(
                &op.span,
                crate::network::spans::consumer_error_type(e),
            );
        }
        if matches!(self.blocked, Some(Blocker::Commit(key)) if key == op.key) {
            self.blocked = None;
        }
        if self.auto_commit_op == Some(op.key) {
            self.auto_commit_op = None;
        }
        match (op.kind, &result) {
            (CommitKind::User, _) | (_, Ok(())) => {}
            (CommitKind::Auto | CommitKind::Step { report: false }, Err(error)) => {
                tracing::warn!(group = %self.cfg.group_id, %error, "auto-commit failed");
            }
            (CommitKind::Step { report: true }, Err(error)) => {
                tracing::warn!(group = %self.cfg.group_id, %error, "the rebalance listener's commit failed");
                self.errors.push_back(error.clone());
            }
        }
        self.events.push_back(ConsumerEvent::Commit {
            op: op.op,
            offsets: op.offsets,
            result,
        });
    }

    /// Whether the periodic auto-commit runs now: enabled, and the member is in a stable
    /// generation with no rebalance step queued (or the consumer assigns partitions itself).
    /// During a rebalance the auto-commit waits; the one before a revocation is a step.
    pub(super) fn auto_commit_acts(&self) -> bool {
        if self.cfg.auto_commit.is_none() || self.closing.is_some() || self.fatal.is_some() {
            return false;
        }
        let member = self.state == MemberState::Stable && self.steps.is_empty();
        let standalone = !self.subscribed.is_active();
        member || standalone
    }

    pub(super) fn maybe_auto_commit(&mut self, ctx: &mut GroupCtx<'_>) {
        let Some(interval) = self.cfg.auto_commit else {
            return;
        };
        // poll_timeout reports the deadline under this same condition (else a due deadline
        // that is never acted on would spin the driver).
        if !self.auto_commit_acts() {
            return;
        }
        let now = ctx.now;
        let Some(at) = self.next_auto_commit else {
            self.next_auto_commit = Some(now + interval);
            return;
        };
        if now < at || self.auto_commit_op.is_some() {
            return;
        }
        self.next_auto_commit = Some(now + interval);
        let offsets = consumed_positions(ctx.subs);
        if offsets.is_empty() {
            return;
        }
        let key = self.start_commit(None, CommitKind::Auto, offsets, None, ctx);
        self.auto_commit_op = Some(key);
    }

    pub(super) fn on_commit(
        &mut self,
        id: CommitKey,
        result: Result<Response, NetError>,
        ctx: &mut GroupCtx<'_>,
    ) {
        let now = ctx.now;
        let Some(op) = self.commits.get_mut(&id) else {
            return;
        };
        op.request = None;
        let outcome = match result.map(Response::body_as::<OffsetCommitRequest>) {
            Ok(Ok(r)) if op.left_out.is_empty() => commit_outcome(&r, &op.offsets),
            Ok(Ok(r)) => {
                let sent: Offsets = op
                    .offsets
                    .iter()
                    .filter(|(tp, _)| !op.left_out.contains(*tp))
                    .map(|(tp, o)| (tp.clone(), o.clone()))
                    .collect();
                commit_outcome(&r, &sent)
            }
            Ok(Err(_)) => Outcome::Retry {
                coordinator: false,
                error: group_error(ErrorCode::UNKNOWN_SERVER_ERROR, "unexpected response"),
            },
            Err(e) => match self.fatal_net_error(&e) {
                Some(f) => Outcome::Fail(f),
                None => Outcome::Retry {
                    coordinator: true,
                    error: ConsumerError::Network(e),
                },
            },
        };
        let done = match outcome {
            Outcome::Done(()) => Some(Ok(())),
            Outcome::Retry { coordinator, error } => {
                if coordinator {
                    self.coordinator_lost(ctx, "commit failed");
                }
                let op = self.commits.get_mut(&id).expect("present");
                match op.deadline {
                    Some(d) if now + self.cfg.retry_backoff < d => {
                        op.retry_at = Some(now + self.cfg.retry_backoff);
                        None
                    }
                    _ => Some(Err(error)),
                }
            }
            Outcome::ResetGeneration(e) => {
                // With the consumer protocol the heartbeat hears of a fenced member and
                // handles it; the commit just fails (as Java's CommitFailedException).
                if self.cp.is_none() && self.subscribed.is_active() && self.generation_valid() {
                    self.lose_generation("commit: the member or generation is unknown", false);
                }
                Some(Err(e))
            }
            Outcome::Rebalancing(e) => {
                if self.state == MemberState::Stable {
                    self.request_rejoin("a commit found the group rebalancing");
                }
                Some(Err(e))
            }
            Outcome::Fenced(e) => {
                self.set_fatal(e.clone());
                Some(Err(e))
            }
            Outcome::Fail(e) => Some(Err(e)),
        };
        if let Some(result) = done {
            let op = self.commits.remove(&id).expect("present");
            self.finish_commit(op, result, now);
        }
    }

    /// Fails the commits waiting to be (re)sent whose deadline passed.
    pub(super) fn expire_commits(&mut self, now: Instant) {
        let late: Vec<CommitKey> = self
            .commits
            .values()
            .filter(|c| c.request.is_none() && c.deadline.is_some_and(|d| now >= d))
            .map(|c| c.key)
            .collect();
        for id in late {
            let op = self.commits.remove(&id).expect("listed");
            let after = self.cfg.api_timeout;
            self.finish_commit(
                op,
                Err(ConsumerError::Timeout {
                    operation: "commit",
                    after,
                }),
                now,
            );
        }
    }
}

/// The failure of a commit whose partitions were revoked before it could be sent (Java
/// fails such a commit with a rebalance error as well: the partitions belong to the group's
/// next owner now).
fn revoked_before_sent() -> ConsumerError {
    group_error(
        ErrorCode::REBALANCE_IN_PROGRESS,
        "partitions of this commit were revoked before it could be sent; they were left out",
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;
    use super::*;
    use crate::protocol::offset_commit::response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };

    fn offsets() -> Offsets {
        [
            (TopicPartition::new("a", 0), OffsetAndMetadata::new(5)),
            (
                TopicPartition::new("a", 1),
                OffsetAndMetadata::new(7)
                    .with_metadata("m")
                    .with_leader_epoch(Some(2)),
            ),
            (TopicPartition::new("b", 0), OffsetAndMetadata::new(1)),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn commit_request_groups_partitions_by_topic() {
        let r = commit_request("g", Generation(3), "m-1", Some("i"), &offsets());
        assert_eq!(r.generation_id_or_member_epoch, 3);
        assert_eq!(r.group_instance_id.as_deref(), Some("i"));
        assert_eq!(r.topics.len(), 2);
        assert_eq!(r.topics[0].partitions.len(), 2);
        assert_eq!(r.topics[0].partitions[1].committed_leader_epoch, 2);
        assert_eq!(
            r.topics[0].partitions[1].committed_metadata.as_deref(),
            Some("m")
        );
        assert_eq!(r.topics[1].partitions[0].committed_leader_epoch, -1);
    }

    fn commit_resp(code: ErrorCode) -> OffsetCommitResponse {
        OffsetCommitResponse {
            topics: vec![
                OffsetCommitResponseTopic {
                    name: "a".into(),
                    partitions: vec![
                        OffsetCommitResponsePartition {
                            partition_index: 0,
                            error_code: 0,
                            ..Default::default()
                        },
                        OffsetCommitResponsePartition {
                            partition_index: 1,
                            error_code: code.0,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                OffsetCommitResponseTopic {
                    name: "b".into(),
                    partitions: vec![OffsetCommitResponsePartition {
                        partition_index: 0,
                        error_code: 0,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn commit_errors_are_classified_as_java_does() {
        let o = offsets();
        assert_eq!(
            commit_outcome(&commit_resp(ErrorCode::NONE), &o),
            Outcome::Done(())
        );
        assert!(matches!(
            commit_outcome(&commit_resp(ErrorCode::NOT_COORDINATOR), &o),
            Outcome::Retry {
                coordinator: true,
                ..
            }
        ));
        assert!(matches!(
            commit_outcome(&commit_resp(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS), &o),
            Outcome::Retry {
                coordinator: false,
                ..
            }
        ));
        assert!(matches!(
            commit_outcome(&commit_resp(ErrorCode::ILLEGAL_GENERATION), &o),
            Outcome::ResetGeneration(_)
        ));
        assert!(matches!(
            commit_outcome(&commit_resp(ErrorCode::REBALANCE_IN_PROGRESS), &o),
            Outcome::Rebalancing(_)
        ));
        assert!(matches!(
            commit_outcome(&commit_resp(ErrorCode::FENCED_INSTANCE_ID), &o),
            Outcome::Fenced(_)
        ));
        assert!(matches!(
            commit_outcome(&commit_resp(ErrorCode::OFFSET_METADATA_TOO_LARGE), &o),
            Outcome::Fail(ConsumerError::Group { .. })
        ));
        let mut partial = commit_resp(ErrorCode::NONE);
        partial.topics.pop();
        assert!(matches!(commit_outcome(&partial, &o), Outcome::Fail(_)));
    }

    /// B1 (notes/group-bugs.md): the periodic auto-commit comes due while a rebalance step
    /// holds it back; the deadline must not be reported (the driver would wake at `now`
    /// again and again without anything happening).
    #[test]
    fn a_due_auto_commit_held_back_by_a_rebalance_is_not_a_deadline() {
        let mut t = T::new(|c| {
            c.enable_auto_commit = true;
            c.auto_commit_interval_ms = 1_000;
        });
        t.join_as_follower(&[0, 1]);
        t.heartbeat_response(ErrorCode::REBALANCE_IN_PROGRESS);
        t.poll(true);
        assert_eq!(
            t.g.pending_call().map(|c| c.kind),
            Some(RebalanceKind::Revoked),
            "the revocation callback holds the rebalance"
        );
        t.now += Duration::from_secs(2);
        assert!(t.g.next_auto_commit.is_some_and(|a| a <= t.now), "due");
        t.poll(false);
        let next = t.g.poll_timeout().expect("the heartbeat timers run");
        assert!(
            next > t.now,
            "poll_timeout names {:?} past, at which poll does nothing",
            t.now - next
        );
    }
}
