//! OffsetCommit, OffsetFetch and OffsetDelete: `NOT_COORDINATOR` for groups this broker does
//! not coordinate (per group for the batched OffsetFetch v8+), the group coordinator's answer
//! for the others.

use kafkit_core::protocol::offset_commit::response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafkit_core::protocol::offset_fetch::response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafkit_core::protocol::{
    ErrorCode, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse, RequestBody, ResponseBody,
};

use super::group_routing::in_request_order;
use super::{Cluster, Ctx, Outcome};

const NOT_COORDINATOR: i16 = ErrorCode::NOT_COORDINATOR.code();

impl Cluster {
    pub(super) fn handle_offset_commit(&mut self, ctx: &Ctx, r: OffsetCommitRequest) -> Outcome {
        if self.coordinates(ctx, &r.group_id) {
            if self.is_consumer_group(&r.group_id) {
                return self.consumer_group_offset_commit(ctx, r);
            }
            return self.delegate(ctx, RequestBody::OffsetCommit(r));
        }
        let topics = r
            .topics
            .iter()
            .map(|t| OffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| OffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: NOT_COORDINATOR,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        Outcome::Reply(ResponseBody::OffsetCommit(OffsetCommitResponse {
            topics,
            ..Default::default()
        }))
    }

    pub(super) fn handle_offset_delete(&mut self, ctx: &Ctx, r: OffsetDeleteRequest) -> Outcome {
        if !self.coordinates(ctx, &r.group_id) {
            return Outcome::Reply(ResponseBody::OffsetDelete(OffsetDeleteResponse {
                error_code: NOT_COORDINATOR,
                ..Default::default()
            }));
        }
        self.delegate(ctx, RequestBody::OffsetDelete(r))
    }

    pub(super) fn handle_offset_fetch(&mut self, ctx: &Ctx, r: OffsetFetchRequest) -> Outcome {
        let stable = r.require_stable.then(|| r.group_id.clone());
        let mut outcome = if ctx.version < 8 {
            self.offset_fetch_single(ctx, r)
        } else {
            self.offset_fetch_batched(ctx, r)
        };
        if let (Some(group), Outcome::Reply(ResponseBody::OffsetFetch(resp))) =
            (stable, &mut outcome)
        {
            self.mark_unstable_offsets(ctx.version, &group, resp);
        }
        outcome
    }

    /// OffsetFetch v0-7: one group.
    fn offset_fetch_single(&mut self, ctx: &Ctx, r: OffsetFetchRequest) -> Outcome {
        if self.coordinates(ctx, &r.group_id) {
            return self.delegate(ctx, RequestBody::OffsetFetch(r));
        }
        let mut resp = OffsetFetchResponse::default();
        if ctx.version >= 2 {
            resp.error_code = NOT_COORDINATOR;
        } else {
            resp.topics = r
                .topics
                .unwrap_or_default()
                .into_iter()
                .map(|t| OffsetFetchResponseTopic {
                    name: t.name,
                    partitions: t
                        .partition_indexes
                        .into_iter()
                        .map(|p| OffsetFetchResponsePartition {
                            partition_index: p,
                            committed_offset: -1,
                            error_code: NOT_COORDINATOR,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect();
        }
        Outcome::Reply(ResponseBody::OffsetFetch(resp))
    }

    /// OffsetFetch v8+: several groups, each answered by its own coordinator.
    fn offset_fetch_batched(&mut self, ctx: &Ctx, mut r: OffsetFetchRequest) -> Outcome {
        let order: Vec<String> = r.groups.iter().map(|g| g.group_id.clone()).collect();
        r.groups.retain(|g| self.coordinates(ctx, &g.group_id));
        // Consumer groups whose member check fails answer with the check's error.
        let mut refused = Vec::new();
        r.groups.retain(|g| {
            let error = self.consumer_group_fetch_error(
                ctx.version,
                &g.group_id,
                g.member_id.as_deref(),
                g.member_epoch,
            );
            if let Some(e) = error {
                refused.push(OffsetFetchResponseGroup {
                    group_id: g.group_id.clone(),
                    error_code: e.code(),
                    ..Default::default()
                });
            }
            error.is_none()
        });
        let any = !r.groups.is_empty();
        let groups = self
            .delegate_owned(ctx, any, r)
            .map(|resp| resp.groups)
            .unwrap_or_default()
            .into_iter()
            .chain(refused)
            .collect();
        let merged = in_request_order(
            order,
            groups,
            |g| g.group_id.as_str(),
            |id| OffsetFetchResponseGroup {
                group_id: id,
                error_code: NOT_COORDINATOR,
                ..Default::default()
            },
        );
        Outcome::Reply(ResponseBody::OffsetFetch(OffsetFetchResponse {
            groups: merged,
            ..Default::default()
        }))
    }
}
