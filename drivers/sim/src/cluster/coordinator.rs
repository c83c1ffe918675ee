//! FindCoordinator, and the routing of the group APIs to the group coordinator
//! ([`super::group::GroupCoordinator`]).
//!
//! One coordinator instance serves the whole cluster: its state is keyed by group id, so it
//! behaves like one coordinator per broker whose groups move with coordinatorship, with the
//! state Kafka would reload from `__consumer_offsets` carried along (committed offsets survive
//! a coordinator crash). Which broker coordinates a group is decided here, as Kafka does:
//! `abs(hash(group id)) % 50` names a `__consumer_offsets` partition, spread over the live
//! brokers; a group request reaching another broker gets `NOT_COORDINATOR`.

use std::collections::{BTreeMap, HashMap};

use kafkit_core::codec::Uuid;
use kafkit_core::protocol::describe_groups::response::DescribedGroup;
use kafkit_core::protocol::find_coordinator::response::Coordinator;
use kafkit_core::protocol::offset_commit::response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafkit_core::protocol::offset_fetch::response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafkit_core::protocol::{
    delete_groups, DeleteGroupsResponse, DescribeGroupsResponse, ErrorCode, FindCoordinatorRequest,
    FindCoordinatorResponse, HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse,
    OffsetCommitResponse, OffsetDeleteResponse, OffsetFetchResponse, RequestBody, RequestHeader,
    ResponseBody, SyncGroupResponse,
};

use super::group::{ClientRef, GroupReply, TopicView};
use super::topics::Topic;
use super::{Cluster, ConnKey, ConnOutput, Ctx, Outcome, Waiting};

/// Partitions of Kafka's `__consumer_offsets` (`offsets.topic.num.partitions`).
const OFFSETS_PARTITIONS: i32 = 50;

/// Java's `String.hashCode` over UTF-16 code units.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The cluster's topics as the group coordinator sees them.
struct Topics<'a> {
    topics: &'a BTreeMap<String, Topic>,
    names: &'a HashMap<Uuid, String>,
}

impl TopicView for Topics<'_> {
    fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        self.topics
            .get(topic)
            .is_some_and(|t| t.partition(partition).is_some())
    }

    fn topic_id(&self, topic: &str) -> Option<Uuid> {
        self.topics.get(topic).map(|t| t.id)
    }

    fn topic_name(&self, id: Uuid) -> Option<String> {
        self.names.get(&id).cloned()
    }
}

impl Cluster {
    /// The broker coordinating `key` (a group or transactional id): -1 if every broker is
    /// down.
    pub fn coordinator_for(&self, key: &str) -> i32 {
        let live: Vec<i32> = self
            .brokers
            .iter()
            .filter(|b| b.alive)
            .map(|b| b.id)
            .collect();
        if live.is_empty() {
            return -1;
        }
        let partition = (java_hash(key) & 0x7fff_ffff) % OFFSETS_PARTITIONS;
        live[partition as usize % live.len()]
    }

    /// The group coordinator (group state and committed offsets), for inspection.
    pub fn groups(&self) -> &super::group::GroupCoordinator {
        &self.groups
    }

    pub(super) fn handle_find_coordinator(
        &mut self,
        ctx: &Ctx,
        req: FindCoordinatorRequest,
    ) -> Outcome {
        let v = ctx.version;
        let key_type = if v >= 1 { req.key_type } else { 0 };
        let lookup = |key: &str| -> Result<i32, (ErrorCode, &'static str)> {
            if !matches!(key_type, 0 | 1) {
                return Err((ErrorCode::INVALID_REQUEST, "Unsupported key type"));
            }
            if key.is_empty() {
                return Err((ErrorCode::INVALID_REQUEST, "The coordinator key is empty"));
            }
            match self.coordinator_for(key) {
                -1 => Err((
                    ErrorCode::COORDINATOR_NOT_AVAILABLE,
                    "The coordinator is not available.",
                )),
                id => Ok(id),
            }
        };
        let mut resp = FindCoordinatorResponse::default();
        if v < 4 {
            match lookup(&req.key) {
                Ok(id) => {
                    let b = self.broker(id).cloned();
                    if let Some(b) = b {
                        resp.node_id = b.id;
                        resp.host = b.host;
                        resp.port = b.port;
                    }
                    resp.error_message = None;
                }
                Err((code, msg)) => {
                    resp.error_code = code.code();
                    resp.node_id = -1;
                    resp.port = -1;
                    resp.error_message = Some(msg.into());
                }
            }
        } else {
            for key in &req.coordinator_keys {
                let mut c = Coordinator {
                    key: key.clone(),
                    node_id: -1,
                    port: -1,
                    error_message: None,
                    ..Default::default()
                };
                match lookup(key) {
                    Ok(id) => {
                        if let Some(b) = self.broker(id) {
                            c.node_id = b.id;
                            c.host = b.host.clone();
                            c.port = b.port;
                        }
                    }
                    Err((code, msg)) => {
                        c.error_code = code.code();
                        c.error_message = Some(msg.into());
                    }
                }
                resp.coordinators.push(c);
            }
        }
        Outcome::Reply(ResponseBody::FindCoordinator(resp))
    }

    fn client_ref(&self, ctx: &Ctx) -> ClientRef {
        ClientRef {
            broker: ctx.broker,
            conn: ctx.conn,
            correlation_id: ctx.header.correlation_id,
            api_version: ctx.version,
            client_id: ctx.header.client_id.clone().unwrap_or_default(),
            client_host: self
                .conns
                .get(&(ctx.broker, ctx.conn))
                .map_or_else(|| "/127.0.0.1".to_owned(), |c| c.client_host.clone()),
        }
    }

    /// Hands a request to the group coordinator.
    fn delegate(&mut self, ctx: &Ctx, body: RequestBody) -> Outcome {
        let client = self.client_ref(ctx);
        let view = Topics {
            topics: &self.topics,
            names: &self.topic_names,
        };
        let reply = self.groups.handle(client, body, &view, ctx.now);
        match reply {
            GroupReply::Now(body) => Outcome::Reply(body),
            GroupReply::Deferred => Outcome::Wait(Waiting::Group),
        }
    }

    /// Routes a group API request: `NOT_COORDINATOR` for groups this broker does not
    /// coordinate, the coordinator for the others.
    pub(super) fn handle_group_request(&mut self, ctx: &Ctx, body: RequestBody) -> Outcome {
        let here = |c: &Cluster, group: &str| c.coordinator_for(group) == ctx.broker;
        let not_coord = ErrorCode::NOT_COORDINATOR.code();
        match body {
            RequestBody::JoinGroup(r) if !here(self, &r.group_id) => {
                Outcome::Reply(ResponseBody::JoinGroup(JoinGroupResponse {
                    error_code: not_coord,
                    protocol_name: (ctx.version < 7).then(String::new),
                    ..Default::default()
                }))
            }
            RequestBody::SyncGroup(r) if !here(self, &r.group_id) => {
                Outcome::Reply(ResponseBody::SyncGroup(SyncGroupResponse {
                    error_code: not_coord,
                    ..Default::default()
                }))
            }
            RequestBody::Heartbeat(r) if !here(self, &r.group_id) => {
                Outcome::Reply(ResponseBody::Heartbeat(HeartbeatResponse {
                    error_code: not_coord,
                    ..Default::default()
                }))
            }
            RequestBody::LeaveGroup(r) if !here(self, &r.group_id) => {
                Outcome::Reply(ResponseBody::LeaveGroup(LeaveGroupResponse {
                    error_code: not_coord,
                    ..Default::default()
                }))
            }
            RequestBody::OffsetDelete(r) if !here(self, &r.group_id) => {
                Outcome::Reply(ResponseBody::OffsetDelete(OffsetDeleteResponse {
                    error_code: not_coord,
                    ..Default::default()
                }))
            }
            RequestBody::OffsetCommit(r) if !here(self, &r.group_id) => {
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
                                error_code: not_coord,
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
            RequestBody::OffsetFetch(r) if ctx.version < 8 => {
                if here(self, &r.group_id) {
                    return self.delegate(ctx, RequestBody::OffsetFetch(r));
                }
                let mut resp = OffsetFetchResponse::default();
                if ctx.version >= 2 {
                    resp.error_code = not_coord;
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
                                    error_code: not_coord,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect();
                }
                Outcome::Reply(ResponseBody::OffsetFetch(resp))
            }
            RequestBody::OffsetFetch(mut r) => {
                let order: Vec<String> = r.groups.iter().map(|g| g.group_id.clone()).collect();
                r.groups.retain(|g| here(self, &g.group_id));
                let mut owned =
                    self.delegate_owned(ctx, !r.groups.is_empty(), RequestBody::OffsetFetch(r));
                let mut groups = match owned.as_mut() {
                    Some(ResponseBody::OffsetFetch(resp)) => std::mem::take(&mut resp.groups),
                    _ => Vec::new(),
                };
                let merged = order
                    .into_iter()
                    .map(|id| match groups.iter().position(|g| g.group_id == id) {
                        Some(i) => groups.remove(i),
                        None => OffsetFetchResponseGroup {
                            group_id: id,
                            error_code: not_coord,
                            ..Default::default()
                        },
                    })
                    .collect();
                Outcome::Reply(ResponseBody::OffsetFetch(OffsetFetchResponse {
                    groups: merged,
                    ..Default::default()
                }))
            }
            RequestBody::DescribeGroups(mut r) => {
                let order = r.groups.clone();
                r.groups.retain(|g| here(self, g));
                let mut owned =
                    self.delegate_owned(ctx, !r.groups.is_empty(), RequestBody::DescribeGroups(r));
                let mut groups = match owned.as_mut() {
                    Some(ResponseBody::DescribeGroups(resp)) => std::mem::take(&mut resp.groups),
                    _ => Vec::new(),
                };
                let merged = order
                    .into_iter()
                    .map(|id| match groups.iter().position(|g| g.group_id == id) {
                        Some(i) => groups.remove(i),
                        None => DescribedGroup {
                            error_code: not_coord,
                            group_id: id,
                            ..Default::default()
                        },
                    })
                    .collect();
                Outcome::Reply(ResponseBody::DescribeGroups(DescribeGroupsResponse {
                    groups: merged,
                    ..Default::default()
                }))
            }
            RequestBody::DeleteGroups(mut r) => {
                let order = r.groups_names.clone();
                r.groups_names.retain(|g| here(self, g));
                let mut owned = self.delegate_owned(
                    ctx,
                    !r.groups_names.is_empty(),
                    RequestBody::DeleteGroups(r),
                );
                let mut results = match owned.as_mut() {
                    Some(ResponseBody::DeleteGroups(resp)) => std::mem::take(&mut resp.results),
                    _ => Vec::new(),
                };
                let merged = order
                    .into_iter()
                    .map(|id| match results.iter().position(|g| g.group_id == id) {
                        Some(i) => results.remove(i),
                        None => delete_groups::response::DeletableGroupResult {
                            group_id: id,
                            error_code: not_coord,
                            ..Default::default()
                        },
                    })
                    .collect();
                Outcome::Reply(ResponseBody::DeleteGroups(DeleteGroupsResponse {
                    results: merged,
                    ..Default::default()
                }))
            }
            RequestBody::ListGroups(r) => {
                let outcome = self.delegate(ctx, RequestBody::ListGroups(r));
                match outcome {
                    Outcome::Reply(ResponseBody::ListGroups(mut resp)) => {
                        resp.groups
                            .retain(|g| self.coordinator_for(&g.group_id) == ctx.broker);
                        Outcome::Reply(ResponseBody::ListGroups(resp))
                    }
                    other => other,
                }
            }
            other => self.delegate(ctx, other),
        }
    }

    /// Delegates a request reduced to the groups coordinated here (if any) and returns the
    /// coordinator's immediate answer. These APIs are always answered at once.
    fn delegate_owned(&mut self, ctx: &Ctx, any: bool, body: RequestBody) -> Option<ResponseBody> {
        if !any {
            return None;
        }
        match self.delegate(ctx, body) {
            Outcome::Reply(b) => Some(b),
            _ => {
                tracing::warn!("group coordinator deferred a request it should answer at once");
                None
            }
        }
    }

    /// Sends the group answers completed outside a request (rebalances ending, sessions
    /// expiring) to their connections, then lets those connections go on.
    pub(super) fn drain_group_completions(&mut self, now: std::time::Instant) {
        let done = self.groups.take_completed();
        for (client, body) in done {
            let key: (i32, ConnKey) = (client.broker, client.conn);
            let Some(conn) = self.conns.get_mut(&key) else {
                continue;
            };
            if !matches!(conn.waiting, Some(Waiting::Group)) {
                tracing::warn!(
                    broker = key.0,
                    conn = key.1,
                    "group answer for a connection not waiting for one"
                );
                continue;
            }
            conn.waiting = None;
            let header = RequestHeader {
                request_api_key: body.api_key().as_i16(),
                request_api_version: client.api_version,
                correlation_id: client.correlation_id,
                ..Default::default()
            };
            let mut out: Vec<ConnOutput> = Vec::new();
            let stop = self.emit(key, &header, Outcome::Reply(body), &mut out);
            if !stop {
                self.pump(key, now, &mut out);
            }
            self.outbox
                .entry(key.0)
                .or_default()
                .extend(out.into_iter().map(|o| (key.1, o)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::java_hash;

    #[test]
    fn java_string_hash() {
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("group"), 98629247);
        // Overflow wraps as in Java: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
    }
}
