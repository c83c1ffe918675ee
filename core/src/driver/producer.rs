//! The application's producer handle: [`ProducerHandle`] (bytes) and
//! [`TypedProducerHandle`] (with serializers), over a [`ProducerCore`] running in some
//! driver's loop.
//!
//! Sending is a fast path: the handle stamps the record's timestamp from its [`WallClock`],
//! reserves the record's buffer memory with one compare-and-swap on the shared account, and
//! stages the record for the loop (one command, and one wake-up of the loop, per run of
//! sends the loop has not picked up yet, not per record); the outcome arrives on a
//! [`DeliveryFuture`]. Only when memory is short
//! (or others already wait for it) does `send` wait for the core to admit the record.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_channel::oneshot;

use super::{CommandSender, Handler};
use crate::network::PartitionInfo;
use crate::producer::RecordBody;
use crate::producer::{
    Delivery, DeliveryFuture, ProduceError, ProducerCore, ProducerEvent, ProducerMetrics,
    ProducerRecord, ProducerShared, RecordMetadata, Serializer,
};

/// The wall clock records are stamped with: milliseconds since the Unix epoch.
pub type WallClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The [`Handler`] of a loop running a [`ProducerCore`]. The core completes deliveries
/// itself; the handler logs its events and fails what is left when the loop stops.
#[derive(Debug, Default)]
pub struct ProducerHandler {
    _private: (),
}

impl Handler<ProducerCore> for ProducerHandler {
    fn on_event(&mut self, _core: &mut ProducerCore, event: ProducerEvent, _now: Instant) {
        match event {
            ProducerEvent::Fatal(e) => tracing::error!(error = %e, "producer failed"),
            ProducerEvent::Closed => tracing::debug!("producer closed"),
        }
    }

    fn on_shutdown(&mut self, core: &mut ProducerCore) {
        core.shutdown();
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
    fn drain_into(&self, core: &mut ProducerCore, now: Instant) {
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
                    Some(t) => core.accept_staged(t, &mut s.body, s.reserved, delivery, now),
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
            let _ = self.inner.cmds.run(move |core, _, now| {
                let mut guard = guard;
                guard.ran = true;
                guard.staging.drain_into(core, now);
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
            .run(move |core, _, now| {
                staging.drain_into(core, now);
                core.send_waiting(record, delivery, tx, now)
            })
            .map_err(|_| ProduceError::Closed)?;
        rx.await.unwrap_or(Err(ProduceError::Closed))
    }

    /// Sends a record. Resolves once the record is accepted into the producer: at once when
    /// buffer memory is free, otherwise after waiting for it (failing with
    /// [`ProduceError::MaxBlockTimeout`] after `max_block_ms`). It also waits, without a
    /// timeout of its own, while 8,192 records sent before it have not reached the
    /// producer's loop yet (a sender that outruns the loop waits for it instead of queueing
    /// without bound). The returned future resolves
    /// to the record's [`RecordMetadata`] once the broker acknowledged it, or to why it was
    /// not delivered. A record without a timestamp gets the wall clock's time now.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, ProduceError> {
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

    /// Like [`ProducerHandle::send`], reporting the outcome to `callback` (run on the
    /// producer's loop thread: keep it short) instead of a future.
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

    /// Sends without ever waiting: fails with [`ProduceError::MaxBlockTimeout`] (waited 0 ms)
    /// when buffer memory is exhausted right now.
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
    /// producer does not learn it either). Waits for memory like [`ProducerHandle::send`].
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
        f: impl FnOnce(&mut ProducerCore, oneshot::Sender<T>, Instant) + Send + 'static,
    ) -> Result<T, ProduceError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .cmds
            .run(move |core, _, now| f(core, tx, now))
            .map_err(|_| ProduceError::Closed)?;
        rx.await.map_err(|_| ProduceError::Closed)
    }

    /// Sends everything buffered now (ignoring `linger_ms`) and waits until every record sent
    /// before this call is completed; [`ProduceError::FlushTimeout`] if `timeout` passes.
    pub async fn flush(&self, timeout: Option<Duration>) -> Result<(), ProduceError> {
        self.call(move |core, tx, now| {
            core.flush(
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
                timeout,
                now,
            )
        })
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
            .call(move |core, tx, now| {
                core.close(
                    timeout,
                    now,
                    Box::new(move |r| {
                        let _ = tx.send(r);
                    }),
                )
            })
            .await;
        self.inner.cmds.settle().await;
        result?
    }

    /// The partitions of `topic`, fetching its metadata if needed (up to `max_block_ms`).
    pub async fn partitions_for(&self, topic: &str) -> Result<Vec<PartitionInfo>, ProduceError> {
        let topic = topic.to_owned();
        self.call(move |core, tx, now| {
            core.partitions_for(
                &topic,
                now,
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            )
        })
        .await?
    }

    /// The producer's metrics (kafka-python names via [`ProducerMetrics::to_map`]).
    pub async fn metrics(&self) -> Result<ProducerMetrics, ProduceError> {
        self.call(|core, tx, now| {
            let _ = tx.send(core.metrics(now));
        })
        .await
    }

    /// The buffer-memory account this handle reserves from.
    pub fn shared(&self) -> &Arc<ProducerShared> {
        &self.inner.shared
    }

    /// A handle that serializes keys and values with these serializers.
    pub fn with_serializers<K: ?Sized, V: ?Sized>(
        self,
        key: impl Serializer<K> + Send + Sync + 'static,
        value: impl Serializer<V> + Send + Sync + 'static,
    ) -> TypedProducerHandle<K, V> {
        TypedProducerHandle {
            inner: self,
            key: Arc::new(key),
            value: Arc::new(value),
            _types: PhantomData,
        }
    }
}

/// A [`ProducerHandle`] with key and value serializers. Cheap to clone.
pub struct TypedProducerHandle<K: ?Sized, V: ?Sized> {
    inner: ProducerHandle,
    key: Arc<dyn Serializer<K> + Send + Sync>,
    value: Arc<dyn Serializer<V> + Send + Sync>,
    _types: PhantomData<fn(&K, &V)>,
}

impl<K: ?Sized, V: ?Sized> Clone for TypedProducerHandle<K, V> {
    fn clone(&self) -> Self {
        TypedProducerHandle {
            inner: self.inner.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            _types: PhantomData,
        }
    }
}

impl<K: ?Sized, V: ?Sized> std::fmt::Debug for TypedProducerHandle<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedProducerHandle")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<K: ?Sized, V: ?Sized> TypedProducerHandle<K, V> {
    /// Serializes `key` and `value` and sends them to `topic` (see
    /// [`ProducerHandle::send`]). A serializer failure is [`ProduceError::Serialize`].
    pub async fn send(
        &self,
        topic: &str,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<DeliveryFuture, ProduceError> {
        let record = self.build(ProducerRecord::new(topic), key, value)?;
        self.inner.send(record).await
    }

    /// Serializes `key` and `value` into `record` (whose partition, headers and timestamp
    /// are kept; its key and value are replaced) and sends it.
    pub async fn send_record(
        &self,
        record: ProducerRecord,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<DeliveryFuture, ProduceError> {
        let record = self.build(record, key, value)?;
        self.inner.send(record).await
    }

    fn build(
        &self,
        mut record: ProducerRecord,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<ProducerRecord, ProduceError> {
        record.key = match key {
            Some(k) => self.key.serialize(&record.topic, k)?,
            None => None,
        };
        record.value = match value {
            Some(v) => self.value.serialize(&record.topic, v)?,
            None => None,
        };
        Ok(record)
    }

    /// The untyped handle underneath.
    pub fn untyped(&self) -> &ProducerHandle {
        &self.inner
    }
}

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
}
