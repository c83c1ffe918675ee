//! [`Deadline`]: the earliest of several deadlines. Every core and the driver's event loop
//! compute when they must be woken next (`poll_timeout`) by folding their timers into one;
//! a timer that is not set is `None` and changes nothing.

use std::time::Instant;

/// The earliest of the deadlines folded in so far; [`Deadline::NONE`] until one is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline yet.
    pub const NONE: Deadline = Deadline(None);

    /// Keeps `at` if it is earlier than every deadline so far (`None` changes nothing).
    pub fn fold(&mut self, at: impl Into<Option<Instant>>) {
        if let Some(at) = at.into() {
            self.0 = Some(match self.0 {
                Some(t) if t <= at => t,
                _ => at,
            });
        }
    }

    /// [`fold`](Self::fold) for expressions: the earlier of `self` and `at`.
    pub fn with(mut self, at: impl Into<Option<Instant>>) -> Self {
        self.fold(at);
        self
    }

    /// The earliest deadline, `None` when none was folded in.
    pub fn earliest(self) -> Option<Instant> {
        self.0
    }
}

impl From<Option<Instant>> for Deadline {
    fn from(at: Option<Instant>) -> Self {
        Deadline(at)
    }
}

impl Extend<Option<Instant>> for Deadline {
    fn extend<I: IntoIterator<Item = Option<Instant>>>(&mut self, iter: I) {
        for at in iter {
            self.fold(at);
        }
    }
}

impl Extend<Instant> for Deadline {
    fn extend<I: IntoIterator<Item = Instant>>(&mut self, iter: I) {
        for at in iter {
            self.fold(at);
        }
    }
}

impl FromIterator<Option<Instant>> for Deadline {
    fn from_iter<I: IntoIterator<Item = Option<Instant>>>(iter: I) -> Self {
        let mut d = Deadline::NONE;
        d.extend(iter);
        d
    }
}

impl FromIterator<Instant> for Deadline {
    fn from_iter<I: IntoIterator<Item = Instant>>(iter: I) -> Self {
        let mut d = Deadline::NONE;
        d.extend(iter);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn keeps_the_earliest_and_ignores_unset_timers() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut d = Deadline::NONE;
        assert_eq!(d.earliest(), None);
        d.fold(None);
        assert_eq!(d.earliest(), None, "an unset timer changes nothing");
        d.fold(at(30));
        d.fold(Some(at(10)));
        d.fold(at(20));
        d.fold(None);
        assert_eq!(d.earliest(), Some(at(10)));
        assert_eq!(
            Deadline::from(Some(at(5))).with(at(7)).earliest(),
            Some(at(5))
        );
        assert_eq!(Deadline::from(None).with(at(7)).earliest(), Some(at(7)));
        let collected: Deadline = [Some(at(9)), None, Some(at(3))].into_iter().collect();
        assert_eq!(collected.earliest(), Some(at(3)));
        let collected: Deadline = [at(4), at(2), at(8)].into_iter().collect();
        assert_eq!(collected.earliest(), Some(at(2)));
        let empty: Deadline = std::iter::empty::<Instant>().collect();
        assert_eq!(empty, Deadline::NONE);
    }
}
