//! ConsumerGroupHeartbeat: building the full or partial request, the leave heartbeat, and
//! what each answer means (Java's `ConsumerHeartbeatRequestManager`).

use std::time::Duration;

use super::{IdAssignment, SentFields, WireSubscription};
use crate::consumer::group::member::{group_error, GroupCtx, GroupMember, MemberState, Req};
use crate::consumer::group::subscription::Subscribed;
use crate::network::{NetError, RequestId, Response};
use crate::protocol::consumer_group_heartbeat::request::TopicPartitions;
use crate::protocol::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, ErrorCode, RequestBody,
};

/// Highest ConsumerGroupHeartbeat version sent (v1: client member ids and regexes).
pub(crate) const MAX_HEARTBEAT_VERSION: i16 = 1;

/// The assignment in the request's layout.
pub(crate) fn wire_partitions(a: &IdAssignment) -> Vec<TopicPartitions> {
    a.iter()
        .map(|(id, ps)| TopicPartitions {
            topic_id: *id,
            partitions: ps.iter().copied().collect(),
            ..Default::default()
        })
        .collect()
}

/// The assignment of an answer, merged by topic id.
pub(crate) fn id_assignment(resp: &ConsumerGroupHeartbeatResponse) -> Option<IdAssignment> {
    let a = resp.assignment.as_ref()?;
    let mut out = IdAssignment::new();
    for t in &a.topic_partitions {
        out.entry(t.topic_id)
            .or_default()
            .extend(t.partitions.iter().copied());
    }
    Some(out)
}

impl GroupMember {
    /// The subscription as the heartbeat sends it (`None` when not subscribed).
    fn wire_subscription(&self) -> Option<WireSubscription> {
        match &self.subscribed {
            Subscribed::Nothing => None,
            Subscribed::Topics(t) => Some(WireSubscription::Names(t.iter().cloned().collect())),
            Subscribed::Pattern { source, .. } => Some(WireSubscription::Regex(source.clone())),
        }
    }

    pub(in crate::consumer::group::member) fn cp_heartbeat_due(
        &self,
        now: std::time::Instant,
    ) -> bool {
        let Some(cp) = self.cp.as_deref() else {
            return false;
        };
        self.state != MemberState::Unjoined
            && cp.in_flight.is_none()
            && cp.next_due.is_some_and(|t| now >= t)
    }

    /// The heartbeat request: every field on the first one after a join or a failure, then
    /// only what changed since the last one sent (Java's `HeartbeatState`).
    pub(crate) fn cp_heartbeat_request(
        &mut self,
        version: Option<i16>,
    ) -> ConsumerGroupHeartbeatRequest {
        let subscription = self.wire_subscription();
        let group_id = self.cfg.group_id.clone();
        let instance_id = self.cfg.instance_id.clone();
        let rack = self.cfg.rack.clone();
        // A v0 coordinator names the member in its answer to the first join.
        let member_id =
            if version == Some(0) && self.cp().epoch == 0 && !self.cp().id_from_coordinator {
                String::new()
            } else {
                self.member_id.clone()
            };
        let cp = self.cp();
        let mut body = ConsumerGroupHeartbeatRequest {
            group_id,
            member_id,
            member_epoch: cp.epoch,
            instance_id,
            ..Default::default()
        };
        let sent = &mut cp.sent;
        if sent.rebalance_timeout_ms != Some(cp.rebalance_timeout_ms) {
            body.rebalance_timeout_ms = cp.rebalance_timeout_ms;
            sent.rebalance_timeout_ms = Some(cp.rebalance_timeout_ms);
        }
        if !sent.rack_sent {
            body.rack_id = rack;
            sent.rack_sent = true;
        }
        if sent.subscription != subscription {
            // Names and regex go together, as Java and librdkafka send them (librdkafka's
            // mock coordinator insists): a regex subscription with no names, a names
            // subscription with the empty regex, which means none (v0 has no regex field;
            // an unknown version is taken as v1, the one Kafka 4.0 released).
            match &subscription {
                Some(WireSubscription::Names(n)) => {
                    body.subscribed_topic_names = Some(n.clone());
                    body.subscribed_topic_regex = (version != Some(0)).then(String::new);
                }
                Some(WireSubscription::Regex(r)) => {
                    body.subscribed_topic_names = Some(Vec::new());
                    body.subscribed_topic_regex = Some(r.clone());
                }
                None => {}
            }
            sent.subscription = subscription;
        }
        if sent.server_assignor.as_ref() != Some(&cp.remote_assignor) {
            body.server_assignor = cp.remote_assignor.clone();
            sent.server_assignor = Some(cp.remote_assignor.clone());
        }
        if sent.partitions.as_ref() != Some(&cp.acked) {
            body.topic_partitions = Some(wire_partitions(&cp.acked));
            sent.partitions = Some(cp.acked.clone());
        }
        body
    }

    pub(in crate::consumer::group::member) fn cp_send_heartbeat(&mut self, ctx: &mut GroupCtx<'_>) {
        let version = self.coordinator_version(
            ctx.net,
            ApiKey::ConsumerGroupHeartbeat,
            MAX_HEARTBEAT_VERSION,
        );
        if version == Some(0) && self.subscribed.is_pattern() {
            return self.set_fatal(group_error(
                ErrorCode::UNSUPPORTED_VERSION,
                "the group coordinator does not support regex subscriptions with the consumer \
                 protocol (ConsumerGroupHeartbeat v1, Kafka 4.0)",
            ));
        }
        let body = self.cp_heartbeat_request(version);
        let id = ctx.net.send(
            self.target(),
            RequestBody::ConsumerGroupHeartbeat(body),
            Some(MAX_HEARTBEAT_VERSION),
            true,
            ctx.now,
        );
        let now = ctx.now;
        let cp = self.cp();
        cp.in_flight = Some(id);
        cp.next_due = Some(now + cp.interval);
        self.requests.insert(id, Req::CgHeartbeat);
    }

    /// The leave heartbeat (epoch -1, or -2 for a static member), when the member is in the
    /// group.
    pub(in crate::consumer::group::member) fn cp_send_leave(
        &mut self,
        ctx: &mut GroupCtx<'_>,
        reason: &'static str,
    ) {
        if self.state == MemberState::Unjoined || self.member_id.is_empty() {
            return;
        }
        let epoch = self.leave_epoch();
        tracing::info!(group = %self.cfg.group_id, member = %self.member_id, epoch, reason, "leaving the group");
        let body = ConsumerGroupHeartbeatRequest {
            group_id: self.cfg.group_id.clone(),
            member_id: self.member_id.clone(),
            member_epoch: epoch,
            instance_id: self.cfg.instance_id.clone(),
            ..Default::default()
        };
        let id = ctx.net.send(
            self.target(),
            RequestBody::ConsumerGroupHeartbeat(body),
            Some(MAX_HEARTBEAT_VERSION),
            true,
            ctx.now,
        );
        self.requests.insert(id, Req::Leave);
        // The answer to a heartbeat still in flight is about a membership that is over.
        self.cp().in_flight = None;
    }

    /// A heartbeat failed: the next one is full, after the retry backoff.
    fn cp_heartbeat_failed(&mut self, now: std::time::Instant) {
        let cp = self.cp();
        cp.sent = SentFields::default();
        cp.next_due = Some(now + cp.retry_backoff);
    }

    pub(in crate::consumer::group::member) fn cp_on_heartbeat(
        &mut self,
        id: RequestId,
        result: Result<Response, NetError>,
        ctx: &mut GroupCtx<'_>,
    ) {
        if self.cp.as_deref().is_none_or(|cp| cp.in_flight != Some(id)) {
            return;
        }
        self.cp().in_flight = None;
        let now = ctx.now;
        let resp = match result.map(Response::body_as::<ConsumerGroupHeartbeatRequest>) {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => return self.cp_heartbeat_failed(now),
            Err(e) => {
                if let Some(f) = self.fatal_net_error(&e) {
                    return self.set_fatal(f);
                }
                self.cp_heartbeat_failed(now);
                self.coordinator_lost(ctx, "heartbeat failed");
                return;
            }
        };
        let code = resp.error();
        let detail = |what: &str| match &resp.error_message {
            Some(m) if !m.is_empty() => format!("{what}: {m}"),
            _ => what.to_owned(),
        };
        match code {
            ErrorCode::NONE => self.cp_heartbeat_ok(&resp, now),
            ErrorCode::FENCED_MEMBER_EPOCH | ErrorCode::UNKNOWN_MEMBER_ID => {
                self.cp_lose_membership(if code == ErrorCode::FENCED_MEMBER_EPOCH {
                    "the coordinator fenced the member epoch"
                } else {
                    "the coordinator does not know the member"
                });
            }
            ErrorCode::COORDINATOR_NOT_AVAILABLE | ErrorCode::NOT_COORDINATOR => {
                self.cp_heartbeat_failed(now);
                self.coordinator_lost(ctx, code.name());
            }
            ErrorCode::TOPIC_AUTHORIZATION_FAILED => {
                // Java reports it and keeps heartbeating.
                self.errors
                    .push_back(group_error(code, detail("heartbeat: subscribed topics")));
                self.cp_heartbeat_failed(now);
            }
            ErrorCode::UNRELEASED_INSTANCE_ID | ErrorCode::FENCED_INSTANCE_ID => {
                self.set_fatal(group_error(
                    code,
                    detail("another consumer uses this group_instance_id"),
                ));
            }
            c if c.is_retriable() => self.cp_heartbeat_failed(now),
            // GROUP_AUTHORIZATION_FAILED, INVALID_REQUEST, GROUP_MAX_SIZE_REACHED,
            // UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION, UNSUPPORTED_VERSION, ...
            c => self.set_fatal(group_error(c, detail("heartbeat refused"))),
        }
    }

    fn cp_heartbeat_ok(&mut self, resp: &ConsumerGroupHeartbeatResponse, now: std::time::Instant) {
        if self.state == MemberState::Unjoined {
            return; // left or lost meanwhile
        }
        if let Some(id) = resp.member_id.as_ref().filter(|m| !m.is_empty()) {
            if *id != self.member_id {
                self.member_id = id.clone();
                self.cp().id_from_coordinator = true;
            }
        }
        let epoch = resp.member_epoch;
        if epoch > 0 {
            self.generation = super::Generation(epoch);
        }
        let assignment = id_assignment(resp);
        let cp = self.cp();
        cp.epoch = epoch;
        if let Ok(ms) = u64::try_from(resp.heartbeat_interval_ms) {
            if ms > 0 && Duration::from_millis(ms) != cp.interval {
                cp.interval = Duration::from_millis(ms);
                cp.next_due = Some(now + cp.interval);
            }
        }
        if let Some(a) = assignment {
            cp.target = Some(a);
            self.state = MemberState::Reconciling;
        }
    }

    /// The answer to the leave heartbeat: the member is gone either way; a refusal is worth a
    /// log line.
    pub(in crate::consumer::group::member) fn cp_on_leave(
        &mut self,
        result: Result<Response, NetError>,
    ) {
        if let Ok(Ok(r)) = result.map(Response::body_as::<ConsumerGroupHeartbeatRequest>) {
            let code = r.error();
            if code.is_err() {
                tracing::debug!(group = %self.cfg.group_id, error = %code, "leave heartbeat refused");
            }
        }
    }
}
