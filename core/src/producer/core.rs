//! [`ProducerCore`]: the sans-IO producer. It owns a [`NetworkClient`], the record
//! accumulator and the idempotence state, and runs Java's `Sender` loop inside every input:
//! process responses, expire what timed out, drain ready batches into one Produce request per
//! broker, and report the next deadline.
//!
//! Application commands carry an [`OpId`]; every result leaves as a [`ProducerEvent`]
//! through [`ClientCore::poll_output`], queued in `out` in the order it happened. Records'
//! outcomes gather in a [`Deliveries`] report (one entry per record with an op, none for
//! the others) that becomes one `Delivered` event per Produce response, or at the end of
//! the input for outcomes of sweeps (expiry, failures, refusals); any other event first
//! flushes the report, so a record's outcome always precedes, say, the flush that waited
//! for it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fasthash::FastMap;

use super::accumulator::{Accumulator, Tp};
use super::batch::{BatchSettings, ProducerBatch};
use super::deliveries::{Deliveries, SendStatus};
use super::error::ProduceError;
use super::idempotence::{IdState, Idempotence};
use super::metrics::{ProducerMetrics, Recorder};
use super::partitioner::{DefaultPartitioner, Partitioner, RoundRobinPartitioner};
use super::record::{ProducerRecord, RecordBody};
use super::shared::ProducerShared;
use crate::compression::Compression;
use crate::config::{Partitioner as PartitionerKind, ProducerConfig};
use crate::network::{
    ClientCore, CloseReason, ClusterView, ConnId, NetError, NetEvent, NetOptions, NetworkClient,
    NodeId, Output, PartitionInfo, RequestId, Response, Target,
};
use crate::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use crate::protocol::{
    ApiKey, ErrorCode, InitProducerIdRequest, ProduceRequest, RequestBody, ResponseBody,
};
use crate::OpId;

/// What the producer core reports, drained from [`ClientCore::poll_output`] as
/// [`Output::Event`]: every result of an application command, named by the [`OpId`] the
/// command carried.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProducerEvent {
    /// Records' outcomes, one report per Produce response (or per sweep of expired, failed or
    /// refused records): every record sent with an op is in exactly one report, except a
    /// record that waited for memory and was refused ([`ProducerEvent::Admitted`] with an
    /// error is its only report). Hand the report back with
    /// [`ProducerCore::recycle_deliveries`] once read, so its memory serves the next one.
    Delivered(Deliveries),
    /// A record [`ProducerCore::send`] left waiting for buffer memory
    /// ([`SendStatus::Waiting`]) was admitted (`Ok`: its outcome follows in a `Delivered`
    /// report) or refused (the error is its outcome: memory still short after
    /// `max_block_ms`, or the producer closed).
    Admitted {
        /// The record's op.
        op: OpId,
        /// Admitted, or why not.
        result: Result<(), ProduceError>,
    },
    /// A [`ProducerCore::flush`] finished: every record accepted before it completed
    /// (`Ok`), or its timeout passed first ([`ProduceError::FlushTimeout`]), or the
    /// producer closed ([`ProduceError::Closed`]).
    Flushed {
        /// The flush's op.
        op: OpId,
        /// Done, or why not.
        result: Result<(), ProduceError>,
    },
    /// The answer to [`ProducerCore::partitions_for`].
    Partitions {
        /// The call's op.
        op: OpId,
        /// The topic's partitions, or why they are not known.
        result: Result<Vec<PartitionInfo>, ProduceError>,
    },
    /// The producer hit an unrecoverable error; every pending and later record fails with it.
    Fatal(ProduceError),
    /// [`ProducerCore::close`] or [`ProducerCore::abort`] finished: every record is reported,
    /// every call answered and the connections are closed. Emitted once.
    Closed,
}

/// A record accepted by the core but not yet in a batch (waiting for its topic's metadata).
struct Queued {
    record: ProducerRecord,
    timestamp: i64,
    reserved: u64,
    op: Option<OpId>,
    gen: u64,
    deadline: Instant,
}

/// A send waiting for buffer memory (already stamped: `timestamp`).
struct MemWaiter {
    record: ProducerRecord,
    timestamp: i64,
    reserved: u64,
    op: Option<OpId>,
    deadline: Instant,
}

struct FlushWaiter {
    op: OpId,
    upto_gen: u64,
    deadline: Option<Instant>,
    timeout: Duration,
}

struct PartitionsWaiter {
    op: OpId,
    topic: String,
    deadline: Instant,
}

struct Closing {
    deadline: Option<Instant>,
}

/// Most emptied reports kept for reuse (see [`ProducerCore::recycle_deliveries`]): a driver
/// reads each report before the next input, so one or two are in use at a time.
const MAX_SPARE_REPORTS: usize = 4;

struct InFlight {
    node: NodeId,
    batches: Vec<ProducerBatch>,
    sent_at: Instant,
}

/// Partition count and available partitions of a topic, cached per metadata update so the
/// hot path allocates nothing.
struct TopicCache {
    partitions: i32,
    available: Arc<[i32]>,
    /// The topic's name in an allocation of the core's own, for the per-record work on the
    /// loop thread (partitioner, accumulator, batches, delivery reports). The application's
    /// `Arc<str>` shares a cache line with its reference count, which the sending threads
    /// update per record: reading or cloning it here missed the cache every time.
    name: Arc<str>,
}

/// The topic last found in `topic_cache` (see `ProducerCore::hot_topic`).
struct HotTopic {
    /// The application's `Arc<str>` (compared by pointer only).
    topic: Arc<str>,
    partitions: i32,
    available: Arc<[i32]>,
    /// The core's own copy of the name ([`TopicCache::name`]).
    name: Arc<str>,
}

/// The sans-IO producer: a [`ClientCore`] that drivers and the simulation run.
///
/// Application commands ([`ProducerCore::send`], [`ProducerCore::flush`], ...) carry an
/// [`OpId`] of the caller's choosing, only change state and queue output, like every other
/// input; the driver then drains [`ClientCore::poll_output`] (where each command's result
/// comes out as a [`ProducerEvent`] naming its op) and sleeps until
/// [`ClientCore::poll_timeout`]. Nothing here waits, wakes or calls back.
pub struct ProducerCore {
    config: ProducerConfig,
    net: NetworkClient,
    shared: Arc<ProducerShared>,
    acc: Accumulator,
    partitioner: Box<dyn Partitioner + Send>,
    idem: Option<Idempotence>,
    acks: i16,
    request_timeout_ms: i32,
    max_in_flight: usize,
    retry_backoff: Duration,
    delivery_timeout: Duration,
    max_block: Duration,
    in_flight: BTreeMap<RequestId, InFlight>,
    in_flight_per_node: BTreeMap<NodeId, usize>,
    init_request: Option<RequestId>,
    awaiting_metadata: BTreeMap<Arc<str>, VecDeque<Queued>>,
    topic_cache: FastMap<Arc<str>, TopicCache>,
    /// The topic last found in `topic_cache` with partitions, their count and the available
    /// ones: records usually share the application's `Arc<str>`, so a pointer comparison
    /// skips the lookup.
    hot_topic: Option<HotTopic>,
    mem_waiters: VecDeque<MemWaiter>,
    flushes: Vec<FlushWaiter>,
    partition_waiters: Vec<PartitionsWaiter>,
    closing: Option<Closing>,
    closed: bool,
    fatal: Option<ProduceError>,
    wall: Option<(Instant, i64)>,
    metrics: Option<Recorder>,
    /// Flush generations: records accepted in the current one, and older ones still pending.
    gen: u64,
    gen_count: usize,
    old_gens: BTreeMap<u64, usize>,
    pending: usize,
    out: VecDeque<Output<ProducerEvent>>,
    next_wakeup: Option<Instant>,
    /// Outcomes gathered since the last `Delivered` event (see [`ProducerCore::emit_report`]).
    report: Deliveries,
    /// Emptied reports for the next ones.
    spare_reports: Vec<Deliveries>,
    /// The latest `now` an input brought, for [`ProducerCore::abort`] (which has none).
    last_now: Option<Instant>,
}

impl std::fmt::Debug for ProducerCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerCore")
            .field("pending", &self.pending)
            .field("in_flight", &self.in_flight.len())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

fn compression_of(config: &ProducerConfig) -> (Compression, Option<i32>) {
    let codec =
        Compression::from_attributes(config.compression_type.codec_id() as i16).unwrap_or_default();
    let level = match codec {
        Compression::Gzip if config.compression_gzip_level > 0 => {
            Some(config.compression_gzip_level)
        }
        Compression::Lz4 => Some(config.compression_lz4_level),
        Compression::Zstd => Some(config.compression_zstd_level),
        _ => None,
    };
    (codec, level)
}

/// Whether a network failure is worth a retry (the broker may answer next time).
fn net_error_retriable(e: &NetError) -> bool {
    matches!(
        e,
        NetError::Timeout { .. } | NetError::Disconnected { .. } | NetError::Decode { .. }
    )
}

/// Errors after which the partition's leader may have moved: refresh metadata.
fn invalidates_metadata(code: ErrorCode) -> bool {
    code == ErrorCode::NOT_LEADER_OR_FOLLOWER
        || code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        || code == ErrorCode::LEADER_NOT_AVAILABLE
        || code == ErrorCode::KAFKA_STORAGE_ERROR
        || code == ErrorCode::NOT_ENOUGH_REPLICAS
}

/// Errors that end the idempotent producer (as in Java: it was fenced, or may not write).
fn fatal_for_idempotence(code: ErrorCode) -> bool {
    code == ErrorCode::INVALID_PRODUCER_EPOCH
        || code == ErrorCode::PRODUCER_FENCED
        || code == ErrorCode::CLUSTER_AUTHORIZATION_FAILED
        || code == ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        || code == ErrorCode::INVALID_PRODUCER_ID_MAPPING
}

impl ProducerCore {
    /// A producer for `config`, over a network layer with `net` settings (built by the
    /// driver with [`NetOptions::from_config`]). Fails with
    /// [`ProduceError::InvalidConfig`] when the configuration does not validate, or sets
    /// `transactional_id` (transactions are not supported yet).
    pub fn new(config: ProducerConfig, mut net: NetOptions) -> Result<ProducerCore, ProduceError> {
        if config.transactional_id.is_some() {
            return Err(ProduceError::InvalidConfig(
                "transactions are not supported yet (transactional_id)".into(),
            ));
        }
        config
            .validate()
            .map_err(|e| ProduceError::InvalidConfig(e.to_string()))?;
        if let Some(why) = config.idempotence_disabled_by() {
            tracing::warn!("kafkit producer: {why}");
        }
        net.allow_auto_topic_creation = config.allow_auto_create_topics;
        let (compression, level) = compression_of(&config);
        let delivery_timeout =
            Duration::from_millis(u64::from(config.effective_delivery_timeout_ms()));
        let settings = BatchSettings {
            batch_size: config.batch_size as usize,
            compression,
            level,
            delivery_timeout,
        };
        let idempotent = config.idempotence_enabled();
        let max_in_flight = (config.common.max_in_flight_requests_per_connection as usize)
            .clamp(1, net.conn.max_in_flight.max(1));
        let guarantee_order = !idempotent && max_in_flight == 1;
        let partitioner: Box<dyn Partitioner + Send> = match config.partitioner {
            PartitionerKind::RoundRobin => Box::new(RoundRobinPartitioner::new()),
            _ => Box::new(DefaultPartitioner::new().ignore_keys(config.partitioner_ignore_keys)),
        };
        let shared = Arc::new(ProducerShared::new(
            config.buffer_memory,
            config.max_request_size as usize,
        ));
        Ok(ProducerCore {
            acks: config.acks.as_i16(),
            request_timeout_ms: i32::try_from(config.common.request_timeout_ms).unwrap_or(i32::MAX),
            max_in_flight,
            retry_backoff: Duration::from_millis(config.common.retry_backoff_ms),
            delivery_timeout,
            max_block: Duration::from_millis(config.max_block_ms),
            acc: {
                let mut acc = Accumulator::new(
                    settings,
                    Duration::from_millis(config.linger_ms),
                    guarantee_order,
                );
                acc.set_buffer_pool_bytes(
                    usize::try_from(config.buffer_memory).unwrap_or(usize::MAX),
                );
                acc
            },
            idem: idempotent.then(Idempotence::new),
            net: NetworkClient::new(net),
            shared,
            partitioner,
            config,
            in_flight: BTreeMap::new(),
            in_flight_per_node: BTreeMap::new(),
            init_request: None,
            awaiting_metadata: BTreeMap::new(),
            topic_cache: FastMap::default(),
            hot_topic: None,
            mem_waiters: VecDeque::new(),
            flushes: Vec::new(),
            partition_waiters: Vec::new(),
            closing: None,
            closed: false,
            fatal: None,
            wall: None,
            metrics: None,
            gen: 0,
            gen_count: 0,
            old_gens: BTreeMap::new(),
            pending: 0,
            out: VecDeque::new(),
            next_wakeup: None,
            report: Deliveries::default(),
            spare_reports: Vec::new(),
            last_now: None,
        })
    }

    /// Replaces the partitioner chosen by `config.partitioner` (builder style).
    pub fn with_partitioner(mut self, partitioner: Box<dyn Partitioner + Send>) -> Self {
        self.partitioner = partitioner;
        self
    }

    /// Replaces the partitioner chosen by `config.partitioner`.
    pub fn set_partitioner(&mut self, partitioner: Box<dyn Partitioner + Send>) {
        self.partitioner = partitioner;
    }

    /// The buffer-memory account the application's handles share with this core.
    pub fn shared(&self) -> Arc<ProducerShared> {
        self.shared.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// The wall clock, as an input: at `now` it is `unix_ms` milliseconds since the Unix
    /// epoch. Records sent without a timestamp get CreateTime `unix_ms + (then - now)`; feed
    /// it again whenever the system clock may have moved (each call replaces the last).
    /// Until it is fed, such records are refused with [`ProduceError::NoWallClock`] rather
    /// than stamped 1970.
    pub fn handle_wall_clock(&mut self, now: Instant, unix_ms: i64) {
        self.wall = Some((now, unix_ms));
    }

    fn wall_ms(&self, now: Instant) -> Option<i64> {
        let (anchor, ms) = self.wall?;
        Some(if now >= anchor {
            ms.saturating_add(now.duration_since(anchor).as_millis() as i64)
        } else {
            ms.saturating_sub(anchor.duration_since(now).as_millis() as i64)
        })
    }

    /// The record's CreateTime: its own, or the wall clock's now (stored in the record).
    #[inline]
    fn stamp(&self, timestamp: &mut Option<i64>, now: Instant) -> Result<i64, ProduceError> {
        match *timestamp {
            Some(t) => Ok(t),
            None => {
                let t = self.wall_ms(now).ok_or(ProduceError::NoWallClock)?;
                *timestamp = Some(t);
                Ok(t)
            }
        }
    }

    /// The network layer underneath (cluster view, metadata control).
    pub fn network(&mut self) -> &mut NetworkClient {
        &mut self.net
    }

    /// Records accepted and not yet completed (delivered or failed), including those
    /// waiting for metadata; senders still waiting for memory are not counted.
    pub fn pending_records(&self) -> usize {
        self.pending
    }

    /// Whether `close` has finished.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn recorder(&mut self, now: Instant) -> &mut Recorder {
        self.metrics.get_or_insert_with(|| Recorder::new(now))
    }

    /// The producer's metrics at `now`.
    pub fn metrics(&self, now: Instant) -> ProducerMetrics {
        let fresh;
        let r = match &self.metrics {
            Some(r) => r,
            None => {
                fresh = Recorder::new(now);
                &fresh
            }
        };
        ProducerMetrics::snapshot(
            r,
            now,
            self.shared.available_bytes(),
            self.shared.total_bytes(),
            self.mem_waiters.len(),
            self.in_flight.len(),
        )
    }

    fn refusal(&self) -> Option<ProduceError> {
        if let Some(f) = &self.fatal {
            return Some(f.clone());
        }
        // Not `self.shared.is_closed()`: only this core sets that flag (in `close` and
        // `abort`, which also set `closing` or `closed`), and reading it here, once per
        // record, pulled the shared account's cache line away from the sending thread.
        (self.closing.is_some() || self.closed).then_some(ProduceError::Closed)
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
    fn refuse_staged(&mut self, op: Option<OpId>, reserved: u64, e: ProduceError) {
        self.shared.release(reserved);
        if let Some(op) = op {
            self.report.push_failed(op, e);
        }
    }

    /// Ends a run of [`ProducerCore::accept_staged`]: runs the sender if a batch's linger
    /// is already over, and reports what completed meanwhile.
    pub(crate) fn staged_done(&mut self, now: Instant) {
        self.run_if_due(false, now);
        self.emit_report();
    }

    /// Queues a record with its memory reserved; whether the sender should run now. `Err`:
    /// refused (the caller gives the memory back).
    #[inline]
    fn accept_reserved(
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
            Some(t) if self.fatal.is_none() && self.closing.is_none() && !self.closed => {
                Ok(self.accept(topic, body, t, reserved, op, now))
            }
            _ => self.accept_reserved_slowly(topic, body, reserved, op, now),
        }
    }

    /// [`ProducerCore::accept_reserved`] for a record to stamp, or to refuse.
    #[cold]
    fn accept_reserved_slowly(
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
    fn run_if_due(&mut self, wake: bool, now: Instant) {
        if wake || self.next_wakeup.is_some_and(|t| t <= now) {
            self.run(now);
        }
    }

    /// Admits waiting senders in order while memory lasts.
    fn admit_waiters(&mut self, now: Instant) {
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
    fn accept(
        &mut self,
        topic: &Arc<str>,
        body: &mut RecordBody,
        timestamp: i64,
        reserved: u64,
        op: Option<OpId>,
        now: Instant,
    ) -> bool {
        self.recorder(now).record_size.record(reserved as f64, now);
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
    fn topic_known(&mut self, topic: &Arc<str>) -> bool {
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
    fn append(
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
    fn append_to(
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
        let partition = match record.partition {
            Some(p) => p,
            None => {
                let mut p = self.choose_partition(hot, record);
                if p >= 0 && self.acc.needs_new_batch(name, p, bound) {
                    // KIP-480: the sticky partitioner moves on when its batch is done.
                    self.partitioner.on_new_batch(name, p);
                    p = self.choose_partition(hot, record);
                }
                p
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
    fn choose_partition(&mut self, hot: &HotTopic, record: &RecordBody) -> i32 {
        self.partitioner.partition(
            &hot.name,
            record.key.as_deref(),
            record.value.as_deref(),
            hot.partitions,
            &hot.available,
            self.net.rng(),
        )
    }

    fn consider_wakeup(&mut self, t: Instant) {
        self.next_wakeup = Some(self.next_wakeup.map_or(t, |n| n.min(t)));
    }

    /// One record is done: account for it (memory is released per batch by the caller).
    fn record_done(&mut self, gen: u64) {
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
    fn fail_record(
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

    /// Queues `event` after the outcomes gathered so far, so that an application reading
    /// events in order sees a record's outcome before, say, the flush that waited for it.
    fn event(&mut self, event: ProducerEvent) {
        self.emit_report();
        self.out.push_back(Output::Event(event));
    }

    /// Queues the outcomes gathered since the last report as one
    /// [`ProducerEvent::Delivered`], if there are any.
    fn emit_report(&mut self) {
        if self.report.is_empty() {
            return;
        }
        let next = self.spare_reports.pop().unwrap_or_default();
        let report = std::mem::replace(&mut self.report, next);
        self.out
            .push_back(Output::Event(ProducerEvent::Delivered(report)));
    }

    /// Gives a read [`ProducerEvent::Delivered`] report back, so its memory serves the next
    /// ones (optional: a report not handed back is simply dropped).
    pub fn recycle_deliveries(&mut self, mut deliveries: Deliveries) {
        if self.spare_reports.len() < MAX_SPARE_REPORTS {
            deliveries.clear();
            self.spare_reports.push(deliveries);
        }
    }

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
            Some(c) => {
                if let Some(d) = deadline {
                    c.deadline = Some(c.deadline.map_or(d, |x| x.min(d)));
                }
            }
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
    fn finish_close(&mut self, flush_result: Result<(), ProduceError>) {
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
    fn refuse_waiters(&mut self, e: ProduceError) {
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
    fn topic_partitions(&self, topic: &str) -> Option<Result<Vec<PartitionInfo>, ProduceError>> {
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

    /// The sender loop: everything that follows an input.
    fn run(&mut self, now: Instant) {
        self.last_now = Some(now);
        self.pump_network(now);
        // Sending can complete requests at once (acks=0, or a failure while routing), which
        // frees memory and capacity: go round again while that happens (bounded).
        for _ in 0..64 {
            self.run_sender(now);
            if !self.pump_network(now) {
                break;
            }
        }
        self.compute_wakeup(now);
        self.emit_report();
    }

    /// Moves the network's output to ours, handling its events. Returns whether any event
    /// was handled.
    fn pump_network(&mut self, now: Instant) -> bool {
        let mut handled = false;
        while let Some(o) = self.net.poll_output() {
            match o.for_driver() {
                Ok(o) => self.out.push_back(o),
                Err(e) => {
                    handled = true;
                    self.handle_net_event(e, now);
                }
            }
        }
        handled
    }

    fn handle_net_event(&mut self, e: NetEvent, now: Instant) {
        match e {
            NetEvent::MetadataUpdated(_) => {
                self.topic_cache.clear();
                self.hot_topic = None;
            }
            NetEvent::Response { id, result } => {
                if self.init_request == Some(id) {
                    self.init_request = None;
                    self.on_init_producer_id(result, now);
                } else if let Some(req) = self.in_flight.remove(&id) {
                    self.on_produce_response(req, result, now);
                    // One report per response.
                    self.emit_report();
                }
            }
        }
    }

    fn run_sender(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.expire_waiters(now);
        self.place_awaiting(now);
        self.expire_batches(now);
        self.maybe_init_producer_id(now);
        self.send_ready(now);
        self.check_flushes(now);
        self.check_close(now);
    }

    fn expire_waiters(&mut self, now: Instant) {
        while self.mem_waiters.front().is_some_and(|w| now >= w.deadline) {
            let w = self.mem_waiters.pop_front().expect("front checked");
            let e = ProduceError::MaxBlockTimeout {
                what: format!("{} bytes of buffer memory", w.reserved),
                after: self.max_block,
            };
            let r = self.recorder(now);
            r.errors.record(1.0, now);
            r.record_error_total += 1;
            if let Some(op) = w.op {
                self.event(ProducerEvent::Admitted { op, result: Err(e) });
            }
        }
        self.shared.set_waiting(self.mem_waiters.len());
        let mut i = 0;
        while i < self.partition_waiters.len() {
            let topic = self.partition_waiters[i].topic.clone();
            let result = match self.topic_partitions(&topic) {
                Some(r) => Some(r),
                None if now >= self.partition_waiters[i].deadline => {
                    Some(Err(self.metadata_timeout_error(&topic)))
                }
                None => None,
            };
            match result {
                Some(result) => {
                    let w = self.partition_waiters.swap_remove(i);
                    self.event(ProducerEvent::Partitions { op: w.op, result });
                }
                None => i += 1,
            }
        }
    }

    fn metadata_timeout_error(&self, topic: &str) -> ProduceError {
        match self.net.cluster().topic(topic) {
            Some(t) if t.error == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
                ProduceError::UnknownTopic {
                    topic: topic.to_owned(),
                }
            }
            _ => {
                // Say why: the brokers' last connection errors, if any (else they answered and
                // the topic's partitions simply have no leader yet).
                let errors = self.net.connection_errors();
                let why = if errors.is_empty() {
                    String::new()
                } else {
                    format!(" (last errors: {})", errors.join("; "))
                };
                ProduceError::MaxBlockTimeout {
                    what: format!("metadata for topic {topic:?}{why}"),
                    after: self.max_block,
                }
            }
        }
    }

    /// Partitions records whose topic metadata arrived; fails those past `max_block_ms`.
    fn place_awaiting(&mut self, now: Instant) {
        if self.awaiting_metadata.is_empty() {
            return;
        }
        let topics: Vec<Arc<str>> = self.awaiting_metadata.keys().cloned().collect();
        for topic in topics {
            if self.topic_known(&topic) {
                let queue = self.awaiting_metadata.remove(&topic).unwrap_or_default();
                for q in queue {
                    let (topic, body) = q.record.into_parts();
                    self.append(&topic, &body, q.timestamp, q.reserved, q.op, q.gen, now);
                }
                continue;
            }
            let refused = match self.topic_partitions(&topic) {
                Some(Err(e)) => Some(e),
                _ => None,
            };
            let timeout_error = self.metadata_timeout_error(&topic);
            let Some(queue) = self.awaiting_metadata.get_mut(&topic) else {
                continue;
            };
            let mut failed = Vec::new();
            if let Some(e) = refused {
                failed.extend(queue.drain(..).map(|q| (q, e.clone())));
            } else {
                while queue.front().is_some_and(|q| now >= q.deadline) {
                    let q = queue.pop_front().expect("front checked");
                    failed.push((q, timeout_error.clone()));
                }
            }
            if queue.is_empty() {
                self.awaiting_metadata.remove(&topic);
            }
            for (q, e) in failed {
                self.fail_record(q.op, q.reserved, q.gen, e, now);
            }
        }
        if !self.awaiting_metadata.is_empty() {
            // Keep asking; the network layer paces refreshes by retry_backoff_ms.
            self.net.request_metadata(false, now);
        }
    }

    fn expire_batches(&mut self, now: Instant) {
        let expired = self.acc.expire(now);
        for mut batch in expired {
            let last_error = batch
                .last_error
                .take()
                .or_else(|| self.why_not_sent(&batch, now));
            let e = ProduceError::DeliveryTimeout {
                topic: batch.topic.to_string(),
                partition: batch.partition,
                after: self.delivery_timeout,
                last_error,
            };
            self.fail_batch(batch, e, now);
        }
    }

    /// Why a batch that never got an answer was not sent, for its timeout report.
    fn why_not_sent(&self, batch: &ProducerBatch, now: Instant) -> Option<String> {
        let cluster = self.net.cluster();
        match cluster.leader_for(&batch.topic, batch.partition) {
            None => Some(format!(
                "no leader known for {}-{}",
                batch.topic, batch.partition
            )),
            Some(node) => {
                let label = cluster
                    .brokers
                    .get(&node)
                    .map(|b| format!("{}:{} (node {node})", b.host, b.port))
                    .unwrap_or_else(|| format!("node {node}"));
                match self.net.node_last_error(node) {
                    Some(e) => Some(format!("leader {label} unreachable: {e}")),
                    None if self
                        .idem
                        .as_ref()
                        .is_some_and(|i| i.state != IdState::Ready) =>
                    {
                        Some("no producer id yet (InitProducerId pending)".into())
                    }
                    None if self.net.node_backoff_until(node, now).is_some() => {
                        Some(format!("leader {label} backing off after failures"))
                    }
                    None => Some(format!("leader {label} not ready")),
                }
            }
        }
    }

    fn maybe_init_producer_id(&mut self, now: Instant) {
        let Some(idem) = &self.idem else { return };
        if self.init_request.is_some() || !idem.wants_init(now) {
            return;
        }
        if idem.is_bump() && !self.in_flight.is_empty() {
            // Bumps wait for an idle pipeline, so no batch of the old epoch is in flight when
            // sequences restart.
            return;
        }
        let body = InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: i32::try_from(self.config.transaction_timeout_ms)
                .unwrap_or(i32::MAX),
            producer_id: idem.producer_id,
            producer_epoch: idem.epoch,
            ..Default::default()
        };
        let id = self.net.send(
            Target::Any,
            RequestBody::InitProducerId(body),
            None,
            true,
            now,
        );
        self.init_request = Some(id);
        if let Some(idem) = &mut self.idem {
            idem.state = IdState::Requested(id);
        }
    }

    fn on_init_producer_id(&mut self, result: Result<Response, NetError>, now: Instant) {
        let retry_backoff = self.retry_backoff;
        let Some(idem) = &mut self.idem else { return };
        let retry = |idem: &mut Idempotence| {
            idem.state = IdState::Needed;
            idem.retry_at = Some(now + retry_backoff);
        };
        match result {
            Ok(Response {
                body: ResponseBody::InitProducerId(r),
                node,
                ..
            }) => {
                let code = ErrorCode(r.error_code);
                if code.is_ok() {
                    tracing::debug!(
                        producer_id = r.producer_id,
                        epoch = r.producer_epoch,
                        "producer id"
                    );
                    idem.on_new_id(r.producer_id, r.producer_epoch);
                    for tp in idem.take_resets() {
                        self.acc.clear_stamps(&tp);
                    }
                } else if code == ErrorCode::INVALID_PRODUCER_EPOCH
                    || code == ErrorCode::PRODUCER_FENCED
                    || code == ErrorCode::UNKNOWN_PRODUCER_ID
                {
                    // The bump was refused: start over with a new id.
                    idem.producer_id = crate::records::NO_PRODUCER_ID;
                    idem.epoch = crate::records::NO_PRODUCER_EPOCH;
                    retry(idem);
                } else if code.is_retriable() {
                    retry(idem);
                } else {
                    let e = ProduceError::Fatal(format!(
                        "InitProducerId failed at node {node}: {code}"
                    ));
                    self.go_fatal(e, now);
                }
            }
            Ok(_) => retry(idem),
            Err(NetError::Closed) => {}
            Err(e) if net_error_retriable(&e) => retry(idem),
            Err(e) => {
                // Unsupported (a broker before 0.11) or an authentication failure: no
                // idempotent producer is possible.
                self.go_fatal(
                    ProduceError::Fatal(format!("InitProducerId failed: {e}")),
                    now,
                );
            }
        }
    }

    fn go_fatal(&mut self, e: ProduceError, now: Instant) {
        tracing::warn!(error = %e, "producer failed");
        self.fatal = Some(e.clone());
        self.abort_all_at(e.clone(), now);
        self.event(ProducerEvent::Fatal(e));
    }

    /// Fails everything accepted when no input ever ran (see [`ProducerCore::abort`]).
    fn abort_unstarted(&mut self, e: ProduceError) {
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
    fn abort_all_at(&mut self, e: ProduceError, now: Instant) {
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

    /// Drains ready batches into one Produce request per ready broker.
    fn send_ready(&mut self, now: Instant) {
        if self.idem.as_ref().is_some_and(|i| !i.can_send()) {
            return;
        }
        let force =
            !self.flushes.is_empty() || self.closing.is_some() || !self.mem_waiters.is_empty();
        let cluster = self.net.cluster().clone();
        let ready = self.acc.ready(&cluster, now, force);
        if ready.unknown_leader {
            self.net.request_metadata(false, now);
        }
        if let Some(t) = ready.next_check {
            self.consider_wakeup(t);
        }
        for node in ready.nodes {
            if self.in_flight_per_node.get(&node).copied().unwrap_or(0) >= self.max_in_flight {
                continue;
            }
            if !self.net.node_ready(node, now) {
                if let Some(t) = self.net.node_backoff_until(node, now) {
                    self.consider_wakeup(t);
                }
                continue;
            }
            if let Some(reason) = self.produce_unsupported(node) {
                self.fail_node(&cluster, node, reason, now);
                continue;
            }
            let (batches, failed) = self.acc.drain(
                &cluster,
                node,
                self.config.max_request_size as usize,
                now,
                self.idem.as_mut(),
            );
            for (batch, e) in failed {
                let e = ProduceError::Encode {
                    topic: batch.topic.to_string(),
                    partition: batch.partition,
                    detail: e.to_string(),
                };
                self.fail_batch(batch, e, now);
            }
            if !batches.is_empty() {
                self.send_produce(node, batches, now);
            }
        }
    }

    /// Why `node` cannot take our record batches (magic 2 needs Produce v3+), if it cannot.
    fn produce_unsupported(&self, node: NodeId) -> Option<NetError> {
        let (_, table) = self.net.broker_versions(node)?;
        let max = table.broker_range(ApiKey::Produce).map(|(_, max)| max);
        if max.is_some_and(|m| m >= 3) {
            return None;
        }
        let broker = self
            .net
            .cluster()
            .brokers
            .get(&node)
            .map(|b| format!("{}:{} (node {node})", b.host, b.port))
            .unwrap_or_else(|| format!("node {node}"));
        Some(NetError::Unsupported {
            api: ApiKey::Produce,
            broker,
            detail: format!(
                "record batches need Produce v3 or later (broker 0.11+); the broker supports {}",
                max.map_or("no Produce version".to_owned(), |m| format!("up to v{m}"))
            ),
        })
    }

    fn fail_node(&mut self, cluster: &ClusterView, node: NodeId, e: NetError, now: Instant) {
        loop {
            let (batches, failed) = self.acc.drain(cluster, node, usize::MAX, now, None);
            if batches.is_empty() && failed.is_empty() {
                break;
            }
            for b in batches {
                self.fail_batch(b, ProduceError::Network(e.clone()), now);
            }
            for (b, _) in failed {
                self.fail_batch(b, ProduceError::Network(e.clone()), now);
            }
        }
    }

    fn send_produce(&mut self, node: NodeId, mut batches: Vec<ProducerBatch>, now: Instant) {
        let mut topics: BTreeMap<Arc<str>, Vec<PartitionProduceData>> = BTreeMap::new();
        let mut records = 0usize;
        for b in &mut batches {
            b.attempts += 1;
            let first_send = b.attempts == 1;
            let stamp = b.stamp;
            let payload = b.payload(stamp).unwrap_or_default();
            records += b.record_count();
            let size = payload.len() as f64;
            let uncompressed = b.uncompressed_size.max(1) as f64;
            let count = b.record_count() as f64;
            let queue_ms = now.saturating_duration_since(b.created).as_secs_f64() * 1000.0;
            let r = self.recorder(now);
            r.bytes.record(size, now);
            r.records.record(count, now);
            r.batch_size.record(size, now);
            r.compression.record(size / uncompressed, now);
            if first_send {
                r.queue_time.record(queue_ms, now);
            }
            topics
                .entry(b.topic.clone())
                .or_default()
                .push(PartitionProduceData {
                    index: b.partition,
                    records: Some(payload),
                    ..Default::default()
                });
            self.acc.mark_in_flight(&(b.topic.clone(), b.partition), 1);
        }
        let r = self.recorder(now);
        r.records_per_request.record(records as f64, now);
        r.requests.record(1.0, now);
        let body = ProduceRequest {
            transactional_id: None,
            acks: self.acks,
            timeout_ms: self.request_timeout_ms,
            topic_data: topics
                .into_iter()
                .map(|(name, partition_data)| TopicProduceData {
                    name: name.to_string(),
                    partition_data,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let expect_response = self.acks != 0;
        *self.in_flight_per_node.entry(node).or_default() += 1;
        // Registered before sending: an acks=0 request completes while it is written.
        let id = self.net.send(
            Target::Node(node),
            RequestBody::Produce(body),
            None,
            expect_response,
            now,
        );
        self.in_flight.insert(
            id,
            InFlight {
                node,
                batches,
                sent_at: now,
            },
        );
    }

    fn on_produce_response(
        &mut self,
        req: InFlight,
        result: Result<Response, NetError>,
        now: Instant,
    ) {
        if let Some(n) = self.in_flight_per_node.get_mut(&req.node) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight_per_node.remove(&req.node);
            }
        }
        for b in &req.batches {
            self.acc.mark_in_flight(&(b.topic.clone(), b.partition), -1);
        }
        let latency = now.saturating_duration_since(req.sent_at).as_secs_f64() * 1000.0;
        if self.acks != 0 {
            self.recorder(now).latency.record(latency, now);
        }
        let broker = self
            .net
            .cluster()
            .brokers
            .get(&req.node)
            .map(|b| format!("{}:{} (node {})", b.host, b.port, req.node))
            .unwrap_or_else(|| format!("node {}", req.node));
        match result {
            Ok(resp) => {
                let ResponseBody::Produce(body) = resp.body else {
                    for b in req.batches {
                        self.retry_or_fail(b, "unexpected response type".into(), None, now);
                    }
                    return;
                };
                if body.throttle_time_ms > 0 {
                    self.recorder(now)
                        .throttle
                        .record(body.throttle_time_ms as f64, now);
                }
                if self.acks == 0 {
                    for b in req.batches {
                        self.complete_batch(b, -1, -1, now);
                    }
                    return;
                }
                let mut by_tp: BTreeMap<
                    (&str, i32),
                    &crate::protocol::produce::response::PartitionProduceResponse,
                > = BTreeMap::new();
                for t in &body.responses {
                    for p in &t.partition_responses {
                        by_tp.insert((t.name.as_str(), p.index), p);
                    }
                }
                let mut metadata_stale = false;
                let mut outcomes = Vec::with_capacity(req.batches.len());
                for b in req.batches {
                    let answer = by_tp.get(&(&*b.topic, b.partition)).map(|p| {
                        (
                            ErrorCode(p.error_code),
                            p.base_offset,
                            p.log_append_time_ms,
                            p.log_start_offset,
                            p.error_message.clone(),
                        )
                    });
                    if let Some((code, ..)) = &answer {
                        metadata_stale |= invalidates_metadata(*code);
                    }
                    outcomes.push((b, answer));
                }
                if metadata_stale {
                    self.net.invalidate_metadata(now);
                }
                for (b, answer) in outcomes {
                    match answer {
                        None => self.retry_or_fail(
                            b,
                            format!("{broker} sent no answer for the partition"),
                            None,
                            now,
                        ),
                        Some((code, base, log_append, log_start, message)) => self
                            .handle_partition_answer(
                                b, &broker, code, base, log_append, log_start, message, now,
                            ),
                    }
                }
            }
            Err(NetError::Closed) => {
                for b in req.batches {
                    self.fail_batch(b, ProduceError::Closed, now);
                }
            }
            Err(e) if net_error_retriable(&e) => {
                self.net.invalidate_metadata(now);
                let text = e.to_string();
                for b in req.batches {
                    self.retry_or_fail(
                        b,
                        text.clone(),
                        Some(ProduceError::Network(e.clone())),
                        now,
                    );
                }
            }
            Err(e) => {
                for b in req.batches {
                    self.fail_batch(b, ProduceError::Network(e.clone()), now);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_partition_answer(
        &mut self,
        mut b: ProducerBatch,
        broker: &str,
        code: ErrorCode,
        base_offset: i64,
        log_append_time: i64,
        log_start_offset: i64,
        message: Option<String>,
        now: Instant,
    ) {
        let tp: Tp = (b.topic.clone(), b.partition);
        if code.is_ok() || code == ErrorCode::DUPLICATE_SEQUENCE_NUMBER {
            // A duplicate was written before: the broker's offset (if it kept it) stands.
            self.complete_batch(b, base_offset, log_append_time, now);
            return;
        }
        let describe = || {
            format!(
                "{broker} answered {code}{}",
                message
                    .as_ref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            )
        };
        if code == ErrorCode::MESSAGE_TOO_LARGE && b.record_count() > 1 {
            if let (Some(idem), Some(stamp)) = (&mut self.idem, b.stamp) {
                // The refused batch leaves a hole in the sequence: re-sequence the partition
                // under a new epoch.
                idem.on_batch_done(&tp, &stamp);
                idem.request_bump(&tp);
            }
            b.last_error = Some(describe());
            let count = b.record_count();
            let limit = (self.config.batch_size as usize).min(b.size_in_bytes() / 2);
            match b.split(self.acc.batch_ids(), limit) {
                Ok((parts, lost)) => {
                    tracing::debug!(topic = %tp.0, partition = tp.1, records = count, parts = parts.len(), "split a batch the broker found too large");
                    self.acc.push_front_all(parts);
                    // Unreachable for records encoded here once; fail them rather than
                    // lose them (their memory stays with the last part).
                    let e = ProduceError::Encode {
                        topic: tp.0.to_string(),
                        partition: tp.1,
                        detail: "record could not be re-encoded while splitting a batch".into(),
                    };
                    for t in lost {
                        self.record_done(t.gen);
                        if let Some(op) = t.op {
                            self.report.push_failed(op, e.clone());
                        }
                    }
                }
                Err(b) => {
                    // Unreachable for batches built here: the bytes do not read back.
                    let e = ProduceError::Encode {
                        topic: tp.0.to_string(),
                        partition: tp.1,
                        detail: "a batch the broker found too large could not be split".into(),
                    };
                    self.fail_batch(*b, e, now);
                }
            }
            return;
        }
        if let Some(idem) = &mut self.idem {
            if fatal_for_idempotence(code) {
                let e =
                    ProduceError::Fatal(format!("{} for {}-{}", describe(), b.topic, b.partition));
                self.fail_batch(b, e.clone(), now);
                self.go_fatal(e, now);
                return;
            }
            if let Some(stamp) = b.stamp {
                if code == ErrorCode::UNKNOWN_PRODUCER_ID {
                    // The broker lost our state (retention removed it); with the log start
                    // unknown the partition may be moving, so just retry.
                    if log_start_offset != -1 {
                        idem.request_bump(&tp);
                    }
                    self.retry_or_fail(b, describe(), None, now);
                    return;
                }
                if code == ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER {
                    // An earlier batch failed or is being retried: wait for it. If this is
                    // the first outstanding batch, the gap is real: bump the epoch.
                    if idem.is_first_outstanding(&tp, &stamp) {
                        idem.request_bump(&tp);
                    }
                    self.retry_or_fail(b, describe(), None, now);
                    return;
                }
            }
        }
        if code.is_retriable() || code == ErrorCode::NOT_LEADER_OR_FOLLOWER {
            self.retry_or_fail(b, describe(), None, now);
            return;
        }
        let e = ProduceError::Broker {
            topic: b.topic.to_string(),
            partition: b.partition,
            broker: broker.to_owned(),
            code,
            message,
        };
        self.fail_batch(b, e, now);
    }

    /// Retries a batch after a retriable failure, unless its delivery timeout passed or its
    /// retries are used up (then it fails with `final_error` or a delivery timeout).
    fn retry_or_fail(
        &mut self,
        mut b: ProducerBatch,
        error: String,
        final_error: Option<ProduceError>,
        now: Instant,
    ) {
        if now >= b.deadline {
            let e = ProduceError::DeliveryTimeout {
                topic: b.topic.to_string(),
                partition: b.partition,
                after: self.delivery_timeout,
                last_error: Some(error),
            };
            self.fail_batch(b, e, now);
            return;
        }
        if b.attempts > self.config.retries {
            let e = final_error.unwrap_or_else(|| ProduceError::DeliveryTimeout {
                topic: b.topic.to_string(),
                partition: b.partition,
                after: now.saturating_duration_since(b.created),
                last_error: Some(format!("{error} (retries exhausted)")),
            });
            self.fail_batch(b, e, now);
            return;
        }
        tracing::debug!(topic = %b.topic, partition = b.partition, attempt = b.attempts, %error, "retrying batch");
        let count = b.record_count() as f64;
        let r = self.recorder(now);
        r.retries.record(count, now);
        r.record_retry_total += count as u64;
        b.last_error = Some(error);
        b.retry_at = Some(now + self.retry_backoff);
        self.consider_wakeup(now + self.retry_backoff);
        self.acc.reenqueue(b);
    }

    /// Fails every record of a batch (queued, or answered and so no longer in flight).
    fn fail_batch(&mut self, b: ProducerBatch, e: ProduceError, now: Instant) {
        let tp: Tp = (b.topic.clone(), b.partition);
        if let (Some(idem), Some(stamp)) = (&mut self.idem, b.stamp) {
            // A batch that was sent fails for good: its sequence is unresolved, so later
            // batches of the partition are re-sequenced under a new epoch (KIP-360).
            idem.on_batch_done(&tp, &stamp);
            if self.fatal.is_none() && !matches!(e, ProduceError::Closed) {
                idem.request_bump(&tp);
            }
        }
        let count = b.record_count() as u64;
        let r = self.recorder(now);
        r.errors.record(count as f64, now);
        r.record_error_total += count;
        tracing::debug!(batch = b.id, topic = %b.topic, partition = b.partition, records = count, error = %e, "batch failed");
        self.release_batch(b, Err(&e), Some(now));
    }

    fn complete_batch(
        &mut self,
        b: ProducerBatch,
        base_offset: i64,
        log_append_time: i64,
        now: Instant,
    ) {
        let tp: Tp = (b.topic.clone(), b.partition);
        if let (Some(idem), Some(stamp)) = (&mut self.idem, b.stamp) {
            idem.on_batch_done(&tp, &stamp);
        }
        let count = b.record_count() as u64;
        self.recorder(now).record_send_total += count;
        self.release_batch(b, Ok((base_offset, log_append_time)), Some(now));
    }

    /// Completes every record of `b` (reporting those with an op) and gives its memory
    /// back.
    fn release_batch(
        &mut self,
        b: ProducerBatch,
        outcome: Result<(i64, i64), &ProduceError>,
        now: Option<Instant>,
    ) {
        self.shared.release(b.reserved);
        let mut b = b;
        let mut thunks = std::mem::take(&mut b.thunks);
        let mark = self.report.mark();
        for (i, t) in thunks.drain(..).enumerate() {
            self.record_done(t.gen);
            if let Some(op) = t.op {
                self.report
                    .push(op, i, t.timestamp, t.key_size, t.value_size);
            }
        }
        self.report.end_group(
            mark,
            outcome.map(|(base, log_append)| (&b.topic, b.partition, base, log_append)),
        );
        self.acc.recycle_thunks(thunks);
        self.acc.recycle_buffer(b.take_buffer());
        if let Some(now) = now {
            self.admit_waiters(now);
        }
    }

    fn check_flushes(&mut self, now: Instant) {
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

    fn check_close(&mut self, now: Instant) {
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

    fn compute_wakeup(&mut self, now: Instant) {
        let mut next = self.next_wakeup.filter(|t| *t > now);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        if self.closed {
            self.next_wakeup = None;
            return;
        }
        consider(self.acc.next_deadline());
        consider(self.mem_waiters.front().map(|w| w.deadline));
        consider(
            self.awaiting_metadata
                .values()
                .filter_map(|q| q.front().map(|q| q.deadline))
                .min(),
        );
        consider(self.partition_waiters.iter().map(|w| w.deadline).min());
        consider(self.flushes.iter().filter_map(|f| f.deadline).min());
        consider(self.closing.as_ref().and_then(|c| c.deadline));
        if let Some(idem) = &self.idem {
            if self.init_request.is_none() && idem.wants_init(now) {
                // Waiting for an idle pipeline: responses wake us.
            } else if let Some(t) = idem.retry_at.filter(|t| *t > now) {
                consider(Some(t));
            }
        }
        self.next_wakeup = next;
    }
}

impl ClientCore for ProducerCore {
    type Event = ProducerEvent;

    fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        self.net.handle_connected(conn, now);
        self.run(now);
    }

    fn handle_data(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        self.net.handle_data(conn, data, now);
        self.run(now);
    }

    fn handle_bytes(&mut self, conn: ConnId, data: bytes::Bytes, now: Instant) {
        self.net.handle_bytes(conn, data, now);
        self.run(now);
    }

    fn handle_closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant) {
        self.net.handle_closed(conn, reason, now);
        self.run(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.net.handle_timeout(now);
        self.next_wakeup = None;
        self.run(now);
    }

    fn poll_output(&mut self) -> Option<Output<ProducerEvent>> {
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        // Every input moves the network's output here (handling its events), so the
        // network's own queue is empty between inputs.
        None
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            // The network layer is closed too; nothing it might still report matters.
            return None;
        }
        let net = self.net.poll_timeout();
        match (net, self.next_wakeup) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
