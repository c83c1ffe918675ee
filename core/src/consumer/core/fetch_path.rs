//! The consumer's fetch path: which broker each partition is fetched from, the Fetch
//! requests (their byte limits from the memory budget, fairness between brokers), the
//! responses going into the buffer, and reading buffered data out within the budget. The
//! group-related parts of the consumer stay in `core.rs`.

// The parent's imports: these are the same methods of `ConsumerCore`, in their own file.
#[allow(clippy::wildcard_imports)]
use super::*;

impl ConsumerCore {
    /// Reads `tp`'s buffered data into `out`, up to `max` records in all: its queued fetches
    /// one after the other, each starting where the one before ended, within the memory
    /// budget (see the `buffer` module).
    pub(super) fn read_partition(
        &mut self,
        tp: &TopicPartition,
        max: usize,
        out: &mut ConsumerRecords,
        now: Instant,
    ) {
        let tp = tp.clone();
        loop {
            if out.count() >= max {
                break;
            }
            let Ok(state) = self.subs.get(&tp) else {
                self.buffer.remove(&tp);
                break;
            };
            if state.pending_revocation {
                // Its revocation callback has run or is about to (Java's
                // pendingRevocation): the data goes, and the positions stay those the
                // callback commits.
                self.buffer.remove(&tp);
                break;
            }
            if state.paused {
                break;
            }
            let Some(fetch) = self.buffer.front_mut(&tp) else {
                break;
            };
            if state.position.map(|p| p.offset) != Some(fetch.next_offset) {
                // Sought elsewhere since: the data is stale.
                self.buffer.remove(&tp);
                break;
            }
            let reserved = self.fetcher.reserved();
            let total = self.buffer.accounted() + reserved;
            // A batch that does not fit waits while something will make room: the
            // application draining other data, or a fetch in flight, whose reservation
            // gives way to what it brings (compressed, usually far less).
            let may_wait = !self.fetcher.in_flight.is_empty()
                || self
                    .buffer
                    .readable_besides(Some(&tp), |tp| self.readable(tp));
            let fetch = self.buffer.front_mut(&tp).expect("present");
            let others = total - fetch.accounted();
            let before = out.count();
            let (end, stats) = fetch.take(
                max - before,
                out,
                others,
                self.fetcher.settings.bound,
                may_wait,
                self.decode,
            );
            let (next_offset, last_epoch) = (fetch.next_offset, fetch.last_epoch);
            // Releasing a fetch's tail (to make room) cuts it off from what was queued
            // behind it.
            self.buffer.prune(&tp);
            self.buffer.largest_decompressed =
                self.buffer.largest_decompressed.max(stats.largest as u64);
            self.buffer.largest_raw = self.buffer.largest_raw.max(stats.largest_raw as u64);
            let peak = others + stats.peak;
            let s = &mut self.fetcher.stats;
            s.peak_buffered_bytes = s.peak_buffered_bytes.max(peak);
            s.records_returned += (out.count() - before) as u64;
            self.metrics
                .consumed(&tp.topic, out.count() - before, stats.bytes, now);
            let state = self.subs.get_mut(&tp).expect("assigned");
            let epoch = last_epoch.or(state.position.and_then(|p| p.leader_epoch));
            state.position = Some(FetchPosition {
                offset: next_offset,
                leader_epoch: epoch,
            });
            match end {
                TakeEnd::Full => {
                    self.cursor = Some(tp.clone());
                    break;
                }
                TakeEnd::Exhausted => self.buffer.pop_front(&tp),
                TakeEnd::Starved => break,
                TakeEnd::Failed(e) => {
                    self.buffer.remove(&tp);
                    state.error = Some((e, false));
                    break;
                }
            }
        }
    }

    /// Whether the application reads `tp`'s buffered data now (it is not paused or being
    /// revoked, and has a position).
    pub(super) fn readable(&self, tp: &TopicPartition) -> bool {
        self.subs
            .get(tp)
            .is_ok_and(|s| !s.paused && !s.pending_revocation && s.position.is_some())
    }

    /// The broker to fetch `tp` from: a live preferred read replica, else the leader.
    pub(super) fn fetch_node(&self, tp: &TopicPartition, now: Instant) -> Option<(NodeId, bool)> {
        let state = self.subs.get(tp).ok()?;
        let leader = self.net.cluster().leader_for(&tp.topic, tp.partition);
        if let Some((node, until)) = state.preferred_replica {
            if now < until && self.net.cluster().brokers.contains_key(&node) {
                return Some((node, Some(node) != leader));
            }
        }
        leader.map(|l| (l, false))
    }

    /// Whether a partition with data buffered is fetched again now, from the end of that
    /// data, so the next response is on its way while the application reads (librdkafka
    /// keeps a queue filled the same way; one fetch per broker at a time otherwise makes a
    /// fast reader wait a round trip per fetch). It is while at most one partition fetch is
    /// buffered (`max_partition_fetch_bytes`, or the largest batch seen if larger: a fetch
    /// returns at least one), at most [`MAX_QUEUED_FETCHES`] deep; the memory budget bounds
    /// the whole as before.
    pub(super) fn fetch_ahead(&self, queued: &Queued) -> bool {
        let settings = &self.fetcher.settings;
        let one_fetch = settings
            .partition_max_bytes
            .min(settings.max_bytes)
            .max(self.buffer.largest_raw);
        queued.progressed && queued.fetches < MAX_QUEUED_FETCHES && queued.bytes <= one_fetch
    }

    pub(super) fn send_fetches(&mut self, now: Instant) {
        if self.buffer.starved() {
            return;
        }
        let mut by_node: BTreeMap<NodeId, Vec<(TopicPartition, i64, bool)>> = BTreeMap::new();
        // Per broker: whether every partition it would be asked for is caught up (its position
        // at the end the broker last reported).
        let mut idle: BTreeMap<NodeId, bool> = BTreeMap::new();
        // Brokers with partitions whose buffered data the application is reading: they become
        // fetchable as soon as it is read.
        let mut draining: BTreeSet<NodeId> = BTreeSet::new();
        let read_committed = self.fetcher.settings.isolation_level == 1;
        let mut missing = false;
        for (tp, state) in self.subs.iter() {
            if !state.is_fetchable(now) {
                continue;
            }
            let offset = match self.buffer.queued(tp) {
                Some(queued) => {
                    if let Some((node, _)) = self.fetch_node(tp, now) {
                        draining.insert(node);
                    }
                    if !self.fetch_ahead(&queued) {
                        continue;
                    }
                    queued.end_offset
                }
                None => state.position.map_or(0, |p| p.offset),
            };
            let end = if read_committed {
                state.last_stable_offset
            } else {
                state.highwater
            };
            let caught_up = end.is_some_and(|end| offset >= end);
            match self.fetch_node(tp, now) {
                Some((node, replica)) => {
                    by_node
                        .entry(node)
                        .or_default()
                        .push((tp.clone(), offset, replica));
                    *idle.entry(node).or_insert(true) &= caught_up;
                }
                None => missing = true,
            }
        }
        if missing {
            self.net.request_metadata(false, now);
        }
        // One fetch per broker is in flight. A fetch of caught-up partitions only would be
        // held by the broker for fetch_max_wait_ms, and the partitions of that broker the
        // application is still reading could not be fetched until it returns (issue 9: one
        // long poll per batch of a busy partition next to an idle one). Such a fetch waits
        // instead for those partitions to be read, and then goes out with them.
        by_node.retain(|node, _| {
            let hold = draining.contains(node) && idle.get(node) == Some(&true);
            !self.fetcher.is_busy(*node, now) && !hold
        });
        // Brokers with data to read first (a fetch of caught-up partitions is a long poll),
        // and within each kind starting after the broker asked last: when the budget lets
        // only one fetch out at a time, every broker gets its turn (issue 24: the first
        // broker's partitions were fetched forever and the others' never).
        let last = self.fetcher.last_node;
        let mut order: Vec<_> = by_node.into_iter().collect();
        order.sort_by_key(|(node, _)| {
            let after_last = last.is_none_or(|l| *node > l);
            (idle.get(node) == Some(&true), !after_last, *node)
        });
        let nodes = order.len();
        for (i, (node, parts)) in order.into_iter().enumerate() {
            if let Some(e) = self.fetch_refusal(node) {
                self.fail_partitions(parts.iter().map(|(tp, ..)| tp), &e);
                continue;
            }
            let held = self.buffer.accounted();
            let headroom = self.buffer.largest_decompressed;
            let min_useful = self.buffer.largest_raw;
            let draining = !self.fetcher.in_flight.is_empty()
                || self.buffer.readable_besides(None, |tp| self.readable(tp));
            let Some(max_bytes) =
                self.fetcher
                    .request_budget(held, headroom, min_useful, nodes - i, draining)
            else {
                break;
            };
            self.fetcher.last_node = Some(node);
            let part_max = self.fetcher.settings.partition_max_bytes.min(max_bytes);
            let part_max = i32::try_from(part_max).unwrap_or(i32::MAX);
            let mut wanted = BTreeMap::new();
            let mut from_replica = BTreeSet::new();
            for (tp, offset, replica) in parts {
                let leader_epoch = self.leader_epoch(&tp);
                if replica {
                    from_replica.insert(tp.clone());
                }
                wanted.insert(
                    tp,
                    PartitionFetch {
                        fetch_offset: offset,
                        max_bytes: part_max,
                        leader_epoch,
                    },
                );
            }
            let sessions = self.fetcher.settings.sessions;
            let session = self
                .fetcher
                .sessions
                .entry(node)
                .or_insert_with(|| FetchSession::new(sessions));
            let plan = session.plan(wanted);
            let body = self.fetcher.build_request(&plan, max_bytes);
            if plan.full {
                self.fetcher.stats.full_fetches += 1;
            } else {
                self.fetcher.stats.incremental_fetches += 1;
            }
            tracing::trace!(
                node,
                full = plan.full,
                partitions = plan.send.len(),
                "fetch"
            );
            let span = crate::network::spans::fetch(
                node,
                Some(&self.config.common.client_id),
                self.config.group_id.as_deref(),
            );
            span.record("kafkit.partitions", plan.send.len());
            crate::network::spans::record_server(&span, self.net.cluster(), node);
            let id = self.net.send(
                Target::Node(node),
                RequestBody::Fetch(body),
                Some(MAX_FETCH_VERSION),
                true,
                now,
            );
            self.fetcher.in_flight.insert(
                id,
                InFlightFetch {
                    node,
                    plan,
                    reserved: max_bytes,
                    from_replica,
                    span,
                },
            );
        }
    }

    pub(super) fn on_fetch(
        &mut self,
        fetch: InFlightFetch,
        result: Result<Response, NetError>,
        now: Instant,
    ) {
        self.fetcher.stats.fetch_responses += 1;
        let node = fetch.node;
        let span = fetch.span.clone();
        let _entered = span.enter();
        // The broker's versions may have become known only when this fetch went out on a new
        // connection: then it was sent at a version without an isolation level (or could not
        // be encoded at all), and whatever it brought is not what read_committed promises.
        if let Some(e) = self.fetch_refusal(node) {
            self.fail_partitions(fetch.plan.wanted.keys(), &e);
            return;
        }
        let resp = match result.map(Response::body_as::<FetchRequest>) {
            Ok(Ok(f)) => {
                crate::network::spans::record_fetched(&span, &f);
                f
            }
            other => {
                if let Err(e) = &other {
                    tracing::debug!(node, error = %e, "fetch failed");
                    crate::network::spans::record_error(&span, e.kind());
                }
                if let Some(s) = self.fetcher.sessions.get_mut(&node) {
                    s.handle_error();
                }
                // The broker may be gone or no longer lead: look again, and fall back from a
                // preferred replica to the leader.
                self.fetcher
                    .node_retry
                    .insert(node, now + self.retry_backoff);
                for (tp, state) in self.subs.iter_mut() {
                    if fetch.plan.wanted.contains_key(tp) {
                        state.preferred_replica = None;
                    }
                }
                if !self.closed {
                    self.net.invalidate_metadata(now);
                }
                return;
            }
        };
        let session = self
            .fetcher
            .sessions
            .entry(node)
            .or_insert_with(|| FetchSession::new(self.fetcher.settings.sessions));
        let code = resp.error();
        let wanted = fetch.plan.wanted.clone();
        if session.handle_response(fetch.plan, code, resp.session_id) == SessionOutcome::Reset {
            self.fetcher.stats.session_resets += 1;
            tracing::debug!(node, error = %code, "fetch session reset");
            if code != ErrorCode::FETCH_SESSION_ID_NOT_FOUND
                && code != ErrorCode::INVALID_FETCH_SESSION_EPOCH
                && code.is_err()
            {
                self.fetcher
                    .node_retry
                    .insert(node, now + self.retry_backoff);
            }
            return;
        }
        let size: usize = resp
            .responses
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.records.as_ref().map_or(0, Bytes::len))
            .sum();
        self.metrics.fetched(size, now);
        self.on_fetch_data(node, resp, &wanted, &fetch.from_replica, now);
    }

    pub(super) fn on_fetch_data(
        &mut self,
        node: NodeId,
        resp: FetchResponse,
        wanted: &BTreeMap<TopicPartition, PartitionFetch>,
        from_replica: &BTreeSet<TopicPartition>,
        now: Instant,
    ) {
        let mut refresh = false;
        let replica_lifetime = self.fetcher.settings.replica_lifetime;
        for topic in resp.responses {
            let name: Arc<str> = topic.topic.as_str().into();
            for p in topic.partitions {
                let tp = TopicPartition::new(name.clone(), p.partition_index);
                let Some(asked) = wanted.get(&tp) else {
                    continue;
                };
                let Ok(state) = self.subs.get_mut(&tp) else {
                    continue;
                };
                // A fetch continues the partition's buffered data, or its position when none.
                let expected = self
                    .buffer
                    .end_offset(&tp)
                    .or(state.position.map(|p| p.offset));
                if expected != Some(asked.fetch_offset)
                    || state.reset.is_some()
                    || state.error.is_some()
                    || state.paused
                    || state.pending_revocation
                {
                    // Sought, paused, reset or being revoked while the fetch was out (or the
                    // data it followed was released): the records are stale. The watermarks are not: keep them, because an
                    // incremental fetch session will not report them again until they change
                    // (a seek back to the same offset would otherwise never learn the high
                    // watermark of an idle partition).
                    if p.error_code == 0 {
                        if p.high_watermark >= 0 {
                            state.highwater = Some(p.high_watermark);
                        }
                        if p.last_stable_offset >= 0 {
                            state.last_stable_offset = Some(p.last_stable_offset);
                        }
                        if p.log_start_offset >= 0 {
                            state.log_start_offset = Some(p.log_start_offset);
                        }
                    }
                    continue;
                }
                let code = p.error();
                match code {
                    ErrorCode::NONE => {
                        if p.high_watermark >= 0 {
                            state.highwater = Some(p.high_watermark);
                        }
                        if p.last_stable_offset >= 0 {
                            state.last_stable_offset = Some(p.last_stable_offset);
                        }
                        if p.log_start_offset >= 0 {
                            state.log_start_offset = Some(p.log_start_offset);
                        }
                        if p.preferred_read_replica >= 0 && p.preferred_read_replica != node {
                            state.preferred_replica =
                                Some((p.preferred_read_replica, now + replica_lifetime));
                        }
                        let records = p.records.unwrap_or_else(Bytes::new);
                        if !records.is_empty() {
                            let aborted = p
                                .aborted_transactions
                                .unwrap_or_default()
                                .into_iter()
                                .map(|a| (a.producer_id, a.first_offset));
                            let fetch = CompletedFetch::new(
                                tp,
                                asked.fetch_offset,
                                records,
                                self.read_committed,
                                aborted,
                            );
                            self.buffer.largest_raw =
                                self.buffer.largest_raw.max(fetch.largest_batch() as u64);
                            self.buffer.insert(fetch);
                        }
                    }
                    ErrorCode::OFFSET_OUT_OF_RANGE if from_replica.contains(&tp) => {
                        // The follower may lag the leader: ask the leader before resetting.
                        state.preferred_replica = None;
                    }
                    ErrorCode::OFFSET_OUT_OF_RANGE if self.buffer.end_offset(&tp).is_some() => {
                        // A fetch ahead: the records before it are still to be read. The
                        // partition asks again from its position once they are (and resets
                        // then if that is out of range too).
                        state.retry_at = Some(now + self.retry_backoff);
                    }
                    ErrorCode::OFFSET_OUT_OF_RANGE => {
                        tracing::debug!(partition = %tp, offset = asked.fetch_offset, "offset out of range");
                        self.subs.handle_out_of_range(&tp, asked.fetch_offset);
                    }
                    c if offsets::needs_metadata(c) => {
                        tracing::debug!(partition = %tp, error = %c, "refreshing metadata");
                        state.preferred_replica = None;
                        state.retry_at = Some(now + self.retry_backoff);
                        refresh = true;
                    }
                    c if c.is_retriable() => {
                        state.retry_at = Some(now + self.retry_backoff);
                    }
                    c => {
                        state.error = Some((
                            ConsumerError::Partition {
                                partition: tp,
                                error: c,
                            },
                            false,
                        ));
                    }
                }
            }
        }
        if refresh {
            self.net.invalidate_metadata(now);
        }
    }
}
