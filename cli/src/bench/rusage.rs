//! CPU time and peak resident memory of this process: user and system time of every thread of
//! the process from `getrusage(RUSAGE_SELF)`, and the largest resident set size so far.
//!
//! Peak RSS comes from `VmHWM` in `/proc/self/status` where there is one: Linux folds the
//! memory high-water mark of the *parent* (the address space a child is forked from) into the
//! child's `ru_maxrss` at exec, so a worker started by a `kafkit bench` that holds a filled
//! development broker would report the parent's size. `VmHWM` belongs to the worker's own
//! address space. Elsewhere `ru_maxrss` is used.

use std::time::Duration;

use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeVal;

/// One reading.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User plus system CPU time of every thread so far.
    pub cpu: Duration,
    /// The system (kernel) part of `cpu`: socket reads and writes, wake-ups, page faults.
    pub sys: Duration,
    /// Peak resident set size so far, in KiB (Linux reports `ru_maxrss` in KiB).
    pub max_rss_kib: u64,
}

fn duration(t: TimeVal) -> Duration {
    Duration::from_secs(t.tv_sec().max(0) as u64) + Duration::from_micros(t.tv_usec().max(0) as u64)
}

/// `VmHWM` of `/proc/self/status`, in KiB.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Peak resident set size of this process so far, in KiB.
pub fn peak_rss_kib() -> u64 {
    vm_hwm_kib().unwrap_or_else(|| now().max_rss_kib)
}

/// The process's usage now. `getrusage(RUSAGE_SELF)` cannot fail with a valid `who`; a failure
/// reads as zero.
pub fn now() -> Usage {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => Usage {
            cpu: duration(u.user_time()) + duration(u.system_time()),
            sys: duration(u.system_time()),
            max_rss_kib: u.max_rss().max(0) as u64,
        },
        Err(_) => Usage {
            cpu: Duration::ZERO,
            sys: Duration::ZERO,
            max_rss_kib: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = now();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = now();
        assert!(after.cpu > before.cpu, "{before:?} {after:?}");
        assert!(after.sys <= after.cpu, "{after:?}");
        assert!(after.max_rss_kib > 0);
        assert!(peak_rss_kib() > 0);
    }
}
