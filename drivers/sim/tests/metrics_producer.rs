//! Producer and network metrics against the simulated cluster, after known workloads: 1,000
//! records of 100 bytes to two partitions of one broker go out in one Produce request after
//! `linger_ms`; records, batches, bytes, rates, queue time, latency, connections, bytes on the
//! wire (as the broker counted them) and requests per API (ApiVersions included) are checked
//! against what was done. Retries, failures, a request held in flight and a throttling broker
//! are checked the same way.

mod metrics_support;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use kafkit_core::config::ProducerConfig;
use kafkit_core::producer::{ProducerCore, ProducerEvent, ProducerRecord, SendStatus};
use kafkit_core::protocol::produce::response::{PartitionProduceResponse, TopicProduceResponse};
use kafkit_core::protocol::{ApiKey, ErrorCode, ProduceResponse, RequestBody, ResponseBody};
use kafkit_core::OpId;
use kafkit_sim::{producer_core, Cluster, ClusterConfig, HookAction, Simulation};
use metrics_support::{serve_counting, Wire, ROUND_TRIP_MS};

const TOPIC: &str = "metrics";
const RECORDS: u64 = 1_000;
const VALUE: usize = 100;
const LINGER_MS: u64 = 50;

struct Env {
    sim: Simulation<ProducerCore>,
    cluster: Rc<RefCell<Cluster>>,
    wire: Rc<Wire>,
    /// Each record's outcome (by op): whether it succeeded.
    delivered: BTreeMap<u64, bool>,
}

fn env(tweak: impl FnOnce(&mut ProducerConfig)) -> Env {
    let start = Instant::now();
    let cluster = Rc::new(RefCell::new(Cluster::new(
        ClusterConfig {
            // One broker leads both partitions: one Produce request carries both batches.
            brokers: 1,
            default_partitions: 2,
            seed: 7,
            ..ClusterConfig::default()
        },
        start,
    )));
    let mut pc = ProducerConfig::default();
    pc.common.client_id = "metrics-producer".into();
    // One batch per partition: each partition's 500 records fit in one.
    pc.batch_size = 1 << 20;
    pc.linger_ms = LINGER_MS;
    tweak(&mut pc);
    let core = producer_core(&pc, &cluster.borrow(), 7, start).unwrap();
    let mut sim = Simulation::new(core, 7, start).with_max_steps(2_000_000);
    let wire = serve_counting(&mut sim, &cluster);
    Env {
        sim,
        cluster,
        wire,
        delivered: BTreeMap::new(),
    }
}

fn record(topic: &str, i: u64) -> ProducerRecord {
    ProducerRecord::new(topic)
        .partition((i % 2) as i32)
        .value(vec![b'x'; VALUE])
}

impl Env {
    /// Sends `n` records (ops `first..first + n`) at the current virtual time.
    fn send(&mut self, topic: &str, first: u64, n: u64) {
        let now = self.sim.now();
        for op in first..first + n {
            let status = self
                .sim
                .core()
                .send(Some(OpId(op)), record(topic, op), now)
                .unwrap();
            assert_eq!(status, SendStatus::Accepted, "buffer memory is ample");
        }
    }

    /// Runs until every op below `upto` has its outcome.
    fn deliver(&mut self, upto: u64) {
        let delivered = &mut self.delivered;
        let done = self
            .sim
            .run_until(|s| {
                for e in s.take_events() {
                    if let ProducerEvent::Delivered(d) = e {
                        for (o, r) in &d {
                            delivered.insert(o.0, r.is_ok());
                        }
                    }
                }
                (0..upto).all(|op| delivered.contains_key(&op))
            })
            .unwrap();
        assert!(done, "{} of {upto} records completed", self.delivered.len());
    }

    fn metrics(&mut self) -> kafkit_core::producer::ProducerMetrics {
        let now = self.sim.now();
        self.sim.core().metrics(now)
    }

    /// The stored size of each batch of `topic`'s partition `p`.
    fn stored_batches(&self, topic: &str, p: i32) -> Vec<usize> {
        let c = self.cluster.borrow();
        c.partition(topic, p)
            .expect("partition exists")
            .batches()
            .map(|b| b.data.len())
            .collect()
    }
}

#[test]
fn records_batches_latency_queue_time_and_wire_bytes() {
    let mut e = env(|_| {});
    let t0 = e.sim.now();
    let reserved = e
        .sim
        .core()
        .shared()
        .check_record(&record(TOPIC, 0))
        .unwrap();
    e.send(TOPIC, 0, RECORDS);
    e.deliver(RECORDS);
    assert!(e.delivered.values().all(|ok| *ok));
    // Everything answered: let the window settle one millisecond past the last response.
    e.sim.run_for(Duration::from_millis(1)).unwrap();
    let m = e.metrics();
    let elapsed = e.sim.now().duration_since(t0).as_secs_f64();

    assert_eq!(m.record_send_total, RECORDS as f64);
    assert_eq!(m.record_error_total, 0.0);
    assert_eq!(m.record_retry_total, 0.0);
    assert_eq!(m.record_error_rate, 0.0);
    assert_eq!(m.record_retry_rate, 0.0);
    // A young window: rates count from the first record (Kafka's Rate).
    let rate = RECORDS as f64 / elapsed;
    assert!(
        (m.record_send_rate - rate).abs() < 1e-6,
        "{} vs {rate}",
        m.record_send_rate
    );

    // Two batches, exactly as the broker stored them.
    let sizes: Vec<usize> = (0..2).flat_map(|p| e.stored_batches(TOPIC, p)).collect();
    assert_eq!(sizes.len(), 2, "one batch per partition");
    let total = (sizes[0] + sizes[1]) as f64;
    assert_eq!(m.batch_size_max, sizes[0].max(sizes[1]) as f64);
    assert!((m.batch_size_avg - total / 2.0).abs() < 1e-9);
    assert!((m.byte_rate - total / elapsed).abs() < 1e-6);
    assert_eq!(m.compression_rate_avg, 1.0, "no compression");
    assert_eq!(m.record_size_avg, reserved as f64);

    // One Produce request after linger_ms, answered one round trip later.
    let produce = &m.network.apis[&ApiKey::Produce];
    assert_eq!(produce.request_total, 1.0);
    assert_eq!(produce.response_total, 1.0);
    assert_eq!(m.records_per_request_avg, RECORDS as f64);
    assert!((m.request_latency_avg - ROUND_TRIP_MS).abs() < 1e-9);
    assert!((m.request_latency_max - ROUND_TRIP_MS).abs() < 1e-9);
    assert!((produce.request_latency_max - ROUND_TRIP_MS).abs() < 1e-9);
    // The batches were created when the first records were appended (the topic's metadata
    // came first) and sent when linger_ms ran out.
    let linger = LINGER_MS as f64;
    assert!(
        m.record_queue_time_avg >= linger && m.record_queue_time_avg < linger + 2.0,
        "{}",
        m.record_queue_time_avg
    );
    assert_eq!(
        m.record_queue_time_max, m.record_queue_time_avg,
        "both batches waited alike"
    );
    assert_eq!(m.produce_throttle_time_avg, 0.0);
    assert_eq!(m.produce_throttle_time_max, 0.0);
    assert_eq!(m.requests_in_flight, 0.0);
    assert_eq!(m.waiting_threads, 0.0);
    assert_eq!(m.buffer_available_bytes, m.buffer_total_bytes);
    assert_eq!(m.buffer_total_bytes, 32.0 * 1024.0 * 1024.0);

    // The network layer: a bootstrap connection and one to the broker; every byte as the
    // broker counted it; every request answered.
    let net = &m.network;
    assert_eq!(net.client_id, "metrics-producer");
    assert_eq!(net.connection_creation_total, 2.0);
    assert_eq!(net.connection_count, 2.0);
    assert_eq!(net.connection_close_total, 0.0);
    assert_eq!(net.nodes[&-1].connection_creation_total, 1.0);
    assert_eq!(net.nodes[&0].connection_creation_total, 1.0);
    assert_eq!(net.outgoing_byte_total, e.wire.received.get() as f64);
    assert_eq!(net.incoming_byte_total, e.wire.sent.get() as f64);
    assert_eq!(
        net.nodes[&-1].outgoing_byte_total + net.nodes[&0].outgoing_byte_total,
        net.outgoing_byte_total
    );
    assert!((net.outgoing_byte_rate - net.outgoing_byte_total / elapsed).abs() < 1e-6);
    assert!((net.incoming_byte_rate - net.incoming_byte_total / elapsed).abs() < 1e-6);
    assert_eq!(net.requests_in_flight, 0.0);
    assert_eq!(net.request_total, net.response_total);
    let by_api: f64 = net.apis.values().map(|a| a.request_total).sum();
    assert_eq!(net.request_total, by_api);
    let by_node: f64 = net.nodes.values().map(|n| n.request_total).sum();
    assert_eq!(net.request_total, by_node);
    // ApiVersions opens each connection and is counted per API, as in Java.
    let versions = &net.apis[&ApiKey::ApiVersions];
    assert_eq!(versions.request_total, 2.0);
    assert_eq!(versions.response_total, 2.0);
    assert_eq!(versions.error_total, 0.0);
    assert!((versions.request_latency_max - ROUND_TRIP_MS).abs() < 1e-9);
    // Idempotence is on by default: one producer id, fetched once.
    assert_eq!(net.apis[&ApiKey::InitProducerId].request_total, 1.0);
    assert!(net.apis[&ApiKey::Metadata].request_total >= 1.0);
    // Every request of this workload took exactly one round trip.
    assert!((net.request_latency_max - ROUND_TRIP_MS).abs() < 1e-9);
    assert!((net.request_latency_avg - ROUND_TRIP_MS).abs() < 1e-9);
    assert_eq!(net.throttle_time_max, 0.0);

    // The Prometheus rendering carries the same values.
    let text = m.to_prometheus();
    assert!(
        text.contains("kafka_producer_record_send_total{client_id=\"metrics-producer\"} 1000\n"),
        "{text}"
    );
    assert!(text.contains(
        "kafka_producer_api_request_total{client_id=\"metrics-producer\",api=\"ApiVersions\"} 2\n"
    ));

    // Closing closes both connections.
    let now = e.sim.now();
    e.sim.core().close(None, now);
    e.sim.drain();
    let m = e.metrics();
    assert_eq!(m.network.connection_close_total, 2.0);
    assert_eq!(m.network.connection_count, 0.0);
}

#[test]
fn a_held_request_is_in_flight_and_its_latency_is_the_hold() {
    let mut e = env(|_| {});
    // Warm up: metadata, producer id, both connections.
    e.send(TOPIC, 0, 2);
    e.deliver(2);
    let hold = Duration::from_millis(100);
    e.cluster.borrow_mut().set_hook(
        ApiKey::Produce,
        Box::new(move |_, _| HookAction::Delay(hold)),
    );
    e.send(TOPIC, 2, 2);
    e.sim
        .run_for(Duration::from_millis(LINGER_MS + 10))
        .unwrap();
    let m = e.metrics();
    assert_eq!(m.requests_in_flight, 1.0);
    assert_eq!(m.network.requests_in_flight, 1.0);
    assert_eq!(m.network.nodes[&0].requests_in_flight, 1.0);
    assert_eq!(m.network.nodes[&-1].requests_in_flight, 0.0);
    e.deliver(4);
    let m = e.metrics();
    assert_eq!(m.requests_in_flight, 0.0);
    assert_eq!(m.network.requests_in_flight, 0.0);
    let held = hold.as_secs_f64() * 1000.0 + ROUND_TRIP_MS;
    assert!(
        (m.request_latency_max - held).abs() < 1e-9,
        "{}",
        m.request_latency_max
    );
    assert!((m.request_latency_avg - (held + ROUND_TRIP_MS) / 2.0).abs() < 1e-9);
    let produce = &m.network.apis[&ApiKey::Produce];
    assert!((produce.request_latency_max - held).abs() < 1e-9);
    assert!((m.network.nodes[&0].request_latency_max - held).abs() < 1e-9);
    assert_eq!(m.record_send_total, 4.0);
}

/// A Produce response failing every partition of `body` with `code`.
fn failing(body: &RequestBody, code: ErrorCode) -> ResponseBody {
    let RequestBody::Produce(p) = body else {
        unreachable!("a Produce hook")
    };
    ResponseBody::Produce(ProduceResponse {
        responses: p
            .topic_data
            .iter()
            .map(|t| TopicProduceResponse {
                name: t.name.clone(),
                partition_responses: t
                    .partition_data
                    .iter()
                    .map(|d| PartitionProduceResponse {
                        index: d.index,
                        error_code: code.0,
                        base_offset: -1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

#[test]
fn retried_and_failed_records_are_counted() {
    let mut e = env(|c| {
        c.enable_idempotence = Some(false);
        c.common.retry_backoff_ms = 10;
    });
    // The first Produce is answered NOT_LEADER_OR_FOLLOWER (retriable); later ones pass,
    // except for topic "denied", which is not authorized (not retriable).
    let calls = Rc::new(Cell::new(0));
    let seen = calls.clone();
    e.cluster.borrow_mut().set_hook(
        ApiKey::Produce,
        Box::new(move |_, body| {
            seen.set(seen.get() + 1);
            let denied = matches!(body, RequestBody::Produce(p)
                if p.topic_data.iter().any(|t| t.name == "denied"));
            if seen.get() == 1 {
                HookAction::Respond(failing(body, ErrorCode::NOT_LEADER_OR_FOLLOWER))
            } else if denied {
                HookAction::Respond(failing(body, ErrorCode::TOPIC_AUTHORIZATION_FAILED))
            } else {
                HookAction::Pass
            }
        }),
    );
    e.send(TOPIC, 0, 10);
    e.deliver(10);
    assert!(e.delivered.values().all(|ok| *ok), "retried and delivered");
    let m = e.metrics();
    assert_eq!(m.record_retry_total, 10.0);
    assert_eq!(m.record_send_total, 10.0);
    assert_eq!(m.record_error_total, 0.0);

    e.send("denied", 10, 6);
    e.deliver(16);
    assert_eq!(e.delivered.values().filter(|ok| !**ok).count(), 6);
    let m = e.metrics();
    assert_eq!(m.record_error_total, 6.0);
    assert_eq!(m.record_retry_total, 10.0);
    assert_eq!(m.record_send_total, 10.0);
    // Error responses are responses: the per-API network errors count only requests that
    // got none.
    let produce = &m.network.apis[&ApiKey::Produce];
    assert_eq!(produce.request_total, f64::from(calls.get()));
    assert_eq!(produce.response_total, f64::from(calls.get()));
    assert_eq!(produce.error_total, 0.0);
}

#[test]
fn a_throttling_broker_is_reported_per_api_per_node_and_for_produce() {
    let mut e = env(|_| {});
    e.send(TOPIC, 0, 2);
    e.deliver(2);
    e.cluster
        .borrow_mut()
        .set_throttle(0, None, Duration::from_millis(30));
    e.send(TOPIC, 2, 2);
    e.deliver(4);
    let m = e.metrics();
    // Two Produce responses: 0 ms, then 30 ms.
    assert_eq!(m.produce_throttle_time_avg, 15.0);
    assert_eq!(m.produce_throttle_time_max, 30.0);
    let produce = &m.network.apis[&ApiKey::Produce];
    assert_eq!(produce.throttle_time_max, 30.0);
    assert_eq!(produce.throttle_time_avg, 15.0);
    assert_eq!(m.network.nodes[&0].throttle_time_max, 30.0);
    assert_eq!(m.network.throttle_time_max, 30.0);
    assert_eq!(
        m.network.nodes[&-1].throttle_time_max, 0.0,
        "the bootstrap connection's responses came before the throttle"
    );
}
