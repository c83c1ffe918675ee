//! The record accumulator: per-partition queues of batches, when they are ready, and the
//! drain that packs ready batches into one request per broker (Java's `RecordAccumulator`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::{BatchSettings, ProducerBatch, Thunk};
use super::idempotence::{DrainDecision, Idempotence};
use crate::codec::EncodeError;
use crate::deadline::Deadline;
use crate::network::{ClusterView, NodeId};
use crate::records::{Header, RECORD_BATCH_OVERHEAD};
use crate::OpId;

/// Where a drain goes and what it may take: the broker `node`, at most `max_size` bytes (the
/// first batch always goes), written in message format `magic` (what the node takes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DrainTo {
    pub node: NodeId,
    pub max_size: usize,
    pub magic: i8,
}

impl DrainTo {
    #[cfg(test)]
    fn v2(node: NodeId, max_size: usize) -> DrainTo {
        DrainTo {
            node,
            max_size,
            magic: crate::records::MAGIC_V2,
        }
    }
}

/// A topic and partition.
pub(crate) type Tp = (Arc<str>, i32);

/// What [`Accumulator::ready`] found.
#[derive(Debug, Default)]
pub(crate) struct Ready {
    /// Leaders with at least one sendable batch.
    pub(crate) nodes: BTreeSet<NodeId>,
    /// When something not yet sendable becomes so (linger, backoff).
    pub(crate) next_check: Option<Instant>,
    /// Some partition with queued batches has no known leader.
    pub(crate) unknown_leader: bool,
}

/// The outcome of an append.
#[derive(Debug)]
pub(crate) struct Appended {
    /// A new batch was opened for the record.
    pub(crate) new_batch: bool,
    /// The batch the record went to is full (or its predecessor was): worth a drain now.
    pub(crate) batch_full: bool,
}

/// No slot yet for this partition of the hot topic.
const NO_SLOT: usize = usize::MAX;

/// A partition's slot whose last batch has room for a record, as
/// [`Accumulator::room_in_last`] found it (only it makes one, so `append` can trust it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoomIn(usize);

/// Per-partition batch queues.
#[derive(Debug)]
pub(crate) struct Accumulator {
    settings: BatchSettings,
    linger: Duration,
    /// Per-partition batch queues. A partition keeps its slot once it has one (an emptied
    /// queue stays, empty), so slot numbers stay valid for `index` and `hot`.
    slots: Vec<VecDeque<ProducerBatch>>,
    /// The slot of each partition, ordered by topic and partition: the order `ready`, `drain`
    /// and `take_all` walk.
    index: BTreeMap<Tp, usize>,
    /// The topic last appended to and the slots of its partitions by partition id
    /// ([`NO_SLOT`]: none yet). Records of a topic usually share the application's
    /// `Arc<str>`, so a pointer comparison finds the slot per record without comparing
    /// topic names in `index`.
    hot: Option<(Arc<str>, Vec<usize>)>,
    next_batch_id: u64,
    /// Where the next drain for a node starts (fairness across its partitions).
    drain_index: BTreeMap<NodeId, usize>,
    /// Partitions with a batch in flight, muted when order must be kept with
    /// `max_in_flight_requests_per_connection = 1` (without idempotence).
    in_flight: BTreeMap<Tp, usize>,
    guarantee_order: bool,
    /// No queued batch's delivery deadline is earlier than this (a lower bound: batches
    /// drained since are not subtracted). `expire` scans only once it passed.
    earliest_deadline: Option<Instant>,
    /// Emptied `thunks` Vecs of completed batches, for new batches to reuse (at most
    /// [`MAX_POOLED_THUNKS`]).
    thunk_pool: Vec<Vec<Thunk>>,
    /// Buffers of completed batches, for new batches to build into (see
    /// [`Accumulator::recycle_buffer`]).
    buffer_pool: Vec<Vec<u8>>,
    /// The most bytes `buffer_pool` may hold, and `sized_pool` too.
    buffer_pool_bytes: usize,
    /// Buffers of other capacities (batches opened by a record over half of `batch_size`,
    /// sized to it: [`ProducerBatch::for_one`]), kept for the next such batch: allocating
    /// and freeing one per record instead, from whichever tokio worker ran the producer's
    /// loop, spread them over glibc's per-thread arenas and raised the peak RSS of a 10 KB
    /// produce from 60 to 64 MB where reusing them brings it down.
    sized_pool: Vec<Vec<u8>>,
    /// Bytes `sized_pool` holds.
    sized_pool_bytes: usize,
}

/// The most emptied `thunks` Vecs kept for reuse.
const MAX_POOLED_THUNKS: usize = 256;
/// The most bytes pooled batch buffers hold together unless the producer sets its own bound
/// ([`Accumulator::set_buffer_pool_bytes`]: the producer keeps up to `buffer_memory`, as
/// Java's `BufferPool` does).
const DEFAULT_POOLED_BUFFER_BYTES: usize = 4 << 20;

impl Accumulator {
    pub(crate) fn new(settings: BatchSettings, linger: Duration, guarantee_order: bool) -> Self {
        Accumulator {
            settings,
            linger,
            slots: Vec::new(),
            index: BTreeMap::new(),
            hot: None,
            next_batch_id: 0,
            drain_index: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            guarantee_order,
            earliest_deadline: None,
            thunk_pool: Vec::new(),
            buffer_pool: Vec::new(),
            buffer_pool_bytes: DEFAULT_POOLED_BUFFER_BYTES,
            sized_pool: Vec::new(),
            sized_pool_bytes: 0,
        }
    }

    /// The slot of `topic`'s `partition`, made if `create` (else `None` when it has none).
    fn slot(&mut self, topic: &Arc<str>, partition: i32, create: bool) -> Option<usize> {
        let p = usize::try_from(partition).ok();
        if let (Some((hot, slots)), Some(p)) = (&self.hot, p) {
            if Arc::ptr_eq(hot, topic) {
                if let Some(&s) = slots.get(p).filter(|&&s| s != NO_SLOT) {
                    return Some(s);
                }
            }
        }
        let tp: Tp = (topic.clone(), partition);
        let s = match self.index.get(&tp) {
            Some(&s) => s,
            None if create => {
                let s = self.slots.len();
                self.slots.push(VecDeque::new());
                self.index.insert(tp, s);
                s
            }
            None => return None,
        };
        // Remember it for the next record of this topic (partition ids are small: the
        // callers checked them against the topic's partition count).
        if let Some(p) = p.filter(|&p| p < (1 << 16)) {
            let hot = match &mut self.hot {
                Some((t, slots)) if Arc::ptr_eq(t, topic) => slots,
                hot => &mut hot.insert((topic.clone(), Vec::new())).1,
            };
            if hot.len() <= p {
                hot.resize(p + 1, NO_SLOT);
            }
            hot[p] = s;
        }
        Some(s)
    }

    /// The queue of `tp`, made if missing.
    fn queue_mut(&mut self, tp: &Tp) -> &mut VecDeque<ProducerBatch> {
        let s = self.slot(&tp.0, tp.1, true).expect("made if missing");
        &mut self.slots[s]
    }

    /// Whether a record of `upper_bound` bytes for `topic`'s `partition` fits in its last
    /// batch: the slot if so, `None` when it would open a new batch (KIP-480's
    /// `abortOnNewBatch` question). The sticky partitioner asks this for every record, which
    /// is then appended to that very batch: handing the slot to [`Accumulator::append`]
    /// spares it a second lookup and room check per record.
    pub(crate) fn room_in_last(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        upper_bound: usize,
    ) -> Option<RoomIn> {
        let s = self.slot(topic, partition, false)?;
        self.slots[s]
            .back()
            .is_some_and(|b| b.has_room_for(upper_bound))
            .then_some(RoomIn(s))
    }

    /// Appends a record to the last batch of `topic`'s `partition`, opening a batch if needed.
    /// `room`: what [`Accumulator::room_in_last`] answered for this record, this topic and
    /// partition, with no change to the accumulator since (`None`: look it up here).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        upper_bound: usize,
        reserved: u64,
        op: Option<OpId>,
        gen: u64,
        now: Instant,
        room: Option<RoomIn>,
    ) -> Result<Appended, EncodeError> {
        let (s, has_room) = match room {
            Some(RoomIn(s)) => (s, true),
            None => (
                self.slot(topic, partition, true).expect("made if missing"),
                false,
            ),
        };
        let queue = &mut self.slots[s];
        let mut new_batch = false;
        let mut batch_full = false;
        if !has_room && queue.back().is_none_or(|b| !b.has_room_for(upper_bound)) {
            if let Some(last) = queue.back_mut() {
                last.closed = true;
                batch_full = true;
            }
            self.next_batch_id += 1;
            let id = self.next_batch_id;
            let settings = self.settings;
            let mut batch = if ProducerBatch::is_for_one(&settings, upper_bound) {
                // A record over half of batch_size: a buffer of its size, a kept one if the
                // last kept has room enough (records of one size reuse them all).
                let buf = match self.sized_pool.pop() {
                    Some(b) => {
                        self.sized_pool_bytes -= b.capacity();
                        if b.capacity() >= RECORD_BATCH_OVERHEAD + upper_bound {
                            b
                        } else {
                            Vec::new()
                        }
                    }
                    None => Vec::new(),
                };
                ProducerBatch::for_one(
                    id,
                    topic.clone(),
                    partition,
                    settings,
                    now,
                    buf,
                    upper_bound,
                )
            } else {
                let buf = self.buffer_pool.pop().unwrap_or_default();
                ProducerBatch::with_buffer(id, topic.clone(), partition, settings, now, buf)
            };
            if let Some(thunks) = self.thunk_pool.pop() {
                batch.thunks = thunks;
            }
            let d = batch.deadline;
            queue.push_back(batch);
            self.earliest_deadline = Deadline::from(self.earliest_deadline).with(d).earliest();
            new_batch = true;
        }
        let batch = queue.back_mut().expect("a batch was ensured above");
        batch.append(timestamp, key, value, headers, reserved, op, gen)?;
        batch_full |= batch.is_full();
        Ok(Appended {
            new_batch,
            batch_full,
        })
    }

    /// Keeps a completed batch's emptied `thunks` Vec for a later batch.
    pub(crate) fn recycle_thunks(&mut self, mut thunks: Vec<Thunk>) {
        thunks.clear();
        if thunks.capacity() > 0 && self.thunk_pool.len() < MAX_POOLED_THUNKS {
            self.thunk_pool.push(thunks);
        }
    }

    /// Bounds the bytes of pooled batch buffers.
    ///
    /// The producer passes `buffer_memory`. New batches take pooled buffers first, so the
    /// pool and the batches in use together never hold more than the most batches ever held
    /// at once; the pool only keeps that memory after a burst instead of handing it back. A
    /// 4 MiB bound (the default) made a producer that outruns its broker free most buffers
    /// of a burst of completions; the allocator can give that memory back to the system,
    /// and the next batches then fault fresh pages in (in one profile of a 100 B produce on
    /// a loaded machine, 4% of the samples were the kernel clearing pages for batch
    /// buffers).
    pub(crate) fn set_buffer_pool_bytes(&mut self, bytes: usize) {
        self.buffer_pool_bytes = bytes;
    }

    /// Keeps a completed batch's buffer for a later batch: buffers of the usual capacity, and
    /// (`sized`) those [`ProducerBatch::for_one`] sized, each kind up to the pool's bound in
    /// bytes (see [`Accumulator::set_buffer_pool_bytes`]; pooled buffers are outside
    /// `buffer_memory`'s account, as the allocator's free lists are).
    pub(crate) fn recycle_buffer(&mut self, buf: Option<Vec<u8>>, sized: bool) {
        let Some(buf) = buf else { return };
        let cap = ProducerBatch::buffer_capacity(&self.settings);
        let limit = self.buffer_pool_bytes / cap.max(1);
        if buf.capacity() == cap {
            if self.buffer_pool.len() < limit {
                self.buffer_pool.push(buf);
            }
        } else if sized && self.sized_pool_bytes + buf.capacity() <= self.buffer_pool_bytes {
            self.sized_pool_bytes += buf.capacity();
            self.sized_pool.push(buf);
        }
    }

    /// Puts a batch back for a retry: at the front of its queue, or for the idempotent
    /// producer in sequence order among the retried batches there (Java's
    /// `insertInSequenceOrder`).
    pub(crate) fn reenqueue(&mut self, batch: ProducerBatch) {
        self.note_deadline(batch.deadline);
        let tp = (batch.topic.clone(), batch.partition);
        let queue = self.queue_mut(&tp);
        match batch.stamp {
            Some(stamp) => {
                let at = queue
                    .iter()
                    .position(|b| {
                        b.stamp
                            .is_none_or(|s| s.base_sequence > stamp.base_sequence)
                    })
                    .unwrap_or(queue.len());
                queue.insert(at, batch);
            }
            None => queue.push_front(batch),
        }
    }

    /// Puts split batches back at the front of their queue, in order.
    pub(crate) fn push_front_all(&mut self, batches: Vec<ProducerBatch>) {
        for batch in batches.into_iter().rev() {
            self.note_deadline(batch.deadline);
            let tp = (batch.topic.clone(), batch.partition);
            self.queue_mut(&tp).push_front(batch);
        }
    }

    fn note_deadline(&mut self, d: Instant) {
        self.earliest_deadline = Deadline::from(self.earliest_deadline).with(d).earliest();
    }

    /// The id counter, for batches made outside (splits).
    pub(crate) fn batch_ids(&mut self) -> &mut u64 {
        &mut self.next_batch_id
    }

    /// Clears the stamps of `tp`'s queued batches so they are re-sequenced when drained.
    pub(crate) fn clear_stamps(&mut self, tp: &Tp) {
        if let Some(&s) = self.index.get(tp) {
            for b in self.slots[s].iter_mut() {
                b.stamp = None;
            }
        }
    }

    /// Which leaders have sendable batches. `force` makes every batch sendable regardless of
    /// linger (flush or close in progress, or senders waiting for memory).
    pub(crate) fn ready(&self, cluster: &ClusterView, now: Instant, force: bool) -> Ready {
        let mut ready = Ready::default();
        let mut next_check = Deadline::NONE;
        let mut consider = |t: Instant| next_check.fold(t);
        let mut unknown = false;
        let mut nodes = BTreeSet::new();
        for (tp, &s) in &self.index {
            let Some(first) = self.slots[s].front() else {
                continue;
            };
            if self.guarantee_order && self.in_flight.contains_key(tp) {
                continue;
            }
            let Some(leader) = cluster.leader_for(&tp.0, tp.1) else {
                unknown = true;
                continue;
            };
            if let Some(at) = first.retry_at.filter(|t| now < *t) {
                consider(at);
                continue;
            }
            let full = self.slots[s].len() > 1 || first.is_full();
            let linger_done = first.retry_at.is_some() || now >= first.created + self.linger;
            if full || linger_done || force {
                nodes.insert(leader);
            } else {
                consider(first.created + self.linger);
            }
        }
        ready.nodes = nodes;
        ready.unknown_leader = unknown;
        ready.next_check = next_check.earliest();
        ready
    }

    /// The codec of new batches.
    pub(crate) fn compression(&self) -> crate::compression::Compression {
        self.settings.compression
    }

    /// Whether a partition with a batch in flight waits (order without idempotence and one
    /// request in flight); set again when idempotence turns itself off.
    pub(crate) fn set_guarantee_order(&mut self, yes: bool) {
        self.guarantee_order = yes;
    }

    /// The format new batches are written in (see [`BatchSettings::magic`]).
    pub(crate) fn magic(&self) -> i8 {
        self.settings.magic
    }

    /// Sets the format of the batches opened from now on.
    pub(crate) fn set_magic(&mut self, magic: i8) {
        self.settings.magic = magic;
    }

    /// Takes the first batch of each partition `to.node` leads, starting where the last drain
    /// for the node stopped, until `max_size` bytes (the first batch always goes), written
    /// in `magic`, the format the node takes (see [`ProducerBatch::payload`]). For the
    /// idempotent producer `idem` stamps each batch or holds it back; a transactional one
    /// passes the partitions added to its transaction as `allowed` (others wait). Batches
    /// that failed to
    /// encode come back separately.
    pub(crate) fn drain(
        &mut self,
        cluster: &ClusterView,
        to: DrainTo,
        now: Instant,
        mut idem: Option<&mut Idempotence>,
        allowed: Option<&BTreeSet<Tp>>,
    ) -> (Vec<ProducerBatch>, Vec<(ProducerBatch, EncodeError)>) {
        let DrainTo {
            node,
            max_size,
            magic,
        } = to;
        let tps: Vec<(Tp, usize)> = self
            .index
            .iter()
            .filter(|(tp, &s)| {
                !self.slots[s].is_empty() && cluster.leader_for(&tp.0, tp.1) == Some(node)
            })
            .map(|(tp, &s)| (tp.clone(), s))
            .collect();
        let mut out = Vec::new();
        let mut failed = Vec::new();
        if tps.is_empty() {
            return (out, failed);
        }
        let start = self.drain_index.get(&node).copied().unwrap_or(0) % tps.len();
        let mut size = 0usize;
        let mut next_start = start;
        for i in 0..tps.len() {
            let at = (start + i) % tps.len();
            let (tp, s) = &tps[at];
            next_start = (at + 1) % tps.len();
            if self.guarantee_order && self.in_flight.contains_key(tp) {
                continue;
            }
            let queue = &mut self.slots[*s];
            let Some(first) = queue.front() else {
                continue;
            };
            if first.retry_at.is_some_and(|t| now < t) || allowed.is_some_and(|a| !a.contains(tp)) {
                continue;
            }
            if !out.is_empty() && size + first.size_in_bytes() > max_size {
                // Start here next time, so this partition is not starved.
                next_start = at;
                break;
            }
            let stamp = match idem.as_deref_mut() {
                None => None,
                Some(idem) => match idem.decide(tp, first) {
                    DrainDecision::Send(stamp) => Some(stamp),
                    DrainDecision::Wait => continue,
                },
            };
            let mut batch = queue.pop_front().expect("front checked above");
            match batch.payload(stamp, magic) {
                Ok(bytes) => {
                    size += bytes.len();
                    out.push(batch);
                }
                Err(e) => failed.push((batch, e)),
            }
        }
        self.drain_index.insert(node, next_start);
        (out, failed)
    }

    /// Notes that `tp` has one more (or one fewer) batch in flight.
    pub(crate) fn mark_in_flight(&mut self, tp: &Tp, delta: isize) {
        if delta > 0 {
            *self.in_flight.entry(tp.clone()).or_default() += delta as usize;
        } else if let Some(n) = self.in_flight.get_mut(tp) {
            *n = n.saturating_sub(delta.unsigned_abs());
            if *n == 0 {
                self.in_flight.remove(tp);
            }
        }
    }

    /// Removes and returns every queued batch whose delivery timeout passed.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<ProducerBatch> {
        if self.earliest_deadline.is_none_or(|e| now < e) {
            return Vec::new();
        }
        let mut expired = Vec::new();
        for queue in &mut self.slots {
            if queue.iter().any(|b| now >= b.deadline) {
                let (gone, kept): (VecDeque<_>, VecDeque<_>) =
                    queue.drain(..).partition(|b| now >= b.deadline);
                *queue = kept;
                expired.extend(gone);
            }
        }
        self.earliest_deadline = self
            .slots
            .iter()
            .flat_map(|q| q.iter().map(|b| b.deadline))
            .min();
        expired
    }

    /// When a queued batch's delivery deadline may pass: never later than the earliest one
    /// (possibly earlier, if that batch was drained since; [`Self::expire`] then rescans).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.earliest_deadline
    }

    /// Removes every queued batch (close, fatal errors).
    pub(crate) fn take_all(&mut self) -> Vec<ProducerBatch> {
        let mut all = Vec::new();
        self.earliest_deadline = None;
        for &s in self.index.values() {
            all.extend(std::mem::take(&mut self.slots[s]));
        }
        all
    }

    /// Whether any batch is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.iter().all(|q| q.is_empty())
    }

    /// Queued batches of `tp` (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn queued(&self, tp: &Tp) -> usize {
        self.index.get(tp).map_or(0, |&s| self.slots[s].len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::Compression;
    use crate::protocol::metadata::response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use crate::protocol::MetadataResponse;

    fn settings(batch_size: usize) -> BatchSettings {
        BatchSettings {
            transactional: false,
            batch_size,
            compression: Compression::None,
            level: None,
            delivery_timeout: Duration::from_secs(10),
            magic: crate::records::MAGIC_V2,
        }
    }

    /// `partitions` partitions of topic "t" led by brokers `leader(p)`.
    fn cluster(partitions: i32, leader: impl Fn(i32) -> i32) -> ClusterView {
        let resp = MetadataResponse {
            brokers: (0..3)
                .map(|id| MetadataResponseBroker {
                    node_id: id,
                    host: format!("b{id}"),
                    port: 9092,
                    ..Default::default()
                })
                .collect(),
            topics: vec![MetadataResponseTopic {
                name: Some("t".into()),
                partitions: (0..partitions)
                    .map(|p| MetadataResponsePartition {
                        partition_index: p,
                        leader_id: leader(p),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut view = ClusterView::default();
        view.update(&resp, true);
        view
    }

    fn tp(p: i32) -> Tp {
        ("t".into(), p)
    }

    fn add(acc: &mut Accumulator, p: i32, value: &[u8], now: Instant) -> Appended {
        let bound =
            crate::records::RecordBatchBuilder::record_size_upper_bound(None, Some(value), &[]);
        acc.append(
            &tp(p).0,
            p,
            0,
            None,
            Some(value),
            &[],
            bound,
            bound as u64,
            None,
            0,
            now,
            None,
        )
        .unwrap()
    }

    #[test]
    fn appending_where_room_was_found_fills_batches_as_a_lookup_does() {
        let now = Instant::now();
        let topic = tp(0).0;
        let value = [7u8; 100];
        let bound =
            crate::records::RecordBatchBuilder::record_size_upper_bound(None, Some(&value), &[]);
        let mut looked_up = Accumulator::new(settings(1024), Duration::ZERO, false);
        let mut hinted = Accumulator::new(settings(1024), Duration::ZERO, false);
        let mut hints = 0;
        for _ in 0..50 {
            let a = looked_up
                .append(
                    &topic,
                    0,
                    0,
                    None,
                    Some(&value),
                    &[],
                    bound,
                    1,
                    None,
                    0,
                    now,
                    None,
                )
                .unwrap();
            let room = hinted.room_in_last(&topic, 0, bound);
            hints += usize::from(room.is_some());
            let b = hinted
                .append(
                    &topic,
                    0,
                    0,
                    None,
                    Some(&value),
                    &[],
                    bound,
                    1,
                    None,
                    0,
                    now,
                    room,
                )
                .unwrap();
            // A hint is given exactly when the record goes into the last batch.
            assert_eq!(room.is_none(), b.new_batch);
            assert_eq!((a.new_batch, a.batch_full), (b.new_batch, b.batch_full));
        }
        assert!(hints > 0 && hints < 50, "{hints}");
        let counts = |acc: &Accumulator| -> Vec<usize> {
            acc.slots[0]
                .iter()
                .map(ProducerBatch::record_count)
                .collect()
        };
        assert_eq!(counts(&looked_up), counts(&hinted));
        assert!(counts(&hinted).len() > 1);
    }

    #[test]
    fn batches_fill_up_to_batch_size() {
        let now = Instant::now();
        let mut acc = Accumulator::new(settings(1000), Duration::from_millis(100), false);
        let mut new_batches = 0;
        for _ in 0..30 {
            if add(&mut acc, 0, &[7; 100], now).new_batch {
                new_batches += 1;
            }
        }
        // ~110 bytes a record, 61 of header: 8 records a batch.
        assert_eq!(acc.queued(&tp(0)), new_batches);
        assert!((3..=5).contains(&new_batches), "{new_batches}");
        let view = cluster(1, |_| 0);
        let r = acc.ready(&view, now, false);
        assert!(r.nodes.contains(&0), "full batches are ready before linger");
        let (batches, failed) = acc.drain(&view, DrainTo::v2(0, 1 << 20), now, None, None);
        assert!(failed.is_empty());
        assert_eq!(batches.len(), 1, "one batch per partition per drain");
        assert!(batches[0].size_in_bytes() <= 1000);
        assert!(batches[0].record_count() >= 8);
    }

    #[test]
    fn a_record_larger_than_batch_size_gets_its_own_batch() {
        let now = Instant::now();
        let mut acc = Accumulator::new(settings(100), Duration::ZERO, false);
        assert!(add(&mut acc, 0, &[1; 500], now).new_batch);
        assert!(add(&mut acc, 0, &[1; 10], now).new_batch);
        assert_eq!(acc.queued(&tp(0)), 2);
    }

    #[test]
    fn linger_decides_readiness_of_a_partial_batch() {
        let now = Instant::now();
        let linger = Duration::from_millis(50);
        let mut acc = Accumulator::new(settings(16_384), linger, false);
        add(&mut acc, 0, b"x", now);
        let view = cluster(1, |_| 0);
        let r = acc.ready(&view, now, false);
        assert!(r.nodes.is_empty());
        assert_eq!(r.next_check, Some(now + linger));
        assert!(
            acc.ready(&view, now, true).nodes.contains(&0),
            "flush forces"
        );
        let later = now + linger;
        assert!(acc.ready(&view, later, false).nodes.contains(&0));
        // Unknown leader: reported, not ready.
        let no_leader = cluster(1, |_| -1);
        let r = acc.ready(&no_leader, later, false);
        assert!(r.unknown_leader && r.nodes.is_empty());
    }

    #[test]
    fn drain_respects_max_request_size_and_rotates_fairly() {
        let now = Instant::now();
        let mut acc = Accumulator::new(settings(300), Duration::ZERO, false);
        for p in 0..4 {
            for _ in 0..4 {
                add(&mut acc, p, &[0; 100], now);
            }
        }
        let view = cluster(4, |_| 1);
        // Room for two ~270-byte batches per request.
        let (first, _) = acc.drain(&view, DrainTo::v2(1, 600), now, None, None);
        let parts: Vec<i32> = first.iter().map(|b| b.partition).collect();
        assert_eq!(parts, vec![0, 1]);
        let (second, _) = acc.drain(&view, DrainTo::v2(1, 600), now, None, None);
        let parts: Vec<i32> = second.iter().map(|b| b.partition).collect();
        assert_eq!(
            parts,
            vec![2, 3],
            "the next drain starts where the last stopped"
        );
        let (third, _) = acc.drain(&view, DrainTo::v2(1, 600), now, None, None);
        assert_eq!(third[0].partition, 0);
        // The first batch always goes, even beyond max_size.
        let (one, _) = acc.drain(&view, DrainTo::v2(1, 10), now, None, None);
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn backoff_and_expiry() {
        let now = Instant::now();
        let mut acc = Accumulator::new(settings(16_384), Duration::ZERO, false);
        add(&mut acc, 0, b"a", now);
        let view = cluster(1, |_| 0);
        let (mut batches, _) = acc.drain(&view, DrainTo::v2(0, 1 << 20), now, None, None);
        let mut b = batches.pop().unwrap();
        b.retry_at = Some(now + Duration::from_millis(100));
        acc.reenqueue(b);
        let r = acc.ready(&view, now, false);
        assert!(r.nodes.is_empty());
        assert_eq!(r.next_check, Some(now + Duration::from_millis(100)));
        assert!(acc
            .drain(&view, DrainTo::v2(0, 1 << 20), now, None, None)
            .0
            .is_empty());
        assert_eq!(acc.next_deadline(), Some(now + Duration::from_secs(10)));
        assert!(acc.expire(now + Duration::from_secs(9)).is_empty());
        assert_eq!(acc.expire(now + Duration::from_secs(10)).len(), 1);
        assert!(acc.is_empty());
    }
}
