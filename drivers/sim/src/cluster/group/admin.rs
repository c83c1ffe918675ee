//! ListGroups, DescribeGroups and DeleteGroups.

use bytes::Bytes;
use kafkit_core::protocol::delete_groups::response::DeletableGroupResult;
use kafkit_core::protocol::describe_groups::response::{DescribedGroup, DescribedGroupMember};
use kafkit_core::protocol::list_groups::response::ListedGroup;
use kafkit_core::protocol::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    ErrorCode, ListGroupsRequest, ListGroupsResponse, ResponseBody,
};

use super::state::{Group, GroupState};
use super::GroupCoordinator;

/// The group type every group here has (ListGroups v5).
const CLASSIC_GROUP_TYPE: &str = "classic";

/// The operations on a group a client may perform without an authorizer: READ (3),
/// DELETE (6) and DESCRIBE (8), as a bit set.
const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// `AuthorizedOperations` when not asked for.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

impl GroupCoordinator {
    /// ListGroups: every group, sorted by id, filtered by state (v4+) and type (v5+), both
    /// case-insensitively.
    pub(super) fn list_groups(&self, version: i16, req: ListGroupsRequest) -> ResponseBody {
        let lower = |v: &[String]| v.iter().map(|s| s.to_lowercase()).collect::<Vec<_>>();
        let states = if version >= 4 {
            lower(&req.states_filter)
        } else {
            Vec::new()
        };
        let types = if version >= 5 {
            lower(&req.types_filter)
        } else {
            Vec::new()
        };
        let groups = self
            .groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .filter(|g| states.is_empty() || states.contains(&g.state.name().to_lowercase()))
            .filter(|_| types.is_empty() || types.iter().any(|t| t == CLASSIC_GROUP_TYPE))
            .map(|g| ListedGroup {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                group_state: if version >= 4 {
                    g.state.name().to_string()
                } else {
                    String::new()
                },
                group_type: if version >= 5 {
                    CLASSIC_GROUP_TYPE.to_string()
                } else {
                    String::new()
                },
                ..Default::default()
            })
            .collect();
        ResponseBody::ListGroups(ListGroupsResponse {
            throttle_time_ms: 0,
            error_code: 0,
            groups,
            ..Default::default()
        })
    }

    /// DescribeGroups: unknown groups are described as Dead without error (as Kafka does up to
    /// v5); member metadata and assignments only for a Stable group.
    pub(super) fn describe_groups(&self, version: i16, req: DescribeGroupsRequest) -> ResponseBody {
        let operations = if version >= 3 && req.include_authorized_operations {
            GROUP_AUTHORIZED_OPERATIONS
        } else {
            OPERATIONS_NOT_REQUESTED
        };
        let groups = req
            .groups
            .iter()
            .map(|id| {
                let mut described = match self.groups.get(id) {
                    Some(g) => describe(g, version),
                    None => DescribedGroup {
                        error_code: 0,
                        group_id: id.clone(),
                        group_state: GroupState::Dead.name().to_string(),
                        ..Default::default()
                    },
                };
                described.authorized_operations = operations;
                described
            })
            .collect();
        ResponseBody::DescribeGroups(DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups,
            ..Default::default()
        })
    }

    /// DeleteGroups: only empty groups go (`NON_EMPTY_GROUP` otherwise); a group named twice is
    /// answered once.
    pub(super) fn delete_groups(
        &mut self,
        _version: i16,
        req: DeleteGroupsRequest,
    ) -> ResponseBody {
        let mut results: Vec<DeletableGroupResult> = Vec::new();
        for id in &req.groups_names {
            if results.iter().any(|r| r.group_id == *id) {
                continue;
            }
            let error = match self.groups.get(id).map(|g| g.state) {
                None | Some(GroupState::Dead) => ErrorCode::GROUP_ID_NOT_FOUND,
                Some(GroupState::Empty) => {
                    self.groups.remove(id);
                    tracing::debug!(group = %id, "group deleted");
                    ErrorCode::NONE
                }
                Some(_) => ErrorCode::NON_EMPTY_GROUP,
            };
            results.push(DeletableGroupResult {
                group_id: id.clone(),
                error_code: error.code(),
                ..Default::default()
            });
        }
        ResponseBody::DeleteGroups(DeleteGroupsResponse {
            throttle_time_ms: 0,
            results,
            ..Default::default()
        })
    }
}

/// Kafka's `GroupMetadata.summary`.
fn describe(group: &Group, version: i16) -> DescribedGroup {
    let stable = group.state == GroupState::Stable;
    let protocol = group.protocol_name.clone().unwrap_or_default();
    let members = group
        .members
        .iter()
        .map(|m| DescribedGroupMember {
            member_id: m.id.clone(),
            group_instance_id: m.instance_id.clone().filter(|_| version >= 4),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            member_metadata: if stable {
                m.metadata(&protocol)
            } else {
                Bytes::new()
            },
            member_assignment: if stable {
                m.assignment.clone()
            } else {
                Bytes::new()
            },
            ..Default::default()
        })
        .collect();
    DescribedGroup {
        error_code: 0,
        group_id: group.id.clone(),
        group_state: group.state.name().to_string(),
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        protocol_data: if stable { protocol } else { String::new() },
        members,
        ..Default::default()
    }
}
