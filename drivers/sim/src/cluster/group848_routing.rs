//! The routing of ConsumerGroupHeartbeat and ConsumerGroupDescribe to the KIP-848 coordinator
//! ([`super::group848::ConsumerGroups`]), and where the classic group APIs meet consumer
//! groups: one group id namespace, one committed-offset store (the classic coordinator's).
//!
//! - A heartbeat for a classic group with members is `GROUP_ID_NOT_FOUND`; an empty classic
//!   group (offsets only) becomes a consumer group, keeping its offsets.
//! - A JoinGroup for a consumer group with members is `INCONSISTENT_GROUP_PROTOCOL`; an empty
//!   consumer group becomes a classic one.
//! - OffsetCommit and OffsetFetch v9+ for a consumer group check the member id and epoch here
//!   before the classic coordinator stores or reads the offsets.
//! - ListGroups reports consumer groups with type `consumer`; DescribeGroups describes them
//!   as `Dead` (they are not classic groups), DeleteGroups deletes them when empty.

use kafkit_core::protocol::consumer_group_describe::response::DescribedGroup;
use kafkit_core::protocol::list_groups::response::ListedGroup;
use kafkit_core::protocol::offset_commit::response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafkit_core::protocol::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, ErrorCode, OffsetCommitRequest, OffsetCommitResponse,
    ResponseBody,
};

use super::group::GroupState;
use super::group848::{Sender, TopicMeta, Topics};
use super::{Cluster, Ctx, Outcome};

impl Cluster {
    /// The KIP-848 coordinator, for inspection.
    pub fn consumer_groups(&self) -> &super::group848::ConsumerGroups {
        &self.groups848
    }

    /// The cluster's topics as the KIP-848 coordinator sees them.
    pub(super) fn topic_metas(&self) -> Topics {
        self.topics
            .iter()
            .map(|(name, t)| {
                let meta = TopicMeta {
                    id: t.id,
                    partitions: t.partitions.len() as i32,
                };
                (name.clone(), meta)
            })
            .collect()
    }

    /// Whether `group` is a classic group with members (or a rebalance under way).
    fn classic_in_use(&self, group: &str) -> bool {
        self.groups
            .group_state(group)
            .is_some_and(|s| !matches!(s, GroupState::Empty | GroupState::Dead))
    }

    pub(super) fn handle_consumer_group_heartbeat(
        &mut self,
        ctx: &Ctx,
        r: ConsumerGroupHeartbeatRequest,
    ) -> Outcome {
        let fail = |e: ErrorCode, m: &str| {
            Outcome::Reply(ResponseBody::ConsumerGroupHeartbeat(
                ConsumerGroupHeartbeatResponse {
                    error_code: e.code(),
                    error_message: Some(m.to_owned()),
                    ..Default::default()
                },
            ))
        };
        if !self.coordinates(ctx, &r.group_id) {
            return fail(
                ErrorCode::NOT_COORDINATOR,
                "not the coordinator of this group",
            );
        }
        if self.classic_in_use(&r.group_id) {
            return fail(
                ErrorCode::GROUP_ID_NOT_FOUND,
                &format!("Group {} is not a consumer group.", r.group_id),
            );
        }
        let topics = self.topic_metas();
        let client_id = ctx.header.client_id.clone().unwrap_or_default();
        let host = self
            .conns
            .get(&(ctx.broker, ctx.conn))
            .map_or_else(|| "/127.0.0.1".to_owned(), |c| c.client_host.clone());
        let from = Sender {
            version: ctx.version,
            client_id: &client_id,
            client_host: &host,
        };
        let resp = self.groups848.heartbeat(r, from, &topics, ctx.now);
        Outcome::Reply(ResponseBody::ConsumerGroupHeartbeat(resp))
    }

    pub(super) fn handle_consumer_group_describe(
        &mut self,
        ctx: &Ctx,
        r: ConsumerGroupDescribeRequest,
    ) -> Outcome {
        let topics = self.topic_metas();
        let groups = r
            .group_ids
            .iter()
            .map(|id| {
                let failed = |e: ErrorCode, m: String| DescribedGroup {
                    error_code: e.code(),
                    error_message: Some(m),
                    group_id: id.clone(),
                    authorized_operations: i32::MIN,
                    ..Default::default()
                };
                if !self.coordinates(ctx, id) {
                    return failed(ErrorCode::NOT_COORDINATOR, "not the coordinator".into());
                }
                match self.groups848.group(id) {
                    Some(g) => g.describe(&topics),
                    None => failed(
                        ErrorCode::GROUP_ID_NOT_FOUND,
                        format!("Group {id} not found or is not a consumer group."),
                    ),
                }
            })
            .collect();
        Outcome::Reply(ResponseBody::ConsumerGroupDescribe(
            ConsumerGroupDescribeResponse {
                groups,
                ..Default::default()
            },
        ))
    }

    /// A JoinGroup's check against consumer groups: `Some(error)` if the group is a consumer
    /// group with members; an empty one is dropped so the classic protocol takes it over.
    pub(super) fn join_consumer_group_check(&mut self, group: &str) -> Option<ErrorCode> {
        if self.groups848.has_members(group) {
            return Some(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        }
        self.groups848.remove_group(group);
        None
    }

    /// Whether `group` is a consumer-protocol group.
    pub(super) fn is_consumer_group(&self, group: &str) -> bool {
        self.groups848.group(group).is_some()
    }

    /// OffsetCommit for a consumer group: the member check, then a plain commit to the
    /// offset store.
    pub(super) fn consumer_group_offset_commit(
        &mut self,
        ctx: &Ctx,
        mut r: OffsetCommitRequest,
    ) -> Outcome {
        let epoch = if ctx.version >= 1 {
            r.generation_id_or_member_epoch
        } else {
            -1
        };
        let checked =
            self.groups848
                .validate_offset_commit(&r.group_id, &r.member_id, epoch, ctx.version);
        if let Err(e) = checked {
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
                            error_code: e.code(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect();
            return Outcome::Reply(ResponseBody::OffsetCommit(OffsetCommitResponse {
                topics,
                ..Default::default()
            }));
        }
        // The member is checked: the offset store takes it as a commit to an empty group.
        r.generation_id_or_member_epoch = -1;
        r.member_id.clear();
        r.group_instance_id = None;
        self.delegate(ctx, r.into())
    }

    /// OffsetFetch v9+'s member check of group `group`, `None` if it may read.
    pub(super) fn consumer_group_fetch_error(
        &self,
        version: i16,
        group: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Option<ErrorCode> {
        if version < 9 {
            return None;
        }
        self.groups848
            .validate_offset_fetch(group, member_id, member_epoch)
            .err()
    }

    /// ListGroups' consumer groups coordinated here, in place of the classic entries that
    /// only hold their offsets.
    pub(super) fn list_consumer_groups(
        &self,
        ctx: &Ctx,
        states: &[String],
        types: &[String],
        listed: &mut Vec<ListedGroup>,
    ) {
        listed.retain(|g| self.groups848.group(&g.group_id).is_none());
        let lower = |v: &[String]| v.iter().map(|s| s.to_lowercase()).collect::<Vec<_>>();
        let (states, types) = (lower(states), lower(types));
        for id in self.groups848.group_ids() {
            if self.coordinator_for(&id) != ctx.broker {
                continue;
            }
            let Some(g) = self.groups848.group(&id) else {
                continue;
            };
            let state = g.state().name();
            if ctx.version >= 4 && !states.is_empty() && !states.contains(&state.to_lowercase()) {
                continue;
            }
            if ctx.version >= 5 && !types.is_empty() && !types.iter().any(|t| t == "consumer") {
                continue;
            }
            listed.push(ListedGroup {
                group_id: id.clone(),
                protocol_type: "consumer".into(),
                group_state: if ctx.version >= 4 {
                    state.into()
                } else {
                    String::new()
                },
                group_type: if ctx.version >= 5 {
                    "consumer".into()
                } else {
                    String::new()
                },
                ..Default::default()
            });
        }
    }

    /// DeleteGroups for consumer groups: `Some(error)` for one with members
    /// (`NON_EMPTY_GROUP`); an empty one is forgotten (its offsets go with the classic
    /// entry, if any). `None` if `group` is not a consumer group.
    pub(super) fn delete_consumer_group(&mut self, group: &str) -> Option<ErrorCode> {
        if self.groups848.has_members(group) {
            return Some(ErrorCode::NON_EMPTY_GROUP);
        }
        if self.groups848.remove_group(group) {
            if self.groups.group_state(group).is_none() {
                return Some(ErrorCode::NONE);
            }
            return None;
        }
        None
    }
}
