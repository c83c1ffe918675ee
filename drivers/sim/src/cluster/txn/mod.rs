//! The transaction coordinator (KIP-98, with KIP-447's group metadata checks and KIP-890's
//! partition verification and transaction protocol v2), one file per API:
//! `init.rs` (InitProducerId with a transactional id), `add.rs` (AddPartitionsToTxn,
//! AddOffsetsToTxn), `offsets.rs` (TxnOffsetCommit and the stable-offset check of
//! OffsetFetch), `end.rs` (EndTxn), `admin.rs` (DescribeTransactions, ListTransactions);
//! `markers.rs` completes transactions (markers, offsets, timeouts) and `verify.rs` checks
//! transactional produce.
//!
//! # Model
//! The state of every transactional id is kept by the cluster (what Kafka keeps in
//! `__transaction_state` and reloads on a coordinator move), so whichever broker coordinates
//! an id (see [`Cluster::coordinator_for`](super::Cluster::coordinator_for)) carries on an
//! in-flight transaction: a transaction in `PrepareCommit`/`PrepareAbort` is finished by the
//! next coordinator. The coordinator epoch written in markers is bumped each time an id's
//! `__transaction_state` partition is found served by another broker than before (checked
//! at each coordinator request and marker write, so moves nobody saw between two of those
//! count once).
//!
//! Markers are written straight into the leader's log of each partition of the transaction
//! (Kafka sends WriteTxnMarkers); a partition without a live leader keeps its marker pending,
//! and a marker the leader lost before it was replicated is written again. The transaction
//! completes once every marker is below its partition's high watermark.
//!
//! # Transaction protocol v2 (KIP-890 part 2)
//! Kafka decides it per request version, and so does this model: a Produce v12 adds its
//! partitions to the transaction, a TxnOffsetCommit v5 its group, and an EndTxn v5 bumps the
//! epoch at the end of every transaction and returns it (a new producer id once the epoch is
//! exhausted). Produce v12 and TxnOffsetCommit v5 are offered, and `transaction.version` 2
//! reported in ApiVersions, only with
//! [`ClusterConfig::transaction_version`](super::ClusterConfig::transaction_version) at 2
//! (the codec reads them with the layout of v11 and v4, which they share). A transactional
//! produce below v12 to a partition not yet in the transaction fails verification with
//! `INVALID_TXN_STATE` (part 1), at every level.
//!
//! # Known differences from Kafka
//! - Everything happens at once: InitProducerId, AddPartitionsToTxn and EndTxn are answered
//!   after the state change, and markers are written in the same step unless a partition is
//!   leaderless (then `CONCURRENT_TRANSACTIONS` answers requests until they are written).
//! - No authorization; WriteTxnMarkers is not served (the coordinator writes markers itself).
//! - Transactional offsets are checked against the transaction (producer, epoch, group added
//!   with AddOffsetsToTxn) by the group coordinator directly, where Kafka asks the
//!   transaction coordinator (KIP-890 verification); a stale epoch gets
//!   `INVALID_PRODUCER_EPOCH`.
//! - The transaction timeout is counted from the first AddPartitionsToTxn/AddOffsetsToTxn (or
//!   implicit registration) of the transaction, as Kafka counts from the transaction's start.

mod add;
mod admin;
mod end;
mod init;
mod markers;
mod offsets;
mod verify;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use kafkit_core::protocol::ErrorCode;

use super::group::CommittedOffset;

/// Kafka's `transaction.max.timeout.ms` default (15 minutes).
pub const MAX_TRANSACTION_TIMEOUT_MS: i32 = 900_000;

/// A transactional id's state, named as DescribeTransactions reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TxnState {
    /// No transaction in progress (after InitProducerId).
    Empty,
    /// A transaction is open: partitions or offsets were added.
    Ongoing,
    /// EndTxn(commit) accepted: markers are being written.
    PrepareCommit,
    /// EndTxn(abort), a timeout or a fencing InitProducerId: markers are being written.
    PrepareAbort,
    /// The last transaction committed.
    CompleteCommit,
    /// The last transaction aborted.
    CompleteAbort,
}

impl TxnState {
    /// Kafka's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }

    /// The state named `name`, if any (ListTransactions filters).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            TxnState::Empty,
            TxnState::Ongoing,
            TxnState::PrepareCommit,
            TxnState::PrepareAbort,
            TxnState::CompleteCommit,
            TxnState::CompleteAbort,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// A marker still to be written to (or replicated in) one partition.
#[derive(Debug, Clone, Default)]
pub(super) struct PendingMarker {
    /// Where it was appended, if it was.
    pub(super) offset: Option<i64>,
}

/// One transactional id (Kafka's `TransactionMetadata`).
#[derive(Debug, Clone)]
pub struct TxnMetadata {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id.
    pub producer_id: i64,
    /// The current producer epoch.
    pub producer_epoch: i16,
    /// The epoch before the last bump (for retried requests of transaction protocol v2).
    pub last_producer_epoch: i16,
    /// The producer id before the last bump: the current one, or the one left behind when
    /// its epoch was exhausted (a retried EndTxn v5 still names it).
    pub previous_producer_id: i64,
    /// The transaction timeout the producer asked for.
    pub timeout_ms: i32,
    /// The state.
    pub state: TxnState,
    /// Partitions of the current (or completing) transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// Groups whose offsets the transaction commits (AddOffsetsToTxn).
    pub groups: BTreeSet<String>,
    /// Offsets committed in the transaction (TxnOffsetCommit), applied on commit: group ->
    /// (topic, partition) -> offset.
    pub pending_offsets: BTreeMap<String, BTreeMap<(String, i32), CommittedOffset>>,
    /// Wall time (ms) the transaction started, -1 when none is open.
    pub start_time_ms: i64,
    /// When the open transaction times out.
    pub(super) deadline: Option<Instant>,
    /// Markers of a `Prepare*` state still to be written or replicated.
    pub(super) markers: BTreeMap<(String, i32), PendingMarker>,
    /// The producer id and epoch the markers carry (the transaction's, which after an
    /// exhausted epoch is no longer `producer_id`).
    pub(super) marker_producer_id: i64,
    pub(super) marker_epoch: i16,
}

impl TxnMetadata {
    fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_owned(),
            producer_id,
            producer_epoch: 0,
            last_producer_epoch: -1,
            previous_producer_id: producer_id,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            pending_offsets: BTreeMap::new(),
            start_time_ms: -1,
            deadline: None,
            markers: BTreeMap::new(),
            marker_producer_id: producer_id,
            marker_epoch: -1,
        }
    }

    /// Checks a client request's producer id and epoch. `fenced` is the code for a stale
    /// epoch at the request's version (`PRODUCER_FENCED` from the versions that know it,
    /// `INVALID_PRODUCER_EPOCH` before).
    fn check_producer(
        &self,
        producer_id: i64,
        epoch: i16,
        fenced: ErrorCode,
    ) -> Result<(), ErrorCode> {
        if producer_id != self.producer_id {
            Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING)
        } else if epoch != self.producer_epoch {
            Err(fenced)
        } else {
            Ok(())
        }
    }
}

/// All transactional ids, and the coordinator epochs of their `__transaction_state`
/// partitions.
#[derive(Debug, Default)]
pub struct TxnCoordinator {
    txns: BTreeMap<String, TxnMetadata>,
    /// `__transaction_state` partition -> (broker coordinating it, coordinator epoch).
    epochs: HashMap<i32, (i32, i32)>,
}

impl TxnCoordinator {
    /// The state of `transactional_id`, if known.
    pub fn get(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.txns.get(transactional_id)
    }

    /// Every transactional id's state, by id.
    pub fn all(&self) -> impl Iterator<Item = &TxnMetadata> {
        self.txns.values()
    }

    /// Whether some transaction still has markers to write or replicate.
    fn any_prepare(&self) -> bool {
        self.txns.values().any(|t| t.state.is_prepare())
    }
}

/// What [`Cluster::bump_txn_epoch`](super::Cluster) gives: the producer id and epoch to use
/// from now on, and those the markers of the transaction in progress carry.
#[derive(Debug, Clone, Copy)]
struct TxnBump {
    next: (i64, i16),
    marker: (i64, i16),
}

/// `PRODUCER_FENCED` from `since` on, `INVALID_PRODUCER_EPOCH` at older versions.
fn fenced_code(version: i16, since: i16) -> ErrorCode {
    if version >= since {
        ErrorCode::PRODUCER_FENCED
    } else {
        ErrorCode::INVALID_PRODUCER_EPOCH
    }
}

impl super::Cluster {
    /// The transaction coordinator's state, for inspection.
    pub fn transactions(&self) -> &TxnCoordinator {
        &self.txns
    }

    /// The coordinator epoch of `transactional_id`'s `__transaction_state` partition: bumped
    /// each time the partition moves to another broker (as its leader epoch would).
    fn txn_coordinator_epoch(&mut self, transactional_id: &str) -> i32 {
        let broker = self.coordinator_for(transactional_id);
        let partition = super::find_coordinator::coordinator_partition(transactional_id);
        let entry = self.txns.epochs.entry(partition).or_insert((broker, 0));
        if entry.0 != broker {
            *entry = (broker, entry.1 + 1);
        }
        entry.1
    }

    /// Bumps the epoch of `transactional_id` (fencing its current producer), moving to a new
    /// producer id when the epoch is exhausted. Returns the new producer id and epoch, and
    /// the id and epoch markers of the transaction in progress carry: the same, or after an
    /// exhausted epoch the old id at the last epoch (its records are in the logs), as Kafka
    /// does.
    fn bump_txn_epoch(&mut self, transactional_id: &str) -> Option<TxnBump> {
        let exhausted = self.txns.txns.get(transactional_id)?.producer_epoch >= i16::MAX - 1;
        let fresh = exhausted.then(|| self.allocate_producer_id());
        let t = self.txns.txns.get_mut(transactional_id)?;
        t.previous_producer_id = t.producer_id;
        t.last_producer_epoch = t.producer_epoch;
        let marker = (t.producer_id, t.producer_epoch.saturating_add(1));
        match fresh {
            Some(pid) => {
                t.producer_id = pid;
                t.producer_epoch = 0;
            }
            None => t.producer_epoch += 1,
        }
        Some(TxnBump {
            next: (t.producer_id, t.producer_epoch),
            marker,
        })
    }

    /// Opens a transaction on `t` if none is open (state `Ongoing`, start time, timeout).
    fn open_txn(t: &mut TxnMetadata, now: Instant, now_ms: i64) {
        if t.state != TxnState::Ongoing {
            t.state = TxnState::Ongoing;
            t.partitions.clear();
            t.groups.clear();
            t.pending_offsets.clear();
            t.start_time_ms = now_ms;
            t.deadline = Some(now + std::time::Duration::from_millis(t.timeout_ms.max(0) as u64));
        }
    }
}
