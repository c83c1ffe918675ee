//! Fetched data waiting for the application, and the memory it takes.
//!
//! A [`CompletedFetch`] is one partition's part of a Fetch response: the raw record bytes
//! (a zero-copy slice of the response frame), the aborted transactions the broker listed and
//! the position it was fetched at. Batches are decoded (and decompressed) one at a time as the
//! application takes records, so a fetch of large compressed batches never holds more than
//! one of them decompressed.
//!
//! # Memory contract
//! A completed fetch accounts for the raw bytes it has not read yet plus, for the batch being
//! read, its raw size and (if compressed) its decompressed size. [`FetchBuffer::accounted`] is
//! the sum; the fetcher adds what it reserved for fetches in flight (a response is assembled
//! within its reservation) and keeps the total under `fetch_buffer_bytes`. Decompression is
//! capped by the room left under that bound: when a batch does not fit, the unread tail of
//! its fetch (and whatever was queued behind it) is released (to be fetched again later) and,
//! if it still does not fit while the application can drain other data, the fetch waits
//! ("starves") until it has. The budget slows the consumer down and never stops it:
//! - with nothing the application can drain (the rest is paused, reserved, or waiting too),
//!   a batch is decoded whatever its size (capped by `max_decompressed_batch_bytes`, beyond
//!   which it is an error);
//! - a fetch always returns at least one whole batch (KIP-74), so before the consumer has
//!   seen how large batches are, each broker asked may return one batch over its share.
//!
//! So the accounted total exceeds the budget only by batches larger than the budget: at most
//! one decompressed batch, plus one raw batch per broker in the first round.
//!
//! What the budget does not count: records handed to the application. Their keys and values
//! are zero-copy slices of what was fetched — of the response frame for uncompressed
//! batches, of the decompressed batch otherwise — so a record kept alive keeps that whole
//! buffer alive after the consumer stopped counting it. An application that holds records
//! (rather than copying what it keeps) holds up to one response frame (`fetch_max_bytes`) or
//! one decompressed batch per record on top of the budget. Connection read buffers and the
//! allocator's own overhead are not counted either.
//!
//! # Heap bound
//! Put together, the consumer's heap grows over what it was before it started by at most
//!
//! ```text
//! fetch_buffer_bytes
//!   + max(0, largest decompressed batch - fetch_buffer_bytes)   (one batch over the budget)
//!   + what the application holds (per record kept: its response frame or decompressed batch)
//!   + a fixed overhead (runtime, connections and their read buffers, metadata; measured
//!     under 1 MiB with the tokio driver)
//! ```
//!
//! plus, in the first round only, one raw batch per broker asked (see above).
//! `tests/tests/consumer_memory.rs` measures the peak with a counting global allocator while
//! reading 96 MiB of records that decompress from about a hundred kilobytes, with budgets of
//! 8 and 16 MiB (development broker) and 12 MiB (mock cluster), and checks it against this
//! bound.
//!
//! # Transactions
//! With `read_committed`, batches of aborted transactions are dropped using the response's
//! aborted-transaction list (each entry aborts its producer's transactional batches from its
//! first offset on, until that producer's ABORT marker), as Java's fetcher does. Control
//! batches are never returned; they only advance the position.

use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::error::ConsumerError;
use super::record::{ConsumerRecord, ConsumerRecords, TopicPartition};
use crate::codec::DecodeError;
use crate::records::{
    Batch, ControlRecord, DecodeOptions, Headers, Record, RecordIter, RecordSet, TimestampType,
    LOG_OVERHEAD, MAGIC_V0, NO_PARTITION_LEADER_EPOCH,
};

enum BatchIter {
    V2(RecordIter),
    Legacy(std::vec::IntoIter<Record>),
}

struct CurrentBatch {
    iter: BatchIter,
    raw_len: usize,
    decompressed: usize,
    leader_epoch: Option<i32>,
    timestamp_type: Option<TimestampType>,
    next_offset: i64,
}

/// How a [`CompletedFetch::take`] ended.
#[derive(Debug, PartialEq)]
pub(crate) enum TakeEnd {
    /// `max` records were taken; more may follow.
    Full,
    /// Everything was read: drop the fetch.
    Exhausted,
    /// The next batch does not fit in memory until other data is drained.
    Starved,
    /// The data is bad (or too large): the partition stops with this error.
    Failed(ConsumerError),
}

/// What a [`CompletedFetch::take`] saw of memory.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TakeStats {
    /// The largest decompressed batch decoded.
    pub largest: usize,
    /// The largest batch decoded, as it was on the wire.
    pub largest_raw: usize,
    /// The most this fetch accounted for at any point.
    pub peak: u64,
    /// Bytes of the records handed out: keys, values, header keys and values (the
    /// consumer's `bytes-consumed` metrics).
    pub bytes: u64,
}

/// One partition's fetched data.
pub(crate) struct CompletedFetch {
    pub tp: TopicPartition,
    /// The offset this fetch was asked at.
    pub fetch_offset: i64,
    /// The offset after the last whole batch of the data (read from the batch headers when
    /// the fetch arrives, lowered if the tail is released): where a fetch of what follows
    /// starts. Equals `fetch_offset` when the data holds no whole batch past it.
    pub end_offset: i64,
    /// The position after everything handed out or skipped.
    pub next_offset: i64,
    /// The leader epoch of the last record handed out.
    pub last_epoch: Option<i32>,
    data: Bytes,
    batches_read: usize,
    read_committed: bool,
    /// Aborted transactions not reached yet: (first offset, producer id), by first offset.
    aborted: VecDeque<(i64, i64)>,
    aborted_pids: BTreeSet<i64>,
    current: Option<CurrentBatch>,
    pub starved: bool,
}

impl CompletedFetch {
    /// `aborted` is the response's `(producer_id, first_offset)` list (read_committed only).
    pub fn new(
        tp: TopicPartition,
        fetch_offset: i64,
        data: Bytes,
        read_committed: bool,
        aborted: impl IntoIterator<Item = (i64, i64)>,
    ) -> Self {
        let mut aborted: Vec<(i64, i64)> = aborted
            .into_iter()
            .map(|(pid, first)| (first, pid))
            .collect();
        aborted.sort_unstable();
        let end_offset = end_of_batches(&data).max(fetch_offset);
        CompletedFetch {
            tp,
            fetch_offset,
            end_offset,
            next_offset: fetch_offset,
            last_epoch: None,
            data,
            batches_read: 0,
            read_committed,
            aborted: aborted.into(),
            aborted_pids: BTreeSet::new(),
            current: None,
            starved: false,
        }
    }

    /// The largest batch in the unread data, read from the batches' length fields without
    /// decoding them.
    pub fn largest_batch(&self) -> usize {
        let mut largest = 0;
        let mut rest = &self.data[..];
        while let Some(len) = rest.get(8..12) {
            let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            let size = usize::try_from(len)
                .unwrap_or(0)
                .saturating_add(LOG_OVERHEAD);
            largest = largest.max(size.min(rest.len()));
            if size <= LOG_OVERHEAD || size > rest.len() {
                break;
            }
            rest = &rest[size..];
        }
        largest
    }

    /// Bytes this fetch accounts for (see the module docs).
    pub fn accounted(&self) -> u64 {
        let current = self
            .current
            .as_ref()
            .map_or(0, |c| c.raw_len + c.decompressed);
        (self.data.len() + current) as u64
    }

    /// Hands out up to `max` records into `out`. `others` is what everything else holds
    /// (other fetches and reservations), `bound` the memory bound and `opts` carries the hard
    /// cap on one batch. `may_wait` says whether the application can drain other data (a
    /// partition it reads, not paused, not itself waiting): only then does a batch that does
    /// not fit wait for room; otherwise it is decoded anyway, since waiting would never end.
    /// Returns how it ended and what it saw of memory.
    pub fn take(
        &mut self,
        max: usize,
        out: &mut ConsumerRecords,
        others: u64,
        bound: u64,
        may_wait: bool,
        opts: DecodeOptions,
    ) -> (TakeEnd, TakeStats) {
        // The records go into a vector of this partition's own, sized up front, and join
        // `out` with one map lookup: pushed one by one into `out`, each record cost a map
        // search and the vector's growth (reallocating and copying every record so far) was
        // a third of a 100 B consumer's instructions. The offsets the data spans bound the
        // records it holds (compaction leaves gaps, never more records), and so do its bytes
        // unless compressed (a record takes at least 7 bytes): the second bound keeps a
        // corrupt offset from reserving more than the data could hold. An estimate short of
        // the truth (compressed data, a batch being read) only lets the vector grow.
        const MIN_RECORD_BYTES: usize = 7;
        let span = self.end_offset.saturating_sub(self.next_offset).max(0);
        let expected = max
            .min(usize::try_from(span).unwrap_or(usize::MAX))
            .min(self.data.len() / MIN_RECORD_BYTES);
        let mut records = Vec::with_capacity(expected);
        let result = self.take_into(max, &mut records, others, bound, may_wait, opts);
        out.append(&self.tp, records);
        result
    }

    fn take_into(
        &mut self,
        max: usize,
        out: &mut Vec<ConsumerRecord>,
        others: u64,
        bound: u64,
        may_wait: bool,
        opts: DecodeOptions,
    ) -> (TakeEnd, TakeStats) {
        let mut taken = 0;
        let mut stats = TakeStats {
            largest: 0,
            largest_raw: 0,
            peak: self.accounted(),
            bytes: 0,
        };
        while taken < max {
            if self.current.is_none() {
                match self.next_batch(others, bound, may_wait, opts) {
                    Ok(Some(size)) => {
                        stats.largest = stats.largest.max(size);
                        let raw = self.current.as_ref().map_or(0, |c| c.raw_len);
                        stats.largest_raw = stats.largest_raw.max(raw);
                        stats.peak = stats.peak.max(self.accounted());
                    }
                    Ok(None) => return (TakeEnd::Exhausted, stats),
                    Err(end) => return (end, stats),
                }
                continue;
            }
            let cur = self.current.as_mut().expect("checked above");
            // A magic 2 record becomes a `ConsumerRecord` straight from the borrowed record,
            // with no `Record` in between, and is pushed where it is built: each move of the
            // 160-byte record is a `memcpy` call (a fifth of a 100 B consumer's instructions
            // went to building a `Record`, returning it through memory and moving it on).
            match &mut cur.iter {
                BatchIter::V2(it) => match it.next_ref() {
                    None => {}
                    Some(Err(e)) => return (self.corrupt(e), stats),
                    Some(Ok(r)) if r.offset < self.next_offset => continue,
                    Some(Ok(r)) => {
                        self.next_offset = r.offset.saturating_add(1);
                        self.last_epoch = cur.leader_epoch;
                        let headers = r.headers();
                        stats.bytes +=
                            slice_len(r.key) + slice_len(r.value) + headers_bytes(&headers);
                        out.push(ConsumerRecord {
                            topic: self.tp.topic.clone(),
                            partition: self.tp.partition,
                            offset: r.offset,
                            timestamp: r.timestamp,
                            timestamp_type: cur.timestamp_type,
                            serialized_key_size: serialized_size(r.key),
                            serialized_value_size: serialized_size(r.value),
                            key: r.key_bytes(),
                            value: r.value_bytes(),
                            headers,
                            leader_epoch: cur.leader_epoch,
                        });
                        taken += 1;
                        continue;
                    }
                },
                BatchIter::Legacy(it) => match it.next() {
                    None => {}
                    Some(r) if r.offset < self.next_offset => continue,
                    Some(r) => {
                        self.next_offset = r.offset.saturating_add(1);
                        self.last_epoch = cur.leader_epoch;
                        stats.bytes += record_bytes(&r.key, &r.value, &r.headers);
                        out.push(ConsumerRecord::new(
                            self.tp.topic.clone(),
                            self.tp.partition,
                            r.offset,
                            r.timestamp,
                            cur.timestamp_type,
                            r.key,
                            r.value,
                            r.headers,
                            cur.leader_epoch,
                        ));
                        taken += 1;
                        continue;
                    }
                },
            }
            // The batch is read.
            self.next_offset = self.next_offset.max(cur.next_offset);
            self.current = None;
        }
        (TakeEnd::Full, stats)
    }

    fn corrupt(&self, e: DecodeError) -> TakeEnd {
        TakeEnd::Failed(ConsumerError::Corrupt {
            partition: self.tp.clone(),
            offset: self.next_offset,
            detail: e.to_string(),
        })
    }

    /// Size of the first batch of the unread data, from its length field.
    fn first_batch_size(&self) -> Option<usize> {
        let len = self.data.get(8..12)?;
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        usize::try_from(len).ok().map(|l| l + LOG_OVERHEAD)
    }

    /// Decodes the next batch worth returning (skipping control, aborted and already consumed
    /// batches). `Ok(None)`: nothing left. `Ok(Some(n))`: a batch is current, `n` bytes
    /// decompressed.
    fn next_batch(
        &mut self,
        others: u64,
        bound: u64,
        may_wait: bool,
        opts: DecodeOptions,
    ) -> Result<Option<usize>, TakeEnd> {
        loop {
            if self.data.is_empty() {
                return Ok(None);
            }
            let room = |this: &Self| {
                bound
                    .saturating_sub(others)
                    .saturating_sub(this.data.len() as u64)
            };
            let capped = DecodeOptions {
                max_decompressed_size: (room(self) as usize).min(opts.max_decompressed_size),
                ..opts
            };
            let mut decoded = self.decode_one(capped);
            if is_limit(&decoded) && capped.max_decompressed_size < opts.max_decompressed_size {
                // Release what follows this batch (it is fetched again later), then retry with
                // the room that frees.
                if let Some(size) = self.first_batch_size() {
                    if size < self.data.len() {
                        self.data.truncate(size);
                        // Fetches queued after this one no longer follow on from it.
                        self.end_offset = end_of_batches(&self.data).max(self.next_offset);
                        let capped = DecodeOptions {
                            max_decompressed_size: (room(self) as usize)
                                .min(opts.max_decompressed_size),
                            ..opts
                        };
                        decoded = self.decode_one(capped);
                    }
                }
                if is_limit(&decoded) {
                    if may_wait {
                        self.starved = true;
                        return Err(TakeEnd::Starved);
                    }
                    // Nothing the application can drain would make room (the rest is
                    // reserved, paused or waiting too): progress beats the bound.
                    decoded = self.decode_one(opts);
                }
            }
            self.starved = false;
            let (batch, consumed) = match decoded {
                Ok(Some(b)) => b,
                Ok(None) => {
                    if self.batches_read == 0 && !self.data.is_empty() {
                        return Err(TakeEnd::Failed(ConsumerError::RecordTooLarge {
                            partition: self.tp.clone(),
                            offset: self.next_offset,
                        }));
                    }
                    // A batch cut short at the response's byte limit: fetched again next time.
                    self.data = Bytes::new();
                    return Ok(None);
                }
                Err(e) => {
                    self.data = Bytes::new();
                    return Err(self.corrupt(e));
                }
            };
            let _ = self.data.split_to(consumed);
            self.batches_read += 1;
            if batch.next_offset() <= self.next_offset {
                continue;
            }
            if self.skip(&batch) {
                self.next_offset = self.next_offset.max(batch.next_offset());
                continue;
            }
            return Ok(Some(self.start(batch, consumed)));
        }
    }

    fn decode_one(&self, opts: DecodeOptions) -> Result<Option<(Batch, usize)>, DecodeError> {
        let mut set = RecordSet::new(self.data.clone(), opts);
        match set.next() {
            None => Ok(None),
            Some(Err(e)) => Err(e),
            Some(Ok(b)) => Ok(Some((b, self.data.len() - set.remaining()))),
        }
    }

    /// Whether a batch is never returned: control batches, and with read_committed the
    /// batches of aborted transactions.
    fn skip(&mut self, batch: &Batch) -> bool {
        if self.read_committed && batch.producer_id() >= 0 {
            while let Some(&(first, pid)) = self.aborted.front() {
                if first > batch.last_offset() {
                    break;
                }
                self.aborted_pids.insert(pid);
                self.aborted.pop_front();
            }
            let pid = batch.producer_id();
            if let Batch::V2(b) = batch {
                if b.is_control() {
                    if let Ok(Some(ControlRecord::EndTxn { commit: false, .. })) =
                        b.control_record()
                    {
                        self.aborted_pids.remove(&pid);
                    }
                    return true;
                }
            }
            if batch.is_transactional() && self.aborted_pids.contains(&pid) {
                return true;
            }
        }
        batch.is_control()
    }

    fn start(&mut self, batch: Batch, raw_len: usize) -> usize {
        let next_offset = batch.next_offset();
        let current = match batch {
            Batch::V2(b) => {
                let epoch = b.header().partition_leader_epoch;
                let decompressed = if b.compression() == crate::compression::Compression::None {
                    0
                } else {
                    b.records_bytes().len()
                };
                CurrentBatch {
                    timestamp_type: Some(b.timestamp_type()),
                    leader_epoch: (epoch != NO_PARTITION_LEADER_EPOCH).then_some(epoch),
                    iter: BatchIter::V2(b.records()),
                    raw_len,
                    decompressed,
                    next_offset,
                }
            }
            Batch::Legacy(b) => {
                let decompressed = if b.compression() == crate::compression::Compression::None {
                    0
                } else {
                    b.records()
                        .iter()
                        .map(|r| {
                            r.key.as_ref().map_or(0, Bytes::len)
                                + r.value.as_ref().map_or(0, Bytes::len)
                        })
                        .sum()
                };
                let timestamp_type = (b.magic() != MAGIC_V0).then(|| b.timestamp_type());
                CurrentBatch {
                    timestamp_type,
                    leader_epoch: None,
                    iter: BatchIter::Legacy(b.into_records().into_iter()),
                    raw_len,
                    decompressed,
                    next_offset,
                }
            }
        };
        let size = current.decompressed;
        self.current = Some(current);
        size
    }
}

/// The offset after the last whole batch in `data`, from the batch headers alone (0 when
/// there is none): a magic 2 batch ends at base offset + last offset delta + 1, a legacy
/// message (or compressed wrapper, which carries its last inner offset) at its offset + 1.
/// A batch cut short at the end of the data does not count.
fn end_of_batches(data: &[u8]) -> i64 {
    // Magic 2 header: base offset (8), length (4), leader epoch (4), magic (1), CRC (4),
    // attributes (2), then the last offset delta (4).
    const MAGIC_AT: usize = 16;
    const LAST_DELTA_AT: usize = 23;
    let mut end = 0;
    let mut rest = data;
    while let Some(head) = rest.get(..LOG_OVERHEAD) {
        let base = i64::from_be_bytes(head[..8].try_into().expect("8 bytes"));
        let len = i32::from_be_bytes(head[8..12].try_into().expect("4 bytes"));
        let Some(size) = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(LOG_OVERHEAD))
            .filter(|&s| s > LOG_OVERHEAD && s <= rest.len())
        else {
            break;
        };
        let last = match rest.get(MAGIC_AT) {
            Some(&m) if m as i8 >= 2 => match rest.get(LAST_DELTA_AT..LAST_DELTA_AT + 4) {
                Some(d) if size >= LAST_DELTA_AT + 4 => base.saturating_add(i64::from(
                    i32::from_be_bytes(d.try_into().expect("4 bytes")),
                )),
                _ => break,
            },
            Some(_) => base,
            None => break,
        };
        end = end.max(last.saturating_add(1));
        rest = &rest[size..];
    }
    end
}

fn is_limit<T>(r: &Result<T, DecodeError>) -> bool {
    matches!(r, Err(DecodeError::DecompressionLimit { .. }))
}

/// The completed fetches of every partition, in offset order: a partition may have more
/// fetches queued behind the one being read (fetched ahead while it is read), each starting
/// where the one before it ends.
#[derive(Default)]
pub(crate) struct FetchBuffer {
    fetches: BTreeMap<TopicPartition, VecDeque<CompletedFetch>>,
    /// The largest decompressed batch seen: room the fetcher leaves for the next one.
    pub largest_decompressed: u64,
    /// The largest batch seen on the wire: a fetch with less room than this would get one
    /// whole batch anyway (KIP-74) and overshoot, so it waits.
    pub largest_raw: u64,
}

/// What a partition has buffered, for deciding whether to fetch ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Queued {
    /// Completed fetches waiting (the one being read included).
    pub fetches: usize,
    /// Bytes they account for.
    pub bytes: u64,
    /// Where a fetch of what follows starts.
    pub end_offset: i64,
    /// Whether the last fetch holds a whole batch past its fetch offset (if not, fetching
    /// from its end would ask for the same data again).
    pub progressed: bool,
}

impl FetchBuffer {
    /// Queues `fetch` behind its partition's others. The caller checks that it starts at
    /// [`end_offset`](Self::end_offset).
    pub fn insert(&mut self, fetch: CompletedFetch) {
        self.fetches
            .entry(fetch.tp.clone())
            .or_default()
            .push_back(fetch);
    }

    /// Drops everything buffered for `tp`.
    pub fn remove(&mut self, tp: &TopicPartition) {
        self.fetches.remove(tp);
    }

    /// The fetch being read for `tp`.
    pub fn front_mut(&mut self, tp: &TopicPartition) -> Option<&mut CompletedFetch> {
        self.fetches.get_mut(tp).and_then(VecDeque::front_mut)
    }

    /// Drops the fetch being read for `tp` (it is exhausted); the next queued one, if any,
    /// becomes the one being read.
    pub fn pop_front(&mut self, tp: &TopicPartition) {
        if let Some(q) = self.fetches.get_mut(tp) {
            q.pop_front();
            if q.is_empty() {
                self.fetches.remove(tp);
            }
        }
    }

    /// Drops the queued fetches of `tp` that no longer start where the one before them ends
    /// (its tail was released to make room): they are fetched again in order.
    pub fn prune(&mut self, tp: &TopicPartition) {
        if let Some(q) = self.fetches.get_mut(tp) {
            let keep = (1..q.len())
                .find(|&i| q[i].fetch_offset != q[i - 1].end_offset)
                .unwrap_or(q.len());
            q.truncate(keep);
        }
    }

    /// Where the next fetch of `tp` starts if it has data buffered.
    pub fn end_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.fetches.get(tp)?.back().map(|f| f.end_offset)
    }

    /// What `tp` has buffered, if anything.
    pub fn queued(&self, tp: &TopicPartition) -> Option<Queued> {
        let q = self.fetches.get(tp)?;
        let last = q.back()?;
        Some(Queued {
            fetches: q.len(),
            bytes: q.iter().map(CompletedFetch::accounted).sum(),
            end_offset: last.end_offset,
            progressed: last.end_offset > last.fetch_offset,
        })
    }

    pub fn partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.fetches.keys()
    }

    pub fn clear(&mut self) {
        self.fetches.clear();
    }

    /// Partitions whose data can be read now (not waiting for memory).
    pub fn ready_partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.fetches
            .iter()
            .filter(|(_, q)| q.front().is_some_and(|f| !f.starved))
            .map(|(tp, _)| tp)
    }

    /// Bytes held by every completed fetch.
    pub fn accounted(&self) -> u64 {
        self.fetches
            .values()
            .flatten()
            .map(CompletedFetch::accounted)
            .sum()
    }

    /// Whether some fetch waits for memory.
    pub fn starved(&self) -> bool {
        self.fetches.values().flatten().any(|f| f.starved)
    }

    /// Whether a partition other than `except` has data the application can read now
    /// (`readable` says which partitions it reads: not paused, ...), i.e. data whose
    /// draining makes room for a fetch waiting for memory.
    pub fn readable_besides(
        &self,
        except: Option<&TopicPartition>,
        readable: impl Fn(&TopicPartition) -> bool,
    ) -> bool {
        self.fetches.iter().any(|(tp, q)| {
            Some(tp) != except && q.front().is_some_and(|f| !f.starved) && readable(tp)
        })
    }

    /// Ends every wait for memory: called when nothing readable is left to drain, so a
    /// waiting fetch would otherwise wait forever. The next read retries them (one of them
    /// then proceeds over the bound if they still do not fit together).
    pub fn wake_starved(&mut self) {
        for f in self.fetches.values_mut().flatten() {
            f.starved = false;
        }
    }
}

/// Size of a key or value on the wire, -1 for null (what [`ConsumerRecord::new`] computes
/// from the `Bytes`).
#[inline(always)]
fn serialized_size(b: Option<&[u8]>) -> i32 {
    b.map_or(-1, |b| i32::try_from(b.len()).unwrap_or(i32::MAX))
}

/// Length of a key or value, 0 for null.
#[inline(always)]
fn slice_len(b: Option<&[u8]>) -> u64 {
    b.map_or(0, |b| b.len() as u64)
}

/// Payload bytes of a record: key, value, and each header's key and value.
fn record_bytes(key: &Option<Bytes>, value: &Option<Bytes>, headers: &Headers) -> u64 {
    slice_len(key.as_deref()) + slice_len(value.as_deref()) + headers_bytes(headers)
}

/// Bytes of the headers' keys and values.
#[inline(always)]
fn headers_bytes(headers: &Headers) -> u64 {
    // Most records have no headers; reading them parses each one, so skip that when empty.
    if headers.is_empty() {
        0
    } else {
        headers
            .iter()
            .map(|h| h.key.len() as u64 + slice_len(h.value.as_deref()))
            .sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::Compression;
    use crate::records::RecordBatchBuilder;

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    /// A batch at `base` with `n` records, optionally transactional for `pid`.
    fn batch(base: i64, n: usize, pid: Option<i64>, codec: Compression) -> Bytes {
        let mut b = RecordBatchBuilder::new(codec).base_offset(base);
        if let Some(pid) = pid {
            b = b.producer(pid, 0, 0).transactional(true);
        }
        for i in 0..n {
            let v = format!("v{}", base + i as i64);
            b.append(1000 + i as i64, None, Some(v.as_bytes()), &[])
                .unwrap();
        }
        b.finish().unwrap()
    }

    fn marker(offset: i64, pid: i64, commit: bool) -> Bytes {
        let mut b = RecordBatchBuilder::new(Compression::None)
            .base_offset(offset)
            .producer(pid, 0, 0)
            .transactional(true)
            .control(true);
        let rec = if commit {
            ControlRecord::commit(0)
        } else {
            ControlRecord::abort(0)
        };
        b.append_control(1000, &rec).unwrap();
        b.finish().unwrap()
    }

    fn concat(parts: &[Bytes]) -> Bytes {
        let mut v = Vec::new();
        for p in parts {
            v.extend_from_slice(p);
        }
        v.into()
    }

    fn take_all(f: &mut CompletedFetch) -> (Vec<i64>, TakeEnd) {
        let mut out = ConsumerRecords::default();
        let (end, _) = f.take(
            usize::MAX,
            &mut out,
            0,
            u64::MAX,
            false,
            DecodeOptions::default(),
        );
        (out.iter().map(|r| r.offset).collect(), end)
    }

    /// Every field of the records `take` builds, for magic 2 (straight from the borrowed
    /// record) and a legacy message set: null, empty and present keys and values, headers,
    /// the batch's leader epoch and timestamp type, the serialized sizes and the bytes
    /// counted.
    #[test]
    fn taken_records_carry_every_field_of_the_batch() {
        use crate::records::{Header, LegacyMessageSetBuilder};
        let hdrs = [Header::new("h1", &b"x"[..]), Header::null("h2")];
        let mut b = RecordBatchBuilder::new(Compression::None)
            .base_offset(40)
            .partition_leader_epoch(7)
            .timestamp_type(TimestampType::LogAppendTime);
        b.append(1000, None, Some(b"value"), &[]).unwrap();
        b.append(1001, Some(b"key"), None, &[]).unwrap();
        b.append(1002, Some(b""), Some(b""), &hdrs).unwrap();
        let v2 = b.finish().unwrap();
        let mut legacy = LegacyMessageSetBuilder::new(1, Compression::None)
            .unwrap()
            .base_offset(43);
        legacy.append(2000, Some(b"lk"), Some(b"lv")).unwrap();
        let legacy = legacy.finish().unwrap();

        let mut f = CompletedFetch::new(tp(), 40, concat(&[v2, legacy]), false, []);
        let mut out = ConsumerRecords::default();
        let (end, stats) = f.take(10, &mut out, 0, u64::MAX, false, DecodeOptions::default());
        assert_eq!(end, TakeEnd::Exhausted);
        let got: Vec<&ConsumerRecord> = out.iter().collect();
        assert_eq!(got.len(), 4);
        let bytes = |b: &[u8]| Some(Bytes::copy_from_slice(b));
        // Log-append time: every record of the batch carries the batch's max timestamp.
        let epoch = Some(7);
        let log_append = Some(TimestampType::LogAppendTime);
        let want = [
            ConsumerRecord::new(
                tp().topic,
                0,
                40,
                1002,
                log_append,
                None,
                bytes(b"value"),
                Headers::new(),
                epoch,
            ),
            ConsumerRecord::new(
                tp().topic,
                0,
                41,
                1002,
                log_append,
                bytes(b"key"),
                None,
                Headers::new(),
                epoch,
            ),
            ConsumerRecord::new(
                tp().topic,
                0,
                42,
                1002,
                log_append,
                bytes(b""),
                bytes(b""),
                hdrs.to_vec().into(),
                epoch,
            ),
            ConsumerRecord::new(
                tp().topic,
                0,
                43,
                2000,
                Some(TimestampType::CreateTime),
                bytes(b"lk"),
                bytes(b"lv"),
                Headers::new(),
                None,
            ),
        ];
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(*g, w);
            assert_eq!(
                (g.serialized_key_size, g.serialized_value_size),
                (w.serialized_key_size, w.serialized_value_size),
                "offset {}",
                g.offset
            );
        }
        assert_eq!(
            (got[0].serialized_key_size, got[1].serialized_value_size),
            (-1, -1)
        );
        assert_eq!(
            (got[2].serialized_key_size, got[2].serialized_value_size),
            (0, 0)
        );
        assert_eq!(got[2].headers.len(), 2);
        // value 5 + key 3 + header "h1" and "x" + "h2" + legacy 2 + 2.
        assert_eq!(stats.bytes, 5 + 3 + 3 + 2 + 4);
        assert_eq!((f.next_offset, f.last_epoch), (44, None));
    }

    #[test]
    fn the_end_offset_comes_from_whole_batches_only() {
        let whole = concat(&[
            batch(10, 3, None, Compression::None),
            batch(13, 2, None, Compression::Lz4),
        ]);
        assert_eq!(end_of_batches(&whole), 15);
        // The second batch cut short: only the first counts.
        let cut = whole.slice(..whole.len() - 5);
        assert_eq!(end_of_batches(&cut), 13);
        assert_eq!(end_of_batches(&whole[..20]), 0);
        assert_eq!(end_of_batches(&[]), 0);
        // A length that runs past the data, or is negative, ends the scan.
        let mut bad = whole.to_vec();
        bad[8..12].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(end_of_batches(&bad), 0);
        // A fetch asked past the batches it got ends at its own offset.
        let f = CompletedFetch::new(tp(), 20, whole, false, []);
        assert_eq!((f.fetch_offset, f.end_offset), (20, 20));
    }

    #[test]
    fn queued_fetches_are_read_in_order_and_cut_where_they_stop_following_on() {
        let mut buf = FetchBuffer::default();
        let a = CompletedFetch::new(tp(), 0, batch(0, 5, None, Compression::None), false, []);
        let b = CompletedFetch::new(tp(), 5, batch(5, 3, None, Compression::None), false, []);
        let c = CompletedFetch::new(tp(), 9, batch(9, 1, None, Compression::None), false, []);
        let a_bytes = a.accounted();
        buf.insert(a);
        let q = buf.queued(&tp()).unwrap();
        assert_eq!(
            (q.fetches, q.bytes, q.end_offset, q.progressed),
            (1, a_bytes, 5, true)
        );
        buf.insert(b);
        buf.insert(c);
        assert_eq!(buf.end_offset(&tp()), Some(10));
        // c does not start where b ends (8): it goes, b stays.
        buf.prune(&tp());
        assert_eq!(buf.end_offset(&tp()), Some(8));
        assert_eq!(buf.queued(&tp()).unwrap().fetches, 2);
        let (offsets, end) = take_all(buf.front_mut(&tp()).unwrap());
        assert_eq!((offsets, end), (vec![0, 1, 2, 3, 4], TakeEnd::Exhausted));
        buf.pop_front(&tp());
        let (offsets, _) = take_all(buf.front_mut(&tp()).unwrap());
        assert_eq!(offsets, vec![5, 6, 7]);
        buf.pop_front(&tp());
        assert!(buf.queued(&tp()).is_none());
        assert_eq!(buf.partitions().count(), 0);
    }

    #[test]
    fn read_committed_drops_aborted_transactions_and_control_batches() {
        // pid 1 commits 0..2 (marker 2), pid 2 aborts 3..4 (marker 5), plain 6..7,
        // pid 2 again commits 8 (marker 9): the abort only covered its first transaction.
        let data = concat(&[
            batch(0, 2, Some(1), Compression::None),
            marker(2, 1, true),
            batch(3, 2, Some(2), Compression::Lz4),
            marker(5, 2, false),
            batch(6, 2, None, Compression::None),
            batch(8, 1, Some(2), Compression::None),
            marker(9, 2, true),
        ]);
        let mut f = CompletedFetch::new(tp(), 0, data.clone(), true, [(2, 3)]);
        let (offsets, end) = take_all(&mut f);
        assert_eq!(offsets, vec![0, 1, 6, 7, 8]);
        assert_eq!(end, TakeEnd::Exhausted);
        assert_eq!(f.next_offset, 10, "position passes the last marker");

        // read_uncommitted returns the aborted records but never control records.
        let mut f = CompletedFetch::new(tp(), 0, data, false, []);
        let (offsets, _) = take_all(&mut f);
        assert_eq!(offsets, vec![0, 1, 3, 4, 6, 7, 8]);
    }

    #[test]
    fn records_before_the_fetch_offset_are_skipped_and_max_is_respected() {
        let data = concat(&[
            batch(0, 5, None, Compression::Gzip),
            batch(5, 5, None, Compression::None),
        ]);
        let mut f = CompletedFetch::new(tp(), 3, data, false, []);
        let mut out = ConsumerRecords::default();
        let (end, stats) = f.take(4, &mut out, 0, u64::MAX, false, DecodeOptions::default());
        assert_eq!(end, TakeEnd::Full);
        assert!(stats.largest > 0, "the gzip batch was decompressed");
        assert_eq!(
            out.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![3, 4, 5, 6]
        );
        assert_eq!(f.next_offset, 7);
        let (rest, end) = take_all(&mut f);
        assert_eq!(rest, vec![7, 8, 9]);
        assert_eq!(end, TakeEnd::Exhausted);
    }

    #[test]
    fn a_corrupt_batch_fails_after_the_good_ones_and_a_cut_batch_ends_quietly() {
        let good = batch(0, 2, None, Compression::None);
        let mut bad = batch(2, 2, None, Compression::None).to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let mut f = CompletedFetch::new(tp(), 0, concat(&[good.clone(), bad.into()]), false, []);
        let (offsets, end) = take_all(&mut f);
        assert_eq!(offsets, vec![0, 1]);
        assert!(matches!(
            end,
            TakeEnd::Failed(ConsumerError::Corrupt { offset: 2, .. })
        ));

        let next = batch(2, 2, None, Compression::None);
        let cut = concat(&[good, next.slice(..next.len() - 3)]);
        let mut f = CompletedFetch::new(tp(), 0, cut.clone(), false, []);
        assert_eq!(take_all(&mut f), (vec![0, 1], TakeEnd::Exhausted));
        assert_eq!(f.next_offset, 2);

        // Only part of one batch: the batch is larger than the fetch size.
        let mut f = CompletedFetch::new(tp(), 2, next.slice(..next.len() - 3), false, []);
        assert!(matches!(
            take_all(&mut f).1,
            TakeEnd::Failed(ConsumerError::RecordTooLarge { offset: 2, .. })
        ));
    }

    #[test]
    fn memory_accounting_counts_raw_and_one_decompressed_batch() {
        let big = |base| {
            let mut b = RecordBatchBuilder::new(Compression::Zstd).base_offset(base);
            for i in 0..10 {
                b.append(0, None, Some(&[i as u8; 10_000][..]), &[])
                    .unwrap();
            }
            b.finish().unwrap()
        };
        let (b0, b1) = (big(0), big(10));
        let raw = (b0.len() + b1.len()) as u64;
        let mut f = CompletedFetch::new(tp(), 0, concat(&[b0.clone(), b1.clone()]), false, []);
        assert_eq!(f.accounted(), raw);
        assert_eq!(f.largest_batch(), b0.len().max(b1.len()));
        let mut out = ConsumerRecords::default();
        let (end, stats) = f.take(1, &mut out, 0, u64::MAX, false, DecodeOptions::default());
        assert_eq!(end, TakeEnd::Full);
        assert!(stats.largest >= 100_000);
        assert_eq!(f.accounted(), raw + stats.largest as u64);
        assert_eq!(stats.peak, f.accounted());

        // A bound too small for the batch while others hold data: the tail is released and
        // the fetch starves instead of decompressing.
        let mut f = CompletedFetch::new(tp(), 0, concat(&[b0.clone(), big(10)]), false, []);
        let mut out = ConsumerRecords::default();
        let (end, _) = f.take(1, &mut out, 1000, 50_000, true, DecodeOptions::default());
        assert_eq!(end, TakeEnd::Starved);
        assert_eq!(f.accounted(), b0.len() as u64, "tail released");
        assert!(out.is_empty());
        // With nothing the application can drain (here the 1000 bytes are another fetch
        // waiting too), it decodes anyway (progress), and the hard cap still applies.
        let (end, _) = f.take(1, &mut out, 1000, 50_000, false, DecodeOptions::default());
        assert_eq!(end, TakeEnd::Full);
        let mut f = CompletedFetch::new(tp(), 0, b0, false, []);
        let opts = DecodeOptions {
            max_decompressed_size: 1000,
            ..Default::default()
        };
        let (end, _) = f.take(1, &mut out, 0, u64::MAX, false, opts);
        assert!(matches!(
            end,
            TakeEnd::Failed(ConsumerError::Corrupt { .. })
        ));
    }
}
