//! The admin client: [`AdminCore`], a sans-IO state machine over the [`NetworkClient`] that
//! creates, deletes and describes topics, configs, consumer groups, their offsets, records,
//! log dirs, ACLs and transactions — the operations of Java's `AdminClient` and kafka-python's
//! `KafkaAdminClient`, under the same names.
//!
//! # Contract
//!
//! * Driving: [`AdminCore`] implements [`ClientCore`]; drive it as the [`crate::network`]
//!   docs say. Each call (`create_topics`, `describe_configs`, ...) takes an [`OpId`] the
//!   application chooses and `now`, returns at once, and completes later with exactly one
//!   [`AdminEvent::Completed`] carrying that id and the call's [`AdminOutcome`] (a call
//!   refused at once, because the client is closing, completes in the output queue before
//!   the call returns). The core never interprets the ids: an id given twice is reported
//!   twice. It never reads a clock or spawns anything.
//! * Closing: [`AdminCore::close`] is graceful: no new calls are accepted (they complete at
//!   once, every item failing with [`AdminError::Closed`]); calls in progress go on, retries
//!   included, until they complete or the close timeout passes, when the rest fail with
//!   [`AdminError::Closed`]; then the connections close and [`AdminEvent::Closed`] is
//!   emitted, once. [`AdminCore::abort`] does all of that at once, without waiting.
//! * Routing: topic creation, deletion and partition growth go to the controller; group
//!   calls and their offsets to the group's coordinator (FindCoordinator, cached); transaction
//!   descriptions to each transactional id's coordinator (FindCoordinator key type 1, cached);
//!   record deletion to each partition's leader; broker configs and log dirs to that broker;
//!   group and transaction listings to every broker; everything else to the least loaded
//!   broker.
//! * Per-item results: calls over many items (topics, resources, groups, partitions) answer
//!   each item separately — a map item -> `Result<_, AdminError>` — so one bad topic does
//!   not fail the others.
//! * Retries: NOT_CONTROLLER (after a metadata refresh), NOT_COORDINATOR and
//!   COORDINATOR_NOT_AVAILABLE (after a new coordinator lookup), COORDINATOR_LOAD_IN_PROGRESS,
//!   leader moves (NOT_LEADER_OR_FOLLOWER, after a metadata refresh), other retriable codes,
//!   lost connections and request timeouts are retried after `retry_backoff_ms`, for as long
//!   as the call's timeout (`default_api_timeout_ms` unless the call gives one) allows; every
//!   request is sent with the smaller of `request_timeout_ms` and the time left, so a call
//!   always completes by its deadline. The item then fails with the last error.
//! * Unsupported APIs: a broker without an API (or without a version both sides speak) fails
//!   the items of that call at once with [`crate::network::NetError::Unsupported`] ("... is
//!   unsupported by this broker ..."), except where an older API does the job:
//!   IncrementalAlterConfigs falls back to DescribeConfigs + AlterConfigs, DescribeCluster
//!   to Metadata.

mod acls;
mod configs;
mod engine;
mod groups;
mod metrics;
mod topics;
mod transactions;
mod types;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::config::AdminConfig;
use crate::consumer::{OffsetAndMetadata, TopicPartition};
use crate::deadline::Deadline;
use crate::network::{
    ClientCore, CloseReason, ConnId, NetEvent, NetOptions, NetworkClient, NodeId, Output, RequestId,
};

pub use types::{
    AclBinding, AclBindingFilter, AclOperation, AclPatternType, AclPermissionType, AclResourceType,
    AdminError, AlterConfigOp, ClusterDescription, ConfigEntry, ConfigResource, ConfigResourceType,
    ConfigSource, ConsumerGroupDescription, ConsumerGroupListing, ConsumerGroupsListing, GroupType,
    LogDirDescription, MemberDescription, NewPartitions, NewTopic, ReplicaInfo, TopicDescription,
    TopicListing,
};

pub use metrics::{AdminMetrics, CallMetrics};
pub use transactions::{
    ListTransactionsOptions, TransactionDescription, TransactionListing, TransactionState,
    TransactionsListing,
};

use engine::{Batched, Ctx, Operation};
use metrics::AdminRecorder;

pub use crate::OpId;

/// What the admin core reports.
#[derive(Debug)]
pub enum AdminEvent {
    /// A call completed.
    Completed {
        /// The id the call was given.
        id: OpId,
        /// Its result.
        outcome: AdminOutcome,
    },
    /// The client has closed ([`AdminCore::close`] finished, or [`AdminCore::abort`]): every
    /// call has completed and the connections are closed. Emitted once, after the last
    /// [`AdminEvent::Completed`].
    Closed,
}

/// The result of an admin call; the variant follows from the call.
#[derive(Debug)]
#[non_exhaustive]
pub enum AdminOutcome {
    /// `create_topics`, `delete_topics`, `create_partitions`: per topic.
    Topics(BTreeMap<String, Result<(), AdminError>>),
    /// `describe_configs`: per resource.
    Configs(BTreeMap<ConfigResource, Result<Vec<ConfigEntry>, AdminError>>),
    /// `alter_configs`: per resource.
    Altered(BTreeMap<ConfigResource, Result<(), AdminError>>),
    /// `list_topics`.
    TopicListing(Result<Vec<TopicListing>, AdminError>),
    /// `describe_topics`: per topic.
    TopicDescriptions(BTreeMap<String, Result<TopicDescription, AdminError>>),
    /// `describe_cluster`.
    Cluster(Result<ClusterDescription, AdminError>),
    /// `list_consumer_groups`.
    GroupListing(Result<ConsumerGroupsListing, AdminError>),
    /// `describe_consumer_groups`: per group.
    GroupDescriptions(BTreeMap<String, Result<ConsumerGroupDescription, AdminError>>),
    /// `delete_consumer_groups`: per group.
    Groups(BTreeMap<String, Result<(), AdminError>>),
    /// `list_consumer_group_offsets`: the committed offsets (partitions without one are
    /// left out).
    GroupOffsets(Result<BTreeMap<TopicPartition, OffsetAndMetadata>, AdminError>),
    /// `alter_consumer_group_offsets`, `delete_consumer_group_offsets`: per partition.
    Partitions(BTreeMap<TopicPartition, Result<(), AdminError>>),
    /// `delete_records`: per partition, the new low watermark.
    DeletedRecords(BTreeMap<TopicPartition, Result<i64, AdminError>>),
    /// `describe_log_dirs`: per broker, its log dirs by path.
    LogDirs(BTreeMap<NodeId, Result<BTreeMap<String, LogDirDescription>, AdminError>>),
    /// `describe_acls`.
    Acls(Result<Vec<AclBinding>, AdminError>),
    /// `create_acls`: per binding.
    CreatedAcls(BTreeMap<AclBinding, Result<(), AdminError>>),
    /// `delete_acls`: per filter, the bindings it deleted.
    DeletedAcls(BTreeMap<AclBindingFilter, Result<Vec<AclBinding>, AdminError>>),
    /// `describe_transactions`: per transactional id.
    TransactionDescriptions(BTreeMap<String, Result<TransactionDescription, AdminError>>),
    /// `list_transactions`: per broker (or one error when no broker could be named).
    TransactionListing(Result<TransactionsListing, AdminError>),
}

struct OpEntry {
    /// The application's id, handed back in the completion.
    id: OpId,
    op: Box<dyn Operation>,
    deadline: Instant,
    in_flight: usize,
    retry_at: Option<Instant>,
}

use crate::lifecycle::Lifecycle as State;

/// The admin client's state machine. See the module docs for the contract.
pub struct AdminCore {
    net: NetworkClient,
    default_timeout: Duration,
    request_timeout: Duration,
    retry_backoff: Duration,
    /// Calls in progress, by an internal key: application ids may repeat.
    ops: BTreeMap<u64, OpEntry>,
    requests: HashMap<RequestId, (u64, u64)>,
    out: VecDeque<Output<AdminEvent>>,
    next_key: u64,
    next_tag: u64,
    state: State,
    metrics: AdminRecorder,
}

impl std::fmt::Debug for AdminCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCore")
            .field("calls", &self.ops.len())
            .field("net", &self.net)
            .finish_non_exhaustive()
    }
}

impl AdminCore {
    /// An admin core with `config`'s call timeout over a network layer set up from `opts`
    /// (see [`NetOptions::from_config`]). Metadata requests never create topics.
    pub fn new(config: &AdminConfig, mut opts: NetOptions) -> Self {
        opts.allow_auto_topic_creation = false;
        AdminCore {
            default_timeout: Duration::from_millis(u64::from(config.default_api_timeout_ms)),
            request_timeout: opts.conn.request_timeout,
            retry_backoff: opts.retry_backoff,
            net: NetworkClient::new(opts),
            ops: BTreeMap::new(),
            requests: HashMap::new(),
            out: VecDeque::new(),
            next_key: 0,
            next_tag: 0,
            state: State::Open,
            metrics: AdminRecorder::default(),
        }
    }

    /// The network layer underneath (cluster view, broker versions).
    pub fn network(&mut self) -> &mut NetworkClient {
        &mut self.net
    }

    /// The admin client's metrics at `now` (calls and failed items per kind, and the
    /// network layer's per-API requests, errors and latencies).
    pub fn metrics(&self, now: Instant) -> AdminMetrics {
        self.metrics.snapshot(self.net.metrics(now), now)
    }

    /// Calls still in progress.
    pub fn calls_in_progress(&self) -> usize {
        self.ops.len()
    }

    /// Whether the client has closed ([`AdminEvent::Closed`] was emitted).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Closes gracefully: no new calls are accepted (they complete at once with every item
    /// failing [`AdminError::Closed`]); calls in progress go on until they complete or
    /// `timeout` has passed, when what is left of them fails with [`AdminError::Closed`];
    /// then the connections close and [`AdminEvent::Closed`] is emitted. With nothing in
    /// progress that happens now. Calling it again only brings the deadline forward.
    pub fn close(&mut self, timeout: Duration, now: Instant) {
        if self.state.close(timeout, now) {
            self.settle_close(now);
        }
    }

    /// Closes at once: every call in progress completes now, its unanswered items failing
    /// with [`AdminError::Closed`], the connections close and [`AdminEvent::Closed`] is
    /// emitted (unless it already was).
    pub fn abort(&mut self) {
        if self.state != State::Closed {
            self.finish_close();
        }
    }

    /// Ends a graceful close once nothing is in progress or its deadline has passed.
    fn settle_close(&mut self, now: Instant) {
        if self.state.close_is_due(self.ops.is_empty(), now) {
            self.finish_close();
        }
    }

    fn finish_close(&mut self) {
        self.state = State::Closed;
        for (_, mut entry) in std::mem::take(&mut self.ops) {
            entry.op.abandon(AdminError::Closed);
            let outcome = entry.op.finish();
            self.metrics.completed(&outcome);
            self.out.push_back(Output::Event(AdminEvent::Completed {
                id: entry.id,
                outcome,
            }));
        }
        // The network layer fails what it still holds; nobody is left to take the results.
        self.requests.clear();
        self.net.close();
        self.drain_net(None);
        self.out.push_back(Output::Event(AdminEvent::Closed));
    }

    fn start(
        &mut self,
        id: OpId,
        mut op: Box<dyn Operation>,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        if self.state != State::Open {
            op.abandon(AdminError::Closed);
            let outcome = op.finish();
            self.metrics.completed(&outcome);
            self.out
                .push_back(Output::Event(AdminEvent::Completed { id, outcome }));
            return;
        }
        self.next_key += 1;
        let key = self.next_key;
        let deadline = now + timeout.unwrap_or(self.default_timeout);
        self.ops.insert(
            key,
            OpEntry {
                id,
                op,
                deadline,
                in_flight: 0,
                retry_at: None,
            },
        );
        self.with_op(key, now, |op, ctx| op.start(ctx));
        self.drain_net(Some(now));
    }

    /// Runs `f` on a call's operation, then sends what it queued and finishes the call if
    /// nothing of it is outstanding.
    fn with_op(
        &mut self,
        key: u64,
        now: Instant,
        f: impl FnOnce(&mut dyn Operation, &mut Ctx<'_>),
    ) {
        let Some(entry) = self.ops.get_mut(&key) else {
            return;
        };
        let mut ctx = Ctx {
            net: &mut self.net,
            now,
            deadline: entry.deadline,
            retry_backoff: self.retry_backoff,
            sends: Vec::new(),
            retry_at: entry.retry_at,
            next_tag: &mut self.next_tag,
        };
        f(entry.op.as_mut(), &mut ctx);
        let sends = std::mem::take(&mut ctx.sends);
        entry.retry_at = ctx.retry_at;
        for call in sends {
            let left = entry.deadline.saturating_duration_since(now);
            let timeout = self.request_timeout.min(left).max(Duration::from_millis(1));
            let rid = self.net.send_with_timeout(
                call.target,
                call.body,
                call.max_version,
                true,
                timeout,
                now,
            );
            entry.in_flight += 1;
            self.requests.insert(rid, (key, call.tag));
        }
        if entry.in_flight == 0 && entry.retry_at.is_none() {
            let entry = self.ops.remove(&key).expect("present");
            let outcome = entry.op.finish();
            self.metrics.completed(&outcome);
            self.out.push_back(Output::Event(AdminEvent::Completed {
                id: entry.id,
                outcome,
            }));
        }
    }

    /// Moves the network layer's output into ours, handing responses to their calls (none
    /// without `now`: the client has closed and its calls are gone).
    fn drain_net(&mut self, now: Option<Instant>) {
        while let Some(o) = self.net.poll_output() {
            match o {
                Output::Event(NetEvent::Response { id, result }) => {
                    let Some(now) = now else { continue };
                    let Some((key, tag)) = self.requests.remove(&id) else {
                        continue;
                    };
                    if let Some(e) = self.ops.get_mut(&key) {
                        e.in_flight -= 1;
                    }
                    self.with_op(key, now, |o, ctx| o.on_response(tag, result, ctx));
                }
                Output::Event(NetEvent::MetadataUpdated(_)) => {}
                o => {
                    if let Ok(o) = o.for_driver() {
                        self.out.push_back(o);
                    }
                }
            }
        }
    }

    // ---- topics and cluster ----------------------------------------------------------------

    /// Creates topics (CreateTopics at the controller); `validate_only` checks without
    /// creating. Completes with [`AdminOutcome::Topics`]. A topic named twice fails as an
    /// invalid request.
    pub fn create_topics(
        &mut self,
        op: OpId,
        topics: Vec<NewTopic>,
        validate_only: bool,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let mut map = BTreeMap::new();
        let mut dupes = Vec::new();
        for t in topics {
            let name = t.name.clone();
            if map.insert(name.clone(), t).is_some() {
                dupes.push(name);
            }
        }
        let keys = map.keys().cloned().collect();
        let mut call = Batched::new(
            topics::CreateTopics {
                topics: map,
                validate_only,
            },
            keys,
        );
        for d in dupes {
            let e = AdminError::InvalidRequest(format!("topic {d} is named more than once"));
            call = call.settle(d, Err(e));
        }
        self.start(op, Box::new(call), timeout, now)
    }

    /// Deletes topics (DeleteTopics at the controller). Completes with
    /// [`AdminOutcome::Topics`].
    pub fn delete_topics(
        &mut self,
        op: OpId,
        topics: Vec<String>,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let call = Batched::new(topics::DeleteTopics, topics);
        self.start(op, Box::new(call), timeout, now)
    }

    /// Grows topics' partition counts (CreatePartitions at the controller). Completes with
    /// [`AdminOutcome::Topics`].
    pub fn create_partitions(
        &mut self,
        op: OpId,
        partitions: BTreeMap<String, NewPartitions>,
        validate_only: bool,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let keys = partitions.keys().cloned().collect();
        let call = Batched::new(
            topics::CreatePartitions {
                topics: partitions,
                validate_only,
            },
            keys,
        );
        self.start(op, Box::new(call), timeout, now)
    }

    /// Lists topics (Metadata for all); internal topics only with `list_internal`. Completes
    /// with [`AdminOutcome::TopicListing`].
    pub fn list_topics(
        &mut self,
        op: OpId,
        list_internal: bool,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let call = Batched::new(topics::ListTopics { list_internal }, vec![()]);
        self.start(op, Box::new(call), timeout, now)
    }

    /// Describes topics (Metadata). Completes with [`AdminOutcome::TopicDescriptions`].
    pub fn describe_topics(
        &mut self,
        op: OpId,
        topics: Vec<String>,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let call = Batched::new(topics::DescribeTopics, topics);
        self.start(op, Box::new(call), timeout, now)
    }

    /// Describes the cluster (DescribeCluster, or Metadata where the broker lacks it).
    /// Completes with [`AdminOutcome::Cluster`].
    pub fn describe_cluster(&mut self, op: OpId, timeout: Option<Duration>, now: Instant) {
        let call = Batched::new(topics::DescribeCluster { legacy: false }, vec![()]);
        self.start(op, Box::new(call), timeout, now)
    }

    // ---- configs ---------------------------------------------------------------------------

    /// Describes topic and broker configs (DescribeConfigs; broker resources at that broker).
    /// Completes with [`AdminOutcome::Configs`].
    pub fn describe_configs(
        &mut self,
        op: OpId,
        resources: Vec<ConfigResource>,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let call = Batched::new(configs::DescribeConfigs, resources);
        self.start(op, Box::new(call), timeout, now)
    }

    /// Changes configs (IncrementalAlterConfigs; on brokers without it, the legacy
    /// AlterConfigs with the resource's current overrides plus the changes). Completes with
    /// [`AdminOutcome::Altered`].
    pub fn alter_configs(
        &mut self,
        op: OpId,
        changes: BTreeMap<ConfigResource, Vec<AlterConfigOp>>,
        validate_only: bool,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let keys = changes.keys().cloned().collect();
        let call = Batched::new(
            configs::AlterConfigs {
                changes,
                validate_only,
                legacy: false,
                current: BTreeMap::new(),
            },
            keys,
        );
        self.start(op, Box::new(call), timeout, now)
    }

    // ---- groups ----------------------------------------------------------------------------

    /// Lists consumer groups (ListGroups at every broker, gathered). Completes with
    /// [`AdminOutcome::GroupListing`].
    pub fn list_consumer_groups(&mut self, op: OpId, timeout: Option<Duration>, now: Instant) {
        self.start(op, Box::new(groups::ListGroups::new()), timeout, now)
    }

    /// Describes consumer groups at each coordinator: ConsumerGroupDescribe (Kafka 4.0+),
    /// then DescribeGroups for the groups it does not know as consumer-protocol groups
    /// (classic groups, missing groups) and for all of them once a coordinator lacks the API,
    /// as Java's admin client does. Completes with [`AdminOutcome::GroupDescriptions`].
    pub fn describe_consumer_groups(
        &mut self,
        op: OpId,
        groups: Vec<String>,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let call = Batched::new(groups::DescribeGroups::new(), groups);
        self.start(op, Box::new(call), timeout, now)
    }

    /// Deletes consumer groups (DeleteGroups at each coordinator; a group must be empty).
    /// Completes with [`AdminOutcome::Groups`].
    pub fn delete_consumer_groups(
        &mut self,
        op: OpId,
        groups: Vec<String>,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let call = Batched::new(groups::DeleteGroups, groups);
        self.start(op, Box::new(call), timeout, now)
    }

    /// A group's committed offsets (OffsetFetch), of `partitions` or of every partition.
    /// Completes with [`AdminOutcome::GroupOffsets`].
    pub fn list_consumer_group_offsets(
        &mut self,
        op: OpId,
        group: &str,
        partitions: Option<Vec<TopicPartition>>,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let call = Batched::new(
            groups::ListGroupOffsets {
                group: group.to_owned(),
                partitions,
            },
            vec![()],
        );
        self.start(op, Box::new(call), timeout, now)
    }

    /// Commits offsets for a group from outside it (OffsetCommit, generation -1, no member,
    /// as Java's admin client; the group must have no active members). Completes with
    /// [`AdminOutcome::Partitions`].
    pub fn alter_consumer_group_offsets(
        &mut self,
        op: OpId,
        group: &str,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let keys = offsets.keys().cloned().collect();
        let call = Batched::new(
            groups::AlterGroupOffsets {
                group: group.to_owned(),
                offsets,
            },
            keys,
        );
        self.start(op, Box::new(call), timeout, now)
    }

    /// Deletes a group's committed offsets (OffsetDelete). Completes with
    /// [`AdminOutcome::Partitions`].
    pub fn delete_consumer_group_offsets(
        &mut self,
        op: OpId,
        group: &str,
        partitions: Vec<TopicPartition>,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let call = Batched::new(
            groups::DeleteGroupOffsets {
                group: group.to_owned(),
            },
            partitions,
        );
        self.start(op, Box::new(call), timeout, now)
    }

    // ---- records, log dirs, ACLs -----------------------------------------------------------

    /// Deletes records before the given offsets (DeleteRecords at each partition's leader;
    /// -1 means the high watermark). Completes with [`AdminOutcome::DeletedRecords`].
    pub fn delete_records(
        &mut self,
        op: OpId,
        before: BTreeMap<TopicPartition, i64>,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let keys = before.keys().cloned().collect();
        let call = Batched::new(groups::DeleteRecords { before }, keys);
        self.start(op, Box::new(call), timeout, now)
    }

    /// Describes the log dirs of brokers (DescribeLogDirs at each). Completes with
    /// [`AdminOutcome::LogDirs`].
    pub fn describe_log_dirs(
        &mut self,
        op: OpId,
        brokers: Vec<NodeId>,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let call = Batched::new(acls::DescribeLogDirs, brokers);
        self.start(op, Box::new(call), timeout, now)
    }

    /// The ACLs matching `filter` (DescribeAcls). Completes with [`AdminOutcome::Acls`].
    pub fn describe_acls(
        &mut self,
        op: OpId,
        filter: AclBindingFilter,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let call = Batched::new(acls::DescribeAcls { filter }, vec![()]);
        self.start(op, Box::new(call), timeout, now)
    }

    /// Creates ACLs (CreateAcls). Completes with [`AdminOutcome::CreatedAcls`].
    pub fn create_acls(
        &mut self,
        op: OpId,
        acls: Vec<AclBinding>,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let call = Batched::new(acls::CreateAcls, acls);
        self.start(op, Box::new(call), timeout, now)
    }

    /// Deletes the ACLs matching each filter (DeleteAcls). Completes with
    /// [`AdminOutcome::DeletedAcls`].
    pub fn delete_acls(
        &mut self,
        op: OpId,
        filters: Vec<AclBindingFilter>,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let call = Batched::new(acls::DeleteAcls, filters);
        self.start(op, Box::new(call), timeout, now)
    }

    // ---- transactions ----------------------------------------------------------------------

    /// Describes transactional ids' transactions (DescribeTransactions at each id's
    /// transaction coordinator, found with FindCoordinator key type 1). Completes with
    /// [`AdminOutcome::TransactionDescriptions`]; an id the coordinator does not know fails
    /// with TRANSACTIONAL_ID_NOT_FOUND.
    pub fn describe_transactions(
        &mut self,
        op: OpId,
        transactional_ids: Vec<String>,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        // An empty id cannot be looked up: refused here rather than sent.
        let empty = transactional_ids.iter().any(String::is_empty);
        let mut call = Batched::new(transactions::DescribeTransactions, transactional_ids);
        if empty {
            let e = AdminError::InvalidRequest("a transactional id must not be empty".into());
            call = call.settle(String::new(), Err(e));
        }
        self.start(op, Box::new(call), timeout, now)
    }

    /// Lists the transactions every broker coordinates (ListTransactions at each, gathered
    /// per broker), narrowed by `options`. Completes with [`AdminOutcome::TransactionListing`].
    pub fn list_transactions(
        &mut self,
        op: OpId,
        options: ListTransactionsOptions,
        timeout: Option<Duration>,
        now: Instant,
    ) {
        let call = transactions::ListTransactions::new(options);
        self.start(op, Box::new(call), timeout, now)
    }

    fn fire_retries(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .ops
            .iter()
            .filter(|(_, e)| e.retry_at.is_some_and(|t| t <= now))
            .map(|(key, _)| *key)
            .collect();
        for key in due {
            if let Some(e) = self.ops.get_mut(&key) {
                e.retry_at = None;
            }
            self.with_op(key, now, |op, ctx| op.on_retry(ctx));
        }
    }
}

impl ClientCore for AdminCore {
    type Event = AdminEvent;

    fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        self.net.handle_connected(conn, now);
        self.drain_net(Some(now));
        self.settle_close(now);
    }

    fn handle_data(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        self.net.handle_data(conn, data, now);
        self.drain_net(Some(now));
        self.settle_close(now);
    }

    fn handle_bytes(&mut self, conn: ConnId, data: bytes::Bytes, now: Instant) {
        self.net.handle_bytes(conn, data, now);
        self.drain_net(Some(now));
        self.settle_close(now);
    }

    fn handle_closed(&mut self, conn: ConnId, reason: CloseReason, now: Instant) {
        self.net.handle_closed(conn, reason, now);
        self.drain_net(Some(now));
        self.settle_close(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.net.handle_timeout(now);
        self.drain_net(Some(now));
        self.fire_retries(now);
        self.drain_net(Some(now));
        self.settle_close(now);
    }

    fn poll_output(&mut self) -> Option<Output<AdminEvent>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let mut next = Deadline::from(self.net.poll_timeout());
        next.fold(self.state.deadline());
        next.extend(self.ops.values().map(|e| e.retry_at));
        next.earliest()
    }
}

#[cfg(test)]
mod tests;
