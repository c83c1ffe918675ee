//! [`ConsumerEvent`]: everything the consumer core reports, and the bookkeeping that reports
//! each change of state once.
//!
//! Results of the application's commands carry the [`OpId`] the command was given. The other
//! events say that something the application may be waiting for has happened; they carry no
//! data (the application asks the core, e.g. [`take_records`], [`position`]), and each is
//! reported once per change, not on every input, so an embedder can react to them without
//! polling the core after every input and without a spin when nobody is waiting.
//!
//! [`take_records`]: super::ConsumerCore::take_records
//! [`position`]: super::ConsumerCore::position

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::error::ConsumerError;
use super::group::{CommittedResult, Offsets};
use super::record::{OffsetAndTimestamp, TopicPartition};
use super::subscription_state::SubscriptionState;
use crate::network::{ClusterView, Output};
use crate::OpId;

/// The result of [`ConsumerCore::list_offsets`](super::ConsumerCore::list_offsets).
pub type OffsetsResult =
    Result<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>, ConsumerError>;

/// What the consumer core reports, drained from
/// [`poll_output`](crate::network::ClientCore::poll_output).
#[derive(Debug)]
pub enum ConsumerEvent {
    /// [`take_records`](super::ConsumerCore::take_records) has something to return now:
    /// records, a partition error, a group error, or a rebalance callback to run first.
    /// Reported once when that becomes true after the last `take_records` call (or after the
    /// core was created): an application that found nothing waits for this event, and a
    /// `take_records` call arms it again (so it follows at once when records are left after
    /// a call that returned `max` of them).
    RecordsReady,
    /// At least one assigned partition that had neither a position nor an error (an offset
    /// reset or a committed-offset lookup on its way) got a position or an error, or was
    /// unassigned: a [`position`](super::ConsumerCore::position) that answered `Ok(None)`
    /// may answer otherwise now. Reported once per input in which that happened.
    PositionsChanged,
    /// A rebalance listener callback waits for the application: run
    /// [`pending_rebalance`](super::ConsumerCore::pending_rebalance) and then
    /// [`complete_rebalance`](super::ConsumerCore::complete_rebalance). Reported once per
    /// callback (only with [`set_rebalance_callbacks`] on).
    ///
    /// [`set_rebalance_callbacks`]: super::ConsumerCore::set_rebalance_callbacks
    RebalancePending,
    /// The group went from having steps queued or running (revocation, LeaveGroup, close
    /// steps, a callback) to having none: an [`unsubscribe`](super::ConsumerCore::unsubscribe)
    /// went through, or a rebalance finished its steps (see
    /// [`group_settled`](super::ConsumerCore::group_settled)). Group errors are reported by
    /// `take_records` (and announced by [`RecordsReady`](Self::RecordsReady)).
    GroupSettled,
    /// The consumer is closed: a graceful [`close`](super::ConsumerCore::close) finished (or
    /// ran out of time), or [`abort`](super::ConsumerCore::abort) was called. Reported once,
    /// and nothing after it: from then on `take_records`, `subscribe` and the commands with an
    /// op answer [`ConsumerError::Closed`].
    Closed,
    /// A [`ConsumerCore::list_offsets`](super::ConsumerCore::list_offsets) lookup completed.
    Offsets {
        /// The lookup.
        op: OpId,
        /// Offsets by partition (`None`: no record at or after the timestamp).
        result: OffsetsResult,
    },
    /// A [`ConsumerCore::fetch_metadata`](super::ConsumerCore::fetch_metadata) request
    /// completed.
    Metadata {
        /// The request.
        op: OpId,
        /// What the broker described.
        result: Result<Arc<ClusterView>, ConsumerError>,
    },
    /// A commit completed: one of the application's
    /// ([`commit_sync`](super::ConsumerCore::commit_sync),
    /// [`commit_async`](super::ConsumerCore::commit_async)), or one the core made on its own
    /// (`op` is `None`: the periodic auto-commit, the auto-commit before a revocation or on
    /// close, the commit a rebalance listener asked for). A failure of the core's own commits
    /// is also logged (as Java's auto-commit logs it), and a failed listener commit is
    /// returned by the next `take_records`: an application may ignore events without an op.
    Commit {
        /// The application's commit, `None` for the core's own.
        op: Option<OpId>,
        /// The offsets it committed (or tried to).
        offsets: Offsets,
        /// Whether the coordinator took them.
        result: Result<(), ConsumerError>,
    },
    /// A [`ConsumerCore::committed`](super::ConsumerCore::committed) lookup completed.
    Committed {
        /// The lookup.
        op: OpId,
        /// The committed offset of each partition asked for (`None`: none committed).
        result: CommittedResult,
    },
}

/// What the core reported last, to report each change once.
#[derive(Debug)]
pub(crate) struct Reported {
    /// `RecordsReady` may be reported (not reported since the last `take_records`).
    records_armed: bool,
    /// Assigned partitions with neither a position nor an error, as of the last check.
    unresolved: BTreeSet<TopicPartition>,
    /// The sequence number of the last rebalance callback reported.
    call: Option<u64>,
    /// Whether the group was settled at the last check.
    settled: bool,
}

impl Reported {
    pub fn new() -> Self {
        Reported {
            records_armed: true,
            unresolved: BTreeSet::new(),
            call: None,
            settled: true,
        }
    }

    /// A `take_records` call: the next time it has something, that is news again.
    pub fn arm_records(&mut self) {
        self.records_armed = true;
    }

    /// Reports what changed since the last check. `ready` says whether `take_records` has
    /// something (only asked while that could be news: it walks the buffer).
    pub fn check(
        &mut self,
        subs: &SubscriptionState,
        ready: impl FnOnce() -> bool,
        call: Option<u64>,
        settled: bool,
        out: &mut VecDeque<Output<ConsumerEvent>>,
    ) {
        if let Some(seq) = call.filter(|s| self.call != Some(*s)) {
            self.call = Some(seq);
            out.push_back(Output::Event(ConsumerEvent::RebalancePending));
        }
        if self.records_armed && ready() {
            self.records_armed = false;
            out.push_back(Output::Event(ConsumerEvent::RecordsReady));
        }
        if settled && !self.settled {
            out.push_back(Output::Event(ConsumerEvent::GroupSettled));
        }
        self.settled = settled;
        let unresolved = |tp: &TopicPartition| {
            subs.get(tp)
                .is_ok_and(|s| s.position.is_none() && s.error.is_none())
        };
        let before = self.unresolved.len();
        self.unresolved.retain(|tp| unresolved(tp));
        let resolved = self.unresolved.len() < before;
        // Partitions become unresolved through a new assignment, a seek to the beginning or
        // end, or a reset after OFFSET_OUT_OF_RANGE; a walk over the assignment finds them
        // (the fetch planning walks it on every input as well).
        for (tp, s) in subs.iter() {
            if s.position.is_none() && s.error.is_none() && !self.unresolved.contains(tp) {
                self.unresolved.insert(tp.clone());
            }
        }
        if resolved {
            out.push_back(Output::Event(ConsumerEvent::PositionsChanged));
        }
    }
}
