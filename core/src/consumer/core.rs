//! [`ConsumerCore`]: the sans-IO consumer. It owns a [`NetworkClient`], the assignment and
//! positions, the fetcher and the buffer of fetched data, and implements [`ClientCore`].
//! Commands take the application's [`OpId`]; results and changes of state leave as
//! [`ConsumerEvent`]s (the `events` module says when each is reported). After every input
//! `pump` sends what is due, drains the network layer and then reports what changed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::buffer::{CompletedFetch, FetchBuffer, Queued, TakeEnd};
use super::error::ConsumerError;
use super::events::{ConsumerEvent, OffsetsResult, Reported};
use super::fetch_session::{FetchSession, PartitionFetch, SessionOutcome};
use super::fetcher::{
    FetchSettings, FetchStats, Fetcher, InFlightFetch, MAX_FETCH_VERSION, MAX_QUEUED_FETCHES,
};
use super::group::member::{GroupCtx, GroupMember, MemberState};
use super::group::subscription::Subscribed;
use super::group::{GroupMetadata, Offsets, RebalanceCall, RebalanceOutcome};
use super::metrics::ConsumerRecorder;
use super::offsets::{self, OffsetLookup};
use super::record::{ConsumerRecords, TopicPartition};
use super::subscription_state::{FetchPosition, SubscriptionState};
use crate::config::{ConsumerConfig, IsolationLevel};
use crate::deadline::Deadline;
use crate::network::{
    ClientCore, CloseReason, ClusterView, ConnId, DriverEnv, NetError, NetEvent, NetOptions,
    NetworkClient, NodeId, Output, RequestId, Response, SetupError, Target,
};
use crate::protocol::{
    ErrorCode, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, RequestBody, UnexpectedResponse,
};
use crate::records::DecodeOptions;

pub use crate::OpId;

mod fetch_path;
mod metrics_path;
mod offset_path;

/// The consumer's state machine: the assignment (the application's, or the group's when
/// subscribed), fetching, positions, offset lookups and, with a `group_id`, the group member.
///
/// Application calls ([`assign`](Self::assign), [`take_records`](Self::take_records),
/// [`seek`](Self::seek), ...) change state and queue output like any input; the driver drains
/// [`poll_output`](ClientCore::poll_output) after them. Commands with a result
/// ([`commit_sync`](Self::commit_sync), [`list_offsets`](Self::list_offsets), ...) take the
/// application's [`OpId`] and report the result in an event carrying it. Nothing here waits
/// or times an application's wait: the core reports changes of state
/// ([`ConsumerEvent::RecordsReady`], [`ConsumerEvent::PositionsChanged`], ...) and the
/// application keeps its own deadlines (a poll with a timeout is a `take_records`, then
/// waiting for `RecordsReady` or the deadline, then another `take_records`).
///
/// With a `group_id`, a group member state machine sits beside the fetcher
/// ([`subscribe`](Self::subscribe), [`commit_sync`](Self::commit_sync), ...; see
/// [`crate::consumer::group`]): it changes the assignment, starts new partitions from their
/// committed offsets and commits consumed positions. Without a subscription the consumer
/// assigns partitions itself, as before, and can still commit when it has a `group_id`.
pub struct ConsumerCore {
    config: ConsumerConfig,
    net: NetworkClient,
    subs: SubscriptionState,
    fetcher: Fetcher,
    buffer: FetchBuffer,
    decode: DecodeOptions,
    read_committed: bool,
    retry_backoff: Duration,
    out: VecDeque<Output<ConsumerEvent>>,
    /// ListOffsets requests of offset resets: the partitions and timestamps each asked for.
    reset_requests: BTreeMap<RequestId, BTreeMap<TopicPartition, i64>>,
    /// The application's offset lookups by the core's own key (ops may repeat).
    lookups: BTreeMap<u64, OffsetLookup>,
    next_lookup: u64,
    lookup_requests: BTreeMap<RequestId, u64>,
    metadata_requests: BTreeMap<RequestId, OpId>,
    /// Where the next `take_records` starts (round robin over partitions).
    cursor: Option<TopicPartition>,
    /// The application waits inside a poll (see [`ConsumerCore::set_poll_waiting`]).
    poll_waiting: bool,
    /// What was reported, so that each change of state is reported once.
    reported: Reported,
    closed: bool,
    /// What the consumer measures (the network layer measures the rest).
    metrics: ConsumerRecorder,
    /// The group member, when `group_id` is set.
    group: Option<Box<GroupMember>>,
}

impl std::fmt::Debug for ConsumerCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerCore")
            .field("assignment", &self.subs.assignment().len())
            .field("buffered", &self.buffered_bytes())
            .finish_non_exhaustive()
    }
}

impl ConsumerCore {
    /// A consumer over a network layer with `net` options (bootstrap, timeouts, TLS, SASL).
    pub fn new(config: ConsumerConfig, mut net: NetOptions) -> Self {
        net.allow_auto_topic_creation = config.allow_auto_create_topics;
        let group = config.group_id.clone().filter(|g| !g.is_empty()).map(|g| {
            let assignors = config
                .partition_assignment_strategy
                .iter()
                .map(|s| super::assignor::built_in(*s))
                .collect();
            let mut member = Box::new(GroupMember::new(&config, g, assignors));
            // The consumer protocol's member id (KIP-1082) comes from the driver's entropy.
            member.set_entropy(net.entropy.clone());
            member
        });
        let decode = DecodeOptions {
            check_crcs: config.check_crcs,
            max_decompressed_size: usize::try_from(config.max_decompressed_batch_bytes)
                .unwrap_or(usize::MAX),
            skip_double_compressed: config.skip_double_compressed_messages,
        };
        ConsumerCore {
            subs: SubscriptionState::new(config.auto_offset_reset),
            fetcher: Fetcher::new(FetchSettings::from_config(&config)),
            buffer: FetchBuffer::default(),
            decode,
            read_committed: config.isolation_level == IsolationLevel::ReadCommitted,
            retry_backoff: Duration::from_millis(config.common.retry_backoff_ms),
            net: NetworkClient::new(net),
            config,
            out: VecDeque::new(),
            reset_requests: BTreeMap::new(),
            lookups: BTreeMap::new(),
            next_lookup: 0,
            lookup_requests: BTreeMap::new(),
            metadata_requests: BTreeMap::new(),
            cursor: None,
            poll_waiting: false,
            reported: Reported::new(),
            closed: false,
            group,
            metrics: ConsumerRecorder::default(),
        }
    }

    /// A consumer configured by `config`, with what the driver provides in `env`.
    pub fn from_config(config: ConsumerConfig, env: &DriverEnv) -> Result<Self, SetupError> {
        let net = NetOptions::from_config(&config.common, env)?;
        Ok(Self::new(config, net))
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// The network layer underneath.
    pub fn network(&mut self) -> &mut NetworkClient {
        &mut self.net
    }

    /// Fetch counters (full and incremental requests, peak memory, ...).
    pub fn stats(&self) -> &FetchStats {
        &self.fetcher.stats
    }

    /// Bytes of fetched data the consumer accounts for now: raw bytes held, decompressed
    /// batches being read, and bytes reserved for fetches in flight.
    pub fn buffered_bytes(&self) -> u64 {
        self.buffer.accounted() + self.fetcher.reserved()
    }

    // ---- application calls -------------------------------------------------------------

    /// Replaces the assignment. Partitions kept keep their positions; new ones start at
    /// `auto_offset_reset` (or fail with [`ConsumerError::NoOffset`] when it is `none`) unless
    /// sought first. An empty set unassigns everything.
    ///
    /// Ignored (with a warning) while subscribed: the group owns the assignment then (Java
    /// throws `IllegalStateException`; the handle returns [`ConsumerError::IllegalState`]).
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>, now: Instant) {
        if self.is_subscribed() {
            tracing::warn!("assign() while subscribed is ignored: unsubscribe first");
            return;
        }
        let set: BTreeSet<TopicPartition> = partitions.into_iter().collect();
        for tp in &set {
            self.net.add_topic_interest(&tp.topic);
        }
        let removed = self.subs.assign(set);
        for tp in &removed {
            self.buffer.remove(tp);
        }
        self.pump(now);
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> BTreeSet<TopicPartition> {
        self.subs.assignment()
    }

    /// Up to `max` fetched records, never waiting. With no records to return, the first
    /// partition error not reported yet is returned instead (once). Taking the last buffered
    /// records of a partition sends its next fetch at once. Each call arms
    /// [`ConsumerEvent::RecordsReady`] again.
    pub fn take_records(
        &mut self,
        max: usize,
        now: Instant,
    ) -> Result<ConsumerRecords, ConsumerError> {
        if self.closed {
            return Err(ConsumerError::Closed);
        }
        let span = crate::network::spans::poll(
            Some(&self.config.common.client_id),
            self.config.group_id.as_deref(),
        );
        let _entered = span.enter();
        self.reported.arm_records();
        if let Some((g, mut ctx)) = self.group_with_ctx(now) {
            // A poll: the member is alive for max_poll_interval_ms, and joins if it must.
            g.poll(&mut ctx, true);
            self.pump(now);
            let g = self.group.as_mut().expect("present");
            if let Some(e) = g.take_error() {
                return Err(e);
            }
            if g.blocks_records() {
                // Java runs listener callbacks before it returns records.
                return Ok(ConsumerRecords::default());
            }
        }
        let mut out = ConsumerRecords::default();
        let mut order: Vec<TopicPartition> = self.buffer.partitions().cloned().collect();
        if let Some(c) = &self.cursor {
            // Start after the partition served last, so one busy partition cannot starve
            // the others.
            let split = order.partition_point(|tp| tp <= c);
            order.rotate_left(split);
        }
        for tp in order {
            self.read_partition(&tp, max, &mut out, now);
        }
        span.record("messaging.batch.message_count", out.count());
        let result = if out.is_empty() {
            match self.take_error() {
                Some(e) => Err(e),
                None => Ok(out),
            }
        } else {
            Ok(out)
        };
        self.pump(now);
        result
    }

    fn take_error(&mut self) -> Option<ConsumerError> {
        for (_, state) in self.subs.iter_mut() {
            if let Some((e, reported)) = &mut state.error {
                if !*reported {
                    *reported = true;
                    return Some(e.clone());
                }
            }
        }
        None
    }

    /// Whether [`take_records`](Self::take_records) has something to return now.
    pub fn has_ready(&self) -> bool {
        // A fetch waiting for memory is not ready: reporting it would wake a waiting poll
        // that then finds nothing, again and again, until other data arrives. It waits only
        // while readable data is held or a fetch is in flight (`pump` ends the wait otherwise).
        let data = self.buffer.ready_partitions().any(|tp| self.readable(tp));
        data || self
            .subs
            .iter()
            .any(|(_, s)| matches!(s.error, Some((_, false))))
            || self.group.as_ref().is_some_and(|g| g.wants_poll())
    }

    /// Tells the core whether the application waits inside a poll: it called
    /// [`take_records`](Self::take_records), found nothing, and waits for
    /// [`ConsumerEvent::RecordsReady`] (or its own deadline) to call it again. While it does,
    /// a group member counts as polling, as during Java's long poll: `max_poll_interval_ms`
    /// does not run out. Set it back to `false` when the wait ends.
    pub fn set_poll_waiting(&mut self, waiting: bool) {
        self.poll_waiting = waiting;
    }

    /// Sets the next offset to read (the leader epoch is unknown). Clears a pending reset
    /// and a partition error, and drops data buffered for the partition.
    pub fn seek(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        now: Instant,
    ) -> Result<(), ConsumerError> {
        self.subs.seek(tp, offset, None)?;
        self.buffer.remove(tp);
        self.pump(now);
        Ok(())
    }

    fn targets(&self, tps: &[TopicPartition]) -> Result<Vec<TopicPartition>, ConsumerError> {
        if tps.is_empty() {
            return Ok(self.subs.assignment().into_iter().collect());
        }
        for tp in tps {
            self.subs.get(tp)?;
        }
        Ok(tps.to_vec())
    }

    fn reset_to(
        &mut self,
        tps: &[TopicPartition],
        timestamp: i64,
        now: Instant,
    ) -> Result<(), ConsumerError> {
        for tp in self.targets(tps)? {
            self.subs.request_reset(&tp, timestamp)?;
            self.buffer.remove(&tp);
        }
        self.pump(now);
        Ok(())
    }

    /// Moves to the earliest offset (lazily, with ListOffsets) of `tps`, or of every assigned
    /// partition when `tps` is empty.
    pub fn seek_to_beginning(
        &mut self,
        tps: &[TopicPartition],
        now: Instant,
    ) -> Result<(), ConsumerError> {
        self.reset_to(tps, super::subscription_state::EARLIEST_TIMESTAMP, now)
    }

    /// Moves to the end (the high watermark, or the last stable offset with read_committed)
    /// of `tps`, or of every assigned partition when `tps` is empty.
    pub fn seek_to_end(
        &mut self,
        tps: &[TopicPartition],
        now: Instant,
    ) -> Result<(), ConsumerError> {
        self.reset_to(tps, super::subscription_state::LATEST_TIMESTAMP, now)
    }

    /// The offset of the next record the application will get; `Ok(None)` while an offset
    /// reset (or the lookup of the committed offset) is on its way: it changes with a
    /// [`ConsumerEvent::PositionsChanged`]. A partition error is returned as the error.
    pub fn position(&self, tp: &TopicPartition) -> Result<Option<i64>, ConsumerError> {
        let state = self.subs.get(tp)?;
        if let Some(p) = state.position {
            return Ok(Some(p.offset));
        }
        match &state.error {
            Some((e, _)) => Err(e.clone()),
            None => Ok(None),
        }
    }

    /// The high watermark the last fetch response reported, if any.
    pub fn highwater(&self, tp: &TopicPartition) -> Result<Option<i64>, ConsumerError> {
        Ok(self.subs.get(tp)?.highwater)
    }

    /// The last stable offset the last fetch response reported, if any.
    pub fn last_stable_offset(&self, tp: &TopicPartition) -> Result<Option<i64>, ConsumerError> {
        Ok(self.subs.get(tp)?.last_stable_offset)
    }

    /// Stops fetching and returning records of `tps` (their buffered data is dropped and
    /// fetched again on resume, so paused partitions hold no memory).
    pub fn pause(&mut self, tps: &[TopicPartition]) -> Result<(), ConsumerError> {
        for tp in self.targets_strict(tps)? {
            self.subs.set_paused(&tp, true)?;
            self.buffer.remove(&tp);
        }
        Ok(())
    }

    /// Resumes fetching `tps`.
    pub fn resume(&mut self, tps: &[TopicPartition], now: Instant) -> Result<(), ConsumerError> {
        for tp in self.targets_strict(tps)? {
            self.subs.set_paused(&tp, false)?;
        }
        self.pump(now);
        Ok(())
    }

    fn targets_strict(&self, tps: &[TopicPartition]) -> Result<Vec<TopicPartition>, ConsumerError> {
        for tp in tps {
            self.subs.get(tp)?;
        }
        Ok(tps.to_vec())
    }

    /// The paused partitions.
    pub fn paused(&self) -> BTreeSet<TopicPartition> {
        self.subs.paused()
    }

    /// Looks offsets up with ListOffsets: each partition's timestamp is -2 (earliest), -1
    /// (latest; the last stable offset with read_committed) or milliseconds (the earliest
    /// record at or after it). The answer arrives as [`ConsumerEvent::Offsets`] with `op`
    /// within `timeout`, or a [`ConsumerError::Timeout`].
    pub fn list_offsets(
        &mut self,
        op: OpId,
        query: BTreeMap<TopicPartition, i64>,
        timeout: Duration,
        now: Instant,
    ) {
        if self.closed {
            self.out.push_back(Output::Event(ConsumerEvent::Offsets {
                op,
                result: Err(ConsumerError::Closed),
            }));
            return;
        }
        for tp in query.keys() {
            self.net.add_topic_interest(&tp.topic);
        }
        self.next_lookup += 1;
        self.lookups.insert(
            self.next_lookup,
            OffsetLookup::new(op, query, now + timeout, timeout),
        );
        self.pump(now);
    }

    /// Asks a broker for metadata of `topics` (every topic when `None`); the answer arrives as
    /// [`ConsumerEvent::Metadata`] with `op`.
    pub fn fetch_metadata(&mut self, op: OpId, topics: Option<Vec<String>>, now: Instant) {
        use crate::protocol::metadata::request::MetadataRequestTopic;
        if self.closed {
            self.out.push_back(Output::Event(ConsumerEvent::Metadata {
                op,
                result: Err(ConsumerError::Closed),
            }));
            return;
        }
        let body = MetadataRequest {
            topics: topics.map(|ts| {
                ts.into_iter()
                    .map(|name| MetadataRequestTopic {
                        name: Some(name),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        let req = self
            .net
            .send(Target::Any, RequestBody::Metadata(body), None, true, now);
        self.metadata_requests.insert(req, op);
        self.pump(now);
    }

    /// Closes gracefully, as Java's `close(timeout)` does: a group member makes a last
    /// auto-commit (when enabled), runs its revocation callbacks (see
    /// [`ConsumerEvent::RebalancePending`]), sends LeaveGroup (dynamic members) and lets
    /// commits in flight finish; then it stops as [`abort`](Self::abort) does, at the latest
    /// after `timeout`, and reports [`ConsumerEvent::Closed`]. Without a group there is
    /// nothing to finish: it stops at once. Calls after `close` are still served until
    /// `Closed` (a revocation callback may seek or commit).
    pub fn close(&mut self, timeout: Duration, now: Instant) {
        if self.closed {
            return;
        }
        let deadline = now
            .checked_add(timeout)
            .unwrap_or(now + Duration::from_secs(86_400));
        match self.group_with_ctx(now) {
            Some((g, mut ctx)) => g.close(deadline, &mut ctx),
            None => return self.abort(),
        }
        self.pump(now);
    }

    /// Stops at once: every connection is closed (their `Close` outputs queued), buffered
    /// data is dropped, commits and lookups in progress fail with [`ConsumerError::Closed`]
    /// (each in its event), and [`ConsumerEvent::Closed`] is reported. Nothing is committed
    /// and the group is not left (its coordinator notices when the session times out). A
    /// driver whose loop is stopping may drop the outputs this queues.
    pub fn abort(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.poll_waiting = false;
        if let Some(g) = &mut self.group {
            g.abort();
            while let Some(e) = g.events.pop_front() {
                self.out.push_back(Output::Event(e));
            }
        }
        self.net.close();
        self.buffer.clear();
        for (_, l) in std::mem::take(&mut self.lookups) {
            self.out.push_back(Output::Event(ConsumerEvent::Offsets {
                op: l.op,
                result: Err(ConsumerError::Closed),
            }));
        }
        self.lookup_requests.clear();
        for (_, op) in std::mem::take(&mut self.metadata_requests) {
            self.out.push_back(Output::Event(ConsumerEvent::Metadata {
                op,
                result: Err(ConsumerError::Closed),
            }));
        }
        // Requests in flight were failed above (or belong to nobody now): of what the
        // network layer has to say, only the connections it closes matter.
        while let Some(o) = self.net.poll_output() {
            if let Ok(o) = o.for_driver() {
                self.out.push_back(o);
            }
        }
        self.out.push_back(Output::Event(ConsumerEvent::Closed));
    }

    /// Whether the consumer is closed ([`ConsumerEvent::Closed`] was reported).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    // ---- consumer groups ------------------------------------------------------------------

    /// The group member and what it works on (the network layer, the assignment, `now`),
    /// `None` without a `group_id`.
    fn group_with_ctx(&mut self, now: Instant) -> Option<(&mut GroupMember, GroupCtx<'_>)> {
        let g = self.group.as_deref_mut()?;
        let ctx = GroupCtx {
            net: &mut self.net,
            subs: &mut self.subs,
            now,
        };
        Some((g, ctx))
    }

    fn group_ctx_poll(&mut self, now: Instant, in_poll: bool) {
        if let Some((g, mut ctx)) = self.group_with_ctx(now) {
            g.poll(&mut ctx, in_poll);
        }
    }

    fn poll_group(&mut self, now: Instant) {
        // A poll waiting for records keeps the member alive, as Java's long poll does.
        self.group_ctx_poll(now, self.poll_waiting);
    }

    fn no_group() -> ConsumerError {
        ConsumerError::IllegalState {
            detail: "this needs a group_id in the consumer configuration".into(),
        }
    }

    /// Subscribes to `topics` with the group (`group_id` must be set); replaces an earlier
    /// subscription, and an empty list unsubscribes. The member joins on the next
    /// [`take_records`](Self::take_records) (Java joins inside `poll`).
    pub fn subscribe<T: Into<String>>(
        &mut self,
        topics: impl IntoIterator<Item = T>,
        now: Instant,
    ) -> Result<(), ConsumerError> {
        let topics: BTreeSet<String> = topics.into_iter().map(Into::into).collect();
        if topics.iter().any(|t| t.trim().is_empty()) {
            return Err(ConsumerError::IllegalState {
                detail: "topic names to subscribe to must not be empty".into(),
            });
        }
        if topics.is_empty() {
            self.unsubscribe(now);
            return Ok(());
        }
        self.subscribe_with(Subscribed::Topics(topics), now)
    }

    /// Subscribes to every topic whose whole name matches the regular expression `pattern`
    /// (the `regex` crate's syntax, close to Java's for usual patterns), matched against the
    /// cluster's topics every `metadata_max_age_ms`; new matches cause a rebalance.
    pub fn subscribe_pattern(&mut self, pattern: &str, now: Instant) -> Result<(), ConsumerError> {
        let sub = Subscribed::pattern(pattern)?;
        self.subscribe_with(sub, now)
    }

    fn subscribe_with(&mut self, sub: Subscribed, now: Instant) -> Result<(), ConsumerError> {
        if self.closed {
            return Err(ConsumerError::Closed);
        }
        let subscribed = self.is_subscribed();
        if !subscribed && !self.subs.assignment().is_empty() {
            return Err(ConsumerError::IllegalState {
                detail: "subscribe() while partitions are assigned with assign(): \
                         unsubscribe first (subscriptions and manual assignment exclude \
                         each other)"
                    .into(),
            });
        }
        let (g, mut ctx) = self.group_with_ctx(now).ok_or_else(Self::no_group)?;
        g.subscribe(sub, &mut ctx);
        self.pump(now);
        Ok(())
    }

    /// Leaves the group (revocation callbacks, LeaveGroup for a dynamic member) and drops the
    /// subscription; without a subscription, clears a manual assignment (as Java does).
    pub fn unsubscribe(&mut self, now: Instant) {
        if !self.is_subscribed() {
            self.assign(Vec::new(), now);
            return;
        }
        if let Some((g, mut ctx)) = self.group_with_ctx(now) {
            g.unsubscribe(&mut ctx);
        }
        self.pump(now);
    }

    /// Whether the consumer is subscribed (the group manages its assignment).
    pub fn is_subscribed(&self) -> bool {
        self.group
            .as_ref()
            .is_some_and(|g| g.subscribed.is_active())
    }

    /// The subscribed topics (for a pattern: the topics it matched so far).
    pub fn subscription(&self) -> BTreeSet<String> {
        self.group
            .as_ref()
            .and_then(|g| g.subscribed.topics())
            .unwrap_or_default()
    }

    fn commit_with(
        &mut self,
        op: OpId,
        offsets: Option<Offsets>,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let error = if self.closed {
            Some(ConsumerError::Closed)
        } else if self.group.is_none() {
            Some(Self::no_group())
        } else {
            None
        };
        if let Some(e) = error {
            self.out.push_back(Output::Event(ConsumerEvent::Commit {
                op: Some(op),
                offsets: offsets.unwrap_or_default(),
                result: Err(e),
            }));
            return;
        }
        if let Some((g, mut ctx)) = self.group_with_ctx(now) {
            g.commit(op, offsets, timeout, &mut ctx);
        }
        self.pump(now);
    }

    /// Commits `offsets` (`None`: the consumed positions of every assigned partition),
    /// retrying retriable errors until `timeout` (Java's `commitSync`). The result arrives as
    /// [`ConsumerEvent::Commit`] with `op`. A subscribed member commits as a member of its
    /// generation; during a rebalance the commit fails with `REBALANCE_IN_PROGRESS`.
    pub fn commit_sync(
        &mut self,
        op: OpId,
        offsets: Option<Offsets>,
        timeout: Duration,
        now: Instant,
    ) {
        self.commit_with(op, offsets, Some(timeout), now)
    }

    /// Commits once without retrying (Java's `commitAsync`); the result arrives as
    /// [`ConsumerEvent::Commit`] with `op`.
    pub fn commit_async(&mut self, op: OpId, offsets: Option<Offsets>, now: Instant) {
        self.commit_with(op, offsets, None, now)
    }

    /// Looks up the group's committed offsets of `partitions` (they need not be assigned),
    /// within `timeout`; the answer arrives as [`ConsumerEvent::Committed`] with `op`.
    pub fn committed(
        &mut self,
        op: OpId,
        partitions: BTreeSet<TopicPartition>,
        timeout: Duration,
        now: Instant,
    ) {
        let error = if self.closed {
            Some(ConsumerError::Closed)
        } else if self.group.is_none() {
            Some(Self::no_group())
        } else {
            None
        };
        if let Some(e) = error {
            self.out.push_back(Output::Event(ConsumerEvent::Committed {
                op,
                result: Err(e),
            }));
            return;
        }
        if let Some((g, mut ctx)) = self.group_with_ctx(now) {
            g.committed(op, partitions, timeout, &mut ctx);
        }
        self.pump(now);
    }

    /// With `true`, rebalance callbacks wait for the application: each shows up as
    /// [`pending_rebalance`](Self::pending_rebalance) and the group goes on after
    /// [`complete_rebalance`](Self::complete_rebalance). With `false` (the default) they
    /// complete at once. The handle turns this on when a listener is set.
    pub fn set_rebalance_callbacks(&mut self, enabled: bool) {
        if let Some(g) = &mut self.group {
            g.set_callbacks(enabled);
        }
    }

    /// The listener callback the group waits for, if any (see
    /// [`crate::consumer::group::listener`]).
    pub fn pending_rebalance(&self) -> Option<&RebalanceCall> {
        self.group.as_ref().and_then(|g| g.pending_call())
    }

    /// The application ran callback `seq`: applies the seeks and performs the synchronous
    /// commit the listener asked for, then lets the rebalance go on.
    pub fn complete_rebalance(&mut self, seq: u64, outcome: RebalanceOutcome, now: Instant) {
        if let Some((g, mut ctx)) = self.group_with_ctx(now) {
            g.complete_call(seq, outcome, &mut ctx);
        }
        self.pump(now);
    }

    /// The group membership (Java's `groupMetadata()`), `None` without a `group_id`.
    pub fn group_metadata(&self) -> Option<GroupMetadata> {
        self.group.as_ref().map(|g| g.metadata())
    }

    /// Where the member is in the group protocol, `None` without a `group_id`.
    pub fn group_state(&self) -> Option<MemberState> {
        self.group.as_ref().map(|g| g.state())
    }

    /// Whether the group has nothing queued: no callback pending, no revocation, leave or
    /// close step left (an [`unsubscribe`](Self::unsubscribe) went through). True without a
    /// group.
    pub fn group_settled(&self) -> bool {
        self.group.as_ref().is_none_or(|g| g.is_settled())
    }

    /// The rebalance protocol in use: cooperative when every configured assignor supports it
    /// (KIP-429), else eager. `None` without a `group_id`.
    pub fn rebalance_protocol(&self) -> Option<super::assignor::RebalanceProtocol> {
        self.group.as_ref().map(|g| g.protocol())
    }

    /// Whether this member led its generation's assignment.
    pub fn is_group_leader(&self) -> bool {
        self.group.as_ref().is_some_and(|g| g.is_leader())
    }

    /// The consumed position of every assigned partition that has one, as offsets to commit
    /// ([`OffsetAndMetadata`](crate::consumer::OffsetAndMetadata) with the leader epoch of the
    /// last record).
    pub fn consumed_offsets(&self) -> Offsets {
        super::group::member::consumed_positions(&self.subs)
    }

    // ---- the engine ---------------------------------------------------------------------

    /// Drains the network layer's output (handling its events), sends what is due, and
    /// reports changes of state; repeats until the network layer is quiet.
    fn pump(&mut self, now: Instant) {
        if self.buffer.starved()
            && self.fetcher.in_flight.is_empty()
            && !self.buffer.readable_besides(None, |tp| self.readable(tp))
        {
            // Fetches wait for memory only while the application can drain other data or a
            // fetch in flight will give back its reservation; with neither (read, paused,
            // sought away, nothing in flight) they would wait forever.
            self.buffer.wake_starved();
        }
        loop {
            if !self.closed {
                self.poll_group(now);
                self.send_resets(now);
                self.send_lookups(now);
                self.send_fetches(now);
            }
            let mut any = false;
            while let Some(o) = self.net.poll_output() {
                any = true;
                match o.for_driver() {
                    Ok(o) => self.out.push_back(o),
                    Err(e) => self.on_net_event(e, now),
                }
            }
            if !any {
                break;
            }
        }
        if let Some(g) = &mut self.group {
            self.metrics
                .observe_group(g.state(), || g.metadata().generation_id, now);
            while let Some(e) = g.events.pop_front() {
                self.out.push_back(Output::Event(e));
            }
            if std::mem::take(&mut g.assignment_changed) {
                let gone: Vec<TopicPartition> = self
                    .buffer
                    .partitions()
                    .filter(|tp| self.subs.get(tp).is_err())
                    .cloned()
                    .collect();
                for tp in gone {
                    self.buffer.remove(&tp);
                }
            }
            if g.close_finished() && !self.closed {
                self.abort();
            }
        }
        if !self.closed {
            let call = self.pending_rebalance().map(|c| c.seq);
            let settled = self.group_settled();
            // Both are set aside for the check, which looks at the rest of the core.
            let mut reported = std::mem::replace(&mut self.reported, Reported::new());
            let mut out = std::mem::take(&mut self.out);
            reported.check(&self.subs, || self.has_ready(), call, settled, &mut out);
            self.reported = reported;
            self.out = out;
        }
        let peak = self.buffered_bytes();
        let s = &mut self.fetcher.stats;
        s.peak_buffered_bytes = s.peak_buffered_bytes.max(peak);
    }

    fn leader_epoch(&self, tp: &TopicPartition) -> i32 {
        self.net
            .cluster()
            .topic(&tp.topic)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == tp.partition))
            .map_or(-1, |p| p.leader_epoch)
    }

    fn on_net_event(&mut self, event: NetEvent, now: Instant) {
        let (id, result) = match event {
            NetEvent::Response { id, result } => (id, result),
            NetEvent::MetadataUpdated(view) => {
                // A new cluster view: leaders may have moved (the next pump re-plans fetches),
                // and a group leader checks the partitions it assigned.
                if let Some(g) = &mut self.group {
                    g.on_metadata(&view);
                }
                return;
            }
        };
        if let Some((g, mut ctx)) = self.group_with_ctx(now) {
            if g.owns(id) {
                g.handle_response(id, result, &mut ctx);
                return;
            }
        }
        if let Some(fetch) = self.fetcher.in_flight.remove(&id) {
            self.on_fetch(fetch, result, now);
        } else if let Some(asked) = self.reset_requests.remove(&id) {
            self.on_reset(asked, result, now);
        } else if let Some(key) = self.lookup_requests.remove(&id) {
            self.on_lookup(key, id, result, now);
        } else if let Some(op) = self.metadata_requests.remove(&id) {
            let result = match result.map(Response::body_as::<MetadataRequest>) {
                Ok(Ok(m)) => {
                    let mut view = ClusterView::default();
                    view.update(&m, true);
                    Ok(Arc::new(view))
                }
                Ok(Err(_)) => Err(unexpected()),
                Err(NetError::Closed) if self.closed => Err(ConsumerError::Closed),
                Err(e) => Err(ConsumerError::Network(e)),
            };
            self.out
                .push_back(Output::Event(ConsumerEvent::Metadata { op, result }));
        }
    }

    fn expire(&mut self, now: Instant) {
        self.subs.expire_retries(now);
        self.fetcher.expire_retries(now);
        for l in self.lookups.values_mut() {
            if l.retry_at.is_some_and(|t| now >= t) {
                l.retry_at = None;
            }
        }
        let late: Vec<(u64, Duration)> = self
            .lookups
            .iter()
            .filter(|(_, l)| now >= l.deadline)
            .map(|(id, l)| (*id, l.timeout))
            .collect();
        for (op, after) in late {
            self.finish_lookup(
                op,
                Err(ConsumerError::Timeout {
                    operation: "list_offsets",
                    after,
                }),
            );
        }
        let dead: Vec<TopicPartition> = self
            .subs
            .iter()
            .filter(|(_, s)| s.preferred_replica.is_some_and(|(_, t)| now >= t))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in dead {
            if let Ok(s) = self.subs.get_mut(&tp) {
                s.preferred_replica = None;
            }
        }
    }
}

fn unexpected() -> ConsumerError {
    ConsumerError::Network(NetError::Closed)
}

impl ClientCore for ConsumerCore {
    type Event = ConsumerEvent;

    fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        self.net.handle_connected(conn, now);
        self.pump(now);
    }

    fn handle_data(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        self.net.handle_data(conn, data, now);
        self.pump(now);
    }

    fn handle_bytes(&mut self, conn: ConnId, data: bytes::Bytes, now: Instant) {
        self.net.handle_bytes(conn, data, now);
        self.pump(now);
    }

    fn handle_closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant) {
        self.net.handle_closed(conn, reason, now);
        self.pump(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
        self.net.handle_timeout(now);
        self.pump(now);
    }

    fn poll_output(&mut self) -> Option<Output<ConsumerEvent>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let mut next = Deadline::from(self.net.poll_timeout());
        if !self.closed {
            next.fold(self.group.as_ref().and_then(|g| g.poll_timeout()));
            next.fold(self.subs.next_retry());
            next.fold(self.fetcher.next_retry());
            next.extend(
                self.lookups
                    .values()
                    .flat_map(|l| [Some(l.deadline), l.retry_at]),
            );
            // When a preferred read replica is given up for the leader again.
            next.extend(
                self.subs
                    .iter()
                    .filter_map(|(_, s)| s.preferred_replica.map(|(_, t)| t)),
            );
        }
        next.earliest()
    }
}
