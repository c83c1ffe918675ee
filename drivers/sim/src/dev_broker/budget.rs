//! The memory budget of requests in flight, shared by every connection of a broker.
//!
//! A request's size is charged when its 4-byte prefix has arrived (before its bytes are): the
//! charge is what the request's buffer may grow to, while the buffer itself grows only with the
//! bytes actually received. The charge is released when the cluster thread has handled the
//! request. Bytes read past the end of a request (the start of the next one) are charged as
//! they are. A connection whose next request does not fit waits, reading nothing more, until
//! charges are released; one request is always admitted when no other is in flight, so a
//! request larger than the budget (but within the largest request size) still goes through and
//! waiting always ends.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::lock;

#[derive(Debug, Default)]
struct State {
    /// Bytes charged: admitted requests at their announced size, plus read-ahead bytes.
    used: usize,
    /// Admitted requests not yet handled.
    requests: usize,
}

/// The shared budget (see the module docs).
pub(crate) struct Budget {
    limit: usize,
    state: Mutex<State>,
    /// A connection is waiting for memory: wake the I/O threads on the next release.
    waiting: AtomicBool,
    /// How the I/O threads are woken.
    wakers: Mutex<Vec<Arc<mio::Waker>>>,
    /// Times a connection was told to wait.
    waits: AtomicU64,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Budget {
        Budget {
            limit,
            state: Mutex::new(State::default()),
            waiting: AtomicBool::new(false),
            wakers: Mutex::new(Vec::new()),
            waits: AtomicU64::new(0),
        }
    }

    /// Wakes `waker` when memory is released while a connection waits.
    pub(crate) fn add_waker(&self, waker: Arc<mio::Waker>) {
        lock(&self.wakers).push(waker);
    }

    /// Bytes charged now.
    pub(crate) fn used(&self) -> usize {
        lock(&self.state).used
    }

    /// Times a connection was told to wait for memory so far.
    pub(crate) fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    /// Whether a connection between requests may read more (charges are below the limit).
    pub(crate) fn may_read(&self) -> bool {
        let s = lock(&self.state);
        let ok = s.used < self.limit;
        if !ok {
            // Set under the lock: a release after it sees the flag and wakes.
            self.waiting.store(true, Ordering::SeqCst);
            self.waits.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Charges a request of `size` bytes if it fits, or if no other request is in flight.
    pub(crate) fn admit(self: &Arc<Self>, size: usize) -> Option<Charge> {
        let mut s = lock(&self.state);
        if s.requests > 0 && s.used.saturating_add(size) > self.limit {
            // Set under the lock: a release after it sees the flag and wakes.
            self.waiting.store(true, Ordering::SeqCst);
            self.waits.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        s.used += size;
        s.requests += 1;
        Some(Charge {
            budget: self.clone(),
            size,
            request: true,
        })
    }

    /// Charges `size` read-ahead bytes (always granted: they are already read).
    pub(crate) fn read_ahead(self: &Arc<Self>, size: usize) -> Charge {
        lock(&self.state).used += size;
        Charge {
            budget: self.clone(),
            size,
            request: false,
        }
    }

    fn release(&self, size: usize, request: bool) {
        {
            let mut s = lock(&self.state);
            s.used -= size;
            if request {
                s.requests -= 1;
            }
        }
        if self.waiting.swap(false, Ordering::SeqCst) {
            for w in lock(&self.wakers).iter() {
                let _ = w.wake();
            }
        }
    }
}

/// Bytes charged to a [`Budget`], released on drop.
pub(crate) struct Charge {
    budget: Arc<Budget>,
    size: usize,
    request: bool,
}

impl Charge {
    /// Lowers a read-ahead charge to `size` bytes.
    pub(crate) fn shrink_to(&mut self, size: usize) {
        debug_assert!(!self.request && size <= self.size);
        let freed = self.size - size;
        if freed > 0 {
            self.size = size;
            lock(&self.budget.state).used -= freed;
            if self.budget.waiting.swap(false, Ordering::SeqCst) {
                for w in lock(&self.budget.wakers).iter() {
                    let _ = w.wake();
                }
            }
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.release(self.size, self.request);
    }
}

impl std::fmt::Debug for Charge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Charge({})", self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_is_admitted_even_above_the_limit_then_others_wait() {
        let b = Arc::new(Budget::new(100));
        let big = b
            .admit(1000)
            .expect("the first request always goes through");
        assert_eq!(b.used(), 1000);
        assert!(!b.may_read());
        assert!(
            b.admit(1).is_none(),
            "no room while the big one is in flight"
        );
        drop(big);
        assert_eq!(b.used(), 0);
        let a = b.admit(60).unwrap();
        let c = b.admit(40).unwrap();
        assert!(b.admit(1).is_none());
        drop((a, c));
        let mut ahead = b.read_ahead(50);
        assert!(b.admit(50).is_some(), "read-ahead bytes count, 50 + 50 fit");
        ahead.shrink_to(10);
        assert_eq!(b.used(), 10);
        drop(ahead);
        assert_eq!(b.used(), 0);
    }
}
