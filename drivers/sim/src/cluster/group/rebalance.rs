//! The rebalance machinery shared by the request handlers and the timers: starting a
//! rebalance, completing the join phase, handing out assignments, removing members.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_core::protocol::join_group::response::JoinGroupResponseMember;
use kafkit_core::protocol::{ErrorCode, JoinGroupResponse, ResponseBody, SyncGroupResponse};

use super::member::{Member, Waiter};
use super::state::{Group, GroupState, JoinTimer};
use super::{GroupConfig, Outbox};

/// What a group operation needs from its surroundings: settings, the time, and where answers to
/// parked requests go.
pub(super) struct Ctx<'a> {
    pub(super) config: &'a GroupConfig,
    pub(super) now: Instant,
    pub(super) out: &'a mut Outbox,
}

/// `now` plus `ms` milliseconds (negative counts as zero); `None` if that overflows `Instant`,
/// which then means "never".
pub(super) fn after(now: Instant, ms: i32) -> Option<Instant> {
    now.checked_add(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// Kafka's `JoinGroupResult`.
#[derive(Clone, Debug, Default)]
pub(super) struct JoinResult {
    pub(super) members: Vec<JoinGroupResponseMember>,
    pub(super) member_id: String,
    pub(super) generation_id: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol_name: Option<String>,
    pub(super) leader: String,
    pub(super) skip_assignment: bool,
    pub(super) error: ErrorCode,
}

impl JoinResult {
    /// An error answer: no generation, no leader, no members.
    pub(super) fn error(member_id: &str, error: ErrorCode) -> Self {
        JoinResult {
            member_id: member_id.to_string(),
            generation_id: -1,
            error,
            ..Default::default()
        }
    }

    /// The group's current generation as `member_id` sees it (the member list only if
    /// `with_members`).
    pub(super) fn current(group: &Group, member_id: &str, with_members: bool) -> Self {
        JoinResult {
            members: if with_members {
                group.current_member_metadata()
            } else {
                Vec::new()
            },
            member_id: member_id.to_string(),
            generation_id: group.generation,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            leader: group.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            error: ErrorCode::NONE,
        }
    }

    /// The response at `version`: fields the version lacks are left at their defaults, and
    /// before v7 (non-nullable protocol name) a missing name is `""`, as Kafka sends it.
    pub(super) fn into_response(self, version: i16) -> ResponseBody {
        let members = self
            .members
            .into_iter()
            .map(|mut m| {
                if version < 5 {
                    m.group_instance_id = None;
                }
                m
            })
            .collect();
        let protocol_name = match self.protocol_name {
            None if version < 7 => Some(String::new()),
            other => other,
        };
        ResponseBody::JoinGroup(JoinGroupResponse {
            throttle_time_ms: 0,
            error_code: self.error.code(),
            generation_id: self.generation_id,
            protocol_type: if version >= 7 {
                self.protocol_type
            } else {
                None
            },
            protocol_name,
            leader: self.leader,
            skip_assignment: version >= 9 && self.skip_assignment,
            member_id: self.member_id,
            members,
            ..Default::default()
        })
    }
}

/// A SyncGroup response at `version`.
pub(super) fn sync_response(
    version: i16,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    assignment: Bytes,
    error: ErrorCode,
) -> ResponseBody {
    let v5 = version >= 5;
    ResponseBody::SyncGroup(SyncGroupResponse {
        throttle_time_ms: 0,
        error_code: error.code(),
        protocol_type: protocol_type.filter(|_| v5),
        protocol_name: protocol_name.filter(|_| v5),
        assignment,
        ..Default::default()
    })
}

/// Answers a parked JoinGroup (if its connection is still there).
pub(super) fn answer_join(out: &mut Outbox, waiter: Waiter, result: JoinResult) {
    if let Some(client) = waiter.client {
        let body = result.into_response(client.api_version);
        out.push((client, body));
    }
}

/// Answers a parked SyncGroup with an error.
pub(super) fn answer_sync_error(out: &mut Outbox, waiter: Waiter, error: ErrorCode) {
    if let Some(client) = waiter.client {
        let body = sync_response(client.api_version, None, None, Bytes::new(), error);
        out.push((client, body));
    }
}

/// Kafka's `completeAndScheduleNextHeartbeatExpiration`: the member's session starts anew.
pub(super) fn schedule_heartbeat(member: &mut Member, now: Instant) {
    member.heartbeat_deadline = after(now, member.session_timeout_ms);
}

/// Kafka's `GroupMetadata.updateMember`: new protocols and timeouts, and the JoinGroup that is
/// now parked (a previously parked one is dropped unanswered, as in Kafka).
pub(super) fn update_member(
    member: &mut Member,
    protocols: Vec<(String, Bytes)>,
    rebalance_timeout_ms: i32,
    session_timeout_ms: i32,
    waiter: Option<Waiter>,
) {
    member.protocols = protocols;
    member.rebalance_timeout_ms = rebalance_timeout_ms;
    member.session_timeout_ms = session_timeout_ms;
    member.awaiting_join = waiter;
}

impl Group {
    /// Kafka's `maybePrepareRebalance`.
    pub(super) fn maybe_prepare_rebalance(&mut self, ctx: &mut Ctx<'_>) {
        if self.can_rebalance() {
            self.prepare_rebalance(ctx);
        }
    }

    /// Kafka's `prepareRebalance`: parked SyncGroups fail with `REBALANCE_IN_PROGRESS`, the
    /// join phase starts (with the initial delay if the group was empty).
    fn prepare_rebalance(&mut self, ctx: &mut Ctx<'_>) {
        if self.state == GroupState::CompletingRebalance {
            self.reset_and_propagate_assignment_error(ErrorCode::REBALANCE_IN_PROGRESS, ctx);
        }
        self.pending_sync.clear();
        self.sync_timer = None;
        let rebalance_timeout = self.rebalance_timeout_ms();
        let timer = if self.state == GroupState::Empty {
            let delay = ctx.config.group_initial_rebalance_delay_ms;
            after(ctx.now, delay).map(|deadline| JoinTimer::Initial {
                deadline,
                configured_delay_ms: delay,
                delay_ms: delay,
                remaining_ms: rebalance_timeout.saturating_sub(delay).max(0),
            })
        } else {
            after(ctx.now, rebalance_timeout).map(|deadline| JoinTimer::Normal { deadline })
        };
        self.join_timer = timer;
        self.state = GroupState::PreparingRebalance;
        tracing::debug!(group = %self.id, generation = self.generation, "preparing to rebalance");
        self.try_complete_join(ctx);
    }

    /// Completes the join phase now if it waits on members and all of them joined (Kafka's
    /// `checkAndComplete` on the rebalance purgatory).
    pub(super) fn try_complete_join(&mut self, ctx: &mut Ctx<'_>) {
        if self.state == GroupState::PreparingRebalance
            && matches!(self.join_timer, Some(JoinTimer::Normal { .. }))
            && self.has_all_members_joined()
        {
            self.complete_join(ctx);
        }
    }

    /// The join timer fired.
    pub(super) fn join_timer_expired(&mut self, ctx: &mut Ctx<'_>) {
        match self.join_timer {
            Some(JoinTimer::Initial {
                configured_delay_ms,
                delay_ms,
                remaining_ms,
                ..
            }) if self.new_member_added && remaining_ms != 0 => {
                // Kafka's InitialDelayedJoin: members keep arriving, so wait a little more.
                self.new_member_added = false;
                let delay = configured_delay_ms.min(remaining_ms);
                let remaining = remaining_ms.saturating_sub(delay_ms).max(0);
                self.join_timer = after(ctx.now, delay).map(|deadline| JoinTimer::Initial {
                    deadline,
                    configured_delay_ms,
                    delay_ms: delay,
                    remaining_ms: remaining,
                });
            }
            Some(_) => self.complete_join(ctx),
            None => {}
        }
    }

    /// Kafka's `onCompleteJoin`: dynamic members that did not rejoin are dropped; a new
    /// generation starts and every parked JoinGroup is answered (the leader with the member
    /// list); everyone then has until the rebalance timeout to send SyncGroup.
    pub(super) fn complete_join(&mut self, ctx: &mut Ctx<'_>) {
        self.join_timer = None;
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|m| !m.is_awaiting_join() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        if !gone.is_empty() {
            tracing::debug!(group = %self.id, ?gone, "removing members that did not rejoin");
        }
        for id in &gone {
            self.remove_member(id);
        }
        if self.state == GroupState::Dead {
            return;
        }
        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            // Only static members that did not rejoin are left: wait for them (or for their
            // sessions to expire).
            let wait = self.rebalance_timeout_ms().max(1);
            self.join_timer = after(ctx.now, wait).map(|deadline| JoinTimer::Normal { deadline });
            return;
        }
        self.init_next_generation();
        if self.state == GroupState::Empty {
            tracing::debug!(group = %self.id, generation = self.generation, "group is now empty");
            return;
        }
        tracing::debug!(
            group = %self.id,
            generation = self.generation,
            protocol = ?self.protocol_name,
            "join phase complete"
        );
        let leader_result = JoinResult::current(self, "", true);
        let follower_result = JoinResult::current(self, "", false);
        for i in 0..self.members.len() {
            let is_leader = self.is_leader(&self.members[i].id);
            let member = &mut self.members[i];
            let mut result = if is_leader {
                leader_result.clone()
            } else {
                follower_result.clone()
            };
            result.member_id = member.id.clone();
            if let Some(waiter) = member.awaiting_join.take() {
                answer_join(ctx.out, waiter, result);
            }
            schedule_heartbeat(member, ctx.now);
            member.is_new = false;
            self.pending_sync.insert(member.id.clone());
        }
        self.sync_timer = after(ctx.now, self.rebalance_timeout_ms()).map(|d| (d, self.generation));
    }

    /// Kafka's `maybeElectNewJoinedLeader`: keeps the leader if it rejoined, else picks the
    /// first member that did; `false` if nobody did.
    fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader.clone() else {
            return false;
        };
        if self.member(&leader).is_some_and(Member::is_awaiting_join) {
            return true;
        }
        match self.members.iter().find(|m| m.is_awaiting_join()) {
            Some(m) => {
                self.leader = Some(m.id.clone());
                true
            }
            None => false,
        }
    }

    /// Kafka's `resetAndPropagateAssignmentError`: assignments are cleared and parked
    /// SyncGroups fail with `error`.
    pub(super) fn reset_and_propagate_assignment_error(
        &mut self,
        error: ErrorCode,
        ctx: &mut Ctx<'_>,
    ) {
        for m in &mut self.members {
            m.assignment = Bytes::new();
        }
        self.propagate_assignment(error, ctx);
    }

    /// Kafka's `propagateAssignment`: answers every parked SyncGroup (with the member's
    /// assignment on success) and restarts those members' sessions.
    pub(super) fn propagate_assignment(&mut self, error: ErrorCode, ctx: &mut Ctx<'_>) {
        let (ptype, pname) = if error.is_ok() {
            (self.protocol_type.clone(), self.protocol_name.clone())
        } else {
            (None, None)
        };
        for m in &mut self.members {
            if let Some(waiter) = m.awaiting_sync.take() {
                if let Some(client) = waiter.client {
                    let body = sync_response(
                        client.api_version,
                        ptype.clone(),
                        pname.clone(),
                        m.assignment.clone(),
                        error,
                    );
                    ctx.out.push((client, body));
                }
                schedule_heartbeat(m, ctx.now);
            }
        }
    }

    /// Kafka's `removeMemberAndUpdateGroup`: a parked JoinGroup of the member fails with
    /// `UNKNOWN_MEMBER_ID`, the member goes, and the group rebalances.
    pub(super) fn remove_member_and_update_group(&mut self, member_id: &str, ctx: &mut Ctx<'_>) {
        if let Some(waiter) = self
            .member_mut(member_id)
            .and_then(|m| m.awaiting_join.take())
        {
            answer_join(
                ctx.out,
                waiter,
                JoinResult::error("", ErrorCode::UNKNOWN_MEMBER_ID),
            );
        }
        self.remove_member(member_id);
        match self.state {
            GroupState::Dead | GroupState::Empty => {}
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(ctx)
            }
            GroupState::PreparingRebalance => self.try_complete_join(ctx),
        }
    }

    /// Kafka's `removePendingMemberAndUpdateGroup`.
    pub(super) fn remove_pending_member_and_update_group(
        &mut self,
        member_id: &str,
        ctx: &mut Ctx<'_>,
    ) {
        self.pending_members.remove(member_id);
        self.try_complete_join(ctx);
    }
}
