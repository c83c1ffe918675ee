//! Metadata: the topics the client wants, when a refresh is due (interval, an unknown
//! leader, an explicit request), and applying a Metadata answer to the cluster view.

// The parent's imports: these are methods of `NetworkClient`, in their own file.
#[allow(clippy::wildcard_imports)]
use super::*;

impl NetworkClient {
    /// Asks for a metadata refresh unless one is already on its way (its answer is what the
    /// caller waits for).
    pub(super) fn want_metadata(&mut self) {
        if self.meta.in_flight.is_none() {
            self.meta.requested = true;
        }
    }

    pub(super) fn maybe_refresh_metadata(&mut self, now: Instant) {
        if self.meta.in_flight.is_some() || self.closed {
            return;
        }
        if self.meta.not_before.is_some_and(|t| now < t) {
            return;
        }
        // A served backoff must not linger: poll_timeout would keep reporting it.
        self.meta.not_before = None;
        let stale = self
            .meta
            .last_update
            .is_some_and(|t| now >= t + self.opts.metadata_max_age);
        let has_interest = self.meta.all_topics || !self.meta.topics.is_empty();
        if !(self.meta.requested || (stale && has_interest)) {
            return;
        }
        self.meta.requested = false;
        self.meta.not_before = None;
        let topics = if self.meta.all_topics {
            None
        } else {
            Some(
                self.meta
                    .topics
                    .iter()
                    .map(
                        |t| crate::protocol::metadata::request::MetadataRequestTopic {
                            name: Some(t.clone()),
                            ..Default::default()
                        },
                    )
                    .collect(),
            )
        };
        let body = RequestBody::Metadata(MetadataRequest {
            topics,
            allow_auto_topic_creation: self.opts.allow_auto_topic_creation,
            ..Default::default()
        });
        let id = self.next_request_id();
        self.meta.in_flight = Some(id);
        self.meta.in_flight_full = self.meta.all_topics;
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

    pub(super) fn on_metadata_response(
        &mut self,
        id: RequestId,
        result: Result<Response, NetError>,
        now: Option<Instant>,
    ) {
        if self.meta.in_flight != Some(id) {
            return;
        }
        self.meta.in_flight = None;
        match result.map(|r| r.body_as::<MetadataRequest>()) {
            Ok(Ok(resp)) => {
                let full = self.meta.in_flight_full;
                let mut view = (*self.cluster).clone();
                view.update(&resp, full);
                // A leader still being elected: look again soon, not after max age.
                let electing = view.topics.values().any(|t| {
                    t.error == ErrorCode::LEADER_NOT_AVAILABLE
                        || t.partitions.iter().any(|p| p.leader < 0)
                });
                self.cluster = Arc::new(view);
                if full {
                    self.meta.all_topics = false;
                }
                self.meta.last_update = now;
                // As Java's refresh backoff: at most one refresh per retry_backoff, so a
                // request waiting on a node metadata does not name cannot loop Metadata.
                self.meta.not_before = now.map(|t| t + self.opts.retry_backoff);
                if electing {
                    self.meta.requested = true;
                }
                self.out.push_back(Output::Event(NetEvent::MetadataUpdated(
                    self.cluster.clone(),
                )));
            }
            Ok(Err(_)) => {}
            Err(error) => {
                tracing::debug!(%error, "metadata refresh failed");
                self.meta.requested = true;
                self.meta.not_before = now.map(|t| t + self.opts.retry_backoff);
            }
        }
    }

    /// Marks the metadata of `topic` stale (after NOT_LEADER_OR_FOLLOWER and similar errors):
    /// the next refresh starts as soon as the retry backoff allows.
    pub fn invalidate_metadata(&mut self, now: Instant) {
        self.meta.requested = true;
        self.pump(now);
    }

    /// Asks for a metadata refresh (of every topic when `all_topics`).
    pub fn request_metadata(&mut self, all_topics: bool, now: Instant) {
        self.meta.requested = true;
        self.meta.all_topics |= all_topics;
        self.pump(now);
    }

    /// Adds topics whose metadata the client keeps.
    pub fn add_topic_interest(&mut self, topic: &str) {
        if !self.meta.topics.contains(topic) {
            self.meta.topics.insert(topic.to_owned());
            if self.cluster.topic(topic).is_none() {
                self.meta.requested = true;
            }
        }
    }
}
