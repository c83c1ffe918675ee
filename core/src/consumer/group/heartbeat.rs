//! The member's timers (Java's `Heartbeat`): when the next heartbeat is due, when the session
//! counts as lost without a successful heartbeat, and when the application has not polled for
//! `max_poll_interval_ms`.

use std::time::{Duration, Instant};

use crate::network::RequestId;

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
            self.next_due = Some(self.next_due.map_or(retry, |t| t.min(retry)));
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
        let mut t: Option<Instant> = self.last_poll.map(|p| p + self.max_poll);
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        if self.enabled {
            if self.in_flight.is_none() {
                consider(self.next_due);
            }
            consider(self.session_deadline);
        }
        t
    }
}

#[cfg(test)]
mod tests {
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
}
