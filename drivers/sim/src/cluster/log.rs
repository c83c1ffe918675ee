//! [`PartitionLog`]: one partition's batches, offsets, replicas and producer state.
//!
//! The model keeps one copy of each partition's data: the leader's log. Followers are
//! represented by their log end offsets (how much of the leader's log they copied); when a
//! follower becomes leader with less than the old leader had, the log is truncated to what it
//! copied, which is how unreplicated `acks=1` data is lost.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;
use kafkit_core::compression::Compression;
use kafkit_core::protocol::ErrorCode;
use kafkit_core::records::{
    BatchHeader, ControlRecord, DecodeOptions, RecordBatchBuilder, RecordSet,
};

/// How many recent batches per producer are remembered for duplicate detection (Kafka's
/// `NUM_BATCHES_TO_RETAIN`).
const PRODUCER_BATCHES_RETAINED: usize = 5;

/// A batch as stored: its bytes (base offset and leader epoch rewritten) and header facts.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The batch's max timestamp (the append time under LogAppendTime).
    pub max_timestamp: i64,
    /// The leader epoch the batch was appended in.
    pub leader_epoch: i32,
    /// Producer id, -1 for non-idempotent producers.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// First sequence number.
    pub base_sequence: i32,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
    /// Whether the batch holds a control record (a transaction marker).
    pub control: bool,
    /// The batch exactly as a fetch returns it.
    pub data: Bytes,
}

#[derive(Debug, Clone, Copy)]
struct SeqEntry {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

#[derive(Debug, Clone, Default)]
struct ProducerState {
    epoch: i16,
    recent: VecDeque<SeqEntry>,
}

/// What the idempotence check decided about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// A retry of a batch already in the log at this base offset.
    Duplicate(i64),
}

/// One partition: log, offsets, replica set and per-producer sequence state.
#[derive(Debug)]
pub struct PartitionLog {
    /// The partition index.
    pub index: i32,
    /// The leader's node id, -1 while none is available.
    pub leader: i32,
    /// The current leader epoch (bumped on every leader change).
    pub leader_epoch: i32,
    /// Replica node ids, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas (always including a live leader).
    pub isr: Vec<i32>,
    batches: VecDeque<StoredBatch>,
    bytes: u64,
    log_start: i64,
    log_end: i64,
    high_watermark: i64,
    /// Log end offsets of the followers (what they copied from the leader).
    follower_leo: BTreeMap<i32, i64>,
    /// (leader epoch, start offset) in epoch order, for OffsetForLeaderEpoch.
    epochs: Vec<(i32, i64)>,
    producers: HashMap<i64, ProducerState>,
    /// Transactions with data here and no marker yet: producer id -> first offset.
    open_txns: BTreeMap<i64, i64>,
    /// Transactions whose marker is at or above the high watermark: (first offset, marker
    /// offset). They hold the last stable offset back until the marker is replicated.
    unstable_txns: Vec<(i64, i64)>,
    /// The aborted transactions, in marker order (Kafka's aborted transaction index).
    aborted: Vec<AbortedTxn>,
}

/// An aborted transaction of a partition: its producer and the offsets of its first record
/// and of its ABORT marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer that wrote the transaction.
    pub producer_id: i64,
    /// Offset of the transaction's first record in this partition.
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
}

/// Sequence number `n` after `seq`, wrapping at `i32::MAX` as Kafka does.
fn seq_add(seq: i32, n: i32) -> i32 {
    ((seq as i64 + n as i64) % (i32::MAX as i64 + 1)) as i32
}

impl PartitionLog {
    /// An empty partition led by `replicas[0]` (or leaderless if `replicas` is empty).
    pub fn new(index: i32, replicas: Vec<i32>) -> Self {
        let leader = replicas.first().copied().unwrap_or(-1);
        let follower_leo = replicas.iter().skip(1).map(|&r| (r, 0)).collect();
        PartitionLog {
            index,
            leader,
            leader_epoch: 0,
            isr: replicas.clone(),
            replicas,
            batches: VecDeque::new(),
            bytes: 0,
            log_start: 0,
            log_end: 0,
            high_watermark: 0,
            follower_leo,
            epochs: vec![(0, 0)],
            producers: HashMap::new(),
            open_txns: BTreeMap::new(),
            unstable_txns: Vec::new(),
            aborted: Vec::new(),
        }
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start
    }

    /// The offset the next batch gets (log end offset).
    pub fn log_end_offset(&self) -> i64 {
        self.log_end
    }

    /// The high watermark: everything below it is on every in-sync replica.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// The last stable offset, up to which `read_committed` consumers read: the high
    /// watermark, or the first offset of the earliest transaction still open here (no
    /// marker yet, or a marker not yet replicated to the high watermark) if lower.
    pub fn last_stable_offset(&self) -> i64 {
        let open = self.open_txns.values().copied();
        let unreplicated = self
            .unstable_txns
            .iter()
            .filter(|&&(_, marker)| marker >= self.high_watermark)
            .map(|&(first, _)| first);
        open.chain(unreplicated).fold(self.high_watermark, i64::min)
    }

    /// Whether producer `producer_id` has an open transaction here (data and no marker).
    pub fn has_open_txn(&self, producer_id: i64) -> bool {
        self.open_txns.contains_key(&producer_id)
    }

    /// The aborted transactions a `read_committed` fetch from `from` up to `to` (excluded)
    /// must be told of: those whose ABORT marker is at or after `from` and whose first
    /// record is before `to`.
    pub fn aborted_between(&self, from: i64, to: i64) -> impl Iterator<Item = &AbortedTxn> {
        self.aborted
            .iter()
            .filter(move |a| a.last_offset >= from && a.first_offset < to)
    }

    /// Appends a COMMIT or ABORT marker of producer `producer_id` at `producer_epoch`,
    /// written by a coordinator in `coordinator_epoch` at wall time `timestamp`: closes the
    /// producer's open transaction here (if it wrote data) and, for an abort, records it in
    /// the aborted index. Returns the marker's offset.
    pub fn append_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        timestamp: i64,
    ) -> Result<i64, String> {
        let record = ControlRecord::EndTxn {
            commit,
            coordinator_epoch,
        };
        let mut b = RecordBatchBuilder::new(Compression::None)
            .producer(producer_id, producer_epoch, -1)
            .transactional(true)
            .control(true);
        b.append_control(timestamp, &record)
            .map_err(|e| e.to_string())?;
        let data = b.finish().map_err(|e| e.to_string())?.to_vec();
        let h = BatchHeader::parse(&data).map_err(|e| e.to_string())?;
        let offset = self.append(data, &h, None);
        if let Some(first) = self.open_txns.remove(&producer_id) {
            self.unstable_txns.push((first, offset));
            if !commit {
                self.aborted.push(AbortedTxn {
                    producer_id,
                    first_offset: first,
                    last_offset: offset,
                });
            }
        }
        Ok(offset)
    }

    /// Whether the batch at `offset` is a marker of `producer_id`.
    pub fn is_marker_at(&self, offset: i64, producer_id: i64) -> bool {
        let i = self.batches.partition_point(|b| b.base_offset < offset);
        self.batches
            .get(i)
            .is_some_and(|b| b.base_offset == offset && b.control && b.producer_id == producer_id)
    }

    /// Bytes of batch data held.
    pub fn size_bytes(&self) -> u64 {
        self.bytes
    }

    /// Number of batches held.
    pub fn batch_count(&self) -> usize {
        self.batches.len()
    }

    /// The stored batches, oldest first.
    pub fn batches(&self) -> impl Iterator<Item = &StoredBatch> {
        self.batches.iter()
    }

    /// The log end offset of replica `broker` (the leader's is the log end offset).
    pub fn replica_leo(&self, broker: i32) -> Option<i64> {
        if broker == self.leader {
            Some(self.log_end)
        } else {
            self.follower_leo.get(&broker).copied()
        }
    }

    /// Checks an idempotent batch against the producer's state.
    pub fn check_sequence(&self, h: &BatchHeader) -> Result<SequenceCheck, ErrorCode> {
        if h.producer_id < 0 {
            return Ok(SequenceCheck::Append);
        }
        let last_seq = seq_add(h.base_sequence, h.last_offset_delta);
        let Some(state) = self.producers.get(&h.producer_id) else {
            // Unknown on this partition: only a first batch may start a sequence.
            return if h.base_sequence <= 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(ErrorCode::UNKNOWN_PRODUCER_ID)
            };
        };
        if h.producer_epoch < state.epoch {
            return Err(ErrorCode::INVALID_PRODUCER_EPOCH);
        }
        if h.base_sequence < 0 {
            // Non-idempotent batch carrying a producer id (transactional without
            // idempotence is not a thing; accept as Kafka's validation would elsewhere).
            return Ok(SequenceCheck::Append);
        }
        if h.producer_epoch > state.epoch {
            return if h.base_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
            };
        }
        if let Some(dup) = state
            .recent
            .iter()
            .find(|e| e.first_seq == h.base_sequence && e.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate(dup.base_offset));
        }
        match state.recent.back() {
            Some(last) if seq_add(last.last_seq, 1) == h.base_sequence => Ok(SequenceCheck::Append),
            None if h.base_sequence == 0 => Ok(SequenceCheck::Append),
            _ => Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER),
        }
    }

    /// Appends one validated batch at the log end: rewrites its base offset and leader epoch
    /// (and its timestamps under `log_append_time`). Returns the base offset.
    pub fn append(
        &mut self,
        mut data: Vec<u8>,
        h: &BatchHeader,
        log_append_time: Option<i64>,
    ) -> i64 {
        let base = self.log_end;
        // The batch was parsed as magic 2 before; these cannot fail.
        let _ = kafkit_core::records::set_base_offset(&mut data, base);
        let _ = kafkit_core::records::set_partition_leader_epoch(&mut data, self.leader_epoch);
        let mut max_timestamp = h.max_timestamp;
        if let Some(ts) = log_append_time {
            let _ = kafkit_core::records::set_log_append_time(&mut data, ts);
            max_timestamp = ts;
        }
        let last = base + h.last_offset_delta as i64;
        let stored = StoredBatch {
            base_offset: base,
            last_offset: last,
            max_timestamp,
            leader_epoch: self.leader_epoch,
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            transactional: h.attributes.is_transactional(),
            control: h.attributes.is_control(),
            data: Bytes::from(data),
        };
        if stored.transactional && !stored.control && stored.producer_id >= 0 {
            self.open_txns.entry(stored.producer_id).or_insert(base);
        }
        self.record_producer(&stored);
        self.bytes += stored.data.len() as u64;
        self.batches.push_back(stored);
        self.log_end = last + 1;
        base
    }

    /// Appends a magic 0/1 message set already built for this log's end offset (see
    /// [`PartitionLog::log_end_offset`]) holding `count` records. Returns its base offset.
    pub fn append_legacy(&mut self, data: Bytes, count: i64, max_timestamp: i64) -> i64 {
        let base = self.log_end;
        let stored = StoredBatch {
            base_offset: base,
            last_offset: base + count - 1,
            max_timestamp,
            leader_epoch: self.leader_epoch,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            data,
        };
        self.bytes += stored.data.len() as u64;
        self.batches.push_back(stored);
        self.log_end = base + count;
        base
    }

    fn record_producer(&mut self, b: &StoredBatch) {
        if b.producer_id < 0 {
            return;
        }
        let state = self.producers.entry(b.producer_id).or_default();
        if b.producer_epoch != state.epoch {
            state.recent.clear();
            state.epoch = b.producer_epoch;
        }
        if b.base_sequence >= 0 {
            let delta = (b.last_offset - b.base_offset) as i32;
            state.recent.push_back(SeqEntry {
                first_seq: b.base_sequence,
                last_seq: seq_add(b.base_sequence, delta),
                base_offset: b.base_offset,
            });
            while state.recent.len() > PRODUCER_BATCHES_RETAINED {
                state.recent.pop_front();
            }
        }
    }

    /// Batches holding offsets from `offset` up to (excluding) `limit`, at most `max_bytes`
    /// of them, except that the first batch is returned whatever its size when `min_one`.
    /// The first batch may start before `offset` (a fetch from the middle of a batch gets the
    /// whole batch, as from Kafka).
    pub fn read(&self, offset: i64, limit: i64, max_bytes: usize, min_one: bool) -> Vec<Bytes> {
        let start = self.batches.partition_point(|b| b.last_offset < offset);
        let mut out = Vec::new();
        let mut total = 0usize;
        for b in self.batches.iter().skip(start) {
            if b.base_offset >= limit {
                break;
            }
            let len = b.data.len();
            if total + len > max_bytes && !(out.is_empty() && min_one) {
                break;
            }
            total += len;
            out.push(b.data.clone());
        }
        out
    }

    /// Bytes a read from `offset` below `limit` would find (for fetch `min_bytes`).
    pub fn available_bytes(&self, offset: i64, limit: i64) -> usize {
        let start = self.batches.partition_point(|b| b.last_offset < offset);
        self.batches
            .iter()
            .skip(start)
            .take_while(|b| b.base_offset < limit)
            .map(|b| b.data.len())
            .sum()
    }

    /// The first record with a timestamp at or after `target` below `limit`:
    /// `(offset, timestamp, leader epoch)`.
    pub fn offset_for_timestamp(&self, target: i64, limit: i64) -> Option<(i64, i64, i32)> {
        let opts = DecodeOptions::default();
        for b in self.batches.iter().take_while(|b| b.base_offset < limit) {
            if b.max_timestamp < target {
                continue;
            }
            // Records of any magic; under log-append time they carry the batch's time.
            for batch in RecordSet::new(b.data.clone(), opts).flatten() {
                for r in batch.records().flatten() {
                    if r.offset >= self.log_start && r.offset < limit && r.timestamp >= target {
                        return Some((r.offset, r.timestamp, b.leader_epoch));
                    }
                }
            }
        }
        None
    }

    /// The record with the largest timestamp below `limit` (the first of equals):
    /// `(offset, timestamp, leader epoch)`.
    pub fn max_timestamp_offset(&self, limit: i64) -> Option<(i64, i64, i32)> {
        let best = self
            .batches
            .iter()
            .take_while(|b| b.base_offset < limit)
            .fold(None::<&StoredBatch>, |acc, b| match acc {
                Some(a) if a.max_timestamp >= b.max_timestamp => Some(a),
                _ => Some(b),
            })?;
        let ts = best.max_timestamp;
        self.offset_for_timestamp(ts, limit)
            .filter(|(_, t, _)| *t == ts)
            .or(Some((best.last_offset, ts, best.leader_epoch)))
    }

    /// Drops whole batches from the front while more than `max_bytes` are held, never
    /// touching data at or above the high watermark. Returns whether anything was dropped.
    pub fn enforce_retention(&mut self, max_bytes: u64) -> bool {
        let mut dropped = false;
        while self.bytes > max_bytes && self.batches.len() > 1 {
            let Some(front) = self.batches.front() else {
                break;
            };
            if front.last_offset >= self.high_watermark {
                break;
            }
            let len = front.data.len() as u64;
            let next = front.last_offset + 1;
            self.batches.pop_front();
            self.bytes -= len;
            self.log_start = self.log_start.max(next);
            dropped = true;
        }
        dropped
    }

    /// Moves the log start offset to `offset` (DeleteRecords), dropping whole batches below
    /// it. The caller checked `log_start <= offset <= high_watermark`.
    pub fn delete_records(&mut self, offset: i64) {
        if offset <= self.log_start {
            return;
        }
        self.log_start = offset;
        while let Some(front) = self.batches.front() {
            if front.last_offset >= offset {
                break;
            }
            self.bytes -= front.data.len() as u64;
            self.batches.pop_front();
        }
    }

    /// Records that follower `broker` copied the leader's log up to `leo`.
    pub fn set_follower_leo(&mut self, broker: i32, leo: i64) {
        if broker == self.leader {
            return;
        }
        let leo = leo.min(self.log_end);
        let entry = self.follower_leo.entry(broker).or_insert(0);
        *entry = (*entry).max(leo);
    }

    /// Recomputes the ISR membership of caught-up live followers and the high watermark
    /// (the smallest log end offset over the ISR). Returns whether the high watermark moved.
    pub fn update_isr_and_hw(&mut self, alive: &dyn Fn(i32) -> bool) -> bool {
        if self.leader < 0 {
            return false;
        }
        for &r in &self.replicas {
            if r != self.leader
                && alive(r)
                && !self.isr.contains(&r)
                && self.follower_leo.get(&r) == Some(&self.log_end)
            {
                self.isr.push(r);
            }
        }
        let hw = self
            .isr
            .iter()
            .filter_map(|&r| self.replica_leo(r))
            .min()
            .unwrap_or(self.log_end)
            .max(self.log_start);
        let old = self.high_watermark;
        self.high_watermark = hw.max(old).min(self.log_end);
        let stable = self.high_watermark;
        self.unstable_txns.retain(|&(_, marker)| marker >= stable);
        self.high_watermark != old
    }

    /// Removes `broker` from the ISR (it crashed).
    pub fn remove_from_isr(&mut self, broker: i32) {
        self.isr.retain(|&r| r != broker);
    }

    /// Makes `new_leader` (a replica, or -1 for none) the leader in a new epoch. The log is
    /// truncated to what the new leader had copied; the old leader becomes a follower with
    /// its log end offset clamped to the truncation point.
    pub fn change_leader(&mut self, new_leader: i32) {
        let old = self.leader;
        if old >= 0 {
            self.follower_leo.insert(old, self.log_end);
        }
        self.leader = new_leader;
        self.leader_epoch += 1;
        if new_leader < 0 {
            return;
        }
        let leo = self
            .follower_leo
            .remove(&new_leader)
            .unwrap_or(self.log_end);
        if leo < self.log_end {
            self.truncate_to(leo);
        }
        if !self.isr.contains(&new_leader) {
            self.isr.insert(0, new_leader);
        }
        self.epochs.push((self.leader_epoch, self.log_end));
    }

    /// Drops every batch at or above `offset` (batch boundaries only).
    fn truncate_to(&mut self, offset: i64) {
        let mut touched = Vec::new();
        while let Some(back) = self.batches.back() {
            if back.base_offset < offset {
                break;
            }
            if back.producer_id >= 0 {
                touched.push(back.producer_id);
            }
            self.bytes -= back.data.len() as u64;
            self.batches.pop_back();
        }
        self.log_end = self
            .batches
            .back()
            .map_or(self.log_start.max(offset.min(self.log_end)), |b| {
                b.last_offset + 1
            });
        self.high_watermark = self.high_watermark.min(self.log_end);
        for leo in self.follower_leo.values_mut() {
            *leo = (*leo).min(self.log_end);
        }
        self.epochs.retain(|&(_, start)| start <= offset);
        self.truncate_txns();
        touched.sort_unstable();
        touched.dedup();
        for pid in touched {
            self.rebuild_producer(pid);
        }
    }

    /// Transaction state after a truncation: transactions whose marker was cut off are open
    /// again (the coordinator writes the marker anew), those whose data was cut off are gone.
    fn truncate_txns(&mut self) {
        let end = self.log_end;
        self.aborted.retain(|a| a.last_offset < end);
        let cut: Vec<(i64, i64)> = self
            .unstable_txns
            .iter()
            .copied()
            .filter(|&(_, marker)| marker >= end)
            .collect();
        self.unstable_txns.retain(|&(_, marker)| marker < end);
        for (first, _) in cut.into_iter().filter(|&(first, _)| first < end) {
            if let Some(pid) = self
                .batches
                .iter()
                .find(|b| {
                    b.base_offset == first || (b.base_offset <= first && first <= b.last_offset)
                })
                .map(|b| b.producer_id)
            {
                self.open_txns.entry(pid).or_insert(first);
            }
        }
        self.open_txns.retain(|_, first| *first < end);
    }

    /// Rebuilds a producer's sequence state from the batches still in the log.
    fn rebuild_producer(&mut self, pid: i64) {
        let keep = self.producers.get(&pid).map(|s| s.epoch);
        self.producers.remove(&pid);
        let batches: Vec<StoredBatch> = self
            .batches
            .iter()
            .filter(|b| b.producer_id == pid)
            .cloned()
            .collect();
        for b in &batches {
            self.record_producer(b);
        }
        if let (Some(epoch), None) = (keep, self.producers.get(&pid)) {
            // Keep fencing older epochs even with no batch left.
            self.producers.insert(
                pid,
                ProducerState {
                    epoch,
                    recent: VecDeque::new(),
                },
            );
        }
    }

    /// The end offset of leader epoch `epoch`: `(epoch, end offset)` as OffsetForLeaderEpoch
    /// answers it (the largest epoch not above the one asked for, and where the next epoch
    /// starts; `(-1, -1)` if the epoch predates the log).
    pub fn epoch_end_offset(&self, epoch: i32) -> (i32, i64) {
        let Some(pos) = self.epochs.iter().rposition(|&(e, _)| e <= epoch) else {
            return (-1, -1);
        };
        let found = self.epochs[pos].0;
        let end = self
            .epochs
            .get(pos + 1)
            .map_or(self.log_end, |&(_, start)| start);
        (found, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafkit_core::compression::Compression;
    use kafkit_core::records::RecordBatchBuilder;

    fn batch(pid: i64, epoch: i16, seq: i32, n: usize) -> (Vec<u8>, BatchHeader) {
        let mut b = RecordBatchBuilder::new(Compression::None).producer(pid, epoch, seq);
        for i in 0..n {
            b.append(1000 + i as i64, None, Some(b"v"), &[]).unwrap();
        }
        let data = b.finish().unwrap().to_vec();
        let h = BatchHeader::parse(&data).unwrap();
        (data, h)
    }

    #[test]
    fn offsets_and_sequences() {
        let mut log = PartitionLog::new(0, vec![0]);
        let (d, h) = batch(7, 0, 0, 3);
        assert_eq!(log.check_sequence(&h), Ok(SequenceCheck::Append));
        assert_eq!(log.append(d, &h, None), 0);
        assert_eq!(log.log_end_offset(), 3);
        assert_eq!(log.check_sequence(&h), Ok(SequenceCheck::Duplicate(0)));
        let (_, gap) = batch(7, 0, 5, 1);
        assert_eq!(
            log.check_sequence(&gap),
            Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        let (d, next) = batch(7, 0, 3, 1);
        assert_eq!(log.check_sequence(&next), Ok(SequenceCheck::Append));
        assert_eq!(log.append(d, &next, None), 3);
        let (_, old) = batch(7, -1, 4, 1);
        assert_eq!(
            log.check_sequence(&old),
            Err(ErrorCode::INVALID_PRODUCER_EPOCH)
        );
        let (_, unknown) = batch(8, 0, 4, 1);
        assert_eq!(
            log.check_sequence(&unknown),
            Err(ErrorCode::UNKNOWN_PRODUCER_ID)
        );
    }

    #[test]
    fn leader_change_truncates_unreplicated_data() {
        let mut log = PartitionLog::new(0, vec![0, 1]);
        let (d, h) = batch(-1, -1, -1, 2);
        log.append(d.clone(), &h, None);
        log.set_follower_leo(1, 2);
        log.update_isr_and_hw(&|_| true);
        assert_eq!(log.high_watermark(), 2);
        log.append(d, &h, None);
        assert_eq!(log.log_end_offset(), 4);
        log.change_leader(1);
        assert_eq!(log.log_end_offset(), 2);
        assert_eq!(log.leader_epoch, 1);
        assert_eq!(log.epoch_end_offset(0), (0, 2));
        assert_eq!(log.epoch_end_offset(1), (1, 2));
    }

    fn txn_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> (Vec<u8>, BatchHeader) {
        let mut b = RecordBatchBuilder::new(Compression::None)
            .producer(pid, epoch, seq)
            .transactional(true);
        for i in 0..n {
            b.append(1000 + i as i64, None, Some(b"v"), &[]).unwrap();
        }
        let data = b.finish().unwrap().to_vec();
        let h = BatchHeader::parse(&data).unwrap();
        (data, h)
    }

    #[test]
    fn open_transactions_hold_the_last_stable_offset_back() {
        let mut log = PartitionLog::new(0, vec![0, 1]);
        let all = |_: i32| true;
        let (d, h) = batch(-1, -1, -1, 2);
        log.append(d, &h, None);
        let (d, h) = txn_batch(7, 0, 0, 3);
        log.append(d, &h, None);
        log.set_follower_leo(1, 5);
        log.update_isr_and_hw(&all);
        assert_eq!((log.high_watermark(), log.last_stable_offset()), (5, 2));
        assert!(log.has_open_txn(7));
        // The ABORT marker closes it, but only its replication makes it stable.
        let marker = log.append_marker(7, 0, false, 3, 2000).unwrap();
        assert_eq!(marker, 5);
        assert!(log.is_marker_at(5, 7) && !log.is_marker_at(5, 8));
        assert_eq!(log.last_stable_offset(), 2);
        log.set_follower_leo(1, 6);
        log.update_isr_and_hw(&all);
        assert_eq!(log.last_stable_offset(), 6);
        let aborted: Vec<_> = log.aborted_between(0, 6).copied().collect();
        assert_eq!(
            aborted,
            vec![AbortedTxn {
                producer_id: 7,
                first_offset: 2,
                last_offset: 5
            }]
        );
        assert_eq!(log.aborted_between(6, 10).count(), 0);
        assert_eq!(log.aborted_between(0, 2).count(), 0);
    }

    #[test]
    fn a_truncated_marker_reopens_its_transaction() {
        let mut log = PartitionLog::new(0, vec![0, 1]);
        let (d, h) = txn_batch(7, 0, 0, 2);
        log.append(d, &h, None);
        log.set_follower_leo(1, 2);
        log.update_isr_and_hw(&|_| true);
        log.append_marker(7, 0, false, 0, 2000).unwrap();
        assert!(!log.has_open_txn(7));
        // Broker 1 never copied the marker: as leader it has the transaction open again and
        // no aborted entry, so the coordinator writes the marker anew.
        log.change_leader(1);
        assert_eq!(log.log_end_offset(), 2);
        assert!(log.has_open_txn(7));
        assert_eq!(log.aborted_between(0, 10).count(), 0);
        assert_eq!(log.last_stable_offset(), 0);
    }
}
