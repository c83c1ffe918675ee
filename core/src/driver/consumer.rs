//! The application's side of a [`ConsumerCore`] running in a driver's event loop:
//! [`ConsumerHandle`] (async calls), [`RecordStream`] (a `futures_core::Stream` of records),
//! [`RecordCursor`] (one record at a time, ending after `consumer_timeout_ms` idle: the
//! blocking driver's iterator is `block_on(cursor.next())`) and [`TypedConsumer`] (records
//! deserialized into application types).
//!
//! Every call is one command run on the loop; a poll moves a whole batch of records (up to
//! `max_poll_records`) per round trip. The core never waits: [`ConsumerHandler`] keeps the
//! waiting calls (a poll with a timeout, a position during an offset reset, an unsubscribe or
//! close running listener callbacks) with their deadlines, answers them when the core reports
//! the change they wait for ([`ConsumerEvent::RecordsReady`],
//! [`ConsumerEvent::PositionsChanged`], [`ConsumerEvent::RebalancePending`],
//! [`ConsumerEvent::GroupSettled`], [`ConsumerEvent::Closed`]), and ends them at their
//! deadlines through [`Handler::poll_timeout`] / [`Handler::handle_timeout`]. A poll whose
//! caller stopped waiting takes no records, so none are lost by a dropped future.
//!
//! # Groups
//! With a `group_id`, [`ConsumerHandle::subscribe`] / [`ConsumerHandle::subscribe_pattern`]
//! put the consumer in the group; the member joins on the first poll. Rebalance listener
//! callbacks ([`RebalanceListener`], set with [`ConsumerHandle::set_rebalance_listener`]) run
//! inside [`ConsumerHandle::poll`] (and `unsubscribe`, `close`) on the application's task,
//! while the loop waits for them and keeps heartbeating; commits a callback asks for through
//! its context are made synchronously before the rebalance goes on (see
//! [`crate::consumer::group::listener`]). If a poll future is dropped while its callback runs,
//! the next poll offers the same callback again. Callbacks of
//! [`ConsumerHandle::commit_async`] also run on the application side, as in Java: inside the
//! next `poll`, `commit`, or `close`; the core only reports each commit as a
//! [`ConsumerEvent::Commit`], and the handler queues the callback with its result.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_channel::oneshot;

use super::{CommandSender, Handler};
use crate::config::ConsumerConfig;
use crate::consumer::group::{
    default_offset_commit_callback, run_listener, CommittedResult, GroupMetadata, MemberState,
    OffsetAndMetadata, Offsets, RebalanceCall, RebalanceListener,
};
use crate::consumer::{
    ConsumerCore, ConsumerError, ConsumerEvent, ConsumerMetrics, ConsumerRecords,
    OffsetAndTimestamp, OffsetsResult, OpId, PartitionLag, TopicPartition,
};
use crate::deadline::Deadline;
use crate::network::{ClusterView, PartitionInfo};
use crate::producer::serializer::Deserializer;

/// What a poll round on the loop answers: records, or a listener callback to run first
/// (with the poll's deadline, so the next round keeps the caller's timeout).
enum PollAnswer {
    Records(ConsumerRecords),
    Call(RebalanceCall, Instant),
}

type PollReply = oneshot::Sender<Result<PollAnswer, ConsumerError>>;

/// The callback of an async commit ([`ConsumerHandle::commit_async`]): the offsets and
/// whether they were committed. It runs on the application's side.
pub type CommitCallback = Box<dyn FnOnce(&Offsets, Result<(), ConsumerError>) + Send>;

/// Completed async commits whose callbacks wait for the application.
type CompletedCommits = Arc<Mutex<VecDeque<(CommitCallback, Offsets, Result<(), ConsumerError>)>>>;

enum CommitWaiter {
    Sync(oneshot::Sender<Result<(), ConsumerError>>),
    Async(CommitCallback, CompletedCommits),
}

/// When a group wait is over.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// The group has nothing queued (unsubscribe).
    Settled,
    /// The consumer closed.
    Closed,
}

enum GroupAnswer {
    Call(RebalanceCall),
    Done,
}

struct GroupWait {
    until: Until,
    reply: oneshot::Sender<GroupAnswer>,
}
type PositionReply = oneshot::Sender<Result<i64, ConsumerError>>;
type MetadataReply = oneshot::Sender<Result<Arc<ClusterView>, ConsumerError>>;

struct PollWait {
    max: usize,
    deadline: Instant,
    reply: PollReply,
}

struct PositionWait {
    tp: TopicPartition,
    deadline: Instant,
    timeout: Duration,
    reply: PositionReply,
}

/// Completes the [`ConsumerHandle`]'s futures from the [`ConsumerCore`]'s events, and keeps
/// the deadlines of the calls that wait.
#[derive(Default)]
pub struct ConsumerHandler {
    /// The last op handed to the core (the handler names every command it gives).
    last_op: u64,
    /// The last key given to a waiting call.
    last_wait: u64,
    polls: BTreeMap<u64, PollWait>,
    positions: BTreeMap<u64, PositionWait>,
    offsets: BTreeMap<OpId, oneshot::Sender<OffsetsResult>>,
    metadata: BTreeMap<OpId, MetadataReply>,
    commits: BTreeMap<OpId, CommitWaiter>,
    committed: BTreeMap<OpId, oneshot::Sender<CommittedResult>>,
    group_waits: BTreeMap<u64, GroupWait>,
}

impl ConsumerHandler {
    /// A new op for a command to the core.
    fn op(&mut self) -> OpId {
        self.last_op += 1;
        OpId(self.last_op)
    }

    fn wait_key(&mut self) -> u64 {
        self.last_wait += 1;
        self.last_wait
    }

    /// Tells the core whether a poll waits (it keeps a group member alive meanwhile).
    fn sync_poll_waiting(&self, core: &mut ConsumerCore) {
        core.set_poll_waiting(self.polls.values().any(|w| !w.reply.is_canceled()));
    }

    /// Answers a poll now, or keeps it waiting for records until its deadline.
    fn poll_step(&mut self, core: &mut ConsumerCore, w: PollWait, now: Instant) {
        if w.reply.is_canceled() {
            // Nobody would get the records: leave them buffered for the next poll.
            return;
        }
        if let Some(call) = core.pending_rebalance() {
            let _ = w.reply.send(Ok(PollAnswer::Call(call.clone(), w.deadline)));
            return;
        }
        match core.take_records(w.max, now) {
            Ok(records) if records.is_empty() => {
                if let Some(call) = core.pending_rebalance() {
                    let _ = w.reply.send(Ok(PollAnswer::Call(call.clone(), w.deadline)));
                } else if now < w.deadline {
                    let key = self.wait_key();
                    self.polls.insert(key, w);
                } else {
                    let _ = w.reply.send(Ok(PollAnswer::Records(records)));
                }
            }
            result => {
                let _ = w.reply.send(result.map(PollAnswer::Records));
            }
        }
    }

    /// Asks every waiting poll again (the core reported a change), or only those whose
    /// deadline passed at `due`.
    fn step_polls(&mut self, core: &mut ConsumerCore, due: Option<Instant>, now: Instant) {
        let keys: Vec<u64> = self
            .polls
            .iter()
            .filter(|(_, w)| due.is_none_or(|t| w.deadline <= t))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            if let Some(w) = self.polls.remove(&key) {
                self.poll_step(core, w, now);
            }
        }
        self.sync_poll_waiting(core);
    }

    fn group_step(&mut self, core: &mut ConsumerCore, w: GroupWait) {
        if let Some(call) = core.pending_rebalance() {
            let _ = w.reply.send(GroupAnswer::Call(call.clone()));
            return;
        }
        let done = match w.until {
            Until::Closed => core.is_closed(),
            Until::Settled => core.group_settled(),
        };
        // A settled group is not closing any more: nothing will change, so do not wait.
        if done || w.reply.is_canceled() || core.group_settled() {
            let _ = w.reply.send(GroupAnswer::Done);
            return;
        }
        // Answered at the next RebalancePending, GroupSettled or Closed.
        let key = self.wait_key();
        self.group_waits.insert(key, w);
    }

    fn step_groups(&mut self, core: &mut ConsumerCore) {
        for (_, w) in std::mem::take(&mut self.group_waits) {
            self.group_step(core, w);
        }
    }

    fn position_step(&mut self, core: &mut ConsumerCore, w: PositionWait, now: Instant) {
        if core.is_closed() {
            let _ = w.reply.send(Err(ConsumerError::Closed));
            return;
        }
        match core.position(&w.tp) {
            Ok(Some(p)) => {
                let _ = w.reply.send(Ok(p));
            }
            Err(e) => {
                let _ = w.reply.send(Err(e));
            }
            Ok(None) if now < w.deadline && !w.reply.is_canceled() => {
                let key = self.wait_key();
                self.positions.insert(key, w);
            }
            Ok(None) => {
                let _ = w.reply.send(Err(ConsumerError::Timeout {
                    operation: "position",
                    after: w.timeout,
                }));
            }
        }
    }

    /// Asks every waiting position again, or only those whose deadline passed at `due`.
    fn step_positions(&mut self, core: &mut ConsumerCore, due: Option<Instant>, now: Instant) {
        let keys: Vec<u64> = self
            .positions
            .iter()
            .filter(|(_, w)| due.is_none_or(|t| w.deadline <= t))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            if let Some(w) = self.positions.remove(&key) {
                self.position_step(core, w, now);
            }
        }
    }
}

impl Handler<ConsumerCore> for ConsumerHandler {
    fn on_event(&mut self, core: &mut ConsumerCore, event: ConsumerEvent, now: Instant) {
        match event {
            ConsumerEvent::RecordsReady => self.step_polls(core, None, now),
            ConsumerEvent::PositionsChanged => self.step_positions(core, None, now),
            ConsumerEvent::RebalancePending => {
                // The callback runs in a poll, or in an unsubscribe or close.
                self.step_polls(core, None, now);
                self.step_groups(core);
            }
            ConsumerEvent::GroupSettled => self.step_groups(core),
            ConsumerEvent::Closed => {
                self.step_polls(core, None, now);
                self.step_positions(core, None, now);
                self.step_groups(core);
            }
            ConsumerEvent::Commit {
                op: Some(op),
                offsets,
                result,
            } => match self.commits.remove(&op) {
                Some(CommitWaiter::Sync(reply)) => {
                    let _ = reply.send(result);
                }
                Some(CommitWaiter::Async(callback, queue)) => {
                    if let Ok(mut q) = queue.lock() {
                        q.push_back((callback, offsets, result));
                    }
                }
                None => {}
            },
            // The core's own commits: it logs their failures itself (as Java's auto-commit
            // does) and reports a failed listener commit in the next poll.
            ConsumerEvent::Commit { op: None, .. } => {}
            ConsumerEvent::Committed { op, result } => {
                if let Some(reply) = self.committed.remove(&op) {
                    let _ = reply.send(result);
                }
            }
            ConsumerEvent::Offsets { op, result } => {
                if let Some(reply) = self.offsets.remove(&op) {
                    let _ = reply.send(result);
                }
            }
            ConsumerEvent::Metadata { op, result } => {
                if let Some(reply) = self.metadata.remove(&op) {
                    let _ = reply.send(result);
                }
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let polls = self.polls.values().map(|w| w.deadline);
        let positions = self.positions.values().map(|w| w.deadline);
        polls.chain(positions).collect::<Deadline>().earliest()
    }

    fn handle_timeout(&mut self, core: &mut ConsumerCore, now: Instant) {
        self.step_polls(core, Some(now), now);
        self.step_positions(core, Some(now), now);
    }

    fn on_shutdown(&mut self, core: &mut ConsumerCore) {
        core.abort();
        for (_, w) in std::mem::take(&mut self.polls) {
            let _ = w.reply.send(Err(ConsumerError::Closed));
        }
        for (_, w) in std::mem::take(&mut self.positions) {
            let _ = w.reply.send(Err(ConsumerError::Closed));
        }
        for (_, r) in std::mem::take(&mut self.offsets) {
            let _ = r.send(Err(ConsumerError::Closed));
        }
        for (_, r) in std::mem::take(&mut self.metadata) {
            let _ = r.send(Err(ConsumerError::Closed));
        }
        for (_, c) in std::mem::take(&mut self.commits) {
            match c {
                CommitWaiter::Sync(reply) => {
                    let _ = reply.send(Err(ConsumerError::Closed));
                }
                CommitWaiter::Async(callback, queue) => {
                    if let Ok(mut q) = queue.lock() {
                        q.push_back((callback, Offsets::new(), Err(ConsumerError::Closed)));
                    }
                }
            }
        }
        for (_, r) in std::mem::take(&mut self.committed) {
            let _ = r.send(Err(ConsumerError::Closed));
        }
        for (_, w) in std::mem::take(&mut self.group_waits) {
            let _ = w.reply.send(GroupAnswer::Done);
        }
    }
}

type Cmds = CommandSender<ConsumerCore, ConsumerHandler>;

/// Runs `f` on the loop and awaits its answer.
async fn call<T: Send + 'static>(
    cmds: &Cmds,
    f: impl FnOnce(&mut ConsumerCore, Instant) -> T + Send + 'static,
) -> Result<T, ConsumerError> {
    let (tx, rx) = oneshot::channel();
    cmds.run(move |core, _, now| {
        let _ = tx.send(f(core, now));
    })
    .map_err(|_| ConsumerError::Closed)?;
    rx.await.map_err(|_| ConsumerError::Closed)
}

/// When a poll round ends: after a timeout from the round's start, or at the deadline of the
/// poll a callback interrupted.
#[derive(Clone, Copy)]
enum PollUntil {
    After(Duration),
    At(Instant),
}

async fn poll_round(
    cmds: &Cmds,
    max: usize,
    until: PollUntil,
) -> Result<PollAnswer, ConsumerError> {
    let (tx, rx) = oneshot::channel();
    cmds.run(move |core, handler, now| {
        let deadline = match until {
            PollUntil::After(timeout) => now.checked_add(timeout).unwrap_or(now + FOREVER),
            PollUntil::At(t) => t,
        };
        handler.poll_step(
            core,
            PollWait {
                max,
                deadline,
                reply: tx,
            },
            now,
        );
        handler.sync_poll_waiting(core);
    })
    .map_err(|_| ConsumerError::Closed)?;
    rx.await.unwrap_or(Err(ConsumerError::Closed))
}

/// How long "forever" waits are cut into (a stream's poll is asked again after it).
const FOREVER: Duration = Duration::from_secs(3600);

/// How long a graceful close may take (Java's `DEFAULT_CLOSE_TIMEOUT_MS`).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

type SharedListener = Arc<Mutex<Option<Box<dyn RebalanceListener>>>>;

/// The application's handle on a consumer running in some driver's event loop. Cheap to
/// clone; the loop stops when the last clone (and every stream and cursor) is dropped.
#[derive(Clone)]
pub struct ConsumerHandle {
    cmds: Cmds,
    max_poll_records: usize,
    api_timeout: Duration,
    idle_timeout: Option<Duration>,
    /// The rebalance listener, shared by every clone (callbacks run on the polling task).
    listener: SharedListener,
    /// Async commit callbacks waiting to run on the application's side.
    completed: CompletedCommits,
}

impl std::fmt::Debug for ConsumerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerHandle")
            .field("cmds", &self.cmds)
            .field("max_poll_records", &self.max_poll_records)
            .finish_non_exhaustive()
    }
}

impl ConsumerHandle {
    /// Wraps the sender of a loop running a [`ConsumerCore`] with a [`ConsumerHandler`];
    /// `config` is the one the core was built from (for `max_poll_records`,
    /// `default_api_timeout_ms` and `consumer_timeout_ms`).
    pub fn new(
        cmds: CommandSender<ConsumerCore, ConsumerHandler>,
        config: &ConsumerConfig,
    ) -> Self {
        ConsumerHandle {
            cmds,
            max_poll_records: config.max_poll_records.max(1) as usize,
            api_timeout: Duration::from_millis(u64::from(config.default_api_timeout_ms)),
            idle_timeout: config.consumer_timeout_ms.map(Duration::from_millis),
            listener: Arc::new(Mutex::new(None)),
            completed: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// Replaces the assignment (see [`ConsumerCore::assign`]). Fails with
    /// [`ConsumerError::IllegalState`] while subscribed.
    pub async fn assign(&self, partitions: Vec<TopicPartition>) -> Result<(), ConsumerError> {
        call(&self.cmds, move |core, now| {
            if core.is_subscribed() {
                return Err(ConsumerError::IllegalState {
                    detail: "assign() while subscribed: unsubscribe first".into(),
                });
            }
            core.assign(partitions, now);
            Ok(())
        })
        .await?
    }

    // ---- groups -------------------------------------------------------------------------

    /// Sets the rebalance listener (replacing any); its callbacks run inside this handle's
    /// polls (see the [module docs](self)). Set it before subscribing to see the first
    /// assignment.
    pub async fn set_rebalance_listener(
        &self,
        listener: impl RebalanceListener + 'static,
    ) -> Result<(), ConsumerError> {
        if let Ok(mut l) = self.listener.lock() {
            *l = Some(Box::new(listener));
        }
        call(&self.cmds, |core, _| core.set_rebalance_callbacks(true)).await
    }

    /// Subscribes to `topics` (see [`ConsumerCore::subscribe`]); the member joins the group
    /// on the next poll. An empty list unsubscribes.
    pub async fn subscribe<T: Into<String>>(
        &self,
        topics: impl IntoIterator<Item = T>,
    ) -> Result<(), ConsumerError> {
        let topics: Vec<String> = topics.into_iter().map(Into::into).collect();
        if topics.is_empty() {
            return self.unsubscribe().await;
        }
        call(&self.cmds, move |core, now| core.subscribe(topics, now)).await?
    }

    /// [`subscribe`](Self::subscribe) with a rebalance listener.
    pub async fn subscribe_with_listener<T: Into<String>>(
        &self,
        topics: impl IntoIterator<Item = T>,
        listener: impl RebalanceListener + 'static,
    ) -> Result<(), ConsumerError> {
        self.set_rebalance_listener(listener).await?;
        self.subscribe(topics).await
    }

    /// Subscribes to every topic whose whole name matches `pattern` (a regular expression;
    /// see [`ConsumerCore::subscribe_pattern`]).
    pub async fn subscribe_pattern(&self, pattern: &str) -> Result<(), ConsumerError> {
        let pattern = pattern.to_owned();
        call(&self.cmds, move |core, now| {
            core.subscribe_pattern(&pattern, now)
        })
        .await?
    }

    /// Leaves the group: runs the revocation callbacks, sends LeaveGroup (dynamic members)
    /// and drops the subscription; without one, clears a manual assignment.
    pub async fn unsubscribe(&self) -> Result<(), ConsumerError> {
        self.run_completed_commits();
        call(&self.cmds, |core, now| core.unsubscribe(now)).await?;
        self.run_group_callbacks(Until::Settled).await
    }

    /// The subscribed topics (for a pattern: those it matched so far).
    pub async fn subscription(&self) -> Result<BTreeSet<String>, ConsumerError> {
        call(&self.cmds, |core, _| core.subscription()).await
    }

    /// The group membership (Java's `groupMetadata()`), `None` without a `group_id`.
    pub async fn group_metadata(&self) -> Result<Option<GroupMetadata>, ConsumerError> {
        call(&self.cmds, |core, _| core.group_metadata()).await
    }

    /// Where the member is in the group protocol, `None` without a `group_id`.
    pub async fn group_state(&self) -> Result<Option<MemberState>, ConsumerError> {
        call(&self.cmds, |core, _| core.group_state()).await
    }

    /// The consumer's metrics now (Java's names; see [`ConsumerMetrics`]), including the
    /// network layer's. `to_prometheus()` renders them.
    pub async fn metrics(&self) -> Result<ConsumerMetrics, ConsumerError> {
        call(&self.cmds, |core, now| core.metrics(now)).await
    }

    /// Every assigned partition's position, high watermark from its last fetch and lag
    /// (see [`ConsumerCore::lag`]).
    pub async fn lag(&self) -> Result<BTreeMap<TopicPartition, PartitionLag>, ConsumerError> {
        call(&self.cmds, |core, _| core.lag()).await
    }

    /// Commits synchronously (Java's `commitSync`): `offsets`, or with `None` the consumed
    /// position of every assigned partition; retriable errors are retried up to
    /// `default_api_timeout_ms`. Completed [`commit_async`](Self::commit_async) callbacks
    /// run first.
    pub async fn commit(&self, offsets: Option<Offsets>) -> Result<(), ConsumerError> {
        self.run_completed_commits();
        let (tx, rx) = oneshot::channel();
        let timeout = self.api_timeout;
        self.cmds
            .run(move |core, handler, now| {
                let op = handler.op();
                handler.commits.insert(op, CommitWaiter::Sync(tx));
                core.commit_sync(op, offsets, timeout, now);
            })
            .map_err(|_| ConsumerError::Closed)?;
        let result = rx.await.unwrap_or(Err(ConsumerError::Closed));
        self.run_completed_commits();
        result
    }

    /// Commits without waiting (Java's `commitAsync`; no retries). `callback` (None:
    /// [`default_offset_commit_callback`], which logs failures) runs on the application's
    /// side in a later `poll`, `commit` or `close`.
    pub fn commit_async(
        &self,
        offsets: Option<Offsets>,
        callback: Option<CommitCallback>,
    ) -> Result<(), ConsumerError> {
        let callback = callback.unwrap_or_else(|| Box::new(default_offset_commit_callback));
        let queue = self.completed.clone();
        self.cmds
            .run(move |core, handler, now| {
                let op = handler.op();
                handler
                    .commits
                    .insert(op, CommitWaiter::Async(callback, queue));
                core.commit_async(op, offsets, now);
            })
            .map_err(|_| ConsumerError::Closed)
    }

    /// The group's committed offsets of `partitions` (`None` where there is none).
    pub async fn committed(
        &self,
        partitions: Vec<TopicPartition>,
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, ConsumerError> {
        let (tx, rx) = oneshot::channel();
        let timeout = self.api_timeout;
        self.cmds
            .run(move |core, handler, now| {
                let op = handler.op();
                handler.committed.insert(op, tx);
                core.committed(op, partitions.into_iter().collect(), timeout, now);
            })
            .map_err(|_| ConsumerError::Closed)?;
        rx.await.unwrap_or(Err(ConsumerError::Closed))
    }

    /// Runs the callbacks of completed async commits (on the caller's task).
    fn run_completed_commits(&self) {
        loop {
            let next = self.completed.lock().ok().and_then(|mut q| q.pop_front());
            match next {
                Some((callback, offsets, result)) => callback(&offsets, result),
                None => return,
            }
        }
    }

    /// Runs `call` on the listener (here, on the application's task) and hands the outcome
    /// back to the core, which then goes on with the rebalance.
    async fn run_call(&self, call: RebalanceCall) -> Result<(), ConsumerError> {
        let outcome = match self.listener.lock() {
            Ok(mut l) => match l.as_mut() {
                Some(listener) => run_listener(listener.as_mut(), &call),
                None => Default::default(),
            },
            Err(_) => Default::default(),
        };
        let seq = call.seq;
        self::call(&self.cmds, move |core, now| {
            core.complete_rebalance(seq, outcome, now)
        })
        .await
    }

    /// Runs listener callbacks until the group is settled or the consumer closed.
    async fn run_group_callbacks(&self, until: Until) -> Result<(), ConsumerError> {
        loop {
            let (tx, rx) = oneshot::channel();
            self.cmds
                .run(move |core, handler, _| {
                    handler.group_step(core, GroupWait { until, reply: tx })
                })
                .map_err(|_| ConsumerError::Closed)?;
            match rx.await {
                Ok(GroupAnswer::Call(c)) => self.run_call(c).await?,
                Ok(GroupAnswer::Done) | Err(_) => return Ok(()),
            }
        }
    }

    async fn poll_with(
        &self,
        max: usize,
        timeout: Duration,
    ) -> Result<ConsumerRecords, ConsumerError> {
        self.run_completed_commits();
        let mut until = PollUntil::After(timeout);
        loop {
            match poll_round(&self.cmds, max, until).await? {
                PollAnswer::Records(r) => {
                    self.run_completed_commits();
                    return Ok(r);
                }
                PollAnswer::Call(c, deadline) => {
                    self.run_call(c).await?;
                    until = PollUntil::At(deadline);
                }
            }
        }
    }

    /// The assigned partitions.
    pub async fn assignment(&self) -> Result<BTreeSet<TopicPartition>, ConsumerError> {
        call(&self.cmds, |core, _| core.assignment()).await
    }

    /// Up to `max_poll_records` records, waiting at most `timeout` for some; empty when none
    /// came in time. A partition error is returned when there are no records to return.
    ///
    /// With a subscription, the poll drives the group: the member joins before records
    /// come, and listener callbacks run here first.
    pub async fn poll(&self, timeout: Duration) -> Result<ConsumerRecords, ConsumerError> {
        self.poll_with(self.max_poll_records, timeout).await
    }

    /// The records as a stream, one at a time, in poll order. It ends when the consumer is
    /// closed; partition errors are yielded as they come.
    pub fn stream(&self) -> RecordStream {
        RecordStream {
            handle: self.clone(),
            max: self.max_poll_records,
            buffered: VecDeque::new(),
            pending: None,
            done: false,
        }
    }

    /// A cursor over the records that ends after `consumer_timeout_ms` without a record.
    pub fn cursor(&self) -> RecordCursor {
        RecordCursor {
            handle: self.clone(),
            buffered: VecDeque::new(),
            idle_timeout: self.idle_timeout,
        }
    }

    /// Sets the next offset to read of an assigned partition.
    pub async fn seek(&self, tp: TopicPartition, offset: i64) -> Result<(), ConsumerError> {
        call(&self.cmds, move |core, now| core.seek(&tp, offset, now)).await?
    }

    /// Moves the partitions (every assigned one when empty) to their earliest offsets.
    pub async fn seek_to_beginning(&self, tps: Vec<TopicPartition>) -> Result<(), ConsumerError> {
        call(&self.cmds, move |core, now| {
            core.seek_to_beginning(&tps, now)
        })
        .await?
    }

    /// Moves the partitions (every assigned one when empty) to their ends.
    pub async fn seek_to_end(&self, tps: Vec<TopicPartition>) -> Result<(), ConsumerError> {
        call(&self.cmds, move |core, now| core.seek_to_end(&tps, now)).await?
    }

    /// The offset of the next record to be returned, waiting (up to
    /// `default_api_timeout_ms`) for a pending offset reset.
    pub async fn position(&self, tp: TopicPartition) -> Result<i64, ConsumerError> {
        let (tx, rx) = oneshot::channel();
        let timeout = self.api_timeout;
        self.cmds
            .run(move |core, handler, now| {
                let deadline = now.checked_add(timeout).unwrap_or(now + FOREVER);
                handler.position_step(
                    core,
                    PositionWait {
                        tp,
                        deadline,
                        timeout,
                        reply: tx,
                    },
                    now,
                );
            })
            .map_err(|_| ConsumerError::Closed)?;
        rx.await.unwrap_or(Err(ConsumerError::Closed))
    }

    /// The last high watermark fetched for the partition, if any.
    pub async fn highwater(&self, tp: TopicPartition) -> Result<Option<i64>, ConsumerError> {
        call(&self.cmds, move |core, _| core.highwater(&tp)).await?
    }

    /// Stops fetching the partitions.
    pub async fn pause(&self, tps: Vec<TopicPartition>) -> Result<(), ConsumerError> {
        call(&self.cmds, move |core, _| core.pause(&tps)).await?
    }

    /// Resumes fetching the partitions.
    pub async fn resume(&self, tps: Vec<TopicPartition>) -> Result<(), ConsumerError> {
        call(&self.cmds, move |core, now| core.resume(&tps, now)).await?
    }

    /// The paused partitions.
    pub async fn paused(&self) -> Result<BTreeSet<TopicPartition>, ConsumerError> {
        call(&self.cmds, |core, _| core.paused()).await
    }

    async fn list_offsets(&self, query: BTreeMap<TopicPartition, i64>) -> OffsetsResult {
        let (tx, rx) = oneshot::channel();
        let timeout = self.api_timeout;
        self.cmds
            .run(move |core, handler, now| {
                let op = handler.op();
                handler.offsets.insert(op, tx);
                core.list_offsets(op, query, timeout, now);
            })
            .map_err(|_| ConsumerError::Closed)?;
        rx.await.unwrap_or(Err(ConsumerError::Closed))
    }

    async fn list_at(
        &self,
        tps: Vec<TopicPartition>,
        timestamp: i64,
    ) -> Result<BTreeMap<TopicPartition, i64>, ConsumerError> {
        let query = tps.into_iter().map(|tp| (tp, timestamp)).collect();
        Ok(self
            .list_offsets(query)
            .await?
            .into_iter()
            .map(|(tp, o)| (tp, o.map_or(-1, |o| o.offset)))
            .collect())
    }

    /// The earliest offset of each partition (they need not be assigned).
    pub async fn beginning_offsets(
        &self,
        tps: Vec<TopicPartition>,
    ) -> Result<BTreeMap<TopicPartition, i64>, ConsumerError> {
        self.list_at(tps, -2).await
    }

    /// The end offset of each partition (the high watermark; the last stable offset with
    /// read_committed).
    pub async fn end_offsets(
        &self,
        tps: Vec<TopicPartition>,
    ) -> Result<BTreeMap<TopicPartition, i64>, ConsumerError> {
        self.list_at(tps, -1).await
    }

    /// For each partition, the earliest offset whose timestamp is at or after the one given
    /// (milliseconds since the epoch); `None` when there is no such record.
    pub async fn offsets_for_times(
        &self,
        query: BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>, ConsumerError> {
        self.list_offsets(query).await
    }

    async fn metadata(
        &self,
        topics: Option<Vec<String>>,
    ) -> Result<Arc<ClusterView>, ConsumerError> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .run(move |core, handler, now| {
                let op = handler.op();
                handler.metadata.insert(op, tx);
                core.fetch_metadata(op, topics, now);
            })
            .map_err(|_| ConsumerError::Closed)?;
        rx.await.unwrap_or(Err(ConsumerError::Closed))
    }

    /// The partitions of a topic, or `None` if the topic does not exist.
    pub async fn partitions_for_topic(
        &self,
        topic: &str,
    ) -> Result<Option<Vec<PartitionInfo>>, ConsumerError> {
        let view = self.metadata(Some(vec![topic.to_owned()])).await?;
        Ok(view
            .topics
            .get(topic)
            .filter(|t| t.error.is_ok())
            .map(|t| t.partitions.clone()))
    }

    /// The names of every topic the cluster shows this client.
    pub async fn topics(&self) -> Result<BTreeSet<String>, ConsumerError> {
        let view = self.metadata(None).await?;
        Ok(view
            .topics
            .values()
            .filter(|t| t.error.is_ok())
            .map(|t| t.name.clone())
            .collect())
    }

    /// Closes the consumer: connections close, buffered records are dropped and later calls
    /// fail with [`ConsumerError::Closed`]. A group member first commits (with auto-commit),
    /// runs its revocation callbacks and leaves the group, within 30 seconds (Java's
    /// `close()`; see [`ConsumerCore::close`]).
    pub async fn close(&self) -> Result<(), ConsumerError> {
        self.run_completed_commits();
        match call(&self.cmds, |core, now| core.close(CLOSE_TIMEOUT, now)).await {
            Ok(()) => {}
            Err(ConsumerError::Closed) => return Ok(()),
            Err(e) => return Err(e),
        }
        let result = match self.run_group_callbacks(Until::Closed).await {
            Ok(()) | Err(ConsumerError::Closed) => Ok(()),
            Err(e) => Err(e),
        };
        // Whatever the group left undone, the consumer is closed now.
        let _ = call(&self.cmds, |core, _| core.abort()).await;
        // The LeaveGroup (and a last commit) reach the sockets before close returns.
        self.cmds.settle().await;
        self.run_completed_commits();
        result
    }

    /// A consumer that deserializes keys and values with `key` and `value`.
    pub fn with_deserializers<K, V, KD, VD>(self, key: KD, value: VD) -> TypedConsumer<K, V, KD, VD>
    where
        KD: Deserializer<K>,
        VD: Deserializer<V>,
    {
        TypedConsumer {
            handle: self,
            key,
            value,
            _types: PhantomData,
        }
    }
}

mod readers;
#[cfg(test)]
mod tests;

pub use readers::{RecordCursor, RecordStream, TypedConsumer};
