//! The handler keeps the deadlines of the calls that wait, and answers them from the core's
//! events: checked on a loop written out here (commands, then outputs, then deadlines, as
//! every driver's loop runs them) over a core whose connections never open.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::*;
use crate::driver::{command_queue, next_deadline, CommandReceiver};
use crate::network::{ClientCore, NetOptions, Output};

struct Loop {
    core: ConsumerCore,
    handler: ConsumerHandler,
    rx: CommandReceiver<ConsumerCore, ConsumerHandler>,
    start: Instant,
    now: Instant,
}

impl Loop {
    fn new(config: &ConsumerConfig) -> (Loop, ConsumerHandle) {
        // Nothing listens there, and Connect outputs are not acted on anyway.
        let net = NetOptions::new(vec![("localhost".into(), 1)]);
        let (tx, rx) = command_queue();
        let start = Instant::now();
        let l = Loop {
            core: ConsumerCore::new(config.clone(), net),
            handler: ConsumerHandler::default(),
            rx,
            start,
            now: start,
        };
        (l, ConsumerHandle::new(tx, config))
    }

    /// Runs the queued commands.
    fn turn(&mut self) {
        while let Ok(command) = self.rx.try_recv() {
            command(&mut self.core, &mut self.handler, self.now);
            self.drain();
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.core.poll_output() {
            if let Output::Event(e) = o {
                self.handler.on_event(&mut self.core, e, self.now);
            }
        }
    }

    /// Moves on to the next deadline, the core's or the handler's, and handles it.
    fn wake(&mut self) {
        let t = next_deadline(&self.core, &self.handler).expect("a deadline");
        self.now = self.now.max(t);
        self.core.handle_timeout(self.now);
        self.handler.handle_timeout(&mut self.core, self.now);
        self.drain();
    }

    /// Drives the loop until `f` completes.
    fn run<F: Future>(&mut self, mut f: Pin<&mut F>) -> F::Output {
        for _ in 0..10_000 {
            if let Poll::Ready(out) = f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                return out;
            }
            self.turn();
            if let Poll::Ready(out) = f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                return out;
            }
            self.wake();
        }
        panic!("the call never completed");
    }
}

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

#[test]
fn a_poll_ends_at_the_deadline_the_handler_keeps() {
    let (mut l, h) = Loop::new(&ConsumerConfig::default());
    l.run(pin!(h.assign(vec![tp()]))).unwrap();
    let mut poll = pin!(h.poll(Duration::from_millis(300)));
    assert!(poll
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_pending());
    l.turn();
    assert_eq!(
        l.handler.poll_timeout(),
        Some(l.start + Duration::from_millis(300)),
        "the poll's deadline is the handler's"
    );
    let records = l.run(poll).unwrap();
    assert!(records.is_empty());
    assert_eq!(l.now - l.start, Duration::from_millis(300), "not later");
    assert_eq!(l.handler.poll_timeout(), None, "nothing waits any more");
}

#[test]
fn a_position_during_a_reset_times_out_after_the_api_timeout() {
    let config = ConsumerConfig {
        default_api_timeout_ms: 1_000,
        ..Default::default()
    };
    let (mut l, h) = Loop::new(&config);
    l.run(pin!(h.assign(vec![tp()]))).unwrap();
    let result = l.run(pin!(h.position(tp())));
    assert!(
        matches!(
            result,
            Err(ConsumerError::Timeout {
                operation: "position",
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(l.now - l.start, Duration::from_secs(1));
}

#[test]
fn a_stream_read_with_recv_ends_when_the_consumer_is_closed() {
    let (mut l, h) = Loop::new(&ConsumerConfig::default());
    l.run(pin!(h.assign(vec![tp()]))).unwrap();
    let mut stream = h.stream();
    let mut next = pin!(stream.recv());
    assert!(next
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_pending());
    l.turn();
    assert!(next
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_pending());
    // A hard stop on the loop: the core reports Closed, the waiting poll is answered.
    h.cmds.run(|core, _, _| core.abort()).unwrap();
    l.turn();
    assert!(l.core.is_closed());
    match next.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(None) => {}
        other => panic!("the stream should end: {other:?}"),
    }
}
