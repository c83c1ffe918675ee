//! [`GroupCoordinator`]: the member side of the classic group protocol (Java's
//! `AbstractCoordinator` + `ConsumerCoordinator`), sans-IO.
//!
//! # Shape
//! - `phase` is where the member is in the protocol: `Idle` (not a member), `Joining`
//!   (JoinGroup out or waiting to be resent), `Assigning` (the leader fetching metadata for
//!   the group's topics), `Syncing` (SyncGroup out) and `Stable`.
//! - `steps` is the queue of what must happen in order around a rebalance, with the points
//!   where Java calls the listener: an auto-commit, a listener callback, a revocation, an
//!   assignment, JoinGroup, LeaveGroup, the end of a close. A step that waits (a commit, a
//!   callback the application runs) holds the queue until it completes. Eager rejoin is
//!   `[auto-commit, revoked(all), revoke(all), join]`; a lost generation replaces revoked with
//!   lost; a cooperative SyncGroup answer is `[revoked(moved), revoke(moved), assign(new),
//!   assigned(added)]` and then a rejoin if anything was revoked (KIP-429).
//! - Revocation follows Java's `onJoinPrepare` / `markPendingRevocation`: partitions with a
//!   `revoke` queued are pending revocation at once (not fetched, no records returned), so
//!   the auto-commit and the callback see their final positions; they leave the assignment
//!   right after the callback, before the listener's commit goes out; and commits asked for
//!   earlier that are not sent yet (or are retried) leave them out. The listener's commit is
//!   thus the last one for them in the generation, and committed offsets never go back.
//! - `poll_timeout` reports only deadlines `poll` acts on when they come (the periodic
//!   auto-commit waits during a rebalance, so its deadline is not reported then).
//! - Commits and committed-offset lookups are operations with the group's own keys (an
//!   application's op rides along and comes back in the event: ops are the application's and
//!   may repeat), sent to the coordinator (`Target::Coordinator`) and retried as Java retries
//!   them. Every commit ends in one [`ConsumerEvent::Commit`], the core's own ones (auto-commit,
//!   the listener's commit) without an op.
//! - Timers (heartbeat, session, poll interval, auto-commit, pattern refresh, retries) are
//!   deadlines on the `now` passed in.
//!
//! The coordinator changes the assignment through the [`SubscriptionState`] it is given;
//! newly assigned partitions wait for their committed offsets (OffsetFetch) before they fetch
//! or fall back to `auto_offset_reset`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::heartbeat::Heartbeat;
use super::listener::{GroupMetadata, RebalanceCall, RebalanceKind, RebalanceOutcome};
use super::offsets_commit::{
    self, CommitKind, CommitOp, CommittedResult, FetchOp, OffsetAndMetadata, Offsets, Outcome,
    MAX_COMMIT_VERSION, MAX_OFFSET_FETCH_VERSION,
};
use super::subscription::Subscribed;
use crate::config::{AutoOffsetReset, ConsumerConfig};
use crate::consumer::assignor::{
    self, Assignment, ClusterMetadata, GroupMember, PartitionAssignor, RebalanceProtocol,
    Subscription,
};
use crate::consumer::error::ConsumerError;
use crate::consumer::record::TopicPartition;
use crate::consumer::subscription_state::{Reset, SubscriptionState};
use crate::consumer::{ConsumerEvent, OpId};
use crate::network::{
    ClusterView, CoordinatorKind, NetError, NetworkClient, RequestId, Response, Target,
};
use crate::protocol::join_group::request::JoinGroupRequestProtocol;
use crate::protocol::join_group::response::JoinGroupResponseMember;
use crate::protocol::leave_group::request::MemberIdentity;
use crate::protocol::metadata::request::MetadataRequestTopic;
use crate::protocol::sync_group::request::SyncGroupRequestAssignment;
use crate::protocol::{
    ApiKey, ErrorCode, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    MetadataRequest, RequestBody, ResponseBody, SyncGroupRequest, SyncGroupResponse,
};

/// The protocol type of consumer groups.
const PROTOCOL_TYPE: &str = "consumer";
/// JoinGroup v9 tells a restarted static leader it may skip the assignment (KIP-814).
const MAX_JOIN_VERSION: i16 = 9;
/// LeaveGroup v5 carries a reason.
const MAX_LEAVE_VERSION: i16 = 5;
/// SyncGroup v5 carries the protocol type and name.
const MAX_SYNC_VERSION: i16 = 5;

/// The highest versions of JoinGroup, SyncGroup and LeaveGroup a broker handles correctly,
/// when lower than what it advertises.
///
/// librdkafka's mock cluster (whose cluster id starts with `mockCluster`) advertises
/// JoinGroup v6, SyncGroup v4 and LeaveGroup v4 but reads their requests with the older
/// layouts: a flexible JoinGroup or SyncGroup fails to parse and the connection is closed
/// (every join would fail the same way forever), and a v3+ LeaveGroup's member batch is read
/// as a single member id. librdkafka itself never sends those versions; neither do we there.
fn group_version_caps(net: &NetworkClient) -> (i16, i16, i16) {
    let mock = net
        .cluster()
        .cluster_id
        .as_deref()
        .is_some_and(|id| id.starts_with("mockCluster"));
    if mock {
        (5, 3, 2)
    } else {
        (MAX_JOIN_VERSION, MAX_SYNC_VERSION, MAX_LEAVE_VERSION)
    }
}
/// The marker timestamp of a partition waiting for its committed offset: an offset reset
/// that is "in flight" so the fetcher neither resets nor fetches it meanwhile.
const AWAITING_COMMITTED: i64 = i64::MIN;

/// Where the member is in the group protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Not a member of a generation (not joined yet, left, or lost its generation).
    Unjoined,
    /// Joining: JoinGroup in flight, or the leader computing the assignment.
    Joining,
    /// SyncGroup in flight.
    Syncing,
    /// A member of the current generation.
    Stable,
}

#[derive(Debug)]
enum Phase {
    Idle,
    Joining {
        retry_at: Option<Instant>,
    },
    /// The leader waits for metadata of every member's topics before assigning.
    Assigning {
        members: Vec<JoinGroupResponseMember>,
    },
    Syncing,
    Stable,
}

#[derive(Debug)]
enum Step {
    /// A synchronous commit of the consumed positions when auto-commit is on (Java's
    /// `maybeAutoCommitOffsetsSync` before a revocation and on close).
    AutoCommit,
    Call(RebalanceKind, BTreeSet<TopicPartition>),
    Revoke(BTreeSet<TopicPartition>),
    Assign(BTreeSet<TopicPartition>),
    Join,
    Leave(&'static str),
    /// Close completes once commits in flight are done.
    FinishClose,
}

#[derive(Debug)]
enum Blocker {
    /// The commit with this key.
    Commit(u64),
    Callback(u64),
}

#[derive(Debug, Clone)]
enum Req {
    Join,
    Sync,
    Heartbeat(i32),
    Leave,
    Commit(u64),
    Fetch(u64),
    LeaderMetadata,
    PatternMetadata,
}

/// What the coordinator works on: the consumer's network layer and assignment.
pub(crate) struct GroupCtx<'a> {
    pub net: &'a mut NetworkClient,
    pub subs: &'a mut SubscriptionState,
    pub now: Instant,
}

#[derive(Debug)]
struct Settings {
    group_id: String,
    instance_id: Option<String>,
    rack: Option<String>,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    retry_backoff: Duration,
    api_timeout: Duration,
    auto_commit: Option<Duration>,
    exclude_internal: bool,
    metadata_max_age: Duration,
    reset: AutoOffsetReset,
}

/// The group member state machine (see the [module docs](self)).
pub(crate) struct GroupCoordinator {
    cfg: Settings,
    assignors: Vec<Box<dyn PartitionAssignor>>,
    protocol: RebalanceProtocol,
    pub(crate) subscribed: Subscribed,
    /// The topics of the last JoinGroup: a different subscription means a rejoin.
    joined_topics: Option<BTreeSet<String>>,
    member_id: String,
    generation: i32,
    protocol_name: Option<String>,
    is_leader: bool,
    phase: Phase,
    rejoin_needed: bool,
    rejoin_reason: &'static str,
    /// The partitions the group assigned to this member.
    owned: BTreeSet<TopicPartition>,
    steps: VecDeque<Step>,
    blocked: Option<Blocker>,
    callbacks_enabled: bool,
    next_seq: u64,
    pending_call: Option<RebalanceCall>,
    heartbeat: Heartbeat,
    /// Commits in progress by key.
    commits: BTreeMap<u64, CommitOp>,
    fetches: BTreeMap<u64, FetchOp>,
    next_fetch: u64,
    requests: BTreeMap<RequestId, Req>,
    next_auto_commit: Option<Instant>,
    /// The key of the periodic auto-commit in progress.
    auto_commit_op: Option<u64>,
    pattern_refresh_at: Option<Instant>,
    pattern_in_flight: bool,
    /// The leader's view of the group's topics when it assigned (a change means a rejoin).
    assignment_snapshot: Option<BTreeMap<String, i32>>,
    group_topics: BTreeSet<String>,
    fatal: Option<ConsumerError>,
    errors: VecDeque<ConsumerError>,
    pub(crate) events: VecDeque<ConsumerEvent>,
    /// Set when the assignment changed; the consumer drops buffered data of lost partitions.
    pub(crate) assignment_changed: bool,
    closing: Option<Instant>,
    close_done: bool,
    /// The last commit key handed out.
    next_op: u64,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator")
            .field("group", &self.cfg.group_id)
            .field("member", &self.member_id)
            .field("generation", &self.generation)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

fn ms_i32(ms: u32) -> i32 {
    i32::try_from(ms).unwrap_or(i32::MAX)
}

/// The rebalance protocol every configured assignor supports, cooperative preferred (Java
/// picks the highest protocol common to all assignors).
fn common_protocol(assignors: &[Box<dyn PartitionAssignor>]) -> RebalanceProtocol {
    let all_coop = !assignors.is_empty()
        && assignors.iter().all(|a| {
            a.supported_protocols()
                .contains(&RebalanceProtocol::Cooperative)
        });
    if all_coop {
        RebalanceProtocol::Cooperative
    } else {
        RebalanceProtocol::Eager
    }
}

fn group_error(code: ErrorCode, detail: impl Into<String>) -> ConsumerError {
    ConsumerError::Group {
        error: code,
        detail: detail.into(),
    }
}

impl GroupCoordinator {
    /// A member of `config.group_id` (which must be set); `assignors` in preference order
    /// (from `partition_assignment_strategy`).
    pub fn new(
        config: &ConsumerConfig,
        group_id: String,
        assignors: Vec<Box<dyn PartitionAssignor>>,
    ) -> Self {
        let rack = Some(config.common.client_rack.clone()).filter(|r| !r.is_empty());
        let protocol = common_protocol(&assignors);
        GroupCoordinator {
            cfg: Settings {
                group_id,
                instance_id: config.group_instance_id.clone(),
                rack,
                session_timeout_ms: ms_i32(config.session_timeout_ms),
                rebalance_timeout_ms: ms_i32(config.max_poll_interval_ms),
                retry_backoff: Duration::from_millis(config.common.retry_backoff_ms),
                api_timeout: Duration::from_millis(u64::from(config.default_api_timeout_ms)),
                auto_commit: config
                    .enable_auto_commit
                    .then(|| Duration::from_millis(u64::from(config.auto_commit_interval_ms))),
                exclude_internal: config.exclude_internal_topics,
                metadata_max_age: Duration::from_millis(config.common.metadata_max_age_ms),
                reset: config.auto_offset_reset,
            },
            assignors,
            protocol,
            subscribed: Subscribed::Nothing,
            joined_topics: None,
            member_id: String::new(),
            generation: -1,
            protocol_name: None,
            is_leader: false,
            phase: Phase::Idle,
            rejoin_needed: false,
            rejoin_reason: "",
            owned: BTreeSet::new(),
            steps: VecDeque::new(),
            blocked: None,
            callbacks_enabled: false,
            next_seq: 0,
            pending_call: None,
            heartbeat: Heartbeat::new(
                Duration::from_millis(u64::from(config.heartbeat_interval_ms)),
                Duration::from_millis(u64::from(config.session_timeout_ms)),
                Duration::from_millis(u64::from(config.max_poll_interval_ms)),
                Duration::from_millis(config.common.retry_backoff_ms),
            ),
            commits: BTreeMap::new(),
            fetches: BTreeMap::new(),
            next_fetch: 0,
            requests: BTreeMap::new(),
            next_auto_commit: None,
            auto_commit_op: None,
            pattern_refresh_at: None,
            pattern_in_flight: false,
            assignment_snapshot: None,
            group_topics: BTreeSet::new(),
            fatal: None,
            errors: VecDeque::new(),
            events: VecDeque::new(),
            assignment_changed: false,
            closing: None,
            close_done: false,
            next_op: 0,
        }
    }

    fn target(&self) -> Target {
        Target::Coordinator {
            kind: CoordinatorKind::Group,
            key: self.cfg.group_id.clone(),
        }
    }

    /// The version `api` would be sent at to the known coordinator, if a connection to it
    /// has negotiated versions (some fields exist only from some version on, and the codec
    /// refuses to drop a field that is not ignorable).
    fn coordinator_version(&self, net: &NetworkClient, api: ApiKey, max: i16) -> Option<i16> {
        let node = net.coordinator(CoordinatorKind::Group, &self.cfg.group_id)?;
        let (_, table) = net.broker_versions(node)?;
        table.negotiate(api, Some(max))
    }

    // ---- queries --------------------------------------------------------------------------

    /// The rebalance protocol in use.
    pub fn protocol(&self) -> RebalanceProtocol {
        self.protocol
    }

    /// Where the member is.
    pub fn state(&self) -> MemberState {
        match self.phase {
            Phase::Idle => MemberState::Unjoined,
            Phase::Joining { .. } | Phase::Assigning { .. } => MemberState::Joining,
            Phase::Syncing => MemberState::Syncing,
            Phase::Stable => MemberState::Stable,
        }
    }

    /// The membership.
    pub fn metadata(&self) -> GroupMetadata {
        GroupMetadata {
            group_id: self.cfg.group_id.clone(),
            generation_id: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.cfg.instance_id.clone(),
        }
    }

    /// Whether this member led the last rebalance.
    pub fn is_leader(&self) -> bool {
        self.is_leader
    }

    /// Whether the application must run a listener callback before records flow again.
    pub fn blocks_records(&self) -> bool {
        self.pending_call.is_some()
            || matches!(self.steps.front(), Some(Step::Call(..)))
                && self.callbacks_enabled
                && self.blocked.is_none()
    }

    /// The callback the application must run, if any.
    pub fn pending_call(&self) -> Option<&RebalanceCall> {
        self.pending_call.as_ref()
    }

    /// An error for the application's poll: the fatal one (every time) or a one-shot one.
    pub fn take_error(&mut self) -> Option<ConsumerError> {
        if let Some(e) = &self.fatal {
            return Some(e.clone());
        }
        self.errors.pop_front()
    }

    /// Whether a poll should wake: a callback to run or an error to report.
    pub fn wants_poll(&self) -> bool {
        self.pending_call.is_some() || self.fatal.is_some() || !self.errors.is_empty()
    }

    /// Whether no step is queued or running (an unsubscribe or close went through).
    pub fn is_settled(&self) -> bool {
        self.steps.is_empty() && self.blocked.is_none() && self.pending_call.is_none()
    }

    /// Whether a graceful close finished.
    pub fn close_finished(&self) -> bool {
        self.close_done
    }

    /// Whether a request belongs to the group.
    pub fn owns(&self, id: RequestId) -> bool {
        self.requests.contains_key(&id)
    }

    /// Lets the application run listener callbacks (otherwise they complete at once).
    pub fn set_callbacks(&mut self, enabled: bool) {
        self.callbacks_enabled = enabled;
    }

    fn generation_valid(&self) -> bool {
        self.generation >= 0 && !self.member_id.is_empty()
    }

    fn topics_now(&self) -> Option<BTreeSet<String>> {
        self.subscribed.topics()
    }

    // ---- application calls ----------------------------------------------------------------

    /// Subscribes to `topics` (replacing any subscription); an empty set unsubscribes.
    pub fn subscribe(&mut self, sub: Subscribed, ctx: &mut GroupCtx<'_>) {
        if let Subscribed::Topics(t) = &sub {
            for topic in t {
                ctx.net.add_topic_interest(topic);
            }
        }
        let was_active = self.subscribed.is_active();
        self.subscribed = sub;
        if self.subscribed.is_pattern() {
            self.pattern_refresh_at = Some(ctx.now);
        }
        if !was_active {
            self.request_rejoin("subscribed");
        } else {
            self.check_subscription_change();
        }
        self.poll(ctx, false);
    }

    /// Leaves the group: revocation (or loss) callbacks, LeaveGroup, assignment cleared.
    pub fn unsubscribe(&mut self, ctx: &mut GroupCtx<'_>) {
        if !self.subscribed.is_active() {
            return;
        }
        self.subscribed = Subscribed::Nothing;
        self.joined_topics = None;
        self.rejoin_needed = false;
        self.steps.clear();
        self.queue_leave_steps("the consumer unsubscribed");
        self.poll(ctx, false);
    }

    /// Starts a graceful close, done by `deadline`: auto-commit, revocation callbacks,
    /// LeaveGroup, and commits in flight.
    pub fn close(&mut self, deadline: Instant, ctx: &mut GroupCtx<'_>) {
        if self.closing.is_some() {
            return;
        }
        self.closing = Some(deadline);
        self.rejoin_needed = false;
        // Steps of a rebalance that will not happen now go; a running callback finishes.
        self.steps
            .retain(|s| matches!(s, Step::Call(..) | Step::Revoke(_)));
        if self.subscribed.is_active() {
            if self.fatal.is_none() {
                self.steps.push_front(Step::AutoCommit);
            }
            self.queue_leave_steps("the consumer is being closed");
        } else {
            self.steps.push_back(Step::AutoCommit);
        }
        self.steps.push_back(Step::FinishClose);
        self.poll(ctx, false);
    }

    fn queue_leave_steps(&mut self, reason: &'static str) {
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

    /// Commits `offsets` (None: the consumed positions) for the application's `op`; the
    /// result arrives as [`ConsumerEvent::Commit`]. Sync commits retry retriable errors until
    /// `timeout`. Returns the commit's key.
    pub fn commit(
        &mut self,
        op: OpId,
        offsets: Option<Offsets>,
        timeout: Option<Duration>,
        ctx: &mut GroupCtx<'_>,
    ) -> u64 {
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

    /// Looks up committed offsets; the answer arrives as [`ConsumerEvent::Committed`].
    pub fn committed(
        &mut self,
        op: OpId,
        partitions: BTreeSet<TopicPartition>,
        timeout: Duration,
        ctx: &mut GroupCtx<'_>,
    ) {
        if partitions.is_empty() {
            self.events.push_back(ConsumerEvent::Committed {
                op,
                result: Ok(BTreeMap::new()),
            });
            return;
        }
        self.next_fetch += 1;
        self.fetches.insert(
            self.next_fetch,
            FetchOp {
                op: Some(op),
                partitions: partitions.into_iter().collect(),
                deadline: Some(ctx.now + timeout),
                retry_at: None,
                request: None,
            },
        );
        self.poll(ctx, false);
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

    // ---- the engine -------------------------------------------------------------------------

    fn request_rejoin(&mut self, reason: &'static str) {
        if !self.rejoin_needed {
            tracing::debug!(group = %self.cfg.group_id, reason, "rejoin needed");
        }
        self.rejoin_needed = true;
        self.rejoin_reason = reason;
    }

    fn check_subscription_change(&mut self) {
        if self.joined_topics.is_some() && self.topics_now() != self.joined_topics {
            self.request_rejoin("the subscription changed");
        }
    }

    /// Forgets the generation (and the member id, unless `keep_member`): the partitions are
    /// lost and the member rejoins.
    fn lose_generation(&mut self, reason: &'static str, keep_member: bool) {
        tracing::info!(group = %self.cfg.group_id, member = %self.member_id, reason, "lost the group generation");
        self.generation = -1;
        if !keep_member {
            self.member_id.clear();
        }
        self.is_leader = false;
        self.heartbeat.stop();
        self.phase = Phase::Idle;
        self.request_rejoin(reason);
    }

    fn set_fatal(&mut self, error: ConsumerError) {
        tracing::error!(group = %self.cfg.group_id, %error, "fatal group error");
        self.fatal = Some(error);
        self.heartbeat.stop();
        self.phase = Phase::Idle;
        self.generation = -1;
        self.rejoin_needed = false;
        self.steps.retain(|s| matches!(s, Step::FinishClose));
        if !self.owned.is_empty() {
            let owned = self.owned.clone();
            self.steps.push_front(Step::Revoke(owned.clone()));
            self.steps
                .push_front(Step::Call(RebalanceKind::Lost, owned));
        }
    }

    /// Advances everything that is due. `in_poll`: the application is polling (or waiting in
    /// a poll).
    pub fn poll(&mut self, ctx: &mut GroupCtx<'_>, in_poll: bool) {
        if self.close_done {
            return;
        }
        let now = ctx.now;
        if in_poll && self.subscribed.is_active() {
            self.heartbeat.note_poll(now);
        }
        if self.heartbeat.take_session_expiry(now) {
            // No heartbeat got through for a whole session: the coordinator may already have
            // removed this member and given its partitions to others. Give them up now (as
            // lost), rather than when the coordinator is reachable again, so that no partition
            // is owned by two members at once; then rejoin at a freshly looked-up coordinator.
            // librdkafka does the same; Java keeps the partitions until it hears back.
            tracing::warn!(group = %self.cfg.group_id, member = %self.member_id,
                "no successful heartbeat within session_timeout_ms: partitions lost, rejoining");
            ctx.net
                .invalidate_coordinator(CoordinatorKind::Group, &self.cfg.group_id, now);
            if self.generation_valid() {
                self.lose_generation("no successful heartbeat within session_timeout_ms", false);
                if !self.owned.is_empty() {
                    // At once, not when the rejoin starts (that waits for the coordinator).
                    let owned = self.owned.clone();
                    self.steps.retain(|s| !matches!(s, Step::AutoCommit));
                    self.steps.push_front(Step::Revoke(owned.clone()));
                    self.steps
                        .push_front(Step::Call(RebalanceKind::Lost, owned));
                }
            }
        }
        if !in_poll && self.heartbeat.poll_expired(now) {
            self.on_poll_timeout(ctx);
        }
        self.maybe_refresh_pattern(ctx);
        self.maybe_start_rejoin();
        self.run_steps(ctx);
        if let Phase::Joining {
            retry_at: Some(t), ..
        } = self.phase
        {
            if now >= t {
                self.send_join(ctx);
            }
        }
        if self.heartbeat.is_due(now) && self.generation_valid() {
            self.send_heartbeat(ctx);
        }
        self.maybe_auto_commit(ctx);
        self.send_commits(ctx);
        self.send_fetches(ctx);
        self.expire(now);
        if let Some(deadline) = self.closing {
            if now >= deadline && !self.close_done {
                tracing::warn!(group = %self.cfg.group_id, "close timed out before the group steps finished");
                self.close_done = true;
            }
        }
    }

    fn on_poll_timeout(&mut self, ctx: &mut GroupCtx<'_>) {
        self.heartbeat.clear_poll();
        if matches!(self.phase, Phase::Idle) && !self.generation_valid() {
            return;
        }
        tracing::warn!(
            group = %self.cfg.group_id,
            "the application did not poll within max_poll_interval_ms: leaving the group (it rejoins on the next poll)"
        );
        self.send_leave(ctx, "consumer poll timeout has expired");
        self.lose_generation("the poll interval expired", false);
    }

    fn maybe_refresh_pattern(&mut self, ctx: &mut GroupCtx<'_>) {
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

    fn maybe_start_rejoin(&mut self) {
        if !self.rejoin_needed
            || self.fatal.is_some()
            || self.closing.is_some()
            || !self.subscribed.is_active()
            || !self.heartbeat.has_polled()
            || !self.steps.is_empty()
            || self.blocked.is_some()
            || !matches!(self.phase, Phase::Idle | Phase::Stable)
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

    fn run_steps(&mut self, ctx: &mut GroupCtx<'_>) {
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
                Step::Join => self.send_join(ctx),
                Step::Leave(reason) => {
                    self.send_leave(ctx, reason);
                    self.generation = -1;
                    self.member_id.clear();
                    self.is_leader = false;
                    self.heartbeat.stop();
                    self.phase = Phase::Idle;
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
    fn apply_revoke(&mut self, partitions: &BTreeSet<TopicPartition>, ctx: &mut GroupCtx<'_>) {
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

    fn apply_assignment(&mut self, partitions: BTreeSet<TopicPartition>, ctx: &mut GroupCtx<'_>) {
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
            self.next_fetch += 1;
            self.fetches.insert(
                self.next_fetch,
                FetchOp {
                    op: None,
                    partitions: lookup,
                    deadline: None,
                    retry_at: None,
                    request: None,
                },
            );
        }
    }

    fn subscription_for(
        &self,
        topics: &BTreeSet<String>,
        assignor: &dyn PartitionAssignor,
    ) -> Subscription {
        Subscription {
            topics: topics.iter().cloned().collect(),
            user_data: assignor.subscription_user_data(topics),
            owned_partitions: self.owned.iter().cloned().collect(),
            generation_id: self.generation,
            rack_id: self.cfg.rack.clone(),
        }
    }

    fn send_join(&mut self, ctx: &mut GroupCtx<'_>) {
        let Some(topics) = self.topics_now() else {
            self.phase = Phase::Idle;
            self.request_rejoin("waiting for the pattern's topics");
            return;
        };
        let mut protocols = Vec::new();
        for a in &self.assignors {
            let sub = self.subscription_for(&topics, a.as_ref());
            match assignor::encode_subscription(&sub, assignor::CONSUMER_PROTOCOL_VERSION) {
                Ok(metadata) => protocols.push(JoinGroupRequestProtocol {
                    name: a.name().to_owned(),
                    metadata,
                    ..Default::default()
                }),
                Err(e) => {
                    self.set_fatal(ConsumerError::IllegalState {
                        detail: format!("cannot encode the subscription: {e}"),
                    });
                    return;
                }
            }
        }
        let body = JoinGroupRequest {
            group_id: self.cfg.group_id.clone(),
            session_timeout_ms: self.cfg.session_timeout_ms,
            rebalance_timeout_ms: self.cfg.rebalance_timeout_ms,
            member_id: self.member_id.clone(),
            group_instance_id: self.cfg.instance_id.clone(),
            protocol_type: PROTOCOL_TYPE.to_owned(),
            protocols,
            reason: Some(self.rejoin_reason.to_owned()).filter(|r| !r.is_empty()),
            ..Default::default()
        };
        tracing::debug!(group = %self.cfg.group_id, member = %self.member_id, "JoinGroup");
        self.joined_topics = Some(topics);
        self.heartbeat.stop();
        self.is_leader = false;
        self.phase = Phase::Joining { retry_at: None };
        // The coordinator holds JoinGroup until every member has rejoined, up to the rebalance
        // timeout: give it that plus five seconds, as Java does, rather than the request
        // timeout (which would drop the connection mid-rebalance and resend).
        let rebalance = Duration::from_millis(self.cfg.rebalance_timeout_ms.max(0) as u64);
        let id = ctx.net.send_with_timeout(
            self.target(),
            RequestBody::JoinGroup(body),
            Some(group_version_caps(ctx.net).0),
            true,
            rebalance + Duration::from_secs(5),
            ctx.now,
        );
        self.requests.insert(id, Req::Join);
    }

    fn retry_join(&mut self, now: Instant, backoff: bool) {
        let at = if backoff {
            now + self.cfg.retry_backoff
        } else {
            now
        };
        self.phase = Phase::Joining { retry_at: Some(at) };
    }

    fn send_heartbeat(&mut self, ctx: &mut GroupCtx<'_>) {
        let body = HeartbeatRequest {
            group_id: self.cfg.group_id.clone(),
            generation_id: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.cfg.instance_id.clone(),
            ..Default::default()
        };
        let id = ctx.net.send(
            self.target(),
            RequestBody::Heartbeat(body),
            None,
            true,
            ctx.now,
        );
        self.heartbeat.sent(id, ctx.now);
        self.requests.insert(id, Req::Heartbeat(self.generation));
    }

    /// LeaveGroup, for dynamic members that have a member id (static members leave by their
    /// session timing out, KIP-345, as in Java).
    fn send_leave(&mut self, ctx: &mut GroupCtx<'_>, reason: &'static str) {
        if self.cfg.instance_id.is_some() || self.member_id.is_empty() {
            return;
        }
        tracing::info!(group = %self.cfg.group_id, member = %self.member_id, reason, "LeaveGroup");
        // Before v3 the request names one member; from v3 it is a batch (KIP-345).
        let batch = self
            .coordinator_version(ctx.net, ApiKey::LeaveGroup, group_version_caps(ctx.net).2)
            .is_none_or(|v| v >= 3);
        let body = if batch {
            LeaveGroupRequest {
                group_id: self.cfg.group_id.clone(),
                members: vec![MemberIdentity {
                    member_id: self.member_id.clone(),
                    group_instance_id: None,
                    reason: Some(reason.to_owned()),
                    ..Default::default()
                }],
                ..Default::default()
            }
        } else {
            LeaveGroupRequest {
                group_id: self.cfg.group_id.clone(),
                member_id: self.member_id.clone(),
                ..Default::default()
            }
        };
        let id = ctx.net.send(
            self.target(),
            RequestBody::LeaveGroup(body),
            Some(if batch { MAX_LEAVE_VERSION } else { 2 }),
            true,
            ctx.now,
        );
        self.requests.insert(id, Req::Leave);
    }

    /// Starts a commit and returns its key (callers only start the core's own commits with
    /// offsets to commit: an empty commit finishes at once).
    fn start_commit(
        &mut self,
        op: Option<OpId>,
        kind: CommitKind,
        offsets: Offsets,
        deadline: Option<Instant>,
        ctx: &mut GroupCtx<'_>,
    ) -> u64 {
        self.next_op += 1;
        let key = self.next_op;
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
            },
        );
        key
    }

    fn send_commits(&mut self, ctx: &mut GroupCtx<'_>) {
        let now = ctx.now;
        let due: Vec<u64> = self
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
            let usable = !managed
                || (self.generation_valid() && matches!(self.phase, Phase::Stable | Phase::Idle));
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
                (-1, "")
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
            let body = offsets_commit::commit_request(
                &self.cfg.group_id,
                generation,
                member,
                self.cfg.instance_id.as_deref().filter(|_| managed),
                &sendable,
            );
            let rid = ctx.net.send(
                self.target(),
                RequestBody::OffsetCommit(body),
                Some(MAX_COMMIT_VERSION),
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

    fn finish_commit(&mut self, op: CommitOp, result: Result<(), ConsumerError>, _now: Instant) {
        // Committed only in part: the revoked partitions were left out.
        let result = result.and_then(|()| {
            if !op.left_out.is_empty() {
                Err(revoked_before_sent())
            } else {
                Ok(())
            }
        });
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
    fn auto_commit_acts(&self) -> bool {
        if self.cfg.auto_commit.is_none() || self.closing.is_some() || self.fatal.is_some() {
            return false;
        }
        let member = matches!(self.phase, Phase::Stable) && self.steps.is_empty();
        let standalone = !self.subscribed.is_active();
        member || standalone
    }

    fn maybe_auto_commit(&mut self, ctx: &mut GroupCtx<'_>) {
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

    fn send_fetches(&mut self, ctx: &mut GroupCtx<'_>) {
        let now = ctx.now;
        let due: Vec<u64> = self
            .fetches
            .iter()
            .filter(|(_, f)| f.request.is_none() && f.retry_at.is_none_or(|t| now >= t))
            .map(|(k, _)| *k)
            .collect();
        let stable = self
            .coordinator_version(ctx.net, ApiKey::OffsetFetch, MAX_OFFSET_FETCH_VERSION)
            .is_some_and(|v| v >= 7);
        for key in due {
            if self.fatal.is_some() {
                let f = self.fetches.remove(&key).expect("listed");
                let e = self.fatal.clone().expect("checked");
                self.finish_fetch(f, Err(e), ctx);
                continue;
            }
            let f = self.fetches.get_mut(&key).expect("listed");
            if f.op.is_none() {
                // The group's own lookup: only partitions still waiting.
                f.partitions.retain(|tp| awaiting_committed(ctx.subs, tp));
                if f.partitions.is_empty() {
                    self.fetches.remove(&key);
                    continue;
                }
            }
            let mut body = offsets_commit::fetch_request(&self.cfg.group_id, &f.partitions);
            // require_stable exists from v7 (Kafka 2.5) and cannot be dropped silently.
            body.require_stable = stable;
            let rid = ctx.net.send(
                Target::Coordinator {
                    kind: CoordinatorKind::Group,
                    key: self.cfg.group_id.clone(),
                },
                RequestBody::OffsetFetch(body),
                Some(MAX_OFFSET_FETCH_VERSION),
                true,
                now,
            );
            f.request = Some(rid);
            f.retry_at = None;
            self.requests.insert(rid, Req::Fetch(key));
        }
    }

    fn finish_fetch(&mut self, f: FetchOp, result: CommittedResult, ctx: &mut GroupCtx<'_>) {
        match f.op {
            Some(op) => self
                .events
                .push_back(ConsumerEvent::Committed { op, result }),
            None => match result {
                Ok(found) => {
                    for (tp, committed) in found {
                        if !awaiting_committed(ctx.subs, &tp) {
                            continue; // sought, revoked or reset meanwhile
                        }
                        match committed {
                            Some(o) => {
                                tracing::debug!(partition = %tp, offset = o.offset, "starting from the committed offset");
                                let _ = ctx.subs.seek(&tp, o.offset, o.leader_epoch);
                            }
                            None => self.fall_back_to_reset(&tp, ctx.subs),
                        }
                    }
                }
                Err(e) => {
                    for tp in &f.partitions {
                        if awaiting_committed(ctx.subs, tp) {
                            if let Ok(s) = ctx.subs.get_mut(tp) {
                                s.reset = None;
                                s.error = Some((e.clone(), false));
                            }
                        }
                    }
                }
            },
        }
    }

    fn fall_back_to_reset(&self, tp: &TopicPartition, subs: &mut SubscriptionState) {
        let Ok(s) = subs.get_mut(tp) else { return };
        match self.cfg.reset {
            AutoOffsetReset::None => {
                s.reset = None;
                s.error = Some((
                    ConsumerError::NoOffset {
                        partition: tp.clone(),
                    },
                    false,
                ));
            }
            AutoOffsetReset::Earliest => {
                s.reset = Some(Reset {
                    timestamp: crate::consumer::subscription_state::EARLIEST_TIMESTAMP,
                    in_flight: false,
                    retry_at: None,
                })
            }
            _ => {
                s.reset = Some(Reset {
                    timestamp: crate::consumer::subscription_state::LATEST_TIMESTAMP,
                    in_flight: false,
                    retry_at: None,
                })
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        let late: Vec<u64> = self
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
        let late: Vec<u64> = self
            .fetches
            .iter()
            .filter(|(_, f)| f.request.is_none() && f.deadline.is_some_and(|d| now >= d))
            .map(|(k, _)| *k)
            .collect();
        for key in late {
            let f = self.fetches.remove(&key).expect("listed");
            if let Some(op) = f.op {
                self.events.push_back(ConsumerEvent::Committed {
                    op,
                    result: Err(ConsumerError::Timeout {
                        operation: "committed",
                        after: self.cfg.api_timeout,
                    }),
                });
            }
        }
    }

    /// The earliest deadline of the group's timers.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.close_done {
            return None;
        }
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.heartbeat.next_deadline());
        if let Phase::Joining { retry_at } = self.phase {
            consider(retry_at);
        }
        if self.auto_commit_acts() && self.auto_commit_op.is_none() {
            consider(self.next_auto_commit);
        }
        // Only timers `poll` acts on when due: a deadline reported but skipped would be due
        // forever, a busy loop at one instant.
        if self.subscribed.is_pattern() && !self.pattern_in_flight && self.closing.is_none() {
            consider(self.pattern_refresh_at);
        }
        for c in self.commits.values() {
            if c.request.is_none() {
                consider(c.retry_at);
                consider(c.deadline);
            }
        }
        for f in self.fetches.values() {
            if f.request.is_none() {
                consider(f.retry_at);
                consider(f.deadline);
            }
        }
        consider(self.closing);
        next
    }

    // ---- responses ------------------------------------------------------------------------

    /// Handles the answer to one of the group's requests.
    pub fn handle_response(
        &mut self,
        id: RequestId,
        result: Result<Response, NetError>,
        ctx: &mut GroupCtx<'_>,
    ) {
        let Some(req) = self.requests.remove(&id) else {
            return;
        };
        if self.close_done {
            return;
        }
        match req {
            Req::Join => self.on_join(result, ctx),
            Req::Sync => self.on_sync(result, ctx),
            Req::Heartbeat(generation) => self.on_heartbeat(id, generation, result, ctx),
            Req::Leave => {
                if let Ok(Response {
                    body: ResponseBody::LeaveGroup(r),
                    ..
                }) = &result
                {
                    let code = ErrorCode(r.error_code);
                    if code.is_err() {
                        tracing::debug!(error = %code, "LeaveGroup refused");
                    }
                }
            }
            Req::Commit(op) => self.on_commit(op, result, ctx),
            Req::Fetch(key) => self.on_fetch(key, result, ctx),
            Req::LeaderMetadata => self.on_leader_metadata(result, ctx),
            Req::PatternMetadata => self.on_pattern_metadata(result, ctx),
        }
        self.poll(ctx, false);
    }

    /// Network errors that no retry fixes (FindCoordinator refused, authentication, an API
    /// the broker lacks).
    fn fatal_net_error(&self, e: &NetError) -> Option<ConsumerError> {
        match e {
            NetError::Broker { api, code, .. }
                if *api == ApiKey::FindCoordinator && !code.is_retriable() =>
            {
                Some(ConsumerError::Network(e.clone()))
            }
            NetError::Authentication { .. } | NetError::Unsupported { .. } => {
                Some(ConsumerError::Network(e.clone()))
            }
            _ => None,
        }
    }

    fn coordinator_lost(&mut self, ctx: &mut GroupCtx<'_>, why: &str) {
        tracing::debug!(group = %self.cfg.group_id, why, "coordinator unavailable: looking it up again");
        ctx.net
            .invalidate_coordinator(CoordinatorKind::Group, &self.cfg.group_id, ctx.now);
    }

    fn on_join(&mut self, result: Result<Response, NetError>, ctx: &mut GroupCtx<'_>) {
        if !matches!(self.phase, Phase::Joining { retry_at: None }) {
            return;
        }
        let now = ctx.now;
        let resp: JoinGroupResponse = match result {
            Ok(Response {
                body: ResponseBody::JoinGroup(r),
                ..
            }) => r,
            Ok(_) => return self.retry_join(now, true),
            Err(e) => {
                if let Some(f) = self.fatal_net_error(&e) {
                    return self.set_fatal(f);
                }
                self.coordinator_lost(ctx, "JoinGroup failed");
                return self.retry_join(now, true);
            }
        };
        let code = ErrorCode(resp.error_code);
        match code {
            ErrorCode::NONE => {}
            ErrorCode::MEMBER_ID_REQUIRED => {
                // KIP-394: join again at once with the id the coordinator gave.
                self.member_id = resp.member_id;
                return self.send_join(ctx);
            }
            ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION => {
                self.lose_generation("JoinGroup: the member or generation is unknown", false);
                return;
            }
            ErrorCode::COORDINATOR_NOT_AVAILABLE | ErrorCode::NOT_COORDINATOR => {
                self.coordinator_lost(ctx, code.name());
                return self.retry_join(now, true);
            }
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS | ErrorCode::REBALANCE_IN_PROGRESS => {
                return self.retry_join(now, true)
            }
            ErrorCode::FENCED_INSTANCE_ID => {
                return self.set_fatal(group_error(
                    code,
                    format!(
                        "another consumer joined with group_instance_id {:?}",
                        self.cfg.instance_id.as_deref().unwrap_or("")
                    ),
                ))
            }
            c if c.is_retriable() => return self.retry_join(now, true),
            c => {
                return self.set_fatal(group_error(c, "JoinGroup refused"));
            }
        }
        self.member_id = resp.member_id.clone();
        self.generation = resp.generation_id;
        self.protocol_name = resp.protocol_name.clone();
        self.heartbeat.start(now);
        let leader = resp.leader == resp.member_id;
        tracing::debug!(
            group = %self.cfg.group_id, member = %self.member_id, generation = self.generation,
            leader, protocol = ?self.protocol_name, "joined"
        );
        if leader && !resp.skip_assignment {
            self.is_leader = true;
            self.start_leader_assignment(resp.members, ctx);
        } else {
            // A follower, or a restarted static leader that may skip the assignment (KIP-814).
            self.is_leader = leader;
            self.send_sync(Vec::new(), ctx);
        }
    }

    fn start_leader_assignment(
        &mut self,
        members: Vec<JoinGroupResponseMember>,
        ctx: &mut GroupCtx<'_>,
    ) {
        let mut topics = BTreeSet::new();
        for m in &members {
            match assignor::decode_subscription(&m.metadata) {
                Ok(s) => topics.extend(s.topics),
                Err(e) => {
                    tracing::warn!(member = %m.member_id, error = %e, "undecodable subscription")
                }
            }
        }
        for t in &topics {
            // Kept in the metadata the consumer refreshes, to notice partition changes.
            ctx.net.add_topic_interest(t);
        }
        self.group_topics = topics.clone();
        let body = RequestBody::Metadata(MetadataRequest {
            topics: Some(
                topics
                    .into_iter()
                    .map(|name| MetadataRequestTopic {
                        name: Some(name),
                        ..Default::default()
                    })
                    .collect(),
            ),
            allow_auto_topic_creation: false,
            ..Default::default()
        });
        let id = ctx.net.send(Target::Any, body, None, true, ctx.now);
        self.requests.insert(id, Req::LeaderMetadata);
        self.phase = Phase::Assigning { members };
    }

    fn on_leader_metadata(&mut self, result: Result<Response, NetError>, ctx: &mut GroupCtx<'_>) {
        let members = match std::mem::replace(&mut self.phase, Phase::Syncing) {
            Phase::Assigning { members } => members,
            other => {
                self.phase = other;
                return;
            }
        };
        let view = match result {
            Ok(Response {
                body: ResponseBody::Metadata(m),
                ..
            }) => {
                let mut v = ClusterView::default();
                v.update(&m, true);
                v
            }
            // Without metadata the assignment would be wrong: ask again.
            _ => return self.start_leader_assignment(members, ctx),
        };
        let ppt = partitions_per_topic(&view, &self.group_topics);
        let racks = partition_racks(&view, &ppt);
        let mut group = Vec::new();
        for m in &members {
            if let Ok(subscription) = assignor::decode_subscription(&m.metadata) {
                group.push(GroupMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    subscription,
                });
            }
        }
        let name = self.protocol_name.clone().unwrap_or_default();
        let Some(assignor) = self.assignors.iter_mut().find(|a| a.name() == name) else {
            return self.set_fatal(group_error(
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                format!("the coordinator chose assignor {name:?}, which this member lacks"),
            ));
        };
        let cluster = ClusterMetadata {
            partitions_per_topic: &ppt,
            partition_racks: (!racks.is_empty()).then_some(&racks),
        };
        let assignments = match assignor.assign(&cluster, &group) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(group = %self.cfg.group_id, error = %e, "the assignor failed");
                self.errors.push_back(ConsumerError::IllegalState {
                    detail: format!("assignor {name} failed: {e}"),
                });
                return self.retry_join(ctx.now, true);
            }
        };
        tracing::debug!(group = %self.cfg.group_id, assignor = %name, members = group.len(), "assigned as leader");
        let mut encoded = Vec::new();
        for (member_id, a) in &assignments {
            match assignor::encode_assignment(a, assignor::CONSUMER_PROTOCOL_VERSION) {
                Ok(bytes) => encoded.push(SyncGroupRequestAssignment {
                    member_id: member_id.clone(),
                    assignment: bytes,
                    ..Default::default()
                }),
                Err(e) => {
                    return self.set_fatal(ConsumerError::IllegalState {
                        detail: format!("cannot encode an assignment: {e}"),
                    })
                }
            }
        }
        self.assignment_snapshot = Some(ppt);
        self.send_sync(encoded, ctx);
    }

    fn send_sync(&mut self, assignments: Vec<SyncGroupRequestAssignment>, ctx: &mut GroupCtx<'_>) {
        let body = SyncGroupRequest {
            group_id: self.cfg.group_id.clone(),
            generation_id: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.cfg.instance_id.clone(),
            protocol_type: Some(PROTOCOL_TYPE.to_owned()),
            protocol_name: self.protocol_name.clone(),
            assignments,
            ..Default::default()
        };
        let id = ctx.net.send(
            self.target(),
            RequestBody::SyncGroup(body),
            Some(group_version_caps(ctx.net).1),
            true,
            ctx.now,
        );
        self.requests.insert(id, Req::Sync);
        self.phase = Phase::Syncing;
    }

    fn on_sync(&mut self, result: Result<Response, NetError>, ctx: &mut GroupCtx<'_>) {
        if !matches!(self.phase, Phase::Syncing) {
            return;
        }
        let now = ctx.now;
        let resp: SyncGroupResponse = match result {
            Ok(Response {
                body: ResponseBody::SyncGroup(r),
                ..
            }) => r,
            Ok(_) => return self.retry_join(now, true),
            Err(e) => {
                if let Some(f) = self.fatal_net_error(&e) {
                    return self.set_fatal(f);
                }
                self.coordinator_lost(ctx, "SyncGroup failed");
                return self.retry_join(now, true);
            }
        };
        let code = ErrorCode(resp.error_code);
        match code {
            ErrorCode::NONE => {}
            ErrorCode::REBALANCE_IN_PROGRESS => {
                // The generation moved on while syncing: join it (no new revocation).
                return self.retry_join(now, false);
            }
            ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION => {
                return self
                    .lose_generation("SyncGroup: the member or generation is unknown", false)
            }
            ErrorCode::COORDINATOR_NOT_AVAILABLE | ErrorCode::NOT_COORDINATOR => {
                self.coordinator_lost(ctx, code.name());
                return self.retry_join(now, true);
            }
            ErrorCode::FENCED_INSTANCE_ID => {
                return self.set_fatal(group_error(
                    code,
                    "another consumer joined with this group_instance_id",
                ))
            }
            c if c.is_retriable() => return self.retry_join(now, true),
            c => return self.set_fatal(group_error(c, "SyncGroup refused")),
        }
        if let (Some(name), Some(mine)) = (&resp.protocol_name, &self.protocol_name) {
            if name != mine {
                return self.set_fatal(group_error(
                    ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                    format!("SyncGroup names protocol {name}, JoinGroup named {mine}"),
                ));
            }
        }
        let assignment = match assignor::decode_assignment(&resp.assignment) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable assignment: rejoining");
                return self.retry_join(now, true);
            }
        };
        self.on_assignment(assignment, ctx);
    }

    /// Java's `onJoinComplete`.
    fn on_assignment(&mut self, assignment: Assignment, ctx: &mut GroupCtx<'_>) {
        let now = ctx.now;
        self.phase = Phase::Stable;
        let name = self.protocol_name.clone().unwrap_or_default();
        if let Some(a) = self.assignors.iter_mut().find(|a| a.name() == name) {
            a.on_assignment(&assignment, self.generation);
        }
        let assigned: BTreeSet<TopicPartition> = assignment.partitions.into_iter().collect();
        if let Some(topics) = self.topics_now() {
            if assigned.iter().any(|tp| !topics.contains(&*tp.topic)) {
                // Assigned a topic this member no longer subscribes to: a newer subscription
                // must reach the leader.
                self.request_rejoin("assigned topics outside the subscription");
            }
        }
        let revoked: BTreeSet<TopicPartition> = self.owned.difference(&assigned).cloned().collect();
        let added: BTreeSet<TopicPartition> = assigned.difference(&self.owned).cloned().collect();
        tracing::info!(
            group = %self.cfg.group_id, member = %self.member_id, generation = self.generation,
            assigned = assigned.len(), added = added.len(), revoked = revoked.len(),
            "assignment received"
        );
        if !revoked.is_empty() {
            self.steps
                .push_back(Step::Call(RebalanceKind::Revoked, revoked.clone()));
            self.steps.push_back(Step::Revoke(revoked.clone()));
            if self.protocol == RebalanceProtocol::Cooperative {
                // KIP-429: the partitions given up go to their new owner in the next round.
                self.request_rejoin("partitions were revoked");
            }
        }
        self.steps.push_back(Step::Assign(assigned));
        self.steps
            .push_back(Step::Call(RebalanceKind::Assigned, added));
        if let Some(interval) = self.cfg.auto_commit {
            self.next_auto_commit = Some(now + interval);
        }
        if self.is_leader {
            self.check_leader_snapshot(&ctx.net.cluster().clone());
        }
    }

    fn on_heartbeat(
        &mut self,
        id: RequestId,
        generation: i32,
        result: Result<Response, NetError>,
        ctx: &mut GroupCtx<'_>,
    ) {
        if self.heartbeat.in_flight != Some(id) {
            return;
        }
        let now = ctx.now;
        let code = match result {
            Ok(Response {
                body: ResponseBody::Heartbeat(r),
                ..
            }) => ErrorCode(r.error_code),
            Ok(_) => {
                self.heartbeat.failed(now);
                return;
            }
            Err(e) => {
                if let Some(f) = self.fatal_net_error(&e) {
                    return self.set_fatal(f);
                }
                self.heartbeat.failed(now);
                self.coordinator_lost(ctx, "heartbeat failed");
                return;
            }
        };
        match code {
            ErrorCode::NONE => self.heartbeat.succeeded(now),
            ErrorCode::REBALANCE_IN_PROGRESS => {
                self.heartbeat.succeeded(now);
                if matches!(self.phase, Phase::Stable) {
                    self.request_rejoin("the group is rebalancing");
                }
            }
            ErrorCode::ILLEGAL_GENERATION | ErrorCode::UNKNOWN_MEMBER_ID => {
                self.heartbeat.failed(now);
                if generation == self.generation {
                    let keep = false;
                    self.lose_generation("heartbeat: the member or generation is unknown", keep);
                }
            }
            ErrorCode::FENCED_INSTANCE_ID => {
                self.set_fatal(group_error(
                    code,
                    "another consumer joined with this group_instance_id",
                ));
            }
            ErrorCode::COORDINATOR_NOT_AVAILABLE | ErrorCode::NOT_COORDINATOR => {
                self.heartbeat.failed(now);
                self.coordinator_lost(ctx, code.name());
            }
            c if c.is_retriable() => self.heartbeat.failed(now),
            c => self.set_fatal(group_error(c, "heartbeat refused")),
        }
    }

    fn on_commit(&mut self, id: u64, result: Result<Response, NetError>, ctx: &mut GroupCtx<'_>) {
        let now = ctx.now;
        let Some(op) = self.commits.get_mut(&id) else {
            return;
        };
        op.request = None;
        let outcome = match &result {
            Ok(Response {
                body: ResponseBody::OffsetCommit(r),
                ..
            }) if op.left_out.is_empty() => offsets_commit::commit_outcome(r, &op.offsets),
            Ok(Response {
                body: ResponseBody::OffsetCommit(r),
                ..
            }) => {
                let sent: Offsets = op
                    .offsets
                    .iter()
                    .filter(|(tp, _)| !op.left_out.contains(*tp))
                    .map(|(tp, o)| (tp.clone(), o.clone()))
                    .collect();
                offsets_commit::commit_outcome(r, &sent)
            }
            Ok(_) => Outcome::Retry {
                coordinator: false,
                error: group_error(ErrorCode::UNKNOWN_SERVER_ERROR, "unexpected response"),
            },
            Err(e) => match self.fatal_net_error(e) {
                Some(f) => Outcome::Fail(f),
                None => Outcome::Retry {
                    coordinator: true,
                    error: ConsumerError::Network(e.clone()),
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
                if self.subscribed.is_active() && self.generation_valid() {
                    self.lose_generation("commit: the member or generation is unknown", false);
                }
                Some(Err(e))
            }
            Outcome::Rebalancing(e) => {
                if matches!(self.phase, Phase::Stable) {
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

    fn on_fetch(&mut self, key: u64, result: Result<Response, NetError>, ctx: &mut GroupCtx<'_>) {
        let now = ctx.now;
        let Some(f) = self.fetches.get_mut(&key) else {
            return;
        };
        f.request = None;
        let outcome = match &result {
            Ok(Response {
                body: ResponseBody::OffsetFetch(r),
                ..
            }) => offsets_commit::fetch_outcome(r, &f.partitions),
            Ok(_) => Outcome::Retry {
                coordinator: false,
                error: group_error(ErrorCode::UNKNOWN_SERVER_ERROR, "unexpected response"),
            },
            Err(e) => match self.fatal_net_error(e) {
                Some(f) => Outcome::Fail(f),
                None => Outcome::Retry {
                    coordinator: true,
                    error: ConsumerError::Network(e.clone()),
                },
            },
        };
        match outcome {
            Outcome::Done(found) => {
                let f = self.fetches.remove(&key).expect("present");
                self.finish_fetch(f, Ok(found), ctx);
            }
            Outcome::Retry { coordinator, error } => {
                if coordinator {
                    self.coordinator_lost(ctx, "offset fetch failed");
                }
                let f = self.fetches.get_mut(&key).expect("present");
                if f.deadline
                    .is_some_and(|d| now + self.cfg.retry_backoff >= d)
                {
                    let f = self.fetches.remove(&key).expect("present");
                    self.finish_fetch(f, Err(error), ctx);
                } else {
                    f.retry_at = Some(now + self.cfg.retry_backoff);
                }
            }
            Outcome::ResetGeneration(e)
            | Outcome::Rebalancing(e)
            | Outcome::Fenced(e)
            | Outcome::Fail(e) => {
                let f = self.fetches.remove(&key).expect("present");
                self.finish_fetch(f, Err(e), ctx);
            }
        }
    }

    fn on_pattern_metadata(&mut self, result: Result<Response, NetError>, ctx: &mut GroupCtx<'_>) {
        self.pattern_in_flight = false;
        let Ok(Response {
            body: ResponseBody::Metadata(m),
            ..
        }) = result
        else {
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

    /// A new cluster view: the leader rejoins when the partitions of the group's topics
    /// changed since it assigned (Java's metadata snapshot check).
    pub fn on_metadata(&mut self, view: &Arc<ClusterView>) {
        if self.is_leader && matches!(self.phase, Phase::Stable) {
            self.check_leader_snapshot(view);
        }
    }

    fn check_leader_snapshot(&mut self, view: &ClusterView) {
        let Some(snapshot) = &self.assignment_snapshot else {
            return;
        };
        let changed = self.group_topics.iter().any(|t| match view.topic(t) {
            None => false, // not described yet
            Some(info) if info.error.is_ok() => {
                snapshot.get(t) != Some(&(info.partitions.len() as i32))
            }
            Some(info) if info.error == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
                snapshot.contains_key(t)
            }
            Some(_) => false,
        });
        if changed {
            self.request_rejoin("the partitions of the group's topics changed");
        }
    }

    /// Drops everything at once (the consumer is shutting down without a graceful close).
    pub fn abort(&mut self) {
        self.close_done = true;
        self.heartbeat.stop();
        self.steps.clear();
        self.blocked = None;
        self.pending_call = None;
        self.requests.clear();
        // Every commit started gets its one event, the core's own ones included.
        for (_, op) in std::mem::take(&mut self.commits) {
            self.events.push_back(ConsumerEvent::Commit {
                op: op.op,
                offsets: op.offsets,
                result: Err(ConsumerError::Closed),
            });
        }
        for (_, f) in std::mem::take(&mut self.fetches) {
            if let Some(op) = f.op {
                self.events.push_back(ConsumerEvent::Committed {
                    op,
                    result: Err(ConsumerError::Closed),
                });
            }
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

/// Whether `tp` waits for its committed offset.
fn awaiting_committed(subs: &SubscriptionState, tp: &TopicPartition) -> bool {
    subs.get(tp).is_ok_and(|s| {
        s.position.is_none() && s.reset.is_some_and(|r| r.timestamp == AWAITING_COMMITTED)
    })
}

/// The consumed positions of the assigned partitions that have one.
pub(crate) fn consumed_positions(subs: &SubscriptionState) -> Offsets {
    subs.iter()
        .filter_map(|(tp, s)| {
            let p = s.position?;
            Some((
                tp.clone(),
                OffsetAndMetadata {
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: String::new(),
                },
            ))
        })
        .collect()
}

fn partitions_per_topic(view: &ClusterView, topics: &BTreeSet<String>) -> BTreeMap<String, i32> {
    topics
        .iter()
        .filter_map(|t| {
            let info = view.topic(t)?;
            (info.error.is_ok() && !info.partitions.is_empty())
                .then(|| (t.clone(), info.partitions.len() as i32))
        })
        .collect()
}

/// Racks of each partition's replicas, for rack-aware assignment (KIP-881).
fn partition_racks(
    view: &ClusterView,
    ppt: &BTreeMap<String, i32>,
) -> BTreeMap<TopicPartition, Vec<String>> {
    let mut out = BTreeMap::new();
    if view.brokers.values().all(|b| b.rack.is_none()) {
        return out;
    }
    for t in ppt.keys() {
        let Some(info) = view.topic(t) else { continue };
        for p in &info.partitions {
            let racks: BTreeSet<String> = p
                .replicas
                .iter()
                .filter_map(|r| view.brokers.get(r).and_then(|b| b.rack.clone()))
                .collect();
            if !racks.is_empty() {
                out.insert(
                    TopicPartition::new(t.as_str(), p.partition),
                    racks.into_iter().collect(),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! The state machine against scripted coordinator answers: requests stay queued in a
    //! network client without connections, and the test answers them by request id.

    use super::*;
    use crate::network::NetOptions;
    use crate::protocol::metadata::response::{MetadataResponsePartition, MetadataResponseTopic};
    use crate::protocol::{HeartbeatResponse, MetadataResponse};

    struct T {
        g: GroupCoordinator,
        net: NetworkClient,
        subs: SubscriptionState,
        now: Instant,
    }

    fn tps(ps: &[i32]) -> BTreeSet<TopicPartition> {
        ps.iter().map(|&p| TopicPartition::new("t", p)).collect()
    }

    impl T {
        fn new(tweak: impl FnOnce(&mut ConsumerConfig)) -> T {
            let mut c = ConsumerConfig {
                group_id: Some("g".into()),
                enable_auto_commit: false,
                partition_assignment_strategy: vec![crate::config::AssignmentStrategy::Range],
                ..Default::default()
            };
            tweak(&mut c);
            let assignors = c
                .partition_assignment_strategy
                .iter()
                .map(|s| assignor::built_in(*s))
                .collect();
            let mut t = T {
                g: GroupCoordinator::new(&c, "g".into(), assignors),
                net: NetworkClient::new(NetOptions::new(vec![("b".into(), 9092)])),
                subs: SubscriptionState::new(c.auto_offset_reset),
                now: Instant::now(),
            };
            t.g.set_callbacks(true);
            let mut ctx = GroupCtx {
                net: &mut t.net,
                subs: &mut t.subs,
                now: t.now,
            };
            t.g.subscribe(Subscribed::Topics(["t".to_string()].into()), &mut ctx);
            t
        }

        fn poll(&mut self, in_poll: bool) {
            let mut ctx = GroupCtx {
                net: &mut self.net,
                subs: &mut self.subs,
                now: self.now,
            };
            self.g.poll(&mut ctx, in_poll);
        }

        fn pending(&self, want: fn(&Req) -> bool) -> Option<RequestId> {
            self.g
                .requests
                .iter()
                .rev()
                .find(|(_, r)| want(r))
                .map(|(id, _)| *id)
        }

        fn respond(&mut self, id: RequestId, body: ResponseBody) {
            let mut ctx = GroupCtx {
                net: &mut self.net,
                subs: &mut self.subs,
                now: self.now,
            };
            self.g.handle_response(
                id,
                Ok(Response {
                    node: 1,
                    version: 5,
                    body,
                }),
                &mut ctx,
            );
        }

        fn complete(&mut self) -> RebalanceCall {
            let call = self
                .g
                .pending_call()
                .cloned()
                .expect("a callback is pending");
            let mut ctx = GroupCtx {
                net: &mut self.net,
                subs: &mut self.subs,
                now: self.now,
            };
            self.g
                .complete_call(call.seq, RebalanceOutcome::default(), &mut ctx);
            call
        }

        fn join_response(&mut self, code: ErrorCode, member: &str, leader: &str) {
            let id = self
                .pending(|r| matches!(r, Req::Join))
                .expect("JoinGroup sent");
            let me = assignor::encode_subscription(
                &Subscription {
                    topics: vec!["t".into()],
                    ..Default::default()
                },
                3,
            )
            .unwrap();
            self.respond(
                id,
                ResponseBody::JoinGroup(JoinGroupResponse {
                    error_code: code.0,
                    generation_id: 1,
                    protocol_type: Some("consumer".into()),
                    protocol_name: Some("range".into()),
                    leader: leader.into(),
                    member_id: member.into(),
                    members: if leader == member {
                        vec![JoinGroupResponseMember {
                            member_id: member.into(),
                            metadata: me,
                            ..Default::default()
                        }]
                    } else {
                        Vec::new()
                    },
                    ..Default::default()
                }),
            );
        }

        fn sync_response(&mut self, partitions: &[i32]) {
            let id = self
                .pending(|r| matches!(r, Req::Sync))
                .expect("SyncGroup sent");
            let a = assignor::encode_assignment(
                &Assignment {
                    partitions: tps(partitions).into_iter().collect(),
                    user_data: None,
                },
                3,
            )
            .unwrap();
            self.respond(
                id,
                ResponseBody::SyncGroup(SyncGroupResponse {
                    protocol_type: Some("consumer".into()),
                    protocol_name: Some("range".into()),
                    assignment: a,
                    ..Default::default()
                }),
            );
        }

        fn heartbeat_response(&mut self, code: ErrorCode) {
            self.now += Duration::from_secs(3);
            self.poll(true);
            let id = self
                .pending(|r| matches!(r, Req::Heartbeat(_)))
                .expect("heartbeat sent");
            self.respond(
                id,
                ResponseBody::Heartbeat(HeartbeatResponse {
                    error_code: code.0,
                    ..Default::default()
                }),
            );
        }

        /// Joins as a follower and gets `partitions`.
        fn join_as_follower(&mut self, partitions: &[i32]) {
            self.poll(true);
            self.join_response(ErrorCode::MEMBER_ID_REQUIRED, "m-1", "");
            assert_eq!(self.g.member_id, "m-1");
            self.join_response(ErrorCode::NONE, "m-1", "leader");
            assert_eq!(self.g.state(), MemberState::Syncing);
            self.sync_response(partitions);
            assert_eq!(self.g.state(), MemberState::Stable);
            let call = self.complete();
            assert_eq!(call.kind, RebalanceKind::Assigned);
            assert_eq!(call.partitions, tps(partitions));
        }
    }

    #[test]
    fn no_join_before_the_first_poll() {
        let mut t = T::new(|_| {});
        t.poll(false);
        assert!(t.pending(|r| matches!(r, Req::Join)).is_none());
        t.poll(true);
        assert!(t.pending(|r| matches!(r, Req::Join)).is_some());
    }

    #[test]
    fn a_follower_joins_with_the_member_id_round_trip_and_waits_for_committed_offsets() {
        let mut t = T::new(|_| {});
        t.join_as_follower(&[0, 2]);
        assert_eq!(t.subs.assignment(), tps(&[0, 2]));
        assert_eq!(t.g.metadata().generation_id, 1);
        // New partitions wait for OffsetFetch: neither reset nor fetched meanwhile.
        for tp in tps(&[0, 2]) {
            assert!(awaiting_committed(&t.subs, &tp));
        }
        assert!(t.subs.resets_due(t.now).is_empty());
        assert!(t.pending(|r| matches!(r, Req::Fetch(_))).is_some());
        assert!(!t.g.is_leader());
    }

    #[test]
    fn the_leader_fetches_metadata_then_assigns() {
        let mut t = T::new(|_| {});
        t.poll(true);
        t.join_response(ErrorCode::NONE, "m-1", "m-1");
        assert!(t.g.is_leader());
        let md = t
            .pending(|r| matches!(r, Req::LeaderMetadata))
            .expect("leader metadata");
        t.respond(
            md,
            ResponseBody::Metadata(MetadataResponse {
                topics: vec![MetadataResponseTopic {
                    name: Some("t".into()),
                    partitions: (0..3)
                        .map(|p| MetadataResponsePartition {
                            partition_index: p,
                            leader_id: 1,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        );
        assert_eq!(t.g.state(), MemberState::Syncing);
        assert_eq!(t.g.assignment_snapshot.as_ref().unwrap().get("t"), Some(&3));
        t.sync_response(&[0, 1, 2]);
        assert_eq!(t.complete().partitions, tps(&[0, 1, 2]));
    }

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

    #[test]
    fn unknown_member_loses_the_partitions_and_fencing_is_fatal() {
        let mut t = T::new(|_| {});
        t.join_as_follower(&[0]);
        t.heartbeat_response(ErrorCode::UNKNOWN_MEMBER_ID);
        assert_eq!(t.g.state(), MemberState::Unjoined);
        t.poll(true);
        let call = t.complete();
        assert_eq!(call.kind, RebalanceKind::Lost);
        assert!(t.g.member_id.is_empty(), "a new member id next time");
        assert!(t.pending(|r| matches!(r, Req::Join)).is_some());

        let mut t = T::new(|c| c.group_instance_id = Some("i-1".into()));
        t.join_as_follower(&[0]);
        t.heartbeat_response(ErrorCode::FENCED_INSTANCE_ID);
        let e = t.g.take_error().unwrap();
        assert!(matches!(
            e,
            ConsumerError::Group {
                error: ErrorCode::FENCED_INSTANCE_ID,
                ..
            }
        ));
        assert_eq!(t.g.take_error(), Some(e), "fatal errors stick");
        assert_eq!(t.complete().kind, RebalanceKind::Lost);
        t.poll(true);
        assert!(t.pending(|r| matches!(r, Req::Join)).is_none(), "no rejoin");
    }

    #[test]
    fn coordinator_errors_retry_after_the_backoff() {
        let mut t = T::new(|_| {});
        t.poll(true);
        t.join_response(ErrorCode::NOT_COORDINATOR, "", "");
        assert!(t.pending(|r| matches!(r, Req::Join)).is_none());
        assert!(t.g.poll_timeout().is_some());
        t.now += Duration::from_secs(1);
        t.poll(true);
        assert!(t.pending(|r| matches!(r, Req::Join)).is_some());
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

    fn commit_request_of(t: &T, id: RequestId) -> u64 {
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

    #[test]
    fn a_poll_timeout_leaves_and_the_next_poll_rejoins() {
        let mut t = T::new(|c| c.max_poll_interval_ms = 10_000);
        t.join_as_follower(&[0]);
        t.now += Duration::from_secs(11);
        t.poll(false);
        assert!(
            t.pending(|r| matches!(r, Req::Leave)).is_some(),
            "LeaveGroup"
        );
        assert_eq!(t.g.state(), MemberState::Unjoined);
        t.now += Duration::from_secs(60);
        t.poll(false);
        assert!(
            t.pending(|r| matches!(r, Req::Join)).is_none(),
            "not before a poll"
        );
        t.poll(true);
        assert_eq!(t.complete().kind, RebalanceKind::Lost);
        assert!(t.pending(|r| matches!(r, Req::Join)).is_some());
    }
}
