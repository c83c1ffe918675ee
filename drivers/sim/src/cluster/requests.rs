//! The request pipeline: frames in, one request at a time per connection, parked requests
//! completed as their conditions come, responses out; and the dispatch of each decoded
//! request to the file that serves its API.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use kafkit_core::protocol::{self, ApiKey, RequestBody, RequestHeader, ResponseBody};

use super::hooks::HookAction;
use super::{wire, Cluster, ConnKey, ConnOutput, Ctx, Delayed, FrameReply, Outcome, Waiting};

impl Cluster {
    /// Handles one request frame (without its 4-byte size prefix) that arrived on `conn` of
    /// `broker`.
    pub fn handle_frame(
        &mut self,
        broker: i32,
        conn: ConnKey,
        frame: Bytes,
        now: Instant,
    ) -> FrameReply {
        self.advance(now);
        let key = (broker, conn);
        if !self.is_alive(broker) {
            self.conns.remove(&key);
            return FrameReply {
                frames: Vec::new(),
                close: true,
            };
        }
        if !self.conns.contains_key(&key) {
            let _ = self.connection_opened(broker, conn, "/127.0.0.1");
        }
        let Some(c) = self.conns.get_mut(&key) else {
            return FrameReply {
                frames: Vec::new(),
                close: true,
            };
        };
        c.queue.push_back(frame);
        let mut out = Vec::new();
        self.pump(key, now, &mut out);
        self.settle(now);
        // Answers this connection got while settling (a parked request completed at once)
        // come after what the request itself produced.
        if let Some(q) = self.outbox.get_mut(&broker) {
            let mut rest = VecDeque::new();
            for (c, o) in q.drain(..) {
                if c == conn {
                    out.push(o);
                } else {
                    rest.push_back((c, o));
                }
            }
            *q = rest;
        }
        let mut reply = FrameReply::default();
        for o in out {
            match o {
                ConnOutput::Send(b) => reply.frames.push(b),
                ConnOutput::Close => {
                    reply.close = true;
                    break;
                }
            }
        }
        reply
    }

    /// The next instant at which [`Cluster::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let waits = self
            .conns
            .values()
            .filter_map(|c| c.waiting.as_ref().and_then(Waiting::deadline));
        let repl = self.replication.keys().next().map(|(t, _)| *t);
        waits
            .chain(repl)
            .chain(self.groups.poll_timeout())
            .chain(self.groups848.poll_timeout())
            .chain(self.txn_deadline())
            .min()
    }

    /// Completes what is due at `now`: replication, fetch and produce waits, delays.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.groups.handle_timeout(now);
        self.groups848.handle_timeout(now);
        self.settle(now);
    }

    /// Frames and closes produced outside [`Cluster::handle_frame`], for every broker.
    pub fn take_ready(&mut self) -> Vec<(i32, ConnKey, ConnOutput)> {
        let mut all = Vec::new();
        for (b, q) in std::mem::take(&mut self.outbox) {
            all.extend(q.into_iter().map(|(c, o)| (b, c, o)));
        }
        all
    }

    /// Frames and closes produced outside [`Cluster::handle_frame`] for `broker`'s
    /// connections.
    pub fn take_ready_for(&mut self, broker: i32) -> Vec<(ConnKey, ConnOutput)> {
        self.outbox
            .remove(&broker)
            .map(Vec::from)
            .unwrap_or_default()
    }

    /// Parked requests may be waiting for anything: the next settling round reads them all.
    pub(super) fn wake_all(&mut self) {
        self.wake = true;
        self.changes.all = true;
    }

    /// `topic`'s partition was appended to or its high watermark moved: the next settling
    /// round reaches every parked request, and reads the parked fetches of this partition.
    pub(super) fn wake_partition(&mut self, topic: &str, partition: i32) {
        self.wake = true;
        match self.topics.get(topic) {
            Some(t) => {
                let key = (t.id, partition);
                if !self.changes.partitions.contains(&key) {
                    self.changes.partitions.push(key);
                }
            }
            None => self.changes.all = true,
        }
    }

    /// Whether the request parked on `key` may have become ready: anything but a fetch, a
    /// fetch whose wait is over, or a fetch reading a partition that changed. A fetch that
    /// reads none would be found not ready again ([`super::Changes`]).
    fn may_complete(&self, key: (i32, ConnKey), now: Instant) -> bool {
        let Some(Waiting::Fetch(f)) = self.conns.get(&key).and_then(|c| c.waiting.as_ref()) else {
            return true;
        };
        if self.changes.all || f.deadline <= now {
            return true;
        }
        f.reads_any(&self.changes.partitions, |name| {
            self.topics.get(name).map(|t| t.id)
        })
    }

    /// Completes parked requests whose condition or deadline has come, until nothing changes.
    pub(super) fn settle(&mut self, now: Instant) {
        self.settle_rounds(now);
        // Every parked fetch was reached after the last change (settling ends only after a
        // round that changed nothing), so none of these changes is news to any of them.
        self.changes.all = false;
        self.changes.partitions.clear();
    }

    fn settle_rounds(&mut self, now: Instant) {
        for _ in 0..1000 {
            if self.groups.poll_timeout().is_some_and(|t| t <= now) {
                self.groups.handle_timeout(now);
            }
            if self.groups848.poll_timeout().is_some_and(|t| t <= now) {
                self.groups848.handle_timeout(now);
            }
            self.drain_group_completions(now);
            let txns_moved = self.advance_txns(now);
            let due: Vec<(i32, ConnKey)> = {
                let mut keys: Vec<(i32, ConnKey)> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| match &c.waiting {
                        None => false,
                        Some(w) => w.deadline().is_some_and(|d| d <= now) || self.wake,
                    })
                    .map(|(k, _)| *k)
                    .collect();
                keys.sort_unstable();
                keys
            };
            self.wake = false;
            let mut progressed = txns_moved;
            for key in due {
                // Asked as each request is reached, not when the round begins: an earlier
                // completion in this round may have appended what a later fetch waits for.
                if self.may_complete(key, now) && self.try_complete(key, now) {
                    progressed = true;
                }
            }
            if !progressed && !self.wake {
                return;
            }
        }
        tracing::warn!("cluster: parked requests did not settle");
    }

    /// Completes the request parked on `key` if it is ready; then handles the requests
    /// queued behind it. Outputs go to the outbox.
    pub(super) fn try_complete(&mut self, key: (i32, ConnKey), now: Instant) -> bool {
        let Some(conn) = self.conns.get_mut(&key) else {
            return false;
        };
        let Some(waiting) = conn.waiting.take() else {
            return false;
        };
        let expired = waiting.deadline().is_some_and(|d| d <= now);
        let result = match waiting {
            Waiting::Fetch(f) => self.complete_fetch(key, f, expired, now),
            Waiting::Produce(p) => self.complete_produce(p, expired),
            Waiting::Group => Err(Waiting::Group),
            Waiting::Delay(d) => {
                if d.until > now {
                    Err(Waiting::Delay(d))
                } else {
                    let Delayed { header, body, .. } = *d;
                    let ctx = Ctx {
                        broker: key.0,
                        conn: key.1,
                        version: header.request_api_version,
                        header,
                        now,
                    };
                    let outcome = self.dispatch(&ctx, body);
                    Ok((ctx.header, outcome))
                }
            }
        };
        match result {
            Err(still) => {
                if let Some(conn) = self.conns.get_mut(&key) {
                    conn.waiting = Some(still);
                }
                false
            }
            Ok((header, outcome)) => {
                let mut out = Vec::new();
                let stop = self.emit(key, &header, outcome, &mut out);
                if !stop {
                    self.pump(key, now, &mut out);
                }
                let q = self.outbox.entry(key.0).or_default();
                q.extend(out.into_iter().map(|o| (key.1, o)));
                true
            }
        }
    }

    /// Handles queued frames of `key` until one waits or the queue is empty.
    pub(super) fn pump(&mut self, key: (i32, ConnKey), now: Instant, out: &mut Vec<ConnOutput>) {
        loop {
            let Some(conn) = self.conns.get_mut(&key) else {
                return;
            };
            if conn.waiting.is_some() {
                return;
            }
            let Some(frame) = conn.queue.pop_front() else {
                return;
            };
            let (header, outcome) = self.process(key, frame, now);
            if self.emit(key, &header, outcome, out) {
                return;
            }
        }
    }

    /// Turns an outcome into outputs; returns true if the connection closed or now waits.
    pub(super) fn emit(
        &mut self,
        key: (i32, ConnKey),
        header: &RequestHeader,
        outcome: Outcome,
        out: &mut Vec<ConnOutput>,
    ) -> bool {
        match outcome {
            Outcome::NoReply => false,
            Outcome::Raw(frame) => {
                out.push(ConnOutput::Send(frame));
                false
            }
            Outcome::Reply(mut body) => {
                self.apply_throttle(key.0, header, &mut body);
                let api = body.api_key();
                let encoded = wire::encode_response_frame(header, &body, &self.frame_pool);
                if let ResponseBody::Fetch(f) = body {
                    // Records gathered from several batches were copied into pooled memory
                    // (fetch_response): back to the pool now that they are in the frame.
                    let records = f.responses.into_iter().flat_map(|t| t.partitions);
                    for r in records.filter_map(|p| p.records) {
                        self.frame_pool.give(r);
                    }
                }
                match encoded {
                    Ok(frame) => {
                        out.push(ConnOutput::Send(frame));
                        false
                    }
                    Err(e) => {
                        tracing::warn!(?api, version = header.request_api_version, error = %e, "cluster: cannot encode response; closing");
                        self.close_conn(key, out);
                        true
                    }
                }
            }
            Outcome::ReplyFetchPieces(response, records) => {
                match wire::encode_fetch_pieces(header, response, records) {
                    Ok(pieces) => {
                        out.extend(pieces.into_iter().map(ConnOutput::Send));
                        false
                    }
                    Err(e) => {
                        tracing::warn!(api = ?ApiKey::Fetch, version = header.request_api_version, error = %e, "cluster: cannot encode response; closing");
                        self.close_conn(key, out);
                        true
                    }
                }
            }
            Outcome::ReplyThenClose(body) => {
                if let Ok(frame) = wire::encode_response_frame(header, &body, &self.frame_pool) {
                    out.push(ConnOutput::Send(frame));
                }
                self.close_conn(key, out);
                true
            }
            Outcome::Close(why) => {
                tracing::debug!(broker = key.0, conn = key.1, %why, "cluster: closing connection");
                self.close_conn(key, out);
                true
            }
            Outcome::Wait(w) => {
                if let Some(conn) = self.conns.get_mut(&key) {
                    conn.waiting = Some(w);
                }
                true
            }
        }
    }

    pub(super) fn close_conn(&mut self, key: (i32, ConnKey), out: &mut Vec<ConnOutput>) {
        out.push(ConnOutput::Close);
        self.conns.remove(&key);
        self.groups.connection_closed(key.0, key.1);
    }

    /// Decodes and checks one frame, then dispatches it. `Err` is an outcome decided before
    /// a header could be read.
    pub(super) fn process(
        &mut self,
        key: (i32, ConnKey),
        frame: Bytes,
        now: Instant,
    ) -> (RequestHeader, Outcome) {
        if self
            .conns
            .get(&key)
            .is_some_and(|c| c.sasl.expects_raw_token())
        {
            return (
                RequestHeader::default(),
                self.sasl_raw_token(key, &frame, now),
            );
        }
        if frame.len() < 8 {
            return (
                RequestHeader::default(),
                Outcome::Close("frame shorter than a request header".into()),
            );
        }
        let api_key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if api_key == ApiKey::ApiVersions.as_i16() {
            if let Some(&(_, max)) = self.versions.get(&ApiKey::ApiVersions) {
                if version > max {
                    let header = RequestHeader {
                        request_api_key: api_key,
                        request_api_version: 0,
                        correlation_id,
                        ..Default::default()
                    };
                    let body = self.api_versions_unsupported();
                    return (header, Outcome::Reply(body));
                }
            }
        }
        let (header, body) = match protocol::decode_request_frame_lenient(frame) {
            Ok((header, body, trailing)) => {
                if trailing > 0 {
                    tracing::debug!(
                        api = ?body.api_key(),
                        trailing,
                        "cluster: ignoring bytes after the request body, as Kafka does"
                    );
                }
                (header, body)
            }
            Err(e) => {
                return (
                    RequestHeader::default(),
                    Outcome::Close(format!("undecodable request: {e}")),
                )
            }
        };
        let api = body.api_key();
        match self.versions.get(&api) {
            Some(&(min, max)) if (min..=max).contains(&version) => {}
            _ => {
                return (
                    RequestHeader::default(),
                    Outcome::Close(format!("{} v{version} is not supported", api.name())),
                )
            }
        }
        let authenticated = self
            .conns
            .get(&key)
            .is_some_and(|c| c.sasl.is_authenticated());
        if !authenticated
            && !matches!(
                api,
                ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
            )
        {
            return (
                RequestHeader::default(),
                Outcome::Close(format!("{} before SASL authentication", api.name())),
            );
        }
        if let Some(hook) = self.hooks.get_mut(&api) {
            match hook(&header, &body) {
                HookAction::Pass => {}
                HookAction::Drop => return (header, Outcome::NoReply),
                HookAction::Delay(d) => {
                    let w = Waiting::Delay(Box::new(Delayed {
                        header: header.clone(),
                        body,
                        until: now + d,
                    }));
                    return (header, Outcome::Wait(w));
                }
                HookAction::Respond(resp) => {
                    if resp.api_key() != api {
                        return (
                            header,
                            Outcome::Close("hook answered with another API's response".into()),
                        );
                    }
                    return (header, Outcome::Reply(resp));
                }
            }
        }
        let ctx = Ctx {
            broker: key.0,
            conn: key.1,
            version,
            header,
            now,
        };
        let outcome = self.dispatch(&ctx, body);
        (ctx.header, outcome)
    }

    /// Routes a decoded, admitted request to its handler.
    pub(super) fn dispatch(&mut self, ctx: &Ctx, body: RequestBody) -> Outcome {
        match body {
            RequestBody::ApiVersions(r) => self.handle_api_versions(ctx, r),
            RequestBody::Metadata(r) => self.handle_metadata(ctx, r),
            RequestBody::Produce(r) => self.handle_produce(ctx, r),
            RequestBody::Fetch(r) => self.handle_fetch(ctx, r),
            RequestBody::ListOffsets(r) => self.handle_list_offsets(ctx, r),
            RequestBody::InitProducerId(r) => self.handle_init_producer_id(ctx, r),
            RequestBody::OffsetForLeaderEpoch(r) => self.handle_offset_for_leader_epoch(ctx, r),
            RequestBody::CreateTopics(r) => self.handle_create_topics(ctx, r),
            RequestBody::DeleteTopics(r) => self.handle_delete_topics(ctx, r),
            RequestBody::CreatePartitions(r) => self.handle_create_partitions(ctx, r),
            RequestBody::DeleteRecords(r) => self.handle_delete_records(ctx, r),
            RequestBody::DescribeConfigs(r) => self.handle_describe_configs(ctx, r),
            RequestBody::AlterConfigs(r) => self.handle_alter_configs(ctx, r),
            RequestBody::IncrementalAlterConfigs(r) => {
                self.handle_incremental_alter_configs(ctx, r)
            }
            RequestBody::DescribeCluster(r) => self.handle_describe_cluster(ctx, r),
            RequestBody::SaslHandshake(r) => self.handle_sasl_handshake(ctx, r),
            RequestBody::SaslAuthenticate(r) => self.handle_sasl_authenticate(ctx, r),
            RequestBody::FindCoordinator(r) => self.handle_find_coordinator(ctx, r),
            RequestBody::JoinGroup(r) => self.handle_join_group(ctx, r),
            RequestBody::SyncGroup(r) => self.handle_sync_group(ctx, r),
            RequestBody::Heartbeat(r) => self.handle_heartbeat(ctx, r),
            RequestBody::LeaveGroup(r) => self.handle_leave_group(ctx, r),
            RequestBody::OffsetCommit(r) => self.handle_offset_commit(ctx, r),
            RequestBody::OffsetFetch(r) => self.handle_offset_fetch(ctx, r),
            RequestBody::OffsetDelete(r) => self.handle_offset_delete(ctx, r),
            RequestBody::DescribeGroups(r) => self.handle_describe_groups(ctx, r),
            RequestBody::DeleteGroups(r) => self.handle_delete_groups(ctx, r),
            RequestBody::ListGroups(r) => self.handle_list_groups(ctx, r),
            RequestBody::AddPartitionsToTxn(r) => self.handle_add_partitions_to_txn(ctx, r),
            RequestBody::AddOffsetsToTxn(r) => self.handle_add_offsets_to_txn(ctx, r),
            RequestBody::TxnOffsetCommit(r) => self.handle_txn_offset_commit(ctx, r),
            RequestBody::EndTxn(r) => self.handle_end_txn(ctx, r),
            RequestBody::DescribeTransactions(r) => self.handle_describe_transactions(ctx, r),
            RequestBody::ListTransactions(r) => self.handle_list_transactions(ctx, r),
            RequestBody::ConsumerGroupHeartbeat(r) => self.handle_consumer_group_heartbeat(ctx, r),
            RequestBody::ConsumerGroupDescribe(r) => self.handle_consumer_group_describe(ctx, r),
            other => Outcome::Close(format!("{} is not implemented", other.api_key().name())),
        }
    }
}
