//! Issue 24 item 1: a memory budget (`fetch_buffer_bytes`) slows the consumer down and never
//! wedges it. Three brokers each lead one partition; records are near or over the budget,
//! plain and compressed. Before the fix the consumer stopped for good: fetches that were all
//! over the budget each waited ("starved") for the others to be drained, and with nothing
//! held only one minimal fetch went out, always to the same broker.
//!
//! Data is produced straight into the cluster model with Produce frames on connections of the
//! test's own; the consumer's connections go through the simulated network.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafkit_core::compression::Compression;
use kafkit_core::config::{AutoOffsetReset, ConsumerConfig};
use kafkit_core::consumer::{ConsumerCore, TopicPartition};
use kafkit_core::network::NetOptions;
use kafkit_core::protocol::create_topics::request::CreatableTopic;
use kafkit_core::protocol::produce::request::{PartitionProduceData, TopicProduceData};
use kafkit_core::protocol::{
    decode_response_frame, request_header_version, CreateTopicsRequest, Message, ProduceRequest,
    RequestBody, RequestHeader, ResponseBody,
};
use kafkit_core::records::RecordBatchBuilder;
use kafkit_sim::{serve_cluster, Cluster, ClusterConfig, LinkConfig, Simulation};

const TOPIC: &str = "big";
const BROKERS: usize = 3;

struct Env {
    sim: Simulation<ConsumerCore>,
    cluster: Rc<RefCell<Cluster>>,
    next_conn: u64,
    /// partition -> values in offset order.
    produced: BTreeMap<i32, Vec<Bytes>>,
}

fn frame(body: &RequestBody, version: i16) -> Bytes {
    let api = body.api_key();
    let header = RequestHeader {
        request_api_key: api.as_i16(),
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("test-producer".into()),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, request_header_version(api, version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.freeze()
}

/// `len` bytes that zstd shrinks only by about half (4 random bits a byte), distinct per seed.
fn value(seed: u64, len: usize) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 60) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

impl Env {
    fn new(budget: u64, tweak: impl FnOnce(&mut ConsumerConfig)) -> Self {
        let start = Instant::now();
        let config = ClusterConfig {
            brokers: BROKERS,
            replication_factor: 1,
            seed: 5,
            ..ClusterConfig::default()
        };
        let cluster = Rc::new(RefCell::new(Cluster::new(config, start)));
        let mut cc = ConsumerConfig::default();
        cc.auto_offset_reset = AutoOffsetReset::Earliest;
        cc.fetch_max_wait_ms = 500;
        cc.fetch_buffer_bytes = budget;
        cc.common.retry_backoff_ms = 50;
        tweak(&mut cc);
        let mut opts = NetOptions::new(vec![("broker-0".into(), 9092)]);
        opts.seed = 11;
        opts.retry_backoff = Duration::from_millis(50);
        let sim = Simulation::new(ConsumerCore::new(cc, opts), 7, start)
            .with_links(LinkConfig {
                latency: Duration::from_millis(1),
                jitter: Duration::ZERO,
            })
            .with_max_steps(5_000_000);
        let mut env = Env {
            sim,
            cluster,
            next_conn: 0,
            produced: BTreeMap::new(),
        };
        serve_cluster(&mut env.sim, &env.cluster);
        env.call(
            0,
            RequestBody::CreateTopics(CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: TOPIC.into(),
                    num_partitions: BROKERS as i32,
                    replication_factor: 1,
                    ..Default::default()
                }],
                timeout_ms: 1000,
                ..Default::default()
            }),
            5,
        );
        let leaders: BTreeSet<i32> = (0..BROKERS as i32).map(|p| env.leader(p)).collect();
        assert_eq!(leaders.len(), BROKERS, "each partition on its own broker");
        env
    }

    fn call(&mut self, broker: i32, body: RequestBody, version: i16) -> ResponseBody {
        self.next_conn += 1;
        let conn = u64::MAX - self.next_conn;
        let api = body.api_key();
        let now = self.sim.now();
        let mut c = self.cluster.borrow_mut();
        assert!(c.connection_opened(broker, conn, "/test-producer"));
        let reply = c.handle_frame(broker, conn, frame(&body, version), now);
        c.connection_closed(broker, conn);
        assert_eq!(reply.frames.len(), 1, "{api:?} answered at once");
        decode_response_frame(api, version, reply.frames[0].slice(4..))
            .unwrap()
            .1
    }

    fn leader(&self, partition: i32) -> i32 {
        self.cluster
            .borrow()
            .partition(TOPIC, partition)
            .unwrap()
            .leader
    }

    /// Appends one batch of `per_batch` records of `len` bytes to every partition.
    fn produce_round(&mut self, per_batch: usize, len: usize, codec: Compression) {
        for p in 0..BROKERS as i32 {
            let mut b = RecordBatchBuilder::new(codec);
            let log = self.produced.entry(p).or_default();
            let mut values = Vec::new();
            for _ in 0..per_batch {
                let v = value(
                    ((p as u64) << 32) | (log.len() as u64 + values.len() as u64),
                    len,
                );
                b.append(0, None, Some(&v), &[]).unwrap();
                values.push(v);
            }
            let body = RequestBody::Produce(ProduceRequest {
                acks: 1,
                timeout_ms: 1000,
                topic_data: vec![TopicProduceData {
                    name: TOPIC.into(),
                    partition_data: vec![PartitionProduceData {
                        index: p,
                        records: Some(b.finish().unwrap()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            });
            let leader = self.leader(p);
            let ResponseBody::Produce(r) = self.call(leader, body, 8) else {
                panic!("not a produce response")
            };
            assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
            self.produced.get_mut(&p).unwrap().extend(values);
        }
    }

    /// Assigns every partition and reads everything, `max` records a poll, checking order and
    /// content; fails if it takes longer than `within` of simulated time. Returns the time it
    /// took.
    fn read_all(&mut self, max: usize, within: Duration) -> Duration {
        let now = self.sim.now();
        let start = now;
        self.sim.core().assign(
            (0..BROKERS as i32).map(|p| TopicPartition::new(TOPIC, p)),
            now,
        );
        let total: usize = self.produced.values().map(Vec::len).sum();
        let deadline = start + within;
        let produced = self.produced.clone();
        let mut next: BTreeMap<i32, usize> = BTreeMap::new();
        let mut got = 0;
        self.sim
            .run_until(|s| {
                let now = s.now();
                if now > deadline {
                    let c = s.core();
                    panic!(
                        "wedged: {got} of {total} records after {within:?} ({next:?}); {c:?} {:?}",
                        c.stats()
                    );
                }
                loop {
                    let records = s.core().take_records(max, now).expect("poll");
                    if records.is_empty() {
                        break;
                    }
                    for r in records {
                        let i = next.entry(r.partition).or_default();
                        assert_eq!(r.offset, *i as i64, "partition {}: in order", r.partition);
                        assert_eq!(
                            r.value.as_ref(),
                            Some(&produced[&r.partition][*i]),
                            "partition {} offset {}",
                            r.partition,
                            r.offset
                        );
                        *i += 1;
                        got += 1;
                    }
                }
                got >= total
            })
            .unwrap();
        self.sim.now() - start
    }
}

/// Records three times the budget, uncompressed, one per batch: each is still delivered.
#[test]
fn records_larger_than_the_budget_on_three_brokers_are_all_read() {
    let mut env = Env::new(100_000, |_| {});
    for _ in 0..4 {
        env.produce_round(1, 300_000, Compression::None);
    }
    env.read_all(10, Duration::from_secs(30));
}

/// Compressed batches larger than the budget once decompressed (and on the wire): before the
/// fix every fetch starved waiting for the others' memory.
#[test]
fn compressed_batches_larger_than_the_budget_on_three_brokers_are_all_read() {
    let mut env = Env::new(100_000, |_| {});
    for _ in 0..4 {
        env.produce_round(3, 100_000, Compression::Zstd);
    }
    env.read_all(1, Duration::from_secs(30));
}

/// The 1 MiB budget with 1 MB records, scaled down: records about the budget, many of
/// them; every broker's partition progresses and the read does not cost a long poll per
/// record.
#[test]
fn records_near_the_budget_are_read_without_a_long_poll_each() {
    let mut env = Env::new(100_000, |_| {});
    for _ in 0..30 {
        env.produce_round(1, 95_000, Compression::None);
    }
    // 90 records; a long poll (500 ms) per record would be 45 s.
    let took = env.read_all(5, Duration::from_secs(15));
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// Records of half the budget, compressed, with a slow application that takes one record per
/// poll: the budget slows it, never stops it.
#[test]
fn a_slow_reader_with_half_budget_records_reads_everything() {
    let mut env = Env::new(200_000, |c| c.max_partition_fetch_bytes = 1 << 20);
    for _ in 0..10 {
        env.produce_round(2, 50_000, Compression::Lz4);
    }
    env.read_all(1, Duration::from_secs(30));
}
