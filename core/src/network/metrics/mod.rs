//! What the network layer measures: connections opened and closed, bytes in and out,
//! requests, their latency and the brokers' throttle times, per broker connection and per
//! API. Every client core (producer, consumer, admin) includes a [`NetworkMetrics`] in its
//! snapshot.
//!
//! # Names
//! The Java client reports these in its `<client>-metrics` group (`connection-count`,
//! `connection-creation-total`, `connection-close-total`, `request-total`, `response-total`,
//! `request-rate`, `incoming-byte-total`, `incoming-byte-rate`, `outgoing-byte-total`,
//! `outgoing-byte-rate`, `request-latency-avg`, `request-latency-max`) and per broker in
//! `<client>-node-metrics` tagged `node-id` (the same names, per connection). Kafkit adds:
//! `requests-in-flight` (Java has it for the producer only), `throttle-time-avg/max` per node
//! (Java splits it into `produce-throttle-time-*` and `fetch-throttle-time-*`; the producer and
//! consumer snapshots carry those too) and a `<client>-api-metrics` group tagged `api` with
//! request and response counts, network errors and latency per API. Node ids are the
//! connection's as Java keys them: bootstrap addresses are negative (-1, -2, ...) and a
//! coordinator connection is `2147483647 - broker id`.
//!
//! Rates and averages follow Kafka's sampled statistics: two 30-second samples on the core's
//! `now`; an average or maximum is NaN when nothing was measured in that window.

use std::collections::BTreeMap;
use std::time::Instant;

use super::NodeId;
use crate::protocol::{ApiKey, ResponseBody};

mod export;
mod stat;

#[cfg(feature = "metrics")]
pub use export::publish;
pub(crate) use export::Samples;
pub use export::{to_prometheus, MetricKind, MetricSample};
pub(crate) use stat::Stat;

/// Whether this build records metrics: always, unless kafkit-core was compiled with the
/// environment variable `KAFKIT_METRICS_OFF` set. That build exists to measure what recording
/// costs (BENCHMARKS.md, "Cost of observability"): every windowed statistic and every
/// per-connection and per-API figure is compiled out (a few plain counters of the producer
/// still count), so its snapshots read nearly empty and the metrics tests fail on it. Recording is per request, per batch and per record
/// accepted by the producer, never per byte.
pub(crate) const RECORDING: bool = option_env!("KAFKIT_METRICS_OFF").is_none();

/// Per broker connection, as measured.
#[derive(Debug, Clone, Default)]
struct NodeRec {
    created: u64,
    closed: u64,
    bytes_in: Stat,
    bytes_out: Stat,
    bytes_in_total: u64,
    bytes_out_total: u64,
    requests: Stat,
    request_total: u64,
    response_total: u64,
    latency: Stat,
    throttle: Stat,
}

/// Per API, as measured.
#[derive(Debug, Clone, Default)]
struct ApiRec {
    requests: Stat,
    request_total: u64,
    response_total: u64,
    error_total: u64,
    latency: Stat,
    throttle: Stat,
    last_sent: Option<Instant>,
}

/// What the network client records as it goes (see the module docs).
#[derive(Debug, Clone, Default)]
pub(crate) struct NetRecorder {
    /// The first measurement: rates count from here.
    started: Option<Instant>,
    nodes: BTreeMap<NodeId, NodeRec>,
    apis: BTreeMap<ApiKey, ApiRec>,
    latency: Stat,
    throttle: Stat,
}

impl NetRecorder {
    fn start(&mut self, now: Instant) {
        self.started.get_or_insert(now);
    }

    pub(crate) fn connection_created(&mut self, node: NodeId, now: Instant) {
        if !RECORDING {
            return;
        }
        self.start(now);
        self.nodes.entry(node).or_default().created += 1;
    }

    pub(crate) fn connection_closed(&mut self, node: NodeId) {
        if !RECORDING {
            return;
        }
        self.nodes.entry(node).or_default().closed += 1;
    }

    pub(crate) fn bytes_in(&mut self, node: NodeId, n: usize, now: Instant) {
        if !RECORDING {
            return;
        }
        self.start(now);
        let rec = self.nodes.entry(node).or_default();
        rec.bytes_in.record(n as f64, now);
        rec.bytes_in_total += n as u64;
    }

    pub(crate) fn bytes_out(&mut self, node: NodeId, n: usize, now: Instant) {
        if !RECORDING {
            return;
        }
        self.start(now);
        let rec = self.nodes.entry(node).or_default();
        rec.bytes_out.record(n as f64, now);
        rec.bytes_out_total += n as u64;
    }

    /// A request written to `node`'s connection.
    pub(crate) fn request_sent(&mut self, node: NodeId, api: ApiKey, now: Instant) {
        if !RECORDING {
            return;
        }
        self.start(now);
        let rec = self.nodes.entry(node).or_default();
        rec.requests.record(1.0, now);
        rec.request_total += 1;
        let api = self.apis.entry(api).or_default();
        api.requests.record(1.0, now);
        api.request_total += 1;
        api.last_sent = Some(now);
    }

    /// A response read from `node`'s connection, `sent` being when its request was written.
    pub(crate) fn response(
        &mut self,
        node: NodeId,
        api: ApiKey,
        sent: Instant,
        body: &ResponseBody,
        now: Instant,
    ) {
        if !RECORDING {
            return;
        }
        self.record_response(node, api, sent, throttle_time_ms(body), now);
    }

    /// A response read from `node`'s connection with its `throttle_time_ms` taken already:
    /// the responses of connection setup (ApiVersions, SASL), which the connection decodes
    /// itself, and, through [`Self::response`], every other.
    pub(crate) fn record_response(
        &mut self,
        node: NodeId,
        api: ApiKey,
        sent: Instant,
        throttle_time_ms: Option<i32>,
        now: Instant,
    ) {
        if !RECORDING {
            return;
        }
        let ms = now.saturating_duration_since(sent).as_secs_f64() * 1000.0;
        let throttle = throttle_time_ms.filter(|t| *t >= 0).map(f64::from);
        let rec = self.nodes.entry(node).or_default();
        rec.response_total += 1;
        rec.latency.record(ms, now);
        let a = self.apis.entry(api).or_default();
        a.response_total += 1;
        a.latency.record(ms, now);
        self.latency.record(ms, now);
        if let Some(t) = throttle {
            rec.throttle.record(t, now);
            a.throttle.record(t, now);
            self.throttle.record(t, now);
        }
    }

    /// A request that got no response (the connection failed, it timed out).
    pub(crate) fn request_failed(&mut self, api: ApiKey) {
        if !RECORDING {
            return;
        }
        self.apis.entry(api).or_default().error_total += 1;
    }

    /// When the last request of `api` was written.
    pub(crate) fn last_sent(&self, api: ApiKey) -> Option<Instant> {
        self.apis.get(&api)?.last_sent
    }

    /// Requests of `api` written per second.
    pub(crate) fn api_request_rate(&self, api: ApiKey, now: Instant) -> f64 {
        let first = self.started.unwrap_or(now);
        self.apis
            .get(&api)
            .map_or(0.0, |a| a.requests.rate(now, first))
    }

    /// Latency average and maximum (ms) and response count of `api`.
    pub(crate) fn api_latency(&self, api: ApiKey, now: Instant) -> (f64, f64, u64) {
        match self.apis.get(&api) {
            Some(a) => (a.latency.avg(now), a.latency.max(now), a.response_total),
            None => (f64::NAN, f64::NAN, 0),
        }
    }

    /// Throttle time average and maximum (ms) reported in responses to `api`.
    pub(crate) fn api_throttle(&self, api: ApiKey, now: Instant) -> (f64, f64) {
        match self.apis.get(&api) {
            Some(a) => (a.throttle.avg(now), a.throttle.max(now)),
            None => (f64::NAN, f64::NAN),
        }
    }

    /// The snapshot at `now`; `in_flight` and `connections` are the client's current counts.
    pub(crate) fn snapshot(
        &self,
        client_id: &str,
        now: Instant,
        in_flight: &BTreeMap<NodeId, usize>,
        connections: usize,
    ) -> NetworkMetrics {
        let first = self.started.unwrap_or(now);
        let sum = |f: &dyn Fn(&NodeRec) -> u64| self.nodes.values().map(f).sum::<u64>() as f64;
        let rate = |f: &dyn Fn(&NodeRec) -> &Stat| {
            self.nodes
                .values()
                .map(|n| f(n).rate(now, first))
                .sum::<f64>()
        };
        let nodes = self
            .nodes
            .iter()
            .map(|(id, n)| {
                let m = NodeMetrics {
                    connection_creation_total: n.created as f64,
                    connection_close_total: n.closed as f64,
                    request_total: n.request_total as f64,
                    response_total: n.response_total as f64,
                    request_rate: n.requests.rate(now, first),
                    request_latency_avg: n.latency.avg(now),
                    request_latency_max: n.latency.max(now),
                    incoming_byte_total: n.bytes_in_total as f64,
                    incoming_byte_rate: n.bytes_in.rate(now, first),
                    outgoing_byte_total: n.bytes_out_total as f64,
                    outgoing_byte_rate: n.bytes_out.rate(now, first),
                    requests_in_flight: in_flight.get(id).copied().unwrap_or(0) as f64,
                    throttle_time_avg: n.throttle.avg(now),
                    throttle_time_max: n.throttle.max(now),
                };
                (*id, m)
            })
            .collect();
        let apis = self
            .apis
            .iter()
            .map(|(api, a)| {
                let m = ApiMetrics {
                    request_total: a.request_total as f64,
                    response_total: a.response_total as f64,
                    error_total: a.error_total as f64,
                    request_latency_avg: a.latency.avg(now),
                    request_latency_max: a.latency.max(now),
                    throttle_time_avg: a.throttle.avg(now),
                    throttle_time_max: a.throttle.max(now),
                };
                (*api, m)
            })
            .collect();
        NetworkMetrics {
            client_id: client_id.to_owned(),
            connection_count: connections as f64,
            connection_creation_total: sum(&|n| n.created),
            connection_close_total: sum(&|n| n.closed),
            request_total: sum(&|n| n.request_total),
            response_total: sum(&|n| n.response_total),
            request_rate: rate(&|n| &n.requests),
            request_latency_avg: self.latency.avg(now),
            request_latency_max: self.latency.max(now),
            incoming_byte_total: sum(&|n| n.bytes_in_total),
            incoming_byte_rate: rate(&|n| &n.bytes_in),
            outgoing_byte_total: sum(&|n| n.bytes_out_total),
            outgoing_byte_rate: rate(&|n| &n.bytes_out),
            requests_in_flight: in_flight.values().sum::<usize>() as f64,
            throttle_time_avg: self.throttle.avg(now),
            throttle_time_max: self.throttle.max(now),
            nodes,
            apis,
        }
    }
}

/// The network layer's metrics: totals over every connection, then per broker connection
/// ([`NetworkMetrics::nodes`]) and per API ([`NetworkMetrics::apis`]). See the
/// [module docs](self) for the Java names each field maps to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NetworkMetrics {
    /// The client's `client_id` (the `client_id` label of every exported sample).
    pub client_id: String,
    /// `connection-count`: connections open now.
    pub connection_count: f64,
    /// `connection-creation-total`: connections opened since the start.
    pub connection_creation_total: f64,
    /// `connection-close-total`: connections closed (by either side) since the start.
    pub connection_close_total: f64,
    /// `request-total`: requests written.
    pub request_total: f64,
    /// `response-total`: responses read.
    pub response_total: f64,
    /// `request-rate`: requests written per second.
    pub request_rate: f64,
    /// `request-latency-avg`: average ms from writing a request to reading its response.
    pub request_latency_avg: f64,
    /// `request-latency-max`.
    pub request_latency_max: f64,
    /// `incoming-byte-total`: bytes read from brokers.
    pub incoming_byte_total: f64,
    /// `incoming-byte-rate`: bytes read per second.
    pub incoming_byte_rate: f64,
    /// `outgoing-byte-total`: bytes written to brokers.
    pub outgoing_byte_total: f64,
    /// `outgoing-byte-rate`: bytes written per second.
    pub outgoing_byte_rate: f64,
    /// `requests-in-flight`: requests written and awaiting their response.
    pub requests_in_flight: f64,
    /// `throttle-time-avg`: average `throttle_time_ms` brokers reported in responses.
    pub throttle_time_avg: f64,
    /// `throttle-time-max`.
    pub throttle_time_max: f64,
    /// Per broker connection (`<client>-node-metrics`), by node id.
    pub nodes: BTreeMap<NodeId, NodeMetrics>,
    /// Per API (`<client>-api-metrics`).
    pub apis: BTreeMap<ApiKey, ApiMetrics>,
}

/// One broker connection's metrics (Java's `<client>-node-metrics`, tagged `node-id`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NodeMetrics {
    /// `connection-creation-total`.
    pub connection_creation_total: f64,
    /// `connection-close-total`.
    pub connection_close_total: f64,
    /// `request-total`.
    pub request_total: f64,
    /// `response-total`.
    pub response_total: f64,
    /// `request-rate`.
    pub request_rate: f64,
    /// `request-latency-avg` (ms).
    pub request_latency_avg: f64,
    /// `request-latency-max` (ms).
    pub request_latency_max: f64,
    /// `incoming-byte-total`.
    pub incoming_byte_total: f64,
    /// `incoming-byte-rate`.
    pub incoming_byte_rate: f64,
    /// `outgoing-byte-total`.
    pub outgoing_byte_total: f64,
    /// `outgoing-byte-rate`.
    pub outgoing_byte_rate: f64,
    /// `requests-in-flight`.
    pub requests_in_flight: f64,
    /// `throttle-time-avg` (ms).
    pub throttle_time_avg: f64,
    /// `throttle-time-max` (ms).
    pub throttle_time_max: f64,
}

/// One API's metrics (`<client>-api-metrics`, tagged `api`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ApiMetrics {
    /// `request-total`: requests of this API written.
    pub request_total: f64,
    /// `response-total`: responses read (whatever error code they carry).
    pub response_total: f64,
    /// `request-error-total`: requests that got no response (connection lost, timed out).
    pub error_total: f64,
    /// `request-latency-avg` (ms).
    pub request_latency_avg: f64,
    /// `request-latency-max` (ms).
    pub request_latency_max: f64,
    /// `throttle-time-avg` (ms).
    pub throttle_time_avg: f64,
    /// `throttle-time-max` (ms).
    pub throttle_time_max: f64,
}

impl NetworkMetrics {
    /// Adds the samples of this snapshot under `client` (`consumer`, `producer`, `admin`):
    /// groups `<client>-metrics`, `<client>-node-metrics` and `<client>-api-metrics`.
    /// `skip` names top-level metrics the client's own group reports already.
    pub(crate) fn add_samples(&self, client: Client, skip: &[&str], s: &mut Samples) {
        let g = client.groups();
        let (top, node, api) = (g[0], g[1], g[2]);
        let start = s.out.len();
        let none: &[(&'static str, String)] = &[];
        s.gauge(
            top,
            "connection-count",
            "Connections open now.",
            none,
            self.connection_count,
        );
        s.counter(
            top,
            "connection-creation-total",
            "Connections opened.",
            none,
            self.connection_creation_total,
        );
        s.counter(
            top,
            "connection-close-total",
            "Connections closed.",
            none,
            self.connection_close_total,
        );
        s.counter(
            top,
            "request-total",
            "Requests written.",
            none,
            self.request_total,
        );
        s.counter(
            top,
            "response-total",
            "Responses read.",
            none,
            self.response_total,
        );
        s.gauge(
            top,
            "request-rate",
            "Requests written per second.",
            none,
            self.request_rate,
        );
        s.gauge(
            top,
            "request-latency-avg",
            "Average request latency in ms.",
            none,
            self.request_latency_avg,
        );
        s.gauge(
            top,
            "request-latency-max",
            "Largest request latency in ms.",
            none,
            self.request_latency_max,
        );
        s.counter(
            top,
            "incoming-byte-total",
            "Bytes read from brokers.",
            none,
            self.incoming_byte_total,
        );
        s.gauge(
            top,
            "incoming-byte-rate",
            "Bytes read per second.",
            none,
            self.incoming_byte_rate,
        );
        s.counter(
            top,
            "outgoing-byte-total",
            "Bytes written to brokers.",
            none,
            self.outgoing_byte_total,
        );
        s.gauge(
            top,
            "outgoing-byte-rate",
            "Bytes written per second.",
            none,
            self.outgoing_byte_rate,
        );
        s.gauge(
            top,
            "requests-in-flight",
            "Requests awaiting a response.",
            none,
            self.requests_in_flight,
        );
        s.gauge(
            top,
            "throttle-time-avg",
            "Average broker throttle time in ms.",
            none,
            self.throttle_time_avg,
        );
        s.gauge(
            top,
            "throttle-time-max",
            "Largest broker throttle time in ms.",
            none,
            self.throttle_time_max,
        );
        for (id, n) in &self.nodes {
            let l = [("node_id", id.to_string())];
            s.counter(
                node,
                "connection-creation-total",
                "Connections opened to the broker.",
                &l,
                n.connection_creation_total,
            );
            s.counter(
                node,
                "connection-close-total",
                "Connections to the broker closed.",
                &l,
                n.connection_close_total,
            );
            s.counter(
                node,
                "request-total",
                "Requests written to the broker.",
                &l,
                n.request_total,
            );
            s.counter(
                node,
                "response-total",
                "Responses read from the broker.",
                &l,
                n.response_total,
            );
            s.gauge(
                node,
                "request-rate",
                "Requests per second to the broker.",
                &l,
                n.request_rate,
            );
            s.gauge(
                node,
                "request-latency-avg",
                "Average request latency to the broker in ms.",
                &l,
                n.request_latency_avg,
            );
            s.gauge(
                node,
                "request-latency-max",
                "Largest request latency to the broker in ms.",
                &l,
                n.request_latency_max,
            );
            s.counter(
                node,
                "incoming-byte-total",
                "Bytes read from the broker.",
                &l,
                n.incoming_byte_total,
            );
            s.gauge(
                node,
                "incoming-byte-rate",
                "Bytes read from the broker per second.",
                &l,
                n.incoming_byte_rate,
            );
            s.counter(
                node,
                "outgoing-byte-total",
                "Bytes written to the broker.",
                &l,
                n.outgoing_byte_total,
            );
            s.gauge(
                node,
                "outgoing-byte-rate",
                "Bytes written to the broker per second.",
                &l,
                n.outgoing_byte_rate,
            );
            s.gauge(
                node,
                "requests-in-flight",
                "Requests awaiting the broker's response.",
                &l,
                n.requests_in_flight,
            );
            s.gauge(
                node,
                "throttle-time-avg",
                "Average throttle time the broker reported in ms.",
                &l,
                n.throttle_time_avg,
            );
            s.gauge(
                node,
                "throttle-time-max",
                "Largest throttle time the broker reported in ms.",
                &l,
                n.throttle_time_max,
            );
        }
        for (key, a) in &self.apis {
            let l = [("api", key.name().to_owned())];
            s.counter(
                api,
                "request-total",
                "Requests of the API written.",
                &l,
                a.request_total,
            );
            s.counter(
                api,
                "response-total",
                "Responses of the API read.",
                &l,
                a.response_total,
            );
            s.counter(
                api,
                "request-error-total",
                "Requests of the API that got no response.",
                &l,
                a.error_total,
            );
            s.gauge(
                api,
                "request-latency-avg",
                "Average latency of the API in ms.",
                &l,
                a.request_latency_avg,
            );
            s.gauge(
                api,
                "request-latency-max",
                "Largest latency of the API in ms.",
                &l,
                a.request_latency_max,
            );
            s.gauge(
                api,
                "throttle-time-avg",
                "Average throttle time in the API's responses in ms.",
                &l,
                a.throttle_time_avg,
            );
            s.gauge(
                api,
                "throttle-time-max",
                "Largest throttle time in the API's responses in ms.",
                &l,
                a.throttle_time_max,
            );
        }
        let added = s.out.split_off(start);
        s.out.extend(
            added
                .into_iter()
                .filter(|x| !(x.group == top && skip.contains(&x.name))),
        );
    }

    /// Every measurement, named as in Java (see the [module docs](self)), under the
    /// `consumer`, `producer` or `admin` groups as `client` says.
    pub fn samples(&self, client: Client) -> Vec<MetricSample> {
        let mut s = Samples::new(&self.client_id);
        self.add_samples(client, &[], &mut s);
        s.out
    }
}

/// Which client a network snapshot belongs to (the prefix of its metric groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// `consumer-metrics`, `consumer-node-metrics`, `consumer-api-metrics`.
    Consumer,
    /// `producer-metrics`, ...
    Producer,
    /// `admin-client-metrics`, ...
    Admin,
}

impl Client {
    fn groups(self) -> [&'static str; 3] {
        match self {
            Client::Consumer => [
                "consumer-metrics",
                "consumer-node-metrics",
                "consumer-api-metrics",
            ],
            Client::Producer => [
                "producer-metrics",
                "producer-node-metrics",
                "producer-api-metrics",
            ],
            Client::Admin => [
                "admin-client-metrics",
                "admin-client-node-metrics",
                "admin-client-api-metrics",
            ],
        }
    }
}

/// The `throttle_time_ms` a response carries, for the APIs that have one.
fn throttle_time_ms(body: &ResponseBody) -> Option<i32> {
    macro_rules! throttled {
        ($($api:ident),* $(,)?) => {
            match body {
                $(ResponseBody::$api(r) => Some(r.throttle_time_ms),)*
                _ => None,
            }
        };
    }
    throttled!(
        AddOffsetsToTxn,
        AddPartitionsToTxn,
        AddRaftVoter,
        AlterClientQuotas,
        AlterConfigs,
        AlterPartitionReassignments,
        AlterReplicaLogDirs,
        AlterUserScramCredentials,
        ApiVersions,
        ConsumerGroupDescribe,
        ConsumerGroupHeartbeat,
        CreateAcls,
        CreateDelegationToken,
        CreatePartitions,
        CreateTopics,
        DeleteAcls,
        DeleteGroups,
        DeleteRecords,
        DeleteTopics,
        DescribeAcls,
        DescribeClientQuotas,
        DescribeCluster,
        DescribeConfigs,
        DescribeDelegationToken,
        DescribeGroups,
        DescribeLogDirs,
        DescribeProducers,
        DescribeTopicPartitions,
        DescribeTransactions,
        DescribeUserScramCredentials,
        ElectLeaders,
        EndTxn,
        ExpireDelegationToken,
        Fetch,
        FindCoordinator,
        GetTelemetrySubscriptions,
        Heartbeat,
        IncrementalAlterConfigs,
        InitProducerId,
        JoinGroup,
        LeaveGroup,
        ListClientMetricsResources,
        ListGroups,
        ListOffsets,
        ListPartitionReassignments,
        ListTransactions,
        Metadata,
        OffsetCommit,
        OffsetDelete,
        OffsetFetch,
        OffsetForLeaderEpoch,
        Produce,
        PushTelemetry,
        RemoveRaftVoter,
        RenewDelegationToken,
        ShareAcknowledge,
        ShareFetch,
        ShareGroupDescribe,
        ShareGroupHeartbeat,
        SyncGroup,
        TxnOffsetCommit,
        UnregisterBroker,
        UpdateFeatures,
    )
}
