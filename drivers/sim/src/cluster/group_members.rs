//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup: `NOT_COORDINATOR` unless this broker
//! coordinates the group, else the group coordinator's answer (joins and syncs may park).

use kafkit_core::protocol::{
    ErrorCode, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, RequestBody, ResponseBody, SyncGroupRequest,
    SyncGroupResponse,
};

use super::{Cluster, Ctx, Outcome};

const NOT_COORDINATOR: i16 = ErrorCode::NOT_COORDINATOR.code();

impl Cluster {
    pub(super) fn handle_join_group(&mut self, ctx: &Ctx, r: JoinGroupRequest) -> Outcome {
        if !self.coordinates(ctx, &r.group_id) {
            return Outcome::Reply(ResponseBody::JoinGroup(JoinGroupResponse {
                error_code: NOT_COORDINATOR,
                protocol_name: (ctx.version < 7).then(String::new),
                ..Default::default()
            }));
        }
        if let Some(e) = self.join_consumer_group_check(&r.group_id) {
            return Outcome::Reply(ResponseBody::JoinGroup(JoinGroupResponse {
                error_code: e.code(),
                protocol_name: (ctx.version < 7).then(String::new),
                member_id: r.member_id,
                ..Default::default()
            }));
        }
        self.delegate(ctx, RequestBody::JoinGroup(r))
    }

    pub(super) fn handle_sync_group(&mut self, ctx: &Ctx, r: SyncGroupRequest) -> Outcome {
        if !self.coordinates(ctx, &r.group_id) {
            return Outcome::Reply(ResponseBody::SyncGroup(SyncGroupResponse {
                error_code: NOT_COORDINATOR,
                ..Default::default()
            }));
        }
        self.delegate(ctx, RequestBody::SyncGroup(r))
    }

    pub(super) fn handle_heartbeat(&mut self, ctx: &Ctx, r: HeartbeatRequest) -> Outcome {
        if !self.coordinates(ctx, &r.group_id) {
            return Outcome::Reply(ResponseBody::Heartbeat(HeartbeatResponse {
                error_code: NOT_COORDINATOR,
                ..Default::default()
            }));
        }
        self.delegate(ctx, RequestBody::Heartbeat(r))
    }

    pub(super) fn handle_leave_group(&mut self, ctx: &Ctx, r: LeaveGroupRequest) -> Outcome {
        if !self.coordinates(ctx, &r.group_id) {
            return Outcome::Reply(ResponseBody::LeaveGroup(LeaveGroupResponse {
                error_code: NOT_COORDINATOR,
                ..Default::default()
            }));
        }
        self.delegate(ctx, RequestBody::LeaveGroup(r))
    }
}
