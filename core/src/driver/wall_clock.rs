//! [`MillisecondClock`]: the cache that makes a per-record CreateTime stamp cheap.
//!
//! The core reads no clock itself: a driver owns one `MillisecondClock` per thread and passes
//! in the monotonic reading and a way to read the system time, so the same logic serves every
//! driver and is tested here with made-up readings.

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The system time in milliseconds since the Unix epoch (Java's `System.currentTimeMillis()`),
/// read once per record sent and so kept cheap.
///
/// It remembers the millisecond it last read and the monotonic instant at which that
/// millisecond ends; while the monotonic clock is before that instant it answers from memory
/// (one monotonic reading and a comparison instead of reading and converting the system
/// time). The end is computed from a monotonic reading taken *before* the system time was
/// read, so it errs early: an answer is never a millisecond that has already ended. A new
/// millisecond reads the system time again, so a step of the system clock shows within a
/// millisecond. A system time before the epoch reads as 0.
///
/// Not `Sync`: a driver keeps one per thread (`thread_local!`), so sending threads never
/// contend on it.
#[derive(Debug, Default)]
pub struct MillisecondClock {
    /// The instant the millisecond last read ends, and that millisecond.
    last: Cell<Option<(Instant, i64)>>,
}

impl MillisecondClock {
    /// A clock that has read nothing yet.
    pub const fn new() -> Self {
        MillisecondClock {
            last: Cell::new(None),
        }
    }

    /// The current millisecond, given the monotonic time `now` (read just before this call)
    /// and `system`, called only when the remembered millisecond has ended.
    pub fn read(&self, now: Instant, system: impl FnOnce() -> SystemTime) -> i64 {
        if let Some((ends, ms)) = self.last.get() {
            if now < ends {
                return ms;
            }
        }
        let Ok(d) = system().duration_since(UNIX_EPOCH) else {
            self.last.set(None);
            return 0;
        };
        let ms = (d.as_secs() as i64).saturating_mul(1000) + i64::from(d.subsec_millis());
        let left = 1_000_000 - d.subsec_nanos() % 1_000_000;
        self.last
            .set(Some((now + Duration::from_nanos(left.into()), ms)));
        ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, extra_ns: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms) + Duration::from_nanos(extra_ns)
    }

    #[test]
    fn answers_from_memory_until_the_millisecond_ends() {
        let clock = MillisecondClock::new();
        let t0 = Instant::now();
        // 0.25 ms into millisecond 1000: 0.75 ms left.
        assert_eq!(clock.read(t0, || at(1000, 250_000)), 1000);
        let never = || -> SystemTime { panic!("the system time was read again") };
        assert_eq!(clock.read(t0 + Duration::from_nanos(749_999), never), 1000);
        // The millisecond has ended: the system time is read again.
        assert_eq!(
            clock.read(t0 + Duration::from_nanos(750_000), || at(1001, 0)),
            1001
        );
    }

    #[test]
    fn a_stepped_system_clock_shows_at_the_next_millisecond() {
        let clock = MillisecondClock::new();
        let t0 = Instant::now();
        assert_eq!(clock.read(t0, || at(5000, 999_000)), 5000);
        // The system clock was stepped back by a second meanwhile.
        assert_eq!(
            clock.read(t0 + Duration::from_millis(1), || at(4001, 0)),
            4001
        );
    }

    #[test]
    fn a_time_before_the_epoch_reads_as_zero_and_is_not_remembered() {
        let clock = MillisecondClock::new();
        let t0 = Instant::now();
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(clock.read(t0, || before), 0);
        assert_eq!(clock.read(t0, || at(7, 0)), 7);
    }

    #[test]
    fn the_real_clocks_never_answer_an_ended_millisecond() {
        let system_ms = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64
        };
        let clock = MillisecondClock::new();
        let mut prev = i64::MIN;
        for _ in 0..10_000 {
            let before = system_ms();
            let t = clock.read(Instant::now(), SystemTime::now);
            let after = system_ms();
            // Holds unless the system clock is stepped during the test.
            assert!(before <= t && t <= after, "{before} <= {t} <= {after}");
            assert!(t >= prev, "{t} after {prev}");
            prev = t;
        }
    }
}
