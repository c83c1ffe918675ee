//! Routing: which connection a request goes to (a node, the controller, a partition's
//! leader, a coordinator, the least loaded broker), coordinator lookups, and when requests
//! fail at once instead of waiting (credentials, certificates, every bootstrap address
//! failed).

// The parent's imports: these are methods of `NetworkClient`, in their own file.
#[allow(clippy::wildcard_imports)]
use super::*;

impl NetworkClient {
    /// The nodes requests to "any broker" may go to: the brokers metadata names, or the
    /// bootstrap addresses until it has named some.
    pub(super) fn candidate_nodes(&self) -> Vec<NodeId> {
        if self.cluster.brokers.is_empty() {
            self.bootstrap.keys().copied().collect()
        } else {
            self.cluster.brokers.keys().copied().collect()
        }
    }

    pub(super) fn backing_off(&self, node: NodeId, now: Instant) -> bool {
        self.node_state
            .get(&node)
            .and_then(|s| s.next_attempt)
            .is_some_and(|t| now < t)
    }

    /// With `bootstrap_fail_fast`, before the first metadata: the error every request gets
    /// when each bootstrap address has failed in this round (none is connecting, each is
    /// backing off from a failure), naming each address's cause. An authentication or TLS
    /// failure is reported as itself, as Java throws its `AuthenticationException` /
    /// `SslAuthenticationException`: wrong credentials or an untrusted certificate are the
    /// cluster's answer, not an address problem, and another address will not fix them.
    pub(super) fn bootstrap_unreachable(&self, now: Instant) -> Option<NetError> {
        if !self.opts.bootstrap_fail_fast
            || !self.cluster.brokers.is_empty()
            || self.bootstrap.is_empty()
        {
            return None;
        }
        let failed = self.bootstrap.keys().all(|n| {
            !self.conn_of_node.contains_key(n)
                && self.backing_off(*n, now)
                && self
                    .node_state
                    .get(n)
                    .is_some_and(|s| s.setup_failed && s.last_error.is_some())
        });
        if !failed {
            return None;
        }
        if let Some(auth) = self
            .bootstrap
            .keys()
            .filter_map(|n| self.node_state.get(n)?.fatal.as_ref())
            .rfind(|e| matches!(e, NetError::Authentication { .. } | NetError::Tls { .. }))
        {
            return Some(auth.clone());
        }
        Some(NetError::NoBroker {
            causes: self
                .bootstrap
                .keys()
                .filter_map(|n| {
                    let e = self.node_state.get(n)?.last_error.as_deref()?;
                    let label = self.broker_label(*n);
                    Some(if e.contains(&label) {
                        e.to_owned()
                    } else {
                        format!("{label}: {e}")
                    })
                })
                .collect(),
        })
    }

    pub(super) fn route(&mut self, p: &Pending, now: Instant) -> Route {
        if let Some(e) = self.bootstrap_unreachable(now) {
            return Route::Fail(e);
        }
        let node = match &p.target {
            Target::Node(n) => {
                if self.address_of(*n).is_none() {
                    self.want_metadata();
                    return Route::Wait;
                }
                *n
            }
            Target::Controller => {
                // Before the first metadata the (default) view names no broker at all.
                if self.cluster.controller < 0 || self.address_of(self.cluster.controller).is_none()
                {
                    self.want_metadata();
                    return Route::Wait;
                }
                self.cluster.controller
            }
            Target::Leader { topic, partition } => {
                match self.cluster.topic(topic) {
                    None => {
                        self.want_metadata();
                        return Route::Wait;
                    }
                    Some(t) if t.error == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
                        return Route::Fail(NetError::UnknownTopicOrPartition(topic.clone()));
                    }
                    Some(t) if t.error.is_ok() && *partition as usize >= t.partitions.len() => {
                        return Route::Fail(NetError::UnknownTopicOrPartition(format!(
                            "{topic}-{partition} (the topic has {} partitions)",
                            t.partitions.len()
                        )));
                    }
                    Some(_) => {}
                }
                match self.cluster.leader_for(topic, *partition) {
                    Some(n) => n,
                    None => {
                        self.want_metadata();
                        return Route::Wait;
                    }
                }
            }
            Target::Any => return self.route_any(now),
            // Brokers before 0.8.2 have no coordinator; 0.8.1 keeps a group's offsets in
            // ZooKeeper and answers OffsetCommit/OffsetFetch v0 on any broker.
            Target::Coordinator {
                kind: CoordinatorKind::Group,
                ..
            } if matches!(
                p.body,
                RequestBody::OffsetCommit(_) | RequestBody::OffsetFetch(_)
            ) && self.zookeeper_offsets() =>
            {
                return self.route_any(now)
            }
            Target::Coordinator { kind, key } => match self.route_coordinator(*kind, key, now) {
                Ok(node) => coordinator_conn(node),
                Err(route) => return route,
            },
        };
        self.route_node(node, now)
    }

    /// The coordinator's node, or what to do while it is unknown (look it up, wait, fail).
    pub(super) fn route_coordinator(
        &mut self,
        kind: CoordinatorKind,
        key: &str,
        now: Instant,
    ) -> Result<NodeId, Route> {
        if let Some(release) = self.brokers_lack(ApiKey::FindCoordinator) {
            // Brokers before 0.8.2: no lookup can find a coordinator; fail now rather than
            // when the lookup, sent to a broker still being probed, times out.
            let entry = self.coordinators.entry((kind, key.to_owned())).or_default();
            entry.error.get_or_insert_with(|| NetError::Unsupported {
                api: ApiKey::FindCoordinator,
                broker: "every broker".into(),
                detail: no_coordinator(&format!(
                    "the brokers are Kafka {}",
                    crate::network::versions::release_name(release)
                )),
            });
        }
        let entry = self.coordinators.entry((kind, key.to_owned())).or_default();
        if let Some(e) = &entry.error {
            return Err(Route::Fail(e.clone()));
        }
        let (known, lookup, not_before) = (entry.node, entry.lookup, entry.not_before);
        if let Some(node) = known.filter(|n| self.address_of(*n).is_some()) {
            return Ok(node);
        }
        if lookup.is_none() && not_before.is_none_or(|t| now >= t) {
            let id = self.next_request_id();
            let entry = self
                .coordinators
                .get_mut(&(kind, key.to_owned()))
                .expect("inserted above");
            entry.lookup = Some(id);
            entry.not_before = None;
            self.coordinator_lookups.insert(id, (kind, key.to_owned()));
            let body = RequestBody::FindCoordinator(crate::protocol::FindCoordinatorRequest {
                key: key.to_owned(),
                key_type: kind.key_type(),
                ..Default::default()
            });
            self.pending.push_back(Pending {
                id,
                target: Target::Any,
                body,
                max_version: None,
                expect_response: true,
                deadline: now + self.opts.conn.request_timeout,
                timeout: self.opts.conn.request_timeout,
                internal: true,
            });
        }
        Err(Route::Wait)
    }

    /// The release of the brokers met so far when none of them has `api` (`None` while no
    /// broker's versions are known, or when one has it).
    fn brokers_lack(&self, api: ApiKey) -> Option<BrokerVersion> {
        let mut tables = self
            .node_state
            .values()
            .filter_map(|s| s.versions.as_ref())
            .peekable();
        tables.peek()?;
        let mut release = None;
        for t in tables {
            if t.broker_range(api).is_some() {
                return None;
            }
            release = Some(t.guess_broker_version());
        }
        release
    }

    /// Whether the brokers met so far keep group offsets in ZooKeeper without a coordinator
    /// (0.8.1: OffsetCommit but no FindCoordinator).
    fn zookeeper_offsets(&self) -> bool {
        self.node_state
            .values()
            .filter_map(|s| s.versions.as_ref())
            .any(|t| {
                t.broker_range(ApiKey::FindCoordinator).is_none()
                    && t.broker_range(ApiKey::OffsetCommit).is_some()
            })
    }

    /// Forgets the coordinator of `key` (after NOT_COORDINATOR and similar errors): the next
    /// request for it looks the coordinator up again.
    pub fn invalidate_coordinator(&mut self, kind: CoordinatorKind, key: &str, now: Instant) {
        if let Some(entry) = self.coordinators.get_mut(&(kind, key.to_owned())) {
            entry.node = None;
        }
        self.pump(now);
    }

    /// The coordinator of `key`, if known.
    pub fn coordinator(&self, kind: CoordinatorKind, key: &str) -> Option<NodeId> {
        self.coordinators.get(&(kind, key.to_owned()))?.node
    }

    pub(super) fn on_coordinator_response(
        &mut self,
        kind: CoordinatorKind,
        key: String,
        result: Result<Response, NetError>,
        now: Option<Instant>,
    ) {
        let retry_backoff = self.opts.retry_backoff;
        let mut found = None;
        let entry = self.coordinators.entry((kind, key.clone())).or_default();
        entry.lookup = None;
        let retry = |entry: &mut CoordinatorState| {
            entry.not_before = now.map(|t| t + retry_backoff);
        };
        let answer = result.map(|resp| {
            let (version, node) = (resp.version, resp.node);
            (
                version,
                node,
                resp.body_as::<crate::protocol::FindCoordinatorRequest>(),
            )
        });
        match answer {
            Ok((version, answered_by, Ok(r))) => {
                let (code, message, node, host, port) = if version >= 4 {
                    match r.coordinators.into_iter().find(|c| c.key == key) {
                        Some(c) => (c.error(), c.error_message, c.node_id, c.host, c.port),
                        None => (
                            ErrorCode::COORDINATOR_NOT_AVAILABLE,
                            None,
                            -1,
                            String::new(),
                            0,
                        ),
                    }
                } else {
                    (r.error(), r.error_message, r.node_id, r.host, r.port)
                };
                if code.is_ok() && node >= 0 {
                    entry.node = Some(node);
                    entry.error = None;
                    found = Some((node, host, port));
                } else if code.is_retriable() || code.is_ok() {
                    retry(entry);
                } else {
                    entry.error = Some(NetError::Broker {
                        broker: format!("node {answered_by}"),
                        api: ApiKey::FindCoordinator,
                        code,
                        message,
                    });
                }
            }
            Ok((_, _, Err(_))) => retry(entry),
            // A broker before 0.8.2: no retry brings a coordinator.
            Err(NetError::Unsupported {
                api: ApiKey::FindCoordinator,
                broker,
                detail,
            }) => {
                entry.error = Some(NetError::Unsupported {
                    api: ApiKey::FindCoordinator,
                    broker,
                    detail: no_coordinator(&detail),
                });
            }
            Err(error) => {
                tracing::debug!(%error, %key, "coordinator lookup failed");
                retry(entry);
            }
        }
        // The coordinator may be a broker this client's metadata has not named yet.
        if let Some((node, host, port)) = found {
            if !self.cluster.brokers.contains_key(&node) && (0..=u16::MAX as i32).contains(&port) {
                let mut view = (*self.cluster).clone();
                view.brokers.insert(
                    node,
                    crate::network::cluster::BrokerInfo {
                        node_id: node,
                        host,
                        port: port as u16,
                        rack: None,
                    },
                );
                self.cluster = Arc::new(view);
            }
        }
    }

    /// The authentication or TLS failure of a broker still backing off from it.
    pub(super) fn fatal_error(&self, node: NodeId, now: Instant) -> Option<NetError> {
        if !self.backing_off(node, now) {
            return None;
        }
        self.node_state.get(&node)?.fatal.clone()
    }

    pub(super) fn route_node(&mut self, node: NodeId, now: Instant) -> Route {
        match self.conn_of_node.get(&node).and_then(|c| self.conns.get(c)) {
            Some(c) if c.can_send() && !self.throttled(node, now) => Route::Send(c.id),
            Some(_) => Route::Wait,
            None if self.backing_off(node, now) => match self.fatal_error(node, now) {
                Some(e) => Route::Fail(e),
                None => Route::Wait,
            },
            None => {
                self.connect(node, now);
                Route::Wait
            }
        }
    }

    /// Java's least-loaded choice: a ready connection with the fewest requests in flight; else
    /// wait for one being set up; else open one to a broker not backing off, starting from a
    /// random one so that clients spread over the cluster.
    pub(super) fn route_any(&mut self, now: Instant) -> Route {
        let nodes = self.candidate_nodes();
        if nodes.is_empty() {
            return Route::Wait;
        }
        let start = self.rng.below(nodes.len() as u64) as usize;
        let mut best: Option<(usize, ConnId)> = None;
        let mut setting_up = false;
        let mut connectable = None;
        for i in 0..nodes.len() {
            let node = nodes[(start + i) % nodes.len()];
            match self.conn_of_node.get(&node).and_then(|c| self.conns.get(c)) {
                // Ready, but muted by the broker for now: like a full connection.
                Some(c) if c.is_ready() && self.throttled(node, now) => {}
                Some(c) if c.can_send() && best.is_none_or(|(n, _)| c.in_flight() < n) => {
                    best = Some((c.in_flight(), c.id));
                }
                Some(c) if c.can_send() => {}
                Some(c) if !c.is_ready() => setting_up = true,
                Some(_) => {}
                None if connectable.is_none() && !self.backing_off(node, now) => {
                    connectable = Some(node)
                }
                None => {}
            }
        }
        if let Some((_, conn)) = best {
            return Route::Send(conn);
        }
        if !setting_up {
            if let Some(node) = connectable {
                self.connect(node, now);
            } else if let Some(e) = nodes
                .iter()
                .map(|n| self.fatal_error(*n, now))
                .collect::<Option<Vec<_>>>()
                .and_then(|errors| errors.into_iter().next_back())
            {
                // Every broker refused us for a reason time will not fix (credentials,
                // certificates): say so now rather than at the request timeout.
                return Route::Fail(e);
            }
        }
        Route::Wait
    }
}

/// What a client without a group coordinator (brokers before 0.8.2) cannot do, after `why`.
fn no_coordinator(why: &str) -> String {
    format!(
        "{why}: brokers before 0.8.2 have no group coordinator, so no consumer groups (subscribe \
         needs 0.9) and, before 0.8.1, no committed offsets; use assign() and keep offsets in \
         the application"
    )
}
