//! Taking records in: stamping, memory, waiting for metadata, partitioning and appending
//! to the accumulator (the per-record hot path).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{HotTopic, MemWaiter, ProducerCore, ProducerEvent, Queued, TopicCache};
use crate::producer::deliveries::SendStatus;
use crate::producer::error::ProduceError;
use crate::producer::record::{ProducerRecord, RecordBody};
use crate::OpId;

impl ProducerCore {
    pub(super) fn wall_ms(&self, now: Instant) -> Option<i64> {
        let (anchor, ms) = self.wall?;
        Some(if now >= anchor {
            ms.saturating_add(now.duration_since(anchor).as_millis() as i64)
        } else {
            ms.saturating_sub(anchor.duration_since(now).as_millis() as i64)
        })
    }

    /// The record's CreateTime: its own, or the wall clock's now (stored in the record).
    #[inline]
    pub(super) fn stamp(
        &self,
        timestamp: &mut Option<i64>,
        now: Instant,
    ) -> Result<i64, ProduceError> {
        match *timestamp {
            Some(t) => Ok(t),
            None => {
                let t = self.wall_ms(now).ok_or(ProduceError::NoWallClock)?;
                *timestamp = Some(t);
                Ok(t)
            }
        }
    }

    pub(super) fn refusal(&self) -> Option<ProduceError> {
        if let Some(f) = &self.fatal {
            return Some(f.clone());
        }
        // Not `self.shared.is_closed()`: only this core sets that flag (in `close` and
        // `abort`, which also set `closing` or `closed`), and reading it here, once per
        // record, pulled the shared account's cache line away from the sending thread.
        if self.closing.is_some() || self.closed {
            return Some(ProduceError::Closed);
        }
        self.txn.as_ref().and_then(|t| t.send_refusal())
    }

    /// Queues a record, reserving its buffer memory here. `op` names it in the events that
    /// report it (`None`: fire and forget, never reported; still counted in the metrics).
    ///
    /// - `Err`: refused at once (producer closed or failed, record too large,
    ///   [`ProduceError::NoWallClock`]); not reported again.
    /// - [`SendStatus::Accepted`]: its outcome comes in a [`ProducerEvent::Delivered`].
    /// - [`SendStatus::Waiting`]: buffer memory is short (or others already wait for it): it
    ///   waits in order up to `max_block_ms`, and [`ProducerEvent::Admitted`] says when it
    ///   is admitted (its outcome then follows as for an accepted record) or refused.
    ///
    /// A record without a timestamp is stamped now from the wall clock (see
    /// [`ProducerCore::handle_wall_clock`]).
    pub fn send(
        &mut self,
        op: Option<OpId>,
        mut record: ProducerRecord,
        now: Instant,
    ) -> Result<SendStatus, ProduceError> {
        if let Some(e) = self.refusal() {
            return Err(e);
        }
        let size = self.shared.check_record(&record)?;
        let timestamp = self.stamp(&mut record.timestamp, now)?;
        let status = if self.mem_waiters.is_empty() && self.shared.reserve_ignoring_waiters(size) {
            let (topic, mut body) = record.into_parts();
            self.accept(&topic, &mut body, timestamp, size, op, now);
            SendStatus::Accepted
        } else {
            self.mem_waiters.push_back(MemWaiter {
                record,
                timestamp,
                reserved: size,
                op,
                deadline: now + self.max_block,
            });
            self.shared.set_waiting(self.mem_waiters.len());
            SendStatus::Waiting
        };
        self.run(now);
        Ok(status)
    }

    /// Queues a record whose `reserved` bytes of buffer memory a handle already took from
    /// [`ProducerCore::shared`] (the lock-free fast path; see
    /// [`ProducerShared::try_reserve`]). The memory returns to the account when the record
    /// completes, or at once when it is refused (`Err`, not reported again). `reserved` must
    /// be what [`ProducerShared::check_record`] returned for the record: the core also uses
    /// it as the record's size bound when filling batches. The outcome of an accepted record
    /// with an `op` comes in a [`ProducerEvent::Delivered`].
    pub fn send_reserved(
        &mut self,
        op: Option<OpId>,
        record: ProducerRecord,
        reserved: u64,
        now: Instant,
    ) -> Result<(), ProduceError> {
        let (topic, mut body) = record.into_parts();
        let wake = match self.accept_reserved(&topic, &mut body, reserved, op, now) {
            Ok(wake) => wake,
            Err(e) => {
                self.shared.release(reserved);
                return Err(e);
            }
        };
        self.fold_record_sizes(now);
        self.run_if_due(wake, now);
        self.emit_report();
        Ok(())
    }

    /// [`ProducerCore::send_reserved`] for a run of records a handle staged, in order. A
    /// batch filled on the way is sent at once (a long run keeps the broker busy meanwhile);
    /// once the run is queued the sender runs if a batch's linger is already over. A record
    /// of the run that is refused is reported like a failed one, in a
    /// [`ProducerEvent::Delivered`] (a run has no single error to return).
    pub fn send_reserved_all(
        &mut self,
        records: impl IntoIterator<Item = (Option<OpId>, ProducerRecord, u64)>,
        now: Instant,
    ) {
        for (op, record, reserved) in records {
            let (topic, mut body) = record.into_parts();
            self.accept_staged(op, &topic, &mut body, reserved, now);
        }
        self.staged_done(now);
    }

    /// One record of a run a handle staged (see [`ProducerCore::send_reserved_all`]): the
    /// topic comes by reference, so a run to one topic shares the handle's `Arc`, and so
    /// does the body, which stays where the handle staged it (the core takes it only when
    /// the record must wait for metadata; the caller drops what is left). Call
    /// [`ProducerCore::staged_done`] after the run.
    pub(crate) fn accept_staged(
        &mut self,
        op: Option<OpId>,
        topic: &Arc<str>,
        body: &mut RecordBody,
        reserved: u64,
        now: Instant,
    ) {
        match self.accept_reserved(topic, body, reserved, op, now) {
            Ok(true) => self.run(now),
            Ok(false) => {}
            Err(e) => self.refuse_staged(op, reserved, e),
        }
    }

    /// Gives a refused staged record's memory back and reports it.
    #[cold]
    pub(super) fn refuse_staged(&mut self, op: Option<OpId>, reserved: u64, e: ProduceError) {
        self.shared.release(reserved);
        if let Some(op) = op {
            self.report.push_failed(op, e);
        }
    }

    /// Ends a run of [`ProducerCore::accept_staged`]: runs the sender if a batch's linger
    /// is already over, and reports what completed meanwhile.
    pub(crate) fn staged_done(&mut self, now: Instant) {
        self.fold_record_sizes(now);
        self.run_if_due(false, now);
        self.emit_report();
    }

    /// Queues a record with its memory reserved; whether the sender should run now. `Err`:
    /// refused (the caller gives the memory back).
    #[inline]
    pub(super) fn accept_reserved(
        &mut self,
        topic: &Arc<str>,
        body: &mut RecordBody,
        reserved: u64,
        op: Option<OpId>,
        now: Instant,
    ) -> Result<bool, ProduceError> {
        // The handles' records come stamped to a producer that accepts them: decided with
        // two plain tests per record, the error values built only off this path.
        match body.timestamp {
            Some(t)
                if self.fatal.is_none()
                    && self.closing.is_none()
                    && !self.closed
                    && self.txn.is_none() =>
            {
                Ok(self.accept(topic, body, t, reserved, op, now))
            }
            _ => self.accept_reserved_slowly(topic, body, reserved, op, now),
        }
    }

    /// [`ProducerCore::accept_reserved`] for a record to stamp, or to refuse.
    #[cold]
    pub(super) fn accept_reserved_slowly(
        &mut self,
        topic: &Arc<str>,
        body: &mut RecordBody,
        reserved: u64,
        op: Option<OpId>,
        now: Instant,
    ) -> Result<bool, ProduceError> {
        if let Some(e) = self.refusal() {
            return Err(e);
        }
        let timestamp = self.stamp(&mut body.timestamp, now)?;
        Ok(self.accept(topic, body, timestamp, reserved, op, now))
    }

    /// Runs the sender if an accepted record asked for it or a batch's linger is already
    /// over. With `linger_ms = 0` a new batch is due at once: reporting `now` as the next
    /// deadline instead would leave it to the driver's timer, and timers round up (tokio's
    /// to the end of the current millisecond), which held every such batch up to 1 ms.
    pub(super) fn run_if_due(&mut self, wake: bool, now: Instant) {
        if wake || self.next_wakeup.is_some_and(|t| t <= now) {
            self.run(now);
        }
    }

    /// Admits waiting senders in order while memory lasts.
    pub(super) fn admit_waiters(&mut self, now: Instant) {
        while let Some(w) = self.mem_waiters.front() {
            if !self.shared.reserve_ignoring_waiters(w.reserved) {
                break;
            }
            let w = self.mem_waiters.pop_front().expect("front checked");
            self.shared.set_waiting(self.mem_waiters.len());
            if let Some(op) = w.op {
                self.event(ProducerEvent::Admitted { op, result: Ok(()) });
            }
            let (topic, mut body) = w.record.into_parts();
            self.accept(&topic, &mut body, w.timestamp, w.reserved, w.op, now);
        }
    }

    /// Takes a stamped record with its memory reserved. Returns whether the sender should
    /// run now (a batch filled up, or the record must wait for metadata).
    pub(super) fn accept(
        &mut self,
        topic: &Arc<str>,
        body: &mut RecordBody,
        timestamp: i64,
        reserved: u64,
        op: Option<OpId>,
        now: Instant,
    ) -> bool {
        self.recorder(now).note_record_size(reserved);
        self.pending += 1;
        self.gen_count += 1;
        let gen = self.gen;
        if let Some(queue) = self.awaiting_metadata.get_mut(topic) {
            // Keep the order of records for a topic whose metadata is still coming.
            queue.push_back(Queued {
                record: ProducerRecord::from_parts(topic.clone(), std::mem::take(body)),
                timestamp,
                reserved,
                op,
                gen,
                deadline: now + self.max_block,
            });
            return false;
        }
        let known = self.topic_known(topic);
        if !known {
            self.net.add_topic_interest(topic);
            self.net.request_metadata(false, now);
            self.awaiting_metadata
                .entry(topic.clone())
                .or_default()
                .push_back(Queued {
                    record: ProducerRecord::from_parts(topic.clone(), std::mem::take(body)),
                    timestamp,
                    reserved,
                    op,
                    gen,
                    deadline: now + self.max_block,
                });
            return true;
        }
        self.append(topic, body, timestamp, reserved, op, gen, now)
    }

    /// Whether the cluster view knows `topic` well enough to partition records for it.
    pub(super) fn topic_known(&mut self, topic: &Arc<str>) -> bool {
        if self
            .hot_topic
            .as_ref()
            .is_some_and(|h| Arc::ptr_eq(&h.topic, topic))
        {
            return true;
        }
        if let Some(c) = self.topic_cache.get(topic) {
            if c.partitions > 0 {
                self.hot_topic = Some(HotTopic {
                    topic: topic.clone(),
                    partitions: c.partitions,
                    available: c.available.clone(),
                    name: c.name.clone(),
                });
            }
            return c.partitions > 0;
        }
        let cluster = self.net.cluster().clone();
        match cluster.topic(topic) {
            Some(t) if t.error.is_ok() && !t.partitions.is_empty() => {
                let available = t
                    .partitions
                    .iter()
                    .filter(|p| cluster.leader_for(topic, p.partition).is_some())
                    .map(|p| p.partition)
                    .collect();
                self.topic_cache.insert(
                    topic.clone(),
                    TopicCache {
                        partitions: t.partitions.len() as i32,
                        available,
                        name: Arc::from(&**topic),
                    },
                );
                true
            }
            _ => false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn append(
        &mut self,
        topic: &Arc<str>,
        record: &RecordBody,
        timestamp: i64,
        reserved: u64,
        op: Option<OpId>,
        gen: u64,
        now: Instant,
    ) -> bool {
        // The topic's partitioning facts, taken out of `hot_topic` for the call (and put back)
        // rather than cloned: two reference-count changes per record were measurable.
        let hot = match self.hot_topic.take() {
            Some(h) if Arc::ptr_eq(&h.topic, topic) => Some(h),
            other => {
                self.hot_topic = other;
                None
            }
        };
        let (hot, taken) = if let Some(hot) = hot {
            (hot, true)
        } else {
            let Some(cache) = self.topic_cache.get(topic) else {
                // topic_known() was checked by every caller; fail honestly if not.
                self.fail_record(
                    op,
                    reserved,
                    gen,
                    ProduceError::UnknownTopic {
                        topic: topic.to_string(),
                    },
                    now,
                );
                return false;
            };
            let hot = HotTopic {
                topic: topic.clone(),
                partitions: cache.partitions,
                available: cache.available.clone(),
                name: cache.name.clone(),
            };
            (hot, false)
        };
        let wake = self.append_to(&hot, record, timestamp, reserved, op, gen, now);
        if taken {
            self.hot_topic = Some(hot);
        }
        wake
    }

    /// [`ProducerCore::append`] once the topic's partitioning facts are found.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn append_to(
        &mut self,
        hot: &HotTopic,
        record: &RecordBody,
        timestamp: i64,
        reserved: u64,
        op: Option<OpId>,
        gen: u64,
        now: Instant,
    ) -> bool {
        let (topic, name, partitions) = (&hot.topic, &hot.name, hot.partitions);
        // `reserved` is the record's size bound (`check_record` computed it when the memory
        // was taken; see `send_reserved`): not computed again per record here.
        let bound = usize::try_from(reserved).unwrap_or(usize::MAX);
        let (partition, room) = match record.partition {
            Some(p) => (p, None),
            None => {
                let mut p = self.choose_partition(hot, record);
                let mut room = None;
                if p >= 0 {
                    room = self.acc.room_in_last(name, p, bound);
                    if room.is_none() {
                        // KIP-480: the sticky partitioner moves on when its batch is done.
                        self.partitioner.on_new_batch(name, p);
                        p = self.choose_partition(hot, record);
                    }
                }
                (p, room)
            }
        };
        if partition < 0 || partition >= partitions {
            let e = ProduceError::UnknownPartition {
                topic: topic.to_string(),
                partition,
                partitions: partitions.max(0) as usize,
            };
            self.fail_record(op, reserved, gen, e, now);
            return false;
        }
        let _send = crate::network::spans::send(name, partition).entered();
        if let Some(txn) = &mut self.txn {
            // The partition joins the transaction before its first batch goes out.
            txn.add_partition(name, partition);
        }
        match self.acc.append(
            name,
            partition,
            timestamp,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
            bound,
            reserved,
            op,
            gen,
            now,
            room,
        ) {
            Ok(appended) => {
                if appended.new_batch {
                    let linger_at = now + Duration::from_millis(self.config.linger_ms);
                    self.consider_wakeup(linger_at);
                }
                appended.batch_full
            }
            Err(e) => {
                let e = ProduceError::Encode {
                    topic: topic.to_string(),
                    partition,
                    detail: e.to_string(),
                };
                self.fail_record(op, reserved, gen, e, now);
                false
            }
        }
    }

    /// The partitioner's choice for `record` to the topic `hot` describes.
    pub(super) fn choose_partition(&mut self, hot: &HotTopic, record: &RecordBody) -> i32 {
        self.partitioner.partition(
            &hot.name,
            record.key.as_deref(),
            record.value.as_deref(),
            hot.partitions,
            &hot.available,
            self.net.rng(),
        )
    }

    /// One record is done: account for it (memory is released per batch by the caller).
    pub(super) fn record_done(&mut self, gen: u64) {
        self.pending = self.pending.saturating_sub(1);
        if gen == self.gen {
            self.gen_count = self.gen_count.saturating_sub(1);
        } else if let Some(n) = self.old_gens.get_mut(&gen) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.old_gens.remove(&gen);
            }
        }
    }

    /// Fails one accepted record that is in no batch, giving its memory back.
    pub(super) fn fail_record(
        &mut self,
        op: Option<OpId>,
        reserved: u64,
        gen: u64,
        e: ProduceError,
        now: Instant,
    ) {
        self.shared.release(reserved);
        self.record_done(gen);
        let r = self.recorder(now);
        r.errors.record(1.0, now);
        r.record_error_total += 1;
        if let Some(op) = op {
            self.report.push_failed(op, e);
        }
    }
}
