//! Consumer metrics, named as the Java consumer names them, and each assigned partition's lag.
//!
//! | field | Java group | Java name |
//! | --- | --- | --- |
//! | `records_consumed_total`, `_rate` | `consumer-fetch-manager-metrics` (also per `topic`) | `records-consumed-total`, `-rate` |
//! | `bytes_consumed_total`, `_rate` | same (also per `topic`) | `bytes-consumed-total`, `-rate` |
//! | `fetch_total`, `fetch_rate` | same | `fetch-total`, `fetch-rate` |
//! | `fetch_latency_avg`, `_max` | same | `fetch-latency-avg`, `-max` |
//! | `fetch_size_avg`, `_max` | same | `fetch-size-avg`, `-max` |
//! | `fetch_throttle_time_avg`, `_max` | same | `fetch-throttle-time-avg`, `-max` |
//! | `records_lag_max` | same | `records-lag-max` |
//! | [`PartitionLag::lag`] | same, per `topic` and `partition` | `records-lag` |
//! | `assigned_partitions` | `consumer-coordinator-metrics` | `assigned-partitions` |
//! | `commit_total`, `commit_latency_avg`, `_max` | same | `commit-total`, `commit-latency-avg`, `-max` |
//! | `rebalance_total`, `rebalance_latency_avg`, `_max`, `_total` | same | `rebalance-total`, `rebalance-latency-avg`, `-max`, `-total` |
//! | `last_rebalance_seconds_ago` | same | `last-rebalance-seconds-ago` |
//! | `heartbeat_total`, `heartbeat_response_time_max` | same | `heartbeat-total`, `heartbeat-response-time-max` |
//! | `last_heartbeat_seconds_ago` | same | `last-heartbeat-seconds-ago` |
//! | `network` | `consumer-metrics`, `consumer-node-metrics` | see [`NetworkMetrics`] |
//!
//! Differences from Java, all deliberate: `bytes-consumed` counts the payload of the records
//! handed out (keys, values, header keys and values), where Java counts each record's size in
//! the batch format (a few bytes of framing more per record); `records-lag-max` is the largest
//! lag of the assigned partitions now rather than the largest recorded over the window; commit
//! and heartbeat latencies are those of the OffsetCommit and Heartbeat requests (every
//! response, whatever its error code, as Java records them); a rebalance is counted when the
//! member becomes stable in a new generation and timed from the moment it left the stable
//! state (or first started joining).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::group::MemberState;
use super::record::TopicPartition;
use crate::network::metrics::{Client, MetricSample, NetRecorder, NetworkMetrics, Samples, Stat};
use crate::protocol::ApiKey;

#[derive(Debug, Clone, Default)]
struct TopicRec {
    records: Stat,
    bytes: Stat,
    records_total: u64,
    bytes_total: u64,
}

/// What the consumer core records as it goes (the network layer records the rest).
#[derive(Debug, Clone, Default)]
pub(crate) struct ConsumerRecorder {
    /// The first record handed out: the consumption rates count from here.
    started: Option<Instant>,
    topics: BTreeMap<Arc<str>, TopicRec>,
    fetch_size: Stat,
    /// The member's state at the last look, and its generation.
    group_state: Option<MemberState>,
    stable_generation: Option<i32>,
    /// When the rebalance under way began.
    rebalance_start: Option<Instant>,
    rebalance_latency: Stat,
    rebalance_total: u64,
    rebalance_latency_total: f64,
    last_rebalance: Option<Instant>,
}

impl ConsumerRecorder {
    fn start(&mut self, now: Instant) {
        self.started.get_or_insert(now);
    }

    /// Records handed to the application.
    pub(crate) fn consumed(&mut self, topic: &Arc<str>, records: usize, bytes: u64, now: Instant) {
        if records == 0 || !crate::network::metrics::RECORDING {
            return;
        }
        self.start(now);
        let t = match self.topics.get_mut(topic) {
            Some(t) => t,
            None => self.topics.entry(topic.clone()).or_default(),
        };
        t.records.record(records as f64, now);
        t.bytes.record(bytes as f64, now);
        t.records_total += records as u64;
        t.bytes_total += bytes;
    }

    /// A fetch response carrying `bytes` of record data in all.
    pub(crate) fn fetched(&mut self, bytes: usize, now: Instant) {
        self.fetch_size.record(bytes as f64, now);
    }

    /// Follows the group member after every input: a rebalance starts when the member leaves
    /// the stable state (or starts joining) and ends when it is stable in a new generation.
    /// `generation` is asked only when the member became stable: its metadata is copied.
    pub(crate) fn observe_group(
        &mut self,
        state: MemberState,
        generation: impl FnOnce() -> i32,
        now: Instant,
    ) {
        // A new generation is only reached through JoinGroup and SyncGroup, two round trips:
        // the member is seen outside the stable state in between.
        if self.group_state == Some(state) {
            return;
        }
        self.group_state = Some(state);
        match state {
            MemberState::Joining | MemberState::Syncing | MemberState::Reconciling => {
                self.rebalance_start.get_or_insert(now);
            }
            MemberState::Unjoined => {}
            MemberState::Stable => {
                let generation = generation();
                if self.stable_generation != Some(generation) {
                    self.stable_generation = Some(generation);
                    let start = self.rebalance_start.take().unwrap_or(now);
                    let ms = now.saturating_duration_since(start).as_secs_f64() * 1000.0;
                    self.rebalance_latency.record(ms, now);
                    self.rebalance_total += 1;
                    self.rebalance_latency_total += ms;
                    self.last_rebalance = Some(now);
                }
            }
        }
    }
}

/// One assigned partition's position, high watermark and lag (`lag()` on the consumer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionLag {
    /// The offset of the next record the application gets; `None` before the consumer knows
    /// where to start (a reset or committed-offset lookup under way).
    pub position: Option<i64>,
    /// The high watermark the last fetch of the partition reported (the last stable offset
    /// under `read_committed`, as Java's lag uses); `None` before the first fetch answered.
    pub high_watermark: Option<i64>,
    /// `high_watermark - position` (Java's `records-lag`), when both are known.
    pub lag: Option<i64>,
}

/// A snapshot of the consumer's metrics (see the [module docs](self) for the Java names).
/// Rates are per second over the last minute or so (two 30-second samples); averages and
/// maxima over the same window are NaN when nothing was measured, as in Java.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConsumerMetrics {
    /// `records-consumed-total`: records handed to the application.
    pub records_consumed_total: f64,
    /// `records-consumed-rate`.
    pub records_consumed_rate: f64,
    /// `bytes-consumed-total`: payload bytes of those records.
    pub bytes_consumed_total: f64,
    /// `bytes-consumed-rate`.
    pub bytes_consumed_rate: f64,
    /// Per topic: the four metrics above.
    pub topics: BTreeMap<String, TopicMetrics>,
    /// `fetch-total`: Fetch responses received.
    pub fetch_total: f64,
    /// `fetch-rate`: Fetch requests sent per second.
    pub fetch_rate: f64,
    /// `fetch-latency-avg`: average ms from sending a Fetch to its response.
    pub fetch_latency_avg: f64,
    /// `fetch-latency-max`.
    pub fetch_latency_max: f64,
    /// `fetch-size-avg`: average bytes of record data per Fetch response.
    pub fetch_size_avg: f64,
    /// `fetch-size-max`.
    pub fetch_size_max: f64,
    /// `fetch-throttle-time-avg`: average throttle time brokers reported in Fetch responses.
    pub fetch_throttle_time_avg: f64,
    /// `fetch-throttle-time-max`.
    pub fetch_throttle_time_max: f64,
    /// `records-lag-max`: the largest lag of the assigned partitions (NaN when none is known).
    pub records_lag_max: f64,
    /// Per assigned partition: position, high watermark and `records-lag`.
    pub partitions: BTreeMap<TopicPartition, PartitionLag>,
    /// `assigned-partitions`.
    pub assigned_partitions: f64,
    /// `commit-total`: OffsetCommit responses received.
    pub commit_total: f64,
    /// `commit-latency-avg` (ms).
    pub commit_latency_avg: f64,
    /// `commit-latency-max` (ms).
    pub commit_latency_max: f64,
    /// `rebalance-total`: rebalances the member completed (stable in a new generation).
    pub rebalance_total: f64,
    /// `rebalance-latency-avg` (ms).
    pub rebalance_latency_avg: f64,
    /// `rebalance-latency-max` (ms).
    pub rebalance_latency_max: f64,
    /// `rebalance-latency-total`: ms spent in completed rebalances.
    pub rebalance_latency_total: f64,
    /// `last-rebalance-seconds-ago` (NaN before the first).
    pub last_rebalance_seconds_ago: f64,
    /// `heartbeat-total`: Heartbeat responses received.
    pub heartbeat_total: f64,
    /// `heartbeat-response-time-max` (ms).
    pub heartbeat_response_time_max: f64,
    /// `heartbeat-response-time-avg` (ms; Java has only the maximum).
    pub heartbeat_response_time_avg: f64,
    /// `last-heartbeat-seconds-ago`: since the last Heartbeat was sent (NaN before the first).
    pub last_heartbeat_seconds_ago: f64,
    /// The network layer's metrics.
    pub network: NetworkMetrics,
}

/// One topic's consumption (`consumer-fetch-manager-metrics` tagged `topic`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TopicMetrics {
    /// `records-consumed-total`.
    pub records_consumed_total: f64,
    /// `records-consumed-rate`.
    pub records_consumed_rate: f64,
    /// `bytes-consumed-total`.
    pub bytes_consumed_total: f64,
    /// `bytes-consumed-rate`.
    pub bytes_consumed_rate: f64,
}

/// What the core hands [`ConsumerMetrics::snapshot`] besides the recorders.
pub(crate) struct Now<'a> {
    pub now: Instant,
    pub net: &'a NetRecorder,
    pub network: NetworkMetrics,
    pub lag: BTreeMap<TopicPartition, PartitionLag>,
}

fn secs_ago(t: Option<Instant>, now: Instant) -> f64 {
    t.map_or(f64::NAN, |t| now.saturating_duration_since(t).as_secs_f64())
}

impl ConsumerMetrics {
    pub(crate) fn snapshot(r: &ConsumerRecorder, n: Now<'_>) -> Self {
        let now = n.now;
        let first = r.started.unwrap_or(now);
        let topics: BTreeMap<String, TopicMetrics> = r
            .topics
            .iter()
            .map(|(name, t)| {
                let m = TopicMetrics {
                    records_consumed_total: t.records_total as f64,
                    records_consumed_rate: t.records.rate(now, first),
                    bytes_consumed_total: t.bytes_total as f64,
                    bytes_consumed_rate: t.bytes.rate(now, first),
                };
                (name.to_string(), m)
            })
            .collect();
        let sum = |f: fn(&TopicMetrics) -> f64| topics.values().map(f).sum::<f64>();
        let (fetch_latency_avg, fetch_latency_max, fetch_total) =
            n.net.api_latency(ApiKey::Fetch, now);
        let (fetch_throttle_time_avg, fetch_throttle_time_max) =
            n.net.api_throttle(ApiKey::Fetch, now);
        let (commit_latency_avg, commit_latency_max, commit_total) =
            n.net.api_latency(ApiKey::OffsetCommit, now);
        let (hb_avg, hb_max, hb_total) = n.net.api_latency(ApiKey::Heartbeat, now);
        let fetch_rate = n.net.api_request_rate(ApiKey::Fetch, now);
        ConsumerMetrics {
            records_consumed_total: sum(|t| t.records_consumed_total),
            records_consumed_rate: sum(|t| t.records_consumed_rate),
            bytes_consumed_total: sum(|t| t.bytes_consumed_total),
            bytes_consumed_rate: sum(|t| t.bytes_consumed_rate),
            topics,
            fetch_total: fetch_total as f64,
            fetch_rate,
            fetch_latency_avg,
            fetch_latency_max,
            fetch_size_avg: r.fetch_size.avg(now),
            fetch_size_max: r.fetch_size.max(now),
            fetch_throttle_time_avg,
            fetch_throttle_time_max,
            records_lag_max: n
                .lag
                .values()
                .filter_map(|l| l.lag)
                .map(|l| l as f64)
                .fold(f64::NAN, f64::max),
            assigned_partitions: n.lag.len() as f64,
            partitions: n.lag,
            commit_total: commit_total as f64,
            commit_latency_avg,
            commit_latency_max,
            rebalance_total: r.rebalance_total as f64,
            rebalance_latency_avg: r.rebalance_latency.avg(now),
            rebalance_latency_max: r.rebalance_latency.max(now),
            rebalance_latency_total: r.rebalance_latency_total,
            last_rebalance_seconds_ago: secs_ago(r.last_rebalance, now),
            heartbeat_total: hb_total as f64,
            heartbeat_response_time_max: hb_max,
            heartbeat_response_time_avg: hb_avg,
            last_heartbeat_seconds_ago: secs_ago(n.net.last_sent(ApiKey::Heartbeat), now),
            network: n.network,
        }
    }

    /// Every measurement as a [`MetricSample`] (Java's groups and names; labels `client_id`,
    /// `topic`, `partition`, `node_id`, `api`).
    pub fn samples(&self) -> Vec<MetricSample> {
        const F: &str = "consumer-fetch-manager-metrics";
        const C: &str = "consumer-coordinator-metrics";
        let mut s = Samples::new(&self.network.client_id);
        let none: &[(&'static str, String)] = &[];
        s.counter(
            F,
            "records-consumed-total",
            "Records handed to the application.",
            none,
            self.records_consumed_total,
        );
        s.gauge(
            F,
            "records-consumed-rate",
            "Records handed to the application per second.",
            none,
            self.records_consumed_rate,
        );
        s.counter(
            F,
            "bytes-consumed-total",
            "Payload bytes handed to the application.",
            none,
            self.bytes_consumed_total,
        );
        s.gauge(
            F,
            "bytes-consumed-rate",
            "Payload bytes handed to the application per second.",
            none,
            self.bytes_consumed_rate,
        );
        for (topic, t) in &self.topics {
            let l = [("topic", topic.clone())];
            s.counter(
                F,
                "records-consumed-total",
                "Records handed to the application.",
                &l,
                t.records_consumed_total,
            );
            s.gauge(
                F,
                "records-consumed-rate",
                "Records handed to the application per second.",
                &l,
                t.records_consumed_rate,
            );
            s.counter(
                F,
                "bytes-consumed-total",
                "Payload bytes handed to the application.",
                &l,
                t.bytes_consumed_total,
            );
            s.gauge(
                F,
                "bytes-consumed-rate",
                "Payload bytes handed to the application per second.",
                &l,
                t.bytes_consumed_rate,
            );
        }
        s.counter(
            F,
            "fetch-total",
            "Fetch responses received.",
            none,
            self.fetch_total,
        );
        s.gauge(
            F,
            "fetch-rate",
            "Fetch requests per second.",
            none,
            self.fetch_rate,
        );
        s.gauge(
            F,
            "fetch-latency-avg",
            "Average Fetch latency in ms.",
            none,
            self.fetch_latency_avg,
        );
        s.gauge(
            F,
            "fetch-latency-max",
            "Largest Fetch latency in ms.",
            none,
            self.fetch_latency_max,
        );
        s.gauge(
            F,
            "fetch-size-avg",
            "Average record bytes per Fetch response.",
            none,
            self.fetch_size_avg,
        );
        s.gauge(
            F,
            "fetch-size-max",
            "Largest record bytes in a Fetch response.",
            none,
            self.fetch_size_max,
        );
        s.gauge(
            F,
            "fetch-throttle-time-avg",
            "Average throttle time in Fetch responses in ms.",
            none,
            self.fetch_throttle_time_avg,
        );
        s.gauge(
            F,
            "fetch-throttle-time-max",
            "Largest throttle time in Fetch responses in ms.",
            none,
            self.fetch_throttle_time_max,
        );
        s.gauge(
            F,
            "records-lag-max",
            "Largest lag of the assigned partitions.",
            none,
            self.records_lag_max,
        );
        for (tp, l) in &self.partitions {
            if let Some(lag) = l.lag {
                let labels = [
                    ("topic", tp.topic.to_string()),
                    ("partition", tp.partition.to_string()),
                ];
                s.gauge(
                    F,
                    "records-lag",
                    "Records between the position and the high watermark.",
                    &labels,
                    lag as f64,
                );
            }
        }
        s.gauge(
            C,
            "assigned-partitions",
            "Partitions assigned to the consumer.",
            none,
            self.assigned_partitions,
        );
        s.counter(
            C,
            "commit-total",
            "OffsetCommit responses received.",
            none,
            self.commit_total,
        );
        s.gauge(
            C,
            "commit-latency-avg",
            "Average commit latency in ms.",
            none,
            self.commit_latency_avg,
        );
        s.gauge(
            C,
            "commit-latency-max",
            "Largest commit latency in ms.",
            none,
            self.commit_latency_max,
        );
        s.counter(
            C,
            "rebalance-total",
            "Rebalances completed.",
            none,
            self.rebalance_total,
        );
        s.gauge(
            C,
            "rebalance-latency-avg",
            "Average rebalance time in ms.",
            none,
            self.rebalance_latency_avg,
        );
        s.gauge(
            C,
            "rebalance-latency-max",
            "Largest rebalance time in ms.",
            none,
            self.rebalance_latency_max,
        );
        s.counter(
            C,
            "rebalance-latency-total",
            "Time spent in completed rebalances in ms.",
            none,
            self.rebalance_latency_total,
        );
        s.gauge(
            C,
            "last-rebalance-seconds-ago",
            "Seconds since the last rebalance completed.",
            none,
            self.last_rebalance_seconds_ago,
        );
        s.counter(
            C,
            "heartbeat-total",
            "Heartbeat responses received.",
            none,
            self.heartbeat_total,
        );
        s.gauge(
            C,
            "heartbeat-response-time-max",
            "Largest Heartbeat latency in ms.",
            none,
            self.heartbeat_response_time_max,
        );
        s.gauge(
            C,
            "heartbeat-response-time-avg",
            "Average Heartbeat latency in ms.",
            none,
            self.heartbeat_response_time_avg,
        );
        s.gauge(
            C,
            "last-heartbeat-seconds-ago",
            "Seconds since the last Heartbeat was sent.",
            none,
            self.last_heartbeat_seconds_ago,
        );
        self.network.add_samples(Client::Consumer, &[], &mut s);
        s.out
    }

    /// The snapshot in Prometheus' text format (`kafka_consumer_fetch_manager_records_lag_max`
    /// and so on; see [`MetricSample::flat_name`]).
    pub fn to_prometheus(&self) -> String {
        crate::network::metrics::to_prometheus(&self.samples())
    }

    /// Publishes the snapshot through the `metrics` crate's recorder (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub fn publish(&self) {
        crate::network::metrics::publish(&self.samples());
    }
}
