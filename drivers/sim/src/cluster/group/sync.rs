//! SyncGroup and Heartbeat (Kafka's `handleSyncGroup` and `handleHeartbeat`).

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use kafkit_core::protocol::{
    ErrorCode, HeartbeatRequest, HeartbeatResponse, ResponseBody, SyncGroupRequest,
};

use super::member::Waiter;
use super::rebalance::{schedule_heartbeat, sync_response, Ctx};
use super::state::{Group, GroupState};
use super::{ClientRef, GroupCoordinator};

impl GroupCoordinator {
    /// SyncGroup: `Some` answer now, or `None` when a follower waits for the leader.
    pub(super) fn sync_group(
        &mut self,
        client: &ClientRef,
        req: SyncGroupRequest,
        now: Instant,
    ) -> Option<ResponseBody> {
        let version = client.api_version;
        let error = |e| Some(sync_response(version, None, None, Bytes::new(), e));
        if req.group_id.is_empty() {
            return error(ErrorCode::INVALID_GROUP_ID);
        }
        // From v5 both protocol fields are mandatory.
        if version >= 5 && (req.protocol_type.is_none() || req.protocol_name.is_none()) {
            return error(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        }
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return error(ErrorCode::UNKNOWN_MEMBER_ID);
        };
        let instance_id = req.group_instance_id.as_deref().filter(|_| version >= 3);
        if let Some(e) = validate_sync(group, &req, instance_id) {
            return error(e);
        }
        let mut ctx = Ctx {
            config: &self.config,
            now,
            out: &mut self.completed,
        };
        match group.state {
            GroupState::Empty | GroupState::Dead => error(ErrorCode::UNKNOWN_MEMBER_ID),
            GroupState::PreparingRebalance => error(ErrorCode::REBALANCE_IN_PROGRESS),
            GroupState::CompletingRebalance => {
                if let Some(member) = group.member_mut(&req.member_id) {
                    member.awaiting_sync = Some(Waiter::new(client));
                }
                group.remove_pending_sync(&req.member_id);
                if group.is_leader(&req.member_id) {
                    install_assignment(group, &req, &mut ctx);
                }
                None
            }
            GroupState::Stable => {
                group.remove_pending_sync(&req.member_id);
                let Some(member) = group.member_mut(&req.member_id) else {
                    return error(ErrorCode::UNKNOWN_MEMBER_ID);
                };
                schedule_heartbeat(member, now);
                let assignment = member.assignment.clone();
                Some(sync_response(
                    version,
                    group.protocol_type.clone(),
                    group.protocol_name.clone(),
                    assignment,
                    ErrorCode::NONE,
                ))
            }
        }
    }

    /// Heartbeat: always answered at once.
    pub(super) fn heartbeat(
        &mut self,
        version: i16,
        req: HeartbeatRequest,
        now: Instant,
    ) -> ResponseBody {
        let error = if req.group_id.is_empty() {
            ErrorCode::INVALID_GROUP_ID
        } else {
            match self.groups.get_mut(&req.group_id) {
                None => ErrorCode::UNKNOWN_MEMBER_ID,
                Some(group) => {
                    let instance_id = req.group_instance_id.as_deref().filter(|_| version >= 3);
                    heartbeat(group, &req.member_id, instance_id, req.generation_id, now)
                }
            }
        };
        ResponseBody::Heartbeat(HeartbeatResponse {
            throttle_time_ms: 0,
            error_code: error.code(),
            ..Default::default()
        })
    }
}

/// Kafka's `validateSyncGroup`.
fn validate_sync(
    group: &Group,
    req: &SyncGroupRequest,
    instance_id: Option<&str>,
) -> Option<ErrorCode> {
    if group.state == GroupState::Dead {
        return Some(ErrorCode::COORDINATOR_NOT_AVAILABLE);
    }
    if let Some(e) = group.validate_current_member(&req.member_id, instance_id) {
        return Some(e);
    }
    if req.generation_id != group.generation {
        return Some(ErrorCode::ILLEGAL_GENERATION);
    }
    let mismatch = |asked: &Option<String>, ours: &Option<String>| {
        asked.as_ref().is_some_and(|a| ours.as_ref() != Some(a))
    };
    if mismatch(&req.protocol_type, &group.protocol_type)
        || mismatch(&req.protocol_name, &group.protocol_name)
    {
        return Some(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
    }
    None
}

/// The leader's SyncGroup in CompletingRebalance: every member gets its assignment (an empty
/// one if the leader left it out), parked SyncGroups are answered, and the group is Stable.
fn install_assignment(group: &mut Group, req: &SyncGroupRequest, ctx: &mut Ctx<'_>) {
    // A member named twice gets its last assignment; unknown member ids are ignored.
    let assignments: BTreeMap<&str, &Bytes> = req
        .assignments
        .iter()
        .map(|a| (a.member_id.as_str(), &a.assignment))
        .collect();
    for m in &mut group.members {
        m.assignment = assignments
            .get(m.id.as_str())
            .map(|a| (*a).clone())
            .unwrap_or_default();
    }
    let missing = group
        .members
        .iter()
        .filter(|m| !assignments.contains_key(m.id.as_str()))
        .count();
    if missing > 0 {
        tracing::warn!(group = %group.id, missing, "leader left members without an assignment");
    }
    group.propagate_assignment(ErrorCode::NONE, ctx);
    group.state = GroupState::Stable;
    tracing::debug!(group = %group.id, generation = group.generation, "group is stable");
}

/// Kafka's `handleHeartbeat` for an existing group.
fn heartbeat(
    group: &mut Group,
    member_id: &str,
    instance_id: Option<&str>,
    generation_id: i32,
    now: Instant,
) -> ErrorCode {
    if group.state == GroupState::Dead {
        return ErrorCode::COORDINATOR_NOT_AVAILABLE;
    }
    if let Some(e) = group.validate_current_member(member_id, instance_id) {
        return e;
    }
    if generation_id != group.generation {
        return ErrorCode::ILLEGAL_GENERATION;
    }
    let state = group.state;
    let Some(member) = group.member_mut(member_id) else {
        return ErrorCode::UNKNOWN_MEMBER_ID;
    };
    match state {
        GroupState::Empty | GroupState::Dead => ErrorCode::UNKNOWN_MEMBER_ID,
        GroupState::CompletingRebalance | GroupState::Stable => {
            schedule_heartbeat(member, now);
            ErrorCode::NONE
        }
        GroupState::PreparingRebalance => {
            schedule_heartbeat(member, now);
            ErrorCode::REBALANCE_IN_PROGRESS
        }
    }
}
