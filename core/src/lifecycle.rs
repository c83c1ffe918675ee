//! [`Lifecycle`]: where a core that closes gracefully within a deadline is in its life. The
//! admin and low-level cores share it; their `close(timeout, now)` and `abort()` follow it.

use std::time::{Duration, Instant};

/// Open, closing (work in progress may finish until `deadline`), or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Lifecycle {
    /// Taking new work.
    #[default]
    Open,
    /// `close` was called: work in progress may run until `deadline`; new work is refused.
    Closing {
        /// When whatever is left is failed.
        deadline: Instant,
    },
    /// Closed (the core's `Closed` event was emitted).
    Closed,
}

impl Lifecycle {
    /// A graceful close within `timeout` of `now`. Returns `false` when already closed;
    /// a second close only brings the deadline forward.
    pub(crate) fn close(&mut self, timeout: Duration, now: Instant) -> bool {
        let deadline = now.checked_add(timeout).unwrap_or(now);
        *self = match *self {
            Lifecycle::Open => Lifecycle::Closing { deadline },
            Lifecycle::Closing { deadline: d } => Lifecycle::Closing {
                deadline: d.min(deadline),
            },
            Lifecycle::Closed => return false,
        };
        true
    }

    /// Whether a graceful close ends now: nothing is left (`idle`) or its deadline passed.
    pub(crate) fn close_is_due(&self, idle: bool, now: Instant) -> bool {
        matches!(*self, Lifecycle::Closing { deadline } if idle || now >= deadline)
    }

    /// The close deadline, while closing.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match *self {
            Lifecycle::Closing { deadline } => Some(deadline),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_close_only_brings_the_deadline_forward() {
        let now = Instant::now();
        let mut l = Lifecycle::default();
        assert!(l.close(Duration::from_secs(10), now));
        assert!(l.close(Duration::from_secs(20), now));
        assert_eq!(l.deadline(), Some(now + Duration::from_secs(10)));
        assert!(l.close(Duration::from_secs(1), now));
        assert_eq!(l.deadline(), Some(now + Duration::from_secs(1)));
        assert!(!l.close_is_due(false, now));
        assert!(l.close_is_due(true, now));
        assert!(l.close_is_due(false, now + Duration::from_secs(1)));
        l = Lifecycle::Closed;
        assert!(!l.close(Duration::from_secs(1), now));
        assert!(!l.close_is_due(true, now));
    }
}
