//! The transactional producer's state (Java's `TransactionManager` in its transactional
//! role, KIP-98 and KIP-447): the transaction's state machine, the partitions added to the
//! current transaction, the one coordinator request in flight, and how broker errors are
//! classified. The requests themselves are built and answered in `core/txn.rs`, which owns
//! the network client; this module decides.
//!
//! States, as Java names them: `Uninitialized` until
//! [`ProducerCore::init_transactions`](crate::producer::ProducerCore::init_transactions)
//! starts `Initializing` (FindCoordinator, then InitProducerId with the transactional id,
//! which fences any earlier producer with the same id and aborts what it left open);
//! `Ready` between transactions; `InTransaction` after `begin_transaction`; `Committing`
//! and `Aborting` while a transaction ends; `AbortableError` after an error that only this
//! transaction suffers (it must be aborted); `FatalError` after an error that ends the
//! producer (fenced by a newer instance, not authorized).
//!
//! Two transaction protocols, chosen at each `begin_transaction` as Java does:
//! - v1 (KIP-98): each partition is registered with AddPartitionsToTxn before its first
//!   batch goes out, offsets with AddOffsetsToTxn before their TxnOffsetCommit, and one
//!   epoch serves every transaction until an error needs a bump (KIP-360, after an abort).
//!   Requests are capped at the versions before KIP-890 part 2 (Produce v11, EndTxn v4,
//!   TxnOffsetCommit v4).
//! - v2 (KIP-890 part 2), when the brokers report the finalized feature
//!   `transaction.version` at level 2 or more and offer Produce v12 and EndTxn v5: a Produce
//!   v12 registers its partitions and a TxnOffsetCommit v5 its group implicitly, so neither
//!   AddPartitionsToTxn nor AddOffsetsToTxn is sent; every EndTxn v5 bumps the epoch and
//!   returns the producer id and epoch to use next (a new producer id once the epoch is
//!   exhausted), so an abort needs no InitProducerId to re-sequence.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use crate::consumer::{GroupMetadata, OffsetAndMetadata, TopicPartition};
use crate::network::RequestId;
use crate::protocol::ErrorCode;
use crate::OpId;

use super::error::ProduceError;

type Tp = (Arc<str>, i32);

/// Where a transactional producer stands (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    /// `init_transactions` was not called yet.
    Uninitialized,
    /// `init_transactions` is in progress.
    Initializing,
    /// Initialized, no transaction open.
    Ready,
    /// A transaction is open: records and offsets may be added.
    InTransaction,
    /// `commit_transaction` is in progress.
    Committing,
    /// `abort_transaction` is in progress.
    Aborting,
    /// The transaction hit an error: it can only be aborted.
    AbortableError,
    /// The producer hit an error it cannot recover from; only closing is left.
    FatalError,
}

impl std::fmt::Display for TxnState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TxnState::Uninitialized => "UNINITIALIZED (init_transactions was not called)",
            TxnState::Initializing => "INITIALIZING",
            TxnState::Ready => "READY (no transaction open: call begin_transaction)",
            TxnState::InTransaction => "IN_TRANSACTION",
            TxnState::Committing => "COMMITTING_TRANSACTION",
            TxnState::Aborting => "ABORTING_TRANSACTION",
            TxnState::AbortableError => "ABORTABLE_ERROR (the transaction must be aborted)",
            TxnState::FatalError => "FATAL_ERROR",
        })
    }
}

/// The application call a transactional producer is working on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnCall {
    Init,
    SendOffsets,
    Commit,
    Abort,
}

impl TxnCall {
    pub(crate) fn name(self) -> &'static str {
        match self {
            TxnCall::Init => "init_transactions",
            TxnCall::SendOffsets => "send_offsets_to_transaction",
            TxnCall::Commit => "commit_transaction",
            TxnCall::Abort => "abort_transaction",
        }
    }
}

/// The next coordinator request of the call in progress.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// InitProducerId with the transactional id (a bump when the producer has an id).
    InitProducerId,
    /// AddOffsetsToTxn for the group, then TxnOffsetCommit.
    AddOffsets,
    /// TxnOffsetCommit to the group coordinator.
    CommitOffsets,
    /// EndTxn, once every record of the transaction completed.
    EndTxn { commit: bool },
}

/// Offsets on their way into the transaction.
#[derive(Debug, Clone)]
pub(crate) struct PendingOffsets {
    pub(crate) offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    pub(crate) group: GroupMetadata,
}

/// What the transactional producer does with a broker's error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// Send the same request again after `retry_backoff_ms`.
    Retry,
    /// Look the coordinator up again, then retry.
    NewCoordinator,
    /// Only this transaction fails: it must be aborted.
    Abortable,
    /// The producer cannot continue.
    Fatal,
}

/// Classifies an error code of a transactional coordinator request, as Java does.
pub(crate) fn classify(code: ErrorCode) -> ErrorClass {
    if code == ErrorCode::NOT_COORDINATOR || code == ErrorCode::COORDINATOR_NOT_AVAILABLE {
        ErrorClass::NewCoordinator
    } else if code == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
        || code == ErrorCode::CONCURRENT_TRANSACTIONS
        || code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        || code == ErrorCode::REQUEST_TIMED_OUT
        || code == ErrorCode::NETWORK_EXCEPTION
    {
        ErrorClass::Retry
    } else if code == ErrorCode::PRODUCER_FENCED
        || code == ErrorCode::INVALID_PRODUCER_EPOCH
        || code == ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        || code == ErrorCode::CLUSTER_AUTHORIZATION_FAILED
        || code == ErrorCode::INVALID_TXN_STATE
        || code == ErrorCode::INVALID_TRANSACTION_TIMEOUT
        || code == ErrorCode::UNSUPPORTED_VERSION
        || code == ErrorCode::UNSUPPORTED_FOR_MESSAGE_FORMAT
    {
        ErrorClass::Fatal
    } else if code == ErrorCode::TOPIC_AUTHORIZATION_FAILED
        || code == ErrorCode::GROUP_AUTHORIZATION_FAILED
        || code == ErrorCode::UNKNOWN_PRODUCER_ID
        || code == ErrorCode::INVALID_PRODUCER_ID_MAPPING
        || code == ErrorCode::UNKNOWN_MEMBER_ID
        || code == ErrorCode::ILLEGAL_GENERATION
        || code == ErrorCode::FENCED_INSTANCE_ID
        || code == ErrorCode::TRANSACTION_ABORTABLE
    {
        ErrorClass::Abortable
    } else if code.is_retriable() {
        ErrorClass::Retry
    } else {
        ErrorClass::Fatal
    }
}

/// The transactional state of a producer (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct TransactionManager {
    pub(crate) id: String,
    pub(crate) timeout_ms: i32,
    pub(crate) state: TxnState,
    /// The abortable error that ended the current transaction, if any.
    pub(crate) error: Option<ProduceError>,
    /// The application call in progress.
    pub(crate) call: Option<TxnCall>,
    /// The op to answer when it ends (`None` once answered with a timeout: a repeated call
    /// then joins it, as in Java).
    pub(crate) call_op: Option<OpId>,
    /// When the op is answered with a timeout (`max_block_ms`) if the call is not done.
    pub(crate) call_deadline: Option<Instant>,
    /// The coordinator request the call needs next (sent when nothing else is in flight).
    pub(crate) step: Option<Step>,
    /// Partitions the coordinator acknowledged in the current transaction.
    pub(crate) in_txn: BTreeSet<Tp>,
    /// Partitions that got records and still need AddPartitionsToTxn.
    pub(crate) new_partitions: BTreeSet<Tp>,
    /// Partitions in the AddPartitionsToTxn in flight.
    pub(crate) adding: BTreeSet<Tp>,
    /// Whether the coordinator knows of this transaction (a partition or offsets were
    /// added): without it, ending the transaction needs no EndTxn.
    pub(crate) started: bool,
    /// The coordinator request in flight and what it was.
    pub(crate) request: Option<(RequestId, Step)>,
    /// The AddPartitionsToTxn in flight.
    pub(crate) add_request: Option<RequestId>,
    /// Not before this (retry backoff of coordinator requests).
    pub(crate) retry_at: Option<Instant>,
    pub(crate) offsets: Option<PendingOffsets>,
    /// A record of the transaction was lost with its sequence unresolved: after the abort,
    /// an InitProducerId bumps the epoch and every partition restarts at sequence 0 (under
    /// v2 the abort's EndTxn bumps it).
    pub(crate) bump_after_abort: bool,
    /// The current (or last) transaction speaks protocol v2 (see the [module docs](self)).
    pub(crate) v2: bool,
}

impl TransactionManager {
    pub(crate) fn new(id: String, timeout_ms: u32) -> Self {
        TransactionManager {
            id,
            timeout_ms: i32::try_from(timeout_ms).unwrap_or(i32::MAX),
            state: TxnState::Uninitialized,
            error: None,
            call: None,
            call_op: None,
            call_deadline: None,
            step: None,
            in_txn: BTreeSet::new(),
            new_partitions: BTreeSet::new(),
            adding: BTreeSet::new(),
            started: false,
            request: None,
            add_request: None,
            retry_at: None,
            offsets: None,
            bump_after_abort: false,
            v2: false,
        }
    }

    fn wrong_state(&self, call: &'static str) -> ProduceError {
        ProduceError::TxnState {
            call,
            state: self.state,
        }
    }

    /// Checks that `call` may start now; `Ok(true)`: the same call is already in progress
    /// (after an earlier attempt's op was answered with a timeout) and this op joins it.
    pub(crate) fn check_call(&self, call: TxnCall) -> Result<bool, ProduceError> {
        if let Some(pending) = self.call {
            if pending == call {
                return Ok(true);
            }
            return Err(ProduceError::TxnPending {
                call: call.name(),
                pending: pending.name(),
            });
        }
        let allowed = match call {
            TxnCall::Init => self.state == TxnState::Uninitialized,
            TxnCall::SendOffsets | TxnCall::Commit => self.state == TxnState::InTransaction,
            TxnCall::Abort => matches!(
                self.state,
                TxnState::InTransaction | TxnState::AbortableError
            ),
        };
        if allowed {
            return Ok(false);
        }
        if self.state == TxnState::AbortableError {
            if let Some(e) = &self.error {
                return Err(e.clone());
            }
        }
        Err(self.wrong_state(call.name()))
    }

    /// `begin_transaction`: `Ready` to `InTransaction`, under protocol v2 if `v2`.
    pub(crate) fn begin(&mut self, v2: bool) -> Result<(), ProduceError> {
        if let Some(pending) = self.call {
            return Err(ProduceError::TxnPending {
                call: "begin_transaction",
                pending: pending.name(),
            });
        }
        if self.state != TxnState::Ready {
            return Err(self.wrong_state("begin_transaction"));
        }
        self.state = TxnState::InTransaction;
        self.v2 = v2;
        Ok(())
    }

    /// Why a record cannot be sent now, if it cannot (records belong to an open
    /// transaction).
    pub(crate) fn send_refusal(&self) -> Option<ProduceError> {
        match self.state {
            TxnState::InTransaction => None,
            TxnState::AbortableError => Some(
                self.error
                    .clone()
                    .unwrap_or_else(|| self.wrong_state("send")),
            ),
            _ => Some(self.wrong_state("send")),
        }
    }

    /// A record for `tp` was accepted: the partition joins the transaction before its
    /// batches may go out.
    #[inline]
    pub(crate) fn add_partition(&mut self, topic: &Arc<str>, partition: i32) {
        let known = |set: &BTreeSet<Tp>| {
            set.range((topic.clone(), partition)..)
                .next()
                .is_some_and(|(t, p)| *p == partition && t == topic)
        };
        if known(&self.in_txn) || known(&self.adding) || known(&self.new_partitions) {
            return;
        }
        if self.v2 {
            // Its first Produce v12 registers it; the coordinator hears of the transaction
            // then, so it must end with an EndTxn (Java's `transactionStarted`).
            self.in_txn.insert((topic.clone(), partition));
            self.started = true;
        } else {
            self.new_partitions.insert((topic.clone(), partition));
        }
    }

    /// The highest Produce version for this transaction's records: v12 registers partitions
    /// implicitly (v2), so v1 stops at v11.
    pub(crate) fn produce_max_version(&self) -> i16 {
        if self.v2 {
            12
        } else {
            11
        }
    }

    /// The transaction hit an abortable error (kept if one is there already). The call in
    /// progress fails with it, except an abort, which is what it asks for.
    pub(crate) fn set_abortable(&mut self, e: ProduceError) -> Option<(OpId, ProduceError)> {
        if matches!(
            self.state,
            TxnState::FatalError | TxnState::Aborting | TxnState::Uninitialized
        ) {
            return None;
        }
        if self.state == TxnState::Initializing || self.state == TxnState::Ready {
            // No transaction to abort: nothing in flight belongs to one.
            return None;
        }
        let e = self.error.get_or_insert(e).clone();
        self.state = TxnState::AbortableError;
        self.step = None;
        self.offsets = None;
        self.call = None;
        self.call_deadline = None;
        self.call_op.take().map(|op| (op, e))
    }

    /// The producer failed for good; returns the call in progress, to fail it.
    pub(crate) fn set_fatal(&mut self) -> Option<OpId> {
        self.state = TxnState::FatalError;
        self.step = None;
        self.offsets = None;
        self.new_partitions.clear();
        self.call = None;
        self.call_deadline = None;
        self.call_op.take()
    }

    /// Starts `call` (checked with [`Self::check_call`]) to be answered to `op`.
    pub(crate) fn start_call(&mut self, call: TxnCall, op: OpId, deadline: Instant) {
        self.call = Some(call);
        self.call_op = Some(op);
        self.call_deadline = Some(deadline);
    }

    /// The call in progress is done: its op, if not answered yet.
    pub(crate) fn finish_call(&mut self) -> Option<OpId> {
        self.call = None;
        self.call_deadline = None;
        self.call_op.take()
    }

    /// The transaction ended (committed or aborted): back to `Ready`.
    pub(crate) fn end(&mut self) {
        self.state = TxnState::Ready;
        self.error = None;
        self.in_txn.clear();
        self.new_partitions.clear();
        self.adding.clear();
        self.started = false;
        self.step = None;
        self.offsets = None;
    }

    /// Whether a coordinator request may go out now.
    pub(crate) fn may_request(&self, now: Instant) -> bool {
        self.request.is_none()
            && self.add_request.is_none()
            && self.retry_at.is_none_or(|t| now >= t)
    }

    /// Whether the transaction is ending (every queued batch should go out now).
    pub(crate) fn is_completing(&self) -> bool {
        matches!(self.state, TxnState::Committing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tm(state: TxnState) -> TransactionManager {
        let mut t = TransactionManager::new("tx".into(), 60_000);
        t.state = state;
        t
    }

    #[test]
    fn calls_in_the_wrong_state_are_refused_naming_the_state() {
        let t = tm(TxnState::Uninitialized);
        let e = t.check_call(TxnCall::Commit).unwrap_err();
        assert!(e.to_string().contains("commit_transaction"), "{e}");
        assert!(e.to_string().contains("UNINITIALIZED"), "{e}");
        assert_eq!(t.check_call(TxnCall::Init), Ok(false));
        let mut t = tm(TxnState::Ready);
        assert!(t.check_call(TxnCall::Abort).is_err());
        assert!(t.check_call(TxnCall::Init).is_err());
        assert!(t.send_refusal().is_some());
        t.begin(false).unwrap();
        assert_eq!(t.state, TxnState::InTransaction);
        assert!(t.send_refusal().is_none());
        assert!(t
            .begin(false)
            .unwrap_err()
            .to_string()
            .contains("IN_TRANSACTION"));
        assert_eq!(t.check_call(TxnCall::Commit), Ok(false));
        assert_eq!(t.check_call(TxnCall::Abort), Ok(false));
    }

    #[test]
    fn an_abortable_error_fails_commit_and_allows_only_abort() {
        let mut t = tm(TxnState::InTransaction);
        t.start_call(TxnCall::Commit, OpId(7), Instant::now());
        t.state = TxnState::Committing;
        let failed = t.set_abortable(ProduceError::TxnAbortable("boom".into()));
        assert_eq!(
            failed,
            Some((OpId(7), ProduceError::TxnAbortable("boom".into())))
        );
        assert_eq!(t.state, TxnState::AbortableError);
        assert_eq!(
            t.check_call(TxnCall::Commit),
            Err(ProduceError::TxnAbortable("boom".into()))
        );
        assert_eq!(
            t.send_refusal(),
            Some(ProduceError::TxnAbortable("boom".into()))
        );
        assert_eq!(t.check_call(TxnCall::Abort), Ok(false));
        t.end();
        assert_eq!(t.state, TxnState::Ready);
        assert!(t.error.is_none());
    }

    #[test]
    fn after_a_fatal_error_everything_is_refused() {
        let mut t = tm(TxnState::InTransaction);
        t.start_call(TxnCall::SendOffsets, OpId(3), Instant::now());
        assert_eq!(t.set_fatal(), Some(OpId(3)));
        for call in [
            TxnCall::Init,
            TxnCall::Commit,
            TxnCall::Abort,
            TxnCall::SendOffsets,
        ] {
            assert!(t.check_call(call).is_err());
        }
        assert!(t.begin(false).is_err());
        // A later abortable error does not revive it.
        assert_eq!(
            t.set_abortable(ProduceError::TxnAbortable("x".into())),
            None
        );
        assert_eq!(t.state, TxnState::FatalError);
    }

    #[test]
    fn a_second_call_while_one_is_pending_is_refused_and_a_retry_joins() {
        let mut t = tm(TxnState::Committing);
        t.start_call(TxnCall::Commit, OpId(1), Instant::now());
        assert_eq!(t.check_call(TxnCall::Commit), Ok(true));
        let e = t.check_call(TxnCall::Abort).unwrap_err();
        assert!(e.to_string().contains("commit_transaction"), "{e}");
    }

    #[test]
    fn partitions_are_added_once() {
        let mut t = tm(TxnState::InTransaction);
        let topic: Arc<str> = "t".into();
        t.add_partition(&topic, 0);
        t.add_partition(&topic, 0);
        t.add_partition(&topic, 1);
        assert_eq!(t.new_partitions.len(), 2);
        let tp = (topic.clone(), 0);
        assert!(!t.in_txn.contains(&tp));
        t.new_partitions.remove(&tp);
        t.in_txn.insert(tp.clone());
        t.add_partition(&topic, 0);
        assert!(t.in_txn.contains(&tp));
        assert_eq!(t.new_partitions.len(), 1);
    }

    #[test]
    fn under_v2_partitions_join_at_once_and_start_the_transaction() {
        let mut t = tm(TxnState::Ready);
        t.begin(true).unwrap();
        assert_eq!(t.produce_max_version(), 12);
        let topic: Arc<str> = "t".into();
        assert!(!t.started);
        t.add_partition(&topic, 3);
        assert!(
            t.new_partitions.is_empty(),
            "no AddPartitionsToTxn under v2"
        );
        assert!(t.in_txn.contains(&(topic.clone(), 3)));
        assert!(t.started);
        t.end();
        assert!(t.in_txn.is_empty());
        t.begin(false).unwrap();
        assert_eq!(t.produce_max_version(), 11);
        t.add_partition(&topic, 3);
        assert_eq!(t.new_partitions.len(), 1);
        assert!(!t.started);
    }

    #[test]
    fn errors_are_classified_as_java_does() {
        use ErrorClass::*;
        for (code, class) in [
            (ErrorCode::PRODUCER_FENCED, Fatal),
            (ErrorCode::INVALID_PRODUCER_EPOCH, Fatal),
            (ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED, Fatal),
            (ErrorCode::INVALID_TXN_STATE, Fatal),
            (ErrorCode::CONCURRENT_TRANSACTIONS, Retry),
            (ErrorCode::COORDINATOR_LOAD_IN_PROGRESS, Retry),
            (ErrorCode::NOT_COORDINATOR, NewCoordinator),
            (ErrorCode::COORDINATOR_NOT_AVAILABLE, NewCoordinator),
            (ErrorCode::TOPIC_AUTHORIZATION_FAILED, Abortable),
            (ErrorCode::GROUP_AUTHORIZATION_FAILED, Abortable),
            (ErrorCode::UNKNOWN_MEMBER_ID, Abortable),
            (ErrorCode::ILLEGAL_GENERATION, Abortable),
            (ErrorCode::FENCED_INSTANCE_ID, Abortable),
            (ErrorCode::UNKNOWN_PRODUCER_ID, Abortable),
            // KIP-890: the coordinator's answer when the transaction must be aborted.
            (ErrorCode::TRANSACTION_ABORTABLE, Abortable),
            (ErrorCode::INVALID_PRODUCER_ID_MAPPING, Abortable),
        ] {
            assert_eq!(classify(code), class, "{code}");
        }
    }
}
