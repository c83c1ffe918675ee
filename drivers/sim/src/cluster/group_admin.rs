//! DescribeGroups, DeleteGroups and ListGroups: each group answered by its own coordinator,
//! `NOT_COORDINATOR` for the groups of other brokers, in the order asked.

use kafkit_core::protocol::describe_groups::response::DescribedGroup;
use kafkit_core::protocol::{
    delete_groups, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, ErrorCode, ListGroupsRequest, RequestBody, ResponseBody,
};

use super::group_routing::in_request_order;
use super::{Cluster, Ctx, Outcome};

const NOT_COORDINATOR: i16 = ErrorCode::NOT_COORDINATOR.code();

impl Cluster {
    pub(super) fn handle_describe_groups(
        &mut self,
        ctx: &Ctx,
        mut r: DescribeGroupsRequest,
    ) -> Outcome {
        let order = r.groups.clone();
        r.groups.retain(|g| self.coordinates(ctx, g));
        let any = !r.groups.is_empty();
        let mut groups = self
            .delegate_owned(ctx, any, r)
            .map(|resp| resp.groups)
            .unwrap_or_default();
        // Consumer groups are not classic groups: described as Dead, as Kafka does to v5.
        for g in &mut groups {
            if self.groups848.group(&g.group_id).is_some() {
                *g = DescribedGroup {
                    group_id: std::mem::take(&mut g.group_id),
                    group_state: "Dead".into(),
                    authorized_operations: g.authorized_operations,
                    ..Default::default()
                };
            }
        }
        let merged = in_request_order(
            order,
            groups,
            |g| g.group_id.as_str(),
            |id| DescribedGroup {
                error_code: NOT_COORDINATOR,
                group_id: id,
                ..Default::default()
            },
        );
        Outcome::Reply(ResponseBody::DescribeGroups(DescribeGroupsResponse {
            groups: merged,
            ..Default::default()
        }))
    }

    pub(super) fn handle_delete_groups(
        &mut self,
        ctx: &Ctx,
        mut r: DeleteGroupsRequest,
    ) -> Outcome {
        let order = r.groups_names.clone();
        r.groups_names.retain(|g| self.coordinates(ctx, g));
        let mut consumer = Vec::new();
        let ids = std::mem::take(&mut r.groups_names);
        for id in ids {
            match self.delete_consumer_group(&id) {
                Some(e) => consumer.push(delete_groups::response::DeletableGroupResult {
                    group_id: id,
                    error_code: e.code(),
                    ..Default::default()
                }),
                None => r.groups_names.push(id),
            }
        }
        let any = !r.groups_names.is_empty();
        let results = self
            .delegate_owned(ctx, any, r)
            .map(|resp| resp.results)
            .unwrap_or_default()
            .into_iter()
            .chain(consumer)
            .collect();
        let merged = in_request_order(
            order,
            results,
            |g| g.group_id.as_str(),
            |id| delete_groups::response::DeletableGroupResult {
                group_id: id,
                error_code: NOT_COORDINATOR,
                ..Default::default()
            },
        );
        Outcome::Reply(ResponseBody::DeleteGroups(DeleteGroupsResponse {
            results: merged,
            ..Default::default()
        }))
    }

    /// The groups this broker coordinates.
    pub(super) fn handle_list_groups(&mut self, ctx: &Ctx, r: ListGroupsRequest) -> Outcome {
        let (states, types) = (r.states_filter.clone(), r.types_filter.clone());
        let outcome = self.delegate(ctx, RequestBody::ListGroups(r));
        match outcome {
            Outcome::Reply(ResponseBody::ListGroups(mut resp)) => {
                resp.groups
                    .retain(|g| self.coordinator_for(&g.group_id) == ctx.broker);
                self.list_consumer_groups(ctx, &states, &types, &mut resp.groups);
                Outcome::Reply(ResponseBody::ListGroups(resp))
            }
            other => other,
        }
    }
}
