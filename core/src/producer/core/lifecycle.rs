//! Flushes, partition lookups, the fatal state and closing (graceful and hard).

use std::time::{Duration, Instant};

use super::{Closing, FlushWaiter, PartitionsWaiter, ProducerCore, ProducerEvent};
use crate::deadline::Deadline;
use crate::network::{ClientCore, PartitionInfo};
use crate::producer::error::ProduceError;
use crate::protocol::ErrorCode;
use crate::OpId;

impl ProducerCore {
    /// Waits for every record accepted so far to complete, then reports
    /// [`ProducerEvent::Flushed`] with `Ok`; or with [`ProduceError::FlushTimeout`] if
    /// `timeout` passes first. Batches are sent without waiting for `linger_ms` meanwhile.
    pub fn flush(&mut self, op: OpId, timeout: Option<Duration>, now: Instant) {
        if self.pending == 0 {
            self.event(ProducerEvent::Flushed { op, result: Ok(()) });
            return;
        }
        if self.gen_count > 0 {
            self.old_gens.insert(self.gen, self.gen_count);
        }
        let upto_gen = self.gen;
        self.gen += 1;
        self.gen_count = 0;
        self.flushes.push(FlushWaiter {
            op,
            upto_gen,
            deadline: timeout.map(|t| now + t),
            timeout: timeout.unwrap_or_default(),
        });
        self.run(now);
    }

    /// Closes gracefully: stops accepting records, sends what is buffered, and once
    /// everything is delivered or failed closes the connections and reports
    /// [`ProducerEvent::Closed`] (once, however often this is called). With a `timeout`,
    /// whatever is still pending when it passes fails with [`ProduceError::Closed`] (a
    /// [`ProducerCore::flush`] with the same timeout, given just before, tells whether
    /// everything was delivered). Senders waiting for memory are refused with `Closed` at
    /// once.
    pub fn close(&mut self, timeout: Option<Duration>, now: Instant) {
        if self.closed {
            return;
        }
        self.shared.set_closed();
        self.refuse_waiters(ProduceError::Closed);
        let deadline = timeout.map(|t| now + t);
        match &mut self.closing {
            // A second close may only shorten the wait.
            Some(c) => c.deadline = Deadline::from(c.deadline).with(deadline).earliest(),
            None => self.closing = Some(Closing { deadline }),
        }
        self.run(now);
    }

    /// Closes hard: fails everything still pending with [`ProduceError::Closed`] at once
    /// (each record with an op reported in a [`ProducerEvent::Delivered`], each waiting
    /// call answered), closes the connections and reports [`ProducerEvent::Closed`] (unless
    /// it was already reported).
    pub fn abort(&mut self) {
        if self.closed {
            return;
        }
        let now = self.last_now.or(self.metrics.as_ref().map(|r| r.started));
        match now {
            Some(now) => self.abort_all_at(ProduceError::Closed, now),
            // No input was ever handled, so no request can be in flight, and metadata
            // never arrived: whatever was accepted waits for it.
            None => self.abort_unstarted(ProduceError::Closed),
        }
        self.shared.set_closed();
        self.net.close();
        // Hand over the connections' `Close`; responses of the requests just failed are
        // moot.
        while let Some(o) = self.net.poll_output() {
            if let Ok(o) = o.for_driver() {
                self.out.push_back(o);
            }
        }
        self.finish_close(Err(ProduceError::Closed));
    }

    /// Marks the producer closed, answers every waiting call (flushes with
    /// `flush_result`) and reports [`ProducerEvent::Closed`].
    pub(super) fn finish_close(&mut self, flush_result: Result<(), ProduceError>) {
        self.txn_on_close();
        self.closed = true;
        self.closing = None;
        self.next_wakeup = None;
        for f in std::mem::take(&mut self.flushes) {
            self.event(ProducerEvent::Flushed {
                op: f.op,
                result: flush_result.clone(),
            });
        }
        for w in std::mem::take(&mut self.partition_waiters) {
            self.event(ProducerEvent::Partitions {
                op: w.op,
                result: Err(ProduceError::Closed),
            });
        }
        self.event(ProducerEvent::Closed);
    }

    /// Refuses every sender waiting for memory with `e`.
    pub(super) fn refuse_waiters(&mut self, e: ProduceError) {
        for w in std::mem::take(&mut self.mem_waiters) {
            if let Some(op) = w.op {
                self.event(ProducerEvent::Admitted {
                    op,
                    result: Err(e.clone()),
                });
            }
        }
        self.shared.set_waiting(0);
    }

    /// The partitions of `topic` (fetching its metadata first if needed, up to
    /// `max_block_ms`), reported in [`ProducerEvent::Partitions`].
    pub fn partitions_for(&mut self, op: OpId, topic: &str, now: Instant) {
        if let Some(e) = self.refusal() {
            self.event(ProducerEvent::Partitions { op, result: Err(e) });
            return;
        }
        match self.topic_partitions(topic) {
            Some(result) => self.event(ProducerEvent::Partitions { op, result }),
            None => {
                self.net.add_topic_interest(topic);
                self.net.request_metadata(false, now);
                self.partition_waiters.push(PartitionsWaiter {
                    op,
                    topic: topic.to_owned(),
                    deadline: now + self.max_block,
                });
                self.run(now);
            }
        }
    }

    /// The partitions of a topic the cluster view knows, or the error metadata gave for it;
    /// `None` while it is unknown (or only transiently failing).
    pub(super) fn topic_partitions(
        &self,
        topic: &str,
    ) -> Option<Result<Vec<PartitionInfo>, ProduceError>> {
        let t = self.net.cluster().topic(topic)?;
        if t.error.is_ok() && !t.partitions.is_empty() {
            return Some(Ok(t.partitions.clone()));
        }
        if t.error.is_err()
            && !t.error.is_retriable()
            && t.error != ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        {
            return Some(Err(ProduceError::Broker {
                topic: topic.to_owned(),
                partition: -1,
                broker: "metadata".into(),
                code: t.error,
                message: None,
            }));
        }
        None
    }

    pub(super) fn check_flushes(&mut self, now: Instant) {
        if self.flushes.is_empty() {
            return;
        }
        let oldest_pending = self.old_gens.keys().next().copied();
        let mut i = 0;
        while i < self.flushes.len() {
            let f = &self.flushes[i];
            let done = oldest_pending.is_none_or(|g| g > f.upto_gen);
            if done {
                let f = self.flushes.swap_remove(i);
                self.event(ProducerEvent::Flushed {
                    op: f.op,
                    result: Ok(()),
                });
            } else if f.deadline.is_some_and(|d| now >= d) {
                let f = self.flushes.swap_remove(i);
                let pending: usize = self.old_gens.range(..=f.upto_gen).map(|(_, n)| *n).sum();
                self.event(ProducerEvent::Flushed {
                    op: f.op,
                    result: Err(ProduceError::FlushTimeout {
                        after: f.timeout,
                        pending,
                    }),
                });
            } else {
                i += 1;
            }
        }
    }

    pub(super) fn check_close(&mut self, now: Instant) {
        let Some(closing) = &self.closing else {
            return;
        };
        let idle = self.pending == 0 && self.in_flight.is_empty();
        let expired = closing.deadline.is_some_and(|d| now >= d);
        if !idle && !expired {
            return;
        }
        if !idle {
            self.abort_all_at(ProduceError::Closed, now);
        }
        self.net.close();
        self.pump_network(now);
        self.finish_close(if idle {
            Ok(())
        } else {
            Err(ProduceError::Closed)
        });
    }

    pub(super) fn go_fatal(&mut self, e: ProduceError, now: Instant) {
        tracing::warn!(error = %e, "producer failed");
        self.fatal = Some(e.clone());
        self.txn_on_fatal(&e);
        self.abort_all_at(e.clone(), now);
        self.event(ProducerEvent::Fatal(e));
    }

    /// Fails everything accepted when no input ever ran (see [`ProducerCore::abort`]).
    pub(super) fn abort_unstarted(&mut self, e: ProduceError) {
        for b in self.acc.take_all() {
            self.release_batch(b, Err(&e), None);
        }
        for (_, q) in std::mem::take(&mut self.awaiting_metadata) {
            for q in q {
                self.shared.release(q.reserved);
                self.record_done(q.gen);
                if let Some(op) = q.op {
                    self.report.push_failed(op, e.clone());
                }
            }
        }
        self.refuse_waiters(e);
    }

    /// Fails every record the producer holds with `e`.
    pub(super) fn abort_all_at(&mut self, e: ProduceError, now: Instant) {
        for b in self.acc.take_all() {
            self.fail_batch(b, e.clone(), now);
        }
        let in_flight = std::mem::take(&mut self.in_flight);
        self.in_flight_per_node.clear();
        for (_, req) in in_flight {
            for b in req.batches {
                self.fail_batch(b, e.clone(), now);
            }
        }
        for (_, q) in std::mem::take(&mut self.awaiting_metadata) {
            for q in q {
                self.fail_record(q.op, q.reserved, q.gen, e.clone(), now);
            }
        }
        self.refuse_waiters(e);
    }
}
