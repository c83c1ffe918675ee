//! Group calls (ListGroups to every broker; ConsumerGroupDescribe or DescribeGroups,
//! DeleteGroups, OffsetFetch, OffsetCommit and OffsetDelete to each group's coordinator) and
//! DeleteRecords (to each partition's leader).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::consumer::group::member::offset_fetch::{
    offset_fetch_group_rows, offset_fetch_request, GROUPS_LAYOUT_VERSION,
};
use crate::consumer::{OffsetAndMetadata, TopicPartition};
use crate::network::{CoordinatorKind, NetError, NodeId, Response, Target};
use crate::protocol::consumer_group_describe::response::{
    Assignment as DescribedAssignment, DescribedGroup,
};
use crate::protocol::offset_commit::request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use crate::protocol::offset_delete::request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use crate::protocol::offset_fetch::response::OffsetFetchResponseTopic;
use crate::protocol::{
    delete_records, ApiKey, ConsumerGroupDescribeRequest, DeleteGroupsRequest,
    DeleteRecordsRequest, DescribeGroupsRequest, ErrorCode, ListGroupsRequest, MetadataRequest,
    OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, RequestBody, ResponseBody,
};

use super::engine::{
    answer, coordinator, group_verdict, Api, Call, Ctx, NoAnswer, Operation, Refresh, Verdict,
};
use super::types::{
    AdminError, ConsumerGroupDescription, ConsumerGroupListing, ConsumerGroupsListing, GroupType,
    MemberDescription,
};
use super::AdminOutcome;

/// OffsetCommit v9 needs a member epoch; v8 is what the consumer speaks too.
const MAX_COMMIT_VERSION: i16 = 8;

/// From this OffsetFetch version on, requests and responses carry a list of groups.
const LAYOUT_CHANGE_VERSION: i16 = GROUPS_LAYOUT_VERSION;

fn call(target: Target, body: RequestBody, max_version: Option<i16>) -> Call {
    Call {
        target,
        body,
        max_version,
        tag: 0,
    }
}

fn each<K: Clone, V>(keys: &[K], v: impl Fn() -> Verdict<V>) -> Vec<(K, Verdict<V>)> {
    keys.iter().map(|k| (k.clone(), v())).collect()
}

/// ListGroups on every broker, gathered. First a Metadata request names the brokers.
pub(crate) struct ListGroups {
    /// Whether the call was started (a call refused by a closing client never is).
    started: bool,
    metadata: Option<u64>,
    asked: HashMap<u64, NodeId>,
    retry: Vec<NodeId>,
    retry_metadata: bool,
    groups: Vec<ConsumerGroupListing>,
    errors: Vec<AdminError>,
}

impl ListGroups {
    pub fn new() -> Self {
        ListGroups {
            started: false,
            metadata: None,
            asked: HashMap::new(),
            retry: Vec::new(),
            retry_metadata: false,
            groups: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn ask_metadata(&mut self, ctx: &mut Ctx<'_>) {
        let body = RequestBody::Metadata(MetadataRequest {
            topics: Some(Vec::new()),
            allow_auto_topic_creation: false,
            ..Default::default()
        });
        self.metadata = Some(ctx.send(Target::Any, body, None));
    }

    fn ask(&mut self, node: NodeId, ctx: &mut Ctx<'_>) {
        let body = RequestBody::ListGroups(ListGroupsRequest::default());
        let tag = ctx.send(Target::Node(node), body, None);
        self.asked.insert(tag, node);
    }

    fn retry_or_fail(&mut self, node: Option<NodeId>, error: AdminError, ctx: &mut Ctx<'_>) {
        if ctx.retry_later() {
            match node {
                Some(n) => self.retry.push(n),
                None => self.retry_metadata = true,
            }
        } else {
            self.errors.push(error);
        }
    }
}

impl Operation for ListGroups {
    fn start(&mut self, ctx: &mut Ctx<'_>) {
        self.started = true;
        self.ask_metadata(ctx);
    }

    fn on_response(&mut self, tag: u64, result: Result<Response, NetError>, ctx: &mut Ctx<'_>) {
        if self.metadata == Some(tag) {
            self.metadata = None;
            match answer::<MetadataRequest>(result) {
                Ok(m) => {
                    for b in &m.brokers {
                        self.ask(b.node_id, ctx);
                    }
                }
                Err(e) => match e.verdict::<()>(Refresh::None) {
                    Verdict::Retry(error, _) => self.retry_or_fail(None, error, ctx),
                    Verdict::Done(Err(error)) => self.errors.push(error),
                    _ => {}
                },
            }
            return;
        }
        let Some(node) = self.asked.remove(&tag) else {
            return;
        };
        match answer::<ListGroupsRequest>(result) {
            Ok(r) => {
                let code = r.error();
                if code.is_ok() {
                    self.groups.extend(r.groups.into_iter().map(|g| {
                        ConsumerGroupListing {
                            group_id: g.group_id,
                            protocol_type: g.protocol_type,
                            state: Some(g.group_state).filter(|s| !s.is_empty()),
                            // Empty below ListGroups v5: the broker predates group types.
                            group_type: Some(g.group_type)
                                .filter(|t| !t.is_empty())
                                .map(|t| GroupType::parse(&t)),
                            coordinator: node,
                        }
                    }));
                } else {
                    let error = AdminError::broker(ApiKey::ListGroups, code, None);
                    if code.is_retriable() {
                        self.retry_or_fail(Some(node), error, ctx);
                    } else {
                        self.errors.push(error);
                    }
                }
            }
            Err(e) => match e.verdict::<()>(Refresh::None) {
                Verdict::Retry(error, _) => self.retry_or_fail(Some(node), error, ctx),
                Verdict::Done(Err(error)) => self.errors.push(error),
                _ => {}
            },
        }
    }

    fn on_retry(&mut self, ctx: &mut Ctx<'_>) {
        if std::mem::take(&mut self.retry_metadata) {
            self.ask_metadata(ctx);
        }
        for node in std::mem::take(&mut self.retry) {
            self.ask(node, ctx);
        }
    }

    fn abandon(&mut self, error: AdminError) {
        // One error for the metadata step if it is unfinished (or never began), and one per
        // broker not heard from: the listing says which part of the cluster it is missing.
        let metadata_open = self.metadata.take().is_some();
        if !self.started || metadata_open || std::mem::take(&mut self.retry_metadata) {
            self.errors.push(error.clone());
        }
        let unanswered = self.asked.drain().count() + std::mem::take(&mut self.retry).len();
        self.errors.extend(std::iter::repeat_n(error, unanswered));
    }

    fn finish(self: Box<Self>) -> AdminOutcome {
        let mut groups = self.groups;
        groups.sort();
        groups.dedup_by(|a, b| a.group_id == b.group_id);
        if groups.is_empty() && self.errors.len() == 1 && self.asked.is_empty() {
            // Nothing answered at all (the Metadata request failed): one error for the call.
            let mut errors = self.errors;
            return AdminOutcome::GroupListing(Err(errors.remove(0)));
        }
        AdminOutcome::GroupListing(Ok(ConsumerGroupsListing {
            groups,
            errors: self.errors,
        }))
    }
}

/// Describes groups: ConsumerGroupDescribe first, as Java's admin client does, then
/// DescribeGroups for the groups it does not know (`GROUP_ID_NOT_FOUND`: a classic group, or
/// none at all) and for every group once a coordinator lacks the API. One request per group
/// to its coordinator.
pub(crate) struct DescribeGroups {
    /// Groups to ask with DescribeGroups (ConsumerGroupDescribe did not know them).
    classic: BTreeSet<String>,
    /// Whether a coordinator lacked ConsumerGroupDescribe: every group then goes classic
    /// (the coordinators of one cluster run one release).
    classic_only: bool,
}

impl DescribeGroups {
    pub fn new() -> Self {
        DescribeGroups {
            classic: BTreeSet::new(),
            classic_only: false,
        }
    }

    /// Whether `group` is asked with DescribeGroups: after a fallback, or when its
    /// coordinator's versions are known and lack ConsumerGroupDescribe.
    fn asks_classic(&self, group: &str, ctx: &Ctx<'_>) -> bool {
        if self.classic_only || self.classic.contains(group) {
            return true;
        }
        ctx.net
            .coordinator(CoordinatorKind::Group, group)
            .and_then(|node| ctx.net.broker_versions(node))
            .is_some_and(|(_, table)| {
                table
                    .negotiate(ApiKey::ConsumerGroupDescribe, None)
                    .is_none()
            })
    }

    fn parse_classic(
        &mut self,
        node: NodeId,
        r: crate::protocol::DescribeGroupsResponse,
    ) -> Vec<(String, Verdict<ConsumerGroupDescription>)> {
        r.groups
            .into_iter()
            .map(|g| {
                let code = if g.error().is_ok() && g.group_state == "Dead" {
                    ErrorCode::GROUP_ID_NOT_FOUND
                } else {
                    g.error()
                };
                let id = g.group_id.clone();
                let verdict = group_verdict(ApiKey::DescribeGroups, &id, code, None, || {
                    let consumer = g.protocol_type == "consumer" || g.protocol_type.is_empty();
                    ConsumerGroupDescription {
                        members: g
                            .members
                            .into_iter()
                            .map(|m| MemberDescription {
                                assignment: if consumer && !m.member_assignment.is_empty() {
                                    crate::consumer::assignor::decode_assignment(
                                        &m.member_assignment,
                                    )
                                    .map(|a| a.partitions)
                                    .unwrap_or_default()
                                } else {
                                    Vec::new()
                                },
                                member_id: m.member_id,
                                group_instance_id: m.group_instance_id,
                                client_id: m.client_id,
                                host: m.client_host,
                                member_epoch: None,
                                subscribed_topics: Vec::new(),
                                subscribed_topic_regex: None,
                                target_assignment: None,
                            })
                            .collect(),
                        group_id: g.group_id,
                        protocol_type: g.protocol_type,
                        partition_assignor: g.protocol_data,
                        state: g.group_state,
                        group_type: GroupType::Classic,
                        group_epoch: None,
                        assignment_epoch: None,
                        coordinator: node,
                    }
                });
                (id, verdict)
            })
            .collect()
    }

    fn parse_consumer(
        &mut self,
        node: NodeId,
        groups: Vec<DescribedGroup>,
    ) -> Vec<(String, Verdict<ConsumerGroupDescription>)> {
        let api = ApiKey::ConsumerGroupDescribe;
        groups
            .into_iter()
            .map(|g| {
                let id = g.group_id.clone();
                let code = g.error();
                let verdict = match code {
                    // Not a consumer-protocol group (or no group): DescribeGroups knows
                    // classic groups, and reports a missing one as Dead.
                    ErrorCode::GROUP_ID_NOT_FOUND | ErrorCode::UNSUPPORTED_VERSION => {
                        self.classic.insert(id.clone());
                        Verdict::Again
                    }
                    _ => group_verdict(api, &id, code, g.error_message.clone(), || {
                        described_consumer_group(g, node)
                    }),
                };
                (id, verdict)
            })
            .collect()
    }
}

/// A ConsumerGroupDescribe entry as a [`ConsumerGroupDescription`].
fn described_consumer_group(g: DescribedGroup, node: NodeId) -> ConsumerGroupDescription {
    ConsumerGroupDescription {
        members: g
            .members
            .into_iter()
            .map(|m| MemberDescription {
                member_id: m.member_id,
                group_instance_id: m.instance_id,
                client_id: m.client_id,
                host: m.client_host,
                assignment: partitions(m.assignment),
                member_epoch: Some(m.member_epoch),
                subscribed_topics: m.subscribed_topic_names,
                subscribed_topic_regex: m.subscribed_topic_regex,
                target_assignment: Some(partitions(m.target_assignment)),
            })
            .collect(),
        group_id: g.group_id,
        protocol_type: "consumer".to_owned(),
        partition_assignor: g.assignor_name,
        state: g.group_state,
        group_type: GroupType::Consumer,
        group_epoch: Some(g.group_epoch),
        assignment_epoch: Some(g.assignment_epoch),
        coordinator: node,
    }
}

/// The partitions of a ConsumerGroupDescribe assignment, sorted.
fn partitions(a: DescribedAssignment) -> Vec<TopicPartition> {
    let mut out: Vec<TopicPartition> = a
        .topic_partitions
        .into_iter()
        .flat_map(|t| {
            let name = t.topic_name;
            t.partitions
                .into_iter()
                .map(move |p| TopicPartition::new(name.as_str(), p))
        })
        .collect();
    out.sort();
    out
}

impl Api for DescribeGroups {
    type Key = String;
    type Value = ConsumerGroupDescription;

    fn requests(&mut self, keys: &[String], ctx: &mut Ctx<'_>) -> Vec<(Call, Vec<String>)> {
        keys.iter()
            .map(|g| {
                let body = if self.asks_classic(g, ctx) {
                    RequestBody::DescribeGroups(DescribeGroupsRequest {
                        groups: vec![g.clone()],
                        ..Default::default()
                    })
                } else {
                    RequestBody::ConsumerGroupDescribe(ConsumerGroupDescribeRequest {
                        group_ids: vec![g.clone()],
                        ..Default::default()
                    })
                };
                (call(coordinator(g), body, None), vec![g.clone()])
            })
            .collect()
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[String],
    ) -> Vec<(String, Verdict<ConsumerGroupDescription>)> {
        let refresh = Refresh::Coordinator(keys[0].clone());
        let resp = match result {
            // The coordinator lacks ConsumerGroupDescribe (a broker before Kafka 4.0, or one
            // with the new protocol off): DescribeGroups for every group from now on.
            Err(NetError::Unsupported {
                api: ApiKey::ConsumerGroupDescribe,
                ..
            }) => {
                self.classic_only = true;
                return keys.iter().map(|k| (k.clone(), Verdict::Again)).collect();
            }
            Err(e) => return NoAnswer::Net(e).each(keys, refresh),
            Ok(resp) => resp,
        };
        let node = resp.node;
        if matches!(resp.body, ResponseBody::ConsumerGroupDescribe(_)) {
            return match resp.body_as::<ConsumerGroupDescribeRequest>() {
                Ok(r) => self.parse_consumer(node, r.groups),
                Err(u) => NoAnswer::Unexpected(u).each(keys, refresh),
            };
        }
        match resp.body_as::<DescribeGroupsRequest>() {
            Ok(r) => self.parse_classic(node, r),
            Err(u) => NoAnswer::Unexpected(u).each(keys, refresh),
        }
    }

    fn finish(
        self,
        results: BTreeMap<String, Result<ConsumerGroupDescription, AdminError>>,
    ) -> AdminOutcome {
        AdminOutcome::GroupDescriptions(results)
    }
}

/// DeleteGroups, one request per group to its coordinator.
pub(crate) struct DeleteGroups;

impl Api for DeleteGroups {
    type Key = String;
    type Value = ();

    fn requests(&mut self, keys: &[String], _: &mut Ctx<'_>) -> Vec<(Call, Vec<String>)> {
        keys.iter()
            .map(|g| {
                let body = RequestBody::DeleteGroups(DeleteGroupsRequest {
                    groups_names: vec![g.clone()],
                    ..Default::default()
                });
                (call(coordinator(g), body, None), vec![g.clone()])
            })
            .collect()
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[String],
    ) -> Vec<(String, Verdict<()>)> {
        let refresh = Refresh::Coordinator(keys[0].clone());
        match answer::<DeleteGroupsRequest>(result) {
            Err(e) => e.each(keys, refresh),
            Ok(r) => r
                .results
                .into_iter()
                .map(|g| {
                    let v =
                        group_verdict(ApiKey::DeleteGroups, &g.group_id, g.error(), None, || ());
                    (g.group_id, v)
                })
                .collect(),
        }
    }

    fn finish(self, results: BTreeMap<String, Result<(), AdminError>>) -> AdminOutcome {
        AdminOutcome::Groups(results)
    }
}

/// The committed offsets of a group (OffsetFetch).
pub(crate) struct ListGroupOffsets {
    pub group: String,
    pub partitions: Option<Vec<TopicPartition>>,
}

type Offsets = BTreeMap<TopicPartition, OffsetAndMetadata>;

impl Api for ListGroupOffsets {
    type Key = ();
    type Value = Offsets;

    fn requests(&mut self, _: &[()], ctx: &mut Ctx<'_>) -> Vec<(Call, Vec<()>)> {
        // The highest version both sides support, once the coordinator's versions are known
        // (v0-7 carry the one group at the top level, v8+ a list of groups); before that, v7,
        // which every broker since Kafka 2.5 serves.
        let version = ctx
            .net
            .coordinator(CoordinatorKind::Group, &self.group)
            .and_then(|node| ctx.net.broker_versions(node))
            .and_then(|(_, table)| {
                // Capped below the v8 layout for now: in admin_core a request built with the
                // v8+ layout went out at a version below 8 (the broker saw no group), so the
                // admin client asks at v7, which every broker since Kafka 2.5 serves. The CLI's
                // `groups describe` negotiates up to v9.
                table.negotiate(ApiKey::OffsetFetch, Some(LAYOUT_CHANGE_VERSION - 1))
            })
            .unwrap_or(LAYOUT_CHANGE_VERSION - 1);
        let body = offset_fetch_request(&self.group, self.partitions.as_deref(), None, version);
        vec![(
            call(
                coordinator(&self.group),
                RequestBody::OffsetFetch(body),
                Some(version),
            ),
            vec![()],
        )]
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        _: &[()],
    ) -> Vec<((), Verdict<Offsets>)> {
        let api = ApiKey::OffsetFetch;
        let refresh = Refresh::Coordinator(self.group.clone());
        let r = match answer::<OffsetFetchRequest>(result) {
            Err(e) => return vec![((), e.verdict(refresh))],
            Ok(r) => r,
        };
        let (top, topics) = match offset_fetch_rows(r, &self.group) {
            Ok(x) => x,
            Err(e) => return vec![((), Verdict::Done(Err(e)))],
        };
        if !top.is_ok() {
            return vec![(
                (),
                group_verdict(api, &self.group, top, None, BTreeMap::new),
            )];
        }
        let mut offsets = BTreeMap::new();
        for t in topics {
            for p in t.partitions {
                let code = p.error();
                match code {
                    ErrorCode::NONE => {}
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => continue,
                    ErrorCode::UNSTABLE_OFFSET_COMMIT => {
                        return vec![(
                            (),
                            Verdict::Retry(AdminError::broker(api, code, None), Refresh::None),
                        )]
                    }
                    _ => {
                        let v = group_verdict(api, &self.group, code, p.metadata, BTreeMap::new);
                        return vec![((), v)];
                    }
                }
                if p.committed_offset < 0 {
                    continue;
                }
                offsets.insert(
                    TopicPartition::new(t.name.as_str(), p.partition_index),
                    OffsetAndMetadata::new(p.committed_offset)
                        .with_metadata(p.metadata.unwrap_or_default())
                        .with_leader_epoch(Some(p.committed_leader_epoch).filter(|e| *e >= 0)),
                );
            }
        }
        vec![((), Verdict::Done(Ok(offsets)))]
    }

    fn finish(self, mut results: BTreeMap<(), Result<Offsets, AdminError>>) -> AdminOutcome {
        AdminOutcome::GroupOffsets(results.remove(&()).unwrap_or(Err(AdminError::Closed)))
    }
}

/// The group's error and committed offsets in an OffsetFetch response of any version.
fn offset_fetch_rows(
    r: crate::protocol::OffsetFetchResponse,
    group: &str,
) -> Result<(ErrorCode, Vec<OffsetFetchResponseTopic>), AdminError> {
    offset_fetch_group_rows(r, group).ok_or_else(|| {
        AdminError::InvalidRequest(format!(
            "the OffsetFetch response has no entry for group `{group}`"
        ))
    })
}

/// Commits offsets for a group from outside it (OffsetCommit with generation -1 and no
/// member, as Java's admin client does: the group must be empty).
pub(crate) struct AlterGroupOffsets {
    pub group: String,
    pub offsets: Offsets,
}

impl Api for AlterGroupOffsets {
    type Key = TopicPartition;
    type Value = ();

    fn requests(
        &mut self,
        keys: &[TopicPartition],
        _: &mut Ctx<'_>,
    ) -> Vec<(Call, Vec<TopicPartition>)> {
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for tp in keys {
            let Some(o) = self.offsets.get(tp) else {
                continue;
            };
            if topics.last().is_none_or(|t| t.name != *tp.topic) {
                topics.push(OffsetCommitRequestTopic {
                    name: tp.topic.to_string(),
                    ..Default::default()
                });
            }
            topics
                .last_mut()
                .expect("pushed")
                .partitions
                .push(OffsetCommitRequestPartition {
                    partition_index: tp.partition,
                    committed_offset: o.offset,
                    committed_leader_epoch: o.leader_epoch.unwrap_or(-1),
                    committed_metadata: Some(o.metadata.clone()),
                    ..Default::default()
                });
        }
        let body = RequestBody::OffsetCommit(OffsetCommitRequest {
            group_id: self.group.clone(),
            generation_id_or_member_epoch: -1,
            member_id: String::new(),
            topics,
            ..Default::default()
        });
        vec![(
            call(coordinator(&self.group), body, Some(MAX_COMMIT_VERSION)),
            keys.to_vec(),
        )]
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[TopicPartition],
    ) -> Vec<(TopicPartition, Verdict<()>)> {
        let refresh = Refresh::Coordinator(self.group.clone());
        match answer::<OffsetCommitRequest>(result) {
            Err(e) => e.each(keys, refresh),
            Ok(r) => r
                .topics
                .into_iter()
                .flat_map(|t| {
                    let group = self.group.clone();
                    t.partitions.into_iter().map(move |p| {
                        let v = group_verdict(ApiKey::OffsetCommit, &group, p.error(), None, || ());
                        (TopicPartition::new(t.name.as_str(), p.partition_index), v)
                    })
                })
                .collect(),
        }
    }

    fn finish(self, results: BTreeMap<TopicPartition, Result<(), AdminError>>) -> AdminOutcome {
        AdminOutcome::Partitions(results)
    }
}

/// Deletes a group's committed offsets (OffsetDelete; the group must not be subscribed to
/// the topics).
pub(crate) struct DeleteGroupOffsets {
    pub group: String,
}

impl Api for DeleteGroupOffsets {
    type Key = TopicPartition;
    type Value = ();

    fn requests(
        &mut self,
        keys: &[TopicPartition],
        _: &mut Ctx<'_>,
    ) -> Vec<(Call, Vec<TopicPartition>)> {
        let mut topics: Vec<OffsetDeleteRequestTopic> = Vec::new();
        for tp in keys {
            if topics.last().is_none_or(|t| t.name != *tp.topic) {
                topics.push(OffsetDeleteRequestTopic {
                    name: tp.topic.to_string(),
                    ..Default::default()
                });
            }
            topics
                .last_mut()
                .expect("pushed")
                .partitions
                .push(OffsetDeleteRequestPartition {
                    partition_index: tp.partition,
                    ..Default::default()
                });
        }
        let body = RequestBody::OffsetDelete(OffsetDeleteRequest {
            group_id: self.group.clone(),
            topics,
            ..Default::default()
        });
        vec![(call(coordinator(&self.group), body, None), keys.to_vec())]
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[TopicPartition],
    ) -> Vec<(TopicPartition, Verdict<()>)> {
        let api = ApiKey::OffsetDelete;
        let refresh = Refresh::Coordinator(self.group.clone());
        let r = match answer::<OffsetDeleteRequest>(result) {
            Err(e) => return e.each(keys, refresh),
            Ok(r) => r,
        };
        let top = r.error();
        if !top.is_ok() {
            let group = self.group.clone();
            return each(keys, || group_verdict(api, &group, top, None, || ()));
        }
        r.topics
            .into_iter()
            .flat_map(|t| {
                t.partitions.into_iter().map(move |p| {
                    let code = p.error();
                    let v = if code.is_ok() {
                        Verdict::Done(Ok(()))
                    } else {
                        Verdict::Done(Err(AdminError::broker(api, code, None)))
                    };
                    (TopicPartition::new(t.name.as_str(), p.partition_index), v)
                })
            })
            .collect()
    }

    fn finish(self, results: BTreeMap<TopicPartition, Result<(), AdminError>>) -> AdminOutcome {
        AdminOutcome::Partitions(results)
    }
}

/// DeleteRecords: one request per partition, to its leader.
pub(crate) struct DeleteRecords {
    pub before: BTreeMap<TopicPartition, i64>,
}

impl Api for DeleteRecords {
    type Key = TopicPartition;
    type Value = i64;

    fn requests(
        &mut self,
        keys: &[TopicPartition],
        ctx: &mut Ctx<'_>,
    ) -> Vec<(Call, Vec<TopicPartition>)> {
        use delete_records::request::{DeleteRecordsPartition, DeleteRecordsTopic};
        let timeout_ms = ctx
            .deadline
            .saturating_duration_since(ctx.now)
            .as_millis()
            .min(i32::MAX as u128) as i32;
        keys.iter()
            .filter_map(|tp| Some((tp, *self.before.get(tp)?)))
            .map(|(tp, offset)| {
                let body = RequestBody::DeleteRecords(DeleteRecordsRequest {
                    topics: vec![DeleteRecordsTopic {
                        name: tp.topic.to_string(),
                        partitions: vec![DeleteRecordsPartition {
                            partition_index: tp.partition,
                            offset,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    timeout_ms,
                    ..Default::default()
                });
                let target = Target::Leader {
                    topic: tp.topic.to_string(),
                    partition: tp.partition,
                };
                (call(target, body, None), vec![tp.clone()])
            })
            .collect()
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[TopicPartition],
    ) -> Vec<(TopicPartition, Verdict<i64>)> {
        let api = ApiKey::DeleteRecords;
        let r = match answer::<DeleteRecordsRequest>(result) {
            Err(e) => return e.each(keys, Refresh::Metadata),
            Ok(r) => r,
        };
        r.topics
            .into_iter()
            .flat_map(|t| {
                t.partitions.into_iter().map(move |p| {
                    let code = p.error();
                    let v = match code {
                        ErrorCode::NONE => Verdict::Done(Ok(p.low_watermark)),
                        ErrorCode::NOT_LEADER_OR_FOLLOWER | ErrorCode::LEADER_NOT_AVAILABLE => {
                            Verdict::Retry(AdminError::broker(api, code, None), Refresh::Metadata)
                        }
                        c if c.is_retriable() && c != ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
                            Verdict::Retry(AdminError::broker(api, code, None), Refresh::None)
                        }
                        _ => Verdict::Done(Err(AdminError::broker(api, code, None))),
                    };
                    (TopicPartition::new(t.name.as_str(), p.partition_index), v)
                })
            })
            .collect()
    }

    fn finish(self, results: BTreeMap<TopicPartition, Result<i64, AdminError>>) -> AdminOutcome {
        AdminOutcome::DeletedRecords(results)
    }
}
