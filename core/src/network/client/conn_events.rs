//! What a connection reports (ready, a response, a fatal error) and what follows from it:
//! reconnect backoff, failing the requests it carried, timeouts and idle connections.

// The parent's imports: these are methods of `NetworkClient`, in their own file.
#[allow(clippy::wildcard_imports)]
use super::*;

impl NetworkClient {
    pub(super) fn handle_conn_events_no_flush(&mut self, conn: ConnId, events: Vec<ConnEvent>) {
        // Only reached from flush_conn on a TLS write failure, which has no `now`; the
        // failure still counts towards backoff at the next input.
        for event in events {
            if let ConnEvent::Fatal { error, .. } = event {
                let node = self.conns.get(&conn).map(|c| c.node);
                if let Some(node) = node {
                    let state = self.node_state.entry(node).or_default();
                    state.last_error = Some(error.to_string());
                }
                self.drop_connection(conn, error, None);
                self.out.push_back(Output::Close { conn });
            }
        }
    }

    pub(super) fn handle_conn_events(
        &mut self,
        conn: ConnId,
        events: Vec<ConnEvent>,
        now: Instant,
    ) {
        for event in events {
            match event {
                ConnEvent::Ready => {
                    let c = &self.conns[&conn];
                    let node = c.node;
                    let versions = c.versions().cloned();
                    let state = self.node_state.entry(node).or_default();
                    state.failures = 0;
                    state.next_attempt = None;
                    state.last_error = None;
                    state.fatal = None;
                    state.setup_failed = false;
                    state.versions = versions;
                    tracing::debug!(broker = %self.conns[&conn].broker, "connection ready");
                }
                ConnEvent::Response { id, result } => {
                    if let Ok((version, body)) = &result {
                        self.note_throttle(conn, body, *version, now);
                    }
                    let Some(sent) = self.sent.remove(&id) else {
                        continue;
                    };
                    match &result {
                        Ok((_, body)) => {
                            self.metrics
                                .response(sent.node, sent.api, sent.at, body, now);
                        }
                        Err(_) => self.metrics.request_failed(sent.api),
                    }
                    let result = result.map(|(version, body)| Response {
                        node: real_node(sent.node),
                        version,
                        body,
                    });
                    self.complete(id, sent.internal, result, Some(now));
                }
                ConnEvent::Setup(step) => {
                    let node = self.conns[&conn].node;
                    match step {
                        SetupExchange::Sent(api) => self.metrics.request_sent(node, api, now),
                        SetupExchange::Answered {
                            api,
                            sent,
                            throttle_time_ms,
                        } => self
                            .metrics
                            .record_response(node, api, sent, throttle_time_ms, now),
                    }
                }
                ConnEvent::ProbeAnswered(release) => {
                    let node = self.conns[&conn].node;
                    tracing::info!(broker = %self.conns[&conn].broker, %release, "legacy broker detected");
                    let state = self.node_state.entry(node).or_default();
                    state.probed = ApiVersionTable::for_release(release).map(Arc::new);
                    state.probe = None;
                    // Ask ApiVersions once more before trusting the probe: a modern broker that
                    // only dropped two connections answers it now; a real legacy broker closes
                    // again, and the connection after that uses the probed table.
                    state.legacy_suspicion = 0;
                    self.drop_connection(conn, NetError::Closed, None);
                    self.out.push_back(Output::Close { conn });
                }
                ConnEvent::Fatal {
                    error,
                    maybe_legacy,
                } => {
                    let node = self.conns[&conn].node;
                    let in_setup = self.conns[&conn].versions().is_none();
                    let probing = self
                        .node_state
                        .get(&node)
                        .is_some_and(|s| s.probe.is_some());
                    let state = self.node_state.entry(node).or_default();
                    if probing && matches!(error, NetError::Disconnected { .. }) {
                        // The probe's API is unknown to this broker: try the next older one,
                        // at once.
                        *state.probe.as_mut().expect("probing") += 1;
                    } else {
                        if maybe_legacy {
                            state.legacy_suspicion = state.legacy_suspicion.saturating_add(1);
                        }
                        if matches!(
                            error,
                            NetError::Authentication { .. }
                                | NetError::Tls { .. }
                                | NetError::NotKafka { .. }
                        ) {
                            state.fatal = Some(error.clone());
                        }
                        self.note_failure(node, &error, now);
                        let state = self.node_state.entry(node).or_default();
                        // A connection closed in answer to ApiVersions is how brokers before
                        // 0.10 answer it: a probe result (legacy suspicion, then probing), not
                        // an address that refused us, so it does not count towards
                        // `bootstrap_fail_fast`.
                        state.setup_failed = (in_setup && !maybe_legacy) || state.fatal.is_some();
                    }
                    self.drop_connection(conn, error, Some(now));
                    self.out.push_back(Output::Close { conn });
                }
            }
        }
        self.flush_conn(conn, now);
    }

    pub(super) fn note_failure(&mut self, node: NodeId, error: &NetError, now: Instant) {
        let base = self.opts.reconnect_backoff;
        let max = self.opts.reconnect_backoff_max;
        let state = self.node_state.entry(node).or_default();
        state.failures = state.failures.saturating_add(1);
        let exp = base
            .checked_mul(1u32 << (state.failures - 1).min(20))
            .unwrap_or(max)
            .min(max);
        let delay = self.rng.jitter(exp, 0.2);
        let state = self.node_state.entry(node).or_default();
        state.next_attempt = Some(now + delay);
        state.last_error = Some(error.to_string());
    }

    /// Forgets a connection, failing the user requests it had in flight with `error`.
    pub(super) fn drop_connection(&mut self, conn: ConnId, error: NetError, now: Option<Instant>) {
        self.tls.remove(&conn);
        self.hosts.remove(&conn);
        let Some(mut c) = self.conns.remove(&conn) else {
            return;
        };
        self.metrics.connection_closed(c.node);
        for api in c.setup_in_flight() {
            self.metrics.request_failed(api);
        }
        if self.conn_of_node.get(&c.node) == Some(&conn) {
            self.conn_of_node.remove(&c.node);
        }
        for id in c.take_in_flight() {
            if let Some(sent) = self.sent.remove(&id) {
                self.metrics.request_failed(sent.api);
                self.complete(id, sent.internal, Err(error.clone()), now);
            }
        }
    }

    pub(super) fn timeout_error(&self, p: &Pending) -> NetError {
        let nodes = match &p.target {
            Target::Node(n) => vec![*n],
            Target::Controller if self.cluster.controller >= 0 => vec![self.cluster.controller],
            Target::Leader { topic, partition } => self
                .cluster
                .leader_for(topic, *partition)
                .map_or_else(|| self.candidate_nodes(), |n| vec![n]),
            _ => self.candidate_nodes(),
        };
        let labels: Vec<String> = nodes.iter().map(|n| self.broker_label(*n)).collect();
        let last_error = nodes
            .iter()
            .filter_map(|n| self.node_state.get(n)?.last_error.clone())
            .next_back();
        let broker = match &p.target {
            Target::Leader { topic, partition } => {
                format!("the leader of {topic}-{partition} ({})", labels.join(", "))
            }
            _ if labels.len() == 1 => labels[0].clone(),
            _ => format!("any of {}", labels.join(", ")),
        };
        NetError::Timeout {
            broker,
            after: p.timeout,
            detail: last_error,
        }
    }

    pub(super) fn close_idle(&mut self, now: Instant) {
        let idle: Vec<ConnId> = self
            .conns
            .values()
            .filter(|c| {
                c.is_ready()
                    && c.in_flight() == 0
                    && now >= c.last_used + self.opts.connections_max_idle
            })
            .map(|c| c.id)
            .collect();
        for conn in idle {
            tracing::debug!(broker = %self.conns[&conn].broker, "closing idle connection");
            self.drop_connection(conn, NetError::Closed, Some(now));
            self.out.push_back(Output::Close { conn });
        }
    }

    /// A response's throttle time: counted for [`NetworkClient::throttle_stats`], and with a
    /// KIP-219 version, requests on this connection wait until `now + throttle_time_ms`.
    fn note_throttle(&mut self, conn: ConnId, body: &ResponseBody, version: i16, now: Instant) {
        let Some(ms) = body.throttle_time_ms().filter(|ms| *ms > 0) else {
            return;
        };
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let node = c.node;
        let api = body.api_key();
        let until = super::super::throttle::client_waits(api, version)
            .then(|| now + Duration::from_millis(ms as u64));
        tracing::debug!(broker = %c.broker, %api, throttle_time_ms = ms, client_waits = until.is_some(), "broker throttled a response");
        if let Some(t) = until {
            let state = self.node_state.entry(node).or_default();
            state.throttled_until = Some(state.throttled_until.map_or(t, |u| u.max(t)));
        }
        self.throttle
            .entry(real_node(node))
            .or_default()
            .record(ms, until);
    }

    /// Whether the broker throttles `node`'s connection at `now`.
    pub(super) fn throttled(&self, node: NodeId, now: Instant) -> bool {
        self.node_state
            .get(&node)
            .and_then(|s| s.throttled_until)
            .is_some_and(|t| now < t)
    }

    /// Until when requests to `node` wait because its broker throttles this client (KIP-219),
    /// if they do at `now`.
    pub fn node_throttled_until(&self, node: NodeId, now: Instant) -> Option<Instant> {
        self.node_state
            .get(&node)
            .and_then(|s| s.throttled_until)
            .filter(|t| now < *t)
    }

    /// Quota throttling per broker (real node ids; a broker's coordinator connection counts
    /// towards the broker), for metrics. Brokers that never throttled are absent.
    pub fn throttle_stats(&self) -> &BTreeMap<NodeId, super::super::BrokerThrottle> {
        &self.throttle
    }
}
