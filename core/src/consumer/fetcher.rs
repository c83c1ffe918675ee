//! The fetcher: which partitions to fetch from which broker, with how many bytes, and the
//! Fetch requests that say so.
//!
//! Contract:
//! - One Fetch per broker in flight at a time, covering every fetchable partition that broker
//!   serves (the leader, or a preferred read replica the leader named, KIP-392). A partition
//!   with data buffered is fetched ahead, from the end of that data, while at most one
//!   partition fetch (`max_partition_fetch_bytes`) is buffered and fewer than
//!   [`MAX_QUEUED_FETCHES`] responses are queued, so the next response is on its way while
//!   the application reads (as librdkafka keeps its queue filled); a response is kept only if
//!   it starts where the buffered data (or, with none, the position) ends. A broker whose
//!   partitions are all caught up is not asked (which would be a long poll) while the
//!   application still reads data of that broker: the fetch goes out once it is read.
//! - Bytes: a request's `max_bytes` is what the memory budget leaves (`fetch_buffer_bytes`
//!   minus what is held, reserved for other fetches in flight, and the room kept for
//!   decompressing the largest batch seen), split among the brokers being asked, capped by
//!   `fetch_max_bytes`; each partition's limit is `max_partition_fetch_bytes` capped by the
//!   same. The reservation lasts until the response is in the buffer. Nothing is fetched while
//!   the budget is used up or a buffered batch waits for memory.
//! - Every partition carries the leader epoch from metadata (`current_leader_epoch`, KIP-320),
//!   so a broker with a different view answers FENCED_LEADER_EPOCH/UNKNOWN_LEADER_EPOCH
//!   instead of serving stale data.
//! - Fetch is asked at version 12 at most: topics by name (v13 replaced them with topic ids).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::fetch_session::{FetchPlan, FetchSession};
use super::record::TopicPartition;
use crate::config::ConsumerConfig;
use crate::network::{NodeId, RequestId};
use crate::protocol::fetch::request::{FetchPartition, FetchTopic, ForgottenTopic};
use crate::protocol::FetchRequest;

/// The highest Fetch version the consumer asks for.
pub(crate) const MAX_FETCH_VERSION: i16 = 12;

/// The most completed fetches a partition queues (the one being read included) before it is
/// no longer fetched ahead: small responses (a topic being written slowly) would otherwise
/// queue without end below the byte threshold.
pub(crate) const MAX_QUEUED_FETCHES: usize = 3;

/// Counters a test (or a metrics reporter) can read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Fetch requests listing every wanted partition (no session, or a new one).
    pub full_fetches: u64,
    /// Incremental fetch requests (KIP-227).
    pub incremental_fetches: u64,
    /// Fetch responses (and failures) handled.
    pub fetch_responses: u64,
    /// Sessions the broker reset (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH, ...).
    pub session_resets: u64,
    /// The most bytes ever accounted (held, decompressed and reserved) at once.
    pub peak_buffered_bytes: u64,
    /// Records handed to the application.
    pub records_returned: u64,
}

/// The fetch settings from the consumer's configuration.
#[derive(Debug, Clone)]
pub(crate) struct FetchSettings {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: u64,
    pub partition_max_bytes: u64,
    pub isolation_level: i8,
    pub rack: String,
    pub bound: u64,
    pub replica_lifetime: Duration,
    pub sessions: bool,
}

impl FetchSettings {
    pub fn from_config(c: &ConsumerConfig) -> Self {
        FetchSettings {
            max_wait_ms: i32::try_from(c.fetch_max_wait_ms).unwrap_or(i32::MAX),
            min_bytes: i32::try_from(c.fetch_min_bytes).unwrap_or(i32::MAX),
            max_bytes: u64::from(c.fetch_max_bytes).max(1),
            partition_max_bytes: u64::from(c.max_partition_fetch_bytes).max(1),
            isolation_level: c.isolation_level.as_i8(),
            rack: c.common.client_rack.clone(),
            bound: c.fetch_buffer_bytes.max(1),
            // Java uses a preferred replica until the metadata would be refreshed anyway.
            replica_lifetime: Duration::from_millis(c.common.metadata_max_age_ms),
            sessions: c.enable_incremental_fetch_sessions,
        }
    }
}

/// A fetch on its way.
#[derive(Debug)]
pub(crate) struct InFlightFetch {
    pub node: NodeId,
    pub plan: FetchPlan,
    pub reserved: u64,
    /// Partitions fetched from a replica other than the leader.
    pub from_replica: BTreeSet<TopicPartition>,
    /// The request's `fetch` span, closed when its answer has been handled.
    pub span: tracing::Span,
}

/// Sessions, fetches in flight and the per-broker backoff.
#[derive(Debug)]
pub(crate) struct Fetcher {
    pub settings: FetchSettings,
    pub sessions: BTreeMap<NodeId, FetchSession>,
    pub in_flight: BTreeMap<RequestId, InFlightFetch>,
    pub node_retry: BTreeMap<NodeId, Instant>,
    pub stats: FetchStats,
    /// The broker asked last: the next round starts after it, so that when the budget lets
    /// only one fetch out at a time every broker gets its turn.
    pub last_node: Option<NodeId>,
}

impl Fetcher {
    pub fn new(settings: FetchSettings) -> Self {
        Fetcher {
            settings,
            sessions: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            node_retry: BTreeMap::new(),
            stats: FetchStats::default(),
            last_node: None,
        }
    }

    /// Bytes reserved for fetches in flight.
    pub fn reserved(&self) -> u64 {
        self.in_flight.values().map(|f| f.reserved).sum()
    }

    /// Whether a fetch to `node` is in flight or backing off.
    pub fn is_busy(&self, node: NodeId, now: Instant) -> bool {
        self.in_flight.values().any(|f| f.node == node)
            || self.node_retry.get(&node).is_some_and(|t| now < *t)
    }

    /// The byte limit of the next request, given what is held, the room kept for
    /// decompression, the smallest limit worth asking for (the largest batch seen: the broker
    /// returns a whole first batch whatever the limit) and how many brokers are still to be
    /// asked in this round; `None` when the budget is used up. `draining` says whether memory
    /// will be freed without a new fetch (the application can read data held, or a fetch is
    /// in flight): when it will not, one fetch goes out anyway.
    pub fn request_budget(
        &self,
        held: u64,
        headroom: u64,
        min_useful: u64,
        nodes: usize,
        draining: bool,
    ) -> Option<u64> {
        let used = held + self.reserved();
        let free = self.settings.bound.saturating_sub(used + headroom);
        // Fewer brokers asked with a useful limit each beats every broker asked for less
        // than one batch (each would get one whole batch anyway and overshoot).
        let share = (free / nodes.max(1) as u64).max(min_useful);
        if share == 0 || share > free {
            // Nothing will make room by itself (the data held is paused, or waits for
            // memory too, or there is none): a fetch must still go out, or a budget
            // smaller than one batch would stall forever. The broker returns at least one
            // batch (KIP-74).
            return (!draining).then_some(1);
        }
        Some(share.min(self.settings.max_bytes))
    }

    /// The Fetch request for a plan.
    pub fn build_request(&self, plan: &FetchPlan, max_bytes: u64) -> FetchRequest {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for (tp, p) in &plan.send {
            let partition = FetchPartition {
                partition: tp.partition,
                current_leader_epoch: p.leader_epoch,
                fetch_offset: p.fetch_offset,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: p.max_bytes,
                ..Default::default()
            };
            match topics.last_mut() {
                Some(t) if *t.topic == *tp.topic => t.partitions.push(partition),
                _ => topics.push(FetchTopic {
                    topic: tp.topic.to_string(),
                    partitions: vec![partition],
                    ..Default::default()
                }),
            }
        }
        let mut forgotten: Vec<ForgottenTopic> = Vec::new();
        for tp in &plan.forgotten {
            match forgotten.last_mut() {
                Some(t) if *t.topic == *tp.topic => t.partitions.push(tp.partition),
                _ => forgotten.push(ForgottenTopic {
                    topic: tp.topic.to_string(),
                    partitions: vec![tp.partition],
                    ..Default::default()
                }),
            }
        }
        FetchRequest {
            replica_id: -1,
            max_wait_ms: self.settings.max_wait_ms,
            min_bytes: self.settings.min_bytes,
            max_bytes: i32::try_from(max_bytes).unwrap_or(i32::MAX),
            isolation_level: self.settings.isolation_level,
            session_id: plan.session_id,
            session_epoch: plan.epoch,
            topics,
            forgotten_topics_data: forgotten,
            rack_id: self.settings.rack.clone(),
            ..Default::default()
        }
    }

    /// The earliest per-broker retry time.
    pub fn next_retry(&self) -> Option<Instant> {
        self.node_retry.values().min().copied()
    }

    /// Forgets per-broker retry times that passed.
    pub fn expire_retries(&mut self, now: Instant) {
        self.node_retry.retain(|_, t| now < *t);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fetch_session::PartitionFetch;
    use super::*;

    fn settings(bound: u64) -> FetchSettings {
        FetchSettings {
            max_bytes: 1000,
            bound,
            ..FetchSettings::from_config(&ConsumerConfig::default())
        }
    }

    #[test]
    fn budget_splits_what_is_left_and_always_lets_one_fetch_out() {
        let mut f = Fetcher::new(settings(3000));
        assert_eq!(
            f.request_budget(0, 0, 0, 1, false),
            Some(1000),
            "capped by fetch_max_bytes"
        );
        assert_eq!(f.request_budget(1000, 0, 0, 2, true), Some(1000));
        assert_eq!(f.request_budget(2000, 500, 0, 1, true), Some(500));
        assert_eq!(f.request_budget(3000, 0, 0, 1, true), None);
        assert_eq!(
            f.request_budget(3000, 0, 0, 1, false),
            Some(1),
            "nothing held can be drained: one fetch goes out"
        );
        assert_eq!(
            f.request_budget(0, 0, 1400, 3, false),
            Some(1000),
            "fewer brokers with a useful share each"
        );
        let mut s = FetchSession::new(true);
        let plan = s.plan(BTreeMap::new());
        s.handle_error();
        f.in_flight.insert(
            RequestId(1),
            InFlightFetch {
                node: 1,
                plan,
                reserved: 2500,
                from_replica: BTreeSet::new(),
                span: tracing::Span::none(),
            },
        );
        assert_eq!(f.request_budget(0, 0, 0, 1, true), Some(500));
        assert_eq!(
            f.request_budget(100, 0, 450, 1, true),
            None,
            "less room than a batch: wait"
        );
        assert!(f.is_busy(1, Instant::now()));
        let tiny = Fetcher::new(settings(10));
        assert_eq!(
            tiny.request_budget(0, 100, 0, 1, false),
            Some(1),
            "progress with nothing held"
        );
    }

    #[test]
    fn requests_group_topics_and_carry_the_session() {
        let f = Fetcher::new(settings(1 << 20));
        let mut wanted = BTreeMap::new();
        for (t, p) in [("a", 0), ("a", 1), ("b", 0)] {
            wanted.insert(
                TopicPartition::new(t, p),
                PartitionFetch {
                    fetch_offset: 7,
                    max_bytes: 100,
                    leader_epoch: 3,
                },
            );
        }
        let mut plan = FetchSession::new(true).plan(wanted);
        plan.forgotten = vec![TopicPartition::new("c", 2), TopicPartition::new("c", 3)];
        let req = f.build_request(&plan, 999);
        assert_eq!(req.topics.len(), 2);
        assert_eq!(req.topics[0].partitions.len(), 2);
        assert_eq!(req.topics[0].partitions[1].current_leader_epoch, 3);
        assert_eq!(req.forgotten_topics_data[0].partitions, vec![2, 3]);
        assert_eq!(
            (req.session_id, req.session_epoch, req.max_bytes),
            (0, 0, 999)
        );
    }
}
