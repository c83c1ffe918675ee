//! The sans-IO producer core against the simulated cluster: acks, idempotence, retries,
//! epoch bumps, duplicates, timeouts, buffer memory, flush and close, batch splitting.
//!
//! Every test runs in virtual time from a fixed seed, so a failure replays exactly.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkit_core::config::{Acks, ProducerConfig};
use kafkit_core::network::{ClientCore, NetOptions, Target};
use kafkit_core::producer::{
    ProduceError, ProducerCore, ProducerEvent, ProducerRecord, RecordMetadata, SendStatus, TxnState,
};
use kafkit_core::protocol::create_topics::request::{CreatableTopic, CreatableTopicConfig};
use kafkit_core::protocol::produce::response::{PartitionProduceResponse, TopicProduceResponse};
use kafkit_core::protocol::{
    ApiKey, CreateTopicsRequest, ErrorCode, ProduceRequest, ProduceResponse, RequestBody,
    ResponseBody,
};
use kafkit_core::records::{DecodeOptions, RecordBatch, TimestampType};
use kafkit_core::OpId;
use kafkit_sim::{
    serve_cluster, Cluster, ClusterConfig, HookAction, LinkConfig, SimError, Simulation,
};

const WALL_START: i64 = 1_700_000_000_000;

type Outcome = Result<RecordMetadata, ProduceError>;

/// What the core reported: records' outcomes by the index the test gave each record (its
/// op), flush results by op, and how often it reported `Closed`.
#[derive(Default)]
struct Log {
    records: BTreeMap<usize, Outcome>,
    flushed: BTreeMap<u64, Result<(), ProduceError>>,
    closed: usize,
}

#[derive(Clone, Default)]
struct Results(Arc<Mutex<Log>>);

impl Results {
    fn record(&self, i: usize, r: Outcome) {
        let prev = self.0.lock().unwrap().records.insert(i, r);
        assert!(prev.is_none(), "record {i} completed twice");
    }
    /// Takes in what the core reported.
    fn absorb(&self, events: Vec<ProducerEvent>) {
        for event in events {
            match event {
                ProducerEvent::Delivered(d) => {
                    for (op, r) in &d {
                        self.record(op.0 as usize, r);
                    }
                }
                ProducerEvent::Admitted { op, result: Err(e) } => {
                    self.record(op.0 as usize, Err(e))
                }
                ProducerEvent::Flushed { op, result } => {
                    let prev = self.0.lock().unwrap().flushed.insert(op.0, result);
                    assert!(prev.is_none(), "flush {op} answered twice");
                }
                ProducerEvent::Closed => self.0.lock().unwrap().closed += 1,
                _ => {}
            }
        }
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().records.len()
    }
    fn get(&self, i: usize) -> Option<Outcome> {
        self.0.lock().unwrap().records.get(&i).cloned()
    }
    fn all(&self) -> BTreeMap<usize, Outcome> {
        self.0.lock().unwrap().records.clone()
    }
    fn flushed(&self, op: u64) -> Option<Result<(), ProduceError>> {
        self.0.lock().unwrap().flushed.get(&op).cloned()
    }
    fn closed(&self) -> usize {
        self.0.lock().unwrap().closed
    }
}

struct Env {
    sim: Simulation<ProducerCore>,
    cluster: Rc<RefCell<Cluster>>,
    start: Instant,
    results: Results,
}

fn producer_config(f: impl FnOnce(&mut ProducerConfig)) -> ProducerConfig {
    let mut c = ProducerConfig::builder()
        .bootstrap_servers("broker-0:9092")
        .build()
        .unwrap();
    c.common.request_timeout_ms = 5_000;
    c.common.retry_backoff_ms = 100;
    c.linger_ms = 5;
    f(&mut c);
    c
}

fn env(cluster: ClusterConfig, config: ProducerConfig) -> Env {
    let start = Instant::now();
    let seed = cluster.seed;
    let cluster = Rc::new(RefCell::new(Cluster::new(cluster, start)));
    let mut opts = NetOptions::new(vec![("broker-0".into(), 9092)]);
    opts.conn.request_timeout = Duration::from_millis(config.common.request_timeout_ms as u64);
    opts.conn.setup_timeout = Duration::from_secs(2);
    opts.retry_backoff = Duration::from_millis(config.common.retry_backoff_ms);
    opts.seed = seed;
    // Waiting mode, as before fail fast became the default. The core connects as it is
    // built (InitProducerId), before `serve_cluster` below serves the cluster, so that first
    // connection times out after `setup_timeout`. With fail fast on, a raw request sent in
    // that window (`log_append_time_is_reported`'s CreateTopics) fails at once with
    // `NoBroker`, as designed, while the producer's own requests retry; waiting mode lets it
    // wait for the next connection instead.
    opts.bootstrap_fail_fast = false;
    let mut core = ProducerCore::new(config, opts).unwrap();
    core.handle_wall_clock(start, WALL_START);
    let mut sim = Simulation::new(core, seed, start)
        .with_links(LinkConfig {
            latency: Duration::from_micros(300),
            jitter: Duration::from_micros(200),
        })
        .with_max_steps(2_000_000);
    serve_cluster(&mut sim, &cluster);
    Env {
        sim,
        cluster,
        start,
        results: Results::default(),
    }
}

fn cluster_config(partitions: i32) -> ClusterConfig {
    ClusterConfig {
        brokers: 3,
        default_partitions: partitions,
        replication_factor: 1,
        seed: 7,
        ..ClusterConfig::default()
    }
}

impl Env {
    /// Sends record `i` (its op is `i`); a refusal is its outcome.
    fn send(&mut self, i: usize, record: ProducerRecord) -> Option<SendStatus> {
        let now = self.sim.now();
        let status = match self.sim.core().send(Some(OpId(i as u64)), record, now) {
            Ok(status) => Some(status),
            Err(e) => {
                self.results.record(i, Err(e));
                None
            }
        };
        self.pump();
        status
    }

    /// Takes in what the core reported so far.
    fn pump(&mut self) {
        self.sim.drain();
        self.results.absorb(self.sim.take_events());
    }

    /// Runs the simulation until `done`, taking in the core's reports at every step.
    fn run_until(
        &mut self,
        mut done: impl FnMut(&mut Simulation<ProducerCore>) -> bool,
    ) -> Result<bool, SimError> {
        let results = self.results.clone();
        self.sim.run_until(|s| {
            results.absorb(s.take_events());
            done(s)
        })
    }

    fn run_for(&mut self, d: Duration) -> Result<(), SimError> {
        self.sim.run_for(d)?;
        self.pump();
        Ok(())
    }

    fn flush(&mut self, op: u64, timeout: Option<Duration>) {
        let now = self.sim.now();
        self.sim.core().flush(OpId(op), timeout, now);
        self.pump();
    }

    fn run_until_flushed(&mut self, op: u64) -> Result<(), ProduceError> {
        let results = self.results.clone();
        self.run_until(|_| results.flushed(op).is_some()).unwrap();
        self.results.flushed(op).expect("flush answered")
    }

    fn run_until_done(&mut self, n: usize) {
        let results = self.results.clone();
        let done = self.run_until(|_| results.len() >= n).unwrap();
        assert!(done, "only {} of {n} records completed", self.results.len());
    }

    fn metrics(&mut self) -> kafkit_core::producer::ProducerMetrics {
        let now = self.sim.now();
        self.sim.core().metrics(now)
    }

    fn elapsed(&self) -> Duration {
        self.sim.now() - self.start
    }

    /// (offset, value) of every record stored in `topic`-`partition`.
    fn log(&self, topic: &str, partition: i32) -> Vec<(i64, Bytes)> {
        let cluster = self.cluster.borrow();
        let Some(log) = cluster.partition(topic, partition) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for b in log.batches() {
            let batch = RecordBatch::decode(b.data.clone(), &DecodeOptions::default()).unwrap();
            for r in batch.records() {
                let r = r.unwrap();
                out.push((r.offset, r.value.unwrap_or_default()));
            }
        }
        out
    }

    fn epochs(&self, topic: &str, partition: i32) -> Vec<(i64, i16)> {
        let cluster = self.cluster.borrow();
        cluster
            .partition(topic, partition)
            .map(|l| {
                l.batches()
                    .map(|b| (b.producer_id, b.producer_epoch))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn value(i: usize) -> Bytes {
    Bytes::from(format!("value-{i:05}"))
}

/// Every record delivered, each exactly once in the log at the offset it was reported
/// with, and in send order per partition.
fn check_exactly_once(e: &Env, topic: &str, n: usize) {
    let results = e.results.all();
    assert_eq!(results.len(), n);
    let mut by_partition: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
    for (i, r) in &results {
        let md = r
            .as_ref()
            .unwrap_or_else(|err| panic!("record {i} failed: {err}"));
        assert_eq!(&*md.topic, topic);
        by_partition
            .entry(md.partition)
            .or_default()
            .push((md.offset, *i));
    }
    for (p, sent) in by_partition {
        let log = e.log(topic, p);
        assert_eq!(
            log.len(),
            sent.len(),
            "partition {p}: duplicates or losses in the log"
        );
        let mut last = None;
        for (offset, i) in sent {
            let stored = log
                .iter()
                .find(|(o, _)| *o == offset)
                .expect("offset in log");
            assert_eq!(stored.1, value(i), "partition {p} offset {offset}");
            // Indexes were sent in increasing order: offsets must increase with them.
            if let Some(prev) = last {
                assert!(offset > prev, "partition {p}: record {i} reordered");
            }
            last = Some(offset);
        }
    }
}

/// A Produce hook answer with `code` for every partition of the request.
fn answer_all(
    req: &ProduceRequest,
    code: ErrorCode,
    base_offset: i64,
    log_start: i64,
) -> HookAction {
    HookAction::Respond(ResponseBody::Produce(ProduceResponse {
        responses: req
            .topic_data
            .iter()
            .map(|t| TopicProduceResponse {
                name: t.name.clone(),
                partition_responses: t
                    .partition_data
                    .iter()
                    .map(|p| PartitionProduceResponse {
                        index: p.index,
                        error_code: code.code(),
                        base_offset,
                        log_start_offset: log_start,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }))
}

#[test]
fn idempotent_acks_all_many_partitions_exactly_once_in_order() {
    let config = producer_config(|c| c.batch_size = 2_000);
    assert!(config.idempotence_enabled());
    let mut e = env(cluster_config(6), config);
    let n = 600;
    for i in 0..n {
        let mut r = ProducerRecord::new("events").value(value(i));
        if i % 3 == 0 {
            r = r.key(format!("key-{}", i % 17));
        } else if i % 3 == 1 {
            r = r.partition((i % 6) as i32);
        }
        e.send(i, r);
    }
    e.run_until_done(n);
    check_exactly_once(&e, "events", n);
    let results = e.results.all();
    let partitions: std::collections::BTreeSet<i32> = results
        .values()
        .map(|r| r.as_ref().unwrap().partition)
        .collect();
    assert_eq!(partitions.len(), 6, "records spread over every partition");
    for r in results.values() {
        let md = r.as_ref().unwrap();
        assert_eq!(md.timestamp_type, TimestampType::CreateTime);
        assert!(md.timestamp >= WALL_START);
        assert_eq!(md.serialized_value_size, 11);
    }
    // Every batch carries the producer id and epoch 0.
    for p in 0..6 {
        for (pid, epoch) in e.epochs("events", p) {
            assert!(pid >= 0);
            assert_eq!(epoch, 0);
        }
    }
    let m = e.metrics();
    assert!(m.records_per_request_avg > 1.0, "{m:?}");
    assert_eq!(m.record_send_total, n as f64);
    assert_eq!(m.record_error_total, 0.0);
    assert_eq!(
        m.buffer_available_bytes, m.buffer_total_bytes,
        "memory all released"
    );
    assert!(m.request_latency_avg > 0.0);
    assert_eq!(e.sim.core().pending_records(), 0);
}

#[test]
fn keyed_records_follow_murmur2_and_explicit_partitions_hold() {
    let mut e = env(cluster_config(4), producer_config(|_| {}));
    e.send(0, ProducerRecord::new("k").key("alpha").value(value(0)));
    e.send(1, ProducerRecord::new("k").key("alpha").value(value(1)));
    e.send(2, ProducerRecord::new("k").partition(3).value(value(2)));
    e.run_until_done(3);
    let r = e.results.all();
    let p0 = r[&0].as_ref().unwrap().partition;
    assert_eq!(p0, kafkit_core::producer::partition_for_key(b"alpha", 4));
    assert_eq!(r[&1].as_ref().unwrap().partition, p0);
    assert_eq!(r[&2].as_ref().unwrap().partition, 3);
    assert_eq!(r[&0].as_ref().unwrap().serialized_key_size, 5);
    assert_eq!(r[&2].as_ref().unwrap().serialized_key_size, -1);
    // A partition the topic does not have fails alone.
    e.send(3, ProducerRecord::new("k").partition(9).value(value(3)));
    e.run_until_done(4);
    assert!(matches!(
        e.results.get(3),
        Some(Err(ProduceError::UnknownPartition {
            partition: 9,
            partitions: 4,
            ..
        }))
    ));
}

#[test]
fn acks_one_and_zero() {
    let mut e = env(cluster_config(2), producer_config(|c| c.acks = Acks::One));
    for i in 0..20 {
        e.send(i, ProducerRecord::new("one").partition(0).value(value(i)));
    }
    e.run_until_done(20);
    check_exactly_once(&e, "one", 20);

    let mut e = env(cluster_config(2), producer_config(|c| c.acks = Acks::Zero));
    for i in 0..20 {
        e.send(i, ProducerRecord::new("zero").partition(1).value(value(i)));
    }
    e.run_until_done(20);
    for (_, r) in e.results.all() {
        let md = r.unwrap();
        assert_eq!(md.offset, -1, "acks=0 knows no offset");
        assert_eq!(md.partition, 1);
    }
    // Nothing acknowledged, but the broker got them: let the frames arrive.
    e.run_for(Duration::from_millis(100)).unwrap();
    assert_eq!(e.log("zero", 1).len(), 20);
}

#[test]
fn retriable_errors_are_retried_and_invalidate_metadata() {
    let mut e = env(cluster_config(3), producer_config(|_| {}));
    let calls = Rc::new(RefCell::new(0));
    let c = calls.clone();
    e.cluster.borrow_mut().set_hook(
        ApiKey::Produce,
        Box::new(move |_, body| {
            let RequestBody::Produce(req) = body else {
                return HookAction::Pass;
            };
            *c.borrow_mut() += 1;
            match *c.borrow() {
                1 => answer_all(req, ErrorCode::NOT_LEADER_OR_FOLLOWER, -1, -1),
                2 => answer_all(req, ErrorCode::REQUEST_TIMED_OUT, -1, -1),
                3 => answer_all(req, ErrorCode::NOT_ENOUGH_REPLICAS, -1, -1),
                _ => HookAction::Pass,
            }
        }),
    );
    for i in 0..50 {
        e.send(i, ProducerRecord::new("retry").value(value(i)));
    }
    e.run_until_done(50);
    check_exactly_once(&e, "retry", 50);
    assert!(*calls.borrow() >= 4);
    let m = e.metrics();
    assert!(m.record_retry_total >= 50.0, "{m:?}");
    // Three backoffs of 100ms at least.
    assert!(
        e.elapsed() >= Duration::from_millis(300),
        "{:?}",
        e.elapsed()
    );
}

#[test]
fn non_retriable_broker_error_fails_the_batch_clearly() {
    let mut e = env(cluster_config(1), producer_config(|_| {}));
    e.cluster.borrow_mut().set_hook(
        ApiKey::Produce,
        Box::new(|_, body| match body {
            RequestBody::Produce(req) => answer_all(req, ErrorCode::INVALID_RECORD, -1, -1),
            _ => HookAction::Pass,
        }),
    );
    e.send(0, ProducerRecord::new("bad").value(value(0)));
    e.run_until_done(1);
    let err = e.results.get(0).unwrap().unwrap_err();
    let text = err.to_string();
    assert!(!ErrorCode::INVALID_RECORD.is_retriable());
    assert!(
        matches!(
            err,
            ProduceError::Broker {
                code: ErrorCode::INVALID_RECORD,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(text.contains("bad-0") && text.contains("(node "), "{text}");
}

#[test]
fn duplicate_sequence_is_success_with_the_brokers_offset() {
    let mut e = env(cluster_config(1), producer_config(|_| {}));
    let first = Rc::new(RefCell::new(true));
    let f = first.clone();
    e.cluster.borrow_mut().set_hook(
        ApiKey::Produce,
        Box::new(move |_, body| match body {
            RequestBody::Produce(req) if f.replace(false) => {
                answer_all(req, ErrorCode::DUPLICATE_SEQUENCE_NUMBER, 42, 0)
            }
            _ => HookAction::Pass,
        }),
    );
    for i in 0..3 {
        e.send(i, ProducerRecord::new("dup").value(value(i)));
    }
    e.run_until_done(3);
    let offsets: Vec<i64> = (0..3)
        .map(|i| e.results.get(i).unwrap().unwrap().offset)
        .collect();
    assert_eq!(offsets, vec![42, 43, 44]);
}

#[test]
fn lost_responses_are_retried_without_duplicates() {
    // The broker applies a request, but the connection drops before the answer arrives:
    // the retry is recognised as a duplicate and every record is stored once.
    let mut e = env(cluster_config(1), producer_config(|c| c.linger_ms = 0));
    let delayed = Rc::new(RefCell::new(0));
    let d = delayed.clone();
    e.cluster.borrow_mut().set_hook(
        ApiKey::Produce,
        Box::new(move |_, body| match body {
            RequestBody::Produce(_) if *d.borrow() < 2 => {
                *d.borrow_mut() += 1;
                HookAction::Delay(Duration::from_millis(50))
            }
            _ => HookAction::Pass,
        }),
    );
    for i in 0..10 {
        e.send(i, ProducerRecord::new("lost").value(value(i)));
    }
    // Let the first request reach the broker, then cut the connections.
    let dd = delayed.clone();
    e.run_until(|_| *dd.borrow() >= 1).unwrap();
    e.run_for(Duration::from_millis(60)).unwrap();
    e.sim.drop_connections("broker-0:9092");
    e.run_until_done(10);
    check_exactly_once(&e, "lost", 10);
}

#[test]
fn unknown_producer_id_bumps_the_epoch_and_resequences() {
    let mut e = env(cluster_config(1), producer_config(|c| c.linger_ms = 0));
    let state = Rc::new(RefCell::new(0));
    let s = state.clone();
    e.cluster.borrow_mut().set_hook(
        ApiKey::Produce,
        Box::new(move |_, body| {
            let RequestBody::Produce(req) = body else {
                return HookAction::Pass;
            };
            *s.borrow_mut() += 1;
            if *s.borrow() == 2 {
                answer_all(req, ErrorCode::UNKNOWN_PRODUCER_ID, -1, 0)
            } else {
                HookAction::Pass
            }
        }),
    );
    e.send(0, ProducerRecord::new("bump").value(value(0)));
    e.run_until_done(1);
    for i in 1..5 {
        e.send(i, ProducerRecord::new("bump").value(value(i)));
    }
    e.run_until_done(5);
    check_exactly_once(&e, "bump", 5);
    let epochs = e.epochs("bump", 0);
    assert_eq!(epochs.first().map(|x| x.1), Some(0));
    assert_eq!(epochs.last().map(|x| x.1), Some(1), "{epochs:?}");
    assert_eq!(
        epochs.first().map(|x| x.0),
        epochs.last().map(|x| x.0),
        "same producer id"
    );
}

/// Issue 24 item 9: a broker that lost the producer's state (a development broker after a
/// restart) answers UNKNOWN_PRODUCER_ID without a log start offset (-1) for every batch of
/// the old epoch. The producer bumps the epoch and restarts the sequence instead of retrying
/// until `delivery_timeout_ms` (120 s here).
#[test]
fn unknown_producer_id_without_a_log_start_bumps_instead_of_retrying_until_the_timeout() {
    let mut e = env(cluster_config(1), producer_config(|c| c.linger_ms = 0));
    let restarted = Rc::new(RefCell::new(false));
    let r = restarted.clone();
    e.cluster.borrow_mut().set_hook(
        ApiKey::Produce,
        Box::new(move |_, body| {
            let RequestBody::Produce(req) = body else {
                return HookAction::Pass;
            };
            if !*r.borrow() {
                return HookAction::Pass;
            }
            let old_epoch = req
                .topic_data
                .iter()
                .flat_map(|t| &t.partition_data)
                .any(|p| {
                    p.records.as_ref().is_some_and(|b| {
                        RecordBatch::decode(b.clone(), &DecodeOptions::default())
                            .is_ok_and(|b| b.header().producer_epoch == 0)
                    })
                });
            if old_epoch {
                answer_all(req, ErrorCode::UNKNOWN_PRODUCER_ID, -1, -1)
            } else {
                HookAction::Pass
            }
        }),
    );
    for i in 0..3 {
        e.send(i, ProducerRecord::new("restart").value(value(i)));
        e.run_until_done(i + 1);
    }
    *restarted.borrow_mut() = true;
    let before = e.elapsed();
    for i in 3..6 {
        e.send(i, ProducerRecord::new("restart").value(value(i)));
    }
    e.run_until_done(6);
    check_exactly_once(&e, "restart", 6);
    assert!(
        e.elapsed() - before < Duration::from_secs(5),
        "delivered only after {:?}",
        e.elapsed() - before
    );
    let epochs = e.epochs("restart", 0);
    assert_eq!(epochs.last().map(|x| x.1), Some(1), "{epochs:?}");
}

#[test]
fn out_of_order_sequence_for_the_first_batch_bumps_the_epoch() {
    let mut e = env(cluster_config(1), producer_config(|c| c.linger_ms = 0));
    let state = Rc::new(RefCell::new(0));
    let s = state.clone();
    e.cluster.borrow_mut().set_hook(
        ApiKey::Produce,
        Box::new(move |_, body| {
            let RequestBody::Produce(req) = body else {
                return HookAction::Pass;
            };
            *s.borrow_mut() += 1;
            if *s.borrow() == 1 {
                answer_all(req, ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, -1, 0)
            } else {
                HookAction::Pass
            }
        }),
    );
    for i in 0..4 {
        e.send(i, ProducerRecord::new("ooo").value(value(i)));
    }
    e.run_until_done(4);
    check_exactly_once(&e, "ooo", 4);
    assert!(e.epochs("ooo", 0).iter().all(|(_, epoch)| *epoch == 1));
}

#[test]
fn message_too_large_splits_the_batch() {
    for idempotent in [false, true] {
        let mut e = env(
            cluster_config(1),
            producer_config(|c| {
                c.enable_idempotence = Some(idempotent);
                c.batch_size = 400;
                c.linger_ms = 50;
            }),
        );
        // The "broker" refuses any batch of more than 4 records (as max.message.bytes would).
        e.cluster.borrow_mut().set_hook(
            ApiKey::Produce,
            Box::new(|_, body| {
                let RequestBody::Produce(req) = body else {
                    return HookAction::Pass;
                };
                let too_big = req
                    .topic_data
                    .iter()
                    .flat_map(|t| &t.partition_data)
                    .any(|p| {
                        let b = RecordBatch::decode(
                            p.records.clone().unwrap(),
                            &DecodeOptions::default(),
                        )
                        .unwrap();
                        b.record_count() > 4
                    });
                if too_big {
                    answer_all(req, ErrorCode::MESSAGE_TOO_LARGE, -1, 0)
                } else {
                    HookAction::Pass
                }
            }),
        );
        for i in 0..20 {
            e.send(i, ProducerRecord::new("big").value(value(i)));
        }
        e.run_until_done(20);
        check_exactly_once(&e, "big", 20);
        let batches = e
            .cluster
            .borrow()
            .partition("big", 0)
            .unwrap()
            .batch_count();
        assert!(batches >= 5, "idempotent={idempotent}: {batches} batches");
    }
}

#[test]
fn delivery_timeout_with_the_broker_gone_names_the_partition() {
    let mut e = env(
        ClusterConfig {
            brokers: 1,
            ..cluster_config(1)
        },
        producer_config(|c| {
            c.linger_ms = 0;
            c.common.request_timeout_ms = 2_000;
            c.delivery_timeout_ms = Some(5_000);
        }),
    );
    e.send(0, ProducerRecord::new("gone").value(value(0)));
    e.run_until_done(1);
    assert!(e.results.get(0).unwrap().is_ok());
    e.sim.partition("broker-0:9092");
    e.sim.drop_connections("broker-0:9092");
    let sent_at = e.sim.now();
    e.send(1, ProducerRecord::new("gone").value(value(1)));
    e.run_until_done(2);
    let waited = e.sim.now() - sent_at;
    let err = e.results.get(1).unwrap().unwrap_err();
    match &err {
        ProduceError::DeliveryTimeout {
            topic,
            partition,
            after,
            last_error,
        } => {
            assert_eq!((topic.as_str(), *partition), ("gone", 0));
            assert_eq!(*after, Duration::from_secs(5));
            assert!(last_error.is_some(), "{err}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("gone-0"), "{err}");
    assert!(waited >= Duration::from_secs(5), "{waited:?}");
    assert!(
        waited <= Duration::from_secs(5) + Duration::from_millis(2_100),
        "{waited:?}"
    );
}

#[test]
fn unknown_topic_fails_after_max_block() {
    let mut e = env(
        ClusterConfig {
            auto_create_topics: false,
            ..cluster_config(1)
        },
        producer_config(|c| c.max_block_ms = 2_000),
    );
    e.send(0, ProducerRecord::new("nope").value(value(0)));
    e.send(1, ProducerRecord::new("nope").value(value(1)));
    e.run_until_done(2);
    let err = e.results.get(0).unwrap().unwrap_err();
    assert!(
        matches!(&err, ProduceError::UnknownTopic { topic } if topic == "nope"),
        "{err:?}"
    );
    assert!(e.elapsed() >= Duration::from_secs(2));
    assert!(e.elapsed() < Duration::from_secs(3));
    assert_eq!(e.sim.core().pending_records(), 0);
    let m = e.metrics();
    assert_eq!(m.buffer_available_bytes, m.buffer_total_bytes);

    // With no broker answering at all it is a max-block timeout.
    let mut e = env(
        cluster_config(1),
        producer_config(|c| c.max_block_ms = 1_000),
    );
    for addr in e.sim.server_addrs() {
        e.sim.partition(&addr);
    }
    e.send(0, ProducerRecord::new("t").value(value(0)));
    e.run_until_done(1);
    let err = e.results.get(0).unwrap().unwrap_err();
    assert!(
        matches!(err, ProduceError::MaxBlockTimeout { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"t\""), "{err}");
}

#[test]
fn buffer_memory_waits_in_order_then_admits() {
    let mut e = env(
        cluster_config(1),
        producer_config(|c| {
            c.buffer_memory = 8_000;
            c.linger_ms = 20;
        }),
    );
    let big = |i: usize| {
        let mut v = value(i).to_vec();
        v.resize(1_000, b'.');
        ProducerRecord::new("mem").partition(0).value(v)
    };
    for i in 0..30 {
        e.send(i, big(i));
    }
    let m = e.metrics();
    assert!(m.waiting_threads >= 20.0, "{m:?}");
    assert!(m.buffer_available_bytes < 1_100.0);
    assert!(e.sim.core().pending_records() <= 8);
    e.run_until_done(30);
    let results = e.results.all();
    let offsets: Vec<i64> = (0..30)
        .map(|i| results[&i].as_ref().unwrap().offset)
        .collect();
    assert_eq!(
        offsets,
        (0..30).collect::<Vec<i64>>(),
        "admitted in FIFO order"
    );
    let m = e.metrics();
    assert_eq!(m.waiting_threads, 0.0);
    assert_eq!(m.buffer_available_bytes, 8_000.0);
}

#[test]
fn buffer_memory_wait_times_out_after_max_block() {
    let mut e = env(
        ClusterConfig {
            brokers: 1,
            ..cluster_config(1)
        },
        producer_config(|c| {
            c.buffer_memory = 3_000;
            c.max_block_ms = 1_000;
            c.linger_ms = 0;
        }),
    );
    e.send(0, ProducerRecord::new("m").value(value(0)));
    e.run_until_done(1);
    e.sim.partition("broker-0:9092");
    e.sim.drop_connections("broker-0:9092");
    let v = vec![0u8; 1_000];
    for i in 1..=4 {
        e.send(i, ProducerRecord::new("m").value(v.clone()));
    }
    e.run_until_done(3);
    // Two fit; the two waiting fail after max_block_ms.
    let err = e.results.get(3).unwrap().unwrap_err();
    assert!(
        matches!(err, ProduceError::MaxBlockTimeout { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("buffer memory"), "{err}");
    assert!(e.results.get(4).unwrap().is_err());
    assert!(e.results.get(1).is_none() && e.results.get(2).is_none());
}

#[test]
fn record_too_large_fails_at_once() {
    let mut e = env(
        cluster_config(1),
        producer_config(|c| {
            c.max_request_size = 1_000;
            c.buffer_memory = 500_000;
        }),
    );
    e.send(0, ProducerRecord::new("t").value(vec![0u8; 2_000]));
    assert!(matches!(
        e.results.get(0),
        Some(Err(ProduceError::RecordTooLarge {
            setting: "max_request_size",
            max: 1_000,
            ..
        }))
    ));
    let mut e = env(
        cluster_config(1),
        producer_config(|c| c.buffer_memory = 1_000),
    );
    e.send(0, ProducerRecord::new("t").value(vec![0u8; 2_000]));
    assert!(matches!(
        e.results.get(0),
        Some(Err(ProduceError::RecordTooLarge {
            setting: "buffer_memory",
            ..
        }))
    ));
}

#[test]
fn flush_sends_without_waiting_for_linger() {
    let mut e = env(cluster_config(2), producer_config(|c| c.linger_ms = 10_000));
    for i in 0..5 {
        e.send(i, ProducerRecord::new("f").value(value(i)));
    }
    e.flush(1, None);
    assert_eq!(e.run_until_flushed(1), Ok(()));
    assert_eq!(
        e.results.len(),
        5,
        "flush returns after every earlier record completed"
    );
    assert!(e.elapsed() < Duration::from_secs(1), "{:?}", e.elapsed());
    // Flush with nothing pending completes at once.
    e.flush(2, None);
    assert_eq!(e.results.flushed(2), Some(Ok(())));
}

#[test]
fn flush_timeout_reports_pending_records() {
    let mut e = env(
        ClusterConfig {
            brokers: 1,
            ..cluster_config(1)
        },
        producer_config(|c| c.linger_ms = 0),
    );
    e.send(0, ProducerRecord::new("f").value(value(0)));
    e.run_until_done(1);
    e.sim.partition("broker-0:9092");
    e.sim.drop_connections("broker-0:9092");
    for i in 1..4 {
        e.send(i, ProducerRecord::new("f").value(value(i)));
    }
    e.flush(1, Some(Duration::from_millis(500)));
    assert_eq!(
        e.run_until_flushed(1),
        Err(ProduceError::FlushTimeout {
            after: Duration::from_millis(500),
            pending: 3
        })
    );
}

#[test]
fn close_delivers_what_is_buffered_then_refuses() {
    let mut e = env(cluster_config(2), producer_config(|c| c.linger_ms = 10_000));
    for i in 0..10 {
        e.send(i, ProducerRecord::new("c").value(value(i)));
    }
    // As the drivers' handler closes: a flush with the close's timeout says whether
    // everything was delivered.
    e.flush(1, None);
    let now = e.sim.now();
    e.sim.core().close(None, now);
    e.send(10, ProducerRecord::new("c").value(value(10)));
    assert!(matches!(e.results.get(10), Some(Err(ProduceError::Closed))));
    let results = e.results.clone();
    e.run_until(|_| results.closed() > 0).unwrap();
    assert_eq!(e.results.flushed(1), Some(Ok(())));
    assert!((0..10).all(|i| e.results.get(i).unwrap().is_ok()));
    // Closing again, or aborting, reports nothing more.
    let now = e.sim.now();
    e.sim.core().close(None, now);
    e.sim.core().abort();
    e.pump();
    assert_eq!(e.results.closed(), 1, "Closed is reported once");
    assert!(e.sim.core().is_closed());
    assert_eq!(
        e.sim.core().poll_timeout(),
        None,
        "nothing left to wake for"
    );
}

#[test]
fn close_with_timeout_fails_the_rest_with_closed() {
    let mut e = env(
        ClusterConfig {
            brokers: 1,
            ..cluster_config(1)
        },
        producer_config(|c| c.linger_ms = 0),
    );
    e.send(0, ProducerRecord::new("c").value(value(0)));
    e.run_until_done(1);
    e.sim.partition("broker-0:9092");
    e.sim.drop_connections("broker-0:9092");
    for i in 1..4 {
        e.send(i, ProducerRecord::new("c").value(value(i)));
    }
    e.flush(1, Some(Duration::from_secs(1)));
    let now = e.sim.now();
    e.sim.core().close(Some(Duration::from_secs(1)), now);
    let results = e.results.clone();
    e.run_until(|_| results.closed() > 0).unwrap();
    assert!(matches!(
        e.results.flushed(1),
        Some(Err(ProduceError::FlushTimeout { pending: 3, .. }))
    ));
    for i in 1..4 {
        assert_eq!(e.results.get(i), Some(Err(ProduceError::Closed)));
    }
    assert!(e.elapsed() < Duration::from_secs(3));
}

#[test]
fn log_append_time_is_reported() {
    let mut e = env(cluster_config(1), producer_config(|_| {}));
    let now = e.sim.now();
    e.sim.core().network().send(
        Target::Any,
        RequestBody::CreateTopics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "lat".into(),
                num_partitions: 1,
                replication_factor: 1,
                configs: vec![CreatableTopicConfig {
                    name: "message.timestamp.type".into(),
                    value: Some("LogAppendTime".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            timeout_ms: 1_000,
            ..Default::default()
        }),
        None,
        true,
        now,
    );
    let cluster = e.cluster.clone();
    e.run_until(|_| cluster.borrow().topic("lat").is_some())
        .unwrap();
    e.send(0, ProducerRecord::new("lat").value(value(0)).timestamp(5));
    e.run_until_done(1);
    let md = e.results.get(0).unwrap().unwrap();
    assert_eq!(md.timestamp_type, TimestampType::LogAppendTime);
    assert!(md.timestamp >= WALL_START, "{md:?}");
}

#[test]
fn brokers_without_record_batches_get_legacy_message_sets() {
    // Before issue 21 such a broker was refused ("record batches need Produce v3"); now the
    // producer writes magic 1 message sets at Produce v2 (producer_legacy.rs has the rest).
    let mut cluster = cluster_config(1);
    cluster.api_versions.insert(ApiKey::Produce, Some((0, 2)));
    let mut e = env(
        cluster,
        producer_config(|c| c.enable_idempotence = Some(false)),
    );
    e.send(0, ProducerRecord::new("old").value(value(0)));
    e.run_until_done(1);
    let md = e
        .results
        .get(0)
        .unwrap()
        .expect("written as a legacy message set");
    assert_eq!(md.offset, 0);
    assert_eq!(md.partition, 0);
}

#[test]
fn a_transactional_producer_refuses_records_before_init_transactions() {
    // Transactions are served now (issue 19): the core starts uninitialized, and a record
    // or a transaction before `init_transactions` is refused naming the state.
    let config = producer_config(|c| c.transactional_id = Some("tx".into()));
    let mut core = ProducerCore::new(config, NetOptions::new(vec![("b".into(), 9092)])).unwrap();
    assert_eq!(core.transaction_state(), Some(TxnState::Uninitialized));
    let now = Instant::now();
    core.handle_wall_clock(now, WALL_START);
    let err = core
        .send(Some(OpId(1)), ProducerRecord::new("t").value("v"), now)
        .unwrap_err();
    assert_eq!(
        err,
        ProduceError::TxnState {
            call: "send",
            state: TxnState::Uninitialized
        }
    );
    assert!(core.begin_transaction().is_err());
}

#[test]
fn compression_codecs_round_trip_through_the_broker() {
    use kafkit_core::config::CompressionType;
    for codec in [
        CompressionType::Gzip,
        CompressionType::Snappy,
        CompressionType::Lz4,
        CompressionType::Zstd,
    ] {
        let mut e = env(
            cluster_config(1),
            producer_config(|c| c.compression_type = codec),
        );
        for i in 0..50 {
            e.send(i, ProducerRecord::new("z").value(value(i)));
        }
        e.run_until_done(50);
        check_exactly_once(&e, "z", 50);
        let m = e.metrics();
        assert!(m.compression_rate_avg < 1.0, "{codec:?}: {m:?}");
    }
}

/// One run of keyless sends with dropped connections; the (partition, offset) of each record.
fn replay_trace(seed: u64) -> Vec<(usize, Option<(i32, i64)>)> {
    let mut e = env(
        ClusterConfig {
            seed,
            ..cluster_config(4)
        },
        producer_config(|c| c.batch_size = 300),
    );
    let mut sent = 0;
    for round in 0..20 {
        for _ in 0..15 {
            e.send(sent, ProducerRecord::new("replay").value(value(sent)));
            sent += 1;
        }
        e.run_for(Duration::from_millis(7)).unwrap();
        if round % 5 == 2 {
            e.sim.drop_connections("broker-1:9093");
        }
    }
    e.run_until_done(sent);
    e.results
        .all()
        .into_iter()
        .map(|(i, r)| (i, r.ok().map(|m| (m.partition, m.offset))))
        .collect()
}

#[test]
fn a_run_replays_exactly_from_its_seed() {
    for seed in [1, 2, 3] {
        let first = replay_trace(seed);
        assert!(first.iter().all(|(_, r)| r.is_some()), "seed {seed}");
        assert_eq!(first, replay_trace(seed), "seed {seed}");
    }
}

/// Wraps the default partitioner and counts KIP-480 new-batch calls.
struct CountingPartitioner {
    inner: kafkit_core::producer::DefaultPartitioner,
    new_batches: Arc<Mutex<usize>>,
}

impl kafkit_core::producer::Partitioner for CountingPartitioner {
    fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        num_partitions: i32,
        available: &[i32],
        rng: &mut kafkit_core::network::Rng,
    ) -> i32 {
        self.inner
            .partition(topic, key, value, num_partitions, available, rng)
    }
    fn on_new_batch(&mut self, topic: &str, prev_partition: i32) {
        *self.new_batches.lock().unwrap() += 1;
        self.inner.on_new_batch(topic, prev_partition);
    }
}

#[test]
fn sticky_partitioning_moves_on_with_each_new_batch() {
    let mut e = env(
        cluster_config(4),
        producer_config(|c| {
            c.batch_size = 300;
            c.linger_ms = 1_000;
        }),
    );
    let calls = Arc::new(Mutex::new(0));
    e.sim.core().set_partitioner(Box::new(CountingPartitioner {
        inner: Default::default(),
        new_batches: calls.clone(),
    }));
    // Learn the topic's metadata first, so every record is partitioned as it is sent.
    e.send(0, ProducerRecord::new("sticky").value(value(0)));
    e.run_until_done(1);
    let before = *calls.lock().unwrap();
    let n = 80;
    for i in 1..=n {
        e.send(i, ProducerRecord::new("sticky").value(value(i)));
    }
    e.run_until_done(n + 1);
    let new_batches = *calls.lock().unwrap() - before;
    let parts: Vec<i32> = (1..=n)
        .map(|i| e.results.get(i).unwrap().unwrap().partition)
        .collect();
    let switches = parts.windows(2).filter(|w| w[0] != w[1]).count();
    // ~12 records fill a 300-byte batch: several new batches, and the records stick to one
    // partition between them.
    assert!(new_batches >= 5, "{new_batches}");
    assert!(
        (4..=new_batches).contains(&switches),
        "{switches} switches, {new_batches} new batches: {parts:?}"
    );
    let distinct: std::collections::BTreeSet<i32> = parts.iter().copied().collect();
    assert!(distinct.len() > 1);
}

/// Hands the core's events to a handle's handler, as a driver's loop does.
fn to_handler(
    s: &mut Simulation<ProducerCore>,
    handler: &mut kafkit_core::driver::ProducerHandler,
) {
    use kafkit_core::driver::Handler;
    let now = s.now();
    for event in s.take_events() {
        handler.on_event(s.core(), event, now);
    }
}

#[test]
fn handle_runs_that_switch_topics_keep_each_record_s_topic() {
    // Staged records carry their topic only where it changes; this sends runs that switch
    // topics, repeat one, and use two `Arc`s of the same name, across several drains.
    use kafkit_core::driver::{command_queue, Handler, ProducerHandle, ProducerHandler};
    let mut e = env(cluster_config(1), producer_config(|c| c.linger_ms = 0));
    let (tx, mut rx) = command_queue::<ProducerCore, ProducerHandler>();
    let shared = e.sim.core().shared();
    let handle = ProducerHandle::new(tx, shared, Arc::new(|| WALL_START + 7));
    let mut handler = ProducerHandler::default();
    let a: Arc<str> = Arc::from("run-a");
    let a_again: Arc<str> = Arc::from("run-a");
    let b: Arc<str> = Arc::from("run-b");
    // One drain per inner list.
    let runs: Vec<Vec<&Arc<str>>> = vec![
        vec![&a, &a, &b, &b, &a, &a_again, &a],
        vec![&a, &b],
        vec![&b, &b, &a_again],
        vec![&a],
    ];
    let mut pending = Vec::new();
    for run in &runs {
        for topic in run {
            let i = pending.len();
            let record = ProducerRecord::new(Arc::clone(topic)).value(vec![i as u8; 10]);
            pending.push(((*topic).clone(), handle.try_send(record).unwrap()));
        }
        while let Ok(cmd) = rx.try_recv() {
            let now = e.sim.now();
            cmd(e.sim.core(), &mut handler, now);
        }
        e.sim.drain();
    }
    let results = RefCell::new(vec![None; pending.len()]);
    e.sim
        .run_until(|s| {
            to_handler(s, &mut handler);
            let mut results = results.borrow_mut();
            for (slot, (_, f)) in results.iter_mut().zip(pending.iter_mut()) {
                if slot.is_none() {
                    *slot = f.try_result();
                }
            }
            results.iter().all(Option::is_some)
        })
        .unwrap();
    let mut next = BTreeMap::<(String, i32), i64>::new();
    for (i, ((topic, _), r)) in pending.iter().zip(results.into_inner()).enumerate() {
        let md = r.unwrap().unwrap();
        assert_eq!(&*md.topic, &**topic, "record {i}");
        // In send order within each partition of each topic: nothing went to another topic.
        let want = next.entry((topic.to_string(), md.partition)).or_insert(0);
        assert_eq!(md.offset, *want, "record {i} to {topic}");
        *want += 1;
    }
    assert_eq!(next.values().sum::<i64>(), 13);
    handler.on_shutdown(e.sim.core());
}

#[test]
fn handle_fast_and_slow_paths_against_the_core() {
    use kafkit_core::driver::{command_queue, Handler, ProducerHandle, ProducerHandler};
    let mut e = env(
        cluster_config(1),
        producer_config(|c| {
            c.buffer_memory = 2_500;
            c.linger_ms = 0;
        }),
    );
    let (tx, mut rx) = command_queue::<ProducerCore, ProducerHandler>();
    let shared = e.sim.core().shared();
    let handle = ProducerHandle::new(tx, shared.clone(), Arc::new(|| WALL_START + 7));
    let mut handler = ProducerHandler::default();
    let mut pump = |e: &mut Env, handler: &mut ProducerHandler| {
        while let Ok(cmd) = rx.try_recv() {
            let now = e.sim.now();
            cmd(e.sim.core(), handler, now);
        }
        e.sim.drain();
    };
    let v = vec![1u8; 1_000];
    let mut first = handle
        .try_send(ProducerRecord::new("h").value(v.clone()))
        .unwrap();
    let mut second = handle
        .try_send(ProducerRecord::new("h").value(v.clone()))
        .unwrap();
    // Memory is exhausted now: try_send refuses at once, without queueing anything.
    let err = handle
        .try_send(ProducerRecord::new("h").value(v.clone()))
        .unwrap_err();
    assert!(
        matches!(err, ProduceError::MaxBlockTimeout { after, .. } if after.is_zero()),
        "{err:?}"
    );
    assert!(shared.available_bytes() < 1_000);
    pump(&mut e, &mut handler);
    let f = std::cell::RefCell::new((None, None));
    e.sim
        .run_until(|s| {
            to_handler(s, &mut handler);
            let mut f = f.borrow_mut();
            if f.0.is_none() {
                f.0 = first.try_result();
            }
            if f.1.is_none() {
                f.1 = second.try_result();
            }
            f.0.is_some() && f.1.is_some()
        })
        .unwrap();
    let (a, b) = f.into_inner();
    let a = a.unwrap().unwrap();
    assert_eq!(
        (a.offset, a.timestamp),
        (0, WALL_START + 7),
        "stamped by the handle's clock"
    );
    assert_eq!(b.unwrap().unwrap().offset, 1);
    assert_eq!(shared.available_bytes(), 2_500, "memory returned");
    // Closing through the core refuses later handle sends at once.
    let now = e.sim.now();
    e.sim.core().close(None, now);
    assert!(matches!(
        handle.try_send(ProducerRecord::new("h").value(v)),
        Err(ProduceError::Closed)
    ));
    handler.on_shutdown(e.sim.core());
}

#[test]
fn handle_sends_wait_for_the_loop_when_the_staging_queue_is_full() {
    // At most 8,192 records (32 chunks of 256) wait for the loop: the next `send` waits for
    // the loop to take them (the slow path) instead of staging without bound; `try_send`,
    // which never waits, stages past the bound. Nothing is lost or reordered either way.
    use kafkit_core::driver::{command_queue, Handler, ProducerHandle, ProducerHandler};
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    const STAGED_MAX: usize = 8_192;
    let mut e = env(cluster_config(1), producer_config(|c| c.linger_ms = 0));
    let (tx, mut rx) = command_queue::<ProducerCore, ProducerHandler>();
    let shared = e.sim.core().shared();
    let handle = ProducerHandle::new(tx, shared.clone(), Arc::new(|| WALL_START + 7));
    let mut handler = ProducerHandler::default();
    let total = shared.available_bytes();
    let mut cx = Context::from_waker(Waker::noop());
    let record = |i: usize| ProducerRecord::new("staged").value(format!("r{i}"));
    let mut deliveries = Vec::new();
    for i in 0..STAGED_MAX {
        let mut send = std::pin::pin!(handle.enqueue(record(i)));
        match send.as_mut().poll(&mut cx) {
            Poll::Ready(r) => deliveries.push(r.unwrap()),
            Poll::Pending => panic!("send {i} waited with {i} records staged"),
        }
    }
    let before = shared.available_bytes();
    let mut waiting = Box::pin(handle.enqueue(record(STAGED_MAX)));
    assert!(
        waiting.as_mut().poll(&mut cx).is_pending(),
        "the send past the bound waits for the loop"
    );
    assert_eq!(
        shared.available_bytes(),
        before,
        "a waiting send holds no memory"
    );
    deliveries.push(handle.try_send(record(STAGED_MAX + 1)).unwrap());
    // The loop runs: the staged records go in first, then the waiting send completes.
    while let Ok(cmd) = rx.try_recv() {
        let now = e.sim.now();
        cmd(e.sim.core(), &mut handler, now);
    }
    match waiting.as_mut().poll(&mut cx) {
        Poll::Ready(r) => deliveries.push(r.unwrap()),
        Poll::Pending => panic!("the waiting send was not admitted once the loop ran"),
    }
    let results = RefCell::new(vec![None; deliveries.len()]);
    e.sim
        .run_until(|s| {
            to_handler(s, &mut handler);
            let mut results = results.borrow_mut();
            for (slot, f) in results.iter_mut().zip(deliveries.iter_mut()) {
                if slot.is_none() {
                    *slot = f.try_result();
                }
            }
            results.iter().all(Option::is_some)
        })
        .unwrap();
    let offsets: Vec<i64> = results
        .into_inner()
        .into_iter()
        .map(|r| r.unwrap().unwrap().offset)
        .collect();
    let want: Vec<i64> = (0..STAGED_MAX as i64).collect();
    assert_eq!(
        &offsets[..STAGED_MAX],
        &want[..],
        "the staged records in order"
    );
    let mut last_two = offsets[STAGED_MAX..].to_vec();
    last_two.sort();
    assert_eq!(last_two, [STAGED_MAX as i64, STAGED_MAX as i64 + 1]);
    let log = e.log("staged", 0);
    assert_eq!(log.len(), STAGED_MAX + 2, "every record written once");
    assert_eq!(shared.available_bytes(), total, "all memory returned");
    handler.on_shutdown(e.sim.core());
}
