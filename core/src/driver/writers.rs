//! The connection writers a driver still runs, and the wait for them that ends a `close`.
//!
//! The core reports a request sent when it hands the bytes to the driver: an acks=0 record is
//! delivered then, and a closing consumer's LeaveGroup is done. The driver's writer (a thread
//! or a task per connection) puts those bytes on the socket later. A program that closes its
//! producer and exits could end the writers first and lose them, so `close` waits until every
//! writer has finished (Java's `close()` likewise returns after its I/O thread has written and
//! closed its sockets). Drivers bound each closing writer (`CLOSE_LINGER`), so the wait is
//! bounded too.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The count of a driver's running connection writers, shared by its loop, its writers and
/// the client's handles. Cheap to clone (one `Arc`).
#[derive(Clone, Default)]
pub struct OpenWriters(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    running: usize,
    waiting: Vec<Waker>,
}

impl std::fmt::Debug for OpenWriters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenWriters")
            .field("running", &self.lock().running)
            .finish()
    }
}

impl OpenWriters {
    /// A count of zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one more writer until the returned guard is dropped. A driver takes it when the
    /// connection is established (before the core hears of it, so before anything can be
    /// queued for it) and drops it when the writer has written what was queued, failed, or
    /// been cut off.
    pub fn enter(&self) -> WriterGuard {
        self.lock().running += 1;
        WriterGuard(self.clone())
    }

    /// How many writers are running now.
    pub fn running(&self) -> usize {
        self.lock().running
    }

    /// Resolves once no writer is running.
    pub fn idle(&self) -> Idle {
        Idle(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves the count consistent (every update is one
        // statement): carry on with it.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One running writer of an [`OpenWriters`] count; dropping it ends the writer's share.
#[derive(Debug)]
pub struct WriterGuard(OpenWriters);

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let wake = {
            let mut s = self.0.lock();
            s.running -= 1;
            if s.running == 0 {
                std::mem::take(&mut s.waiting)
            } else {
                Vec::new()
            }
        };
        for w in wake {
            w.wake();
        }
    }
}

/// The future of [`OpenWriters::idle`].
#[derive(Debug)]
pub struct Idle(OpenWriters);

impl Future for Idle {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.0.lock();
        if s.running == 0 {
            return Poll::Ready(());
        }
        if !s.waiting.iter().any(|w| w.will_wake(cx.waker())) {
            s.waiting.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Unpark(std::thread::Thread);

    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }

    #[test]
    fn idle_resolves_when_the_last_writer_ends() {
        let writers = OpenWriters::new();
        block_on(writers.idle());
        let a = writers.enter();
        let b = writers.enter();
        assert_eq!(writers.running(), 2);
        let ended = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(a);
            std::thread::sleep(std::time::Duration::from_millis(20));
            drop(b);
        });
        block_on(writers.idle());
        assert_eq!(writers.running(), 0);
        ended.join().unwrap();
    }

    #[test]
    fn idle_waits_while_a_writer_runs() {
        let writers = OpenWriters::new();
        let guard = writers.enter();
        let mut idle = Box::pin(writers.idle());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(idle.as_mut().poll(&mut cx).is_pending());
        drop(guard);
        assert!(idle.as_mut().poll(&mut cx).is_ready());
    }
}
