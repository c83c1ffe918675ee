//! The idempotent producer's state: producer id and epoch, and per-partition sequence
//! numbers (Java's `TransactionManager` in its non-transactional role, KIP-98 and KIP-360).
//!
//! Rules, as Java has them:
//! - A batch gets its base sequence when it is first drained; a retried batch keeps it and
//!   is resent only when it is the partition's lowest outstanding sequence, so order holds
//!   with up to 5 requests in flight.
//! - A partition's sequences belong to one producer id and epoch. After the epoch changes, a
//!   partition starts again at sequence 0 once nothing of the old epoch is outstanding there
//!   (Java's `maybeUpdateProducerIdAndEpoch`).
//! - The epoch is bumped (KIP-360) when the broker lost the producer's state
//!   (UNKNOWN_PRODUCER_ID), when a sequence gap is certain (OUT_OF_ORDER_SEQUENCE_NUMBER for
//!   the partition's lowest outstanding batch), or when a batch that was sent fails for good
//!   (its sequence is then unresolved). The bump is an InitProducerId with the current id and
//!   epoch, sent when no produce request is in flight; brokers before InitProducerId v3
//!   ignore those fields and hand out a new id, which serves the same purpose. Batches of the
//!   partitions that asked for it are then re-sequenced from 0 under the new epoch.
//!
//! Transactions (a later issue) will extend this state rather than replace it: a
//! transactional id, the coordinator, and the partitions added to the current transaction.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::batch::{ProducerBatch, Stamp};
use crate::network::RequestId;
use crate::records::{NO_PRODUCER_EPOCH, NO_PRODUCER_ID};

type Tp = (Arc<str>, i32);

#[derive(Debug)]
struct PartitionSeq {
    producer_id: i64,
    epoch: i16,
    next_sequence: i32,
    /// Base sequences of stamped batches not yet completed, in stamping order.
    outstanding: VecDeque<i32>,
}

/// Where the producer id stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IdState {
    /// No id yet, or a bump is wanted: an InitProducerId is to be sent.
    Needed,
    /// InitProducerId in flight.
    Requested(RequestId),
    /// Id and epoch valid.
    Ready,
}

/// What the drain may do with a partition's first batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DrainDecision {
    /// Send it carrying this stamp.
    Send(Stamp),
    /// Leave it for now.
    Wait,
}

#[derive(Debug)]
pub(crate) struct Idempotence {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) state: IdState,
    /// Not before this (InitProducerId retry backoff).
    pub(crate) retry_at: Option<Instant>,
    partitions: BTreeMap<Tp, PartitionSeq>,
    /// Partitions whose queued batches are re-sequenced under the next epoch.
    to_reset: BTreeSet<Tp>,
}

/// Kafka's sequence arithmetic: wraps to 0 after `i32::MAX`.
fn add_sequence(base: i32, count: usize) -> i32 {
    let count = count as i64;
    ((base as i64 + count) % (i32::MAX as i64 + 1)) as i32
}

impl Idempotence {
    pub(crate) fn new() -> Self {
        Idempotence {
            producer_id: NO_PRODUCER_ID,
            epoch: NO_PRODUCER_EPOCH,
            state: IdState::Needed,
            retry_at: None,
            partitions: BTreeMap::new(),
            to_reset: BTreeSet::new(),
        }
    }

    /// Whether produce requests may be drained now (an id is held and no bump is pending).
    pub(crate) fn can_send(&self) -> bool {
        self.state == IdState::Ready && self.to_reset.is_empty()
    }

    /// Whether an InitProducerId should go out now (the caller checks that no produce
    /// request is in flight when bumping).
    pub(crate) fn wants_init(&self, now: Instant) -> bool {
        let wanted = self.state == IdState::Needed
            || (self.state == IdState::Ready && !self.to_reset.is_empty());
        wanted && self.retry_at.is_none_or(|t| now >= t)
    }

    /// Whether the next InitProducerId is an epoch bump (needs an idle pipeline).
    pub(crate) fn is_bump(&self) -> bool {
        self.producer_id != NO_PRODUCER_ID
    }

    /// Asks for an epoch bump that re-sequences `tp`.
    pub(crate) fn request_bump(&mut self, tp: &Tp) {
        if self.to_reset.insert(tp.clone()) {
            tracing::debug!(topic = %tp.0, partition = tp.1, "epoch bump requested");
        }
    }

    /// A new id or epoch arrived. The caller then takes the partitions to re-sequence with
    /// [`Self::take_resets`]: their queued batches (none is in flight: bumps wait for an idle
    /// pipeline) lose their stamps and get new ones, in queue order, when drained.
    pub(crate) fn on_new_id(&mut self, producer_id: i64, epoch: i16) {
        self.producer_id = producer_id;
        self.epoch = epoch;
        self.state = IdState::Ready;
        self.retry_at = None;
    }

    /// Forgets every partition's sequences (a transactional producer's new epoch: every
    /// partition starts again at 0; nothing is queued or in flight then).
    pub(crate) fn reset_all(&mut self) {
        self.partitions.clear();
        self.to_reset.clear();
    }

    /// Takes the partitions to re-sequence (their entries are reset).
    pub(crate) fn take_resets(&mut self) -> Vec<Tp> {
        let resets: Vec<Tp> = std::mem::take(&mut self.to_reset).into_iter().collect();
        for tp in &resets {
            self.partitions.remove(tp);
        }
        resets
    }

    /// Decides about the first batch of `tp` in a drain.
    pub(crate) fn decide(&mut self, tp: &Tp, batch: &ProducerBatch) -> DrainDecision {
        if !self.can_send() {
            return DrainDecision::Wait;
        }
        let (pid, epoch) = (self.producer_id, self.epoch);
        let entry = self
            .partitions
            .entry(tp.clone())
            .or_insert_with(|| PartitionSeq {
                producer_id: pid,
                epoch,
                next_sequence: 0,
                outstanding: VecDeque::new(),
            });
        if let Some(stamp) = batch.stamp {
            // A retry: only the lowest outstanding sequence goes, so the broker sees them in
            // order.
            return if entry.outstanding.front() == Some(&stamp.base_sequence) {
                DrainDecision::Send(stamp)
            } else {
                DrainDecision::Wait
            };
        }
        if (entry.producer_id, entry.epoch) != (pid, epoch) {
            if !entry.outstanding.is_empty() {
                return DrainDecision::Wait;
            }
            entry.producer_id = pid;
            entry.epoch = epoch;
            entry.next_sequence = 0;
        }
        let stamp = Stamp {
            producer_id: pid,
            epoch,
            base_sequence: entry.next_sequence,
        };
        entry.next_sequence = add_sequence(entry.next_sequence, batch.record_count());
        entry.outstanding.push_back(stamp.base_sequence);
        DrainDecision::Send(stamp)
    }

    /// Whether `stamp` is the lowest outstanding sequence of `tp`.
    pub(crate) fn is_first_outstanding(&self, tp: &Tp, stamp: &Stamp) -> bool {
        self.partitions
            .get(tp)
            .is_some_and(|e| e.outstanding.front() == Some(&stamp.base_sequence))
    }

    /// A stamped batch completed (delivered or failed): its sequence is no longer
    /// outstanding.
    pub(crate) fn on_batch_done(&mut self, tp: &Tp, stamp: &Stamp) {
        if let Some(e) = self.partitions.get_mut(tp) {
            if (e.producer_id, e.epoch) == (stamp.producer_id, stamp.epoch) {
                if let Some(i) = e.outstanding.iter().position(|s| *s == stamp.base_sequence) {
                    e.outstanding.remove(i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::Compression;
    use crate::producer::batch::BatchSettings;
    use std::time::Duration;

    fn batch(records: usize) -> ProducerBatch {
        let mut b = ProducerBatch::new(
            0,
            "t".into(),
            0,
            BatchSettings {
                magic: crate::records::MAGIC_V2,
                transactional: false,
                batch_size: 1 << 20,
                compression: Compression::None,
                level: None,
                delivery_timeout: Duration::from_secs(1),
            },
            Instant::now(),
        );
        for _ in 0..records {
            b.append(0, None, Some(b"v"), &[], 1, None, 0).unwrap();
        }
        b
    }

    #[test]
    fn sequences_advance_and_retries_wait_their_turn() {
        let tp: Tp = ("t".into(), 0);
        let mut idem = Idempotence::new();
        assert_eq!(
            idem.decide(&tp, &batch(1)),
            DrainDecision::Wait,
            "no id yet"
        );
        idem.on_new_id(5, 0);
        let DrainDecision::Send(a) = idem.decide(&tp, &batch(3)) else {
            panic!()
        };
        let DrainDecision::Send(b) = idem.decide(&tp, &batch(2)) else {
            panic!()
        };
        assert_eq!((a.base_sequence, b.base_sequence), (0, 3));
        // b failed retriably while a is outstanding: it waits.
        let mut retry_b = batch(2);
        retry_b.stamp = Some(b);
        assert_eq!(idem.decide(&tp, &retry_b), DrainDecision::Wait);
        idem.on_batch_done(&tp, &a);
        assert_eq!(idem.decide(&tp, &retry_b), DrainDecision::Send(b));
        // A bump re-sequences from 0 under the new epoch once nothing old is outstanding.
        idem.request_bump(&tp);
        assert!(!idem.can_send());
        idem.on_new_id(5, 1);
        assert_eq!(idem.take_resets(), vec![tp.clone()]);
        let DrainDecision::Send(c) = idem.decide(&tp, &batch(1)) else {
            panic!()
        };
        assert_eq!((c.epoch, c.base_sequence), (1, 0));
    }

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(add_sequence(i32::MAX, 1), 0);
        assert_eq!(add_sequence(i32::MAX - 1, 5), 3);
        assert_eq!(add_sequence(10, 5), 15);
    }
}
