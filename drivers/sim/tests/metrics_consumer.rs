//! Consumer and network metrics against the simulated cluster, after known workloads: the
//! producer writes 1,000 records of 100 bytes to two partitions, the consumer takes 600 of
//! them; records, bytes, lag, fetches, connections and bytes on the wire are checked against
//! what was done and what the brokers saw. A group member's commits, heartbeats, rebalances
//! and a broker's throttle time are checked the same way.

mod metrics_support;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use kafkit_core::config::{AutoOffsetReset, ConsumerConfig, ProducerConfig};
use kafkit_core::consumer::{ConsumerCore, ConsumerEvent, MemberState, OpId, TopicPartition};
use kafkit_core::producer::ProducerRecord;
use kafkit_core::protocol::{ApiKey, HeartbeatResponse, ResponseBody};
use kafkit_sim::{consumer_core, Cluster, ClusterConfig, HookAction, ProducerSim, Simulation};
use metrics_support::{serve_counting, Wire, ROUND_TRIP_MS};

const TOPIC: &str = "metrics";
const RECORDS: usize = 1_000;
const VALUE: usize = 100;

/// Writes 1,000 records of 100 bytes (no key), 500 to each partition, and returns the
/// cluster, the virtual time the producer stopped at and the bytes of each stored batch.
fn produce() -> (Rc<RefCell<Cluster>>, Instant, f64) {
    // One broker leads both partitions, so a fetch can carry both batches.
    let cluster = ClusterConfig {
        brokers: 1,
        default_partitions: 2,
        ..ClusterConfig::default()
    };
    let mut pc = ProducerConfig::default();
    // One batch per partition: the whole partition fits and nothing is sent before flush.
    pc.batch_size = 1 << 20;
    pc.linger_ms = 10_000;
    let mut p = ProducerSim::new(cluster, &pc, 5).unwrap();
    for i in 0..RECORDS {
        let value = vec![b'x'; VALUE];
        // Delivery is checked by the flush below.
        drop(
            p.send(
                ProducerRecord::new(TOPIC)
                    .partition((i % 2) as i32)
                    .value(value),
            ),
        );
    }
    p.flush(None).unwrap().expect("flushed");
    let m = p.metrics();
    assert_eq!(m.record_send_total, RECORDS as f64);
    let batch = m.batch_size_avg;
    assert_eq!(m.batch_size_max, batch, "two batches of the same size");
    let now = p.sim().now();
    (p.cluster().clone(), now, batch)
}

struct Env {
    sim: Simulation<ConsumerCore>,
    wire: Rc<Wire>,
}

impl Env {
    fn new(
        cluster: &Rc<RefCell<Cluster>>,
        start: Instant,
        tweak: impl FnOnce(&mut ConsumerConfig),
    ) -> Self {
        let mut cc = ConsumerConfig::default();
        cc.auto_offset_reset = AutoOffsetReset::Earliest;
        cc.fetch_max_wait_ms = 100;
        cc.common.client_id = "metrics-test".into();
        tweak(&mut cc);
        let core = consumer_core(&cc, &cluster.borrow(), 9).unwrap();
        let mut sim = Simulation::new(core, 9, start).with_max_steps(2_000_000);
        let wire = serve_counting(&mut sim, cluster);
        Env { sim, wire }
    }

    /// Takes exactly `n` records (fewer per call when fewer are wanted); returns them and
    /// the virtual time the first came at.
    fn take_timed(&mut self, n: usize) -> (Vec<kafkit_core::consumer::ConsumerRecord>, Instant) {
        let mut got = Vec::new();
        let mut first = None;
        while got.len() < n {
            let now = self.sim.now();
            let records = self
                .sim
                .core()
                .take_records(n - got.len(), now)
                .expect("no error");
            if !records.is_empty() {
                first.get_or_insert(now);
            }
            got.extend(records);
            if got.len() < n {
                self.sim.run_for(Duration::from_millis(5)).unwrap();
            }
        }
        (got, first.expect("records came"))
    }

    fn take(&mut self, n: usize) -> Vec<kafkit_core::consumer::ConsumerRecord> {
        self.take_timed(n).0
    }

    fn metrics(&mut self) -> kafkit_core::consumer::ConsumerMetrics {
        let now = self.sim.now();
        self.sim.core().metrics(now)
    }
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new(TOPIC, p)
}

#[test]
fn consumed_records_bytes_lag_fetches_and_wire_bytes() {
    let (cluster, start, batch) = produce();
    let mut env = Env::new(&cluster, start, |_| {});
    let now = env.sim.now();
    env.sim.core().assign([tp(0), tp(1)], now);
    let (records, first) = env.take_timed(600);
    assert_eq!(records.len(), 600);
    let per_partition = |p: i32| records.iter().filter(|r| r.partition == p).count() as i64;

    // No more fetches, and everything on its way lands: the counts on both sides are final.
    env.sim.core().pause(&[tp(0), tp(1)]).unwrap();
    env.sim.run_for(Duration::from_secs(1)).unwrap();
    let m = env.metrics();

    assert_eq!(m.records_consumed_total, 600.0);
    assert_eq!(m.bytes_consumed_total, (600 * VALUE) as f64);
    let t = &m.topics[TOPIC];
    assert_eq!(t.records_consumed_total, 600.0);
    assert_eq!(t.bytes_consumed_total, (600 * VALUE) as f64);
    // A young window: the rate counts from the first record consumed (Kafka's Rate).
    let elapsed = env.sim.now().duration_since(first).as_secs_f64();
    let rate = 600.0 / elapsed;
    assert!(
        (m.records_consumed_rate - rate).abs() < 1e-9,
        "{} vs {rate}",
        m.records_consumed_rate
    );
    let rate = (600 * VALUE) as f64 / elapsed;
    assert!(
        (m.bytes_consumed_rate - rate).abs() < 1e-6,
        "{} vs {rate}",
        m.bytes_consumed_rate
    );

    // Lag: 500 per partition written, the positions where the application stopped.
    let lag = env.sim.core().lag();
    assert_eq!(lag.len(), 2);
    let mut total = 0;
    for p in 0..2 {
        let l = lag[&tp(p)];
        assert_eq!(l.high_watermark, Some(500));
        assert_eq!(l.position, Some(per_partition(p)));
        assert_eq!(l.lag, Some(500 - per_partition(p)));
        total += l.lag.unwrap();
        assert_eq!(m.partitions[&tp(p)], l);
    }
    assert_eq!(total, 400);
    let max = (500 - per_partition(0)).max(500 - per_partition(1));
    assert_eq!(m.records_lag_max, max as f64);
    assert_eq!(m.assigned_partitions, 2.0);

    // Fetches: the first took both partitions whole (two batches, one broker leads both);
    // any after it found nothing new and were held for fetch_max_wait_ms by the broker
    // (here the 400 records still buffered and the pause keep further fetches from going
    // out, so usually there is just the one).
    let fetch = &m.network.apis[&ApiKey::Fetch];
    assert_eq!(m.fetch_total, fetch.response_total);
    assert!(m.fetch_total >= 1.0, "{}", m.fetch_total);
    assert_eq!(
        fetch.request_total, fetch.response_total,
        "nothing in flight"
    );
    assert_eq!(m.fetch_size_max, 2.0 * batch);
    assert!(
        (m.fetch_size_avg - 2.0 * batch / m.fetch_total).abs() < 1e-6,
        "one fetch carried data: {} vs {}",
        m.fetch_size_avg,
        2.0 * batch / m.fetch_total
    );
    let held = if m.fetch_total > 1.0 { 100.0 } else { 0.0 };
    assert!(
        (m.fetch_latency_max - (held + ROUND_TRIP_MS)).abs() < 1e-9,
        "{}",
        m.fetch_latency_max
    );
    let expected_avg =
        (ROUND_TRIP_MS + (m.fetch_total - 1.0) * (100.0 + ROUND_TRIP_MS)) / m.fetch_total;
    assert!(
        (m.fetch_latency_avg - expected_avg).abs() < 1e-9,
        "{} vs {expected_avg}",
        m.fetch_latency_avg
    );
    assert!(
        m.fetch_throttle_time_max == 0.0,
        "{}",
        m.fetch_throttle_time_max
    );

    // The network layer: one bootstrap connection and one to the broker, every byte counted
    // as the broker counted it.
    let net = &m.network;
    assert_eq!(net.client_id, "metrics-test");
    assert_eq!(net.connection_creation_total, 2.0);
    assert_eq!(net.connection_close_total, 0.0);
    assert_eq!(net.connection_count, 2.0);
    assert_eq!(net.nodes[&-1].connection_creation_total, 1.0);
    assert_eq!(net.nodes[&0].connection_creation_total, 1.0);
    assert_eq!(net.outgoing_byte_total, env.wire.received.get() as f64);
    assert_eq!(net.incoming_byte_total, env.wire.sent.get() as f64);
    assert_eq!(net.requests_in_flight, 0.0);
    assert_eq!(net.request_total, net.response_total);
    let by_api: f64 = net.apis.values().map(|a| a.request_total).sum();
    assert_eq!(net.request_total, by_api);
    // ApiVersions opens each connection and is counted per API, as in Java.
    assert_eq!(net.apis[&ApiKey::ApiVersions].request_total, 2.0);
    assert_eq!(net.apis[&ApiKey::ApiVersions].response_total, 2.0);
    assert!(net.apis.contains_key(&ApiKey::Metadata));

    // A fetch in flight is counted as such, on the broker it went to.
    {
        let now = env.sim.now();
        env.sim.core().resume(&[tp(0), tp(1)], now)
    }
    .unwrap();
    let m = env.metrics();
    assert_eq!(m.network.requests_in_flight, 1.0);
    assert_eq!(m.network.nodes[&0].requests_in_flight, 1.0);

    // Closing closes both connections.
    env.sim.core().abort();
    env.sim.drain();
    let m = env.metrics();
    assert_eq!(m.network.connection_close_total, 2.0);
    assert_eq!(m.network.connection_count, 0.0);
    assert_eq!(m.network.requests_in_flight, 0.0);
    assert_eq!(
        m.network.apis[&ApiKey::Fetch].error_total,
        1.0,
        "the fetch cut off"
    );
}

#[test]
fn prometheus_text_carries_the_lag_per_partition() {
    let (cluster, start, _) = produce();
    let mut env = Env::new(&cluster, start, |_| {});
    let now = env.sim.now();
    env.sim.core().assign([tp(0), tp(1)], now);
    env.take(600);
    let lag = env.sim.core().lag();
    let text = env.metrics().to_prometheus();
    for p in 0..2 {
        let line = format!(
            "kafka_consumer_fetch_manager_records_lag{{client_id=\"metrics-test\",topic=\"{TOPIC}\",partition=\"{p}\"}} {}\n",
            lag[&tp(p)].lag.unwrap()
        );
        assert!(text.contains(&line), "{line} missing from\n{text}");
    }
    assert!(text.contains(
        "kafka_consumer_fetch_manager_records_consumed_total{client_id=\"metrics-test\"} 600\n"
    ));
    assert!(text.contains("# TYPE kafka_consumer_fetch_manager_records_consumed_total counter\n"));
    assert!(text.contains("kafka_consumer_node_connection_creation_total{client_id=\"metrics-test\",node_id=\"0\"} 1\n"));
}

/// Steps until `state`, returning the virtual time it was reached at.
fn until_state(sim: &mut Simulation<ConsumerCore>, state: MemberState) -> Instant {
    assert!(sim
        .run_until(|s| s.core().group_state() == Some(state))
        .unwrap());
    sim.now()
}

#[test]
fn group_commits_heartbeats_rebalances_and_throttle() {
    let (cluster, start, _) = produce();
    // Every heartbeat is answered by the test with a throttle time of 25 ms.
    let heartbeats = Rc::new(Cell::new(0u32));
    let seen = heartbeats.clone();
    cluster.borrow_mut().set_hook(
        ApiKey::Heartbeat,
        Box::new(move |_, _| {
            seen.set(seen.get() + 1);
            HookAction::Respond(ResponseBody::Heartbeat(HeartbeatResponse {
                throttle_time_ms: 25,
                ..Default::default()
            }))
        }),
    );
    let mut env = Env::new(&cluster, start, |c| {
        c.group_id = Some("metrics-group".into());
        c.heartbeat_interval_ms = 1_000;
        c.enable_auto_commit = false;
    });
    let now = env.sim.now();
    env.sim.core().subscribe([TOPIC], now).unwrap();
    // The member joins on its first poll.
    let _ = env.sim.core().take_records(1, now);
    let joining = until_state(&mut env.sim, MemberState::Joining);
    let stable = until_state(&mut env.sim, MemberState::Stable);
    let m = env.metrics();
    assert_eq!(m.rebalance_total, 1.0);
    let ms = stable.duration_since(joining).as_secs_f64() * 1000.0;
    assert!(ms > 0.0);
    assert!(
        (m.rebalance_latency_max - ms).abs() < 1e-9,
        "{} vs {ms}",
        m.rebalance_latency_max
    );
    assert!((m.rebalance_latency_total - ms).abs() < 1e-9);
    assert_eq!(m.last_rebalance_seconds_ago, 0.0);

    env.take(100);
    assert_eq!(env.metrics().assigned_partitions, 2.0);

    // Three synchronous commits.
    for i in 1..=3 {
        let now = env.sim.now();
        env.sim
            .core()
            .commit_sync(OpId(i), None, Duration::from_secs(5), now);
        assert!(env
            .sim
            .run_until(|s| s.take_events().iter().any(|e| matches!(
                e,
                ConsumerEvent::Commit { op: Some(op), result: Ok(()), .. } if *op == OpId(i)
            )))
            .unwrap());
    }
    // Ten seconds of heartbeats.
    env.sim.run_for(Duration::from_secs(10)).unwrap();
    let m = env.metrics();
    assert_eq!(m.commit_total, 3.0);
    assert!(
        (m.commit_latency_max - ROUND_TRIP_MS).abs() < 1e-9,
        "{}",
        m.commit_latency_max
    );
    assert!((m.commit_latency_avg - ROUND_TRIP_MS).abs() < 1e-9);
    let hb = f64::from(heartbeats.get());
    assert!(hb >= 9.0, "{hb} heartbeats in 10 s at 1 s intervals");
    assert_eq!(m.heartbeat_total, hb);
    assert!((m.heartbeat_response_time_max - ROUND_TRIP_MS).abs() < 1e-9);
    assert!(
        m.last_heartbeat_seconds_ago < 1.0,
        "{}",
        m.last_heartbeat_seconds_ago
    );
    assert!(
        (m.last_rebalance_seconds_ago - env.sim.now().duration_since(stable).as_secs_f64()).abs()
            < 1e-9
    );

    // The throttle time the broker put in every heartbeat response.
    let api = &m.network.apis[&ApiKey::Heartbeat];
    assert_eq!(api.throttle_time_max, 25.0);
    assert_eq!(api.throttle_time_avg, 25.0);
    let coordinator = i32::MAX; // broker 0's coordinator connection
    assert_eq!(m.network.nodes[&coordinator].throttle_time_max, 25.0);
    assert_eq!(m.network.throttle_time_max, 25.0);

    // A new subscription rejoins: a second rebalance.
    let now = env.sim.now();
    env.sim.core().subscribe([TOPIC, "other"], now).unwrap();
    let _ = env.sim.core().take_records(1, now);
    until_state(&mut env.sim, MemberState::Joining);
    let stable2 = until_state(&mut env.sim, MemberState::Stable);
    let m = env.metrics();
    assert_eq!(m.rebalance_total, 2.0);
    assert_eq!(m.last_rebalance_seconds_ago, 0.0);
    assert!(m.rebalance_latency_total > ms);
    assert!(stable2 > stable);
    let _: BTreeMap<TopicPartition, _> = env.sim.core().lag();
}
