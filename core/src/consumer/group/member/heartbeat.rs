//! Heartbeat and LeaveGroup: the member's timers (Java's `Heartbeat`: when the next
//! heartbeat is due, when the session counts as lost without a successful heartbeat, and when
//! the application has not polled for `max_poll_interval_ms`), the Heartbeat exchange, and
//! leaving the group (on unsubscribe, close, or a poll interval that expired).

use std::time::{Duration, Instant};

use super::join_sync::{group_version_caps, MAX_LEAVE_VERSION};
use super::{group_error, Generation, GroupCtx, GroupMember, MemberState, Req};
use crate::deadline::Deadline;
use crate::network::{NetError, RequestId, Response};
use crate::protocol::leave_group::request::MemberIdentity;
use crate::protocol::{ApiKey, ErrorCode, HeartbeatRequest, LeaveGroupRequest, RequestBody};

#[derive(Debug)]
pub(crate) struct Heartbeat {
    interval: Duration,
    session: Duration,
    max_poll: Duration,
    retry_backoff: Duration,
    /// Heartbeats run from the JoinGroup answer until the member leaves or rejoins.
    enabled: bool,
    pub in_flight: Option<RequestId>,
    /// When the heartbeat in flight was sent.
    sent_at: Option<Instant>,
    next_due: Option<Instant>,
    /// The coordinator counts as lost when no heartbeat succeeded by then.
    session_deadline: Option<Instant>,
    last_poll: Option<Instant>,
}

impl Heartbeat {
    pub fn new(
        interval: Duration,
        session: Duration,
        max_poll: Duration,
        retry_backoff: Duration,
    ) -> Self {
        Heartbeat {
            interval,
            session,
            max_poll,
            retry_backoff,
            enabled: false,
            in_flight: None,
            sent_at: None,
            next_due: None,
            session_deadline: None,
            last_poll: None,
        }
    }

    /// Starts heartbeating (the member has a generation): the first one after an interval.
    pub fn start(&mut self, now: Instant) {
        if !self.enabled {
            self.enabled = true;
            self.next_due = Some(now + self.interval);
            self.session_deadline = Some(now + self.session);
        }
    }

    /// Stops heartbeating (left, rejoining, or the generation is gone). An answer still in
    /// flight is ignored.
    pub fn stop(&mut self) {
        self.enabled = false;
        self.in_flight = None;
        self.sent_at = None;
        self.next_due = None;
        self.session_deadline = None;
    }

    /// Whether a heartbeat should be sent now.
    pub fn is_due(&self, now: Instant) -> bool {
        self.enabled && self.in_flight.is_none() && self.next_due.is_some_and(|t| now >= t)
    }

    /// A heartbeat went out.
    pub fn sent(&mut self, id: RequestId, now: Instant) {
        self.in_flight = Some(id);
        self.sent_at = Some(now);
        self.next_due = Some(now + self.interval);
    }

    /// A heartbeat succeeded: the session is alive. The coordinator received it no earlier
    /// than it was sent, so counting the session from the send time ends it here no later
    /// than the coordinator ends it.
    pub fn succeeded(&mut self, now: Instant) {
        self.in_flight = None;
        if self.enabled {
            let from = self.sent_at.take().unwrap_or(now);
            self.session_deadline = Some(from + self.session);
        }
    }

    /// A heartbeat failed: try again after the retry backoff (sooner than the interval, as
    /// Java does, so the session survives a moved coordinator).
    pub fn failed(&mut self, now: Instant) {
        self.in_flight = None;
        self.sent_at = None;
        if self.enabled {
            let retry = now + self.retry_backoff;
            self.next_due = Deadline::from(self.next_due).with(retry).earliest();
        }
    }

    /// Whether the session timed out without a successful heartbeat; restarts the session
    /// timer so that the coordinator is looked up again only once per session timeout.
    pub fn take_session_expiry(&mut self, now: Instant) -> bool {
        if self.enabled && self.session_deadline.is_some_and(|t| now >= t) {
            self.session_deadline = Some(now + self.session);
            return true;
        }
        false
    }

    /// The application polled (or is waiting in a poll).
    pub fn note_poll(&mut self, now: Instant) {
        self.last_poll = Some(now);
    }

    /// Whether the application has polled since it subscribed and not timed out since.
    pub fn has_polled(&self) -> bool {
        self.last_poll.is_some()
    }

    /// Whether `max_poll_interval_ms` passed since the last poll.
    pub fn poll_expired(&self, now: Instant) -> bool {
        self.last_poll.is_some_and(|t| now >= t + self.max_poll)
    }

    /// Forgets the last poll (after leaving on a poll timeout: the next poll rejoins).
    pub fn clear_poll(&mut self) {
        self.last_poll = None;
    }

    /// The earliest instant a timer fires.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next = Deadline::from(self.last_poll.map(|p| p + self.max_poll));
        if self.enabled {
            if self.in_flight.is_none() {
                next.fold(self.next_due);
            }
            next.fold(self.session_deadline);
        }
        next.earliest()
    }
}

impl GroupMember {
    pub(super) fn send_heartbeat(&mut self, ctx: &mut GroupCtx<'_>) {
        let body = HeartbeatRequest {
            group_id: self.cfg.group_id.clone(),
            generation_id: self.generation.0,
            member_id: self.member_id.clone(),
            group_instance_id: self.cfg.instance_id.clone(),
            ..Default::default()
        };
        let id = ctx.net.send(
            self.target(),
            RequestBody::Heartbeat(body),
            None,
            true,
            ctx.now,
        );
        self.heartbeat.sent(id, ctx.now);
        self.requests.insert(id, Req::Heartbeat(self.generation));
    }

    /// LeaveGroup, for dynamic members that have a member id (static members leave by their
    /// session timing out, KIP-345, as in Java).
    pub(super) fn send_leave(&mut self, ctx: &mut GroupCtx<'_>, reason: &'static str) {
        if self.cfg.instance_id.is_some() || self.member_id.is_empty() {
            return;
        }
        tracing::info!(group = %self.cfg.group_id, member = %self.member_id, reason, "LeaveGroup");
        // Before v3 the request names one member; from v3 it is a batch (KIP-345).
        let batch = self
            .coordinator_version(ctx.net, ApiKey::LeaveGroup, group_version_caps(ctx.net).2)
            .is_none_or(|v| v >= 3);
        let body = if batch {
            LeaveGroupRequest {
                group_id: self.cfg.group_id.clone(),
                members: vec![MemberIdentity {
                    member_id: self.member_id.clone(),
                    group_instance_id: None,
                    reason: Some(reason.to_owned()),
                    ..Default::default()
                }],
                ..Default::default()
            }
        } else {
            LeaveGroupRequest {
                group_id: self.cfg.group_id.clone(),
                member_id: self.member_id.clone(),
                ..Default::default()
            }
        };
        let id = ctx.net.send(
            self.target(),
            RequestBody::LeaveGroup(body),
            Some(if batch { MAX_LEAVE_VERSION } else { 2 }),
            true,
            ctx.now,
        );
        self.requests.insert(id, Req::Leave);
    }

    pub(super) fn on_heartbeat(
        &mut self,
        id: RequestId,
        generation: Generation,
        result: Result<Response, NetError>,
        ctx: &mut GroupCtx<'_>,
    ) {
        if self.heartbeat.in_flight != Some(id) {
            return;
        }
        let now = ctx.now;
        let code = match result.map(Response::body_as::<HeartbeatRequest>) {
            Ok(Ok(r)) => r.error(),
            Ok(Err(_)) => {
                self.heartbeat.failed(now);
                return;
            }
            Err(e) => {
                if let Some(f) = self.fatal_net_error(&e) {
                    return self.set_fatal(f);
                }
                self.heartbeat.failed(now);
                self.coordinator_lost(ctx, "heartbeat failed");
                return;
            }
        };
        match code {
            ErrorCode::NONE => self.heartbeat.succeeded(now),
            ErrorCode::REBALANCE_IN_PROGRESS => {
                self.heartbeat.succeeded(now);
                if self.state == MemberState::Stable {
                    self.request_rejoin("the group is rebalancing");
                }
            }
            ErrorCode::ILLEGAL_GENERATION | ErrorCode::UNKNOWN_MEMBER_ID => {
                self.heartbeat.failed(now);
                if generation == self.generation {
                    let keep = false;
                    self.lose_generation("heartbeat: the member or generation is unknown", keep);
                }
            }
            ErrorCode::FENCED_INSTANCE_ID => {
                self.set_fatal(group_error(
                    code,
                    "another consumer joined with this group_instance_id",
                ));
            }
            ErrorCode::COORDINATOR_NOT_AVAILABLE | ErrorCode::NOT_COORDINATOR => {
                self.heartbeat.failed(now);
                self.coordinator_lost(ctx, code.name());
            }
            c if c.is_retriable() => self.heartbeat.failed(now),
            c => self.set_fatal(group_error(c, "heartbeat refused")),
        }
    }

    pub(super) fn on_poll_timeout(&mut self, ctx: &mut GroupCtx<'_>) {
        self.heartbeat.clear_poll();
        if self.state == MemberState::Unjoined && !self.generation_valid() {
            return;
        }
        tracing::warn!(
            group = %self.cfg.group_id,
            "the application did not poll within max_poll_interval_ms: leaving the group (it rejoins on the next poll)"
        );
        self.send_leave(ctx, "consumer poll timeout has expired");
        self.lose_generation("the poll interval expired", false);
    }

    /// A LeaveGroup answer: nothing depends on it (the member is gone either way), but a
    /// refusal is worth a log line.
    pub(super) fn on_leave(&mut self, result: Result<Response, NetError>) {
        if let Ok(Ok(r)) = result.map(Response::body_as::<LeaveGroupRequest>) {
            let code = r.error();
            if code.is_err() {
                tracing::debug!(group = %self.cfg.group_id, error = %code, "LeaveGroup refused");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;
    use super::*;

    #[test]
    fn timers_follow_the_interval_session_and_poll_limits() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut h = Heartbeat::new(ms(3000), ms(10_000), ms(60_000), ms(100));
        assert_eq!(h.next_deadline(), None);
        h.note_poll(t0);
        h.start(t0);
        assert!(!h.is_due(t0));
        assert!(h.is_due(t0 + ms(3000)));
        h.sent(RequestId(1), t0 + ms(3000));
        assert!(!h.is_due(t0 + ms(6000)), "one in flight at a time");
        h.failed(t0 + ms(3010));
        assert!(h.is_due(t0 + ms(3110)), "retried after the backoff");
        assert!(!h.take_session_expiry(t0 + ms(9999)));
        assert!(h.take_session_expiry(t0 + ms(10_000)));
        assert!(!h.take_session_expiry(t0 + ms(10_001)), "once per session");
        h.succeeded(t0 + ms(11_000));
        assert!(!h.take_session_expiry(t0 + ms(20_500)));
        h.sent(RequestId(2), t0 + ms(21_000));
        h.succeeded(t0 + ms(21_500));
        assert!(
            h.take_session_expiry(t0 + ms(31_000)),
            "the session counts from when the successful heartbeat was sent"
        );
        assert!(!h.poll_expired(t0 + ms(59_999)));
        assert!(h.poll_expired(t0 + ms(60_000)));
        h.stop();
        assert_eq!(h.next_deadline(), Some(t0 + ms(60_000)));
        h.clear_poll();
        assert_eq!(h.next_deadline(), None);
    }

    #[test]
    fn unknown_member_loses_the_partitions_and_fencing_is_fatal() {
        let mut t = T::new(|_| {});
        t.join_as_follower(&[0]);
        t.heartbeat_response(ErrorCode::UNKNOWN_MEMBER_ID);
        assert_eq!(t.g.state(), MemberState::Unjoined);
        t.poll(true);
        let call = t.complete();
        assert_eq!(call.kind, RebalanceKind::Lost);
        assert!(t.g.member_id.is_empty(), "a new member id next time");
        assert!(t.pending(|r| matches!(r, Req::Join)).is_some());

        let mut t = T::new(|c| c.group_instance_id = Some("i-1".into()));
        t.join_as_follower(&[0]);
        t.heartbeat_response(ErrorCode::FENCED_INSTANCE_ID);
        let e = t.g.take_error().unwrap();
        assert!(matches!(
            e,
            ConsumerError::Group {
                error: ErrorCode::FENCED_INSTANCE_ID,
                ..
            }
        ));
        assert_eq!(t.g.take_error(), Some(e), "fatal errors stick");
        assert_eq!(t.complete().kind, RebalanceKind::Lost);
        t.poll(true);
        assert!(t.pending(|r| matches!(r, Req::Join)).is_none(), "no rejoin");
    }

    #[test]
    fn a_poll_timeout_leaves_and_the_next_poll_rejoins() {
        let mut t = T::new(|c| c.max_poll_interval_ms = 10_000);
        t.join_as_follower(&[0]);
        t.now += Duration::from_secs(11);
        t.poll(false);
        assert!(
            t.pending(|r| matches!(r, Req::Leave)).is_some(),
            "LeaveGroup"
        );
        assert_eq!(t.g.state(), MemberState::Unjoined);
        t.now += Duration::from_secs(60);
        t.poll(false);
        assert!(
            t.pending(|r| matches!(r, Req::Join)).is_none(),
            "not before a poll"
        );
        t.poll(true);
        assert_eq!(t.complete().kind, RebalanceKind::Lost);
        assert!(t.pending(|r| matches!(r, Req::Join)).is_some());
    }
}
