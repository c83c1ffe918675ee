//! The transactional producer's commands and coordinator requests: `init_transactions`,
//! `begin_transaction`, `send_offsets_to_transaction`, `commit_transaction`,
//! `abort_transaction`, and the InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
//! TxnOffsetCommit and EndTxn requests they need. The state machine and the error classes
//! are in `producer/txn`; this file sends and answers.
//!
//! Coordinator requests go out one at a time (as in Java), AddPartitionsToTxn first, so a
//! partition is always registered before its first batch is drained, and EndTxn only once
//! every record of the transaction completed. Under transaction protocol v2 (KIP-890, see
//! `producer/txn`) Produce v12 and TxnOffsetCommit v5 register partitions and groups
//! themselves, and EndTxn v5 hands back the producer id and epoch of the next transaction.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{net_error_retriable, ProducerCore, ProducerEvent};
use crate::codec::EncodeError;
use crate::consumer::{GroupMetadata, OffsetAndMetadata, TopicPartition};
use crate::network::{CoordinatorKind, NetError, RequestId, Response, Target};
use crate::producer::error::ProduceError;
use crate::producer::txn::{classify, ErrorClass, PendingOffsets, Step, TxnCall, TxnState};
use crate::protocol::add_partitions_to_txn::request::AddPartitionsToTxnTopic;
use crate::protocol::txn_offset_commit::request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use crate::protocol::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiKey, EndTxnRequest, ErrorCode,
    InitProducerIdRequest, RequestBody, ResponseBody, TxnOffsetCommitRequest,
};
use crate::OpId;

/// AddPartitionsToTxn v4+ is the brokers' batched form (KIP-890 part 1): clients stop at v3.
const ADD_PARTITIONS_MAX: i16 = 3;
/// EndTxn and TxnOffsetCommit at protocol v1 and v2: v5 of each means v2 (KIP-890 part 2).
const END_TXN_MAX_V1: i16 = 4;
const END_TXN_MAX_V2: i16 = 5;
const TXN_OFFSET_COMMIT_MAX_V1: i16 = 4;
const TXN_OFFSET_COMMIT_MAX_V2: i16 = 5;
/// The finalized feature whose level 2 enables transaction protocol v2.
const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";

impl ProducerCore {
    /// The transactional state, `None` without `transactional_id`.
    pub fn transaction_state(&self) -> Option<TxnState> {
        self.txn.as_ref().map(|t| t.state)
    }

    /// Answers a transactional call.
    fn txn_answer(&mut self, op: OpId, result: Result<(), ProduceError>) {
        self.event(ProducerEvent::Transaction { op, result });
    }

    /// Checks a transactional call: `Err` answers it at once (not transactional, fatal,
    /// wrong state, another call pending); `Ok(true)` means it joined the same call in
    /// progress.
    fn txn_check(&mut self, call: TxnCall, op: OpId, now: Instant) -> Option<bool> {
        let result = match (&self.fatal, &self.txn) {
            (_, None) => Err(ProduceError::InvalidConfig(format!(
                "{} needs transactional_id",
                call.name()
            ))),
            (Some(e), _) => Err(e.clone()),
            (None, Some(_)) if self.closing.is_some() || self.closed => Err(ProduceError::Closed),
            (None, Some(t)) => t.check_call(call),
        };
        match result {
            Ok(joined) => {
                let deadline = now + self.max_block;
                let txn = self.txn.as_mut().expect("checked above");
                if joined {
                    if let Some(old) = txn.call_op.replace(op) {
                        // Java answers a repeated call with the same result; the earlier op
                        // still gets one, not the timeout it would otherwise never see.
                        self.txn_answer(
                            old,
                            Err(ProduceError::TxnPending {
                                call: call.name(),
                                pending: call.name(),
                            }),
                        );
                    }
                    let txn = self.txn.as_mut().expect("checked above");
                    txn.call_deadline = Some(deadline);
                } else {
                    txn.start_call(call, op, deadline);
                }
                Some(joined)
            }
            Err(e) => {
                self.txn_answer(op, Err(e));
                None
            }
        }
    }

    /// Starts the transactional producer (Java's `initTransactions`): finds the transaction
    /// coordinator and sends InitProducerId with `transactional_id`, which fences any
    /// earlier producer with the same id and completes or aborts what it left open. The
    /// result comes as [`ProducerEvent::Transaction`] with `op`; until then (and unless it
    /// failed) nothing else transactional is possible. Retried on
    /// COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS and coordinator moves; the op
    /// is answered with [`ProduceError::MaxBlockTimeout`] after `max_block_ms`, and calling
    /// again continues the same initialization.
    pub fn init_transactions(&mut self, op: OpId, now: Instant) {
        if self.txn_check(TxnCall::Init, op, now) == Some(false) {
            let txn = self.txn.as_mut().expect("checked");
            txn.state = TxnState::Initializing;
            txn.step = Some(Step::InitProducerId);
        }
        self.run(now);
    }

    /// Opens a transaction (Java's `beginTransaction`): records sent from now on belong to
    /// it. Local only; refused unless the producer is initialized with no transaction open.
    /// The transaction speaks protocol v2 (KIP-890) when the brokers finalized
    /// `transaction.version` at level 2 or more and offer Produce v12 and EndTxn v5, v1
    /// otherwise (see [`ProducerCore::transaction_protocol_v2`]).
    pub fn begin_transaction(&mut self) -> Result<(), ProduceError> {
        if let Some(e) = &self.fatal {
            return Err(e.clone());
        }
        let v2 = self.brokers_offer_txn_v2();
        match &mut self.txn {
            None => Err(ProduceError::InvalidConfig(
                "begin_transaction needs transactional_id".into(),
            )),
            Some(t) => t.begin(v2),
        }
    }

    /// Whether the current (or last) transaction speaks protocol v2 (KIP-890 part 2);
    /// `false` without `transactional_id`.
    pub fn transaction_protocol_v2(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.v2)
    }

    /// Java's `maybeUpdateTransactionV2Enabled`: the newest finalized features the brokers
    /// reported enable v2, and (unlike Java, which trusts the feature alone) the broker
    /// that reported them offers the versions v2 needs.
    fn brokers_offer_txn_v2(&self) -> bool {
        let Some(table) = self.net.newest_features() else {
            return false;
        };
        let max = |api| table.broker_range(api).map_or(-1, |(_, max)| max);
        table
            .finalized_feature(TRANSACTION_VERSION_FEATURE)
            .is_some_and(|level| level >= 2)
            && max(ApiKey::Produce) >= 12
            && max(ApiKey::EndTxn) >= END_TXN_MAX_V2
    }

    /// Adds a consumer group's offsets to the open transaction (Java's
    /// `sendOffsetsToTransaction`, KIP-447): AddOffsetsToTxn to the transaction
    /// coordinator, then TxnOffsetCommit to the group's coordinator with the member's
    /// generation, member id and group instance id, so a member that lost its partitions
    /// cannot commit. The offsets become visible only if the transaction commits. The
    /// result comes as [`ProducerEvent::Transaction`]; an error there is abortable (the
    /// group fenced the member: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID)
    /// or fatal, as for the other calls.
    pub fn send_offsets_to_transaction(
        &mut self,
        op: OpId,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
        group: GroupMetadata,
        now: Instant,
    ) {
        if group.group_id.is_empty() {
            self.txn_answer(
                op,
                Err(ProduceError::InvalidArgument(
                    "send_offsets_to_transaction needs the metadata of a group consumer (the group id is empty)".into(),
                )),
            );
            return;
        }
        match self.txn_check(TxnCall::SendOffsets, op, now) {
            Some(false) if offsets.is_empty() => {
                // Nothing to add (Java sends nothing either).
                let txn = self.txn.as_mut().expect("checked");
                if let Some(op) = txn.finish_call() {
                    self.txn_answer(op, Ok(()));
                }
            }
            Some(false) => {
                let txn = self.txn.as_mut().expect("checked");
                txn.offsets = Some(PendingOffsets { offsets, group });
                txn.step = Some(if txn.v2 {
                    // TxnOffsetCommit v5 adds the group to the transaction itself.
                    txn.started = true;
                    Step::CommitOffsets
                } else {
                    Step::AddOffsets
                });
            }
            _ => {}
        }
        self.run(now);
    }

    /// Commits the open transaction (Java's `commitTransaction`): sends every buffered
    /// record at once (ignoring `linger_ms`), waits for them all, then sends EndTxn. The
    /// result comes as [`ProducerEvent::Transaction`]: `Ok` once the coordinator committed;
    /// an abortable error (a record of the transaction failed, a partition could not be
    /// added) means the transaction must be aborted; a fatal one ends the producer.
    pub fn commit_transaction(&mut self, op: OpId, now: Instant) {
        if self.txn_check(TxnCall::Commit, op, now) == Some(false) {
            let txn = self.txn.as_mut().expect("checked");
            txn.state = TxnState::Committing;
            txn.step = Some(Step::EndTxn { commit: true });
        }
        self.run(now);
    }

    /// Aborts the open transaction (Java's `abortTransaction`), also after an abortable
    /// error: records of the transaction not yet sent fail at once with
    /// [`ProduceError::TxnAborted`], those in flight complete, then EndTxn marks the
    /// transaction aborted (and, if a record's sequence was left unresolved, InitProducerId
    /// bumps the epoch). Refused after a fatal error. The result comes as
    /// [`ProducerEvent::Transaction`].
    pub fn abort_transaction(&mut self, op: OpId, now: Instant) {
        if self.txn_check(TxnCall::Abort, op, now) == Some(false) {
            let txn = self.txn.as_mut().expect("checked");
            txn.state = TxnState::Aborting;
            txn.new_partitions.clear();
            txn.offsets = None;
            txn.step = Some(Step::EndTxn { commit: false });
            self.fail_unsent(ProduceError::TxnAborted, now);
        }
        self.run(now);
    }

    /// Fails every record not yet sent (queued in batches or waiting for metadata).
    fn fail_unsent(&mut self, e: ProduceError, now: Instant) {
        for b in self.acc.take_all() {
            self.fail_batch(b, e.clone(), now);
        }
        for (_, q) in std::mem::take(&mut self.awaiting_metadata) {
            for q in q {
                self.fail_record(q.op, q.reserved, q.gen, e.clone(), now);
            }
        }
    }

    /// The transaction hit an abortable error: the call in progress fails with it.
    pub(super) fn txn_abortable(&mut self, e: ProduceError) {
        let Some(txn) = &mut self.txn else { return };
        tracing::info!(transactional_id = %txn.id, error = %e, "transaction must be aborted");
        if let Some((op, e)) = txn.set_abortable(e) {
            self.txn_answer(op, Err(e));
        }
    }

    /// The transactional producer cannot continue.
    fn txn_fatal(&mut self, what: String, now: Instant) {
        self.go_fatal(ProduceError::Fatal(what), now);
    }

    /// Fails the transactional call in progress with the producer's fatal error (from
    /// `go_fatal`).
    pub(super) fn txn_on_fatal(&mut self, e: &ProduceError) {
        if let Some(op) = self.txn.as_mut().and_then(|t| t.set_fatal()) {
            self.txn_answer(op, Err(e.clone()));
        }
    }

    /// Answers the call in progress with `Closed` (the producer closed).
    pub(super) fn txn_on_close(&mut self) {
        if let Some(op) = self.txn.as_mut().and_then(|t| t.finish_call()) {
            self.txn_answer(op, Err(ProduceError::Closed));
        }
    }

    /// The transactional part of the sender loop: the call's timeout, failing what an
    /// abortable error stranded, and the next coordinator request.
    pub(super) fn run_txn(&mut self, now: Instant) {
        let Some(txn) = &mut self.txn else { return };
        if txn.call_deadline.is_some_and(|d| now >= d) {
            txn.call_deadline = None;
            if let Some(op) = txn.call_op.take() {
                let what = format!(
                    "{} to complete",
                    txn.call.map_or("the transactional call", |c| c.name())
                );
                let after = self.max_block;
                self.txn_answer(op, Err(ProduceError::MaxBlockTimeout { what, after }));
            }
        }
        let Some(txn) = &mut self.txn else { return };
        if txn.state == TxnState::AbortableError
            && (!self.acc.is_empty() || !self.awaiting_metadata.is_empty())
        {
            // Java's `abortUndrainedBatches`: nothing of a doomed transaction goes out, and a
            // close does not wait for it.
            let e = txn.error.clone().unwrap_or(ProduceError::TxnAborted);
            self.fail_unsent(e, now);
        }
        let Some(txn) = &mut self.txn else { return };
        if !txn.may_request(now) {
            return;
        }
        if matches!(txn.state, TxnState::InTransaction | TxnState::Committing)
            && !txn.new_partitions.is_empty()
        {
            self.send_add_partitions(now);
            return;
        }
        let Some(step) = txn.step.clone() else { return };
        match step {
            Step::EndTxn { commit } => {
                if self.pending > 0 || !self.in_flight.is_empty() {
                    // Every record of the transaction completes first.
                    return;
                }
                let txn = self.txn.as_mut().expect("checked");
                if !txn.started {
                    // The coordinator never heard of this transaction.
                    self.on_txn_ended(commit, now);
                    return;
                }
                self.send_txn_step(step, now);
            }
            step => self.send_txn_step(step, now),
        }
    }

    fn send_add_partitions(&mut self, now: Instant) {
        let Some(txn) = &mut self.txn else { return };
        let Some(idem) = &self.idem else { return };
        let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in &txn.new_partitions {
            topics.entry(t.to_string()).or_default().push(*p);
        }
        txn.adding = std::mem::take(&mut txn.new_partitions);
        let body = AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: txn.id.clone(),
            v3_and_below_producer_id: idem.producer_id,
            v3_and_below_producer_epoch: idem.epoch,
            v3_and_below_topics: topics
                .into_iter()
                .map(|(name, partitions)| AddPartitionsToTxnTopic {
                    name,
                    partitions,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let target = Target::Coordinator {
            kind: CoordinatorKind::Transaction,
            key: txn.id.clone(),
        };
        let id = self.net.send(
            target,
            RequestBody::AddPartitionsToTxn(body),
            Some(ADD_PARTITIONS_MAX),
            true,
            now,
        );
        if let Some(txn) = &mut self.txn {
            txn.add_request = Some(id);
        }
    }

    fn send_txn_step(&mut self, step: Step, now: Instant) {
        let (Some(txn), Some(idem)) = (&mut self.txn, &self.idem) else {
            return;
        };
        let coordinator = Target::Coordinator {
            kind: CoordinatorKind::Transaction,
            key: txn.id.clone(),
        };
        let (pid, epoch) = (idem.producer_id, idem.epoch);
        let v2 = txn.v2;
        let (target, body, max) = match &step {
            Step::InitProducerId => (
                coordinator,
                RequestBody::InitProducerId(InitProducerIdRequest {
                    transactional_id: Some(txn.id.clone()),
                    transaction_timeout_ms: txn.timeout_ms,
                    // -1/-1 at first; the current id and epoch for a KIP-360 bump.
                    producer_id: pid,
                    producer_epoch: epoch,
                    ..Default::default()
                }),
                None,
            ),
            Step::AddOffsets => {
                let Some(o) = &txn.offsets else { return };
                (
                    coordinator,
                    RequestBody::AddOffsetsToTxn(AddOffsetsToTxnRequest {
                        transactional_id: txn.id.clone(),
                        producer_id: pid,
                        producer_epoch: epoch,
                        group_id: o.group.group_id.clone(),
                        ..Default::default()
                    }),
                    None,
                )
            }
            Step::CommitOffsets => {
                let Some(o) = &txn.offsets else { return };
                let mut topics: BTreeMap<&str, Vec<TxnOffsetCommitRequestPartition>> =
                    BTreeMap::new();
                for (tp, om) in &o.offsets {
                    topics
                        .entry(&tp.topic)
                        .or_default()
                        .push(TxnOffsetCommitRequestPartition {
                            partition_index: tp.partition,
                            committed_offset: om.offset,
                            committed_leader_epoch: om.leader_epoch.unwrap_or(-1),
                            committed_metadata: Some(om.metadata.clone()),
                            ..Default::default()
                        });
                }
                (
                    Target::Coordinator {
                        kind: CoordinatorKind::Group,
                        key: o.group.group_id.clone(),
                    },
                    RequestBody::TxnOffsetCommit(TxnOffsetCommitRequest {
                        transactional_id: txn.id.clone(),
                        group_id: o.group.group_id.clone(),
                        producer_id: pid,
                        producer_epoch: epoch,
                        generation_id: o.group.generation_id,
                        member_id: o.group.member_id.clone(),
                        group_instance_id: o.group.group_instance_id.clone(),
                        topics: topics
                            .into_iter()
                            .map(|(name, partitions)| TxnOffsetCommitRequestTopic {
                                name: name.to_owned(),
                                partitions,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }),
                    Some(if v2 {
                        TXN_OFFSET_COMMIT_MAX_V2
                    } else {
                        TXN_OFFSET_COMMIT_MAX_V1
                    }),
                )
            }
            Step::EndTxn { commit } => (
                coordinator,
                RequestBody::EndTxn(EndTxnRequest {
                    transactional_id: txn.id.clone(),
                    producer_id: pid,
                    producer_epoch: epoch,
                    committed: *commit,
                    ..Default::default()
                }),
                Some(if v2 { END_TXN_MAX_V2 } else { END_TXN_MAX_V1 }),
            ),
        };
        txn.step = None;
        let id = self.net.send(target, body, max, true, now);
        if let Some(txn) = &mut self.txn {
            txn.request = Some((id, step));
        }
    }

    /// Handles the response to a transactional request; hands back any other.
    pub(super) fn txn_response(
        &mut self,
        id: RequestId,
        result: Result<Response, NetError>,
        now: Instant,
    ) -> Option<Result<Response, NetError>> {
        let Some(txn) = &mut self.txn else {
            return Some(result);
        };
        if txn.add_request == Some(id) {
            txn.add_request = None;
            self.on_add_partitions(result, now);
            return None;
        }
        if txn.request.as_ref().is_some_and(|(r, _)| *r == id) {
            let (_, step) = txn.request.take().expect("checked");
            self.on_txn_step(step, result, now);
            return None;
        }
        Some(result)
    }

    /// Sends `step` again after the retry backoff.
    fn txn_retry(&mut self, step: Step, now: Instant) {
        let backoff = self.retry_backoff;
        if let Some(txn) = &mut self.txn {
            txn.step = Some(step);
            txn.retry_at = Some(now + backoff);
        }
        self.consider_wakeup(now + backoff);
    }

    fn txn_new_coordinator(&mut self, kind: CoordinatorKind, key: String, now: Instant) {
        self.net.invalidate_coordinator(kind, &key, now);
    }

    /// What a network failure of a transactional request means: retry, or fatal.
    fn txn_net_error(
        &mut self,
        api: &str,
        e: NetError,
        retry: impl FnOnce(&mut Self),
        now: Instant,
    ) {
        match e {
            NetError::Closed => {}
            e if net_error_retriable(&e) => retry(self),
            e => {
                if matches!(e, NetError::Unsupported { .. }) {
                    // A broker before 0.11: fail naming what it lacks.
                    self.check_producer_id_support(Some(&e), now);
                    if self.fatal.is_some() {
                        return;
                    }
                }
                self.txn_fatal(format!("{api} failed: {e}"), now)
            }
        }
    }

    /// Why a TxnOffsetCommit that could not be encoded failed, when the reason is the
    /// consumer's group metadata (generation, member id, instance id: KIP-447), which only
    /// TxnOffsetCommit v3 (Kafka 2.5) carries. Java's producer fails there too, with the same
    /// reason; the offsets can still go with the group id alone (generation -1, no member id).
    fn group_metadata_unsupported(&self, e: &NetError) -> Option<String> {
        let NetError::Encode {
            error: EncodeError::FieldNotInVersion { field, version, .. },
            ..
        } = e
        else {
            return None;
        };
        let release = self
            .net
            .known_version_tables()
            .find(|t| {
                t.broker_range(ApiKey::TxnOffsetCommit)
                    .is_some_and(|(_, max)| max < 3)
            })
            .map_or_else(
                || format!("a broker with TxnOffsetCommit up to v{version}"),
                |t| format!("Kafka {}", t.guess_broker_version()),
            );
        Some(format!(
            "TxnOffsetCommit failed: the consumer group metadata ({field}) of \
             send_offsets_to_transaction needs TxnOffsetCommit v3, Kafka 2.5 or later, and the \
             group coordinator is {release} (v{version}): send the offsets with the group id \
             alone (generation -1, empty member id) to commit them on this broker"
        ))
    }

    fn on_add_partitions(&mut self, result: Result<Response, NetError>, now: Instant) {
        let body = match result.map(Response::body_as::<AddPartitionsToTxnRequest>) {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => return self.add_partitions_retry(now),
            Err(e) => {
                return self.txn_net_error(
                    "AddPartitionsToTxn",
                    e,
                    |s| s.add_partitions_retry(now),
                    now,
                )
            }
        };
        let mut worst: Option<(ErrorClass, ErrorCode, String)> = None;
        let rank = |c: ErrorClass| match c {
            ErrorClass::Retry => 0,
            ErrorClass::NewCoordinator => 1,
            ErrorClass::Abortable => 2,
            ErrorClass::Fatal => 3,
        };
        for t in &body.results_by_topic_v3_and_below {
            for p in &t.results_by_partition {
                let code = ErrorCode(p.partition_error_code);
                if code.is_ok() || code == ErrorCode::OPERATION_NOT_ATTEMPTED {
                    continue;
                }
                let class = classify(code);
                if worst.as_ref().is_none_or(|(w, ..)| rank(class) > rank(*w)) {
                    worst = Some((class, code, format!("{}-{}", t.name, p.partition_index)));
                }
            }
        }
        let Some((class, code, tp)) = worst else {
            let txn = self.txn.as_mut().expect("routed here");
            let added = std::mem::take(&mut txn.adding);
            txn.started |= !added.is_empty();
            txn.in_txn.extend(added);
            return;
        };
        let what = format!("AddPartitionsToTxn for {tp}: {code}");
        match class {
            ErrorClass::Retry => self.add_partitions_retry(now),
            ErrorClass::NewCoordinator => {
                let key = self.txn.as_ref().expect("routed").id.clone();
                self.txn_new_coordinator(CoordinatorKind::Transaction, key, now);
                self.add_partitions_retry(now);
            }
            ErrorClass::Abortable => {
                self.txn.as_mut().expect("routed").adding.clear();
                self.txn_abortable(ProduceError::TxnAbortable(what));
            }
            ErrorClass::Fatal => self.txn_fatal(what, now),
        }
    }

    fn add_partitions_retry(&mut self, now: Instant) {
        let backoff = self.retry_backoff;
        if let Some(txn) = &mut self.txn {
            let adding = std::mem::take(&mut txn.adding);
            txn.new_partitions.extend(adding);
            txn.retry_at = Some(now + backoff);
        }
        self.consider_wakeup(now + backoff);
    }

    fn on_txn_step(&mut self, step: Step, result: Result<Response, NetError>, now: Instant) {
        let (api, code, body) = match result {
            Ok(Response { body, .. }) => {
                let (api, code) = match &body {
                    ResponseBody::InitProducerId(r) => ("InitProducerId", r.error()),
                    ResponseBody::AddOffsetsToTxn(r) => ("AddOffsetsToTxn", r.error()),
                    ResponseBody::EndTxn(r) => ("EndTxn", r.error()),
                    ResponseBody::TxnOffsetCommit(r) => (
                        "TxnOffsetCommit",
                        r.topics
                            .iter()
                            .flat_map(|t| &t.partitions)
                            .map(|p| p.error())
                            .find(|c| c.is_err())
                            .unwrap_or(ErrorCode::NONE),
                    ),
                    _ => return self.txn_retry(step, now),
                };
                (api, code, body)
            }
            Err(e) => {
                let api = match step {
                    Step::InitProducerId => "InitProducerId",
                    Step::AddOffsets => "AddOffsetsToTxn",
                    Step::CommitOffsets => "TxnOffsetCommit",
                    Step::EndTxn { .. } => "EndTxn",
                };
                if matches!(step, Step::CommitOffsets) {
                    if let Some(what) = self.group_metadata_unsupported(&e) {
                        return self.txn_fatal(what, now);
                    }
                }
                let retry_step = step.clone();
                return self.txn_net_error(api, e, |s| s.txn_retry(retry_step, now), now);
            }
        };
        if code.is_ok() {
            return self.on_txn_step_done(step, body, now);
        }
        let what = format!("{api} failed: {code}");
        tracing::debug!(%what, "transactional request failed");
        match classify(code) {
            ErrorClass::Retry => self.txn_retry(step, now),
            ErrorClass::NewCoordinator => {
                let (kind, key) = match (&step, &self.txn) {
                    (Step::CommitOffsets, Some(t)) => (
                        CoordinatorKind::Group,
                        t.offsets
                            .as_ref()
                            .map(|o| o.group.group_id.clone())
                            .unwrap_or_default(),
                    ),
                    (_, Some(t)) => (CoordinatorKind::Transaction, t.id.clone()),
                    (_, None) => return,
                };
                self.txn_new_coordinator(kind, key, now);
                self.txn_retry(step, now);
            }
            ErrorClass::Abortable if matches!(step, Step::EndTxn { commit: false }) => {
                // The abort itself cannot go through with this id and epoch: get new ones
                // (KIP-360), which also ends what the coordinator had open.
                self.txn_bump_then_ready(now);
            }
            ErrorClass::Abortable if self.txn_state() == Some(TxnState::Initializing) => {
                self.txn_fatal(what, now);
            }
            ErrorClass::Abortable => {
                if code == ErrorCode::UNKNOWN_PRODUCER_ID
                    || code == ErrorCode::INVALID_PRODUCER_ID_MAPPING
                {
                    if let Some(t) = &mut self.txn {
                        t.bump_after_abort = true;
                    }
                }
                self.txn_abortable(ProduceError::TxnAbortable(what));
            }
            ErrorClass::Fatal => self.txn_fatal(what, now),
        }
    }

    fn txn_state(&self) -> Option<TxnState> {
        self.txn.as_ref().map(|t| t.state)
    }

    /// Asks for a new epoch (InitProducerId with the current id and epoch), after which the
    /// abort in progress completes.
    fn txn_bump_then_ready(&mut self, now: Instant) {
        if let Some(t) = &mut self.txn {
            t.bump_after_abort = true;
            t.state = TxnState::Aborting;
        }
        self.txn_retry(Step::InitProducerId, now);
        if let Some(t) = &mut self.txn {
            // Now, not after a backoff: nothing failed that a pause would help.
            t.retry_at = None;
        }
    }

    fn on_txn_step_done(&mut self, step: Step, body: ResponseBody, now: Instant) {
        match (step, body) {
            (Step::InitProducerId, ResponseBody::InitProducerId(r)) => {
                tracing::debug!(
                    producer_id = r.producer_id,
                    epoch = r.producer_epoch,
                    "transactional producer id"
                );
                if let Some(idem) = &mut self.idem {
                    idem.on_new_id(r.producer_id, r.producer_epoch);
                    idem.reset_all();
                }
                let Some(txn) = &mut self.txn else { return };
                txn.bump_after_abort = false;
                // Initialized, or the bump that ends an abort.
                txn.end();
                if let Some(op) = txn.finish_call() {
                    self.txn_answer(op, Ok(()));
                }
            }
            (Step::AddOffsets, _) => {
                if let Some(txn) = &mut self.txn {
                    txn.started = true;
                    txn.step = Some(Step::CommitOffsets);
                }
                self.run_txn(now);
            }
            (Step::CommitOffsets, _) => {
                let Some(txn) = &mut self.txn else { return };
                txn.offsets = None;
                if let Some(op) = txn.finish_call() {
                    self.txn_answer(op, Ok(()));
                }
            }
            (Step::EndTxn { commit }, ResponseBody::EndTxn(r)) => {
                // EndTxn v5 (protocol v2) bumped the epoch, or moved to a new producer id
                // once the epoch was exhausted; below v5 both are -1 (Java takes them
                // whenever they are set).
                if r.producer_id >= 0 && r.producer_epoch >= 0 {
                    tracing::debug!(
                        producer_id = r.producer_id,
                        epoch = r.producer_epoch,
                        "EndTxn gave the next producer id and epoch"
                    );
                    if let Some(idem) = &mut self.idem {
                        idem.on_new_id(r.producer_id, r.producer_epoch);
                        idem.reset_all();
                    }
                    if let Some(txn) = &mut self.txn {
                        // The new epoch re-sequences every partition: no KIP-360 bump.
                        txn.bump_after_abort = false;
                    }
                }
                self.on_txn_ended(commit, now)
            }
            (step, _) => self.txn_retry(step, now),
        }
    }

    /// EndTxn succeeded (or was not needed): the transaction is over, unless an abort must
    /// first bump the epoch.
    fn on_txn_ended(&mut self, commit: bool, now: Instant) {
        let Some(txn) = &mut self.txn else { return };
        if !commit && txn.bump_after_abort {
            return self.txn_bump_then_ready(now);
        }
        tracing::debug!(transactional_id = %txn.id, commit, "transaction ended");
        txn.end();
        if let Some(op) = txn.finish_call() {
            self.txn_answer(op, Ok(()));
        }
    }
}
