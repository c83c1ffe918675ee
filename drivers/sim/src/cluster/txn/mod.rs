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
//! Kafka decides it per request version (Produce v12, EndTxn v5, TxnOffsetCommit v5). The
//! codec reads EndTxn up to v5 but Produce only to v11, so here: an EndTxn at v5 bumps the
//! epoch at the end of the transaction and returns it; and while the brokers advertise EndTxn
//! v5, a transactional produce to a partition not yet in the transaction adds it implicitly
//! (as a v2 client expects). With EndTxn capped below v5
//! ([`ClusterConfig::with_api_versions`](super::ClusterConfig::with_api_versions)) such a
//! produce fails verification with `INVALID_TXN_STATE`, as on a v1 broker.
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
    /// The epoch the markers carry.
    pub(super) marker_epoch: i16,
}

impl TxnMetadata {
    fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_owned(),
            producer_id,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            pending_offsets: BTreeMap::new(),
            start_time_ms: -1,
            deadline: None,
            markers: BTreeMap::new(),
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
    /// producer id when the epoch is exhausted. Returns the new producer id and epoch.
    fn bump_txn_epoch(&mut self, transactional_id: &str) -> Option<(i64, i16)> {
        let exhausted = self.txns.txns.get(transactional_id)?.producer_epoch >= i16::MAX - 1;
        let fresh = exhausted.then(|| self.allocate_producer_id());
        let t = self.txns.txns.get_mut(transactional_id)?;
        match fresh {
            Some(pid) => {
                t.producer_id = pid;
                t.last_producer_epoch = -1;
                t.producer_epoch = 0;
            }
            None => {
                t.last_producer_epoch = t.producer_epoch;
                t.producer_epoch += 1;
            }
        }
        Some((t.producer_id, t.producer_epoch))
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
