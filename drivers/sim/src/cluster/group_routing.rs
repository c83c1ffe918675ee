//! The routing of the group APIs to the group coordinator
//! ([`super::group::GroupCoordinator`]), shared by the per-API files `group_members.rs`,
//! `group_offsets.rs` and `group_admin.rs`.
//!
//! One coordinator instance serves the whole cluster: its state is keyed by group id, so it
//! behaves like one coordinator per broker whose groups move with coordinatorship, with the
//! state Kafka would reload from `__consumer_offsets` carried along (committed offsets survive
//! a coordinator crash). A group request reaching a broker that does not coordinate its group
//! gets `NOT_COORDINATOR` (see [`Cluster::coordinator_for`]).

use std::collections::{BTreeMap, HashMap};

use kafkit_core::codec::Uuid;
use kafkit_core::protocol::{Request, RequestBody, RequestHeader};

use super::group::{ClientRef, GroupReply, TopicView};
use super::topics::Topic;
use super::{Cluster, ConnKey, ConnOutput, Ctx, Outcome, Waiting};

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
    /// The group coordinator (group state and committed offsets), for inspection.
    pub fn groups(&self) -> &super::group::GroupCoordinator {
        &self.groups
    }

    /// Whether this broker coordinates `group`.
    pub(super) fn coordinates(&self, ctx: &Ctx, group: &str) -> bool {
        // ZooKeeper-backed offsets (0.8.1, 0.8.2): any broker answers OffsetCommit and
        // OffsetFetch v0; every broker sees the same offsets, as they shared one ZooKeeper.
        let zk = self.config.zookeeper_offsets
            && ctx.version == 0
            && matches!(ctx.header.request_api_key, 8 | 9);
        zk || self.coordinator_for(group) == ctx.broker
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
    pub(super) fn delegate(&mut self, ctx: &Ctx, body: RequestBody) -> Outcome {
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

    /// Delegates a request reduced to the groups coordinated here (if any) and returns the
    /// coordinator's immediate answer, typed. These APIs are always answered at once, with
    /// their own response; `None` if nothing was asked or the coordinator broke that rule.
    pub(super) fn delegate_owned<R: Request>(
        &mut self,
        ctx: &Ctx,
        any: bool,
        request: R,
    ) -> Option<R::Response> {
        if !any {
            return None;
        }
        match self.delegate(ctx, request.into()) {
            Outcome::Reply(b) => b.into_response::<R>().ok(),
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

/// The answers for the groups of `order`, in the order asked: each group's own answer from
/// its coordinator, or `missing(id)` (NOT_COORDINATOR) for a group not coordinated here.
pub(super) fn in_request_order<T>(
    order: Vec<String>,
    mut answered: Vec<T>,
    id_of: impl Fn(&T) -> &str,
    missing: impl Fn(String) -> T,
) -> Vec<T> {
    order
        .into_iter()
        .map(|id| match answered.iter().position(|a| id_of(a) == id) {
            Some(i) => answered.remove(i),
            None => missing(id),
        })
        .collect()
}
