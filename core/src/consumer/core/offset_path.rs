//! Offset resets and the application's offset lookups (ListOffsets): which broker is asked,
//! and what its answers do to positions and to the lookups waiting on them.

// The parent's imports: these are the same methods of `ConsumerCore`, in their own file.
#[allow(clippy::wildcard_imports)]
use super::*;
use crate::protocol::ApiKey;

impl ConsumerCore {
    pub(super) fn leader_of(&self, tp: &TopicPartition) -> Option<(NodeId, i32)> {
        let leader = self.net.cluster().leader_for(&tp.topic, tp.partition)?;
        Some((leader, self.leader_epoch(tp)))
    }

    /// Why `node` cannot answer a ListOffsets this consumer needs, once its versions are
    /// known: offsets by time need v1 (Kafka 0.10.1), `read_committed` needs v2 (Kafka 0.11;
    /// Java refuses the same way, with an `UnsupportedVersionException`). Older ListOffsets
    /// versions would silently answer with other semantics (v0's offsets before a segment's
    /// time) or not encode at all.
    pub(super) fn list_offsets_refusal(
        &self,
        node: NodeId,
        by_time: bool,
    ) -> Option<ConsumerError> {
        let (release, table) = self.net.broker_versions(node)?;
        let have = table.negotiate(ApiKey::ListOffsets, None).unwrap_or(-1);
        let read_committed = self.fetcher.settings.isolation_level == 1;
        let (what, needs, min) = if read_committed && have < 2 {
            ("a read_committed consumer (transactions)", "0.11", 2)
        } else if by_time && have < 1 {
            ("offsets by time (offsets_for_times)", "0.10.1", 1)
        } else {
            return None;
        };
        Some(ConsumerError::Network(NetError::Unsupported {
            api: ApiKey::ListOffsets,
            broker: format!("node {node}"),
            detail: format!(
                "{what} needs Kafka {needs} or newer (ListOffsets v{min}); this broker is Kafka \
                 {}",
                crate::network::release_name(release)
            ),
        }))
    }

    /// Why `node` cannot serve this consumer's fetches, once its versions are known: a
    /// `read_committed` consumer needs Fetch v4 (Kafka 0.11), the first with an isolation
    /// level. Without it a position that needed no ListOffsets (a committed offset, a seek)
    /// would reach the broker as a request its version cannot encode; Java refuses the same
    /// way, with an `UnsupportedVersionException`.
    pub(super) fn fetch_refusal(&self, node: NodeId) -> Option<ConsumerError> {
        if self.fetcher.settings.isolation_level != 1 {
            return None;
        }
        let (release, table) = self.net.broker_versions(node)?;
        let have = table.negotiate(ApiKey::Fetch, None).unwrap_or(-1);
        (have < 4).then(|| {
            ConsumerError::Network(NetError::Unsupported {
                api: ApiKey::Fetch,
                broker: format!("node {node}"),
                detail: format!(
                    "a read_committed consumer (transactions) needs Kafka 0.11 or newer (Fetch \
                     v4); this broker is Kafka {}",
                    crate::network::release_name(release)
                ),
            })
        })
    }

    /// Stops fetching the partitions of `parts` with `error` until the application seeks.
    pub(super) fn fail_partitions<'a>(
        &mut self,
        parts: impl IntoIterator<Item = &'a TopicPartition>,
        error: &ConsumerError,
    ) {
        for tp in parts {
            if let Ok(s) = self.subs.get_mut(tp) {
                s.error = Some((error.clone(), false));
            }
        }
    }

    pub(super) fn send_resets(&mut self, now: Instant) {
        let due = self.subs.resets_due(now);
        if due.is_empty() {
            return;
        }
        let mut by_node = offsets::ByLeader::new();
        let mut missing = false;
        for (tp, ts) in due {
            match self.leader_of(&tp) {
                Some((node, epoch)) => {
                    by_node.entry(node).or_default().insert(tp, (ts, epoch));
                }
                None => missing = true,
            }
        }
        if missing {
            self.net.request_metadata(false, now);
        }
        let isolation = self.fetcher.settings.isolation_level;
        for (node, parts) in by_node {
            if let Some(e) = self.list_offsets_refusal(node, false) {
                for tp in parts.keys() {
                    if let Ok(s) = self.subs.get_mut(tp) {
                        s.reset = None;
                        s.error = Some((e.clone(), false));
                    }
                }
                continue;
            }
            let body = offsets::build_request(&parts, isolation);
            for tp in parts.keys() {
                if let Ok(s) = self.subs.get_mut(tp) {
                    if let Some(r) = &mut s.reset {
                        r.in_flight = true;
                    }
                }
            }
            let asked = parts.into_iter().map(|(tp, (ts, _))| (tp, ts)).collect();
            let id = self.net.send(
                Target::Node(node),
                RequestBody::ListOffsets(body),
                None,
                true,
                now,
            );
            self.reset_requests.insert(id, asked);
        }
    }

    pub(super) fn send_lookups(&mut self, now: Instant) {
        let ids: Vec<u64> = self.lookups.keys().copied().collect();
        let isolation = self.fetcher.settings.isolation_level;
        for op in ids {
            let lookup = &self.lookups[&op];
            if lookup.retry_at.is_some_and(|t| now < t) {
                continue;
            }
            let (by_node, missing) = lookup.due(|tp| self.leader_of(tp));
            if missing {
                self.net.request_metadata(false, now);
            }
            let refusal = by_node.iter().find_map(|(node, parts)| {
                let by_time = parts.values().any(|(ts, _)| *ts >= 0);
                self.list_offsets_refusal(*node, by_time)
            });
            if let Some(e) = refusal {
                self.finish_lookup(op, Err(e));
                continue;
            }
            for (node, parts) in by_node {
                let body = offsets::build_request(&parts, isolation);
                let id = self.net.send(
                    Target::Node(node),
                    RequestBody::ListOffsets(body),
                    None,
                    true,
                    now,
                );
                self.lookup_requests.insert(id, op);
                if let Some(l) = self.lookups.get_mut(&op) {
                    for tp in parts.keys() {
                        if let Some(p) = l.pending.get_mut(tp) {
                            p.1 = Some(id);
                        }
                    }
                }
            }
        }
    }

    pub(super) fn on_reset(
        &mut self,
        asked: BTreeMap<TopicPartition, i64>,
        result: Result<Response, NetError>,
        now: Instant,
    ) {
        let retry_at = now + self.retry_backoff;
        let mut answered = BTreeSet::new();
        let mut refresh = false;
        if let Ok((version, Ok(r))) = result.map(list_offsets) {
            for (tp, answer) in offsets::parse_response(&r, version) {
                let Some(&ts) = asked.get(&tp) else { continue };
                answered.insert(tp.clone());
                let Ok(state) = self.subs.get_mut(&tp) else {
                    continue;
                };
                // Only the reset this request was for (not one requested again since).
                let Some(reset) = state
                    .reset
                    .as_mut()
                    .filter(|r| r.in_flight && r.timestamp == ts)
                else {
                    continue;
                };
                match answer {
                    Ok(Some(o)) => {
                        tracing::debug!(partition = %tp, offset = o.offset, "offset reset");
                        state.reset = None;
                        state.position = Some(FetchPosition {
                            offset: o.offset,
                            leader_epoch: o.leader_epoch,
                        });
                    }
                    Ok(None) => {
                        reset.in_flight = false;
                        reset.retry_at = Some(retry_at);
                    }
                    Err(c) if offsets::needs_metadata(c) || c.is_retriable() => {
                        reset.in_flight = false;
                        reset.retry_at = Some(retry_at);
                        refresh |= offsets::needs_metadata(c);
                    }
                    Err(c) => {
                        state.reset = None;
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
        } else {
            refresh = !self.closed;
        }
        for tp in asked.keys().filter(|tp| !answered.contains(*tp)) {
            if let Ok(s) = self.subs.get_mut(tp) {
                if let Some(r) = &mut s.reset {
                    if r.in_flight {
                        r.in_flight = false;
                        r.retry_at = Some(retry_at);
                    }
                }
            }
        }
        if refresh {
            self.net.invalidate_metadata(now);
        }
    }

    pub(super) fn on_lookup(
        &mut self,
        op: u64,
        id: RequestId,
        result: Result<Response, NetError>,
        now: Instant,
    ) {
        let retry_at = now + self.retry_backoff;
        // Asked before this broker's versions were known: a v0 answer to a lookup by time
        // has other semantics (offsets before a log segment's time), and is refused.
        let by_time = self.lookups.get(&op).is_some_and(|l| {
            l.pending
                .values()
                .any(|(ts, req)| *ts >= 0 && *req == Some(id))
        });
        let refusal = match &result {
            Ok(r) if r.version == 0 && by_time => self.list_offsets_refusal(r.node, true),
            _ => None,
        };
        let Some(lookup) = self.lookups.get_mut(&op) else {
            return;
        };
        let mut refresh = false;
        let mut failed = None;
        match result.map(list_offsets) {
            Ok(_) if refusal.is_some() => failed = refusal,
            Ok((version, Ok(r))) => {
                for (tp, answer) in offsets::parse_response(&r, version) {
                    match lookup.apply(tp, answer, retry_at) {
                        Ok(r) => refresh |= r,
                        Err(e) => failed = Some(e),
                    }
                }
                // Partitions the broker left out are asked again.
                lookup.request_failed(id, retry_at);
                if lookup.pending.is_empty() {
                    lookup.retry_at = None;
                }
            }
            Ok((_, Err(_))) => failed = Some(unexpected()),
            Err(NetError::Closed) if self.closed => failed = Some(ConsumerError::Closed),
            Err(e)
                if matches!(
                    e,
                    NetError::Authentication { .. } | NetError::Unsupported { .. }
                ) =>
            {
                failed = Some(ConsumerError::Network(e))
            }
            Err(_) => {
                lookup.request_failed(id, retry_at);
                refresh = true;
            }
        }
        if let Some(e) = failed {
            self.finish_lookup(op, Err(e));
        } else if self.lookups.get(&op).is_some_and(OffsetLookup::is_done) {
            let l = self.lookups.remove(&op).expect("present");
            self.out.push_back(Output::Event(ConsumerEvent::Offsets {
                op: l.op,
                result: Ok(l.results),
            }));
        }
        if refresh && !self.closed {
            self.net.invalidate_metadata(now);
        }
    }

    pub(super) fn finish_lookup(&mut self, key: u64, result: OffsetsResult) {
        if let Some(l) = self.lookups.remove(&key) {
            self.lookup_requests.retain(|_, k| *k != key);
            self.out
                .push_back(Output::Event(ConsumerEvent::Offsets { op: l.op, result }));
        }
    }
}

/// A ListOffsets answer with the version it was exchanged at (its partitions are read by
/// version: v0 has the old-style offset list).
fn list_offsets(resp: Response) -> (i16, Result<ListOffsetsResponse, UnexpectedResponse>) {
    (resp.version, resp.body_as::<ListOffsetsRequest>())
}
