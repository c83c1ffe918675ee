//! Transaction calls, as Java's `Admin#describeTransactions` and `Admin#listTransactions`:
//! DescribeTransactions at each transactional id's coordinator (FindCoordinator key type 1,
//! cached by the network layer) and ListTransactions at every broker, gathered per broker.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use crate::consumer::TopicPartition;
use crate::network::{CoordinatorKind, NetError, NodeId, Response, Target};
use crate::protocol::{
    ApiKey, DescribeTransactionsRequest, ErrorCode, ListTransactionsRequest, MetadataRequest,
    RequestBody,
};

use super::engine::{answer, Api, Call, Ctx, NoAnswer, Operation, Refresh, Verdict};
use super::types::AdminError;
use super::AdminOutcome;

/// A transaction's state as the coordinator names it (Java's `TransactionState`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TransactionState {
    /// Records or partitions have been added since the transaction began.
    Ongoing,
    /// The coordinator is writing abort markers.
    PrepareAbort,
    /// The coordinator is writing commit markers.
    PrepareCommit,
    /// The last transaction was aborted.
    CompleteAbort,
    /// The last transaction was committed.
    CompleteCommit,
    /// The producer has been initialized and no transaction has begun.
    Empty,
    /// A newer instance is fencing this one: the open transaction is being aborted.
    PrepareEpochFence,
    /// A state this client does not know, with the broker's name for it.
    Unknown(String),
}

impl TransactionState {
    /// Every state this client knows, in the order Java lists them.
    pub const KNOWN: [TransactionState; 7] = [
        TransactionState::Ongoing,
        TransactionState::PrepareAbort,
        TransactionState::PrepareCommit,
        TransactionState::CompleteAbort,
        TransactionState::CompleteCommit,
        TransactionState::Empty,
        TransactionState::PrepareEpochFence,
    ];

    /// The name on the wire (`"Ongoing"`, `"CompleteCommit"`, ...).
    pub fn name(&self) -> &str {
        match self {
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::Empty => "Empty",
            TransactionState::PrepareEpochFence => "PrepareEpochFence",
            TransactionState::Unknown(name) => name,
        }
    }

    /// The state a broker's name stands for; a name this client does not know is kept as
    /// [`TransactionState::Unknown`].
    pub fn parse(name: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|s| s.name() == name)
            .unwrap_or_else(|| TransactionState::Unknown(name.to_owned()))
    }
}

impl std::fmt::Display for TransactionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A transactional id's current (or last) transaction (Java's `TransactionDescription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The broker coordinating the transactional id.
    pub coordinator_id: NodeId,
    /// The transaction's state.
    pub state: TransactionState,
    /// The producer id the transactional id holds.
    pub producer_id: i64,
    /// The producer epoch (bumped by every `init_transactions`).
    pub producer_epoch: i16,
    /// The transaction timeout the producer asked for, in milliseconds.
    pub transaction_timeout_ms: i32,
    /// When the open transaction began (ms since the epoch); `None` when none is open.
    pub transaction_start_time_ms: Option<i64>,
    /// The partitions added to the transaction.
    pub topic_partitions: BTreeSet<TopicPartition>,
}

/// One transactional id in a listing (Java's `TransactionListing`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TransactionListing {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id it holds.
    pub producer_id: i64,
    /// Its transaction's state.
    pub state: TransactionState,
}

/// Which transactions `list_transactions` returns (Java's `ListTransactionsOptions`): all of
/// them by default; each filter that is set narrows the listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListTransactionsOptions {
    /// Only transactions in one of these states (empty: any state).
    pub filter_states: Vec<TransactionState>,
    /// Only transactions of one of these producer ids (empty: any producer).
    pub filter_producer_ids: Vec<i64>,
    /// Only transactions open for longer than this (KIP-994, ListTransactions v1; a broker
    /// with v0 only fails its part of the listing as unsupported).
    pub filter_on_duration: Option<Duration>,
}

impl ListTransactionsOptions {
    /// Only transactions in one of `states`.
    pub fn filter_states(mut self, states: impl IntoIterator<Item = TransactionState>) -> Self {
        self.filter_states = states.into_iter().collect();
        self
    }

    /// Only transactions of one of `producer_ids`.
    pub fn filter_producer_ids(mut self, producer_ids: impl IntoIterator<Item = i64>) -> Self {
        self.filter_producer_ids = producer_ids.into_iter().collect();
        self
    }

    /// Only transactions open for longer than `duration`.
    pub fn filter_on_duration(mut self, duration: Duration) -> Self {
        self.filter_on_duration = Some(duration);
        self
    }
}

/// The result of `list_transactions` (Java's `ListTransactionsResult`): each broker's
/// listing, or why that broker gave none.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransactionsListing {
    /// Per broker, the transactions it coordinates.
    pub by_broker: BTreeMap<NodeId, Result<Vec<TransactionListing>, AdminError>>,
}

impl TransactionsListing {
    /// Every broker's transactions, sorted by transactional id; the first broker error if any
    /// broker failed (as Java's `all()`: a partial listing could hide the transaction sought).
    pub fn all(&self) -> Result<Vec<TransactionListing>, AdminError> {
        let mut all = Vec::new();
        for r in self.by_broker.values() {
            all.extend(r.as_ref().map_err(Clone::clone)?.iter().cloned());
        }
        all.sort();
        Ok(all)
    }
}

fn coordinator(id: &str) -> Target {
    Target::Coordinator {
        kind: CoordinatorKind::Transaction,
        key: id.to_owned(),
    }
}

/// DescribeTransactions: the ids whose coordinator is known go together, one request per
/// coordinator (as Java batches them); an id whose coordinator is not known yet goes alone,
/// so that its lookup holds up no other id.
pub(crate) struct DescribeTransactions;

impl Api for DescribeTransactions {
    type Key = String;
    type Value = TransactionDescription;

    fn requests(&mut self, keys: &[String], ctx: &mut Ctx<'_>) -> Vec<(Call, Vec<String>)> {
        let mut by_node: BTreeMap<NodeId, Vec<String>> = BTreeMap::new();
        let mut alone = Vec::new();
        for id in keys {
            match ctx.net.coordinator(CoordinatorKind::Transaction, id) {
                Some(node) => by_node.entry(node).or_default().push(id.clone()),
                None => alone.push(vec![id.clone()]),
            }
        }
        by_node
            .into_values()
            .chain(alone)
            .map(|ids| {
                // Routed by the first id: the others share its coordinator (if that moved,
                // they come back NOT_COORDINATOR and are looked up again).
                let call = Call {
                    target: coordinator(&ids[0]),
                    body: RequestBody::DescribeTransactions(DescribeTransactionsRequest {
                        transactional_ids: ids.clone(),
                        ..Default::default()
                    }),
                    max_version: None,
                    tag: 0,
                };
                (call, ids)
            })
            .collect()
    }

    fn parse(
        &mut self,
        result: Result<Response, NetError>,
        keys: &[String],
    ) -> Vec<(String, Verdict<TransactionDescription>)> {
        let api = ApiKey::DescribeTransactions;
        let (node, r) = match result {
            Err(e) => {
                return keys
                    .iter()
                    .map(|k| {
                        let refresh = Refresh::TxnCoordinator(k.clone());
                        (k.clone(), NoAnswer::Net(e.clone()).verdict(refresh))
                    })
                    .collect()
            }
            Ok(resp) => match (resp.node, resp.body_as::<DescribeTransactionsRequest>()) {
                (node, Ok(r)) => (node, r),
                (_, Err(u)) => return NoAnswer::Unexpected(u).each(keys, Refresh::None),
            },
        };
        r.transaction_states
            .into_iter()
            .map(|t| {
                let id = t.transactional_id.clone();
                let verdict = match t.error() {
                    ErrorCode::NONE => Verdict::Done(Ok(description(node, t))),
                    code @ (ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE) => {
                        Verdict::Retry(
                            AdminError::broker(api, code, None),
                            Refresh::TxnCoordinator(id.clone()),
                        )
                    }
                    code @ ErrorCode::COORDINATOR_LOAD_IN_PROGRESS => {
                        Verdict::Retry(AdminError::broker(api, code, None), Refresh::None)
                    }
                    code => Verdict::Done(Err(AdminError::broker(api, code, None))),
                };
                (id, verdict)
            })
            .collect()
    }

    fn finish(
        self,
        results: BTreeMap<String, Result<TransactionDescription, AdminError>>,
    ) -> AdminOutcome {
        AdminOutcome::TransactionDescriptions(results)
    }
}

fn description(
    node: NodeId,
    t: crate::protocol::describe_transactions::response::TransactionState,
) -> TransactionDescription {
    TransactionDescription {
        coordinator_id: node,
        state: TransactionState::parse(&t.transaction_state),
        producer_id: t.producer_id,
        producer_epoch: t.producer_epoch,
        transaction_timeout_ms: t.transaction_timeout_ms,
        transaction_start_time_ms: Some(t.transaction_start_time_ms).filter(|ms| *ms >= 0),
        topic_partitions: t
            .topics
            .into_iter()
            .flat_map(|topic| {
                let name: std::sync::Arc<str> = topic.topic.into();
                topic
                    .partitions
                    .into_iter()
                    .map(move |p| TopicPartition::new(name.clone(), p))
            })
            .collect(),
    }
}

/// ListTransactions on every broker, each broker's answer kept apart. First a Metadata
/// request names the brokers.
pub(crate) struct ListTransactions {
    options: ListTransactionsOptions,
    /// Whether the call was started (a call refused by a closing client never is).
    started: bool,
    metadata: Option<u64>,
    metadata_error: Option<AdminError>,
    retry_metadata: bool,
    asked: HashMap<u64, NodeId>,
    retry: Vec<NodeId>,
    by_broker: BTreeMap<NodeId, Result<Vec<TransactionListing>, AdminError>>,
}

impl ListTransactions {
    pub fn new(options: ListTransactionsOptions) -> Self {
        ListTransactions {
            options,
            started: false,
            metadata: None,
            metadata_error: None,
            retry_metadata: false,
            asked: HashMap::new(),
            retry: Vec::new(),
            by_broker: BTreeMap::new(),
        }
    }

    fn ask_metadata(&mut self, ctx: &mut Ctx<'_>) {
        let body = RequestBody::Metadata(MetadataRequest {
            topics: Some(Vec::new()),
            allow_auto_topic_creation: false,
            ..Default::default()
        });
        self.metadata = Some(ctx.send(Target::Any, body, None));
    }

    fn ask(&mut self, node: NodeId, ctx: &mut Ctx<'_>) {
        let o = &self.options;
        let body = RequestBody::ListTransactions(ListTransactionsRequest {
            state_filters: o
                .filter_states
                .iter()
                .map(|s| s.name().to_owned())
                .collect(),
            producer_id_filters: o.filter_producer_ids.clone(),
            duration_filter: o
                .filter_on_duration
                .map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            ..Default::default()
        });
        let tag = ctx.send(Target::Node(node), body, None);
        self.asked.insert(tag, node);
    }

    /// Retries `node` (the Metadata step for `None`) after the backoff, or records `error`
    /// as its final answer when the deadline does not allow another try.
    fn retry_or_fail(&mut self, node: Option<NodeId>, error: AdminError, ctx: &mut Ctx<'_>) {
        if ctx.retry_later() {
            match node {
                Some(n) => self.retry.push(n),
                None => self.retry_metadata = true,
            }
        } else {
            self.fail(node, error);
        }
    }

    fn fail(&mut self, node: Option<NodeId>, error: AdminError) {
        match node {
            Some(n) => {
                self.by_broker.insert(n, Err(error));
            }
            None => self.metadata_error = Some(error),
        }
    }

    fn on_no_answer(&mut self, node: Option<NodeId>, e: NoAnswer, ctx: &mut Ctx<'_>) {
        match e.verdict::<()>(Refresh::None) {
            Verdict::Retry(error, _) => self.retry_or_fail(node, error, ctx),
            Verdict::Done(Err(error)) => self.fail(node, error),
            Verdict::Done(Ok(())) | Verdict::Again => {}
        }
    }

    fn on_listing(&mut self, node: NodeId, resp: Response, ctx: &mut Ctx<'_>) {
        let version = resp.version;
        let r = match resp.body_as::<ListTransactionsRequest>() {
            Ok(r) => r,
            Err(u) => return self.on_no_answer(Some(node), NoAnswer::Unexpected(u), ctx),
        };
        let api = ApiKey::ListTransactions;
        let code = r.error();
        if !code.is_ok() {
            let error = AdminError::broker(api, code, None);
            if code.is_retriable() {
                self.retry_or_fail(Some(node), error, ctx);
            } else {
                self.fail(Some(node), error);
            }
            return;
        }
        if version < 1 && self.options.filter_on_duration.is_some() {
            // v0 has no duration filter: the broker listed transactions of any age, which
            // would be a wrong answer rather than a partial one.
            let e = NetError::Unsupported {
                api,
                broker: format!("broker {node}"),
                detail: "filtering on duration needs ListTransactions v1 (Kafka 3.8)".into(),
            };
            return self.fail(Some(node), AdminError::Net(e));
        }
        let listing = r
            .transaction_states
            .into_iter()
            .map(|t| TransactionListing {
                state: TransactionState::parse(&t.transaction_state),
                transactional_id: t.transactional_id,
                producer_id: t.producer_id,
            })
            .collect();
        self.by_broker.insert(node, Ok(listing));
    }
}

impl Operation for ListTransactions {
    fn start(&mut self, ctx: &mut Ctx<'_>) {
        self.started = true;
        self.ask_metadata(ctx);
    }

    fn on_response(&mut self, tag: u64, result: Result<Response, NetError>, ctx: &mut Ctx<'_>) {
        if self.metadata == Some(tag) {
            self.metadata = None;
            match answer::<MetadataRequest>(result) {
                Ok(m) => {
                    for b in &m.brokers {
                        self.ask(b.node_id, ctx);
                    }
                }
                Err(e) => self.on_no_answer(None, e, ctx),
            }
            return;
        }
        let Some(node) = self.asked.remove(&tag) else {
            return;
        };
        match result {
            Ok(resp) => self.on_listing(node, resp, ctx),
            Err(e) => self.on_no_answer(Some(node), NoAnswer::Net(e), ctx),
        }
    }

    fn on_retry(&mut self, ctx: &mut Ctx<'_>) {
        if std::mem::take(&mut self.retry_metadata) {
            self.ask_metadata(ctx);
        }
        for node in std::mem::take(&mut self.retry) {
            self.ask(node, ctx);
        }
    }

    fn abandon(&mut self, error: AdminError) {
        let metadata_open = self.metadata.take().is_some();
        if !self.started || metadata_open || std::mem::take(&mut self.retry_metadata) {
            self.metadata_error.get_or_insert(error.clone());
        }
        let unanswered: Vec<NodeId> = self
            .asked
            .drain()
            .map(|(_, n)| n)
            .chain(std::mem::take(&mut self.retry))
            .collect();
        for n in unanswered {
            self.by_broker.insert(n, Err(error.clone()));
        }
    }

    fn finish(self: Box<Self>) -> AdminOutcome {
        // Without the broker list nothing else was asked: the call as a whole failed.
        let result = match self.metadata_error {
            Some(e) if self.by_broker.is_empty() => Err(e),
            _ => Ok(TransactionsListing {
                by_broker: self.by_broker,
            }),
        };
        AdminOutcome::TransactionListing(result)
    }
}
