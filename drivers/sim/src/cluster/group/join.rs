//! JoinGroup (Kafka's `handleJoinGroup` and the paths it takes for new, current and static
//! members).

use std::time::Instant;

use bytes::Bytes;
use kafkit_core::protocol::{ErrorCode, JoinGroupRequest, ResponseBody};

use super::member::{protocols_of, Member, Waiter};
use super::rebalance::{after, answer_join, schedule_heartbeat, update_member, Ctx, JoinResult};
use super::state::{Group, GroupState};
use super::{ClientRef, GroupCoordinator, NEW_MEMBER_JOIN_TIMEOUT_MS};

/// A JoinGroup as the handlers need it.
struct Join<'a> {
    client: &'a ClientRef,
    version: i16,
    member_id: String,
    instance_id: Option<String>,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
}

impl Join<'_> {
    fn waiter(&self) -> Waiter {
        Waiter::new(self.client)
    }

    fn new_member(&self, id: String) -> Member {
        Member {
            id,
            instance_id: self.instance_id.clone(),
            client_id: self.client.client_id.clone(),
            client_host: self.client.client_host.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            session_timeout_ms: self.session_timeout_ms,
            protocol_type: self.protocol_type.clone(),
            protocols: self.protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: Some(self.waiter()),
            awaiting_sync: None,
            is_new: true,
            heartbeat_deadline: None,
        }
    }
}

impl GroupCoordinator {
    /// JoinGroup: `Some` answer now, or `None` when parked.
    pub(super) fn join_group(
        &mut self,
        client: &ClientRef,
        req: JoinGroupRequest,
        now: Instant,
    ) -> Option<ResponseBody> {
        let version = client.api_version;
        let join = Join {
            client,
            version,
            member_id: req.member_id,
            // Version 5 brought static membership; earlier versions cannot carry it.
            instance_id: req.group_instance_id.filter(|_| version >= 5),
            session_timeout_ms: req.session_timeout_ms,
            // Version 0 has no rebalance timeout: the session timeout serves.
            rebalance_timeout_ms: if version == 0 {
                req.session_timeout_ms
            } else {
                req.rebalance_timeout_ms
            },
            protocol_type: req.protocol_type,
            protocols: protocols_of(&req.protocols),
        };
        let now_error =
            |e: ErrorCode| Some(JoinResult::error(&join.member_id, e).into_response(version));
        if req.group_id.is_empty() {
            return now_error(ErrorCode::INVALID_GROUP_ID);
        }
        if join.session_timeout_ms < self.config.group_min_session_timeout_ms
            || join.session_timeout_ms > self.config.group_max_session_timeout_ms
        {
            return now_error(ErrorCode::INVALID_SESSION_TIMEOUT);
        }
        let is_unknown = join.member_id.is_empty();
        if !self.groups.contains_key(&req.group_id) {
            if !is_unknown {
                return now_error(ErrorCode::UNKNOWN_MEMBER_ID);
            }
            self.groups
                .insert(req.group_id.clone(), Group::new(&req.group_id));
        }
        let new_member_id = if is_unknown {
            let prefix = join.instance_id.as_deref().unwrap_or(&client.client_id);
            let prefix = prefix.to_string();
            Some(self.next_member_id(&prefix))
        } else {
            None
        };
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return now_error(ErrorCode::UNKNOWN_MEMBER_ID);
        };
        let mut ctx = Ctx {
            config: &self.config,
            now,
            out: &mut self.completed,
        };
        let result = match new_member_id {
            Some(id) => new_member_join(group, &join, id, &mut ctx),
            None => current_member_join(group, &join, &mut ctx),
        };
        if group.state == GroupState::PreparingRebalance {
            group.try_complete_join(&mut ctx);
        }
        result.map(|r| r.into_response(version))
    }
}

/// Kafka's `doNewMemberJoinGroup`: `Some` answer now, `None` when parked.
fn new_member_join(
    group: &mut Group,
    join: &Join<'_>,
    new_id: String,
    ctx: &mut Ctx<'_>,
) -> Option<JoinResult> {
    if group.state == GroupState::Dead {
        return Some(JoinResult::error(
            &join.member_id,
            ErrorCode::COORDINATOR_NOT_AVAILABLE,
        ));
    }
    if !group.supports_protocols(&join.protocol_type, &join.protocols) {
        return Some(JoinResult::error(
            &join.member_id,
            ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
        ));
    }
    match join.instance_id.as_deref() {
        Some(instance) => match group.static_member_id(instance).map(str::to_string) {
            Some(old_id) => update_static_member_and_rebalance(group, join, &old_id, new_id, ctx),
            None => {
                add_member_and_rebalance(group, join, new_id, ctx);
                None
            }
        },
        None if join.version >= 4 => {
            // The member must come back with the id it is given here.
            let deadline = after(ctx.now, join.session_timeout_ms).unwrap_or(ctx.now);
            group.pending_members.insert(new_id.clone(), deadline);
            Some(JoinResult::error(&new_id, ErrorCode::MEMBER_ID_REQUIRED))
        }
        None => {
            add_member_and_rebalance(group, join, new_id, ctx);
            None
        }
    }
}

/// Kafka's `doCurrentMemberJoinGroup`: `Some` answer now, `None` when parked.
fn current_member_join(
    group: &mut Group,
    join: &Join<'_>,
    ctx: &mut Ctx<'_>,
) -> Option<JoinResult> {
    let member_id = join.member_id.as_str();
    let error = |e| Some(JoinResult::error(member_id, e));
    if group.state == GroupState::Dead {
        return error(ErrorCode::COORDINATOR_NOT_AVAILABLE);
    }
    if !group.supports_protocols(&join.protocol_type, &join.protocols) {
        return error(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
    }
    if group.pending_members.contains_key(member_id) {
        if join.instance_id.is_some() {
            // Kafka never hands out pending ids to static members; such a request is bogus.
            return error(ErrorCode::UNKNOWN_MEMBER_ID);
        }
        add_member_and_rebalance(group, join, member_id.to_string(), ctx);
        return None;
    }
    if let Some(e) = group.validate_current_member(member_id, join.instance_id.as_deref()) {
        return error(e);
    }
    let is_leader = group.is_leader(member_id);
    let matches = group
        .member(member_id)
        .is_some_and(|m| m.matches(&join.protocols));
    match group.state {
        GroupState::PreparingRebalance => {
            update_member_and_rebalance(group, join, ctx);
            None
        }
        GroupState::CompletingRebalance if matches => {
            // The member probably missed the JoinGroup answer: send it again.
            Some(JoinResult::current(group, member_id, is_leader))
        }
        GroupState::Stable if matches && !is_leader => {
            // A follower with nothing new: it may go straight to SyncGroup.
            Some(JoinResult::current(group, member_id, false))
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            // Changed metadata, or the leader asking for a new assignment.
            update_member_and_rebalance(group, join, ctx);
            None
        }
        GroupState::Empty | GroupState::Dead => error(ErrorCode::UNKNOWN_MEMBER_ID),
    }
}

/// Kafka's `addMemberAndRebalance`: the member joins with its JoinGroup parked.
fn add_member_and_rebalance(group: &mut Group, join: &Join<'_>, id: String, ctx: &mut Ctx<'_>) {
    let mut member = join.new_member(id);
    // A new member cannot heartbeat while its JoinGroup is parked; it gets this long.
    member.heartbeat_deadline = after(ctx.now, NEW_MEMBER_JOIN_TIMEOUT_MS);
    if group.state == GroupState::PreparingRebalance && group.generation == 0 {
        group.new_member_added = true;
    }
    group.add_member(member);
    group.maybe_prepare_rebalance(ctx);
}

/// Kafka's `updateMemberAndRebalance`.
fn update_member_and_rebalance(group: &mut Group, join: &Join<'_>, ctx: &mut Ctx<'_>) {
    if let Some(member) = group.member_mut(&join.member_id) {
        update_member(
            member,
            join.protocols.clone(),
            join.rebalance_timeout_ms,
            join.session_timeout_ms,
            Some(join.waiter()),
        );
    }
    group.maybe_prepare_rebalance(ctx);
}

/// Kafka's `updateStaticMemberAndRebalance`: a static member restarted (new member id, same
/// instance id). The old id is fenced; in a Stable group whose protocol choice does not change,
/// the member gets the current generation back and keeps its assignment, without a rebalance.
fn update_static_member_and_rebalance(
    group: &mut Group,
    join: &Join<'_>,
    old_id: &str,
    new_id: String,
    ctx: &mut Ctx<'_>,
) -> Option<JoinResult> {
    let current_leader = group.leader.clone().unwrap_or_default();
    replace_static_member(group, old_id, &new_id, ctx);
    if let Some(member) = group.member_mut(&new_id) {
        schedule_heartbeat(member, ctx.now);
        update_member(
            member,
            join.protocols.clone(),
            join.rebalance_timeout_ms,
            join.session_timeout_ms,
            None,
        );
    }
    match group.state {
        GroupState::Stable if group.select_protocol() == group.protocol_name => {
            tracing::debug!(
                group = %group.id, member = %new_id,
                "static member rejoined a stable group without changing the protocol: no rebalance"
            );
            // Before v9 the old leader id goes back, so that a restarted leader does not
            // believe it leads (its new assignment would not be handed out by a stable group).
            // From v9 (KIP-814) a leader is told it leads but may skip the assignment.
            let is_leader = group.is_leader(&new_id);
            let skip = join.version >= 9 && is_leader;
            let mut result = JoinResult::current(group, &new_id, skip);
            if join.version < 9 {
                result.leader = current_leader;
            }
            result.skip_assignment = skip;
            Some(result)
        }
        GroupState::Stable | GroupState::CompletingRebalance => {
            if let Some(member) = group.member_mut(&new_id) {
                member.awaiting_join = Some(join.waiter());
            }
            group.maybe_prepare_rebalance(ctx);
            None
        }
        GroupState::PreparingRebalance => {
            // Joins the rebalance under way like any known member.
            if let Some(member) = group.member_mut(&new_id) {
                member.awaiting_join = Some(join.waiter());
            }
            None
        }
        GroupState::Empty | GroupState::Dead => Some(JoinResult::error(
            &join.member_id,
            ErrorCode::UNKNOWN_MEMBER_ID,
        )),
    }
}

/// Kafka's `replaceStaticMember`: parked requests of the old member id fail with
/// `FENCED_INSTANCE_ID`, and the member continues under `new_id`.
fn replace_static_member(group: &mut Group, old_id: &str, new_id: &str, ctx: &mut Ctx<'_>) {
    let Some(member) = group.member_mut(old_id) else {
        return;
    };
    if let Some(waiter) = member.awaiting_join.take() {
        answer_join(
            ctx.out,
            waiter,
            JoinResult::error(old_id, ErrorCode::FENCED_INSTANCE_ID),
        );
    }
    if let Some(waiter) = member.awaiting_sync.take() {
        super::rebalance::answer_sync_error(ctx.out, waiter, ErrorCode::FENCED_INSTANCE_ID);
    }
    member.id = new_id.to_string();
    if group.is_leader(old_id) {
        group.leader = Some(new_id.to_string());
    }
    if group.pending_sync.remove(old_id) {
        group.pending_sync.insert(new_id.to_string());
    }
}
