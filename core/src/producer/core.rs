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

use super::accumulator::Accumulator;
use super::batch::{BatchSettings, ProducerBatch};
use super::deliveries::Deliveries;
use super::error::ProduceError;
use super::idempotence::Idempotence;
use super::metrics::{ProducerMetrics, Recorder};
use super::partitioner::{DefaultPartitioner, Partitioner, RoundRobinPartitioner};
use super::record::ProducerRecord;
use super::shared::ProducerShared;
use super::txn::TransactionManager;
use crate::compression::Compression;
use crate::config::{Partitioner as PartitionerKind, ProducerConfig};
use crate::deadline::Deadline;
use crate::network::{
    ClientCore, CloseReason, ConnId, NetError, NetEvent, NetOptions, NetworkClient, NodeId, Output,
    PartitionInfo, RequestId,
};
use crate::protocol::ErrorCode;
use crate::OpId;

mod accept;
mod legacy;
mod lifecycle;
mod producer_id;
mod sender;
mod txn;

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
    /// A transactional call finished ([`ProducerCore::init_transactions`],
    /// [`ProducerCore::send_offsets_to_transaction`], [`ProducerCore::commit_transaction`],
    /// [`ProducerCore::abort_transaction`]): done, or why not.
    Transaction {
        /// The call's op.
        op: OpId,
        /// Done, or why not.
        result: Result<(), ProduceError>,
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
    /// The request's `produce` span, closed when its answer has been handled.
    span: tracing::Span,
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
    /// The transactional state, with `transactional_id`.
    txn: Option<TransactionManager>,
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

/// Whether a network failure is worth a retry (the broker may answer next time). Every
/// bootstrap address failing its round (`bootstrap_fail_fast`) is too: the producer's own
/// requests (InitProducerId, coordinator lookups) try again after their backoff, as Java's
/// do, while the records wait within `delivery_timeout_ms` instead of the producer turning
/// fatal because it was started before its cluster.
fn net_error_retriable(e: &NetError) -> bool {
    matches!(
        e,
        NetError::Timeout { .. }
            | NetError::Disconnected { .. }
            | NetError::Decode { .. }
            | NetError::NoBroker { .. }
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
    /// [`ProduceError::InvalidConfig`] when the configuration does not validate. With
    /// `transactional_id` the producer is transactional: call
    /// [`ProducerCore::init_transactions`] first.
    pub fn new(config: ProducerConfig, mut net: NetOptions) -> Result<ProducerCore, ProduceError> {
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
            transactional: config.transactional_id.is_some(),
            batch_size: config.batch_size as usize,
            compression,
            level,
            delivery_timeout,
            // Record batches until a broker older than 0.11 is met (`refresh_format`).
            magic: crate::records::MAGIC_V2,
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
            txn: config
                .transactional_id
                .clone()
                .map(|id| TransactionManager::new(id, config.transaction_timeout_ms)),
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

    /// Records the sizes of the records taken since the last fold (see
    /// [`Recorder::note_record_size`]).
    fn fold_record_sizes(&mut self, now: Instant) {
        if let Some(r) = &mut self.metrics {
            r.fold_record_sizes(now);
        }
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
            self.net.metrics(now),
        )
    }

    fn consider_wakeup(&mut self, t: Instant) {
        self.next_wakeup = Deadline::from(self.next_wakeup).with(t).earliest();
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

    /// The sender loop: everything that follows an input.
    fn run(&mut self, now: Instant) {
        self.last_now = Some(now);
        self.fold_record_sizes(now);
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
                // The brokers met so far are known by now: pick the format of new batches
                // and see whether they can serve the idempotent producer (`legacy.rs`).
                self.refresh_format();
                self.check_producer_id_support(None, now);
            }
            NetEvent::Response { id, result } => {
                let Some(result) = self.txn_response(id, result, now) else {
                    return;
                };
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
        // Until the first producer id arrives: can the brokers met so far give one?
        self.check_producer_id_support(None, now);
        self.maybe_init_producer_id(now);
        self.run_txn(now);
        self.send_ready(now);
        self.check_flushes(now);
        self.check_close(now);
    }

    fn compute_wakeup(&mut self, now: Instant) {
        let mut next = Deadline::from(self.next_wakeup.filter(|t| *t > now));
        let mut consider = |t: Option<Instant>| next.fold(t);
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
        if let Some(txn) = &self.txn {
            consider(txn.retry_at.filter(|t| *t > now));
            consider(txn.call_deadline);
        }
        self.next_wakeup = next.earliest();
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
        Deadline::from(self.net.poll_timeout())
            .with(self.next_wakeup)
            .earliest()
    }
}
