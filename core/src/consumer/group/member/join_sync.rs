//! JoinGroup and SyncGroup: joining a generation (with the `MEMBER_ID_REQUIRED` round trip
//! of KIP-394), the leader's metadata lookup and assignment, the assignment a SyncGroup
//! answer carries (Java's `onJoinComplete`), and the leader's check that the partitions of
//! the group's topics did not change since it assigned.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::rebalance::Step;
use super::{group_error, Generation, GroupCtx, GroupMember, JoinWait, MemberState, Req};
use crate::consumer::assignor::{
    self, Assignment, ClusterMetadata, GroupMember as AssignorMember, PartitionAssignor,
    RebalanceProtocol, Subscription,
};
use crate::consumer::error::ConsumerError;
use crate::consumer::group::listener::RebalanceKind;
use crate::consumer::record::TopicPartition;
use crate::network::Target;
use crate::network::{ClusterView, NetError, NetworkClient, Response};
use crate::protocol::join_group::request::JoinGroupRequestProtocol;
use crate::protocol::join_group::response::JoinGroupResponseMember;
use crate::protocol::metadata::request::MetadataRequestTopic;
use crate::protocol::sync_group::request::SyncGroupRequestAssignment;
use crate::protocol::{
    ErrorCode, JoinGroupRequest, JoinGroupResponse, MetadataRequest, RequestBody, SyncGroupRequest,
    SyncGroupResponse,
};

/// The protocol type of consumer groups.
const PROTOCOL_TYPE: &str = "consumer";
/// JoinGroup v9 tells a restarted static leader it may skip the assignment (KIP-814).
const MAX_JOIN_VERSION: i16 = 9;
/// LeaveGroup v5 carries a reason.
pub(super) const MAX_LEAVE_VERSION: i16 = 5;
/// SyncGroup v5 carries the protocol type and name.
const MAX_SYNC_VERSION: i16 = 5;

/// The highest versions of JoinGroup, SyncGroup and LeaveGroup a broker handles correctly,
/// when lower than what it advertises.
///
/// librdkafka's mock cluster (whose cluster id starts with `mockCluster`) advertises
/// JoinGroup v6, SyncGroup v4 and LeaveGroup v4 but reads their requests with the older
/// layouts: a flexible JoinGroup or SyncGroup fails to parse and the connection is closed
/// (every join would fail the same way forever), and a v3+ LeaveGroup's member batch is read
/// as a single member id. librdkafka itself never sends those versions; neither do we there.
pub(super) fn group_version_caps(net: &NetworkClient) -> (i16, i16, i16) {
    let mock = net
        .cluster()
        .cluster_id
        .as_deref()
        .is_some_and(|id| id.starts_with("mockCluster"));
    if mock {
        (5, 3, 2)
    } else {
        (MAX_JOIN_VERSION, MAX_SYNC_VERSION, MAX_LEAVE_VERSION)
    }
}

/// The rebalance protocol every configured assignor supports, cooperative preferred (Java
/// picks the highest protocol common to all assignors).
pub(super) fn common_protocol(assignors: &[Box<dyn PartitionAssignor>]) -> RebalanceProtocol {
    let all_coop = !assignors.is_empty()
        && assignors.iter().all(|a| {
            a.supported_protocols()
                .contains(&RebalanceProtocol::Cooperative)
        });
    if all_coop {
        RebalanceProtocol::Cooperative
    } else {
        RebalanceProtocol::Eager
    }
}

fn partitions_per_topic(view: &ClusterView, topics: &BTreeSet<String>) -> BTreeMap<String, i32> {
    topics
        .iter()
        .filter_map(|t| {
            let info = view.topic(t)?;
            (info.error.is_ok() && !info.partitions.is_empty())
                .then(|| (t.clone(), info.partitions.len() as i32))
        })
        .collect()
}

/// Racks of each partition's replicas, for rack-aware assignment (KIP-881).
fn partition_racks(
    view: &ClusterView,
    ppt: &BTreeMap<String, i32>,
) -> BTreeMap<TopicPartition, Vec<String>> {
    let mut out = BTreeMap::new();
    if view.brokers.values().all(|b| b.rack.is_none()) {
        return out;
    }
    for t in ppt.keys() {
        let Some(info) = view.topic(t) else { continue };
        for p in &info.partitions {
            let racks: BTreeSet<String> = p
                .replicas
                .iter()
                .filter_map(|r| view.brokers.get(r).and_then(|b| b.rack.clone()))
                .collect();
            if !racks.is_empty() {
                out.insert(
                    TopicPartition::new(t.as_str(), p.partition),
                    racks.into_iter().collect(),
                );
            }
        }
    }
    out
}

impl GroupMember {
    pub(super) fn subscription_for(
        &self,
        topics: &BTreeSet<String>,
        assignor: &dyn PartitionAssignor,
    ) -> Subscription {
        Subscription {
            topics: topics.iter().cloned().collect(),
            user_data: assignor.subscription_user_data(topics),
            owned_partitions: self.owned.iter().cloned().collect(),
            generation_id: self.generation.0,
            rack_id: self.cfg.rack.clone(),
        }
    }

    pub(super) fn send_join(&mut self, ctx: &mut GroupCtx<'_>) {
        let Some(topics) = self.topics_now() else {
            self.enter(MemberState::Unjoined);
            self.request_rejoin("waiting for the pattern's topics");
            return;
        };
        let mut protocols = Vec::new();
        for a in &self.assignors {
            let sub = self.subscription_for(&topics, a.as_ref());
            match assignor::encode_subscription(&sub, assignor::CONSUMER_PROTOCOL_VERSION) {
                Ok(metadata) => protocols.push(JoinGroupRequestProtocol {
                    name: a.name().to_owned(),
                    metadata,
                    ..Default::default()
                }),
                Err(e) => {
                    self.set_fatal(ConsumerError::IllegalState {
                        detail: format!("cannot encode the subscription: {e}"),
                    });
                    return;
                }
            }
        }
        let body = JoinGroupRequest {
            group_id: self.cfg.group_id.clone(),
            session_timeout_ms: self.cfg.session_timeout_ms,
            rebalance_timeout_ms: self.cfg.rebalance_timeout_ms,
            member_id: self.member_id.clone(),
            group_instance_id: self.cfg.instance_id.clone(),
            protocol_type: PROTOCOL_TYPE.to_owned(),
            protocols,
            reason: Some(self.rejoin_reason.to_owned()).filter(|r| !r.is_empty()),
            ..Default::default()
        };
        tracing::debug!(group = %self.cfg.group_id, member = %self.member_id, "JoinGroup");
        if self.rebalance_span.is_none() {
            self.rebalance_span = crate::network::spans::rebalance(&self.cfg.group_id);
        }
        self.joined_topics = Some(topics);
        self.heartbeat.stop();
        self.is_leader = false;
        self.enter_joining(JoinWait::Sent);
        // The coordinator holds JoinGroup until every member has rejoined, up to the rebalance
        // timeout: give it that plus five seconds, as Java does, rather than the request
        // timeout (which would drop the connection mid-rebalance and resend).
        let rebalance = Duration::from_millis(self.cfg.rebalance_timeout_ms.max(0) as u64);
        let id = ctx.net.send_with_timeout(
            self.target(),
            RequestBody::JoinGroup(body),
            Some(group_version_caps(ctx.net).0),
            true,
            rebalance + Duration::from_secs(5),
            ctx.now,
        );
        self.requests.insert(id, Req::Join);
    }

    pub(super) fn retry_join(&mut self, now: Instant, backoff: bool) {
        let at = if backoff {
            now + self.cfg.retry_backoff
        } else {
            now
        };
        self.enter_joining(JoinWait::RetryAt(at));
    }

    pub(super) fn on_join(&mut self, result: Result<Response, NetError>, ctx: &mut GroupCtx<'_>) {
        if !matches!(self.join, Some(JoinWait::Sent)) {
            return;
        }
        let now = ctx.now;
        let resp: JoinGroupResponse = match result.map(Response::body_as::<JoinGroupRequest>) {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => return self.retry_join(now, true),
            Err(e) => {
                if let Some(f) = self.fatal_net_error(&e) {
                    return self.set_fatal(f);
                }
                self.coordinator_lost(ctx, "JoinGroup failed");
                return self.retry_join(now, true);
            }
        };
        let code = resp.error();
        match code {
            ErrorCode::NONE => {}
            ErrorCode::MEMBER_ID_REQUIRED => {
                // KIP-394: join again at once with the id the coordinator gave.
                self.member_id = resp.member_id;
                return self.send_join(ctx);
            }
            ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION => {
                self.lose_generation("JoinGroup: the member or generation is unknown", false);
                return;
            }
            ErrorCode::COORDINATOR_NOT_AVAILABLE | ErrorCode::NOT_COORDINATOR => {
                self.coordinator_lost(ctx, code.name());
                return self.retry_join(now, true);
            }
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS | ErrorCode::REBALANCE_IN_PROGRESS => {
                return self.retry_join(now, true)
            }
            ErrorCode::FENCED_INSTANCE_ID => {
                return self.set_fatal(group_error(
                    code,
                    format!(
                        "another consumer joined with group_instance_id {:?}",
                        self.cfg.instance_id.as_deref().unwrap_or("")
                    ),
                ))
            }
            c if c.is_retriable() => return self.retry_join(now, true),
            c => {
                return self.set_fatal(group_error(c, "JoinGroup refused"));
            }
        }
        self.member_id = resp.member_id.clone();
        self.generation = Generation(resp.generation_id);
        self.protocol_name = resp.protocol_name.clone();
        self.heartbeat.start(now);
        let leader = resp.leader == resp.member_id;
        tracing::debug!(
            group = %self.cfg.group_id, member = %self.member_id, generation = %self.generation,
            leader, protocol = ?self.protocol_name, "joined"
        );
        if leader && !resp.skip_assignment {
            self.is_leader = true;
            self.start_leader_assignment(resp.members, ctx);
        } else {
            // A follower, or a restarted static leader that may skip the assignment (KIP-814).
            self.is_leader = leader;
            self.send_sync(Vec::new(), ctx);
        }
    }

    fn start_leader_assignment(
        &mut self,
        members: Vec<JoinGroupResponseMember>,
        ctx: &mut GroupCtx<'_>,
    ) {
        let mut topics = BTreeSet::new();
        for m in &members {
            match assignor::decode_subscription(&m.metadata) {
                Ok(s) => topics.extend(s.topics),
                Err(e) => {
                    tracing::warn!(member = %m.member_id, error = %e, "undecodable subscription")
                }
            }
        }
        for t in &topics {
            // Kept in the metadata the consumer refreshes, to notice partition changes.
            ctx.net.add_topic_interest(t);
        }
        self.group_topics = topics.clone();
        let body = RequestBody::Metadata(MetadataRequest {
            topics: Some(
                topics
                    .into_iter()
                    .map(|name| MetadataRequestTopic {
                        name: Some(name),
                        ..Default::default()
                    })
                    .collect(),
            ),
            allow_auto_topic_creation: false,
            ..Default::default()
        });
        let id = ctx.net.send(Target::Any, body, None, true, ctx.now);
        self.requests.insert(id, Req::LeaderMetadata);
        self.enter_joining(JoinWait::Assigning(members));
    }

    pub(super) fn on_leader_metadata(
        &mut self,
        result: Result<Response, NetError>,
        ctx: &mut GroupCtx<'_>,
    ) {
        // An answer for a join that was given up since (the member rejoined) changes nothing.
        let members = match self.join.take() {
            Some(JoinWait::Assigning(members)) => members,
            other => {
                self.join = other;
                return;
            }
        };
        // Every way on from here sets the state again (SyncGroup, a retry, a fatal error).
        self.enter(MemberState::Syncing);
        let view = match result.map(Response::body_as::<MetadataRequest>) {
            Ok(Ok(m)) => {
                let mut v = ClusterView::default();
                v.update(&m, true);
                v
            }
            // Without metadata the assignment would be wrong: ask again.
            _ => return self.start_leader_assignment(members, ctx),
        };
        let ppt = partitions_per_topic(&view, &self.group_topics);
        let racks = partition_racks(&view, &ppt);
        let mut group = Vec::new();
        for m in &members {
            if let Ok(subscription) = assignor::decode_subscription(&m.metadata) {
                group.push(AssignorMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    subscription,
                });
            }
        }
        let name = self.protocol_name.clone().unwrap_or_default();
        let Some(assignor) = self.assignors.iter_mut().find(|a| a.name() == name) else {
            return self.set_fatal(group_error(
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                format!("the coordinator chose assignor {name:?}, which this member lacks"),
            ));
        };
        let cluster = ClusterMetadata {
            partitions_per_topic: &ppt,
            partition_racks: (!racks.is_empty()).then_some(&racks),
        };
        let assignments = match assignor.assign(&cluster, &group) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(group = %self.cfg.group_id, error = %e, "the assignor failed");
                self.errors.push_back(ConsumerError::IllegalState {
                    detail: format!("assignor {name} failed: {e}"),
                });
                return self.retry_join(ctx.now, true);
            }
        };
        tracing::debug!(group = %self.cfg.group_id, assignor = %name, members = group.len(), "assigned as leader");
        let mut encoded = Vec::new();
        for (member_id, a) in &assignments {
            match assignor::encode_assignment(a, assignor::CONSUMER_PROTOCOL_VERSION) {
                Ok(bytes) => encoded.push(SyncGroupRequestAssignment {
                    member_id: member_id.clone(),
                    assignment: bytes,
                    ..Default::default()
                }),
                Err(e) => {
                    return self.set_fatal(ConsumerError::IllegalState {
                        detail: format!("cannot encode an assignment: {e}"),
                    })
                }
            }
        }
        self.assignment_snapshot = Some(ppt);
        self.send_sync(encoded, ctx);
    }

    fn send_sync(&mut self, assignments: Vec<SyncGroupRequestAssignment>, ctx: &mut GroupCtx<'_>) {
        let body = SyncGroupRequest {
            group_id: self.cfg.group_id.clone(),
            generation_id: self.generation.0,
            member_id: self.member_id.clone(),
            group_instance_id: self.cfg.instance_id.clone(),
            protocol_type: Some(PROTOCOL_TYPE.to_owned()),
            protocol_name: self.protocol_name.clone(),
            assignments,
            ..Default::default()
        };
        let id = ctx.net.send(
            self.target(),
            RequestBody::SyncGroup(body),
            Some(group_version_caps(ctx.net).1),
            true,
            ctx.now,
        );
        self.requests.insert(id, Req::Sync);
        self.enter(MemberState::Syncing);
    }

    pub(super) fn on_sync(&mut self, result: Result<Response, NetError>, ctx: &mut GroupCtx<'_>) {
        if self.state != MemberState::Syncing {
            return;
        }
        let now = ctx.now;
        let resp: SyncGroupResponse = match result.map(Response::body_as::<SyncGroupRequest>) {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => return self.retry_join(now, true),
            Err(e) => {
                if let Some(f) = self.fatal_net_error(&e) {
                    return self.set_fatal(f);
                }
                self.coordinator_lost(ctx, "SyncGroup failed");
                return self.retry_join(now, true);
            }
        };
        let code = resp.error();
        match code {
            ErrorCode::NONE => {}
            ErrorCode::REBALANCE_IN_PROGRESS => {
                // The generation moved on while syncing: join it (no new revocation).
                return self.retry_join(now, false);
            }
            ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION => {
                return self
                    .lose_generation("SyncGroup: the member or generation is unknown", false)
            }
            ErrorCode::COORDINATOR_NOT_AVAILABLE | ErrorCode::NOT_COORDINATOR => {
                self.coordinator_lost(ctx, code.name());
                return self.retry_join(now, true);
            }
            ErrorCode::FENCED_INSTANCE_ID => {
                return self.set_fatal(group_error(
                    code,
                    "another consumer joined with this group_instance_id",
                ))
            }
            c if c.is_retriable() => return self.retry_join(now, true),
            c => return self.set_fatal(group_error(c, "SyncGroup refused")),
        }
        if let (Some(name), Some(mine)) = (&resp.protocol_name, &self.protocol_name) {
            if name != mine {
                return self.set_fatal(group_error(
                    ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                    format!("SyncGroup names protocol {name}, JoinGroup named {mine}"),
                ));
            }
        }
        let assignment = match assignor::decode_assignment(&resp.assignment) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable assignment: rejoining");
                return self.retry_join(now, true);
            }
        };
        self.on_assignment(assignment, ctx);
    }

    /// Java's `onJoinComplete`.
    fn on_assignment(&mut self, assignment: Assignment, ctx: &mut GroupCtx<'_>) {
        let now = ctx.now;
        self.enter(MemberState::Stable);
        let name = self.protocol_name.clone().unwrap_or_default();
        if let Some(a) = self.assignors.iter_mut().find(|a| a.name() == name) {
            a.on_assignment(&assignment, self.generation.0);
        }
        let assigned: BTreeSet<TopicPartition> = assignment.partitions.into_iter().collect();
        if let Some(topics) = self.topics_now() {
            if assigned.iter().any(|tp| !topics.contains(&*tp.topic)) {
                // Assigned a topic this member no longer subscribes to: a newer subscription
                // must reach the leader.
                self.request_rejoin("assigned topics outside the subscription");
            }
        }
        let revoked: BTreeSet<TopicPartition> = self.owned.difference(&assigned).cloned().collect();
        let added: BTreeSet<TopicPartition> = assigned.difference(&self.owned).cloned().collect();
        let span = std::mem::replace(&mut self.rebalance_span, tracing::Span::none());
        if !span.is_disabled() {
            let list = |s: &BTreeSet<TopicPartition>| {
                crate::network::spans::partition_list(s.iter().map(|tp| (&*tp.topic, tp.partition)))
            };
            span.record("kafkit.generation", self.generation.0);
            span.record("kafkit.member_id", self.member_id.as_str());
            span.record("kafkit.assigned", list(&assigned).as_str());
            span.record("kafkit.revoked", list(&revoked).as_str());
        }
        tracing::info!(
            group = %self.cfg.group_id, member = %self.member_id, generation = %self.generation,
            assigned = assigned.len(), added = added.len(), revoked = revoked.len(),
            "assignment received"
        );
        if !revoked.is_empty() {
            self.steps
                .push_back(Step::Call(RebalanceKind::Revoked, revoked.clone()));
            self.steps.push_back(Step::Revoke(revoked.clone()));
            if self.protocol == RebalanceProtocol::Cooperative {
                // KIP-429: the partitions given up go to their new owner in the next round.
                self.request_rejoin("partitions were revoked");
            }
        }
        self.steps.push_back(Step::Assign(assigned));
        self.steps
            .push_back(Step::Call(RebalanceKind::Assigned, added));
        if let Some(interval) = self.cfg.auto_commit {
            self.next_auto_commit = Some(now + interval);
        }
        if self.is_leader {
            self.check_leader_snapshot(&ctx.net.cluster().clone());
        }
    }

    /// A new cluster view: the leader rejoins when the partitions of the group's topics
    /// changed since it assigned (Java's metadata snapshot check).
    pub fn on_metadata(&mut self, view: &Arc<ClusterView>) {
        if self.is_leader && self.state == MemberState::Stable {
            self.check_leader_snapshot(view);
        }
    }

    fn check_leader_snapshot(&mut self, view: &ClusterView) {
        let Some(snapshot) = &self.assignment_snapshot else {
            return;
        };
        let changed = self.group_topics.iter().any(|t| match view.topic(t) {
            None => false, // not described yet
            Some(info) if info.error.is_ok() => {
                snapshot.get(t) != Some(&(info.partitions.len() as i32))
            }
            Some(info) if info.error == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
                snapshot.contains_key(t)
            }
            Some(_) => false,
        });
        if changed {
            self.request_rejoin("the partitions of the group's topics changed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::offset_fetch::awaiting_committed;
    use super::super::test_support::*;
    use super::super::*;

    #[test]
    fn no_join_before_the_first_poll() {
        let mut t = T::new(|_| {});
        t.poll(false);
        assert!(t.pending(|r| matches!(r, Req::Join)).is_none());
        t.poll(true);
        assert!(t.pending(|r| matches!(r, Req::Join)).is_some());
    }

    #[test]
    fn a_follower_joins_with_the_member_id_round_trip_and_waits_for_committed_offsets() {
        let mut t = T::new(|_| {});
        t.join_as_follower(&[0, 2]);
        assert_eq!(t.subs.assignment(), tps(&[0, 2]));
        assert_eq!(t.g.metadata().generation_id, 1);
        // New partitions wait for OffsetFetch: neither reset nor fetched meanwhile.
        for tp in tps(&[0, 2]) {
            assert!(awaiting_committed(&t.subs, &tp));
        }
        assert!(t.subs.resets_due(t.now).is_empty());
        assert!(t.pending(|r| matches!(r, Req::OffsetFetch(_))).is_some());
        assert!(!t.g.is_leader());
    }

    #[test]
    fn the_leader_fetches_metadata_then_assigns() {
        let mut t = T::new(|_| {});
        t.poll(true);
        t.join_response(ErrorCode::NONE, "m-1", "m-1");
        assert!(t.g.is_leader());
        let md = t
            .pending(|r| matches!(r, Req::LeaderMetadata))
            .expect("leader metadata");
        t.respond(
            md,
            ResponseBody::Metadata(MetadataResponse {
                topics: vec![MetadataResponseTopic {
                    name: Some("t".into()),
                    partitions: (0..3)
                        .map(|p| MetadataResponsePartition {
                            partition_index: p,
                            leader_id: 1,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        );
        assert_eq!(t.g.state(), MemberState::Syncing);
        assert_eq!(t.g.assignment_snapshot.as_ref().unwrap().get("t"), Some(&3));
        t.sync_response(&[0, 1, 2]);
        assert_eq!(t.complete().partitions, tps(&[0, 1, 2]));
    }

    /// The leader's metadata answer arriving after the member gave that join up (its
    /// generation was lost meanwhile) must leave the new join alone.
    #[test]
    fn a_stale_leader_metadata_answer_leaves_the_next_join_alone() {
        let mut t = T::new(|_| {});
        t.poll(true);
        t.join_response(ErrorCode::NONE, "m-1", "m-1");
        let md = t
            .pending(|r| matches!(r, Req::LeaderMetadata))
            .expect("leader metadata");
        t.heartbeat_response(ErrorCode::UNKNOWN_MEMBER_ID);
        t.poll(true);
        assert!(t.pending(|r| matches!(r, Req::Join)).is_some(), "rejoining");
        t.respond(md, ResponseBody::Metadata(MetadataResponse::default()));
        assert_eq!(t.g.state(), MemberState::Joining);
        t.join_response(ErrorCode::NONE, "m-2", "other");
        assert_eq!(t.g.state(), MemberState::Syncing, "the new join went on");
    }

    #[test]
    fn coordinator_errors_retry_after_the_backoff() {
        let mut t = T::new(|_| {});
        t.poll(true);
        t.join_response(ErrorCode::NOT_COORDINATOR, "", "");
        assert!(t.pending(|r| matches!(r, Req::Join)).is_none());
        assert!(t.g.poll_timeout().is_some());
        t.now += Duration::from_secs(1);
        t.poll(true);
        assert!(t.pending(|r| matches!(r, Req::Join)).is_some());
    }
}
