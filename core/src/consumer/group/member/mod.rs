//! [`GroupMember`]: the member side of the classic group protocol (Java's
//! `AbstractCoordinator` + `ConsumerCoordinator`), sans-IO. The broker that runs the group is
//! the *coordinator*; this is the consumer's end of it.
//!
//! # Files, one per protocol exchange
//! - this file: the member's state, the application's calls, `poll`, `poll_timeout`, the
//!   routing of answers, and what every exchange shares (losing the generation, fatal errors);
//! - [`join_sync`]: JoinGroup, the leader's metadata and assignment, SyncGroup, and the
//!   leader's check that the group's partitions did not change;
//! - [`heartbeat`]: the member's timers, Heartbeat, LeaveGroup and the poll-interval leave;
//! - [`offset_commit`]: OffsetCommit (the application's commits, the auto-commit and the
//!   commits of rebalance steps);
//! - [`offset_fetch`]: OffsetFetch, the committed offsets (not record `Fetch`, which the
//!   consumer's fetcher sends): the application's `committed` and where newly assigned
//!   partitions start;
//! - [`rebalance`]: the rebalance steps (callbacks, revocation, assignment, join, leave) and
//!   the pattern subscription's refresh;
//! - [`consumer_protocol`]: KIP-848's consumer protocol, which replaces `join_sync` and
//!   `heartbeat` when `group_protocol` is `consumer` and shares everything else.
//!
//! # Shape
//! - `state` is where the member is in the protocol, the [`MemberState`] the application
//!   also sees: `Unjoined` (not a member of a generation), `Joining`, `Syncing` (SyncGroup
//!   out) and `Stable`. While joining, `join` says what for: the JoinGroup answer, the instant
//!   it is resent, or (the leader) metadata for the group's topics before assigning.
//! - Identities are newtypes: [`Generation`] (-1 outside one, as on the wire), and the
//!   member's own keys for commits ([`CommitKey`]) and committed-offset lookups
//!   ([`OffsetFetchKey`]), which its requests carry in `requests`.
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
//! The member changes the assignment through the [`SubscriptionState`] it is given; newly
//! assigned partitions wait for their committed offsets (OffsetFetch) before they fetch or
//! fall back to `auto_offset_reset`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::listener::{GroupMetadata, RebalanceCall, RebalanceKind};
use super::subscription::Subscribed;
use crate::config::{AutoOffsetReset, ConsumerConfig, GroupProtocol};
use crate::consumer::assignor::{PartitionAssignor, RebalanceProtocol};
use crate::consumer::error::ConsumerError;
use crate::consumer::record::TopicPartition;
use crate::consumer::subscription_state::SubscriptionState;
use crate::consumer::ConsumerEvent;
use crate::deadline::Deadline;
use crate::network::{CoordinatorKind, NetError, NetworkClient, RequestId, Response, Target};
use crate::protocol::join_group::response::JoinGroupResponseMember;
use crate::protocol::{ApiKey, ErrorCode};

use consumer_protocol::ConsumerProtocol;
use heartbeat::Heartbeat;
use join_sync::common_protocol;
use offset_commit::{CommitOp, OffsetAndMetadata, Offsets};
use offset_fetch::OffsetFetchOp;
use rebalance::{Blocker, Step};

pub(crate) mod consumer_protocol;
pub(crate) mod heartbeat;
pub(crate) mod join_sync;
pub(crate) mod offset_commit;
pub(crate) mod offset_fetch;
pub(crate) mod rebalance;
#[cfg(test)]
mod test_support;

/// Where the member is in the group protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Not a member of a generation (not joined yet, left, or lost its generation).
    Unjoined,
    /// Joining: JoinGroup in flight, or the leader computing the assignment.
    Joining,
    /// SyncGroup in flight.
    Syncing,
    /// The consumer protocol (KIP-848) only: the member moves towards the coordinator's
    /// target assignment (revocations, then new partitions), then reports it.
    Reconciling,
    /// A member of the current generation (with the consumer protocol: it owns its target
    /// assignment).
    Stable,
}

/// What a [`MemberState::Joining`] member waits for.
#[derive(Debug)]
enum JoinWait {
    /// JoinGroup is in flight.
    Sent,
    /// JoinGroup goes out again at this instant (after a retriable error or a backoff).
    RetryAt(Instant),
    /// The leader waits for metadata of every member's topics before assigning.
    Assigning(Vec<JoinGroupResponseMember>),
}

/// A generation of the group (JoinGroup's `generation_id`); [`Generation::NONE`] outside one,
/// as the protocol spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Generation(pub i32);

impl Generation {
    /// No generation: not joined, or the generation was lost (-1 on the wire).
    pub const NONE: Generation = Generation(-1);

    /// Whether this names a generation (the coordinator numbers them from 0).
    pub fn is_some(self) -> bool {
        self.0 >= 0
    }
}

impl std::fmt::Display for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The member's own key for one commit: unique, unlike the application's ops, which ride
/// along and may repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct CommitKey(u64);

/// The member's own key for one committed-offsets lookup (OffsetFetch), unique as
/// [`CommitKey`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct OffsetFetchKey(u64);

impl CommitKey {
    /// The key after this one.
    fn next(self) -> Self {
        CommitKey(self.0 + 1)
    }
}

impl OffsetFetchKey {
    /// The key after this one.
    fn next(self) -> Self {
        OffsetFetchKey(self.0 + 1)
    }
}

#[derive(Debug, Clone)]
enum Req {
    Join,
    Sync,
    /// A heartbeat on behalf of this generation (an answer about an older one is ignored).
    Heartbeat(Generation),
    Leave,
    Commit(CommitKey),
    OffsetFetch(OffsetFetchKey),
    LeaderMetadata,
    PatternMetadata,
    /// A ConsumerGroupHeartbeat (the consumer protocol; its leave heartbeat is `Leave`).
    CgHeartbeat,
    /// Metadata for topic ids of a target assignment (the consumer protocol).
    AssignmentMetadata,
}

/// What the member works on: the consumer's network layer and assignment.
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
pub(crate) struct GroupMember {
    cfg: Settings,
    assignors: Vec<Box<dyn PartitionAssignor>>,
    protocol: RebalanceProtocol,
    pub(crate) subscribed: Subscribed,
    /// The topics of the last JoinGroup: a different subscription means a rejoin.
    joined_topics: Option<BTreeSet<String>>,
    member_id: String,
    generation: Generation,
    protocol_name: Option<String>,
    is_leader: bool,
    /// Where the member is; the one state the application also sees (`group_state`).
    state: MemberState,
    /// What the join waits for: `Some` exactly while `state` is `Joining` (set through
    /// [`GroupMember::enter_joining`] and cleared by [`GroupMember::enter`]).
    join: Option<JoinWait>,
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
    commits: BTreeMap<CommitKey, CommitOp>,
    /// The last commit key handed out.
    last_commit: CommitKey,
    /// The `rebalance` span, from the first JoinGroup of a rebalance until the assignment.
    rebalance_span: tracing::Span,
    /// Committed-offsets lookups (OffsetFetch) in progress by key.
    offset_fetches: BTreeMap<OffsetFetchKey, OffsetFetchOp>,
    /// The last lookup key handed out.
    last_offset_fetch: OffsetFetchKey,
    requests: BTreeMap<RequestId, Req>,
    next_auto_commit: Option<Instant>,
    /// The key of the periodic auto-commit in progress.
    auto_commit_op: Option<CommitKey>,
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
    /// The consumer protocol's state (KIP-848); `None` for the classic protocol.
    cp: Option<Box<ConsumerProtocol>>,
}

/// How a commit or committed-offsets answer is handled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome<T> {
    Done(T),
    /// Retriable: try again after the backoff; `coordinator` when the coordinator moved.
    Retry {
        coordinator: bool,
        error: ConsumerError,
    },
    /// The member's generation is gone (UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION): reset it,
    /// lose the partitions and rejoin.
    ResetGeneration(ConsumerError),
    /// The group is rebalancing: rejoin, the commit fails.
    Rebalancing(ConsumerError),
    /// Fenced static member: fatal for the consumer.
    Fenced(ConsumerError),
    Fail(ConsumerError),
}

fn ms_i32(ms: u32) -> i32 {
    i32::try_from(ms).unwrap_or(i32::MAX)
}

pub(crate) fn group_error(code: ErrorCode, detail: impl Into<String>) -> ConsumerError {
    ConsumerError::Group {
        error: code,
        detail: detail.into(),
    }
}

impl GroupMember {
    /// A member of `config.group_id` (which must be set); `assignors` in preference order
    /// (from `partition_assignment_strategy`).
    pub fn new(
        config: &ConsumerConfig,
        group_id: String,
        assignors: Vec<Box<dyn PartitionAssignor>>,
    ) -> Self {
        let rack = Some(config.common.client_rack.clone()).filter(|r| !r.is_empty());
        let cp = (config.group_protocol == GroupProtocol::Consumer)
            .then(|| Box::new(ConsumerProtocol::new(config)));
        // The consumer protocol's reconciliation is incremental, as cooperative rebalancing.
        let protocol = if cp.is_some() {
            RebalanceProtocol::Cooperative
        } else {
            common_protocol(&assignors)
        };
        GroupMember {
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
            generation: Generation::NONE,
            protocol_name: None,
            is_leader: false,
            state: MemberState::Unjoined,
            join: None,
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
            last_commit: CommitKey::default(),
            rebalance_span: tracing::Span::none(),
            offset_fetches: BTreeMap::new(),
            last_offset_fetch: OffsetFetchKey::default(),
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
            cp,
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

    /// The rebalance protocol in use.
    pub fn protocol(&self) -> RebalanceProtocol {
        self.protocol
    }

    /// Where the member is.
    pub fn state(&self) -> MemberState {
        self.state
    }

    /// The membership.
    pub fn metadata(&self) -> GroupMetadata {
        GroupMetadata {
            group_id: self.cfg.group_id.clone(),
            generation_id: self.generation.0,
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
        self.generation.is_some() && !self.member_id.is_empty()
    }

    /// Moves to `state`, which is not `Joining` (that is [`enter_joining`](Self::enter_joining)).
    fn enter(&mut self, state: MemberState) {
        self.state = state;
        self.join = None;
    }

    /// Moves to `Joining`, waiting for `wait`.
    fn enter_joining(&mut self, wait: JoinWait) {
        self.state = MemberState::Joining;
        self.join = Some(wait);
    }

    fn topics_now(&self) -> Option<BTreeSet<String>> {
        self.subscribed.topics()
    }

    /// Subscribes to `topics` (replacing any subscription); an empty set unsubscribes.
    pub fn subscribe(&mut self, sub: Subscribed, ctx: &mut GroupCtx<'_>) {
        if let Subscribed::Topics(t) = &sub {
            for topic in t {
                ctx.net.add_topic_interest(topic);
            }
        }
        let was_active = self.subscribed.is_active();
        self.subscribed = sub;
        if self.subscribed.is_pattern() && self.cp.is_none() {
            self.pattern_refresh_at = Some(ctx.now);
        }
        if !was_active {
            self.request_rejoin("subscribed");
        } else if let Some(cp) = self.cp.as_deref_mut() {
            // The coordinator hears of the change with the next heartbeat: send it now.
            cp.next_due = Some(ctx.now);
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
        self.generation = Generation::NONE;
        if !keep_member {
            self.member_id.clear();
        }
        self.is_leader = false;
        self.heartbeat.stop();
        self.enter(MemberState::Unjoined);
        self.request_rejoin(reason);
    }

    fn set_fatal(&mut self, error: ConsumerError) {
        tracing::error!(group = %self.cfg.group_id, %error, "fatal group error");
        self.fatal = Some(error);
        self.heartbeat.stop();
        if let Some(cp) = self.cp.as_deref_mut() {
            cp.in_flight = None;
            cp.next_due = None;
        }
        self.enter(MemberState::Unjoined);
        self.generation = Generation::NONE;
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
        if self.cp.is_some() {
            self.cp_poll(ctx, in_poll);
        } else {
            self.poll_classic(ctx, in_poll);
        }
        self.maybe_auto_commit(ctx);
        self.send_commits(ctx);
        self.send_offset_fetches(ctx);
        self.expire_commits(now);
        self.expire_offset_fetches(now);
        if let Some(deadline) = self.closing {
            if now >= deadline && !self.close_done {
                tracing::warn!(group = %self.cfg.group_id, "close timed out before the group steps finished");
                self.close_done = true;
            }
        }
    }

    /// The classic protocol's part of `poll`: the session and poll-interval timers, the
    /// pattern refresh, joining, the rebalance steps and heartbeats.
    fn poll_classic(&mut self, ctx: &mut GroupCtx<'_>, in_poll: bool) {
        let now = ctx.now;
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
        if let Some(JoinWait::RetryAt(t)) = self.join {
            if now >= t {
                self.send_join(ctx);
            }
        }
        if self.heartbeat.is_due(now) && self.generation_valid() {
            self.send_heartbeat(ctx);
        }
    }

    /// The earliest deadline of the group's timers.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.close_done {
            return None;
        }
        let mut next = Deadline::NONE;
        next.fold(self.heartbeat.next_deadline());
        if let Some(JoinWait::RetryAt(t)) = self.join {
            next.fold(t);
        }
        if self.auto_commit_acts() && self.auto_commit_op.is_none() {
            next.fold(self.next_auto_commit);
        }
        // Only timers `poll` acts on when due: a deadline reported but skipped would be due
        // forever, a busy loop at one instant.
        if self.subscribed.is_pattern() && !self.pattern_in_flight && self.closing.is_none() {
            next.fold(self.pattern_refresh_at);
        }
        next.extend(self.cp_deadlines());
        // Commits and lookups wait for a retry or their deadline only while not in flight.
        let commits = self.commits.values().filter(|c| c.request.is_none());
        next.extend(commits.flat_map(|c| [c.retry_at, c.deadline]));
        let lookups = self.offset_fetches.values().filter(|f| f.request.is_none());
        next.extend(lookups.flat_map(|f| [f.retry_at, f.deadline]));
        next.fold(self.closing);
        next.earliest()
    }

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
            Req::Leave if self.cp.is_some() => self.cp_on_leave(result),
            Req::Leave => self.on_leave(result),
            Req::CgHeartbeat => self.cp_on_heartbeat(id, result, ctx),
            Req::AssignmentMetadata => self.cp_on_metadata(result, ctx),
            Req::Commit(op) => self.on_commit(op, result, ctx),
            Req::OffsetFetch(key) => self.on_offset_fetch(key, result, ctx),
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
            // A broker before 0.9 (no group membership): say what to do instead.
            NetError::Unsupported {
                api: api @ (ApiKey::JoinGroup | ApiKey::SyncGroup | ApiKey::Heartbeat),
                broker,
                detail,
            } => Some(ConsumerError::Network(NetError::Unsupported {
                api: *api,
                broker: broker.clone(),
                detail: format!(
                    "{detail}: subscribe() needs consumer groups (Kafka 0.9 or newer); use \
                     assign() on this broker"
                ),
            })),
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
        for (_, f) in std::mem::take(&mut self.offset_fetches) {
            if let Some(op) = f.op {
                self.events.push_back(ConsumerEvent::Committed {
                    op,
                    result: Err(ConsumerError::Closed),
                });
            }
        }
    }
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
