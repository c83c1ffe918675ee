//! The sender: expiring what waited too long, draining ready batches into one Produce
//! request per broker, and completing, retrying or failing batches from the answers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::{
    fatal_for_idempotence, invalidates_metadata, net_error_retriable, InFlight, ProducerCore,
    ProducerEvent,
};
use crate::network::{ClusterView, NetError, NodeId, Response, Target};
use crate::producer::accumulator::{DrainTo, Tp};
use crate::producer::batch::ProducerBatch;
use crate::producer::error::ProduceError;
use crate::producer::idempotence::IdState;
use crate::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use crate::protocol::{ErrorCode, ProduceRequest, RequestBody};

impl ProducerCore {
    pub(super) fn expire_waiters(&mut self, now: Instant) {
        while self.mem_waiters.front().is_some_and(|w| now >= w.deadline) {
            let w = self.mem_waiters.pop_front().expect("front checked");
            let e = ProduceError::MaxBlockTimeout {
                what: format!("{} bytes of buffer memory", w.reserved),
                after: self.max_block,
            };
            let r = self.recorder(now);
            r.errors.record(1.0, now);
            r.record_error_total += 1;
            if let Some(op) = w.op {
                self.event(ProducerEvent::Admitted { op, result: Err(e) });
            }
        }
        self.shared.set_waiting(self.mem_waiters.len());
        let mut i = 0;
        while i < self.partition_waiters.len() {
            let topic = self.partition_waiters[i].topic.clone();
            let result = match self.topic_partitions(&topic) {
                Some(r) => Some(r),
                None if now >= self.partition_waiters[i].deadline => {
                    Some(Err(self.metadata_timeout_error(&topic)))
                }
                None => None,
            };
            match result {
                Some(result) => {
                    let w = self.partition_waiters.swap_remove(i);
                    self.event(ProducerEvent::Partitions { op: w.op, result });
                }
                None => i += 1,
            }
        }
    }

    pub(super) fn metadata_timeout_error(&self, topic: &str) -> ProduceError {
        match self.net.cluster().topic(topic) {
            Some(t) if t.error == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
                ProduceError::UnknownTopic {
                    topic: topic.to_owned(),
                }
            }
            _ => {
                // Say why: the brokers' last connection errors, if any (else they answered and
                // the topic's partitions simply have no leader yet).
                let errors = self.net.connection_errors();
                let why = if errors.is_empty() {
                    String::new()
                } else {
                    format!(" (last errors: {})", errors.join("; "))
                };
                ProduceError::MaxBlockTimeout {
                    what: format!("metadata for topic {topic:?}{why}"),
                    after: self.max_block,
                }
            }
        }
    }

    /// Partitions records whose topic metadata arrived; fails those past `max_block_ms`.
    pub(super) fn place_awaiting(&mut self, now: Instant) {
        if self.awaiting_metadata.is_empty() {
            return;
        }
        let topics: Vec<Arc<str>> = self.awaiting_metadata.keys().cloned().collect();
        for topic in topics {
            if self.topic_known(&topic) {
                let queue = self.awaiting_metadata.remove(&topic).unwrap_or_default();
                for q in queue {
                    let (topic, body) = q.record.into_parts();
                    self.append(&topic, &body, q.timestamp, q.reserved, q.op, q.gen, now);
                }
                continue;
            }
            let refused = match self.topic_partitions(&topic) {
                Some(Err(e)) => Some(e),
                _ => None,
            };
            let timeout_error = self.metadata_timeout_error(&topic);
            let Some(queue) = self.awaiting_metadata.get_mut(&topic) else {
                continue;
            };
            let mut failed = Vec::new();
            if let Some(e) = refused {
                failed.extend(queue.drain(..).map(|q| (q, e.clone())));
            } else {
                while queue.front().is_some_and(|q| now >= q.deadline) {
                    let q = queue.pop_front().expect("front checked");
                    failed.push((q, timeout_error.clone()));
                }
            }
            if queue.is_empty() {
                self.awaiting_metadata.remove(&topic);
            }
            for (q, e) in failed {
                self.fail_record(q.op, q.reserved, q.gen, e, now);
            }
        }
        if !self.awaiting_metadata.is_empty() {
            // Keep asking; the network layer paces refreshes by retry_backoff_ms.
            self.net.request_metadata(false, now);
        }
    }

    pub(super) fn expire_batches(&mut self, now: Instant) {
        let expired = self.acc.expire(now);
        for mut batch in expired {
            let last_error = batch
                .last_error
                .take()
                .or_else(|| self.why_not_sent(&batch, now));
            let e = ProduceError::DeliveryTimeout {
                topic: batch.topic.to_string(),
                partition: batch.partition,
                after: self.delivery_timeout,
                last_error,
            };
            self.fail_batch(batch, e, now);
        }
    }

    /// Why a batch that never got an answer was not sent, for its timeout report.
    pub(super) fn why_not_sent(&self, batch: &ProducerBatch, now: Instant) -> Option<String> {
        let cluster = self.net.cluster();
        match cluster.leader_for(&batch.topic, batch.partition) {
            None => Some(format!(
                "no leader known for {}-{}",
                batch.topic, batch.partition
            )),
            Some(node) => {
                let label = cluster
                    .brokers
                    .get(&node)
                    .map(|b| format!("{}:{} (node {node})", b.host, b.port))
                    .unwrap_or_else(|| format!("node {node}"));
                match self.net.node_last_error(node) {
                    Some(e) => Some(format!("leader {label} unreachable: {e}")),
                    None if self
                        .idem
                        .as_ref()
                        .is_some_and(|i| i.state != IdState::Ready) =>
                    {
                        Some("no producer id yet (InitProducerId pending)".into())
                    }
                    None if self.net.node_backoff_until(node, now).is_some() => {
                        Some(format!("leader {label} backing off after failures"))
                    }
                    None => Some(format!("leader {label} not ready")),
                }
            }
        }
    }

    /// Drains ready batches into one Produce request per ready broker.
    pub(super) fn send_ready(&mut self, now: Instant) {
        if self.idem.as_ref().is_some_and(|i| !i.can_send()) {
            return;
        }
        let force = !self.flushes.is_empty()
            || self.closing.is_some()
            || !self.mem_waiters.is_empty()
            || self.txn.as_ref().is_some_and(|t| t.is_completing());
        let cluster = self.net.cluster().clone();
        let ready = self.acc.ready(&cluster, now, force);
        if ready.unknown_leader {
            self.net.request_metadata(false, now);
        }
        if let Some(t) = ready.next_check {
            self.consider_wakeup(t);
        }
        for node in ready.nodes {
            if self.in_flight_per_node.get(&node).copied().unwrap_or(0) >= self.max_in_flight {
                continue;
            }
            if !self.net.node_ready(node, now) {
                if let Some(t) = self.net.node_backoff_until(node, now) {
                    self.consider_wakeup(t);
                }
                continue;
            }
            let magic = match self.produce_format(node) {
                Ok(magic) => magic,
                Err(reason) => {
                    self.fail_node(&cluster, node, reason, now);
                    continue;
                }
            };
            let to = DrainTo {
                node,
                max_size: self.config.max_request_size as usize,
                magic,
            };
            let (batches, failed) = self.acc.drain(
                &cluster,
                to,
                now,
                self.idem.as_mut(),
                self.txn.as_ref().map(|t| &t.in_txn),
            );
            for (batch, e) in failed {
                let e = ProduceError::Encode {
                    topic: batch.topic.to_string(),
                    partition: batch.partition,
                    detail: e.to_string(),
                };
                self.fail_batch(batch, e, now);
            }
            if !batches.is_empty() {
                self.send_produce(node, batches, now);
            }
        }
    }

    pub(super) fn fail_node(
        &mut self,
        cluster: &ClusterView,
        node: NodeId,
        e: NetError,
        now: Instant,
    ) {
        loop {
            let to = DrainTo {
                node,
                max_size: usize::MAX,
                magic: self.acc.magic(),
            };
            let (batches, failed) = self.acc.drain(cluster, to, now, None, None);
            if batches.is_empty() && failed.is_empty() {
                break;
            }
            for b in batches {
                self.fail_batch(b, ProduceError::Network(e.clone()), now);
            }
            for (b, _) in failed {
                self.fail_batch(b, ProduceError::Network(e.clone()), now);
            }
        }
    }

    pub(super) fn send_produce(
        &mut self,
        node: NodeId,
        mut batches: Vec<ProducerBatch>,
        now: Instant,
    ) {
        let span = crate::network::spans::produce(node, Some(&self.config.common.client_id));
        let mut bytes = 0usize;
        let mut topics: BTreeMap<Arc<str>, Vec<PartitionProduceData>> = BTreeMap::new();
        let mut records = 0usize;
        for b in &mut batches {
            b.attempts += 1;
            let first_send = b.attempts == 1;
            let stamp = b.stamp;
            let payload = b.payload(stamp, b.magic()).unwrap_or_default();
            records += b.record_count();
            bytes += payload.len();
            let size = payload.len() as f64;
            let uncompressed = b.uncompressed_size.max(1) as f64;
            let count = b.record_count() as f64;
            let queue_ms = now.saturating_duration_since(b.created).as_secs_f64() * 1000.0;
            let r = self.recorder(now);
            r.bytes.record(size, now);
            r.records.record(count, now);
            r.batch_size.record(size, now);
            r.compression.record(size / uncompressed, now);
            if first_send {
                r.queue_time.record(queue_ms, now);
            }
            topics
                .entry(b.topic.clone())
                .or_default()
                .push(PartitionProduceData {
                    index: b.partition,
                    records: Some(payload),
                    ..Default::default()
                });
            self.acc.mark_in_flight(&(b.topic.clone(), b.partition), 1);
        }
        if !span.is_disabled() {
            if let [(topic, _)] = topics.iter().collect::<Vec<_>>()[..] {
                span.record("messaging.destination.name", &**topic);
            }
            span.record("kafkit.topics", topics.len());
            span.record("kafkit.partitions", batches.len());
            span.record("messaging.batch.message_count", records);
            span.record("kafkit.bytes", bytes);
            crate::network::spans::record_server(&span, self.net.cluster(), node);
        }
        let r = self.recorder(now);
        r.records_per_request.record(records as f64, now);
        r.requests.record(1.0, now);
        let body = ProduceRequest {
            transactional_id: self.txn.as_ref().map(|t| t.id.clone()),
            acks: self.acks,
            timeout_ms: self.request_timeout_ms,
            topic_data: topics
                .into_iter()
                .map(|(name, partition_data)| TopicProduceData {
                    name: name.to_string(),
                    partition_data,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let expect_response = self.acks != 0;
        *self.in_flight_per_node.entry(node).or_default() += 1;
        // Registered before sending: an acks=0 request completes while it is written.
        let id = self.net.send(
            Target::Node(node),
            RequestBody::Produce(body),
            self.txn.as_ref().map(|t| t.produce_max_version()),
            expect_response,
            now,
        );
        self.in_flight.insert(
            id,
            InFlight {
                node,
                batches,
                sent_at: now,
                span,
            },
        );
    }

    pub(super) fn on_produce_response(
        &mut self,
        req: InFlight,
        result: Result<Response, NetError>,
        now: Instant,
    ) {
        if let Some(n) = self.in_flight_per_node.get_mut(&req.node) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight_per_node.remove(&req.node);
            }
        }
        for b in &req.batches {
            self.acc.mark_in_flight(&(b.topic.clone(), b.partition), -1);
        }
        let latency = now.saturating_duration_since(req.sent_at).as_secs_f64() * 1000.0;
        let span = req.span;
        let _entered = span.enter();
        match &result {
            Err(e) => crate::network::spans::record_error(&span, e.kind()),
            Ok(Response {
                body: crate::protocol::ResponseBody::Produce(p),
                ..
            }) => {
                let failed = p.responses.iter().flat_map(|t| &t.partition_responses);
                if let Some(code) = failed.map(|p| p.error()).find(|c| !c.is_ok()) {
                    crate::network::spans::record_error(&span, code.name());
                }
            }
            Ok(_) => {}
        }
        if self.acks != 0 {
            self.recorder(now).latency.record(latency, now);
        }
        let broker = self
            .net
            .cluster()
            .brokers
            .get(&req.node)
            .map(|b| format!("{}:{} (node {})", b.host, b.port, req.node))
            .unwrap_or_else(|| format!("node {}", req.node));
        match result {
            Ok(resp) => {
                let Ok(body) = resp.body_as::<ProduceRequest>() else {
                    for b in req.batches {
                        self.retry_or_fail(b, "unexpected response type".into(), None, now);
                    }
                    return;
                };
                // Every answer's throttle time counts, zero included, as in Java (so the
                // average is over responses); acks=0 has no answer, only a stand-in.
                if self.acks != 0 && body.throttle_time_ms >= 0 {
                    self.recorder(now)
                        .throttle
                        .record(body.throttle_time_ms as f64, now);
                }
                if self.acks == 0 {
                    for b in req.batches {
                        self.complete_batch(b, -1, -1, now);
                    }
                    return;
                }
                let mut by_tp: BTreeMap<
                    (&str, i32),
                    &crate::protocol::produce::response::PartitionProduceResponse,
                > = BTreeMap::new();
                for t in &body.responses {
                    for p in &t.partition_responses {
                        by_tp.insert((t.name.as_str(), p.index), p);
                    }
                }
                let mut metadata_stale = false;
                let mut outcomes = Vec::with_capacity(req.batches.len());
                for b in req.batches {
                    let answer = by_tp.get(&(&*b.topic, b.partition)).map(|p| {
                        (
                            p.error(),
                            p.base_offset,
                            p.log_append_time_ms,
                            p.log_start_offset,
                            p.error_message.clone(),
                        )
                    });
                    if let Some((code, ..)) = &answer {
                        metadata_stale |= invalidates_metadata(*code);
                    }
                    outcomes.push((b, answer));
                }
                if metadata_stale {
                    self.net.invalidate_metadata(now);
                }
                for (b, answer) in outcomes {
                    match answer {
                        None => self.retry_or_fail(
                            b,
                            format!("{broker} sent no answer for the partition"),
                            None,
                            now,
                        ),
                        Some((code, base, log_append, log_start, message)) => self
                            .handle_partition_answer(
                                b, &broker, code, base, log_append, log_start, message, now,
                            ),
                    }
                }
            }
            Err(NetError::Closed) => {
                for b in req.batches {
                    self.fail_batch(b, ProduceError::Closed, now);
                }
            }
            Err(e) if net_error_retriable(&e) => {
                self.net.invalidate_metadata(now);
                let text = e.to_string();
                for b in req.batches {
                    self.retry_or_fail(
                        b,
                        text.clone(),
                        Some(ProduceError::Network(e.clone())),
                        now,
                    );
                }
            }
            Err(e) => {
                for b in req.batches {
                    self.fail_batch(b, ProduceError::Network(e.clone()), now);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_partition_answer(
        &mut self,
        mut b: ProducerBatch,
        broker: &str,
        code: ErrorCode,
        base_offset: i64,
        log_append_time: i64,
        log_start_offset: i64,
        message: Option<String>,
        now: Instant,
    ) {
        let tp: Tp = (b.topic.clone(), b.partition);
        if code.is_ok() || code == ErrorCode::DUPLICATE_SEQUENCE_NUMBER {
            // A duplicate was written before: the broker's offset (if it kept it) stands.
            self.complete_batch(b, base_offset, log_append_time, now);
            return;
        }
        let describe = || {
            format!(
                "{broker} answered {code}{}",
                message
                    .as_ref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            )
        };
        if code == ErrorCode::MESSAGE_TOO_LARGE && b.record_count() > 1 {
            if let (Some(idem), Some(stamp)) = (&mut self.idem, b.stamp) {
                // The refused batch leaves a hole in the sequence: re-sequence the partition
                // under a new epoch.
                idem.on_batch_done(&tp, &stamp);
                idem.request_bump(&tp);
            }
            b.last_error = Some(describe());
            let count = b.record_count();
            let limit = (self.config.batch_size as usize).min(b.size_in_bytes() / 2);
            match b.split(self.acc.batch_ids(), limit) {
                Ok((parts, lost)) => {
                    tracing::debug!(topic = %tp.0, partition = tp.1, records = count, parts = parts.len(), "split a batch the broker found too large");
                    self.acc.push_front_all(parts);
                    // Unreachable for records encoded here once; fail them rather than
                    // lose them (their memory stays with the last part).
                    let e = ProduceError::Encode {
                        topic: tp.0.to_string(),
                        partition: tp.1,
                        detail: "record could not be re-encoded while splitting a batch".into(),
                    };
                    for t in lost {
                        self.record_done(t.gen);
                        if let Some(op) = t.op {
                            self.report.push_failed(op, e.clone());
                        }
                    }
                }
                Err(b) => {
                    // Unreachable for batches built here: the bytes do not read back.
                    let e = ProduceError::Encode {
                        topic: tp.0.to_string(),
                        partition: tp.1,
                        detail: "a batch the broker found too large could not be split".into(),
                    };
                    self.fail_batch(*b, e, now);
                }
            }
            return;
        }
        if let Some(idem) = &mut self.idem {
            if fatal_for_idempotence(code) {
                let e =
                    ProduceError::Fatal(format!("{} for {}-{}", describe(), b.topic, b.partition));
                self.fail_batch(b, e.clone(), now);
                self.go_fatal(e, now);
                return;
            }
            // A transactional producer fails the batch instead (below): the transaction is
            // then aborted and the epoch bumped (Java's `maybeTransitionToErrorState`).
            if let Some(stamp) = b.stamp.filter(|_| self.txn.is_none()) {
                if code == ErrorCode::UNKNOWN_PRODUCER_ID {
                    // The broker has no state for us: retention removed it (it then says
                    // where its log starts), or it restarted or took over leadership
                    // without it (a development broker after a restart answers -1). Java
                    // 2.5+ bumps the epoch in the first case and retries in the second,
                    // which against such a broker retries until delivery_timeout_ms. Here
                    // the epoch is also bumped when this batch is the partition's first
                    // outstanding one: no earlier batch of ours can restore the state, and
                    // the broker holds none of our batches, so restarting at sequence 0
                    // under a new epoch writes nothing twice.
                    if log_start_offset != -1 || idem.is_first_outstanding(&tp, &stamp) {
                        idem.request_bump(&tp);
                    }
                    self.retry_or_fail(b, describe(), None, now);
                    return;
                }
                if code == ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER {
                    // An earlier batch failed or is being retried: wait for it. If this is
                    // the first outstanding batch, the gap is real: bump the epoch.
                    if idem.is_first_outstanding(&tp, &stamp) {
                        idem.request_bump(&tp);
                    }
                    self.retry_or_fail(b, describe(), None, now);
                    return;
                }
            }
        }
        if code.is_retriable() || code == ErrorCode::NOT_LEADER_OR_FOLLOWER {
            self.retry_or_fail(b, describe(), None, now);
            return;
        }
        let e = ProduceError::Broker {
            topic: b.topic.to_string(),
            partition: b.partition,
            broker: broker.to_owned(),
            code,
            message,
        };
        self.fail_batch(b, e, now);
    }

    /// Retries a batch after a retriable failure, unless its delivery timeout passed or its
    /// retries are used up (then it fails with `final_error` or a delivery timeout).
    pub(super) fn retry_or_fail(
        &mut self,
        mut b: ProducerBatch,
        error: String,
        final_error: Option<ProduceError>,
        now: Instant,
    ) {
        if now >= b.deadline {
            let e = ProduceError::DeliveryTimeout {
                topic: b.topic.to_string(),
                partition: b.partition,
                after: self.delivery_timeout,
                last_error: Some(error),
            };
            self.fail_batch(b, e, now);
            return;
        }
        if b.attempts > self.config.retries {
            let e = final_error.unwrap_or_else(|| ProduceError::DeliveryTimeout {
                topic: b.topic.to_string(),
                partition: b.partition,
                after: now.saturating_duration_since(b.created),
                last_error: Some(format!("{error} (retries exhausted)")),
            });
            self.fail_batch(b, e, now);
            return;
        }
        tracing::debug!(topic = %b.topic, partition = b.partition, attempt = b.attempts, %error, "retrying batch");
        let count = b.record_count() as f64;
        let r = self.recorder(now);
        r.retries.record(count, now);
        r.record_retry_total += count as u64;
        b.last_error = Some(error);
        b.retry_at = Some(now + self.retry_backoff);
        self.consider_wakeup(now + self.retry_backoff);
        self.acc.reenqueue(b);
    }

    /// Fails every record of a batch (queued, or answered and so no longer in flight).
    pub(super) fn fail_batch(&mut self, b: ProducerBatch, e: ProduceError, now: Instant) {
        let tp: Tp = (b.topic.clone(), b.partition);
        let settled = self.fatal.is_some() || matches!(e, ProduceError::Closed);
        if let (Some(idem), Some(stamp)) = (&mut self.idem, b.stamp) {
            // A batch that was sent fails for good: its sequence is unresolved, so later
            // batches of the partition are re-sequenced under a new epoch (KIP-360). A
            // transactional producer bumps once its transaction is aborted.
            idem.on_batch_done(&tp, &stamp);
            if !settled {
                match &mut self.txn {
                    Some(txn) => txn.bump_after_abort = true,
                    None => idem.request_bump(&tp),
                }
            }
        }
        if !settled && self.txn.is_some() && !matches!(e, ProduceError::TxnAborted) {
            // Java: a record of the transaction failed, so the transaction cannot commit.
            let why = ProduceError::TxnAbortable(format!(
                "a record for {}-{} failed: {e}",
                b.topic, b.partition
            ));
            self.txn_abortable(why);
        }
        let count = b.record_count() as u64;
        let r = self.recorder(now);
        r.errors.record(count as f64, now);
        r.record_error_total += count;
        tracing::debug!(batch = b.id, topic = %b.topic, partition = b.partition, records = count, error = %e, "batch failed");
        self.release_batch(b, Err(&e), Some(now));
    }

    pub(super) fn complete_batch(
        &mut self,
        b: ProducerBatch,
        base_offset: i64,
        log_append_time: i64,
        now: Instant,
    ) {
        let tp: Tp = (b.topic.clone(), b.partition);
        if let (Some(idem), Some(stamp)) = (&mut self.idem, b.stamp) {
            idem.on_batch_done(&tp, &stamp);
        }
        let count = b.record_count() as u64;
        self.recorder(now).record_send_total += count;
        self.release_batch(b, Ok((base_offset, log_append_time)), Some(now));
    }

    /// Completes every record of `b` (reporting those with an op) and gives its memory
    /// back.
    pub(super) fn release_batch(
        &mut self,
        b: ProducerBatch,
        outcome: Result<(i64, i64), &ProduceError>,
        now: Option<Instant>,
    ) {
        self.shared.release(b.reserved);
        let mut b = b;
        let mut thunks = std::mem::take(&mut b.thunks);
        let mark = self.report.mark();
        for (i, t) in thunks.drain(..).enumerate() {
            self.record_done(t.gen);
            if let Some(op) = t.op {
                self.report
                    .push(op, i, t.timestamp, t.key_size, t.value_size);
            }
        }
        self.report.end_group(
            mark,
            outcome.map(|(base, log_append)| (&b.topic, b.partition, base, log_append)),
        );
        self.acc.recycle_thunks(thunks);
        let sized = b.has_sized_buffer();
        self.acc.recycle_buffer(b.take_buffer(), sized);
        if let Some(now) = now {
            self.admit_waiters(now);
        }
    }
}
