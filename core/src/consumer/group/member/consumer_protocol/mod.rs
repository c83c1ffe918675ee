//! KIP-848's consumer group protocol, the member side (Java's `ConsumerMembershipManager` and
//! `ConsumerHeartbeatRequestManager`): one request, ConsumerGroupHeartbeat, carries the
//! membership; the coordinator computes every member's target assignment and hands it out
//! by topic id; the member reconciles towards it and reports what it owns.
//!
//! The same [`GroupMember`] serves both protocols: this module replaces JoinGroup, SyncGroup,
//! Heartbeat and LeaveGroup (the `join_sync` and `heartbeat` files of the classic protocol),
//! and shares with it the rebalance steps (listener callbacks, revocation, assignment, the
//! auto-commit before a revocation), the offset commits (sent at OffsetCommit v9 with the
//! member epoch) and the committed-offset lookups.
//!
//! # The member epoch state machine
//! - *Unjoined* ([`MemberState::Unjoined`]): not in the group. A subscription (and the
//!   application's first poll, as Java joins inside `poll`) queues a join.
//! - *Joining* ([`MemberState::Joining`]): heartbeats go out with epoch 0 and every field
//!   (a *full* heartbeat) until the coordinator answers with an epoch and an assignment.
//! - *Reconciling* ([`MemberState::Reconciling`]): the target assignment differs from what the
//!   member owns. The partitions of the target are resolved from topic ids to names (an
//!   unknown id asks for metadata first), then the steps run in order: the auto-commit (when
//!   partitions are revoked), `on_partitions_revoked`, the revocation, the new assignment,
//!   `on_partitions_assigned`, and the acknowledgement: the next heartbeat, sent at once,
//!   reports the new assignment. Revoking before assigning, and the coordinator handing a
//!   partition to another member only after its owner reported it gone, keep every partition
//!   with one owner at a time.
//! - *Stable* ([`MemberState::Stable`]): the member owns its target assignment. Heartbeats go
//!   out every `heartbeat_interval_ms` the coordinator sets; after the first successful one
//!   they are *partial*: fields that did not change since the last one sent are null (the
//!   subscription, the server assignor, the rebalance timeout, the owned partitions), as
//!   Java sends them. Any failed heartbeat makes the next one full again.
//! - *Fenced* (FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID): the coordinator removed the member.
//!   Its partitions are lost (`on_partitions_lost`, no commit), and it rejoins with epoch 0
//!   and the same member id.
//! - *Leaving*: on unsubscribe and close (after the revocation callbacks and, on close, the
//!   auto-commit) a heartbeat with epoch -1 (-2 for a static member, which keeps its
//!   assignment for a restart within the session timeout) leaves the group. A member that
//!   does not poll within `max_poll_interval_ms` leaves too, loses its partitions and rejoins
//!   on its next poll.
//!
//! The member id is the client's (KIP-1082, ConsumerGroupHeartbeat v1): a random UUID drawn
//! from the driver's entropy source, kept for the consumer's lifetime. A v0 coordinator names
//! the member itself: the member then joins with an empty id and adopts the one answered.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::rebalance::Step;
use super::{Generation, GroupCtx, GroupMember, MemberState};
use crate::codec::Uuid;
use crate::config::ConsumerConfig;
use crate::consumer::group::listener::RebalanceKind;
use crate::network::{Entropy, Rng};

pub(crate) mod heartbeat;
pub(crate) mod reconcile;

/// The epoch a dynamic member leaves the group with.
pub(crate) const LEAVE_EPOCH: i32 = -1;
/// The epoch a static member leaves with: the coordinator keeps its assignment for a
/// restarted instance with the same `group_instance_id`.
pub(crate) const LEAVE_STATIC_EPOCH: i32 = -2;

/// Partitions by topic id, as ConsumerGroupHeartbeat carries them.
pub(crate) type IdAssignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// What the member subscribes to, as the heartbeat sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WireSubscription {
    /// SubscribedTopicNames, sorted.
    Names(Vec<String>),
    /// SubscribedTopicRegex: the application's pattern, passed through (the coordinator
    /// evaluates it, with RE2/J syntax).
    Regex(String),
}

/// The fields of the last heartbeat sent (Java's `HeartbeatState.SentFields`): a field equal
/// to what was sent goes out as null. `None` everywhere after a join or a failure: the next
/// heartbeat is full.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct SentFields {
    pub rebalance_timeout_ms: Option<i32>,
    pub subscription: Option<WireSubscription>,
    pub server_assignor: Option<Option<String>>,
    pub rack_sent: bool,
    pub partitions: Option<IdAssignment>,
}

/// The consumer protocol's part of the member's state (see the [module docs](self)).
pub(crate) struct ConsumerProtocol {
    remote_assignor: Option<String>,
    rebalance_timeout_ms: i32,
    retry_backoff: Duration,
    entropy: Option<Arc<dyn Entropy>>,
    /// The epoch the coordinator answered last (0 before joining).
    pub(crate) epoch: i32,
    /// Whether a v0 coordinator named this member (the id is then the coordinator's).
    pub(crate) id_from_coordinator: bool,
    /// The heartbeat interval the coordinator asked for.
    pub(crate) interval: Duration,
    pub(crate) next_due: Option<Instant>,
    pub(crate) in_flight: Option<crate::network::RequestId>,
    pub(crate) sent: SentFields,
    /// The latest target assignment from the coordinator.
    pub(crate) target: Option<IdAssignment>,
    /// The part of the target the reconciliation underway applies.
    pub(crate) reconciling: Option<IdAssignment>,
    /// The assignment of the last completed reconciliation: what heartbeats report.
    pub(crate) acked: IdAssignment,
    /// Topic names by id, learned from metadata.
    pub(crate) names: BTreeMap<Uuid, String>,
    pub(crate) metadata_in_flight: bool,
    /// When metadata for unknown topic ids is asked for (again).
    pub(crate) metadata_at: Option<Instant>,
}

impl std::fmt::Debug for ConsumerProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerProtocol")
            .field("epoch", &self.epoch)
            .field("target", &self.target)
            .field("acked", &self.acked)
            .finish_non_exhaustive()
    }
}

impl ConsumerProtocol {
    pub(crate) fn new(config: &ConsumerConfig) -> Self {
        ConsumerProtocol {
            remote_assignor: config.group_remote_assignor.clone(),
            rebalance_timeout_ms: i32::try_from(config.max_poll_interval_ms).unwrap_or(i32::MAX),
            retry_backoff: Duration::from_millis(config.common.retry_backoff_ms),
            entropy: None,
            epoch: 0,
            id_from_coordinator: false,
            // Until the coordinator says otherwise (its answer to the join carries it).
            interval: Duration::from_millis(u64::from(config.heartbeat_interval_ms)),
            next_due: None,
            in_flight: None,
            sent: SentFields::default(),
            target: None,
            reconciling: None,
            acked: IdAssignment::new(),
            names: BTreeMap::new(),
            metadata_in_flight: false,
            metadata_at: None,
        }
    }

    /// Forgets the membership: epoch, target, what was reported and sent.
    fn reset(&mut self) {
        self.epoch = 0;
        self.next_due = None;
        self.in_flight = None;
        self.sent = SentFields::default();
        self.target = None;
        self.reconciling = None;
        self.acked.clear();
    }
}

/// A member id as Java's `Uuid.randomUuid()` makes one: 16 random bytes with the version-4
/// bits, printed as URL-safe base64, never the zero id or one that starts with '-'.
pub(crate) fn new_member_id(entropy: Option<&Arc<dyn Entropy>>, rng: &mut Rng) -> String {
    loop {
        let mut b = [0u8; 16];
        match entropy {
            Some(e) => e.fill(&mut b),
            // Tests without a driver: the seeded generator (a member id is no secret).
            None => {
                b[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
                b[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
            }
        }
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let id = Uuid(b);
        let text = id.to_string();
        if id != Uuid::ZERO && !text.starts_with('-') {
            return text;
        }
    }
}

impl GroupMember {
    /// The consumer protocol state; only called on members that speak it.
    pub(super) fn cp(&mut self) -> &mut ConsumerProtocol {
        self.cp.as_deref_mut().expect("a consumer protocol member")
    }

    /// Hands the member the driver's entropy source, for its member id.
    pub fn set_entropy(&mut self, entropy: Option<Arc<dyn Entropy>>) {
        if let Some(cp) = self.cp.as_deref_mut() {
            cp.entropy = entropy;
        }
    }

    /// The consumer protocol's part of `poll`: leaving on an expired poll interval, joining,
    /// the rebalance steps, reconciliation and heartbeats.
    pub(in crate::consumer::group::member) fn cp_poll(
        &mut self,
        ctx: &mut GroupCtx<'_>,
        in_poll: bool,
    ) {
        let now = ctx.now;
        if !in_poll && self.heartbeat.poll_expired(now) {
            self.cp_on_poll_timeout(ctx);
        }
        self.cp_maybe_start_join();
        self.run_steps(ctx);
        if self.cp_maybe_reconcile(ctx) {
            self.run_steps(ctx);
        }
        self.cp_maybe_request_metadata(ctx);
        if self.cp_heartbeat_due(now) {
            self.cp_send_heartbeat(ctx);
        }
    }

    /// The consumer protocol's deadlines.
    pub(in crate::consumer::group::member) fn cp_deadlines(&self) -> [Option<Instant>; 2] {
        let Some(cp) = self.cp.as_deref() else {
            return [None, None];
        };
        let heartbeat = (self.state != MemberState::Unjoined && cp.in_flight.is_none())
            .then_some(cp.next_due)
            .flatten();
        let metadata = (!cp.metadata_in_flight).then_some(cp.metadata_at).flatten();
        [heartbeat, metadata]
    }

    fn cp_maybe_start_join(&mut self) {
        if !self.rejoin_needed
            || self.fatal.is_some()
            || self.closing.is_some()
            || !self.subscribed.is_active()
            || !self.heartbeat.has_polled()
            || !self.steps.is_empty()
            || self.blocked.is_some()
            || self.state != MemberState::Unjoined
        {
            return;
        }
        self.rejoin_needed = false;
        self.steps.push_back(Step::Join);
    }

    /// The join step: heartbeats with epoch 0 and every field, from now on.
    pub(in crate::consumer::group::member) fn cp_start_join(&mut self, ctx: &mut GroupCtx<'_>) {
        if self.member_id.is_empty() {
            let entropy = self.cp().entropy.clone();
            self.member_id = new_member_id(entropy.as_ref(), ctx.net.rng());
        }
        tracing::info!(group = %self.cfg.group_id, member = %self.member_id, "joining (consumer protocol)");
        let now = ctx.now;
        let cp = self.cp();
        cp.reset();
        cp.next_due = Some(now);
        self.generation = Generation::NONE;
        self.enter_joining_cp();
    }

    fn enter_joining_cp(&mut self) {
        self.state = MemberState::Joining;
        self.join = None;
    }

    /// The member is out of the group without having left (fenced, or it stopped polling):
    /// its partitions are lost (callback first, no commit) and it rejoins when it can.
    pub(in crate::consumer::group::member) fn cp_lose_membership(&mut self, reason: &'static str) {
        tracing::warn!(group = %self.cfg.group_id, member = %self.member_id, reason, "out of the group: partitions lost, rejoining");
        self.cp().reset();
        self.generation = Generation::NONE;
        self.enter(MemberState::Unjoined);
        // What a reconciliation or a join had queued is moot; a leave or a close still runs.
        self.steps
            .retain(|s| matches!(s, Step::Leave(_) | Step::FinishClose));
        if !self.owned.is_empty() {
            let owned = self.owned.clone();
            self.steps.push_front(Step::Revoke(owned.clone()));
            self.steps
                .push_front(Step::Call(RebalanceKind::Lost, owned));
        }
        if self.subscribed.is_active() && self.closing.is_none() {
            self.request_rejoin(reason);
        }
    }

    /// The leave step: the leave heartbeat, then the assignment is cleared (its callbacks ran
    /// in the steps before).
    pub(in crate::consumer::group::member) fn cp_leave(
        &mut self,
        ctx: &mut GroupCtx<'_>,
        reason: &'static str,
    ) {
        self.cp_send_leave(ctx, reason);
        self.cp().reset();
        self.generation = Generation::NONE;
        self.enter(MemberState::Unjoined);
        let owned = std::mem::take(&mut self.owned);
        self.apply_revoke(&owned, ctx);
    }

    /// `max_poll_interval_ms` passed without a poll: leave (as Java does, so the group moves
    /// on without this member), lose the partitions, rejoin on the next poll.
    fn cp_on_poll_timeout(&mut self, ctx: &mut GroupCtx<'_>) {
        self.heartbeat.clear_poll();
        if self.state == MemberState::Unjoined {
            return;
        }
        tracing::warn!(
            group = %self.cfg.group_id,
            "the application did not poll within max_poll_interval_ms: leaving the group (it rejoins on the next poll)"
        );
        self.cp_send_leave(ctx, "consumer poll timeout has expired");
        self.cp_lose_membership("the poll interval expired");
    }

    /// The epoch this member leaves with.
    fn leave_epoch(&self) -> i32 {
        if self.cfg.instance_id.is_some() {
            LEAVE_STATIC_EPOCH
        } else {
            LEAVE_EPOCH
        }
    }
}

#[cfg(test)]
mod tests;
