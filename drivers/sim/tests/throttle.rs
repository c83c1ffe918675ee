//! KIP-219 against the simulated cluster: a broker that throttles the producer gets its next
//! Produce no earlier than the throttle's end (simulated time, counted from the response's
//! receipt), while the other brokers go on as before.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_core::config::ProducerConfig;
use kafkit_core::network::NetOptions;
use kafkit_core::producer::{ProducerCore, ProducerEvent, ProducerRecord};
use kafkit_core::protocol::{ApiKey, RequestBody};
use kafkit_core::OpId;
use kafkit_sim::{serve_cluster, Cluster, ClusterConfig, HookAction, LinkConfig, Simulation};

const WALL_START: i64 = 1_700_000_000_000;
const THROTTLE: Duration = Duration::from_millis(500);

/// The partitions of each Produce the cluster received, in order (the hook's log).
type ProduceLog = Rc<RefCell<Vec<Vec<i32>>>>;

struct Env {
    sim: Simulation<ProducerCore>,
    cluster: Rc<RefCell<Cluster>>,
    produces: ProduceLog,
    /// When each record's outcome came (by op), and whether it succeeded.
    delivered: BTreeMap<u64, (Instant, bool)>,
}

fn env() -> Env {
    let start = Instant::now();
    let cluster = Rc::new(RefCell::new(Cluster::new(
        ClusterConfig {
            brokers: 3,
            default_partitions: 3,
            seed: 11,
            ..ClusterConfig::default()
        },
        start,
    )));
    let mut config = ProducerConfig::builder()
        .bootstrap_servers("broker-0:9092")
        .build()
        .unwrap();
    config.linger_ms = 5;
    let opts = NetOptions::new(vec![("broker-0".into(), 9092)]);
    let mut core = ProducerCore::new(config, opts).unwrap();
    core.handle_wall_clock(start, WALL_START);
    let mut sim = Simulation::new(core, 11, start)
        .with_links(LinkConfig {
            latency: Duration::from_micros(300),
            jitter: Duration::from_micros(200),
        })
        .with_max_steps(200_000);
    serve_cluster(&mut sim, &cluster);
    let produces = ProduceLog::default();
    let log = produces.clone();
    cluster.borrow_mut().set_hook(
        ApiKey::Produce,
        Box::new(move |_, body| {
            if let RequestBody::Produce(p) = body {
                let parts = p.topic_data.iter().flat_map(|t| &t.partition_data);
                log.borrow_mut().push(parts.map(|d| d.index).collect());
            }
            HookAction::Pass
        }),
    );
    Env {
        sim,
        cluster,
        produces,
        delivered: BTreeMap::new(),
    }
}

impl Env {
    fn send(&mut self, op: u64, partition: i32) {
        let now = self.sim.now();
        let record = ProducerRecord::new("t")
            .partition(partition)
            .value(Bytes::from(format!("v{op}")));
        let _ = self.sim.core().send(Some(OpId(op)), record, now).unwrap();
    }

    /// Runs until `op` has its outcome; returns when it came.
    fn delivered_at(&mut self, op: u64) -> Instant {
        let delivered = &mut self.delivered;
        let done = self
            .sim
            .run_until(|s| {
                let now = s.now();
                for e in s.take_events() {
                    if let ProducerEvent::Delivered(d) = e {
                        for (o, r) in &d {
                            delivered.insert(o.0, (now, r.is_ok()));
                        }
                    }
                }
                delivered.contains_key(&op)
            })
            .unwrap();
        assert!(done, "record {op} never completed");
        let (at, ok) = self.delivered[&op];
        assert!(ok, "record {op} failed");
        at
    }

    /// Runs until the cluster has received `n` Produce requests; returns when the last came.
    fn produce_received_at(&mut self, n: usize) -> Instant {
        let log = self.produces.clone();
        let delivered = &mut self.delivered;
        let done = self
            .sim
            .run_until(|s| {
                let now = s.now();
                for e in s.take_events() {
                    if let ProducerEvent::Delivered(d) = e {
                        for (o, r) in &d {
                            delivered.insert(o.0, (now, r.is_ok()));
                        }
                    }
                }
                log.borrow().len() >= n
            })
            .unwrap();
        assert!(done, "only {} Produce requests arrived", log.borrow().len());
        self.sim.now()
    }

    fn leader(&self, partition: i32) -> i32 {
        self.cluster
            .borrow()
            .partition("t", partition)
            .expect("the topic exists")
            .leader
    }
}

#[test]
fn a_throttled_broker_gets_the_next_produce_only_after_the_throttle_time() {
    let mut e = env();
    // Warm up: the topic exists and every leader has a connection.
    for p in 0..3 {
        e.send(p as u64, p);
    }
    for op in 0..3 {
        e.delivered_at(op);
    }
    let (l0, l1) = (e.leader(0), e.leader(1));
    assert_ne!(l0, l1, "partitions 0 and 1 have different leaders");

    // Partition 0's leader throttles every answer from now on.
    e.cluster.borrow_mut().set_throttle(l0, None, THROTTLE);
    e.send(10, 0);
    let throttled_at = e.delivered_at(10);

    // Right after the throttled answer: one record for the throttled broker, one for another.
    let before = e.produces.borrow().len();
    e.send(11, 0);
    e.send(12, 1);
    let first = e.produce_received_at(before + 1);
    assert_eq!(
        e.produces.borrow()[before],
        vec![1],
        "the unthrottled broker's Produce comes first"
    );
    assert!(
        first - throttled_at < Duration::from_millis(50),
        "the other broker is not held back ({:?})",
        first - throttled_at
    );
    let second = e.produce_received_at(before + 2);
    assert_eq!(e.produces.borrow()[before + 1], vec![0]);
    assert!(
        second >= throttled_at + THROTTLE,
        "sent {:?} after the throttled answer, before the throttle's end",
        second - throttled_at
    );
    assert!(
        second - throttled_at < THROTTLE + Duration::from_millis(50),
        "and not much later ({:?})",
        second - throttled_at
    );
    e.delivered_at(11);
    e.delivered_at(12);

    // Throttling off again: once the throttle op 11's answer still carried has passed, a
    // record goes out at once.
    e.cluster
        .borrow_mut()
        .set_throttle(l0, None, Duration::ZERO);
    e.sim.run_for(THROTTLE).unwrap();
    let n = e.produces.borrow().len();
    let sent = e.sim.now();
    e.send(13, 0);
    let third = e.produce_received_at(n + 1);
    assert!(
        third - sent < Duration::from_millis(50),
        "not held back any more ({:?})",
        third - sent
    );
    e.delivered_at(13);
}
