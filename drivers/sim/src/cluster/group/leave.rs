//! LeaveGroup (Kafka's `handleLeaveGroup`): one member before v3, a batch from v3, static
//! members by instance id alone.

use std::time::Instant;

use kafkit_core::protocol::leave_group::response::MemberResponse;
use kafkit_core::protocol::{ErrorCode, LeaveGroupRequest, LeaveGroupResponse, ResponseBody};

use super::rebalance::Ctx;
use super::state::{Group, GroupState};
use super::GroupCoordinator;

impl GroupCoordinator {
    /// LeaveGroup: always answered at once.
    pub(super) fn leave_group(
        &mut self,
        version: i16,
        req: LeaveGroupRequest,
        now: Instant,
    ) -> ResponseBody {
        // Before v3 the request names one member; treat it as a batch of one.
        let leaving: Vec<(String, Option<String>)> = if version < 3 {
            vec![(req.member_id, None)]
        } else {
            req.members
                .into_iter()
                .map(|m| (m.member_id, m.group_instance_id))
                .collect()
        };
        let member_response = |(member_id, group_instance_id): &(String, Option<String>),
                               e: ErrorCode| {
            MemberResponse {
                member_id: member_id.clone(),
                group_instance_id: group_instance_id.clone(),
                error_code: e.code(),
                ..Default::default()
            }
        };
        let (top, members): (ErrorCode, Vec<MemberResponse>) = if req.group_id.is_empty() {
            (ErrorCode::INVALID_GROUP_ID, Vec::new())
        } else {
            match self.groups.get_mut(&req.group_id) {
                None => (
                    ErrorCode::NONE,
                    leaving
                        .iter()
                        .map(|l| member_response(l, ErrorCode::UNKNOWN_MEMBER_ID))
                        .collect(),
                ),
                Some(group) if group.state == GroupState::Dead => {
                    (ErrorCode::COORDINATOR_NOT_AVAILABLE, Vec::new())
                }
                Some(group) => {
                    let mut ctx = Ctx {
                        config: &self.config,
                        now,
                        out: &mut self.completed,
                    };
                    let members = leaving
                        .iter()
                        .map(|l| member_response(l, leave(group, &l.0, l.1.as_deref(), &mut ctx)))
                        .collect();
                    (ErrorCode::NONE, members)
                }
            }
        };
        let response = if version < 3 {
            // One error code: the top-level one, else the member's.
            let error = if top.is_err() {
                top.code()
            } else {
                members
                    .iter()
                    .map(|m| m.error_code)
                    .find(|&c| c != 0)
                    .unwrap_or(0)
            };
            LeaveGroupResponse {
                throttle_time_ms: 0,
                error_code: error,
                ..Default::default()
            }
        } else {
            LeaveGroupResponse {
                throttle_time_ms: 0,
                error_code: top.code(),
                members,
                ..Default::default()
            }
        };
        ResponseBody::LeaveGroup(response)
    }
}

/// One member leaves `group`.
fn leave(
    group: &mut Group,
    member_id: &str,
    instance_id: Option<&str>,
    ctx: &mut Ctx<'_>,
) -> ErrorCode {
    if member_id.is_empty() {
        // Administrative removal of a static member by instance id alone.
        let bound = instance_id
            .and_then(|i| group.static_member_id(i))
            .map(str::to_string);
        return match bound {
            Some(id) => {
                tracing::debug!(group = %group.id, member = %id, "static member removed by instance id");
                group.remove_member_and_update_group(&id, ctx);
                ErrorCode::NONE
            }
            None => ErrorCode::UNKNOWN_MEMBER_ID,
        };
    }
    if group.pending_members.contains_key(member_id) {
        group.remove_pending_member_and_update_group(member_id, ctx);
        return ErrorCode::NONE;
    }
    if let Some(e) = group.validate_current_member(member_id, instance_id) {
        return e;
    }
    tracing::debug!(group = %group.id, member = %member_id, "member left");
    group.remove_member_and_update_group(member_id, ctx);
    ErrorCode::NONE
}
