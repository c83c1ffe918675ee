//! The application's producer handle: [`ProducerHandle`] (bytes) and
//! [`TypedProducerHandle`] (with serializers), over a [`ProducerCore`] running in some
//! driver's loop.
//!
//! Sending is a fast path: the handle stamps the record's timestamp from its [`WallClock`],
//! reserves the record's buffer memory with one compare-and-swap on the shared account, and
//! stages the record for the loop (one command, and one wake-up of the loop, per run of
//! sends the loop has not picked up yet, not per record); the outcome arrives on a
//! [`DeliveryFuture`]. Only when memory is short
//! (or others already wait for it) does `enqueue` wait for the core to admit the record.
//! [`ProducerHandle::send`] is `enqueue` followed by awaiting that future.
//!
//! The core speaks ids and events only ([`ProducerCore::send`] takes an [`OpId`],
//! [`ProducerEvent`] reports it); [`ProducerHandler`], on the loop thread, keeps what each
//! id stands for — the record's [`Delivery`], the admission, flush, close or partitions
//! waiter — and completes it when the event comes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_channel::oneshot;

use super::{CommandSender, Handler};
use crate::consumer::{GroupMetadata, OffsetAndMetadata, TopicPartition};
use crate::network::{ClientCore, Output, PartitionInfo};
use crate::producer::RecordBody;
use crate::producer::{
    Delivery, DeliveryFuture, ProduceError, ProducerCore, ProducerEvent, ProducerMetrics,
    ProducerRecord, ProducerShared, RecordMetadata, SendStatus,
};
use crate::OpId;

/// The wall clock records are stamped with: milliseconds since the Unix epoch.
pub type WallClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Where an answer to the application goes.
type Reply<T> = oneshot::Sender<Result<T, ProduceError>>;

/// The records' [`Delivery`]s by [`OpId`]: the id is the slot's index, so a record costs a
/// push or a reused slot and an index, no hashing. A slot is reused only after the core
/// reported its record, and the core reports each record once, so an id never names two
/// live records and needs no generation.
#[derive(Debug, Default)]
struct Slab {
    slots: Vec<Option<Delivery>>,
    free: Vec<usize>,
}

impl Slab {
    /// Keeps `delivery`; the op naming it to the core.
    #[inline]
    fn insert(&mut self, delivery: Delivery) -> OpId {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(delivery);
                OpId(i as u64)
            }
            None => {
                self.slots.push(Some(delivery));
                OpId(self.slots.len() as u64 - 1)
            }
        }
    }

    /// The op for a record's delivery: `None` for [`Delivery::Ignore`] (the core then
    /// reports nothing for the record).
    #[inline]
    fn track(&mut self, delivery: Delivery) -> Option<OpId> {
        match delivery {
            Delivery::Ignore => None,
            delivery => Some(self.insert(delivery)),
        }
    }

    /// Takes the delivery `op` names, freeing its slot.
    #[inline]
    fn take(&mut self, op: OpId) -> Option<Delivery> {
        let i = usize::try_from(op.0).ok()?;
        let delivery = self.slots.get_mut(i)?.take()?;
        self.free.push(i);
        Some(delivery)
    }

    /// Takes every delivery still kept.
    fn drain(&mut self) -> impl Iterator<Item = Delivery> + '_ {
        self.free.clear();
        self.slots.drain(..).flatten()
    }
}

/// A close in progress: the flush given with it (whose result is the close's) and the
/// application's wait.
#[derive(Debug)]
struct CloseWaiter {
    flush: OpId,
    result: Option<Result<(), ProduceError>>,
    reply: Reply<()>,
}

/// The [`Handler`] of a loop running a [`ProducerCore`]: it gives the core an [`OpId`] for
/// every application command and completes the application's futures and callbacks from
/// the core's [`ProducerEvent`]s, on the loop thread. When the loop stops it aborts the
/// core and fails whatever is left with [`ProduceError::Closed`].
///
/// Records' ids index a slab (see [`ProducerHandler::send`]); flushes, closes and
/// partition lookups, which are few, are kept in small maps under ids of their own.
#[derive(Debug, Default)]
pub struct ProducerHandler {
    records: Slab,
    admissions: BTreeMap<OpId, Reply<()>>,
    flushes: BTreeMap<OpId, Reply<()>>,
    partitions: BTreeMap<OpId, Reply<Vec<PartitionInfo>>>,
    transactions: BTreeMap<OpId, Reply<()>>,
    closes: Vec<CloseWaiter>,
    next_call: u64,
}

impl ProducerHandler {
    fn call_id(&mut self) -> OpId {
        self.next_call += 1;
        OpId(self.next_call)
    }

    /// Hands `record` to `core`, to report its outcome to `delivery`. When the record must
    /// wait for buffer memory, `admitted` (if given) learns when it is admitted or refused;
    /// otherwise it is answered at once. A refused record's delivery gets the error too.
    pub fn send(
        &mut self,
        core: &mut ProducerCore,
        record: ProducerRecord,
        delivery: Delivery,
        admitted: Option<Reply<()>>,
        now: Instant,
    ) {
        // A record that may wait needs an op for its admission even when its outcome is
        // ignored.
        let op = match (delivery, &admitted) {
            (Delivery::Ignore, None) => None,
            (delivery, _) => Some(self.records.insert(delivery)),
        };
        match core.send(op, record, now) {
            Ok(SendStatus::Accepted) => {
                if let Some(a) = admitted {
                    let _ = a.send(Ok(()));
                }
            }
            Ok(SendStatus::Waiting) => {
                if let (Some(op), Some(a)) = (op, admitted) {
                    self.admissions.insert(op, a);
                }
            }
            Err(e) => {
                if let Some(a) = admitted {
                    let _ = a.send(Err(e.clone()));
                }
                if let Some(d) = op.and_then(|op| self.records.take(op)) {
                    d.complete(Err(e));
                }
            }
        }
    }

    /// Flushes `core`; `done` gets the result (see [`ProducerCore::flush`]).
    pub fn flush(
        &mut self,
        core: &mut ProducerCore,
        timeout: Option<Duration>,
        now: Instant,
        done: Reply<()>,
    ) {
        let op = self.call_id();
        self.flushes.insert(op, done);
        core.flush(op, timeout, now);
    }

    /// Closes `core` gracefully; `done` gets `Ok` once everything was delivered and the
    /// connections are closed, or [`ProduceError::FlushTimeout`] if `timeout` passed first
    /// (what was still pending then failed with [`ProduceError::Closed`]).
    pub fn close(
        &mut self,
        core: &mut ProducerCore,
        timeout: Option<Duration>,
        now: Instant,
        done: Reply<()>,
    ) {
        if core.is_closed() {
            let _ = done.send(Ok(()));
            return;
        }
        // The close's result is that of a flush with the same timeout given just before:
        // it times out (and says how many records were pending) when the close does.
        let flush = self.call_id();
        self.closes.push(CloseWaiter {
            flush,
            result: None,
            reply: done,
        });
        core.flush(flush, timeout, now);
        core.close(timeout, now);
    }

    /// The partitions of `topic`; `done` gets them (see [`ProducerCore::partitions_for`]).
    pub fn partitions_for(
        &mut self,
        core: &mut ProducerCore,
        topic: &str,
        now: Instant,
        done: Reply<Vec<PartitionInfo>>,
    ) {
        let op = self.call_id();
        self.partitions.insert(op, done);
        core.partitions_for(op, topic, now);
    }

    /// Runs a transactional call of `core` (`call` gets the op to pass); `done` gets its
    /// [`ProducerEvent::Transaction`] result.
    pub fn transaction(
        &mut self,
        core: &mut ProducerCore,
        done: Reply<()>,
        call: impl FnOnce(&mut ProducerCore, OpId),
    ) {
        let op = self.call_id();
        self.transactions.insert(op, done);
        call(core, op);
    }

    /// Completes what `event` reports.
    fn handle(&mut self, core: &mut ProducerCore, event: ProducerEvent) {
        match event {
            ProducerEvent::Delivered(deliveries) => {
                let records = &mut self.records;
                deliveries.for_each(|op, result| {
                    if let Some(d) = records.take(op) {
                        d.complete(result);
                    }
                });
                core.recycle_deliveries(deliveries);
            }
            ProducerEvent::Admitted { op, result } => {
                if let Some(a) = self.admissions.remove(&op) {
                    let _ = a.send(result.clone());
                }
                if let Err(e) = result {
                    if let Some(d) = self.records.take(op) {
                        d.complete(Err(e));
                    }
                }
            }
            ProducerEvent::Flushed { op, result } => {
                if let Some(f) = self.flushes.remove(&op) {
                    let _ = f.send(result);
                } else if let Some(c) = self.closes.iter_mut().find(|c| c.flush == op) {
                    c.result = Some(result);
                }
            }
            ProducerEvent::Partitions { op, result } => {
                if let Some(p) = self.partitions.remove(&op) {
                    let _ = p.send(result);
                }
            }
            ProducerEvent::Transaction { op, result } => {
                if let Some(t) = self.transactions.remove(&op) {
                    let _ = t.send(result);
                }
            }
            ProducerEvent::Fatal(e) => tracing::error!(error = %e, "producer failed"),
            ProducerEvent::Closed => {
                tracing::debug!("producer closed");
                for c in self.closes.drain(..) {
                    // The core answers every flush before it reports `Closed`.
                    let _ = c.reply.send(c.result.unwrap_or(Err(ProduceError::Closed)));
                }
            }
        }
    }
}

impl Handler<ProducerCore> for ProducerHandler {
    fn on_event(&mut self, core: &mut ProducerCore, event: ProducerEvent, _now: Instant) {
        self.handle(core, event);
    }

    fn on_shutdown(&mut self, core: &mut ProducerCore) {
        core.abort();
        // The loop is stopping: what the abort reports is handled here, and the
        // connections' `Close` outputs are left to the loop, which drops every connection.
        while let Some(out) = core.poll_output() {
            if let Output::Event(event) = out {
                self.handle(core, event);
            }
        }
        for d in self.records.drain() {
            d.complete(Err(ProduceError::Closed));
        }
        for (_, a) in std::mem::take(&mut self.admissions) {
            let _ = a.send(Err(ProduceError::Closed));
        }
        for (_, f) in std::mem::take(&mut self.flushes) {
            let _ = f.send(Err(ProduceError::Closed));
        }
        for (_, p) in std::mem::take(&mut self.partitions) {
            let _ = p.send(Err(ProduceError::Closed));
        }
        for (_, t) in std::mem::take(&mut self.transactions) {
            let _ = t.send(Err(ProduceError::Closed));
        }
        for c in self.closes.drain(..) {
            let _ = c.reply.send(c.result.unwrap_or(Err(ProduceError::Closed)));
        }
    }
}

struct Inner {
    cmds: CommandSender<ProducerCore, ProducerHandler>,
    shared: Arc<ProducerShared>,
    wall_clock: WallClock,
    staged: Arc<Staging>,
}

/// Records per staging chunk (a `Staged` is about 160 bytes, so a chunk is about 40 KiB).
const CHUNK: usize = 256;

/// Most chunks staged at once (8,192 records, about 1.3 MiB). A send that would start one
/// more waits for the loop to take what is staged, as a send waits for buffer memory (the
/// slow path); [`ProducerHandle::try_send`], which never waits, stages past it.
///
/// Without the bound, a sender that outran the loop staged up to `buffer_memory` worth of
/// records (hundreds of thousands of 100 B records, tens of MiB of chunks): chunks beyond
/// the pool were fresh memory, freed again after the drain, and the allocator handed it back
/// to the system and faulted it in again (a fifth of the page faults of a 100 B produce
/// profile). A deeper queue does not make the loop faster: it takes a few hundred records
/// per drain when it keeps up.
const MAX_STAGED_CHUNKS: usize = 32;

/// Empty chunks kept for reuse: enough for a full staging queue while the loop drains the
/// previous one, so that a sender that outruns the loop reuses the same memory.
const MAX_SPARE_CHUNKS: usize = 2 * MAX_STAGED_CHUNKS;

/// A record the fast path did not admit because buffer memory is short, for the slow path
/// (boxed: this is the rare case, and it keeps the fast path's result small).
type Deferred = Box<(ProducerRecord, Delivery)>;

/// A record that took the fast path: checked, stamped, its memory reserved.
struct Staged {
    /// The record's topic when it differs from the previous staged record's, or when it is
    /// the first record staged since the loop last took them; `None`: the same topic. The
    /// sending thread drops the duplicates itself (see [`RecordBody`]).
    topic: Option<Arc<str>>,
    body: RecordBody,
    reserved: u64,
    delivery: Delivery,
}

/// Records sent on the fast path, waiting for the loop to take them. Sends append here under
/// a short lock; only the send that finds the queue empty queues a command (one boxed command
/// and one wake-up of the loop per run of sends, not per record). That command takes
/// everything staged when it runs. Records staged before a later command (flush, close, a
/// slow-path send) are therefore in the core before that command runs: their drain command
/// was queued first.
#[derive(Default)]
struct Staging {
    state: Mutex<StagingState>,
}

/// The staged records are kept in fixed-size chunks, recycled through a small pool, rather
/// than in one Vec: a run of sends can be tens of thousands of records long when the loop
/// is busy or descheduled, and a single Vec grew by doubling into fresh memory for every
/// such run (realloc copies and page faults on the sending thread). A long run now only
/// takes more chunks.
#[derive(Default)]
struct StagingState {
    /// The staged records in order; every chunk but the last is full.
    chunks: Vec<Vec<Staged>>,
    /// Empty chunks of capacity [`CHUNK`] for the next records (at most
    /// [`MAX_SPARE_CHUNKS`]).
    spare: Vec<Vec<Staged>>,
    /// An empty list of chunks with some capacity, swapped with `chunks` on each drain so
    /// that the list itself is not allocated per run.
    spare_list: Vec<Vec<Staged>>,
    /// A drain command is queued and has not taken the records yet.
    scheduled: bool,
    /// The loop stopped (a drain command was dropped unrun): sends fail.
    stopped: bool,
    /// The topic of the last record staged since the loop last took them (compared by
    /// pointer, to leave a run's later records without their own `Arc`).
    last_topic: Option<Arc<str>>,
}

impl StagingState {
    /// Whether the staging queue is full (see [`MAX_STAGED_CHUNKS`]).
    fn is_full(&self) -> bool {
        self.chunks.len() >= MAX_STAGED_CHUNKS
            && self.chunks.last().is_some_and(|chunk| chunk.len() >= CHUNK)
    }

    /// Stages `body` for `topic`.
    fn push_record(
        &mut self,
        topic: Arc<str>,
        body: RecordBody,
        reserved: u64,
        delivery: Delivery,
    ) {
        let topic = match &self.last_topic {
            Some(last) if Arc::ptr_eq(last, &topic) => None,
            _ => {
                self.last_topic = Some(topic.clone());
                Some(topic)
            }
        };
        // Built in place in its chunk's slot (one copy of the record, not two).
        self.chunk_with_room().push(Staged {
            topic,
            body,
            reserved,
            delivery,
        });
    }

    /// The last chunk, or a new one when it is full (every chunk but the last is full).
    fn chunk_with_room(&mut self) -> &mut Vec<Staged> {
        if self.chunks.last().is_none_or(|chunk| chunk.len() >= CHUNK) {
            let chunk = self
                .spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(CHUNK));
            self.chunks.push(chunk);
        }
        self.chunks.last_mut().expect("a chunk was just ensured")
    }

    /// Takes every staged record, in order. The first carries its topic.
    fn take(&mut self) -> Vec<Vec<Staged>> {
        self.last_topic = None;
        let list = std::mem::take(&mut self.spare_list);
        std::mem::replace(&mut self.chunks, list)
    }

    /// Keeps the emptied chunks (up to the bound) and the list for the next runs.
    fn recycle(&mut self, mut list: Vec<Vec<Staged>>) {
        for chunk in list.drain(..) {
            if self.spare.len() >= MAX_SPARE_CHUNKS {
                break;
            }
            if chunk.capacity() == CHUNK {
                self.spare.push(chunk);
            }
        }
        list.clear();
        if list.capacity() > self.spare_list.capacity() {
            self.spare_list = list;
        }
    }
}

impl Staging {
    fn lock(&self) -> MutexGuard<'_, StagingState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands every staged record to the core, in the order they were staged.
    fn drain_into(&self, core: &mut ProducerCore, handler: &mut ProducerHandler, now: Instant) {
        let mut list = {
            let mut state = self.lock();
            state.scheduled = false;
            state.take()
        };
        // The records are read where they were staged, not moved out (a `Staged` is about
        // 160 bytes, and moving each one out and on showed as 5% of a 100 B produce
        // profile); each chunk is cleared once its records are in the core.
        let mut topic: Option<Arc<str>> = None;
        for chunk in list.iter_mut() {
            for s in chunk.iter_mut() {
                if let Some(t) = s.topic.take() {
                    topic = Some(t);
                }
                let delivery = std::mem::replace(&mut s.delivery, Delivery::Ignore);
                match &topic {
                    Some(t) => {
                        let op = handler.records.track(delivery);
                        core.accept_staged(op, t, &mut s.body, s.reserved, now);
                    }
                    // Not reached: `take` leaves the next staged record with its topic. Fail
                    // the record rather than guess a topic.
                    None => {
                        core.shared().release(s.reserved);
                        delivery.complete(Err(ProduceError::Closed));
                    }
                }
            }
            chunk.clear();
        }
        core.staged_done(now);
        self.lock().recycle(list);
    }
}

/// Carried by a drain command: if the loop drops the command without running it (the loop
/// stopped), fails what is staged with [`ProduceError::Closed`] and stops further staging.
struct DrainGuard {
    staging: Arc<Staging>,
    shared: Arc<ProducerShared>,
    ran: bool,
}

impl Drop for DrainGuard {
    fn drop(&mut self) {
        if self.ran {
            return;
        }
        let list = {
            let mut state = self.staging.lock();
            state.stopped = true;
            state.take()
        };
        for s in list.into_iter().flatten() {
            self.shared.release(s.reserved);
            s.delivery.complete(Err(ProduceError::Closed));
        }
    }
}

/// The application's handle on a producer running in a driver's loop. `Send + Sync`, and
/// cheap to clone (one `Arc`); the loop stops when the last clone is dropped, failing what
/// is still pending with [`ProduceError::Closed`] (call [`ProducerHandle::close`] or
/// [`ProducerHandle::flush`] first to deliver it).
#[derive(Clone)]
pub struct ProducerHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ProducerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerHandle")
            .field("shared", &self.inner.shared)
            .finish_non_exhaustive()
    }
}

impl ProducerHandle {
    /// Wraps the command sender of a loop running a [`ProducerCore`] with a
    /// [`ProducerHandler`], the core's [`ProducerCore::shared`] account, and the wall clock
    /// records without a timestamp are stamped with.
    pub fn new(
        cmds: CommandSender<ProducerCore, ProducerHandler>,
        shared: Arc<ProducerShared>,
        wall_clock: WallClock,
    ) -> Self {
        ProducerHandle {
            inner: Arc::new(Inner {
                cmds,
                shared,
                wall_clock,
                staged: Arc::new(Staging::default()),
            }),
        }
    }

    /// Checks, stamps and (if memory is free) queues a record with `delivery`. Returns the
    /// record and its delivery when memory is short, or when `may_wait` and the staging
    /// queue is full (see [`MAX_STAGED_CHUNKS`]).
    fn fast_path(
        &self,
        mut record: ProducerRecord,
        delivery: Delivery,
        may_wait: bool,
    ) -> Result<Option<Deferred>, ProduceError> {
        let shared = &self.inner.shared;
        if shared.is_closed() {
            return Err(ProduceError::Closed);
        }
        let size = shared.check_record(&record)?;
        if record.timestamp.is_none() {
            record.timestamp = Some((self.inner.wall_clock)());
        }
        if !shared.try_reserve(size) {
            return Ok(Some(Box::new((record, delivery))));
        }
        let (topic, body) = record.into_parts();
        let first = {
            let mut state = self.inner.staged.lock();
            if state.stopped {
                drop(state);
                shared.release(size);
                return Err(ProduceError::Closed);
            }
            if may_wait && state.is_full() {
                // A drain is already queued (records are staged): the slow path's command
                // runs after it, so this record still follows them.
                drop(state);
                shared.release(size);
                let record = ProducerRecord::from_parts(topic, body);
                return Ok(Some(Box::new((record, delivery))));
            }
            state.push_record(topic, body, size, delivery);
            !std::mem::replace(&mut state.scheduled, true)
        };
        if first {
            let guard = DrainGuard {
                staging: self.inner.staged.clone(),
                shared: shared.clone(),
                ran: false,
            };
            // If the loop is gone, the command (and its guard) is dropped: the guard fails
            // what is staged, this record included (its delivery reports `Closed`), and
            // later sends fail at once.
            let _ = self.inner.cmds.run(move |core, handler, now| {
                let mut guard = guard;
                guard.ran = true;
                guard.staging.drain_into(core, handler, now);
            });
        }
        Ok(None)
    }

    /// Queues a record that waits for memory and resolves once the core admitted it.
    async fn slow_path(
        &self,
        record: ProducerRecord,
        delivery: Delivery,
    ) -> Result<(), ProduceError> {
        let (tx, rx) = oneshot::channel();
        let staging = self.inner.staged.clone();
        self.inner
            .cmds
            .run(move |core, handler, now| {
                staging.drain_into(core, handler, now);
                handler.send(core, record, delivery, Some(tx), now)
            })
            .map_err(|_| ProduceError::Closed)?;
        rx.await.unwrap_or(Err(ProduceError::Closed))
    }

    /// Sends a record and waits for the brokers' acknowledgement: resolves to the record's
    /// [`RecordMetadata`] (topic, partition, offset, timestamp) once it is written with the
    /// configured `acks`, or to why it was not delivered. Java's
    /// `producer.send(record).get()`.
    ///
    /// One record at a time is slow (each waits at least one round trip, and `linger_ms`);
    /// to keep many in flight, [`ProducerHandle::enqueue`] them and await the returned
    /// [`DeliveryFuture`]s later, or use [`ProducerHandle::send_with_callback`]. Waiting for
    /// buffer memory, errors found before queueing, and the record's timestamp are as for
    /// [`ProducerHandle::enqueue`].
    #[doc(alias = "get")]
    pub async fn send(&self, record: ProducerRecord) -> Result<RecordMetadata, ProduceError> {
        self.enqueue(record).await?.await
    }

    /// Queues a record and returns the future of its acknowledgement: the two-stage form of
    /// [`ProducerHandle::send`], Java's `producer.send(record)` (which returns a `Future`)
    /// and rdkafka's `produce`.
    ///
    /// Resolves once the record is accepted into the producer: at once when
    /// buffer memory is free, otherwise after waiting for it (failing with
    /// [`ProduceError::MaxBlockTimeout`] after `max_block_ms`). It also waits, without a
    /// timeout of its own, while 8,192 records sent before it have not reached the
    /// producer's loop yet (a sender that outruns the loop waits for it instead of queueing
    /// without bound). The returned future resolves
    /// to the record's [`RecordMetadata`] once the broker acknowledged it, or to why it was
    /// not delivered. A record without a timestamp gets the wall clock's time now.
    #[doc(alias = "produce")]
    pub async fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        let (delivery, future) = DeliveryFuture::new();
        match self.fast_path(record, delivery, true)? {
            None => Ok(future),
            Some(deferred) => {
                let (record, delivery) = *deferred;
                self.slow_path(record, delivery).await?;
                Ok(future)
            }
        }
    }

    /// Like [`ProducerHandle::enqueue`], reporting the outcome to `callback` (run on the
    /// producer's loop thread: keep it short) instead of a future: Java's
    /// `producer.send(record, callback)`.
    pub async fn send_with_callback(
        &self,
        record: ProducerRecord,
        callback: impl FnOnce(Result<RecordMetadata, ProduceError>) + Send + 'static,
    ) -> Result<(), ProduceError> {
        let delivery = Delivery::Callback(Box::new(callback));
        match self.fast_path(record, delivery, true)? {
            None => Ok(()),
            Some(deferred) => {
                let (record, delivery) = *deferred;
                self.slow_path(record, delivery).await
            }
        }
    }

    /// Queues a record like [`ProducerHandle::enqueue`] without ever waiting: fails with
    /// [`ProduceError::MaxBlockTimeout`] (waited 0 ms) when buffer memory is exhausted right
    /// now (Java's `send` with `max.block.ms=0`).
    pub fn try_send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
        let (delivery, future) = DeliveryFuture::new();
        match self.fast_path(record, delivery, false)? {
            None => Ok(future),
            Some(deferred) => Err(ProduceError::MaxBlockTimeout {
                what: format!(
                    "{} bytes of buffer memory",
                    ProducerShared::record_size(&deferred.0)
                ),
                after: Duration::ZERO,
            }),
        }
    }

    /// Sends a record without waiting for its outcome (fire and forget; with `acks=0` the
    /// producer does not learn it either). Waits for memory like [`ProducerHandle::enqueue`].
    pub async fn send_and_forget(&self, record: ProducerRecord) -> Result<(), ProduceError> {
        match self.fast_path(record, Delivery::Ignore, true)? {
            None => Ok(()),
            Some(deferred) => {
                let (record, delivery) = *deferred;
                self.slow_path(record, delivery).await
            }
        }
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ProducerCore, &mut ProducerHandler, oneshot::Sender<T>, Instant)
            + Send
            + 'static,
    ) -> Result<T, ProduceError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .cmds
            .run(move |core, handler, now| f(core, handler, tx, now))
            .map_err(|_| ProduceError::Closed)?;
        rx.await.map_err(|_| ProduceError::Closed)
    }

    /// Sends everything buffered now (ignoring `linger_ms`) and waits until every record sent
    /// before this call is completed; [`ProduceError::FlushTimeout`] if `timeout` passes.
    pub async fn flush(&self, timeout: Option<Duration>) -> Result<(), ProduceError> {
        self.call(move |core, handler, tx, now| handler.flush(core, timeout, now, tx))
            .await?
    }

    /// Stops accepting records, delivers what is buffered and closes the connections. With a
    /// `timeout`, records still pending when it passes fail with [`ProduceError::Closed`]
    /// and this returns [`ProduceError::FlushTimeout`].
    ///
    /// Returns once the driver has written everything to the sockets (acks=0 records count
    /// as delivered when handed to the driver), so the program may exit right after.
    pub async fn close(&self, timeout: Option<Duration>) -> Result<(), ProduceError> {
        let result = self
            .call(move |core, handler, tx, now| handler.close(core, timeout, now, tx))
            .await;
        self.inner.cmds.settle().await;
        result?
    }

    /// The partitions of `topic`, fetching its metadata if needed (up to `max_block_ms`).
    pub async fn partitions_for(&self, topic: &str) -> Result<Vec<PartitionInfo>, ProduceError> {
        let topic = topic.to_owned();
        self.call(move |core, handler, tx, now| handler.partitions_for(core, &topic, now, tx))
            .await?
    }

    /// Runs a transactional call on the loop after the records staged so far reached the
    /// core (so a commit covers every record sent before it).
    async fn transaction(
        &self,
        call: impl FnOnce(&mut ProducerCore, OpId, Instant) + Send + 'static,
    ) -> Result<(), ProduceError> {
        let staging = self.inner.staged.clone();
        self.call(move |core, handler, tx, now| {
            staging.drain_into(core, handler, now);
            handler.transaction(core, tx, |core, op| call(core, op, now));
        })
        .await?
    }

    /// Initializes the transactional producer (needs `transactional_id`; Java's
    /// `initTransactions`): registers the id with its transaction coordinator, fencing any
    /// earlier producer with the same id. Call once, before the first transaction. Fails
    /// with [`ProduceError::MaxBlockTimeout`] after `max_block_ms` (calling again resumes).
    /// See [`ProducerCore::init_transactions`].
    pub async fn init_transactions(&self) -> Result<(), ProduceError> {
        self.transaction(|core, op, now| core.init_transactions(op, now))
            .await
    }

    /// Opens a transaction: records sent from now until the commit or abort belong to it.
    /// See [`ProducerCore::begin_transaction`].
    pub async fn begin_transaction(&self) -> Result<(), ProduceError> {
        let staging = self.inner.staged.clone();
        self.call(move |core, handler, tx, now| {
            staging.drain_into(core, handler, now);
            let _ = tx.send(core.begin_transaction());
        })
        .await?
    }

    /// Adds a consumer group's offsets (the next offsets to consume) to the open
    /// transaction; they are committed with it, and only if it commits. `group` is the
    /// consumer's [`GroupMetadata`] (its `group_metadata()`), which lets the group fence a
    /// member that lost its partitions (KIP-447). See
    /// [`ProducerCore::send_offsets_to_transaction`].
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
        group: GroupMetadata,
    ) -> Result<(), ProduceError> {
        self.transaction(move |core, op, now| {
            core.send_offsets_to_transaction(op, offsets, group, now)
        })
        .await
    }

    /// Commits the open transaction: delivers every record sent in it, then commits.
    /// An error other than [`ProduceError::Fatal`] means the transaction must be aborted
    /// with [`ProducerHandle::abort_transaction`]. See [`ProducerCore::commit_transaction`].
    pub async fn commit_transaction(&self) -> Result<(), ProduceError> {
        self.transaction(|core, op, now| core.commit_transaction(op, now))
            .await
    }

    /// Aborts the open transaction: its records not yet sent fail with
    /// [`ProduceError::TxnAborted`] and read_committed consumers never see the others.
    /// Refused after a fatal error. See [`ProducerCore::abort_transaction`].
    pub async fn abort_transaction(&self) -> Result<(), ProduceError> {
        self.transaction(|core, op, now| core.abort_transaction(op, now))
            .await
    }

    /// The producer's metrics (kafka-python names via [`ProducerMetrics::to_map`]).
    pub async fn metrics(&self) -> Result<ProducerMetrics, ProduceError> {
        self.call(|core, _, tx, now| {
            let _ = tx.send(core.metrics(now));
        })
        .await
    }

    /// The buffer-memory account this handle reserves from.
    pub fn shared(&self) -> &Arc<ProducerShared> {
        &self.inner.shared
    }
}

mod typed;

pub use typed::TypedProducerHandle;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn handles_are_send_sync_and_clone() {
        assert_send_sync_clone::<ProducerHandle>();
        assert_send_sync_clone::<TypedProducerHandle<str, [u8]>>();
        fn assert_send<T: Send>() {}
        assert_send::<ProducerCore>();
        assert_send::<DeliveryFuture>();
    }

    #[test]
    fn slab_slots_are_reused_once_reported() {
        let mut slab = Slab::default();
        assert_eq!(slab.track(Delivery::Ignore), None, "nothing kept");
        let (d0, _f0) = DeliveryFuture::new();
        let (d1, _f1) = DeliveryFuture::new();
        let a = slab.track(d0).expect("kept");
        let b = slab.track(d1).expect("kept");
        assert_ne!(a, b);
        assert!(slab.take(a).is_some());
        assert!(slab.take(a).is_none(), "a second report finds nothing");
        let (d2, _f2) = DeliveryFuture::new();
        assert_eq!(
            slab.track(d2),
            Some(a),
            "the freed slot serves the next record"
        );
        assert_eq!(slab.slots.len(), 2);
    }

    #[test]
    fn the_handler_completes_what_the_core_reports_and_fails_the_rest_on_shutdown() {
        let config = crate::config::ProducerConfig::builder()
            .bootstrap_servers("broker:9092")
            .build()
            .expect("config");
        let net = crate::network::NetOptions::new(vec![("broker".into(), 9092)]);
        let mut core = ProducerCore::new(config, net).expect("core");
        let now = Instant::now();
        let mut handler = ProducerHandler::default();
        // Refused at once (no wall clock): the delivery learns why.
        let (d, mut refused) = DeliveryFuture::new();
        handler.send(&mut core, ProducerRecord::new("t"), d, None, now);
        assert_eq!(refused.try_result(), Some(Err(ProduceError::NoWallClock)));
        // Accepted (it waits for metadata), with its admission answered at once.
        core.handle_wall_clock(now, 1_700_000_000_000);
        let (d, mut pending) = DeliveryFuture::new();
        let (tx, mut admitted) = oneshot::channel();
        handler.send(&mut core, ProducerRecord::new("t"), d, Some(tx), now);
        assert_eq!(admitted.try_recv(), Ok(Some(Ok(()))));
        let (tx, mut flushed) = oneshot::channel();
        handler.flush(&mut core, None, now, tx);
        let (tx, mut closed) = oneshot::channel();
        handler.close(&mut core, None, now, tx);
        assert_eq!(pending.try_result(), None);
        handler.on_shutdown(&mut core);
        assert_eq!(pending.try_result(), Some(Err(ProduceError::Closed)));
        assert_eq!(flushed.try_recv(), Ok(Some(Err(ProduceError::Closed))));
        assert_eq!(closed.try_recv(), Ok(Some(Err(ProduceError::Closed))));
        assert!(handler.records.slots.iter().all(Option::is_none));
        // A close after the core closed is answered at once.
        let (tx, mut again) = oneshot::channel();
        handler.close(&mut core, None, now, tx);
        assert_eq!(again.try_recv(), Ok(Some(Ok(()))));
    }
}
