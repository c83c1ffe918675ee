//! Producer metrics as kafka-python's `metrics()` reports them: rates and averages over a
//! sliding window measured on the core's `now` (two 30-second samples, Kafka's defaults).

use std::collections::BTreeMap;
use std::time::Instant;

use crate::network::metrics::{Client, MetricSample, NetworkMetrics, Samples, Stat};

/// What the core measures as it goes.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    pub(crate) started: Instant,
    /// Records sent (value: 1 per record, recorded per batch with the count).
    pub(crate) records: Stat,
    /// Bytes sent (per batch).
    pub(crate) bytes: Stat,
    /// Batch sizes (bytes on the wire).
    pub(crate) batch_size: Stat,
    /// Compressed / uncompressed per batch.
    pub(crate) compression: Stat,
    /// Records retried.
    pub(crate) retries: Stat,
    /// Records failed.
    pub(crate) errors: Stat,
    /// Request latency in ms.
    pub(crate) latency: Stat,
    /// Records per request.
    pub(crate) records_per_request: Stat,
    /// Record sizes (upper bounds, bytes), folded in from `sizes` (see
    /// [`Recorder::note_record_size`]).
    pub(crate) record_size: Stat,
    /// Record sizes not yet folded into `record_size`.
    sizes: SizeTally,
    /// Time batches waited in the accumulator before their first send, in ms.
    pub(crate) queue_time: Stat,
    /// Broker throttle times in ms.
    pub(crate) throttle: Stat,
    /// Produce requests sent.
    pub(crate) requests: Stat,
    pub(crate) record_send_total: u64,
    pub(crate) record_error_total: u64,
    pub(crate) record_retry_total: u64,
}

/// Record sizes counted per record and folded into the windowed [`Stat`] once per input:
/// the `record-size-avg` sample is the producer's only per-record recording, and a plain sum
/// costs a fraction of a windowed sample (which compares its time with the sample's end).
#[derive(Debug, Clone, Copy, Default)]
struct SizeTally {
    sum: u64,
    count: u64,
    max: u64,
}

impl SizeTally {
    fn fold_into(self, stat: &mut Stat, now: Instant) {
        stat.record_many(self.sum as f64, self.count, self.max as f64, now);
    }
}

impl Recorder {
    /// Counts one record of `bytes` (its size bound) for `record-size-avg`; it reaches the
    /// window at the next [`Recorder::fold_record_sizes`] (a read includes it at once).
    #[inline]
    pub(crate) fn note_record_size(&mut self, bytes: u64) {
        let t = &mut self.sizes;
        t.sum = t.sum.saturating_add(bytes);
        t.count += 1;
        t.max = t.max.max(bytes);
    }

    /// Records the sizes counted since the last fold, at `now` (the end of the input that
    /// took the records: their sample is that of the input's time).
    pub(crate) fn fold_record_sizes(&mut self, now: Instant) {
        if self.sizes.count > 0 {
            std::mem::take(&mut self.sizes).fold_into(&mut self.record_size, now);
        }
    }

    /// `record-size-avg` at `now`, counting sizes not folded in yet.
    fn record_size_avg(&self, now: Instant) -> f64 {
        if self.sizes.count == 0 {
            return self.record_size.avg(now);
        }
        let mut stat = self.record_size.clone();
        self.sizes.fold_into(&mut stat, now);
        stat.avg(now)
    }

    pub(crate) fn new(now: Instant) -> Self {
        Recorder {
            started: now,
            records: Stat::default(),
            bytes: Stat::default(),
            batch_size: Stat::default(),
            compression: Stat::default(),
            retries: Stat::default(),
            errors: Stat::default(),
            latency: Stat::default(),
            records_per_request: Stat::default(),
            record_size: Stat::default(),
            sizes: SizeTally::default(),
            queue_time: Stat::default(),
            throttle: Stat::default(),
            requests: Stat::default(),
            record_send_total: 0,
            record_error_total: 0,
            record_retry_total: 0,
        }
    }
}

/// A snapshot of the producer's metrics. Rates are per second over the last minute or so
/// (two 30-second samples); averages and maxima over the same window are NaN when nothing
/// was measured, as in Kafka.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProducerMetrics {
    /// `record-send-rate`: records sent per second.
    pub record_send_rate: f64,
    /// `record-send-total`: records sent since the start.
    pub record_send_total: f64,
    /// `byte-rate`: bytes sent per second.
    pub byte_rate: f64,
    /// `batch-size-avg`: average batch size in bytes.
    pub batch_size_avg: f64,
    /// `batch-size-max`: largest batch in bytes.
    pub batch_size_max: f64,
    /// `compression-rate-avg`: average compressed/uncompressed size ratio of batches.
    pub compression_rate_avg: f64,
    /// `record-retry-rate`: records retried per second.
    pub record_retry_rate: f64,
    /// `record-retry-total`.
    pub record_retry_total: f64,
    /// `record-error-rate`: records failed per second.
    pub record_error_rate: f64,
    /// `record-error-total`.
    pub record_error_total: f64,
    /// `request-rate`: produce requests per second.
    pub request_rate: f64,
    /// `request-latency-avg`: average produce request latency in ms.
    pub request_latency_avg: f64,
    /// `request-latency-max`: largest produce request latency in ms.
    pub request_latency_max: f64,
    /// `records-per-request-avg`.
    pub records_per_request_avg: f64,
    /// `record-size-avg`: average record size in bytes (upper bound estimate).
    pub record_size_avg: f64,
    /// `record-queue-time-avg`: average ms a batch waited before its first send.
    pub record_queue_time_avg: f64,
    /// `record-queue-time-max`: longest a batch waited before its first send, in ms.
    pub record_queue_time_max: f64,
    /// `produce-throttle-time-avg`: average broker throttle time in ms.
    pub produce_throttle_time_avg: f64,
    /// `produce-throttle-time-max`: largest broker throttle time in ms.
    pub produce_throttle_time_max: f64,
    /// `buffer-available-bytes`.
    pub buffer_available_bytes: f64,
    /// `buffer-total-bytes`.
    pub buffer_total_bytes: f64,
    /// `waiting-threads`: senders waiting for buffer memory.
    pub waiting_threads: f64,
    /// `requests-in-flight`: produce requests awaiting a response.
    pub requests_in_flight: f64,
    /// The network layer's metrics (every request, not only Produce).
    pub network: NetworkMetrics,
}

impl ProducerMetrics {
    pub(crate) fn snapshot(
        r: &Recorder,
        now: Instant,
        buffer_available: u64,
        buffer_total: u64,
        waiting: usize,
        in_flight: usize,
        network: NetworkMetrics,
    ) -> Self {
        let first = r.started;
        ProducerMetrics {
            record_send_rate: r.records.rate(now, first),
            record_send_total: r.record_send_total as f64,
            byte_rate: r.bytes.rate(now, first),
            batch_size_avg: r.batch_size.avg(now),
            batch_size_max: r.batch_size.max(now),
            compression_rate_avg: r.compression.avg(now),
            record_retry_rate: r.retries.rate(now, first),
            record_retry_total: r.record_retry_total as f64,
            record_error_rate: r.errors.rate(now, first),
            record_error_total: r.record_error_total as f64,
            request_rate: r.requests.count_rate(now, first),
            request_latency_avg: r.latency.avg(now),
            request_latency_max: r.latency.max(now),
            records_per_request_avg: r.records_per_request.avg(now),
            record_size_avg: r.record_size_avg(now),
            record_queue_time_avg: r.queue_time.avg(now),
            record_queue_time_max: r.queue_time.max(now),
            produce_throttle_time_avg: r.throttle.avg(now),
            produce_throttle_time_max: r.throttle.max(now),
            buffer_available_bytes: buffer_available as f64,
            buffer_total_bytes: buffer_total as f64,
            waiting_threads: waiting as f64,
            requests_in_flight: in_flight as f64,
            network,
        }
    }

    /// Every measurement as a [`MetricSample`]: the fields above in Java's
    /// `producer-metrics` group, then the network layer's (`producer-node-metrics`, ...).
    pub fn samples(&self) -> Vec<MetricSample> {
        const P: &str = "producer-metrics";
        let mut s = Samples::new(&self.network.client_id);
        for (name, value) in self.pairs() {
            if name.ends_with("-total") {
                s.counter(P, name, name, &[], value);
            } else {
                s.gauge(P, name, name, &[], value);
            }
        }
        // The producer's own request-rate, request-latency and requests-in-flight are those
        // of Produce requests (Java's too); the network layer's, of every request, would be
        // the same names in the same group.
        let skip = [
            "request-rate",
            "request-latency-avg",
            "request-latency-max",
            "requests-in-flight",
        ];
        self.network.add_samples(Client::Producer, &skip, &mut s);
        s.out
    }

    /// The snapshot in Prometheus' text format (`kafka_producer_record_send_rate`, ...).
    pub fn to_prometheus(&self) -> String {
        crate::network::metrics::to_prometheus(&self.samples())
    }

    /// Publishes the snapshot through the `metrics` crate's recorder (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub fn publish(&self) {
        crate::network::metrics::publish(&self.samples());
    }

    /// The metrics by their kafka-python (and Java) names, in declaration order.
    fn pairs(&self) -> [(&'static str, f64); 23] {
        [
            ("record-send-rate", self.record_send_rate),
            ("record-send-total", self.record_send_total),
            ("byte-rate", self.byte_rate),
            ("batch-size-avg", self.batch_size_avg),
            ("batch-size-max", self.batch_size_max),
            ("compression-rate-avg", self.compression_rate_avg),
            ("record-retry-rate", self.record_retry_rate),
            ("record-retry-total", self.record_retry_total),
            ("record-error-rate", self.record_error_rate),
            ("record-error-total", self.record_error_total),
            ("request-rate", self.request_rate),
            ("request-latency-avg", self.request_latency_avg),
            ("request-latency-max", self.request_latency_max),
            ("records-per-request-avg", self.records_per_request_avg),
            ("record-size-avg", self.record_size_avg),
            ("record-queue-time-avg", self.record_queue_time_avg),
            ("record-queue-time-max", self.record_queue_time_max),
            ("produce-throttle-time-avg", self.produce_throttle_time_avg),
            ("produce-throttle-time-max", self.produce_throttle_time_max),
            ("buffer-available-bytes", self.buffer_available_bytes),
            ("buffer-total-bytes", self.buffer_total_bytes),
            ("waiting-threads", self.waiting_threads),
            ("requests-in-flight", self.requests_in_flight),
        ]
    }

    /// The metrics by their kafka-python names (`record-send-rate`, `byte-rate`, ...).
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        self.pairs()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn record_size_avg_counts_sizes_before_and_after_they_are_folded() {
        if !crate::network::metrics::RECORDING {
            return;
        }
        let t0 = Instant::now();
        let mut r = Recorder::new(t0);
        assert!(r.record_size_avg(t0).is_nan());
        r.note_record_size(100);
        r.note_record_size(300);
        // Not folded yet: a read counts them.
        assert_eq!(r.record_size_avg(t0), 200.0);
        r.fold_record_sizes(t0);
        assert_eq!(r.record_size_avg(t0), 200.0);
        assert_eq!(r.record_size.max(t0), 300.0);
        r.note_record_size(800);
        let later = t0 + Duration::from_secs(1);
        assert_eq!(r.record_size_avg(later), 400.0);
        r.fold_record_sizes(later);
        r.fold_record_sizes(later);
        assert_eq!(r.record_size_avg(later), 400.0);
    }
}
